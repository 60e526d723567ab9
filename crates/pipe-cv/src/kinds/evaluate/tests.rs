#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)
use super::*;
use crate::kinds::testutil;
use pipe_core::data::predictions::PredictionsMeta;
use pipe_core::kinds::evaluate::EVALUATE;

/// The `predictions` input of `evaluate`: one entry per (stage name, folder).
fn inputs_of(stages: &[(&str, &std::path::Path)]) -> std::collections::BTreeMap<String, Vec<pipe_core::kinds::InputArtifact>> {
    let list = stages
        .iter()
        .map(|(name, dir)| pipe_core::kinds::InputArtifact {
            stage: name.to_string(),
            artifact: pipe_core::kinds::ArtifactType::Predictions,
            dir: dir.to_path_buf(),
        })
        .collect();
    std::collections::BTreeMap::from([("predictions".to_string(), list)])
}

/// `correct` of `truth` right, the others one class off.
fn some_right(truth: &[u32], correct: usize) -> Vec<u32> {
    truth.iter().enumerate().map(|(i, &t)| if i < correct { t } else { (t + 1) % 3 }).collect()
}

fn predictions(dir: &std::path::Path, y_true: Vec<u32>, y_pred: Vec<u32>) {
    let n = y_true.len();
    Predictions {
        meta: PredictionsMeta { task: "single".into(), classes: vec!["a".into(), "b".into(), "c".into()] },
        ids: (0..n as u32).collect(),
        sources: (0..n).map(|i| format!("img{i}.png")).collect(),
        y_true,
        y_pred,
        scores: Vec::new(),
    }
    .write(dir)
    .unwrap();
}

#[test]
fn one_long_table_for_every_approach() {
    let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Class c is never predicted by x; y is perfect.
    predictions(x.path(), vec![0, 0, 1, 2], vec![0, 1, 1, 1]);
    predictions(y.path(), vec![0, 0, 1, 2], vec![0, 0, 1, 2]);
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(
        "predictions".to_string(),
        vec![
            pipe_core::kinds::InputArtifact {
                stage: "weak".into(),
                artifact: pipe_core::kinds::ArtifactType::Predictions,
                dir: x.path().into(),
            },
            pipe_core::kinds::InputArtifact {
                stage: "strong".into(),
                artifact: pipe_core::kinds::ArtifactType::Predictions,
                dir: y.path().into(),
            },
        ],
    );
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs, 1);
    let out = run.ok();
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("approach,task,class,precision,recall,f1,f2,support,variant,repeat"));
    assert!(csv.contains("weak,single,c,0.0,0.0,0.0,0.0,1,weak,\n"), "never predicted: zeros\n{csv}");
    assert!(csv.contains("weak,single,accuracy,0.5,0.5,0.5,,4,weak,\n"), "{csv}");
    assert!(csv.contains("strong,single,macro avg,1.0,1.0,1.0,1.0,4,strong,\n"), "{csv}");
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("| weak | 0.500 |") && md.contains("| strong | 1.000 |"), "{md}");
    let confusion = std::fs::read_to_string(out.join("confusion/weak.csv")).unwrap();
    assert_eq!(confusion, "true\\predicted,a,b,c\na,1,1,0\nb,0,1,0\nc,0,1,0\n");
}

#[test]
fn multi_label_approaches_get_f2_rows() {
    use pipe_core::data::predictions::MultiPredictions;
    let dir = tempfile::tempdir().unwrap();
    MultiPredictions {
        meta: PredictionsMeta { task: "multi".into(), classes: vec!["a".into(), "b".into(), "c".into(), "d".into()] },
        ids: (0..4).collect(),
        sources: (0..4).map(|i| format!("img{i}.png")).collect(),
        // The indicator matrices of `metrics::tests::multi_label_matches_scikit_learn`.
        y_true: vec![vec![0, 2], vec![], vec![0, 1], vec![1, 2]],
        y_pred: vec![vec![0], vec![], vec![0, 3], vec![1, 2]],
        scores: vec![vec![0.5; 4]; 4],
    }
    .write(dir.path())
    .unwrap();
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(
        "predictions".to_string(),
        vec![pipe_core::kinds::InputArtifact {
            stage: "tags".into(),
            artifact: pipe_core::kinds::ArtifactType::MultiLabelPredictions,
            dir: dir.path().into(),
        }],
    );
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs, 1);
    let csv = std::fs::read_to_string(run.ok().join("metrics.csv")).unwrap();
    assert!(csv.contains("tags,multi,samples avg,0.625,0.5,"), "{csv}");
    let md = std::fs::read_to_string(run.ok().join("comparison.md")).unwrap();
    assert!(md.contains("| tags | - | 0.583 | 0.778 | 0.727 | - | - | 0.690 | 0.514 |"), "{md}");
}

