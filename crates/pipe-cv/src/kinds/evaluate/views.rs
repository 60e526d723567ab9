//! The charts at the top of `report.html` (see `report::charts`), from what
//! evaluate has computed: the headline bars (one per variant, the mean over
//! its repeats with the 95% interval), the majority-class baseline, the
//! per-class F1 heatmap and the CNN approaches' training curves overlaid.

use pipe_core::metrics::Row;
use pipe_core::metrics::significance::mean_std_ci95;

use super::compare::{Labels, Scored, variant_of};
use crate::report::charts::{self, Curve, Estimate, Group};
use crate::report::html::Block;
use pipe_core::kinds::StageError;

/// The headline metrics: (title, row class, F2 instead of F1, task).
const METRICS: [(&str, &str, bool, &str); 3] =
    [("accuracy", "accuracy", false, "single"), ("macro F1", "macro avg", false, "single"), ("micro F2", "micro avg", true, "multi")];

/// Each variant (an approach without its `repeat=N`) and its approaches, in
/// first-seen order.
fn variants(table: &[(String, String, Row)]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (name, _, _) in table {
        let variant = variant_of(name).0;
        match out.iter_mut().find(|(v, _)| *v == variant) {
            Some((_, members)) if !members.contains(name) => members.push(name.clone()),
            Some(_) => {}
            None => out.push((variant, vec![name.clone()])),
        }
    }
    out
}

/// The headline chart's metrics (those some approach has) and one group per
/// variant: the mean over its repeats, with the 95% interval when there are
/// at least two.
pub fn headline(table: &[(String, String, Row)]) -> (Vec<&'static str>, Vec<Group>) {
    let present: Vec<_> = METRICS.iter().filter(|m| table.iter().any(|(_, task, _)| task == m.3)).collect();
    let groups = variants(table)
        .into_iter()
        .map(|(variant, members)| {
            let values = present
                .iter()
                .map(|&&(_, class, f2, task)| {
                    let values: Vec<f64> = members
                        .iter()
                        .filter_map(|m| {
                            table
                                .iter()
                                .find(|(a, t, r)| a == m && t == task && r.class == class)
                                .and_then(|(_, _, r)| if f2 { r.f2 } else { Some(r.f1) })
                        })
                        .collect();
                    if values.is_empty() {
                        return None;
                    }
                    let s = mean_std_ci95(&values);
                    Some(Estimate { mean: s.mean, interval: (values.len() > 1).then_some((s.ci_low, s.ci_high)) })
                })
                .collect();
            Group { name: variant, values }
        })
        .collect();
    (present.iter().map(|m| m.0).collect(), groups)
}

/// The share of the most frequent class among the test images, from the
/// single-label approach scored on the most images.
pub fn majority_baseline(scored: &[Scored]) -> Option<f64> {
    let truth = scored
        .iter()
        .filter_map(|s| match &s.labels {
            Labels::Single { truth, .. } if !truth.is_empty() => Some((truth, s.classes.len())),
            _ => None,
        })
        .fold(None, |best: Option<(&Vec<usize>, usize)>, t| if best.is_some_and(|b| b.0.len() >= t.0.len()) { best } else { Some(t) })?;
    let mut counts = vec![0usize; truth.1.max(truth.0.iter().max().map_or(0, |m| m + 1))];
    for &t in truth.0 {
        counts[t] += 1;
    }
    Some(*counts.iter().max()? as f64 / truth.0.len() as f64)
}

