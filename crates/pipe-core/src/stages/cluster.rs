//! `cluster`: the visual vocabulary — k-means++ over the descriptors of the
//! **training split only** (so test images never shape the words), with a
//! seeded cap on how many descriptors are clustered.

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, Schema, SlotDef, ThreadUse, no_check};

pub static CLUSTER: KindDef = KindDef {
    name: "cluster",
    version: 1,
    summary: "k-means++ vocabulary of visual words from training descriptors",
    inputs: &[SlotDef {
        name: "features",
        accepts: &[ArtifactType::Features],
        many: false,
        required: true,
        doc: "descriptors (an extract stage)",
    }],
    output: ArtifactType::Vocabulary,
    params: Schema::untyped(
        &[
            ParamDef {
                name: "words",
                ty: ParamType::Int { min: 2, max: 100_000 },
                default: Default::Int(100),
                doc: "vocabulary size (100 in the paper)",
            },
            ParamDef {
                name: "attempts",
                ty: ParamType::Int { min: 1, max: 50 },
                default: Default::Int(3),
                doc: "k-means restarts; the most compact wins",
            },
            ParamDef {
                name: "max_iterations",
                ty: ParamType::Int { min: 1, max: 10_000 },
                default: Default::Int(100),
                doc: "iterations per attempt",
            },
            ParamDef {
                name: "epsilon",
                ty: ParamType::Float { min: 0.0, max: 1.0 },
                default: Default::Float(0.0001),
                doc: "stop when centres move less than this",
            },
            ParamDef {
                name: "sample",
                ty: ParamType::Int { min: 0, max: 100_000_000 },
                default: Default::Int(100_000),
                doc: "cluster at most this many descriptors, drawn by the seed (0: all)",
            },
        ],
        no_check,
    ),
    threads: ThreadUse::Parallel,
    estimate_seconds: 30.0,
    process: Process::Worker,
    names_inputs: false,
};
