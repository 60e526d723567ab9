//! The `predictions` artifact of every classifier stage (single-label):
//! `predictions.parquet` and `predictions.csv` with one row per test image —
//! `id` (its row in the image index), `source`, `y_true`, `y_pred` (class
//! names) and one `score_<class>` column per class — and `predictions.json`
//! (task, class names). Any metric can be recomputed from these by any tool.

use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::DataError;
use crate::fsx;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PredictionsMeta {
    pub task: String,
    pub classes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub meta: PredictionsMeta,
    pub ids: Vec<u32>,
    pub sources: Vec<String>,
    pub y_true: Vec<u32>,
    pub y_pred: Vec<u32>,
    /// Per row, one score per class (empty when the classifier has none).
    pub scores: Vec<Vec<f64>>,
}

/// Writes a predictions table as Parquet and CSV, and `predictions.json`.
fn write_all(dir: &Path, df: &mut DataFrame, meta: &PredictionsMeta) -> Result<(), DataError> {
    for (name, parquet) in [("predictions.parquet", true), ("predictions.csv", false)] {
        let path = dir.join(name);
        let f = fsx::create(&path)?;
        let r = if parquet { ParquetWriter::new(f).finish(df).map(|_| ()) } else { CsvWriter::new(f).finish(df) };
        r.map_err(DataError::table(&path))?;
    }
    Ok(fsx::write(dir.join("predictions.json"), serde_json::to_vec_pretty(meta).expect("meta serialises"))?)
}

/// `predictions.json` of a predictions folder.
fn read_meta(dir: &Path) -> Result<PredictionsMeta, DataError> {
    let path = dir.join("predictions.json");
    serde_json::from_slice(&fsx::read(&path)?).map_err(|e| DataError::malformed(&path, e.to_string()))
}

/// `predictions.json` and the Parquet table of a predictions folder.
fn read_all(dir: &Path) -> Result<(PredictionsMeta, DataFrame, std::path::PathBuf), DataError> {
    let meta = read_meta(dir)?;
    let path = dir.join("predictions.parquet");
    let f = fsx::open(&path)?;
    let df = ParquetReader::new(f).finish().map_err(DataError::table(&path))?;
    Ok((meta, df, path))
}

/// The `id` and `source` columns every predictions table starts with.
fn identity_columns(ids: &[u32], sources: &[String]) -> Vec<Column> {
    vec![Column::new("id".into(), ids), Column::new("source".into(), sources.iter().map(String::as_str).collect::<Vec<_>>())]
}

/// One `score_<class>` column per class.
fn score_columns(classes: &[String], scores: &[Vec<f64>]) -> Vec<Column> {
    classes
        .iter()
        .enumerate()
        .map(|(c, class)| Column::new(format!("score_{class}").into(), scores.iter().map(|s| s[c]).collect::<Vec<f64>>()))
        .collect()
}

/// The `id` and `source` columns back.
fn read_identity(df: &DataFrame, err: impl Fn(PolarsError) -> DataError) -> Result<(Vec<u32>, Vec<String>), DataError> {
    let ids = df.column("id").and_then(|c| c.u32().cloned()).map_err(&err)?.into_no_null_iter().collect();
    let sources =
        df.column("source").and_then(|c| c.str().cloned()).map_err(&err)?.into_iter().map(|s| s.unwrap_or_default().to_string()).collect();
    Ok((ids, sources))
}

/// The `score_<class>` columns back, one row of scores per image.
fn read_scores(df: &DataFrame, classes: &[String], err: impl Fn(PolarsError) -> DataError) -> Result<Vec<Vec<f64>>, DataError> {
    let cols = classes
        .iter()
        .map(|c| df.column(&format!("score_{c}")).and_then(|s| s.f64().cloned()).map_err(&err))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..df.height()).map(|i| cols.iter().map(|c| c.get(i).unwrap_or(f64::NAN)).collect()).collect())
}

