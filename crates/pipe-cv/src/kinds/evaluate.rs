//! `evaluate`: metrics of every prediction-producing stage on the test
//! split, with scikit-learn's definitions (see `metrics`), in one long
//! table — `metrics.csv` / `metrics.parquet` with columns `approach` (the
//! input stage's name), `task`, `class`, `precision`, `recall`, `f1`, `f2`,
//! `support`, then `variant` (the name without its `repeat=N` entry) and
//! `repeat` (N, empty without one) — plus `confusion/<approach>.csv`,
//! `significance.csv` (see [`compare`]), `training/<approach>.csv` (each
//! CNN approach's per-epoch `history.csv`) and `comparison.md` (the approaches
//! side by side, the summaries over repeats, the significance of the
//! differences, then each one's class table, then any SVM grid-search
//! table). The run's report folder copies these. `report.html` opens with the
//! comparison table (sortable by any column), then the charts of [`views`]
//! (inline SVG), then the rest.

use std::fmt::Write as _;

use pipe_core::fsx;
use polars::prelude::*;

use crate::algo::decode::init_opencv;
use crate::report::html::{self, Block};
use crate::report::plots;
use pipe_core::data::predictions::{MultiPredictions, Predictions, task_of};
use pipe_core::kinds::{StageContext, StageError};
use pipe_core::metrics::{Row, confusion, multi_label_report, single_label_report};

pub mod compare;
pub mod views;
use compare::{Labels, Scored};

/// The headline columns of the comparison: (row class, column, title).
pub const HEADLINE: &[(&str, &str, &str)] = &[
    ("accuracy", "f1", "accuracy"),
    ("macro avg", "f1", "macro F1"),
    ("weighted avg", "f1", "weighted F1"),
    ("micro avg", "f1", "micro F1"),
    ("top-3", "f1", "top-3"),
    ("top-5", "f1", "top-5"),
    ("micro avg", "f2", "micro F2"),
    ("samples avg", "f2", "samples F2"),
];

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    init_opencv(1);
    let out = ctx.out_dir().to_path_buf();
    for sub in ["confusion", "plots", "predictions"] {
        fsx::create_dir_all(out.join(sub))?;
    }
    let mut page: Vec<Block> = Vec::new();
    let mut table: Vec<(String, String, Row)> = Vec::new();
    let mut md_sections = String::new();
    let mut scored: Vec<Scored> = Vec::new();
    let mut histories: Vec<(String, String)> = Vec::new();
    for (name, dir) in approaches(ctx.inputs_of("predictions")) {
        for ext in ["csv", "parquet"] {
            let to = out.join("predictions").join(format!("{name}.{ext}"));
            let from = dir.join(format!("predictions.{ext}"));
            fsx::copy(&from, &to)?;
        }
        if task_of(&dir).map_err(StageError::from)? == "multi" {
            let m = MultiPredictions::read(&dir).map_err(StageError::from)?;
            let sets = |v: &[Vec<u32>]| v.iter().map(|s| s.iter().map(|&i| i as usize).collect()).collect::<Vec<Vec<usize>>>();
            let rows = multi_label_report(&sets(&m.y_true), &sets(&m.y_pred), &m.meta.classes);
            let _ = writeln!(md_sections, "\n## {name} (multi-label)\n\n{}", class_table(&rows));
            page.push(Block::Heading(format!("{name} (multi-label)")));
            page.push(Block::Table(class_rows(&rows)));
            if let Some(text) = training_history(&dir, &name, &out)? {
                page.extend(curves(&text, &name, &out)?);
                histories.push((name.clone(), text));
            }
            table.extend(rows.into_iter().map(|r| (name.clone(), "multi".to_string(), r)));
            scored.push(Scored {
                name,
                ids: m.ids,
                classes: m.meta.classes,
                labels: Labels::Multi { truth: sets(&m.y_true), pred: sets(&m.y_pred) },
            });
            continue;
        }
        let p = Predictions::read(&dir).map_err(StageError::from)?;
        let truth: Vec<usize> = p.y_true.iter().map(|&v| v as usize).collect();
        let pred: Vec<usize> = p.y_pred.iter().map(|&v| v as usize).collect();
        let rows = single_label_report(&truth, &pred, &p.scores, &p.meta.classes);
        let matrix = confusion(&truth, &pred, p.meta.classes.len());
        write_confusion(&out.join("confusion").join(format!("{}.csv", name)), &matrix, &p.meta.classes)?;
        let _ = writeln!(md_sections, "\n## {}\n\n{}", name, class_table(&rows));
        page.push(Block::Heading(name.clone()));
        for (normalise, what) in [(false, "counts"), (true, "row-normalised, %")] {
            let png = plots::confusion_png(&matrix, &p.meta.classes, normalise, &format!("{}: confusion matrix ({what})", name))
                .map_err(StageError::from)?;
            let name = format!("confusion_{}_{}.png", name, if normalise { "normalised" } else { "counts" });
            save(&out.join("plots").join(&name), &png)?;
            page.push(Block::Image(format!("{} confusion matrix, {what}", name), png));
        }
        page.push(Block::Table(class_rows(&rows)));
        if let Some(text) = training_history(&dir, &name, &out)? {
            page.extend(curves(&text, &name, &out)?);
            histories.push((name.clone(), text));
        }
        let cv = dir.join("cv.csv");
        if let Some(text) = fsx::read_to_string_if_exists(&cv)? {
            let _ = writeln!(md_sections, "Grid search (cross-validation on the training split):\n\n{}", csv_to_markdown(&text));
            page.push(Block::Text("Grid search (cross-validation on the training split):".into()));
            page.push(Block::Table(grid_rows(&text)));
        }
        table.extend(rows.into_iter().map(|r| (name.clone(), p.meta.task.clone(), r)));
        scored.push(Scored { name, ids: p.ids, classes: p.meta.classes, labels: Labels::Single { truth, pred } });
    }
    write_metrics(&out, &table)?;
    let partial = partial_approaches(&scored);
    let significance = compare::compare(&scored, ctx.seed);
    fsx::write(out.join("significance.csv"), compare::significance_csv(&significance))?;
    let over_repeats = compare::repeat_comparisons(&table);
    let md = format!(
        "# Comparison\n\n{}{}{}{}{}\n{md_sections}",
        comparison_table(&table, &partial),
        comparison_notes(&table, &scored, &partial),
        compare::repeats_markdown(&table),
        compare::repeat_comparisons_markdown(&over_repeats),
        compare::significance_markdown(&significance, ctx.seed)
    );
    fsx::write(out.join("comparison.md"), md)?;
    let mut blocks = vec![Block::Heading("Comparison (test split)".into()), Block::SortableTable(comparison_rows(&table, &partial))];
    let notes = comparison_notes(&table, &scored, &partial);
    if !notes.is_empty() {
        blocks.push(Block::Text(notes.trim().replace('`', "")));
    }
    blocks.extend(views::blocks(&table, &scored, &histories, &partial)?);
    let repeats = compare::repeat_rows(&table);
    if !repeats.is_empty() {
        blocks.extend([Block::Heading("Repeats".into()), Block::Text(compare::REPEATS_INTRO.replace('`', "")), Block::Table(repeats)]);
    }
    if !over_repeats.is_empty() {
        blocks.extend([
            Block::Heading("Repeats compared".into()),
            Block::Text(compare::REPEATS_COMPARED_INTRO.into()),
            Block::Table(compare::repeat_comparison_rows(&over_repeats)),
        ]);
    }
    if !significance.is_empty() {
        blocks.extend([
            Block::Heading("Significance".into()),
            Block::Text(compare::significance_intro(ctx.seed)),
            Block::Table(compare::significance_rows(&significance)),
            Block::Text(compare::significance_note(&significance)),
        ]);
    }
    if let Some(images) = ctx.inputs_of("images").first() {
        blocks.extend(dataset_blocks(&images.dir, &out)?);
    }
    blocks.extend(page);
    let html = html::page("pipe report", &blocks);
    Ok(fsx::write(out.join("report.html"), html)?)
}

