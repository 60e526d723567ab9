//! `augment`: more (and more balanced) training images, the paper's first
//! two answers to imbalance (section 2.1.2), plus the class weights that are
//! its third. Only the training split changes; validation and test images
//! pass through untouched.
//!
//! Each training image gets `copies` augmented copies. With `balance =
//! "oversample"`, classes below `target` images (a number, or the `median`
//! or `max` class size after copying) get further augmented copies of their
//! own images, round-robin, until they reach it. Class weights (`balanced`:
//! n_samples / (n_classes x count), scikit-learn's formula) are computed on
//! the final training split and stored in `dataset.json` for the training
//! stages. `preview.png` shows originals beside augmentations (the paper's
//! Figure 6).

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Params, Process, Schema, SlotDef, ThreadUse};

pub static AUGMENT: KindDef = KindDef {
    name: "augment",
    version: 1,
    summary: "augments and oversamples the training split, records class weights",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: false,
        required: true,
        doc: "the images to augment (a load stage)",
    }],
    output: ArtifactType::Images,
    params: Schema::untyped(
        &[
            ParamDef {
                name: "copies",
                ty: ParamType::Int { min: 0, max: 100 },
                default: Default::Int(1),
                doc: "augmented copies of every training image",
            },
            ParamDef {
                name: "balance",
                ty: ParamType::Choice(&["none", "oversample"]),
                default: Default::Str("none"),
                doc: "oversample rare classes up to `target`",
            },
            ParamDef {
                name: "target",
                ty: ParamType::IntOrChoice { min: 1, max: 1_000_000, choices: &["median", "max"] },
                default: Default::Str("max"),
                doc: "images per class after oversampling",
            },
            ParamDef { name: "hflip", ty: ParamType::Bool, default: Default::Bool(true), doc: "mirror left-right with probability 1/2" },
            ParamDef { name: "vflip", ty: ParamType::Bool, default: Default::Bool(false), doc: "mirror top-bottom with probability 1/2" },
            ParamDef {
                name: "rotate",
                ty: ParamType::Float { min: 0.0, max: 180.0 },
                default: Default::Float(15.0),
                doc: "rotation in degrees, drawn from [-rotate, rotate]",
            },
            ParamDef {
                name: "translate",
                ty: ParamType::Float { min: 0.0, max: 0.5 },
                default: Default::Float(0.1),
                doc: "shift as a fraction of the side, per axis",
            },
            ParamDef {
                name: "zoom",
                ty: ParamType::Float { min: 0.0, max: 0.9 },
                default: Default::Float(0.1),
                doc: "scale drawn from [1 - zoom, 1 + zoom]",
            },
            ParamDef {
                name: "class_weights",
                ty: ParamType::Choice(&["balanced", "none"]),
                default: Default::Str("balanced"),
                doc: "weights recorded for the training stages",
            },
            ParamDef {
                name: "preview",
                ty: ParamType::Int { min: 0, max: 64 },
                default: Default::Int(8),
                doc: "rows of the preview sheet (original + 5 augmentations each)",
            },
        ],
        check,
    ),
    threads: ThreadUse::Elastic,
    estimate_seconds: 10.0,
    process: Process::Worker,
    names_inputs: false,
};

fn check(p: &Params) -> Vec<String> {
    if p.int("copies") == 0 && p.str("balance") == Some("none") {
        vec!["copies = 0 with balance = \"none\" adds nothing: set copies >= 1 or balance = \"oversample\"".into()]
    } else {
        Vec::new()
    }
}
