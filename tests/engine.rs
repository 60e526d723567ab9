//! The engine end to end, through the `pipe` binary, on the test stage kinds:
//! caching, invalidation, failures, interruption, concurrency, the worker
//! process, the thread budget, fingerprints and gc.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::process::Command;

mod common;
use common::{Project, spawn_run, stage_of, status_of, statuses, text, tmp_is_busy, value_of, wait_for};

/// a -> sum <- b, sum -> total; c independent.
const DIAMOND: &str = r#"
[pipeline]
name = "diamond"

[stages.a]
kind = "test-source"
value = 2

[stages.b]
kind = "test-source"
value = 5

[stages.sum]
kind = "test-sum"
values = ["a", "b"]

[stages.total]
kind = "test-sum"
values = "sum"
offset = 100

[stages.c]
kind = "test-source"
value = 9
"#;

#[test]
fn cached_rerun_and_exact_invalidation() {
    let p = Project::new(DIAMOND);
    let cold = p.run(&[], 0);
    assert_eq!(statuses(&cold), ["a=ran", "b=ran", "c=ran", "sum=ran", "total=ran"]);
    assert_eq!(stage_of(&cold, "a")["reason"], "new");
    assert_eq!(value_of(&p, &cold, "total"), "107");
    for field in ["pipeline", "run_id", "started"] {
        assert!(cold[field].is_string(), "summary.json has {field}");
    }

    let warm = p.run(&[], 0);
    assert_eq!(statuses(&warm), ["a=cached", "b=cached", "c=cached", "sum=cached", "total=cached"]);
    for s in ["a", "b", "c", "sum", "total"] {
        assert_eq!(stage_of(&cold, s)["key"], stage_of(&warm, s)["key"]);
    }
    assert_ne!(cold["run_id"], warm["run_id"]);

    p.write(&DIAMOND.replace("value = 5", "value = 6"));
    let plan = p.pipe(&["plan", "p.toml"]);
    let plan_text = text(&plan.stdout);
    assert!(plan_text.contains("params.value 5 → 6"), "{plan_text}");
    assert!(plan_text.contains("input b changed (values)"), "{plan_text}");
    assert!(plan_text.contains("3 of 5 stages will run"), "{plan_text}");
    let edited = p.run(&[], 0);
    assert_eq!(statuses(&edited), ["a=cached", "b=ran", "c=cached", "sum=ran", "total=ran"]);
    assert_eq!(stage_of(&edited, "b")["reason"], "params.value 5 → 6");
    assert_eq!(stage_of(&edited, "total")["reason"], "input sum changed (values)");
    assert_eq!(value_of(&p, &edited, "total"), "108");

    // Back to the old value: everything is still in the cache.
    p.write(DIAMOND);
    assert_eq!(statuses(&p.run(&[], 0)), ["a=cached", "b=cached", "c=cached", "sum=cached", "total=cached"]);
}

