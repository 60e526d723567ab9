//! One stage as one Slurm job: its folder, its script, its submission and
//! the wait for its end.
//!
//! The folder, `job/` beside the entry's `out/` in the cache's `tmp/`:
//! - `job.json`, `job.sh`: the worker's job and the batch script;
//! - `job-id`: written once `sbatch` answered (how a later run adopts it);
//! - `started`: touched by the script as it starts on its node;
//! - `events.jsonl`, `stderr.log`: the worker's stdout (tailed) and stderr;
//! - `slurm.log`: the script's own output (`--output`);
//! - `exit`: the exit status, written to a temporary name and renamed, by
//!   the script or by its TERM trap (143).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::SlurmExecutor;
use super::client::{JobState, SubmitError};
use super::request::JobRequest;
use crate::exec::worker::{self, Line};
use crate::fsx;
use crate::kinds::StageError;
use crate::kinds::context::{EventSink, StageEvent};
use crate::spec::resources::{format_mem, format_time};

const JOB: &str = "job.json";
const SCRIPT: &str = "job.sh";
const ID: &str = "job-id";
const STARTED: &str = "started";
const EXIT: &str = "exit";
const EVENTS: &str = "events.jsonl";
const STDERR: &str = "stderr.log";
const LOG: &str = "slurm.log";

/// How often the engine looks at a job's files (a `stat` and a read).
const LOOK: Duration = Duration::from_millis(100);

/// One stage's job, as the engine runs it.
pub struct StageJob<'a> {
    pub exec: &'a SlurmExecutor,
    /// The stage's name, for messages and the job's name.
    pub stage: &'a str,
    /// `pipe-worker` or `pipe-torch`.
    pub exe_name: &'static str,
    pub request: &'a JobRequest,
    /// Where a failed job's folder is kept (`<cache>/slurm-logs`).
    pub logs: PathBuf,
}

/// The engine's own overhead around one job, for the run record.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JobTimes {
    /// From `sbatch` to the script's `started` marker (queueing and launch).
    pub to_start: f64,
    /// From the `exit` file's write to the engine seeing it.
    pub to_notice: f64,
}

/// The job folder inside an entry being built.
pub fn job_dir(tmp: &Path) -> PathBuf {
    tmp.join("job")
}

