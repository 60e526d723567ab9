//! Pipeline files: TOML in, a typed, fully validated [`PipelineSpec`] out.
//!
//! The file has a `[pipeline]` table (name, seed, cache, reports, and an
//! `[pipeline.executor]`, see [`resources`]) and one
//! `[stages.NAME]` table per stage: `kind = "..."`, its inputs by slot name
//! (`features = "kaze"`, `predictions = ["svm", "cnn"]`) and its parameters.
//! Validation collects every problem before giving up: TOML syntax, unknown
//! keys and kinds (with the nearest valid name), missing or misspelled inputs,
//! inputs of the wrong artifact type, wrongly typed or out-of-range values.
//! Cycles are found by [`dag`], which reports in the same format.

mod command;
pub mod dag;
pub mod diag;
pub mod matrix;
pub mod overrides;
mod parse;
pub mod predict;
mod read;
pub mod resources;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use parse::parse;

use crate::kinds::command::CommandSpec;
use crate::kinds::{ArtifactType, KindDef, Params};
use crate::util::PathError;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub file: PathBuf,
    pub name: String,
    pub seed: u64,
    /// `cache` from the `[pipeline]` table, if set.
    pub cache_dir: Option<PathBuf>,
    /// `reports` from the `[pipeline]` table, if set.
    pub reports_dir: Option<PathBuf>,
    /// In file order; swept and repeated stages replaced by their variants.
    pub stages: Vec<StageSpec>,
    /// `[pipeline] repeats` and `resplit`.
    pub repeats: matrix::Repeats,
    /// `[pipeline.executor]`: where worker stages run, and what Slurm jobs request.
    pub executor: resources::ExecutorSpec,
    /// The stages' DAG, built when the spec is validated (for the expanded
    /// stages, where a matrix or repeats changed them).
    pub dag: dag::Dag,
}

/// One validated stage.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub kind: &'static KindDef,
    /// Slot name -> the stages bound to it, in the order written.
    pub inputs: BTreeMap<String, Vec<InputRef>>,
    /// Complete parameters: defaults filled in.
    pub params: Params,
    /// Where the stage's name is written (for later diagnostics).
    pub span: Range<usize>,
    /// The name written in the file; `name` adds the variant's suffix.
    pub base: String,
    /// What this variant of a swept or repeated stage fixes, as
    /// `(label, value)`: `[("words", "50"), ("repeat", "1")]`.
    pub variant: Vec<(String, String)>,
    /// The stage's `matrix` and `repeats`, as written.
    pub sweep: matrix::Sweep,
    /// The seed the stage runs with: the pipeline's, or its repeat's.
    pub seed: u64,
    /// `[stages.NAME.resources]`: its own Slurm request (no part of its key).
    pub resources: resources::Resources,
    /// What it produces: its kind's output, or a command stage's `produces`.
    pub output: ArtifactType,
    /// A `command` stage's own settings (`None` for the built-in kinds).
    pub command: Option<CommandSpec>,
    /// What the engine needs of its parameters, read once when the spec is
    /// validated (see [`Resolved`]).
    pub resolved: Resolved,
}

/// What the scheduler, the estimates and the Slurm requests need of a
/// stage's parameters, read once from its kind's rules when the spec is
/// validated: no layer after the spec goes back to the parameters for it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resolved {
    /// The threads that are part of its key and that it holds
    /// ([`crate::kinds::ThreadUse::Keyed`] kinds).
    pub keyed_threads: Option<usize>,
    /// Passes over the data (training epochs), for the estimate.
    pub epochs: u64,
    /// Whether it needs a GPU (its Slurm job asks for one).
    pub uses_gpu: bool,
}

impl Resolved {
    pub fn of(stage: &StageSpec) -> Resolved {
        let schema = &stage.kind.params;
        Resolved {
            keyed_threads: match &stage.command {
                Some(c) => Some(c.threads),
                None => schema.keyed_threads(&stage.params),
            },
            epochs: schema.epochs(&stage.params),
            uses_gpu: schema.uses_gpu(&stage.params),
        }
    }
}

