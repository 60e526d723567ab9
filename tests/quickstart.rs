//! The quickstart pipeline end to end through the binaries: cold, fully
//! cached, after a one-parameter edit, and reproducible in a fresh cache.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;
use common::statuses;
use pipe_core::report::provenance;

fn pipeline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml")
}

fn run(dir: &Path, file: &Path) -> Value {
    run_with(dir, file, &[])
}

fn run_with(dir: &Path, file: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe")).arg("run").arg(file).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&std::fs::read(dir.join("reports/quickstart/latest/summary.json")).unwrap()).unwrap()
}

fn reason<'a>(record: &'a Value, stage: &str) -> &'a str {
    record["stages"].as_array().unwrap().iter().find(|s| s["name"] == stage).unwrap()["reason"].as_str().unwrap()
}

/// Every output file of every stage, by stage name and relative path.
fn outputs(dir: &Path, record: &Value) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, at: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
        let mut items: Vec<_> = std::fs::read_dir(at).unwrap().flatten().map(|e| e.path()).collect();
        items.sort();
        for f in items {
            if f.is_dir() {
                walk(base, &f, prefix, out);
            } else {
                let rel = f.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.push((format!("{prefix}/{rel}"), std::fs::read(&f).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    for s in record["stages"].as_array().unwrap() {
        let key = s["key"].as_str().unwrap();
        let entry = dir.join("cache/entries").join(&key[..2]).join(key).join("out");
        walk(&entry, &entry, s["name"].as_str().unwrap(), &mut out);
    }
    out
}

/// A CSV without its measured-time column (`mean_fit_seconds`, `seconds`),
/// if it has one.
fn without_times(csv: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(csv);
    let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    let Some(col) = header.iter().position(|h| *h == "mean_fit_seconds" || *h == "seconds") else {
        return text.lines().map(str::to_string).collect();
    };
    text.lines().map(|l| l.split(',').enumerate().filter(|(i, _)| *i != col).map(|(_, v)| v).collect::<Vec<_>>().join(",")).collect()
}

#[test]
fn quickstart_cold_cached_edited_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    // One slot: every stage is granted one thread.
    let cold = run_with(dir.path(), &pipeline(), &["--jobs", "1"]);
    let names = [
        "augmented",
        "bow",
        "cnn",
        "colour",
        "compare",
        "data",
        "hog",
        "kaze",
        "lbp",
        "step1",
        "step2",
        "svm",
        "svm_hcl",
        "tags",
        "tags_svm",
        "vocab",
        "vote",
    ];
    assert_eq!(statuses(&cold), names.map(|n| format!("{n}=ran")));
    let files = outputs(dir.path(), &cold);
    for expected in [
        "data/index.parquet",
        "augmented/preview.png",
        "svm/predictions.csv",
        "svm/cv.csv",
        "cnn/history.csv",
        "cnn/model.safetensors",
        "step2/combined",
        "step2/stage2/predictions.csv",
        "tags/predictions.csv",
        "tags/thresholds.csv",
        "tags/history.csv",
        "hog/histograms.f32",
        "colour/histograms.f32",
        "lbp/histograms.f32",
        "svm_hcl/predictions.csv",
        "vote/predictions.csv",
        "tags_svm/predictions.csv",
    ] {
        assert!(files.iter().any(|(n, _)| n == expected), "{expected} is written");
    }

    documented_artifacts_are_what_the_stages_write(&cold, &files);

    let report = |d: &Path| -> Vec<Vec<u8>> {
        [
            "metrics.csv",
            "metrics.parquet",
            "comparison.md",
            "report.html",
            "plots/confusion_svm_counts.png",
            "predictions/svm.csv",
            "predictions/step2-combined.csv",
            "predictions/step2-stage2.csv",
            "predictions/svm.parquet",
            "predictions/tags.csv",
            "predictions/tags.parquet",
            "plots/curves_tags_f2.png",
            "training/cnn.csv",
            "training/tags.csv",
        ]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(d.join("reports/quickstart/latest").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            // The page's provenance section is the run's own (statuses, seconds).
            if *f == "report.html" { provenance::strip(&String::from_utf8(bytes).unwrap()).into_bytes() } else { bytes }
        })
        .collect()
    };
    let cold_report = report(dir.path());
    let page = std::fs::read_to_string(dir.path().join("reports/quickstart/latest/report.html")).unwrap();
    let section = &page[page.find(provenance::START).expect("the run's provenance is on the page")..];
    for expected in ["<h2>Provenance</h2>", "blake3 <code>", "<td>svm</td><td>svm</td><td><code>", "<td>ran</td>", "folds = 3"] {
        assert!(section.contains(expected), "the provenance section has {expected}");
    }
    let entry_page = files.iter().find(|(n, _)| n == "compare/report.html").unwrap();
    assert_eq!(provenance::strip(&page).as_bytes(), &entry_page.1[..], "the rest of the page is the cache entry's");
    exports_parse_without_hints(&dir.path().join("reports/quickstart/latest"), &files);
    let warm = run(dir.path(), &pipeline());
    assert_eq!(report(dir.path()), cold_report, "a cached run writes a byte-identical report");
    assert_eq!(statuses(&warm), names.map(|n| format!("{n}=cached")));
    assert_eq!(outputs(dir.path(), &warm), files);

    let edited = dir.path().join("edited.toml");
    std::fs::write(&edited, std::fs::read_to_string(pipeline()).unwrap().replace("rotate = 20", "rotate = 10")).unwrap();
    let after = run(dir.path(), &edited);
    let expected = names.map(|n| format!("{n}={}", if ["augmented", "cnn", "vote", "compare"].contains(&n) { "ran" } else { "cached" }));
    assert_eq!(statuses(&after), expected, "exactly the edited stage and what reads it re-run");
    assert_eq!(reason(&after, "augmented"), "params.rotate 20.0 → 10.0");
    assert_eq!(
        reason(&after, "compare"),
        "input augmented changed (images); input cnn changed (predictions); input vote changed (predictions)"
    );

    // --stage: only what the target needs, and no report for the rest.
    let only =
        Command::new(env!("CARGO_BIN_EXE_pipe")).args(["run", "--stage", "data"]).arg(pipeline()).current_dir(dir.path()).output().unwrap();
    assert!(only.status.success(), "{}", String::from_utf8_lossy(&only.stderr));

    // Same pipeline and seed, another cache, each stage alone with two
    // slots (so every parallel kind is granted two threads): byte-identical
    // outputs (see `same_outputs`). One key, one result.
    let other = tempfile::tempdir().unwrap();
    for stage in [
        "data",
        "augmented",
        "kaze",
        "vocab",
        "bow",
        "svm",
        "cnn",
        "step1",
        "step2",
        "tags",
        "hog",
        "colour",
        "lbp",
        "svm_hcl",
        "vote",
        "tags_svm",
        "compare",
    ] {
        let alone = run_with(other.path(), &pipeline(), &["--jobs", "2", "--stage", stage]);
        let ran: Vec<String> = statuses(&alone).into_iter().filter(|s| s.ends_with("=ran")).collect();
        assert_eq!(ran, [format!("{stage}=ran")], "{stage} ran alone");
        let record = alone["stages"].as_array().unwrap().iter().find(|s| s["name"] == stage).unwrap().clone();
        let expected = match record["kind"].as_str().unwrap() {
            "evaluate" | "ensemble" => 1,                    // single-threaded
            "cnn-stage1" | "cnn-stage2" | "multilabel" => 1, // the key's `threads`
            _ => 2,
        };
        assert_eq!(record["threads"], expected, "{stage}: threads granted");
    }
    let again = run(other.path(), &pipeline());
    same_outputs(&outputs(other.path(), &again), &files, "each stage alone on two slots");
    // A third fresh cache, all stages at once on four slots: stages run side
    // by side, and the elastic ones are lent the slots that others free.
    let lent = tempfile::tempdir().unwrap();
    let together = run_with(lent.path(), &pipeline(), &["--jobs", "4"]);
    same_outputs(&outputs(lent.path(), &together), &files, "every stage at once on four slots");
}

/// Two runs' outputs are the same files, byte for byte, but for the
/// measured times in the SVMs' grid tables and the training histories (and
/// evaluate's copies of them, `training/`).
fn same_outputs(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "{what}: the same files");
    let differing: Vec<&String> = a
        .iter()
        .zip(b)
        .filter(|((name, x), (_, y))| {
            if name.ends_with("/cv.csv") || name.ends_with("/history.csv") || name.starts_with("compare/training/") {
                without_times(x) != without_times(y)
            } else {
                x != y
            }
        })
        .map(|((name, _), _)| name)
        .collect();
    assert!(differing.is_empty(), "{what}: differ from the first run: {differing:?}");
}

