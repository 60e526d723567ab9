//! `colour`: one colour histogram per image (see `pipe_core::data::colour`), written
//! as histograms for `svm` and `multilabel-svm`.

use pipe_core::data::colour::ColourHistogram;
use pipe_core::kinds::colour::ColourParams;
use pipe_core::kinds::{StageContext, StageError};

use super::per_image::describe_images;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: ColourParams = ctx.typed_params()?;
    let histogram = ColourHistogram { levels: p.levels as usize, ignore_white: p.ignore_white };
    describe_images(ctx, "hellinger", |_, _| Ok(histogram.dim()), |pixels, _, channels| histogram.describe(pixels, channels))
}
