//! Run records: `REPORTS/<pipeline>/<run-id>/summary.json`, written by every
//! `pipe run` (cached or not), and the `latest` link beside them. The record
//! keeps each stage's key document, so the next `pipe plan` and `pipe diff`
//! can say which parameter or input changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::util::{IoContext, PathError, compact_stamp, write_atomic};

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
    /// or `unchanged` for a cached stage.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Slot -> stage names bound to it.
    pub inputs: BTreeMap<String, Vec<String>>,
    /// The key document (kind version, seed, params, input keys, sources).
    pub doc: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub pipeline: String,
    pub run_id: String,
    pub pipeline_file: String,
    pub started: String,
    pub seconds: f64,
    /// `ok`, `failed` or `interrupted`.
    pub status: String,
    pub stages: Vec<StageRecord>,
}

impl RunRecord {
    pub fn stage(&self, name: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// A new run id: sortable by time, unique per process and moment.
pub fn new_run_id(now: SystemTime) -> String {
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let salt = blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes()).to_hex();
    format!("{}-{}", compact_stamp(now), &salt[..4])
}

/// Writes the record and points `<pipeline>/latest` at it. Returns its folder.
pub fn write(reports: &Path, record: &RunRecord) -> Result<PathBuf, PathError> {
    let pipeline_dir = reports.join(&record.pipeline);
    let run_dir = pipeline_dir.join(&record.run_id);
    std::fs::create_dir_all(&run_dir).at("create report folder", &run_dir)?;
    let json = serde_json::to_vec_pretty(record).expect("records serialise");
    write_atomic(&run_dir.join("summary.json"), &json)?;
    let link_tmp = pipeline_dir.join(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&link_tmp);
    std::os::unix::fs::symlink(&record.run_id, &link_tmp).at("link", &link_tmp)?;
    let latest = pipeline_dir.join("latest");
    std::fs::rename(&link_tmp, &latest).at("update", &latest)?;
    Ok(run_dir)
}

/// Reads a `summary.json` (or the one inside a run folder).
pub fn read(path: &Path) -> Result<RunRecord, String> {
    let file = if path.is_dir() { path.join("summary.json") } else { path.to_path_buf() };
    let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a run record: {e}", file.display()))
}

/// The newest run of `pipeline`, if any.
pub fn latest(reports: &Path, pipeline: &str) -> Option<RunRecord> {
    read(&reports.join(pipeline).join("latest")).ok()
}

/// Every run under `reports` (of one pipeline, or all), oldest first.
pub fn list(reports: &Path, pipeline: Option<&str>) -> Vec<(PathBuf, RunRecord)> {
    let mut out = Vec::new();
    let pipelines: Vec<PathBuf> = match pipeline {
        Some(p) => vec![reports.join(p)],
        None => std::fs::read_dir(reports).into_iter().flatten().flatten().map(|e| e.path()).collect(),
    };
    for dir in pipelines {
        for run in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = run.path();
            if path.file_name().is_some_and(|n| n == "latest") || !path.is_dir() {
                continue;
            }
            if let Ok(record) = read(&path) {
                out.push((path, record));
            }
        }
    }
    out.sort_by(|a, b| a.1.run_id.cmp(&b.1.run_id));
    out
}

/// Finds a run by id (searching every pipeline) or by folder path.
pub fn find(reports: &Path, id_or_path: &str) -> Result<(PathBuf, RunRecord), String> {
    let as_path = Path::new(id_or_path);
    if as_path.join("summary.json").is_file() || (as_path.is_file() && as_path.extension().is_some_and(|e| e == "json")) {
        return read(as_path).map(|r| (as_path.to_path_buf(), r));
    }
    let matches: Vec<_> = list(reports, None).into_iter().filter(|(_, r)| r.run_id.starts_with(id_or_path)).collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().expect("one match")),
        0 => Err(format!("no run `{id_or_path}` under {} (`pipe runs` lists them)", reports.display())),
        n => Err(format!("`{id_or_path}` matches {n} runs; give more of the id")),
    }
}