/// The id of the job already submitted for this folder, if any.
pub fn read_id(dir: &Path) -> Option<String> {
    let text = fsx::read_to_string(dir.join(ID)).ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The job's exit status, once its `exit` file is there.
pub fn read_exit(dir: &Path) -> Option<i32> {
    fsx::read_to_string(dir.join(EXIT)).ok()?.trim().parse().ok()
}

/// Runs `job` (the worker's job, with absolute paths) as a Slurm job whose
/// folder is `job/` in `tmp`: submits it, or follows the job a killed
/// engine submitted (adopted, see [`adopt`]), until its exit file says how
/// it ended. A failed job's folder is kept under `logs`.
pub fn run(sj: &StageJob, job: &worker::Job, tmp: &Path, events: &EventSink, cancel: &AtomicBool) -> Result<JobTimes, StageError> {
    let dir = job_dir(tmp);
    let submitted = std::time::SystemTime::now();
    let id = match read_id(&dir) {
        Some(id) => id,
        None => submit(sj, job, &dir, cancel)?,
    };
    events(StageEvent::Job(format!("slurm:{id}")));
    sj.exec.track(&id);
    let result = wait(sj, &dir, &id, events, cancel);
    sj.exec.untrack(&id);
    match result {
        Ok(()) => {
            let noticed = std::time::SystemTime::now();
            let mtime = |name: &str| fsx::metadata(dir.join(name)).ok().and_then(|m| m.modified().ok());
            // Clocks of the node and of this machine may disagree a little: never negative.
            let since = |a: std::time::SystemTime, b: std::time::SystemTime| b.duration_since(a).map_or(0.0, |d| d.as_secs_f64());
            let times = JobTimes {
                to_start: mtime(STARTED).map_or(0.0, |s| since(submitted, s)),
                to_notice: mtime(EXIT).map_or(0.0, |e| since(e, noticed)),
            };
            // Not part of the entry: its files are the worker's, and logs of a success.
            fsx::remove_dir_all(&dir).map_err(|e| e.doing("remove the job folder"))?;
            Ok(times)
        }
        Err(StageError::Failed(message)) => {
            let kept = keep_log(&dir, &sj.logs, &id, sj.stage);
            Err(StageError::Failed(format!("{message} (Slurm job {id}; its log: {})", kept.display())))
        }
        Err(other) => Err(other),
    }
}

/// Moves a failed job's folder to `logs/<id>-<stage>`; where it is if that fails.
fn keep_log(dir: &Path, logs: &Path, id: &str, stage: &str) -> PathBuf {
    let to = logs.join(format!("{id}-{}", crate::util::file_safe(stage, "-_")));
    let moved = fsx::create_dir_all(logs).and_then(|_| fsx::rename(dir, &to));
    if moved.is_ok() { to } else { dir.to_path_buf() }
}

/// Writes the folder and submits, retrying `sbatch` while the cluster says
/// "later". Returns the job id, also written to `job-id`.
fn submit(sj: &StageJob, job: &worker::Job, dir: &Path, cancel: &AtomicBool) -> Result<String, StageError> {
    fsx::create_dir_all(dir)?;
    let dir = std::path::absolute(dir).map_err(|e| StageError::Failed(format!("cannot resolve {}: {e}", dir.display())))?;
    fsx::write(dir.join(JOB), serde_json::to_vec_pretty(job).expect("jobs serialise")).map_err(|e| e.doing("write job file"))?;
    let exe = worker::worker_exe(sj.exe_name);
    fsx::write(dir.join(SCRIPT), script(&exe, &dir, &sj.request.setup)).map_err(|e| e.doing("write job script"))?;
    // --no-requeue: a job whose node fails ends NODE_FAIL, which pipe names,
    // instead of going back to the queue behind pipe's back.
    let mut args = vec![
        format!("--job-name=pipe-{}", job_name(sj.stage)),
        format!("--output={}", dir.join(LOG).display()),
        "--no-requeue".to_string(),
    ];
    if let Ok(cwd) = std::env::current_dir() {
        args.push(format!("--chdir={}", cwd.display()));
    }
    args.extend(sj.request.sbatch_args());
    let mut pause = sj.exec.settings.submit_pause;
    let mut tries = 0;
    let id = loop {
        tries += 1;
        match sj.exec.client().submit(&dir.join(SCRIPT), &args) {
            Ok(id) => break id,
            // Tried again; the last try's message is the one shown.
            Err(SubmitError::Transient(_)) if tries < sj.exec.settings.submit_tries => {
                let until = Instant::now() + pause;
                while Instant::now() < until {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(StageError::Cancelled);
                    }
                    std::thread::sleep(LOOK.min(pause));
                }
                pause *= 2;
            }
            Err(SubmitError::Transient(m)) => {
                return Err(StageError::Failed(format!(
                    "sbatch kept failing ({tries} tries): {m}; is the Slurm controller up? (`scontrol ping`)"
                )));
            }
            Err(SubmitError::Rejected(m)) => {
                return Err(StageError::Failed(format!(
                    "Slurm rejected the job of stage `{}` ({}): {m}; change `[stages.{}.resources]` or `[pipeline.executor]` (`pipe plan --executor slurm` shows every request)",
                    sj.stage,
                    sj.request.describe(),
                    sj.stage
                )));
            }
        }
    };
    let tmp = dir.join("job-id.tmp");
    fsx::write(&tmp, format!("{id}\n")).and_then(|_| fsx::rename(&tmp, dir.join(ID))).map_err(|e| e.doing("record the job id"))?;
    sj.exec.submitted.fetch_add(1, Ordering::Relaxed);
    if sj.exec.cancelling() {
        // Submitted while the run was being cancelled: the one scancel missed it.
        let _ = sj.exec.client().cancel(std::slice::from_ref(&id));
    }
    Ok(id)
}

/// A Slurm job name from a stage name (variants have `[`, `=` and `,`).
fn job_name(stage: &str) -> String {
    crate::util::file_safe(stage, "-_.")
}

