//! The Slurm executor through a real cluster: the one-node Slurm that
//! `scripts/slurm.sh start` runs on this machine (`make test` starts it and
//! sets `PIPE_SLURM_TESTS=1`, which makes a missing cluster a failure, not
//! a skip). What one machine cannot show (NODE_FAIL, OUT_OF_MEMORY, a job
//! gone without an exit file) is covered by the scripted cluster of
//! `pipe_core::exec::slurm`'s unit tests.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Project, spawn_run, stage_of as stage, statuses, text, value_of, wait_for_within as wait_for};

/// One test at a time: they share the node's two CPUs.
static CLUSTER: Mutex<()> = Mutex::new(());

/// Whether a cluster answers; without one, a skip (or a failure when
/// `PIPE_SLURM_TESTS=1` says one must be there).
fn cluster() -> Option<std::sync::MutexGuard<'static, ()>> {
    let up = Command::new("sinfo").args(["-h", "-o", "%T"]).output().is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert!(
            std::env::var("PIPE_SLURM_TESTS").as_deref() != Ok("1"),
            "PIPE_SLURM_TESTS=1 but no Slurm cluster answers: run `bash scripts/slurm.sh start` and `eval \"$(bash scripts/slurm.sh env)\"`"
        );
        eprintln!("skipped: no Slurm cluster (`bash scripts/slurm.sh start` starts one; `make test` does)");
        return None;
    }
    Some(CLUSTER.lock().unwrap_or_else(|p| p.into_inner()))
}

const EXECUTOR: &str = "[pipeline.executor]\nkind = \"slurm\"\ncpus = 1\npoll_interval = 0.5\n";

fn squeue_state(id: &str) -> String {
    let out = Command::new("squeue").args(["-h", "-t", "all", "-o", "%T", "-j", id]).output().unwrap();
    text(&out.stdout).trim().to_string()
}

/// The job folder of `stage_name`'s entry being built, once its job has started.
fn started_job(p: &Project, stage_name: &str) -> Option<PathBuf> {
    let tmp = p.path().join("cache/tmp");
    std::fs::read_dir(tmp).ok()?.flatten().map(|e| e.path().join("job")).find(|job| {
        job.join("started").exists()
            && std::fs::read_to_string(job.join("job.json")).is_ok_and(|j| j.contains(&format!("\"stage\": \"{stage_name}\"")))
    })
}

#[test]
fn quickstart_through_slurm_matches_a_local_run_and_a_cached_rerun_submits_nothing() {
    let Some(_cluster) = cluster() else { return };
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml");
    let (remote, local) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = |dir: &Path, args: &[&str]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_pipe")).arg("run").arg(&pipeline).args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
        serde_json::from_slice(&std::fs::read(dir.join("reports/quickstart/last/summary.json")).unwrap()).unwrap()
    };
    let cold = run(remote.path(), &["--executor", "slurm"]);
    for s in cold["stages"].as_array().unwrap() {
        assert_eq!(s["status"], "ran", "{s}");
        assert_eq!(
            s["executor"], "slurm",
            "{}: every stage that runs is a job (the engine's own kinds, hog, colour and lbp, in pipe-worker)",
            s["name"]
        );
        assert!(s["job_id"].as_str().is_some_and(|id| id.parse::<u64>().is_ok()), "{s}");
    }
    let mine = run(local.path(), &[]);
    assert!(stage(&mine, "svm").get("job_id").is_none(), "a local run records no job");
    // The same keys, and the same bytes but for measured times.
    let keys = |r: &Value| -> Vec<(String, String)> {
        let mut k: Vec<_> = r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s["key"].as_str().unwrap().to_string()))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&cold), keys(&mine));
    for file in ["metrics.csv", "metrics.parquet", "comparison.md", "report.html", "predictions/svm.csv", "predictions/tags.parquet"] {
        let read = |d: &Path| {
            let bytes = std::fs::read(d.join("reports/quickstart/latest").join(file)).unwrap();
            // The page's provenance section is the run's own (seconds, job ids).
            if file == "report.html" {
                pipe_core::report::provenance::strip(&String::from_utf8(bytes).unwrap()).into_bytes()
            } else {
                bytes
            }
        };
        assert!(read(remote.path()) == read(local.path()), "{file} differs between a Slurm run and a local run");
    }
    let warm = run(remote.path(), &["--executor", "slurm"]);
    assert!(statuses(&warm).iter().all(|s| s.ends_with("=cached")), "{:?}", statuses(&warm));
    assert!(warm["stages"].as_array().unwrap().iter().all(|s| s.get("job_id").is_none()), "a cached run submits no job");
    assert!(!remote.path().join("cache/slurm-logs").exists(), "no job failed, so no log is kept");
}

