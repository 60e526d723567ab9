use super::*;
use crate::kinds::testutil::{self, Run, defaults, with};
use pipe_core::kinds::{augment::AUGMENT, load::LOAD};

/// A small synthetic `images` artifact: 6 classes, imbalanced.
fn images() -> Run {
    let p = with(with(with(defaults(&LOAD), "dataset", "synthetic"), "images", 90), "image_size", 16);
    testutil::run(&LOAD, p, &[], 3)
}

fn augment(input: &Run, params: serde_json::Value, seed: u64) -> Run {
    testutil::run(&AUGMENT, params, &[("images", input.ok())], seed)
}

fn train_counts(d: &Dataset) -> BTreeMap<u32, usize> {
    let mut c = BTreeMap::new();
    for r in d.rows.iter().filter(|r| r.split == Split::Train) {
        *c.entry(r.label_id).or_default() += 1;
    }
    c
}

#[test]
fn copies_touch_only_the_training_split() {
    let input = images();
    let before = Dataset::read(input.ok()).unwrap();
    let run = augment(&input, with(defaults(&AUGMENT), "copies", 2), 1);
    let after = Dataset::read(run.ok()).unwrap();
    let train = before.rows.iter().filter(|r| r.split == Split::Train).count();
    assert_eq!(after.rows.len(), before.rows.len() + 2 * train);
    assert_eq!(&after.rows[..before.rows.len()], &before.rows[..], "originals unchanged, in order");
    assert_eq!(after.pixels.data[..before.pixels.data.len()], before.pixels.data[..]);
    let new = &after.rows[before.rows.len()..];
    assert!(new.iter().all(|r| r.augmented && r.split == Split::Train && r.source.contains("#aug")));
    for s in [Split::Test, Split::Validation] {
        assert_eq!(before.rows.iter().filter(|r| r.split == s).count(), after.rows.iter().filter(|r| r.split == s).count());
    }
    assert!(run.out.path().join("preview.png").is_file());
}

#[test]
fn augmentation_is_deterministic_per_seed() {
    let input = images();
    let a = Dataset::read(augment(&input, defaults(&AUGMENT), 1).ok()).unwrap();
    let b = Dataset::read(augment(&input, defaults(&AUGMENT), 1).ok()).unwrap();
    let c = Dataset::read(augment(&input, defaults(&AUGMENT), 2).ok()).unwrap();
    assert_eq!(a.pixels, b.pixels);
    assert_ne!(a.pixels, c.pixels);
}

#[test]
fn oversampling_reaches_the_target_and_weights_follow_the_formula() {
    let input = images();
    let p = with(with(defaults(&AUGMENT), "copies", 0), "balance", "oversample");
    let out = Dataset::read(augment(&input, p.clone(), 1).ok()).unwrap();
    let counts = train_counts(&out);
    let max = *counts.values().max().unwrap();
    assert!(counts.values().all(|&n| n == max), "every class at the largest: {counts:?}");
    let n = counts.values().sum::<usize>() as f64;
    for w in &out.meta.class_weights {
        assert!((w - n / (counts.len() as f64 * max as f64)).abs() < 1e-12, "balanced data, equal weights");
    }
    let fixed = Dataset::read(augment(&input, with(p, "target", 20), 1).ok()).unwrap();
    let before = train_counts(&Dataset::read(input.ok()).unwrap());
    for (c, n) in train_counts(&fixed) {
        assert_eq!(n, before[&c].max(20), "class {c}: raised to 20, never lowered");
    }
    let none = Dataset::read(augment(&input, with(defaults(&AUGMENT), "class_weights", "none"), 1).ok()).unwrap();
    assert!(none.meta.class_weights.iter().all(|w| *w == 1.0));
}
