//! The scheduler: the one module that starts threads and processes.
//!
//! Design. [`mod@plan`] decides what runs; [`queue::DependencyQueue`] says what
//! can start; this module's loop (on the calling thread) starts every ready
//! stage while CPU slots are free, each in its own scoped thread, and then
//! waits on one channel for their messages: progress events and completions.
//! Only this loop talks to [`progress`], so output never interleaves.
//!
//! CPU budget ([`slots`]). `--jobs N` slots are shared between stage-level
//! parallelism (independent branches) and data-level parallelism inside a
//! stage: a [`ThreadUse::Parallel`](crate::kinds::ThreadUse) stage gets an equal share of the free
//! slots among the stages ready to start, and runs inside a rayon pool of
//! exactly that size, so two cores are never oversubscribed. An
//! [`ThreadUse::Elastic`](crate::kinds::ThreadUse) stage also borrows the slots that free up while it
//! runs when no ready stage can use them, and gives them back as soon as one
//! can. Ready stages start longest critical path first (estimated from the
//! previous run's durations, see [`plan::estimate`]). A [`ThreadUse::Keyed`](crate::kinds::ThreadUse)
//! stage (libtorch) runs on exactly its `threads` parameter's count, which
//! is part of its key, and holds that many slots (at most `--jobs`): its
//! output never depends on what else was running.
//!
//! Executors. Stages of kinds that run in a worker process are spawned here;
//! with `--executor slurm` every stage that runs is submitted as a cluster
//! job ([`slurm`]; the engine's own kinds run there in `pipe-worker`): those
//! hold no local slot; at most `max_jobs` are in flight, each on the CPUs
//! its request names. Everything else (locks, publishing) is the same.
//!
//! Failure and interruption. A failed stage skips its dependents only;
//! independent branches finish and are cached. Ctrl-C sets a flag that stages
//! poll and that kills worker processes; nothing partial is published (an
//! unpublished [`crate::cache::Writer`] removes its folder).

pub mod cutoff;
pub mod plan;
pub mod progress;
pub mod queue;
pub mod slots;
pub mod slurm;
pub mod worker;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheStatus, Hold, Lookup};
use crate::kinds::context::{EventSink, StageEvent};
use crate::kinds::grant::Grant;
use crate::kinds::{InputArtifact, Process, StageContext, StageError};
use crate::record::{StageStatus, Why};
use plan::{Action, Plan};
use progress::Progress;
use queue::DependencyQueue;
use slots::Slots;

/// The result of one stage in this run.
#[derive(Debug, Clone)]
pub struct StageResult {
    pub status: StageStatus,
    pub seconds: f64,
    /// Why it ran, or why it was skipped/cached.
    pub reason: Why,
    pub error: Option<String>,
    /// Warnings the stage gave while it ran in this session.
    pub warnings: Vec<String>,
    /// Threads it ran on (0 when it did not run); the most, for an elastic stage.
    pub threads: usize,
    /// When it started, in seconds after the run began.
    pub start: f64,
    /// The cluster job that ran it (`slurm:1234`), if an executor submitted one.
    pub job: Option<String>,
    /// For a cluster job: seconds from submission to its start, and from
    /// its end to its entry being published (the engine's overhead).
    pub job_overhead: Option<(f64, f64)>,
}

impl StageResult {
    /// A stage that has not run (yet): no seconds, threads or job.
    fn before_running(status: StageStatus, reason: Why) -> StageResult {
        StageResult {
            status,
            seconds: 0.0,
            reason,
            error: None,
            warnings: Vec::new(),
            threads: 0,
            start: 0.0,
            job: None,
            job_overhead: None,
        }
    }
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
    /// Ran and published; for a cluster job, its overhead (see [`StageResult::job_overhead`]).
    Ran(Hold, Option<(f64, f64)>),
    /// Another run published the entry while this one waited for its lock.
    CachedMeanwhile(Hold),
    /// Published from an entry computed before from the same content:
    /// these inputs re-ran and gave the same output (see [`cutoff`]).
    CutOff(Hold, Vec<String>),
}

