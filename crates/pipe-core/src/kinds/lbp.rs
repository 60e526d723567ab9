//! `lbp`: one local-binary-pattern texture descriptor per image (see
//! `data::lbp`): uniform patterns of the whole image and its quadrants,
//! written as histograms for `svm` and `multilabel-svm`. Beyond the paper:
//! the texture cue beside HOG's shape and the colour histogram.

use super::params::{Default, ParamType};
use super::per_image::describe_images;
use super::{KindDef, Schema};
use super::{StageContext, StageError};
use crate::data::lbp::Lbp;

crate::stage_params! {
    pub struct LbpParams {
        /// a neighbour sets its bit when at least the centre plus this many grey levels
        tolerance: f64 = ParamType::Float { min: 0.0, max: 255.0 } => Default::Float(5.0),
    }
}

pub static LBP: KindDef = super::per_image_descriptor(
    "lbp",
    "uniform local binary patterns per image and quadrant (texture), as histograms for svm",
    Schema::of::<LbpParams>(),
    3.0,
    run,
);

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: LbpParams = ctx.typed_params()?;
    let lbp = Lbp { tolerance: p.tolerance as f32 };
    describe_images(ctx, "hellinger", |_, _| Ok(lbp.dim()), |pixels, side, channels| lbp.describe(pixels, side, channels))
}