/// Reads `significance.csv` into (a, b, metric) -> the other columns.
fn significance(out: &std::path::Path) -> Vec<Vec<String>> {
    let csv = std::fs::read_to_string(out.join("significance.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("a,b,metric,difference,ci_low,ci_high,p_value,p_holm,significant"));
    lines.map(|l| l.split(',').map(String::from).collect()).collect()
}

#[test]
fn a_strong_difference_is_marked_and_identical_predictions_are_not() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let truth: Vec<u32> = (0..60).map(|i| i % 3).collect();
    predictions(dirs[0].path(), truth.clone(), some_right(&truth, 20));
    predictions(dirs[1].path(), truth.clone(), truth.clone());
    predictions(dirs[2].path(), truth.clone(), some_right(&truth, 20));
    let inputs = inputs_of(&[("weak", dirs[0].path()), ("strong", dirs[1].path()), ("weak_copy", dirs[2].path())]);
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs, 5);
    let out = run.ok();
    let rows = significance(out);
    let find = |a: &str, b: &str, metric: &str| rows.iter().find(|r| r[0] == a && r[1] == b && r[2] == metric).unwrap().clone();
    assert_eq!(rows.len(), 6, "3 pairs x (accuracy, macro F1)\n{rows:?}");
    // weak - strong: 40 images only the strong one gets right.
    let acc = find("weak", "strong", "accuracy");
    let p: f64 = acc[6].parse().unwrap();
    assert!(p < 1e-10 && acc[8] == "true", "{acc:?}");
    assert_eq!((acc[4].as_str(), acc[5].as_str()), ("", ""), "no interval for McNemar");
    let f1 = find("weak", "strong", "macro F1");
    let (lo, hi): (f64, f64) = (f1[4].parse().unwrap(), f1[5].parse().unwrap());
    assert!(hi < 0.0 && lo < hi && f1[6] == "0" && f1[8] == "true", "{f1:?}");
    // Identical predictions: no discordant image, every resampled difference 0.
    for metric in ["accuracy", "macro F1"] {
        let same = find("weak", "weak_copy", metric);
        assert_eq!((same[3].as_str(), same[6].as_str(), same[7].as_str(), same[8].as_str()), ("0", "1", "1", "false"), "{same:?}");
    }
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("## Significance"), "{md}");
    assert!(md.contains("| weak | strong | accuracy | -0.667* | - | <0.0001 | <0.0001 |"), "{md}");
    assert!(md.contains("| weak | weak_copy | accuracy | +0.000 | - | 1.0000 | 1.0000 |"), "{md}");
    assert!(md.contains("* : significant at 0.05, Holm-adjusted over 6 comparisons."), "{md}");
    assert!(md.find("## Significance") < md.find("## weak"), "after the comparison table, before the class tables");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2>Significance</h2>") && html.contains("<td>-0.667*</td>"), "{html}");
    // Reproducible from the stage seed.
    let again = testutil::run_with_inputs(
        &EVALUATE,
        serde_json::json!({}),
        inputs_of(&[("weak", dirs[0].path()), ("strong", dirs[1].path()), ("weak_copy", dirs[2].path())]),
        5,
    );
    assert_eq!(significance(again.ok()), rows);
}

#[test]
fn approaches_on_other_images_are_not_paired() {
    let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    predictions(x.path(), vec![0, 1, 2, 0], vec![0, 1, 2, 0]);
    predictions(y.path(), vec![0, 1, 2, 1], vec![0, 1, 2, 1]);
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs_of(&[("x", x.path()), ("y", y.path())]), 1);
    assert!(significance(run.ok()).is_empty());
    let md = std::fs::read_to_string(run.ok().join("comparison.md")).unwrap();
    assert!(!md.contains("## Significance") && !md.contains("## Repeats"), "{md}");
}

#[test]
fn repeats_are_summarised_per_variant() {
    use pipe_core::metrics::significance::mean_std_ci95;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let truth: Vec<u32> = (0..30).map(|i| i % 3).collect();
    for (dir, right) in dirs.iter().zip([24, 27, 21, 30]) {
        predictions(dir.path(), truth.clone(), some_right(&truth, right));
    }
    let inputs = inputs_of(&[
        ("cnn[repeat=0]", dirs[0].path()),
        ("cnn[repeat=1]", dirs[1].path()),
        ("cnn[repeat=2]", dirs[2].path()),
        ("svm[words=50,repeat=0]", dirs[3].path()),
    ]);
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs, 1);
    let out = run.ok();
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("## Repeats") && md.contains("| approach | repeats | accuracy | macro F1 | micro F2 |"), "{md}");
    let acc = mean_std_ci95(&[0.8, 0.9, 0.7]);
    let cell = format!("{:.3} ± {:.3} [{:.3}, {:.3}]", acc.mean, acc.std, acc.ci_low, acc.ci_high);
    assert_eq!(cell, "0.800 ± 0.100 [0.552, 1.048]");
    assert!(md.contains(&format!("| cnn | 3 | {cell} | ")), "{md}");
    assert!(md.contains("| svm[words=50] | 1 | 1.000 ± 0.000 [1.000, 1.000] | 1.000 ± 0.000 [1.000, 1.000] | - |"), "{md}");
    assert!(md.find("## Repeats") < md.find("## Significance"), "{md}");
    // Each repeat is still an approach: its own row, and its own pairs.
    assert!(md.contains("| cnn[repeat=1] | 0.900 |"), "{md}");
    assert_eq!(significance(out).len(), 2 * 6, "4 approaches: 6 pairs");
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.contains("cnn[repeat=2],single,accuracy,0.7,0.7,0.7,,30,cnn,2\n"), "{csv}");
    assert!(csv.contains("\"svm[words=50,repeat=0]\",single,accuracy,1.0,1.0,1.0,,30,svm[words=50],0\n"), "{csv}");
    let parquet = pipe_core::fsx::open(out.join("metrics.parquet")).unwrap();
    let df = ParquetReader::new(parquet).finish().unwrap();
    let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["approach", "task", "class", "precision", "recall", "f1", "f2", "support", "variant", "repeat"]);
    assert_eq!(df.column("repeat").unwrap().u32().unwrap().get(0), Some(0));
}

