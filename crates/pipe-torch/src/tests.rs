//! Tests of the torch kinds on small generated datasets: they learn well
//! above chance in a few epochs, are deterministic for a seed, combine the
//! two steps as documented, and report a missing GPU clearly.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pipe_core::data::dataset::{Dataset, Meta, Row};
use pipe_core::data::predictions::{MultiPredictions, Predictions};
use pipe_core::data::split::Split;
use pipe_core::data::tensor::ImageTensor;
use pipe_core::kinds::cnn::Training;
use pipe_core::kinds::{ArtifactType, InputArtifact, KindDef, ParamValue, Params, StageContext, StageError, kind};
use pipe_core::metrics::{Average, accuracy, multi_label_f2};
use pipe_core::rng::Rng;

use super::cnn_train::StepError;

const SIZE: usize = 16;
const COLOURS: [&str; 3] = ["red", "green", "blue"];
const PATTERNS: [&str; 3] = ["solid", "rows", "columns"];

/// 240 noisy 16x16 images: the class is the colour (a bright channel), the
/// labels are the colour and the pattern (solid, horizontal or vertical
/// stripes). Splits: 60% train, 20% validation, 20% test.
fn dataset(dir: &Path) {
    let mut rng = Rng::new(1, "torch-test-data");
    let mut pixels = ImageTensor::new(SIZE, SIZE, 3);
    let mut rows = Vec::new();
    for i in 0..240usize {
        let (colour, pattern) = (i % 3, (i / 3) % 3);
        let mut img = Vec::with_capacity(SIZE * SIZE * 3);
        for y in 0..SIZE {
            for x in 0..SIZE {
                let on = match pattern {
                    0 => true,
                    1 => y % 4 < 2,
                    _ => x % 4 < 2,
                };
                for ch in 0..3 {
                    let base = if ch == colour && on { 200.0 } else { 40.0 };
                    img.push((base + rng.range(-30.0, 30.0)) as u8);
                }
            }
        }
        pixels.push(&img);
        let split = match i % 5 {
            0 => Split::Test,
            1 => Split::Validation,
            _ => Split::Train,
        };
        rows.push(Row {
            source: format!("gen:{i}"),
            label_id: colour as u32,
            labels: vec![COLOURS[colour].to_string(), PATTERNS[pattern].to_string()],
            split,
            pixel_hash: format!("{i}"),
            augmented: false,
        });
    }
    let mut data = Dataset {
        meta: Meta {
            dataset: "generated".into(),
            image_size: SIZE,
            channels: 3,
            classes: COLOURS.map(String::from).to_vec(),
            labels: COLOURS.iter().chain(&PATTERNS).map(|s| s.to_string()).collect(),
            counts: BTreeMap::new(),
            label_counts: BTreeMap::new(),
            labels_per_image: BTreeMap::new(),
            duplicates_removed: 0,
            bad: Vec::new(),
            dropped: Vec::new(),
            unsplittable: Vec::new(),
            class_weights: Vec::new(),
        },
        rows,
        pixels,
    };
    data.refresh_stats();
    data.write(dir).unwrap();
}

/// A temporary folder with the generated dataset in `data/` and an empty
/// folder for each of `outs`.
fn fixture(outs: &[&str]) -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    dataset(&data);
    let outs = outs.iter().map(|o| tmp.path().join(o)).collect::<Vec<_>>();
    for o in &outs {
        std::fs::create_dir(o).unwrap();
    }
    (tmp, data, outs)
}

/// libtorch's random generator and thread count are per process (each stage
/// runs in its own `pipe-torch`); tests in one process take turns.
static LIBTORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a torch kind with its defaults, a small network and `overrides`.
fn run(kind_name: &str, overrides: serde_json::Value, inputs: &[(&str, &Path)], out: &Path) -> Result<(), StageError> {
    run_on(2, kind_name, overrides, inputs, out)
}