/// The heatmap's classes (by support, descending; ties in first-seen
/// order), variants (columns) and F1 (mean over a variant's repeats).
pub fn heatmap(table: &[(String, String, Row)], scored: &[Scored]) -> (Vec<String>, Vec<String>, Vec<Vec<Option<f64>>>) {
    let class_row = |approach: &str, class: &str| -> Option<&Row> {
        let classes = &scored.iter().find(|s| s.name == approach)?.classes;
        if !classes.iter().any(|c| c == class) {
            return None;
        }
        table.iter().find(|(a, _, r)| a == approach && r.class == class).map(|(_, _, r)| r)
    };
    let mut classes: Vec<(String, usize)> = Vec::new();
    // The approaches of this table only (one task's).
    for s in scored.iter().filter(|s| table.iter().any(|(a, _, _)| *a == s.name)) {
        for c in &s.classes {
            let support = class_row(&s.name, c).map_or(0, |r| r.support);
            match classes.iter_mut().find(|(x, _)| x == c) {
                Some((_, best)) => *best = (*best).max(support),
                None => classes.push((c.clone(), support)),
            }
        }
    }
    classes.sort_by_key(|c| std::cmp::Reverse(c.1));
    let variants = variants(table);
    let f1 = classes
        .iter()
        .map(|(c, _)| {
            variants
                .iter()
                .map(|(_, members)| {
                    let values: Vec<f64> = members.iter().filter_map(|m| class_row(m, c).map(|r| r.f1)).collect();
                    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
                })
                .collect()
        })
        .collect();
    (classes.into_iter().map(|c| c.0).collect(), variants.into_iter().map(|v| v.0).collect(), f1)
}

/// A column of a `history.csv` (empty without it).
pub fn history_column(history: &str, name: &str) -> Vec<f64> {
    let header: Vec<&str> = history.lines().next().unwrap_or_default().split(',').collect();
    let Some(c) = header.iter().position(|h| *h == name) else { return Vec::new() };
    history.lines().skip(1).filter_map(|l| l.split(',').nth(c).and_then(|v| v.parse().ok())).collect()
}

/// The training charts: per metric some history has (validation loss,
/// accuracy, F2), one curve per approach, its best-validation-loss epoch marked.
pub fn training(histories: &[(String, String)]) -> Vec<(&'static str, Vec<Curve>)> {
    let mut out = Vec::new();
    for (metric, column) in [("validation loss", "val_loss"), ("validation accuracy", "val_accuracy"), ("validation F2", "val_f2")] {
        let curves: Vec<Curve> = histories
            .iter()
            .enumerate()
            .filter_map(|(i, (name, text))| {
                let values = history_column(text, column);
                let best = charts::argmin(&history_column(text, "val_loss"));
                (!values.is_empty()).then(|| Curve { name: name.clone(), colour: i, values, best })
            })
            .collect();
        if !curves.is_empty() {
            out.push((metric, curves));
        }
    }
    out
}

/// `svm[words=50,c=1]` as `("svm", [("words", "50"), ("c", "1")])`; `None`
/// for a name without a variant.
fn assignments(variant: &str) -> Option<(String, Vec<(String, String)>)> {
    let open = variant.find('[')?;
    let inner = variant[open + 1..].strip_suffix(']')?;
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in inner.char_indices().chain(std::iter::once((inner.len(), ','))) {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                let (k, v) = inner[start..i].split_once('=')?;
                out.push((k.to_string(), v.to_string()));
                start = i + 1;
            }
            _ => {}
        }
    }
    Some((variant[..open].to_string(), out))
}

