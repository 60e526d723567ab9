//! Helpers shared by the end-to-end tests: a project folder with a
//! pipeline file, the `pipe` binary run in it, and readers of its records.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)
#![allow(dead_code)] // each test binary uses its own share of them

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The statuses of all stages of a run record, as `name=status` sorted by
/// name.
pub fn statuses(record: &Value) -> Vec<String> {
    let mut v: Vec<String> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}={}", s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}

pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new(pipeline: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, pipeline: &str) {
        std::fs::write(self.path().join("p.toml"), pipeline).unwrap();
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pipe"));
        c.args(args).current_dir(self.path()).stdin(Stdio::null());
        c
    }

    pub fn pipe(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `pipe run p.toml`, expecting `code`; returns the run record.
    pub fn run(&self, extra: &[&str], code: i32) -> Value {
        let mut args = vec!["run", "p.toml"];
        args.extend_from_slice(extra);
        let out = self.pipe(&args);
        assert_eq!(out.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
        self.last()
    }

    pub fn latest(&self) -> Value {
        let name = self.pipeline_name();
        let path = self.path().join("reports").join(name).join("latest/summary.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The newest run's record, whatever its outcome (`latest` is the newest complete one).
    pub fn last(&self) -> Value {
        let path = self.path().join("reports").join(self.pipeline_name()).join("last/summary.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    pub fn pipeline_name(&self) -> String {
        let text = std::fs::read_to_string(self.path().join("p.toml")).unwrap();
        text.lines().find_map(|l| l.strip_prefix("name = \"").map(|n| n.trim_end_matches('"').to_string())).unwrap_or_else(|| "p".into())
    }

    pub fn entries(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for shard in std::fs::read_dir(self.path().join("cache/entries")).into_iter().flatten().flatten() {
            out.extend(std::fs::read_dir(shard.path()).unwrap().flatten().map(|e| e.path()));
        }
        out
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn status_of(record: &Value, stage: &str) -> String {
    stage_of(record, stage)["status"].as_str().unwrap().to_string()
}

pub fn stage_of<'a>(record: &'a Value, stage: &str) -> &'a Value {
    record["stages"].as_array().unwrap().iter().find(|s| s["name"] == stage).unwrap_or_else(|| panic!("no stage {stage} in {record}"))
}

pub fn value_of(p: &Project, record: &Value, stage: &str) -> String {
    let key = stage_of(record, stage)["key"].as_str().unwrap();
    let path = p.path().join("cache/entries").join(&key[..2]).join(key).join("out/value.txt");
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

pub fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    wait_for_within(what, 30, cond)
}

/// [`wait_for`] with a deadline of `seconds` (a cluster job takes longer to start).
pub fn wait_for_within(what: &str, seconds: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn spawn_run(p: &Project, extra: &[&str]) -> Child {
    let mut args = vec!["run", "p.toml"];
    args.extend_from_slice(extra);
    p.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

pub fn tmp_is_busy(p: &Project) -> bool {
    std::fs::read_dir(p.path().join("cache/tmp")).map(|d| d.count() > 0).unwrap_or(false)
}

/// a, b -> sum -> report (a metrics kind, copied into the report folder).
pub const REPORTED: &str = r#"
[pipeline]
name = "reported"

[stages.a]
kind = "test-source"
value = 2

[stages.b]
kind = "test-source"
value = 5

[stages.sum]
kind = "test-sum"
values = ["a", "b"]

[stages.report]
kind = "test-metrics"
values = "sum"
"#;
