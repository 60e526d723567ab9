#![allow(clippy::disallowed_methods)] // test files are written as a job would
//! A scripted cluster for unit tests: each submitted job plays a
//! [`Behaviour`] (writes its files and sets its Slurm state) on a thread, so
//! the cases one real machine cannot show are covered: a job gone from
//! `squeue` without an exit file, an exit file late on a slow shared
//! filesystem, NODE_FAIL, OUT_OF_MEMORY, a job Slurm runs that never starts,
//! a busy controller.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::{JobState, Scheduler, SubmitError};
use super::job::{self, StageJob};
use super::request::JobRequest;
use super::{Settings, SlurmExecutor};
use crate::exec::worker;
use crate::kinds::StageError;
use crate::kinds::context::{EventSink, StageEvent};

/// What a fake job does.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Starts, prints a progress line, exits with this status.
    Exit(i32),
    /// Starts and disappears from squeue without an exit file.
    Vanish,
    /// Ends (COMPLETED at once), its exit file showing up this much later.
    LateExit(Duration),
    /// Starts, then Slurm ends it in this state (no exit file).
    EndAs(&'static str),
    /// Slurm says RUNNING; the script never starts.
    NeverStarts,
    /// Runs until cancelled (then writes 143, as the TERM trap does).
    Runs,
    /// `sbatch` fails: with a passing error this many times, then submits.
    Busy(u32, Box<Behaviour>),
    /// `sbatch` rejects the request.
    Reject(&'static str),
    /// Starts; the controller stops answering for this long, then answers
    /// again, and the job exits 0.
    ControllerDown(Duration),
}

#[derive(Default)]
struct State {
    next: u64,
    plans: VecDeque<Behaviour>,
    states: BTreeMap<String, JobState>,
    dirs: BTreeMap<String, PathBuf>,
    cancels: Vec<Vec<String>>,
    submits: usize,
    /// The sbatch arguments of the last submission.
    args: Vec<String>,
    /// `squeue` fails while set (the controller does not answer).
    down: bool,
}

#[derive(Clone, Default)]
pub struct Fake(Arc<Mutex<State>>);

impl Fake {
    pub fn with(plans: Vec<Behaviour>) -> Fake {
        let fake = Fake::default();
        fake.0.lock().unwrap().plans = plans.into();
        fake
    }

    fn set(&self, id: &str, state: Option<&str>) {
        let mut s = self.0.lock().unwrap();
        match state {
            Some(st) => s.states.insert(id.to_string(), JobState::new(st, "None")),
            None => s.states.remove(id),
        };
    }

    pub fn cancels(&self) -> Vec<Vec<String>> {
        self.0.lock().unwrap().cancels.clone()
    }

    pub fn submits(&self) -> usize {
        self.0.lock().unwrap().submits
    }

    fn play(&self, id: String, dir: PathBuf, behaviour: Behaviour) {
        let fake = self.clone();
        std::thread::spawn(move || {
            let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
            let started = || write("started", "");
            fake.set(&id, Some("RUNNING"));
            match behaviour {
                Behaviour::Exit(code) => {
                    started();
                    write("events.jsonl", "{\"progress\":{\"pos\":1,\"len\":2,\"unit\":\"items\"}}\n");
                    if code != 0 {
                        write("stderr.log", "error: the worker's own words\n");
                    }
                    write("exit", &format!("{code}\n"));
                    fake.set(&id, Some(if code == 0 { "COMPLETED" } else { "FAILED" }));
                }
                Behaviour::Vanish => {
                    started();
                    fake.set(&id, None);
                }
                Behaviour::LateExit(after) => {
                    started();
                    fake.set(&id, Some("COMPLETED"));
                    std::thread::sleep(after);
                    write("exit", "0\n");
                }
                Behaviour::EndAs(state) => {
                    started();
                    fake.set(&id, Some(state));
                }
                Behaviour::NeverStarts => {}
                Behaviour::Runs => {
                    started();
                    while fake.0.lock().unwrap().states.get(&id).is_some_and(|s| s.state == "RUNNING") {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    write("exit", "143\n");
                }
                Behaviour::ControllerDown(for_how_long) => {
                    started();
                    fake.0.lock().unwrap().down = true;
                    std::thread::sleep(for_how_long);
                    fake.0.lock().unwrap().down = false;
                    std::thread::sleep(Duration::from_millis(200));
                    write("exit", "0\n");
                    fake.set(&id, Some("COMPLETED"));
                }
                Behaviour::Busy(..) | Behaviour::Reject(_) => unreachable!("handled at submission"),
            }
        });
    }
}

impl Scheduler for Fake {
    fn submit(&self, script: &Path, args: &[String]) -> Result<String, SubmitError> {
        let mut s = self.0.lock().unwrap();
        s.args = args.to_vec();
        let plan = s.plans.pop_front().unwrap_or(Behaviour::Exit(0));
        let plan = match plan {
            Behaviour::Reject(m) => return Err(SubmitError::Rejected(m.to_string())),
            Behaviour::Busy(0, then) => *then,
            Behaviour::Busy(n, then) => {
                s.plans.push_front(Behaviour::Busy(n - 1, then));
                return Err(SubmitError::Transient("Socket timed out on send/recv operation".into()));
            }
            other => other,
        };
        s.next += 1;
        s.submits += 1;
        let id = (100 + s.next).to_string();
        let dir = script.parent().unwrap().to_path_buf();
        s.states.insert(id.clone(), JobState::new("PENDING", "None"));
        s.dirs.insert(id.clone(), dir.clone());
        drop(s);
        self.play(id.clone(), dir, plan);
        Ok(id)
    }

    fn query(&self, ids: &[String]) -> Result<BTreeMap<String, JobState>, String> {
        let s = self.0.lock().unwrap();
        if s.down {
            return Err("squeue: error: Unable to contact slurm controller (connect failure)".into());
        }
        Ok(ids.iter().filter_map(|id| s.states.get(id).map(|st| (id.clone(), st.clone()))).collect())
    }

    fn cancel(&self, ids: &[String]) -> Result<(), String> {
        let mut s = self.0.lock().unwrap();
        s.cancels.push(ids.to_vec());
        for id in ids {
            s.states.insert(id.clone(), JobState::new("CANCELLED", "None"));
        }
        Ok(())
    }
}

fn settings() -> Settings {
    Settings {
        poll_min: Duration::from_millis(20),
        poll_max: Duration::from_millis(50),
        max_jobs: 10,
        exit_wait: Duration::from_millis(600),
        start_wait: Duration::from_millis(400),
        submit_tries: 3,
        submit_pause: Duration::from_millis(10),
        controller_patience: Duration::from_millis(100),
    }
}

fn request() -> JobRequest {
    JobRequest {
        cpus: 2,
        mem_mb: 2048,
        time_minutes: 60,
        gpus: 0,
        partition: None,
        account: None,
        qos: None,
        sbatch_args: Vec::new(),
        setup: Vec::new(),
    }
}

/// Runs one stage through `fake`; returns the result, the events and the cache-like folder.
fn run_one(fake: &Fake, cancel_after: Option<Duration>) -> (Result<job::JobTimes, StageError>, Vec<StageEvent>, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let tmp = root.path().join("tmp/key-1-0");
    std::fs::create_dir_all(tmp.join("out")).unwrap();
    let exec = SlurmExecutor::new(Box::new(fake.clone()), settings());
    let request = request();
    let sj = StageJob { exec: &exec, stage: "w", exe_name: "pipe-worker", request: &request, logs: root.path().join("slurm-logs") };
    let job = worker::Job {
        stage: "w".into(),
        kind: "test-worker".into(),
        params: serde_json::json!({}),
        seed: 0,
        threads: 2,
        pool: 2,
        inputs: Default::default(),
        out_dir: tmp.join("out"),
        command: None,
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let events: EventSink = Arc::new(move |e| sink.lock().unwrap().push(e));
    let cancel = Arc::new(AtomicBool::new(false));
    if let Some(after) = cancel_after {
        let c = Arc::clone(&cancel);
        std::thread::spawn(move || {
            std::thread::sleep(after);
            c.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let result = job::run(&sj, &job, &tmp, &events, &cancel);
    let events = seen.lock().unwrap().clone();
    (result, events, root)
}

fn failure(result: Result<job::JobTimes, StageError>) -> String {
    match result {
        Err(StageError::Failed(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_job_that_exits_zero_succeeds_and_its_progress_arrives() {
    let fake = Fake::with(vec![Behaviour::Exit(0)]);
    let (result, events, root) = run_one(&fake, None);
    assert!(fake.0.lock().unwrap().args.contains(&"--no-requeue".to_string()), "a failed node's job is not requeued behind pipe's back");
    let times = result.unwrap();
    assert!(times.to_start >= 0.0 && times.to_notice < 5.0, "{times:?}");
    assert_eq!(events[0], StageEvent::Job("slurm:101".into()));
    assert!(events.contains(&StageEvent::Progress { pos: 1, len: 2, unit: "items".into() }), "{events:?}");
    assert!(!root.path().join("tmp/key-1-0/job").exists(), "a finished job leaves no folder in the entry");
}

#[test]
fn a_controller_that_stops_answering_is_named_and_its_return_too() {
    let fake = Fake::with(vec![Behaviour::ControllerDown(Duration::from_millis(500))]);
    let (result, events, _root) = run_one(&fake, None);
    assert!(result.is_ok(), "{result:?}");
    let warnings: Vec<&String> = events.iter().filter_map(|e| if let StageEvent::Warning(w) = e { Some(w) } else { None }).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("the Slurm controller does not answer (squeue: error: Unable to contact slurm controller"),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].starts_with("the Slurm controller answers again; job "), "{}", warnings[1]);
}

#[test]
fn a_failing_worker_is_explained_by_its_own_words_and_its_log_is_kept() {
    let (result, _, root) = run_one(&Fake::with(vec![Behaviour::Exit(3)]), None);
    let m = failure(result);
    assert!(m.starts_with("the worker's own words (Slurm job 101; its log: "), "{m}");
    assert!(root.path().join("slurm-logs/101-w/stderr.log").exists(), "{m}");
}

#[test]
fn a_job_gone_from_squeue_without_an_exit_file_fails_after_the_bounded_wait() {
    let (result, _, _) = run_one(&Fake::with(vec![Behaviour::Vanish]), None);
    let m = failure(result);
    assert!(m.contains("left squeue without writing its exit file"), "{m}");
    assert!(m.contains("filesystem the nodes share"), "{m}");
}

#[test]
fn an_exit_file_late_on_a_slow_filesystem_still_decides() {
    let (result, _, _) = run_one(&Fake::with(vec![Behaviour::LateExit(Duration::from_millis(300))]), None);
    result.unwrap();
}

#[test]
fn an_exit_file_that_never_comes_after_completed_is_named() {
    let (result, _, _) = run_one(&Fake::with(vec![Behaviour::LateExit(Duration::from_secs(5))]), None);
    let m = failure(result);
    assert!(m.contains("completed, but its exit file never appeared"), "{m}");
}

#[test]
fn node_failure_and_memory_say_what_to_do() {
    let m = failure(run_one(&Fake::with(vec![Behaviour::EndAs("NODE_FAIL")]), None).0);
    assert!(m.contains("its node failed: run again"), "{m}");
    let m = failure(run_one(&Fake::with(vec![Behaviour::EndAs("OUT_OF_MEMORY")]), None).0);
    assert!(m.contains("ran out of memory (2G): raise `mem` in `[stages.w.resources]`"), "{m}");
    let m = failure(run_one(&Fake::with(vec![Behaviour::EndAs("TIMEOUT")]), None).0);
    assert!(m.contains("ran past its time limit (1:00:00): raise `time`"), "{m}");
}

#[test]
fn a_job_slurm_runs_that_never_starts_is_cancelled_and_reported() {
    let fake = Fake::with(vec![Behaviour::NeverStarts]);
    let m = failure(run_one(&fake, None).0);
    assert!(m.contains("its script never started"), "{m}");
    assert_eq!(fake.cancels(), [vec!["101".to_string()]]);
}

#[test]
fn a_busy_controller_is_retried_and_an_impossible_request_is_not() {
    let fake = Fake::with(vec![Behaviour::Busy(2, Box::new(Behaviour::Exit(0)))]);
    run_one(&fake, None).0.unwrap();
    assert_eq!(fake.submits(), 1);
    let fake = Fake::with(vec![Behaviour::Busy(5, Box::new(Behaviour::Exit(0)))]);
    let m = failure(run_one(&fake, None).0);
    assert!(m.starts_with("sbatch kept failing (3 tries): Socket timed out"), "{m}");
    let m = failure(run_one(&Fake::with(vec![Behaviour::Reject("Requested node configuration is not available")]), None).0);
    assert!(m.contains("Slurm rejected the job of stage `w` (2 CPUs, 2G, 1:00:00): Requested node configuration"), "{m}");
}

#[test]
fn cancelling_sends_one_scancel_and_publishes_nothing() {
    let fake = Fake::with(vec![Behaviour::Runs]);
    let (result, _, _) = run_one(&fake, Some(Duration::from_millis(150)));
    assert!(matches!(result, Err(StageError::Cancelled)), "{result:?}");
    assert_eq!(fake.cancels(), [vec!["101".to_string()]]);
}

#[test]
fn squeue_is_asked_once_per_interval_for_all_jobs() {
    let fake = Fake::default();
    let exec = SlurmExecutor::new(Box::new(fake), Settings { poll_min: Duration::from_secs(60), ..settings() });
    for id in ["1", "2", "3"] {
        exec.track(id);
    }
    for id in ["1", "2", "3", "1", "2"] {
        let _ = exec.state(id, false);
    }
    assert_eq!(exec.polls(), 1, "one call answers every job until the interval passes");
}

#[test]
fn a_killed_engines_job_is_adopted_while_it_runs_or_if_it_finished_well() {
    let root = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.set("7", Some("RUNNING"));
    let exec = SlurmExecutor::new(Box::new(fake.clone()), settings());
    let tmp = root.path().join("k-1-0");
    std::fs::create_dir_all(tmp.join("job")).unwrap();
    assert!(!job::adopt(&exec, &tmp, false), "no job id: nothing to adopt");
    std::fs::write(tmp.join("job/job-id"), "7\n").unwrap();
    assert!(job::adopt(&exec, &tmp, false), "running: adopted");
    assert!(!job::adopt(&exec, &tmp, true), "a second running job of the same key is cancelled");
    assert_eq!(fake.cancels(), [vec!["7".to_string()]]);
    fake.set("7", None);
    assert!(!job::adopt(&exec, &tmp, false), "gone without an exit file: not adopted");
    std::fs::write(tmp.join("job/exit"), "0\n").unwrap();
    assert!(job::adopt(&exec, &tmp, false), "finished well: its output is used");
    std::fs::write(tmp.join("job/exit"), "1\n").unwrap();
    assert!(!job::adopt(&exec, &tmp, false), "failed: rebuilt");
}
