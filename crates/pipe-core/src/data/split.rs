//! Seeded, stratified sampling and splitting, shared by every reader.
//!
//! - [`subsample`]: keep `limit` items, each class proportionally (largest
//!   remainder), at least one per class while the limit allows.
//! - [`split`]: per class, shuffle, then test = round(n x test_fraction) and
//!   validation = round(n x validation_fraction), each at least one when the
//!   class has enough images to keep one for training as well (test first,
//!   then validation). A class of one image stays in training and is named
//!   as unsplittable.

use std::collections::BTreeMap;

use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Split> {
        [Split::Train, Split::Validation, Split::Test].into_iter().find(|x| x.as_str() == s)
    }
}

/// Items grouped by class, in input order within a class.
fn by_class(labels: &[usize]) -> BTreeMap<usize, Vec<usize>> {
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &c) in labels.iter().enumerate() {
        out.entry(c).or_default().push(i);
    }
    out
}

/// Indices of the items kept by a stratified subsample of size `limit`.
pub fn subsample(labels: &[usize], limit: usize, rng: &mut Rng) -> Vec<usize> {
    if limit >= labels.len() {
        return (0..labels.len()).collect();
    }
    let groups = by_class(labels);
    let n = labels.len() as f64;
    let mut quota: Vec<(usize, usize, f64)> = groups
        .iter()
        .map(|(&c, items)| {
            let exact = items.len() as f64 * limit as f64 / n;
            (c, exact.floor() as usize, exact - exact.floor())
        })
        .collect();
    // At least one per class while the limit allows, then largest remainders.
    let mut left = limit.saturating_sub(quota.iter().map(|q| q.1).sum());
    for q in quota.iter_mut().filter(|q| q.1 == 0) {
        if left == 0 {
            break;
        }
        q.1 = 1;
        q.2 = -1.0;
        left -= 1;
    }
    let mut order: Vec<usize> = (0..quota.len()).collect();
    order.sort_by(|a, b| quota[*b].2.total_cmp(&quota[*a].2).then(a.cmp(b)));
    for &k in order.iter().take(left) {
        quota[k].1 += 1;
    }
    let mut keep = Vec::with_capacity(limit);
    for (c, take, _) in quota {
        let mut items = groups[&c].clone();
        rng.shuffle(&mut items);
        keep.extend(items.into_iter().take(take));
    }
    keep.sort_unstable();
    keep
}

/// The split of each item, and the classes too small to split.
pub fn split(labels: &[usize], test_fraction: f64, validation_fraction: f64, rng: &mut Rng) -> (Vec<Split>, Vec<usize>) {
    let mut out = vec![Split::Train; labels.len()];
    let mut unsplittable = Vec::new();
    for (c, mut items) in by_class(labels) {
        rng.shuffle(&mut items);
        let n = items.len();
        let want = |f: f64| if f > 0.0 { ((n as f64 * f).round() as usize).max(1) } else { 0 };
        let test = want(test_fraction).min(n.saturating_sub(1));
        let validation = want(validation_fraction).min(n.saturating_sub(1 + test));
        if (test_fraction > 0.0 && test == 0) || (validation_fraction > 0.0 && validation == 0) {
            unsplittable.push(c);
        }
        for &i in &items[..test] {
            out[i] = Split::Test;
        }
        for &i in &items[test..test + validation] {
            out[i] = Split::Validation;
        }
    }
    (out, unsplittable)
}

/// Stratified k-fold assignment: each class's items, shuffled, are dealt to
/// the folds in turn, starting where the previous class stopped, so fold
/// sizes stay even. A class with fewer items than folds appears in only some
/// folds (as with scikit-learn's `StratifiedKFold`, which warns about it).
pub fn stratified_folds(labels: &[usize], folds: usize, rng: &mut Rng) -> Vec<usize> {
    let mut out = vec![0; labels.len()];
    let mut next = 0;
    for (_, mut items) in by_class(labels) {
        rng.shuffle(&mut items);
        for i in items {
            out[i] = next % folds.max(1);
            next += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_seeded_and_keeps_a_test_image_per_class() {
        let labels: Vec<usize> =
            std::iter::repeat_n(0, 100).chain(std::iter::repeat_n(1, 10)).chain(std::iter::repeat_n(2, 2)).chain([3]).collect();
        let (a, unsplit) = split(&labels, 0.2, 0.1, &mut Rng::new(1, "split"));
        let (b, _) = split(&labels, 0.2, 0.1, &mut Rng::new(1, "split"));
        assert_eq!(a, b);
        let count = |c: usize, s: Split| labels.iter().zip(&a).filter(|(l, x)| **l == c && **x == s).count();
        assert_eq!((count(0, Split::Test), count(0, Split::Validation), count(0, Split::Train)), (20, 10, 70));
        assert_eq!((count(1, Split::Test), count(1, Split::Validation)), (2, 1));
        assert_eq!((count(2, Split::Test), count(2, Split::Train)), (1, 1), "a class of two keeps one for testing");
        assert_eq!(count(3, Split::Train), 1);
        assert_eq!(unsplit, vec![2, 3], "class 2 has no validation image, class 3 no test image");
        let (c, _) = split(&labels, 0.2, 0.1, &mut Rng::new(2, "split"));
        assert_ne!(a, c, "another seed, another split");
    }

    #[test]
    fn folds_are_stratified() {
        let labels: Vec<usize> = std::iter::repeat_n(0, 10).chain(std::iter::repeat_n(1, 5)).collect();
        let folds = stratified_folds(&labels, 5, &mut Rng::new(1, "cv"));
        for f in 0..5 {
            let in_fold: Vec<usize> = (0..15).filter(|&i| folds[i] == f).map(|i| labels[i]).collect();
            assert_eq!(in_fold.iter().filter(|&&l| l == 0).count(), 2);
            assert_eq!(in_fold.iter().filter(|&&l| l == 1).count(), 1);
        }
    }

    #[test]
    fn subsample_is_proportional_with_every_class_kept() {
        let labels: Vec<usize> = std::iter::repeat_n(0, 90).chain(std::iter::repeat_n(1, 9)).chain([2]).collect();
        let keep = subsample(&labels, 20, &mut Rng::new(1, "limit"));
        assert_eq!(keep.len(), 20);
        let count = |c: usize| keep.iter().filter(|i| labels[**i] == c).count();
        assert_eq!((count(0), count(1), count(2)), (18, 1, 1));
        assert_eq!(subsample(&labels, 500, &mut Rng::new(1, "limit")).len(), 100);
    }
}
