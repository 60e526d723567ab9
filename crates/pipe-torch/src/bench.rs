//! `pipe-torch bench IMAGES`: training benchmarks on an images artifact
//! (the folder of a load or augment stage's cache entry; `scripts/bench.py
//! --cnn` finds the default pipeline's). Prints a Markdown table:
//! - images/s of one epoch of the default pipeline's CNN (small, width 16,
//!   hidden 256, batch norm, batch 64) fed as in training (batches prepared on a second
//!   thread), against the same steps on one pre-built batch in a tight loop:
//!   the difference is what feeding costs; and the same epoch with the
//!   pixels copied into memory instead of read from the memory-mapped file;
//! - the machine's sgemm peak (2048x2048 in libtorch) and the GFLOP/s the
//!   default net and the real AlexNet (224x224, width 64, hidden 4096,
//!   batch 32, on batches upscaled to 224x224) achieve against it, with
//!   AlexNet's seconds per epoch of these training images.
//!
//! Each measurement is taken twice, the faster kept, all in one process.

use std::time::Instant;

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use pipe_core::data::dataset::Dataset;
use pipe_core::data::split::Split;
use pipe_core::kinds::cnn::{CnnStage1Params, Training};
use pipe_core::kinds::{ParamValue, Params};

use crate::cnn_train::{Net, StepError, Targets, Task, batch_tensor, build_net, for_each_batch, train_step};

/// `cnn-stage1`'s training parameters with these, the rest at their defaults.
fn params(arch: &str, width: i64, hidden: i64, batch_norm: bool) -> Training {
    training(serde_json::json!({ "arch": arch, "width": width, "hidden": hidden, "dropout": 0.5, "batch_norm": batch_norm }))
}

