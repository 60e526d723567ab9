//! The fault battery's cases, each reproduced through the `pipe` binary on
//! the test stage kinds: corrupt cached output never reaches a report, gc
//! never removes what a live run needs, workers die with their engine, a
//! report is complete or not published as the latest, and the smaller
//! defects (interruptible lock waits, an unwritable reports folder, long
//! values, empty and unreadable run ids).
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{Project, REPORTED, spawn_run, stage_of, status_of, statuses, text, tmp_is_busy, wait_for};

fn entry_file(p: &Project, record: &serde_json::Value, stage: &str, file: &str) -> PathBuf {
    let key = stage_of(record, stage)["key"].as_str().unwrap().to_string();
    p.path().join("cache/entries").join(&key[..2]).join(&key).join("out").join(file)
}

fn report_file(p: &Project, file: &str) -> String {
    std::fs::read_to_string(p.path().join("reports/reported/latest").join(file)).unwrap()
}

#[test]
fn a_corrupt_report_source_is_recomputed_before_the_report_is_written() {
    let p = Project::new(REPORTED);
    let cold = p.run(&[], 0);
    assert!(report_file(&p, "metrics.csv").contains("sum,single,accuracy,,,7.0,,1"));
    // One digit flipped, same size: the cheap size check cannot see it.
    let metrics = entry_file(&p, &cold, "report", "metrics.csv");
    let flipped = std::fs::read_to_string(&metrics).unwrap().replace("7.0", "8.0");
    std::fs::write(&metrics, flipped).unwrap();
    let plan = text(&p.pipe(&["plan", "p.toml"]).stdout);
    assert!(plan.contains("1 of 4 stages will run") && plan.contains("cache entry corrupt"), "{plan}");
    let next = p.run(&[], 0);
    assert_eq!(statuses(&next), ["a=cached", "b=cached", "report=ran", "sum=cached"]);
    assert!(report_file(&p, "metrics.csv").contains("7.0"), "the report carries the recomputed value");
}

#[test]
fn verify_names_corrupt_entries_and_discards_them() {
    let p = Project::new(REPORTED);
    let cold = p.run(&[], 0);
    let value = entry_file(&p, &cold, "a", "value.txt");
    std::fs::write(&value, "3\n").unwrap();
    let out = p.pipe(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("checked 4 entries") && report.contains("1 corrupt entry"), "{report}");
    let line = report.lines().find(|l| l.contains("does not match its checksum")).unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains(" a ") && line.contains("test-source") && line.contains("kept"), "{line}");
    let discard = p.pipe(&["verify", "--discard"]);
    assert!(text(&discard.stdout).contains("discarded"), "{}", text(&discard.stdout));
    assert!(p.pipe(&["verify"]).status.success(), "only sound entries are left");
    assert_eq!(status_of(&p.run(&[], 0), "a"), "ran");
}

/// `fast` then `slow`, which reads it and sleeps.
const SLOW: &str = r#"
[stages.fast]
kind = "test-source"
value = 1

[stages.slow]
kind = "test-sum"
values = "fast"
sleep_ms = 60000
"#;

#[test]
fn gc_leaves_alone_what_a_running_pipeline_needs() {
    // Published by this run (gc --older-than), then cached and read by the next one (gc PIPELINE).
    let p = Project::new(SLOW);
    let mut run = spawn_run(&p, &[]);
    wait_for("the slow stage to start", || p.entries().len() == 1 && tmp_is_busy(&p));
    let gc = p.pipe(&["gc", "--older-than", "0s"]);
    assert!(text(&gc.stdout).starts_with("removed 0 entries") && text(&gc.stdout).contains("1 in use"), "{}", text(&gc.stdout));
    assert_eq!(p.entries().len(), 1);
    run.kill().unwrap();
    run.wait().unwrap();

    let other = p.path().join("other.toml");
    std::fs::write(&other, "[stages.x]\nkind = \"test-source\"\nvalue = 42\n").unwrap();
    let mut run = spawn_run(&p, &[]);
    wait_for("the slow stage to start again", || builds(&p, run.id()));
    let gc = p.pipe(&["gc", "other.toml"]);
    assert!(text(&gc.stdout).contains("1 in use"), "{}", text(&gc.stdout));
    assert_eq!(p.entries().len(), 1, "the cached input of the running stage stays");
    run.kill().unwrap();
    run.wait().unwrap();
    let gc = p.pipe(&["gc", "other.toml"]);
    assert!(text(&gc.stdout).starts_with("removed 1 entry"), "once the run is gone: {}", text(&gc.stdout));
}

