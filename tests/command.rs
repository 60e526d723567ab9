//! `kind = "command"` end to end: a Python program (standard library only)
//! as a stage beside a built-in approach in one report, with scikit-learn's
//! metrics; cached, re-run when its code changes, swept; and every way it can
//! fail, each leaving nothing published and no process behind.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{Project, stage_of, status_of, statuses, text, wait_for};

/// The program of the tests' command stages (standard library only).
const PROGRAM: &str = include_str!("programs/majority.py");

const PIPELINE: &str = r#"
[pipeline]
name = "custom"
seed = 3

[stages.data]
kind = "load"
dataset = "synthetic"
classes = 3
images = 90
imbalance = 3
image_size = 16

[stages.colour]
kind = "colour"
images = "data"

[stages.svm]
kind = "svm"
features = "colour"
c = [1.0]
gamma = [1.0]

[stages.majority]
kind = "command"
command = ["python3", "stages/majority.py"]
produces = "predictions"
code = ["stages/*.py"]

[stages.majority.inputs]
images = "data"

[stages.majority.params]
shift = 0

[stages.compare]
kind = "evaluate"
predictions = ["svm", "majority"]
"#;

fn project(pipeline: &str) -> Project {
    let p = Project::new(pipeline);
    std::fs::create_dir_all(p.path().join("stages")).unwrap();
    std::fs::write(p.path().join("stages/majority.py"), PROGRAM).unwrap();
    p
}

fn reason(record: &serde_json::Value, stage: &str) -> String {
    stage_of(record, stage)["reason"].as_str().unwrap_or_default().to_string()
}

/// The entry a stage's record names is in the cache.
fn published(p: &Project, record: &serde_json::Value, stage: &str) -> bool {
    let key = stage_of(record, stage)["key"].as_str().unwrap();
    p.path().join("cache/entries").join(&key[..2]).join(key).exists()
}

#[test]
fn a_command_stage_is_compared_cached_and_rerun_when_its_code_changes() {
    let p = project(PIPELINE);
    let cold = p.run(&[], 0);
    assert_eq!(statuses(&cold), ["colour=ran", "compare=ran", "data=ran", "majority=ran", "svm=ran"]);
    let run = p.path().join("reports/custom/latest");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("majority,")), "{metrics}");
    let exported = std::fs::read_to_string(run.join("predictions/majority.csv")).unwrap();
    assert!(exported.starts_with("id,source,y_true,y_pred,score_"), "{exported}");
    // The same metrics as scikit-learn's, from the exported predictions.
    let check =
        Command::new("python3").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_metrics.py")).arg(&run).output().unwrap();
    assert!(
        check.status.success(),
        "check_metrics.py (needs python3-sklearn: `make setup`):\n{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );

    let cached = p.run(&[], 0);
    assert!(statuses(&cached).iter().all(|s| s.ends_with("=cached")), "{:?}", statuses(&cached));

    // A comment in the program re-runs it, and nothing else: its output is
    // the same, so what reads it is cut off (early cutoff).
    let script = p.path().join("stages/majority.py");
    let mut code = std::fs::read_to_string(&script).unwrap();
    code.push_str("# a comment\n");
    std::fs::write(&script, code).unwrap();
    let plan = p.pipe(&["plan", "p.toml"]);
    assert!(text(&plan.stdout).contains("code stages/majority.py changed"), "{}", text(&plan.stdout));
    assert!(text(&plan.stdout).contains("runs if `majority` changes its output"), "{}", text(&plan.stdout));
    let edited = p.run(&[], 0);
    assert_eq!(statuses(&edited), ["colour=cached", "compare=cached", "data=cached", "majority=ran", "svm=cached"]);
    assert_eq!(reason(&edited, "majority"), "code stages/majority.py changed");
    assert_eq!(reason(&edited, "compare"), "cut off (input unchanged: `majority` has a new key but the same output)");
}

#[test]
fn the_example_stage_runs_through_the_python_helper() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = format!(
        "[stages.logreg]\nkind = \"command\"\ncommand = [\"python3\", \"{}\"]\nproduces = \"predictions\"\n\n[stages.logreg.inputs]\nfeatures = [\"colour\"]\n\n[stages.logreg.params]\nc = 0.1\n\n[stages.compare]",
        repo.join("pipelines/stages/logreg.py").display()
    );
    let pipeline = PIPELINE.replace("[stages.compare]", &example).replace("[\"svm\", \"majority\"]", "[\"svm\", \"majority\", \"logreg\"]");
    let p = project(&pipeline);
    let record = p.run(&[], 0);
    assert_eq!(status_of(&record, "logreg"), "ran");
    let run = p.path().join("reports/custom/latest");
    let check = Command::new("python3").arg(repo.join("scripts/check_metrics.py")).arg(&run).output().unwrap();
    assert!(check.status.success(), "{}{}", text(&check.stdout), text(&check.stderr));
    let exported = std::fs::read_to_string(run.join("predictions/logreg.csv")).unwrap();
    assert!(exported.lines().count() > 5, "{exported}");
}

