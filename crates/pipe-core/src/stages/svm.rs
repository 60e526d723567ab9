//! `svm`: C-SVC (RBF or linear kernel) tuned by grid search with stratified
//! k-fold cross-validation on the training split, refit on all of it, then
//! predictions and per-class scores for the test split (paper 2.1.1).
//!
//! Grid points x folds run in parallel (scikit-learn's `GridSearchCV` runs
//! one fit at a time by default). Folds keep an image and its augmented
//! copies together, so copies never leak into their original's validation
//! fold. The best point is the highest mean score; ties go to the first in
//! grid order, as `GridSearchCV` does. `cv.csv` keeps the whole table.

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, Schema, SlotDef, ThreadUse, no_check};

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
    params: Schema::untyped(
        &[
            ParamDef { name: "kernel", ty: ParamType::Choice(&["rbf", "linear"]), default: Default::Str("rbf"), doc: "SVM kernel" },
            ParamDef {
                name: "c",
                ty: ParamType::FloatList { min: 1e-6, max: 1e6 },
                default: Default::Floats(&[0.1, 1.0, 10.0, 100.0]),
                doc: "grid of C values",
            },
            ParamDef {
                name: "gamma",
                ty: ParamType::FloatList { min: 1e-9, max: 1e9 },
                default: Default::Floats(&[1.0, 10.0, 100.0, 1000.0]),
                doc: "grid of RBF gamma values (ignored by linear)",
            },
            ParamDef { name: "folds", ty: ParamType::Int { min: 2, max: 20 }, default: Default::Int(5), doc: "cross-validation folds" },
            ParamDef {
                name: "scoring",
                ty: ParamType::Choice(&["accuracy", "macro_f1"]),
                default: Default::Str("accuracy"),
                doc: "what the grid search maximises",
            },
            ParamDef {
                name: "class_weight",
                ty: ParamType::Choice(&["none", "balanced"]),
                default: Default::Str("none"),
                doc: "balanced: C scaled per class by n / (classes x count)",
            },
        ],
        no_check,
    ),
    threads: ThreadUse::Elastic,
    estimate_seconds: 120.0,
    process: Process::Worker,
    names_inputs: false,
};
