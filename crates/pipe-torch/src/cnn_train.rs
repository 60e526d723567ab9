//! Training and prediction for the CNN kinds, with libtorch (tch), in the
//! shape of tch-rs's MNIST example: a `Net` built from a `nn::Path`,
//! `ModuleT` for train/eval, Adam, `no_grad` evaluation. One loop serves
//! single-label (softmax, cross-entropy) and multi-label (sigmoid, BCE)
//! tasks; batches are prepared on a second thread. It lives in the
//! `pipe-torch` executable itself: code in the library that referenced tch
//! would make every binary load libtorch (the linker keeps a library a
//! binary's objects mention, even in functions it then drops).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, TchError, Tensor};

use pipe_core::data::dataset::Dataset;
use pipe_core::data::predictions::{Predictions, PredictionsMeta};
use pipe_core::data::split::Split;
use pipe_core::kinds::cnn::{self, ClassWeights, CnnStage1Params, CnnStage2Params, Training};
use pipe_core::kinds::multilabel::Threshold;
use pipe_core::kinds::{IntOr, StageContext, StageError};
use pipe_core::metrics::threshold;
use pipe_core::metrics::{Average, multi_label_f2, top_k_accuracy};
use pipe_core::rng::Rng;

use crate::nets::{HEAD_GROUP, Shape};
use crate::preprocess::Preprocess;
use crate::recipe::{Jitter, Schedule, Variant};

pub use crate::nets::Net;

/// A libtorch error as the stage's error, naming the step that failed.
pub fn torch_error(step: impl std::fmt::Display) -> impl FnOnce(TchError) -> StageError {
    move |e| StageError::Failed(format!("{step}: {e}"))
}

/// The pixels of images `rows`, NCHW, scaled from 0..=255 to -2..=2: what
/// pipe's own networks read ([`Preprocess::SYMMETRIC`]).
pub fn batch_pixels(data: &Dataset, rows: &[usize]) -> Vec<f32> {
    Preprocess::SYMMETRIC.pixels(data, rows)
}

/// A batch tensor from [`batch_pixels`], on `device`.
pub fn batch_tensor(data: &Dataset, rows: &[usize], pixels: &[f32], device: Device) -> Result<Tensor, TchError> {
    let (s, c) = (data.pixels.height as i64, data.pixels.channels as i64);
    Tensor::f_from_slice(pixels)?.f_view([rows.len() as i64, c, s, s])?.f_to_device(device)
}

/// Calls `step` with each batch of `order` (chunks of `batch_size`) and its
/// pixels, which a second thread prepares up to two batches ahead: training
/// never waits on gathering and scaling pixels. An error from `step` stops
/// both.
pub fn for_each_batch<E>(
    data: &Dataset,
    order: &[usize],
    batch_size: usize,
    step: impl FnMut(usize, &[usize], Vec<f32>) -> Result<(), E>,
) -> Result<(), E> {
    for_each_prepared_batch(order, batch_size, |rows| batch_pixels(data, rows), step)
}

/// [`for_each_batch`] with the feeder thread's work given: `prepare` turns
/// a batch's rows into its pixels (scaled, and for training, jittered).
pub fn for_each_prepared_batch<E>(
    order: &[usize],
    batch_size: usize,
    prepare: impl Fn(&[usize]) -> Vec<f32> + Send,
    mut step: impl FnMut(usize, &[usize], Vec<f32>) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        scope.spawn(move || {
            for rows in order.chunks(batch_size) {
                if tx.send(prepare(rows)).is_err() {
                    break;
                }
            }
        });
        for (k, (rows, pixels)) in order.chunks(batch_size).zip(rx).enumerate() {
            step(k, rows, pixels)?;
        }
        Ok(())
    })
}

pub fn device(device: cnn::Device) -> Result<Device, StageError> {
    match device {
        cnn::Device::Cpu => Ok(Device::Cpu),
        cnn::Device::Cuda if !tch::Cuda::is_available() => Err(StageError::Failed(format!(
            "device = \"cuda\" but no CUDA device is available ({}): use device = \"auto\" or \"cpu\"",
            crate::cuda::why_no_device(crate::cuda::load())
        ))),
        cnn::Device::Cuda => Ok(Device::Cuda(0)),
        cnn::Device::Auto => Ok(Device::cuda_if_available()),
    }
}

/// How a single-label task's loss is weighted and smoothed
/// (`class_weights`, `label_smoothing`); a multi-label task takes neither.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loss {
    pub class_weights: ClassWeights,
    pub label_smoothing: f64,
}

