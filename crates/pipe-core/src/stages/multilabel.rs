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

use super::cnn::TRAINING;
use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Params, Process, Schema, SlotDef, ThreadUse};

pub static MULTILABEL: KindDef = KindDef {
    name: "multilabel",
    version: 2,
    summary: "multi-label CNN: sigmoid outputs, binary cross-entropy, F2-tuned thresholds",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: false,
        required: true,
        doc: "images with label sets (a load or augment stage)",
    }],
    output: ArtifactType::MultiLabelPredictions,
    params: Schema::untyped(MULTILABEL_PARAMS, super::no_check),
    threads: ThreadUse::Keyed,
    estimate_seconds: 30.0,
    process: Process::Torch,
    names_inputs: false,
};

/// The threshold rule of a `multilabel` stage's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Fixed(f64),
    TuneGlobal,
    TunePerLabel,
}

impl Threshold {
    pub fn of(p: &Params) -> Threshold {
        match p.get("threshold") {
            super::ParamValue::Float(t) => Threshold::Fixed(*t),
            super::ParamValue::Int(t) => Threshold::Fixed(*t as f64),
            _ if p.str("threshold") == Some("tune-per-class") => Threshold::TunePerLabel,
            _ => Threshold::TuneGlobal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testutil::{defaults, with};

    #[test]
    fn threshold_reads_all_three_forms() {
        let of =
            |v: serde_json::Value| Threshold::of(&Params::from_json(&MULTILABEL, &with(defaults(&MULTILABEL), "threshold", v)).unwrap());
        assert_eq!(of("tune-global".into()), Threshold::TuneGlobal);
        assert_eq!(of(0.2.into()), Threshold::Fixed(0.2));
        assert_eq!(of(1.into()), Threshold::Fixed(1.0));
        assert_eq!(of("tune-per-class".into()), Threshold::TunePerLabel);
    }
}

const MULTILABEL_PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "threshold",
        ty: ParamType::FloatOrChoice { min: 0.0, max: 1.0, choices: &["tune-global", "tune-per-class"] },
        default: Default::Str("tune-global"),
        doc: "a label is predicted when its probability reaches this; tuned on validation for the best F2, globally or per label",
    },
    ParamDef {
        name: "f2_average",
        ty: ParamType::Choice(&["micro", "samples", "macro"]),
        default: Default::Str("micro"),
        doc: "the F2 that tuning and the training record use (micro: the paper's; samples: the iMet challenge's)",
    },
    ParamDef {
        name: "at_least_one",
        ty: ParamType::Bool,
        default: Default::Bool(true),
        doc: "an image with no label above its threshold gets its most probable one",
    },
    TRAINING[0],
    TRAINING[1],
    TRAINING[2],
    TRAINING[3],
    TRAINING[4],
    TRAINING[5],
    TRAINING[6],
    TRAINING[8],
    TRAINING[9],
    TRAINING[10],
    TRAINING[11],
    TRAINING[12],
    TRAINING[13],
    // not 14, label_smoothing: cross-entropy's
    TRAINING[15],
    TRAINING[16],
    TRAINING[17],
    TRAINING[18],
];
