//! A program's output checked against a small index: the canonical files
//! when it is right, the file, line and column when it is not.
#![allow(clippy::disallowed_methods)] // test fixtures written with std::fs

use super::*;
use pipe_core::data::dataset::Meta;

/// An images folder (index only) of 5 images: 3 test (ids 1, 3, 4).
fn images() -> (tempfile::TempDir, InputArtifact) {
    let dir = tempfile::tempdir().unwrap();
    let split = [Split::Train, Split::Test, Split::Train, Split::Test, Split::Test];
    let rows: Vec<Row> = (0..5)
        .map(|i| Row {
            source: format!("img{i}.png"),
            label_id: (i % 2) as u32,
            labels: if i == 4 { vec![] } else { vec!["red".into()] },
            split: split[i],
            pixel_hash: String::new(),
            augmented: false,
        })
        .collect();
    let meta = Meta {
        dataset: "t".into(),
        image_size: 8,
        channels: 3,
        classes: vec!["cat".into(), "dog".into()],
        labels: vec!["red".into(), "blue".into()],
        counts: Default::default(),
        label_counts: Default::default(),
        labels_per_image: Default::default(),
        duplicates_removed: 0,
        bad: vec![],
        dropped: vec![],
        unsplittable: vec![],
        class_weights: vec![],
    };
    Dataset::write_index(dir.path(), &meta, &rows).unwrap();
    let input = InputArtifact { stage: "data".into(), artifact: ArtifactType::Images, dir: dir.path().to_path_buf() };
    (dir, input)
}

fn check(csv: &str) -> Result<tempfile::TempDir, Problem> {
    let (_keep, input) = images();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("predictions.csv"), csv).unwrap();
    publish(out.path(), ArtifactType::Predictions, Some(&input)).map(|_| out)
}

#[test]
fn right_predictions_become_the_canonical_files() {
    let out = check("id,y_pred,score_cat,score_dog\n4,dog,0.1,0.9\n1,dog,0.3,0.7\n3,cat,0.6,0.4\n").unwrap();
    let p = Predictions::read(out.path()).unwrap();
    assert_eq!(p.ids, [1, 3, 4], "sorted by id");
    assert_eq!(p.sources, ["img1.png", "img3.png", "img4.png"]);
    assert_eq!(p.y_true, [1, 1, 0]);
    assert_eq!(p.y_pred, [1, 0, 1]);
    assert_eq!(p.scores, [vec![0.3, 0.7], vec![0.6, 0.4], vec![0.1, 0.9]]);
    let csv = std::fs::read_to_string(out.path().join("predictions.csv")).unwrap();
    assert!(csv.starts_with("id,source,y_true,y_pred,score_cat,score_dog\n1,img1.png,dog,dog,"), "{csv}");
    // Scores are optional; quoted fields and CRLF are CSV too.
    let out = check("\"id\",y_pred\r\n1,\"dog\"\r\n3,cat\r\n4,dog\r\n").unwrap();
    assert!(Predictions::read(out.path()).unwrap().scores.is_empty());
}

