//! Classification metrics with scikit-learn's definitions and its
//! `zero_division=0` behaviour: a precision, recall or F-score whose
//! denominator is zero counts as 0. Averages run over the labels present in
//! `y_true` or `y_pred` (scikit-learn's default `labels`).

pub mod pairs;
pub mod significance;
pub mod threshold;

/// Per-label counts of one single-label prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    /// Occurrences in `y_true`.
    pub support: usize,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 { 0.0 } else { num as f64 / den as f64 }
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// F-beta; 0 when precision and recall are both 0.
    pub fn fbeta(&self, beta: f64) -> f64 {
        let b2 = beta * beta;
        let den = b2 * (self.tp + self.fn_) as f64 + (self.tp + self.fp) as f64;
        if den == 0.0 { 0.0 } else { (1.0 + b2) * self.tp as f64 / den }
    }
}

/// Counts per label `0..labels` for single-label predictions.
pub fn counts(y_true: &[usize], y_pred: &[usize], labels: usize) -> Vec<Counts> {
    tally(y_true.iter().copied().zip(y_pred.iter().copied()), labels)
}

/// Counts per label `0..labels` of `(true, predicted)` pairs.
fn tally(pairs: impl Iterator<Item = (usize, usize)>, labels: usize) -> Vec<Counts> {
    let mut c = vec![Counts::default(); labels];
    for (t, p) in pairs {
        c[t].support += 1;
        if t == p {
            c[t].tp += 1;
        } else {
            c[t].fn_ += 1;
            c[p].fp += 1;
        }
    }
    c
}

pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> f64 {
    ratio(y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count(), y_true.len())
}

/// Macro F1 over the labels present in `y_true` or `y_pred`.
pub fn macro_f1(y_true: &[usize], y_pred: &[usize], labels: usize) -> f64 {
    macro_f1_of(&counts(y_true, y_pred, labels))
}

/// [`macro_f1`] of the items at `idx` (repeats counted), without gathering
/// them: what a bootstrap resample scores.
pub fn macro_f1_at(y_true: &[usize], y_pred: &[usize], labels: usize, idx: &[usize]) -> f64 {
    macro_f1_of(&tally(idx.iter().map(|&i| (y_true[i], y_pred[i])), labels))
}

/// The mean F1 of the labels present (true or predicted at least once).
fn macro_f1_of(c: &[Counts]) -> f64 {
    let present: Vec<&Counts> = c.iter().filter(|c| c.support > 0 || c.fp > 0).collect();
    if present.is_empty() {
        return 0.0;
    }
    present.iter().map(|c| c.fbeta(1.0)).sum::<f64>() / present.len() as f64
}

/// One row of a classification report (scikit-learn's layout, long form).
/// For `accuracy` and `top-k` rows the value is in precision, recall and f1,
/// and `f2` is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub f2: Option<f64>,
    pub support: usize,
}

impl Row {
    fn of(class: &str, c: &Counts) -> Row {
        Row {
            class: class.to_string(),
            precision: c.precision(),
            recall: c.recall(),
            f1: c.fbeta(1.0),
            f2: Some(c.fbeta(2.0)),
            support: c.support,
        }
    }

    fn value(class: &str, v: f64, support: usize) -> Row {
        Row { class: class.to_string(), precision: v, recall: v, f1: v, f2: None, support }
    }
}

/// scikit-learn's `top_k_accuracy_score`: a hit when the true label is among
/// the `k` highest scores. Ties rank the higher label index first (its stable
/// sort, reversed); `k` >= the number of labels makes every sample a hit.
pub fn top_k_accuracy(y_true: &[usize], scores: &[Vec<f64>], k: usize) -> f64 {
    let hits = y_true
        .iter()
        .zip(scores)
        .filter(|(t, s)| {
            if k >= s.len() {
                return true;
            }
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|a, b| s[*b].total_cmp(&s[*a]).then(b.cmp(a)));
            order[..k].contains(t)
        })
        .count();
    ratio(hits, y_true.len())
}

