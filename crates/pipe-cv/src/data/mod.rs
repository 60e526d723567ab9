//! Image handling and the OpenCV algorithms behind the stage kinds:
//! decoding and resizing, augmentation, KAZE keypoints, k-means and FLANN
//! vocabularies, the SVM. The artifact formats they read and write are in
//! `pipe_core::data`.

pub mod augment;
pub mod decode;
pub mod keypoints;
pub mod svm;
pub mod vocab;