impl Loss {
    /// Unweighted and unsmoothed.
    pub const PLAIN: Loss = Loss { class_weights: ClassWeights::None, label_smoothing: 0.0 };
}

/// What a network learns, per image of the dataset (`None`: left out).
pub enum Targets {
    /// One class: softmax and cross-entropy.
    Single(Vec<Option<i64>>),
    /// A set of labels: sigmoid and binary cross-entropy; validation F2 with
    /// this average and decision rule.
    Multi { sets: Vec<Option<Vec<usize>>>, threshold: Threshold, average: Average, at_least_one: bool },
}

/// A network's outputs (class or label names) and targets.
pub struct Task {
    pub classes: Vec<String>,
    pub targets: Targets,
}

impl Task {
    fn includes(&self, row: usize) -> bool {
        match &self.targets {
            Targets::Single(t) => t[row].is_some(),
            Targets::Multi { sets, .. } => sets[row].is_some(),
        }
    }

    /// Class indices of `rows` (int64, N), or their label indicator matrix
    /// (float, N x labels), on `device`.
    pub fn target_tensor(&self, rows: &[usize], device: Device) -> Result<Tensor, TchError> {
        match &self.targets {
            Targets::Single(t) => {
                Tensor::f_from_slice(&rows.iter().map(|&i| t[i].expect("picked")).collect::<Vec<i64>>())?.f_to_device(device)
            }
            Targets::Multi { sets, .. } => {
                let n = self.classes.len();
                let mut m = vec![0f32; rows.len() * n];
                for (k, &i) in rows.iter().enumerate() {
                    for &l in sets[i].as_ref().expect("picked") {
                        m[k * n + l] = 1.0;
                    }
                }
                Tensor::f_from_slice(&m)?.f_view([rows.len() as i64, n as i64])?.f_to_device(device)
            }
        }
    }

    /// The loss; `smoothing` is cross-entropy's label smoothing (single-label only).
    fn loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        weights: Option<&Tensor>,
        reduction: Reduction,
        smoothing: f64,
    ) -> Result<Tensor, TchError> {
        match self.targets {
            Targets::Single(_) => logits.f_cross_entropy_loss(targets, weights, reduction, -100, smoothing),
            // Mean over images and labels for training; the sum over labels
            // per image for the validation loss, like cross-entropy's.
            Targets::Multi { .. } => match reduction {
                Reduction::Sum => logits
                    .f_binary_cross_entropy_with_logits::<Tensor>(targets, None, None, Reduction::Sum)?
                    .f_div_scalar(self.classes.len() as f64),
                r => logits.f_binary_cross_entropy_with_logits::<Tensor>(targets, None, None, r),
            },
        }
    }

    /// Softmax (one class) or sigmoid (labels) probabilities.
    fn probabilities(&self, logits: &Tensor) -> Result<Tensor, TchError> {
        match self.targets {
            Targets::Single(_) => logits.f_softmax(-1, Kind::Double),
            Targets::Multi { .. } => logits.f_to_kind(Kind::Double)?.f_sigmoid(),
        }
    }

    /// The label sets of `rows`, which the task includes (multi-label only).
    pub fn sets(&self, rows: &[usize]) -> Vec<Vec<usize>> {
        match &self.targets {
            Targets::Single(_) => unreachable!("label sets of a single-label task"),
            Targets::Multi { sets, .. } => rows.iter().map(|&i| sets[i].clone().expect("picked")).collect(),
        }
    }

    fn history_header(&self) -> &'static str {
        match self.targets {
            Targets::Single(_) => "epoch,train_loss,val_loss,val_accuracy,val_top3,val_top5,seconds",
            Targets::Multi { .. } => "epoch,train_loss,val_loss,val_f2,val_threshold,seconds",
        }
    }

    /// The validation columns of one epoch's history row, and the same for
    /// the log: accuracy, top-3 and top-5 (one class) or F2 at the
    /// threshold rule, the global tuned threshold for the tuned rules.
    fn epoch_metrics(&self, rows: &[usize], scores: &[Vec<f64>]) -> (String, String) {
        match &self.targets {
            Targets::Single(t) => {
                let truth: Vec<usize> = rows.iter().map(|&i| t[i].expect("picked") as usize).collect();
                let acc = top_k_accuracy(&truth, scores, 1);
                let (top3, top5) = (top_k_accuracy(&truth, scores, 3), top_k_accuracy(&truth, scores, 5));
                (format!("{acc:.6},{top3:.6},{top5:.6}"), format!("accuracy {acc:.4}"))
            }
            Targets::Multi { threshold, average, at_least_one, .. } => {
                let truth = self.sets(rows);
                let n = self.classes.len();
                let (t, f2) = match *threshold {
                    Threshold::Fixed(t) => (t, multi_label_f2(&truth, &threshold::decide(scores, &vec![t; n], *at_least_one), n, *average)),
                    _ => threshold::tune_global(&truth, scores, n, *average, *at_least_one),
                };
                (format!("{f2:.6},{t:.2}"), format!("F2 {f2:.4} at threshold {t:.2}"))
            }
        }
    }
}