/// Runs the plan's `Run` stages within `jobs` CPU slots; with `slurm`, the
/// stages as Slurm jobs.
pub fn execute(
    plan: &Plan,
    cache: &Cache,
    jobs: usize,
    slurm: Option<&slurm::SlurmExecutor>,
    cancel: &Arc<AtomicBool>,
    progress: &mut Progress,
) -> RunOutcome {
    let n = plan.stages.len();
    let mut state = RunState { results: initial_results(plan), holds: Vec::new(), running: 0, remote_running: 0 };
    let active: Vec<bool> = plan.stages.iter().map(|p| p.action == Action::Run).collect();
    let estimates: Vec<f64> = plan.stages.iter().map(|p| p.estimate).collect();
    let mut queue = DependencyQueue::new(&plan.dag, &active).with_priority(queue::critical_path(&plan.dag, &active, &estimates));
    let mut slots = Slots::new(jobs, n);
    let clock = Instant::now();
    let jobs = slots.jobs();
    let requests = job_requests(plan, slurm.is_some(), jobs);
    let max_remote = slurm.map_or(0, |s| s.settings.max_jobs);
    let (tx, rx) = mpsc::channel::<Msg>();

    std::thread::scope(|scope| {
        loop {
            if cancel.load(Ordering::Relaxed) {
                for i in queue.drain() {
                    state.results[i] = skipped(Why::Interrupted);
                }
            }
            if queue.ready_len() > 0 && slots.lent_any() {
                slots.reclaim();
            }
            // Cluster jobs hold no local slot: every ready one is submitted, up to the cap.
            while state.remote_running < max_remote {
                let Some(i) = queue.pop_first(|i| requests[i].is_some()) else { break };
                let threads = requests[i].as_ref().map_or(1, |r| r.cpus as usize);
                state.started(i, threads, clock.elapsed().as_secs_f64(), true);
                progress.started(i, &plan.spec.stages[i].name, threads);
                let (tx, cancel, request) = (tx.clone(), Arc::clone(cancel), requests[i].as_ref());
                let remote = slurm.zip(request);
                scope.spawn(move || {
                    stage_thread(plan, cache, StageRun { index: i, threads, pool: threads, grant: None, remote }, cancel, tx)
                });
            }
            while slots.free() > 0 {
                let waiting = queue.ready_len();
                // The most urgent ready stage starts first; if it needs more
                // slots than are free, nothing overtakes it: slots collect for it.
                let Some(i) = queue.pop_first_among_if(|i| requests[i].is_none(), |i| slots.needed(&plan.spec.stages[i]) <= slots.free())
                else {
                    break;
                };
                let stage = &plan.spec.stages[i];
                let (taken, threads) = slots.share(stage, waiting);
                let grant = slots.start(i, stage, taken);
                // An elastic stage's pool can use every slot it may be lent.
                let pool = if grant.is_some() { jobs } else { threads };
                state.started(i, threads, clock.elapsed().as_secs_f64(), false);
                progress.started(i, &stage.name, threads);
                let tx = tx.clone();
                let cancel = Arc::clone(cancel);
                scope.spawn(move || stage_thread(plan, cache, StageRun { index: i, threads, pool, grant, remote: None }, cancel, tx));
            }
            if queue.ready_len() == 0
                && let Some((i, now)) = slots.lend(|i| queue.priority(i))
            {
                state.results[i].threads = state.results[i].threads.max(now);
            }
            if state.running == 0 {
                break;
            }
            let Ok(msg) = rx.recv_timeout(Duration::from_millis(100)) else { continue };
            match msg {
                Msg::Event(i, event) => state.event(plan, progress, i, event),
                Msg::Done(i, result, seconds) => {
                    slots.finish(i);
                    let ok = state.done(plan, progress, (i, requests[i].is_some()), result, seconds);
                    skip_dependents(&mut state, plan, progress, &mut queue, (i, ok));
                }
            }
        }
    });
    cutoff::remember(plan, cache, |i| matches!(state.results[i].status, StageStatus::Ran | StageStatus::Cached));
    RunOutcome { results: state.results, interrupted: cancel.load(Ordering::Relaxed), holds: state.holds }
}

