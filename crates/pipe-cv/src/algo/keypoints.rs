//! Keypoint detection and description (OpenCV features2d): KAZE as in the
//! paper, or AKAZE, ORB, SIFT. Binary descriptors (AKAZE, ORB) are widened
//! to f32 so every vocabulary is built the same way.

use opencv::core::{KeyPoint, Mat, Ptr, Vector};
use opencv::features2d::{AKAZE, Feature2D, KAZE, KAZE_DiffusivityType, KeyPointsFilter, ORB, SIFT};
use opencv::prelude::*;

use super::CvError;

/// Detector settings (`extract`'s parameters).
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    pub detector: String,
    pub threshold: f32,
    pub octaves: i32,
    pub octave_layers: i32,
    pub diffusivity: String,
    pub extended: bool,
    pub upright: bool,
    /// Keep the strongest this many (0: all).
    pub max_keypoints: usize,
}

/// What one image gave: descriptors (`count x dim`) and keypoints
/// (x, y, size, angle, response).
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub descriptors: Vec<f32>,
    pub keypoints: Vec<[f32; 5]>,
}

pub struct Detector {
    inner: Ptr<Feature2D>,
    max_keypoints: usize,
}

fn cv(source: opencv::Error) -> CvError {
    CvError::OpenCv { step: "OpenCV".into(), source }
}

impl Detector {
    pub fn new(c: &DetectorConfig) -> Result<Detector, CvError> {
        let diffusivity = match c.diffusivity.as_str() {
            "pm-g1" => KAZE_DiffusivityType::DIFF_PM_G1,
            "weickert" => KAZE_DiffusivityType::DIFF_WEICKERT,
            "charbonnier" => KAZE_DiffusivityType::DIFF_CHARBONNIER,
            _ => KAZE_DiffusivityType::DIFF_PM_G2,
        };
        let inner: Ptr<Feature2D> = match c.detector.as_str() {
            "akaze" => AKAZE::create(
                opencv::features2d::AKAZE_DescriptorType::DESCRIPTOR_MLDB,
                0,
                3,
                c.threshold,
                c.octaves,
                c.octave_layers,
                diffusivity,
            )
            .map_err(cv)?
            .into(),
            "orb" => ORB::create_def().map_err(cv)?.into(),
            "sift" => SIFT::create_def().map_err(cv)?.into(),
            _ => KAZE::create(c.extended, c.upright, c.threshold, c.octaves, c.octave_layers, diffusivity).map_err(cv)?.into(),
        };
        Ok(Detector { inner, max_keypoints: c.max_keypoints })
    }

    /// Detects on a grey `size x size` image and describes the strongest keypoints.
    pub fn run(&mut self, grey: &[u8], size: usize) -> Result<(Found, usize), CvError> {
        let mut img =
            Mat::new_rows_cols_with_default(size as i32, size as i32, opencv::core::CV_8UC1, opencv::core::Scalar::all(0.0)).map_err(cv)?;
        img.data_bytes_mut().map_err(cv)?.copy_from_slice(grey);
        let mut keypoints: Vector<KeyPoint> = Vector::new();
        self.inner.detect(&img, &mut keypoints, &opencv::core::no_array()).map_err(cv)?;
        if self.max_keypoints > 0 && keypoints.len() > self.max_keypoints {
            KeyPointsFilter::retain_best(&mut keypoints, self.max_keypoints as i32).map_err(cv)?;
        }
        let mut desc = Mat::default();
        if !keypoints.is_empty() {
            self.inner.compute(&img, &mut keypoints, &mut desc).map_err(cv)?;
        }
        let dim = desc.cols().max(0) as usize;
        let mut found = Found::default();
        if desc.rows() > 0 {
            let mut f32s = Mat::default();
            desc.convert_to(&mut f32s, opencv::core::CV_32F, 1.0, 0.0).map_err(cv)?;
            let f32s = if f32s.is_continuous() { f32s } else { f32s.try_clone().map_err(cv)? };
            found.descriptors = f32s.data_typed::<f32>().map_err(cv)?.to_vec();
            found.keypoints = keypoints.iter().map(|k| [k.pt().x, k.pt().y, k.size(), k.angle(), k.response()]).collect();
        }
        Ok((found, dim))
    }
}

/// The descriptor length each detector produces (as f32 values).
pub fn descriptor_dim(c: &DetectorConfig) -> usize {
    match c.detector.as_str() {
        "akaze" => 61,
        "orb" => 32,
        "sift" => 128,
        _ if c.extended => 128,
        _ => 64,
    }
}
