//! The layout most users have: `root/<class>/*.{png,jpg,jpeg,bmp,webp}`,
//! class = folder name. Deeper folders count for their top-level class.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::path::Path;

use super::{Candidate, Listing, Source, is_image};
use crate::util::{IoContext, PathError};

pub fn list(root: &Path) -> Result<Listing, String> {
    if !root.is_dir() {
        return Err(format!("{} is not a folder: set `root` to a folder with one sub-folder per class", root.display()));
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
pub fn class_folders(root: &Path) -> Result<Vec<(String, Files)>, String> {
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .at("read folder", root)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let label = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut files = Vec::new();
        collect(&dir, &mut files).map_err(|e| e.to_string())?;
        files.sort();
        out.push((label, files));
    }
    Ok(out)
}

/// Image files below `dir` (links followed), with whether each is a link.
pub fn collect(dir: &Path, out: &mut Files) -> Result<(), PathError> {
    for item in std::fs::read_dir(dir).at("read folder", dir)? {
        let item = item.at("read folder", dir)?;
        let path = item.path();
        let is_link = item.file_type().is_ok_and(|t| t.is_symlink());
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() && !is_link {
            collect(&path, out)?;
        } else if meta.is_file() && is_image(&path) {
            out.push((path, is_link));
        }
    }
    Ok(())
}
