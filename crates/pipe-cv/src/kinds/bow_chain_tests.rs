//! The bag-of-words chain on synthetic images whose classes differ in
//! texture: extract -> cluster -> encode -> svm, each stage run on the
//! previous one's output folder.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use super::testutil::{self, Run, defaults, with};
use pipe_core::data::bow::read_f32;
use pipe_core::data::predictions::Predictions;
use pipe_core::kinds::{cluster::CLUSTER, encode::ENCODE, extract::EXTRACT, load::LOAD, svm::SVM};

fn images(seed: u64) -> Run {
    let p = with(with(with(defaults(&LOAD), "dataset", "synthetic"), "images", 240), "image_size", 64);
    testutil::run(&LOAD, p, &[], seed)
}

fn features(images: &Run) -> Run {
    testutil::run(&EXTRACT, with(defaults(&EXTRACT), "threshold", 0.0001), &[("images", images.ok())], 1)
}

fn vocabulary(features: &Run, words: i64, seed: u64) -> Run {
    testutil::run(&CLUSTER, with(defaults(&CLUSTER), "words", words), &[("features", features.ok())], seed)
}

#[test]
fn bow_and_svm_beat_chance_by_a_wide_margin() {
    let imgs = images(3);
    let feats = features(&imgs);
    let vocab = vocabulary(&feats, 40, 1);
    let hist = testutil::run(&ENCODE, defaults(&ENCODE), &[("features", feats.ok()), ("vocabulary", vocab.ok())], 1);
    let grid = with(with(with(defaults(&SVM), "c", serde_json::json!([1.0, 10.0])), "gamma", serde_json::json!([1.0, 10.0])), "folds", 3);
    let svm = testutil::run(&SVM, grid, &[("features", hist.ok())], 1);
    let p = Predictions::read(svm.ok()).unwrap();
    let correct = p.y_true.iter().zip(&p.y_pred).filter(|(t, y)| t == y).count() as f64 / p.y_true.len() as f64;
    let mut counts = std::collections::BTreeMap::new();
    p.y_true.iter().for_each(|t| *counts.entry(t).or_insert(0) += 1);
    let majority = *counts.values().max().unwrap() as f64 / p.y_true.len() as f64;
    assert!(correct > majority + 0.25, "accuracy {correct:.2} vs majority class {majority:.2}");
    assert_eq!(p.scores.len(), p.y_true.len());
    let cv = std::fs::read_to_string(svm.out.path().join("cv.csv")).unwrap();
    assert_eq!(cv.lines().count(), 5, "header + 4 grid points:\n{cv}");
    assert_eq!(cv.lines().filter(|l| l.ends_with(",true")).count(), 1);
    // tf-idf and brute force encode too, to unit-length rows.
    let tf = testutil::run(
        &ENCODE,
        with(with(defaults(&ENCODE), "normalization", "tfidf"), "matcher", "brute"),
        &[("features", feats.ok()), ("vocabulary", vocab.ok())],
        1,
    );
    let rows = read_f32(&tf.out.path().join("histograms.f32")).unwrap();
    let first: f32 = rows[..40].iter().map(|v| v * v).sum();
    assert!(first == 0.0 || (first - 1.0).abs() < 1e-4);
}

#[test]
fn kmeans_is_deterministic_per_seed() {
    let feats = features(&images(5));
    let a = read_f32(&vocabulary(&feats, 20, 1).out.path().join("vocabulary.f32")).unwrap();
    let b = read_f32(&vocabulary(&feats, 20, 1).out.path().join("vocabulary.f32")).unwrap();
    let c = read_f32(&vocabulary(&feats, 20, 2).out.path().join("vocabulary.f32")).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn more_words_than_descriptors_is_a_clear_error() {
    let feats = features(&images(5));
    let err = vocabulary(&feats, 90_000, 1).error();
    assert!(err.starts_with("words = 90000 is more than the") && err.contains("lower `words`"), "{err}");
}

#[test]
fn classes_smaller_than_folds_get_a_warning_not_a_crash() {
    let imgs = images(7);
    let feats = features(&imgs);
    let vocab = vocabulary(&feats, 20, 1);
    let hist =
        testutil::run(&ENCODE, with(defaults(&ENCODE), "matcher", "brute"), &[("features", feats.ok()), ("vocabulary", vocab.ok())], 1);
    let svm = testutil::run(
        &SVM,
        with(with(with(defaults(&SVM), "folds", 20), "c", serde_json::json!([1.0, 10.0])), "gamma", serde_json::json!([10.0])),
        &[("features", hist.ok())],
        1,
    );
    svm.ok();
    assert!(svm.warnings.iter().any(|w| w.starts_with("classes with fewer training images than folds = 20")), "{:?}", svm.warnings);
}
