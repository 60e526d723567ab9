//! `cnn-stage1`: a CNN (paper 2.1.2; `arch`: the small-image net, the real
//! AlexNet, ResNet-18 or EfficientNet-Lite0, see `crates/pipe-torch/src/nets.rs`
//! and `efficientnet.rs`). With `keep = "all"` it is a flat N-class
//! classifier (the paper's first attempt); with `keep = N` it is the first
//! step of the two-step scheme: the N most frequent classes plus "other".
//! Trained in the `pipe-torch` executable (libtorch); the training itself
//! is in `crates/pipe-torch/src/cnn_train.rs`.
//!
//! Output: `predictions.*` for the test split (softmax probabilities as
//! scores), `history.csv` (per epoch: train and validation loss, validation
//! accuracy, top-3 and top-5 accuracy, seconds), `model.safetensors` (the
//! weights that did best on validation).

use super::params::{Default, ParamType};
use super::{ArtifactType, IntOr, JobDefaults, KindDef, Many, Process, Schema, SlotDef, ThreadUse};

crate::choice! {
    /// Where the network trains (`device`).
    pub enum Device { Auto = "auto", Cpu = "cpu", Cuda = "cuda" }
}

crate::choice! {
    /// Which network (`arch`); see `crates/pipe-torch/src/nets.rs`.
    pub enum Arch { Small = "small", AlexNet = "alexnet", ResNet18 = "resnet18", EfficientNetLite0 = "efficientnet-lite0" }
}

crate::choice! {
    /// The learning rate over training (`schedule`).
    pub enum Schedule { Constant = "constant", Cosine = "cosine", OneCycle = "onecycle" }
}

crate::choice! {
    /// Whether the loss is weighted by class (`class_weights`).
    pub enum ClassWeights { None = "none", Balanced = "balanced" }
}

crate::choice! {
    /// The word of `keep`: every class.
    pub enum All { All = "all" }
}

crate::stage_params! {
    /// Parameters of the network and its training, shared by the CNN kinds.
    /// The recipe's defaults (AdamW, cosine schedule with a warm-up epoch,
    /// label smoothing, random flips and shifts every epoch, flip averaging at
    /// test time) are what a practitioner uses on small data.
    pub struct Training {
        /// channels of the first convolution (AlexNet: 64); the others scale with it
        width: i64 = ParamType::Int { min: 2, max: 256 } => Default::Int(16),
        /// units of the two hidden fully connected layers (AlexNet: 4096)
        hidden: i64 = ParamType::Int { min: 8, max: 8192 } => Default::Int(256),
        /// dropout before each hidden layer
        dropout: f64 = ParamType::Float { min: 0.0, max: 0.95 } => Default::Float(0.5),
        /// batch normalisation after each convolution (arch small; resnet18 always has it, alexnet never)
        batch_norm: bool = ParamType::Bool => Default::Bool(false),
        /// passes over the training images (the paper: 20)
        epochs: i64 = ParamType::Int { min: 1, max: 1000 } => Default::Int(5),
        /// images per step (the paper: 32)
        batch_size: i64 = ParamType::Int { min: 1, max: 4096 } => Default::Int(64),
        /// AdamW's learning rate, the peak of the schedule (the paper: 1e-4)
        learning_rate: f64 = ParamType::Float { min: 1e-8, max: 1.0 } => Default::Float(0.001),
        /// stop after this many epochs without a better validation loss (0: never)
        patience: i64 = ParamType::Int { min: 0, max: 1000 } => Default::Int(0),
        /// auto = CUDA when present
        device: Device = Device::TYPE => Default::Str("auto"),
        /// the network: small (a small-image AlexNet variant: 5×5 stride-1 first convolution, 2×2 pools),
        /// alexnet (Krizhevsky's geometry: 11×11 stride 4, 3×3/2 pools, 6×6 pool, 9216 features at width 64; for 224 px),
        /// resnet18 (ResNet-18 with a small-image stem, batch norm built in),
        /// efficientnet-lite0 (Tan & Le's EfficientNet-Lite0 as its ImageNet weights expect: ImageNet normalisation, 224 px native)
        arch: Arch = Arch::TYPE => Default::Str("small"),
        /// weights to start from, a safetensors file (scripts/torch_to_safetensors.py converts torch.save files), loaded by name into `arch`
        /// (the output layer is new for this task's classes); relative to the pipeline file; its content is part of the key
        weights: Option<String> = ParamType::File => Default::Unset,
        /// with weights: every tensor of the network must be in the file with its shape, and nothing else (false: load what matches, log the rest)
        strict: bool = ParamType::Bool => Default::Bool(true),
        /// epochs at the start that train the output layer only, the rest of the network frozen (a warm-up for pretrained weights)
        freeze_epochs: i64 = ParamType::Int { min: 0, max: 1000 } => Default::Int(0),
        /// the learning rate of everything but the output layer, as a fraction of learning_rate (lower for pretrained weights)
        backbone_lr: f64 = ParamType::Float { min: 0.0, max: 1.0 } => Default::Float(1.0),
        /// the side images are resized to (bilinear) before the network; 0: as loaded
        input_size: i64 = ParamType::Int { min: 0, max: 1024 } => Default::Int(0),
        /// AdamW's decoupled weight decay (0: plain Adam)
        weight_decay: f64 = ParamType::Float { min: 0.0, max: 1.0 } => Default::Float(0.0005),
        /// the learning rate over training: constant, cosine (after warm-up, down to 0), onecycle (up to learning_rate, then down)
        schedule: Schedule = Schedule::TYPE => Default::Str("cosine"),
        /// epochs of linear warm-up (cosine) or of the rise (onecycle; 0: 30% of training)
        warmup_epochs: i64 = ParamType::Int { min: 0, max: 1000 } => Default::Int(1),
        /// mirror each training image at random, anew every epoch (seeded)
        flip: bool = ParamType::Bool => Default::Bool(true),
        /// shift each training image by up to this fraction of its side, anew every epoch (seeded; white fill)
        shift: f64 = ParamType::Float { min: 0.0, max: 0.5 } => Default::Float(0.1),
        /// test-time augmentation: average each image's probabilities with its mirror image's
        tta: bool = ParamType::Bool => Default::Bool(true),
        /// libtorch's CPU threads; part of the key, since its sums (and so the weights) depend on it;
        /// the scheduler reserves that many slots (at most --jobs)
        threads: i64 = ParamType::Int { min: 1, max: 256 } => Default::Int(1),
    }
    rules {
        fn epochs(&self) -> u64 {
            self.epochs.max(1) as u64
        }
        fn keyed_threads(&self) -> Option<usize> {
            Some(self.threads.max(1) as usize)
        }
        fn uses_gpu(&self) -> bool {
            self.device == Device::Cuda
        }
    }
}