#[test]
fn a_missing_input_names_the_stage_that_produces_it() {
    let p = Project::new(&SLOW.replace(
        "values = \"fast\"\nsleep_ms = 60000",
        "values = [\"fast\", \"wait\"]\n\n[stages.wait]\nkind = \"test-source\"\nsleep_ms = 1500",
    ));
    p.run(&["--stage", "fast"], 0);
    let run = spawn_run(&p, &["--quiet"]);
    wait_for("the waiting stage to start", || tmp_is_busy(&p));
    // Taken away by hand, behind the run's back.
    for entry in p.entries() {
        std::fs::remove_dir_all(entry).unwrap();
    }
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let record = p.last();
    let error = stage_of(&record, "slow")["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("missing input: the output of stage `fast`"), "{error}");
}

/// Whether the run with process id `pid` is building an entry.
fn builds(p: &Project, pid: u32) -> bool {
    let tag = format!("-{pid}-");
    std::fs::read_dir(p.path().join("cache/tmp")).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(&tag)))
}

/// The pids of the processes whose parent is `parent` and whose name is `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((head, tail)) = stat.rsplit_once(") ") else { continue };
        let comm = head.split_once(" (").map_or("", |(_, c)| c);
        let ppid: u32 = tail.split(' ').nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        if ppid == parent && comm == name {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, t)| !t.starts_with('Z')))
}

const WORKER: &str = "[stages.a]\nkind = \"test-source\"\n[stages.w]\nkind = \"test-worker\"\nvalues = \"a\"\nsleep_ms = 60000\n";

#[test]
fn a_worker_dies_with_its_engine() {
    let p = Project::new(WORKER);
    let mut run = spawn_run(&p, &[]);
    let mut worker = Vec::new();
    wait_for("the worker process", || {
        worker = children_named(run.id(), "pipe-worker");
        !worker.is_empty()
    });
    run.kill().unwrap(); // SIGKILL: no handler runs
    run.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(worker[0]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(worker[0]), "the worker outlived its engine");
    assert_eq!(p.entries().len(), 1, "nothing the worker half-wrote is published");
}

