#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)
use super::*;
use crate::kinds::testutil;
use pipe_core::data::predictions::PredictionsMeta;
use pipe_core::stages::evaluate::EVALUATE;

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
            pipe_core::stages::InputArtifact {
                stage: "weak".into(),
                artifact: pipe_core::stages::ArtifactType::Predictions,
                dir: x.path().into(),
            },
            pipe_core::stages::InputArtifact {
                stage: "strong".into(),
                artifact: pipe_core::stages::ArtifactType::Predictions,
                dir: y.path().into(),
            },
        ],
    );
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs, 1);
    let out = run.ok();
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("approach,task,class,precision,recall,f1,f2,support"));
    assert!(csv.contains("weak,single,c,0.0,0.0,0.0,0.0,1\n"), "never predicted: zeros\n{csv}");
    assert!(csv.contains("weak,single,accuracy,0.5,0.5,0.5,,4\n"), "{csv}");
    assert!(csv.contains("strong,single,macro avg,1.0,1.0,1.0,1.0,4\n"), "{csv}");
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
        vec![pipe_core::stages::InputArtifact {
            stage: "tags".into(),
            artifact: pipe_core::stages::ArtifactType::MultiLabelPredictions,
            dir: dir.path().into(),
        }],
    );
    let run = testutil::run_with_inputs(&EVALUATE, serde_json::json!({}), inputs, 1);
    let csv = std::fs::read_to_string(run.ok().join("metrics.csv")).unwrap();
    assert!(csv.contains("tags,multi,samples avg,0.625,0.5,"), "{csv}");
    let md = std::fs::read_to_string(run.ok().join("comparison.md")).unwrap();
    assert!(md.contains("| tags | - | 0.583 | 0.778 | 0.727 | - | - | 0.690 | 0.514 |"), "{md}");
}
