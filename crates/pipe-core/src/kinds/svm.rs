//! `svm`: C-SVC (RBF or linear kernel) tuned by grid search with stratified
//! k-fold cross-validation on the training split, refit on all of it, then
//! predictions and per-class scores for the test split (paper 2.1.1).
//!
//! Grid points x folds run in parallel (scikit-learn's `GridSearchCV` runs
//! one fit at a time by default). Folds keep an image and its augmented
//! copies together, so copies never leak into their original's validation
//! fold. The best point is the highest mean score; ties go to the first in
//! grid order, as `GridSearchCV` does. `cv.csv` keeps the whole table. A
//! grid of one point has nothing to choose: it is fitted once, without
//! cross-validation, and `cv.csv` says so.
//!
//! One input is solved by OpenCV's libsvm (`solver = "auto"`, or
//! `"opencv"`), or by pipe's SMO (`solver = "smo"`: faster on long vectors
//! such as HOG, since it computes each kernel value once). Several inputs (`features =
//! ["hog", "colour"]`, the same images described in several ways) are
//! combined by summing one RBF kernel per input, each with its own width
//! (`gamma_unit = "scale"` sizes them all with one grid), and solved by
//! pipe's own SMO on the precomputed kernel matrix (`data::smo` in
//! pipe-cv): n x n matrices of the training split are held in memory (4
//! bytes per entry: 91 MB for 4,766 images; one per input and one for the
//! kernel), and a stage they would not fit stops before computing them.

use super::params::{Default, ParamType};
use super::{ArtifactType, KindDef, Many, Schema, SlotDef, ThreadUse};

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

crate::choice! {
    /// What `gamma`'s values are measured in.
    pub enum GammaUnit { Absolute = "absolute", Scale = "scale" }
}

crate::choice! {
    /// Who solves the SVM.
    pub enum SvmSolver { Auto = "auto", Opencv = "opencv", Smo = "smo" }
}

crate::stage_params! {
    pub struct SvmParams {
        /// SVM kernel
        kernel: Kernel = Kernel::TYPE => Default::Str("rbf"),
        /// grid of C values
        c: Vec<f64> = ParamType::FloatList { min: 1e-6, max: 1e6 } => Default::Floats(&[0.1, 1.0, 10.0, 100.0]),
        /// grid of RBF gamma values (ignored by linear)
        gamma: Vec<f64> = ParamType::FloatList { min: 1e-9, max: 1e9 } => Default::Floats(&[1.0, 10.0, 100.0, 1000.0]),
        /// scale: each gamma is a multiple of each input's scikit-learn gamma="scale", 1 / (values x variance of the whole training split)
        gamma_unit: GammaUnit = GammaUnit::TYPE => Default::Str("absolute"),
        /// cross-validation folds (a one-point grid is fitted once, without cross-validation)
        folds: i64 = ParamType::Int { min: 2, max: 20 } => Default::Int(5),
        /// what the grid search maximises
        scoring: Scoring = Scoring::TYPE => Default::Str("accuracy"),
        /// auto: OpenCV's libsvm for one input, pipe's SMO on the kernel matrix for several; smo: always pipe's (RBF only)
        solver: SvmSolver = SvmSolver::TYPE => Default::Str("auto"),
        /// balanced: C scaled per class by n / (classes x count)
        class_weight: ClassWeight = ClassWeight::TYPE => Default::Str("none"),
    }
}

pub static SVM: KindDef = KindDef {
    name: "svm",
    version: 3,
    summary: "C-SVC with grid-search cross-validation (a sum of RBF kernels over several inputs); test predictions with scores",
    inputs: &[SlotDef {
        name: "features",
        accepts: &[ArtifactType::Histograms],
        many: Many::Together,
        required: true,
        doc: "one vector per image: BOW histograms (encode), HOG (hog) or colour histograms (colour); several stages of the same images sum their kernels",
    }],
    output: ArtifactType::Predictions,
    params: Schema::of::<SvmParams>(),
    threads: ThreadUse::Elastic,
    estimate_seconds: 120.0,
    repeats: super::RepeatsWith::Seed,
    new_images: super::NewImages::Apply,
    ..KindDef::BASE
};
