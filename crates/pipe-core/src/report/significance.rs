//! `pipe diff`'s significance: the same approach in two runs, tested like
//! two approaches within one run (`metrics::pairs`) when both runs scored it
//! on the same test images (the same image ids, classes and true labels, read
//! from each run's `predictions/<approach>.parquet`): McNemar's exact test
//! on accuracy and a paired bootstrap of the macro-F1 difference (micro F2
//! for multi-label approaches), Holm-adjusted over every test shown. When the
//! test images differ, it says why and the deltas stand alone.

use std::path::Path;

use polars::prelude::*;

use crate::fsx;
use crate::metrics::pairs::{Comparison, Labels, RESAMPLES, Scored, compare_where, p_text};

/// The bootstrap's seed: fixed, so a diff of the same two runs always reads the same.
pub const SEED: u64 = 0;

/// The tests between two runs, and the approaches that could not be tested.
#[derive(Debug, Clone, Default)]
pub struct RunSignificance {
    /// A is the first run, B the second: `difference` is A - B.
    pub rows: Vec<Comparison>,
    /// (approach, why it was not tested).
    pub untested: Vec<(String, String)>,
}

/// Tests every approach whose predictions both run folders hold; what
/// cannot be tested is named in `untested`, never an error.
pub fn between(a: &Path, b: &Path) -> RunSignificance {
    let mut scored = Vec::new();
    let mut untested = Vec::new();
    let (in_a, in_b) = match (approaches(a), approaches(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(why), _) | (_, Err(why)) => {
            untested.push(("every approach".to_string(), why));
            (Vec::new(), Vec::new())
        }
    };
    for name in in_a.iter().filter(|n| in_b.contains(n)) {
        // A file that cannot be read, or a row without an id or with an
        // unknown label, is a named gap: never a guess in the test.
        let (x, y) = match (read(a, name), read(b, name)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(e), _) | (_, Err(e)) => {
                untested.push((name.clone(), format!("its predictions cannot be used: {e}")));
                continue;
            }
        };
        match why_not(&x, &y) {
            None => scored.extend([x, y]),
            Some(why) => untested.push((name.clone(), why)),
        }
    }
    // Each approach of A only against the same approach of B.
    let rows = compare_where(&scored, SEED, |i, j| i % 2 == 0 && j == i + 1);
    RunSignificance { rows, untested }
}

/// The approaches a run folder holds predictions of, sorted (none without a
/// `predictions/` folder: the deltas say the rest); why not, if the folder
/// is there but cannot be read.
fn approaches(run: &Path) -> Result<Vec<String>, String> {
    let dir = run.join("predictions");
    let entries = match fsx::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{} cannot be read: {}", dir.display(), e.source)),
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".parquet")).map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Why two runs' predictions of one approach cannot be paired, if they cannot.
fn why_not(a: &Scored, b: &Scored) -> Option<String> {
    if a.ids.len() != b.ids.len() {
        return Some(format!("the test sets differ ({} vs {} images)", a.ids.len(), b.ids.len()));
    }
    if a.ids != b.ids {
        return Some("the test sets hold different images".into());
    }
    if a.classes != b.classes {
        return Some("the classes differ".into());
    }
    if !a.pairs_with(b) {
        return Some("the true labels differ".into());
    }
    None
}

/// One approach's predictions, as the pairing reads them; why not, naming the file.
fn read(run: &Path, approach: &str) -> Result<Scored, String> {
    let path = run.join("predictions").join(format!("{approach}.parquet"));
    let file = fsx::open(&path).map_err(|e| e.to_string())?;
    read_frame(ParquetReader::new(file).finish(), approach).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_frame(df: PolarsResult<DataFrame>, approach: &str) -> PolarsResult<Scored> {
    let df = df?;
    let bad = |what: String| PolarsError::ComputeError(what.into());
    let ids: Vec<u32> = df
        .column("id")?
        .cast(&DataType::UInt32)?
        .u32()?
        .into_iter()
        .enumerate()
        .map(|(row, v)| v.ok_or_else(|| bad(format!("row {row} has no id"))))
        .collect::<PolarsResult<_>>()?;
    let mut classes: Vec<String> =
        df.get_column_names().iter().filter_map(|c| c.strip_prefix("score_")).map(str::to_string).collect::<Vec<_>>();
    let strings = |name: &str| -> Result<Vec<String>, PolarsError> {
        Ok(df.column(name)?.str()?.into_iter().map(|v| v.unwrap_or_default().to_string()).collect())
    };
    let labels = if df.get_column_names().iter().any(|c| c.as_str() == "y_true_ids") {
        // Lists (this version), or `|`- or space-joined text (older runs).
        let sets = |name: &str| -> Result<Vec<Vec<usize>>, PolarsError> {
            let sets = crate::data::predictions::label_id_sets(df.column(name)?).map_err(|e| PolarsError::ComputeError(e.0.into()))?;
            Ok(sets.into_iter().map(|s| s.into_iter().map(|i| i as usize).collect()).collect())
        };
        Labels::Multi { truth: sets("y_true_ids")?, pred: sets("y_pred_ids")? }
    } else {
        let (truth, pred) = (strings("y_true")?, strings("y_pred")?);
        if classes.is_empty() {
            classes = truth.iter().chain(&pred).cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        }
        let index = |column: &str, values: &[String]| -> PolarsResult<Vec<usize>> {
            values
                .iter()
                .enumerate()
                .map(|(row, name)| {
                    classes
                        .iter()
                        .position(|c| c == name)
                        .ok_or_else(|| bad(format!("row {row}: `{column}` is `{name}`, not one of its classes")))
                })
                .collect()
        };
        Labels::Single { truth: index("y_true", &truth)?, pred: index("y_pred", &pred)? }
    };
    Ok(Scored { name: approach.to_string(), ids, classes, labels })
}

/// The section `pipe diff` prints (table or Markdown), with B - A as the
/// delta column does.
pub fn render(s: &RunSignificance, markdown: bool) -> String {
    let mut out = String::new();
    if s.rows.is_empty() && s.untested.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "\nsignificance (the same approach on the same test images; McNemar's exact test on accuracy, paired bootstrap of \
         macro F1 or micro F2 with {RESAMPLES} resamples, seed {SEED}; Holm-adjusted over {} tests):\n",
        s.rows.len()
    ));
    if !s.rows.is_empty() {
        let header = ["approach", "metric", "B - A", "95% interval", "p", "p (Holm)", "significant"];
        let rows: Vec<Vec<String>> = s
            .rows
            .iter()
            .map(|c| {
                vec![
                    c.a.clone(),
                    c.metric.to_string(),
                    format!("{:+.4}", 0.0 - c.difference),
                    c.interval.map_or(String::new(), |(lo, hi)| format!("[{:+.4}, {:+.4}]", 0.0 - hi, 0.0 - lo)),
                    p_text(c.p_value),
                    p_text(c.p_holm),
                    if c.significant() { "yes".into() } else { String::new() },
                ]
            })
            .collect();
        if markdown {
            out.push_str(&format!("\n| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len())));
            for r in &rows {
                out.push_str(&format!("| {} |\n", r.join(" | ")));
            }
        } else {
            out.push_str(&crate::report::table::table(&header, &rows));
        }
    }
    for (approach, why) in &s.untested {
        out.push_str(&format!("not tested: {approach}: {why}; compare the deltas only\n"));
    }
    out
}
