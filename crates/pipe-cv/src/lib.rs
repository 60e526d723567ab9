//! pipe-cv: the stage kinds that need OpenCV (decoding, augmentation, KAZE
//! features, k-means and FLANN, the SVM, HOG, the ensemble and `evaluate`'s
//! report with its plots), and the `pipe-worker` executable that runs them.
//!
//! A kind's definition (parameters, inputs, version) lives in
//! `pipe_core::kinds`, where the engine reads it without linking OpenCV;
//! its run function lives in [`kinds`], found by name through
//! [`kinds::runner`].

pub mod algo;
pub mod kinds;
pub mod report;
