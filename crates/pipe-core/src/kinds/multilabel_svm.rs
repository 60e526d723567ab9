//! `multilabel-svm`: the paper's multi-label task (section 2.2) with SVMs
//! instead of a CNN, beyond the paper. One binary C-SVC per label of the
//! vocabulary `load` built (one-vs-rest), on the same kernel as `svm`: one
//! RBF per input, summed (`features = ["hog", "colour"]`). Each label's
//! decision value d becomes the score 1 / (1 + e^-d) (a logistic of the
//! margin, not a calibrated probability: d = 0 is 0.5), and the decision
//! threshold is tuned on the validation split for the best F2, or fixed,
//! as `multilabel` does. Images with no label of the vocabulary take no
//! part. The training split's n x n kernel matrix is held in memory.
//!
//! Output: `predictions.*` (task "multi") for the test split and
//! `thresholds.csv`, as `multilabel`'s.

use super::multilabel::{F2Average, Tuning};
use super::params::{Default, ParamType};
use super::svm::GammaUnit;
use super::{ArtifactType, FloatOr, KindDef, Many, Schema, SlotDef, ThreadUse};

crate::stage_params! {
    pub struct MultilabelSvmParams {
        /// the SVMs' C
        c: f64 = ParamType::Float { min: 1e-6, max: 1e6 } => Default::Float(10.0),
        /// the RBF width, in gamma_unit
        gamma: f64 = ParamType::Float { min: 1e-9, max: 1e9 } => Default::Float(1.0),
        /// scale: gamma is a multiple of each input's scikit-learn gamma="scale", 1 / (values x variance of the training images)
        gamma_unit: GammaUnit = GammaUnit::TYPE => Default::Str("scale"),
        /// a label is predicted when its score reaches this; tuned on validation for the best F2, globally or per label
        threshold: FloatOr<Tuning> = ParamType::FloatOrChoice { min: 0.0, max: 1.0, choices: Tuning::WORDS } => Default::Str("tune-global"),
        /// the F2 that tuning uses (micro: the paper's; samples: the iMet challenge's)
        f2_average: F2Average = F2Average::TYPE => Default::Str("micro"),
        /// an image with no label above its threshold gets its highest-scoring one
        at_least_one: bool = ParamType::Bool => Default::Bool(true),
    }
}

pub static MULTILABEL_SVM: KindDef = KindDef {
    name: "multilabel-svm",
    version: 2,
    summary: "multi-label one-vs-rest SVMs on a sum of RBF kernels, F2-tuned threshold",
    inputs: &[SlotDef {
        name: "features",
        accepts: &[ArtifactType::Histograms],
        many: Many::Together,
        required: true,
        doc: "one or more feature stages of the same images (hog, colour, encode)",
    }],
    output: ArtifactType::MultiLabelPredictions,
    params: Schema::of::<MultilabelSvmParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 60.0,
    new_images: super::NewImages::Apply,
    ..KindDef::BASE
};
