//! The kernel-sum chain on synthetic images (classes differ in texture and
//! hue): hog + colour -> svm with both inputs, and -> multilabel-svm on the
//! images' keyword sets, each stage run on the previous one's output folder.
#![allow(clippy::disallowed_methods)] // std::fs in test assertions

use std::collections::BTreeMap;

use super::testutil::{self, Run, defaults, with};
use pipe_core::data::predictions::{MultiPredictions, Predictions};
use pipe_core::kinds::{
    ArtifactType, InputArtifact, KindDef, colour::COLOUR, hog::HOG, lbp::LBP, load::LOAD, multilabel_svm::MULTILABEL_SVM, svm::SVM,
};
use pipe_core::metrics::{Average, multi_label_f2};

fn images(count: i64, seed: u64) -> Run {
    let p = with(with(with(with(defaults(&LOAD), "dataset", "synthetic"), "images", count), "image_size", 32), "min_label_count", 5);
    testutil::run(&LOAD, with(p, "validation_fraction", 0.2), &[], seed)
}

/// Runs `kind` with `features` bound to the given stages' outputs, in order.
fn with_features(kind: &'static KindDef, params: serde_json::Value, features: &[(&str, &Run)]) -> Run {
    let bound = features
        .iter()
        .map(|(stage, run)| InputArtifact { stage: stage.to_string(), artifact: ArtifactType::Histograms, dir: run.ok().to_path_buf() })
        .collect();
    testutil::run_with_inputs(kind, params, BTreeMap::from([("features".to_string(), bound)]), 1)
}

fn hog_and_colour(images: &Run) -> (Run, Run) {
    (
        testutil::run(&HOG, defaults(&HOG), &[("images", images.ok())], 1),
        testutil::run(&COLOUR, defaults(&COLOUR), &[("images", images.ok())], 1),
    )
}

fn accuracy(p: &Predictions) -> f64 {
    p.y_true.iter().zip(&p.y_pred).filter(|(t, y)| t == y).count() as f64 / p.y_true.len() as f64
}

#[test]
fn two_inputs_sum_their_kernels_and_beat_chance() {
    let imgs = images(240, 3);
    let (hog, colour) = hog_and_colour(&imgs);
    let one_point =
        with(with(with(defaults(&SVM), "gamma_unit", "scale"), "c", serde_json::json!([10.0])), "gamma", serde_json::json!([1.0]));
    let both = with_features(&SVM, one_point.clone(), &[("hog", &hog), ("colour", &colour)]);
    let p = Predictions::read(both.ok()).unwrap();
    let mut counts = BTreeMap::new();
    p.y_true.iter().for_each(|t| *counts.entry(t).or_insert(0) += 1);
    let majority = *counts.values().max().unwrap() as f64 / p.y_true.len() as f64;
    assert!(accuracy(&p) > majority + 0.3, "accuracy {:.2} against the majority class's {majority:.2}", accuracy(&p));
    let cv = std::fs::read_to_string(both.ok().join("cv.csv")).unwrap();
    assert_eq!(cv.lines().nth(1), Some("rbf,10,1,,,,1,true"), "a one-point grid is not cross-validated:\n{cv}");
    assert!(both.log.iter().any(|l| l.contains("gamma = 1 is hog") && l.contains("colour")), "{:?}", both.log);

    let grid = with(with(with(one_point, "c", serde_json::json!([1.0, 10.0])), "folds", 3), "gamma", serde_json::json!([0.5, 1.0]));
    let searched = with_features(&SVM, grid, &[("hog", &hog), ("colour", &colour)]);
    let cv = std::fs::read_to_string(searched.ok().join("cv.csv")).unwrap();
    assert_eq!(cv.lines().count(), 5, "header + 4 grid points:\n{cv}");
    assert_eq!(cv.lines().filter(|l| l.ends_with(",true")).count(), 1);
    let scores = |line: &str| line.split(',').nth(3).map(str::to_string);
    assert!(cv.lines().skip(1).all(|l| scores(l).is_some_and(|s| !s.is_empty())), "every point cross-validated:\n{cv}");
}

