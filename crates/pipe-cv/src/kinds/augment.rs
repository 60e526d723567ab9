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
//! Figure 6). The output tensor is streamed: memory does not grow with the
//! number of images.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::algo::augment::{Ranges, apply, write_sheet};
use crate::algo::decode::init_opencv;
use pipe_core::data::dataset::{Dataset, Row};
use pipe_core::data::split::Split;
use pipe_core::data::tensor::TensorWriter;
use pipe_core::kinds::augment::{AugmentParams, Balance, ClassWeights, Target};
use pipe_core::kinds::{IntOr, StageContext, StageError};
use pipe_core::rng::Rng;

fn ranges(p: &AugmentParams) -> Ranges {
    Ranges { hflip: p.hflip, vflip: p.vflip, rotate: p.rotate, translate: p.translate, zoom: p.zoom }
}

/// Which original each new image copies: `(row, copy number)`.
fn plan_copies(data: &Dataset, p: &AugmentParams) -> Vec<(usize, usize)> {
    let copies = p.copies as usize;
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, r) in data.rows.iter().enumerate().filter(|(_, r)| r.split == Split::Train && !r.augmented) {
        by_class.entry(r.label_id).or_default().push(i);
    }
    let mut jobs: Vec<(usize, usize)> = Vec::new();
    for rows in by_class.values() {
        for &i in rows {
            jobs.extend((0..copies).map(|k| (i, k)));
        }
    }
    if p.balance == Balance::Oversample {
        let mut sizes: Vec<usize> = by_class.values().map(|r| r.len() * (1 + copies)).collect();
        sizes.sort_unstable();
        let target = match p.target {
            IntOr::Int(n) => n as usize,
            IntOr::Word(Target::Median) => sizes.get(sizes.len() / 2).copied().unwrap_or(0),
            IntOr::Word(Target::Max) => sizes.last().copied().unwrap_or(0),
        };
        for rows in by_class.values() {
            let have = rows.len() * (1 + copies);
            for extra in 0..target.saturating_sub(have) {
                // Round-robin over the class's originals, numbering after the plain copies.
                jobs.push((rows[extra % rows.len()], copies + extra / rows.len()));
            }
        }
    }
    jobs
}

/// Augmented images made (and held in memory) at once.
const CHUNK: usize = 256;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    init_opencv(1);
    let p: AugmentParams = ctx.typed_params()?;
    let input = ctx.input("images")?.dir.clone();
    let mut data = Dataset::read(&input).map_err(StageError::from)?;
    let (size, channels) = (data.pixels.height, data.pixels.channels);
    let ranges = ranges(&p);
    let jobs = plan_copies(&data, &p);
    // Streamed: the originals, then the new images a chunk at a time, so
    // memory does not grow with the data set.
    let count = data.pixels.count + jobs.len();
    let mut out = TensorWriter::with_count(&ctx.out_dir().join("images.safetensors"), count, size, size, channels)?;
    for i in 0..data.pixels.count {
        if i % 1024 == 0 {
            ctx.check_cancelled()?;
        }
        out.push(data.pixels.image(i))?;
    }
    let ticker = ctx.ticker(jobs.len(), "images");
    let seed = ctx.seed;
    let mut new_rows = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(CHUNK) {
        let made: Vec<Result<Vec<u8>, crate::algo::CvError>> = chunk
            .par_iter()
            .map(|&(i, k)| {
                let _permit = ctx.permit();
                if ctx.check_cancelled().is_err() {
                    return Err("interrupted".into());
                }
                let t = ranges.draw(&mut Rng::new(seed, &format!("augment/{}/{k}", data.rows[i].pixel_hash)));
                let out = apply(data.pixels.image(i), size, channels, &t);
                ticker.tick();
                out
            })
            .collect();
        ctx.check_cancelled()?;
        for (&(i, k), pixels) in chunk.iter().zip(made) {
            out.push(&pixels.map_err(StageError::from)?)?;
            let original = data.rows[i].clone();
            new_rows.push(Row { source: format!("{}#aug{k}", original.source), augmented: true, ..original });
        }
    }
    out.finish()?;
    data.rows.extend(new_rows);
    data.refresh_stats();
    if p.class_weights == ClassWeights::None {
        data.meta.class_weights = vec![1.0; data.meta.classes.len()];
    }
    ctx.log(format!("added {} augmented training images", jobs.len()));
    write_preview(ctx, &data, &ranges, p.preview as usize)?;
    Dataset::write_index(ctx.out_dir(), &data.meta, &data.rows).map_err(StageError::from)
}

/// Originals (first column) beside five augmentations, one row per class
/// in class order, cycling while rows remain.
fn write_preview(ctx: &StageContext, data: &Dataset, ranges: &Ranges, rows: usize) -> Result<(), StageError> {
    if rows == 0 {
        return Ok(());
    }
    let (size, channels) = (data.pixels.height, data.pixels.channels);
    let mut firsts: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, r) in data.rows.iter().enumerate().filter(|(_, r)| r.split == Split::Train && !r.augmented) {
        firsts.entry(r.label_id).or_default().push(i);
    }
    let classes: Vec<&Vec<usize>> = firsts.values().collect();
    if classes.is_empty() {
        return Ok(());
    }
    let mut tiles = Vec::new();
    for row in 0..rows {
        let members = classes[row % classes.len()];
        let i = members[(row / classes.len()) % members.len()];
        tiles.push(data.pixels.image(i).to_vec());
        for k in 0..5 {
            let t = ranges.draw(&mut Rng::new(ctx.seed, &format!("augment/preview/{row}/{k}")));
            tiles.push(apply(data.pixels.image(i), size, channels, &t).map_err(StageError::from)?);
        }
    }
    write_sheet(&ctx.out_dir().join("preview.png"), &tiles, 6, size, channels).map_err(StageError::from)
}

#[cfg(test)]
mod tests;