/// A trained network, for predicting more images.
pub struct Trained {
    _vs: nn::VarStore,
    net: Net,
    device: Device,
    batch_size: usize,
    tta: bool,
    pre: Preprocess,
}

impl Trained {
    /// Probabilities of `rows` (softmax or sigmoid, as the task).
    pub fn probabilities(&self, data: &Dataset, task: &Task, rows: &[usize]) -> Result<Vec<Vec<f64>>, StageError> {
        let (_, scores) = evaluate(&self.net, data, task, rows, None, self.batch_size, self.device, self.tta, self.pre)
            .map_err(|e| StageError::Failed(format!("predicting with the trained network: {e}")))?;
        Ok(scores)
    }
}

/// `pipe predict`: the network a training run kept (`model.safetensors`
/// in its entry `trained`), built as `p` builds it for `outputs` outputs,
/// ready to score images of `data` exactly as that run scored its own.
pub fn load_trained(ctx: &StageContext, data: &Dataset, p: &Training, outputs: usize, trained: &Path) -> Result<Trained, StageError> {
    let device = device(p.device)?;
    tch::set_num_threads(ctx.threads as i32);
    let pre = Preprocess::of(p.arch, p.input_size, data.pixels.channels, data.pixels.height)?;
    let mut vs = nn::VarStore::new(device);
    let net = build_net(&vs.root(), p, data.pixels.channels, outputs);
    let path = trained.join("model.safetensors");
    vs.load(&path).map_err(|e| StageError::Failed(format!("{}: loading the trained network: {e}", path.display())))?;
    Ok(Trained { _vs: vs, net, device, batch_size: p.batch_size as usize, tta: p.tta, pre })
}

/// The class (or label) names a trained stage predicts, from its entry.
pub fn trained_classes(trained: &Path) -> Result<Vec<String>, StageError> {
    let meta: PredictionsMeta = pipe_core::data::bow::read_json(&trained.join("predictions.json"))?;
    Ok(meta.classes)
}

/// A task over `classes` whose targets are unknown (`pipe predict`'s new
/// images): only scoring uses it.
pub fn unlabelled(classes: Vec<String>, rows: usize) -> Task {
    Task { classes, targets: Targets::Single(vec![None; rows]) }
}

/// What training gives: the trained network, the test rows of the task
/// (images of the test split that it includes) and their probabilities.
pub struct Fitted {
    pub trained: Trained,
    pub test: Vec<usize>,
    pub scores: Vec<Vec<f64>>,
    /// The validation rows (the training rows when there is no validation split).
    pub validation: Vec<usize>,
}

/// Single-label predictions of the test rows from their probabilities.
pub fn single_predictions(data: &Dataset, task: &Task, fitted: &Fitted) -> Predictions {
    let Targets::Single(t) = &task.targets else { unreachable!("a single-label task") };
    Predictions {
        meta: PredictionsMeta { task: "single".into(), classes: task.classes.clone() },
        ids: fitted.test.iter().map(|&i| i as u32).collect(),
        sources: fitted.test.iter().map(|&i| data.rows[i].source.clone()).collect(),
        y_true: fitted.test.iter().map(|&i| t[i].expect("picked") as u32).collect(),
        y_pred: fitted.scores.iter().map(|s| pipe_core::data::predictions::argmax(s) as u32).collect(),
        scores: fitted.scores.clone(),
    }
}

/// The network the training parameters describe (`arch`), for `outputs`
/// outputs.
pub fn build_net(vs: &nn::Path, t: &Training, channels: usize, outputs: usize) -> Net {
    Net::new(vs, t.arch, shape(t, channels, outputs))
}

/// The network's shape from the training parameters.
pub fn shape(t: &Training, channels: usize, outputs: usize) -> Shape {
    Shape {
        channels: channels as i64,
        width: t.width,
        hidden: t.hidden,
        outputs: outputs as i64,
        batch_norm: t.batch_norm,
        dropout: t.dropout,
    }
}

