//! The worker protocol: one stage run = "kind + inputs + params -> output
//! folder", described by a JSON job file. The engine spawns `pipe-worker run
//! JOB` for stage kinds marked [`Process::OpenCv`](crate::kinds::Process)
//! (those that link OpenCV, and `command` stages) and `pipe-torch run JOB`
//! for [`Process::Torch`](crate::kinds::Process) (libtorch), reads JSON
//! event lines from its stdout, and stops it (SIGTERM, then SIGKILL) on Ctrl-C. The same job file is what the Slurm executor
//! (`exec::slurm`) hands a cluster job.
//!
//! A worker that fails says why as its last event,
//! `{"event":"failed","error":"...","kind":"..."}` (see [`FailureKind`]),
//! before it exits non-zero; it also prints `error: ...` on stderr for a
//! human reading along. The engine shows the event's message; without one
//! (a worker killed by a signal, or an older worker) it falls back to the
//! signal, then to the last line of stderr.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fsx;
use crate::kinds::context::{EventSink, StageEvent};
use crate::kinds::grant::Grant;
use crate::kinds::{self, InputArtifact, Params, StageContext, StageError};
use crate::util::PathError;

#[derive(Debug, Serialize, Deserialize)]
pub struct JobInput {
    pub stage: String,
    pub artifact: crate::kinds::ArtifactType,
    pub dir: PathBuf,
}

/// Everything a worker needs to run one stage.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub stage: String,
    pub kind: String,
    pub params: serde_json::Value,
    pub seed: u64,
    pub threads: usize,
    /// The rayon pool's size: `threads`, or the whole budget for an elastic
    /// kind, whose grant the engine raises and lowers through the worker's
    /// stdin (`{"grant": N}` lines).
    #[serde(default)]
    pub pool: usize,
    pub inputs: BTreeMap<String, Vec<JobInput>>,
    pub out_dir: PathBuf,
    /// A `command` stage's program (absent for the built-in kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<crate::kinds::command::CommandJob>,
}

/// One line the engine writes to an elastic worker's stdin.
#[derive(Debug, Serialize, Deserialize)]
struct GrantLine {
    grant: usize,
}

/// One line a worker prints on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WorkerLine {
    Progress { pos: u64, len: u64, unit: String },
    Warning(String),
}

/// The event a failing worker prints last on stdout:
/// `{"event":"failed","error":"...","kind":"..."}`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum WorkerEvent {
    Failed { error: String, kind: FailureKind },
}

/// What kind of failure a worker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The job file is missing, unreadable or not for this worker.
    Job,
    /// A file the stage reads or writes.
    Io,
    /// The stage's own explanation.
    Failed,
    /// The worker was told to stop.
    Cancelled,
    /// A panic inside the stage (a libtorch error, say).
    Panic,
}

/// Why a worker could not run its job (worker side).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot read job {}: {}", .0.path.display(), .0.source)]
    ReadJob(#[source] PathError),
    #[error("{} is not a job file: {source}", path.display())]
    NotAJob {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("this worker has no stage kind `{0}`")]
    UnknownKind(String),
    #[error("stage kind `{0}` does not run in this worker")]
    NotInThisWorker(String),
    #[error("job {}: {message}", path.display())]
    Params { path: PathBuf, message: String },
    #[error("{0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Stage(#[from] StageError),
    /// The message of a panic, as the panic hook phrased it.
    #[error("{0}")]
    Panic(String),
}

impl ServeError {
    pub fn kind(&self) -> FailureKind {
        match self {
            ServeError::ReadJob(_)
            | ServeError::NotAJob { .. }
            | ServeError::UnknownKind(_)
            | ServeError::NotInThisWorker(_)
            | ServeError::Params { .. } => FailureKind::Job,
            ServeError::Stage(StageError::Io(_)) => FailureKind::Io,
            ServeError::Stage(StageError::Cancelled) => FailureKind::Cancelled,
            ServeError::Threads(_) | ServeError::Stage(StageError::Failed(_)) => FailureKind::Failed,
            ServeError::Panic(_) => FailureKind::Panic,
        }
    }
}

/// A worker executable (`pipe-worker` or `pipe-torch`) next to the running
/// `pipe`; `$PIPE_WORKER_DIR` overrides the folder.
pub fn worker_exe(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("PIPE_WORKER_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pipe"));
    exe.with_file_name(name)
}

