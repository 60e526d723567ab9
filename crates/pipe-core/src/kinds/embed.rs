//! `embed`: a pretrained network run once over every image, its globally
//! average-pooled features (L2-normalised) written as histograms, so that
//! `svm`'s kernel sum and `multilabel-svm` take learned features as one
//! more input (`features = ["hog", "colour", "lbp", "embed"]`). One forward
//! pass per image: cheap on a CPU, where fine-tuning is not. Run by
//! `pipe-torch`; batches are fixed by the images' order and each is computed
//! on one libtorch thread, so the output does not depend on how many
//! threads the scheduler grants.

use super::cnn::Device;
use super::params::{Default, ParamType};
use super::{ArtifactType, JobDefaults, KindDef, Many, Process, Schema, SlotDef, ThreadUse};

crate::choice! {
    /// The networks `embed` can run: those with ImageNet weights pipe can load.
    pub enum EmbedArch { EfficientNetLite0 = "efficientnet-lite0" }
}

crate::choice! {
    /// Which pooled activations `embed` publishes.
    pub enum EmbedLayers { Head = "head", HeadAndBlocks = "head+blocks" }
}

crate::stage_params! {
    /// `embed`'s parameters.
    pub struct EmbedParams {
        /// the network whose pooled features are taken (efficientnet-lite0: 1,280 features)
        arch: EmbedArch = EmbedArch::TYPE => Default::Str("efficientnet-lite0"),
        /// the network's weights, a safetensors file (scripts/torch_to_safetensors.py converts torch.save files), relative to the pipeline file;
        /// its content is part of the key (scripts/setup.sh installs EfficientNet-Lite0's ImageNet weights)
        weights: Option<String> = ParamType::File => Default::Required,
        /// the side images are resized to (bilinear) before the network (224: the weights' native size)
        input_size: i64 = ParamType::Int { min: 16, max: 1024 } => Default::Int(224),
        /// head: the pooled features before the classifier; head+blocks: also the pooled outputs of the last block of stages 5-7 (1,904 in all), each part L2-normalised and weighted alike
        layers: EmbedLayers = EmbedLayers::TYPE => Default::Str("head"),
        /// also run each image mirrored and average the two feature vectors
        flip: bool = ParamType::Bool => Default::Bool(false),
        /// images per forward pass (fixed: part of the key, since the batch shapes the sums)
        batch_size: i64 = ParamType::Int { min: 1, max: 4096 } => Default::Int(32),
        /// auto = CUDA when present
        device: Device = Device::TYPE => Default::Str("auto"),
    }
    rules {
        fn uses_gpu(&self) -> bool {
            self.device == Device::Cuda
        }
    }
}

pub static EMBED: KindDef = KindDef {
    name: "embed",
    summary: "pooled features of a pretrained network (efficientnet-lite0), as histograms for svm",
    inputs: &[SlotDef {
        name: "images",
        accepts: &[ArtifactType::Images],
        many: Many::One,
        required: true,
        doc: "the images (a load or augment stage)",
    }],
    output: ArtifactType::Histograms,
    params: Schema::of::<EmbedParams>(),
    threads: ThreadUse::Parallel,
    estimate_seconds: 60.0,
    process: Process::Torch,
    job: JobDefaults::TORCH,
    new_images: super::NewImages::Rerun,
    ..KindDef::BASE
};