/// Why a training step did not train.
#[derive(Debug)]
pub enum StepError {
    /// The loss is not a finite number (its value).
    NonFinite(f64),
    /// libtorch failed in this part of the step.
    Torch(&'static str, TchError),
}

impl StepError {
    /// The stage's error for a step of `epoch` at base rate `learning_rate`.
    pub fn at(self, epoch: usize, learning_rate: f64) -> StageError {
        match self {
            StepError::NonFinite(value) => non_finite_loss(epoch, value, learning_rate),
            StepError::Torch(part, e) => StageError::Failed(format!("epoch {epoch}, training step, {part}: {e}")),
        }
    }
}

/// One optimiser step on a batch; the batch's loss, or what stops training:
/// a loss that is not finite, or a libtorch error.
pub fn train_step(
    net: &Net,
    opt: &mut nn::Optimizer,
    task: &Task,
    input: &Tensor,
    targets: &Tensor,
    weights: Option<&Tensor>,
    smoothing: f64,
) -> Result<f64, StepError> {
    let logits = net.f_forward_t(input, true).map_err(|e| StepError::Torch("the forward pass", e))?;
    let loss = task.loss(&logits, targets, weights, Reduction::Mean, smoothing).map_err(|e| StepError::Torch("the loss", e))?;
    let value = loss.f_double_value(&[]).map_err(|e| StepError::Torch("reading the loss", e))?;
    if !value.is_finite() {
        return Err(StepError::NonFinite(value));
    }
    // `Optimizer::backward_step`, with the backward pass fallible.
    opt.zero_grad();
    loss.f_backward().map_err(|e| StepError::Torch("the backward pass", e))?;
    opt.step();
    Ok(value)
}

/// The error that stops training when the loss is not a finite number.
pub fn non_finite_loss(epoch: usize, value: f64, learning_rate: f64) -> StageError {
    StageError::Failed(format!("epoch {epoch}: the loss became {value}: lower learning_rate (now {learning_rate})"))
}

/// The loss weights of `balanced` class weights: n / (classes present x
/// count) per class over the training rows (0 for an absent class).
fn class_weights(task: &Task, train: &[usize], setting: ClassWeights, device: Device) -> Result<Option<Tensor>, StageError> {
    let (Targets::Single(t), ClassWeights::Balanced) = (&task.targets, setting) else { return Ok(None) };
    let counts: Vec<f64> = (0..task.classes.len() as i64).map(|c| train.iter().filter(|&&i| t[i] == Some(c)).count() as f64).collect();
    let present = counts.iter().filter(|c| **c > 0.0).count() as f64;
    let w: Vec<f32> = counts.iter().map(|&c| if c == 0.0 { 0.0 } else { (train.len() as f64 / (present * c)) as f32 }).collect();
    Ok(Some(Tensor::f_from_slice(&w).and_then(|w| w.f_to_device(device)).map_err(torch_error("the class weights"))?))
}

/// A training batch's pixels, each image flipped and shifted as its draw for
/// this epoch says (`variant.row` is set per image).
fn jittered_pixels(data: &Dataset, rows: &[usize], pre: Preprocess, jitter: Option<Jitter>, variant: Variant) -> Vec<f32> {
    let mut pixels = pre.pixels(data, rows);
    if let Some(j) = jitter {
        let (channels, side) = (data.pixels.channels, data.pixels.height);
        let white = pre.white(channels);
        for (image, &row) in pixels.chunks_exact_mut(channels * side * side).zip(rows) {
            j.apply(image, channels, side, Variant { row, ..variant }, &white);
        }
    }
    pixels
}

/// Loads `weights` into a freshly built network (see `weights.rs`), and
/// logs what was copied and what stays new.
fn load_weights(ctx: &mut StageContext, vs: &nn::VarStore, net: &Net, p: &Training) -> Result<(), StageError> {
    let Some(file) = &p.weights else { return Ok(()) };
    let path = std::path::Path::new(file);
    let tensors = crate::weights::read(path).map_err(|e| StageError::Failed(e.to_string()))?;
    let got =
        crate::weights::load_into(vs, tensors, net.head(), p.strict, path, p.arch.word()).map_err(|e| StageError::Failed(e.to_string()))?;
    let head = if got.head_new.is_empty() {
        String::from("the output layer too")
    } else {
        format!("a new output layer ({})", got.head_new.join(", "))
    };
    ctx.log(format!("weights {}: {} tensors loaded, {head}", path.display(), got.copied));
    if !got.skipped.is_empty() {
        ctx.warn(format!("weights {}: strict = false left out {} tensors: {}", path.display(), got.skipped.len(), got.skipped.join(", ")));
    }
    Ok(())
}

/// The trainable tensors outside the output layer (batch norm's running
/// statistics are not trainable): what `freeze_epochs` holds still.
fn backbone(vs: &nn::VarStore, head: &str) -> Vec<Tensor> {
    let prefix = format!("{head}.");
    vs.variables().into_iter().filter(|(name, t)| !name.starts_with(&prefix) && t.requires_grad()).map(|(_, t)| t).collect()
}

/// The share of the most frequent class among `rows`, and its name: the
/// accuracy a network that learned nothing reaches by always answering it.
pub fn majority_rate(task: &Task, rows: &[usize]) -> Option<(f64, String)> {
    let Targets::Single(t) = &task.targets else { return None };
    let mut counts = vec![0usize; task.classes.len()];
    for &r in rows {
        counts[t[r]? as usize] += 1;
    }
    let (class, &most) = counts.iter().enumerate().max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))?;
    (!rows.is_empty()).then(|| (most as f64 / rows.len() as f64, task.classes[class].clone()))
}