fn save(path: &std::path::Path, bytes: &[u8]) -> Result<(), StageError> {
    Ok(fsx::write(path, bytes)?)
}

/// The class distribution per split, and the augmentation preview if any.
fn dataset_blocks(dir: &std::path::Path, out: &std::path::Path) -> Result<Vec<Block>, StageError> {
    let meta = pipe_core::data::dataset::Dataset::read_meta(dir).map_err(StageError::from)?;
    let count = |class: &str, split: &str| meta.counts.get(class).and_then(|c| c.get(split)).copied().unwrap_or(0) as f64;
    let series: Vec<(&str, Vec<f64>, opencv::core::Scalar)> =
        [("train", (180.0, 119.0, 31.0)), ("validation", (14.0, 127.0, 255.0)), ("test", (44.0, 160.0, 44.0))]
            .into_iter()
            .map(|(split, (b, g, r))| {
                (split, meta.classes.iter().map(|c| count(c, split)).collect(), opencv::core::Scalar::new(b, g, r, 0.0))
            })
            .collect();
    let png = plots::bars_png(&meta.classes, &series, "images per class and split").map_err(StageError::from)?;
    save(&out.join("plots").join("class_distribution.png"), &png)?;
    let mut blocks = vec![Block::Heading("Data".into()), Block::Image("images per class and split".into(), png)];
    if let Some(preview) = fsx::read_if_exists(dir.join("preview.png"))? {
        save(&out.join("plots").join("augmentation_preview.png"), &preview)?;
        blocks.push(Block::Image("augmentation: originals (left) beside augmented copies".into(), preview));
    }
    Ok(blocks)
}

