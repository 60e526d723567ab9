//! What a command stage's program must write, checked before anything is
//! published, and rewritten into the canonical files of pipe's own kinds:
//!
//! - `predictions`: `predictions.csv` with `id` (the image's row in its
//!   index), `y_pred` (a class name) and optionally one `score_<class>`
//!   column for every class. The ids must be exactly the test split of the
//!   reference input; pipe adds `source` and `y_true` and writes
//!   `predictions.csv`/`.parquet`/`.json` as the classifiers do.
//! - `multi-label-predictions`: `predictions.csv` with `id`, `y_pred` (label
//!   names joined by `|`, empty for none) and one `score_<label>` column per
//!   label; the ids are the test images that carry a label of the vocabulary.
//! - `histograms`: `histograms.f32`, one row of little-endian f32 per image
//!   of the reference input, in its index order (numpy:
//!   `x.astype("<f4").tofile(path)`); pipe adds `histograms.json` and the index.
//! - `files`: anything, handed on as it is.

use std::collections::BTreeMap;
use std::path::Path;

use pipe_core::data::bow::{HistogramsMeta, copy_index, read_f32, write_json};
use pipe_core::data::dataset::{Dataset, Row, label_sets};
use pipe_core::data::predictions::{LABEL_SEPARATOR, MultiPredictions, Predictions, PredictionsMeta};
use pipe_core::data::split::Split;
use pipe_core::fsx;
use pipe_core::kinds::{ArtifactType, InputArtifact};

/// Why a program's output cannot be published.
pub type Problem = String;

/// Checks the program's output in `out` and writes the canonical files.
pub fn publish(out: &Path, produces: ArtifactType, reference: Option<&InputArtifact>) -> Result<(), Problem> {
    if produces == ArtifactType::Files {
        return Ok(());
    }
    let reference = reference.ok_or("no input describes images, so there is nothing to check it against")?;
    let meta = Dataset::read_meta(&reference.dir).map_err(|e| e.to_string())?;
    let rows = Dataset::read_index(&reference.dir).map_err(|e| e.to_string())?;
    match produces {
        ArtifactType::Predictions => single(out, &meta.classes, &rows, &reference.stage),
        ArtifactType::MultiLabelPredictions => multi(out, &meta.labels, &rows, &reference.stage),
        ArtifactType::Histograms => histograms(out, rows.len(), reference),
        other => Err(format!("a command stage cannot produce {}", other.describe())),
    }
}

/// The rows of `predictions.csv`, checked against the expected test ids.
struct Table {
    header: Vec<String>,
    /// (line number, fields), in file order.
    rows: Vec<(usize, Vec<String>)>,
    path: std::path::PathBuf,
}

