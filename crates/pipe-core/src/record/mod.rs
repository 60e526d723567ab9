//! Run records: `REPORTS/<pipeline>/<run-id>/summary.json`, written by every
//! `pipe run` (cached or not), and two links beside them: `latest`, the
//! newest run that succeeded with a complete report (what `pipe diff
//! PIPELINE.toml` compares), and `last`, the newest run of any outcome (what
//! the next plan explains its reasons against). The record keeps each
//! stage's key document, so the next `pipe plan` and `pipe diff` can say
//! which parameter or input changed.
//!
//! A run's folder is built as `.partial-<run-id>/` and renamed into place
//! once its report and summary are written, so a full disk or a killed
//! engine never leaves a half report under a run id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::fsx;
use crate::keys::Reason;
use crate::util::{PathError, compact_stamp, write_atomic};

/// Why a stage ran, or why it did not. Typed until it is printed; a record
/// keeps its text (the `reason` of `summary.json`, as it always was) and
/// reads it back as [`Why::Recorded`].
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// It ran (or failed) for these reasons.
    Changed(Vec<Reason>),
    /// Cached: its key is the previous run's.
    Unchanged,
    /// Not needed for the `--stage` targets.
    NotSelected,
    /// Another run published it while this one waited for its lock.
    ConcurrentRun,
    /// Cached by early cutoff: these inputs have new keys but the same
    /// output, so the entry computed before from that output was taken.
    CutOff(Vec<String>),
    /// Skipped: this input failed.
    InputFailed(String),
    /// Skipped: the run was interrupted first.
    Interrupted,
    /// The text of a record read back.
    Recorded(String),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Changed(reasons) => {
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
            Why::Unchanged => f.write_str("unchanged"),
            Why::NotSelected => f.write_str("not selected"),
            Why::ConcurrentRun => f.write_str("computed by a concurrent run"),
            Why::CutOff(inputs) => {
                let names: Vec<String> = inputs.iter().map(|n| format!("`{n}`")).collect();
                let have = if names.len() == 1 { "has a new key" } else { "have new keys" };
                write!(f, "cut off (input unchanged: {} {have} but the same output)", names.join(", "))
            }
            Why::InputFailed(stage) => write!(f, "input {stage} failed"),
            Why::Interrupted => f.write_str("interrupted"),
            Why::Recorded(text) => f.write_str(text),
        }
    }
}

impl Serialize for Why {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Why {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Why::Recorded)
    }
}

/// Why a run record could not be written, read or found.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write reports under {}: {source}; choose another folder with --reports-dir", reports.display())]
    NotWritable {
        reports: PathBuf,
        /// What failed, at which path below `reports`.
        at: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{} is not a run record: {source}", path.display())]
    NotARecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no run id given: `pipe runs` lists them")]
    NoRunId,
    #[error("no run `{id}` under {} (`pipe runs` lists them)", reports.display())]
    NoSuchRun { id: String, reports: PathBuf },
    #[error("`{id}` matches {count} runs; give more of the id")]
    Ambiguous { id: String, count: usize },
}

impl RecordError {
    /// Whether the record is simply not there (no run yet), as opposed to unreadable.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RecordError::Io(e) if e.source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What happened to one stage in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    Ran,
    Cached,
    Failed,
    Skipped,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Ran => "ran",
            StageStatus::Cached => "cached",
            StageStatus::Failed => "failed",
            StageStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub kind: String,
    pub key: String,
    pub status: StageStatus,
    pub seconds: f64,
    /// Why it ran (`new`, `params.words 100 → 200`, ...), why it was skipped,
    /// or `unchanged` for a cached stage (stored as its text).
    pub reason: Why,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Threads it ran on in this run (0: cached or skipped; the most it was
    /// granted, for an elastic stage).
    #[serde(default)]
    pub threads: usize,
    /// When it started, in seconds after the run began.
    #[serde(default)]
    pub start: f64,
    /// Warnings the stage gave when it ran (also in its `stage.log`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Slot -> stage names bound to it.
    pub inputs: BTreeMap<String, Vec<String>>,
    /// The key document (kind version, seed, params, input keys, sources).
    pub doc: serde_json::Value,
    /// What ran it when not this machine: `slurm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// The executor's job id (Slurm's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// For a cluster job: seconds from `sbatch` to the job's start (queue
    /// and launch), and from its end to its entry being published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_overhead: Option<JobOverhead>,
}

/// See [`StageRecord::job_overhead`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JobOverhead {
    pub to_start: f64,
    pub to_publish: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub pipeline: String,
    pub run_id: String,
    pub pipeline_file: String,
    pub started: String,
    pub seconds: f64,
    /// `ok`, `failed` or `interrupted` (`failed` too when the report could not be written).
    pub status: String,
    /// CPU time of the run, user + system, of the engine and every worker
    /// it waited for (as `/usr/bin/time` counts it).
    #[serde(default)]
    pub cpu_seconds: f64,
    /// The machine's cores: utilisation is `cpu_seconds / (seconds × cores)`.
    #[serde(default)]
    pub cores: usize,
    /// `complete`, or `incomplete: <why>` when writing the report failed.
    #[serde(default = "complete")]
    pub report: String,
    /// The `--set STAGE.PARAM=VALUE` overrides of the run, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    pub stages: Vec<StageRecord>,
}