#[test]
fn a_failing_job_skips_only_its_dependents_and_keeps_its_log() {
    let Some(_cluster) = cluster() else { return };
    let p = Project::new(&format!(
        "{EXECUTOR}[stages.a]\nkind = \"test-source\"\n[stages.w]\nkind = \"test-worker\"\nvalues = \"a\"\n\
         [stages.f]\nkind = \"test-worker\"\nvalues = \"a\"\nfail = true\n[stages.g]\nkind = \"test-worker\"\nvalues = \"f\"\n"
    ));
    let record = p.run(&[], 1);
    assert_eq!(statuses(&record), ["a=ran", "f=failed", "g=skipped", "w=ran"]);
    let error = stage(&record, "f")["error"].as_str().unwrap();
    let id = stage(&record, "f")["job_id"].as_str().unwrap();
    assert!(error.starts_with("failed because `fail = true` (Slurm job "), "{error}");
    let log = p.path().join(format!("cache/slurm-logs/{id}-f"));
    assert!(error.contains(&log.display().to_string()), "the error points at the kept log: {error}");
    for kept in ["job.sh", "slurm.log", "stderr.log", "events.jsonl", "exit"] {
        assert!(log.join(kept).exists(), "{kept} is kept");
    }
    assert_eq!(squeue_state(id), "FAILED");
}

#[test]
fn an_impossible_request_is_rejected_with_sbatchs_message() {
    let Some(_cluster) = cluster() else { return };
    let p = Project::new(&format!(
        "{EXECUTOR}[stages.a]\nkind = \"test-source\"\n[stages.w]\nkind = \"test-worker\"\nvalues = \"a\"\n[stages.w.resources]\ncpus = 64\n"
    ));
    let plan = p.pipe(&["plan", "p.toml"]);
    assert!(text(&plan.stdout).contains("64 CPUs, 2G, 2:00:00"), "pipe plan shows the request:\n{}", text(&plan.stdout));
    let record = p.run(&[], 1);
    let error = stage(&record, "w")["error"].as_str().unwrap();
    assert!(error.contains("Slurm rejected the job of stage `w` (64 CPUs, 2G, 2:00:00): "), "{error}");
    assert!(error.contains("Batch job submission failed"), "sbatch's own words: {error}");
    assert!(error.contains("[stages.w.resources]"), "{error}");
}

#[test]
fn sigterm_cancels_the_runs_jobs_publishes_nothing_partial_and_keeps_what_finished() {
    let Some(_cluster) = cluster() else { return };
    let p = Project::new(&format!(
        "{EXECUTOR}[stages.a]\nkind = \"test-source\"\n[stages.quick]\nkind = \"test-worker\"\nvalues = \"a\"\n\
         [stages.slow]\nkind = \"test-worker\"\nvalues = \"a\"\nsleep_ms = 120000\n"
    ));
    let run = spawn_run(&p, &[]);
    let mut job = None;
    wait_for("the slow job to start", 60, || {
        job = started_job(&p, "slow");
        job.is_some()
    });
    wait_for("the quick stage to be published", 60, || p.entries().len() == 2);
    let id = std::fs::read_to_string(job.unwrap().join("job-id")).unwrap().trim().to_string();
    assert_eq!(squeue_state(&id), "RUNNING");
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &run.id().to_string()]).status().unwrap().success());
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(20), "stopped promptly ({:?})", started.elapsed());
    assert_eq!(squeue_state(&id), "CANCELLED");
    assert_eq!(p.entries().len(), 2, "the source and the quick stage; nothing of the slow one");
    let plan = text(&p.pipe(&["plan", "p.toml"]).stdout);
    let action =
        |name: &str| plan.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap().split_whitespace().nth(2).unwrap().to_string();
    assert_eq!((action("a"), action("quick"), action("slow")), ("cached".into(), "cached".into(), "run".into()), "{plan}");
}

