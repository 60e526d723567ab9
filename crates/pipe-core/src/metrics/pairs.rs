//! Which differences between approaches are significant: the pairing and
//! the tests behind `evaluate`'s significance section (within a run) and
//! `pipe diff` (the same approach in two runs).
//!
//! Pairs: every two approaches scored on the same test images — the same
//! task and classes, the same image ids and `y_true` in the same order.
//! Single-label pairs get McNemar's exact test on accuracy and a paired
//! bootstrap of the macro-F1 difference; multi-label pairs a paired
//! bootstrap of the micro-F2 difference. The bootstrap draws
//! [`RESAMPLES`] resamples from the stage seed, the same ones for every
//! approach of a group, so each approach is scored once per resample. All
//! p-values of the section are Holm-adjusted together.

use super::significance::{Bootstrap, bootstrap_from_differences, holm, mcnemar_exact, resample_indices};
use super::{Counts, accuracy, macro_f1_at, micro_f2_at, multi_label_sample_counts};

/// Bootstrap resamples per group of comparable approaches.
pub const RESAMPLES: usize = 1000;

/// The level of the marks, after the Holm adjustment.
pub const ALPHA: f64 = 0.05;

/// A p-value as the reports print it: four decimals, or `<0.0001`.
pub fn p_text(p: f64) -> String {
    if p < 1e-4 { "<0.0001".into() } else { format!("{p:.4}") }
}

/// What `evaluate` read of one approach's predictions, for pairing.
pub struct Scored {
    pub name: String,
    pub ids: Vec<u32>,
    pub classes: Vec<String>,
    pub labels: Labels,
}

pub enum Labels {
    Single { truth: Vec<usize>, pred: Vec<usize> },
    Multi { truth: Vec<Vec<usize>>, pred: Vec<Vec<usize>> },
}

impl Scored {
    /// Scored on the same test images with the same truth.
    pub fn pairs_with(&self, other: &Scored) -> bool {
        let same_truth = match (&self.labels, &other.labels) {
            (Labels::Single { truth: a, .. }, Labels::Single { truth: b, .. }) => a == b,
            (Labels::Multi { truth: a, .. }, Labels::Multi { truth: b, .. }) => a == b,
            _ => false,
        };
        same_truth && self.ids == other.ids && self.classes == other.classes
    }

    /// The metric of the bootstrap.
    fn metric_name(&self) -> &'static str {
        match self.labels {
            Labels::Single { .. } => "macro F1",
            Labels::Multi { .. } => "micro F2",
        }
    }
}

/// One comparison of the section.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// `accuracy` (McNemar), `macro F1` or `micro F2` (bootstrap).
    pub metric: &'static str,
    /// A's value minus B's, on the whole test split.
    pub difference: f64,
    /// The bootstrap's 95% interval of the difference (none for McNemar).
    pub interval: Option<(f64, f64)>,
    pub p_value: f64,
    pub p_holm: f64,
}

impl Comparison {
    pub fn significant(&self) -> bool {
        self.p_holm < ALPHA
    }
}

/// Every comparison between the pairs of `approaches`, in input order (A
/// before B), Holm-adjusted together.
pub fn compare(approaches: &[Scored], seed: u64) -> Vec<Comparison> {
    compare_where(approaches, seed, |_, _| true)
}

/// [`compare`], for the pairs `keep(i, j)` accepts (`pipe diff` compares
/// each approach of run A with the same approach of run B only).
pub fn compare_where(approaches: &[Scored], seed: u64, keep: impl Fn(usize, usize) -> bool) -> Vec<Comparison> {
    // Groups of approaches on the same images, by their first member.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, s) in approaches.iter().enumerate() {
        match groups.iter_mut().find(|g| approaches[g[0]].pairs_with(s)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let mut keyed: Vec<((usize, usize, usize), Comparison)> = Vec::new();
    for group in groups.iter().filter(|g| g.len() > 1) {
        let members: Vec<&Scored> = group.iter().map(|&i| &approaches[i]).collect();
        let boot = bootstraps(&members, seed);
        for (x, &i) in group.iter().enumerate() {
            for (y, &j) in group.iter().enumerate().skip(x + 1) {
                if !keep(i, j) {
                    continue;
                }
                let (a, b) = (&approaches[i], &approaches[j]);
                let row = |metric, difference, interval, p_value| Comparison {
                    a: a.name.clone(),
                    b: b.name.clone(),
                    metric,
                    difference,
                    interval,
                    p_value,
                    p_holm: f64::NAN,
                };
                if let (Labels::Single { truth, pred: pa }, Labels::Single { pred: pb, .. }) = (&a.labels, &b.labels) {
                    let right = |p: &[usize]| truth.iter().zip(p).map(|(t, p)| t == p).collect::<Vec<bool>>();
                    let m = mcnemar_exact(&right(pa), &right(pb));
                    keyed.push(((i, j, 0), row("accuracy", accuracy(truth, pa) - accuracy(truth, pb), None, m.p_value)));
                }
                let (oa, ra) = &boot[x];
                let (ob, rb) = &boot[y];
                let d: Bootstrap = bootstrap_from_differences(oa - ob, ra.iter().zip(rb).map(|(a, b)| a - b).collect());
                keyed.push(((i, j, 1), row(a.metric_name(), d.observed, Some((d.ci_low, d.ci_high)), d.p_value)));
            }
        }
    }
    keyed.sort_by_key(|(k, _)| *k);
    let mut rows: Vec<Comparison> = keyed.into_iter().map(|(_, c)| c).collect();
    let adjusted = holm(&rows.iter().map(|c| c.p_value).collect::<Vec<_>>());
    for (c, p) in rows.iter_mut().zip(adjusted) {
        c.p_holm = p;
    }
    rows
}

/// Per member: the bootstrap metric on the whole split, and on each of the
/// group's resamples (the same resamples for all; `paired_bootstrap` of two
/// members gives the same differences).
fn bootstraps(members: &[&Scored], seed: u64) -> Vec<(f64, Vec<f64>)> {
    let n = members[0].ids.len();
    enum Scorer<'a> {
        Single(&'a [usize], &'a [usize], usize),
        Multi(Vec<Counts>),
    }
    let scorers: Vec<Scorer> = members
        .iter()
        .map(|s| match &s.labels {
            Labels::Single { truth, pred } => Scorer::Single(truth, pred, s.classes.len()),
            Labels::Multi { truth, pred } => Scorer::Multi(multi_label_sample_counts(truth, pred, s.classes.len())),
        })
        .collect();
    let score = |m: usize, idx: &[usize]| match &scorers[m] {
        Scorer::Single(truth, pred, labels) => macro_f1_at(truth, pred, *labels, idx),
        Scorer::Multi(samples) => micro_f2_at(samples, idx),
    };
    let all: Vec<usize> = (0..n).collect();
    let mut out: Vec<(f64, Vec<f64>)> = (0..members.len()).map(|m| (score(m, &all), Vec::with_capacity(RESAMPLES))).collect();
    for idx in resample_indices(n, RESAMPLES, seed) {
        for (m, (_, values)) in out.iter_mut().enumerate() {
            values.push(score(m, &idx));
        }
    }
    out
}
