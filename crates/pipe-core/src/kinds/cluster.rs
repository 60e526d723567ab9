//! `cluster`: the visual vocabulary — k-means++ over the descriptors of the
//! **training split only** (so test images never shape the words), with a
//! seeded cap on how many descriptors are clustered.

use super::params::{Default, ParamType};
use super::{ArtifactType, KindDef, Many, Schema, SlotDef, ThreadUse};

crate::stage_params! {
    pub struct ClusterParams {
        /// vocabulary size (100 in the paper)
        words: i64 = ParamType::Int { min: 2, max: 100_000 } => Default::Int(100),
        /// k-means restarts; the most compact wins
        attempts: i64 = ParamType::Int { min: 1, max: 50 } => Default::Int(3),
        /// iterations per attempt
        max_iterations: i64 = ParamType::Int { min: 1, max: 10_000 } => Default::Int(100),
        /// stop when centres move less than this
        epsilon: f64 = ParamType::Float { min: 0.0, max: 1.0 } => Default::Float(0.0001),
        /// cluster at most this many descriptors, drawn by the seed (0: all)
        sample: i64 = ParamType::Int { min: 0, max: 100_000_000 } => Default::Int(100_000),
    }
}

pub static CLUSTER: KindDef = KindDef {
    name: "cluster",
    summary: "k-means++ vocabulary of visual words from training descriptors",
    inputs: &[SlotDef {
        name: "features",
        accepts: &[ArtifactType::Features],
        many: Many::One,
        required: true,
        doc: "descriptors (an extract stage)",
    }],
    output: ArtifactType::Vocabulary,
    params: Schema::of::<ClusterParams>(),
    threads: ThreadUse::Parallel,
    estimate_seconds: 30.0,
    repeats: super::RepeatsWith::Seed,
    new_images: super::NewImages::Reuse,
    ..KindDef::BASE
};
