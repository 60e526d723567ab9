//! Thin wrappers around the `std::fs` functions the engine uses, each
//! returning a [`PathError`] that names what was being done and the path it
//! was done to (fs-err's idea, without the dependency). `clippy.toml` forbids
//! the bare `std::fs` functions elsewhere, so an I/O error can no longer
//! reach the user as a bare "No such file or directory".
//!
//! Each wrapper has a default action (`read`, `write`, `create`, ...); a
//! caller that knows better says so with [`PathError::doing`]. A function
//! of two paths ([`rename`], [`copy`], [`hard_link`]) names the destination,
//! which is the path the user can do something about.
#![allow(clippy::disallowed_methods)]

use std::fs::{self, DirEntry, File, Metadata, OpenOptions};
use std::path::{Path, PathBuf};

/// An I/O error together with the path it happened on and what was being done.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct PathError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl PathError {
    /// The same error, described as `action` (for the generic actions of this module).
    pub fn doing(mut self, action: &'static str) -> Self {
        self.action = action;
        self
    }
}

/// Attaches a path and an action to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, PathError> {
        self.map_err(|source| PathError { action, path: path.to_path_buf(), source })
    }
}

/// [`std::fs::read`].
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, PathError> {
    let path = path.as_ref();
    fs::read(path).at("read", path)
}

/// [`std::fs::read_to_string`].
pub fn read_to_string(path: impl AsRef<Path>) -> Result<String, PathError> {
    let path = path.as_ref();
    fs::read_to_string(path).at("read", path)
}

/// [`read_to_string`] of a file that may not be there: `None` when it is
/// missing, any other failure an error.
pub fn read_to_string_if_exists(path: impl AsRef<Path>) -> Result<Option<String>, PathError> {
    let path = path.as_ref();
    match fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some).at("read", path),
    }
}

/// [`read`] of a file that may not be there: `None` when it is missing.
pub fn read_if_exists(path: impl AsRef<Path>) -> Result<Option<Vec<u8>>, PathError> {
    let path = path.as_ref();
    match fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some).at("read", path),
    }
}

/// [`std::fs::write`].
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<(), PathError> {
    let path = path.as_ref();
    fs::write(path, contents).at("write", path)
}

/// [`std::fs::create_dir_all`].
pub fn create_dir_all(path: impl AsRef<Path>) -> Result<(), PathError> {
    let path = path.as_ref();
    fs::create_dir_all(path).at("create", path)
}

/// [`std::fs::rename`]; the error names `to`.
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<(), PathError> {
    let to = to.as_ref();
    fs::rename(from, to).at("rename into place", to)
}

/// [`std::fs::remove_file`].
pub fn remove_file(path: impl AsRef<Path>) -> Result<(), PathError> {
    let path = path.as_ref();
    fs::remove_file(path).at("remove", path)
}

/// [`std::fs::remove_dir_all`].
pub fn remove_dir_all(path: impl AsRef<Path>) -> Result<(), PathError> {
    let path = path.as_ref();
    fs::remove_dir_all(path).at("remove", path)
}

/// [`std::fs::metadata`] (links followed).
pub fn metadata(path: impl AsRef<Path>) -> Result<Metadata, PathError> {
    let path = path.as_ref();
    fs::metadata(path).at("inspect", path)
}

/// [`std::fs::symlink_metadata`] (links not followed).
pub fn symlink_metadata(path: impl AsRef<Path>) -> Result<Metadata, PathError> {
    let path = path.as_ref();
    fs::symlink_metadata(path).at("inspect", path)
}

/// [`std::fs::canonicalize`].
pub fn canonicalize(path: impl AsRef<Path>) -> Result<PathBuf, PathError> {
    let path = path.as_ref();
    fs::canonicalize(path).at("find", path)
}

/// [`std::fs::copy`]; the error names `to`.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<u64, PathError> {
    let to = to.as_ref();
    fs::copy(from, to).at("copy to", to)
}

/// [`std::fs::hard_link`]; the error names `link`.
pub fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> Result<(), PathError> {
    let link = link.as_ref();
    fs::hard_link(original, link).at("link", link)
}

/// [`std::os::unix::fs::symlink`]; the error names `link`.
pub fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> Result<(), PathError> {
    let link = link.as_ref();
    std::os::unix::fs::symlink(original, link).at("link", link)
}

/// [`std::fs::File::open`].
/// `path` made absolute against the working folder (as it is, if that is gone).
pub fn absolute(path: impl AsRef<Path>) -> PathBuf {
    std::path::absolute(path.as_ref()).unwrap_or_else(|_| path.as_ref().to_path_buf())
}

pub fn open(path: impl AsRef<Path>) -> Result<File, PathError> {
    let path = path.as_ref();
    File::open(path).at("open", path)
}

/// [`std::fs::File::create`].
pub fn create(path: impl AsRef<Path>) -> Result<File, PathError> {
    let path = path.as_ref();
    File::create(path).at("create", path)
}

/// [`std::fs::OpenOptions::open`].
pub fn open_with(options: &OpenOptions, path: impl AsRef<Path>) -> Result<File, PathError> {
    let path = path.as_ref();
    options.open(path).at("open", path)
}

/// [`std::fs::read_dir`]; the entries' errors name the folder too.
pub fn read_dir(path: impl AsRef<Path>) -> Result<ReadDir, PathError> {
    let path = path.as_ref();
    let inner = fs::read_dir(path).at("read", path)?;
    Ok(ReadDir { inner, path: path.to_path_buf() })
}

/// The entries of a folder, see [`read_dir`].
#[derive(Debug)]
pub struct ReadDir {
    inner: fs::ReadDir,
    path: PathBuf,
}

impl Iterator for ReadDir {
    type Item = Result<DirEntry, PathError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|item| item.at("read", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_action_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let err = read(&missing).unwrap_err();
        assert_eq!(err.action, "read");
        assert_eq!(err.path, missing);
        assert!(err.to_string().starts_with(&format!("cannot read {}: ", missing.display())), "{err}");
        let err = rename(&missing, dir.path().join("to")).unwrap_err().doing("move aside");
        assert!(err.to_string().starts_with("cannot move aside "), "{err}");
        write(dir.path().join("a"), "x").unwrap();
        let names: Vec<String> = read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a"]);
    }
}
