//! The worker executable: runs one stage from a job file (`pipe-worker run
//! JOB`), printing progress as JSON lines. Stage kinds that need libtorch run
//! here so that the `pipe` engine process never loads it. `pipe-worker
//! probe` checks that libtorch loads and says which device it would use.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["run", job] => match pipe::exec::worker::serve(std::path::Path::new(job)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
        ["probe"] => probe(),
        _ => {
            eprintln!("usage: pipe-worker run JOB.json | pipe-worker probe\n(the `pipe` command starts this executable itself)");
            2
        }
    };
    std::process::exit(code);
}

#[cfg(feature = "torch")]
fn probe() -> i32 {
    let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let sum = t.sum(tch::Kind::Float).double_value(&[]);
    let cuda = tch::Cuda::is_available();
    println!("libtorch: ok (sum check {sum}), threads {}, cuda {}", tch::get_num_threads(), if cuda { format!("yes ({} devices)", tch::Cuda::device_count()) } else { "no".to_string() });
    if sum == 6.0 { 0 } else { 1 }
}

#[cfg(not(feature = "torch"))]
fn probe() -> i32 {
    eprintln!("this pipe-worker was built without the `torch` feature");
    1
}
