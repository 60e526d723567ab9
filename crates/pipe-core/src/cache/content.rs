//! The content index behind early cutoff (Bazel's change pruning).
//!
//! Keys chain on input *keys*, so a stage whose input re-ran gets a new key
//! even when that input's output came out byte-identical. Its *content key*
//! chains on what the inputs hold instead: the stage's key document with
//! each input key replaced by the [`Manifest::digest`] of that input's
//! output files. `content/<content key>` names the entry last computed from
//! that content; a stage about to run whose content key is there takes that
//! entry's files (hard links) under its own key instead of running. Its
//! output would have been those bytes anyway: a stage's output depends on
//! its parameters and its inputs' content alone, which is what the content
//! key hashes. Pointers are hints: one whose entry is gone or unsound is
//! ignored, and `pipe gc` removes those of the entries it removes.

use std::path::{Path, PathBuf};

use super::{Cache, Entry, Manifest};
use crate::fsx;
use crate::util::{PathError, write_atomic};

impl Manifest {
    /// blake3 over the entry's files (path, size, blake3 of each, in
    /// order): equal digests, byte-identical outputs.
    pub fn digest(&self) -> String {
        let files: Vec<(&str, u64, &str)> = self.files.iter().map(|f| (f.path.as_str(), f.size, f.blake3.as_str())).collect();
        let bytes = serde_json::to_vec(&files).expect("file lists serialise");
        blake3::hash(&bytes).to_hex().to_string()
    }
}

/// A content key: blake3 of a key document whose inputs are digests, in
/// its own domain (it can never equal an entry's key).
pub fn content_key(doc_with_digests: &serde_json::Value) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"pipe content key\0");
    hasher.update(&serde_json::to_vec(doc_with_digests).expect("JSON values serialise"));
    hasher.finalize().to_hex().to_string()
}

impl Cache {
    fn content_path(&self, content_key: &str) -> PathBuf {
        self.root.join("content").join(content_key)
    }

    /// The key of the entry last computed from `content_key`, if one is
    /// recorded (whether that entry still exists is the caller's lookup).
    pub fn computed_from(&self, content_key: &str) -> Option<String> {
        let text = fsx::read_to_string_if_exists(self.content_path(content_key)).ok()??;
        let key = text.trim();
        (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| key.to_string())
    }

    /// Records that `key`'s entry was computed from `content_key` (a no-op
    /// when it already says so).
    pub fn remember_content(&self, content_key: &str, key: &str) -> Result<(), PathError> {
        if self.computed_from(content_key).as_deref() == Some(key) {
            return Ok(());
        }
        write_atomic(&self.content_path(content_key), key.as_bytes())
    }

    /// Removes the pointers to entries that no longer exist; returns how many.
    pub fn forget_removed_content(&self) -> Result<usize, PathError> {
        let dir = self.root.join("content");
        if !dir.is_dir() {
            return Ok(0);
        }
        let mut removed = 0;
        for item in fsx::read_dir(&dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            match self.computed_from(&name) {
                Some(key) if self.entry_dir(&key).exists() => {}
                _ => {
                    fsx::remove_file(&path)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Puts `entry`'s output files into `out` (an empty folder on the same
/// file system: hard links, or copies where links are refused).
pub fn link_files(entry: &Entry, out: &Path) -> Result<(), PathError> {
    let from = entry.out_dir();
    for file in &entry.manifest.files {
        let (src, dst) = (from.join(&file.path), out.join(&file.path));
        if let Some(parent) = dst.parent() {
            fsx::create_dir_all(parent)?;
        }
        if fsx::hard_link(&src, &dst).is_err() {
            fsx::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::{KEY_A, KEY_B, put};
    use crate::cache::{CacheStatus, Lookup};

    #[test]
    fn digests_follow_the_bytes_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (a, b) = (put(&cache, KEY_A, "42"), put(&cache, KEY_B, "42"));
        assert_eq!(a.manifest.digest(), b.manifest.digest());
        let other = tempfile::tempdir().unwrap();
        let c = put(&Cache::open(other.path()).unwrap(), KEY_A, "43");
        assert_ne!(a.manifest.digest(), c.manifest.digest());
        let doc = serde_json::json!({"inputs": {"x": [a.manifest.digest()]}});
        let plain = blake3::hash(&serde_json::to_vec(&doc).unwrap()).to_hex().to_string();
        assert_ne!(content_key(&doc), plain, "content keys have their own domain");
    }

    #[test]
    fn pointers_round_trip_and_dangling_ones_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let entry = put(&cache, KEY_A, "42");
        let ck = content_key(&serde_json::json!({"x": 1}));
        assert_eq!(cache.computed_from(&ck), None);
        cache.remember_content(&ck, KEY_A).unwrap();
        assert_eq!(cache.computed_from(&ck).as_deref(), Some(KEY_A));
        // A garbled pointer is no pointer.
        fsx::write(dir.path().join("content/junk"), "not a key").unwrap();
        assert_eq!(cache.computed_from("junk"), None);

        let CacheStatus::Miss(w) = cache.acquire(KEY_B).unwrap() else { panic!() };
        link_files(&entry, &w.out_dir()).unwrap();
        let (copy, _) = w.publish("test-source", "t", serde_json::json!({"k": 2})).unwrap();
        assert_eq!(copy.manifest.digest(), entry.manifest.digest());

        assert_eq!(cache.forget_removed_content().unwrap(), 1, "only the garbled one");
        cache.discard(KEY_A).unwrap();
        assert!(matches!(cache.lookup(KEY_B), Lookup::Hit(_)), "a linked copy outlives its source");
        assert_eq!(cache.forget_removed_content().unwrap(), 1);
        assert_eq!(cache.computed_from(&ck), None);
    }
}