/// Trains on the training split (the validation split chooses the epoch
/// whose weights are kept), writes `history.csv` and `model.safetensors`,
/// and predicts the task's test images.
pub fn train(ctx: &mut StageContext, data: &Dataset, task: &Task, p: &Training, loss: Loss) -> Result<Fitted, StageError> {
    let device = device(p.device)?;
    ctx.log(match device {
        Device::Cpu if p.device == cnn::Device::Auto => {
            format!("device = \"auto\": training on the CPU ({})", crate::cuda::why_no_device(crate::cuda::load()))
        }
        _ => format!("device = \"{}\": training on {device:?}", p.device.word()),
    });
    tch::set_num_threads(ctx.threads as i32);
    tch::manual_seed(ctx.seed as i64);
    let pick = |split: Split| -> Vec<usize> { (0..data.rows.len()).filter(|&i| data.rows[i].split == split && task.includes(i)).collect() };
    let (train, val, test) = (pick(Split::Train), pick(Split::Validation), pick(Split::Test));
    if train.is_empty() || test.is_empty() {
        return Err(StageError::Failed("no training or no test images for this task: check the load stage's fractions".into()));
    }
    let n_outputs = task.classes.len();
    let pre = Preprocess::of(p.arch, p.input_size, data.pixels.channels, data.pixels.height)?;
    let vs = nn::VarStore::new(device);
    let net = build_net(&vs.root(), p, data.pixels.channels, n_outputs);
    load_weights(ctx, &vs, &net, p)?;
    let freeze = p.freeze_epochs as usize;
    let frozen = if freeze > 0 { backbone(&vs, net.head()) } else { Vec::new() };
    // AdamW: Adam with decoupled weight decay (Adam itself at weight_decay = 0).
    let base_rate = p.learning_rate;
    let mut opt =
        nn::AdamW::default().wd(p.weight_decay).build(&vs, base_rate).map_err(|e| StageError::Failed(format!("optimizer: {e}")))?;
    let weights = class_weights(task, &train, loss.class_weights, device)?;
    let bs = p.batch_size as usize;
    let epochs = p.epochs as usize;
    let patience = p.patience as usize;
    let best_path = ctx.out_dir().join("model.safetensors");
    let mut history = format!("{}\n", task.history_header());
    let (mut best, mut since_best) = (f64::INFINITY, 0);
    let mut order = train.clone();
    let steps = order.len().div_ceil(bs) as u64;
    let schedule = Schedule::new(p.schedule, p.warmup_epochs as usize, steps as usize);
    let total_steps = steps as usize * epochs;
    let jitter = Jitter::new(p.flip, p.shift);
    let smoothing = if matches!(task.targets, Targets::Single(_)) { loss.label_smoothing } else { 0.0 };
    let tta = p.tta;
    let mut step_index = 0usize;
    if val.is_empty() {
        ctx.warn("no validation split: the epoch whose weights are kept is chosen on the training images (set load's validation_fraction above 0)");
    }
    let eval_rows = if val.is_empty() { train.clone() } else { val };
    let mut last_accuracy: Option<f64> = None;
    for epoch in 1..=epochs {
        let clock = Instant::now();
        Rng::new(ctx.seed, &format!("cnn/epoch/{epoch}")).shuffle(&mut order);
        let (mut sum, mut seen) = (0.0, 0usize);
        let seed = ctx.seed;
        let prepare = |rows: &[usize]| jittered_pixels(data, rows, pre, jitter, Variant { seed, epoch, row: 0 });
        if freeze > 0 && (epoch == 1 || epoch == freeze + 1) {
            for t in &frozen {
                let _ = t.set_requires_grad(epoch > freeze);
            }
            ctx.log(if epoch > freeze {
                format!("epoch {epoch}: the whole network trains")
            } else {
                format!("epochs 1-{freeze}: the output layer alone trains")
            });
        }
        for_each_prepared_batch(&order, bs, prepare, |k, rows, pixels| -> Result<(), StageError> {
            ctx.check_cancelled()?;
            let rate = schedule.rate(base_rate, step_index, total_steps);
            opt.set_lr_group(0, rate * p.backbone_lr);
            opt.set_lr_group(HEAD_GROUP, rate);
            step_index += 1;
            let input = pre.tensor(data, rows, &pixels, device).map_err(torch_error(format!("epoch {epoch}, the batch's images")))?;
            let targets = task.target_tensor(rows, device).map_err(torch_error(format!("epoch {epoch}, the batch's targets")))?;
            let value =
                train_step(&net, &mut opt, task, &input, &targets, weights.as_ref(), smoothing).map_err(|e| e.at(epoch, base_rate))?;
            sum += value * rows.len() as f64;
            seen += rows.len();
            ctx.progress(k as u64 + 1, steps, &format!("batches, epoch {epoch}/{epochs}, loss {:.4}", sum / seen as f64));
            Ok(())
        })?;
        let eval_targets = task.target_tensor(&eval_rows, device).map_err(torch_error(format!("epoch {epoch}, the validation targets")))?;
        let (val_loss, scores) = evaluate(&net, data, task, &eval_rows, Some(&eval_targets), bs, device, tta, pre)
            .map_err(|e| StageError::Failed(format!("epoch {epoch}, validation: {e}")))?;
        let (columns, summary) = task.epoch_metrics(&eval_rows, &scores);
        last_accuracy = (!scores.is_empty()).then(|| {
            let Targets::Single(t) = &task.targets else { return f64::NAN };
            let truth: Vec<usize> = eval_rows.iter().map(|&i| t[i].expect("picked") as usize).collect();
            top_k_accuracy(&truth, &scores, 1)
        });
        let train_loss = sum / seen as f64;
        let _ = writeln!(history, "{epoch},{train_loss:.6},{val_loss:.6},{columns},{:.2}", clock.elapsed().as_secs_f64());
        ctx.log(format!("epoch {epoch}: train loss {train_loss:.4}, validation loss {val_loss:.4}, {summary}"));
        if val_loss < best {
            best = val_loss;
            since_best = 0;
            vs.save(&best_path).map_err(|e| StageError::Failed(format!("saving the model: {e}")))?;
        } else {
            since_best += 1;
            if patience > 0 && since_best >= patience {
                ctx.log(format!("early stop after epoch {epoch}: no better validation loss for {patience} epochs"));
                break;
            }
        }
    }
    if let (Some(acc), Some((majority, class))) = (last_accuracy, majority_rate(task, &eval_rows))
        && acc < majority
    {
        ctx.warn(format!(
            "training did not learn: the last epoch's validation accuracy {acc:.3} is below the majority-class rate {majority:.3} (always `{class}`); the run probably diverged: lower learning_rate, or check class_weights"
        ));
    }
    let mut vs = vs;
    vs.load(&best_path).map_err(|e| StageError::Failed(format!("reloading the best model: {e}")))?;
    let (_, scores) = evaluate(&net, data, task, &test, None, bs, device, tta, pre)
        .map_err(|e| StageError::Failed(format!("predicting the test images: {e}")))?;
    pipe_core::fsx::write(ctx.out_dir().join("history.csv"), history)?;
    Ok(Fitted { trained: Trained { _vs: vs, net, device, batch_size: bs, tta, pre }, test, scores, validation: eval_rows })
}

