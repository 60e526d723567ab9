//! What `evaluate` adds beside the comparison table: whether the differences
//! between approaches are significant (`significance.csv` and a section of
//! `comparison.md` and `report.html`), and the summaries of approaches that
//! differ only by their repeat (seed).
//!
//! Pairs: every two approaches scored on the same test images — the same
//! task and classes, the same image ids and `y_true` in the same order.
//! Single-label pairs get McNemar's exact test on accuracy and a paired
//! bootstrap of the macro-F1 difference; multi-label pairs a paired
//! bootstrap of the micro-F2 difference. The bootstrap draws
//! [`RESAMPLES`] resamples from the stage seed, the same ones for every
//! approach of a group, so each approach is scored once per resample. All
//! p-values of the section are Holm-adjusted together.

use std::fmt::Write as _;

use pipe_core::metrics::significance::{Bootstrap, bootstrap_from_differences, holm, mcnemar_exact, mean_std_ci95, resample_indices};
use pipe_core::metrics::{Counts, Row, accuracy, macro_f1_at, micro_f2_at, multi_label_sample_counts};

/// Bootstrap resamples per group of comparable approaches.
pub const RESAMPLES: usize = 1000;

/// The level of the marks, after the Holm adjustment.
pub const ALPHA: f64 = 0.05;

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
    fn pairs_with(&self, other: &Scored) -> bool {
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

fn p_text(p: f64) -> String {
    if p < 1e-4 { "<0.0001".into() } else { format!("{p:.4}") }
}

/// The rows of the significance table (header first), as shown.
pub fn significance_rows(rows: &[Comparison]) -> Vec<Vec<String>> {
    let mut out = vec![["A", "B", "metric", "A - B", "95% interval", "p", "p (Holm)"].map(String::from).to_vec()];
    for c in rows {
        out.push(vec![
            c.a.clone(),
            c.b.clone(),
            c.metric.to_string(),
            format!("{:+.3}{}", c.difference, if c.significant() { "*" } else { "" }),
            c.interval.map_or("-".into(), |(lo, hi)| format!("[{lo:+.3}, {hi:+.3}]")),
            p_text(c.p_value),
            p_text(c.p_holm),
        ]);
    }
    out
}

/// What the section tests, in one paragraph.
pub fn significance_intro(seed: u64) -> String {
    format!(
        "Pairs of approaches scored on the same test images: McNemar's exact test on accuracy, and a paired bootstrap of the \
         macro-F1 difference (micro F2 for multi-label approaches; {RESAMPLES} resamples, seed {seed}) with its 95% percentile \
         interval. Differences are A - B."
    )
}

/// The footnote on the marks.
pub fn significance_note(rows: &[Comparison]) -> String {
    format!("* : significant at {ALPHA}, Holm-adjusted over {} comparisons.", rows.len())
}

/// The `## Significance` section of `comparison.md` (empty without pairs).
pub fn significance_markdown(rows: &[Comparison], seed: u64) -> String {
    if rows.is_empty() {
        return String::new();
    }
    format!("\n## Significance\n\n{}\n\n{}\n\\{}\n", significance_intro(seed), markdown(&significance_rows(rows)), significance_note(rows))
}

/// `significance.csv`: a, b, metric, difference, ci_low, ci_high, p_value,
/// p_holm, significant (numbers in full; no interval for McNemar).
pub fn significance_csv(rows: &[Comparison]) -> String {
    let mut text = String::from("a,b,metric,difference,ci_low,ci_high,p_value,p_holm,significant\n");
    for c in rows {
        let (lo, hi) = c.interval.map_or((String::new(), String::new()), |(lo, hi)| (lo.to_string(), hi.to_string()));
        let _ = writeln!(
            text,
            "{},{},{},{},{lo},{hi},{},{},{}",
            super::csv_field(&c.a),
            super::csv_field(&c.b),
            c.metric,
            c.difference,
            c.p_value,
            c.p_holm,
            c.significant()
        );
    }
    text
}

/// An approach's name without its `repeat=N` entry, and N: `svm[words=50,repeat=0]`
/// is `svm[words=50]` repeat 0, `cnn[repeat=2]-combined` is `cnn-combined`
/// repeat 2, `svm` has no repeat. Values may hold brackets and commas
/// (`c=[1.0,10.0]`): entries are split at the bracket's own level.
pub fn variant_of(name: &str) -> (String, Option<u32>) {
    let Some(open) = name.find('[') else { return (name.to_string(), None) };
    let mut depth = 0;
    let mut close = None;
    let mut entries = Vec::new();
    let mut start = open + 1;
    for (i, ch) in name.char_indices().skip_while(|(i, _)| *i <= open) {
        match ch {
            '[' => depth += 1,
            ']' if depth == 0 => {
                entries.push(&name[start..i]);
                close = Some(i);
                break;
            }
            ']' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(&name[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let Some(close) = close else { return (name.to_string(), None) };
    let repeat = entries.iter().find_map(|e| e.strip_prefix("repeat=").and_then(|v| v.parse::<u32>().ok()));
    let Some(repeat) = repeat else { return (name.to_string(), None) };
    let rest: Vec<&str> = entries.into_iter().filter(|e| e.strip_prefix("repeat=").and_then(|v| v.parse::<u32>().ok()).is_none()).collect();
    let bracket = if rest.is_empty() { String::new() } else { format!("[{}]", rest.join(",")) };
    (format!("{}{bracket}{}", &name[..open], &name[close + 1..]), Some(repeat))
}

/// The rows of the repeats table (header first): one per approach that
/// has repeats, with mean ± std and the t interval over its repeats of
/// accuracy and macro F1 (single-label) or micro F2 (multi-label). Empty
/// when no approach has repeats.
pub fn repeat_rows(table: &[(String, String, Row)]) -> Vec<Vec<String>> {
    let mut variants: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, _, _) in table {
        let (variant, repeat) = variant_of(name);
        if repeat.is_none() {
            continue;
        }
        match variants.iter_mut().find(|(v, _)| *v == variant) {
            Some((_, members)) if !members.contains(&name.as_str()) => members.push(name),
            Some(_) => {}
            None => variants.push((variant, vec![name])),
        }
    }
    if variants.is_empty() {
        return Vec::new();
    }
    let metrics: [(&str, &str, &str); 3] =
        [("accuracy", "accuracy", "single"), ("macro F1", "macro avg", "single"), ("micro F2", "micro avg", "multi")];
    let mut out = vec![["approach", "repeats"].into_iter().chain(metrics.iter().map(|m| m.0)).map(String::from).collect::<Vec<_>>()];
    for (variant, members) in variants {
        let mut row = vec![variant, members.len().to_string()];
        for (title, class, task) in metrics {
            let values: Vec<f64> = members
                .iter()
                .filter_map(|m| {
                    table
                        .iter()
                        .find(|(a, t, r)| a == m && t == task && r.class == class)
                        .map(|(_, _, r)| if title == "micro F2" { r.f2.unwrap_or(f64::NAN) } else { r.f1 })
                })
                .collect();
            row.push(if values.is_empty() {
                "-".into()
            } else {
                let s = mean_std_ci95(&values);
                format!("{:.3} ± {:.3} [{:.3}, {:.3}]", s.mean, s.std, s.ci_low, s.ci_high)
            });
        }
        out.push(row);
    }
    out
}

pub const REPEATS_INTRO: &str = "Approaches that differ only by their `repeat` (the same stage trained with other seeds): mean ± sample \
                                 standard deviation over the repeats, and the Student-t 95% interval of the mean.";

/// The `## Repeats` section of `comparison.md` (empty without repeats).
pub fn repeats_markdown(table: &[(String, String, Row)]) -> String {
    let rows = repeat_rows(table);
    if rows.is_empty() {
        return String::new();
    }
    format!("\n## Repeats\n\n{REPEATS_INTRO}\n\n{}", markdown(&rows))
}

/// Rows of cells (header first) as a Markdown table.
fn markdown(rows: &[Vec<String>]) -> String {
    let Some(header) = rows.first() else { return String::new() };
    let mut md = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in &rows[1..] {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_entries_come_off_the_name() {
        for (name, variant, repeat) in [
            ("svm", "svm", None),
            ("cnn_flat[repeat=2]", "cnn_flat", Some(2)),
            ("svm[words=50,repeat=0]", "svm[words=50]", Some(0)),
            ("svm[repeat=1,words=50]", "svm[words=50]", Some(1)),
            ("svm[c=[1.0,10.0],repeat=3]", "svm[c=[1.0,10.0]]", Some(3)),
            ("two[repeat=1]-combined", "two-combined", Some(1)),
            ("svm[words=50]", "svm[words=50]", None),
            ("svm[repeat=x]", "svm[repeat=x]", None),
            ("odd[repeat=1", "odd[repeat=1", None),
        ] {
            assert_eq!(variant_of(name), (variant.to_string(), repeat), "{name}");
        }
    }

    #[test]
    fn pairs_need_the_same_images_and_truth() {
        let single = |name: &str, truth: Vec<usize>, pred: Vec<usize>| Scored {
            name: name.into(),
            ids: (0..truth.len() as u32).collect(),
            classes: vec!["a".into(), "b".into()],
            labels: Labels::Single { truth, pred },
        };
        let approaches = vec![
            single("x", vec![0, 1, 0, 1], vec![0, 1, 1, 1]),
            single("other truth", vec![1, 1, 0, 1], vec![0, 1, 1, 1]),
            single("y", vec![0, 1, 0, 1], vec![0, 0, 0, 1]),
            single("fewer", vec![0, 1, 0], vec![0, 1, 0]),
        ];
        let rows = compare(&approaches, 3);
        let pairs: Vec<(&str, &str, &str)> = rows.iter().map(|c| (c.a.as_str(), c.b.as_str(), c.metric)).collect();
        assert_eq!(pairs, [("x", "y", "accuracy"), ("x", "y", "macro F1")]);
        assert_eq!(rows[0].difference, 0.0);
        assert_eq!(rows[0].p_value, 1.0, "one discordant image each way");
    }
}
