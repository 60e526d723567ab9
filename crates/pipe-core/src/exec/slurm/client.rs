//! The three Slurm client calls the executor makes, behind [`Scheduler`] so
//! that unit tests can script a cluster (the `fake` module): `sbatch
//! --parsable` to submit, one `squeue -t all` for every job in flight, one
//! `scancel` for many. `sacct` is never used: without slurmdbd it fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What Slurm says of one job: `RUNNING`, `TIMEOUT`, ... and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub reason: String,
}

impl JobState {
    pub fn new(state: &str, reason: &str) -> JobState {
        JobState { state: state.to_string(), reason: reason.to_string() }
    }

    /// Still queued or running: the job may yet write its exit file.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "CONFIGURING" | "RUNNING" | "COMPLETING" | "SUSPENDED" | "REQUEUED" | "RESIZING" | "SIGNALING" | "STAGE_OUT"
        )
    }
}

/// Why `sbatch` did not give a job id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// Worth another try later: the controller is busy or a submit limit is hit.
    Transient(String),
    /// The request itself is impossible or malformed: sbatch's message.
    Rejected(String),
}

/// The cluster, as the executor sees it.
pub trait Scheduler: Send + Sync {
    /// Submits `script` with `args`; returns the job id.
    fn submit(&self, script: &Path, args: &[String]) -> Result<String, SubmitError>;
    /// The states of `ids` that Slurm still knows (finished jobs are
    /// forgotten after `MinJobAge`): one call for all of them.
    fn query(&self, ids: &[String]) -> Result<BTreeMap<String, JobState>, String>;
    /// Cancels `ids`, in one call.
    fn cancel(&self, ids: &[String]) -> Result<(), String>;
}

/// The real cluster, through `sbatch`, `squeue` and `scancel` on `PATH`
/// (`SLURM_CONF` and the rest of the environment as the user set them).
pub struct SlurmCli;

impl Scheduler for SlurmCli {
    fn submit(&self, script: &Path, args: &[String]) -> Result<String, SubmitError> {
        let out = Command::new("sbatch")
            .arg("--parsable")
            .args(args)
            .arg(script)
            .output()
            .map_err(|e| SubmitError::Rejected(format!("cannot run `sbatch`: {e} (is Slurm's client installed and on PATH?)")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.status.success() {
            // `--parsable` prints `ID` or `ID;cluster`.
            let id = stdout.trim().split(';').next().unwrap_or_default().to_string();
            if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
                return Ok(id);
            }
            return Err(SubmitError::Rejected(format!("sbatch printed no job id: {}", stdout.trim())));
        }
        Err(classify_submit_error(&stderr))
    }

    fn query(&self, ids: &[String]) -> Result<BTreeMap<String, JobState>, String> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let out = Command::new("squeue")
            .args(["-h", "-t", "all", "-o", "%i|%T|%r", "-j"])
            .arg(ids.join(","))
            .output()
            .map_err(|e| format!("cannot run `squeue`: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            // squeue exits 1 when it knows none of the ids: all are gone.
            if stderr.contains("Invalid job id") {
                return Ok(BTreeMap::new());
            }
            return Err(format!("squeue failed: {}", stderr.trim()));
        }
        Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout)))
    }

    fn cancel(&self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let out = Command::new("scancel").args(ids).output().map_err(|e| format!("cannot run `scancel`: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(format!("scancel failed: {}", String::from_utf8_lossy(&out.stderr).trim())) }
    }
}

/// `ID|STATE|REASON` lines, as `squeue -o '%i|%T|%r'` prints them.
pub fn parse_squeue(text: &str) -> BTreeMap<String, JobState> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(3, '|');
            let (id, state) = (parts.next()?, parts.next()?);
            Some((id.to_string(), JobState::new(state, parts.next().unwrap_or(""))))
        })
        .collect()
}

/// sbatch's errors that pass with time (a busy controller, a submit limit)
/// against those that never will (an impossible request).
pub fn classify_submit_error(stderr: &str) -> SubmitError {
    let m = stderr.to_ascii_lowercase();
    let transient = [
        "socket timed out",
        "unable to contact slurm controller",
        "resource temporarily unavailable",
        "slurm temporarily unable",
        "maxsubmitjob",
        "submit limit",
        "job submit limit",
        "too many",
        "connection refused",
    ];
    let message: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim().trim_start_matches("sbatch: ").trim_start_matches("error: ").trim())
        .filter(|l| !l.is_empty())
        .collect();
    let message = message.join("; ");
    if transient.iter().any(|t| m.contains(t)) { SubmitError::Transient(message) } else { SubmitError::Rejected(message) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_become_states() {
        let states = parse_squeue("12|RUNNING|None\n13|PENDING|Resources\n14|TIMEOUT|TimeLimit\n");
        assert_eq!(states["12"], JobState::new("RUNNING", "None"));
        assert!(states["13"].is_active());
        assert!(!states["14"].is_active());
        assert_eq!(states.len(), 3);
    }

    #[test]
    fn busy_controllers_are_retried_and_impossible_requests_are_not() {
        assert!(matches!(
            classify_submit_error("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"),
            SubmitError::Transient(_)
        ));
        assert!(matches!(classify_submit_error("sbatch: error: QOSMaxSubmitJobPerUserLimit"), SubmitError::Transient(_)));
        let rejected = classify_submit_error(
            "sbatch: error: CPU count per node can not be satisfied\nsbatch: error: Batch job submission failed: Requested node configuration is not available",
        );
        assert!(matches!(&rejected, SubmitError::Rejected(m) if m.contains("Requested node configuration")), "{rejected:?}");
    }
}
