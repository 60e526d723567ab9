//! The worker executable for stage kinds that need libtorch (the CNN
//! stages): `pipe-torch run JOB` like `pipe-worker`; `pipe-torch probe`,
//! which checks that libtorch loads and says which device it would use; and
//! `pipe-torch bench IMAGES_DIR`, the training benchmarks. Only this crate
//! depends on tch: the engine never pays libtorch's ~0.26 s and ~111 MiB at
//! every start. On a machine whose set-up installed torch's CUDA libraries
//! it loads them first ([`cuda`]), so the same binary uses the GPU.

fn main() {
    cuda::load();
    std::process::exit(pipe_core::exec::worker::worker_main("pipe-torch", runner, &[("probe", probe), ("bench", bench)]));
}

mod bench;
mod cnn_train;
mod cuda;
mod efficientnet;
mod embed;
mod multilabel;
mod nets;
mod preprocess;
mod recipe;
#[cfg(test)]
mod tests;
mod weights;

/// The kinds that run here ([`pipe_core::kinds::Process::Torch`]), by definition.
static RUNNERS: pipe_core::kinds::Runners = &[
    (&pipe_core::kinds::cnn::CNN_STAGE1, cnn_train::run_stage1),
    (&pipe_core::kinds::cnn::CNN_STAGE2, cnn_train::run_stage2),
    (&pipe_core::kinds::multilabel::MULTILABEL, multilabel::run),
    (&pipe_core::kinds::embed::EMBED, embed::run),
];

fn runner(kind: &str) -> Option<pipe_core::kinds::RunFn> {
    pipe_core::kinds::runner_in(RUNNERS, kind)
}

fn probe() -> i32 {
    let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let sum = t.sum(tch::Kind::Float).double_value(&[]);
    let devices = if tch::Cuda::is_available() { tch::Cuda::device_count() } else { 0 };
    let cuda = cuda::describe(cuda::load(), devices);
    println!("libtorch: ok (1+2+3 = {sum}), {} threads, CUDA: {cuda}", tch::get_num_threads());
    if sum == 6.0 { 0 } else { 1 }
}

fn bench() -> i32 {
    bench::main()
}

#[cfg(test)]
mod registry_tests {
    #[test]
    fn every_torch_kind_runs_here() {
        for k in pipe_core::kinds::registry() {
            let torch = matches!(k.process, pipe_core::kinds::Process::Torch);
            assert_eq!(torch, super::runner(k.name).is_some(), "{}", k.name);
        }
    }
}
