//! Training and prediction for the CNN kinds, with libtorch (tch), in the
//! shape of tch-rs's MNIST example: a `Net` built from a `nn::Path`,
//! `ModuleT` for train/eval, Adam, `no_grad` evaluation. It lives in the
//! `pipe-torch` executable itself: code in the library that referenced tch
//! would make every binary load libtorch (the linker keeps a library a
//! binary's objects mention, even in functions it then drops).

use std::fmt::Write as _;
use std::time::Instant;

use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

use pipe::data::dataset::Dataset;
use pipe::data::predictions::{Predictions, PredictionsMeta};
use pipe::data::rng::Rng;
use pipe::data::split::Split;
use pipe::metrics::top_k_accuracy;
use pipe::stages::{ParamValue, Params, StageContext, StageError};

/// AlexNet's shape (5 convolutions, 3 fully connected layers, dropout),
/// scaled by `width` and `hidden`.
#[derive(Debug)]
struct Net {
    convs: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    fc1: nn::Linear,
    fc2: nn::Linear,
    out: nn::Linear,
    dropout: f64,
}

impl Net {
    fn new(vs: &nn::Path, channels: i64, width: i64, hidden: i64, classes: i64, batch_norm: bool, dropout: f64) -> Net {
        let plan = [
            (channels, width, 5, 2),
            (width, 3 * width, 5, 2),
            (3 * width, 6 * width, 3, 1),
            (6 * width, 4 * width, 3, 1),
            (4 * width, 4 * width, 3, 1),
        ];
        let convs = plan
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, k, pad))| {
                let conv = nn::conv2d(vs / format!("conv{i}"), cin, cout, k, nn::ConvConfig { padding: pad, ..Default::default() });
                let bn = batch_norm.then(|| nn::batch_norm2d(vs / format!("bn{i}"), cout, Default::default()));
                (conv, bn)
            })
            .collect();
        let flat = 4 * width * 4 * 4;
        Net {
            convs,
            fc1: nn::linear(vs / "fc1", flat, hidden, Default::default()),
            fc2: nn::linear(vs / "fc2", hidden, hidden, Default::default()),
            out: nn::linear(vs / "out", hidden, classes, Default::default()),
            dropout,
        }
    }
}

impl ModuleT for Net {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            x = x.apply(conv);
            if let Some(bn) = bn {
                x = x.apply_t(bn, train);
            }
            x = x.relu();
            if i == 0 || i == 1 || i == 4 {
                x = x.max_pool2d_default(2);
            }
        }
        x.adaptive_avg_pool2d([4, 4])
            .flatten(1, -1)
            .dropout(self.dropout, train)
            .apply(&self.fc1)
            .relu()
            .dropout(self.dropout, train)
            .apply(&self.fc2)
            .relu()
            .apply(&self.out)
    }
}

/// Images `rows` of the dataset as a normalised float batch, NCHW.
fn batch(data: &Dataset, rows: &[usize], device: Device) -> Tensor {
    let (s, c) = (data.pixels.height as i64, data.pixels.channels as i64);
    let mut bytes = Vec::with_capacity(rows.len() * data.pixels.image_len());
    for &r in rows {
        bytes.extend_from_slice(data.pixels.image(r));
    }
    Tensor::from_data_size(&bytes, &[rows.len() as i64, s, s, c], Kind::Uint8).to_device(device).permute([0, 3, 1, 2]).to_kind(Kind::Float)
        / 255.0
        * 4.0
        - 2.0
}

fn device(p: &Params) -> Result<Device, StageError> {
    match p.str("device") {
        Some("cpu") => Ok(Device::Cpu),
        Some("cuda") if !tch::Cuda::is_available() => {
            Err(StageError::Failed("device = \"cuda\" but no CUDA device is available: use device = \"auto\" or \"cpu\"".into()))
        }
        Some("cuda") => Ok(Device::Cuda(0)),
        _ => Ok(Device::cuda_if_available()),
    }
}

/// What a CNN learns: the class of each image (`None`: left out).
pub struct Task {
    pub classes: Vec<String>,
    pub target: Vec<Option<i64>>,
}

/// A trained network, for predicting more images.
struct Trained {
    _vs: nn::VarStore,
    net: Net,
    device: Device,
    batch_size: usize,
}

impl Trained {
    /// Softmax probabilities of `rows`.
    fn probabilities(&self, data: &Dataset, rows: &[usize]) -> Vec<Vec<f64>> {
        let zeros = Tensor::zeros([rows.len() as i64], (Kind::Int64, self.device));
        evaluate(&self.net, data, rows, &zeros, self.batch_size, self.device).1
    }
}

/// Trains on the training split (validation split for model choice) and
/// predicts the test split, writing the stage's output files.
pub fn train_and_predict(ctx: &mut StageContext, data: &Dataset, task: &Task) -> Result<(), StageError> {
    let (predictions, _) = train(ctx, data, task)?;
    predictions.write(ctx.out_dir()).map_err(StageError::Failed)
}

