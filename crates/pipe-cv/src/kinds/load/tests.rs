#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use pipe_core::kinds::load::LOAD;
use std::path::PathBuf;

use super::*;
use pipe_core::data::split::Split;
use pipe_core::data::testpng::{self, PALETTE, RGBA};

use crate::kinds::testutil::{self, Run, with};

fn load(params: serde_json::Value, seed: u64) -> Run {
    testutil::run(&LOAD, params, &[], seed)
}

fn dataset(run: &Run) -> Dataset {
    Dataset::read(run.ok()).unwrap()
}

fn defaults(dataset: &str, root: Option<&std::path::Path>) -> serde_json::Value {
    let p = with(testutil::defaults(&LOAD), "dataset", dataset);
    match root {
        Some(r) => with(p, "root", r.display().to_string()),
        None => p,
    }
}

fn write(path: PathBuf, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `cats`: an RGBA and a palette image with transparency, 4 solids;
/// `dogs`: 5 solids, one of them a re-encoded duplicate of a cat; plus a
/// truncated, an empty and a text file posing as images.
fn folder_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("cats/rgba.png"), &testpng::png(2, 2, RGBA, &[255, 0, 0, 0].repeat(4), &[], &[]));
    write(root.join("cats/palette.png"), &testpng::png(2, 1, PALETTE, &[0, 1], &[[1, 2, 3], [4, 5, 6]], &[0]));
    for i in 0..4u8 {
        write(root.join(format!("cats/c{i}.png")), &testpng::solid(3, 3, [i, 100, 100]));
    }
    for i in 0..4u8 {
        write(root.join(format!("dogs/d{i}.png")), &testpng::solid(3, 3, [i, 200, 200]));
    }
    write(root.join("dogs/copy_of_c0.png"), &testpng::png(3, 3, RGBA, &[0, 100, 100, 255].repeat(9), &[], &[]));
    let good = testpng::solid(8, 8, [1, 1, 1]);
    write(root.join("dogs/truncated.png"), &good[..good.len() / 2]);
    write(root.join("dogs/empty.png"), b"");
    write(root.join("dogs/notes.jpg"), b"not an image");
    write(root.join("dogs/readme.txt"), b"ignored: not an image extension");
    dir
}

#[test]
fn folder_reader_skips_bad_files_and_removes_duplicates() {
    let fx = folder_fixture();
    let run = load(with(defaults("folder", Some(fx.path())), "image_size", 8), 1);
    let data = dataset(&run);
    assert_eq!(data.rows.len(), 10, "11 decodable images, one duplicate");
    assert_eq!(data.meta.duplicates_removed, 1);
    assert_eq!(data.meta.classes, ["cats", "dogs"]);
    let bad: Vec<&str> = data.meta.bad.iter().map(|b| b.item.rsplit('/').next().unwrap()).collect();
    assert_eq!(bad.len(), 3, "{bad:?}");
    for name in ["truncated.png", "empty.png", "notes.jpg"] {
        assert!(bad.contains(&name), "{name} listed as bad: {bad:?}");
    }
    let warnings = run.warnings.clone();
    assert!(warnings.iter().any(|w| w.starts_with("skipped 3 bad images")), "{warnings:?}");
    assert!(run.log.iter().any(|l| l.contains("empty.png: empty file")), "{:?}", run.log);
    assert_eq!(data.pixels.count, 10);
    assert_eq!((data.pixels.height, data.pixels.channels), (8, 3));
    // The duplicate kept is the cat (first path), so no image sits twice.
    let mut hashes: Vec<&str> = data.rows.iter().map(|r| r.pixel_hash.as_str()).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), data.rows.len(), "no pixel content appears twice, so none can cross the split");
    assert!(data.rows.iter().all(|r| !r.source.ends_with("copy_of_c0.png")));
}