fn complete() -> String {
    "complete".into()
}

impl RunRecord {
    pub fn stage(&self, name: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// CPU time over wall time × cores (0 to 1), when both were recorded.
    pub fn utilisation(&self) -> Option<f64> {
        (self.cores > 0 && self.seconds > 0.0).then(|| self.cpu_seconds / (self.seconds * self.cores as f64))
    }
}

/// A new run id: sortable by time, unique per process and moment.
pub fn new_run_id(now: SystemTime) -> String {
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let salt = blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes()).to_hex();
    format!("{}-{}", compact_stamp(now), &salt[..4])
}

/// Checks, before anything runs, that run folders can be written under
/// `reports` (a file in the way, or a read-only folder, is found now rather
/// than after every stage has run).
pub fn check_writable(reports: &Path, pipeline: &str) -> Result<(), RecordError> {
    let dir = reports.join(pipeline);
    let fail = |e: PathError| RecordError::NotWritable { reports: reports.to_path_buf(), at: e.path, source: e.source };
    fsx::create_dir_all(&dir).map_err(fail)?;
    let probe = dir.join(format!(".probe.{}", std::process::id()));
    fsx::write(&probe, b"").map_err(fail)?;
    fsx::remove_file(&probe).map_err(fail)?;
    remove_stale_partials(&dir);
    Ok(())
}

/// A run folder still being written after this long belongs to a run that
/// was killed while writing its report (writing takes seconds).
const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes `.partial-*` folders left by runs killed while writing their report.
fn remove_stale_partials(pipeline_dir: &Path) {
    // Every run calls this: only the few `.partial-` names are looked at
    // closer, never the run folders, however many there are.
    // Best effort, like all of this cleanup: the folder was just written to,
    // and a partial folder that cannot be listed or removed now is tried again
    // by the next run.
    let partials =
        fsx::read_dir(pipeline_dir).into_iter().flatten().flatten().filter(|i| i.file_name().to_string_lossy().starts_with(".partial-"));
    for item in partials {
        let old = item.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > STALE_PARTIAL);
        if old {
            let _ = fsx::remove_dir_all(item.path());
        }
    }
}