/// Trains (writing `history.csv` and `model.safetensors`) and predicts the
/// task's test images.
fn train(ctx: &mut StageContext, data: &Dataset, task: &Task) -> Result<(Predictions, Trained), StageError> {
    let p = ctx.params.clone();
    let device = device(&p)?;
    tch::set_num_threads(ctx.threads as i32);
    tch::manual_seed(ctx.seed as i64);
    let pick = |split: Split| -> Vec<usize> {
        (0..data.rows.len()).filter(|&i| data.rows[i].split == split && task.target[i].is_some()).collect()
    };
    let (train, val, test) = (pick(Split::Train), pick(Split::Validation), pick(Split::Test));
    if train.is_empty() || test.is_empty() {
        return Err(StageError::Failed("no training or no test images for this task: check the load stage's fractions".into()));
    }
    let n_classes = task.classes.len() as i64;
    let vs = nn::VarStore::new(device);
    let net = Net::new(
        &vs.root(),
        data.pixels.channels as i64,
        p.int("width"),
        p.int("hidden"),
        n_classes,
        p.bool("batch_norm"),
        p.float("dropout"),
    );
    let mut opt = nn::Adam::default().build(&vs, p.float("learning_rate")).map_err(|e| StageError::Failed(format!("optimizer: {e}")))?;
    let weights = (p.str("class_weights") == Some("balanced")).then(|| {
        let counts: Vec<f64> = (0..n_classes).map(|c| train.iter().filter(|&&i| task.target[i] == Some(c)).count() as f64).collect();
        let present = counts.iter().filter(|c| **c > 0.0).count() as f64;
        let w: Vec<f32> = counts.iter().map(|&c| if c == 0.0 { 0.0 } else { (train.len() as f64 / (present * c)) as f32 }).collect();
        Tensor::from_slice(&w).to_device(device)
    });
    let targets =
        |rows: &[usize]| Tensor::from_slice(&rows.iter().map(|&i| task.target[i].expect("picked")).collect::<Vec<i64>>()).to_device(device);
    let bs = p.int("batch_size") as usize;
    let epochs = p.int("epochs") as usize;
    let patience = p.int("patience") as usize;
    let best_path = ctx.out_dir().join("model.safetensors");
    let mut history = String::from("epoch,train_loss,val_loss,val_accuracy,val_top3,val_top5,seconds\n");
    let (mut best, mut since_best) = (f64::INFINITY, 0);
    let mut order = train.clone();
    for epoch in 1..=epochs {
        let clock = Instant::now();
        Rng::new(ctx.seed, &format!("cnn/epoch/{epoch}")).shuffle(&mut order);
        let (mut sum, mut seen) = (0.0, 0usize);
        for (step, rows) in order.chunks(bs).enumerate() {
            ctx.check_cancelled()?;
            let logits = net.forward_t(&batch(data, rows, device), true);
            let loss = logits.cross_entropy_loss(&targets(rows), weights.as_ref(), Reduction::Mean, -100, 0.0);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(StageError::Failed(format!(
                    "epoch {epoch}: the loss became {value}: lower learning_rate (now {})",
                    p.float("learning_rate")
                )));
            }
            opt.backward_step(&loss);
            sum += value * rows.len() as f64;
            seen += rows.len();
            ctx.progress(((epoch - 1) * order.len().div_ceil(bs) + step + 1) as u64, (epochs * order.len().div_ceil(bs)) as u64, "batches");
        }
        let eval_rows = if val.is_empty() { &train } else { &val };
        let (val_loss, scores) = evaluate(&net, data, eval_rows, &targets(eval_rows), bs, device);
        let truth: Vec<usize> = eval_rows.iter().map(|&i| task.target[i].expect("picked") as usize).collect();
        let acc = top_k_accuracy(&truth, &scores, 1);
        let _ = writeln!(
            history,
            "{epoch},{:.6},{val_loss:.6},{acc:.6},{:.6},{:.6},{:.2}",
            sum / seen as f64,
            top_k_accuracy(&truth, &scores, 3),
            top_k_accuracy(&truth, &scores, 5),
            clock.elapsed().as_secs_f64()
        );
        ctx.log(format!("epoch {epoch}: train loss {:.4}, validation loss {val_loss:.4}, accuracy {acc:.4}", sum / seen as f64));
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
    let mut vs = vs;
    vs.load(&best_path).map_err(|e| StageError::Failed(format!("reloading the best model: {e}")))?;
    let (_, scores) = evaluate(&net, data, &test, &targets(&test), bs, device);
    let predictions = Predictions {
        meta: PredictionsMeta { task: "single".into(), classes: task.classes.clone() },
        ids: test.iter().map(|&i| i as u32).collect(),
        sources: test.iter().map(|&i| data.rows[i].source.clone()).collect(),
        y_true: test.iter().map(|&i| task.target[i].expect("picked") as u32).collect(),
        y_pred: scores.iter().map(|s| pipe::data::svm::argmax(s) as u32).collect(),
        scores,
    };
    std::fs::write(ctx.out_dir().join("history.csv"), history).map_err(|e| StageError::Failed(e.to_string()))?;
    Ok((predictions, Trained { _vs: vs, net, device, batch_size: bs }))
}

