//! Content fingerprints of source folders (datasets), with a stat cache.
//!
//! A fingerprint is blake3 over the sorted list of (relative path, content
//! hash) of every file below a folder (symbolic links followed, loops
//! skipped). Content hashes are remembered per file with its size, mtime and
//! inode under `<cache>/fingerprints/`, so an unchanged dataset costs one
//! `stat` per file instead of a read. Files modified in the last two seconds
//! are never remembered: a write within the same mtime tick cannot hide.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;

use crate::fsx;
use crate::util::{PathError, write_atomic};

#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ino: u64,
}

/// Relative path -> (stat, content hash). Stored as tab-separated lines
/// (`size mtime_ns ino hash path`): reading it is most of a warm run's cost.
#[derive(Debug, Default)]
struct StatCache {
    files: HashMap<String, (Stat, String)>,
}

impl StatCache {
    fn read(path: &Path) -> StatCache {
        // A missing or unreadable stat cache only costs a re-read of every file.
        let Ok(text) = fsx::read_to_string(path) else { return StatCache::default() };
        let mut files = HashMap::new();
        for line in text.lines() {
            let mut f = line.splitn(5, '\t');
            let (Some(size), Some(mtime), Some(ino), Some(hash), Some(rel)) = (f.next(), f.next(), f.next(), f.next(), f.next()) else {
                return StatCache::default(); // damaged: start over
            };
            let (Ok(size), Ok(mtime_ns), Ok(ino)) = (size.parse(), mtime.parse(), ino.parse()) else {
                return StatCache::default();
            };
            files.insert(rel.to_string(), (Stat { size, mtime_ns, ino }, hash.to_string()));
        }
        StatCache { files }
    }

    fn encode(&self) -> String {
        let mut rows: Vec<_> = self.files.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(rows.len() * 120);
        for (rel, (s, hash)) in rows {
            out.push_str(&format!("{}\t{}\t{}\t{hash}\t{rel}\n", s.size, s.mtime_ns, s.ino));
        }
        out
    }
}

/// What fingerprinting found.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    pub hash: String,
    pub files: usize,
    /// Files whose content had to be read (not served by the stat cache).
    pub hashed: usize,
}

/// Fingerprints `source` (a folder or a single file), using and refreshing
/// the stat cache kept in `stat_dir`.
pub fn fingerprint(stat_dir: &Path, source: &Path) -> Result<Fingerprint, PathError> {
    let abs = fsx::canonicalize(source)?;
    let meta = fsx::metadata(&abs)?;
    let mut paths = Vec::new();
    if meta.is_dir() {
        let mut seen = HashSet::new();
        walk(&abs, "", &mut seen, &mut paths)?;
    } else {
        paths.push((String::new(), abs.clone()));
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    let listing: Vec<(String, PathBuf, Stat)> = paths
        .into_par_iter()
        .map(|(rel, path)| {
            let m = fsx::metadata(&path)?;
            Ok((rel, path, stat_of(&m)))
        })
        .collect::<Result<_, PathError>>()?;

    let cache_file = stat_dir.join(format!("{}.tsv", &blake3::hash(abs.as_os_str().as_encoded_bytes()).to_hex()[..32]));
    let old = StatCache::read(&cache_file);

    let hashes: Vec<Result<(String, bool), PathError>> = listing
        .par_iter()
        .map(|(rel, path, stat)| match old.files.get(rel) {
            Some((s, h)) if s == stat => Ok((h.clone(), false)),
            _ => super::hash_file(path).map(|(_, h)| (h, true)),
        })
        .collect();

    let settle = SystemTime::now() - Duration::from_secs(2);
    let settle_ns = settle.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
    let mut fresh = StatCache::default();
    let mut hasher = blake3::Hasher::new();
    let mut hashed = 0;
    for ((rel, _, stat), result) in listing.iter().zip(hashes) {
        let (hash, was_read) = result?;
        hashed += usize::from(was_read);
        hasher.update(rel.as_bytes()).update(b"\0").update(hash.as_bytes()).update(b"\n");
        if stat.mtime_ns < settle_ns {
            fresh.files.insert(rel.clone(), (*stat, hash));
        }
    }
    if hashed > 0 || fresh.files.len() != old.files.len() {
        match write_atomic(&cache_file, fresh.encode().as_bytes()) {
            // A cache this run cannot write: the stats are only a shortcut.
            Err(e) if super::lock::is_read_only(&e.source) => {}
            other => other?,
        }
    }
    Ok(Fingerprint { hash: hasher.finalize().to_hex().to_string(), files: listing.len(), hashed })
}

fn stat_of(m: &std::fs::Metadata) -> Stat {
    Stat { size: m.len(), mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()), ino: m.ino() }
}

/// Lists the files below `dir` as (relative path, path). Directory entries
/// say their own type, so only links cost a `stat` here; files are stat'ed
/// afterwards, in parallel.
fn walk(dir: &Path, rel: &str, seen: &mut HashSet<(u64, u64)>, out: &mut Vec<(String, PathBuf)>) -> Result<(), PathError> {
    let meta = fsx::metadata(dir)?;
    if !seen.insert((meta.dev(), meta.ino())) {
        return Ok(()); // a link back to a folder already walked
    }
    for item in fsx::read_dir(dir).map_err(|e| e.doing("read folder"))? {
        let item = item.map_err(|e| e.doing("read folder"))?;
        let path = item.path();
        let name = item.file_name().to_string_lossy().into_owned();
        let child_rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let Ok(ft) = item.file_type() else { continue };
        let is_dir = if ft.is_symlink() {
            // Follow links; a dangling link is skipped like a missing file.
            match fsx::metadata(&path) {
                Ok(m) if m.is_dir() => true,
                Ok(m) if m.is_file() => false,
                _ => continue,
            }
        } else if ft.is_dir() {
            true
        } else if ft.is_file() {
            false
        } else {
            continue;
        };
        if is_dir {
            walk(&path, &child_rel, seen, out)?;
        } else {
            out.push((child_rel, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_changes_change_the_fingerprint_and_stats_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let stats = dir.path().join("stats");
        fsx::create_dir_all(data.join("a")).unwrap();
        fsx::create_dir_all(&stats).unwrap();
        fsx::write(data.join("a/x.png"), b"one").unwrap();
        fsx::write(data.join("y.png"), b"two").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        for f in ["a/x.png", "y.png"] {
            fsx::open_with(std::fs::File::options().write(true), data.join(f)).unwrap().set_modified(old).unwrap();
        }
        let first = fingerprint(&stats, &data).unwrap();
        assert_eq!((first.files, first.hashed), (2, 2));
        let again = fingerprint(&stats, &data).unwrap();
        assert_eq!(again.hash, first.hash);
        assert_eq!(again.hashed, 0, "unchanged files come from the stat cache");

        fsx::write(data.join("y.png"), b"TWO").unwrap();
        let changed = fingerprint(&stats, &data).unwrap();
        assert_ne!(changed.hash, first.hash);
        assert_eq!(changed.hashed, 1);

        fsx::rename(data.join("y.png"), data.join("z.png")).unwrap();
        assert_ne!(fingerprint(&stats, &data).unwrap().hash, changed.hash, "names count too");
    }

    #[test]
    fn a_missing_source_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = fingerprint(dir.path(), &dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
