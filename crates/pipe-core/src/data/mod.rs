//! Dataset readers and the artifact formats every stage kind shares (images,
//! predictions, bag-of-words files), without OpenCV: decoding and the OpenCV
//! algorithms are in the `pipe-cv` crate.
//!
//! A reader lists [`Candidate`]s (a source file, its single label, its label
//! set) and the [`BadItem`]s it met while listing (CSV rows pointing at missing
//! files, unknown attribute ids). Decoding, deduplication, filtering and the
//! split are shared by every reader (see `kinds::load`).

pub mod bow;
pub mod colour;
pub mod dataset;
pub mod folder;
pub mod hog;
pub mod imet;
pub mod lbp;
pub mod openclipart;
pub mod predictions;
pub mod split;
pub mod synthetic;
pub mod tensor;
#[cfg(any(test, feature = "test-kinds"))]
pub mod testpng;

use std::path::PathBuf;

/// One image a reader found, not decoded yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Where its pixels come from.
    pub source: Source,
    /// The single label.
    pub label: String,
    /// The label set for the multi-label task (may be empty).
    pub labels: Vec<String>,
    /// Filed here through a symbolic link (the same artwork under a second
    /// category): a deduplicated copy prefers the real file.
    pub is_link: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    /// Image `index` (of class number `class`) of the synthetic generator.
    Synthetic {
        index: u64,
        class: usize,
    },
}

impl Source {
    pub fn display(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Synthetic { index, .. } => format!("synthetic:{index}"),
        }
    }
}

/// An input that could not be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadItem {
    pub item: String,
    pub problem: String,
}

/// What a reader found.
#[derive(Debug, Default)]
pub struct Listing {
    pub candidates: Vec<Candidate>,
    /// Inputs that are broken (subject to `on_bad_image`).
    pub bad: Vec<BadItem>,
    /// Inputs left out by a rule (reported, never an error).
    pub dropped: Vec<BadItem>,
    /// What the reader noticed and the user should hear (a warning each).
    pub notes: Vec<String>,
}

impl Listing {
    /// Refuses a label name holding `|`, the separator of label sets in
    /// the multi-label predictions CSV (see `predictions::LABEL_SEPARATOR`):
    /// the error names the label and the file it came with.
    pub fn check_label_names(&self) -> Result<(), DataError> {
        let sep = predictions::LABEL_SEPARATOR;
        for c in &self.candidates {
            if let Some(label) = c.labels.iter().chain([&c.label]).find(|l| l.contains(sep)) {
                return Err(DataError::Unusable(format!(
                    "label `{label}` of {} contains `{sep}`, which separates the labels of a set in the predictions \
                     files; rename the label (or the keyword) without it",
                    c.source.display()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn a_label_with_the_separator_is_refused_by_name_and_file() {
        let candidate = |labels: &[&str]| Candidate {
            source: Source::File("art/cat/a.png".into()),
            label: "cat".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            is_link: false,
        };
        let ok = Listing { candidates: vec![candidate(&["architetto francesco rollandin", "cat"])], ..Default::default() };
        ok.check_label_names().unwrap();
        let bad = Listing { candidates: vec![candidate(&["cat", "black|white"])], ..Default::default() };
        let e = bad.check_label_names().unwrap_err().to_string();
        assert!(e.starts_with("label `black|white` of art/cat/a.png contains `|`"), "{e}");
    }
}

/// Image file extensions the readers pick up (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp"];

pub fn is_image(path: &std::path::Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A data artifact or dataset that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Io(#[from] crate::util::PathError),
    /// The file is there but its content is not what it should be.
    #[error("{}: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
    /// Polars could not read or write a table.
    #[error("{}: {source}", path.display())]
    Table {
        path: PathBuf,
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// A table could not be built in memory.
    #[error(transparent)]
    Frame(#[from] polars::prelude::PolarsError),
    /// A dataset source that cannot be used as configured (the message says why).
    #[error("{0}")]
    Unusable(String),
}

impl DataError {
    pub(crate) fn malformed(path: &std::path::Path, what: impl Into<String>) -> Self {
        DataError::Malformed { path: path.to_path_buf(), what: what.into() }
    }

    /// A `map_err` for the Polars errors of a table at `path`.
    pub(crate) fn table(path: &std::path::Path) -> impl Fn(polars::prelude::PolarsError) -> DataError + '_ {
        move |source| DataError::Table { path: path.to_path_buf(), source }
    }
}