/// Probabilities over `rows` in evaluation mode, and with `targets`, the
/// mean loss per image (of the images as they are). With `tta`, each
/// image's probabilities are the mean of its own and its mirror image's.
/// An error says which part of which batch failed; the caller names the
/// step (validation, test predictions).
/// Why scoring a set of images failed: a libtorch call on one batch, or
/// probabilities that do not line up with the batch's images.
#[derive(Debug, thiserror::Error)]
enum EvalError {
    #[error("batch {batch}, {part}: {source}")]
    Torch {
        batch: usize,
        part: &'static str,
        #[source]
        source: TchError,
    },
    #[error("batch {batch}: {got} probabilities for {images} images of {outputs} outputs")]
    Misaligned { batch: usize, got: usize, images: usize, outputs: usize },
}

#[allow(clippy::too_many_arguments)]
fn evaluate(
    net: &Net,
    data: &Dataset,
    task: &Task,
    rows: &[usize],
    targets: Option<&Tensor>,
    bs: usize,
    device: Device,
    tta: bool,
    pre: Preprocess,
) -> Result<(f64, Vec<Vec<f64>>), EvalError> {
    let _guard = tch::no_grad_guard();
    let n = task.classes.len();
    let mut scores = Vec::with_capacity(rows.len());
    let mut loss = 0.0;
    for_each_prepared_batch(
        rows,
        bs,
        |chunk| pre.pixels(data, chunk),
        |k, chunk, pixels| -> Result<(), EvalError> {
            let failed = |part: &'static str| move |source: TchError| EvalError::Torch { batch: k + 1, part, source };
            let input = pre.tensor(data, chunk, &pixels, device).map_err(failed("the images"))?;
            let logits = net.f_forward_t(&input, false).map_err(failed("the forward pass"))?;
            if let Some(targets) = targets {
                let t = targets.f_narrow(0, (k * bs) as i64, chunk.len() as i64).map_err(failed("the targets"))?;
                loss +=
                    task.loss(&logits, &t, None, Reduction::Sum, 0.0).and_then(|l| l.f_double_value(&[])).map_err(failed("the loss"))?;
            }
            let mut probs = task.probabilities(&logits).map_err(failed("the probabilities"))?;
            if tta {
                let mirrored = input
                    .f_flip([3])
                    .and_then(|m| net.f_forward_t(&m, false))
                    .and_then(|logits| task.probabilities(&logits))
                    .map_err(failed("the mirror images (tta)"))?;
                probs = probs.f_add(&mirrored).and_then(|p| p.f_div_scalar(2.0)).map_err(failed("averaging with the mirror images"))?;
            }
            let flat = probs
                .f_to_device(Device::Cpu)
                .and_then(|p| p.f_flatten(0, -1))
                .and_then(Vec::<f64>::try_from)
                .map_err(failed("reading the probabilities"))?;
            if n == 0 || flat.len() != chunk.len() * n {
                return Err(EvalError::Misaligned { batch: k + 1, got: flat.len(), images: chunk.len(), outputs: n });
            }
            scores.extend(flat.chunks(n).map(<[f64]>::to_vec));
            Ok(())
        },
    )?;
    Ok((loss / rows.len().max(1) as f64, scores))
}

