//! The scheduler: the one module that starts threads and processes.
//!
//! Design. [`plan`] decides what runs; [`queue::DependencyQueue`] says what
//! can start; this module's loop (on the calling thread) starts every ready
//! stage while CPU slots are free, each in its own scoped thread, and then
//! waits on one channel for their messages: progress events and completions.
//! Only this loop talks to [`progress`], so output never interleaves.
//!
//! CPU budget. `--jobs N` slots are shared between stage-level parallelism
//! (independent branches) and data-level parallelism inside a stage: a
//! [`ThreadUse::Parallel`] stage gets an equal share of the free slots among
//! the stages ready to start, and runs inside a rayon pool of exactly that
//! size, so two cores are never oversubscribed. A [`ThreadUse::Keyed`]
//! stage (libtorch) runs on exactly its `threads` parameter's count, which
//! is part of its key, and holds that many slots (at most `--jobs`): its
//! output never depends on what else was running.
//!
//! Failure and interruption. A failed stage skips its dependents only;
//! independent branches finish and are cached. Ctrl-C sets a flag that stages
//! poll and that kills worker processes; nothing partial is published (an
//! unpublished [`Writer`] removes its folder).

pub mod plan;
pub mod progress;
pub mod queue;
pub mod worker;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheStatus, Hold, Lookup};
use crate::record::StageStatus;
use crate::stages::context::{EventSink, StageEvent};
use crate::stages::{InputArtifact, Process, StageContext, StageError, ThreadUse};
use plan::{Action, Plan};
use progress::Progress;
use queue::DependencyQueue;

/// The result of one stage in this run.
#[derive(Debug, Clone)]
pub struct StageResult {
    pub status: StageStatus,
    pub seconds: f64,
    /// Why it ran, or why it was skipped/cached.
    pub reason: String,
    pub error: Option<String>,
    /// Warnings the stage gave while it ran in this session.
    pub warnings: Vec<String>,
    /// Threads it ran on (0 when it did not run).
    pub threads: usize,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub results: Vec<StageResult>,
    pub interrupted: bool,
    /// Read holds on the entries this run published or found published by
    /// a concurrent run: `pipe gc` leaves them alone until the report is written.
    pub holds: Vec<Hold>,
}

impl RunOutcome {
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.status == StageStatus::Failed)
    }
}

enum Msg {
    Event(usize, StageEvent),
    Done(usize, Result<Done, StageError>, f64),
}

enum Done {
    Ran(Hold),
    /// Another run published the entry while this one waited for its lock.
    CachedMeanwhile(Hold),
}

