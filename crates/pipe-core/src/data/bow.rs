//! The bag-of-visual-words artifacts and their pure computations.
//!
//! - `features` (from `extract`): `features.json` (detector, descriptor
//!   dimension, keypoints per image), `descriptors.f32` (all descriptors,
//!   row-major little-endian f32), `keypoints.f32` (x, y, size, angle,
//!   response per keypoint), and the input's `index.parquet`/`dataset.json`.
//! - `vocabulary` (from `cluster`): `vocabulary.json`, `vocabulary.f32`
//!   (words x dimension).
//! - `histograms` (from `encode`): `histograms.json`, `histograms.f32`
//!   (images x words), and the index.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsx;
use crate::util::PathError;

/// A bag-of-words artifact that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{}: {what}", path.display())]
    Malformed { path: std::path::PathBuf, what: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeaturesMeta {
    pub detector: String,
    pub dim: usize,
    /// Descriptors per image, in index order.
    pub counts: Vec<usize>,
    /// Images on which the detector found nothing (they encode to zeros).
    pub no_keypoints: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VocabularyMeta {
    pub words: usize,
    pub dim: usize,
    pub descriptors_clustered: usize,
    /// k-means compactness (sum of squared distances to the centres).
    pub compactness: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistogramsMeta {
    pub words: usize,
    pub normalization: String,
    pub images: usize,
}

pub fn write_f32(path: &Path, values: &[f32]) -> Result<(), ArtifactError> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(fsx::write(path, bytes)?)
}

pub fn read_f32(path: &Path) -> Result<Vec<f32>, ArtifactError> {
    let bytes = fsx::read(path)?;
    if bytes.len() % 4 != 0 {
        return Err(ArtifactError::Malformed { path: path.into(), what: "not a list of f32 values".into() });
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ArtifactError> {
    let bytes = serde_json::to_vec_pretty(value).expect("metadata serialises");
    Ok(fsx::write(path, bytes)?)
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ArtifactError> {
    let bytes = fsx::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| ArtifactError::Malformed { path: path.into(), what: e.to_string() })
}

/// Copies the image index (labels, splits) from an upstream artifact.
pub fn copy_index(from: &Path, to: &Path) -> Result<(), ArtifactError> {
    for f in ["index.parquet", "dataset.json"] {
        fsx::copy(from.join(f), to.join(f))?;
    }
    Ok(())
}

/// Index of the nearest word (squared L2; ties: the lower index).
pub fn nearest_word(descriptor: &[f32], vocabulary: &[f32], dim: usize) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (w, centre) in vocabulary.chunks_exact(dim).enumerate() {
        let d: f32 = descriptor.iter().zip(centre).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.0 {
            best = (d, w);
        }
    }
    best.1
}

/// Word counts -> a histogram, normalised as OpenCV's
/// `BOWImgDescriptorExtractor` does (counts / number of descriptors), or by
/// L2 norm. No descriptors: all zeros.
pub fn normalise(counts: &[u32], how: &str) -> Vec<f32> {
    let total: u32 = counts.iter().sum();
    if total == 0 {
        return vec![0.0; counts.len()];
    }
    match how {
        "l2" => {
            let norm = counts.iter().map(|&c| f64::from(c) * f64::from(c)).sum::<f64>().sqrt();
            counts.iter().map(|&c| (f64::from(c) / norm) as f32).collect()
        }
        _ => counts.iter().map(|&c| c as f32 / total as f32).collect(),
    }
}

/// tf-idf re-weighting of BOW histograms (rows: images), as scikit-learn's
/// `TfidfTransformer(smooth_idf=True, norm="l2")`: idf = ln((1 + n) / (1 +
/// df)) + 1, with n and df counted over `fit_rows` (the training images
/// only), then each row L2-normalised.
pub fn tfidf(rows: &mut [Vec<f32>], fit_rows: &[usize]) {
    let Some(words) = rows.first().map(Vec::len) else { return };
    let idf = idf(rows, fit_rows, words);
    apply_idf(rows, &idf);
}

/// scikit-learn's smooth idf of each of `words` words over `fit_rows`:
/// ln((1 + n) / (1 + df)) + 1, df counting the rows where the word's value
/// is positive (a count, or a tf-idf weight: either is positive exactly
/// when the word occurs, so a tf-idf output gives back its own idf).
pub fn idf(rows: &[Vec<f32>], fit_rows: &[usize], words: usize) -> Vec<f64> {
    let n = fit_rows.len() as f64;
    (0..words)
        .map(|w| {
            let df = fit_rows.iter().filter(|&&i| rows[i][w] > 0.0).count() as f64;
            ((1.0 + n) / (1.0 + df)).ln() + 1.0
        })
        .collect()
}

/// Weights every row by `idf`, then scales it to unit L2 norm.
pub fn apply_idf(rows: &mut [Vec<f32>], idf: &[f64]) {
    for row in rows.iter_mut() {
        for (v, f) in row.iter_mut().zip(idf) {
            *v = (f64::from(*v) * f) as f32;
        }
        let norm = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v = (f64::from(*v) / norm) as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_words_and_normalisation() {
        let vocab = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(nearest_word(&[1.0, 2.0], &vocab, 2), 0);
        assert_eq!(nearest_word(&[9.0, 8.0], &vocab, 2), 1);
        assert_eq!(nearest_word(&[5.0, 5.0], &vocab, 2), 0, "ties go to the lower word");
        assert_eq!(normalise(&[1, 3, 0], "bow"), vec![0.25, 0.75, 0.0]);
        assert_eq!(normalise(&[3, 4], "l2"), vec![0.6, 0.8]);
        assert_eq!(normalise(&[0, 0], "bow"), vec![0.0, 0.0], "no keypoints: zeros, not NaN");
    }

    #[test]
    fn tfidf_downweights_common_words() {
        let mut rows = vec![vec![0.5, 0.5], vec![1.0, 0.0], vec![0.5, 0.5]];
        tfidf(&mut rows, &[0, 1, 2]);
        assert!(rows[0][1] > rows[0][0], "word 1 is rarer, so it weighs more");
        for r in &rows {
            let norm: f32 = r.iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }
}