/// The batch script: mark the start, run the set-up lines and the worker,
/// write the exit status atomically (from a TERM trap too: scancel and time
/// limits send SIGTERM first).
pub fn script(exe: &Path, dir: &Path, setup: &[String]) -> String {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let d = q(dir);
    let mut s =
        String::from("#!/bin/bash\n# Written by pipe: one stage as one job. The engine reads `exit`, `events.jsonl` and `stderr.log`.\n");
    s.push_str(&format!("finish() {{ printf '%s\\n' \"$1\" > {d}/exit.tmp && mv -f {d}/exit.tmp {d}/{EXIT}; }}\n"));
    s.push_str("trap 'finish 143; exit 143' TERM\n");
    s.push_str(&format!("touch {d}/{STARTED}\n"));
    for line in setup {
        s.push_str(line);
        s.push('\n');
    }
    s.push_str(&format!("{} run {d}/{JOB} > {d}/{EVENTS} 2> {d}/{STDERR} < /dev/null &\n", q(exe)));
    s.push_str("wait $!\ncode=$?\nfinish $code\nexit $code\n");
    s
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Follows the new lines of `events.jsonl`.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    failed: Option<String>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail { path, offset: 0, partial: Vec::new(), failed: None }
    }

    /// Forwards the complete lines written since the last call.
    fn read(&mut self, events: &EventSink) {
        let Ok(mut file) = fsx::open(&self.path) else { return };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(n) = file.read_to_end(&mut bytes) else { return };
        self.offset += n as u64;
        self.partial.extend_from_slice(&bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if text.trim().is_empty() {
                continue;
            }
            match worker::parse_line(&text) {
                Line::Failed(e) => self.failed = Some(e),
                Line::Event(e) => events(e),
            }
        }
    }
}

/// Waits for the job's exit file, forwarding its events; explains a job
/// that ended without one by Slurm's state.
fn wait(sj: &StageJob, dir: &Path, id: &str, events: &EventSink, cancel: &AtomicBool) -> Result<(), StageError> {
    let exec = sj.exec;
    let mut tail = Tail::new(dir.join(EVENTS));
    let mut running_unstarted: Option<Instant> = None;
    // Since when Slurm has called the job ended (or forgotten it) while its exit file is missing.
    let mut ended: Option<Instant> = None;
    // Since when squeue has failed, and whether the user was told.
    let mut silent: Option<Instant> = None;
    let mut told = false;
    loop {
        tail.read(events);
        if let Some(code) = read_exit(dir) {
            tail.read(events);
            if code == 0 {
                return Ok(());
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(StageError::Cancelled);
            }
            return Err(StageError::Failed(exit_message(sj, dir, id, code, tail.failed.take())));
        }
        if cancel.load(Ordering::Relaxed) {
            exec.cancel_all();
            wait_stopped(exec, dir, id);
            return Err(StageError::Cancelled);
        }
        let state = exec.state(id, false);
        match exec.poll_error() {
            Some(e) if !told && silent.get_or_insert_with(Instant::now).elapsed() >= exec.settings.controller_patience => {
                events(StageEvent::Warning(format!(
                    "the Slurm controller does not answer ({e}); still waiting for job {id}, which Slurm keeps running meanwhile"
                )));
                told = true;
            }
            Some(_) => {}
            None => {
                if told {
                    events(StageEvent::Warning(format!("the Slurm controller answers again; job {id} goes on")));
                }
                (silent, told) = (None, false);
            }
        }
        match &state {
            Some(s) if s.is_active() => {
                ended = None;
                if s.state == "RUNNING" && !dir.join(STARTED).exists() {
                    let since = *running_unstarted.get_or_insert_with(Instant::now);
                    if since.elapsed() >= exec.settings.start_wait {
                        let _ = exec.client().cancel(&[id.to_string()]);
                        return Err(StageError::Failed(format!(
                            "Slurm said the job was RUNNING for {} s but its script never started (a node problem?): cancelled it; run again",
                            exec.settings.start_wait.as_secs()
                        )));
                    }
                } else {
                    running_unstarted = None;
                }
            }
            // squeue failed: nothing can be concluded from its silence.
            None if exec.poll_error().is_some() => ended = None,
            _ => {
                if ended.get_or_insert_with(Instant::now).elapsed() >= exec.settings.exit_wait {
                    return Err(StageError::Failed(state_message(sj, state.as_ref(), exec.settings.exit_wait)));
                }
            }
        }
        std::thread::sleep(LOOK);
    }
}

/// After the one `scancel`: waits (bounded) for the job to stop writing.
fn wait_stopped(exec: &SlurmExecutor, dir: &Path, id: &str) {
    let until = Instant::now() + exec.settings.exit_wait;
    while Instant::now() < until {
        if read_exit(dir).is_some() || exec.state(id, false).is_none_or(|s| !s.is_active()) {
            return;
        }
        std::thread::sleep(LOOK);
    }
}