/// Runs the plan's `Run` stages within `jobs` CPU slots.
pub fn execute(plan: &Plan, cache: &Cache, jobs: usize, cancel: &Arc<AtomicBool>, progress: &mut Progress) -> RunOutcome {
    let n = plan.stages.len();
    let mut results: Vec<StageResult> = plan
        .stages
        .iter()
        .map(|p| StageResult { status: StageStatus::Cached, seconds: 0.0, reason: p.reason_text(), error: None, warnings: Vec::new(), threads: 0 })
        .collect();
    let active: Vec<bool> = plan.stages.iter().map(|p| p.action == Action::Run).collect();
    let mut queue = DependencyQueue::new(&plan.dag, &active);
    let jobs = jobs.max(1);
    let mut free = jobs;
    let mut granted = vec![0usize; n];
    let mut running = 0usize;
    let mut holds = Vec::new();
    let (tx, rx) = mpsc::channel::<Msg>();

    std::thread::scope(|scope| {
        loop {
            if cancel.load(Ordering::Relaxed) {
                for i in queue.drain() {
                    results[i] = skipped("interrupted");
                }
            }
            while free > 0 {
                let waiting = queue.ready_len();
                let Some(i) = queue.pop_first(|i| slots_needed(&plan.spec.stages[i], jobs) <= free) else { break };
                let stage = &plan.spec.stages[i];
                let (slots, threads) = match stage.kind.threads {
                    ThreadUse::Single => (1, 1),
                    ThreadUse::Parallel => {
                        let share = (free / waiting.max(1)).max(1);
                        (share, share)
                    }
                    ThreadUse::Keyed => (slots_needed(stage, jobs), keyed_threads(stage)),
                };
                free -= slots;
                granted[i] = slots;
                results[i].threads = threads;
                running += 1;
                progress.started(i, &stage.name, threads);
                let tx = tx.clone();
                let cancel = Arc::clone(cancel);
                scope.spawn(move || {
                    let started = Instant::now();
                    let events_tx = tx.clone();
                    let events: EventSink = Arc::new(move |e| {
                        let _ = events_tx.send(Msg::Event(i, e));
                    });
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_stage(plan, cache, i, threads, events, cancel)))
                        .unwrap_or_else(|p| Err(StageError::Failed(format!("internal error: {}", panic_text(&p)))));
                    let _ = tx.send(Msg::Done(i, result, started.elapsed().as_secs_f64()));
                });
            }
            if running == 0 {
                break;
            }
            let Ok(msg) = rx.recv_timeout(Duration::from_millis(100)) else { continue };
            match msg {
                Msg::Event(i, StageEvent::Progress { pos, len, unit }) => {
                    progress.progress(i, &plan.spec.stages[i].name, pos, len, &unit);
                }
                Msg::Event(i, StageEvent::Warning(w)) => {
                    progress.warning(&plan.spec.stages[i].name, &w);
                    results[i].warnings.push(w);
                }
                Msg::Done(i, result, seconds) => {
                    running -= 1;
                    free += granted[i];
                    let name = &plan.spec.stages[i].name;
                    let (status, reason, error) = match result {
                        Ok(Done::Ran(hold)) => {
                            holds.push(hold);
                            (StageStatus::Ran, plan.stages[i].reason_text(), None)
                        }
                        Ok(Done::CachedMeanwhile(hold)) => {
                            holds.push(hold);
                            (StageStatus::Cached, "computed by a concurrent run".into(), None)
                        }
                        Err(StageError::Cancelled) => (StageStatus::Failed, plan.stages[i].reason_text(), Some("interrupted".to_string())),
                        Err(e) => (StageStatus::Failed, plan.stages[i].reason_text(), Some(e.to_string())),
                    };
                    let ok = status != StageStatus::Failed;
                    progress.finished(i, name, status, seconds, error.as_deref().unwrap_or(""));
                    let warnings = std::mem::take(&mut results[i].warnings);
                    results[i] = StageResult { status, seconds, reason, error, warnings, threads: results[i].threads };
                    for s in queue.finish(i, ok) {
                        let why = format!("input {name} failed");
                        progress.finished(s, &plan.spec.stages[s].name, StageStatus::Skipped, 0.0, &why);
                        results[s] = skipped(&why);
                    }
                }
            }
        }
    });
    RunOutcome { results, interrupted: cancel.load(Ordering::Relaxed), holds }
}

/// The threads a [`ThreadUse::Keyed`] stage runs on: its `threads` parameter.
fn keyed_threads(stage: &crate::spec::StageSpec) -> usize {
    usize::try_from(stage.params.int("threads")).unwrap_or(1).max(1)
}

/// The slots a stage needs free before it can start.
fn slots_needed(stage: &crate::spec::StageSpec, jobs: usize) -> usize {
    match stage.kind.threads {
        ThreadUse::Keyed => keyed_threads(stage).min(jobs),
        ThreadUse::Single | ThreadUse::Parallel => 1,
    }
}

fn skipped(why: &str) -> StageResult {
    StageResult { status: StageStatus::Skipped, seconds: 0.0, reason: why.to_string(), error: None, warnings: Vec::new(), threads: 0 }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "panic".into())
}