/// `cnn-stage2`, run by `pipe-torch`: learns the classes stage 1 folds into
/// "other", on those images only; then combines. For each test image: stage
/// 1's class when it is a kept class, else stage 2's. Combined scores are
/// probabilities: P(kept class) from stage 1, P(other) x P(class | other)
/// for the rest. `predictions.*` hold the combination (all N classes; the
/// file `combined` marks it); `stage2/predictions.*` hold stage 2 alone, on
/// the test images of its own classes.
pub fn run_stage2(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: CnnStage2Params = ctx.typed_params()?;
    let input = ctx.input("images")?.dir.clone();
    let stage1_dir = ctx.input("stage1")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::from)?;
    let first = Predictions::read(&stage1_dir).map_err(StageError::from)?;
    let n = data.meta.classes.len();
    let keep = first.meta.classes.len().saturating_sub(1);
    if first.meta.classes.last().map(String::as_str) != Some("other")
        || keep == 0
        || keep >= n
        || first.meta.classes[..keep] != data.meta.classes[..keep]
    {
        return Err(StageError::Failed(
            "input `stage1` must be a cnn-stage1 stage with keep = N (fewer than all classes) on the same images".into(),
        ));
    }
    if first.ids.iter().zip(&first.sources).any(|(&i, s)| data.rows.get(i as usize).is_none_or(|r| &r.source != s)) {
        return Err(StageError::Failed(
            "stage 1 predicted other images than `images` holds: give both stages the same images input".into(),
        ));
    }
    let task = Task {
        classes: data.meta.classes[keep..].to_vec(),
        targets: Targets::Single(
            data.rows.iter().map(|r| (r.label_id as usize >= keep).then(|| (r.label_id as usize - keep) as i64)).collect(),
        ),
    };
    let test_rows: Vec<usize> = first.ids.iter().map(|&i| i as usize).collect();
    let rest = if let Some(trained) = ctx.trained() {
        // `pipe predict`: stage 1's predictions are of the new images.
        load_trained(ctx, &data, &p.training, task.classes.len(), trained)?.probabilities(&data, &task, &test_rows)?
    } else {
        let fitted = train(ctx, &data, &task, &p.training, Loss { class_weights: p.class_weights, label_smoothing: p.label_smoothing })?;
        let alone = single_predictions(&data, &task, &fitted);
        let alone_dir = ctx.out_dir().join("stage2");
        pipe_core::fsx::create_dir_all(&alone_dir)?;
        alone.write(&alone_dir).map_err(StageError::from)?;
        fitted.trained.probabilities(&data, &task, &test_rows)?
    };
    let mut scores = Vec::with_capacity(test_rows.len());
    let mut y_pred = Vec::with_capacity(test_rows.len());
    for (k, s1) in first.scores.iter().enumerate() {
        let (pred, s) = combine(s1, first.y_pred[k] as usize, &rest[k]);
        y_pred.push(pred as u32);
        scores.push(s);
    }
    Predictions {
        meta: PredictionsMeta { task: "single".into(), classes: data.meta.classes.clone() },
        ids: first.ids.clone(),
        sources: first.sources.clone(),
        y_true: test_rows.iter().map(|&i| data.rows[i].label_id).collect(),
        y_pred,
        scores,
    }
    .write(ctx.out_dir())
    .map_err(StageError::from)?;
    Ok(pipe_core::fsx::write(ctx.out_dir().join("combined"), "stage 1's class when kept, else stage 2's\n")?)
}