/// Why a job that wrote a non-zero exit status failed: the worker's own
/// message, or for a signal, what Slurm says (a time limit sends SIGTERM).
fn exit_message(sj: &StageJob, dir: &Path, id: &str, code: i32, failed: Option<String>) -> String {
    if code > 128 {
        // Slurm marks the job a moment after the trap wrote 143.
        let until = Instant::now() + Duration::from_secs(5).min(sj.exec.settings.exit_wait);
        loop {
            let state = sj.exec.state(id, true);
            if let Some(s) = state.as_ref().filter(|s| !s.is_active() && s.state != "FAILED" && s.state != "COMPLETED") {
                return state_message(sj, Some(s), sj.exec.settings.exit_wait);
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let stderr = fsx::read_to_string(dir.join(STDERR)).map_err(std::io::Error::other);
    let status = std::os::unix::process::ExitStatusExt::from_raw(if code > 128 { code - 128 } else { code << 8 });
    worker::failure_message(sj.exe_name, status, failed, stderr)
}

/// Why a job ended without an exit file, by Slurm's state, and what to change.
fn state_message(sj: &StageJob, state: Option<&JobState>, waited: Duration) -> String {
    let r = sj.request;
    let stage = sj.stage;
    let Some(s) = state else {
        return format!(
            "the job left squeue without writing its exit file (waited {} s): is the cache folder on a filesystem the nodes share?",
            waited.as_secs()
        );
    };
    let why = match s.state.as_str() {
        "TIMEOUT" => format!("ran past its time limit ({}): raise `time` in `[stages.{stage}.resources]`", format_time(r.time_minutes)),
        "OUT_OF_MEMORY" => format!("ran out of memory ({}): raise `mem` in `[stages.{stage}.resources]`", format_mem(r.mem_mb)),
        "NODE_FAIL" => {
            "its node failed: run again (nothing was published); if it repeats, add `--exclude=NODE` to `sbatch_args`".to_string()
        }
        "BOOT_FAIL" => "its node failed to boot: run again".to_string(),
        "PREEMPTED" => "was preempted by another job: run again, or pick a partition or qos without preemption".to_string(),
        "DEADLINE" => "missed its deadline: raise `time` or drop `--deadline` from `sbatch_args`".to_string(),
        "CANCELLED" => "was cancelled outside this run (scancel, or an administrator)".to_string(),
        "COMPLETED" => format!(
            "completed, but its exit file never appeared (waited {} s): is the cache folder on a filesystem the nodes share?",
            waited.as_secs()
        ),
        other => format!("ended as {other} (reason: {}) before writing its exit status: see its log", s.reason),
    };
    format!("the Slurm job {why}")
}

/// Decides, for the half-built entry `tmp` of a killed engine, whether this
/// run follows its job: yes if the job finished well or Slurm still runs it;
/// no (and a job still queued is cancelled) if `already` another was adopted.
pub fn adopt(exec: &SlurmExecutor, tmp: &Path, already: bool) -> bool {
    let dir = job_dir(tmp);
    let Some(id) = read_id(&dir) else { return false };
    if let Some(code) = read_exit(&dir) {
        return code == 0 && !already;
    }
    exec.track(&id);
    let active = exec.state(&id, true).is_some_and(|s| s.is_active());
    exec.untrack(&id);
    if active && already {
        let _ = exec.client().cancel(&[id]);
        return false;
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_marks_its_start_and_writes_its_exit_atomically() {
        let s = script(Path::new("/opt/pipe/pipe-worker"), Path::new("/cache/tmp/k-1-0/job"), &["module load cuda".into()]);
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("trap 'finish 143; exit 143' TERM"));
        assert!(s.contains("mv -f '/cache/tmp/k-1-0/job'/exit.tmp '/cache/tmp/k-1-0/job'/exit"));
        let touch = s.find("touch").unwrap();
        assert!(touch < s.find("module load cuda").unwrap(), "started before the set-up lines");
        assert!(s.contains("'/opt/pipe/pipe-worker' run '/cache/tmp/k-1-0/job'/job.json > '/cache/tmp/k-1-0/job'/events.jsonl"));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(job_name("svm[c=1,repeat=0]"), "svm_c_1_repeat_0_");
    }
}
