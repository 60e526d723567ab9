//! `hog`: one dense histogram-of-oriented-gradients descriptor per image
//! (see `crate::data::hog`), written as histograms so that `svm` reads it like a
//! bag of words: the plain shape baseline beside the paper's approaches
//! ("HOG + SVM"), cheap and strong on clip art. Per-image work split over
//! the granted threads; the output does not depend on how many.

use super::params::{Default, ParamType};
use super::per_image::describe_images;
use super::{KindDef, Schema};
use super::{StageContext, StageError};
use crate::data::hog::Hog;

crate::stage_params! {
    pub struct HogParams {
        /// cell side in pixels
        cell: i64 = ParamType::Int { min: 2, max: 64 } => Default::Int(8),
        /// orientation bins over 0-180°
        bins: i64 = ParamType::Int { min: 2, max: 36 } => Default::Int(9),
    }
}

pub static HOG: KindDef = super::per_image_descriptor(
    "hog",
    "dense HOG descriptor per image (Dalal & Triggs), as histograms for svm",
    Schema::of::<HogParams>(),
    5.0,
    run,
);

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: HogParams = ctx.typed_params()?;
    let hog = Hog { cell: p.cell as usize, bins: p.bins as usize };
    let dim = |side: usize, _channels: usize| match hog.len(side) {
        0 => Err(StageError::Failed(format!("cells of {} pixels leave no 2x2 block in {side}x{side} images: lower `cell`", hog.cell))),
        n => Ok(n),
    };
    describe_images(ctx, "l2-hys", dim, |pixels, side, channels| hog.describe(pixels, side, channels))
}
