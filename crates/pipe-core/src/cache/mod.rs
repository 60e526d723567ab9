//! The content-addressed store of stage outputs.
//!
//! Layout under the cache root:
//! - `entries/<k0k1>/<key>/manifest.json` and `entries/<k0k1>/<key>/out/...`
//! - `tmp/<key>-<pid>-<n>/`: an entry being built, published by one atomic
//!   rename, so a killed run never leaves half an entry behind;
//! - `locks/<key>.lock` and `locks/<key>.read`: per-key advisory locks (see
//!   [`lock`]): two runs never compute the same key at once (the second
//!   waits, then finds the entry), and `pipe gc` never removes an entry that
//!   a live run will read;
//! - `fingerprints/`: the stat cache of [`fingerprint`];
//! - `content/<content key>`: the key of the entry computed from that
//!   content, for early cutoff (see [`content`]).
//!
//! [`Cache::acquire`] returns [`CacheStatus::Hit`] or [`CacheStatus::Miss`]
//! holding the only [`Writer`] for that key (just's `CacheStatus` idiom):
//! nothing else can publish an entry. A hit and a published entry both come
//! with a [`Hold`] that keeps `pipe gc` away while the run needs them. Reads check the manifest and file sizes
//! ([`Cache::lookup`]); a stage about to consume an entry checks every file's
//! blake3 ([`Entry::verify`]). Either failure is reported and the entry is
//! recomputed, never used.

pub mod content;
pub mod fingerprint;
pub mod gc;
pub mod lock;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::fsx;
use crate::util::{IoContext, PathError, rfc3339, write_atomic};
pub use lock::Hold;

/// One output file of an entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRecord {
    /// Relative to the entry's `out/` folder, `/`-separated.
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

/// `manifest.json`: what produced an entry, and checksums of what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub key: String,
    pub kind: String,
    /// The stage name that first produced it (keys do not include names).
    pub stage: String,
    /// The key document: kind version, seed, parameters, input keys, sources.
    pub doc: serde_json::Value,
    pub created: String,
    pub seconds: f64,
    pub files: Vec<FileRecord>,
}

impl Manifest {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A published entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Entry {
    /// The folder holding the stage's output files.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// Recomputes every file's blake3 against the manifest.
    pub fn verify(&self) -> Result<(), CacheError> {
        self.verify_with(|_| {})
    }

    /// [`Entry::verify`], calling `checked` with each file's size once it is checked.
    pub fn verify_with(&self, mut checked: impl FnMut(u64)) -> Result<(), CacheError> {
        let out = self.out_dir();
        for f in &self.manifest.files {
            let path = out.join(&f.path);
            let (size, hash) = hash_file(&path)?;
            if size != f.size || hash != f.blake3 {
                return Err(CacheError::Checksum { path });
            }
            checked(size);
        }
        Ok(())
    }

    /// Reads one output file, checking it against the manifest's size and
    /// blake3 on the way (for files copied out of the cache into a report).
    pub fn read_verified(&self, file: &FileRecord) -> Result<Vec<u8>, CacheError> {
        let path = self.out_dir().join(&file.path);
        let bytes = fsx::read(&path)?;
        if bytes.len() as u64 != file.size || blake3::hash(&bytes).to_hex().as_str() != file.blake3 {
            return Err(CacheError::Checksum { path });
        }
        Ok(bytes)
    }
}

/// What [`Cache::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    Hit(Entry),
    Missing,
    /// There is something at the key's place, but it is not a sound entry.
    Corrupt(String),
}

/// The outcome of [`Cache::acquire`].
pub enum CacheStatus {
    /// A sound entry, held for reading until the [`Hold`] is dropped.
    Hit(Entry, Hold),
    Miss(Writer),
    /// The run was interrupted while it waited for another run's lock.
    Cancelled,
}

