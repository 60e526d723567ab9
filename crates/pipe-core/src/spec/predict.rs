//! `pipe predict`: the pipeline that applies a trained approach to new
//! images. Each stage the approach reads is replayed on the new images or
//! used as it is, by its kind's [`NewImages`] rule:
//!
//! - `load` reads the new images' folder (`root`), decoded as the training
//!   images were (the same parameters), with its training entry as input
//!   `model` (the class names);
//! - per-image stages (features, `ensemble`) run again on the new images;
//! - trained stages (the classifiers, `encode`) run again with their
//!   training entry as input `model`, and apply it: nothing is retrained;
//! - `augment` is passed through (it changes the training split only);
//! - `cluster` (the vocabulary) is used as it is.
//!
//! The replayed stages are named `NAME@new` and keep their kind and
//! parameters, so their keys are the engine's usual ones: the new images'
//! fingerprint, the trained entries' keys, the parameters. The derived
//! spec holds the original stages too (their keys are the trained
//! entries'); [`Derived::reads`] are those the replay reads, which must be
//! cached.

use std::path::Path;

use super::{InputRef, PipelineSpec, StageSpec};
use crate::kinds::{ArtifactType, MODEL_SLOT, NewImages, ParamValue};

/// The suffix of a stage replayed on new images.
pub const NEW_SUFFIX: &str = "@new";

/// Why an approach cannot be applied to new images.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("--approach {name}: no such stage in {}{}", file.display(), nearest.as_ref().map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default())]
    NoSuchStage { name: String, file: std::path::PathBuf, nearest: Option<String> },
    #[error("--approach {name}: a `{kind}` stage does not predict classes or labels; approaches of this pipeline: {}", approaches.join(", "))]
    NotAnApproach { name: String, kind: String, approaches: Vec<String> },
    #[error(
        "--approach {approach}: it reads stage `{stage}` ({kind}), which `pipe predict` cannot replay on new images{}",
        if *command { "; a command stage's program would need its own prediction mode" } else { "" }
    )]
    Unsupported { approach: String, stage: String, kind: String, command: bool },
    #[error("--approach {approach}: stage `{stage}` reads no images to pass the new ones through")]
    NoImagesInput { approach: String, stage: String },
}

/// The derived pipeline and what it needs.
#[derive(Debug)]
pub struct Derived {
    /// The original stages the approach needs, then the replayed ones.
    pub spec: PipelineSpec,
    /// The replayed approach stage (`NAME@new`): its output is the answer.
    pub approach: String,
    /// The replayed `load` stage: its output lists the new images and the
    /// files it could not use.
    pub images: String,
    /// The original stages whose entries the replay reads (trained models,
    /// vocabularies): they must be cached.
    pub reads: Vec<String>,
}

/// The stages of `spec` whose output is predictions (the approaches).
pub fn approaches(spec: &PipelineSpec) -> Vec<String> {
    spec.stages.iter().filter(|s| is_approach(s)).map(|s| s.name.clone()).collect()
}

fn is_approach(stage: &StageSpec) -> bool {
    matches!(stage.output, ArtifactType::Predictions | ArtifactType::MultiLabelPredictions)
}