/// The sweep charts: for each swept parameter (and headline metric), one
/// line per approach with the other swept values fixed, over the
/// parameter's values (sorted as numbers when they are); only lines with
/// two values or more.
#[allow(clippy::type_complexity)]
pub fn sweeps(table: &[(String, String, Row)]) -> Vec<(String, &'static str, Vec<String>, Vec<charts::SweepLine>)> {
    // (param, metric) -> line name -> value -> the metric of each repeat.
    let mut found: std::collections::BTreeMap<(String, &'static str), Vec<(String, Vec<(String, Vec<f64>)>)>> = Default::default();
    for (name, task, r) in table {
        let (metric, value) = match (task.as_str(), r.class.as_str()) {
            ("single", "accuracy") => ("accuracy", Some(r.f1)),
            ("multi", "micro avg") => ("micro F2", r.f2),
            _ => continue,
        };
        let Some(value) = value else { continue };
        let Some((base, given)) = assignments(&variant_of(name).0) else { continue };
        for (param, at) in &given {
            let others: Vec<String> = given.iter().filter(|(p, _)| p != param).map(|(p, v)| format!("{p}={v}")).collect();
            let line = if others.is_empty() { base.clone() } else { format!("{base}[{}]", others.join(",")) };
            let lines = found.entry((param.clone(), metric)).or_default();
            let at_line = match lines.iter_mut().position(|(l, _)| *l == line) {
                Some(k) => &mut lines[k].1,
                None => {
                    lines.push((line, Vec::new()));
                    &mut lines.last_mut().expect("just pushed").1
                }
            };
            match at_line.iter_mut().find(|(v, _)| v == at) {
                Some((_, values)) => values.push(value),
                None => at_line.push((at.clone(), vec![value])),
            }
        }
    }
    let as_number = |v: &str| v.parse::<f64>().ok();
    found
        .into_iter()
        .filter_map(|((param, metric), lines)| {
            let mut values: Vec<String> = lines.iter().flat_map(|(_, pts)| pts.iter().map(|(v, _)| v.clone())).collect();
            values.sort_by(|a, b| match (as_number(a), as_number(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            });
            values.dedup();
            let lines: Vec<charts::SweepLine> = lines
                .into_iter()
                .filter(|(_, pts)| pts.len() >= 2)
                .map(|(name, pts)| {
                    let mut points: Vec<(String, Estimate)> = pts
                        .into_iter()
                        .map(|(v, xs)| {
                            let s = mean_std_ci95(&xs);
                            (v, Estimate { mean: s.mean, interval: (xs.len() > 1).then_some((s.ci_low, s.ci_high)) })
                        })
                        .collect();
                    points.sort_by_key(|(v, _)| values.iter().position(|x| x == v));
                    charts::SweepLine { name, points }
                })
                .collect();
            (!lines.is_empty()).then_some((param, metric, values, lines))
        })
        .collect()
}

/// The chart blocks, in order: headline, heatmap, sweeps, training curves.
pub fn blocks(
    table: &[(String, String, Row)],
    scored: &[Scored],
    histories: &[(String, String)],
    partial: &super::Partial,
) -> Result<Vec<Block>, StageError> {
    let err = |e: crate::report::charts::ChartError| StageError::Failed(format!("chart: {e}"));
    let mut out = Vec::new();
    if table.is_empty() {
        return Ok(out);
    }
    let (metrics, mut groups) = headline(table);
    // Partial approaches last, marked: never read as the best bar.
    let is_partial = |variant: &str| partial.keys().any(|a| variant_of(a).0 == variant);
    for g in groups.iter_mut().filter(|g| is_partial(&g.name)) {
        g.name = format!("{} (partial)", g.name);
    }
    groups.sort_by_key(|g| g.name.ends_with(" (partial)"));
    let baseline = majority_baseline(scored);
    out.push(Block::Heading("Charts".into()));
    out.push(Block::Svg(
        format!(
            "accuracy and macro F1 (multi-label: micro F2) per approach; with repeats, the mean and its 95% interval{}",
            baseline.map_or(String::new(), |b| format!("; the line: always predicting the most frequent class ({b:.3})"))
        ),
        charts::headline_svg(&metrics, &groups, baseline).map_err(err)?,
    ));
    // One heatmap per task: classes and keywords are different rows.
    for (task, what) in [("single", "class"), ("multi", "label (multi-label)")] {
        let of_task: Vec<(String, String, Row)> = table.iter().filter(|t| t.1 == task).cloned().collect();
        let (classes, variants, f1) = heatmap(&of_task, scored);
        if !classes.is_empty() {
            out.push(Block::Svg(
                format!("F1 per {what} (rows, by support) and approach (mean over repeats)"),
                charts::heatmap_svg(&classes, &variants, &f1).map_err(err)?,
            ));
        }
    }
    for (param, metric, values, lines) in sweeps(table) {
        out.push(Block::Svg(
            format!("{metric} against the swept `{param}`: one line per approach; with repeats, the mean and its 95% interval"),
            charts::sweep_svg(&param, metric, &values, &lines).map_err(err)?,
        ));
    }
    for (metric, curves) in training(histories) {
        out.push(Block::Svg(
            format!("{metric} per epoch of every CNN approach; the point: the epoch with the best validation loss"),
            charts::curves_svg(metric, &curves).map_err(err)?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(class: &str, f1: f64, support: usize) -> Row {
        Row { class: class.into(), precision: f1, recall: f1, f1, f2: None, support }
    }

    #[test]
    fn repeats_make_one_bar_with_an_interval() {
        let mut table = Vec::new();
        for (name, acc) in [("cnn[repeat=0]", 0.8), ("cnn[repeat=1]", 0.9), ("svm", 0.7)] {
            table.push((name.to_string(), "single".to_string(), row("a", acc, 3)));
            table.push((name.to_string(), "single".to_string(), row("accuracy", acc, 10)));
            table.push((name.to_string(), "single".to_string(), row("macro avg", acc - 0.1, 10)));
        }
        let (metrics, groups) = headline(&table);
        assert_eq!(metrics, ["accuracy", "macro F1"]);
        assert_eq!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["cnn", "svm"]);
        let cnn = groups[0].values[0].unwrap();
        assert!((cnn.mean - 0.85).abs() < 1e-12 && cnn.interval.is_some());
        assert_eq!(groups[1].values[0], Some(Estimate { mean: 0.7, interval: None }));
        let scored: Vec<Scored> = ["cnn[repeat=0]", "cnn[repeat=1]", "svm"]
            .iter()
            .map(|n| Scored {
                name: n.to_string(),
                ids: vec![0, 1, 2, 3],
                classes: vec!["a".into(), "b".into()],
                labels: Labels::Single { truth: vec![0, 1, 1, 1], pred: vec![0, 1, 1, 0] },
            })
            .collect();
        assert_eq!(majority_baseline(&scored), Some(0.75));
        let (classes, variants, f1) = heatmap(&table, &scored);
        assert_eq!((classes, variants), (vec!["a".to_string(), "b".to_string()], vec!["cnn".to_string(), "svm".to_string()]));
        assert!((f1[0][0].unwrap() - 0.85).abs() < 1e-12 && f1[1][0].is_none());
        let histories = vec![(
            "cnn[repeat=0]".to_string(),
            "epoch,train_loss,val_loss,val_accuracy\n1,1,0.9,0.5\n2,0.8,0.7,0.6\n3,0.6,0.75,0.7\n".to_string(),
        )];
        let t = training(&histories);
        assert_eq!(t.iter().map(|c| c.0).collect::<Vec<_>>(), ["validation loss", "validation accuracy"]);
        assert_eq!(t[1].1[0].best, Some(1));
        let blocks = blocks(&table, &scored, &histories, &Default::default()).unwrap();
        assert_eq!(blocks.iter().filter(|b| matches!(b, Block::Svg(..))).count(), 4);
    }

    #[test]
    fn a_sweep_charts_its_metric_against_each_swept_parameter() {
        let mut table = Vec::new();
        for (name, acc) in [
            ("svm[words=100,c=1,repeat=0]", 0.6),
            ("svm[words=100,c=1,repeat=1]", 0.7),
            ("svm[words=50,c=1,repeat=0]", 0.5),
            ("svm[words=50,c=1,repeat=1]", 0.5),
            ("svm[words=100,c=10,repeat=0]", 0.8),
            ("cnn", 0.9),
        ] {
            table.push((name.to_string(), "single".to_string(), row("accuracy", acc, 10)));
        }
        assert_eq!(assignments("svm[words=50,c=1]"), Some(("svm".into(), vec![("words".into(), "50".into()), ("c".into(), "1".into())])));
        assert_eq!(assignments("cnn"), None);
        let charts = sweeps(&table);
        let words = charts.iter().find(|c| c.0 == "words").expect("a chart for words");
        assert_eq!((words.1, &words.2), ("accuracy", &vec!["50".to_string(), "100".to_string()]), "sorted as numbers");
        assert_eq!(words.3.len(), 1, "c=10 has one value of words: no line");
        let line = &words.3[0];
        assert_eq!(line.name, "svm[c=1]");
        assert_eq!(line.points[0].1.mean, 0.5);
        assert!((line.points[1].1.mean - 0.65).abs() < 1e-12 && line.points[1].1.interval.is_some());
        let c = charts.iter().find(|c| c.0 == "c").expect("a chart for c");
        assert_eq!(c.3[0].name, "svm[words=100]");
        let blocks = blocks(&table, &[], &[], &Default::default()).unwrap();
        let svgs: Vec<&String> = blocks.iter().filter_map(|b| if let Block::Svg(caption, _) = b { Some(caption) } else { None }).collect();
        assert!(svgs.iter().any(|c| c.starts_with("accuracy against the swept `words`")), "{svgs:?}");
    }
}