impl Predictions {
    fn frame(&self) -> PolarsResult<DataFrame> {
        let name = |i: &u32| self.meta.classes[*i as usize].as_str();
        let mut columns = identity_columns(&self.ids, &self.sources);
        columns.push(Column::new("y_true".into(), self.y_true.iter().map(name).collect::<Vec<_>>()));
        columns.push(Column::new("y_pred".into(), self.y_pred.iter().map(name).collect::<Vec<_>>()));
        if !self.scores.is_empty() {
            columns.extend(score_columns(&self.meta.classes, &self.scores));
        }
        DataFrame::new(self.ids.len(), columns)
    }

    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        let mut df = self.frame()?;
        write_all(dir, &mut df, &self.meta)
    }

    pub fn read(dir: &Path) -> Result<Predictions, DataError> {
        let (meta, df, path) = read_all(dir)?;
        let err = DataError::table(&path);
        let index_of = |name: Option<&str>| -> Result<u32, DataError> {
            let name = name.ok_or_else(|| DataError::malformed(&path, "empty class name"))?;
            meta.classes
                .iter()
                .position(|c| c == name)
                .map(|i| i as u32)
                .ok_or_else(|| DataError::malformed(&path, format!("unknown class `{name}`")))
        };
        let (ids, sources) = read_identity(&df, &err)?;
        let y_true =
            df.column("y_true").and_then(|c| c.str().cloned()).map_err(&err)?.into_iter().map(index_of).collect::<Result<Vec<_>, _>>()?;
        let y_pred =
            df.column("y_pred").and_then(|c| c.str().cloned()).map_err(&err)?.into_iter().map(index_of).collect::<Result<Vec<_>, _>>()?;
        let has_scores = df.get_column_names().iter().any(|n| n.starts_with("score_"));
        let scores = if has_scores { read_scores(&df, &meta.classes, &err)? } else { Vec::new() };
        Ok(Predictions { meta, ids, sources, y_true, y_pred, scores })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = Predictions {
            meta: PredictionsMeta { task: "single".into(), classes: vec!["cats".into(), "dogs and wolves".into()] },
            ids: vec![3, 7],
            sources: vec!["a.png".into(), "b.png".into()],
            y_true: vec![0, 1],
            y_pred: vec![1, 1],
            scores: vec![vec![0.2, 0.8], vec![-1.0, 1.5]],
        };
        p.write(dir.path()).unwrap();
        assert_eq!(Predictions::read(dir.path()).unwrap(), p);
        let csv = fsx::read_to_string(dir.path().join("predictions.csv")).unwrap();
        assert!(
            csv.starts_with("id,source,y_true,y_pred,score_cats,score_dogs and wolves\n3,a.png,cats,dogs and wolves,0.2,0.8\n"),
            "{csv}"
        );
    }
}

/// The `predictions` artifact of a multi-label stage: `predictions.json` has
/// `task = "multi"` and the label vocabulary; the tables hold `id`,
/// `source`, `y_true` and `y_pred` (label sets as label names),
/// `y_true_ids` and `y_pred_ids` (the same sets as label indices), and one
/// `score_<label>` probability column per label. In `predictions.parquet`
/// every set is a list column (`list<string>` for names, `list<uint32>` for
/// indices); in `predictions.csv` a set is one field, its members joined by
/// [`LABEL_SEPARATOR`] (`|`, which `load` refuses in label names, so
/// `a|b c` is always the two labels `a` and `b c`), empty for an empty set.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiPredictions {
    pub meta: PredictionsMeta,
    pub ids: Vec<u32>,
    pub sources: Vec<String>,
    pub y_true: Vec<Vec<u32>>,
    pub y_pred: Vec<Vec<u32>>,
    pub scores: Vec<Vec<f64>>,
}

/// What joins the members of a label set in `predictions.csv`; `load`
/// refuses label names that contain it.
pub const LABEL_SEPARATOR: char = '|';
const LABEL_SEPARATOR_STR: &str = "|";