/// The report's exports read with a reader's defaults (no schema, no
/// separators given): `metrics.parquet` with numeric metrics, each CNN's
/// `training/<approach>.csv` (its stage's `history.csv`) with numeric
/// columns, and the multi-label predictions, whose label sets are lists in
/// the Parquet and `|`-joined names in the CSV that split back into them.
fn exports_parse_without_hints(report: &Path, files: &[(String, Vec<u8>)]) {
    use polars::prelude::*;
    let parquet = |f: &str| ParquetReader::new(std::fs::File::open(report.join(f)).unwrap()).finish().unwrap();
    let csv = |f: &str| {
        CsvReadOptions::default()
            .try_into_reader_with_file_path(Some(report.join(f)))
            .unwrap()
            .finish()
            .unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let dtypes = |df: &DataFrame| df.columns().iter().map(|c| (c.name().to_string(), c.dtype().clone())).collect::<Vec<_>>();

    let metrics = parquet("metrics.parquet");
    for c in ["precision", "recall", "f1", "f2"] {
        assert_eq!(metrics.column(c).unwrap().dtype(), &DataType::Float64, "metrics.parquet {c}");
    }
    assert_eq!(metrics.column("support").unwrap().dtype(), &DataType::UInt64);
    assert_eq!(metrics.column("approach").unwrap().dtype(), &DataType::String);
    assert!(metrics.height() > 20, "{}", metrics.height());

    let numbers = |what: &[&str]| -> Vec<(String, DataType)> {
        what.iter().map(|c| (c.to_string(), if *c == "epoch" { DataType::Int64 } else { DataType::Float64 })).collect()
    };
    let cnn = csv("training/cnn.csv");
    assert_eq!(dtypes(&cnn), numbers(&["epoch", "train_loss", "val_loss", "val_accuracy", "val_top3", "val_top5", "seconds"]));
    let tags = csv("training/tags.csv");
    assert_eq!(dtypes(&tags), numbers(&["epoch", "train_loss", "val_loss", "val_f2", "val_threshold", "seconds"]));
    assert!(cnn.height() >= 1 && tags.height() >= 1);
    for approach in ["cnn", "tags"] {
        let history = &files.iter().find(|(n, _)| *n == format!("{approach}/history.csv")).unwrap().1;
        assert_eq!(&std::fs::read(report.join(format!("training/{approach}.csv"))).unwrap(), history, "{approach}: the stage's history");
    }

    let lists = parquet("predictions/tags.parquet");
    assert_eq!(lists.column("y_true").unwrap().dtype(), &DataType::List(Box::new(DataType::String)));
    assert_eq!(lists.column("y_pred").unwrap().dtype(), &DataType::List(Box::new(DataType::String)));
    assert_eq!(lists.column("y_true_ids").unwrap().dtype(), &DataType::List(Box::new(DataType::UInt32)));
    let vocabulary: Vec<String> = lists.get_column_names().iter().filter_map(|c| c.strip_prefix("score_")).map(str::to_string).collect();
    let joined = csv("predictions/tags.csv");
    assert_eq!(joined.height(), lists.height());
    for column in ["y_true", "y_pred"] {
        let from_parquet: Vec<Vec<String>> = lists
            .column(column)
            .unwrap()
            .list()
            .unwrap()
            .into_iter()
            .map(|s| s.unwrap().str().unwrap().into_no_null_iter().map(str::to_string).collect())
            .collect();
        let from_csv: Vec<Vec<String>> = joined
            .column(column)
            .unwrap()
            .str()
            .unwrap()
            .into_iter()
            .map(|v| v.unwrap_or_default().split('|').filter(|l| !l.is_empty()).map(str::to_string).collect())
            .collect();
        assert_eq!(from_csv, from_parquet, "{column}: the CSV's `|` form splits into the Parquet's lists");
        assert!(from_parquet.iter().flatten().all(|l| vocabulary.contains(l)), "{column}: every name is a label");
        assert!(from_parquet.iter().any(|s| s.len() > 1), "{column}: some sets hold several labels");
    }
}

/// Every pipeline shipped in `pipelines/` passes `pipe check` (the paper's
/// configuration included, whose data is not on this machine).
#[test]
fn every_shipped_pipeline_passes_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension() == Some("toml".as_ref())).collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let out = Command::new(env!("CARGO_BIN_EXE_pipe")).arg("check").arg(&file).output().unwrap();
        assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// docs/artifacts.md: per artifact type (its `## word` section), each listed