impl Table {
    fn read(out: &Path) -> Result<Table, Problem> {
        let path = out.join("predictions.csv");
        let text = match fsx::read_to_string_if_exists(&path) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(format!("it wrote no {} (write it into $PIPE_OUT)", path.display())),
            Err(e) => return Err(e.to_string()),
        };
        let mut records = parse_csv(&text).map_err(|(line, why)| format!("{} line {line}: {why}", path.display()))?.into_iter();
        let (_, header) = records.next().ok_or_else(|| format!("{} is empty", path.display()))?;
        Ok(Table { header, rows: records.collect(), path })
    }

    fn column(&self, name: &str) -> Result<usize, Problem> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{} has no `{name}` column (its header: {})", self.path.display(), self.header.join(",")))
    }

    /// The `score_<class>` columns: none, or one per class (and no other).
    fn scores(&self, classes: &[String], required: bool) -> Result<Option<Vec<usize>>, Problem> {
        let given: Vec<&String> = self.header.iter().filter(|h| h.starts_with("score_")).collect();
        if let Some(unknown) = given.iter().find(|h| !classes.iter().any(|c| format!("score_{c}") == ***h)) {
            return Err(format!(
                "{}: column `{unknown}` names no class of the input (classes: {})",
                self.path.display(),
                classes.join(", ")
            ));
        }
        if given.is_empty() && !required {
            return Ok(None);
        }
        let columns = classes.iter().map(|c| self.column(&format!("score_{c}"))).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(columns))
    }

    fn at(&self, line: usize, column: &str) -> String {
        format!("{} line {line}, column `{column}`", self.path.display())
    }

    /// Each row's image id, checked: a number, in `expected`, each once;
    /// and every expected id present.
    fn ids(&self, id_col: usize, expected: &[u32], what: &str, stage: &str) -> Result<Vec<u32>, Problem> {
        let wanted: std::collections::BTreeSet<u32> = expected.iter().copied().collect();
        let mut seen = BTreeMap::new();
        for (line, fields) in &self.rows {
            let text = fields[id_col].trim();
            let id: u32 = text
                .parse()
                .map_err(|_| format!("{}: `{text}` is not an image id (a row number of the input's index)", self.at(*line, "id")))?;
            if !wanted.contains(&id) {
                return Err(format!("{}: image {id} is not one of the {what} of `{stage}`", self.at(*line, "id")));
            }
            if let Some(first) = seen.insert(id, *line) {
                return Err(format!("{}: image {id} is predicted twice (also on line {first})", self.at(*line, "id")));
            }
        }
        if let Some(missing) = expected.iter().find(|id| !seen.contains_key(id)) {
            let n = expected.len() - seen.len();
            return Err(format!(
                "{}: {n} of the {} {what} of `{stage}` have no prediction (the first: image {missing})",
                self.path.display(),
                expected.len()
            ));
        }
        Ok(self.rows.iter().map(|(_, f)| f[id_col].trim().parse().expect("checked above")).collect())
    }

    fn score_rows(&self, columns: &[usize], classes: &[String]) -> Result<Vec<Vec<f64>>, Problem> {
        let mut out = Vec::with_capacity(self.rows.len());
        for (line, fields) in &self.rows {
            let mut row = Vec::with_capacity(columns.len());
            for (c, &col) in columns.iter().enumerate() {
                let text = fields[col].trim();
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => row.push(v),
                    _ => return Err(format!("{}: `{text}` is not a finite number", self.at(*line, &format!("score_{}", classes[c])))),
                }
            }
            out.push(row);
        }
        Ok(out)
    }
}

/// Rows sorted by image id, as the built-in kinds write them.
fn by_id<T: Clone>(ids: &[u32], values: &[T]) -> Vec<T> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i]);
    order.into_iter().map(|i| values[i].clone()).collect()
}

fn class_index(classes: &[String]) -> BTreeMap<&str, u32> {
    classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect()
}

fn single(out: &Path, classes: &[String], rows: &[Row], stage: &str) -> Result<(), Problem> {
    let table = Table::read(out)?;
    let (id_col, pred_col) = (table.column("id")?, table.column("y_pred")?);
    let scores = table.scores(classes, false)?;
    let test: Vec<u32> = rows.iter().enumerate().filter(|(_, r)| r.split == Split::Test).map(|(i, _)| i as u32).collect();
    let ids = table.ids(id_col, &test, "test images", stage)?;
    let index = class_index(classes);
    let mut y_pred = Vec::with_capacity(ids.len());
    for (line, fields) in &table.rows {
        let name = fields[pred_col].trim();
        let class = index.get(name).ok_or_else(|| {
            format!("{}: `{name}` is not a class of the input (classes: {})", table.at(*line, "y_pred"), classes.join(", "))
        })?;
        y_pred.push(*class);
    }
    let scores = match scores {
        Some(columns) => by_id(&ids, &table.score_rows(&columns, classes)?),
        None => Vec::new(),
    };
    let sorted = by_id(&ids, &ids);
    let predictions = Predictions {
        meta: PredictionsMeta { task: "single".into(), classes: classes.to_vec() },
        sources: sorted.iter().map(|&i| rows[i as usize].source.clone()).collect(),
        y_true: sorted.iter().map(|&i| rows[i as usize].label_id).collect(),
        y_pred: by_id(&ids, &y_pred),
        scores,
        ids: sorted,
    };
    predictions.write(out).map_err(|e| e.to_string())
}

