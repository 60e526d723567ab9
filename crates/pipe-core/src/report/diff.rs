//! `pipe diff A B`: the metric tables of two runs joined with Polars (A, B
//! and the delta per approach x class x metric, changes beyond a tolerance
//! marked), and why the runs differ: the stages whose keys differ, with each
//! parameter change, changed input or changed dataset fingerprint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::significance::RunSignificance;
use crate::fsx;
use crate::keys::{KeyDoc, Reason, reasons_since};
use crate::record::{RecordError, RunRecord};
use crate::spec::LoadError;

/// Why `pipe diff` could not compare two runs.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{arg}: {source}")]
    Pipeline {
        arg: String,
        #[source]
        source: LoadError,
    },
    #[error("pipeline `{pipeline}` ({arg}) has no complete run under {} yet: `pipe run {arg}` first", reports.display())]
    NoCompleteRun { pipeline: String, arg: String, reports: PathBuf },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{} has no metrics.csv: the run has no evaluate stage", dir.display())]
    NoMetrics { dir: PathBuf },
    #[error("{}: {source}", path.display())]
    ReadMetrics {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("joining the metric tables: {0}")]
    Join(#[source] PolarsError),
    /// A column of the joined table is missing or of the wrong type.
    #[error(transparent)]
    Table(#[from] PolarsError),
    #[error(transparent)]
    Io(#[from] crate::util::PathError),
}

/// A run found from a command-line argument.
#[derive(Debug, Clone)]
pub struct RunRef {
    pub dir: PathBuf,
    pub record: RunRecord,
    /// How the run was picked, when not by its id (a pipeline file's latest complete run).
    pub via: Option<String>,
}

/// A run id (or a unique prefix), a run folder, or a pipeline file (its latest run).
pub fn resolve(reports: &Path, arg: &str) -> Result<RunRef, DiffError> {
    let path = Path::new(arg);
    if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
        let spec = crate::spec::load(path).map_err(|source| DiffError::Pipeline { arg: arg.to_string(), source })?;
        let dir = reports.join(&spec.name).join("latest");
        let record = match crate::record::read(&dir) {
            Ok(record) => record,
            Err(e) if e.is_not_found() => {
                return Err(DiffError::NoCompleteRun { pipeline: spec.name, arg: arg.to_string(), reports: reports.to_path_buf() });
            }
            Err(e) => return Err(e.into()),
        };
        let via = Some(format!("the latest complete run of {arg}"));
        // The link was just read through, so this resolves; if it does not,
        // the link itself names the same run.
        let dir = fsx::canonicalize(&dir).unwrap_or(dir);
        return Ok(RunRef { dir, record, via });
    }
    let (dir, record) = crate::record::find(reports, arg)?;
    Ok(RunRef { dir, record, via: None })
}

/// The rows shown by default: the averages and single-number rows.
const HEADLINE: &[&str] = &["micro avg", "macro avg", "weighted avg", "samples avg", "accuracy", "top-3", "top-5"];

/// One compared number.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delta {
    pub approach: String,
    pub class: String,
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Delta {
    pub fn delta(&self) -> Option<f64> {
        Some(self.b? - self.a?)
    }
}

fn read_metrics(dir: &Path) -> Result<DataFrame, DiffError> {
    let path = dir.join("metrics.csv");
    if !path.is_file() {
        return Err(DiffError::NoMetrics { dir: dir.to_path_buf() });
    }
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.clone()))
        .and_then(|r| r.finish())
        .map_err(|source| DiffError::ReadMetrics { path, source })
}

/// Joins the two metric tables on (approach, task, class).
pub fn metric_deltas(a: &Path, b: &Path, all_classes: bool) -> Result<Vec<Delta>, DiffError> {
    let (left, right) = (read_metrics(a)?, read_metrics(b)?);
    let on = ["approach", "task", "class"];
    let joined = left
        .join(&right, on, on, JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns), None)
        .map_err(DiffError::Join)?;
    let col_str = |name: &str| -> Result<Vec<String>, DiffError> {
        Ok(joined.column(name).and_then(|c| c.str().cloned())?.into_iter().map(|v| v.unwrap_or_default().to_string()).collect())
    };
    let col_f64 = |name: &str| -> Result<Vec<Option<f64>>, DiffError> {
        let c = joined.column(name)?.cast(&DataType::Float64)?;
        Ok(c.f64()?.into_iter().collect())
    };
    let (approach, class) = (col_str("approach")?, col_str("class")?);
    let mut out = Vec::new();
    let metrics = ["precision", "recall", "f1", "f2"];
    type Columns = (Vec<Option<f64>>, Vec<Option<f64>>); // A's and B's values
    let values: BTreeMap<&str, Columns> =
        metrics.iter().map(|m| Ok((*m, (col_f64(m)?, col_f64(&format!("{m}_right"))?)))).collect::<Result<_, DiffError>>()?;
    for i in 0..joined.height() {
        let headline = HEADLINE.contains(&class[i].as_str());
        if !headline && !all_classes {
            continue;
        }
        let single = ["accuracy", "top-3", "top-5"].contains(&class[i].as_str());
        let shown: &[&str] = if single {
            &["f1"]
        } else if headline {
            &metrics
        } else {
            &["f1"]
        };
        for m in shown {
            let (a_col, b_col) = &values[m];
            let name = if single { "value" } else { m };
            out.push(Delta { approach: approach[i].clone(), class: class[i].clone(), metric: name.to_string(), a: a_col[i], b: b_col[i] });
        }
    }
    out.sort_by(|x, y| (&x.approach, order(&x.class), &x.class).cmp(&(&y.approach, order(&y.class), &y.class)));
    Ok(out)
}