/// `cnn-stage1`'s training parameters: its defaults, with `overrides` (an
/// object of parameter values by name).
pub fn training(overrides: serde_json::Value) -> Training {
    let kind = pipe_core::kinds::kind("cnn-stage1").expect("registered");
    let json: serde_json::Map<String, serde_json::Value> = kind
        .params
        .iter()
        .map(|d| (d.name.to_string(), overrides.get(d.name).cloned().unwrap_or_else(|| ParamValue::from(d.default).to_json())))
        .collect();
    let params = Params::from_json(kind, &serde_json::Value::Object(json)).expect("valid parameters");
    params.typed::<CnnStage1Params>().expect("parameters that fit the struct").training
}

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: pipe-torch bench IMAGES_DIR (an images artifact: a load or augment stage's output folder)");
        return 2;
    };
    match Dataset::read(std::path::Path::new(dir)).map_err(|e| e.to_string()).and_then(|data| run(&data)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// One timed training step: a loss that is not finite is timed like any
/// other; a libtorch error ends the benchmark.
fn step(net: &Net, opt: &mut nn::Optimizer, task: &Task, input: &Tensor, targets: &Tensor) -> Result<(), String> {
    match train_step(net, opt, task, input, targets, None, 0.0) {
        Ok(_) | Err(StepError::NonFinite(_)) => Ok(()),
        Err(StepError::Torch(part, e)) => Err(format!("training step, {part}: {e}")),
    }
}

fn run(data: &Dataset) -> Result<(), String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let train: Vec<usize> = (0..data.rows.len()).filter(|&i| data.rows[i].split == Split::Train).collect();
    let task = Task {
        classes: data.meta.classes.clone(),
        targets: Targets::Single(data.rows.iter().map(|r| Some(i64::from(r.label_id))).collect()),
    };
    let side = data.pixels.height;
    println!("{} training images of {side}x{side}, {} classes, {threads} threads\n", train.len(), task.classes.len());

    // The default pipeline's CNN: fed as in training, then a tight loop.
    let (bs, device) = (64, Device::Cpu);
    let vs = nn::VarStore::new(device);
    // The default pipeline's CNNs.
    let small = params("small", 16, 256, true);
    let net = build_net(&vs.root(), &small, data.pixels.channels, task.classes.len());
    let mut opt = nn::Adam::default().build(&vs, 1e-3).map_err(|e| format!("optimizer: {e}"))?;
    let steps = train.len().div_ceil(bs);
    let epoch_fed = |data: &Dataset, net: &Net, opt: &mut nn::Optimizer| -> Result<f64, String> {
        let clock = Instant::now();
        for_each_batch(data, &train, bs, |_, rows, pixels| -> Result<(), String> {
            let input = batch_tensor(data, rows, &pixels, device).map_err(|e| format!("a batch's images: {e}"))?;
            let targets = task.target_tensor(rows, device).map_err(|e| format!("a batch's targets: {e}"))?;
            step(net, opt, &task, &input, &targets)
        })?;
        Ok(train.len() as f64 / clock.elapsed().as_secs_f64())
    };
    let first: Vec<usize> = train.iter().copied().take(bs).collect();
    let input = batch_tensor(data, &first, &crate::cnn_train::batch_pixels(data, &first), device)
        .map_err(|e| format!("the tight loop's images: {e}"))?;
    let targets = task.target_tensor(&first, device).map_err(|e| format!("the tight loop's targets: {e}"))?;
    let tight = |net: &Net, opt: &mut nn::Optimizer| -> Result<f64, String> {
        let clock = Instant::now();
        for _ in 0..steps {
            step(net, opt, &task, &input, &targets)?;
        }
        Ok((steps * bs) as f64 / clock.elapsed().as_secs_f64())
    };
    // The same pixels copied into memory: what reading them from the
    // memory-mapped file costs, if anything.
    let in_memory = data.clone();
    epoch_fed(data, &net, &mut opt)?; // warm-up
    let (mut fed_rate, mut tight_rate, mut memory_rate) = (0f64, 0f64, 0f64);
    for _ in 0..2 {
        fed_rate = fed_rate.max(epoch_fed(data, &net, &mut opt)?);
        memory_rate = memory_rate.max(epoch_fed(&in_memory, &net, &mut opt)?);
        tight_rate = tight_rate.max(tight(&net, &mut opt)?);
    }
    drop(in_memory);
    println!("| benchmark | result |\n|---|---|");
    println!("| default CNN (small, width 16, hidden 256, batch norm, batch 64), fed as in training | {fed_rate:.0} images/s |");
    println!(
        "| the same, pixels copied into memory instead of memory-mapped | {memory_rate:.0} images/s (mapped: {:+.1}%) |",
        (fed_rate / memory_rate - 1.0) * 100.0
    );
    println!("| the same, one pre-built batch in a tight loop | {tight_rate:.0} images/s |");
    println!("| cost of data feeding | {:.1}% |", (1.0 - fed_rate / tight_rate) * 100.0);
    // A training step costs about three forward passes (forward, and the
    // two gradients of the backward pass).
    let train_gflop = |t: &Training, side: i64| {
        let shape = crate::cnn_train::shape(t, data.pixels.channels, task.classes.len());
        3.0 * crate::nets::forward_flops(t.arch, shape, side) / 1e9
    };
    let peak = sgemm_peak();
    println!("| sgemm 2048x2048 (libtorch), the machine's peak | {peak:.0} GFLOP/s |");
    let small_rate = tight_rate * train_gflop(&small, side as i64);
    println!("| default CNN, achieved | {small_rate:.1} GFLOP/s ({:.0}% of peak) |", 100.0 * small_rate / peak);

    // The real AlexNet at 224x224, batch 32 (the paper's configuration).
    let (bs, paper_side) = (32usize, 224i64);
    let vs = nn::VarStore::new(device);
    let alexnet = params("alexnet", 64, 4096, false);
    let net = build_net(&vs.root(), &alexnet, data.pixels.channels, task.classes.len());
    let mut opt = nn::Adam::default().build(&vs, 1e-4).map_err(|e| format!("optimizer: {e}"))?;
    let rows: Vec<usize> = train.iter().copied().take(bs).collect();
    let input = batch_tensor(data, &rows, &crate::cnn_train::batch_pixels(data, &rows), device)
        .and_then(|x| x.f_upsample_bilinear2d([paper_side, paper_side], false, None, None))
        .and_then(|x| x.f_to_kind(Kind::Float))
        .map_err(|e| format!("AlexNet's 224x224 batch: {e}"))?;
    let targets = task.target_tensor(&rows, device).map_err(|e| format!("AlexNet's targets: {e}"))?;
    step(&net, &mut opt, &task, &input, &targets)?; // warm-up
    let timed_steps = 3;
    let mut per_step = f64::INFINITY;
    for _ in 0..2 {
        let clock = Instant::now();
        for _ in 0..timed_steps {
            step(&net, &mut opt, &task, &input, &targets)?;
        }
        per_step = per_step.min(clock.elapsed().as_secs_f64() / timed_steps as f64);
    }
    let epoch = per_step * train.len().div_ceil(bs) as f64;
    let rate = bs as f64 / per_step;
    let gflops = rate * train_gflop(&alexnet, paper_side);
    println!("| AlexNet (224x224, width 64, hidden 4096, batch 32), one step | {per_step:.2} s ({rate:.1} images/s) |");
    println!("| AlexNet, achieved | {gflops:.0} GFLOP/s ({:.0}% of peak) |", 100.0 * gflops / peak);
    println!("| the same, one epoch of these {} training images | {:.0} s ({:.1} min) |", train.len(), epoch, epoch / 60.0);
    Ok(())
}

/// GFLOP/s of a 2048x2048 single-precision matrix product, the best of 5.
fn sgemm_peak() -> f64 {
    let a = tch::Tensor::randn([2048, 2048], (Kind::Float, Device::Cpu));
    let b = tch::Tensor::randn([2048, 2048], (Kind::Float, Device::Cpu));
    let _ = a.matmul(&b);
    (0..5)
        .map(|_| {
            let clock = Instant::now();
            let _ = a.matmul(&b);
            2.0 * 2048f64.powi(3) / clock.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}
