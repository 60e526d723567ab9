//! `load`: a dataset in, an `images` artifact out (see `data::dataset`).
//!
//! Steps: list the collection (reader per `dataset`), subsample (`limit`,
//! stratified, seeded), decode in parallel, set aside bad files
//! (`on_bad_image`), deduplicate by decoded-pixel hash (a kept copy prefers a
//! real file over a link, then the first path), keep labels used by at least
//! `min_label_count` images, drop or merge classes under `min_class_count`,
//! then split train/validation/test (stratified, seeded). Deduplication
//! happens before the split, so a duplicate can never sit on both sides.

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Params, Process, Schema, ThreadUse};

pub static LOAD: KindDef = KindDef {
    name: "load",
    version: 1,
    summary: "reads a collection, decodes, deduplicates and splits its images",
    inputs: &[],
    output: ArtifactType::Images,
    params: Schema::untyped(
        &[
            ParamDef {
                name: "dataset",
                ty: ParamType::Choice(&["openclipart", "imet", "folder", "synthetic"]),
                default: Default::Required,
                doc: "which reader",
            },
            ParamDef {
                name: "root",
                ty: ParamType::Path { fingerprint: true },
                default: Default::Unset,
                doc: "the collection's folder (not for synthetic); its content is part of the key",
            },
            ParamDef {
                name: "image_size",
                ty: ParamType::Int { min: 8, max: 1024 },
                default: Default::Int(64),
                doc: "side of the square images (scaled to fit, padded with white)",
            },
            ParamDef { name: "color", ty: ParamType::Choice(&["rgb", "grey"]), default: Default::Str("rgb"), doc: "colour or grey pixels" },
            ParamDef {
                name: "limit",
                ty: ParamType::Int { min: 0, max: INT_MAX },
                default: Default::Int(0),
                doc: "keep this many images (stratified, seeded); 0 = all",
            },
            ParamDef {
                name: "dedup",
                ty: ParamType::Bool,
                default: Default::Bool(true),
                doc: "drop images whose decoded pixels equal an earlier one",
            },
            ParamDef {
                name: "min_class_count",
                ty: ParamType::Int { min: 0, max: INT_MAX },
                default: Default::Int(0),
                doc: "classes with fewer images are dropped or merged (see rare_classes)",
            },
            ParamDef {
                name: "rare_classes",
                ty: ParamType::Choice(&["drop", "merge"]),
                default: Default::Str("drop"),
                doc: "what happens to classes under min_class_count",
            },
            ParamDef {
                name: "rare_name",
                ty: ParamType::Text,
                default: Default::Str("rare"),
                doc: "the class that merged rare classes become",
            },
            ParamDef {
                name: "min_label_count",
                ty: ParamType::Int { min: 1, max: INT_MAX },
                default: Default::Int(1),
                doc: "multi-labels used by fewer images are dropped",
            },
            ParamDef {
                name: "test_fraction",
                ty: ParamType::Float { min: 0.0, max: 0.9 },
                default: Default::Float(0.2),
                doc: "share of each class held out for testing",
            },
            ParamDef {
                name: "validation_fraction",
                ty: ParamType::Float { min: 0.0, max: 0.9 },
                default: Default::Float(0.1),
                doc: "share of each class held out for validation",
            },
            ParamDef {
                name: "on_bad_image",
                ty: ParamType::Choice(&["skip", "fail"]),
                default: Default::Str("skip"),
                doc: "skip (count, log, warn) or stop at the first unreadable image",
            },
            ParamDef {
                name: "max_megapixels",
                ty: ParamType::Float { min: 0.01, max: 10_000.0 },
                default: Default::Float(40.0),
                doc: "larger PNGs count as bad images (decoding one needs ~7 bytes per pixel)",
            },
            ParamDef {
                name: "classes",
                ty: ParamType::Int { min: 2, max: 60 },
                default: Default::Int(6),
                doc: "synthetic: number of classes",
            },
            ParamDef {
                name: "images",
                ty: ParamType::Int { min: 10, max: 1_000_000 },
                default: Default::Int(300),
                doc: "synthetic: number of images",
            },
            ParamDef {
                name: "imbalance",
                ty: ParamType::Float { min: 1.0, max: 1000.0 },
                default: Default::Float(10.0),
                doc: "synthetic: largest class / smallest class",
            },
            ParamDef {
                name: "single_label",
                ty: ParamType::Choice(&["most-frequent", "first"]),
                default: Default::Str("most-frequent"),
                doc: "imet: which attribute is the single label",
            },
            ParamDef {
                name: "label_prefix",
                ty: ParamType::Text,
                default: Default::Unset,
                doc: "imet: only attributes whose name starts with this (e.g. \"culture::\") can be the single label",
            },
        ],
        check,
    ),
    threads: ThreadUse::Elastic,
    estimate_seconds: 15.0,
    process: Process::Worker,
    names_inputs: false,
};

fn check(p: &Params) -> Vec<String> {
    let mut out = Vec::new();
    let dataset = p.str("dataset").unwrap_or_default();
    if dataset != "synthetic" && p.str("root").is_none() {
        let example = if dataset == "openclipart" { "/usr/share/openclipart" } else { "data/my-collection" };
        out.push(format!("dataset \"{dataset}\" needs `root` (e.g. root = \"{example}\")"));
    }
    if p.float("test_fraction") + p.float("validation_fraction") >= 0.95 {
        out.push("test_fraction + validation_fraction must leave images for training (sum < 0.95)".into());
    }
    out
}

const INT_MAX: i64 = i64::MAX;
