use std::collections::BTreeMap;

use super::*;
use crate::keys::Reason;
use crate::record::{StageRecord, StageStatus, Why};

fn stage(name: &str, kind: &str, key: &str, params: serde_json::Value) -> StageRecord {
    StageRecord {
        name: name.into(),
        kind: kind.into(),
        key: key.into(),
        status: StageStatus::Ran,
        seconds: 1.0,
        reason: Why::Changed(vec![Reason::New]),
        error: None,
        threads: 1,
        start: 0.0,
        warnings: Vec::new(),
        inputs: BTreeMap::new(),
        doc: serde_json::json!({"kind": kind, "version": 1, "format": 1, "seed": 1, "params": params, "inputs": {}, "sources": {}}),
        executor: None,
        job_id: None,
        job_overhead: None,
    }
}

fn run(dir: &Path, id: &str, words: i64, metrics: &str) -> RunRef {
    let record = RunRecord {
        overrides: Vec::new(),
        pipeline: "demo".into(),
        run_id: id.into(),
        pipeline_file: "demo.toml".into(),
        started: "2026-11-30T00:00:00Z".into(),
        seconds: 1.0,
        status: "ok".into(),
        cpu_seconds: 0.0,
        cores: 0,
        report: "complete".into(),
        stages: vec![
            stage("data", "load", "k1", serde_json::json!({"image_size": 64})),
            stage("vocab", "cluster", &format!("k{words}"), serde_json::json!({"words": words})),
        ],
    };
    let d = dir.join(id);
    crate::fsx::create_dir_all(&d).unwrap();
    crate::fsx::write(d.join("metrics.csv"), metrics).unwrap();
    RunRef { dir: d, record, via: None }
}

const A: &str = "approach,task,class,precision,recall,f1,f2,support\n\
svm,single,cats,0.5,1.0,0.6667,0.8333,2\n\
svm,single,macro avg,0.5,0.5,0.5,0.5,4\n\
svm,single,accuracy,0.5,0.5,0.5,,4\n";
const B: &str = "approach,task,class,precision,recall,f1,f2,support\n\
svm,single,cats,1.0,1.0,1.0,1.0,2\n\
svm,single,macro avg,0.75,0.75,0.75,0.75,4\n\
svm,single,accuracy,0.75,0.75,0.75,,4\n\
cnn,single,accuracy,0.6,0.6,0.6,,4\n";

#[test]
fn diff_table_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run(dir.path(), "run-a", 100, A), run(dir.path(), "run-b", 200, B));
    let deltas = metric_deltas(&a.dir, &b.dir, false).unwrap();
    let why = why(&a.record, &b.record);
    insta::assert_snapshot!(render(&a, &b, &deltas, &why, &RunSignificance::default(), Format::Table, 0.0005));
}

#[test]
fn diff_csv_and_all_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run(dir.path(), "run-a", 100, A), run(dir.path(), "run-b", 100, A));
    let deltas = metric_deltas(&a.dir, &b.dir, true).unwrap();
    assert!(deltas.iter().any(|d| d.class == "cats"), "--all adds class rows");
    let csv = render(&a, &b, &deltas, &why(&a.record, &b.record), &RunSignificance::default(), Format::Csv, 0.0005);
    insta::assert_snapshot!(csv);
    let table = render(&a, &b, &deltas, &[], &RunSignificance::default(), Format::Table, 0.0005);
    assert!(table.contains("nothing: every stage has the same key"));
}