#[test]
fn a_killed_engines_job_is_adopted_by_the_next_run() {
    let Some(_cluster) = cluster() else { return };
    let p = Project::new(&format!(
        "{EXECUTOR}[stages.a]\nkind = \"test-source\"\nvalue = 5\n[stages.slow]\nkind = \"test-worker\"\nvalues = \"a\"\nsleep_ms = 5000\n"
    ));
    let mut run = spawn_run(&p, &[]);
    let mut job = None;
    wait_for("the slow job to start", 60, || {
        job = started_job(&p, "slow");
        job.is_some()
    });
    let id = std::fs::read_to_string(job.unwrap().join("job-id")).unwrap().trim().to_string();
    run.kill().unwrap(); // SIGKILL: no handler runs, the job goes on
    run.wait().unwrap();
    assert_eq!(squeue_state(&id), "RUNNING", "Slurm jobs outlive the engine that submitted them");
    let record = p.run(&[], 0);
    let slow = stage(&record, "slow");
    assert_eq!(slow["status"], "ran");
    assert_eq!(slow["job_id"].as_str(), Some(id.as_str()), "the running job was adopted, not submitted again");
    let key = slow["key"].as_str().unwrap();
    assert_eq!(value_of(&p, &record, "slow"), "10", "the adopted job's output is published");
    assert!(!p.path().join("cache/tmp").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with(key)));
}

#[test]
fn without_sbatch_the_slurm_executor_is_one_clear_error_before_anything_runs() {
    // No cluster needed: the engine looks for `sbatch` first.
    let p = Project::new(
        "[pipeline.executor]\nkind = \"slurm\"\n[stages.a]\nkind = \"test-source\"\n[stages.w]\nkind = \"test-worker\"\nvalues = \"a\"\n",
    );
    let empty = tempfile::tempdir().unwrap();
    let out = p.cmd(&["run", "p.toml"]).env("PATH", empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the Slurm executor needs `sbatch` on PATH"), "{stderr}");
    assert!(stderr.contains("scripts/slurm.sh start"), "{stderr}");
    assert!(p.entries().is_empty(), "nothing ran");
    let local = p.cmd(&["run", "p.toml", "--executor", "local"]).env("PATH", empty.path()).output().unwrap();
    assert!(local.status.success(), "--executor local overrides the file: {}", text(&local.stderr));
}

#[test]
fn a_command_stage_runs_as_a_cluster_job_with_the_same_metrics_as_locally() {
    let Some(_cluster) = cluster() else { return };
    let pipeline = "[stages.data]\nkind = \"load\"\ndataset = \"synthetic\"\nclasses = 3\nimages = 60\nimage_size = 16\n\n\
                    [stages.majority]\nkind = \"command\"\ncommand = [\"python3\", \"majority.py\"]\nproduces = \"predictions\"\ncode = [\"majority.py\"]\n\n\
                    [stages.majority.inputs]\nimages = \"data\"\n\n[stages.compare]\nkind = \"evaluate\"\npredictions = [\"majority\"]\n";
    let program = include_str!("programs/majority.py");
    let (local, remote) = (Project::new(pipeline), Project::new(&format!("{EXECUTOR}{pipeline}")));
    for p in [&local, &remote] {
        std::fs::write(p.path().join("majority.py"), program).unwrap();
    }
    let (l, r) = (local.run(&[], 0), remote.run(&[], 0));
    assert!(stage(&r, "majority")["job_id"].as_str().is_some_and(|id| !id.is_empty()), "it ran as a job: {r}");
    let metrics = |p: &Project| std::fs::read_to_string(p.path().join("reports/p/latest/metrics.csv")).unwrap();
    assert_eq!(metrics(&local), metrics(&remote));
    assert_eq!(stage(&l, "majority")["key"], stage(&r, "majority")["key"], "where it runs is no part of the key");
}
