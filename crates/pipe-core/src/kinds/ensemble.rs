//! `ensemble`: soft voting over single-label approaches evaluated on the
//! same test images. Each approach's scores are first made a distribution
//! per image: probabilities (the CNNs' softmax) stay as they are; other
//! scores (the SVM's one-vs-rest decision values, votes plus squashed
//! confidences as scikit-learn's `decision_function_shape="ovr"`) go through
//! a softmax, so one more vote weighs e times more. The distributions are
//! averaged with `weights` (equal by default) and the prediction is the
//! class of highest average. An approach beyond the paper, named as its own
//! row in `evaluate`.

use super::params::{Default, ParamType};
use super::{ArtifactType, KindDef, Many, Schema, SlotDef};

crate::stage_params! {
    pub struct EnsembleParams {
        /// one weight per input, in order (not set: equal weights)
        weights: Option<Vec<f64>> = ParamType::FloatList { min: 0.0, max: 1000.0 } => Default::Unset,
    }
}

pub static ENSEMBLE: KindDef = KindDef {
    name: "ensemble",
    version: 2,
    summary: "soft voting: the (weighted) mean of several approaches' per-image class distributions",
    inputs: &[SlotDef {
        name: "predictions",
        accepts: &[ArtifactType::Predictions],
        // Together, not Gather: with repeats or a sweep, each variant votes
        // with the matching variants of the others (repeat K with repeat K),
        // never with every variant at once (other splits, other seeds).
        many: Many::Together,
        required: true,
        doc: "single-label approaches with scores, on the same test images and classes",
    }],
    output: ArtifactType::Predictions,
    params: Schema::of::<EnsembleParams>(),
    estimate_seconds: 2.0,
    new_images: super::NewImages::Rerun,
    ..KindDef::BASE
};
