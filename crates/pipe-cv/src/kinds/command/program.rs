//! Running the user's program: in a process group of its own (so stopping
//! it stops everything it started), its stdout and stderr into the stage's
//! log, `progress N/M` lines and the workers' JSON event lines into the
//! progress bar, bounded by the stage's `timeout`.
//!
//! No orphans: the worker ends the program's whole group when the engine
//! stops it (SIGTERM, then SIGKILL after a moment), on Ctrl-C (SIGINT
//! reaches the engine's group, not the program's: the worker ignores it and
//! the engine stops the worker with SIGTERM), when the
//! engine dies (the worker's parent-death signal is SIGTERM, which it
//! catches while a program runs), on a timeout, and when the worker itself fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipe_core::exec::worker::event_of;
use pipe_core::kinds::StageError;
use pipe_core::kinds::context::{EventSink, StageEvent};

/// How many of the program's last stderr lines a failure shows.
pub const TAIL_LINES: usize = 12;

/// What the program did.
pub struct Finished {
    /// Every line it printed, stdout and stderr in the order they came.
    pub lines: Vec<String>,
}

/// How the program is started.
pub struct Launch<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub env: Vec<(&'static str, String)>,
    pub timeout: Option<Duration>,
    pub log: &'a Path,
}

/// The program's process group while it runs (0: none), for the signal handler.
static GROUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn end_group_and_exit(signal: libc::c_int) {
    let group = GROUP.load(Ordering::SeqCst);
    // SAFETY: kill and _exit are async-signal-safe.
    unsafe {
        if group > 0 {
            libc::kill(-group, libc::SIGKILL);
        }
        libc::_exit(128 + signal);
    }
}

/// Ends the group when dropped: whatever way the worker leaves the run.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        GROUP.store(0, Ordering::SeqCst);
        // SAFETY: kill(2) on the group the program leads; harmless if it is gone.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

/// Runs the program to its end and returns its output, or why it failed
/// (the exit status or signal, the last lines of its stderr, the log's path).
pub fn run(launch: Launch, events: EventSink) -> Result<Finished, StageError> {
    let program = &launch.argv[0];
    let shown = launch.argv.join(" ");
    if let Some(dir) = launch.log.parent() {
        pipe_core::fsx::create_dir_all(dir).map_err(StageError::Io)?;
    }
    let log = Arc::new(Mutex::new(pipe_core::fsx::create(launch.log).map_err(StageError::Io)?));
    let mut command = Command::new(program);
    command.args(&launch.argv[1..]).current_dir(launch.cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.envs(launch.env.iter().map(|(k, v)| (*k, v.as_str())));
    // SAFETY: setpgid and prctl are async-signal-safe; nothing is allocated.
    unsafe {
        command.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    guard_signals();
    let mut child = command.spawn().map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound { " (is it installed, and on PATH?)" } else { "" };
        StageError::Failed(format!("cannot start `{program}` in {}: {e}{hint}", launch.cwd.display()))
    })?;
    let group = child.id() as i32;
    GROUP.store(group, Ordering::SeqCst);
    let _guard = GroupGuard(group);
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let started = Instant::now();
    let status = std::thread::scope(|s| {
        let relay = |reader: Box<dyn std::io::Read + Send>, is_err: bool| {
            let (log, lines, tail, events) = (Arc::clone(&log), Arc::clone(&lines), Arc::clone(&tail), Arc::clone(&events));
            move || {
                for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
                    let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                    let _ = writeln!(log.lock().expect("log lock"), "{line}");
                    if let Some(event) = event_of(&line).or_else(|| progress_of(&line)) {
                        events(event);
                        continue;
                    }
                    if let Some(w) = line.strip_prefix("warning: ") {
                        events(StageEvent::Warning(w.to_string()));
                    }
                    if is_err {
                        let mut tail = tail.lock().expect("tail lock");
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line.clone());
                    }
                    lines.lock().expect("lines lock").push(line);
                }
            }
        };
        let out = s.spawn(relay(Box::new(stdout), false));
        let err = s.spawn(relay(Box::new(stderr), true));
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(StageError::Failed(format!("lost the program `{program}`: {e}"))),
            }
            if launch.timeout.is_some_and(|t| started.elapsed() >= t) {
                // SAFETY: kill(2) on the program's own group.
                unsafe { libc::kill(-group, libc::SIGKILL) };
                let _ = child.wait();
                break Err(StageError::Failed(format!(
                    "`{shown}` ran past its timeout of {} and was stopped",
                    human(launch.timeout.expect("checked"))
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // A program that left a child holding its pipes: end the group so the readers finish.
        // SAFETY: as above.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = out.join();
        let _ = err.join();
        status
    })?;
    let tail: Vec<String> = tail.lock().expect("tail lock").iter().cloned().collect();
    if !status.success() {
        let how = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}{}", signal_name(signal)),
            _ => "ended abnormally".to_string(),
        };
        return Err(StageError::Failed(failure(&shown, &how, &tail, launch.log)));
    }
    let lines = std::mem::take(&mut *lines.lock().expect("lines lock"));
    Ok(Finished { lines })
}