/// file and, for a CSV, its leading columns.
fn documented_artifacts() -> std::collections::BTreeMap<String, Vec<(String, Vec<String>)>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/artifacts.md")).unwrap();
    let ticked = |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    let mut out = std::collections::BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        if let Some(word) = line.strip_prefix("## ") {
            section = Some(word.trim().to_string());
            out.insert(word.trim().to_string(), Vec::new());
        } else if let (Some(word), Some(item)) = (&section, line.strip_prefix("- `")) {
            let (file, rest) = item.split_once('`').unwrap();
            let columns = rest.split_once("columns ").map(|(_, c)| ticked(c.split(" — ").next().unwrap())).unwrap_or_default();
            out.get_mut(word).unwrap().push((file.to_string(), columns));
        }
    }
    out
}

/// Every artifact type has its section, and every folder the quickstart
/// wrote has the files (and CSV columns) its type's section lists.
fn documented_artifacts_are_what_the_stages_write(record: &Value, files: &[(String, Vec<u8>)]) {
    let docs = documented_artifacts();
    for k in pipe_core::kinds::registry().iter().filter(|k| !k.name.starts_with("test-")) {
        assert!(docs.contains_key(&k.output.word()), "docs/artifacts.md has no `## {}` section", k.output.word());
    }
    for t in pipe_core::kinds::command::PRODUCIBLE {
        assert!(docs.contains_key(&t.word()), "docs/artifacts.md has no `## {}` section", t.word());
    }
    let mut checked = std::collections::BTreeSet::new();
    for s in record["stages"].as_array().unwrap() {
        let (name, kind) = (s["name"].as_str().unwrap(), s["kind"].as_str().unwrap());
        let word = pipe_core::kinds::kind(kind).unwrap().output.word();
        for (file, columns) in &docs[&word] {
            let (_, bytes) = files
                .iter()
                .find(|(n, _)| *n == format!("{name}/{file}"))
                .unwrap_or_else(|| panic!("docs/artifacts.md: {word} has `{file}`, but `{name}` ({kind}) wrote none"));
            if !columns.is_empty() {
                let header: Vec<String> = String::from_utf8_lossy(bytes).lines().next().unwrap().split(',').map(str::to_string).collect();
                assert!(
                    header.starts_with(columns),
                    "docs/artifacts.md: {word}'s `{file}` columns {columns:?}, but `{name}` wrote {header:?}"
                );
            }
            checked.insert(word.clone());
        }
    }
    for word in ["images", "features", "vocabulary", "histograms", "predictions", "multi-label-predictions", "metrics"] {
        assert!(checked.contains(word), "the quickstart checks the `{word}` section");
    }
}
