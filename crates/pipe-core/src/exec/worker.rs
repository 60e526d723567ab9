//! The worker protocol: one stage run = "kind + inputs + params -> output
//! folder", described by a JSON job file. The engine spawns `pipe-worker run
//! JOB` for stage kinds marked [`Process::Worker`](crate::stages::Process)
//! (those that link libtorch), reads JSON event lines from its stdout, and
//! kills it on Ctrl-C. The same job file is what a cluster scheduler will be
//! handed later.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stages::context::{EventSink, StageEvent};
use crate::stages::grant::Grant;
use crate::stages::{self, InputArtifact, Params, StageContext, StageError};
use crate::util::IoContext;

#[derive(Debug, Serialize, Deserialize)]
pub struct JobInput {
    pub stage: String,
    pub artifact: crate::stages::ArtifactType,
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
    std::fs::write(job_file, serde_json::to_vec_pretty(job).expect("jobs serialise")).at("write job file", job_file)?;
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
        s.spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<WorkerLine>(&line) {
                    Ok(WorkerLine::Progress { pos, len, unit }) => events(StageEvent::Progress { pos, len, unit }),
                    Ok(WorkerLine::Warning(w)) => events(StageEvent::Warning(w)),
                    Err(_) => events(StageEvent::Warning(format!("worker: {line}"))),
                }
            }
        });
        let err_reader = s.spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let status = loop {
            if cancel.load(Ordering::Relaxed) {
                let _ = child.kill();
                let _ = child.wait();
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
        let err_text = err_reader.join().unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Err(StageError::Failed(killed_by(exe_name, signal)));
        }
        let last = err_text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
        Err(StageError::Failed(last.trim_start_matches("error: ").to_string()))
    })
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it
/// dies (that thread waits for the child, so this happens only when the
/// engine itself is gone). If the engine died before the child set it, the
/// child sees a new parent and exits at once.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let engine = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and _exit are async-signal-safe; nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != engine {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The message for a worker that a signal ended.
fn killed_by(exe_name: &str, signal: i32) -> String {
    let name = match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        _ => "",
    };
    let name = if name.is_empty() { String::new() } else { format!(" ({name})") };
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
pub fn serve(job_file: &Path, lookup: fn(&str) -> Option<stages::RunFn>) -> Result<(), String> {
    let bytes = std::fs::read(job_file).map_err(|e| format!("cannot read job {}: {e}", job_file.display()))?;
    let job: Job = serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a job file: {e}", job_file.display()))?;
    let kind = stages::kind(&job.kind).ok_or_else(|| format!("this worker has no stage kind `{}`", job.kind))?;
    let run = lookup(kind.name).ok_or_else(|| format!("stage kind `{}` does not run in this worker", job.kind))?;
    let params = Params::from_json(kind, &job.params).map_err(|e| format!("job {}: {e}", job_file.display()))?;
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
        };
        println!("{}", serde_json::to_string(&line).expect("events serialise"));
    });
    let cancel = Arc::new(AtomicBool::new(false));
    let grant = Grant::new(job.threads);
    follow_grants(Arc::clone(&grant));
    let mut ctx = StageContext::new(job.stage, kind, params, job.seed, inputs, job.threads, job.out_dir, events, cancel).with_grant(grant);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(job.pool.max(job.threads).max(1)).build().map_err(|e| e.to_string())?;
    pool.install(|| run(&mut ctx)).map_err(|e| e.to_string())?;
    ctx.save_log().map_err(|e| e.to_string())
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
pub fn main_of(name: &str, lookup: fn(&str) -> Option<stages::RunFn>, extra: &[Subcommand]) -> i32 {
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
        eprintln!("error: {origin}: {first}{hint}");
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["run", job] => match serve(Path::new(job), lookup) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
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
    use super::{killed_by, libtorch_hint};

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
