//! `lbp`: one local-binary-pattern texture descriptor per image (see
//! `pipe_core::data::lbp`), written as histograms for `svm` and `multilabel-svm`.

use pipe_core::data::lbp::Lbp;
use pipe_core::kinds::lbp::LbpParams;
use pipe_core::kinds::{StageContext, StageError};

use super::per_image::describe_images;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: LbpParams = ctx.typed_params()?;
    let lbp = Lbp { tolerance: p.tolerance as f32 };
    describe_images(ctx, "hellinger", |_, _| Ok(lbp.dim()), |pixels, side, channels| lbp.describe(pixels, side, channels))
}