/// Engine side: runs `job` in a worker process, forwarding its events.
pub fn run_in_worker(
    exe_name: &str,
    job: &Job,
    job_file: &Path,
    events: EventSink,
    cancel: &AtomicBool,
    grant: &Grant,
) -> Result<(), StageError> {
    fsx::write(job_file, serde_json::to_vec_pretty(job).expect("jobs serialise")).map_err(|e| e.doing("write job file"))?;
    let exe = worker_exe(exe_name);
    let mut command = Command::new(&exe);
    command.arg("run").arg(job_file).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|e| {
        StageError::Failed(format!("cannot start the worker {}: {e} (build it with `cargo build`; it sits next to `pipe`)", exe.display()))
    })?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut stdin = child.stdin.take().expect("piped");
    // The worker starts at the job's threads; any raise since is sent at once.
    let mut told = job.threads.max(1);
    std::thread::scope(|s| {
        let out_reader = s.spawn(move || {
            let mut failed = None;
            // Bytes, not UTF-8 lines: one stray byte must not stop the
            // reading (the worker would block on a full pipe). A read error
            // ends it: the worker is gone.
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                match parse_line(&String::from_utf8_lossy(&line)) {
                    Line::Failed(error) => failed = Some(error),
                    Line::Event(e) => events(e),
                }
            }
            failed
        });
        let err_reader = s.spawn(move || {
            // Bytes, not a String: a native library's message need not be UTF-8.
            let mut bytes = Vec::new();
            stderr.read_to_end(&mut bytes).map(|_| String::from_utf8_lossy(&bytes).into_owned())
        });
        let status = loop {
            if cancel.load(Ordering::Relaxed) {
                stop(&mut child);
                return Err(StageError::Cancelled);
            }
            let now = grant.slots();
            if now != told {
                // A worker that has finished its parallel part may have closed stdin.
                let _ = writeln!(stdin, "{}", serde_json::to_string(&GrantLine { grant: now }).expect("grants serialise"));
                told = now;
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(StageError::Failed(format!("lost the worker process: {e}"))),
            }
        };
        let failed = out_reader.join().expect("the stdout reader does not panic");
        let err_text = err_reader.join().expect("the stderr reader does not panic");
        if status.success() {
            return Ok(());
        }
        Err(StageError::Failed(failure_message(exe_name, status, failed, err_text)))
    })
}

/// Stops a worker: SIGTERM first, so one that runs a program (a `command`
/// stage) can end the program's process group, then SIGKILL after a
/// moment. Best effort: a worker that has exited meanwhile needs nothing.
fn stop(child: &mut std::process::Child) {
    // SAFETY: kill(2) on our own child's pid, which it stays until waited for.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One line of a worker's stdout, read by the engine.
pub(crate) enum Line {
    /// The worker's last word: why it failed.
    Failed(String),
    /// Progress or a warning (a line that is not an event becomes a warning).
    Event(StageEvent),
}

pub(crate) fn parse_line(line: &str) -> Line {
    if let Ok(WorkerEvent::Failed { error, .. }) = serde_json::from_str::<WorkerEvent>(line) {
        return Line::Failed(error);
    }
    // Not an event: shown rather than dropped.
    Line::Event(event_of(line).unwrap_or_else(|| StageEvent::Warning(format!("worker: {line}"))))
}

/// A worker's JSON event line (`{"progress":{"pos":3,"len":10,"unit":"epochs"}}`,
/// `{"warning":"..."}`) as an event; `None` for any other line.
pub fn event_of(line: &str) -> Option<StageEvent> {
    match serde_json::from_str::<WorkerLine>(line).ok()? {
        WorkerLine::Progress { pos, len, unit } => Some(StageEvent::Progress { pos, len, unit }),
        WorkerLine::Warning(w) => Some(StageEvent::Warning(w)),
    }
}

/// Why a worker failed, best source first: its `failed` event, the signal
/// that ended it, the last line of its stderr.
pub(crate) fn failure_message(
    exe_name: &str,
    status: std::process::ExitStatus,
    event: Option<String>,
    stderr: std::io::Result<String>,
) -> String {
    if let Some(error) = event {
        return error;
    }
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return killed_by(exe_name, signal);
    }
    let stderr = stderr.unwrap_or_else(|e| format!("cannot read its stderr: {e}"));
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
    last.trim_start_matches("error: ").to_string()
}

/// Asks the kernel to SIGTERM the child when the thread that spawned it
/// dies (that thread waits for the child, so this happens only when the
/// engine itself is gone). SIGTERM, not SIGKILL: a worker running a
/// `command` stage's program catches it to end the program's process group
/// first; every other worker dies of it at once. If the engine died before
/// the child set it, the child sees a new parent and exits at once.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let engine = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and _exit are async-signal-safe; nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != engine {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The name of a signal a process is commonly ended by (`SIGKILL`).
pub fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        _ => return None,
    })
}

