//! `extract`: keypoints and descriptors per image (KAZE by default, as in
//! the paper's section 2.1.1), in parallel with one detector per worker
//! thread. Images without keypoints are counted, reported, and kept: they
//! encode to an all-zero histogram rather than vanishing.

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, Schema, SlotDef, ThreadUse, no_check};

pub static EXTRACT: KindDef = KindDef {
    name: "extract",
    version: 1,
    summary: "KAZE (or AKAZE, ORB, SIFT) keypoints and descriptors per image",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: false,
        required: true,
        doc: "the images (a load or augment stage)",
    }],
    output: ArtifactType::Features,
    params: Schema::untyped(
        &[
            ParamDef {
                name: "detector",
                ty: ParamType::Choice(&["kaze", "akaze", "orb", "sift"]),
                default: Default::Str("kaze"),
                doc: "keypoint detector and descriptor",
            },
            ParamDef {
                name: "threshold",
                ty: ParamType::Float { min: 0.0, max: 1.0 },
                default: Default::Float(0.001),
                doc: "kaze/akaze: detector response threshold",
            },
            ParamDef {
                name: "octaves",
                ty: ParamType::Int { min: 1, max: 8 },
                default: Default::Int(4),
                doc: "kaze/akaze: maximum octave evolution",
            },
            ParamDef {
                name: "octave_layers",
                ty: ParamType::Int { min: 1, max: 8 },
                default: Default::Int(4),
                doc: "kaze/akaze: sublevels per octave",
            },
            ParamDef {
                name: "diffusivity",
                ty: ParamType::Choice(&["pm-g1", "pm-g2", "weickert", "charbonnier"]),
                default: Default::Str("pm-g2"),
                doc: "kaze/akaze: diffusivity type",
            },
            ParamDef {
                name: "extended",
                ty: ParamType::Bool,
                default: Default::Bool(false),
                doc: "kaze: 128-element descriptors instead of 64",
            },
            ParamDef { name: "upright", ty: ParamType::Bool, default: Default::Bool(false), doc: "kaze: no rotation invariance (faster)" },
            ParamDef {
                name: "max_keypoints",
                ty: ParamType::Int { min: 0, max: 100_000 },
                default: Default::Int(0),
                doc: "keep the strongest this many per image (0: all)",
            },
        ],
        no_check,
    ),
    threads: ThreadUse::Elastic,
    estimate_seconds: 55.0,
    process: Process::Worker,
    names_inputs: false,
};
