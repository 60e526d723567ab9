//! The worker executable for stage kinds that need libtorch (the CNN
//! stages): `pipe-torch run JOB` like `pipe-worker`; `pipe-torch probe`,
//! which checks that libtorch loads and says which device it would use; and
//! `pipe-torch bench IMAGES_DIR`, the training benchmarks. The
//! engine never links libtorch (~0.26 s and ~111 MiB at every start).

fn main() {
    std::process::exit(pipe::exec::worker::main_of("pipe-torch", runner, &[("probe", probe), ("bench", bench)]));
}

#[cfg(feature = "torch")]
mod bench;
#[cfg(feature = "torch")]
mod cnn_train;
#[cfg(feature = "torch")]
mod multilabel;
#[cfg(feature = "torch")]
mod nets;
#[cfg(feature = "torch")]
mod recipe;
#[cfg(all(test, feature = "torch"))]
mod tests;

/// The kinds that run here ([`pipe::stages::Process::Torch`]).
#[cfg(feature = "torch")]
fn runner(kind: &str) -> Option<pipe::stages::RunFn> {
    match kind {
        "cnn-stage1" => Some(cnn_train::run_stage1),
        "cnn-stage2" => Some(cnn_train::run_stage2),
        "multilabel" => Some(multilabel::run),
        _ => None,
    }
}

#[cfg(not(feature = "torch"))]
fn runner(_: &str) -> Option<pipe::stages::RunFn> {
    None
}

#[cfg(feature = "torch")]
fn probe() -> i32 {
    let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let sum = t.sum(tch::Kind::Float).double_value(&[]);
    let cuda = tch::Cuda::is_available();
    let devices = if cuda { format!("yes, {} device(s)", tch::Cuda::device_count()) } else { "no".to_string() };
    println!("libtorch: ok (1+2+3 = {sum}), {} threads, CUDA: {devices}", tch::get_num_threads());
    if sum == 6.0 { 0 } else { 1 }
}

#[cfg(feature = "torch")]
fn bench() -> i32 {
    bench::main()
}

#[cfg(not(feature = "torch"))]
fn bench() -> i32 {
    eprintln!("this pipe-torch was built without the `torch` feature");
    1
}

#[cfg(not(feature = "torch"))]
fn probe() -> i32 {
    eprintln!("this pipe-torch was built without the `torch` feature");
    1
}

#[cfg(all(test, feature = "torch"))]
mod registry_tests {
    #[test]
    fn every_torch_kind_runs_here() {
        for k in pipe::stages::registry() {
            let torch = matches!(k.process, pipe::stages::Process::Torch);
            assert_eq!(torch, super::runner(k.name).is_some(), "{}", k.name);
        }
    }
}
