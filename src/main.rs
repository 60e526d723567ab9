//! The `pipe` executable: the command line over `pipe_core`, mapping each
//! command's outcome to the process exit code. Its crate depends on neither
//! OpenCV nor libtorch (see `tests/architecture.rs`), so it never pays their
//! start-up cost: the stages that need them run in `pipe-worker` and
//! `pipe-torch`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