#[test]
fn the_program_finds_its_files_when_pipe_runs_from_another_folder() {
    // The program runs in the pipeline file's folder; every path it is
    // given must work from there.
    let p = Project::new("");
    std::fs::create_dir_all(p.path().join("exp/stages")).unwrap();
    std::fs::write(p.path().join("exp/stages/majority.py"), PROGRAM).unwrap();
    std::fs::write(p.path().join("exp/p.toml"), PIPELINE).unwrap();
    let out = p.pipe(&["run", "exp/p.toml"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn a_sweep_over_a_program_parameter_runs_one_stage_per_value() {
    let p = project(&PIPELINE.replace("[stages.majority.params]\nshift = 0", "[stages.majority.matrix]\nshift = [0, 1]"));
    let record = p.run(&[], 0);
    assert_eq!(statuses(&record), ["colour=ran", "compare=ran", "data=ran", "majority[shift=0]=ran", "majority[shift=1]=ran", "svm=ran"]);
    let metrics = std::fs::read_to_string(p.path().join("reports/custom/latest/metrics.csv")).unwrap();
    for approach in ["majority[shift=0]", "majority[shift=1]"] {
        assert!(metrics.lines().any(|l| l.starts_with(&format!("\"{approach}\",")) || l.starts_with(&format!("{approach},"))), "{metrics}");
    }
}

/// The quick pipeline of the failure tests: the program on `data`, alone.
fn failing(mode: &str) -> Project {
    let pipeline = format!(
        r#"
[pipeline]
name = "custom"

[stages.data]
kind = "load"
dataset = "synthetic"
classes = 3
images = 60
image_size = 16

[stages.majority]
kind = "command"
command = ["python3", "stages/majority.py"]
produces = "predictions"
code = ["stages/majority.py"]
timeout = "2m"

[stages.majority.inputs]
images = "data"

[stages.majority.params]
mode = "{mode}"
pids = "pids.txt"
"#
    );
    project(&pipeline)
}

/// Runs a failing program; returns the run's output and record.
fn fail(mode: &str) -> (String, serde_json::Value, Project) {
    let p = failing(mode);
    let out = p.pipe(&["run", "p.toml"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    let record = p.last();
    assert_eq!(status_of(&record, "majority"), "failed");
    assert!(!published(&p, &record, "majority"), "nothing is published");
    (all, record, p)
}

fn error(record: &serde_json::Value) -> String {
    stage_of(record, "majority")["error"].as_str().unwrap().to_string()
}

#[test]
fn a_program_that_exits_non_zero_fails_with_its_stderr_tail_and_log() {
    let (_, record, p) = fail("exit3");
    let e = error(&record);
    assert!(e.starts_with("`python3 stages/majority.py` exited with status 3; the last lines of its stderr:"), "{e}");
    assert!(e.contains("\n    ValueError: the model diverged\n"), "{e}");
    let log = p.path().join("cache/logs/majority.log");
    assert!(e.ends_with(&format!("its whole output: {}", std::fs::canonicalize(&log).unwrap().display())), "{e}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("reading the images"));
}

#[test]
fn wrong_ids_an_unknown_class_and_a_missing_file_are_refused() {
    let (_, record, _p) = fail("wrong-ids");
    let e = error(&record);
    assert!(e.contains("finished, but its output is not usable: ") && e.contains("predictions.csv line 2, column `id`: image "), "{e}");
    assert!(e.contains(" is not one of the test images of `data`"), "{e}");
    let (_, record, _p) = fail("unknown-class");
    assert!(error(&record).contains("column `y_pred`: `zebra` is not a class of the input (classes: "), "{}", error(&record));
    let (_, record, _p) = fail("missing");
    assert!(error(&record).contains("predictions.csv (write it into $PIPE_OUT)"), "{}", error(&record));
}

#[test]
fn a_program_killed_by_a_signal_says_so() {
    let (_, record, _p) = fail("signal");
    assert!(error(&record).starts_with("`python3 stages/majority.py` was killed by signal 9 (SIGKILL"), "{}", error(&record));
}

/// The program's pid and its child's, once it has started both.
fn program_pids(p: &Project) -> Vec<i32> {
    let file = p.path().join("pids.txt");
    wait_for("the program to start", || std::fs::read_to_string(&file).is_ok_and(|t| t.ends_with('\n')));
    std::fs::read_to_string(&file).unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect()
}

fn gone(pids: &[i32]) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pids.iter().all(|&pid| unsafe { libc::kill(pid, 0) } != 0 || zombie(pid))
}

/// A zombie is dead (its parent, init, reaps it soon).
fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

#[test]
fn ctrl_c_during_the_program_leaves_no_process() {
    let p = failing("hang");
    // Ctrl-C in a terminal: SIGINT to the engine's whole process group.
    let mut run = p.cmd(&["run", "p.toml"]).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().unwrap();
    let pids = program_pids(&p);
    // SAFETY: the run leads its own group.
    unsafe { libc::kill(-(run.id() as i32), libc::SIGINT) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    wait_for("the program and its child to end", || gone(&pids));
    assert!(!published(&p, &p.last(), "majority"));
}

#[test]
fn a_killed_engine_leaves_no_process() {
    let p = failing("hang");
    let mut run = p.cmd(&["run", "p.toml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pids = program_pids(&p);
    run.kill().unwrap(); // SIGKILL: no handler of the engine runs
    run.wait().unwrap();
    wait_for("the program and its child to end", || gone(&pids));
    std::thread::sleep(Duration::from_millis(100));
    assert!(gone(&pids));
}

#[test]
fn a_program_past_its_timeout_is_stopped() {
    let p = failing("hang");
    p.write(&std::fs::read_to_string(p.path().join("p.toml")).unwrap().replace("timeout = \"2m\"", "timeout = 2"));
    let out = p.pipe(&["run", "p.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let record = p.last();
    assert!(error(&record).starts_with("`python3 stages/majority.py` ran past its timeout of 2s and was stopped"), "{}", error(&record));
    assert!(gone(&program_pids(&p)));
}

#[test]
fn control_characters_in_a_programs_output_do_not_reach_the_terminal() {
    let p = failing("exit3");
    let script = p.path().join("stages/majority.py");
    let code = std::fs::read_to_string(&script).unwrap().replace("ValueError: the model diverged", "\\x1b[2J\\x1b[31mred\\rback");
    std::fs::write(&script, code).unwrap();
    let out = p.pipe(&["run", "p.toml"]);
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!shown.contains('\u{1b}') && !shown.contains('\r'), "{shown:?}");
    assert!(shown.contains("\\u{1b}[2J\\u{1b}[31mred\\u{d}back"), "{shown}");
}

/// Writes one feature vector per image of its `images` input (standard
/// library only): the built-in `svm` takes it like any `histograms` stage.
const FEATURES: &str = r#"
import csv, json, os, struct
job = json.load(open(os.environ["PIPE_JOB"]))
images = job["inputs"]["images"][0]
rows = list(csv.DictReader(open(images["index"], newline="")))
classes = json.load(open(os.path.join(images["dir"], "dataset.json")))["classes"]
with open(os.path.join(os.environ["PIPE_OUT"], "histograms.f32"), "wb") as f:
    for r in rows:
        # One-hot of the label, plus a constant: trivially separable.
        f.write(struct.pack("<%df" % (len(classes) + 1), *([1.0 if c == r["label"] else 0.0 for c in classes] + [0.5])))
"#;

#[test]
fn histograms_from_a_program_feed_the_built_in_svm() {
    let pipeline = PIPELINE.replace(
        "[stages.svm]\nkind = \"svm\"\nfeatures = \"colour\"",
        "[stages.feats]\nkind = \"command\"\ncommand = [\"python3\", \"stages/features.py\"]\nproduces = \"histograms\"\n\n\
             [stages.feats.inputs]\nimages = \"data\"\n\n[stages.svm]\nkind = \"svm\"\nfeatures = \"feats\"",
    );
    let p = project(&pipeline);
    std::fs::write(p.path().join("stages/features.py"), FEATURES).unwrap();
    let record = p.run(&[], 0);
    assert_eq!(status_of(&record, "feats"), "ran");
    assert_eq!(status_of(&record, "svm"), "ran");
    let metrics = std::fs::read_to_string(p.path().join("reports/custom/latest/metrics.csv")).unwrap();
    let accuracy = metrics.lines().find(|l| l.starts_with("svm,single,accuracy,")).unwrap();
    assert!(accuracy.contains(",1.0,"), "the labels were the features: {accuracy}");
}