/// The single-label report: one row per label present in `y_true` or
/// `y_pred` (in label order), then micro, macro and weighted averages,
/// accuracy, and top-3/top-5 accuracy when there are scores and more
/// classes than k.
pub fn single_label_report(y_true: &[usize], y_pred: &[usize], scores: &[Vec<f64>], classes: &[String]) -> Vec<Row> {
    let c = counts(y_true, y_pred, classes.len());
    let present: Vec<usize> = (0..classes.len()).filter(|&i| c[i].support > 0 || c[i].fp > 0).collect();
    let mut rows: Vec<Row> = present.iter().map(|&i| Row::of(&classes[i], &c[i])).collect();
    let total: usize = y_true.len();
    let micro = present.iter().fold(Counts::default(), |acc, &i| Counts {
        tp: acc.tp + c[i].tp,
        fp: acc.fp + c[i].fp,
        fn_: acc.fn_ + c[i].fn_,
        support: acc.support + c[i].support,
    });
    rows.push(Row::of("micro avg", &micro));
    let n = present.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Counts) -> f64| present.iter().map(|&i| f(&c[i])).sum::<f64>() / n;
    rows.push(Row {
        class: "macro avg".into(),
        precision: mean(&|c| c.precision()),
        recall: mean(&|c| c.recall()),
        f1: mean(&|c| c.fbeta(1.0)),
        f2: Some(mean(&|c| c.fbeta(2.0))),
        support: total,
    });
    let weighted = |f: &dyn Fn(&Counts) -> f64| {
        if total == 0 { 0.0 } else { present.iter().map(|&i| f(&c[i]) * c[i].support as f64).sum::<f64>() / total as f64 }
    };
    rows.push(Row {
        class: "weighted avg".into(),
        precision: weighted(&|c| c.precision()),
        recall: weighted(&|c| c.recall()),
        f1: weighted(&|c| c.fbeta(1.0)),
        f2: Some(weighted(&|c| c.fbeta(2.0))),
        support: total,
    });
    rows.push(Row::value("accuracy", accuracy(y_true, y_pred), total));
    if !scores.is_empty() {
        // With k at or past the number of classes every image is a hit:
        // meaningless (scikit-learn warns), so not reported.
        for k in [3, 5].into_iter().filter(|&k| k < classes.len()) {
            rows.push(Row::value(&format!("top-{k}"), top_k_accuracy(y_true, scores, k), total));
        }
    }
    rows
}

/// Averages of per-item counts: `(precision, recall, F1, F2)` each the mean
/// (optionally weighted) of the items' own values.
fn averaged(items: &[Counts], weights: Option<&[f64]>) -> (f64, f64, f64, f64) {
    let total: f64 = weights.map_or(items.len() as f64, |w| w.iter().sum());
    if total == 0.0 {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let w = |i: usize| weights.map_or(1.0, |w| w[i]);
    let mean = |f: &dyn Fn(&Counts) -> f64| items.iter().enumerate().map(|(i, c)| w(i) * f(c)).sum::<f64>() / total;
    (mean(&|c| c.precision()), mean(&|c| c.recall()), mean(&|c| c.fbeta(1.0)), mean(&|c| c.fbeta(2.0)))
}

/// The multi-label report (label sets as lists of label indices): one row
/// per label, then micro, macro, weighted and samples averages — scikit-learn's
/// `precision_recall_fscore_support` / `fbeta_score` on indicator matrices
/// with `zero_division=0` (a sample with no true and no predicted labels
/// scores 0 in the samples average).
pub fn multi_label_report(y_true: &[Vec<usize>], y_pred: &[Vec<usize>], labels: &[String]) -> Vec<Row> {
    let (per_label, per_sample) = multi_label_counts(y_true, y_pred, labels.len());
    let support: usize = per_label.iter().map(|c| c.support).sum();
    let mut rows: Vec<Row> = labels.iter().zip(&per_label).map(|(n, c)| Row::of(n, c)).collect();
    rows.push(Row::of("micro avg", &summed(&per_label)));
    let weights: Vec<f64> = per_label.iter().map(|c| c.support as f64).collect();
    for (name, (p, r, f1, f2)) in [
        ("macro avg", averaged(&per_label, None)),
        ("weighted avg", averaged(&per_label, Some(&weights))),
        ("samples avg", averaged(&per_sample, None)),
    ] {
        rows.push(Row { class: name.into(), precision: p, recall: r, f1, f2: Some(f2), support });
    }
    rows
}

/// Per-label and per-sample counts of multi-label predictions over
/// `labels` labels.
fn multi_label_counts(y_true: &[Vec<usize>], y_pred: &[Vec<usize>], labels: usize) -> (Vec<Counts>, Vec<Counts>) {
    let mut per_label = vec![Counts::default(); labels];
    let mut per_sample = Vec::with_capacity(y_true.len());
    for (t, p) in y_true.iter().zip(y_pred) {
        let mut sample = Counts::default();
        for &l in t {
            per_label[l].support += 1;
            if p.contains(&l) {
                per_label[l].tp += 1;
                sample.tp += 1;
            } else {
                per_label[l].fn_ += 1;
                sample.fn_ += 1;
            }
        }
        for &l in p.iter().filter(|l| !t.contains(l)) {
            per_label[l].fp += 1;
            sample.fp += 1;
        }
        sample.support = t.len();
        per_sample.push(sample);
    }
    (per_label, per_sample)
}

/// The counts of all labels together (the micro average).
fn summed(items: &[Counts]) -> Counts {
    items.iter().fold(Counts::default(), |a, c| Counts {
        tp: a.tp + c.tp,
        fp: a.fp + c.fp,
        fn_: a.fn_ + c.fn_,
        support: a.support + c.support,
    })
}

/// How a multi-label F-score is averaged (scikit-learn's `average`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    Micro,
    Macro,
    Samples,
}

