//! Sweeps and repeats: expansion, names, inputs, seeds, and their errors
//! (snapshotted as the user reads them).

use std::path::Path;

use super::*;
use crate::spec::{Diagnostics, parse};

fn spec(source: &str) -> PipelineSpec {
    parse(Path::new("p.toml"), source).unwrap_or_else(|e| panic!("{e:?}"))
}

/// `name <- slot=input,input` per stage, in order.
fn shape(spec: &PipelineSpec) -> Vec<String> {
    spec.stages
        .iter()
        .map(|s| {
            let inputs: Vec<String> = s
                .inputs
                .iter()
                .map(|(slot, refs)| format!("{slot}={}", refs.iter().map(|r| r.stage.as_str()).collect::<Vec<_>>().join(",")))
                .collect();
            format!("{} <- {}", s.name, inputs.join(" "))
        })
        .collect()
}

fn errors(source: &str) -> String {
    let items = parse(Path::new("pipelines/t.toml"), source).expect_err("the file is broken");
    Diagnostics { file: "pipelines/t.toml".into(), source: source.into(), items }.to_string()
}

const SWEEP: &str = r#"
[stages.a]
kind = "test-source"

[stages.a.matrix]
value = [1, 2]

[stages.s]
kind = "test-scale"
input = "a"
factor = 3

[stages.t]
kind = "test-sum"
values = ["s"]
"#;

#[test]
fn a_sweep_reaches_what_consumes_it_and_a_list_input_takes_every_variant() {
    let s = spec(SWEEP);
    assert_eq!(
        shape(&s),
        [
            "a[value=1] <- ",
            "a[value=2] <- ",
            "s[value=1] <- input=a[value=1]",
            "s[value=2] <- input=a[value=2]",
            "t <- values=s[value=1],s[value=2]"
        ]
    );
    let a2 = s.stage("a[value=2]").unwrap();
    assert_eq!(a2.params.get("value"), &ParamValue::Int(2));
    assert_eq!((a2.base.as_str(), a2.variant.clone()), ("a", vec![("value".to_string(), "2".to_string())]));
    assert_eq!(s.stage("s[value=2]").unwrap().params.get("factor"), &ParamValue::Int(3), "a consumer keeps its own parameters");
}

#[test]
fn a_list_of_features_carries_each_listed_stages_variants_along() {
    let source = r#"
[stages.data]
kind = "load"
dataset = "synthetic"

[stages.hog]
kind = "hog"
images = "data"
[stages.hog.matrix]
cell = [4, 8]

[stages.colour]
kind = "colour"
images = "data"

[stages.both]
kind = "svm"
features = ["hog", "colour"]
"#;
    let s = spec(source);
    let svms: Vec<String> = shape(&s).into_iter().filter(|l| l.starts_with("both")).collect();
    assert_eq!(
        svms,
        ["both[cell=4] <- features=hog[cell=4],colour", "both[cell=8] <- features=hog[cell=8],colour"],
        "one svm per hog variant, each with the one colour stage"
    );
}

#[test]
fn an_ensemble_votes_within_a_repeat_not_across_repeats() {
    let source = r#"
[pipeline]
repeats = 2
resplit = true

[stages.data]
kind = "load"
dataset = "synthetic"

[stages.hog]
kind = "hog"
images = "data"

[stages.a]
kind = "svm"
features = "hog"

[stages.b]
kind = "svm"
features = "hog"
c = [1.0]

[stages.vote]
kind = "ensemble"
predictions = ["a", "b"]
"#;
    let votes: Vec<String> = shape(&spec(source)).into_iter().filter(|l| l.starts_with("vote")).collect();
    assert_eq!(
        votes,
        ["vote[repeat=0] <- predictions=a[repeat=0],b[repeat=0]", "vote[repeat=1] <- predictions=a[repeat=1],b[repeat=1]"],
        "each repeat's approaches are on that repeat's split"
    );
}

#[test]
fn an_evaluate_stays_one_stage_when_its_images_are_resplit() {
    let quickstart = crate::fsx::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/quickstart.toml")).unwrap();
    let s = spec(&quickstart.replace("[pipeline]\n", "[pipeline]\nrepeats = 2\nresplit = true\n"));
    let compares: Vec<&crate::spec::StageSpec> = s.stages.iter().filter(|st| st.base == "compare").collect();
    assert_eq!(compares.len(), 1, "one comparison of every variant, not one per split");
    let compare = compares[0];
    assert_eq!(compare.name, "compare");
    let images: Vec<&str> = compare.inputs.get("images").map(|r| r.iter().map(|r| r.stage.as_str()).collect()).unwrap_or_default();
    assert_eq!(images, ["augmented[repeat=0]"], "the first variant's images");
    let predictions = &compare.inputs["predictions"];
    assert!(predictions.iter().any(|r| r.stage.ends_with("[repeat=1]")), "every repeat's predictions");
}

#[test]
fn several_swept_parameters_give_the_cross_product() {
    let s = spec("[stages.a]\nkind = \"test-source\"\n[stages.a.matrix]\nvalue = [1, 2]\nitems = [3, 4, 5]\n");
    let names: Vec<&str> = s.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 6);
    assert_eq!(names[0], "a[value=1,items=3]");
    assert_eq!(names[5], "a[value=2,items=5]");
}

