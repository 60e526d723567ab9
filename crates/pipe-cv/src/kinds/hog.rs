//! `hog`: one dense histogram-of-oriented-gradients descriptor per image
//! (see `pipe_core::data::hog`), written as histograms so that `svm` reads it like a
//! bag of words: the plain shape baseline beside the paper's approaches
//! ("HOG + SVM"), cheap and strong on clip art.

use pipe_core::data::hog::Hog;
use pipe_core::kinds::hog::HogParams;
use pipe_core::kinds::{StageContext, StageError};

use super::per_image::describe_images;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: HogParams = ctx.typed_params()?;
    let hog = Hog { cell: p.cell as usize, bins: p.bins as usize };
    let dim = |side: usize, _channels: usize| match hog.len(side) {
        0 => Err(StageError::Failed(format!("cells of {} pixels leave no 2x2 block in {side}x{side} images: lower `cell`", hog.cell))),
        n => Ok(n),
    };
    describe_images(ctx, "l2-hys", dim, |pixels, side, channels| hog.describe(pixels, side, channels))
}
