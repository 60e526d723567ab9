//! `extract`: keypoints and descriptors per image (KAZE by default, as in
//! the paper's section 2.1.1), in parallel with one detector per worker
//! thread. Images without keypoints are counted, reported, and kept: they
//! encode to an all-zero histogram rather than vanishing.

use rayon::prelude::*;

use crate::algo::decode::{init_opencv, to_grey};
use crate::algo::keypoints::{Detector, DetectorConfig, Found, descriptor_dim};
use pipe_core::data::bow::{FeaturesMeta, copy_index, write_f32, write_json};
use pipe_core::data::dataset::Dataset;
use pipe_core::kinds::extract::ExtractParams;
use pipe_core::kinds::{StageContext, StageError};

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    init_opencv(1);
    let p: ExtractParams = ctx.typed_params()?;
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::from)?;
    let config = DetectorConfig {
        detector: p.detector.word().to_string(),
        threshold: p.threshold as f32,
        octaves: p.octaves as i32,
        octave_layers: p.octave_layers as i32,
        diffusivity: p.diffusivity.word().to_string(),
        extended: p.extended,
        upright: p.upright,
        max_keypoints: p.max_keypoints as usize,
    };
    Detector::new(&config).map_err(StageError::from)?; // a bad configuration fails once, clearly
    let dim = descriptor_dim(&config);
    let (size, channels) = (data.pixels.height, data.pixels.channels);
    let ticker = ctx.ticker(data.rows.len(), "images");
    let found: Vec<Result<Found, crate::algo::CvError>> = (0..data.rows.len())
        .into_par_iter()
        .map_init(
            || Detector::new(&config),
            |detector, i| {
                let _permit = ctx.permit();
                if ctx.check_cancelled().is_err() {
                    return Err("interrupted".into());
                }
                let detector = detector.as_mut().map_err(|e| e.to_string())?;
                let img = data.pixels.image(i);
                let grey = if channels == 1 { img.to_vec() } else { to_grey(img) };
                let (found, got_dim) = detector.run(&grey, size)?;
                ticker.tick();
                if !found.keypoints.is_empty() && got_dim != dim {
                    return Err(format!("descriptor length {got_dim}, expected {dim}").into());
                }
                Ok(found)
            },
        )
        .collect();
    ctx.check_cancelled()?;
    let mut descriptors = Vec::new();
    let mut keypoints = Vec::new();
    let mut counts = Vec::with_capacity(found.len());
    for (i, f) in found.into_iter().enumerate() {
        let f = f.map_err(|e| StageError::Failed(format!("image {} ({}): {e}", i, data.rows[i].source)))?;
        counts.push(f.keypoints.len());
        descriptors.extend(f.descriptors);
        keypoints.extend(f.keypoints.into_iter().flatten());
    }
    let no_keypoints = counts.iter().filter(|c| **c == 0).count();
    if no_keypoints > 0 {
        ctx.warn(format!("{no_keypoints} of {} images have no keypoints; they encode to all-zero histograms", counts.len()));
    }
    let total: usize = counts.iter().sum();
    ctx.log(format!("{total} keypoints on {} images ({:.1} per image)", counts.len(), total as f64 / counts.len().max(1) as f64));
    let out = ctx.out_dir().to_path_buf();
    write_f32(&out.join("descriptors.f32"), &descriptors)?;
    write_f32(&out.join("keypoints.f32"), &keypoints)?;
    write_json(&out.join("features.json"), &FeaturesMeta { detector: config.detector, dim, counts, no_keypoints })?;
    Ok(copy_index(&input, &out)?)
}