/// [`run`] on `threads` threads.
fn run_on(threads: usize, kind_name: &str, overrides: serde_json::Value, inputs: &[(&str, &Path)], out: &Path) -> Result<(), StageError> {
    let kind: &'static KindDef = kind(kind_name).unwrap();
    let small = serde_json::json!({ "width": 8, "hidden": 32, "epochs": 6, "learning_rate": 0.003, "batch_size": 16, "device": "cpu" });
    let json: serde_json::Map<String, serde_json::Value> = kind
        .params
        .iter()
        .map(|d| {
            let value = overrides.get(d.name).or(small.get(d.name)).cloned().unwrap_or_else(|| ParamValue::from(d.default).to_json());
            (d.name.to_string(), value)
        })
        .collect();
    let json = serde_json::Value::Object(json);
    let params = Params::from_json(kind, &json).unwrap();
    let inputs = inputs
        .iter()
        .map(|(slot, dir)| {
            (slot.to_string(), vec![InputArtifact { stage: slot.to_string(), artifact: ArtifactType::Images, dir: dir.to_path_buf() }])
        })
        .collect();
    let mut ctx = StageContext::new(
        "test".into(),
        kind,
        params,
        3,
        inputs,
        threads,
        out.to_path_buf(),
        Arc::new(|_| {}),
        Arc::new(AtomicBool::new(false)),
    );
    let _turn = LIBTORCH.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    (super::runner(kind_name).unwrap())(&mut ctx)?;
    ctx.save_log()?;
    Ok(())
}

#[test]
fn a_flat_cnn_learns_well_above_chance_and_is_deterministic() {
    let (_tmp, data, outs) = fixture(&["a", "b"]);
    let (a, b) = (&outs[0], &outs[1]);
    for out in [a, b] {
        run("cnn-stage1", serde_json::json!({}), &[("images", &data)], out).unwrap();
    }
    let p = Predictions::read(a).unwrap();
    let to = |v: &[u32]| v.iter().map(|&c| c as usize).collect::<Vec<_>>();
    let acc = accuracy(&to(&p.y_true), &to(&p.y_pred));
    assert!(acc >= 0.9, "accuracy {acc} (chance: 0.33)");
    for file in ["predictions.csv", "model.safetensors"] {
        assert!(std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap(), "{file} differs between two runs");
    }
    let history = std::fs::read_to_string(a.join("history.csv")).unwrap();
    assert!(history.starts_with("epoch,train_loss,val_loss,val_accuracy,val_top3,val_top5,seconds\n"), "{history}");
    assert_eq!(history.lines().count(), 7);
}

#[test]
fn without_a_validation_split_the_cnn_says_it_chooses_on_training_images() {
    let (_tmp, data, outs) = fixture(&["out"]);
    let mut d = Dataset::read(&data).unwrap();
    for r in &mut d.rows {
        if r.split == Split::Validation {
            r.split = Split::Train;
        }
    }
    d.refresh_stats();
    d.write(&data).unwrap();
    run("cnn-stage1", serde_json::json!({ "epochs": 1 }), &[("images", &data)], &outs[0]).unwrap();
    let log = std::fs::read_to_string(outs[0].join("stage.log")).unwrap();
    assert!(log.contains("warning: no validation split: the epoch whose weights are kept is chosen on the training images"), "{log}");
}

#[test]
fn multilabel_learns_label_sets_with_a_tuned_threshold() {
    let (_tmp, data, outs) = fixture(&["out"]);
    let out = &outs[0];
    // 16-pixel stripes (shifts would mostly add white borders) and a short
    // run on a toy set, which a constant rate learns fastest.
    run("multilabel", serde_json::json!({ "epochs": 10, "shift": 0.0, "schedule": "constant" }), &[("images", &data)], out).unwrap();
    let p = MultiPredictions::read(out).unwrap();
    assert_eq!(p.meta.task, "multi");
    assert_eq!(p.y_true.len(), 48);
    let sets = |v: &[Vec<u32>]| v.iter().map(|s| s.iter().map(|&l| l as usize).collect()).collect::<Vec<Vec<usize>>>();
    let f2 = multi_label_f2(&sets(&p.y_true), &sets(&p.y_pred), 6, Average::Samples);
    // Predicting all six labels scores 5/7 = 0.714; a perfect model 1.
    assert!(f2 >= 0.9, "samples F2 {f2}");
    assert!(p.y_pred.iter().all(|s| !s.is_empty()), "at_least_one");
    let thresholds = std::fs::read_to_string(out.join("thresholds.csv")).unwrap();
    assert_eq!(thresholds.lines().count(), 7, "{thresholds}");
    let t: Vec<&str> = thresholds.lines().skip(1).map(|l| l.rsplit(',').next().unwrap()).collect();
    assert!(t.iter().all(|v| *v == t[0]), "one global threshold: {t:?}");
    assert!(
        std::fs::read_to_string(out.join("history.csv")).unwrap().starts_with("epoch,train_loss,val_loss,val_f2,val_threshold,seconds\n")
    );
}