impl Average {
    /// `"micro" | "macro" | "samples"`.
    pub fn parse(word: &str) -> Option<Average> {
        match word {
            "micro" => Some(Average::Micro),
            "macro" => Some(Average::Macro),
            "samples" => Some(Average::Samples),
            _ => None,
        }
    }
}

/// Multi-label F2 with the given average, as scikit-learn's
/// `fbeta_score(beta=2, average=..., zero_division=0)` on indicator matrices.
pub fn multi_label_f2(y_true: &[Vec<usize>], y_pred: &[Vec<usize>], labels: usize, average: Average) -> f64 {
    let (per_label, per_sample) = multi_label_counts(y_true, y_pred, labels);
    match average {
        Average::Micro => summed(&per_label).fbeta(2.0),
        Average::Macro => averaged(&per_label, None).3,
        Average::Samples => averaged(&per_sample, None).3,
    }
}

/// Per-sample counts of multi-label predictions (true positives, false
/// positives, false negatives and true labels of each sample), for
/// [`micro_f2_at`].
pub fn multi_label_sample_counts(y_true: &[Vec<usize>], y_pred: &[Vec<usize>], labels: usize) -> Vec<Counts> {
    multi_label_counts(y_true, y_pred, labels).1
}

/// Micro-averaged F2 ([`multi_label_f2`] with [`Average::Micro`]) of the
/// samples at `idx` (repeats counted), from their per-sample counts: the
/// labels' counts summed are the samples' counts summed.
pub fn micro_f2_at(samples: &[Counts], idx: &[usize]) -> f64 {
    let total = idx.iter().fold(Counts::default(), |a, &i| {
        let c = &samples[i];
        Counts { tp: a.tp + c.tp, fp: a.fp + c.fp, fn_: a.fn_ + c.fn_, support: a.support + c.support }
    });
    total.fbeta(2.0)
}