/// Tells the queue stage `i` is done; if it failed (`ok` false), its
/// dependents are skipped.
fn skip_dependents(state: &mut RunState, plan: &Plan, progress: &mut Progress, queue: &mut DependencyQueue, (i, ok): (usize, bool)) {
    for s in queue.finish(i, ok) {
        let why = Why::InputFailed(plan.spec.stages[i].name.clone());
        progress.finished(s, &plan.spec.stages[s].name, StageStatus::Skipped, 0.0, &why.to_string());
        state.results[s] = skipped(why);
    }
}

/// What the scheduler's loop keeps of the stages it has started.
struct RunState {
    results: Vec<StageResult>,
    holds: Vec<Hold>,
    running: usize,
    /// Of `running`, the cluster jobs (which hold no local slot).
    remote_running: usize,
}

impl RunState {
    fn started(&mut self, i: usize, threads: usize, at: f64, remote: bool) {
        self.results[i].threads = threads;
        self.results[i].start = at;
        self.running += 1;
        self.remote_running += usize::from(remote);
    }

    fn event(&mut self, plan: &Plan, progress: &mut Progress, i: usize, event: StageEvent) {
        let name = &plan.spec.stages[i].name;
        match event {
            StageEvent::Progress { pos, len, unit } => progress.progress(i, name, pos, len, &unit),
            StageEvent::Warning(w) => {
                progress.warning(name, &w);
                self.results[i].warnings.push(w);
            }
            StageEvent::Job(id) => {
                progress.job(i, name, &id);
                self.results[i].job = Some(id);
            }
        }
    }

    /// Records stage `i` (`remote`: a cluster job) done; returns whether it succeeded.
    fn done(
        &mut self,
        plan: &Plan,
        progress: &mut Progress,
        (i, remote): (usize, bool),
        result: Result<Done, StageError>,
        seconds: f64,
    ) -> bool {
        self.running -= 1;
        self.remote_running -= usize::from(remote);
        if let Ok(Done::Ran(_, overhead)) = &result {
            self.results[i].job_overhead = *overhead;
        }
        let (status, reason, error, hold) = settle(result, plan.stages[i].why());
        self.holds.extend(hold);
        progress.finished(i, &plan.spec.stages[i].name, status, seconds, error.as_deref().unwrap_or(""));
        let earlier = std::mem::replace(&mut self.results[i], skipped(Why::Interrupted));
        self.results[i] = StageResult { status, seconds, reason, error, ..earlier };
        status != StageStatus::Failed
    }
}

/// One stage, on its own thread: runs it (a panic becomes its error) and
/// sends its events and its result to the scheduler.
fn stage_thread(plan: &Plan, cache: &Cache, run: StageRun, cancel: Arc<AtomicBool>, tx: mpsc::Sender<Msg>) {
    let (i, started) = (run.index, Instant::now());
    let events_tx = tx.clone();
    let events: EventSink = Arc::new(move |e| {
        // The loop receives until every stage it started is done, so
        // sending cannot fail while this one runs.
        let _ = events_tx.send(Msg::Event(i, e));
    });
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_stage(plan, cache, run, events, cancel)))
        .unwrap_or_else(|p| Err(StageError::Failed(format!("internal error: {}", panic_text(&p)))));
    let _ = tx.send(Msg::Done(i, result, started.elapsed().as_secs_f64())); // as above
}

/// With the Slurm executor (`slurm`), the request of each stage that runs as
/// a cluster job (every stage the plan runs); `None` for the others.
/// `pipe plan --executor slurm` shows the same requests.
pub fn job_requests(plan: &Plan, slurm: bool, jobs: usize) -> Vec<Option<slurm::request::JobRequest>> {
    plan.spec
        .stages
        .iter()
        .zip(&plan.stages)
        .map(|(stage, planned)| {
            let remote = slurm && planned.action == Action::Run;
            remote.then(|| slurm::request::JobRequest::of(stage, &plan.spec.executor, jobs))
        })
        .collect()
}