#[test]
fn two_sweeps_meet_as_a_cross_product_and_one_sweep_is_matched() {
    let source = r#"
[stages.a]
kind = "test-source"
[stages.a.matrix]
value = [1, 2]

[stages.s]
kind = "test-scale"
input = "a"
[stages.s.matrix]
factor = [10, 20]
"#;
    let s = spec(source);
    let names: Vec<&str> = s.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names[2..], ["s[value=1,factor=10]", "s[value=1,factor=20]", "s[value=2,factor=10]", "s[value=2,factor=20]"]);
    assert_eq!(shape(&s)[5], "s[value=2,factor=20] <- input=a[value=2]");
}

#[test]
fn repeats_derive_their_seeds_from_the_pipeline_seed() {
    let source =
        "[pipeline]\nseed = 7\n[stages.a]\nkind = \"test-source\"\n[stages.s]\nkind = \"test-scale\"\ninput = \"a\"\nrepeats = 3\n";
    let s = spec(source);
    let seeds: Vec<(String, u64)> = s.stages.iter().map(|s| (s.name.clone(), s.seed)).collect();
    assert_eq!(seeds[0], ("a".to_string(), 7), "the source is not repeated: the split stays fixed");
    assert_eq!(seeds[1], ("s[repeat=0]".to_string(), 7), "repeat 0 is the unrepeated run");
    assert_ne!(seeds[2].1, seeds[3].1);
    assert_eq!(spec(source).stages[3].seed, seeds[3].1, "derived the same way every time");
    assert_eq!(repeat_seed(7, 2), seeds[3].1);
}

#[test]
fn pipeline_repeats_repeat_the_training_kinds_and_chains_stay_matched() {
    let quickstart = crate::fsx::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/quickstart.toml")).unwrap();
    let s = spec(&quickstart.replace("[pipeline]\n", "[pipeline]\nrepeats = 2\n"));
    let names: Vec<&str> = s.stages.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"data"), "load is not repeated without resplit: {names:?}");
    assert!(names.contains(&"svm[repeat=1]") && names.contains(&"vocab[repeat=1]"), "{names:?}");
    let step2: Vec<&str> = names.iter().copied().filter(|n| n.starts_with("step2")).collect();
    assert_eq!(step2, ["step2[repeat=0]", "step2[repeat=1]"], "stage 2 of repeat K uses stage 1 of repeat K");
    assert_eq!(shape(&s).iter().find(|l| l.starts_with("step2[repeat=1]")).unwrap().matches("repeat=1").count(), 2);
    let resplit = spec(&quickstart.replace("[pipeline]\n", "[pipeline]\nrepeats = 2\nresplit = true\n"));
    assert!(resplit.stage("data[repeat=1]").is_some());
}

#[test]
fn sweep_errors_name_their_line() {
    let text = errors(
        r#"[stages.a]
kind = "test-source"
value = 4

[stages.a.matrix]
value = [1, 2]
itmes = [3]
root = []

[stages.s]
kind = "test-scale"
input = "a"
repeats = 0

[stages.s.matrix]
factor = [1, "two", 1]
"#,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn a_sweep_past_the_limit_is_an_error() {
    let values: Vec<String> = (1..=40).map(|v| v.to_string()).collect();
    let list = values.join(", ");
    let text = errors(&format!("[stages.a]\nkind = \"test-source\"\n[stages.a.matrix]\nvalue = [{list}]\nitems = [{list}]\n"));
    assert!(text.contains("past 1000 stages"), "{text}");
}

#[test]
fn a_list_whose_every_value_is_wrong_is_an_error_not_a_panic() {
    for list in [r#"["many"]"#, "[[20], [30]]", "[0.5, 1.5]", r#"[true, "x"]"#] {
        let text = errors(&format!("[stages.a]\nkind = \"test-source\"\n[stages.a.matrix]\nitems = {list}\n"));
        assert!(text.contains("pipelines/t.toml:4:") && text.contains("matrix `items`: expected integer"), "{list}: {text}");
    }
}

#[test]
fn a_huge_sweep_is_refused_before_it_is_expanded() {
    // A million values, and a product of a billion: each answered at once,
    // with the line of what is too large.
    let million = format!("[{}]", vec!["1"; 1_000_000].join(","));
    let text = errors(&format!("[stages.a]\nkind = \"test-source\"\n[stages.a.matrix]\nitems = {million}\n"));
    assert!(
        text.contains("pipelines/t.toml:4:9") && text.contains("lists 1000000 values, more than the 1000 stages"),
        "{}",
        &text[..300.min(text.len())]
    );
    let thousand = |from: i64| format!("[{}]", (from..from + 1000).map(|v| v.to_string()).collect::<Vec<_>>().join(","));
    let text = errors(&format!(
        "[stages.a]\nkind = \"test-source\"\n[stages.a.matrix]\nitems = {}\nvalue = {}\nsleep_ms = {}\n",
        thousand(1),
        thousand(1),
        thousand(0)
    ));
    assert!(text.contains("pipelines/t.toml:1:") && text.contains("past 1000 stages"), "{}", &text[..300.min(text.len())]);
}