/// One stage, on its own thread: take the key's lock, run, publish.
fn run_stage(plan: &Plan, cache: &Cache, i: usize, threads: usize, events: EventSink, cancel: Arc<AtomicBool>) -> Result<Done, StageError> {
    let stage = &plan.spec.stages[i];
    let planned = &plan.stages[i];
    // The plan saw no sound entry; one found now was published by a
    // concurrent run, and is used only after a full checksum check (never
    // under --force).
    let forced = planned.reasons.contains(&crate::graph::keys::Reason::Forced);
    let writer = match cache
        .acquire_unless(&planned.key, |entry| !forced && entry.verify().is_ok(), &cancel)
        .map_err(|e| StageError::Failed(e.to_string()))?
    {
        CacheStatus::Hit(_, hold) => return Ok(Done::CachedMeanwhile(hold)),
        CacheStatus::Miss(w) => w,
        CacheStatus::Cancelled => return Err(StageError::Cancelled),
    };
    check_inputs_present(plan, cache, i)?;
    let inputs = input_artifacts(plan, cache, i);
    match stage.kind.process {
        Process::Engine(run) => {
            let mut ctx = StageContext::new(
                stage.name.clone(),
                stage.kind,
                stage.params.clone(),
                plan.spec.seed,
                inputs,
                threads,
                writer.out_dir(),
                events,
                Arc::clone(&cancel),
            );
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(move |t| format!("stage-{i}-{t}"))
                .build()
                .map_err(|e| StageError::Failed(format!("cannot start threads: {e}")))?;
            pool.install(|| run(&mut ctx))?;
            ctx.save_log()?;
        }
        Process::Worker | Process::Torch => {
            let exe = if matches!(stage.kind.process, Process::Torch) { "pipe-torch" } else { "pipe-worker" };
            let job = worker::Job {
                stage: stage.name.clone(),
                kind: stage.kind.name.to_string(),
                params: stage.params.to_json(),
                seed: plan.spec.seed,
                threads,
                inputs: inputs
                    .into_iter()
                    .map(|(slot, items)| {
                        (slot, items.into_iter().map(|a| worker::JobInput { stage: a.stage, artifact: a.artifact, dir: a.dir }).collect())
                    })
                    .collect(),
                out_dir: writer.out_dir(),
            };
            let job_file = writer.out_dir().with_extension("job.json");
            let result = worker::run_in_worker(exe, &job, &job_file, events, &cancel);
            let _ = std::fs::remove_file(&job_file);
            result?;
        }
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(StageError::Cancelled);
    }
    let (_entry, hold) = writer.publish(stage.kind.name, &stage.name, planned.doc.clone()).map_err(|e| StageError::Failed(e.to_string()))?;
    Ok(Done::Ran(hold))
}

/// Every input entry must still be in the cache: the run holds them, so
/// only a hand deletion (or a `pipe gc` from before this version) can take
/// one away, and then the message names the stage that produces it.
fn check_inputs_present(plan: &Plan, cache: &Cache, i: usize) -> Result<(), StageError> {
    for j in plan.dag.deps[i].iter().copied() {
        let key = &plan.stages[j].key;
        if let Lookup::Missing | Lookup::Corrupt(_) = cache.lookup(key) {
            return Err(StageError::Failed(format!(
                "missing input: the output of stage `{}` (cache entry {}) is gone from {}; run again to recompute it",
                plan.spec.stages[j].name,
                &key[..12],
                cache.root().display()
            )));
        }
    }
    Ok(())
}

fn input_artifacts(plan: &Plan, cache: &Cache, i: usize) -> BTreeMap<String, Vec<InputArtifact>> {
    let stage = &plan.spec.stages[i];
    stage
        .inputs
        .iter()
        .map(|(slot, refs)| {
            let items = refs
                .iter()
                .map(|r| {
                    let j = plan.spec.stages.iter().position(|s| s.name == r.stage).expect("validated reference");
                    InputArtifact {
                        stage: r.stage.clone(),
                        artifact: plan.spec.stages[j].kind.output,
                        dir: cache.entry_dir(&plan.stages[j].key).join("out"),
                    }
                })
                .collect();
            (slot.clone(), items)
        })
        .collect()
}