/// Writes a run's folder: `fill` writes the report into a staging folder,
/// then the record (saying whether the report is complete) goes beside it
/// and the folder is renamed to its run id. `last` always moves to it,
/// `latest` only when the run succeeded and its report is complete. Returns
/// the run folder and what `fill` returned.
pub fn write<T, E: std::fmt::Display>(
    reports: &Path,
    mut record: RunRecord,
    fill: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<(PathBuf, RunRecord, Result<T, E>), RecordError> {
    let pipeline_dir = reports.join(&record.pipeline);
    let run_dir = pipeline_dir.join(&record.run_id);
    let staging = pipeline_dir.join(format!(".partial-{}", record.run_id));
    fsx::create_dir_all(&staging).map_err(|e| e.doing("create report folder"))?;
    let filled = fill(&staging);
    if let Err(e) = &filled {
        record.report = format!("incomplete: {e}");
        if record.status == "ok" {
            record.status = "failed".into();
        }
    }
    let json = serde_json::to_vec_pretty(&record).expect("records serialise");
    let summary = staging.join("summary.json");
    let placed = match write_atomic(&summary, &json) {
        Ok(()) => Ok(()),
        // A full disk: the record matters more than a report that is
        // incomplete anyway. Its files go, and the record says so.
        Err(e) => {
            clear(&staging);
            let why = format!("its files were removed to make room for this record ({e})");
            record.report = match &filled {
                Err(first) => format!("incomplete: {first}; {why}"),
                Ok(_) => format!("incomplete: {why}"),
            };
            if record.status == "ok" {
                record.status = "failed".into();
            }
            write_atomic(&summary, &serde_json::to_vec_pretty(&record).expect("records serialise"))
        }
    };
    let report_complete = filled.is_ok() && !record.report.starts_with("incomplete");
    let placed = placed.and_then(|()| fsx::rename(&staging, &run_dir));
    if let Err(e) = placed {
        // Best effort: the error that matters is `e`; a staging folder left
        // behind is removed by a later run (`remove_stale_partials`).
        let _ = fsx::remove_dir_all(&staging);
        return Err(e.into());
    }
    point(&pipeline_dir, "last", &record.run_id)?;
    if record.status == "ok" && report_complete {
        point(&pipeline_dir, "latest", &record.run_id)?;
    }
    Ok((run_dir, record, filled))
}

/// Removes everything inside `dir` (best effort: what cannot go stays).
fn clear(dir: &Path) {
    for item in fsx::read_dir(dir).into_iter().flatten().flatten() {
        let path = item.path();
        let _ = if path.is_dir() { fsx::remove_dir_all(&path) } else { fsx::remove_file(&path) };
    }
}

/// Points the link `pipeline_dir/name` at `run_id`, atomically.
fn point(pipeline_dir: &Path, name: &str, run_id: &str) -> Result<(), PathError> {
    let link_tmp = pipeline_dir.join(format!(".{name}.{}", std::process::id()));
    // A leftover of a killed run with this pid, usually absent; if it cannot
    // be removed, `symlink` below says why.
    let _ = fsx::remove_file(&link_tmp);
    fsx::symlink(run_id, &link_tmp)?;
    let link = pipeline_dir.join(name);
    fsx::rename(&link_tmp, &link).map_err(|e| e.doing("update"))
}

/// Reads a `summary.json` (or the one inside a run folder).
pub fn read(path: &Path) -> Result<RunRecord, RecordError> {
    let file = if path.is_dir() { path.join("summary.json") } else { path.to_path_buf() };
    let bytes = fsx::read(&file)?;
    serde_json::from_slice(&bytes).map_err(|source| RecordError::NotARecord { path: file, source })
}

/// [`read`], with a record that is not there (no such run yet) as `None`.
fn read_if_there(path: &Path) -> Result<Option<RunRecord>, RecordError> {
    match read(path) {
        Ok(record) => Ok(Some(record)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The newest run of `pipeline` that succeeded with a complete report
/// (`None` when there is none yet).
pub fn latest(reports: &Path, pipeline: &str) -> Result<Option<RunRecord>, RecordError> {
    read_if_there(&reports.join(pipeline).join("latest"))
}

/// The newest run of `pipeline` whatever its outcome (runs written before
/// `last` existed fall back to `latest`; `None` when there is none yet).
pub fn last(reports: &Path, pipeline: &str) -> Result<Option<RunRecord>, RecordError> {
    match read_if_there(&reports.join(pipeline).join("last"))? {
        Some(record) => Ok(Some(record)),
        None => latest(reports, pipeline),
    }
}

/// Every run under `reports` (of one pipeline, or all), oldest first.
pub fn list(reports: &Path, pipeline: Option<&str>) -> Runs {
    list_all(reports, pipeline).0
}

/// Run folders and their records.
pub type Runs = Vec<(PathBuf, RunRecord)>;
/// Run folders whose record cannot be read, and why.
pub type Unreadable = Vec<(PathBuf, RecordError)>;

/// [`list`], and the run folders whose record cannot be read, with why.
pub fn list_all(reports: &Path, pipeline: Option<&str>) -> (Runs, Unreadable) {
    let (mut out, mut unreadable) = (Vec::new(), Vec::new());
    let pipelines: Vec<PathBuf> = match pipeline {
        Some(p) => vec![reports.join(p)],
        // No reports folder (or pipeline folder) yet: no runs. Unreadable run
        // folders are reported below, with why.
        None => fsx::read_dir(reports).into_iter().flatten().flatten().map(|e| e.path()).collect(),
    };
    for dir in pipelines {
        for run in fsx::read_dir(&dir).into_iter().flatten().flatten() {
            let path = run.path();
            let name = run.file_name().to_string_lossy().into_owned();
            // Links to runs, folders being written, probes.
            if name == "latest" || name == "last" || name.starts_with('.') || !run.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match read(&path) {
                Ok(record) => out.push((path, record)),
                Err(e) => unreadable.push((path, e)),
            }
        }
    }
    out.sort_by(|a, b| a.1.run_id.cmp(&b.1.run_id));
    unreadable.sort_by(|a, b| a.0.cmp(&b.0));
    (out, unreadable)
}

/// Finds a run by id (searching every pipeline) or by folder path.
pub fn find(reports: &Path, id_or_path: &str) -> Result<(PathBuf, RunRecord), RecordError> {
    if id_or_path.trim().is_empty() {
        return Err(RecordError::NoRunId);
    }
    let as_path = Path::new(id_or_path);
    if as_path.join("summary.json").is_file() || (as_path.is_file() && as_path.extension().is_some_and(|e| e == "json")) {
        return read(as_path).map(|r| (as_path.to_path_buf(), r));
    }
    let matches: Vec<_> = list(reports, None).into_iter().filter(|(_, r)| r.run_id.starts_with(id_or_path)).collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().expect("one match")),
        0 => Err(RecordError::NoSuchRun { id: id_or_path.to_string(), reports: reports.to_path_buf() }),
        count => Err(RecordError::Ambiguous { id: id_or_path.to_string(), count }),
    }
}
