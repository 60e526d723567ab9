//! The visual vocabulary: k-means++ over descriptors (OpenCV `kmeans`, the
//! routine behind `BOWKMeansTrainer`), and the FLANN matcher that assigns
//! each descriptor to its word (as `BOWImgDescriptorExtractor` does).

use opencv::core::{DMatch, Mat, TermCriteria, TermCriteria_Type, Vector};
use opencv::features2d::FlannBasedMatcher;
use opencv::prelude::*;

use super::CvError;

fn cv(source: opencv::Error) -> CvError {
    CvError::OpenCv { step: "OpenCV".into(), source }
}

/// Rows of `dim` floats as an OpenCV 32F matrix.
pub fn mat_f32(values: &[f32], dim: usize) -> Result<Mat, CvError> {
    let rows = values.len() / dim.max(1);
    let mut m =
        Mat::new_rows_cols_with_default(rows as i32, dim as i32, opencv::core::CV_32F, opencv::core::Scalar::all(0.0)).map_err(cv)?;
    m.data_typed_mut::<f32>().map_err(cv)?.copy_from_slice(values);
    Ok(m)
}

/// k-means++ with `attempts` restarts; returns the centres and compactness.
/// OpenCV's random generator is seeded first, so a seed gives one answer.
pub fn kmeans(
    descriptors: &[f32],
    dim: usize,
    words: usize,
    attempts: i32,
    max_iterations: i32,
    epsilon: f64,
    seed: u64,
) -> Result<(Vec<f32>, f64), CvError> {
    opencv::core::set_rng_seed((seed % i32::MAX as u64) as i32).map_err(cv)?;
    let data = mat_f32(descriptors, dim)?;
    let mut labels = Mat::default();
    let mut centres = Mat::default();
    let criteria =
        TermCriteria::new((TermCriteria_Type::COUNT as i32) | (TermCriteria_Type::EPS as i32), max_iterations, epsilon).map_err(cv)?;
    let compactness =
        opencv::core::kmeans(&data, words as i32, &mut labels, criteria, attempts, opencv::core::KMEANS_PP_CENTERS, &mut centres)
            .map_err(cv)?;
    Ok((centres.data_typed::<f32>().map_err(cv)?.to_vec(), compactness))
}

/// A FLANN index over the vocabulary (randomised kd-trees: approximate).
pub struct Flann {
    matcher: opencv::core::Ptr<FlannBasedMatcher>,
}

impl Flann {
    pub fn new(vocabulary: &[f32], dim: usize) -> Result<Flann, CvError> {
        let mut matcher = FlannBasedMatcher::create().map_err(cv)?;
        let mut train: Vector<Mat> = Vector::new();
        train.push(mat_f32(vocabulary, dim)?);
        opencv::prelude::FlannBasedMatcherTrait::add(&mut matcher, &train).map_err(cv)?;
        opencv::prelude::FlannBasedMatcherTrait::train(&mut matcher).map_err(cv)?;
        Ok(Flann { matcher })
    }

    /// The word of each descriptor row.
    pub fn words(&mut self, descriptors: &[f32], dim: usize) -> Result<Vec<usize>, CvError> {
        if descriptors.is_empty() {
            return Ok(Vec::new());
        }
        let query = mat_f32(descriptors, dim)?;
        let mut matches: Vector<DMatch> = Vector::new();
        self.matcher.match__def(&query, &mut matches).map_err(cv)?;
        let mut out = vec![0; descriptors.len() / dim];
        for m in matches.iter() {
            out[m.query_idx as usize] = m.train_idx as usize;
        }
        Ok(out)
    }
}