#[test]
fn multi_label_pairs_get_a_micro_f2_bootstrap_only() {
    use pipe_core::data::predictions::MultiPredictions;
    let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let truth: Vec<Vec<u32>> = (0..40).map(|i| vec![i % 3, 3]).collect();
    for (dir, pred) in [(&x, truth.clone()), (&y, truth.iter().map(|t| vec![t[0]]).collect())] {
        MultiPredictions {
            meta: PredictionsMeta { task: "multi".into(), classes: vec!["a".into(), "b".into(), "c".into(), "d".into()] },
            ids: (0..40).collect(),
            sources: (0..40).map(|i| format!("img{i}.png")).collect(),
            y_true: truth.clone(),
            y_pred: pred,
            scores: vec![vec![0.5; 4]; 40],
        }
        .write(dir.path())
        .unwrap();
    }
    let mut inputs = inputs_of(&[("all", x.path()), ("half", y.path())]);
    for input in inputs.get_mut("predictions").unwrap() {
        input.artifact = pipe_core::kinds::ArtifactType::MultiLabelPredictions;
    }
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs, 1);
    let rows = significance(run.ok());
    assert_eq!(rows.len(), 1, "{rows:?}");
    // micro F2: 1.0 against tp 40, fn 40 -> 5 * 40 / (4 * 80 + 40) = 5/9.
    assert_eq!((rows[0][2].as_str(), rows[0][8].as_str()), ("micro F2", "true"));
    assert!((rows[0][3].parse::<f64>().unwrap() - 4.0 / 9.0).abs() < 1e-12, "{rows:?}");
}

#[test]
fn partial_approaches_are_marked_and_last_and_meaningless_top_k_is_left_out() {
    let (full, part) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Six classes with scores: top-3 and top-5 mean something.
    let six: Vec<String> = (0..6).map(|c| format!("k{c}")).collect();
    let scores =
        |n: usize, classes: usize| (0..n).map(|i| (0..classes).map(|c| if c == i % classes { 0.9 } else { 0.02 }).collect()).collect();
    Predictions {
        meta: PredictionsMeta { task: "single".into(), classes: six.clone() },
        ids: (0..12).collect(),
        sources: (0..12).map(|i| format!("img{i}.png")).collect(),
        y_true: (0..12).map(|i| i % 6).collect(),
        y_pred: (0..12).map(|i| i % 6).collect(),
        scores: scores(12, 6),
    }
    .write(full.path())
    .unwrap();
    // A first stage alone: 3 classes, so top-3 and top-5 always hit.
    Predictions {
        meta: PredictionsMeta { task: "single".into(), classes: vec!["k0".into(), "k1".into(), "other".into()] },
        ids: (0..12).collect(),
        sources: (0..12).map(|i| format!("img{i}.png")).collect(),
        y_true: (0..12).map(|i| (i % 6).min(2)).collect(),
        y_pred: (0..12).map(|i| (i % 6).min(2)).collect(),
        scores: scores(12, 3),
    }
    .write(part.path())
    .unwrap();
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs_of(&[("step1", part.path()), ("svm", full.path())]), 1);
    let out = run.ok();
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.contains("svm,single,top-3,") && csv.contains("svm,single,top-5,"), "{csv}");
    assert!(!csv.contains("step1,single,top-3,") && !csv.contains("step1,single,top-5,"), "{csv}");
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| svm") || l.starts_with("| step1")).take(2).collect();
    assert!(rows[0].starts_with("| svm |"), "complete approaches first: {md}");
    assert!(rows[1].starts_with("| step1 (partial: 3 of 6 classes) | 1.000 |") && rows[1].contains("| - | - |"), "{md}");
    assert!(md.contains("Partial approaches (listed last)") && md.contains("1.0 by definition"), "{md}");
}
