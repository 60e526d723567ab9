//! The two advisory locks of a cache key, both under `locks/`:
//! - `<key>.lock`, exclusive: held by the one run that builds the entry (and
//!   briefly by `pipe gc` and by a run that discards a corrupt entry);
//! - `<key>.read`, shared: a [`Hold`], held by every run that will read the
//!   entry (an input of a stage it runs, or a report it copies) until the run
//!   ends. `pipe gc` takes it exclusively, without waiting, so it never
//!   removes an entry a live run still needs.
//!
//! They are separate files because `flock` cannot turn an exclusive lock
//! into a shared one atomically: a writer takes the read hold on the entry it
//! is about to publish before it lets go of the write lock, so there is no
//! moment at which gc could slip in. The locks are released by the kernel
//! when the process dies, however it dies.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::fsx;
use crate::util::{IoContext, PathError};

/// How often a waiting run looks at the lock (and at Ctrl-C) again: from
/// 1 ms, doubling up to 50 ms, so a short wait (two stages of one run with
/// the same key) ends almost at once and a long one costs nothing.
const FIRST_POLL: Duration = Duration::from_millis(1);
const MAX_POLL: Duration = Duration::from_millis(50);

pub fn write_lock_path(root: &Path, key: &str) -> PathBuf {
    root.join("locks").join(format!("{key}.lock"))
}

pub fn read_lock_path(root: &Path, key: &str) -> PathBuf {
    root.join("locks").join(format!("{key}.read"))
}

fn open(path: &Path) -> Result<File, PathError> {
    fsx::open_with(File::options().create(true).truncate(false).write(true), path).map_err(|e| e.doing("open lock"))
}

/// Whether an error says the cache cannot be written (a read-only mount,
/// another user's cache).
pub fn is_read_only(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ReadOnlyFilesystem || e.kind() == std::io::ErrorKind::PermissionDenied
}

/// A shared lock on an entry this run will read: while any run holds one,
/// `pipe gc` leaves the entry alone. Released when dropped. On a cache this
/// run cannot write, the lock file is opened for reading (a shared `flock`
/// needs no write access), or, when there is none, no lock is taken
/// ([`Hold::is_locked`]): whoever can write that cache cannot see the run.
#[derive(Debug)]
pub struct Hold {
    file: Option<File>,
}

impl Hold {
    /// Whether `pipe gc` can see this hold.
    pub fn is_locked(&self) -> bool {
        self.file.is_some()
    }
}

/// Takes the shared read lock of `key`, waiting while `pipe gc` holds it.
pub fn hold(root: &Path, key: &str) -> Result<Hold, PathError> {
    let path = read_lock_path(root, key);
    let file = match open(&path) {
        Ok(file) => file,
        Err(e) if is_read_only(&e.source) => match fsx::open(&path) {
            Ok(file) => file,
            Err(missing) if missing.source.kind() == std::io::ErrorKind::NotFound => return Ok(Hold { file: None }),
            Err(other) => return Err(other.doing("open lock")),
        },
        Err(e) => return Err(e),
    };
    file.lock_shared().at("lock", &path)?;
    Ok(Hold { file: Some(file) })
}

/// What waiting for a lock ended with.
pub enum Waited {
    Locked(File),
    Cancelled,
}

/// Takes the exclusive write lock of `key`, waiting (in short steps, so
/// Ctrl-C takes effect at once) while another run builds the entry.
pub fn lock_for_writing(root: &Path, key: &str, cancel: &AtomicBool) -> Result<Waited, PathError> {
    let path = write_lock_path(root, key);
    let file = open(&path)?;
    let mut poll = FIRST_POLL;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Waited::Locked(file)),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e).at("lock", &path),
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(Waited::Cancelled);
        }
        std::thread::sleep(poll);
        poll = (poll * 2).min(MAX_POLL);
    }
}

/// Takes the lock at `path` exclusively if nobody holds it; `None` if busy.
pub fn try_exclusive(path: &Path) -> Result<Option<File>, PathError> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e).at("lock", path),
    }
}