fn multi(out: &Path, labels: &[String], rows: &[Row], stage: &str) -> Result<(), Problem> {
    if labels.is_empty() {
        return Err(format!("`{stage}` has no label vocabulary, so there are no label sets to predict"));
    }
    let table = Table::read(out)?;
    let (id_col, pred_col) = (table.column("id")?, table.column("y_pred")?);
    let score_cols = table.scores(labels, true)?.expect("required");
    let sets = label_sets(rows, labels);
    let test: Vec<u32> = (0..rows.len()).filter(|&i| rows[i].split == Split::Test && sets[i].is_some()).map(|i| i as u32).collect();
    let ids = table.ids(id_col, &test, "labelled test images", stage)?;
    let index = class_index(labels);
    let mut y_pred = Vec::with_capacity(ids.len());
    for (line, fields) in &table.rows {
        let mut set = Vec::new();
        for name in fields[pred_col].split(LABEL_SEPARATOR).map(str::trim).filter(|n| !n.is_empty()) {
            let label = index.get(name).ok_or_else(|| {
                format!("{}: `{name}` is not a label of the input's vocabulary ({} labels)", table.at(*line, "y_pred"), labels.len())
            })?;
            set.push(*label);
        }
        set.sort_unstable();
        set.dedup();
        y_pred.push(set);
    }
    let scores = table.score_rows(&score_cols, labels)?;
    let sorted = by_id(&ids, &ids);
    let predictions = MultiPredictions {
        meta: PredictionsMeta { task: "multi".into(), classes: labels.to_vec() },
        sources: sorted.iter().map(|&i| rows[i as usize].source.clone()).collect(),
        y_true: sorted.iter().map(|&i| sets[i as usize].iter().flatten().map(|&l| l as u32).collect()).collect(),
        y_pred: by_id(&ids, &y_pred),
        scores: by_id(&ids, &scores),
        ids: sorted,
    };
    predictions.write(out).map_err(|e| e.to_string())
}

fn histograms(out: &Path, images: usize, reference: &InputArtifact) -> Result<(), Problem> {
    let path = out.join("histograms.f32");
    if !path.is_file() {
        return Err(format!("it wrote no {} (one row of little-endian f32 per image, in index order)", path.display()));
    }
    let values = read_f32(&path).map_err(|e| e.to_string())?;
    if images == 0 || values.is_empty() || values.len() % images != 0 {
        return Err(format!(
            "{} holds {} values, not a whole row for each of the {images} images of `{}`",
            path.display(),
            values.len(),
            reference.stage
        ));
    }
    let dim = values.len() / images;
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!("{}: image {} value {} is {} (every value must be finite)", path.display(), bad / dim, bad % dim, values[bad]));
    }
    write_json(&out.join("histograms.json"), &HistogramsMeta { words: dim, normalization: "command".into(), images })
        .map_err(|e| e.to_string())?;
    copy_index(&reference.dir, out).map_err(|e| e.to_string())
}

/// One CSV record: the line it starts on, and its fields.
pub type Record = (usize, Vec<String>);

/// RFC 4180 CSV: fields split by commas, `"` quotes (doubled inside),
/// records by newlines (`\r\n` too); blank lines are skipped. Returns each
/// record with the line it starts on, or the line of a malformed one.
pub fn parse_csv(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let mut records = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut start) = (1, 1);
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    records.push((start, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                start = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err((start, "a quoted field is not closed".into()));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((start, fields));
    }
    if let Some((_, header)) = records.first() {
        let width = header.len();
        if let Some((at, r)) = records.iter().find(|(_, r)| r.len() != width) {
            return Err((*at, format!("{} fields where the header has {width}", r.len())));
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests;
