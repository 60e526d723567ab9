//! `cluster`: the visual vocabulary — k-means++ over the descriptors of the
//! **training split only** (so test images never shape the words), with a
//! seeded cap on how many descriptors are clustered.

use crate::algo::decode::init_opencv;
use crate::algo::vocab::kmeans;
use pipe_core::data::bow::{FeaturesMeta, VocabularyMeta, read_f32, read_json, write_f32, write_json};
use pipe_core::data::dataset::Dataset;
use pipe_core::data::split::Split;
use pipe_core::kinds::cluster::ClusterParams;
use pipe_core::kinds::{StageContext, StageError};
use pipe_core::rng::Rng;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    // k-means is the only work here: let OpenCV's own loops use the slots
    // granted (each sample's distances are independent, so the result does not
    // depend on the thread count).
    init_opencv(ctx.threads);
    let p: ClusterParams = ctx.typed_params()?;
    let input = ctx.input("features")?.dir.clone();
    let meta: FeaturesMeta = read_json(&input.join("features.json"))?;
    let all = read_f32(&input.join("descriptors.f32"))?;
    let index = Dataset::read_index(&input).map_err(StageError::from)?;
    let dim = meta.dim;
    let mut rows: Vec<usize> = Vec::new(); // descriptor rows from training images
    let mut offset = 0;
    for (i, &n) in meta.counts.iter().enumerate() {
        if index[i].split == Split::Train {
            rows.extend(offset..offset + n);
        }
        offset += n;
    }
    let cap = p.sample as usize;
    if cap > 0 && rows.len() > cap {
        Rng::new(ctx.seed, "cluster/sample").shuffle(&mut rows);
        rows.truncate(cap);
        rows.sort_unstable();
    }
    let words = p.words as usize;
    if words > rows.len() {
        return Err(StageError::Failed(format!(
            "words = {words} is more than the {} training descriptors available: lower `words`, or extract more keypoints",
            rows.len()
        )));
    }
    let data: Vec<f32> = rows.iter().flat_map(|&r| all[r * dim..(r + 1) * dim].iter().copied()).collect();
    ctx.progress(0, 1, "clusterings");
    let (centres, compactness) =
        kmeans(&data, dim, words, p.attempts as i32, p.max_iterations as i32, p.epsilon, ctx.seed).map_err(StageError::from)?;
    ctx.progress(1, 1, "clusterings");
    ctx.log(format!("{words} words from {} training descriptors, compactness {compactness:.4}", rows.len()));
    let out = ctx.out_dir().to_path_buf();
    write_f32(&out.join("vocabulary.f32"), &centres)?;
    Ok(write_json(&out.join("vocabulary.json"), &VocabularyMeta { words, dim, descriptors_clustered: rows.len(), compactness })?)
}