/// Writes `run/predictions/<approach>.parquet` as `evaluate` leaves it:
/// `n` images of two classes, right on the first `right` of them.
fn predictions(run: &Path, approach: &str, first_id: u32, n: u32, right: u32) {
    use crate::data::predictions::{Predictions, PredictionsMeta};
    let staging = tempfile::tempdir().unwrap();
    let y_true: Vec<u32> = (0..n).map(|i| i % 2).collect();
    let y_pred: Vec<u32> = y_true.iter().enumerate().map(|(i, &t)| if (i as u32) < right { t } else { 1 - t }).collect();
    let scores = y_pred.iter().map(|&p| if p == 0 { vec![0.9, 0.1] } else { vec![0.1, 0.9] }).collect();
    let meta = PredictionsMeta { task: "single".into(), classes: vec!["cats".into(), "dogs".into()] };
    let ids = (first_id..first_id + n).collect();
    let sources = (0..n).map(|i| format!("img{i}.png")).collect();
    Predictions { meta, ids, sources, y_true, y_pred, scores }.write(staging.path()).unwrap();
    crate::fsx::create_dir_all(run.join("predictions")).unwrap();
    crate::fsx::copy(staging.path().join("predictions.parquet"), run.join("predictions").join(format!("{approach}.parquet"))).unwrap();
}

#[test]
fn the_same_approach_on_the_same_images_is_tested_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run(dir.path(), "run-a", 100, A), run(dir.path(), "run-b", 200, B));
    predictions(&a.dir, "svm", 0, 200, 120); // 60% right
    predictions(&b.dir, "svm", 0, 200, 190); // 95% right
    predictions(&a.dir, "cnn", 0, 200, 150);
    predictions(&b.dir, "cnn", 0, 200, 150); // the same predictions
    predictions(&a.dir, "hog", 0, 200, 150);
    predictions(&b.dir, "hog", 0, 180, 150); // another test split
    let s = crate::report::significance::between(&a.dir, &b.dir);
    let find = |approach: &str, metric: &str| s.rows.iter().find(|c| c.a == approach && c.metric == metric).unwrap().clone();
    let svm = find("svm", "accuracy");
    assert!((svm.difference - (0.60 - 0.95)).abs() < 1e-12 && svm.significant(), "{svm:?}");
    assert!(find("svm", "macro F1").significant());
    let cnn = find("cnn", "accuracy");
    assert_eq!((cnn.p_value, cnn.significant()), (1.0, false));
    assert_eq!(s.untested, [("hog".to_string(), "the test sets differ (200 vs 180 images)".to_string())]);
    let text = render(&a, &b, &metric_deltas(&a.dir, &b.dir, false).unwrap(), &[], &s, Format::Table, 0.0005);
    assert!(text.contains("Holm-adjusted over 4 tests"), "{text}");
    assert!(text.contains("not tested: hog: the test sets differ (200 vs 180 images); compare the deltas only"), "{text}");
    let svm_line = text.lines().find(|l| l.starts_with("svm ") && l.contains("accuracy") && l.contains("yes")).unwrap();
    assert!(svm_line.contains("+0.3500"), "B - A: {svm_line}");
}

#[test]
fn a_prediction_with_an_unknown_label_or_an_unreadable_file_is_a_named_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run(dir.path(), "run-a", 100, A), run(dir.path(), "run-b", 200, B));
    predictions(&a.dir, "svm", 0, 20, 10);
    predictions(&b.dir, "svm", 0, 20, 10);
    predictions(&a.dir, "cnn", 0, 20, 10);
    predictions(&b.dir, "cnn", 0, 20, 10);
    // B's cnn names a class its score columns do not have.
    let path = b.dir.join("predictions/cnn.parquet");
    let mut df = ParquetReader::new(crate::fsx::open(&path).unwrap()).finish().unwrap();
    let renamed: Vec<&str> = df
        .column("y_pred")
        .unwrap()
        .str()
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i == 3 { "wolves" } else { v.unwrap() })
        .collect();
    df.replace("y_pred", Column::new("y_pred".into(), renamed)).unwrap();
    ParquetWriter::new(crate::fsx::create(&path).unwrap()).finish(&mut df).unwrap();
    let s = crate::report::significance::between(&a.dir, &b.dir);
    assert_eq!(s.rows.iter().filter(|c| c.a == "svm").count(), 2, "svm is tested");
    assert_eq!(s.untested.len(), 1, "{:?}", s.untested);
    assert_eq!(s.untested[0].0, "cnn");
    assert!(s.untested[0].1.contains("row 3: `y_pred` is `wolves`, not one of its classes"), "{}", s.untested[0].1);
}
