//! The command line: argument definitions (clap derive) and the mapping from
//! outcomes to exit codes. Each subcommand lives in its own file and returns
//! its exit code, or a [`CliError`]; [`main`] alone prints errors (through
//! [`message`]) and picks their exit code ([`CliError::exit_code`]).
//!
//! Exit codes: 0 success; 1 a stage failed (or a command's own failure);
//! 2 the pipeline file or the arguments are invalid; 130 interrupted.

mod check;
mod fingerprint;
mod gc;
mod predict;
mod run;
mod runs;
mod signals;
mod verify;
mod version;

use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use pipe_core::exec::plan::PlanError;
use pipe_core::record::RecordError;
use pipe_core::report::ReportError;
use pipe_core::report::diff::DiffError;
pub use pipe_core::report::table::table;
use pipe_core::spec::dag::Dag;
use pipe_core::spec::{LoadError, PipelineSpec};
use pipe_core::util::PathError;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_INVALID: i32 = 2;
/// A run that must build entries in a cache it cannot write.
pub const EXIT_CACHE_READ_ONLY: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// What a subcommand ends with when it does not fail: its exit code (a run
/// whose stages failed, or a `verify` that found corruption, ends with 1
/// having said so itself).
pub type Outcome = Result<i32, CliError>;

/// Why a command failed. [`main`] prints it (see [`message`]) and exits
/// with [`CliError::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The pipeline file cannot be read, or is invalid (its diagnostics).
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The reports folder cannot be written (found before anything runs).
    #[error(transparent)]
    Reports(RecordError),
    /// A run given by id, folder or pipeline file that cannot be found or read.
    #[error(transparent)]
    FindRun(RecordError),
    /// The runs given to `pipe diff` that cannot be found.
    #[error(transparent)]
    Resolve(DiffError),
    /// The metric tables given to `pipe diff` that cannot be compared.
    #[error(transparent)]
    Compare(DiffError),
    #[error("cannot write the run's record: {0} (the cache is intact: run again once there is room)")]
    WriteRecord(#[source] RecordError),
    /// The run is recorded, but its report could not be written.
    #[error(
        "writing the report: {source}\n(the run is recorded as failed in {}; `latest` still points at the last complete run)",
        summary.display()
    )]
    Report {
        #[source]
        source: ReportError,
        summary: PathBuf,
        interrupted: bool,
    },
    #[error("no stage kind `{name}` in this build{}; `pipe stages` lists them", nearest.as_ref().map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default())]
    NoSuchKind { name: String, nearest: Option<String> },
    #[error("say what to keep: pipeline files whose stages stay (`pipe gc pipelines/a.toml`), or `--older-than 7d`")]
    GcWithoutRule,
    #[error("--older-than {0}: expected a number and a unit (s, m, h, d, w), e.g. 7d")]
    BadAge(String),
    /// The executor asked for cannot be used here (no `sbatch`, say).
    #[error("{0}")]
    Executor(String),
    /// `pipe predict` cannot apply the approach (not one, not cached, no folder).
    #[error("{0}")]
    Predict(String),
    /// The cache (or another file a command works on) cannot be read or written.
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(
        "the cache {} cannot be written ({why}), and {} stage{} must run: {}\n  run with `--cache-dir` naming a folder you can write (or use one where everything is cached)",
        root.display(), stages.len(), if stages.len() == 1 { "" } else { "s" }, stages.join(", ")
    )]
    ReadOnlyCache { root: PathBuf, why: String, stages: Vec<String> },
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Load(_)
            | CliError::Plan(_)
            | CliError::Reports(_)
            | CliError::FindRun(_)
            | CliError::Resolve(_)
            | CliError::NoSuchKind { .. }
            | CliError::GcWithoutRule
            | CliError::BadAge(_)
            | CliError::Executor(_)
            | CliError::Predict(_) => EXIT_INVALID,
            CliError::Report { interrupted: true, .. } => EXIT_INTERRUPTED,
            CliError::ReadOnlyCache { .. } => EXIT_CACHE_READ_ONLY,
            CliError::Compare(_) | CliError::WriteRecord(_) | CliError::Report { .. } | CliError::Io(_) => EXIT_FAILED,
        }
    }
}

