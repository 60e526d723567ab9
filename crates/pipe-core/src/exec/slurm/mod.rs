//! The Slurm executor: every stage that runs in a worker process is
//! submitted with `sbatch` instead of spawned here. The engine stays on the
//! submitting machine and does what it does for local runs (plan, take the
//! cache locks, publish by rename, write the report), so a Slurm run and a
//! local run of a pipeline have the same keys and the same outputs.
//!
//! Life of a job ([`job`]): its folder is `job/` inside the entry being
//! built (the cache's `tmp/`, on the shared filesystem); the job script
//! touches `started`, runs the worker with its event lines going to
//! `events.jsonl` (which the engine tails for progress) and writes its exit
//! status to `exit` atomically, from a TERM trap too. The exit file decides;
//! Slurm's state only explains the jobs that have none, after a bounded wait
//! for the shared filesystem. Failed jobs keep their folder (logs) under the
//! cache's `slurm-logs/`.
//!
//! Polling ([`SlurmExecutor::state`]): one `squeue -t all` for every job in
//! flight per interval, the interval growing from half a second to
//! `poll_interval`. `sacct` is never needed. Ctrl-C or SIGTERM: one
//! `scancel` for every job of the run ([`SlurmExecutor::cancel_all`]).
//! A run that finds the half-built entry of a killed engine adopts its job
//! if it still runs or finished well, and cancels it otherwise ([`job::adopt`]).

pub mod client;
#[cfg(test)]
mod fake;
pub mod job;
pub mod request;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::spec::resources::ExecutorSpec;
use client::{JobState, Scheduler};

/// The timing rules of the executor; tests shorten them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The first wait between two `squeue` calls; it grows by half each time.
    pub poll_min: Duration,
    /// The longest wait between two `squeue` calls.
    pub poll_max: Duration,
    /// The most jobs in flight at once.
    pub max_jobs: usize,
    /// How long a job that Slurm says has ended may take to show its exit
    /// file (a slow shared filesystem), and a cancelled job to stop.
    pub exit_wait: Duration,
    /// How long a job Slurm says is running may take to write `started`
    /// before it is cancelled as stuck.
    pub start_wait: Duration,
    /// Tries of a `sbatch` that failed for a passing reason, with a doubling pause.
    pub submit_tries: u32,
    pub submit_pause: Duration,
    /// How long `squeue` may fail before the user hears that the controller
    /// does not answer (a restart of `slurmctld` takes a few seconds).
    pub controller_patience: Duration,
}

impl Settings {
    pub fn from_spec(spec: &ExecutorSpec) -> Settings {
        let poll_max = Duration::from_secs_f64(spec.poll_seconds.unwrap_or(30.0));
        Settings {
            poll_min: Duration::from_millis(500).min(poll_max),
            poll_max,
            max_jobs: spec.max_jobs.unwrap_or(100),
            exit_wait: Duration::from_secs(30).max(poll_max * 2),
            start_wait: Duration::from_secs(120).max(poll_max * 4),
            submit_tries: 6,
            submit_pause: Duration::from_secs(1),
            controller_patience: Duration::from_secs(10),
        }
    }
}

/// What the executor knows of the jobs in flight: one poll serves them all.
struct Board {
    in_flight: BTreeSet<String>,
    states: BTreeMap<String, JobState>,
    /// When `squeue` was last asked, and the wait before the next call.
    last: Option<Instant>,
    interval: Duration,
    /// The last `squeue` failure, shown if a job cannot be explained.
    error: Option<String>,
}

/// Submits, polls and cancels the jobs of one run.
pub struct SlurmExecutor {
    client: Box<dyn Scheduler>,
    pub settings: Settings,
    board: Mutex<Board>,
    cancelled: AtomicBool,
    /// `squeue` calls made (for tests and the benchmark).
    polls: AtomicUsize,
    /// Jobs submitted by this run (adopted ones not counted).
    submitted: AtomicUsize,
}

impl SlurmExecutor {
    pub fn new(client: Box<dyn Scheduler>, settings: Settings) -> SlurmExecutor {
        let interval = settings.poll_min;
        SlurmExecutor {
            client,
            settings,
            board: Mutex::new(Board { in_flight: BTreeSet::new(), states: BTreeMap::new(), last: None, interval, error: None }),
            cancelled: AtomicBool::new(false),
            polls: AtomicUsize::new(0),
            submitted: AtomicUsize::new(0),
        }
    }

    /// The executor of `[pipeline.executor]`, on the real cluster.
    pub fn from_spec(spec: &ExecutorSpec) -> SlurmExecutor {
        SlurmExecutor::new(Box::new(client::SlurmCli), Settings::from_spec(spec))
    }

    pub fn client(&self) -> &dyn Scheduler {
        self.client.as_ref()
    }

    pub fn polls(&self) -> usize {
        self.polls.load(Ordering::Relaxed)
    }

    pub fn submitted(&self) -> usize {
        self.submitted.load(Ordering::Relaxed)
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `id` to the jobs that polls ask about.
    pub fn track(&self, id: &str) {
        self.board().in_flight.insert(id.to_string());
    }

    pub fn untrack(&self, id: &str) {
        let mut b = self.board();
        b.in_flight.remove(id);
        b.states.remove(id);
    }

    /// Slurm's state of `id` as of the last poll, polling first if the
    /// interval has passed (or at once with `fresh`). `None`: Slurm does not
    /// know the job (any more).
    pub fn state(&self, id: &str, fresh: bool) -> Option<JobState> {
        let mut b = self.board();
        let due = b.last.is_none_or(|t| t.elapsed() >= b.interval);
        if due || fresh {
            let ids: Vec<String> = b.in_flight.iter().cloned().collect();
            self.polls.fetch_add(1, Ordering::Relaxed);
            match self.client.query(&ids) {
                Ok(states) => {
                    b.states = states;
                    b.error = None;
                }
                // A failing squeue must not fail jobs: keep the last answer.
                Err(e) => b.error = Some(e),
            }
            b.last = Some(Instant::now());
            b.interval = (b.interval.mul_f64(1.5)).min(self.settings.poll_max);
        }
        b.states.get(id).cloned()
    }

    /// The last `squeue` failure, if the last call failed.
    pub fn poll_error(&self) -> Option<String> {
        self.board().error.clone()
    }

    /// Cancels every job in flight with one `scancel`, once per run.
    pub fn cancel_all(&self) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let ids: Vec<String> = {
            let mut b = self.board();
            // The next poll comes soon: queued jobs end without an exit file.
            b.interval = self.settings.poll_min;
            b.last = None;
            b.in_flight.iter().cloned().collect()
        };
        if let Err(e) = self.client.cancel(&ids) {
            eprintln!("warning: {e}; cancel the run's jobs by hand: scancel {}", ids.join(" "));
        }
    }

    /// Whether [`SlurmExecutor::cancel_all`] has run: a job submitted after
    /// it must be cancelled on its own.
    pub fn cancelling(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}
