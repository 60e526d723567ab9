//! `command`: the user's own program as a stage (DVC's `cmd`, Snakemake's
//! `script:`), cached, swept, scheduled and compared like the built-in kinds.
//!
//! A command stage is written with its own keys (read by the `spec` module's
//! `command` reader): `command` (argv), `produces` (an artifact type),
//! `code` (globs whose content is part of the key), `threads`, `timeout`,
//! an `[inputs]` table of freely named slots and a `[params]` table of any
//! TOML values, which become the stage's parameters as they are (sweeps
//! address them by name). The program is started by `pipe-worker` (so the
//! Slurm executor runs it as one job like any worker stage) with
//! `PIPE_JOB` naming the job document and `PIPE_OUT` its output folder;
//! pipe validates what it wrote and publishes the same canonical files as
//! its own kinds (see `pipe_cv::kinds::command`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ArtifactType, KindDef, Schema, StageParams, ThreadUse};

/// A command stage's parameters are the user's, any TOML; the program reads
/// them from its job document, so the kind's own schema is empty.
#[derive(Debug, Clone, Deserialize)]
pub struct CommandParams {}

impl StageParams for CommandParams {
    const SCHEMA: &'static [super::ParamDef] = &[];
}

pub static COMMAND: KindDef = KindDef {
    name: "command",
    summary: "your own program as a stage (`pipe stages command` shows how): cached, swept, scheduled and compared like the built-in kinds",
    output: ArtifactType::Files,
    params: Schema::of::<CommandParams>(),
    threads: ThreadUse::Keyed,
    estimate_seconds: 30.0,
    ..KindDef::BASE
};

/// What `pipe stages command` prints: the keys of a command stage.
pub const SYNTAX: &str = r#"[stages.NAME]
kind = "command"
command = ["python3", "stages/logreg.py"]  # required: argv, run in the pipeline file's folder
produces = "predictions"                    # required: predictions | multi-label-predictions | histograms | files
code = ["stages/logreg.py", "lib/*.py"]     # files (globs, relative to the pipeline file) whose content is in the key
threads = 1                                 # slots it holds; PIPE_THREADS and OMP_NUM_THREADS say so (in the key)
timeout = "2h"                              # stopped after this long (seconds, or "90s", "30m", "2h", "1d"; not in the key)

[stages.NAME.inputs]                        # slot = stage, or a list of stages; any names
images = "data"

[stages.NAME.params]                        # any TOML values: handed to the program, part of the key
c = 1.0

[stages.NAME.matrix]                        # sweeps over params, as for every kind
c = [0.1, 1.0, 10.0]

The program gets PIPE_JOB (a JSON file: stage, params, seed, threads, each input's folder and
index CSV, out_dir) and PIPE_OUT (the folder to write into); `progress N/M` lines on stdout move
the progress bar. What it must write for each `produces`: docs/artifacts.md. A Python helper:
python/pipe_stage.py."#;

/// What a command stage may produce: the artifact types pipe can validate
/// and hand on, and `files` (cached and handed on as they are).
pub const PRODUCIBLE: &[ArtifactType] =
    &[ArtifactType::Predictions, ArtifactType::MultiLabelPredictions, ArtifactType::Histograms, ArtifactType::Files];

/// The most threads a command stage may hold.
pub const MAX_THREADS: i64 = 256;

/// A command stage's own settings, validated (its parameters are the
/// stage's [`super::Params`]). `argv`, `produces` and `threads` are part of
/// the key; the `code` files' content is too, through the key's sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The program and its arguments, run in the pipeline file's folder.
    pub argv: Vec<String>,
    pub produces: ArtifactType,
    /// Globs, relative to the pipeline file's folder.
    pub code: Vec<String>,
    /// Slots it holds; `PIPE_THREADS` and `OMP_NUM_THREADS` tell the program.
    pub threads: usize,
    /// Seconds after which the program is stopped (no part of the key).
    pub timeout_s: Option<u64>,
}

impl CommandSpec {
    /// What of the settings the key holds (besides the code's content).
    pub fn key_value(&self) -> serde_json::Value {
        serde_json::json!({ "argv": self.argv, "produces": self.produces, "threads": self.threads })
    }

    /// `python3 stages/logreg.py`, for messages.
    pub fn display(&self) -> String {
        self.argv.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect::<Vec<_>>().join(" ")
    }
}

/// What the worker needs to start the program, in its job document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandJob {
    pub argv: Vec<String>,
    pub produces: ArtifactType,
    /// The pipeline file's folder: the program's working directory.
    pub cwd: PathBuf,
    pub timeout_s: Option<u64>,
    /// Where the program's stdout and stderr are kept, also when it fails.
    pub log: PathBuf,
}