/// The text `pipe` prints for an error: diagnostics as they are, anything
/// else as `error: ...`, followed by each cause in its source chain that the
/// message does not already say.
pub fn message(e: &CliError) -> String {
    if let CliError::Load(LoadError::Invalid(_) | LoadError::Override { .. }) = e {
        return e.to_string();
    }
    let mut text = format!("error: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(&format!(": {said}"));
        }
        cause = c.source();
    }
    text
}

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
    Check {
        file: PathBuf,
        #[command(flatten)]
        set: SetArgs,
    },
    /// Print the stage graph (text, or Graphviz with --dot)
    Dag {
        file: PathBuf,
        #[arg(long)]
        dot: bool,
        #[command(flatten)]
        set: SetArgs,
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
    /// Classify a folder of new images with a trained approach (nothing is retrained)
    Predict(predict::PredictArgs),
}

/// The arguments; `--version` / `-V` (only then) probe the workers.
fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    if args.iter().skip(1).any(|a| a == "--version" || a == "-V") {
        let text: &'static str = Box::leak(version::text().into_boxed_str());
        command = command.version(text).long_version(text);
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Parses arguments and runs the command; returns the process exit code.
pub fn main() -> i32 {
    let cli = parse();
    if !matches!(cli.command, Command::Run(_) | Command::Predict(_) | Command::Gc(_) | Command::Verify(_)) {
        quiet_on_closed_pipe();
    }
    let outcome = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Plan(args) => run::plan(&args),
        Command::Check { file, set } => check::check(&file, &set),
        Command::Dag { file, dot, set } => check::dag(&file, dot, &set),
        Command::Stages { kind } => check::stages(kind.as_deref()),
        Command::Gc(args) => gc::gc(&args),
        Command::Verify(args) => verify::verify(&args),
        Command::Fingerprint(args) => fingerprint::run(&args),
        Command::Runs(args) => runs::runs(&args),
        Command::Show(args) => runs::show(&args),
        Command::Diff(args) => runs::diff(&args),
        Command::Predict(args) => predict::predict(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", pipe_core::util::printable(&message(&e)));
            e.exit_code()
        }
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
/// (`gc`, `verify`): `Ok(None)` (having said so) when there is none yet.
pub fn existing_cache(dir: &Path, nothing_to: &str) -> Result<Option<pipe_core::cache::Cache>, CliError> {
    if !dir.join("entries").is_dir() {
        println!("no cache at {}: nothing to {nothing_to}", dir.display());
        return Ok(None);
    }
    Ok(Some(pipe_core::cache::Cache::open(dir)?))
}

/// Loads and fully validates a pipeline (spec and graph); the error carries
/// every problem found.
/// `--set STAGE.PARAM=VALUE`, for the commands that read a pipeline file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SetArgs {
    /// Override a parameter without editing the file (repeatable): the value
    /// is TOML (`-S svm.c=[1,10]`; a bare word is a string); a list for a
    /// plain parameter sweeps it; `pipeline.seed=3` sets a `[pipeline]` key
    #[arg(long = "set", short = 'S', value_name = "STAGE.PARAM=VALUE")]
    pub set: Vec<String>,
}

pub fn load_pipeline(file: &Path, set: &SetArgs) -> Result<(PipelineSpec, Dag), CliError> {
    let overrides = set
        .set
        .iter()
        .map(|o| pipe_core::spec::overrides::Override::parse(o).map_err(|e| LoadError::Override { set: o.clone(), problems: vec![e] }))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = pipe_core::spec::load_with(file, &overrides)?;
    let dag = spec.dag.clone();
    Ok((spec, dag))
}
