//! What `evaluate` adds beside the comparison table: whether the differences
//! between approaches are significant (`significance.csv` and a section of
//! `comparison.md` and `report.html`; the tests are
//! `pipe_core::metrics::pairs`), and the summaries of approaches that differ
//! only by their repeat (seed).

use std::fmt::Write as _;

use pipe_core::metrics::Row;
pub use pipe_core::metrics::pairs::{ALPHA, Comparison, Labels, RESAMPLES, Scored, compare, p_text};
use pipe_core::metrics::significance::{PairedT, holm, mean_std_ci95, paired_t};

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

/// Two variants with repeats, compared over their repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatComparison {
    pub a: String,
    pub b: String,
    pub metric: &'static str,
    pub test: PairedT,
    pub p_holm: f64,
}

/// A variant with repeats: its name, task, and members as (repeat, approach).
type RepeatGroup = (String, String, Vec<(u32, String)>);

/// Each variant with repeats: its members in repeat order, and its task.
fn repeat_groups(table: &[(String, String, Row)]) -> Vec<RepeatGroup> {
    let mut groups: Vec<RepeatGroup> = Vec::new();
    for (name, task, _) in table {
        let (variant, Some(k)) = variant_of(name) else { continue };
        match groups.iter_mut().find(|(v, _, _)| *v == variant) {
            Some((_, _, members)) if !members.iter().any(|(_, n)| n == name) => members.push((k, name.clone())),
            Some(_) => {}
            None => groups.push((variant, task.clone(), vec![(k, name.clone())])),
        }
    }
    for (_, _, members) in &mut groups {
        members.sort();
    }
    groups
}

/// Every two variants of one task with the same repeats (at least two):
/// Student's paired t-test, repeat K against repeat K (the same seed), on
/// accuracy and macro F1 (micro F2 for multi-label), Holm-adjusted together.
pub fn repeat_comparisons(table: &[(String, String, Row)]) -> Vec<RepeatComparison> {
    let groups = repeat_groups(table);
    let value = |name: &str, class: &str, f2: bool| {
        table.iter().find(|(a, _, r)| a == name && r.class == class).map(|(_, _, r)| if f2 { r.f2.unwrap_or(f64::NAN) } else { r.f1 })
    };
    let mut out = Vec::new();
    for (x, (va, task_a, ma)) in groups.iter().enumerate() {
        for (vb, task_b, mb) in groups.iter().skip(x + 1) {
            let same_repeats = ma.iter().map(|m| m.0).eq(mb.iter().map(|m| m.0));
            if task_a != task_b || !same_repeats || ma.len() < 2 {
                continue;
            }
            let metrics: &[(&'static str, &str, bool)] = if task_a == "multi" {
                &[("micro F2", "micro avg", true)]
            } else {
                &[("accuracy", "accuracy", false), ("macro F1", "macro avg", false)]
            };
            for &(metric, class, f2) in metrics {
                let a: Option<Vec<f64>> = ma.iter().map(|(_, n)| value(n, class, f2)).collect();
                let b: Option<Vec<f64>> = mb.iter().map(|(_, n)| value(n, class, f2)).collect();
                if let (Some(a), Some(b)) = (a, b) {
                    out.push(RepeatComparison { a: va.clone(), b: vb.clone(), metric, test: paired_t(&a, &b), p_holm: f64::NAN });
                }
            }
        }
    }
    let adjusted = holm(&out.iter().map(|c| c.test.p_value).collect::<Vec<_>>());
    for (c, p) in out.iter_mut().zip(adjusted) {
        c.p_holm = p;
    }
    out
}

pub const REPEATS_COMPARED_INTRO: &str = "Variants with the same repeats, compared over them: Student's paired t-test of repeat K against \
                                          repeat K (the same seed), on accuracy and macro F1 (micro F2 for multi-label). Differences are A - B.";

/// The rows of the repeats-compared table (header first).
pub fn repeat_comparison_rows(rows: &[RepeatComparison]) -> Vec<Vec<String>> {
    let mut out = vec![["A", "B", "metric", "repeats", "mean A - B", "t", "p", "p (Holm)"].map(String::from).to_vec()];
    for c in rows {
        out.push(vec![
            c.a.clone(),
            c.b.clone(),
            c.metric.to_string(),
            c.test.n.to_string(),
            format!("{:+.3}{}", c.test.mean_difference, if c.p_holm < ALPHA { "*" } else { "" }),
            format!("{:.2}", c.test.t),
            p_text(c.test.p_value),
            p_text(c.p_holm),
        ]);
    }
    out
}

/// The `## Repeats compared` section of `comparison.md` (empty without two variants to compare).
pub fn repeat_comparisons_markdown(rows: &[RepeatComparison]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "\n## Repeats compared\n\n{REPEATS_COMPARED_INTRO}\n\n{}\n\\* : significant at {ALPHA}, Holm-adjusted over {} comparisons.\n",
        markdown(&repeat_comparison_rows(rows)),
        rows.len()
    )
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

    fn row(class: &str, f1: f64) -> Row {
        Row { class: class.into(), precision: f1, recall: f1, f1, f2: None, support: 10 }
    }

    #[test]
    fn variants_with_the_same_repeats_are_compared_over_them() {
        let mut table = Vec::new();
        for (k, (a, b)) in [(0.81, 0.75), (0.79, 0.74), (0.84, 0.80)].iter().enumerate() {
            for (name, v) in [("cnn", a), ("svm", b)] {
                let approach = format!("{name}[repeat={k}]");
                table.push((approach.clone(), "single".to_string(), row("accuracy", *v)));
                table.push((approach, "single".to_string(), row("macro avg", *v)));
            }
        }
        table.push(("hog".to_string(), "single".to_string(), row("accuracy", 0.7)));
        let rows = repeat_comparisons(&table);
        assert_eq!(rows.len(), 2, "accuracy and macro F1 of cnn against svm; hog has no repeats");
        assert_eq!((rows[0].a.as_str(), rows[0].b.as_str(), rows[0].metric), ("cnn", "svm", "accuracy"));
        assert!((rows[0].test.p_value - 0.01307245756034668).abs() < 1e-9, "scipy's ttest_rel: {:?}", rows[0].test);
        assert!((rows[0].p_holm - 2.0 * 0.01307245756034668).abs() < 1e-9);
        let md = repeat_comparisons_markdown(&rows);
        assert!(md.contains("| cnn | svm | accuracy | 3 | +0.050* |"), "{md}");
    }

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