/// Whether a command stage producing this is an approach (predictions),
/// repeated by `[pipeline] repeats` like the training kinds.
pub fn is_approach(t: ArtifactType) -> bool {
    matches!(t, ArtifactType::Predictions | ArtifactType::MultiLabelPredictions)
}

/// Whether an artifact of this type has the image index (`index.parquet`,
/// `dataset.json`) that a command stage's output is checked against.
pub fn carries_index(t: ArtifactType) -> bool {
    matches!(t, ArtifactType::Images | ArtifactType::Features | ArtifactType::Histograms)
}

/// A `code` pattern that names no file, or is not a valid glob.
#[derive(Debug, thiserror::Error)]
#[error("`code` pattern `{pattern}` {problem} (relative to {})", dir.display())]
pub struct CodeError {
    pub pattern: String,
    pub problem: String,
    pub dir: PathBuf,
}

/// The files `patterns` name below `dir` (the pipeline file's folder), as
/// `(path relative to dir, path)`, sorted and each once. A pattern that
/// matches no file is an error: a typo must not leave code out of the key.
pub fn code_files(dir: &std::path::Path, patterns: &[String]) -> Result<Vec<(String, PathBuf)>, CodeError> {
    let mut out = std::collections::BTreeMap::new();
    for pattern in patterns {
        let error = |problem: String| CodeError { pattern: pattern.clone(), problem, dir: dir.to_path_buf() };
        let full = if std::path::Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { dir.join(pattern) };
        let matches = glob::glob(&full.to_string_lossy()).map_err(|e| error(format!("is not a valid glob: {}", e.msg)))?;
        let mut found = 0;
        for path in matches {
            let path = path.map_err(|e| error(format!("cannot be read: {e}")))?;
            if path.is_file() {
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
                out.insert(rel, path);
                found += 1;
            }
        }
        if found == 0 {
            return Err(error("matches no file".into()));
        }
    }
    Ok(out.into_iter().collect())
}

/// Reads a duration in seconds: a bare number of seconds, or an age as
/// `pipe gc --older-than` reads it (`"90s"`, `"30m"`, `"2h"`, `"1d"`, `"2w"`).
pub fn parse_duration(text: &str) -> Option<u64> {
    let seconds = match text.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => crate::util::parse_age(text)?.as_secs(),
    };
    (seconds > 0).then_some(seconds)
}

/// The log file name of a stage: its name with anything but letters,
/// digits and `-_.=,` made `_` (variant names carry brackets and values).
pub fn log_name(stage: &str) -> String {
    format!("{}.log", crate::util::file_safe(stage, "-_.=,"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("1d"), Some(86_400));
        for bad in ["", "h", "2 hours", "-1h", "0s", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn code_globs_name_files_once_and_a_typo_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        crate::fsx::create_dir_all(dir.path().join("stages/lib")).unwrap();
        for f in ["stages/a.py", "stages/lib/b.py", "stages/lib/c.py", "stages/lib/notes.txt"] {
            crate::fsx::write(dir.path().join(f), f).unwrap();
        }
        let names = |patterns: &[&str]| {
            let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            code_files(dir.path(), &patterns).map(|v| v.into_iter().map(|(rel, _)| rel).collect::<Vec<_>>())
        };
        assert_eq!(
            names(&["stages/a.py", "stages/lib/*.py", "stages/*/b.py"]).unwrap(),
            ["stages/a.py", "stages/lib/b.py", "stages/lib/c.py"]
        );
        assert_eq!(names(&["stages/**/*.py"]).unwrap(), ["stages/a.py", "stages/lib/b.py", "stages/lib/c.py"]);
        let e = names(&["stages/a.py", "stage/*.py"]).unwrap_err().to_string();
        assert!(e.starts_with("`code` pattern `stage/*.py` matches no file (relative to "), "{e}");
        assert!(names(&["stages/[.py"]).unwrap_err().to_string().contains("is not a valid glob"));
    }

    #[test]
    fn log_names_are_plain_file_names() {
        assert_eq!(log_name("logreg[c=0.1,repeat=1]"), "logreg_c=0.1,repeat=1_.log");
        assert_eq!(log_name("a/b"), "a_b.log");
    }

    #[test]
    fn the_key_holds_argv_produces_and_threads_only() {
        let spec = CommandSpec {
            argv: vec!["python3".into(), "s.py".into()],
            produces: ArtifactType::Predictions,
            code: vec!["s.py".into()],
            threads: 2,
            timeout_s: Some(60),
        };
        assert_eq!(spec.key_value(), serde_json::json!({"argv": ["python3", "s.py"], "produces": "predictions", "threads": 2}));
    }
}