#[test]
fn inputs_must_describe_the_same_images_and_use_the_rbf_kernel_and_the_smo() {
    let (a, b) = (images(120, 3), images(100, 3));
    let (hog_a, _) = hog_and_colour(&a);
    let (_, colour_b) = hog_and_colour(&b);
    let err = with_features(&SVM, defaults(&SVM), &[("hog", &hog_a), ("colour", &colour_b)]).error();
    assert!(
        err.contains(
            "`hog` and `colour` describe different images (120 and 100 rows): list feature stages that read the same images stage"
        ),
        "{err}"
    );
    let (hog, colour) = hog_and_colour(&a);
    let err = with_features(&SVM, with(defaults(&SVM), "kernel", "linear"), &[("hog", &hog), ("colour", &colour)]).error();
    assert!(err.contains("kernel = \"linear\": 2 inputs are combined by summing RBF kernels; use kernel = \"rbf\""), "{err}");
    let err = with_features(&SVM, with(defaults(&SVM), "solver", "opencv"), &[("hog", &hog), ("colour", &colour)]).error();
    assert!(err.contains("2 inputs with solver = \"opencv\": OpenCV takes one input"), "{err}");
}

#[test]
fn multilabel_svm_predicts_keyword_sets_far_better_than_all_labels() {
    let imgs = images(240, 5);
    let (hog, colour) = hog_and_colour(&imgs);
    let run = with_features(&MULTILABEL_SVM, defaults(&MULTILABEL_SVM), &[("hog", &hog), ("colour", &colour)]);
    let p = MultiPredictions::read(run.ok()).unwrap();
    let n = p.meta.classes.len();
    let as_usize = |sets: &[Vec<u32>]| sets.iter().map(|s| s.iter().map(|&l| l as usize).collect()).collect::<Vec<Vec<usize>>>();
    let truth = as_usize(&p.y_true);
    let f2 = multi_label_f2(&truth, &as_usize(&p.y_pred), n, Average::Micro);
    let everything = multi_label_f2(&truth, &vec![(0..n).collect(); truth.len()], n, Average::Micro);
    assert!(f2 > everything + 0.2, "micro F2 {f2:.3} against {everything:.3} for predicting every label");
    assert!(p.scores.iter().flatten().all(|s| (0.0..=1.0).contains(s)), "scores are logistic");
    let thresholds = std::fs::read_to_string(run.ok().join("thresholds.csv")).unwrap();
    assert_eq!(thresholds.lines().count(), n + 1, "{thresholds}");
    assert!(run.log.iter().any(|l| l.starts_with("validation F2 (micro average)")), "{:?}", run.log);
}

#[test]
fn lbp_texture_is_a_third_input() {
    let imgs = images(240, 3);
    let (hog, colour) = hog_and_colour(&imgs);
    let lbp = testutil::run(&LBP, defaults(&LBP), &[("images", imgs.ok())], 1);
    let meta = std::fs::read_to_string(lbp.ok().join("histograms.json")).unwrap();
    assert!(meta.contains("\"words\": 295"), "{meta}");
    let params = with(with(with(defaults(&SVM), "gamma_unit", "scale"), "c", serde_json::json!([10.0])), "gamma", serde_json::json!([1.0]));
    let three = with_features(&SVM, params, &[("hog", &hog), ("colour", &colour), ("lbp", &lbp)]);
    assert!(accuracy(&Predictions::read(three.ok()).unwrap()) > 0.5);
    assert!(three.log.iter().any(|l| l.contains("lbp ")), "each input's unit is logged: {:?}", three.log);
}

/// What the README says: the SMO and OpenCV's libsvm make the same
/// predictions (measured on the default data, 2026-12-05: 1,360 of 1,360
/// test images, `svm_hog`); here, on every test image of this set too.
#[test]
fn one_input_through_the_smo_makes_opencvs_predictions() {
    let imgs = images(240, 3);
    let (hog, _) = hog_and_colour(&imgs);
    let params = with(with(defaults(&SVM), "c", serde_json::json!([10.0])), "gamma", serde_json::json!([0.03]));
    let opencv = Predictions::read(with_features(&SVM, params.clone(), &[("hog", &hog)]).ok()).unwrap();
    let smo = Predictions::read(with_features(&SVM, with(params, "solver", "smo"), &[("hog", &hog)]).ok()).unwrap();
    let same = opencv.y_pred.iter().zip(&smo.y_pred).filter(|(a, b)| a == b).count();
    assert_eq!(same, opencv.y_pred.len(), "{same} of {} predictions agree", opencv.y_pred.len());
}
