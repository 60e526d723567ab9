//! The layout most users have: `root/<class>/*.{png,jpg,jpeg,bmp,webp}`,
//! class = folder name. Deeper folders count for their top-level class.

use std::path::Path;

use super::{Candidate, DataError, Listing, Source, is_image};
use crate::fsx;
use crate::util::PathError;

pub fn list(root: &Path) -> Result<Listing, DataError> {
    if !root.is_dir() {
        return Err(DataError::Unusable(format!(
            "{} is not a folder: set `root` to a folder with one sub-folder per class",
            root.display()
        )));
    }
    let mut listing = Listing::default();
    for (label, files) in class_folders(root)? {
        for (path, is_link) in files {
            listing.candidates.push(Candidate { source: Source::File(path), label: label.clone(), labels: vec![label.clone()], is_link });
        }
    }
    Ok(listing)
}

/// Image files as (path, is a link).
pub type Files = Vec<(std::path::PathBuf, bool)>;

/// The sub-folders of `root` in name order, each with its image files
/// (sorted).
pub fn class_folders(root: &Path) -> Result<Vec<(String, Files)>, DataError> {
    let mut dirs: Vec<_> =
        fsx::read_dir(root).map_err(|e| e.doing("read folder"))?.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let label = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut files = Vec::new();
        collect(&dir, &mut files)?;
        files.sort();
        out.push((label, files));
    }
    Ok(out)
}

/// Image files below `dir` (links followed), with whether each is a link.
pub fn collect(dir: &Path, out: &mut Files) -> Result<(), PathError> {
    for item in fsx::read_dir(dir).map_err(|e| e.doing("read folder"))? {
        let item = item.map_err(|e| e.doing("read folder"))?;
        let path = item.path();
        let is_link = item.file_type().is_ok_and(|t| t.is_symlink());
        let Ok(meta) = fsx::metadata(&path) else { continue };
        if meta.is_dir() && !is_link {
            collect(&path, out)?;
        } else if meta.is_file() && is_image(&path) {
            out.push((path, is_link));
        }
    }
    Ok(())
}
