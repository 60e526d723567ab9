//! `cnn-stage1`: a CNN (paper 2.1.2; `arch`: the small-image net, the real
//! AlexNet or ResNet-18, see `bin/pipe-torch/nets.rs`). With `keep = "all"` it
//! is a flat N-class classifier (the paper's first attempt); with `keep = N`
//! it is the first step of the two-step scheme: the N most frequent classes
//! plus "other". Trained in the `pipe-torch` worker (libtorch); the training
//! itself is in `cnn_train`, compiled with the `torch` feature.
//!
//! Output: `predictions.*` for the test split (softmax probabilities as
//! scores), `history.csv` (per epoch: train and validation loss, validation
//! accuracy, top-3 and top-5 accuracy, seconds), `model.safetensors` (the
//! weights that did best on validation).

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, Schema, SlotDef, ThreadUse};

/// Parameters of the network and its training, shared by the CNN kinds.
/// The recipe's defaults (AdamW, cosine schedule with a warm-up epoch,
/// label smoothing, random flips and shifts every epoch, flip averaging at
/// test time) are what a practitioner uses on small data.
pub const TRAINING: &[ParamDef] = &[
    ParamDef {
        name: "width",
        ty: ParamType::Int { min: 2, max: 256 },
        default: Default::Int(16),
        doc: "channels of the first convolution (AlexNet: 64); the others scale with it",
    },
    ParamDef {
        name: "hidden",
        ty: ParamType::Int { min: 8, max: 8192 },
        default: Default::Int(256),
        doc: "units of the two hidden fully connected layers (AlexNet: 4096)",
    },
    ParamDef {
        name: "dropout",
        ty: ParamType::Float { min: 0.0, max: 0.95 },
        default: Default::Float(0.5),
        doc: "dropout before each hidden layer",
    },
    ParamDef {
        name: "batch_norm",
        ty: ParamType::Bool,
        default: Default::Bool(false),
        doc: "batch normalisation after each convolution (arch small; resnet18 always has it, alexnet never)",
    },
    ParamDef {
        name: "epochs",
        ty: ParamType::Int { min: 1, max: 1000 },
        default: Default::Int(5),
        doc: "passes over the training images (the paper: 20)",
    },
    ParamDef {
        name: "batch_size",
        ty: ParamType::Int { min: 1, max: 4096 },
        default: Default::Int(64),
        doc: "images per step (the paper: 32)",
    },
    ParamDef {
        name: "learning_rate",
        ty: ParamType::Float { min: 1e-8, max: 1.0 },
        default: Default::Float(0.001),
        doc: "AdamW's learning rate, the peak of the schedule (the paper: 1e-4)",
    },
    ParamDef {
        name: "class_weights",
        ty: ParamType::Choice(&["none", "balanced"]),
        default: Default::Str("none"),
        doc: "weight the loss by the input's balanced class weights",
    },
    ParamDef {
        name: "patience",
        ty: ParamType::Int { min: 0, max: 1000 },
        default: Default::Int(0),
        doc: "stop after this many epochs without a better validation loss (0: never)",
    },
    ParamDef {
        name: "device",
        ty: ParamType::Choice(&["auto", "cpu", "cuda"]),
        default: Default::Str("auto"),
        doc: "auto = CUDA when present",
    },
    ParamDef {
        name: "arch",
        ty: ParamType::Choice(&["small", "alexnet", "resnet18"]),
        default: Default::Str("small"),
        doc: "the network: small (a small-image AlexNet variant: 5×5 stride-1 first convolution, 2×2 pools), \
              alexnet (Krizhevsky's geometry: 11×11 stride 4, 3×3/2 pools, 6×6 pool, 9216 features at width 64; for 224 px), \
              resnet18 (ResNet-18 with a small-image stem, batch norm built in)",
    },
    ParamDef {
        name: "weight_decay",
        ty: ParamType::Float { min: 0.0, max: 1.0 },
        default: Default::Float(0.0005),
        doc: "AdamW's decoupled weight decay (0: plain Adam)",
    },
    ParamDef {
        name: "schedule",
        ty: ParamType::Choice(&["constant", "cosine", "onecycle"]),
        default: Default::Str("cosine"),
        doc: "the learning rate over training: constant, cosine (after warm-up, down to 0), onecycle (up to learning_rate, then down)",
    },
    ParamDef {
        name: "warmup_epochs",
        ty: ParamType::Int { min: 0, max: 1000 },
        default: Default::Int(1),
        doc: "epochs of linear warm-up (cosine) or of the rise (onecycle; 0: 30% of training)",
    },
    ParamDef {
        name: "label_smoothing",
        ty: ParamType::Float { min: 0.0, max: 0.5 },
        default: Default::Float(0.1),
        doc: "cross-entropy's label smoothing (single-label kinds; the validation loss is unsmoothed)",
    },
    ParamDef {
        name: "flip",
        ty: ParamType::Bool,
        default: Default::Bool(true),
        doc: "mirror each training image at random, anew every epoch (seeded)",
    },
    ParamDef {
        name: "shift",
        ty: ParamType::Float { min: 0.0, max: 0.5 },
        default: Default::Float(0.1),
        doc: "shift each training image by up to this fraction of its side, anew every epoch (seeded; white fill)",
    },
    ParamDef {
        name: "tta",
        ty: ParamType::Bool,
        default: Default::Bool(true),
        doc: "test-time augmentation: average each image's probabilities with its mirror image's",
    },
    ParamDef {
        name: "threads",
        ty: ParamType::Int { min: 1, max: 256 },
        default: Default::Int(1),
        doc: "libtorch's CPU threads; part of the key, since its sums (and so the weights) depend on it; \
              the scheduler reserves that many slots (at most --jobs)",
    },
];