/// The message of a failed program: what happened, its stderr's last
/// lines, where the whole output is.
pub fn failure(shown: &str, how: &str, tail: &[String], log: &Path) -> String {
    let mut message = format!("`{shown}` {how}");
    if tail.is_empty() {
        message.push_str(" (it wrote nothing on stderr)");
    } else {
        message.push_str("; the last lines of its stderr:");
        for line in tail {
            message.push_str("\n    ");
            message.push_str(line);
        }
    }
    message.push_str(&format!("\n  its whole output: {}", log.display()));
    message
}

/// `progress N/M` (optionally followed by a unit word) as a progress event.
fn progress_of(line: &str) -> Option<StageEvent> {
    let rest = line.trim().strip_prefix("progress ")?;
    let mut words = rest.split_whitespace();
    let (pos, len) = words.next()?.split_once('/')?;
    let unit = words.next().unwrap_or("steps").to_string();
    Some(StageEvent::Progress { pos: pos.parse().ok()?, len: len.parse().ok()?, unit })
}

/// ` (SIGKILL; out of memory? see `dmesg`)`, or ` (SIGTERM)`, after the number.
fn signal_name(signal: i32) -> String {
    let hint = if signal == libc::SIGKILL { "; out of memory? see `dmesg`" } else { "" };
    pipe_core::exec::worker::signal_name(signal).map(|n| format!(" ({n}{hint})")).unwrap_or_default()
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// While a program runs, a signal that would end the worker ends the
/// program's group first. The engine's death reaches the worker as SIGTERM
/// (see `pipe_core::exec::worker`), one of these.
fn guard_signals() {
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        for signal in [libc::SIGTERM, libc::SIGHUP] {
            libc::signal(signal, end_group_and_exit as *const () as libc::sighandler_t);
        }
        // Ctrl-C reaches the engine too, which stops this worker with
        // SIGTERM and records the run as interrupted; dying of SIGINT
        // first would record the stage as failed instead.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// The program's scratch folder beside the stage's output: its job
/// document and converted indexes (not part of the output).
pub fn scratch_dir(out_dir: &Path) -> PathBuf {
    out_dir.with_extension("program")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_become_progress() {
        let p = |l: &str| progress_of(l);
        assert_eq!(p("progress 3/10"), Some(StageEvent::Progress { pos: 3, len: 10, unit: "steps".into() }));
        assert_eq!(p("progress 2/4 epochs"), Some(StageEvent::Progress { pos: 2, len: 4, unit: "epochs".into() }));
        assert_eq!(p("progress of the run"), None);
        assert_eq!(p("loss 0.3"), None);
    }

    #[test]
    fn a_failure_names_what_happened_the_tail_and_the_log() {
        let m =
            failure("python3 s.py", "exited with status 3", &["Traceback".into(), "ValueError: bad".into()], Path::new("/c/logs/s.log"));
        assert_eq!(
            m,
            "`python3 s.py` exited with status 3; the last lines of its stderr:\n    Traceback\n    ValueError: bad\n  its whole output: /c/logs/s.log"
        );
    }
}
