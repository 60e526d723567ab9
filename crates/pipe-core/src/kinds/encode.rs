//! `encode`: one bag-of-words histogram per image. Each descriptor goes to
//! its nearest visual word — with FLANN as in the paper (approximate,
//! randomised kd-trees, one index built once) or an exact brute-force
//! search — and counts are normalised as OpenCV's BOWImgDescriptorExtractor
//! does (divided by the image's number of descriptors), or by L2 norm, or
//! re-weighted by tf-idf (idf from the training split).

use super::params::Default;
use super::{ArtifactType, KindDef, Many, Schema, SlotDef, ThreadUse};

crate::choice! {
    /// The nearest-word search.
    pub enum Matcher { Flann = "flann", Brute = "brute" }
}

crate::choice! {
    /// How a histogram's counts are normalised.
    pub enum Normalization { Bow = "bow", L2 = "l2", Tfidf = "tfidf" }
}

crate::stage_params! {
    pub struct EncodeParams {
        /// nearest-word search: FLANN (the paper's) or exact
        matcher: Matcher = Matcher::TYPE => Default::Str("flann"),
        /// counts / descriptors (OpenCV's), L2, or tf-idf
        normalization: Normalization = Normalization::TYPE => Default::Str("bow"),
    }
}

pub static ENCODE: KindDef = KindDef {
    name: "encode",
    summary: "bag-of-visual-words histogram per image",
    inputs: &[
        SlotDef {
            name: "features",
            accepts: &[ArtifactType::Features],
            many: Many::One,
            required: true,
            doc: "descriptors (an extract stage)",
        },
        SlotDef {
            name: "vocabulary",
            accepts: &[ArtifactType::Vocabulary],
            many: Many::One,
            required: true,
            doc: "visual words (a cluster stage)",
        },
    ],
    output: ArtifactType::Histograms,
    params: Schema::of::<EncodeParams>(),
    threads: ThreadUse::Parallel,
    estimate_seconds: 10.0,
    new_images: super::NewImages::Apply,
    ..KindDef::BASE
};
