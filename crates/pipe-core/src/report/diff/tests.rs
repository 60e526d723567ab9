use std::collections::BTreeMap;

use super::*;
use crate::graph::keys::Reason;
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
    }
}

fn run(dir: &Path, id: &str, words: i64, metrics: &str) -> RunRef {
    let record = RunRecord {
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
    insta::assert_snapshot!(render(&a, &b, &deltas, &why, Format::Table, 0.0005));
}

#[test]
fn diff_csv_and_all_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run(dir.path(), "run-a", 100, A), run(dir.path(), "run-b", 100, A));
    let deltas = metric_deltas(&a.dir, &b.dir, true).unwrap();
    assert!(deltas.iter().any(|d| d.class == "cats"), "--all adds class rows");
    let csv = render(&a, &b, &deltas, &why(&a.record, &b.record), Format::Csv, 0.0005);
    insta::assert_snapshot!(csv);
    let table = render(&a, &b, &deltas, &[], Format::Table, 0.0005);
    assert!(table.contains("nothing: every stage has the same key"));
}
