//! `pipe --version`: the version and build profile, then the two workers
//! next to this executable (the engine runs its stages in them, see
//! `pipe_core::exec::worker::worker_exe`): whether each is there and, for
//! `pipe-torch`, whether CUDA is available (from one `pipe-torch probe`,
//! about a third of a second). Never fails: a missing or broken worker is
//! said, not an error.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipe_core::exec::worker::worker_exe;

/// How long `pipe-torch probe` may take before `--version` gives up on it.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// The text clap prints after `pipe ` for `--version` and `-V`.
pub fn text() -> String {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let worker = worker_exe("pipe-worker");
    let worker_line = if worker.is_file() {
        format!("pipe-worker: {}", worker.display())
    } else {
        format!("pipe-worker: missing (not at {}); the OpenCV stage kinds cannot run", worker.display())
    };
    format!("{} ({profile} build)\n{worker_line}\n{}", env!("CARGO_PKG_VERSION"), torch_line())
}

/// `pipe-torch: <path> (libtorch ok, CUDA: ...)`, or why not.
fn torch_line() -> String {
    let exe = worker_exe("pipe-torch");
    if !exe.is_file() {
        return format!("pipe-torch: missing (not at {}); the CNN stage kinds cannot run", exe.display());
    }
    match probe(&exe) {
        Ok(line) => match cuda_of(&line) {
            Some(cuda) => format!("pipe-torch: {} (libtorch ok, CUDA: {cuda})", exe.display()),
            None => format!("pipe-torch: {} (probe said `{line}`)", exe.display()),
        },
        Err(why) => format!("pipe-torch: {} (present, but `pipe-torch probe` failed: {why})", exe.display()),
    }
}

/// What `pipe-torch probe` printed, or why it did not succeed.
fn probe(exe: &std::path::Path) -> Result<String, String> {
    let mut child = Command::new(exe)
        .arg("probe")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > PROBE_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer in {} s", PROBE_LIMIT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let last = |t: &str| t.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_string();
    if status.success() {
        Ok(last(&out))
    } else {
        let said = if last(&err).is_empty() { last(&out) } else { last(&err) };
        Err(if said.is_empty() { status.to_string() } else { said })
    }
}

/// The CUDA part of the probe's line: `libtorch: ok (...), N threads, CUDA: yes, 1 device(s)`.
fn cuda_of(line: &str) -> Option<&str> {
    line.split_once("CUDA: ").map(|(_, cuda)| cuda.trim())
}

#[cfg(test)]
mod tests {
    use super::cuda_of;

    #[test]
    fn cuda_is_read_from_the_probe_line() {
        assert_eq!(cuda_of("libtorch: ok (1+2+3 = 6), 2 threads, CUDA: no"), Some("no"));
        assert_eq!(cuda_of("libtorch: ok (1+2+3 = 6), 8 threads, CUDA: yes, 1 device(s)"), Some("yes, 1 device(s)"));
        assert_eq!(cuda_of("something else"), None);
    }
}