/// The message for a worker that a signal ended.
pub(crate) fn killed_by(exe_name: &str, signal: i32) -> String {
    let name = signal_name(signal).map(|n| format!(" ({n})")).unwrap_or_default();
    let why = match signal {
        libc::SIGKILL => "; out of memory? see `dmesg` (or lower batch_size, image_size or the number of images)",
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGABRT => {
            "; a crash in native code (OpenCV or libtorch): please report it with the stage's parameters"
        }
        _ => "",
    };
    format!("{exe_name} killed by signal {signal}{name}{why}")
}

/// Worker side: runs the job in this process, printing events as JSON lines.
pub fn serve(job_file: &Path, lookup: fn(&str) -> Option<kinds::RunFn>) -> Result<(), ServeError> {
    let bytes = fsx::read(job_file).map_err(ServeError::ReadJob)?;
    let job: Job = serde_json::from_slice(&bytes).map_err(|source| ServeError::NotAJob { path: job_file.to_path_buf(), source })?;
    let kind = kinds::kind(&job.kind).ok_or_else(|| ServeError::UnknownKind(job.kind.clone()))?;
    // Any worker runs the engine's own kinds (as cluster jobs, say).
    let run = match kind.process {
        kinds::Process::Engine(run) => run,
        _ => lookup(kind.name).ok_or_else(|| ServeError::NotInThisWorker(job.kind.clone()))?,
    };
    let params =
        Params::from_json(kind, &job.params).map_err(|e| ServeError::Params { path: job_file.to_path_buf(), message: e.to_string() })?;
    let inputs = job
        .inputs
        .into_iter()
        .map(|(slot, items)| {
            (slot, items.into_iter().map(|i| InputArtifact { stage: i.stage, artifact: i.artifact, dir: i.dir }).collect())
        })
        .collect();
    let events: EventSink = Arc::new(|e: StageEvent| {
        let line = match e {
            StageEvent::Progress { pos, len, unit } => WorkerLine::Progress { pos, len, unit },
            StageEvent::Warning(w) => WorkerLine::Warning(w),
            // Only the engine's executors say where a stage runs.
            StageEvent::Job(_) => return,
        };
        println!("{}", serde_json::to_string(&line).expect("events serialise"));
    });
    let cancel = Arc::new(AtomicBool::new(false));
    let grant = Grant::new(job.threads);
    follow_grants(Arc::clone(&grant));
    let mut ctx = StageContext::new(job.stage, kind, params, job.seed, inputs, job.threads, job.out_dir, events, cancel).with_grant(grant);
    ctx.command = job.command;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(job.pool.max(job.threads).max(1)).build()?;
    pool.install(|| run(&mut ctx))?;
    ctx.save_log().map_err(StageError::from)?;
    Ok(())
}

/// Worker side: [`serve`], with a panic turned into [`ServeError::Panic`]
/// (its message as the panic hook of [`worker_main`] phrased it).
fn serve_catching(job_file: &Path, lookup: fn(&str) -> Option<kinds::RunFn>) -> Result<(), ServeError> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| serve(job_file, lookup))) {
        Ok(result) => result,
        Err(_) => {
            let said = PANIC_MESSAGE.lock().unwrap_or_else(|p| p.into_inner()).take();
            Err(ServeError::Panic(said.unwrap_or_else(|| "internal error: panic".into())))
        }
    }
}

/// The last panic's message, as the hook of [`worker_main`] printed it.
static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// Worker side: the `failed` event for `error`, as one JSON line.
fn failed_line(error: &ServeError) -> String {
    let event = WorkerEvent::Failed { error: error.to_string(), kind: error.kind() };
    serde_json::to_string(&event).expect("events serialise")
}

/// Worker side: applies the grant lines the engine writes to stdin, until
/// it closes.
fn follow_grants(grant: Arc<Grant>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if let Ok(GrantLine { grant: slots }) = serde_json::from_str(&line) {
                grant.set(slots);
            }
        }
    });
}

/// What to change for the libtorch errors a user can cause with parameters.
pub fn libtorch_hint(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if m.contains("out of memory") || m.contains("can't allocate memory") || m.contains("failed to allocate") {
        Some("lower batch_size, width or hidden, or the load stage's image_size")
    } else if m.contains("cuda") || m.contains("device") {
        Some("set device = \"cpu\", or check the GPU with `pipe-torch probe`")
    } else if m.contains("shape") || m.contains("size mismatch") || m.contains("must match the size") {
        Some("the images' size or channels do not fit the network: check the load stage's image_size and color")
    } else {
        None
    }
}

/// A worker subcommand besides `run`: its name and its `main` (which reads
/// its own arguments).
pub type Subcommand<'a> = (&'a str, fn() -> i32);