/// The pipeline that replays `approach` on the images under `images` (an
/// absolute folder).
pub fn derive(spec: &PipelineSpec, approach: &str, images: &Path) -> Result<Derived, PredictError> {
    let Some(target) = spec.stages.iter().position(|s| s.name == approach) else {
        return Err(PredictError::NoSuchStage {
            name: approach.to_string(),
            file: spec.file.clone(),
            nearest: crate::suggest::nearest(approach, spec.stages.iter().map(|s| s.name.as_str())).map(str::to_string),
        });
    };
    if !is_approach(&spec.stages[target]) {
        return Err(PredictError::NotAnApproach {
            name: approach.to_string(),
            kind: spec.stages[target].kind.name.to_string(),
            approaches: approaches(spec),
        });
    }
    let needed = spec.dag.closure(&[target]);
    // What each original stage's output is on the new images: a replayed
    // stage, or (for what is used as it is) the stage itself.
    let mut on_new: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut replayed: Vec<StageSpec> = Vec::new();
    let mut reads: Vec<String> = Vec::new();
    let mut images_stage = String::new();
    let read = |name: &str, reads: &mut Vec<String>| {
        if !reads.iter().any(|r| r == name) {
            reads.push(name.to_string());
        }
    };
    for &i in spec.dag.order.iter().filter(|&&i| needed[i]) {
        let stage = &spec.stages[i];
        let rule = if stage.command.is_some() { NewImages::Unsupported } else { stage.kind.new_images };
        let unsupported = || PredictError::Unsupported {
            approach: approach.to_string(),
            stage: stage.name.clone(),
            kind: stage.kind.name.to_string(),
            command: stage.command.is_some(),
        };
        match rule {
            NewImages::Unsupported => return Err(unsupported()),
            NewImages::Reuse => {
                read(&stage.name, &mut reads);
                on_new.insert(stage.name.clone(), stage.name.clone());
            }
            NewImages::PassThrough => {
                let Some(from) = stage.inputs.values().flatten().next() else {
                    return Err(PredictError::NoImagesInput { approach: approach.to_string(), stage: stage.name.clone() });
                };
                let through = on_new.get(&from.stage).cloned().unwrap_or_else(|| from.stage.clone());
                on_new.insert(stage.name.clone(), through);
            }
            NewImages::Read | NewImages::Rerun | NewImages::Apply => {
                let mut copy = stage.clone();
                copy.name = format!("{}{NEW_SUFFIX}", stage.name);
                copy.base = copy.name.clone();
                for refs in copy.inputs.values_mut() {
                    for r in refs.iter_mut() {
                        let to = on_new.get(&r.stage).cloned().unwrap_or_else(|| r.stage.clone());
                        if to == r.stage {
                            read(&r.stage, &mut reads);
                        }
                        r.stage = to;
                    }
                }
                if rule != NewImages::Rerun {
                    copy.inputs.insert(MODEL_SLOT.to_string(), vec![InputRef { stage: stage.name.clone(), span: stage.span.clone() }]);
                    read(&stage.name, &mut reads);
                }
                if rule == NewImages::Read {
                    copy.params.0.insert("root".to_string(), ParamValue::Str(images.display().to_string()));
                    images_stage = copy.name.clone();
                }
                on_new.insert(stage.name.clone(), copy.name.clone());
                replayed.push(copy);
            }
        }
    }
    let mut derived = spec.clone();
    derived.stages = spec.stages.iter().zip(&needed).filter(|(_, n)| **n).map(|(s, _)| s.clone()).collect();
    derived.stages.extend(replayed);
    derived.dag = super::dag::Dag::build(&derived).expect("a replay of an acyclic pipeline is acyclic");
    let approach = on_new[approach].clone();
    Ok(Derived { spec: derived, approach, images: images_stage, reads })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"
[pipeline]
name = "p"

[stages.data]
kind = "load"
dataset = "synthetic"

[stages.more]
kind = "augment"
images = "data"

[stages.kaze]
kind = "extract"
images = "data"

[stages.vocab]
kind = "cluster"
features = "kaze"

[stages.bow]
kind = "encode"
features = "kaze"
vocabulary = "vocab"

[stages.svm]
kind = "svm"
features = "bow"

[stages.cnn]
kind = "cnn-stage1"
images = "more"

[stages.vote]
kind = "ensemble"
predictions = ["svm", "cnn"]

[stages.compare]
kind = "evaluate"
predictions = ["svm", "vote"]
"#;

    fn spec() -> PipelineSpec {
        super::super::parse(Path::new("/work/p.toml"), PIPELINE).expect("valid")
    }

    fn inputs(spec: &PipelineSpec, name: &str) -> Vec<(String, Vec<String>)> {
        let s = spec.stages.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} in the derived spec"));
        s.inputs.iter().map(|(slot, refs)| (slot.clone(), refs.iter().map(|r| r.stage.clone()).collect())).collect()
    }

    fn pairs(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter().map(|(s, r)| (s.to_string(), r.iter().map(|x| x.to_string()).collect())).collect()
    }

    #[test]
    fn each_stage_is_replayed_reused_or_passed_through_by_its_kinds_rule() {
        let d = derive(&spec(), "vote", Path::new("/new")).unwrap();
        assert_eq!(d.approach, "vote@new");
        assert_eq!(d.images, "data@new");
        assert_eq!(inputs(&d.spec, "data@new"), pairs(&[("model", &["data"])]));
        let root = &d.spec.stages.iter().find(|s| s.name == "data@new").unwrap().params;
        assert_eq!(root.str("root"), Some("/new"));
        assert_eq!(inputs(&d.spec, "kaze@new"), pairs(&[("images", &["data@new"])]), "features run again, no model");
        assert_eq!(
            inputs(&d.spec, "bow@new"),
            pairs(&[("features", &["kaze@new"]), ("model", &["bow"]), ("vocabulary", &["vocab"])]),
            "the vocabulary is used as it is; encode applies its own entry"
        );
        assert_eq!(inputs(&d.spec, "svm@new"), pairs(&[("features", &["bow@new"]), ("model", &["svm"])]));
        assert_eq!(inputs(&d.spec, "cnn@new"), pairs(&[("images", &["data@new"]), ("model", &["cnn"])]), "augment passes through");
        assert_eq!(inputs(&d.spec, "vote@new"), pairs(&[("predictions", &["svm@new", "cnn@new"])]));
        assert!(!d.spec.stages.iter().any(|s| s.name == "more@new" || s.name == "compare" || s.name == "vocab@new"));
        let mut reads = d.reads.clone();
        reads.sort();
        assert_eq!(reads, ["bow", "cnn", "data", "svm", "vocab"]);
        assert_eq!(d.spec.dag.order.len(), d.spec.stages.len());
    }

    #[test]
    fn what_is_not_an_approach_or_cannot_be_replayed_is_refused_with_the_choices() {
        let err = derive(&spec(), "bow", Path::new("/new")).unwrap_err().to_string();
        assert!(err.contains("a `encode` stage does not predict") && ["svm", "cnn", "vote"].iter().all(|a| err.contains(a)), "{err}");
        let err = derive(&spec(), "vot", Path::new("/new")).unwrap_err().to_string();
        assert!(err.contains("no such stage") && err.contains("did you mean `vote`"), "{err}");
        let err = derive(&spec(), "compare", Path::new("/new")).unwrap_err().to_string();
        assert!(err.contains("does not predict"), "{err}");
    }
}
