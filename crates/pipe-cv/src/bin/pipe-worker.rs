//! The worker executable for stage kinds that need OpenCV: runs one stage
//! from a job file (`pipe-worker run JOB`), printing progress as JSON lines.
//! The `pipe` engine spawns it, so the engine itself never links OpenCV.

fn main() {
    std::process::exit(pipe_core::exec::worker::worker_main("pipe-worker", pipe_cv::kinds::runner, &[]));
}
