//! `svm`: C-SVC (RBF or linear kernel) tuned by grid search with stratified
//! k-fold cross-validation on the training split, refit on all of it, then
//! predictions and per-class scores for the test split (paper 2.1.1).
//!
//! Grid points x folds run in parallel (scikit-learn's `GridSearchCV` runs
//! one fit at a time by default). Folds keep an image and its augmented
//! copies together, so copies never leak into their original's validation
//! fold. The best point is the highest mean score; ties go to the first in
//! grid order, as `GridSearchCV` does. `cv.csv` keeps the whole table.

use super::params::{Default, ParamType};
use super::{ArtifactType, JobDefaults, KindDef, Process, Schema, SlotDef, ThreadUse};

crate::choice! {
    /// The SVM kernel.
    pub enum Kernel { Rbf = "rbf", Linear = "linear" }
}

crate::choice! {
    /// What the grid search maximises.
    pub enum Scoring { Accuracy = "accuracy", MacroF1 = "macro_f1" }
}

crate::choice! {
    /// Per-class scaling of C.
    pub enum ClassWeight { None = "none", Balanced = "balanced" }
}

crate::stage_params! {
    pub struct SvmParams {
        /// SVM kernel
        kernel: Kernel = Kernel::TYPE => Default::Str("rbf"),
        /// grid of C values
        c: Vec<f64> = ParamType::FloatList { min: 1e-6, max: 1e6 } => Default::Floats(&[0.1, 1.0, 10.0, 100.0]),
        /// grid of RBF gamma values (ignored by linear)
        gamma: Vec<f64> = ParamType::FloatList { min: 1e-9, max: 1e9 } => Default::Floats(&[1.0, 10.0, 100.0, 1000.0]),
        /// cross-validation folds
        folds: i64 = ParamType::Int { min: 2, max: 20 } => Default::Int(5),
        /// what the grid search maximises
        scoring: Scoring = Scoring::TYPE => Default::Str("accuracy"),
        /// balanced: C scaled per class by n / (classes x count)
        class_weight: ClassWeight = ClassWeight::TYPE => Default::Str("none"),
    }
}

pub static SVM: KindDef = KindDef {
    name: "svm",
    version: 1,
    summary: "C-SVC with grid-search cross-validation; test predictions with scores",
    inputs: &[SlotDef {
        name: "features",
        accepts: &[ArtifactType::Histograms],
        many: false,
        required: true,
        doc: "one vector per image: BOW histograms (an encode stage) or HOG descriptors (a hog stage)",
    }],
    output: ArtifactType::Predictions,
    params: Schema::of::<SvmParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 120.0,
    process: Process::Worker,
    names_inputs: false,
    job: JobDefaults::WORKER,
};
