//! `evaluate`: metrics of every prediction-producing stage on the test
//! split, with scikit-learn's definitions (see `metrics`), in one long
//! table — `metrics.csv` / `metrics.parquet` with columns `approach` (the
//! input stage's name), `task`, `class`, `precision`, `recall`, `f1`, `f2`,
//! `support`, `variant` (the name without its `repeat=N` entry), `repeat`
//! — plus `confusion/<approach>.csv`, `significance.csv` (McNemar and
//! paired-bootstrap tests between approaches on the same test images,
//! Holm-adjusted) and `comparison.md` (the approaches side by side, the
//! summaries over repeats, the significance section, then each one's class
//! table, then any SVM grid-search table). The run's report folder copies
//! these.

use super::{ArtifactType, KindDef, Many, Schema, SlotDef};

crate::stage_params! {
    /// `evaluate` has no parameters.
    pub struct EvaluateParams {}
}

pub static EVALUATE: KindDef = KindDef {
    name: "evaluate",
    version: 7,
    summary: "per-class and averaged metrics of every approach, side by side",
    inputs: &[
        SlotDef {
            name: "predictions",
            accepts: &[ArtifactType::Predictions, ArtifactType::MultiLabelPredictions],
            many: Many::Gather,
            required: true,
            doc: "the stages to compare (svm, cnn-stage1, cnn-stage2, multilabel, ensemble)",
        },
        SlotDef {
            name: "images",
            accepts: &[ArtifactType::Images],
            many: Many::One,
            required: false,
            doc: "optional: the dataset, for the class-distribution chart and the augmentation preview",
        },
    ],
    output: ArtifactType::Metrics,
    params: Schema::of::<EvaluateParams>(),
    estimate_seconds: 5.0,
    // The plots are drawn with OpenCV: a worker stage.
    names_inputs: true,
    ..KindDef::BASE
};