crate::stage_params! {
    /// `cnn-stage1`'s parameters.
    pub struct CnnStage1Params {
        /// the most frequent classes kept; the rest become "other" (the paper: 2)
        keep: IntOr<All> = ParamType::IntOrChoice { min: 1, max: 10_000, choices: All::WORDS } => Default::Str("all"),
        /// weight the loss by the input's balanced class weights
        class_weights: ClassWeights = ClassWeights::TYPE => Default::Str("none"),
        /// cross-entropy's label smoothing (single-label kinds; the validation loss is unsmoothed)
        label_smoothing: f64 = ParamType::Float { min: 0.0, max: 0.5 } => Default::Float(0.1),
        ..training: Training
    }
}

crate::stage_params! {
    /// `cnn-stage2`'s parameters.
    pub struct CnnStage2Params {
        /// weight the loss by the input's balanced class weights
        class_weights: ClassWeights = ClassWeights::TYPE => Default::Str("none"),
        /// cross-entropy's label smoothing (single-label kinds; the validation loss is unsmoothed)
        label_smoothing: f64 = ParamType::Float { min: 0.0, max: 0.5 } => Default::Float(0.1),
        ..training: Training
    }
}

pub static CNN_STAGE1: KindDef = KindDef {
    name: "cnn-stage1",
    version: 3,
    summary: "a CNN (small, AlexNet or ResNet-18): flat (keep = \"all\") or the two-step scheme's first step",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: Many::One,
        required: true,
        doc: "training and test images (a load or augment stage)",
    }],
    output: ArtifactType::Predictions,
    params: Schema::of::<CnnStage1Params>(),
    threads: ThreadUse::Keyed,
    estimate_seconds: 35.0,
    process: Process::Torch,
    job: JobDefaults::TORCH,
    repeats: super::RepeatsWith::Seed,
    new_images: super::NewImages::Apply,
    ..KindDef::BASE
};

pub static CNN_STAGE2: KindDef = KindDef {
    name: "cnn-stage2",
    version: 3,
    summary: "the two-step scheme's second CNN: the classes stage 1 calls \"other\"; combined with stage 1",
    inputs: &[
        SlotDef {
            name: "images",
            accepts: &[ArtifactType::Images],
            many: Many::One,
            required: true,
            doc: "the same images stage 1 was trained on",
        },
        SlotDef {
            name: "stage1",
            accepts: &[ArtifactType::Predictions],
            many: Many::One,
            required: true,
            doc: "a cnn-stage1 stage with keep = N",
        },
    ],
    output: ArtifactType::Predictions,
    params: Schema::of::<CnnStage2Params>(),
    threads: ThreadUse::Keyed,
    estimate_seconds: 35.0,
    process: Process::Torch,
    job: JobDefaults::TORCH,
    repeats: super::RepeatsWith::Seed,
    new_images: super::NewImages::Apply,
    ..KindDef::BASE
};