#[test]
fn stage_selection_force_and_dry_run() {
    let p = Project::new(DIAMOND);
    let dry = p.pipe(&["run", "p.toml", "--dry-run"]);
    assert!(text(&dry.stdout).contains("5 of 5 stages would run"));
    assert!(p.entries().is_empty(), "a dry run computes nothing");
    let only = p.run(&["--stage", "sum"], 0);
    assert_eq!(statuses(&only), ["a=ran", "b=ran", "sum=ran"]);
    let forced = p.run(&["--force", "a"], 0);
    assert_eq!(status_of(&forced, "a"), "ran");
    assert_eq!(stage_of(&forced, "a")["reason"], "forced");
    assert_eq!(status_of(&forced, "sum"), "cached", "same key: nothing downstream re-runs");
    let bad = p.pipe(&["run", "p.toml", "--stage", "summ"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("did you mean `sum`?"), "{}", text(&bad.stderr));
}

#[test]
fn a_failure_skips_its_dependents_only() {
    let p = Project::new(&DIAMOND.replace("value = 5", "value = 5\nfail = true"));
    let record = p.run(&[], 1);
    assert_eq!(statuses(&record), ["a=ran", "b=failed", "c=ran", "sum=skipped", "total=skipped"]);
    assert_eq!(record["status"], "failed");
    assert!(stage_of(&record, "b")["error"].as_str().unwrap().contains("fail = true"));
    assert_eq!(stage_of(&record, "sum")["reason"], "input b failed");
    // The independent branch was cached.
    p.write(DIAMOND);
    let next = p.run(&[], 0);
    assert_eq!(statuses(&next), ["a=cached", "b=ran", "c=cached", "sum=ran", "total=ran"]);
}

#[test]
fn corrupt_entries_are_recomputed_not_used() {
    let p = Project::new(DIAMOND);
    let cold = p.run(&[], 0);
    // Same size, other bytes: caught when `sum` needs `a` again.
    let key = stage_of(&cold, "a")["key"].as_str().unwrap().to_string();
    let file = p.path().join("cache/entries").join(&key[..2]).join(&key).join("out/value.txt");
    std::fs::write(&file, "7\n").unwrap();
    p.write(&DIAMOND.replace("values = [\"a\", \"b\"]", "values = [\"a\", \"b\"]\noffset = 1"));
    let next = p.run(&[], 0);
    assert_eq!(status_of(&next, "a"), "ran");
    assert!(stage_of(&next, "a")["reason"].as_str().unwrap().contains("corrupt"), "{next}");
    assert_eq!(value_of(&p, &next, "total"), "108");
    // Truncated: caught by the cheap check on any run.
    std::fs::write(&file, "").unwrap();
    let again = p.run(&[], 0);
    assert_eq!(status_of(&again, "a"), "ran");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "2\n");
}

