//! `evaluate`: metrics of every prediction-producing stage on the test
//! split, with scikit-learn's definitions (see `metrics`), in one long
//! table — `metrics.csv` / `metrics.parquet` with columns `approach` (the
//! input stage's name), `task`, `class`, `precision`, `recall`, `f1`, `f2`,
//! `support` — plus `confusion/<approach>.csv` and `comparison.md` (the
//! approaches side by side, then each one's class table, then any SVM
//! grid-search table). The run's report folder copies these.

use std::fmt::Write as _;
use std::fs::File;

use polars::prelude::*;

use super::{ArtifactType, KindDef, Process, SlotDef, StageContext, StageError, ThreadUse, no_check};
use crate::data::predictions::Predictions;
use crate::metrics::{Row, confusion, single_label_report};

pub static EVALUATE: KindDef = KindDef {
    name: "evaluate",
    version: 1,
    summary: "per-class and averaged metrics of every approach, side by side",
    inputs: &[SlotDef {
        name: "predictions",
        accepts: &[ArtifactType::Predictions, ArtifactType::MultiLabelPredictions],
        many: true,
        required: true,
        doc: "the stages to compare (svm, cnn-stage1, cnn-stage2, multilabel)",
    }],
    output: ArtifactType::Metrics,
    params: &[],
    threads: ThreadUse::Single,
    // Polars only, no OpenCV: cheap enough to run inside the engine.
    process: Process::Engine(run),
    check: no_check,
    names_inputs: true,
};

/// The headline columns of the comparison: (row class, column, title).
pub const HEADLINE: &[(&str, &str, &str)] = &[
    ("accuracy", "f1", "accuracy"),
    ("macro avg", "f1", "macro F1"),
    ("weighted avg", "f1", "weighted F1"),
    ("micro avg", "f1", "micro F1"),
    ("top-3", "f1", "top-3"),
    ("top-5", "f1", "top-5"),
];

fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let out = ctx.out_dir().to_path_buf();
    std::fs::create_dir_all(out.join("confusion")).map_err(|e| StageError::Failed(e.to_string()))?;
    let mut table: Vec<(String, String, Row)> = Vec::new();
    let mut md_sections = String::new();
    for input in ctx.inputs_of("predictions").to_vec() {
        let p = Predictions::read(&input.dir).map_err(StageError::Failed)?;
        let truth: Vec<usize> = p.y_true.iter().map(|&v| v as usize).collect();
        let pred: Vec<usize> = p.y_pred.iter().map(|&v| v as usize).collect();
        let rows = single_label_report(&truth, &pred, &p.scores, &p.meta.classes);
        write_confusion(&out.join("confusion").join(format!("{}.csv", input.stage)), &confusion(&truth, &pred, p.meta.classes.len()), &p.meta.classes)?;
        let _ = writeln!(md_sections, "\n## {}\n\n{}", input.stage, class_table(&rows));
        let cv = input.dir.join("cv.csv");
        if let Ok(text) = std::fs::read_to_string(&cv) {
            let _ = writeln!(md_sections, "Grid search (cross-validation on the training split):\n\n{}", csv_to_markdown(&text));
        }
        table.extend(rows.into_iter().map(|r| (input.stage.clone(), p.meta.task.clone(), r)));
    }
    write_metrics(&out, &table)?;
    let md = format!("# Comparison\n\n{}\n{md_sections}", comparison_table(&table));
    std::fs::write(out.join("comparison.md"), md).map_err(|e| StageError::Failed(e.to_string()))?;
    Ok(())
}

fn write_metrics(out: &std::path::Path, table: &[(String, String, Row)]) -> Result<(), StageError> {
    let err = |e: PolarsError| StageError::Failed(format!("metrics table: {e}"));
    let mut df = df!(
        "approach" => table.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        "task" => table.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        "class" => table.iter().map(|t| t.2.class.as_str()).collect::<Vec<_>>(),
        "precision" => table.iter().map(|t| t.2.precision).collect::<Vec<_>>(),
        "recall" => table.iter().map(|t| t.2.recall).collect::<Vec<_>>(),
        "f1" => table.iter().map(|t| t.2.f1).collect::<Vec<_>>(),
        "f2" => table.iter().map(|t| t.2.f2).collect::<Vec<_>>(),
        "support" => table.iter().map(|t| t.2.support as u64).collect::<Vec<_>>(),
    )
    .map_err(err)?;
    let f = File::create(out.join("metrics.parquet")).map_err(|e| StageError::Failed(e.to_string()))?;
    ParquetWriter::new(f).finish(&mut df).map_err(err)?;
    let f = File::create(out.join("metrics.csv")).map_err(|e| StageError::Failed(e.to_string()))?;
    CsvWriter::new(f).finish(&mut df).map_err(err)
}

fn write_confusion(path: &std::path::Path, m: &[Vec<usize>], classes: &[String]) -> Result<(), StageError> {
    let mut text = format!("true\\predicted,{}\n", classes.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
    for (c, row) in classes.iter().zip(m) {
        let _ = writeln!(text, "{},{}", csv_field(c), row.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
    }
    std::fs::write(path, text).map_err(|e| StageError::Failed(format!("cannot write {}: {e}", path.display())))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// One row per approach with the headline metrics (a Markdown table).
pub fn comparison_table(table: &[(String, String, Row)]) -> String {
    let mut approaches: Vec<&str> = Vec::new();
    for (a, _, _) in table {
        if !approaches.contains(&a.as_str()) {
            approaches.push(a);
        }
    }
    let mut md = format!("| approach | {} |\n|---|{}\n", HEADLINE.iter().map(|h| h.2).collect::<Vec<_>>().join(" | "), "---|".repeat(HEADLINE.len()));
    for a in approaches {
        let cells: Vec<String> = HEADLINE
            .iter()
            .map(|(class, _, _)| table.iter().find(|(x, _, r)| x == a && r.class == *class).map_or("-".into(), |(_, _, r)| format!("{:.3}", r.f1)))
            .collect();
        let _ = writeln!(md, "| {a} | {} |", cells.join(" | "));
    }
    md
}

fn class_table(rows: &[Row]) -> String {
    let mut md = String::from("| class | precision | recall | f1 | f2 | support |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let f2 = r.f2.map_or(String::new(), |v| format!("{v:.3}"));
        let _ = writeln!(md, "| {} | {:.3} | {:.3} | {:.3} | {f2} | {} |", r.class, r.precision, r.recall, r.f1, r.support);
    }
    md
}

/// The grid table as Markdown, without the measured fit times (they vary
/// from run to run; `cv.csv` in the svm stage's entry keeps them), so the
/// comparison is the same for the same pipeline and seed.
fn csv_to_markdown(csv: &str) -> String {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else { return String::new() };
    let names: Vec<&str> = header.split(',').collect();
    let keep: Vec<usize> = (0..names.len()).filter(|&i| names[i] != "mean_fit_seconds").collect();
    let pick = |line: &str| {
        let cells: Vec<&str> = line.split(',').collect();
        keep.iter().map(|&i| cells.get(i).copied().unwrap_or("")).collect::<Vec<_>>().join(" | ")
    };
    let mut md = format!("| {} |\n|{}\n", pick(header), "---|".repeat(keep.len()));
    for l in lines {
        let _ = writeln!(md, "| {} |", pick(l));
    }
    md
}

#[cfg(test)]
mod tests;
