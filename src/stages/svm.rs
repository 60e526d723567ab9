//! `svm`: C-SVC (RBF or linear kernel) tuned by grid search with stratified
//! k-fold cross-validation on the training split, refit on all of it, then
//! predictions and per-class scores for the test split (paper 2.1.1).
//!
//! Grid points x folds run in parallel (scikit-learn's `GridSearchCV` runs
//! one fit at a time by default). Folds keep an image and its augmented
//! copies together, so copies never leak into their original's validation
//! fold. The best point is the highest mean score; ties go to the first in
//! grid order, as `GridSearchCV` does. `cv.csv` keeps the whole table.
#![allow(clippy::disallowed_methods)] // std::fs calls not converted to crate::fsx yet (issue #11)

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rayon::prelude::*;

use super::params::{Default, ParamDef, ParamType};
use super::{ArtifactType, KindDef, Process, SlotDef, StageContext, StageError, ThreadUse, no_check};
use crate::data::bow::{HistogramsMeta, read_f32, read_json};
use crate::data::dataset::{Dataset, balanced_weights};
use crate::data::decode::init_opencv;
use crate::data::predictions::{Predictions, PredictionsMeta};
use crate::data::rng::Rng;
use crate::data::split::{Split, stratified_folds};
use crate::data::svm::{Kernel, SvmParams, argmax, train};
use crate::metrics::{accuracy, macro_f1};

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
    params: &[
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
    threads: ThreadUse::Elastic,
    estimate_seconds: 120.0,
    process: Process::Worker,
    check: no_check,
    names_inputs: false,
};

/// One grid point's cross-validation result.
#[derive(Debug, Clone)]
struct Point {
    c: f64,
    gamma: f64,
    scores: Vec<f64>,
    fit_seconds: f64,
}

impl Point {
    fn mean(&self) -> f64 {
        self.scores.iter().sum::<f64>() / self.scores.len() as f64
    }

    fn std(&self) -> f64 {
        let m = self.mean();
        (self.scores.iter().map(|s| (s - m).powi(2)).sum::<f64>() / self.scores.len() as f64).sqrt()
    }
}

/// Index of the best point: highest mean, the first on ties.
fn best(points: &[Point]) -> usize {
    let mut b = 0;
    for (i, p) in points.iter().enumerate() {
        if p.mean() > points[b].mean() {
            b = i;
        }
    }
    b
}