/// Every stage's result before the run: cached, for the plan's reason.
fn initial_results(plan: &Plan) -> Vec<StageResult> {
    plan.stages.iter().map(|p| StageResult::before_running(StageStatus::Cached, p.why())).collect()
}

/// A finished stage's status, reason and error, and the hold on the entry
/// it published (or found published meanwhile), which the run keeps.
fn settle(result: Result<Done, StageError>, planned: Why) -> (StageStatus, Why, Option<String>, Option<Hold>) {
    match result {
        Ok(Done::Ran(hold, _)) => (StageStatus::Ran, planned, None, Some(hold)),
        Ok(Done::CachedMeanwhile(hold)) => (StageStatus::Cached, Why::ConcurrentRun, None, Some(hold)),
        Ok(Done::CutOff(hold, inputs)) => (StageStatus::Cached, Why::CutOff(inputs), None, Some(hold)),
        Err(StageError::Cancelled) => (StageStatus::Failed, planned, Some("interrupted".to_string()), None),
        Err(e) => (StageStatus::Failed, planned, Some(e.to_string()), None),
    }
}

/// How one stage runs: on `threads` threads (a rayon pool of `pool`), and
/// for an elastic stage, the grant the scheduler may raise while it runs.
struct StageRun<'a> {
    index: usize,
    threads: usize,
    pool: usize,
    grant: Option<Arc<Grant>>,
    /// The executor and request of a stage that runs as a cluster job.
    remote: Option<(&'a slurm::SlurmExecutor, &'a slurm::request::JobRequest)>,
}

fn skipped(why: Why) -> StageResult {
    StageResult::before_running(StageStatus::Skipped, why)
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "panic".into())
}

/// One stage, on its own thread: take the key's lock, run, publish.
fn run_stage(plan: &Plan, cache: &Cache, run: StageRun, events: EventSink, cancel: Arc<AtomicBool>) -> Result<Done, StageError> {
    let StageRun { index: i, threads, pool, grant, remote } = run;
    let grant = grant.unwrap_or_else(|| Grant::new(threads));
    let stage = &plan.spec.stages[i];
    let planned = &plan.stages[i];
    // The plan saw no sound entry; one found now was published by a
    // concurrent run, and is used only after a full checksum check (never
    // under --force).
    let forced = planned.reasons.contains(&crate::keys::Reason::Forced);
    // A cluster job of a killed engine may still be building this entry.
    let adopt = |dir: &std::path::Path, already: bool| remote.is_some_and(|(exec, _)| slurm::job::adopt(exec, dir, already));
    let writer = match cache
        .acquire_adopting(&planned.key, |entry| !forced && entry.verify().is_ok(), &cancel, adopt)
        .map_err(|e| StageError::Failed(e.to_string()))?
    {
        CacheStatus::Hit(_, hold) => return Ok(Done::CachedMeanwhile(hold)),
        CacheStatus::Miss(w) => w,
        CacheStatus::Cancelled => return Err(StageError::Cancelled),
    };
    check_inputs_present(plan, cache, i)?;
    let writer = match cut_off(plan, cache, i, writer, &cancel, forced)? {
        Ok(done) => return Ok(done),
        Err(writer) => writer,
    };
    let inputs = input_artifacts(plan, cache, i);
    if let Some((exec, request)) = remote {
        // Any kind runs as a cluster job, in the worker executable that links its libraries.
        let job = worker_job(plan, cache, stage, (threads, pool), inputs, writer.out_dir());
        let job = absolute_paths(job).map_err(|e| StageError::Failed(format!("cannot resolve the job's paths: {e}")))?;
        let sj = slurm::job::StageJob {
            exec,
            stage: &stage.name,
            exe_name: stage.kind.process.worker_executable(),
            request,
            logs: absolute(cache.root().join("slurm-logs")),
        };
        let times = slurm::job::run(&sj, &job, writer.tmp_dir(), &events, &cancel).map_err(|e| failed_because(plan, cache, i, e))?;
        inputs_unchanged(plan, cache, i)?;
        let publishing = Instant::now();
        return match publish(writer, stage, planned, &cancel)? {
            Done::Ran(hold, _) => Ok(Done::Ran(hold, Some((times.to_start, times.to_notice + publishing.elapsed().as_secs_f64())))),
            other => Ok(other),
        };
    }
    match stage.kind.process {
        Process::Engine(run) => {
            let mut ctx = StageContext::new(
                stage.name.clone(),
                stage.kind,
                resolved_params(&plan.spec.file, stage),
                stage.seed,
                inputs,
                threads,
                writer.out_dir(),
                events,
                Arc::clone(&cancel),
            )
            .with_grant(Arc::clone(&grant));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(pool)
                .thread_name(move |t| format!("stage-{i}-{t}"))
                .build()
                .map_err(|e| StageError::Failed(format!("cannot start threads: {e}")))?;
            pool.install(|| run(&mut ctx)).map_err(|e| failed_because(plan, cache, i, e))?;
            ctx.save_log()?;
        }
        Process::OpenCv | Process::Torch => {
            let job = worker_job(plan, cache, stage, (threads, pool), inputs, writer.out_dir());
            let job_file = writer.out_dir().with_extension("job.json");
            let result = worker::run_in_worker(stage.kind.process.worker_executable(), &job, &job_file, events, &cancel, &grant);
            // Best effort: the job file sits beside `out/`, outside what the
            // manifest lists, so one left behind changes nothing.
            let _ = crate::fsx::remove_file(&job_file);
            result.map_err(|e| failed_because(plan, cache, i, e))?;
        }
    }
    inputs_unchanged(plan, cache, i)?;
    publish(writer, stage, planned, &cancel)
}

