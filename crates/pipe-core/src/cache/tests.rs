use std::time::Duration;

use super::*;

pub(super) const KEY_A: &str = "aa11111111111111111111111111111111111111111111111111111111111111";
pub(super) const KEY_B: &str = "bb22222222222222222222222222222222222222222222222222222222222222";

pub(super) fn put(cache: &Cache, key: &str, text: &str) -> Entry {
    let CacheStatus::Miss(w) = cache.acquire(key).unwrap() else { panic!("expected a miss") };
    fsx::write(w.out_dir().join("value.txt"), text).unwrap();
    w.publish("test-source", "s", serde_json::json!({"k": 1})).unwrap().0
}

#[test]
fn published_entries_are_found_with_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    assert!(matches!(cache.lookup(KEY_A), Lookup::Missing));
    let entry = put(&cache, KEY_A, "42");
    assert_eq!(entry.manifest.files.len(), 1);
    assert_eq!(entry.manifest.files[0].size, 2);
    let Lookup::Hit(found) = cache.lookup(KEY_A) else { panic!("expected a hit") };
    assert_eq!(fsx::read_to_string(found.out_dir().join("value.txt")).unwrap(), "42");
    found.verify().unwrap();
    assert!(matches!(cache.acquire(KEY_A).unwrap(), CacheStatus::Hit(..)));
}

#[test]
fn an_abandoned_writer_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    {
        let CacheStatus::Miss(w) = cache.acquire(KEY_A).unwrap() else { panic!() };
        fsx::write(w.out_dir().join("half.bin"), "partial").unwrap();
    }
    assert!(matches!(cache.lookup(KEY_A), Lookup::Missing));
    assert_eq!(fsx::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

#[test]
fn corrupt_entries_are_detected_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let entry = put(&cache, KEY_A, "42");
    // Same size, different bytes: only the deep check sees it.
    fsx::write(entry.out_dir().join("value.txt"), "43").unwrap();
    let Lookup::Hit(e) = cache.lookup(KEY_A) else { panic!() };
    assert!(matches!(e.verify(), Err(CacheError::Checksum { .. })));
    // Truncated: the cheap check sees it.
    fsx::write(entry.out_dir().join("value.txt"), "4").unwrap();
    assert!(matches!(cache.lookup(KEY_A), Lookup::Corrupt(m) if m.contains("wrong size")));
    // A garbled manifest.
    fsx::write(entry.dir.join("manifest.json"), "{").unwrap();
    assert!(matches!(cache.lookup(KEY_A), Lookup::Corrupt(m) if m.contains("manifest")));
    // acquire removes the wreck and hands out a writer.
    assert!(matches!(cache.acquire(KEY_A).unwrap(), CacheStatus::Miss(_)));
    put(&cache, KEY_A, "42");
    assert!(matches!(cache.lookup(KEY_A), Lookup::Hit(_)));
}

#[test]
fn a_second_acquirer_waits_then_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let CacheStatus::Miss(w) = cache.acquire(KEY_A).unwrap() else { panic!() };
    let other = cache.clone();
    let waiter = std::thread::spawn(move || matches!(other.acquire(KEY_A).unwrap(), CacheStatus::Hit(..)));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished(), "the second acquirer must wait for the lock");
    fsx::write(w.out_dir().join("value.txt"), "1").unwrap();
    w.publish("k", "s", serde_json::Value::Null).unwrap();
    assert!(waiter.join().unwrap(), "after the first publishes, the second gets a hit");
}

#[test]
fn stale_temporary_folders_of_killed_runs_are_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let stale = dir.path().join("tmp").join(format!("{KEY_A}-99999-0"));
    fsx::create_dir_all(stale.join("out")).unwrap();
    put(&cache, KEY_A, "1");
    assert!(!stale.exists());
}

