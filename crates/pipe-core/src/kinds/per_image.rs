//! The shared body of the per-image descriptor kinds (`hog`, `colour`, `lbp`): one
//! vector per image, computed in parallel over the granted threads (the
//! output does not depend on how many), written as histograms so that `svm`
//! reads it like a bag of words, with the input's index beside it.

use rayon::prelude::*;

use super::{StageContext, StageError};
use crate::data::bow::{HistogramsMeta, copy_index, write_f32, write_json};
use crate::data::dataset::Dataset;

/// Describes every image of the `images` input with `describe` (pixels,
/// side, channels → the values) and writes `histograms.*`; `dim` gives the
/// descriptor's length for the images' side and channels, or says why
/// these images cannot be described.
pub fn describe_images(
    ctx: &mut StageContext,
    normalization: &str,
    dim: impl Fn(usize, usize) -> Result<usize, StageError>,
    describe: impl Fn(&[u8], usize, usize) -> Vec<f32> + Sync,
) -> Result<(), StageError> {
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::from)?;
    let (side, channels) = (data.pixels.height, data.pixels.channels);
    let dim = dim(side, channels)?;
    let ticker = ctx.ticker(data.rows.len(), "images");
    let rows: Vec<Vec<f32>> = (0..data.rows.len())
        .into_par_iter()
        .map(|i| {
            let _permit = ctx.permit();
            let d = describe(data.pixels.image(i), side, channels);
            ticker.tick();
            d
        })
        .collect();
    ctx.check_cancelled()?;
    let out = ctx.out_dir().to_path_buf();
    write_f32(&out.join("histograms.f32"), &rows.concat())?;
    write_json(&out.join("histograms.json"), &HistogramsMeta { words: dim, normalization: normalization.into(), images: rows.len() })?;
    ctx.log(format!("{} images, {dim} values each", rows.len()));
    Ok(copy_index(&input, &out)?)
}
