//! Spec diagnostics, snapshotted as the user reads them.

use std::path::Path;

use super::*;

fn errors(source: &str) -> String {
    let items = parse(Path::new("pipelines/t.toml"), source).expect_err("the file is broken");
    let mut text = Diagnostics { file: "pipelines/t.toml".into(), source: source.into(), items }.to_string();
    text.push('\n');
    text
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = errors(
        r#"[pipeline]
name = "demo"
sede = 3

[stages.a]
kind = "test-source"
value = "3"
items = 0

[stages.words]
kind = "test-text"

[stages.b]
kind = "test-sum"
values = ["a", "aa", "words"]
ofset = 2
mode = "fsat"

[stages.c]
kind = "test-summ"

[stages.d]
kind = "multilabell"

[stages.e]
values = "a"

[stages.f]
kind = "test-sum"
"#,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn syntax_errors_name_their_line() {
    insta::assert_snapshot!(errors("[stages.a]\nkind = \"test-source\"\nvalue = = 3\n\n[stages.a]\nkind = \"test-source\"\n"));
}

#[test]
fn an_empty_pipeline_is_an_error() {
    insta::assert_snapshot!(errors("[pipeline]\nname = \"nothing\"\n"));
}

#[test]
fn cycles_name_every_stage_on_them() {
    insta::assert_snapshot!(errors(
        r#"[stages.a]
kind = "test-sum"
values = "c"

[stages.b]
kind = "test-sum"
values = "a"

[stages.c]
kind = "test-sum"
values = ["b"]

[stages.self]
kind = "test-sum"
values = "self"

[stages.typo]
kind = "test-sum"
values = "slef"
"#
    ));
}

#[test]
fn defaults_are_filled_and_inputs_kept_in_order() {
    let spec = parse(
        Path::new("p.toml"),
        "[pipeline]\nseed = 7\n[stages.a]\nkind = \"test-source\"\n[stages.b]\nkind = \"test-source\"\n[stages.s]\nkind = \"test-sum\"\nvalues = [\"b\", \"a\"]\n",
    )
    .unwrap();
    assert_eq!(spec.name, "p");
    assert_eq!(spec.seed, 7);
    let s = spec.stage("s").unwrap();
    assert_eq!(s.params.int("offset"), 0);
    assert_eq!(s.params.str("mode"), Some("fast"));
    let names: Vec<&str> = s.inputs["values"].iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}

#[test]
fn a_file_that_is_not_utf8_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    crate::fsx::write(&path, b"[stages.a]\nkind = \"\xff\"\n").unwrap();
    match load(&path) {
        Err(LoadError::Invalid(d)) => assert!(d.to_string().contains("not valid UTF-8")),
        other => panic!("expected a diagnostic, got {other:?}"),
    }
}

#[test]
fn long_values_are_cut_in_diagnostics() {
    let long = "x".repeat(1_000_000);
    let text = errors(&format!("[pipeline]\nname = \"{long}\"\n\n[stages.a]\nkind = \"test-source\"\n"));
    assert!(text.len() < 2_000, "{} bytes of diagnostics for a 1 MB value", text.len());
    assert!(text.contains("more characters)") && text.contains(":2:8"), "{text}");
}

/// A stage's estimate, read once when the spec is validated (`StageSpec::resolved`).
#[test]
fn training_kinds_are_estimated_per_epoch() {
    let spec = parse(
        Path::new("p.toml"),
        "[stages.data]\nkind = \"load\"\ndataset = \"synthetic\"\n[stages.cnn]\nkind = \"cnn-stage1\"\nimages = \"data\"\nepochs = 8\n\
         [stages.h]\nkind = \"hog\"\nimages = \"data\"\n[stages.svm]\nkind = \"svm\"\nfeatures = \"h\"\n",
    )
    .unwrap();
    let (cnn, svm) = (spec.stage("cnn").unwrap(), spec.stage("svm").unwrap());
    assert_eq!(cnn.estimate(), 8.0 * cnn.kind.estimate_seconds);
    assert_eq!(svm.estimate(), svm.kind.estimate_seconds);
}