pub static CNN_STAGE1: KindDef = KindDef {
    name: "cnn-stage1",
    version: 3,
    summary: "a CNN (small, AlexNet or ResNet-18): flat (keep = \"all\") or the two-step scheme's first step",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: false,
        required: true,
        doc: "training and test images (a load or augment stage)",
    }],
    output: ArtifactType::Predictions,
    params: Schema::untyped(STAGE1_PARAMS, super::no_check),
    threads: ThreadUse::Keyed,
    estimate_seconds: 35.0,
    process: Process::Torch,
    names_inputs: false,
};

pub static CNN_STAGE2: KindDef = KindDef {
    name: "cnn-stage2",
    version: 3,
    summary: "the two-step scheme's second CNN: the classes stage 1 calls \"other\"; combined with stage 1",
    inputs: &[
        SlotDef {
            name: "images",
            accepts: &[ArtifactType::Images],
            many: false,
            required: true,
            doc: "the same images stage 1 was trained on",
        },
        SlotDef {
            name: "stage1",
            accepts: &[ArtifactType::Predictions],
            many: false,
            required: true,
            doc: "a cnn-stage1 stage with keep = N",
        },
    ],
    output: ArtifactType::Predictions,
    params: Schema::untyped(TRAINING, super::no_check),
    threads: ThreadUse::Keyed,
    estimate_seconds: 35.0,
    process: Process::Torch,
    names_inputs: false,
};

const STAGE1_PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "keep",
        ty: ParamType::IntOrChoice { min: 1, max: 10_000, choices: &["all"] },
        default: Default::Str("all"),
        doc: "the most frequent classes kept; the rest become \"other\" (the paper: 2)",
    },
    TRAINING[0],
    TRAINING[1],
    TRAINING[2],
    TRAINING[3],
    TRAINING[4],
    TRAINING[5],
    TRAINING[6],
    TRAINING[7],
    TRAINING[8],
    TRAINING[9],
    TRAINING[10],
    TRAINING[11],
    TRAINING[12],
    TRAINING[13],
    TRAINING[14],
    TRAINING[15],
    TRAINING[16],
    TRAINING[17],
    TRAINING[18],
];
