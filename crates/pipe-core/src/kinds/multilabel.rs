//! `multilabel`: the paper's multi-label task (section 2.2). The same
//! CNN as `cnn-stage1`, with one sigmoid output per label of the
//! vocabulary `load` built (keywords used by at least `min_label_count`
//! images) and binary cross-entropy. The decision threshold is tuned on the
//! validation split to maximise F2 (see [`crate::metrics::threshold`]), or
//! fixed. Images with no label of the vocabulary take no part. Trained in the
//! `pipe-torch` worker.
//!
//! Output: `predictions.*` (task "multi": true and predicted label sets, one
//! probability column per label) for the test split, `thresholds.csv` (the
//! threshold of each label), `history.csv` (per epoch: train and validation
//! loss, validation F2, seconds) and `model.safetensors`.

use super::cnn::Training;
use super::params::{Default, ParamType};
use super::{ArtifactType, FloatOr, JobDefaults, KindDef, Many, Process, Schema, SlotDef, ThreadUse};
use crate::metrics::Average;

crate::choice! {
    /// The words of `threshold`: tune it on the validation split.
    pub enum Tuning { Global = "tune-global", PerClass = "tune-per-class" }
}

crate::choice! {
    /// Which F2 tuning and the training record use (`f2_average`).
    pub enum F2Average { Micro = "micro", Samples = "samples", Macro = "macro" }
}

impl F2Average {
    /// The metrics' average of the same name.
    pub fn average(self) -> Average {
        match self {
            F2Average::Micro => Average::Micro,
            F2Average::Samples => Average::Samples,
            F2Average::Macro => Average::Macro,
        }
    }
}

crate::stage_params! {
    /// `multilabel`'s parameters: the decision rule, then the CNN's training.
    pub struct MultilabelParams {
        /// a label is predicted when its probability reaches this; tuned on validation for the best F2, globally or per label
        threshold: FloatOr<Tuning> = ParamType::FloatOrChoice { min: 0.0, max: 1.0, choices: Tuning::WORDS } => Default::Str("tune-global"),
        /// the F2 that tuning and the training record use (micro: the paper's; samples: the iMet challenge's)
        f2_average: F2Average = F2Average::TYPE => Default::Str("micro"),
        /// an image with no label above its threshold gets its most probable one
        at_least_one: bool = ParamType::Bool => Default::Bool(true),
        ..training: Training
    }
}

pub static MULTILABEL: KindDef = KindDef {
    name: "multilabel",
    version: 3,
    summary: "multi-label CNN: sigmoid outputs, binary cross-entropy, F2-tuned thresholds",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: Many::One,
        required: true,
        doc: "images with label sets (a load or augment stage)",
    }],
    output: ArtifactType::MultiLabelPredictions,
    params: Schema::of::<MultilabelParams>(),
    threads: ThreadUse::Keyed,
    estimate_seconds: 30.0,
    process: Process::Torch,
    job: JobDefaults::TORCH,
    repeats: super::RepeatsWith::Seed,
    new_images: super::NewImages::Apply,
    ..KindDef::BASE
};

/// The threshold rule of a `multilabel` stage's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Fixed(f64),
    TuneGlobal,
    TunePerLabel,
}

impl Threshold {
    pub fn of(p: &MultilabelParams) -> Threshold {
        Threshold::from_param(p.threshold)
    }

    /// Each label's threshold: the fixed one, or the F2-best on the
    /// validation images' `truth` and `scores`.
    pub fn thresholds(self, truth: &[Vec<usize>], scores: &[Vec<f64>], labels: usize, average: Average, at_least_one: bool) -> Vec<f64> {
        match self {
            Threshold::Fixed(t) => vec![t; labels],
            Threshold::TunePerLabel => crate::metrics::threshold::tune_per_label(truth, scores, labels, average, at_least_one),
            Threshold::TuneGlobal => vec![crate::metrics::threshold::tune_global(truth, scores, labels, average, at_least_one).0; labels],
        }
    }

    /// The rule a `threshold` parameter's value names.
    pub fn from_param(threshold: FloatOr<Tuning>) -> Threshold {
        match threshold {
            FloatOr::Float(t) => Threshold::Fixed(t),
            FloatOr::Word(Tuning::Global) => Threshold::TuneGlobal,
            FloatOr::Word(Tuning::PerClass) => Threshold::TunePerLabel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Params;
    use crate::kinds::testutil::{defaults, with};

    #[test]
    fn threshold_reads_all_three_forms() {
        let of = |v: serde_json::Value| {
            Threshold::of(&Params::from_json(&MULTILABEL, &with(defaults(&MULTILABEL), "threshold", v)).unwrap().typed().unwrap())
        };
        assert_eq!(of("tune-global".into()), Threshold::TuneGlobal);
        assert_eq!(of(0.2.into()), Threshold::Fixed(0.2));
        assert_eq!(of(1.into()), Threshold::Fixed(1.0));
        assert_eq!(of("tune-per-class".into()), Threshold::TunePerLabel);
    }
}