/// Publishes stage `i` from an entry computed before from the same
/// content, if there is one (never under `--force`); otherwise hands the
/// writer back, its folder empty, for the stage to run.
fn cut_off(
    plan: &Plan,
    cache: &Cache,
    i: usize,
    writer: crate::cache::Writer,
    cancel: &AtomicBool,
    forced: bool,
) -> Result<Result<Done, crate::cache::Writer>, StageError> {
    let Some((earlier, _hold)) = (!forced).then(|| cutoff::earlier_entry(plan, cache, i)).flatten() else { return Ok(Err(writer)) };
    let out = writer.out_dir();
    if crate::cache::content::link_files(&earlier, &out).is_err() {
        // Run it instead, from an empty folder.
        crate::fsx::remove_dir_all(&out).and_then(|()| crate::fsx::create_dir_all(&out)).map_err(StageError::from)?;
        return Ok(Err(writer));
    }
    let planned = &plan.stages[i];
    let inputs = cutoff::same_output_inputs(planned, &earlier);
    match publish(writer.took(earlier.manifest.seconds), &plan.spec.stages[i], planned, cancel)? {
        Done::Ran(hold, _) => Ok(Ok(Done::CutOff(hold, inputs))),
        other => Ok(Ok(other)),
    }
}

/// The inputs a stage read are still what its key names: each input entry's
/// files against its manifest (blake3, from the page cache: cheap), checked
/// after the stage ran and before its output is published. An input
/// overwritten while it ran would otherwise be published under a clean key.
fn inputs_unchanged(plan: &Plan, cache: &Cache, i: usize) -> Result<(), StageError> {
    for j in plan.dag.deps[i].iter().copied() {
        let problem = match cache.lookup(&plan.stages[j].key) {
            Lookup::Hit(entry) => match entry.verify() {
                Ok(()) => continue,
                Err(e) => e.to_string(),
            },
            Lookup::Corrupt(why) => why,
            Lookup::Missing => "its cache entry is gone".to_string(),
        };
        return Err(StageError::Failed(format!(
            "input `{}` changed while `{}` ran ({problem}); nothing was published. \
             `pipe verify --discard` removes the damaged entry, and the next run rebuilds it",
            plan.spec.stages[j].name, plan.spec.stages[i].name
        )));
    }
    Ok(())
}

