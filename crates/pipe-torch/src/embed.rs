//! `embed`, run by `pipe-torch`: EfficientNet-Lite0 with given weights run
//! once over every image; the globally average-pooled 1,280 features,
//! L2-normalised, written as histograms (with the input's index) for `svm`
//! and `multilabel-svm`. On a CPU the batches (fixed by the images' order
//! and `batch_size`) are shared among the granted threads, each running its
//! own copy of the network on one libtorch thread, so every batch is
//! computed the same way whatever the count: the bytes depend on the key
//! alone. On CUDA one thread feeds the device.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tch::{Device, nn};

use pipe_core::data::bow::{HistogramsMeta, copy_index, write_f32, write_json};
use pipe_core::data::dataset::Dataset;
use pipe_core::kinds::cnn::Arch;
use pipe_core::kinds::embed::{EmbedLayers, EmbedParams};
use pipe_core::kinds::{StageContext, StageError};

use crate::efficientnet::{BLOCK_FEATURES, EfficientNetLite, FEATURES};
use crate::preprocess::Preprocess;

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: EmbedParams = ctx.typed_params()?;
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::from)?;
    let device = crate::cnn_train::device(p.device)?;
    let pre = Preprocess::of(Arch::EfficientNetLite0, p.input_size, data.pixels.channels, data.pixels.height)?;
    let weights = std::path::PathBuf::from(p.weights.as_deref().expect("weights is required"));
    let blocks = p.layers == EmbedLayers::HeadAndBlocks;
    let dim = if blocks { FEATURES + BLOCK_FEATURES } else { FEATURES };
    let n = data.rows.len();
    let rows: Vec<usize> = (0..n).collect();
    let batches: Vec<&[usize]> = rows.chunks(p.batch_size as usize).collect();
    let workers = if device == Device::Cpu { ctx.threads.clamp(1, batches.len().max(1)) } else { 1 };
    let done: Mutex<Vec<Option<Vec<f32>>>> = Mutex::new(vec![None; batches.len()]);
    let next = AtomicUsize::new(0);
    let ticker = ctx.ticker(n, "images");
    let ctx_ref = &*ctx;
    std::thread::scope(|scope| -> Result<(), StageError> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<(), StageError> {
                    // One libtorch thread here (this thread's OpenMP setting too).
                    tch::set_num_threads(1);
                    let vs = nn::VarStore::new(device);
                    let net = EfficientNetLite::lite0(&vs.root(), &vs.root().set_group(1), 3, 1000, 0.0);
                    let tensors = crate::weights::read(&weights).map_err(|e| StageError::Failed(e.to_string()))?;
                    crate::weights::load_into(&vs, tensors, crate::efficientnet::HEAD, true, &weights, "efficientnet-lite0")
                        .map_err(|e| StageError::Failed(e.to_string()))?;
                    let _guard = tch::no_grad_guard();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        let Some(batch) = batches.get(b) else { return Ok(()) };
                        ctx_ref.check_cancelled()?;
                        let features = embed_batch(&net, &data, batch, pre, device, p.flip, blocks)
                            .map_err(|e| StageError::Failed(format!("images {}-{}: {e}", batch[0], batch[batch.len() - 1])))?;
                        done.lock().expect("no worker panics while holding it")[b] = Some(features);
                        for _ in batch.iter() {
                            ticker.tick();
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("embedding thread panicked")).collect::<Result<Vec<()>, _>>()?;
        Ok(())
    })?;
    let values: Vec<f32> =
        done.into_inner().expect("workers finished").into_iter().flat_map(|b| b.expect("every batch embedded")).collect();
    let out = ctx.out_dir().to_path_buf();
    write_f32(&out.join("histograms.f32"), &values)?;
    write_json(&out.join("histograms.json"), &HistogramsMeta { words: dim as usize, normalization: "l2".into(), images: n })?;
    ctx.log(format!("{n} images, {dim} features each, on {workers} thread(s) ({device:?})"));
    Ok(copy_index(&input, &out)?)
}

/// The L2-normalised pooled features of one batch, row-major (with
/// `flip`, the mean of the image's and its mirror's before normalising;
/// with several parts, each normalised and weighted 1/√parts, so that every
/// row has norm 1 and the parts count alike in a distance).
fn embed_batch(
    net: &EfficientNetLite,
    data: &Dataset,
    rows: &[usize],
    pre: Preprocess,
    device: Device,
    flip: bool,
    blocks: bool,
) -> Result<Vec<f32>, tch::TchError> {
    let x = pre.tensor(data, rows, &pre.pixels(data, rows), device)?;
    let mut parts = net.f_feature_parts_t(&x, false, blocks)?;
    if flip {
        let mirrored = net.f_feature_parts_t(&x.f_flip([3])?, false, blocks)?;
        parts = parts.iter().zip(&mirrored).map(|(a, b)| a.f_add(b)?.f_div_scalar(2.0)).collect::<Result<_, _>>()?;
    }
    let weight = 1.0 / (parts.len() as f64).sqrt();
    let normalised = parts
        .iter()
        .map(|f| {
            let norm = f.f_square()?.f_sum_dim_intlist([1i64].as_slice(), true, None::<tch::Kind>)?.f_sqrt()?.f_clamp_min(1e-12)?;
            f.f_div(&norm)?.f_mul_scalar(weight)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let f = tch::Tensor::f_cat(&normalised, 1)?.f_to_device(Device::Cpu)?.f_contiguous()?;
    Vec::<f32>::try_from(f.f_flatten(0, -1)?)
}