#[test]
fn a_fixed_threshold_is_used_as_given() {
    let (_tmp, data, outs) = fixture(&["out"]);
    let out = &outs[0];
    run("multilabel", serde_json::json!({ "epochs": 1, "threshold": 0.99, "at_least_one": false }), &[("images", &data)], out).unwrap();
    let p = MultiPredictions::read(out).unwrap();
    for (scores, set) in p.scores.iter().zip(&p.y_pred) {
        let expected: Vec<u32> = (0..6).filter(|&l| scores[l as usize] >= 0.99).collect();
        assert_eq!(set, &expected);
    }
    assert!(std::fs::read_to_string(out.join("thresholds.csv")).unwrap().contains("\"red\",0.99\n"));
}

/// `cnn-stage1`'s training parameters: a tiny network, the rest defaults.
fn tiny_training() -> Training {
    super::bench::training(serde_json::json!({ "width": 4, "hidden": 8, "dropout": 0.0, "batch_norm": false }))
}

#[test]
fn a_non_finite_loss_stops_training_with_the_epoch_and_a_remedy() {
    let _turn = LIBTORCH.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net = super::cnn_train::build_net(&vs.root(), &tiny_training(), 3, 2);
    let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &vs, 1e-3).unwrap();
    tch::no_grad(|| {
        for mut v in vs.trainable_variables() {
            let _ = v.fill_(f64::NAN);
        }
    });
    let task = super::cnn_train::Task {
        classes: vec!["a".into(), "b".into()],
        targets: super::cnn_train::Targets::Single(vec![Some(0), Some(1)]),
    };
    let input = tch::Tensor::zeros([2, 3, SIZE as i64, SIZE as i64], (tch::Kind::Float, tch::Device::Cpu));
    let targets = task.target_tensor(&[0, 1], tch::Device::Cpu).unwrap();
    let loss = super::cnn_train::train_step(&net, &mut opt, &task, &input, &targets, None, 0.0);
    let Err(StepError::NonFinite(value)) = loss else { panic!("a NaN loss is not trained on: {loss:?}") };
    assert!(value.is_nan());
    let message = StepError::NonFinite(value).at(3, 0.01).to_string();
    assert!(message.contains("epoch 3: the loss became NaN: lower learning_rate (now 0.01)"), "{message}");
}

#[test]
fn a_libtorch_error_in_a_step_is_an_error_that_names_the_step() {
    let _turn = LIBTORCH.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net = super::cnn_train::build_net(&vs.root(), &tiny_training(), 3, 2);
    let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &vs, 1e-3).unwrap();
    let task = super::cnn_train::Task {
        classes: vec!["a".into(), "b".into()],
        targets: super::cnn_train::Targets::Single(vec![Some(0), Some(1), Some(0)]),
    };
    let targets = task.target_tensor(&[0, 1], tch::Device::Cpu).unwrap();
    // Five channels for a network built for three: libtorch refuses the
    // convolution, and the step says so instead of panicking.
    let input = tch::Tensor::zeros([2, 5, SIZE as i64, SIZE as i64], (tch::Kind::Float, tch::Device::Cpu));
    let loss = super::cnn_train::train_step(&net, &mut opt, &task, &input, &targets, None, 0.0);
    let Err(err @ StepError::Torch("the forward pass", _)) = loss else { panic!("a shape error in the forward pass: {loss:?}") };
    let message = err.at(2, 0.01).to_string();
    assert!(message.starts_with("epoch 2, training step, the forward pass: "), "{message}");
    // Targets of another length than the batch: the loss refuses them.
    let input = tch::Tensor::zeros([2, 3, SIZE as i64, SIZE as i64], (tch::Kind::Float, tch::Device::Cpu));
    let three = task.target_tensor(&[0, 1, 2], tch::Device::Cpu).unwrap();
    let loss = super::cnn_train::train_step(&net, &mut opt, &task, &input, &three, None, 0.0);
    assert!(matches!(loss, Err(StepError::Torch("the loss", _))), "{loss:?}");
}

