//! `colour`: one colour histogram per image (see `crate::data::colour`), written as
//! histograms for `svm` and `multilabel-svm`: the colour cue that HOG's grey
//! gradients lack. Beyond the paper; on clip art, colour alone classifies
//! two images in three, and summed with HOG in one kernel it lifts both.

use super::params::{Default, ParamType};
use super::per_image::describe_images;
use super::{KindDef, Schema};
use super::{StageContext, StageError};
use crate::data::colour::ColourHistogram;

crate::stage_params! {
    pub struct ColourParams {
        /// bins per channel (levels³ bins in all)
        levels: i64 = ParamType::Int { min: 2, max: 16 } => Default::Int(4),
        /// leave out white background pixels (every channel at least 243)
        ignore_white: bool = ParamType::Bool => Default::Bool(true),
    }
}

pub static COLOUR: KindDef = super::per_image_descriptor(
    "colour",
    "colour histogram per image (Hellinger-mapped), as histograms for svm",
    Schema::of::<ColourParams>(),
    2.0,
    run,
);

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: ColourParams = ctx.typed_params()?;
    let histogram = ColourHistogram { levels: p.levels as usize, ignore_white: p.ignore_white };
    describe_images(ctx, "hellinger", |_, _| Ok(histogram.dim()), |pixels, _, channels| histogram.describe(pixels, channels))
}
