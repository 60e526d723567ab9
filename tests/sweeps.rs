//! Sweeps and repeats end to end: every variant is an ordinary cached stage,
//! so adding a value runs only the new variants, and repeats give distinct,
//! reproducible results.

mod common;

use common::{Project, stage_of, status_of, statuses, text, value_of};

const SWEEP: &str = r#"
[pipeline]
name = "sweep"

[stages.a]
kind = "test-source"
value = 2

[stages.s]
kind = "test-scale"
input = "a"

[stages.s.matrix]
factor = [10, 20]

[stages.t]
kind = "test-sum"
values = ["s"]
"#;

#[test]
fn adding_a_value_runs_only_the_new_variant_and_what_takes_every_variant() {
    let p = Project::new(SWEEP);
    let first = p.run(&[], 0);
    assert_eq!(statuses(&first), ["a=ran", "s[factor=10]=ran", "s[factor=20]=ran", "t=ran"]);
    assert_eq!(value_of(&p, &first, "s[factor=20]"), "40");
    assert_eq!(value_of(&p, &first, "t"), "60");
    p.write(&SWEEP.replace("factor = [10, 20]", "factor = [10, 20, 30]"));
    let plan = text(&p.pipe(&["plan", "p.toml"]).stdout);
    assert!(plan.contains("s[factor=30]") && plan.contains("2 of 5 stages will run"), "{plan}");
    let second = p.run(&[], 0);
    assert_eq!(statuses(&second), ["a=cached", "s[factor=10]=cached", "s[factor=20]=cached", "s[factor=30]=ran", "t=ran"]);
    assert_eq!(value_of(&p, &second, "t"), "120");
    let forced = p.run(&["--force", "s"], 0);
    assert_eq!(
        statuses(&forced),
        ["a=cached", "s[factor=10]=ran", "s[factor=20]=ran", "s[factor=30]=ran", "t=cached"],
        "a base name selects every variant"
    );
    let check = text(&p.pipe(&["check", "p.toml"]).stdout);
    assert!(check.contains("s -> 3 variants: s[factor=10], s[factor=20], s[factor=30]"), "{check}");
    let dag = text(&p.pipe(&["dag", "p.toml"]).stdout);
    assert!(dag.contains("t (test-sum) <- values=s[factor=10],s[factor=20],s[factor=30]"), "{dag}");
}

#[test]
fn repeats_are_distinct_reproducible_and_raising_them_runs_only_the_new_ones() {
    let pipeline = "[pipeline]\nname = \"rep\"\nseed = 5\n[stages.a]\nkind = \"test-source\"\n[stages.s]\nkind = \"test-scale\"\ninput = \"a\"\nrepeats = 2\n";
    let p = Project::new(pipeline);
    let first = p.run(&[], 0);
    let (r0, r1) = (value_of(&p, &first, "s[repeat=0]"), value_of(&p, &first, "s[repeat=1]"));
    assert_eq!(r0, "6", "repeat 0 runs with the pipeline seed (1 + 5)");
    assert_ne!(r0, r1, "another repeat, another seed");
    p.write(&pipeline.replace("repeats = 2", "repeats = 3"));
    let second = p.run(&[], 0);
    assert_eq!(status_of(&second, "s[repeat=1]"), "cached");
    assert_eq!(status_of(&second, "s[repeat=2]"), "ran");
    // The same pipeline and seed elsewhere give the same keys and values.
    let q = Project::new(&pipeline.replace("repeats = 2", "repeats = 3"));
    let again = q.run(&[], 0);
    assert_eq!(stage_of(&again, "s[repeat=2]")["key"], stage_of(&second, "s[repeat=2]")["key"]);
    assert_eq!(value_of(&q, &again, "s[repeat=2]"), value_of(&p, &second, "s[repeat=2]"));
}
