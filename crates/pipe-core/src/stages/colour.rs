//! `colour`: one colour histogram per image (see `data::colour`), written as
//! histograms for `svm` and `multilabel-svm`: the colour cue that HOG's grey
//! gradients lack. Beyond the paper; on clip art, colour alone classifies
//! two images in three, and summed with HOG in one kernel it lifts both.

use super::params::{Default, ParamType};
use super::{ArtifactType, JobDefaults, KindDef, Many, Process, Schema, SlotDef, ThreadUse};

crate::stage_params! {
    pub struct ColourParams {
        /// bins per channel (levels³ bins in all)
        levels: i64 = ParamType::Int { min: 2, max: 16 } => Default::Int(4),
        /// leave out white background pixels (every channel at least 243)
        ignore_white: bool = ParamType::Bool => Default::Bool(true),
    }
}

pub static COLOUR: KindDef = KindDef {
    name: "colour",
    version: 1,
    summary: "colour histogram per image (Hellinger-mapped), as histograms for svm",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: Many::One,
        required: true,
        doc: "the images (a load or augment stage)",
    }],
    output: ArtifactType::Histograms,
    params: Schema::of::<ColourParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 2.0,
    process: Process::Worker,
    names_inputs: false,
    job: JobDefaults::WORKER,
};