#[test]
fn gc_removes_unreferenced_entries_and_counts_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    put(&cache, KEY_A, "12345");
    put(&cache, KEY_B, "123");
    let policy = gc::GcPolicy { keep: Some([KEY_A.to_string()].into()), older_than: None, dry_run: true };
    let dry = gc::collect(&cache, &policy).unwrap();
    assert_eq!(dry, gc::GcReport { removed: 1, kept: 1, in_use: 0, bytes: 3 });
    assert!(matches!(cache.lookup(KEY_B), Lookup::Hit(_)), "a dry run removes nothing");
    let real = gc::collect(&cache, &gc::GcPolicy { dry_run: false, ..policy }).unwrap();
    assert_eq!(real.bytes, 3);
    assert!(matches!(cache.lookup(KEY_B), Lookup::Missing));
    assert!(matches!(cache.lookup(KEY_A), Lookup::Hit(_)));
    let aged = gc::GcPolicy { keep: None, older_than: Some(SystemTime::now() - Duration::from_secs(3600)), dry_run: false };
    assert_eq!(gc::collect(&cache, &aged).unwrap().removed, 0, "young entries stay");
}

#[test]
fn gc_skips_entries_a_live_run_holds() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    put(&cache, KEY_A, "1");
    put(&cache, KEY_B, "2");
    let held = cache.hold(KEY_A).unwrap();
    let CacheStatus::Miss(_building) = cache.acquire("cc33333333333333333333333333333333333333333333333333333333333333").unwrap() else {
        panic!()
    };
    let everything = gc::GcPolicy { keep: None, older_than: None, dry_run: false };
    let report = gc::collect(&cache, &everything).unwrap();
    assert_eq!((report.removed, report.kept, report.in_use), (1, 1, 1), "{report:?}");
    assert!(matches!(cache.lookup(KEY_A), Lookup::Hit(_)), "the held entry stays");
    assert!(fsx::read_dir(dir.path().join("tmp")).unwrap().count() == 1, "the entry being built stays");
    drop(held);
    assert_eq!(gc::collect(&cache, &everything).unwrap().removed, 1, "released, it can go");
}

#[test]
fn a_published_entry_comes_held() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let CacheStatus::Miss(w) = cache.acquire(KEY_A).unwrap() else { panic!() };
    fsx::write(w.out_dir().join("value.txt"), "1").unwrap();
    let (_entry, hold) = w.publish("k", "s", serde_json::Value::Null).unwrap();
    let everything = gc::GcPolicy { keep: None, older_than: None, dry_run: false };
    assert_eq!(gc::collect(&cache, &everything).unwrap().in_use, 1);
    drop(hold);
    assert_eq!(gc::collect(&cache, &everything).unwrap().removed, 1);
}

#[test]
fn waiting_for_another_runs_lock_ends_on_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let CacheStatus::Miss(_w) = cache.acquire(KEY_A).unwrap() else { panic!() };
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let (other, flag) = (cache.clone(), std::sync::Arc::clone(&cancel));
    let waiter = std::thread::spawn(move || matches!(other.acquire_unless(KEY_A, |_| true, &flag).unwrap(), CacheStatus::Cancelled));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished());
    cancel.store(true, Ordering::Relaxed);
    assert!(waiter.join().unwrap(), "the wait ends with Cancelled while the lock is still taken");
}

#[test]
fn a_rebuild_never_removes_an_entry_another_run_holds() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    put(&cache, KEY_A, "1");
    let reader = cache.hold(KEY_A).unwrap();
    let forced = cache.acquire_unless(KEY_A, |_| false, &AtomicBool::new(false));
    assert!(matches!(forced, Err(CacheError::InUse(_))), "a forced rebuild waits for readers");
    assert!(matches!(cache.lookup(KEY_A), Lookup::Hit(_)));
    drop(reader);
    assert!(matches!(cache.acquire_unless(KEY_A, |_| false, &AtomicBool::new(false)).unwrap(), CacheStatus::Miss(_)));
}