/// Why a stage failed: an input that changed under it (a truncated file
/// makes a reader crash with SIGBUS) is the reason, before its own error.
fn failed_because(plan: &Plan, cache: &Cache, i: usize, error: StageError) -> StageError {
    if matches!(error, StageError::Cancelled) {
        return error;
    }
    inputs_unchanged(plan, cache, i).err().unwrap_or(error)
}

/// The worker's job file for `stage`, on `(threads, pool)`, with its
/// parameters as [`resolved_params`] hands them over (and, for a `command`
/// stage, its program).
fn worker_job(
    plan: &Plan,
    cache: &Cache,
    stage: &crate::spec::StageSpec,
    (threads, pool): (usize, usize),
    inputs: BTreeMap<String, Vec<InputArtifact>>,
    out_dir: std::path::PathBuf,
) -> worker::Job {
    let inputs = inputs
        .into_iter()
        .map(|(slot, items)| {
            (slot, items.into_iter().map(|a| worker::JobInput { stage: a.stage, artifact: a.artifact, dir: a.dir }).collect())
        })
        .collect();
    let params = resolved_params(&plan.spec.file, stage).to_json();
    worker::Job {
        stage: stage.name.clone(),
        kind: stage.kind.name.to_string(),
        params,
        seed: stage.seed,
        threads,
        pool,
        inputs,
        out_dir,
        command: stage.command.as_ref().map(|c| crate::kinds::command::CommandJob {
            argv: c.argv.clone(),
            produces: c.produces,
            cwd: absolute(crate::spec::pipeline_dir(&plan.spec.file)),
            timeout_s: c.timeout_s,
            log: absolute(cache.root().join("logs").join(crate::kinds::command::log_name(&stage.name))),
        }),
    }
}

/// `stage`'s parameters as its run function gets them: `File` and `Path`
/// parameters resolved against `spec_file`'s folder and made absolute (the
/// key keeps them as written), so a pipeline reads the same files from any
/// working folder, and a cluster node finds them.
fn resolved_params(spec_file: &std::path::Path, stage: &crate::spec::StageSpec) -> crate::kinds::Params {
    use crate::kinds::params::{ParamType, ParamValue};
    let mut params = stage.params.clone();
    for def in stage.kind.params.iter().filter(|p| matches!(p.ty, ParamType::File | ParamType::Path { .. })) {
        if let Some(ParamValue::Str(written)) = params.0.get_mut(def.name) {
            *written = absolute(crate::spec::resolve_file(spec_file, written)).display().to_string();
        }
    }
    params
}

/// Publishes a finished stage's entry, unless the run was interrupted.
fn publish(
    writer: crate::cache::Writer,
    stage: &crate::spec::StageSpec,
    planned: &plan::PlannedStage,
    cancel: &AtomicBool,
) -> Result<Done, StageError> {
    if cancel.load(Ordering::Relaxed) {
        return Err(StageError::Cancelled);
    }
    let (_entry, hold) =
        writer.publish(stage.kind.name, &stage.name, planned.doc.to_value()).map_err(|e| StageError::Failed(e.to_string()))?;
    Ok(Done::Ran(hold, None))
}

use crate::fsx::absolute;

/// A job for a cluster node, whose working folder is not the engine's:
/// its input and output folders made absolute.
fn absolute_paths(mut job: worker::Job) -> std::io::Result<worker::Job> {
    job.out_dir = std::path::absolute(&job.out_dir)?;
    for items in job.inputs.values_mut() {
        for item in items {
            item.dir = std::path::absolute(&item.dir)?;
        }
    }
    Ok(job)
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
                        artifact: plan.spec.stages[j].output,
                        dir: cache.entry_dir(&plan.stages[j].key).join("out"),
                    }
                })
                .collect();
            (slot.clone(), items)
        })
        .collect()
}
