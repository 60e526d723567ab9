//! `hog`: one dense histogram-of-oriented-gradients descriptor per image
//! (see `data::hog`), written as histograms so that `svm` reads it like a
//! bag of words: the plain shape baseline beside the paper's approaches
//! ("HOG + SVM"), cheap and strong on clip art. Per-image work split over
//! the granted threads; the output does not depend on how many.

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, Schema, SlotDef, ThreadUse, no_check};

pub static HOG: KindDef = KindDef {
    name: "hog",
    version: 1,
    summary: "dense HOG descriptor per image (Dalal & Triggs), as histograms for svm",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: false,
        required: true,
        doc: "the images (a load or augment stage)",
    }],
    output: ArtifactType::Histograms,
    params: Schema::untyped(
        &[
            ParamDef { name: "cell", ty: ParamType::Int { min: 2, max: 64 }, default: Default::Int(8), doc: "cell side in pixels" },
            ParamDef {
                name: "bins",
                ty: ParamType::Int { min: 2, max: 36 },
                default: Default::Int(9),
                doc: "orientation bins over 0-180°",
            },
        ],
        no_check,
    ),
    threads: ThreadUse::Elastic,
    estimate_seconds: 5.0,
    process: Process::Worker,
    names_inputs: false,
};
