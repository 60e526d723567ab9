//! The `images` artifact that `load` writes and `augment` and the CNN stages
//! read, in one cache-entry folder:
//! - `index.parquet` (and `index.csv`, for any tool): one row per image —
//!   `id` (its row in the tensor), `source`, `label`, `label_id`, `labels`
//!   (label-set names joined by `|`), `split` (train/validation/test),
//!   `pixel_hash` (of the decoded full-resolution pixels; augmented copies
//!   carry their original's), `augmented` (bool);
//! - `images.safetensors`: the pixels, `U8 [N, size, size, channels]`;
//! - `dataset.json`: class and label names (class ids index `classes`),
//!   the layout, statistics per class and split, and what was left out.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::DataError;
use super::split::Split;
use super::tensor::ImageTensor;
use crate::fsx;

/// One image of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub source: String,
    pub label_id: u32,
    pub labels: Vec<String>,
    pub split: Split,
    pub pixel_hash: String,
    pub augmented: bool,
}

/// The label set of every row as indices into `labels` (`None` for a row
/// with no label of the vocabulary).
pub fn label_sets(rows: &[Row], labels: &[String]) -> Vec<Option<Vec<usize>>> {
    let index: std::collections::HashMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    rows.iter()
        .map(|r| {
            let mut set: Vec<usize> = r.labels.iter().filter_map(|l| index.get(l.as_str()).copied()).collect();
            set.sort_unstable();
            set.dedup();
            (!set.is_empty()).then_some(set)
        })
        .collect()
}

/// A left-out input and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Excluded {
    pub item: String,
    pub problem: String,
}

/// `dataset.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub dataset: String,
    pub image_size: usize,
    pub channels: usize,
    /// Class names; `label_id` indexes this list (most frequent first).
    pub classes: Vec<String>,
    /// The multi-label vocabulary (most frequent first).
    pub labels: Vec<String>,
    /// Class -> split -> images.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    /// Label -> images carrying it.
    pub label_counts: BTreeMap<String, usize>,
    /// Number of labels per image -> images.
    pub labels_per_image: BTreeMap<usize, usize>,
    pub duplicates_removed: usize,
    /// Broken inputs skipped (`on_bad_image = "skip"`).
    pub bad: Vec<Excluded>,
    /// Inputs left out by a rule (too-rare class, no eligible label, ...).
    pub dropped: Vec<Excluded>,
    /// Classes without a test (or validation) image, too small to split.
    pub unsplittable: Vec<String>,
    /// Balanced class weights (n_samples / (n_classes x count)) over the
    /// training split, as scikit-learn's `compute_class_weight`.
    #[serde(default)]
    pub class_weights: Vec<f64>,
}

/// An `images` artifact: metadata and rows in memory, pixels in memory
/// while built and memory-mapped once read (see [`super::tensor`]).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub meta: Meta,
    pub rows: Vec<Row>,
    pub pixels: ImageTensor,
}

impl Dataset {
    /// Recomputes the statistics of `meta` from the rows.
    pub fn refresh_stats(&mut self) {
        Self::refresh_stats_of(&mut self.meta, &self.rows);
    }