#[test]
fn an_invalid_pipeline_writes_nothing() {
    let p = Project::new("[stages.a]\nkind = \"test-source\"\nvalue = \"x\"\nwrods = 1\n");
    let out = p.pipe(&["run", "p.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("p.toml:3:9") && err.contains("p.toml:4:1"), "{err}");
    assert!(!p.path().join("cache").exists() && !p.path().join("reports").exists());
    let check = p.pipe(&["check", "p.toml"]);
    assert_eq!(check.status.code(), Some(2));
    let missing = p.pipe(&["check", "nope.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nope.toml"));
    p.write(DIAMOND);
    let ok = p.pipe(&["check", "p.toml"]);
    assert!(text(&ok.stdout).contains("ok, pipeline `diamond` with 5 stages"));
}

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
fn a_killed_run_leaves_no_partial_entry_and_its_work_is_reused() {
    let p = Project::new(SLOW);
    let mut child = spawn_run(&p, &[]);
    wait_for("the slow stage to start", || p.entries().len() == 1 && tmp_is_busy(&p));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(p.entries().len(), 1, "only the finished stage was published");
    p.write(&SLOW.replace("sleep_ms = 60000", "sleep_ms = 0"));
    let next = p.run(&[], 0);
    assert_eq!(statuses(&next), ["fast=cached", "slow=ran"]);
}

#[test]
fn ctrl_c_stops_running_stages_and_exits_130() {
    let p = Project::new(SLOW);
    let child = spawn_run(&p, &[]);
    wait_for("the slow stage to start", || p.entries().len() == 1 && tmp_is_busy(&p));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(!tmp_is_busy(&p), "the interrupted stage's folder is removed");
    let record = p.last();
    assert_eq!(record["status"], "interrupted");
    assert_eq!(stage_of(&record, "slow")["error"], "interrupted");
}

#[test]
fn concurrent_runs_compute_each_key_once() {
    let p = Project::new(&SLOW.replace("60000", "1500"));
    let first = spawn_run(&p, &["--quiet"]);
    wait_for("the first run to take the slow stage", || tmp_is_busy(&p));
    let second = spawn_run(&p, &["--quiet"]);
    let (a, b) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}{}", text(&a.stderr), text(&b.stderr));
    let out = text(&b.stdout);
    assert!(out.contains("computed by a concurrent run"), "the second run waited and reused: {out}");
    assert_eq!(p.entries().len(), 2);
}

#[test]
fn worker_stages_run_in_the_worker_process() {
    let p = Project::new(
        "[stages.a]\nkind = \"test-source\"\nvalue = 4\n[stages.w]\nkind = \"test-worker\"\nvalues = \"a\"\n[stages.f]\nkind = \"test-worker\"\nvalues = \"a\"\nfail = true\n",
    );
    let record = p.run(&[], 1);
    assert_eq!(value_of(&p, &record, "w"), "8");
    assert_eq!(stage_of(&record, "f")["error"], "failed because `fail = true`");
    let key = stage_of(&record, "w")["key"].as_str().unwrap();
    let log = p.path().join("cache/entries").join(&key[..2]).join(key).join("out/stage.log");
    assert_eq!(std::fs::read_to_string(log).unwrap(), "value 8\n");
}

#[test]
fn parallel_stages_share_the_cpu_budget() {
    let one = "[stages.t]\nkind = \"test-threads\"\n";
    let p = Project::new(one);
    assert_eq!(value_of(&p, &p.run(&["--jobs", "3"], 0), "t"), "3", "alone, a stage gets every slot");
    let two = Project::new("[stages.t]\nkind = \"test-threads\"\n[stages.u]\nkind = \"test-threads\"\nsleep_ms = 1\n");
    let record = two.run(&["--jobs", "2"], 0);
    assert_eq!((value_of(&two, &record, "t"), value_of(&two, &record, "u")), ("1".into(), "1".into()), "two ready stages split two slots");
}

#[test]
fn keyed_stages_run_on_the_threads_their_key_names() {
    let p = Project::new("[stages.k]\nkind = \"test-keyed\"\nthreads = 3\n[stages.t]\nkind = \"test-threads\"\n");
    let record = p.run(&["--jobs", "1"], 0);
    assert_eq!(value_of(&p, &record, "k"), "3", "more threads than slots: still the key's count");
    let q = Project::new("[stages.k]\nkind = \"test-keyed\"\nthreads = 3\n[stages.t]\nkind = \"test-threads\"\n");
    let record = q.run(&["--jobs", "4"], 0);
    assert_eq!(value_of(&q, &record, "k"), "3", "fewer threads than slots: the key's count");
    assert_eq!(stage_of(&record, "k")["key"], stage_of(&p.last(), "k")["key"]);
}

#[test]
fn an_elastic_stage_takes_the_slots_freed_while_it_runs() {
    // Two slots: `e` starts beside `short` with one, then takes the second
    // once `short` is done and nothing else is ready.
    let p = Project::new(
        "[stages.short]\nkind = \"test-source\"\nsleep_ms = 300\n[stages.e]\nkind = \"test-elastic\"\nitems = 40\nitem_ms = 50\n",
    );
    let record = p.run(&["--jobs", "2"], 0);
    assert_eq!(value_of(&p, &record, "e"), "2", "the worker ran two items at once after the grant was raised");
    assert_eq!(stage_of(&record, "e")["threads"], 2);
    // Alone on one slot it never exceeds it.
    let q = Project::new("[stages.e]\nkind = \"test-elastic\"\nitems = 10\nitem_ms = 20\n");
    assert_eq!(value_of(&q, &q.run(&["--jobs", "1"], 0), "e"), "1");
}

#[test]
fn the_longest_path_starts_first_using_recorded_durations() {
    // One slot; `a` and `b` are ready together. Kind estimates tie (1 s), so
    // the DAG's order starts `b`; once a run has recorded that `a` takes
    // longer, `a` goes first.
    let pipeline =
        "[stages.a]\nkind = \"test-source\"\nvalue = 1\nsleep_ms = 300\n[stages.b]\nkind = \"test-source\"\nvalue = 2\nsleep_ms = 10\n";
    let p = Project::new(pipeline);
    let first = p.run(&["--jobs", "1"], 0);
    let started = |r: &serde_json::Value| -> Vec<String> {
        let mut order: Vec<(f64, String)> = ["a", "b"].iter().map(|s| (stage_of(r, s)["start"].as_f64().unwrap(), s.to_string())).collect();
        order.sort_by(|x, y| x.0.total_cmp(&y.0));
        order.into_iter().map(|(_, s)| s).collect()
    };
    assert_eq!(started(&first), ["b", "a"], "no record yet: the DAG's order");
    p.write(&pipeline.replace("value = 1", "value = 10").replace("value = 2", "value = 20"));
    let second = p.run(&["--jobs", "1"], 0);
    assert_eq!(started(&second), ["a", "b"], "the recorded 0.3 s of a beats b's 0.01 s");
}

#[test]
fn changed_source_data_reruns_the_stage() {
    let p = Project::new("[stages.a]\nkind = \"test-source\"\nroot = \"data\"\n");
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    std::fs::write(p.path().join("data/x.png"), "x").unwrap();
    let cold = p.run(&[], 0);
    assert_eq!(value_of(&p, &cold, "a"), "2");
    assert_eq!(status_of(&p.run(&[], 0), "a"), "cached");
    std::fs::write(p.path().join("data/x.png"), "changed").unwrap();
    let next = p.run(&[], 0);
    assert_eq!(stage_of(&next, "a")["reason"], "data under `root` changed");
    std::fs::remove_dir_all(p.path().join("data")).unwrap();
    let gone = p.pipe(&["run", "p.toml"]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        text(&gone.stderr).contains(
            "stage `a`: `root`: data does not exist (relative to the folder of p.toml: ./data): put the data there, or change `root` in p.toml"
        ),
        "{}",
        text(&gone.stderr)
    );
}

#[test]
fn a_pipeline_reads_its_data_relative_to_itself_from_any_folder() {
    let p = Project::new("");
    std::fs::create_dir_all(p.path().join("exp/data")).unwrap();
    for f in ["x.png", "y.png"] {
        std::fs::write(p.path().join("exp/data").join(f), f).unwrap();
    }
    // A decoy where the old rule (the working folder) would have looked.
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    std::fs::write(p.path().join("exp/p.toml"), "[stages.a]\nkind = \"test-source\"\nroot = \"data\"\n").unwrap();
    let from_root = p.pipe(&["run", "exp/p.toml"]);
    assert!(from_root.status.success(), "{}", text(&from_root.stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("reports/p/latest/summary.json")).unwrap()).unwrap();
    assert_eq!(value_of(&p, &record, "a"), "3", "1 + the two files of exp/data");
    // From inside exp/, with the same cache: the same data, so the same key.
    let inside = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["run", "p.toml", "--cache-dir", "../cache", "--reports-dir", "../reports"])
        .current_dir(p.path().join("exp"))
        .output()
        .unwrap();
    assert!(inside.status.success(), "{}", text(&inside.stderr));
    let again: serde_json::Value = serde_json::from_slice(&std::fs::read(p.path().join("reports/p/latest/summary.json")).unwrap()).unwrap();
    assert_eq!(status_of(&again, "a"), "cached");
    assert_eq!(stage_of(&again, "a")["key"], stage_of(&record, "a")["key"]);
}