/// The `main` of a worker executable: `NAME run JOB`, or one of `extra`'s
/// subcommands. Returns the exit code.
pub fn worker_main(name: &str, lookup: fn(&str) -> Option<kinds::RunFn>, extra: &[Subcommand]) -> i32 {
    // A panic inside a stage (a libtorch shape error, say) becomes one line
    // on stderr, which the engine shows as the stage's error.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.payload().downcast_ref::<String>().cloned().or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()));
        let msg = msg.unwrap_or_else(|| "panic".into());
        // libtorch errors arrive as `Torch("what\nException raised from ...")`:
        // keep what went wrong, never the C++ stack trace.
        let (what, origin) = match msg.split_once("Torch(\"") {
            Some((_, rest)) => (rest.to_string(), "libtorch"),
            None => (msg.clone(), "internal error"),
        };
        let first = what.split("\\n").next().unwrap_or_default().lines().next().unwrap_or_default().trim_end_matches(['"', ')']);
        let hint = if origin == "libtorch" { libtorch_hint(first).map(|h| format!(" ({h})")).unwrap_or_default() } else { String::new() };
        let message = format!("{origin}: {first}{hint}");
        eprintln!("error: {message}");
        *PANIC_MESSAGE.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["run", job] => match serve_catching(Path::new(job), lookup) {
            Ok(()) => 0,
            Err(e) => {
                println!("{}", failed_line(&e));
                if let ServeError::Panic(_) = e {
                    101 // the hook has printed it; the exit code of a panic, as before
                } else {
                    eprintln!("error: {e}");
                    1
                }
            }
        },
        [cmd, ..] if extra.iter().any(|(n, _)| n == cmd) => extra.iter().find(|(n, _)| n == cmd).map_or(2, |(_, f)| f()),
        _ => {
            let more: String = extra.iter().map(|(n, _)| format!(" | {name} {n}")).collect();
            eprintln!("usage: {name} run JOB.json{more}\n(`pipe run` starts this executable itself)");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    #[test]
    fn a_failed_worker_reports_a_structured_event() {
        let e = ServeError::Stage(StageError::Failed("failed because `fail = true`".into()));
        let line = failed_line(&e);
        assert_eq!(line, r#"{"event":"failed","error":"failed because `fail = true`","kind":"failed"}"#);
        let parsed: WorkerEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, WorkerEvent::Failed { error: "failed because `fail = true`".into(), kind: FailureKind::Failed });
        assert!(serde_json::from_str::<WorkerEvent>(r#"{"warning":"w"}"#).is_err(), "other lines are not failures");
        let io = ServeError::ReadJob(PathError { action: "read", path: "/j.json".into(), source: std::io::ErrorKind::NotFound.into() });
        assert_eq!(io.kind(), FailureKind::Job);
        assert!(io.to_string().starts_with("cannot read job /j.json: "), "{io}");
    }

    #[test]
    fn the_event_beats_stderr_and_a_signal_beats_stderr() {
        let exited = ExitStatus::from_raw(1 << 8);
        let stderr = || Ok("warning: x\nerror: the last line\n".to_string());
        assert_eq!(failure_message("pipe-worker", exited, Some("from the event".into()), stderr()), "from the event");
        assert_eq!(failure_message("pipe-worker", exited, None, stderr()), "the last line");
        assert!(failure_message("pipe-worker", ExitStatus::from_raw(9), None, stderr()).starts_with("pipe-worker killed by signal 9"));
        assert_eq!(failure_message("pipe-worker", exited, None, Ok(String::new())), "no message");
    }

    #[test]
    fn a_worker_killed_by_a_signal_says_so() {
        let m = killed_by("pipe-torch", 9);
        assert!(m.starts_with("pipe-torch killed by signal 9 (SIGKILL); out of memory? see `dmesg`"), "{m}");
        assert_eq!(killed_by("pipe-worker", 10), "pipe-worker killed by signal 10");
    }

    #[test]
    fn libtorch_errors_name_the_parameter_to_change() {
        let oom = "CUDA out of memory. Tried to allocate 2.00 GiB";
        assert!(libtorch_hint(oom).unwrap().contains("batch_size"));
        assert!(
            libtorch_hint("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory").unwrap().contains("batch_size")
        );
        assert!(libtorch_hint("mat1 and mat2 shapes cannot be multiplied (64x512 and 1024x128)").unwrap().contains("image_size"));
        assert!(libtorch_hint("Found no NVIDIA driver on your system").is_none());
        assert!(libtorch_hint("Expected all tensors to be on the same device").unwrap().contains("device"));
    }
}