    /// [`Dataset::refresh_stats`] for a dataset whose pixels are written apart.
    pub fn refresh_stats_of(meta: &mut Meta, rows: &[Row]) {
        let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let mut label_counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_image: BTreeMap<usize, usize> = BTreeMap::new();
        for r in rows {
            let class = meta.classes[r.label_id as usize].clone();
            *counts.entry(class).or_default().entry(r.split.as_str().to_string()).or_default() += 1;
            for l in &r.labels {
                *label_counts.entry(l.clone()).or_default() += 1;
            }
            *per_image.entry(r.labels.len()).or_default() += 1;
        }
        meta.counts = counts;
        meta.label_counts = label_counts;
        meta.labels_per_image = per_image;
        let train: Vec<u32> = rows.iter().filter(|r| r.split == Split::Train).map(|r| r.label_id).collect();
        meta.class_weights = balanced_weights(&train, meta.classes.len());
    }

    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        self.pixels.write(&dir.join("images.safetensors"))?;
        Self::write_index(dir, &self.meta, &self.rows)
    }

    /// `index.parquet`, `index.csv` and `dataset.json`, for a dataset whose
    /// `images.safetensors` was streamed by a [`super::tensor::TensorWriter`].
    pub fn write_index(dir: &Path, meta: &Meta, rows: &[Row]) -> Result<(), DataError> {
        let mut df = Self::index_frame(meta, rows)?;
        let parquet = dir.join("index.parquet");
        let f = fsx::create(&parquet)?;
        ParquetWriter::new(f).finish(&mut df).map_err(DataError::table(&parquet))?;
        Self::write_csv(&dir.join("index.csv"), &mut df)?;
        let meta = serde_json::to_vec_pretty(meta).expect("meta serialises");
        Ok(fsx::write(dir.join("dataset.json"), meta)?)
    }

    /// The index as `index.csv` alone, at `path` (for an artifact whose
    /// index is Parquet only, read by a tool that reads CSV).
    pub fn write_index_csv(path: &Path, meta: &Meta, rows: &[Row]) -> Result<(), DataError> {
        Self::write_csv(path, &mut Self::index_frame(meta, rows)?)
    }

    fn write_csv(path: &Path, df: &mut DataFrame) -> Result<(), DataError> {
        let f = fsx::create(path)?;
        CsvWriter::new(f).finish(df).map_err(DataError::table(path))
    }

    fn index_frame(meta: &Meta, rows: &[Row]) -> PolarsResult<DataFrame> {
        let n = rows.len() as u32;
        df!(
            "id" => (0..n).collect::<Vec<u32>>(),
            "source" => rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(),
            "label" => rows.iter().map(|r| meta.classes[r.label_id as usize].as_str()).collect::<Vec<_>>(),
            "label_id" => rows.iter().map(|r| r.label_id).collect::<Vec<_>>(),
            "labels" => rows.iter().map(|r| r.labels.join("|")).collect::<Vec<_>>(),
            "split" => rows.iter().map(|r| r.split.as_str()).collect::<Vec<_>>(),
            "pixel_hash" => rows.iter().map(|r| r.pixel_hash.as_str()).collect::<Vec<_>>(),
            "augmented" => rows.iter().map(|r| r.augmented).collect::<Vec<_>>(),
        )
    }

    /// `dataset.json` of an artifact folder.
    pub fn read_meta(dir: &Path) -> Result<Meta, DataError> {
        let meta_path = dir.join("dataset.json");
        serde_json::from_slice(&fsx::read(&meta_path)?).map_err(|e| DataError::malformed(&meta_path, e.to_string()))
    }

    /// The rows of `index.parquet` (without decoding any pixels).
    pub fn read_index(dir: &Path) -> Result<Vec<Row>, DataError> {
        let parquet = dir.join("index.parquet");
        let f = fsx::open(&parquet)?;
        let err = DataError::table(&parquet);
        let df = ParquetReader::new(f).finish().map_err(&err)?;
        let source = df.column("source").and_then(|c| c.str().cloned()).map_err(&err)?;
        let label_id = df.column("label_id").and_then(|c| c.u32().cloned()).map_err(&err)?;
        let labels = df.column("labels").and_then(|c| c.str().cloned()).map_err(&err)?;
        let split = df.column("split").and_then(|c| c.str().cloned()).map_err(&err)?;
        let hash = df.column("pixel_hash").and_then(|c| c.str().cloned()).map_err(&err)?;
        let augmented = df.column("augmented").and_then(|c| c.bool().cloned()).map_err(&err)?;
        let mut rows = Vec::with_capacity(df.height());
        for i in 0..df.height() {
            let missing = || DataError::malformed(&parquet, format!("row {i} has an empty field"));
            let labels_text = labels.get(i).unwrap_or_default();
            rows.push(Row {
                source: source.get(i).ok_or_else(missing)?.to_string(),
                label_id: label_id.get(i).ok_or_else(missing)?,
                labels: if labels_text.is_empty() { Vec::new() } else { labels_text.split('|').map(str::to_string).collect() },
                split: split.get(i).and_then(Split::parse).ok_or_else(missing)?,
                pixel_hash: hash.get(i).ok_or_else(missing)?.to_string(),
                augmented: augmented.get(i).ok_or_else(missing)?,
            });
        }
        Ok(rows)
    }

    pub fn read(dir: &Path) -> Result<Dataset, DataError> {
        let meta = Self::read_meta(dir)?;
        let rows = Self::read_index(dir)?;
        let pixels = ImageTensor::read(&dir.join("images.safetensors"))?;
        if pixels.count != rows.len() {
            return Err(DataError::malformed(dir, format!("{} images for {} index rows", pixels.count, rows.len())));
        }
        Ok(Dataset { meta, rows, pixels })
    }
}

/// scikit-learn's `compute_class_weight("balanced")`:
/// n_samples / (n_classes x count), over the classes present; absent classes get 0.
pub fn balanced_weights(labels: &[u32], classes: usize) -> Vec<f64> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    let present = counts.iter().filter(|c| **c > 0).count();
    counts.iter().map(|&c| if c == 0 { 0.0 } else { labels.len() as f64 / (present as f64 * c as f64) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_follow_the_formula() {
        // 6 samples, 3 classes: counts 3, 2, 1 -> 6/(3*3), 6/(3*2), 6/(3*1).
        let w = balanced_weights(&[0, 0, 0, 1, 1, 2], 3);
        assert_eq!(w, vec![6.0 / 9.0, 1.0, 2.0]);
        // A class absent from training gets weight 0; n_classes counts present ones.
        assert_eq!(balanced_weights(&[0, 0, 2], 3), vec![3.0 / 4.0, 0.0, 1.5]);
    }
}
