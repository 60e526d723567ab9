//! `pipe verify`: every entry's files checked against its manifest (size and
//! blake3), so a corruption is found before some run happens to read it.
//! A corrupt entry can be discarded here (under its locks, never while a run
//! builds or holds it); otherwise the next run that needs it recomputes it.

use super::lock::{read_lock_path, try_exclusive, write_lock_path};
use super::{Cache, Lookup};
use crate::util::PathError;

/// One entry that failed the check.
#[derive(Debug, Clone, PartialEq)]
pub struct Corrupt {
    pub key: String,
    /// The stage that produced it and its kind, when the manifest is readable.
    pub stage: Option<(String, String)>,
    pub problem: String,
    /// Whether it was discarded (`false` when asked not to, or when in use).
    pub discarded: bool,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub checked: usize,
    pub bytes: u64,
    pub corrupt: Vec<Corrupt>,
}

/// Checks every entry; `progress(bytes_done, bytes_total)` follows the
/// hashing. With `discard`, corrupt entries nobody uses are removed.
pub fn verify_all(cache: &Cache, discard: bool, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport, PathError> {
    let keys = cache.keys()?;
    let looked: Vec<(String, Lookup)> = keys.into_iter().map(|k| (k.clone(), cache.lookup(&k))).collect();
    let total: u64 = looked.iter().map(|(_, l)| if let Lookup::Hit(e) = l { e.manifest.bytes() } else { 0 }).sum();
    let mut report = VerifyReport::default();
    let mut done = 0;
    for (key, lookup) in looked {
        report.checked += 1;
        // Held while hashed, so a run cannot rebuild it underneath; looked
        // up again under the hold, since it may have changed since.
        let hold = cache.hold(&key)?;
        let lookup = if matches!(lookup, Lookup::Hit(_)) { cache.lookup(&key) } else { lookup };
        let (stage, problem) = match lookup {
            Lookup::Hit(entry) => {
                let result = entry.verify_with(|n| {
                    done += n;
                    progress(done, total);
                });
                report.bytes += entry.manifest.bytes();
                (Some((entry.manifest.stage.clone(), entry.manifest.kind.clone())), result.err().map(|e| e.to_string()))
            }
            Lookup::Corrupt(why) => (None, Some(why)),
            Lookup::Missing => continue, // removed meanwhile
        };
        drop(hold);
        let Some(problem) = problem else { continue };
        let discarded = discard && discard_unused(cache, &key)?;
        report.corrupt.push(Corrupt { key, stage, problem, discarded });
    }
    progress(total, total);
    Ok(report)
}

fn discard_unused(cache: &Cache, key: &str) -> Result<bool, PathError> {
    let root = cache.root();
    let (Some(_writing), Some(_reading)) = (try_exclusive(&write_lock_path(root, key))?, try_exclusive(&read_lock_path(root, key))?) else {
        return Ok(false);
    };
    cache.discard(key)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheStatus;
    use crate::fsx;

    const KEY_A: &str = "aa11111111111111111111111111111111111111111111111111111111111111";
    const KEY_B: &str = "bb22222222222222222222222222222222222222222222222222222222222222";

    fn put(cache: &Cache, key: &str, text: &str) -> std::path::PathBuf {
        let CacheStatus::Miss(w) = cache.acquire(key).unwrap() else { panic!("expected a miss") };
        fsx::write(w.out_dir().join("value.txt"), text).unwrap();
        w.publish("test-source", "s", serde_json::Value::Null).unwrap().0.out_dir().join("value.txt")
    }

    #[test]
    fn a_same_size_flip_is_found_and_can_be_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let file = put(&cache, KEY_A, "0.75");
        put(&cache, KEY_B, "1");
        fsx::write(&file, "0.76").unwrap();
        let mut last = (0, 0);
        let report = verify_all(&cache, false, |d, t| last = (d, t)).unwrap();
        assert_eq!(report.checked, 2);
        assert_eq!(last, (5, 5), "the progress reaches the total");
        assert_eq!(report.corrupt.len(), 1);
        let bad = &report.corrupt[0];
        assert_eq!((bad.key.as_str(), bad.stage.clone(), bad.discarded), (KEY_A, Some(("s".into(), "test-source".into())), false));
        assert!(bad.problem.contains("does not match its checksum"), "{}", bad.problem);
        assert!(matches!(cache.lookup(KEY_A), Lookup::Hit(_)), "only reported");
        let held = cache.hold(KEY_A).unwrap();
        assert!(!verify_all(&cache, true, |_, _| {}).unwrap().corrupt[0].discarded, "in use: kept");
        drop(held);
        assert!(verify_all(&cache, true, |_, _| {}).unwrap().corrupt[0].discarded);
        assert!(matches!(cache.lookup(KEY_A), Lookup::Missing));
        assert!(verify_all(&cache, false, |_, _| {}).unwrap().corrupt.is_empty());
    }
}