/// A label-set column that does not hold label ids (its column named).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct LabelSetError(pub String);

/// The label-index sets of a `y_true_ids` / `y_pred_ids` column: a list
/// column (this version's Parquet), or text with the indices joined by `|`
/// (this version's CSV) or by spaces (files written before the list form).
pub fn label_id_sets(column: &Column) -> Result<Vec<Vec<u32>>, LabelSetError> {
    let bad = |e: PolarsError| LabelSetError(format!("`{}`: {e}", column.name()));
    match column.dtype() {
        DataType::List(_) => {
            let lists = column.cast(&DataType::List(Box::new(DataType::UInt32))).map_err(bad)?;
            let lists = lists.list().map_err(bad)?;
            lists
                .into_iter()
                .map(|s| match s {
                    None => Ok(Vec::new()),
                    Some(s) => Ok(s.u32().map_err(bad)?.into_iter().flatten().collect()),
                })
                .collect()
        }
        DataType::String => column
            .str()
            .map_err(bad)?
            .into_iter()
            .map(|v| {
                v.unwrap_or_default()
                    .split(|c: char| c == LABEL_SEPARATOR || c.is_whitespace())
                    .filter(|t| !t.is_empty())
                    .map(|t| t.parse::<u32>().map_err(|_| LabelSetError(format!("`{}`: bad label id `{t}`", column.name()))))
                    .collect()
            })
            .collect(),
        other => Err(LabelSetError(format!("`{}` is {other}, not a list of label ids", column.name()))),
    }
}

/// The task a predictions folder holds (`single` or `multi`).
pub fn task_of(dir: &Path) -> Result<String, DataError> {
    Ok(read_meta(dir)?.task)
}

impl MultiPredictions {
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        let names = |sets: &[Vec<u32>]| -> Vec<Vec<&str>> {
            sets.iter().map(|s| s.iter().map(|&i| self.meta.classes[i as usize].as_str()).collect()).collect()
        };
        let joined = |sets: Vec<Vec<String>>| sets.into_iter().map(|s| s.join(LABEL_SEPARATOR_STR)).collect::<Vec<_>>();
        let owned = |sets: Vec<Vec<&str>>| sets.into_iter().map(|s| s.into_iter().map(str::to_string).collect()).collect::<Vec<_>>();
        let numbers = |sets: &[Vec<u32>]| sets.iter().map(|s| s.iter().map(ToString::to_string).collect()).collect::<Vec<_>>();
        let list = |name: &str, sets: Vec<Series>| Column::from(Series::new(name.into(), sets));
        let str_lists = |sets: Vec<Vec<&str>>| sets.into_iter().map(|s| Series::new("".into(), s)).collect::<Vec<_>>();
        let id_lists = |sets: &[Vec<u32>]| sets.iter().map(|s| Series::new("".into(), s)).collect::<Vec<_>>();
        let scores = score_columns(&self.meta.classes, &self.scores);
        let frame = |sets: [Column; 4]| -> PolarsResult<DataFrame> {
            let mut columns = identity_columns(&self.ids, &self.sources);
            columns.extend(sets);
            columns.extend(scores.iter().cloned());
            DataFrame::new(self.ids.len(), columns)
        };
        let mut parquet = frame([
            list("y_true", str_lists(names(&self.y_true))),
            list("y_pred", str_lists(names(&self.y_pred))),
            list("y_true_ids", id_lists(&self.y_true)),
            list("y_pred_ids", id_lists(&self.y_pred)),
        ])?;
        let mut csv = frame([
            Column::new("y_true".into(), joined(owned(names(&self.y_true)))),
            Column::new("y_pred".into(), joined(owned(names(&self.y_pred)))),
            Column::new("y_true_ids".into(), joined(numbers(&self.y_true))),
            Column::new("y_pred_ids".into(), joined(numbers(&self.y_pred))),
        ])?;
        let path = dir.join("predictions.parquet");
        ParquetWriter::new(fsx::create(&path)?).finish(&mut parquet).map_err(DataError::table(&path))?;
        let path = dir.join("predictions.csv");
        CsvWriter::new(fsx::create(&path)?).finish(&mut csv).map_err(DataError::table(&path))?;
        Ok(fsx::write(dir.join("predictions.json"), serde_json::to_vec_pretty(&self.meta).expect("meta serialises"))?)
    }

    pub fn read(dir: &Path) -> Result<MultiPredictions, DataError> {
        let (meta, df, path) = read_all(dir)?;
        let err = DataError::table(&path);
        let sets = |name: &str| -> Result<Vec<Vec<u32>>, DataError> {
            let sets = df.column(name).map_err(&err).and_then(|c| label_id_sets(c).map_err(|e| DataError::malformed(&path, e.0)))?;
            match sets.iter().flatten().find(|&&i| i as usize >= meta.classes.len()) {
                Some(i) => Err(DataError::malformed(&path, format!("bad label id `{i}` in `{name}`"))),
                None => Ok(sets),
            }
        };
        let (ids, sources) = read_identity(&df, &err)?;
        let scores = read_scores(&df, &meta.classes, &err)?;
        Ok(MultiPredictions { y_true: sets("y_true_ids")?, y_pred: sets("y_pred_ids")?, meta, ids, sources, scores })
    }
}