/// Mean loss and softmax probabilities over `rows`, in evaluation mode.
fn evaluate(net: &Net, data: &Dataset, rows: &[usize], targets: &Tensor, bs: usize, device: Device) -> (f64, Vec<Vec<f64>>) {
    let _guard = tch::no_grad_guard();
    let mut scores = Vec::with_capacity(rows.len());
    let mut loss = 0.0;
    for (k, chunk) in rows.chunks(bs).enumerate() {
        let logits = net.forward_t(&batch(data, chunk, device), false);
        let t = targets.narrow(0, (k * bs) as i64, chunk.len() as i64);
        loss += logits.cross_entropy_loss::<Tensor>(&t, None, Reduction::Sum, -100, 0.0).double_value(&[]);
        let probs = logits.softmax(-1, Kind::Double).to_device(Device::Cpu);
        let flat: Vec<f64> = Vec::<f64>::try_from(probs.flatten(0, -1)).unwrap_or_default();
        let n = flat.len() / chunk.len().max(1);
        scores.extend(flat.chunks(n.max(1)).map(<[f64]>::to_vec));
    }
    (loss / rows.len().max(1) as f64, scores)
}

/// `cnn-stage2`, run by `pipe-torch`: learns the classes stage 1 folds into
/// "other", on those images only; then combines. For each test image: stage
/// 1's class when it is a kept class, else stage 2's. Combined scores are
/// probabilities: P(kept class) from stage 1, P(other) x P(class | other)
/// for the rest. `predictions.*` hold the combination (all N classes; the
/// file `combined` marks it); `stage2/predictions.*` hold stage 2 alone, on
/// the test images of its own classes.
pub fn run_stage2(ctx: &mut StageContext) -> Result<(), StageError> {
    let input = ctx.input("images")?.dir.clone();
    let stage1_dir = ctx.input("stage1")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::Failed)?;
    let first = Predictions::read(&stage1_dir).map_err(StageError::Failed)?;
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
        target: data.rows.iter().map(|r| (r.label_id as usize >= keep).then(|| (r.label_id as usize - keep) as i64)).collect(),
    };
    let (alone, trained) = train(ctx, &data, &task)?;
    let alone_dir = ctx.out_dir().join("stage2");
    std::fs::create_dir_all(&alone_dir).map_err(|e| StageError::Failed(e.to_string()))?;
    alone.write(&alone_dir).map_err(StageError::Failed)?;
    let test_rows: Vec<usize> = first.ids.iter().map(|&i| i as usize).collect();
    let rest = trained.probabilities(&data, &test_rows);
    let mut scores = Vec::with_capacity(test_rows.len());
    let mut y_pred = Vec::with_capacity(test_rows.len());
    for (k, s1) in first.scores.iter().enumerate() {
        let mut s: Vec<f64> = s1[..keep].to_vec();
        s.extend(rest[k].iter().map(|p| s1[keep] * p));
        let p1 = first.y_pred[k] as usize;
        y_pred.push(if p1 < keep { p1 as u32 } else { (keep + pipe::data::svm::argmax(&rest[k])) as u32 });
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
    .map_err(StageError::Failed)?;
    std::fs::write(ctx.out_dir().join("combined"), "stage 1's class when kept, else stage 2's\n")
        .map_err(|e| StageError::Failed(e.to_string()))
}

/// `cnn-stage1`, run by `pipe-torch`.
pub fn run_stage1(ctx: &mut StageContext) -> Result<(), StageError> {
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::Failed)?;
    let n = data.meta.classes.len();
    let keep = match ctx.params.get("keep") {
        ParamValue::Int(k) => (*k as usize).min(n),
        _ => n,
    };
    // Classes are numbered most frequent first (see `load`), so keeping the
    // first `keep` keeps the dominant ones.
    let task = if keep >= n {
        Task { classes: data.meta.classes.clone(), target: data.rows.iter().map(|r| Some(i64::from(r.label_id))).collect() }
    } else {
        let mut classes = data.meta.classes[..keep].to_vec();
        classes.push("other".into());
        Task { classes, target: data.rows.iter().map(|r| Some((r.label_id as usize).min(keep) as i64)).collect() }
    };
    train_and_predict(ctx, &data, &task)
}
