//! `lbp`: one local-binary-pattern texture descriptor per image (see
//! `data::lbp`): uniform patterns of the whole image and its quadrants,
//! written as histograms for `svm` and `multilabel-svm`. Beyond the paper:
//! the texture cue beside HOG's shape and the colour histogram.

use super::params::{Default, ParamType};
use super::{ArtifactType, JobDefaults, KindDef, Many, Process, Schema, SlotDef, ThreadUse};

crate::stage_params! {
    pub struct LbpParams {
        /// a neighbour sets its bit when at least the centre plus this many grey levels
        tolerance: f64 = ParamType::Float { min: 0.0, max: 255.0 } => Default::Float(5.0),
    }
}

pub static LBP: KindDef = KindDef {
    name: "lbp",
    version: 1,
    summary: "uniform local binary patterns per image and quadrant (texture), as histograms for svm",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: Many::One,
        required: true,
        doc: "the images (a load or augment stage)",
    }],
    output: ArtifactType::Histograms,
    params: Schema::of::<LbpParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 3.0,
    process: Process::Worker,
    names_inputs: false,
    job: JobDefaults::WORKER,
};
