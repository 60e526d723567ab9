//! The algorithms behind the stage kinds: decoding and resizing,
//! augmentation, KAZE keypoints, k-means and FLANN vocabularies and the
//! SVM (OpenCV), and pipe's own SMO on precomputed kernel matrices. The
//! artifact formats they read and write are in `pipe_core::data`.

pub mod augment;
pub mod decode;
pub mod kernel;
pub mod keypoints;
pub mod model;
pub mod smo;
pub mod svm;
pub mod vocab;

/// An image operation or OpenCV algorithm that failed.
#[derive(Debug, thiserror::Error)]
pub enum CvError {
    /// OpenCV failed; `step` says at what (it prefixes the message).
    #[error("{step}: {source}")]
    OpenCv {
        step: String,
        #[source]
        source: opencv::Error,
    },
    #[error(transparent)]
    Io(#[from] pipe_core::util::PathError),
    /// Not an OpenCV error: the message says what is wrong.
    #[error("{0}")]
    Failed(String),
}

impl CvError {
    /// A `map_err` for the OpenCV errors of `step`.
    pub fn at(step: impl Into<String>) -> impl Fn(opencv::Error) -> CvError {
        let step = step.into();
        move |source| CvError::OpenCv { step: step.clone(), source }
    }
}

impl From<CvError> for pipe_core::kinds::StageError {
    fn from(e: CvError) -> Self {
        match e {
            CvError::Io(e) => pipe_core::kinds::StageError::Io(e),
            other => pipe_core::kinds::StageError::Failed(other.to_string()),
        }
    }
}

impl From<String> for CvError {
    fn from(message: String) -> Self {
        CvError::Failed(message)
    }
}

impl From<&str> for CvError {
    fn from(message: &str) -> Self {
        CvError::Failed(message.to_string())
    }
}
