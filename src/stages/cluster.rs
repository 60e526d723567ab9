//! `cluster`: the visual vocabulary — k-means++ over the descriptors of the
//! **training split only** (so test images never shape the words), with a
//! seeded cap on how many descriptors are clustered.

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, SlotDef, StageContext, StageError, ThreadUse, no_check};
use crate::data::bow::{FeaturesMeta, VocabularyMeta, read_f32, read_json, write_f32, write_json};
use crate::data::dataset::Dataset;
use crate::data::decode::init_opencv;
use crate::data::rng::Rng;
use crate::data::split::Split;
use crate::data::vocab::kmeans;

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
    params: &[
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
    threads: ThreadUse::Parallel,
    estimate_seconds: 30.0,
    process: Process::Worker,
    check: no_check,
    names_inputs: false,
};

pub(super) fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    // k-means is the only work here: let OpenCV's own loops use the slots
    // granted (each sample's distances are independent, so the result does not
    // depend on the thread count).
    init_opencv(ctx.threads);
    let p = ctx.params.clone();
    let input = ctx.input("features")?.dir.clone();
    let meta: FeaturesMeta = read_json(&input.join("features.json"))?;
    let all = read_f32(&input.join("descriptors.f32"))?;
    let index = Dataset::read_index(&input).map_err(StageError::Failed)?;
    let dim = meta.dim;
    let mut rows: Vec<usize> = Vec::new(); // descriptor rows from training images
    let mut offset = 0;
    for (i, &n) in meta.counts.iter().enumerate() {
        if index[i].split == Split::Train {
            rows.extend(offset..offset + n);
        }
        offset += n;
    }
    let cap = p.int("sample") as usize;
    if cap > 0 && rows.len() > cap {
        Rng::new(ctx.seed, "cluster/sample").shuffle(&mut rows);
        rows.truncate(cap);
        rows.sort_unstable();
    }
    let words = p.int("words") as usize;
    if words > rows.len() {
        return Err(StageError::Failed(format!(
            "words = {words} is more than the {} training descriptors available: lower `words`, or extract more keypoints",
            rows.len()
        )));
    }
    let data: Vec<f32> = rows.iter().flat_map(|&r| all[r * dim..(r + 1) * dim].iter().copied()).collect();
    ctx.progress(0, 1, "clusterings");
    let (centres, compactness) =
        kmeans(&data, dim, words, p.int("attempts") as i32, p.int("max_iterations") as i32, p.float("epsilon"), ctx.seed)
            .map_err(StageError::Failed)?;
    ctx.progress(1, 1, "clusterings");
    ctx.log(format!("{words} words from {} training descriptors, compactness {compactness:.4}", rows.len()));
    let out = ctx.out_dir().to_path_buf();
    write_f32(&out.join("vocabulary.f32"), &centres)?;
    write_json(&out.join("vocabulary.json"), &VocabularyMeta { words, dim, descriptors_clustered: rows.len(), compactness })
}