#[test]
fn a_class_left_without_images_is_named() {
    let fx = folder_fixture();
    write(fx.path().join("birds/broken.png"), b"");
    let run = load(with(defaults("folder", Some(fx.path())), "image_size", 8), 1);
    assert!(!dataset(&run).meta.classes.contains(&"birds".to_string()));
    assert!(run.warnings.iter().any(|w| w.starts_with("no usable image left in class birds")), "{:?}", run.warnings);
}

#[test]
fn fail_mode_stops_at_the_first_bad_file() {
    let fx = folder_fixture();
    let run = load(with(defaults("folder", Some(fx.path())), "on_bad_image", "fail"), 1);
    let err = run.error();
    assert!(err.contains("dogs/") && err.contains("on_bad_image = \"fail\""), "{err}");
}

#[test]
fn missing_or_empty_roots_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = load(defaults("folder", Some(&dir.path().join("nope"))), 1);
    assert!(run.error().contains("is not a folder"), "{}", run.error());
    std::fs::create_dir_all(dir.path().join("empty_class")).unwrap();
    let run = load(defaults("folder", Some(dir.path())), 1);
    assert!(run.error().contains("no images found"), "{}", run.error());
    let run = load(defaults("openclipart", Some(dir.path())), 1);
    assert!(run.error().contains("has no png/ folder"), "{}", run.error());
    write(dir.path().join("only/bad.png"), b"");
    let run = load(defaults("folder", Some(dir.path())), 1);
    assert!(run.error().starts_with("no usable images: all 1 were bad"), "{}", run.error());
}

#[test]
fn synthetic_split_is_stratified_and_seeded() {
    let params = with(with(defaults("synthetic", None), "images", 120), "image_size", 16);
    let a = dataset(&load(params.clone(), 5));
    let b = dataset(&load(params.clone(), 5));
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.pixels, b.pixels);
    assert_ne!(dataset(&load(params, 6)).rows, a.rows, "another seed, another collection");
    for (class, counts) in &a.meta.counts {
        assert!(counts.get("test").copied().unwrap_or(0) >= 1, "{class} has a test image: {counts:?}");
        assert!(counts["train"] >= counts.get("test").copied().unwrap_or(0), "{class}: {counts:?}");
    }
    assert_eq!(a.meta.classes.len(), 6);
    let total: usize = a.meta.counts.values().flat_map(|c| c.values()).sum();
    assert_eq!(total, a.rows.len());
    let weights = &a.meta.class_weights;
    let train: Vec<u32> = a.rows.iter().filter(|r| r.split == Split::Train).map(|r| r.label_id).collect();
    assert_eq!(weights, &pipe_core::data::dataset::balanced_weights(&train, 6));
}

#[test]
fn limit_and_rare_classes() {
    let params = with(defaults("synthetic", None), "image_size", 8);
    let limited = dataset(&load(with(params.clone(), "limit", 50), 1));
    assert_eq!(limited.rows.len(), 50);
    assert_eq!(limited.meta.classes.len(), 6, "every class survives a stratified limit");
    let merged = load(with(with(params.clone(), "min_class_count", 40), "rare_classes", "merge"), 1);
    assert!(dataset(&merged).meta.classes.contains(&"rare".to_string()));
    assert!(merged.warnings.iter().any(|w| w.starts_with("merged classes with fewer than 40 images into `rare`")));
    let dropped = dataset(&load(with(params, "min_class_count", 40), 1));
    assert!(dropped.meta.classes.len() < 6);
    assert!(dropped.meta.dropped.iter().all(|d| d.problem.contains("fewer than 40")));
}

