//! `pipe predict` end to end: every approach of the quickstart, applied to
//! its own test images written out as PNG files, reproduces the run's test
//! predictions exactly (classes, labels and scores, bit for bit); a broken
//! file is named and the rest classified; an approach that is not trained
//! is a clear error that says which command trains it.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{Project, stage_of, text};
use pipe_core::data::dataset::Dataset;
use pipe_core::data::predictions::{MultiPredictions, Predictions};
use pipe_core::data::testpng;

fn quickstart() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml")).unwrap()
}

fn entry(p: &Project, record: &serde_json::Value, stage: &str) -> std::path::PathBuf {
    let key = stage_of(record, stage)["key"].as_str().unwrap();
    p.path().join("cache/entries").join(&key[..2]).join(key).join("out")
}

/// Writes the test images of `data` as PNG files under `dir`, named in
/// test-split order; returns each image's source -> file name.
fn export_test_images(data: &Path, dir: &Path) -> HashMap<String, String> {
    std::fs::create_dir_all(dir).unwrap();
    let d = Dataset::read(data).unwrap();
    assert_eq!(d.pixels.channels, 3);
    let mut names = HashMap::new();
    let test = d.rows.iter().enumerate().filter(|(_, r)| r.split == pipe_core::data::split::Split::Test);
    for (k, (i, row)) in test.enumerate() {
        let name = format!("{k:04}.png");
        let side = d.pixels.height as u32;
        std::fs::write(dir.join(&name), testpng::png(side, side, testpng::RGB, d.pixels.image(i), &[], &[])).unwrap();
        names.insert(row.source.clone(), format!("new/{name}"));
    }
    names
}

/// The CSV's rows by path: every cell after the path.
fn csv_rows(path: &Path) -> HashMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>()).map(|mut c| (c.remove(0), c)).collect()
}

/// The scores of the CSV's top five, as written (full precision).
fn top_scores(cells: &[String]) -> Vec<f64> {
    cells[1..11].chunks(2).filter(|c| !c[1].is_empty()).map(|c| c[1].parse().unwrap()).collect()
}

/// The five highest of `scores`, highest first.
fn five_highest(scores: &[f64]) -> Vec<f64> {
    let mut s = scores.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s.truncate(5);
    s
}

#[test]
fn every_quickstart_approach_reproduces_its_test_predictions_on_the_same_images() {
    let p = Project::new(&quickstart());
    let record = p.run(&[], 0);
    let names = export_test_images(&entry(&p, &record, "data"), &p.path().join("new"));
    let single = ["svm", "cnn", "step1", "step2", "svm_hcl", "vote"];
    let multi = ["tags", "tags_svm"];
    for approach in single.iter().chain(&multi) {
        let csv = format!("{approach}.csv");
        let out = p.pipe(&["predict", "p.toml", "new", "--approach", approach, "-o", &csv, "-q"]);
        assert_eq!(out.status.code(), Some(0), "{approach}\nstdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
        let rows = csv_rows(&p.path().join(&csv));
        let trained = entry(&p, &record, approach);
        let mut checked = 0;
        if multi.contains(approach) {
            let want = MultiPredictions::read(&trained).unwrap();
            for k in 0..want.ids.len() {
                let cells = &rows[&names[&want.sources[k]]];
                let labels: Vec<&str> = want.y_pred[k].iter().map(|&l| want.meta.classes[l as usize].as_str()).collect();
                assert_eq!(cells[0], labels.join("|"), "{approach}: {}", want.sources[k]);
                assert_eq!(top_scores(cells), five_highest(&want.scores[k]), "{approach}: {}", want.sources[k]);
                checked += 1;
            }
        } else {
            let want = Predictions::read(&trained).unwrap();
            for k in 0..want.ids.len() {
                let cells = &rows[&names[&want.sources[k]]];
                assert_eq!(cells[0], want.meta.classes[want.y_pred[k] as usize], "{approach}: {}", want.sources[k]);
                assert_eq!(top_scores(cells), five_highest(&want.scores[k]), "{approach}: {}", want.sources[k]);
                checked += 1;
            }
        }
        assert!(checked > 50, "{approach}: {checked} test images compared");
        assert_eq!(rows.len(), names.len(), "{approach}: one row per new image");
    }

    // Again: every replayed stage is cached now.
    let out = p.pipe(&["predict", "p.toml", "new", "--approach", "vote", "-o", "again.csv", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(p.path().join("again.csv")).unwrap(), std::fs::read(p.path().join("vote.csv")).unwrap());

    // A broken PNG among good images: named, and the others classified.
    let mixed = p.path().join("mixed");
    std::fs::create_dir_all(mixed.join("sub")).unwrap();
    std::fs::copy(p.path().join("new/0000.png"), mixed.join("a.png")).unwrap();
    std::fs::copy(p.path().join("new/0001.png"), mixed.join("sub/b.png")).unwrap();
    std::fs::write(mixed.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = p.pipe(&["predict", "p.toml", "mixed", "--approach", "svm_hcl", "-o", "mixed.csv", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("broken.png"), "{said}");
    let rows = csv_rows(&p.path().join("mixed.csv"));
    assert_eq!(rows.len(), 3);
    assert!(!rows["mixed/broken.png"].last().unwrap().is_empty(), "the problem column says why");
    assert!(!rows["mixed/sub/b.png"][0].is_empty(), "a good image in a sub-folder is classified");
}

#[test]
fn an_approach_that_is_not_trained_or_not_an_approach_is_a_clear_error() {
    let p = Project::new(&quickstart());
    std::fs::create_dir_all(p.path().join("new")).unwrap();
    let out = p.pipe(&["predict", "p.toml", "new", "--approach", "svm_hcl"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("is not cached") && err.contains("pipe run p.toml --stage svm_hcl"), "{err}");
    let out = p.pipe(&["predict", "p.toml", "new", "--approach", "hog"]);
    assert!(text(&out.stderr).contains("does not predict classes or labels"), "{}", text(&out.stderr));
    let out = p.pipe(&["predict", "p.toml", "new"]);
    assert!(text(&out.stderr).contains("--approach") && text(&out.stderr).contains("svm_hcl"), "{}", text(&out.stderr));
    let out = p.pipe(&["predict", "p.toml", "nowhere", "--approach", "svm"]);
    assert!(text(&out.stderr).contains("nowhere: not a folder"), "{}", text(&out.stderr));
}
