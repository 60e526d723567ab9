//! `hog`: one dense histogram-of-oriented-gradients descriptor per image
//! (see `data::hog`), written as histograms so that `svm` reads it like a
//! bag of words: the plain shape baseline beside the paper's approaches
//! ("HOG + SVM"), cheap and strong on clip art. Per-image work split over
//! the granted threads; the output does not depend on how many.

use rayon::prelude::*;

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, SlotDef, StageContext, StageError, ThreadUse, no_check};
use crate::data::bow::{HistogramsMeta, copy_index, write_f32, write_json};
use crate::data::dataset::Dataset;
use crate::data::hog::Hog;

pub static HOG: KindDef = KindDef {
    name: "hog",
    version: 1,
    summary: "dense HOG descriptor per image (Dalal & Triggs), as histograms for svm",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: false,
        required: true,
        doc: "the images (a load or augment stage)",
    }],
    output: ArtifactType::Histograms,
    params: &[
        ParamDef { name: "cell", ty: ParamType::Int { min: 2, max: 64 }, default: Default::Int(8), doc: "cell side in pixels" },
        ParamDef { name: "bins", ty: ParamType::Int { min: 2, max: 36 }, default: Default::Int(9), doc: "orientation bins over 0-180°" },
    ],
    threads: ThreadUse::Elastic,
    estimate_seconds: 5.0,
    process: Process::Worker,
    check: no_check,
    names_inputs: false,
};

pub(super) fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::Failed)?;
    let hog = Hog { cell: ctx.params.int("cell") as usize, bins: ctx.params.int("bins") as usize };
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
    copy_index(&input, &out)
}
