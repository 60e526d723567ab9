//! `pipe gc`: removes cache entries that no given pipeline references, or
//! that are older than a given age, and reports the bytes freed. Entries in
//! use by a running `pipe run` are skipped and counted: gc takes both of an
//! entry's locks exclusively, without waiting, and a run holds the write lock
//! of what it builds and the read lock of everything it will read.

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use super::lock::{read_lock_path, try_exclusive, write_lock_path};
use super::{Cache, Lookup};
use crate::fsx;
use crate::util::{PathError, parse_rfc3339};

/// Which entries to remove.
pub struct GcPolicy {
    /// Keys the given pipelines use now; `None` when no pipeline was given.
    pub keep: Option<HashSet<String>>,
    /// Remove only entries created before this instant.
    pub older_than: Option<SystemTime>,
    pub dry_run: bool,
}

#[derive(Debug, Default, PartialEq)]
pub struct GcReport {
    pub removed: usize,
    pub kept: usize,
    /// Of the kept entries, those skipped because a live run holds them.
    pub in_use: usize,
    pub bytes: u64,
}

/// Applies `policy` to every entry of `cache` (and clears abandoned temporary folders).
pub fn collect(cache: &Cache, policy: &GcPolicy) -> Result<GcReport, PathError> {
    let mut report = GcReport::default();
    for key in cache.keys()? {
        let dir = cache.entry_dir(&key);
        let (created, bytes) = match cache.lookup(&key) {
            Lookup::Hit(e) => (parse_rfc3339(&e.manifest.created), e.manifest.bytes()),
            _ => (None, dir_size(&dir)),
        };
        let referenced = policy.keep.as_ref().is_some_and(|k| k.contains(&key));
        let old_enough = match (policy.older_than, created) {
            (Some(limit), Some(c)) => c < limit,
            (Some(_), None) => true, // corrupt or partial: no reason to keep it
            (None, _) => true,
        };
        if referenced || !old_enough {
            report.kept += 1;
            continue;
        }
        let root = cache.root();
        let locks = (try_exclusive(&write_lock_path(root, &key))?, try_exclusive(&read_lock_path(root, &key))?);
        let (Some(_writing), Some(_reading)) = locks else {
            // A live run builds it or will read it.
            report.kept += 1;
            report.in_use += 1;
            continue;
        };
        if !policy.dry_run {
            cache.discard(&key)?;
        }
        report.removed += 1;
        report.bytes += bytes;
    }
    if !policy.dry_run {
        clear_tmp(cache)?;
        cache.forget_removed_content()?;
    }
    Ok(report)
}

/// Removes temporary folders whose key is not locked by a live run.
fn clear_tmp(cache: &Cache) -> Result<(), PathError> {
    let tmp = cache.root().join("tmp");
    for item in fsx::read_dir(&tmp)? {
        let path = item?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let key = name.trim_start_matches("discard-").split('-').next().unwrap_or_default().to_string();
        if key.len() == 64 && try_exclusive(&write_lock_path(cache.root(), &key))?.is_some() {
            fsx::remove_dir_all(&path)?;
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    // Only for the report's byte count: an unreadable folder counts as empty.
    let Ok(items) = fsx::read_dir(dir) else { return 0 };
    items
        .flatten()
        .map(|i| match i.file_type() {
            Ok(t) if t.is_dir() => dir_size(&i.path()),
            _ => i.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