#[test]
fn a_worker_killed_by_a_signal_is_reported_as_such() {
    let p = Project::new(WORKER);
    let run = spawn_run(&p, &[]);
    let mut worker = Vec::new();
    wait_for("the worker process", || {
        worker = children_named(run.id(), "pipe-worker");
        !worker.is_empty()
    });
    assert!(Command::new("kill").args(["-KILL", &worker[0].to_string()]).status().unwrap().success());
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let error = stage_of(&p.last(), "w")["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("pipe-worker killed by signal 9 (SIGKILL); out of memory? see `dmesg`"), "{error}");
}

#[test]
fn a_report_cut_short_by_a_full_disk_is_not_the_latest() {
    let p = Project::new(&REPORTED.replace("values = \"sum\"", "values = \"sum\"\npadding = 100000"));
    let good = p.run(&[], 0);
    // A second, fully cached run whose writes stop at 20,000 bytes per file,
    // as on a disk that fills while the report is copied.
    let mut cmd = p.cmd(&["run", "p.toml"]);
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: 20_000, rlim_max: 20_000 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("error: writing the report"), "{}", text(&out.stderr));
    let failed = p.last();
    assert_eq!(failed["status"], "failed");
    assert!(failed["report"].as_str().unwrap().starts_with("incomplete: "), "{failed}");
    assert_eq!(p.latest()["run_id"], good["run_id"], "latest stays on the complete run");
    let runs = text(&p.pipe(&["runs"]).stdout);
    let row = runs.lines().find(|l| l.contains(failed["run_id"].as_str().unwrap())).unwrap();
    assert!(row.contains("failed"), "{runs}");
    let leftovers: Vec<_> = std::fs::read_dir(p.path().join("reports/reported"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "no half folder is left behind");
}

#[test]
fn failed_runs_do_not_become_latest_and_diff_says_which_run_it_picked() {
    let p = Project::new(REPORTED);
    let first = p.run(&[], 0);
    p.write(&REPORTED.replace("value = 5", "value = 6"));
    let second = p.run(&[], 0);
    p.write(&REPORTED.replace("value = 5", "value = 6\nfail = true"));
    let failed = p.run(&[], 1);
    assert_eq!(p.latest()["run_id"], second["run_id"], "latest: the newest complete run");
    assert_eq!(p.last()["run_id"], failed["run_id"], "last: the newest run");
    // The next plan explains itself against the newest run, failed or not.
    p.write(&REPORTED.replace("value = 5", "value = 7"));
    let plan = text(&p.pipe(&["plan", "p.toml"]).stdout);
    assert!(plan.contains("params.fail true → false"), "{plan}");
    let diff = p.pipe(&["diff", first["run_id"].as_str().unwrap(), "p.toml"]);
    let shown = text(&diff.stdout);
    let expected = format!("B: {} (reported; the latest complete run of p.toml)", second["run_id"].as_str().unwrap());
    assert!(shown.contains(&expected), "{shown}{}", text(&diff.stderr));
}

#[test]
fn ctrl_c_while_waiting_for_another_runs_lock_takes_effect_at_once() {
    let p = Project::new(SLOW);
    let mut holder = spawn_run(&p, &["--quiet"]);
    wait_for("the first run to take the slow stage", || tmp_is_busy(&p));
    let waiter = spawn_run(&p, &["--quiet"]);
    std::thread::sleep(Duration::from_millis(500)); // it plans, then waits for the lock
    assert!(Command::new("kill").args(["-INT", &waiter.id().to_string()]).status().unwrap().success());
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(holder.try_wait().unwrap().is_none(), "it stopped while the other run still held the lock");
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
fn an_unusable_reports_folder_is_found_before_anything_runs() {
    let p = Project::new(REPORTED);
    std::fs::write(p.path().join("taken"), "a file").unwrap();
    let out = p.pipe(&["run", "p.toml", "--reports-dir", "taken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot write reports under taken") && text(&out.stderr).contains("--reports-dir"),
        "{}",
        text(&out.stderr)
    );
    assert!(p.entries().is_empty(), "nothing ran");
}

#[test]
fn empty_and_unreadable_run_ids_are_errors() {
    let p = Project::new(REPORTED);
    let record = p.run(&[], 0);
    let show = p.pipe(&["show", ""]);
    assert_eq!(show.status.code(), Some(2));
    assert!(text(&show.stderr).contains("no run id given"), "{}", text(&show.stderr));
    let dir = p.path().join("reports/reported").join(record["run_id"].as_str().unwrap());
    std::fs::write(dir.join("summary.json"), "{ not json").unwrap();
    let runs = p.pipe(&["runs"]);
    assert!(text(&runs.stderr).contains("is unreadable"), "{}", text(&runs.stderr));
}

#[test]
fn a_huge_value_gives_a_short_error() {
    let p = Project::new(
        &format!("[pipeline]\nname = \"{}\"\n{REPORTED}", "n".repeat(10_000_000)).replace("[pipeline]\nname = \"reported\"\n", ""),
    );
    let out = p.pipe(&["check", "p.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.len() < 4_000, "{} bytes of errors", out.stderr.len());
}

#[test]
fn a_closed_pipe_ends_a_listing_quietly() {
    let p = Project::new(REPORTED);
    p.run(&[], 0);
    // `pipe stages | head -1`: the reader goes away after one line.
    let mut child = p.cmd(&["stages"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
}

/// An input overwritten while a stage reads it (a worker stage, and one in
/// the engine): the stage fails naming the input, and nothing built from
/// the changed bytes is published under the clean key.
#[test]
fn an_input_changed_while_a_stage_runs_fails_it_and_nothing_is_published() {
    for consumer in
        ["kind = \"test-worker\"\nvalues = \"fast\"\nsleep_ms = 1500", "kind = \"test-sum\"\nvalues = \"fast\"\nsleep_ms = 1500"]
    {
        let p = Project::new(&SLOW.replace("kind = \"test-sum\"\nvalues = \"fast\"\nsleep_ms = 60000", consumer));
        let first = p.run(&["--stage", "fast"], 0);
        let value = entry_file(&p, &first, "fast", "value.txt");
        let run = spawn_run(&p, &[]);
        wait_for("the consumer to start", || tmp_is_busy(&p));
        std::fs::write(&value, "1000\n").unwrap();
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let record = p.last();
        let error = stage_of(&record, "slow")["error"].as_str().unwrap().to_string();
        assert!(error.starts_with("input `fast` changed while `slow` ran ("), "{error}");
        assert!(error.contains("nothing was published. `pipe verify --discard` removes the damaged entry"), "{error}");
        assert!(!entry_file(&p, &record, "slow", "value.txt").exists(), "nothing built from the changed input is published");
        assert_eq!(p.entries().len(), 1);
    }
}

/// A read-only view of `dir`: a read-only bind mount as root (who writes
/// through any file mode), the files' write bits taken away otherwise.
struct ReadOnly {
    path: PathBuf,
    mounted: bool,
}

impl ReadOnly {
    fn of(dir: &std::path::Path) -> ReadOnly {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let path = dir.with_extension("ro");
            std::fs::create_dir_all(&path).unwrap();
            let mount = |args: &[&str]| Command::new("mount").args(args).status().is_ok_and(|s| s.success());
            assert!(
                mount(&["--bind", dir.to_str().unwrap(), path.to_str().unwrap()])
                    && mount(&["-o", "remount,bind,ro", path.to_str().unwrap()]),
                "this test needs `mount --bind` (root in a container with CAP_SYS_ADMIN) or a non-root user"
            );
            ReadOnly { path, mounted: true }
        } else {
            assert!(Command::new("chmod").args(["-R", "a-w"]).arg(dir).status().unwrap().success());
            ReadOnly { path: dir.to_path_buf(), mounted: false }
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.path).status();
        } else {
            let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&self.path).status();
        }
    }
}

#[test]
fn a_read_only_cache_serves_cached_runs_and_verify_and_refuses_writes_clearly() {
    let p = Project::new(REPORTED);
    p.run(&[], 0);
    let ro = ReadOnly::of(&p.path().join("cache"));
    let dir = ro.path.to_str().unwrap().to_string();
    let cached = p.run(&["--cache-dir", &dir], 0);
    assert!(statuses(&cached).iter().all(|s| s.ends_with("=cached")), "{:?}", statuses(&cached));
    assert!(report_file(&p, "metrics.csv").contains("sum,single,accuracy,,,7.0,,1"), "the report comes from the read-only cache");
    let verify = p.pipe(&["verify", "--cache-dir", &dir]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stderr));
    assert!(text(&verify.stdout).contains("all sound"), "{}", text(&verify.stdout));
    p.write(&REPORTED.replace("value = 5", "value = 6"));
    let out = p.pipe(&["run", "p.toml", "--cache-dir", &dir]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let error = text(&out.stderr);
    assert!(error.contains("cannot be written (") && error.contains("and 3 stages must run: b, report, sum"), "{error}");
    assert!(error.contains("run with `--cache-dir` naming a folder you can write"), "{error}");
}

/// A truly full disk under the reports folder (a 64 KiB tmpfs; root only):
/// the report's copy fills it, and the run's record is still written.
#[test]
fn a_full_reports_disk_still_gets_the_runs_record() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs needs root (CI runs as root)");
        return;
    }
    let p = Project::new(&REPORTED.replace("values = \"sum\"", "values = \"sum\"\npadding = 200000"));
    let disk = p.path().join("small");
    std::fs::create_dir_all(&disk).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&disk).status().unwrap();
    assert!(mounted.success(), "this test needs `mount -t tmpfs` (root in a container with CAP_SYS_ADMIN)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    let out = p.pipe(&["run", "p.toml", "--reports-dir", "small"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    let last = disk.join("reported/last/summary.json");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&last).expect("the run's record is written")).unwrap();
    assert_eq!(record["status"], "failed");
    let report = record["report"].as_str().unwrap();
    assert!(report.starts_with("incomplete: ") && report.contains("its files were removed to make room for this record"), "{report}");
    assert!(!disk.join("reported/latest").exists(), "an incomplete run is not the latest");
}

/// SIGTERM (what a batch system or `kill` sends) during a local run: the run
/// exits 143, keeps what finished and publishes nothing partial; a second
/// signal quits at once, while the first is still stopping a stage.
#[test]
fn sigterm_stops_a_local_run_and_a_second_signal_quits_at_once() {
    let p = Project::new(SLOW);
    let run = spawn_run(&p, &["--quiet"]);
    wait_for("the slow stage to start", || tmp_is_busy(&p));
    assert!(Command::new("kill").args(["-TERM", &run.id().to_string()]).status().unwrap().success());
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("interrupted (SIGTERM)"), "{}", text(&out.stderr));
    let record = p.last();
    assert_eq!(record["status"], "interrupted");
    assert_eq!(statuses(&record), ["fast=ran", "slow=failed"]);
    assert_eq!(p.entries().len(), 1, "only what finished is published");
    assert!(!tmp_is_busy(&p), "nothing half-built is left");

    // Two signals back to back: the second ends the process at once, with
    // 128 + its own signal, and no orderly stop writes a record. Sent from
    // this process microseconds apart (two `kill` processes can be far
    // enough apart on a loaded machine for the orderly stop to finish
    // first), they can reach two threads of the engine together, so which
    // one counts as the second is the kernel's choice: 130 or 143.
    let p = Project::new(WORKER);
    let run = spawn_run(&p, &["--quiet"]);
    wait_for("the worker to start", || tmp_is_busy(&p));
    let pid = run.id() as libc::pid_t;
    // SAFETY: kill has no memory preconditions; pid is our own child.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGINT), 0);
        assert_eq!(libc::kill(pid, libc::SIGTERM), 0);
    }
    let out = run.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(130 | 143)), "{:?} {}", out.status, text(&out.stderr));
    assert!(!p.path().join("reports/p/last").exists(), "quit at once: no orderly stop recorded the run");
    assert_eq!(p.entries().len(), 1, "the source that finished; nothing of the worker's");
}