impl StageSpec {
    /// The threads that are part of its key and that it holds, for a
    /// [`crate::kinds::ThreadUse::Keyed`] kind.
    pub fn keyed_threads(&self) -> Option<usize> {
        self.resolved.keyed_threads
    }

    /// The expected seconds of a run: the kind's estimate, times the epochs
    /// for kinds that train in epochs.
    pub fn estimate(&self) -> f64 {
        self.kind.estimate_seconds * self.resolved.epochs as f64
    }
}

/// A reference to another stage, with where it is written.
#[derive(Debug, Clone)]
pub struct InputRef {
    pub stage: String,
    pub span: Range<usize>,
}

/// Where a `File` parameter written in pipeline file `spec_file` points:
/// an absolute path as it is, `~/…` below the home folder, anything else
/// relative to the pipeline file's folder (as DVC resolves against
/// `dvc.yaml`), so the same file reads the same weights from any folder.
pub fn resolve_file(spec_file: &Path, written: &str) -> PathBuf {
    if let (Some(rest), Some(home)) = (written.strip_prefix("~/"), std::env::var_os("HOME")) {
        return PathBuf::from(home).join(rest);
    }
    let path = Path::new(written);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    pipeline_dir(spec_file).join(path)
}

/// The folder of pipeline file `spec_file` (`.` for a bare file name): what
/// `File` parameters and a command stage's `code` are relative to, and
/// where its program runs.
pub fn pipeline_dir(spec_file: &Path) -> PathBuf {
    spec_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

impl PipelineSpec {
    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// Why a pipeline file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{0}")]
    Invalid(Box<Diagnostics>),
    /// A `--set` that names nothing, or whose value the file's rules refuse.
    #[error("{}", problems.iter().map(|p| format!("error: in --set {set}: {p}")).collect::<Vec<_>>().join("\n"))]
    Override { set: String, problems: Vec<String> },
}

/// [`load`], with `--set` overrides applied after the file itself has been
/// checked: a problem of the file is shown at its line:column, one an
/// override causes as "in --set STAGE.PARAM=VALUE: …".
pub fn load_with(path: &Path, overrides: &[overrides::Override]) -> Result<PipelineSpec, LoadError> {
    let spec = load(path)?;
    if overrides.is_empty() {
        return Ok(spec);
    }
    let source = crate::fsx::read_to_string(path).map_err(|e| e.doing("read pipeline file"))?;
    let blame = |i: usize, problems: Vec<String>| LoadError::Override { set: overrides[i].written.clone(), problems };
    // One more override at a time, so a problem is blamed on the one that made it.
    let mut last = None;
    for n in 1..=overrides.len() {
        let text = overrides::apply_all(&source, &overrides[..n]).map_err(|(i, e)| blame(i, vec![e]))?;
        match parse(path, &text) {
            Ok(spec) => last = Some(spec),
            Err(items) => {
                let problems = items
                    .into_iter()
                    .map(|d| match d.hint {
                        Some(h) => format!("{} ({h})", d.message),
                        None => d.message,
                    })
                    .collect();
                return Err(blame(n - 1, problems));
            }
        }
    }
    Ok(last.expect("at least one override"))
}

/// Reads and validates a pipeline file, cycles included (its keys are the `graph` module's).
pub fn load(path: &Path) -> Result<PipelineSpec, LoadError> {
    let bytes = crate::fsx::read(path).map_err(|e| e.doing("read pipeline file"))?;
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let at = e.utf8_error().valid_up_to();
            let d = Diagnostic::new(at..at + 1, "the file is not valid UTF-8").hint("save it as UTF-8 text");
            return Err(LoadError::Invalid(Box::new(Diagnostics { file: path.into(), source: lossy, items: vec![d] })));
        }
    };
    parse(path, &source).map_err(|items| LoadError::Invalid(Box::new(Diagnostics { file: path.into(), source: source.clone(), items })))
}

#[cfg(all(test, feature = "test-kinds"))]
mod tests;

#[cfg(test)]
mod fuzz_tests;