#[test]
fn the_two_steps_combine_as_documented() {
    // Stage 1 kept 2 classes (+ other); stage 2 knows classes 2, 3 and 4.
    let stage2 = [0.2, 0.5, 0.3];
    // Stage 1 says class 1: it stands, and the rest share P(other) = 0.1.
    let (class, scores) = super::cnn_train::combine(&[0.3, 0.6, 0.1], 1, &stage2);
    assert_eq!(class, 1);
    let expected = [0.3, 0.6, 0.02, 0.05, 0.03];
    assert!(scores.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{scores:?}");
    // Stage 1 says other: stage 2's most probable class (index 1 -> class 3).
    let (class, scores) = super::cnn_train::combine(&[0.2, 0.1, 0.7], 2, &stage2);
    assert_eq!(class, 3);
    assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn the_two_step_stages_run_end_to_end() {
    let (_tmp, data, outs) = fixture(&["one", "two"]);
    let (one, two) = (&outs[0], &outs[1]);
    run("cnn-stage1", serde_json::json!({ "keep": 1, "epochs": 2 }), &[("images", &data)], one).unwrap();
    let first = Predictions::read(one).unwrap();
    assert_eq!(first.meta.classes, ["red", "other"]);
    run("cnn-stage2", serde_json::json!({ "epochs": 2 }), &[("images", &data), ("stage1", one)], two).unwrap();
    let combined = Predictions::read(two).unwrap();
    assert_eq!(combined.meta.classes, COLOURS);
    assert_eq!(combined.ids, first.ids);
    for (k, &p1) in first.y_pred.iter().enumerate() {
        if p1 == 0 {
            assert_eq!(combined.y_pred[k], 0, "stage 1's kept class stands");
        } else {
            assert_ne!(combined.y_pred[k], 0, "\"other\" goes to stage 2's classes");
        }
    }
    let alone = Predictions::read(&two.join("stage2")).unwrap();
    assert_eq!(alone.meta.classes, ["green", "blue"]);
    assert!(two.join("combined").is_file());
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    if tch::Cuda::is_available() {
        return;
    }
    let (_tmp, data, outs) = fixture(&["out"]);
    let err = run("cnn-stage1", serde_json::json!({ "device": "cuda" }), &[("images", &data)], &outs[0]).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("no CUDA device is available (") && err.ends_with("): use device = \"auto\" or \"cpu\""), "{err}");
    assert!(err.contains("CUDA libraries"), "says what became of torch's CUDA libraries: {err}");
}

/// EfficientNet-Lite0 weights drawn at random (seeded), saved as
/// safetensors in `dir`: what a weights file looks like, without the
/// 18 MB ImageNet file.
fn lite0_weights(dir: &Path, outputs: i64) -> PathBuf {
    let _turn = LIBTORCH.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tch::manual_seed(5);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let shape = crate::nets::Shape { channels: 3, width: 0, hidden: 0, outputs, batch_norm: true, dropout: 0.2 };
    let _ = crate::nets::Net::new(&vs.root(), pipe_core::kinds::cnn::Arch::EfficientNetLite0, shape);
    let path = dir.join("lite0.safetensors");
    vs.save(&path).unwrap();
    path
}

#[test]
fn embed_writes_one_unit_vector_per_image_the_same_on_one_and_two_threads() {
    let (tmp, data, outs) = fixture(&["one", "two"]);
    let weights = lite0_weights(tmp.path(), 1000);
    let params = serde_json::json!({ "weights": weights.display().to_string(), "input_size": 32, "batch_size": 7, "device": "cpu" });
    run_on(1, "embed", params.clone(), &[("images", &data)], &outs[0]).unwrap();
    run_on(2, "embed", params, &[("images", &data)], &outs[1]).unwrap();
    let one = std::fs::read(outs[0].join("histograms.f32")).unwrap();
    assert_eq!(one.len(), 240 * 1280 * 4, "240 images x 1280 features");
    assert!(one == std::fs::read(outs[1].join("histograms.f32")).unwrap(), "the same bytes on 1 and 2 threads");
    let values = pipe_core::data::bow::read_f32(&outs[0].join("histograms.f32")).unwrap();
    for row in values.chunks(1280) {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "L2-normalised: {norm}");
    }
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(outs[0].join("histograms.json")).unwrap()).unwrap();
    assert_eq!((meta["words"].as_u64(), meta["images"].as_u64()), (Some(1280), Some(240)));
    assert!(outs[0].join("index.parquet").exists(), "the index travels with the features");
}

