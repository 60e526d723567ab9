//! The run's report folder, `REPORTS/<pipeline>/<run-id>/`: besides the
//! engine's `summary.json`, every `evaluate` stage's tables (`metrics.csv`,
//! `metrics.parquet`, `comparison.md`, `confusion/`), its self-contained
//! `report.html` with the PNGs under `plots/`, and the predictions of
//! each approach it compared (`predictions/<approach>.csv` and `.parquet`).
//! Everything is copied from cache entries, so a fully cached re-run writes
//! byte-identical files, and every file is checked against its entry's
//! manifest (size and blake3) on the way: the plan has already checked these
//! entries in full and recomputed corrupt ones, so a mismatch here means the
//! cache changed during the run, and the report is refused rather than
//! written wrong. With several `evaluate` stages, each gets a sub-folder
//! named after it. The one exception to "copied as is": `report.html` gets
//! the run's [`provenance`] section, which no cache entry can hold.

use std::path::Path;

pub mod diff;
pub mod provenance;
pub mod significance;
pub mod table;

use crate::cache::{Cache, CacheError, Entry, Lookup};
use crate::fsx;
use crate::record::RunRecord;
use crate::record::StageStatus;
use crate::spec::PipelineSpec;

/// Why the report of a run could not be written: every case names the
/// `evaluate` stage whose files it was copying.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("stage `{stage}`: its cache entry {key} is gone; run again to recompute it")]
    Gone { stage: String, key: String },
    #[error("stage `{stage}`: its cache entry {key} is corrupt ({why}); run again to recompute it")]
    Corrupt { stage: String, key: String, why: String },
    #[error("stage `{stage}`: {source}; run again to recompute it")]
    Copy {
        stage: String,
        #[source]
        source: CacheError,
    },
}

/// Copies the evaluation outputs of the run `record` describes into
/// `run_dir`; returns the comparison tables to show in the terminal. The
/// report reads the run's record (and the spec, for the compared
/// approaches' parameters), not the executor's state.
pub fn write(run_dir: &Path, spec: &PipelineSpec, record: &RunRecord, cache: &Cache) -> Result<Vec<(String, String)>, ReportError> {
    let feeds_report = |name: &str| spec.stage(name).is_some_and(|s| s.output == crate::kinds::ArtifactType::Metrics);
    let evaluations: Vec<usize> = (0..record.stages.len())
        .filter(|&i| feeds_report(&record.stages[i].name))
        .filter(|&i| matches!(record.stages[i].status, StageStatus::Ran | StageStatus::Cached))
        .collect();
    let mut shown = Vec::new();
    for &i in &evaluations {
        let stage = &record.stages[i];
        let dest = if evaluations.len() == 1 { run_dir.to_path_buf() } else { run_dir.join(&stage.name) };
        let key = &stage.key;
        let entry = match cache.lookup(key) {
            Lookup::Hit(entry) => entry,
            Lookup::Missing => return Err(ReportError::Gone { stage: stage.name.clone(), key: key[..12].to_string() }),
            Lookup::Corrupt(why) => return Err(ReportError::Corrupt { stage: stage.name.clone(), key: key[..12].to_string(), why }),
        };
        let section = provenance::section(spec, record, i);
        let md = copy_verified(&entry, &dest, &section).map_err(|source| ReportError::Copy { stage: stage.name.clone(), source })?;
        let md = String::from_utf8_lossy(&md);
        let table: String =
            md.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect::<Vec<_>>().join("\n");
        shown.push((stage.name.clone(), table));
    }
    Ok(shown)
}

/// Copies every output file of `entry` but its log into `to`, checking each
/// against the manifest, with `section` added to `report.html`. Returns the
/// bytes of `comparison.md`.
fn copy_verified(entry: &Entry, to: &Path, section: &str) -> Result<Vec<u8>, CacheError> {
    let mut comparison = Vec::new();
    for file in entry.manifest.files.iter().filter(|f| f.path != "stage.log") {
        let bytes = entry.read_verified(file)?;
        let target = to.join(&file.path);
        if let Some(parent) = target.parent() {
            fsx::create_dir_all(parent)?;
        }
        if file.path == "report.html" {
            fsx::write(&target, provenance::insert(&String::from_utf8_lossy(&bytes), section))?;
        } else {
            fsx::write(&target, &bytes)?;
        }
        if file.path == "comparison.md" {
            comparison = bytes;
        }
    }
    Ok(comparison)
}
