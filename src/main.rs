//! The `pipe` executable: everything lives in the library; this maps the
//! command's outcome to the process exit code. It never references libtorch
//! (see `pipe-worker`), so it never pays libtorch's start-up cost.

fn main() {
    std::process::exit(pipe::cli::main());
}