#[test]
fn imet_layout_with_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root.join("labels.csv"),
        b"attribute_id,attribute_name\n1,culture::french\n2,tag::flowers\n3,\"culture::dutch, north\"\n4,tag::men\n",
    );
    write(root.join("train.csv"), b"id,attribute_ids\na1,1 2\na2,2 1\na3,3 4 2\na4,1\nmissing,1 2\na5,1 99\n");
    for (i, id) in ["a1", "a2", "a3", "a4", "a5"].iter().enumerate() {
        write(root.join(format!("train/{id}.png")), &testpng::solid(2, 2, [i as u8 * 40, 0, 0]));
    }
    let run = load(with(defaults("imet", Some(root)), "test_fraction", 0.0), 1);
    let data = dataset(&run);
    assert_eq!(data.rows.len(), 4);
    let problems: Vec<&str> = data.meta.bad.iter().map(|b| b.problem.as_str()).collect();
    assert!(problems.iter().any(|p| p.ends_with("missing.png does not exist")), "{problems:?}");
    assert!(problems.contains(&"attribute id 99 is not in labels.csv"), "{problems:?}");
    assert!(data.meta.bad.iter().any(|b| b.item.ends_with("train.csv:7")), "rows are named by line");
    // most-frequent: tag::flowers (3 images) beats culture::french (3, larger id loses? no: equal -> smaller id).
    let label = |src: &str| data.meta.classes[data.rows.iter().find(|r| r.source.ends_with(src)).unwrap().label_id as usize].clone();
    assert_eq!(label("a1.png"), "culture::french", "ties go to the smaller attribute id");
    assert_eq!(label("a3.png"), "tag::flowers");
    let row = data.rows.iter().find(|r| r.source.ends_with("a3.png")).unwrap();
    assert_eq!(row.labels, ["culture::dutch, north", "tag::men", "tag::flowers"]);
    let prefixed = dataset(&load(with(with(defaults("imet", Some(root)), "label_prefix", "tag::"), "single_label", "first"), 1));
    assert_eq!(prefixed.rows.len(), 3, "a4 has no tag:: attribute");
    assert_eq!(prefixed.meta.dropped.len(), 1);
}

#[test]
fn openclipart_labels_come_from_folders_and_svg_keywords() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("png/animals/cat.png"), &testpng::solid(2, 2, [1, 2, 3]));
    write(root.join("png/animals/wild/lion.png"), &testpng::solid(2, 2, [4, 5, 6]));
    write(root.join("png/shapes/square.png"), &testpng::solid(2, 2, [7, 8, 9]));
    std::fs::create_dir_all(root.join("png/people")).unwrap();
    std::os::unix::fs::symlink("../animals/cat.png", root.join("png/people/cat.png")).unwrap();
    write(root.join("svg/animals/cat.svg"), b"<dc:subject><rdf:Bag><rdf:li>Cat</rdf:li><rdf:li> pet </rdf:li></rdf:Bag></dc:subject>");
    write(root.join("svg/people/cat.svg"), b"<dc:subject><rdf:Bag><rdf:li>person</rdf:li></rdf:Bag></dc:subject>");
    let data = dataset(&load(with(defaults("openclipart", Some(root)), "test_fraction", 0.0), 1));
    assert_eq!(data.rows.len(), 3, "the linked copy is a duplicate");
    let cat = data.rows.iter().find(|r| r.source.ends_with("cat.png")).unwrap();
    assert!(cat.source.contains("png/animals/"), "the real file is kept, not the link");
    assert_eq!(data.meta.classes[cat.label_id as usize], "animals");
    assert_eq!(cat.labels, ["cat", "pet", "person"]);
    let lion = data.rows.iter().find(|r| r.source.ends_with("lion.png")).unwrap();
    assert_eq!(data.meta.classes[lion.label_id as usize], "animals", "sub-folders count for their top-level class");
}

#[test]
fn a_single_class_is_an_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6u8 {
        write(dir.path().join(format!("only/o{i}.png")), &testpng::solid(3, 3, [i, 50, 50]));
    }
    let err = load(with(defaults("folder", Some(dir.path())), "image_size", 8), 1).error();
    assert!(err.contains("only 1 class left (only)") && err.contains("at least two"), "{err}");
}
