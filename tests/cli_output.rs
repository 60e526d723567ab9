//! What users see, pinned: `pipe plan`, `pipe run` (output not to a
//! terminal), `pipe stages` and `pipe stages KIND`, as insta snapshots with
//! hashes, times, run ids and temporary paths filtered out. A change to any
//! of these texts shows up as a snapshot diff to review (`cargo insta review`,
//! or accept with INSTA_UPDATE=always).

mod common;

use common::{Project, text};

const PIPELINE: &str = r#"
[pipeline]
name = "snap"

[stages.a]
kind = "test-source"
value = 2

[stages.b]
kind = "test-source"
value = 5

[stages.sum]
kind = "test-sum"
values = ["a", "b"]

[stages.total]
kind = "test-sum"
values = "sum"
offset = 100
"#;

/// Both streams of a command, with what changes from run to run replaced.
fn shown(p: &Project, args: &[&str]) -> String {
    let out = p.pipe(args);
    let all = format!("$ pipe {}\n[exit {}]\n{}{}", args.join(" "), out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr));
    all.replace(&p.path().display().to_string(), "[DIR]")
}

/// Standard output only, with the exit code.
fn stdout(p: &Project, args: &[&str]) -> String {
    let out = p.pipe(args);
    format!("$ pipe {}\n[exit {}]\n{}", args.join(" "), out.status.code().unwrap_or(-1), text(&out.stdout))
        .replace(&p.path().display().to_string(), "[DIR]")
}

macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![
                (r"\b\d{8}-\d{6}(-[0-9a-f]+)?\b", "[RUN]"),
                (r"\b[0-9a-f]{8,64}\b", "[HASH]"),
                (r"\b\d+\.\d{2}\b", "[T]"),
                (r"\d+(\.\d+)? ?(s|ms|µs|MiB|KiB|B)\b", "[N]$2"),
                (r"\d+(\.\d+)?%", "[N]%"),
                (r"\d+(\.\d+)? CPU-s", "[N] CPU-s"),
                (r"\d+ cores?\b", "[N] cores"),
            ],
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

#[test]
fn plan_and_run_as_a_user_reads_them() {
    let p = Project::new(PIPELINE);
    snapshot!("plan_cold", shown(&p, &["plan", "p.toml"]));
    // One job, so the order is the scheduler's, not the machine's; the
    // progress lines on stderr carry times and are left out.
    snapshot!("run_cold", stdout(&p, &["run", "p.toml", "--jobs", "1"]));
    snapshot!("run_cached", stdout(&p, &["run", "p.toml", "--jobs", "1"]));
    p.write(&PIPELINE.replace("value = 5", "value = 6"));
    snapshot!("plan_after_an_edit", shown(&p, &["plan", "p.toml"]));
}

#[test]
fn stages_and_one_kind() {
    let p = Project::new(PIPELINE);
    let list = shown(&p, &["stages"]);
    // The list without the test-only kinds (`test-…`), which test builds add.
    let product: String = list.lines().filter(|l| !l.starts_with("test-")).map(|l| format!("{l}\n")).collect();
    // These texts are the same on every machine: no filters.
    insta::assert_snapshot!("stages", product);
    for kind in ["load", "svm", "cnn-stage1", "multilabel", "evaluate"] {
        insta::assert_snapshot!(format!("stages_{kind}"), shown(&p, &["stages", kind]));
    }
}