#[test]
fn a_bad_file_names_its_line_and_column() {
    let e = |csv: &str| check(csv).unwrap_err();
    assert!(
        e("id,y_pred\n1,dog\n2,cat\n4,dog\n")
            .ends_with("predictions.csv line 3, column `id`: image 2 is not one of the test images of `data`")
    );
    assert!(
        e("id,y_pred\n1,dog\n3,bird\n4,dog\n").ends_with("line 3, column `y_pred`: `bird` is not a class of the input (classes: cat, dog)")
    );
    assert!(e("id,y_pred\n1,dog\nx,cat\n").ends_with("line 3, column `id`: `x` is not an image id (a row number of the input's index)"));
    assert!(e("id,y_pred\n1,dog\n1,cat\n").ends_with("line 3, column `id`: image 1 is predicted twice (also on line 2)"));
    assert!(e("id,y_pred\n1,dog\n").ends_with("predictions.csv: 2 of the 3 test images of `data` have no prediction (the first: image 3)"));
    assert!(
        e("id,y_pred,score_cat,score_dog\n1,dog,0.1,nan\n3,cat,1,0\n4,dog,0,1\n")
            .ends_with("line 2, column `score_dog`: `nan` is not a finite number")
    );
    assert!(e("id,y_pred,score_cat\n1,dog,0.1\n").contains("has no `score_dog` column"));
    assert!(e("id,y_pred,score_cow\n1,dog,0.1\n").contains("column `score_cow` names no class of the input"));
    assert!(e("id,label\n1,dog\n").contains("has no `y_pred` column (its header: id,label)"));
    assert!(e("id,y_pred\n1,dog,extra\n").ends_with("predictions.csv line 2: 3 fields where the header has 2"));
    assert!(e("").ends_with("predictions.csv is empty"));
    let (_keep, input) = images();
    let empty = tempfile::tempdir().unwrap();
    let missing = publish(empty.path(), ArtifactType::Predictions, Some(&input)).unwrap_err();
    assert!(missing.starts_with("it wrote no ") && missing.ends_with("predictions.csv (write it into $PIPE_OUT)"), "{missing}");
}

#[test]
fn multi_label_sets_are_checked_against_the_vocabulary() {
    let (_keep, input) = images();
    let out = tempfile::tempdir().unwrap();
    // Labelled test images: 1 and 3 (image 4 has no label).
    std::fs::write(out.path().join("predictions.csv"), "id,y_pred,score_red,score_blue\n3,red|blue,0.9,0.6\n1,,0.2,0.1\n").unwrap();
    publish(out.path(), ArtifactType::MultiLabelPredictions, Some(&input)).unwrap();
    let p = MultiPredictions::read(out.path()).unwrap();
    assert_eq!((p.ids, p.y_true, p.y_pred), (vec![1, 3], vec![vec![0], vec![0]], vec![vec![], vec![0, 1]]));
    std::fs::write(out.path().join("predictions.csv"), "id,y_pred,score_red,score_blue\n3,green,0.9,0.6\n1,,0.2,0.1\n").unwrap();
    let e = publish(out.path(), ArtifactType::MultiLabelPredictions, Some(&input)).unwrap_err();
    assert!(e.ends_with("line 2, column `y_pred`: `green` is not a label of the input's vocabulary (2 labels)"), "{e}");
}

#[test]
fn histograms_need_a_whole_finite_row_per_image() {
    let (_keep, input) = images();
    let out = tempfile::tempdir().unwrap();
    let write = |values: &[f32]| {
        std::fs::write(out.path().join("histograms.f32"), values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap()
    };
    write(&[0.5; 10]);
    publish(out.path(), ArtifactType::Histograms, Some(&input)).unwrap();
    let meta: HistogramsMeta = pipe_core::data::bow::read_json(&out.path().join("histograms.json")).unwrap();
    assert_eq!((meta.words, meta.images), (2, 5));
    assert!(out.path().join("index.parquet").is_file());
    write(&[0.5; 9]);
    let e = publish(out.path(), ArtifactType::Histograms, Some(&input)).unwrap_err();
    assert!(e.ends_with("holds 9 values, not a whole row for each of the 5 images of `data`"), "{e}");
    let mut v = [0.5; 10];
    v[7] = f32::INFINITY;
    write(&v);
    let e = publish(out.path(), ArtifactType::Histograms, Some(&input)).unwrap_err();
    assert!(e.ends_with("image 3 value 1 is inf (every value must be finite)"), "{e}");
}

#[test]
fn csv_records_keep_their_line_numbers() {
    let r = parse_csv("a,b\n\n\"x\ny\",2\n3,\"q\"\"uote\"").unwrap();
    assert_eq!(r, vec![(1, vec!["a".into(), "b".into()]), (3, vec!["x\ny".into(), "2".into()]), (5, vec!["3".into(), "q\"uote".into()])]);
    assert_eq!(parse_csv("a\n\"open").unwrap_err(), (2, "a quoted field is not closed".into()));
}
