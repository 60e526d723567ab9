//! `hog`: one dense histogram-of-oriented-gradients descriptor per image
//! (see `data::hog`), written as histograms so that `svm` reads it like a
//! bag of words: the plain shape baseline beside the paper's approaches
//! ("HOG + SVM"), cheap and strong on clip art. Per-image work split over
//! the granted threads; the output does not depend on how many.

use rayon::prelude::*;

use pipe_core::data::bow::{HistogramsMeta, copy_index, write_f32, write_json};
use pipe_core::data::dataset::Dataset;
use pipe_core::data::hog::Hog;
use pipe_core::stages::hog::HogParams;
use pipe_core::stages::{StageContext, StageError};

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: HogParams = ctx.typed_params()?;
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::from)?;
    let hog = Hog { cell: p.cell as usize, bins: p.bins as usize };
    let (side, channels) = (data.pixels.height, data.pixels.channels);
    let dim = hog.len(side);
    if dim == 0 {
        return Err(StageError::Failed(format!("cells of {} pixels leave no 2x2 block in {side}x{side} images: lower `cell`", hog.cell)));
    }
    let ticker = ctx.ticker(data.rows.len(), "images");
    let rows: Vec<Vec<f32>> = (0..data.rows.len())
        .into_par_iter()
        .map(|i| {
            let _permit = ctx.permit();
            let d = hog.describe(data.pixels.image(i), side, channels);
            ticker.tick();
            d
        })
        .collect();
    ctx.check_cancelled()?;
    let out = ctx.out_dir().to_path_buf();
    write_f32(&out.join("histograms.f32"), &rows.concat())?;
    write_json(&out.join("histograms.json"), &HistogramsMeta { words: dim, normalization: "l2-hys".into(), images: rows.len() })?;
    ctx.log(format!("{} images, {dim} values each", rows.len()));
    Ok(copy_index(&input, &out)?)
}