/// The two-step combination for one image, from stage 1's probabilities
/// over (the kept classes, "other") and its predicted class, and stage 2's
/// probabilities over the rest: the N-class prediction (stage 1's class when
/// it is a kept class, else stage 2's) and N scores (P(kept class), and
/// P(other) x P(class | other) for the rest).
pub fn combine(stage1: &[f64], stage1_class: usize, stage2: &[f64]) -> (usize, Vec<f64>) {
    let keep = stage1.len() - 1;
    let mut scores = stage1[..keep].to_vec();
    scores.extend(stage2.iter().map(|p| stage1[keep] * p));
    let class = if stage1_class < keep { stage1_class } else { keep + pipe_core::data::predictions::argmax(stage2) };
    (class, scores)
}

/// `cnn-stage1`, run by `pipe-torch`.
pub fn run_stage1(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: CnnStage1Params = ctx.typed_params()?;
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::from)?;
    let n = data.meta.classes.len();
    let keep = match p.keep {
        IntOr::Int(k) => (k as usize).min(n),
        IntOr::Word(cnn::All::All) => n,
    };
    // Classes are numbered most frequent first (see `load`), so keeping the
    // first `keep` keeps the dominant ones.
    let task = if keep >= n {
        Task {
            classes: data.meta.classes.clone(),
            targets: Targets::Single(data.rows.iter().map(|r| Some(i64::from(r.label_id))).collect()),
        }
    } else {
        let mut classes = data.meta.classes[..keep].to_vec();
        classes.push("other".into());
        Task { classes, targets: Targets::Single(data.rows.iter().map(|r| Some((r.label_id as usize).min(keep) as i64)).collect()) }
    };
    if let Some(trained) = ctx.trained() {
        // `pipe predict`: every image of the input, with the trained network.
        let task = unlabelled(trained_classes(trained)?, data.rows.len());
        let rows: Vec<usize> = (0..data.rows.len()).collect();
        let scores = load_trained(ctx, &data, &p.training, task.classes.len(), trained)?.probabilities(&data, &task, &rows)?;
        return Predictions {
            meta: PredictionsMeta { task: "single".into(), classes: task.classes.clone() },
            ids: rows.iter().map(|&i| i as u32).collect(),
            sources: rows.iter().map(|&i| data.rows[i].source.clone()).collect(),
            y_true: rows.iter().map(|&i| data.rows[i].label_id).collect(),
            y_pred: scores.iter().map(|s| pipe_core::data::predictions::argmax(s) as u32).collect(),
            scores,
        }
        .write(ctx.out_dir())
        .map_err(StageError::from);
    }
    let fitted = train(ctx, &data, &task, &p.training, Loss { class_weights: p.class_weights, label_smoothing: p.label_smoothing })?;
    single_predictions(&data, &task, &fitted).write(ctx.out_dir()).map_err(StageError::from)
}