/// The approaches behind the inputs: a stage's name and its predictions,
/// except the two-step stage 2, which gives two — `<stage>-combined` (the
/// final N-class predictions) and `<stage>-stage2` (stage 2 alone, on its
/// own classes' images).
fn approaches(inputs: &[pipe_core::kinds::InputArtifact]) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    for input in inputs {
        if input.dir.join("combined").is_file() {
            out.push((format!("{}-combined", input.stage), input.dir.clone()));
            out.push((format!("{}-stage2", input.stage), input.dir.join("stage2")));
        } else {
            out.push((input.stage.clone(), input.dir.clone()));
        }
    }
    out
}

/// A CNN approach's per-epoch `history.csv`, if its stage wrote one, also
/// exported as `training/<approach>.csv` (byte for byte).
fn training_history(dir: &std::path::Path, name: &str, out: &std::path::Path) -> Result<Option<String>, StageError> {
    let Some(text) = fsx::read_to_string_if_exists(dir.join("history.csv"))? else { return Ok(None) };
    fsx::create_dir_all(out.join("training"))?;
    fsx::write(out.join("training").join(format!("{name}.csv")), &text)?;
    Ok(Some(text))
}

/// Training curves from a CNN stage's `history.csv`: loss, and accuracy,
/// top-3 and top-5 (single-label) or F2 (multi-label).
fn curves(history: &str, stage: &str, out: &std::path::Path) -> Result<Vec<Block>, StageError> {
    let header: Vec<&str> = history.lines().next().unwrap_or_default().split(',').collect();
    let column = |name: &str| views::history_column(history, name);
    let colour = |b: f64, g: f64, r: f64| opencv::core::Scalar::new(b, g, r, 0.0);
    let charts = [
        (
            "loss",
            vec![
                ("train loss", column("train_loss"), colour(180.0, 119.0, 31.0)),
                ("validation loss", column("val_loss"), colour(14.0, 127.0, 255.0)),
            ],
        ),
        if header.contains(&"val_f2") {
            ("f2", vec![("F2", column("val_f2"), colour(44.0, 160.0, 44.0))])
        } else {
            (
                "accuracy",
                vec![
                    ("accuracy", column("val_accuracy"), colour(44.0, 160.0, 44.0)),
                    ("top-3", column("val_top3"), colour(40.0, 39.0, 214.0)),
                    ("top-5", column("val_top5"), colour(189.0, 103.0, 148.0)),
                ],
            )
        },
    ];
    let mut blocks = Vec::new();
    for (what, series) in charts {
        let title = format!("{stage}: {what} per epoch (validation split)");
        let png = plots::lines_png(&series, &title).map_err(StageError::from)?;
        save(&out.join("plots").join(format!("curves_{stage}_{what}.png")), &png)?;
        blocks.push(Block::Image(title, png));
    }
    Ok(blocks)
}

