//! Decision thresholds for multi-label probabilities (the `multilabel`
//! stage): which labels an image gets, and the threshold that maximises F2
//! on the validation split.
//!
//! A label is predicted when its probability is at least its threshold. With
//! `at_least_one`, an image left with no label gets its most probable one.
//! Tuning searches the grid 0.01, 0.02, ..., 0.99:
//! - one global threshold: the grid point with the best F2 under the chosen
//!   average, the decision rule (`at_least_one` included) applied as is;
//! - one threshold per label: each label's own F2 is maximised on its own
//!   column (exact for the macro average, the usual heuristic for micro and
//!   samples); a label with no positive validation image keeps the global
//!   threshold, as does any label whose best equals the global one's score.
//!
//! Ties go to the lowest threshold, so the result is deterministic.

use super::{Average, Counts, multi_label_f2};

/// `thresholds.csv`: one row per label, quoted, with its threshold.
pub fn thresholds_csv(labels: &[String], thresholds: &[f64]) -> String {
    let mut table = String::from("label,threshold\n");
    for (l, t) in labels.iter().zip(thresholds) {
        table.push_str(&format!("\"{}\",{t:.2}\n", l.replace('"', "\"\"")));
    }
    table
}

/// The thresholds a [`thresholds_csv`] file holds, one per name of
/// `labels`, in their order (`pipe predict` reads a tuned stage's). Tuned
/// thresholds are points of [`grid`], which the file's two decimals give
/// back exactly.
pub fn read_thresholds(path: &std::path::Path, labels: &[String]) -> Result<Vec<f64>, String> {
    let text = crate::fsx::read_to_string(path).map_err(|e| e.to_string())?;
    let bad = |what: String| format!("{}: {what}", path.display());
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.is_empty()) {
        let (label, value) = line.rsplit_once(',').ok_or_else(|| bad(format!("line {}: expected label,threshold", n + 1)))?;
        let label = label.strip_prefix('"').and_then(|l| l.strip_suffix('"')).unwrap_or(label).replace("\"\"", "\"");
        let value: f64 = value.parse().map_err(|_| bad(format!("line {}: `{value}` is not a number", n + 1)))?;
        found.push((label, value));
    }
    let names: Vec<&String> = found.iter().map(|(l, _)| l).collect();
    if names.len() != labels.len() || names.iter().zip(labels).any(|(a, b)| *a != b) {
        return Err(bad(format!("its labels are not the {} labels of the images", labels.len())));
    }
    Ok(found.into_iter().map(|(_, v)| v).collect())
}

/// The thresholds tried: 0.01 to 0.99 in steps of 0.01.
pub fn grid() -> impl Iterator<Item = f64> {
    (1..=99).map(|i| f64::from(i) / 100.0)
}

/// The labels of each image: probability >= its label's threshold; with
/// `at_least_one`, the most probable label (the first of equals) when none
/// passes.
pub fn decide(probabilities: &[Vec<f64>], thresholds: &[f64], at_least_one: bool) -> Vec<Vec<usize>> {
    probabilities
        .iter()
        .map(|p| {
            let mut set: Vec<usize> = (0..p.len()).filter(|&l| p[l] >= thresholds[l]).collect();
            if set.is_empty() && at_least_one && !p.is_empty() {
                let best = (0..p.len()).fold(0, |b, l| if p[l] > p[b] { l } else { b });
                set.push(best);
            }
            set
        })
        .collect()
}

/// The F2-best global threshold on the grid and its F2.
pub fn tune_global(truth: &[Vec<usize>], probabilities: &[Vec<f64>], labels: usize, average: Average, at_least_one: bool) -> (f64, f64) {
    let mut best = (0.5, f64::NEG_INFINITY);
    for t in grid() {
        let score = multi_label_f2(truth, &decide(probabilities, &vec![t; labels], at_least_one), labels, average);
        if score > best.1 {
            best = (t, score);
        }
    }
    best
}