pub(super) fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    init_opencv(1);
    let p = ctx.params.clone();
    let input = ctx.input("features")?.dir.clone();
    let meta: HistogramsMeta = read_json(&input.join("histograms.json"))?;
    let x = read_f32(&input.join("histograms.f32"))?;
    let index = Dataset::read_index(&input).map_err(StageError::Failed)?;
    let classes = Dataset::read_meta(&input).map_err(StageError::Failed)?.classes;
    let dim = meta.words;
    let row = |i: usize| &x[i * dim..(i + 1) * dim];
    let train_rows: Vec<usize> = (0..index.len()).filter(|&i| index[i].split == Split::Train).collect();
    let test_rows: Vec<usize> = (0..index.len()).filter(|&i| index[i].split == Split::Test).collect();
    if test_rows.is_empty() {
        return Err(StageError::Failed("the input has no test images: set test_fraction > 0 on the load stage".into()));
    }

    let kernel = if p.str("kernel") == Some("linear") { Kernel::Linear } else { Kernel::Rbf };
    let weights = (p.str("class_weight") == Some("balanced"))
        .then(|| balanced_weights(&train_rows.iter().map(|&i| index[i].label_id).collect::<Vec<_>>(), classes.len()));
    let folds = p.int("folds") as usize;
    let fold_of = folds_by_original(&index, &train_rows, folds, ctx.seed);
    let mut small: Vec<String> = Vec::new();
    let mut per_class: BTreeMap<u32, usize> = BTreeMap::new();
    for &i in &train_rows {
        *per_class.entry(index[i].label_id).or_default() += 1;
    }
    for (c, n) in &per_class {
        if *n < folds {
            small.push(format!("{} ({n})", classes[*c as usize]));
        }
    }
    if !small.is_empty() {
        ctx.warn(format!(
            "classes with fewer training images than folds = {folds} are absent from some folds (as in scikit-learn): {}",
            small.join(", ")
        ));
    }

    let gammas: Vec<f64> = match (kernel, p.get("gamma")) {
        (Kernel::Rbf, super::ParamValue::Floats(g)) => g.clone(),
        _ => vec![0.0],
    };
    let cs = match p.get("c") {
        super::ParamValue::Floats(c) => c.clone(),
        _ => vec![1.0],
    };
    let grid: Vec<(f64, f64)> = cs.iter().flat_map(|&c| gammas.iter().map(move |&g| (c, g))).collect();
    let jobs: Vec<(usize, usize)> = (0..grid.len()).flat_map(|g| (0..folds).map(move |f| (g, f))).collect();
    let macro_scoring = p.str("scoring") == Some("macro_f1");
    let ticker = ctx.ticker(jobs.len(), "fits");
    let results: Vec<Result<(f64, f64), String>> = jobs
        .par_iter()
        .map(|&(g, f)| {
            let _permit = ctx.permit();
            if ctx.check_cancelled().is_err() {
                return Err("interrupted".into());
            }
            let (fit, val): (Vec<usize>, Vec<usize>) = train_rows.iter().partition(|&&i| fold_of[&i] != f);
            let xs: Vec<f32> = fit.iter().flat_map(|&i| row(i).iter().copied()).collect();
            let ys: Vec<u32> = fit.iter().map(|&i| index[i].label_id).collect();
            let params = SvmParams { kernel, c: grid[g].0, gamma: grid[g].1, class_weights: weights.clone() };
            let started = Instant::now();
            let model = train(&xs, dim, &ys, &params)?;
            let seconds = started.elapsed().as_secs_f64();
            let truth: Vec<usize> = val.iter().map(|&i| index[i].label_id as usize).collect();
            let pred: Vec<usize> = val.iter().map(|&i| argmax(&model.scores(row(i), classes.len()))).collect();
            ticker.tick();
            let score = if macro_scoring { macro_f1(&truth, &pred, classes.len()) } else { accuracy(&truth, &pred) };
            Ok((score, seconds))
        })
        .collect();
    ctx.check_cancelled()?;
    let mut points: Vec<Point> = grid.iter().map(|&(c, gamma)| Point { c, gamma, scores: Vec::new(), fit_seconds: 0.0 }).collect();
    for (&(g, _), r) in jobs.iter().zip(results) {
        let (score, seconds) = r.map_err(StageError::Failed)?;
        points[g].scores.push(score);
        points[g].fit_seconds += seconds / folds as f64;
    }
    let b = best(&points);
    ctx.log(format!(
        "best: c = {}, gamma = {}, mean {} {:.4}",
        points[b].c,
        points[b].gamma,
        p.str("scoring").unwrap_or_default(),
        points[b].mean()
    ));

    let xs: Vec<f32> = train_rows.iter().flat_map(|&i| row(i).iter().copied()).collect();
    let ys: Vec<u32> = train_rows.iter().map(|&i| index[i].label_id).collect();
    let model = train(&xs, dim, &ys, &SvmParams { kernel, c: points[b].c, gamma: points[b].gamma, class_weights: weights })
        .map_err(StageError::Failed)?;
    let scores: Vec<Vec<f64>> = test_rows.iter().map(|&i| model.scores(row(i), classes.len())).collect();
    let predictions = Predictions {
        meta: PredictionsMeta { task: "single".into(), classes },
        ids: test_rows.iter().map(|&i| i as u32).collect(),
        sources: test_rows.iter().map(|&i| index[i].source.clone()).collect(),
        y_true: test_rows.iter().map(|&i| index[i].label_id).collect(),
        y_pred: scores.iter().map(|s| argmax(s) as u32).collect(),
        scores,
    };
    let out = ctx.out_dir().to_path_buf();
    predictions.write(&out).map_err(StageError::Failed)?;
    write_cv(&out.join("cv.csv"), &points, b, kernel)
}

/// Folds over originals: an image and its augmented copies share one fold.
fn folds_by_original(index: &[crate::data::dataset::Row], train_rows: &[usize], folds: usize, seed: u64) -> HashMap<usize, usize> {
    let mut groups: Vec<&str> = Vec::new();
    let mut group_label: Vec<usize> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for &i in train_rows {
        let h = index[i].pixel_hash.as_str();
        if !group_of.contains_key(h) {
            group_of.insert(h, groups.len());
            groups.push(h);
            group_label.push(index[i].label_id as usize);
        }
    }
    let fold_of_group = stratified_folds(&group_label, folds, &mut Rng::new(seed, "svm/folds"));
    train_rows.iter().map(|&i| (i, fold_of_group[group_of[index[i].pixel_hash.as_str()]])).collect()
}

fn write_cv(path: &std::path::Path, points: &[Point], best: usize, kernel: Kernel) -> Result<(), StageError> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|a, b| points[*b].mean().total_cmp(&points[*a].mean()).then(a.cmp(b)));
    let mut rank = vec![0; points.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r + 1;
    }
    let mut text = String::from("kernel,c,gamma,mean_score,std_score,mean_fit_seconds,rank,best\n");
    for (i, p) in points.iter().enumerate() {
        let gamma = if kernel == Kernel::Rbf { p.gamma.to_string() } else { String::new() };
        let k = if kernel == Kernel::Rbf { "rbf" } else { "linear" };
        text.push_str(&format!("{k},{},{gamma},{:.6},{:.6},{:.4},{},{}\n", p.c, p.mean(), p.std(), p.fit_seconds, rank[i], i == best));
    }
    std::fs::write(path, text).map_err(|e| StageError::Failed(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_point_is_the_first_highest_mean() {
        let pt = |s: &[f64]| Point { c: 1.0, gamma: 1.0, scores: s.to_vec(), fit_seconds: 0.0 };
        assert_eq!(best(&[pt(&[0.5, 0.5]), pt(&[0.9, 0.7]), pt(&[0.8, 0.8]), pt(&[0.1])]), 1, "0.8 mean, first of the two");
        assert!((pt(&[0.9, 0.7]).std() - 0.1).abs() < 1e-12);
    }
}
