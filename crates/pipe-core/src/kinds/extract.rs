//! `extract`: keypoints and descriptors per image (KAZE by default, as in
//! the paper's section 2.1.1), in parallel with one detector per worker
//! thread. Images without keypoints are counted, reported, and kept: they
//! encode to an all-zero histogram rather than vanishing.

use super::params::{Default, ParamType};
use super::{ArtifactType, KindDef, Many, Schema, SlotDef, ThreadUse};

crate::choice! {
    /// The keypoint detector and descriptor.
    pub enum Detector { Kaze = "kaze", Akaze = "akaze", Orb = "orb", Sift = "sift" }
}

crate::choice! {
    /// kaze/akaze: the diffusivity type.
    pub enum Diffusivity { PmG1 = "pm-g1", PmG2 = "pm-g2", Weickert = "weickert", Charbonnier = "charbonnier" }
}

crate::stage_params! {
    pub struct ExtractParams {
        /// keypoint detector and descriptor
        detector: Detector = Detector::TYPE => Default::Str("kaze"),
        /// kaze/akaze: detector response threshold
        threshold: f64 = ParamType::Float { min: 0.0, max: 1.0 } => Default::Float(0.001),
        /// kaze/akaze: maximum octave evolution
        octaves: i64 = ParamType::Int { min: 1, max: 8 } => Default::Int(4),
        /// kaze/akaze: sublevels per octave
        octave_layers: i64 = ParamType::Int { min: 1, max: 8 } => Default::Int(4),
        /// kaze/akaze: diffusivity type
        diffusivity: Diffusivity = Diffusivity::TYPE => Default::Str("pm-g2"),
        /// kaze: 128-element descriptors instead of 64
        extended: bool = ParamType::Bool => Default::Bool(false),
        /// kaze: no rotation invariance (faster)
        upright: bool = ParamType::Bool => Default::Bool(false),
        /// keep the strongest this many per image (0: all)
        max_keypoints: i64 = ParamType::Int { min: 0, max: 100_000 } => Default::Int(0),
    }
}

pub static EXTRACT: KindDef = KindDef {
    name: "extract",
    summary: "KAZE (or AKAZE, ORB, SIFT) keypoints and descriptors per image",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: Many::One,
        required: true,
        doc: "the images (a load or augment stage)",
    }],
    output: ArtifactType::Features,
    params: Schema::of::<ExtractParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 55.0,
    new_images: super::NewImages::Rerun,
    ..KindDef::BASE
};