/// One threshold per label (see the module doc), starting from the global
/// optimum.
pub fn tune_per_label(truth: &[Vec<usize>], probabilities: &[Vec<f64>], labels: usize, average: Average, at_least_one: bool) -> Vec<f64> {
    let (global, _) = tune_global(truth, probabilities, labels, average, at_least_one);
    (0..labels)
        .map(|l| {
            let positive: Vec<bool> = truth.iter().map(|t| t.contains(&l)).collect();
            if !positive.contains(&true) {
                return global;
            }
            let f2_at = |t: f64| {
                let mut c = Counts::default();
                for (p, &pos) in probabilities.iter().zip(&positive) {
                    match (p[l] >= t, pos) {
                        (true, true) => c.tp += 1,
                        (true, false) => c.fp += 1,
                        (false, true) => c.fn_ += 1,
                        (false, false) => {}
                    }
                }
                c.fbeta(2.0)
            };
            let mut best = (global, f2_at(global));
            for t in grid() {
                let score = f2_at(t);
                if score > best.1 {
                    best = (t, score);
                }
            }
            best.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_back_exactly_from_their_file() {
        let labels: Vec<String> = vec!["a,b".into(), "say \"c\"".into()];
        let t: Vec<f64> = grid().skip(6).step_by(30).take(2).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thresholds.csv");
        crate::fsx::write(&path, thresholds_csv(&labels, &t)).unwrap();
        assert_eq!(read_thresholds(&path, &labels).unwrap(), t);
        assert!(read_thresholds(&path, &labels[..1]).is_err());
    }

    /// Brute force over the grid, for comparison.
    fn best_by_brute_force(truth: &[Vec<usize>], probs: &[Vec<f64>], labels: usize, average: Average) -> f64 {
        let scores: Vec<(f64, f64)> =
            grid().map(|t| (t, multi_label_f2(truth, &decide(probs, &vec![t; labels], false), labels, average))).collect();
        let top = scores.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        scores.iter().find(|s| s.1 == top).unwrap().0
    }

    #[test]
    fn decides_by_threshold_and_falls_back_to_the_most_probable() {
        let probs = vec![vec![0.7, 0.2, 0.4], vec![0.1, 0.3, 0.2]];
        assert_eq!(decide(&probs, &[0.5; 3], false), vec![vec![0], vec![]]);
        assert_eq!(decide(&probs, &[0.5; 3], true), vec![vec![0], vec![1]]);
        assert_eq!(decide(&probs, &[0.8, 0.25, 0.15], false), vec![vec![2], vec![1, 2]]);
    }

    #[test]
    fn global_tuning_prefers_recall_as_f2_does() {
        // One label; positives at 0.3, 0.35 and 0.9, negatives at 0.32 and 0.1.
        // t <= 0.3 predicts 0.3, 0.32, 0.35, 0.9: tp 3, fp 1 -> F2 = 15/16.
        // t in (0.32, 0.35] : tp 2 (0.35, 0.9), fp 0, fn 1 -> F2 = 10/13.
        // t in (0.30, 0.32] : tp 2, fp 1, fn 1 -> lower. So the best is 0.11..=0.30,
        // the first of which (0.11: 0.1 is a negative) wins.
        let truth = vec![vec![0], vec![0], vec![0], vec![], vec![]];
        let probs = vec![vec![0.3], vec![0.35], vec![0.9], vec![0.32], vec![0.1]];
        let (t, f2) = tune_global(&truth, &probs, 1, Average::Micro, false);
        assert_eq!(t, 0.11);
        assert!((f2 - 15.0 / 16.0).abs() < 1e-12, "{f2}");
        // A threshold of 0.5 (the usual default) would score lower.
        let at_half = multi_label_f2(&truth, &decide(&probs, &[0.5], false), 1, Average::Micro);
        assert!(at_half < f2);
    }

    #[test]
    fn global_tuning_matches_brute_force_for_every_average() {
        let mut rng = crate::rng::Rng::new(7, "threshold-test");
        let labels = 5;
        let truth: Vec<Vec<usize>> = (0..60).map(|_| (0..labels).filter(|_| rng.chance(0.3)).collect()).collect();
        let probs: Vec<Vec<f64>> = truth
            .iter()
            .map(|t| (0..labels).map(|l| (rng.range(0.0, 0.6) + if t.contains(&l) { 0.3 } else { 0.0 }).min(1.0)).collect())
            .collect();
        for average in [Average::Micro, Average::Macro, Average::Samples] {
            let (t, score) = tune_global(&truth, &probs, labels, average, false);
            assert_eq!(t, best_by_brute_force(&truth, &probs, labels, average), "{average:?}");
            assert!(grid().all(|g| multi_label_f2(&truth, &decide(&probs, &vec![g; labels], false), labels, average) <= score));
        }
    }

    #[test]
    fn per_label_tuning_gives_each_label_its_own_best() {
        // Label 0 separates above 0.6 (positives 0.85, 0.9; negatives <= 0.6),
        // label 1 above 0.1 (positives 0.25, 0.3; negatives <= 0.1), label 2
        // never occurs. The global optimum, 0.21, is perfect for label 1, so
        // labels 1 and 2 keep it and label 0 gets the first perfect point.
        let truth = vec![vec![0], vec![0, 1], vec![1], vec![], vec![]];
        let probs = vec![vec![0.85, 0.05, 0.0], vec![0.9, 0.3, 0.1], vec![0.6, 0.25, 0.0], vec![0.5, 0.1, 0.2], vec![0.2, 0.0, 0.0]];
        let (global, _) = tune_global(&truth, &probs, 3, Average::Macro, false);
        let t = tune_per_label(&truth, &probs, 3, Average::Macro, false);
        assert_eq!(global, 0.21);
        assert_eq!(t, vec![0.61, 0.21, 0.21]);
        let tuned = decide(&probs, &t, false);
        assert_eq!(&tuned[..3], &[vec![0], vec![0, 1], vec![1]]);
        let f2 = |th: &[f64]| multi_label_f2(&truth, &decide(&probs, th, false), 3, Average::Micro);
        assert!(f2(&t) >= f2(&[global; 3]));
    }
}