#[cfg(test)]
mod multi_tests {
    use super::*;

    #[test]
    fn multi_label_round_trips_with_spaces_in_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = MultiPredictions {
            meta: PredictionsMeta { task: "multi".into(), classes: vec!["red".into(), "clip art".into(), "cat".into()] },
            ids: vec![0, 4],
            sources: vec!["a.png".into(), "b.png".into()],
            y_true: vec![vec![0, 1], vec![]],
            y_pred: vec![vec![1], vec![2]],
            scores: vec![vec![0.4, 0.9, 0.1], vec![0.1, 0.2, 0.7]],
        };
        p.write(dir.path()).unwrap();
        assert_eq!(MultiPredictions::read(dir.path()).unwrap(), p);
        assert_eq!(task_of(dir.path()).unwrap(), "multi");
        let csv = fsx::read_to_string(dir.path().join("predictions.csv")).unwrap();
        assert!(csv.contains("0,a.png,red|clip art,clip art,0|1,1,"), "{csv}");
        assert!(csv.contains("4,b.png,\"\",cat,\"\",2,"), "{csv}");
        // The Parquet holds lists: the names split back without a separator.
        let df = ParquetReader::new(fsx::open(dir.path().join("predictions.parquet")).unwrap()).finish().unwrap();
        assert_eq!(df.column("y_true").unwrap().dtype(), &DataType::List(Box::new(DataType::String)));
        assert_eq!(df.column("y_true_ids").unwrap().dtype(), &DataType::List(Box::new(DataType::UInt32)));
        let first = df.column("y_true").unwrap().list().unwrap().get_as_series(0).unwrap();
        let names: Vec<&str> = first.str().unwrap().into_no_null_iter().collect();
        assert_eq!(names, ["red", "clip art"]);
        // The CSV's `|` form splits back into the original names.
        let row = csv.lines().nth(1).unwrap();
        assert_eq!(row.split(',').nth(2).unwrap().split(LABEL_SEPARATOR).collect::<Vec<_>>(), ["red", "clip art"]);
    }

    #[test]
    fn label_ids_read_from_every_written_form() {
        let text = Column::new("y_true_ids".into(), ["0|2", "1 3", ""]);
        assert_eq!(label_id_sets(&text).unwrap(), vec![vec![0, 2], vec![1, 3], vec![]]);
        let bad = Column::new("y_true_ids".into(), ["0|x"]);
        assert_eq!(label_id_sets(&bad).unwrap_err().to_string(), "`y_true_ids`: bad label id `x`");
    }
}

/// The label with the highest score (the first on exact ties).
pub fn argmax(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}
