//! The run's report folder, `REPORTS/<pipeline>/<run-id>/`: besides the
//! engine's `summary.json`, every `evaluate` stage's tables (`metrics.csv`,
//! `metrics.parquet`, `comparison.md`, `confusion/`), its self-contained
//! `report.html` with the PNGs under `plots/`, and the predictions of
//! each approach it compared (`predictions/<approach>.csv` and `.parquet`).
//! Everything is copied from cache entries, so a fully cached re-run writes
//! byte-identical files. With several `evaluate` stages, each gets a
//! sub-folder named after it.

use std::path::Path;

pub mod diff;
pub mod html;
pub mod plots;

use crate::cache::Cache;
use crate::exec::RunOutcome;
use crate::exec::plan::{Action, Plan};
use crate::record::StageStatus;

/// Copies the evaluation outputs into `run_dir`; returns the comparison
/// tables to show in the terminal.
pub fn write(run_dir: &Path, plan: &Plan, outcome: &RunOutcome, cache: &Cache) -> Result<Vec<(String, String)>, String> {
    let evaluations: Vec<usize> = (0..plan.stages.len())
        .filter(|&i| plan.spec.stages[i].kind.name == "evaluate" && plan.stages[i].action != Action::Unselected)
        .filter(|&i| matches!(outcome.results[i].status, StageStatus::Ran | StageStatus::Cached))
        .collect();
    let mut shown = Vec::new();
    for &i in &evaluations {
        let stage = &plan.spec.stages[i];
        let dest = if evaluations.len() == 1 { run_dir.to_path_buf() } else { run_dir.join(&stage.name) };
        let entry = cache.entry_dir(&plan.stages[i].key).join("out");
        copy_tree(&entry, &dest)?;
        let md = std::fs::read_to_string(entry.join("comparison.md")).map_err(|e| format!("cannot read comparison: {e}"))?;
        let table: String =
            md.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect::<Vec<_>>().join("\n");
        shown.push((stage.name.clone(), table));
    }
    Ok(shown)
}

fn copy(src: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::copy(src, to).map(|_| ()).map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), to.display()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for item in std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?.flatten() {
        let path = item.path();
        let target = to.join(item.file_name());
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else if item.file_name() != "stage.log" {
            copy(&path, &target)?;
        }
    }
    Ok(())
}