/// `matrix[true][predicted]` counts over `labels` labels.
pub fn confusion(y_true: &[usize], y_pred: &[usize], labels: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; labels]; labels];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        m[t][p] += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand from the definitions (and what scikit-learn prints).
    #[test]
    fn single_label_by_hand() {
        // labels 0,1,2 (2 never predicted), label 3 never true but predicted.
        let y_true = [0, 0, 1, 1, 2];
        let y_pred = [0, 1, 1, 1, 3];
        let c = counts(&y_true, &y_pred, 4);
        assert_eq!(c[0], Counts { tp: 1, fp: 0, fn_: 1, support: 2 });
        assert_eq!(c[1], Counts { tp: 2, fp: 1, fn_: 0, support: 2 });
        assert_eq!((c[2].precision(), c[2].recall(), c[2].fbeta(1.0)), (0.0, 0.0, 0.0), "never predicted: zero_division=0");
        assert_eq!(c[3].recall(), 0.0, "never true: recall 0/0 -> 0");
        assert!((c[1].fbeta(1.0) - 0.8).abs() < 1e-12); // p 2/3, r 1 -> 0.8
        assert_eq!(accuracy(&y_true, &y_pred), 0.6);
        // macro over labels {0,1,2,3}: (2/3 + 0.8 + 0 + 0) / 4
        assert!((macro_f1(&y_true, &y_pred, 4) - (2.0 / 3.0 + 0.8) / 4.0).abs() < 1e-12);
        // F2 of label 0: p=1, r=0.5 -> 5*0.5/(4+... ) = 5*1*0.5/(4*1+0.5) = 0.5556
        assert!((c[0].fbeta(2.0) - 2.5 / 4.5).abs() < 1e-12);
    }

    #[test]
    fn report_rows_by_hand() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let rows = single_label_report(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 3], &[], &names);
        let classes: Vec<&str> = rows.iter().map(|r| r.class.as_str()).collect();
        assert_eq!(classes, ["a", "b", "c", "d", "micro avg", "macro avg", "weighted avg", "accuracy"]);
        let get = |name: &str| rows.iter().find(|r| r.class == name).unwrap().clone();
        // micro: tp 3, fp 2, fn 2 -> p = r = f1 = 0.6 (= accuracy).
        assert!((get("micro avg").f1 - 0.6).abs() < 1e-12);
        // weighted F1: (2/3 * 2 + 0.8 * 2 + 0 * 1 + 0 * 0) / 5
        assert!((get("weighted avg").f1 - (2.0 / 3.0 * 2.0 + 1.6) / 5.0).abs() < 1e-12);
        // weighted precision: (1 * 2 + 2/3 * 2 + 0) / 5
        assert!((get("weighted avg").precision - (2.0 + 4.0 / 3.0) / 5.0).abs() < 1e-12);
        assert_eq!(get("d").support, 0);
        assert_eq!(get("accuracy").f2, None);
        let none = single_label_report(&[0], &[0], &[], &names[..1]);
        assert_eq!(none.iter().find(|r| r.class == "macro avg").unwrap().f1, 1.0);
    }

    /// Expected values printed by scikit-learn 1.x for these indicator matrices:
    /// Y = [[1,0,1,0],[0,0,0,0],[1,1,0,0],[0,1,1,0]], P = [[1,0,0,0],[0,0,0,0],[1,0,0,1],[0,1,1,0]].
    #[test]
    fn multi_label_matches_scikit_learn() {
        let sets = |m: &[[u8; 4]]| m.iter().map(|r| (0..4).filter(|&i| r[i] == 1).collect::<Vec<usize>>()).collect::<Vec<_>>();
        let y = sets(&[[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]]);
        let p = sets(&[[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1], [0, 1, 1, 0]]);
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let rows = multi_label_report(&y, &p, &names);
        let get = |n: &str| rows.iter().find(|r| r.class == n).unwrap().clone();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        for (name, pr, rc, f1, f2) in [
            ("micro avg", 0.8, 0.666667, 0.727273, 0.689655),
            ("macro avg", 0.75, 0.5, 0.583333, 0.527778),
            ("weighted avg", 1.0, 0.666667, 0.777778, 0.703704),
            ("samples avg", 0.625, 0.5, 0.541667, 0.513889),
        ] {
            let r = get(name);
            assert!(close(r.precision, pr) && close(r.recall, rc) && close(r.f1, f1) && close(r.f2.unwrap(), f2), "{name}: {r:?}");
        }
        let b = get("b");
        assert!(close(b.f1, 0.666667) && close(b.f2.unwrap(), 0.555556) && b.support == 2);
        assert_eq!((get("d").precision, get("d").support), (0.0, 0));
    }

    /// The indexed forms score a resample exactly as the plain functions
    /// score the gathered items.
    #[test]
    fn indexed_metrics_equal_the_gathered_ones() {
        let y_true = [0, 0, 1, 1, 2, 3, 2];
        let y_pred = [0, 1, 1, 1, 3, 3, 0];
        for idx in [vec![0, 1, 2, 3, 4, 5, 6], vec![1, 1, 4, 6, 6, 0, 2], vec![5, 5, 5], vec![]] {
            let t: Vec<usize> = idx.iter().map(|&i| y_true[i]).collect();
            let p: Vec<usize> = idx.iter().map(|&i| y_pred[i]).collect();
            assert_eq!(macro_f1_at(&y_true, &y_pred, 4, &idx), macro_f1(&t, &p, 4), "{idx:?}");
        }
        let y = vec![vec![0, 2], vec![], vec![0, 1], vec![1, 2]];
        let p = vec![vec![0], vec![], vec![0, 3], vec![1, 2]];
        let samples = multi_label_sample_counts(&y, &p, 4);
        for idx in [vec![0, 1, 2, 3], vec![3, 3, 1, 0], vec![1, 1]] {
            let (ys, ps): (Vec<Vec<usize>>, Vec<Vec<usize>>) = idx.iter().map(|&i| (y[i].clone(), p[i].clone())).unzip();
            assert_eq!(micro_f2_at(&samples, &idx), multi_label_f2(&ys, &ps, 4, Average::Micro), "{idx:?}");
        }
    }

    #[test]
    fn top_k_with_ties_ranks_the_higher_label_first() {
        // Scores tie between labels 0 and 2: label 2 ranks first (scikit-learn).
        let scores = vec![vec![0.5, 0.1, 0.5, 0.2]];
        assert_eq!(top_k_accuracy(&[2], &scores, 1), 1.0);
        assert_eq!(top_k_accuracy(&[0], &scores, 1), 0.0);
        assert_eq!(top_k_accuracy(&[0], &scores, 2), 1.0);
        assert_eq!(top_k_accuracy(&[1], &scores, 3), 0.0);
        assert_eq!(top_k_accuracy(&[1], &scores, 4), 1.0, "k >= labels: always a hit");
        let many = vec![vec![0.9, 0.05, 0.05], vec![0.1, 0.2, 0.7]];
        assert_eq!(top_k_accuracy(&[1, 1], &many, 2), 0.5, "the 0.05 tie ranks label 2 above 1");
        assert_eq!(confusion(&[0, 1, 1], &[1, 1, 0], 2), vec![vec![0, 1], vec![1, 1]]);
    }
}
