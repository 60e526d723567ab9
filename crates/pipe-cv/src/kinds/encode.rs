//! `encode`: one bag-of-words histogram per image. Each descriptor goes to
//! its nearest visual word — with FLANN as in the paper (approximate,
//! randomised kd-trees, one index built once) or an exact brute-force
//! search — and counts are normalised as OpenCV's BOWImgDescriptorExtractor
//! does (divided by the image's number of descriptors), or by L2 norm, or
//! re-weighted by tf-idf (idf from the training split; under `pipe
//! predict`, from the training run's entry).

use rayon::prelude::*;

use crate::algo::decode::init_opencv;
use crate::algo::vocab::Flann;
use pipe_core::data::bow::{
    FeaturesMeta, HistogramsMeta, VocabularyMeta, apply_idf, copy_index, idf, nearest_word, normalise, read_f32, read_json, tfidf,
    write_f32, write_json,
};
use pipe_core::data::dataset::Dataset;
use pipe_core::data::split::Split;
use pipe_core::kinds::encode::{EncodeParams, Matcher, Normalization};
use pipe_core::kinds::{StageContext, StageError};

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    init_opencv(1);
    let p: EncodeParams = ctx.typed_params()?;
    let features_dir = ctx.input("features")?.dir.clone();
    let vocab_dir = ctx.input("vocabulary")?.dir.clone();
    let meta: FeaturesMeta = read_json(&features_dir.join("features.json"))?;
    let vocab_meta: VocabularyMeta = read_json(&vocab_dir.join("vocabulary.json"))?;
    if vocab_meta.dim != meta.dim {
        return Err(StageError::Failed(format!(
            "the vocabulary's words have {} values but the descriptors {}: cluster the same detector's features",
            vocab_meta.dim, meta.dim
        )));
    }
    let vocabulary = read_f32(&vocab_dir.join("vocabulary.f32"))?;
    let descriptors = read_f32(&features_dir.join("descriptors.f32"))?;
    let (dim, words) = (meta.dim, vocab_meta.words);
    let mut offsets = Vec::with_capacity(meta.counts.len());
    let mut at = 0;
    for &n in &meta.counts {
        offsets.push(at);
        at += n;
    }
    let image = |i: usize| &descriptors[offsets[i] * dim..(offsets[i] + meta.counts[i]) * dim];
    let ticker = ctx.ticker(meta.counts.len(), "images");
    let assignments: Vec<Vec<usize>> = if p.matcher == Matcher::Brute {
        (0..meta.counts.len())
            .into_par_iter()
            .map(|i| {
                ticker.tick();
                image(i).chunks_exact(dim).map(|d| nearest_word(d, &vocabulary, dim)).collect()
            })
            .collect()
    } else {
        // One index, built once, queried in order: FLANN's randomised trees
        // then give the same answer on every run.
        let mut flann = Flann::new(&vocabulary, dim).map_err(StageError::from)?;
        let mut out = Vec::with_capacity(meta.counts.len());
        for i in 0..meta.counts.len() {
            ctx.check_cancelled()?;
            out.push(flann.words(image(i), dim).map_err(StageError::from)?);
            ticker.tick();
        }
        out
    };
    let how = p.normalization;
    let mut rows: Vec<Vec<f32>> = assignments
        .iter()
        .map(|a| {
            let mut counts = vec![0u32; words];
            a.iter().for_each(|&w| counts[w] += 1);
            normalise(&counts, if how == Normalization::L2 { "l2" } else { "bow" })
        })
        .collect();
    if how == Normalization::Tfidf {
        match ctx.trained() {
            // `pipe predict`: the idf of the training run's own training split.
            Some(trained) => {
                let weighted: Vec<Vec<f32>> = read_f32(&trained.join("histograms.f32"))?.chunks(words).map(<[f32]>::to_vec).collect();
                let index = Dataset::read_index(trained).map_err(StageError::from)?;
                let train: Vec<usize> = (0..weighted.len()).filter(|&i| index[i].split == Split::Train).collect();
                apply_idf(&mut rows, &idf(&weighted, &train, words));
            }
            None => {
                let index = Dataset::read_index(&features_dir).map_err(StageError::from)?;
                let train: Vec<usize> = (0..rows.len()).filter(|&i| index[i].split == Split::Train).collect();
                tfidf(&mut rows, &train);
            }
        }
    }
    let out = ctx.out_dir().to_path_buf();
    write_f32(&out.join("histograms.f32"), &rows.concat())?;
    write_json(&out.join("histograms.json"), &HistogramsMeta { words, normalization: how.word().to_string(), images: rows.len() })?;
    Ok(copy_index(&features_dir, &out)?)
}
