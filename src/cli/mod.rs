//! The command line: argument definitions (clap derive) and the mapping from
//! outcomes to exit codes. Each subcommand lives in its own file.
//!
//! Exit codes: 0 success; 1 a stage failed (or a command's own failure);
//! 2 the pipeline file or the arguments are invalid; 130 interrupted.

mod check;
mod fingerprint;
mod gc;
mod run;
mod runs;
mod verify;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use pipe_core::graph::Dag;
pub use pipe_core::report::table::table;
use pipe_core::spec::{Diagnostics, LoadError, PipelineSpec};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Parser)]
#[command(name = "pipe", version, about = "Declarative experiment pipelines for image classification")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the cache and the reports live (flags beat the `[pipeline]` table,
/// which beats the defaults `cache/` and `reports/`, relative to the working folder).
#[derive(Debug, Clone, clap::Args)]
pub struct Dirs {
    /// Cache folder [default: `cache` of the pipeline file, else ./cache]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Reports folder [default: `reports` of the pipeline file, else ./reports]
    #[arg(long, value_name = "DIR")]
    pub reports_dir: Option<PathBuf>,
}

impl Dirs {
    pub fn cache(&self, spec: &PipelineSpec) -> PathBuf {
        self.cache_dir.clone().or_else(|| spec.cache_dir.clone()).unwrap_or_else(|| PathBuf::from("cache"))
    }

    pub fn reports(&self, spec: &PipelineSpec) -> PathBuf {
        self.reports_dir.clone().or_else(|| spec.reports_dir.clone()).unwrap_or_else(|| PathBuf::from("reports"))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: reuse cached stages, run the rest in parallel
    Run(run::RunArgs),
    /// Show what `run` would do: each stage cached, or will run and why
    Plan(run::PlanArgs),
    /// Validate a pipeline file without running anything
    Check { file: PathBuf },
    /// Print the stage graph (text, or Graphviz with --dot)
    Dag {
        file: PathBuf,
        #[arg(long)]
        dot: bool,
    },
    /// List the stage kinds of this build, or one kind's inputs and parameters
    Stages { kind: Option<String> },
    /// Remove cache entries no given pipeline uses (or older than an age)
    Gc(gc::GcArgs),
    /// Check every cache entry against its checksums; name the corrupt ones
    Verify(verify::VerifyArgs),
    /// Print the content fingerprint of a data folder (as `load` keys use it)
    Fingerprint(fingerprint::FingerprintArgs),
    /// List earlier runs with each approach's accuracy
    Runs(runs::RunsArgs),
    /// Print one run's stages and comparison
    Show(runs::ShowArgs),
    /// Compare two runs' metrics, and say why they differ
    Diff(runs::DiffArgs),
}

/// Parses arguments and runs the command; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_) | Command::Gc(_) | Command::Verify(_)) {
        quiet_on_closed_pipe();
    }
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Plan(args) => run::plan(&args),
        Command::Check { file } => check::check(&file),
        Command::Dag { file, dot } => check::dag(&file, dot),
        Command::Stages { kind } => check::stages(kind.as_deref()),
        Command::Gc(args) => gc::gc(&args),
        Command::Verify(args) => verify::verify(&args),
        Command::Fingerprint(args) => fingerprint::run(&args),
        Command::Runs(args) => runs::runs(&args),
        Command::Show(args) => runs::show(&args),
        Command::Diff(args) => runs::diff(&args),
    }
}

/// `pipe runs | head` and the like: a closed stdout ends a command that only
/// prints, quietly, as for any Unix tool (Rust ignores SIGPIPE, which turns
/// every later print into a panic). Not for `run`, whose writes to a worker's
/// stdin must fail softly when the worker has exited.
fn quiet_on_closed_pipe() {
    // SAFETY: restoring a signal's default disposition has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The cache at `dir` for a command that only works on what is there
/// (`gc`, `verify`): `Ok(None)` (having said so) when there is none yet;
/// `Err(code)` when it cannot be opened.
pub fn existing_cache(dir: &Path, nothing_to: &str) -> Result<Option<pipe_core::cache::Cache>, i32> {
    if !dir.join("entries").is_dir() {
        println!("no cache at {}: nothing to {nothing_to}", dir.display());
        return Ok(None);
    }
    pipe_core::cache::Cache::open(dir).map(Some).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_FAILED
    })
}

/// Loads and fully validates a pipeline (spec and graph). On failure, prints
/// every problem and returns the exit code to use.
pub fn load_pipeline(file: &Path) -> Result<(PipelineSpec, Dag), i32> {
    let spec = match pipe_core::spec::load(file) {
        Ok(spec) => spec,
        Err(LoadError::Io(e)) => {
            eprintln!("error: {e}");
            return Err(EXIT_INVALID);
        }
        Err(LoadError::Invalid(d)) => {
            eprintln!("{d}");
            return Err(EXIT_INVALID);
        }
    };
    match Dag::build(&spec) {
        Ok(dag) => Ok((spec, dag)),
        Err(items) => {
            let source = std::fs::read_to_string(file).unwrap_or_default();
            eprintln!("{}", Diagnostics { file: file.to_path_buf(), source, items });
            Err(EXIT_INVALID)
        }
    }
}