/// Errors of the store itself (not of stages).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("cache entry {0}: {1}")]
    Invalid(String, String),
    /// A file of an entry whose size or blake3 differs from its manifest's.
    #[error("{} does not match its checksum", path.display())]
    Checksum { path: PathBuf },
    #[error("cache entry {0} is in use by another run, which is reading it: run again once it has finished")]
    InUse(String),
}

/// A cache root.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Cache {
    /// Opens (creating if needed) the cache at `root`.
    /// A cache this process cannot write (a read-only mount, another
    /// user's cache) opens too, for runs that only read it; see
    /// [`Cache::unwritable`].
    pub fn open(root: &Path) -> Result<Cache, PathError> {
        for sub in ["entries", "tmp", "locks", "fingerprints"] {
            let dir = root.join(sub);
            match fsx::create_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if lock::is_read_only(&e.source) && root.join("entries").is_dir() => {}
                Err(e) => return Err(e.doing("create cache folder")),
            }
        }
        Ok(Cache { root: root.to_path_buf() })
    }

    /// Whether this process can build entries here: `None` if it can, else
    /// why not (the error of writing a probe file into `tmp/`).
    pub fn unwritable(&self) -> Option<String> {
        let probe = self.root.join("tmp").join(format!("probe-{}", std::process::id()));
        match fsx::write(&probe, b"") {
            Ok(()) => {
                let _ = fsx::remove_file(&probe);
                None
            }
            Err(e) => Some(e.source.to_string()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The keys of every entry folder under `entries/`, sound or not, sorted.
    pub fn keys(&self) -> Result<Vec<String>, PathError> {
        let entries = self.root.join("entries");
        let mut keys = Vec::new();
        for shard in fsx::read_dir(&entries)? {
            let shard = shard?.path();
            for item in fsx::read_dir(&shard)? {
                keys.push(item?.file_name().to_string_lossy().into_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }

    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(&key[..2]).join(key)
    }

    /// The warnings the stage of entry `key` gave when it ran (its
    /// `stage.log`'s `warning: ` lines); none when it logged nothing.
    pub fn logged_warnings(&self, key: &str) -> Result<Vec<String>, crate::util::PathError> {
        match crate::fsx::read_to_string(self.entry_dir(key).join("out/stage.log")) {
            Ok(text) => Ok(text.lines().filter_map(|l| l.strip_prefix("warning: ")).map(str::to_string).collect()),
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Checks the manifest and file sizes of the entry for `key` (cheap: no
    /// file is read but the manifest).
    pub fn lookup(&self, key: &str) -> Lookup {
        let dir = self.entry_dir(key);
        let manifest_path = dir.join("manifest.json");
        let text = match fsx::read(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => {
                return if dir.exists() { Lookup::Corrupt("entry has no manifest".into()) } else { Lookup::Missing };
            }
            Err(e) => return Lookup::Corrupt(e.to_string()),
        };
        let manifest: Manifest = match serde_json::from_slice(&text) {
            Ok(m) => m,
            Err(e) => return Lookup::Corrupt(format!("unreadable manifest: {e}")),
        };
        if manifest.key != key || manifest.format != crate::FORMAT_VERSION {
            return Lookup::Corrupt("manifest belongs to another key or format".into());
        }
        let out = dir.join("out");
        for f in &manifest.files {
            match fsx::metadata(out.join(&f.path)) {
                Ok(m) if m.len() == f.size => {}
                Ok(_) => return Lookup::Corrupt(format!("{} has the wrong size", f.path)),
                Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Lookup::Corrupt(format!("{} is missing", f.path)),
                Err(e) => return Lookup::Corrupt(e.to_string()),
            }
        }
        Lookup::Hit(Entry { dir, manifest })
    }

    /// Takes the key's lock (waiting while another process holds it), then
    /// looks again: a hit releases the lock, a miss hands back the only writer.
    /// A corrupt entry found here is removed so it can be rebuilt.
    pub fn acquire(&self, key: &str) -> Result<CacheStatus, CacheError> {
        self.acquire_unless(key, |_| true, &AtomicBool::new(false))
    }

    /// Like [`Cache::acquire`], but an existing entry is only a hit if `keep`
    /// accepts it (a full checksum check, say, or never under `--force`);
    /// otherwise it is removed under the lock and a writer handed back. The
    /// wait for another run's lock ends early once `cancel` is set.
    pub fn acquire_unless(&self, key: &str, keep: impl FnOnce(&Entry) -> bool, cancel: &AtomicBool) -> Result<CacheStatus, CacheError> {
        self.acquire_adopting(key, keep, cancel, |_, _| false)
    }

    /// [`Cache::acquire_unless`], offering each half-built entry of `key`
    /// left by a killed run to `adopt(dir, already)` before it is removed:
    /// the first it accepts becomes the writer's folder (a cluster job still
    /// building it, say; see [`Writer::adopted`]). `already` says one was taken.
    pub fn acquire_adopting(
        &self,
        key: &str,
        keep: impl FnOnce(&Entry) -> bool,
        cancel: &AtomicBool,
        mut adopt: impl FnMut(&Path, bool) -> bool,
    ) -> Result<CacheStatus, CacheError> {
        let lock = match lock::lock_for_writing(&self.root, key, cancel)? {
            lock::Waited::Locked(file) => file,
            lock::Waited::Cancelled => return Ok(CacheStatus::Cancelled),
        };
        match self.lookup(key) {
            Lookup::Hit(entry) if keep(&entry) => {
                let hold = self.hold(key)?;
                return Ok(CacheStatus::Hit(entry, hold));
            }
            Lookup::Hit(_) => {
                // Forced, or corrupt: never pull it from under a run that holds it.
                let Some(_no_reader) = lock::try_exclusive(&lock::read_lock_path(&self.root, key))? else {
                    return Err(CacheError::InUse(key[..12].to_string()));
                };
                self.discard(key)?
            }
            Lookup::Corrupt(_) => self.discard(key)?,
            Lookup::Missing => {}
        }
        let adopted = self.remove_stale_tmp(key, &mut adopt)?;
        let tmp = match &adopted {
            Some(dir) => dir.clone(),
            None => {
                let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                self.root.join("tmp").join(format!("{key}-{}-{n}", std::process::id()))
            }
        };
        let out = tmp.join("out");
        fsx::create_dir_all(&out)?;
        Ok(CacheStatus::Miss(Writer {
            key: key.to_string(),
            tmp,
            dest: self.entry_dir(key),
            _lock: lock,
            started: Instant::now(),
            published: false,
            adopted: adopted.is_some(),
            seconds: None,
        }))
    }

    /// Holds `key`'s entry for reading (see [`lock`]): `pipe gc` will not
    /// remove it while the returned [`Hold`] lives.
    pub fn hold(&self, key: &str) -> Result<Hold, PathError> {
        lock::hold(&self.root, key)
    }

    /// Moves a bad entry out of the way and deletes it. Call with the key's lock held.
    pub fn discard(&self, key: &str) -> Result<(), PathError> {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self.root.join("tmp").join(format!("discard-{key}-{}", std::process::id()));
        fsx::rename(&dir, &trash).map_err(|e| PathError { action: "move aside", path: dir.clone(), ..e })?;
        fsx::remove_dir_all(&trash)
    }

    /// Removes half-built entries of `key` left by killed runs (the caller
    /// holds the key's lock, so no live run owns them).
    /// Returns the one `adopt` accepted.
    fn remove_stale_tmp(&self, key: &str, adopt: &mut impl FnMut(&Path, bool) -> bool) -> Result<Option<PathBuf>, PathError> {
        let tmp = self.root.join("tmp");
        let mut adopted = None;
        let mut stale: Vec<PathBuf> = Vec::new();
        for item in fsx::read_dir(&tmp)? {
            let item = item?;
            if item.file_name().to_string_lossy().starts_with(&format!("{key}-")) {
                stale.push(item.path());
            }
        }
        stale.sort();
        for dir in stale {
            if adopt(&dir, adopted.is_some()) && adopted.is_none() {
                adopted = Some(dir);
            } else {
                fsx::remove_dir_all(&dir).map_err(|e| e.doing("remove stale"))?;
            }
        }
        Ok(adopted)
    }
}

/// The write token of a missing entry: build the output in [`Writer::out_dir`],
/// then [`Writer::publish`]. Dropped unpublished, it removes its files.
pub struct Writer {
    key: String,
    tmp: PathBuf,
    dest: PathBuf,
    _lock: std::fs::File,
    started: Instant,
    published: bool,
    adopted: bool,
    /// The seconds the manifest records, when not the time since acquiring.
    seconds: Option<f64>,
}

impl Writer {
    /// Records `seconds` as the time the entry took to compute (an entry
    /// published from an earlier one's files took what that one took).
    pub fn took(mut self, seconds: f64) -> Writer {
        self.seconds = Some(seconds);
        self
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The folder being built: `out/` and whatever an executor keeps beside it.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The folder was left by a killed run and taken over (see
    /// [`Cache::acquire_adopting`]), not made empty for this one.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    pub fn out_dir(&self) -> PathBuf {
        self.tmp.join("out")
    }

    /// Checksums the output, writes the manifest and renames the entry into
    /// place. Returns the published entry, held for reading: the hold is
    /// taken before the write lock goes, so gc never finds it unguarded.
    pub fn publish(mut self, kind: &str, stage: &str, doc: serde_json::Value) -> Result<(Entry, Hold), CacheError> {
        let out = self.out_dir();
        let mut files = Vec::new();
        collect_files(&out, &out, &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            format: crate::FORMAT_VERSION,
            key: self.key.clone(),
            kind: kind.to_string(),
            stage: stage.to_string(),
            doc,
            created: rfc3339(SystemTime::now()),
            seconds: self.seconds.unwrap_or_else(|| self.started.elapsed().as_secs_f64()),
            files,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
        write_atomic(&self.tmp.join("manifest.json"), &bytes)?;
        let parent = self.dest.parent().expect("entries have a parent");
        fsx::create_dir_all(parent)?;
        let hold = lock::hold(self.tmp.parent().and_then(Path::parent).expect("tmp/ sits in the cache root"), &self.key)?;
        fsx::rename(&self.tmp, &self.dest).map_err(|e| e.doing("publish entry"))?;
        self.published = true;
        Ok((Entry { dir: self.dest.clone(), manifest }, hold))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: a folder left behind is removed by the next run of
            // this key (`remove_stale_tmp`) or by `pipe gc`.
            let _ = fsx::remove_dir_all(&self.tmp);
        }
    }
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<FileRecord>) -> Result<(), PathError> {
    for item in fsx::read_dir(dir)? {
        let item = item?;
        let path = item.path();
        let ft = item.file_type().at("inspect", &path)?;
        if ft.is_dir() {
            collect_files(base, &path, out)?;
        } else {
            let (size, blake3) = hash_file(&path)?;
            let rel = path.strip_prefix(base).expect("walked below base");
            let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push(FileRecord { path: rel, size, blake3 });
        }
    }
    Ok(())
}

/// Size and blake3 of a file, read in 8 MiB pieces, each hashed on every
/// core. Not memory-mapped: a map of a multi-gigabyte images file would
/// count its whole size in the engine's resident memory.
pub fn hash_file(path: &Path) -> Result<(u64, String), PathError> {
    use std::io::Read;
    let mut hasher = blake3::Hasher::new();
    let mut file = fsx::open(path)?;
    let mut buffer = vec![0u8; 8 << 20];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).at("read", path),
        };
        size += n as u64;
        if n > 1 << 20 {
            hasher.update_rayon(&buffer[..n]);
        } else {
            hasher.update(&buffer[..n]);
        }
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

#[cfg(test)]
mod tests;
