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

use super::params::{Default, ParamType};
use super::{ArtifactType, IntOr, KindDef, Many, Schema, SlotDef, ThreadUse};

crate::choice! {
    /// Whether rare classes are oversampled.
    pub enum Balance { None = "none", Oversample = "oversample" }
}

crate::choice! {
    /// A class size read off the classes after copying.
    pub enum Target { Median = "median", Max = "max" }
}

crate::choice! {
    /// The class weights recorded for the training stages.
    pub enum ClassWeights { Balanced = "balanced", None = "none" }
}

crate::stage_params! {
    pub struct AugmentParams {
        /// augmented copies of every training image
        copies: i64 = ParamType::Int { min: 0, max: 100 } => Default::Int(1),
        /// oversample rare classes up to `target`
        balance: Balance = Balance::TYPE => Default::Str("none"),
        /// images per class after oversampling
        target: IntOr<Target> = ParamType::IntOrChoice { min: 1, max: 1_000_000, choices: Target::WORDS } => Default::Str("max"),
        /// mirror left-right with probability 1/2
        hflip: bool = ParamType::Bool => Default::Bool(true),
        /// mirror top-bottom with probability 1/2
        vflip: bool = ParamType::Bool => Default::Bool(false),
        /// rotation in degrees, drawn from [-rotate, rotate]
        rotate: f64 = ParamType::Float { min: 0.0, max: 180.0 } => Default::Float(15.0),
        /// shift as a fraction of the side, per axis
        translate: f64 = ParamType::Float { min: 0.0, max: 0.5 } => Default::Float(0.1),
        /// scale drawn from [1 - zoom, 1 + zoom]
        zoom: f64 = ParamType::Float { min: 0.0, max: 0.9 } => Default::Float(0.1),
        /// weights recorded for the training stages
        class_weights: ClassWeights = ClassWeights::TYPE => Default::Str("balanced"),
        /// rows of the preview sheet (original + 5 augmentations each)
        preview: i64 = ParamType::Int { min: 0, max: 64 } => Default::Int(8),
    }
    rules {
        fn check(&self) -> Vec<String> {
            if self.copies == 0 && self.balance == Balance::None {
                vec!["copies = 0 with balance = \"none\" adds nothing: set copies >= 1 or balance = \"oversample\"".into()]
            } else {
                Vec::new()
            }
        }
    }
}

pub static AUGMENT: KindDef = KindDef {
    name: "augment",
    summary: "augments and oversamples the training split, records class weights",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: Many::One,
        required: true,
        doc: "the images to augment (a load stage)",
    }],
    output: ArtifactType::Images,
    params: Schema::of::<AugmentParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 10.0,
    repeats: super::RepeatsWith::Split,
    new_images: super::NewImages::PassThrough,
    ..KindDef::BASE
};
