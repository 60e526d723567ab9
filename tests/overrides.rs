//! `--set STAGE.PARAM=VALUE` end to end: a value, a sweep, the errors a
//! misspelling or a wrong type gets, and what the run record, `pipe show`
//! and `pipe diff` say of it.

mod common;
use common::{Project, REPORTED, stage_of, statuses, text, value_of};

#[test]
fn a_set_value_runs_like_an_edit_and_is_recorded_shown_and_named_by_diff() {
    let p = Project::new(REPORTED);
    let first = p.run(&[], 0);
    let plan = text(&p.pipe(&["plan", "p.toml", "-S", "b.value=6"]).stdout);
    assert!(plan.contains("--set b.value 5 → 6") && plan.contains("3 of 4 stages will run"), "{plan}");
    let set = p.run(&["--set", "b.value=6"], 0);
    assert_eq!(statuses(&set), ["a=cached", "b=ran", "report=ran", "sum=ran"]);
    assert_eq!(value_of(&p, &set, "sum"), "8");
    assert_eq!(set["overrides"], serde_json::json!(["b.value=6"]));
    let show = text(&p.pipe(&["show", set["run_id"].as_str().unwrap()]).stdout);
    assert!(show.contains("overrides: --set b.value=6"), "{show}");
    let diff = p.pipe(&["diff", first["run_id"].as_str().unwrap(), set["run_id"].as_str().unwrap()]);
    assert!(text(&diff.stdout).contains("b (test-source): --set b.value 5 → 6"), "{}{}", text(&diff.stdout), text(&diff.stderr));
    // The file is untouched: without --set, the first run's result is back, cached.
    let again = p.run(&[], 0);
    assert_eq!(stage_of(&again, "b")["key"], stage_of(&first, "b")["key"]);
}

#[test]
fn a_list_for_a_plain_parameter_sweeps_it() {
    let p = Project::new(REPORTED);
    let check = p.pipe(&["check", "p.toml", "-S", "a.value=[1, 3]"]);
    assert!(text(&check.stdout).contains("a -> 2 variants: a[value=1], a[value=3]"), "{}", text(&check.stdout));
    let record = p.run(&["-S", "a.value=[1, 3]"], 0);
    assert_eq!(statuses(&record), ["a[value=1]=ran", "a[value=3]=ran", "b=ran", "report=ran", "sum=ran"]);
    assert_eq!(value_of(&p, &record, "sum"), "9");
    let dag = p.pipe(&["dag", "p.toml", "-S", "a.value=[1, 3]"]);
    assert!(text(&dag.stdout).contains("a[value=3]"), "{}", text(&dag.stdout));
}

#[test]
fn a_misspelt_stage_or_parameter_and_a_wrong_type_are_errors_that_name_the_set() {
    let p = Project::new(REPORTED);
    let error = |set: &str| {
        let out = p.pipe(&["run", "p.toml", "-S", set]);
        assert_eq!(out.status.code(), Some(2), "{set}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    assert_eq!(error("bb.value=3").trim(), "error: in --set bb.value=3: no stage `bb` in the pipeline (did you mean `b`?)");
    let e = error("a.vlaue=3");
    assert!(
        e.starts_with("error: in --set a.vlaue=3: unknown key `vlaue` in stage `a` (kind `test-source`)") && e.contains("`value`"),
        "{e}"
    );
    let e = error("a.value=abc");
    assert!(e.starts_with("error: in --set a.value=abc: stage `a`: `value`: expected integer"), "{e}");
    let e = error("value=3");
    assert!(e.starts_with("error: in --set value=3: expected STAGE.PARAM=VALUE"), "{e}");
    assert!(p.entries().is_empty(), "nothing ran");
}