#[test]
fn embed_with_the_blocks_appends_their_pooled_outputs_each_part_weighted_alike() {
    let (tmp, data, outs) = fixture(&["head", "blocks", "blocks2"]);
    let weights = lite0_weights(tmp.path(), 1000);
    let params = |layers: &str| serde_json::json!({ "weights": weights.display().to_string(), "input_size": 32, "batch_size": 7, "device": "cpu", "layers": layers });
    run_on(1, "embed", params("head"), &[("images", &data)], &outs[0]).unwrap();
    run_on(1, "embed", params("head+blocks"), &[("images", &data)], &outs[1]).unwrap();
    run_on(2, "embed", params("head+blocks"), &[("images", &data)], &outs[2]).unwrap();
    let dim = 112 + 192 + 320 + 1280;
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(outs[1].join("histograms.json")).unwrap()).unwrap();
    assert_eq!(meta["words"].as_u64(), Some(dim as u64));
    let blocks = pipe_core::data::bow::read_f32(&outs[1].join("histograms.f32")).unwrap();
    assert_eq!(blocks.len(), 240 * dim);
    assert!(
        std::fs::read(outs[1].join("histograms.f32")).unwrap() == std::fs::read(outs[2].join("histograms.f32")).unwrap(),
        "1 and 2 threads"
    );
    let head = pipe_core::data::bow::read_f32(&outs[0].join("histograms.f32")).unwrap();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    for (row, head_row) in blocks.chunks(dim).zip(head.chunks(1280)) {
        let mut start = 0;
        for width in [112, 192, 320, 1280] {
            assert!((norm(&row[start..start + width]) - 0.5).abs() < 1e-4, "each of the 4 parts has norm 1/2");
            start += width;
        }
        let tail: Vec<f32> = row[dim - 1280..].iter().map(|v| v * 2.0).collect();
        assert!(tail.iter().zip(head_row).all(|(a, b)| (a - b).abs() < 1e-5), "the last part is the head's features");
    }
}

#[test]
fn a_pretrained_network_fine_tunes_from_its_weights_with_a_frozen_warm_up() {
    let (tmp, data, outs) = fixture(&["out", "wrong"]);
    let weights = lite0_weights(tmp.path(), 1000);
    let params = serde_json::json!({
        "arch": "efficientnet-lite0", "weights": weights.display().to_string(), "input_size": 32, "epochs": 2,
        "freeze_epochs": 1, "backbone_lr": 0.3, "dropout": 0.2
    });
    run("cnn-stage1", params, &[("images", &data)], &outs[0]).unwrap();
    let log = std::fs::read_to_string(outs[0].join("stage.log")).unwrap();
    assert!(log.contains("tensors loaded, a new output layer (_fc.bias, _fc.weight)"), "{log}");
    assert!(log.contains("epochs 1-1: the output layer alone trains") && log.contains("epoch 2: the whole network trains"), "{log}");
    assert_eq!(Predictions::read(&outs[0]).unwrap().y_true.len(), 48);
    // Weights of another network: every bad tensor named, nothing written.
    let resnet = serde_json::json!({ "arch": "resnet18", "weights": weights.display().to_string(), "epochs": 1 });
    let err = run("cnn-stage1", resnet, &[("images", &data)], &outs[1]).unwrap_err().to_string();
    assert!(err.contains("missing from the file: layer0_0.") && err.contains("in the file but not in the network: _blocks.0."), "{err}");
    assert!(!outs[1].join("predictions.csv").exists());
}

#[test]
fn the_majority_class_rate_is_what_learning_nothing_scores() {
    use super::cnn_train::{Targets, Task, majority_rate};
    let task = Task { classes: vec!["a".into(), "b".into()], targets: Targets::Single(vec![Some(0), Some(1), Some(1), Some(1), None]) };
    assert_eq!(majority_rate(&task, &[0, 1, 2, 3]), Some((0.75, "b".to_string())));
    assert_eq!(majority_rate(&task, &[0, 1]), Some((0.5, "a".to_string())), "ties: the first class");
}
