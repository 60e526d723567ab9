//! `load`: a dataset in, an `images` artifact out (see `data::dataset`).
//!
//! Steps: list the collection (reader per `dataset`), subsample (`limit`,
//! stratified, seeded), decode in parallel, set aside bad files
//! (`on_bad_image`), deduplicate by decoded-pixel hash (a kept copy prefers a
//! real file over a link, then the first path), keep labels used by at least
//! `min_label_count` images, drop or merge classes under `min_class_count`,
//! then split train/validation/test (stratified, seeded). Deduplication
//! happens before the split, so a duplicate can never sit on both sides.

use super::params::{Default, ParamType};
use super::{ArtifactType, JobDefaults, KindDef, Schema, ThreadUse};

crate::choice! {
    /// Which reader lists the collection.
    pub enum DatasetKind { Openclipart = "openclipart", Imet = "imet", Folder = "folder", Synthetic = "synthetic" }
}

crate::choice! {
    /// Colour or grey pixels.
    pub enum Color { Rgb = "rgb", Grey = "grey" }
}

crate::choice! {
    /// What happens to classes under `min_class_count`.
    pub enum RareClasses { Drop = "drop", Merge = "merge" }
}

crate::choice! {
    /// Skip or stop at an unreadable image.
    pub enum OnBadImage { Skip = "skip", Fail = "fail" }
}

crate::choice! {
    /// imet: which attribute is the single label.
    pub enum SingleLabel { MostFrequent = "most-frequent", First = "first" }
}

crate::stage_params! {
    pub struct LoadParams {
        /// which reader
        dataset: DatasetKind = DatasetKind::TYPE => Default::Required,
        /// the collection's folder (not for synthetic); its content is part of the key
        root: Option<String> = ParamType::Path { fingerprint: true } => Default::Unset,
        /// side of the square images (scaled to fit, padded with white)
        image_size: i64 = ParamType::Int { min: 8, max: 1024 } => Default::Int(64),
        /// colour or grey pixels
        color: Color = Color::TYPE => Default::Str("rgb"),
        /// keep this many images (stratified, seeded); 0 = all
        limit: i64 = ParamType::Int { min: 0, max: INT_MAX } => Default::Int(0),
        /// drop images whose decoded pixels equal an earlier one
        dedup: bool = ParamType::Bool => Default::Bool(true),
        /// classes with fewer images are dropped or merged (see rare_classes)
        min_class_count: i64 = ParamType::Int { min: 0, max: INT_MAX } => Default::Int(0),
        /// what happens to classes under min_class_count
        rare_classes: RareClasses = RareClasses::TYPE => Default::Str("drop"),
        /// the class that merged rare classes become
        rare_name: String = ParamType::Text => Default::Str("rare"),
        /// multi-labels used by fewer images are dropped
        min_label_count: i64 = ParamType::Int { min: 1, max: INT_MAX } => Default::Int(1),
        /// share of each class held out for testing
        test_fraction: f64 = ParamType::Float { min: 0.0, max: 0.9 } => Default::Float(0.2),
        /// share of each class held out for validation
        validation_fraction: f64 = ParamType::Float { min: 0.0, max: 0.9 } => Default::Float(0.1),
        /// skip (count, log, warn) or stop at the first unreadable image
        on_bad_image: OnBadImage = OnBadImage::TYPE => Default::Str("skip"),
        /// larger PNGs count as bad images (decoding one needs ~7 bytes per pixel)
        max_megapixels: f64 = ParamType::Float { min: 0.01, max: 10_000.0 } => Default::Float(40.0),
        /// synthetic: number of classes
        classes: i64 = ParamType::Int { min: 2, max: 60 } => Default::Int(6),
        /// synthetic: number of images
        images: i64 = ParamType::Int { min: 10, max: 1_000_000 } => Default::Int(300),
        /// synthetic: largest class / smallest class
        imbalance: f64 = ParamType::Float { min: 1.0, max: 1000.0 } => Default::Float(10.0),
        /// imet: which attribute is the single label
        single_label: SingleLabel = SingleLabel::TYPE => Default::Str("most-frequent"),
        /// imet: only attributes whose name starts with this (e.g. "culture::") can be the single label
        label_prefix: Option<String> = ParamType::Text => Default::Unset,
    }
    rules {
        fn check(&self) -> Vec<String> {
            let mut out = Vec::new();
            let dataset = self.dataset.word();
            if self.dataset != DatasetKind::Synthetic && self.root.is_none() {
                let example = if self.dataset == DatasetKind::Openclipart { "/usr/share/openclipart" } else { "data/my-collection" };
                out.push(format!("dataset \"{dataset}\" needs `root` (e.g. root = \"{example}\")"));
            }
            if self.test_fraction + self.validation_fraction >= 0.95 {
                out.push("test_fraction + validation_fraction must leave images for training (sum < 0.95)".into());
            }
            out
        }
    }
}

pub static LOAD: KindDef = KindDef {
    name: "load",
    summary: "reads a collection, decodes, deduplicates and splits its images",
    output: ArtifactType::Images,
    params: Schema::of::<LoadParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 15.0,
    job: JobDefaults::LOAD,
    repeats: super::RepeatsWith::Split,
    new_images: super::NewImages::Read,
    ..KindDef::BASE
};

const INT_MAX: i64 = i64::MAX;