fn comparison_rows(table: &[(String, String, Row)], partial: &Partial) -> Vec<Vec<String>> {
    comparison_table(table, partial)
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

fn class_rows(rows: &[Row]) -> Vec<Vec<String>> {
    let mut out = vec![["class", "precision", "recall", "f1", "f2", "support"].map(String::from).to_vec()];
    for r in rows {
        out.push(vec![
            r.class.clone(),
            format!("{:.3}", r.precision),
            format!("{:.3}", r.recall),
            format!("{:.3}", r.f1),
            r.f2.map_or(String::new(), |v| format!("{v:.3}")),
            r.support.to_string(),
        ]);
    }
    out
}

fn write_metrics(out: &std::path::Path, table: &[(String, String, Row)]) -> Result<(), StageError> {
    let err = |e: PolarsError| StageError::Failed(format!("metrics table: {e}"));
    let variants: Vec<(String, Option<u32>)> = table.iter().map(|t| compare::variant_of(&t.0)).collect();
    let mut df = df!(
        "approach" => table.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        "task" => table.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        "class" => table.iter().map(|t| t.2.class.as_str()).collect::<Vec<_>>(),
        "precision" => table.iter().map(|t| t.2.precision).collect::<Vec<_>>(),
        "recall" => table.iter().map(|t| t.2.recall).collect::<Vec<_>>(),
        "f1" => table.iter().map(|t| t.2.f1).collect::<Vec<_>>(),
        "f2" => table.iter().map(|t| t.2.f2).collect::<Vec<_>>(),
        "support" => table.iter().map(|t| t.2.support as u64).collect::<Vec<_>>(),
        "variant" => variants.iter().map(|v| v.0.as_str()).collect::<Vec<_>>(),
        "repeat" => variants.iter().map(|v| v.1).collect::<Vec<_>>(),
    )
    .map_err(err)?;
    let f = fsx::create(out.join("metrics.parquet"))?;
    ParquetWriter::new(f).finish(&mut df).map_err(err)?;
    let f = fsx::create(out.join("metrics.csv"))?;
    CsvWriter::new(f).finish(&mut df).map_err(err)
}

fn write_confusion(path: &std::path::Path, m: &[Vec<usize>], classes: &[String]) -> Result<(), StageError> {
    let mut text = format!("true\\predicted,{}\n", classes.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
    for (c, row) in classes.iter().zip(m) {
        let _ = writeln!(text, "{},{}", csv_field(c), row.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
    }
    Ok(fsx::write(path, text)?)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Approaches that cover only part of their task, with what they cover
/// (`3 of 22 classes`): the two-step scheme's stages alone. Their numbers
/// are not comparable with the complete approaches', so the comparison
/// marks them and puts them last.
pub type Partial = std::collections::BTreeMap<String, String>;

/// Which approaches are partial: those with fewer classes (labels) than the
/// most any approach of the same task has.
pub fn partial_approaches(scored: &[Scored]) -> Partial {
    let multi = |s: &Scored| matches!(s.labels, Labels::Multi { .. });
    let mut out = Partial::new();
    for task in [false, true] {
        let of_task: Vec<&Scored> = scored.iter().filter(|s| multi(s) == task).collect();
        let full = of_task.iter().map(|s| s.classes.len()).max().unwrap_or(0);
        for s in of_task.iter().filter(|s| s.classes.len() < full) {
            let what = if task { "labels" } else { "classes" };
            out.insert(s.name.clone(), format!("partial: {} of {full} {what}", s.classes.len()));
        }
    }
    out
}

/// What the comparison table leaves out or marks, and why (Markdown; empty
/// when nothing is).
pub fn comparison_notes(table: &[(String, String, Row)], scored: &[Scored], partial: &Partial) -> String {
    let mut notes = String::new();
    if !partial.is_empty() {
        notes.push_str(
            "\nPartial approaches (listed last) predict only some of the task's classes, so their numbers are not \
             comparable with the others': the two-step scheme's first stage alone (its classes: the most frequent \
             ones and `other`), or its second stage alone (the rest).\n",
        );
    }
    let short = scored.iter().any(|s| {
        matches!(s.labels, Labels::Single { .. })
            && s.classes.len() <= 5
            && table.iter().any(|(a, _, r)| *a == s.name && r.class == "accuracy")
    });
    if short {
        notes.push_str(
            "\n`-` under top-3 or top-5: the approach has no more classes than k, so every image would be a hit (1.0 by definition).\n",
        );
    }
    notes
}

/// One row per approach with the headline metrics (a Markdown table);
/// partial approaches last, marked.
pub fn comparison_table(table: &[(String, String, Row)], partial: &Partial) -> String {
    let mut approaches: Vec<&str> = Vec::new();
    for (a, _, _) in table {
        if !approaches.contains(&a.as_str()) {
            approaches.push(a);
        }
    }
    approaches.sort_by_key(|a| partial.contains_key(*a));
    let mut md = format!(
        "| approach | {} |\n|---|{}\n",
        HEADLINE.iter().map(|h| h.2).collect::<Vec<_>>().join(" | "),
        "---|".repeat(HEADLINE.len())
    );
    for a in approaches {
        let cells: Vec<String> = HEADLINE
            .iter()
            .map(|(class, column, _)| {
                let row = table.iter().find(|(x, _, r)| x == a && r.class == *class);
                let value = row.and_then(|(_, _, r)| if *column == "f2" { r.f2 } else { Some(r.f1) });
                value.map_or("-".into(), |v| format!("{v:.3}"))
            })
            .collect();
        let shown = partial.get(a).map_or_else(|| a.to_string(), |what| format!("{a} ({what})"));
        let _ = writeln!(md, "| {shown} | {} |", cells.join(" | "));
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

/// The grid table's rows without the measured fit times (they vary from run
/// to run; `cv.csv` in the svm stage's entry keeps them), so the report is
/// the same for the same pipeline and seed.
fn grid_rows(csv: &str) -> Vec<Vec<String>> {
    let header: Vec<&str> = csv.lines().next().unwrap_or_default().split(',').collect();
    let keep: Vec<usize> = (0..header.len()).filter(|&i| header[i] != "mean_fit_seconds").collect();
    csv.lines()
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            keep.iter().map(|&i| cells.get(i).copied().unwrap_or("").to_string()).collect()
        })
        .collect()
}

fn csv_to_markdown(csv: &str) -> String {
    let rows = grid_rows(csv);
    let Some(header) = rows.first() else { return String::new() };
    let mut md = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in &rows[1..] {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
    md
}

#[cfg(test)]
mod tests;
