//! What a running stage sees: its validated parameters, its input artifacts
//! (cache folders of upstream stages), the folder it writes its output into,
//! the threads it was granted, and channels for progress, log lines and
//! cancellation. The same context is built in the engine process and in the
//! `pipe-worker` process, so a stage kind does not know where it runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::grant::{Grant, Permit};
use super::params::Params;
use super::{ArtifactType, KindDef};
use crate::util::PathError;

/// An upstream stage's published output.
#[derive(Debug, Clone)]
pub struct InputArtifact {
    pub stage: String,
    pub artifact: ArtifactType,
    pub dir: PathBuf,
}

/// What a stage reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum StageEvent {
    /// `pos` of `len` units (`unit`: "images", "epochs", ...) are done.
    Progress { pos: u64, len: u64, unit: String },
    /// A line worth showing the user now (a warning); also kept in the log.
    Warning(String),
    /// The engine's executor submitted the stage as this cluster job
    /// (`slurm:1234`); stages never send it.
    Job(String),
}

/// Where events go: the scheduler's channel, or the worker's stdout.
pub type EventSink = Arc<dyn Fn(StageEvent) + Send + Sync>;

/// Why a stage did not produce its output.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The stage's own explanation, already phrased for the user.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("interrupted")]
    Cancelled,
}

impl From<crate::data::DataError> for StageError {
    fn from(e: crate::data::DataError) -> Self {
        match e {
            crate::data::DataError::Io(e) => StageError::Io(e),
            other => StageError::Failed(other.to_string()),
        }
    }
}

impl From<crate::data::bow::ArtifactError> for StageError {
    fn from(e: crate::data::bow::ArtifactError) -> Self {
        match e {
            crate::data::bow::ArtifactError::Io(e) => StageError::Io(e),
            other => StageError::Failed(other.to_string()),
        }
    }
}

/// See [`StageContext::ticker`].
pub struct Ticker<'a> {
    ctx: &'a StageContext,
    done: AtomicU64,
    total: u64,
    step: u64,
    unit: &'static str,
}

impl Ticker<'_> {
    pub fn tick(&self) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(self.step) || n == self.total {
            self.ctx.progress(n, self.total, self.unit);
        }
    }
}

/// The running stage's view of the world.
pub struct StageContext {
    pub name: String,
    pub kind: &'static KindDef,
    pub params: Params,
    /// The pipeline's seed; every stage key includes it.
    pub seed: u64,
    pub inputs: BTreeMap<String, Vec<InputArtifact>>,
    /// Threads granted by the scheduler (the rayon pool is already sized so).
    pub threads: usize,
    out_dir: PathBuf,
    events: EventSink,
    cancel: Arc<AtomicBool>,
    grant: Arc<Grant>,
    log: Vec<String>,
    /// A `command` stage's program, from its job.
    pub command: Option<super::command::CommandJob>,
}

impl StageContext {
    /// The stage's parameters as its kind's struct (see [`super::typed`]).
    pub fn typed_params<P: super::StageParams>(&self) -> Result<P, StageError> {
        self.params.typed::<P>().map_err(|e| StageError::Failed(e.to_string()))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        kind: &'static KindDef,
        params: Params,
        seed: u64,
        inputs: BTreeMap<String, Vec<InputArtifact>>,
        threads: usize,
        out_dir: PathBuf,
        events: EventSink,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        let grant = Grant::new(threads);
        StageContext { name, kind, params, seed, inputs, threads, out_dir, events, cancel, grant, log: Vec::new(), command: None }
    }

    /// Uses `grant` (which the scheduler may raise while the stage runs)
    /// instead of a fixed grant of `threads`.
    pub fn with_grant(mut self, grant: Arc<Grant>) -> Self {
        self.grant = grant;
        self
    }

    /// A work item's permit: an elastic kind's parallel loop takes one per
    /// item, so no more items run at once than slots are granted now.
    pub fn permit(&self) -> Permit<'_> {
        self.grant.permit()
    }

    /// The folder the stage writes its output files into.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The single artifact bound to input `slot`.
    pub fn input(&self, slot: &str) -> Result<&InputArtifact, StageError> {
        self.inputs.get(slot).and_then(|v| v.first()).ok_or_else(|| StageError::Failed(format!("input `{slot}` is not connected")))
    }

    /// Under `pipe predict`, the stage's own entry of the training run (its
    /// input [`super::MODEL_SLOT`]): the stage then applies what that entry
    /// learned to new images instead of learning. `None` in a pipeline run.
    pub fn trained(&self) -> Option<&Path> {
        self.inputs_of(super::MODEL_SLOT).first().map(|a| a.dir.as_path())
    }

    /// Every artifact bound to input `slot` (empty when not connected).
    pub fn inputs_of(&self, slot: &str) -> &[InputArtifact] {
        self.inputs.get(slot).map_or(&[], Vec::as_slice)
    }

    /// Where the stage's events go, for threads of its own.
    pub fn events(&self) -> EventSink {
        Arc::clone(&self.events)
    }

    /// Passes on an event as it came (a command stage relays its program's).
    pub fn event(&self, event: StageEvent) {
        (self.events)(event);
    }

    pub fn progress(&self, pos: u64, len: u64, unit: &str) {
        (self.events)(StageEvent::Progress { pos, len, unit: unit.to_string() });
    }

    /// A progress counter that parallel workers can tick; it reports about
    /// every 1% so the event channel is not flooded.
    pub fn ticker<'a>(&'a self, total: usize, unit: &'static str) -> Ticker<'a> {
        Ticker { ctx: self, done: AtomicU64::new(0), total: total as u64, step: (total as u64 / 100).max(1), unit }
    }

    /// Adds a line to the stage's log (`stage.log` in its cache entry).
    pub fn log(&mut self, line: impl Into<String>) {
        self.log.push(line.into());
    }

    /// Logs a line and shows it to the user as a warning.
    pub fn warn(&mut self, line: impl Into<String>) {
        let line = line.into();
        (self.events)(StageEvent::Warning(line.clone()));
        self.log.push(format!("warning: {line}"));
    }

    pub fn log_lines(&self) -> &[String] {
        &self.log
    }

    /// Writes the log lines (if any) to `stage.log` in the output folder.
    pub fn save_log(&self) -> Result<(), PathError> {
        if self.log.is_empty() {
            return Ok(());
        }
        let path = self.out_dir.join("stage.log");
        let mut text = self.log.join("\n");
        text.push('\n');
        crate::fsx::write(&path, text)
    }

    /// Returns `Err(Cancelled)` once the user interrupted the run.
    pub fn check_cancelled(&self) -> Result<(), StageError> {
        if self.cancel.load(Ordering::Relaxed) { Err(StageError::Cancelled) } else { Ok(()) }
    }
}
