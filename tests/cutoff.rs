//! Early cutoff end to end: a `load` parameter change that leaves its
//! output byte-identical re-runs `load` and nothing else, `pipe plan` says
//! so before and the record after; a change that alters the output re-runs
//! everything; a cut-off entry holds what a fresh run of its key computes.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Project, stage_of, statuses, text};

const PIPELINE: &str = r#"
[pipeline]
name = "cutoff"
seed = 3

[stages.data]
kind = "load"
dataset = "synthetic"
classes = 3
images = 90
image_size = 32

[stages.colour]
kind = "colour"
images = "data"

[stages.svm]
kind = "svm"
features = "colour"

[stages.compare]
kind = "evaluate"
predictions = ["svm"]
images = "data"
"#;

/// `--set` spelling of a change that no synthetic image notices.
const SAME_OUTPUT: &str = "data.max_megapixels=50";

fn reason(record: &serde_json::Value, stage: &str) -> String {
    stage_of(record, stage)["reason"].as_str().unwrap().to_string()
}

fn key(record: &serde_json::Value, stage: &str) -> String {
    stage_of(record, stage)["key"].as_str().unwrap().to_string()
}

/// Every file of every entry, by `key/path`, but the SVM's grid table
/// (its measured times differ from run to run).
fn entry_files(cache: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for shard in std::fs::read_dir(cache.join("entries")).unwrap() {
        for entry in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let entry = entry.unwrap().path();
            let key = entry.file_name().unwrap().to_string_lossy().into_owned();
            for file in walk(&entry.join("out")) {
                let rel = file.strip_prefix(entry.join("out")).unwrap().display().to_string();
                if rel != "cv.csv" {
                    out.insert(format!("{key}/{rel}"), std::fs::read(&file).unwrap());
                }
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for item in std::fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn an_unchanged_output_cuts_off_its_dependents() {
    let p = Project::new(PIPELINE);
    let first = p.run(&[], 0);
    let metrics = std::fs::read(p.path().join("reports/cutoff/latest/metrics.csv")).unwrap();

    // Before: the plan cannot know, and says what decides.
    let plan = p.pipe(&["plan", "p.toml", "-S", SAME_OUTPUT]);
    let shown = text(&plan.stdout);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    for stage in ["colour", "svm", "compare"] {
        let row = shown.lines().find(|l| l.starts_with(stage)).unwrap();
        assert!(row.ends_with("runs if `data` changes its output"), "{row}");
    }
    assert!(shown.contains("4 of 4 stages will run, 3 of them only if an upstream stage's output changes"), "{shown}");

    // The run: `data` re-runs, its output is the same, the rest is cut off.
    let out = p.pipe(&["run", "p.toml", "-S", SAME_OUTPUT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 ran, 3 cached (3 cut off: input unchanged)"), "{}", text(&out.stdout));
    let after = p.latest();
    assert_eq!(statuses(&after), ["colour=cached", "compare=cached", "data=ran", "svm=cached"]);
    assert_eq!(reason(&after, "colour"), "cut off (input unchanged: `data` has a new key but the same output)");
    assert_eq!(reason(&after, "svm"), "cut off (input unchanged: `colour` has a new key but the same output)");
    assert_eq!(reason(&after, "compare"), "cut off (input unchanged: `data`, `svm` have new keys but the same output)");
    for stage in ["data", "colour", "svm", "compare"] {
        assert_ne!(key(&first, stage), key(&after, stage), "{stage}: keys still chain on input keys");
    }
    assert_eq!(std::fs::read(p.path().join("reports/cutoff/latest/metrics.csv")).unwrap(), metrics, "the same report");

    // Their entries are published under their own keys: the next run is plainly cached.
    let again = p.run(&["-S", SAME_OUTPUT], 0);
    assert!(statuses(&again).iter().all(|s| s.ends_with("=cached")), "{:?}", statuses(&again));
    assert_eq!(reason(&again, "svm"), "unchanged");

    // One key, one result: a fresh cache computes the same bytes for those keys.
    let fresh = Project::new(PIPELINE);
    let computed = fresh.run(&["-S", SAME_OUTPUT], 0);
    assert_eq!(statuses(&computed), ["colour=ran", "compare=ran", "data=ran", "svm=ran"]);
    let (ours, theirs) = (entry_files(&p.path().join("cache")), entry_files(&fresh.path().join("cache")));
    for (file, bytes) in &theirs {
        assert_eq!(ours.get(file), Some(bytes), "{file}: a cut-off entry holds what running its key gives");
    }

    // --force is never cut off (and keeps the key, so `compare` stays cached).
    let forced = p.run(&["-S", SAME_OUTPUT, "--force", "svm"], 0);
    assert_eq!(statuses(&forced), ["colour=cached", "compare=cached", "data=cached", "svm=ran"]);
    assert_eq!(reason(&forced, "svm"), "forced");

    // The change written into the file, `pipe gc` removes the entries the
    // cut-off ones were linked from; those stay sound and cached.
    p.write(&PIPELINE.replace("image_size = 32", "image_size = 32\nmax_megapixels = 50"));
    let gc = p.pipe(&["gc", "p.toml"]);
    assert!(gc.status.success(), "{}", text(&gc.stderr));
    assert!(text(&gc.stdout).contains("removed 4"), "{}", text(&gc.stdout));
    let verify = p.pipe(&["verify"]);
    assert!(verify.status.success(), "{}{}", text(&verify.stdout), text(&verify.stderr));
    let kept = p.run(&[], 0);
    assert!(statuses(&kept).iter().all(|s| s.ends_with("=cached")), "{:?}", statuses(&kept));
    assert_eq!(std::fs::read(p.path().join("reports/cutoff/latest/metrics.csv")).unwrap(), metrics);
}

#[test]
fn a_changed_output_runs_everything_downstream() {
    let p = Project::new(PIPELINE);
    p.run(&[], 0);
    let plan = p.pipe(&["plan", "p.toml", "-S", "data.images=120"]);
    assert!(text(&plan.stdout).contains("3 of them only if"), "{}", text(&plan.stdout));
    let after = p.run(&["-S", "data.images=120"], 0);
    assert_eq!(statuses(&after), ["colour=ran", "compare=ran", "data=ran", "svm=ran"]);
    assert_eq!(reason(&after, "colour"), "input data changed (images)");
}

#[test]
fn a_parameter_change_of_the_stage_itself_is_not_conditional() {
    let p = Project::new(PIPELINE);
    p.run(&[], 0);
    let plan = p.pipe(&["plan", "p.toml", "-S", SAME_OUTPUT, "-S", "svm.c=[1.0]"]);
    let shown = text(&plan.stdout);
    let svm = shown.lines().find(|l| l.starts_with("svm")).unwrap();
    assert!(!svm.contains("runs if"), "svm runs for a reason of its own: {svm}");
    let compare = shown.lines().find(|l| l.starts_with("compare")).unwrap();
    assert!(compare.ends_with("runs if `data` or `svm` change their output"), "{compare}");
}