/// Headline rows first, in a fixed order; classes after, by name.
fn order(class: &str) -> usize {
    HEADLINE.iter().position(|h| *h == class).unwrap_or(HEADLINE.len())
}

/// Why the two runs differ, one line per difference.
pub fn why(a: &RunRecord, b: &RunRecord) -> Vec<String> {
    let mut out = Vec::new();
    for s in &b.stages {
        match a.stage(&s.name) {
            None => out.push(format!("{} ({}): only in B", s.name, s.kind)),
            Some(old) if old.key != s.key => {
                // The newer document read back; one that is not a key
                // document (another format) differs by its implementation.
                let r: Vec<Reason> = match KeyDoc::from_value(&s.doc) {
                    Ok(new) => reasons_since(&old.doc, &new, &s.inputs),
                    Err(_) => vec![Reason::Implementation],
                };
                let r: Vec<String> = r
                    .iter()
                    .map(|r| crate::keys::by_override(r, &s.name, a.overrides.iter().chain(&b.overrides)).unwrap_or_else(|| r.to_string()))
                    .collect();
                out.push(format!("{} ({}): {}", s.name, s.kind, r.join("; ")));
            }
            Some(_) => {}
        }
    }
    for s in &a.stages {
        if b.stage(&s.name).is_none() {
            out.push(format!("{} ({}): only in A", s.name, s.kind));
        }
    }
    out
}

/// Output formats of `pipe diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Md,
    Csv,
    Json,
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

fn signed(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:+.4}"))
}

/// Renders the comparison; `tolerance` decides which deltas are marked.
pub fn render(
    a: &RunRef,
    b: &RunRef,
    deltas: &[Delta],
    why: &[String],
    significance: &RunSignificance,
    format: Format,
    tolerance: f64,
) -> String {
    let changed = |d: &Delta| d.delta().is_none_or(|x| x.abs() > tolerance);
    match format {
        Format::Json => serde_json::to_string_pretty(&serde_json::json!({
            "a": a.record.run_id, "b": b.record.run_id,
            "metrics": deltas.iter().map(|d| serde_json::json!({
                "approach": d.approach, "class": d.class, "metric": d.metric, "a": d.a, "b": d.b, "delta": d.delta(), "changed": changed(d),
            })).collect::<Vec<_>>(),
            "why": why,
            "significance": significance.rows.iter().map(|c| serde_json::json!({
                "approach": c.a, "metric": c.metric, "delta": 0.0 - c.difference,
                "interval": c.interval.map(|(lo, hi)| [0.0 - hi, 0.0 - lo]), "p": c.p_value, "p_holm": c.p_holm, "significant": c.significant(),
            })).collect::<Vec<_>>(),
            "not_tested": significance.untested.iter().map(|(a, why)| serde_json::json!({"approach": a, "why": why})).collect::<Vec<_>>(),
        }))
        .expect("JSON values serialise")
            + "\n",
        Format::Csv => {
            let mut s = String::from("approach,class,metric,a,b,delta,changed\n");
            for d in deltas {
                let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
                s.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    d.approach,
                    d.class,
                    d.metric,
                    opt(d.a),
                    opt(d.b),
                    opt(d.delta()),
                    changed(d)
                ));
            }
            s
        }
        Format::Md | Format::Table => {
            let header = ["approach", "class", "metric", "A", "B", "delta", ""];
            let rows: Vec<Vec<String>> = deltas
                .iter()
                .map(|d| {
                    vec![
                        d.approach.clone(),
                        d.class.clone(),
                        d.metric.clone(),
                        num(d.a),
                        num(d.b),
                        signed(d.delta()),
                        if changed(d) { "*".into() } else { String::new() },
                    ]
                })
                .collect();
            let label = |r: &RunRef| match &r.via {
                Some(via) => format!("{} ({}; {via})", r.record.run_id, r.record.pipeline),
                None => format!("{} ({})", r.record.run_id, r.record.pipeline),
            };
            let mut s = format!("A: {}\nB: {}\n\n", label(a), label(b));
            if format == Format::Md {
                s.push_str(&format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len())));
                for r in &rows {
                    s.push_str(&format!("| {} |\n", r.join(" | ")));
                }
            } else {
                s.push_str(&crate::report::table::table(&header, &rows));
            }
            s.push_str(&format!("\n* changed by more than {tolerance}\n"));
            s.push_str(&super::significance::render(significance, format == Format::Md));
            s.push_str("\nwhy they differ:\n");
            if why.is_empty() {
                s.push_str("  nothing: every stage has the same key\n");
            }
            for w in why {
                s.push_str(&format!("  {w}\n"));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests;