#[test]
fn gc_keeps_what_pipelines_use() {
    let p = Project::new(DIAMOND);
    p.run(&[], 0);
    p.write(&DIAMOND.replace("value = 9", "value = 10"));
    p.run(&[], 0);
    assert_eq!(p.entries().len(), 6);
    let none = p.pipe(&["gc"]);
    assert_eq!(none.status.code(), Some(2), "gc without a rule removes nothing");
    let out = p.pipe(&["gc", "p.toml"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("removed 1 entry, freeing 10 B; kept 5"), "{}", text(&out.stdout));
    assert_eq!(statuses(&p.run(&[], 0)).iter().filter(|s| s.ends_with("cached")).count(), 5);
}

#[test]
fn dag_and_stages_views() {
    let p = Project::new(DIAMOND);
    let dot = text(&p.pipe(&["dag", "p.toml", "--dot"]).stdout);
    assert!(dot.contains("\"sum\" -> \"total\" [label=\"values\"]"), "{dot}");
    let plain = text(&p.pipe(&["dag", "p.toml"]).stdout);
    assert!(plain.contains("total (test-sum) <- values=sum"), "{plain}");
    let kinds = text(&p.pipe(&["stages"]).stdout);
    assert!(
        kinds.contains("test-sum") && kinds.lines().any(|l| l.starts_with("multilabel ") && l.contains("multi-label predictions")),
        "{kinds}"
    );
    let one = text(&p.pipe(&["stages", "test-sum"]).stdout);
    assert!(one.contains("offset") && one.contains("integer in -1000000..=1000000"), "{one}");
}
