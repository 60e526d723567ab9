//! `svm`: C-SVC (RBF or linear kernel) tuned by grid search with stratified
//! k-fold cross-validation on the training split, refit on all of it, then
//! predictions and per-class scores for the test split (paper 2.1.1).
//!
//! Grid points x folds run in parallel (scikit-learn's `GridSearchCV` runs
//! one fit at a time by default). Folds keep an image and its augmented
//! copies together, so copies never leak into their original's validation
//! fold. The best point is the highest mean score; ties go to the first in
//! grid order, as `GridSearchCV` does. `cv.csv` keeps the whole table.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use crate::data::decode::init_opencv;
use crate::data::svm::{Kernel, SvmParams, train};
use pipe_core::data::bow::{HistogramsMeta, read_f32, read_json};
use pipe_core::data::dataset::{Dataset, Row, balanced_weights};
use pipe_core::data::predictions::argmax;
use pipe_core::data::predictions::{Predictions, PredictionsMeta};
use pipe_core::data::split::{Split, stratified_folds};
use pipe_core::metrics::{accuracy, macro_f1};
use pipe_core::rng::Rng;
use pipe_core::stages::svm as def;
use pipe_core::stages::{StageContext, StageError};

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

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    init_opencv(1);
    let p: def::SvmParams = ctx.typed_params()?;
    let input = Input::read(&ctx.input("features")?.dir.clone())?;
    if input.test_rows.is_empty() {
        return Err(StageError::Failed("the input has no test images: set test_fraction > 0 on the load stage".into()));
    }

    let kernel = match p.kernel {
        def::Kernel::Linear => Kernel::Linear,
        def::Kernel::Rbf => Kernel::Rbf,
    };
    let class_weights = (p.class_weight == def::ClassWeight::Balanced)
        .then(|| balanced_weights(&input.train_rows.iter().map(|&i| input.index[i].label_id).collect::<Vec<_>>(), input.classes.len()));
    let folds = p.folds as usize;
    let fold_of = folds_by_original(&input.index, &input.train_rows, folds, ctx.seed);
    warn_small_classes(ctx, &input, folds);

    let gammas: Vec<f64> = if kernel == Kernel::Rbf { p.gamma.clone() } else { vec![0.0] };
    let grid: Vec<(f64, f64)> = p.c.iter().flat_map(|&c| gammas.iter().map(move |&g| (c, g))).collect();
    let template = SvmParams { kernel, c: 0.0, gamma: 0.0, class_weights };
    let points = cross_validate(ctx, &input, &grid, &fold_of, folds, &template, p.scoring)?;
    let b = best(&points);
    ctx.log(format!("best: c = {}, gamma = {}, mean {} {:.4}", points[b].c, points[b].gamma, p.scoring.word(), points[b].mean()));

    let predictions = refit_and_predict(input, SvmParams { c: points[b].c, gamma: points[b].gamma, ..template })?;
    let out = ctx.out_dir().to_path_buf();
    predictions.write(&out).map_err(StageError::from)?;
    write_cv(&out.join("cv.csv"), &points, b, kernel)
}

/// The input's vectors and index, with its training and test rows.
struct Input {
    x: Vec<f32>,
    dim: usize,
    index: Vec<Row>,
    classes: Vec<String>,
    train_rows: Vec<usize>,
    test_rows: Vec<usize>,
}

impl Input {
    fn read(dir: &Path) -> Result<Input, StageError> {
        let meta: HistogramsMeta = read_json(&dir.join("histograms.json"))?;
        let x = read_f32(&dir.join("histograms.f32"))?;
        let index = Dataset::read_index(dir).map_err(StageError::from)?;
        let classes = Dataset::read_meta(dir).map_err(StageError::from)?.classes;
        let rows_of = |split: Split| (0..index.len()).filter(|&i| index[i].split == split).collect::<Vec<usize>>();
        let (train_rows, test_rows) = (rows_of(Split::Train), rows_of(Split::Test));
        Ok(Input { x, dim: meta.words, index, classes, train_rows, test_rows })
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// The vectors of `rows`, one after the other, and their labels.
    fn xy(&self, rows: &[usize]) -> (Vec<f32>, Vec<u32>) {
        (rows.iter().flat_map(|&i| self.row(i).iter().copied()).collect(), rows.iter().map(|&i| self.index[i].label_id).collect())
    }
}

/// Warns about classes too small to appear in every fold.
fn warn_small_classes(ctx: &mut StageContext, input: &Input, folds: usize) {
    let mut small: Vec<String> = Vec::new();
    let mut per_class: BTreeMap<u32, usize> = BTreeMap::new();
    for &i in &input.train_rows {
        *per_class.entry(input.index[i].label_id).or_default() += 1;
    }
    for (c, n) in &per_class {
        if *n < folds {
            small.push(format!("{} ({n})", input.classes[*c as usize]));
        }
    }
    if !small.is_empty() {
        ctx.warn(format!(
            "classes with fewer training images than folds = {folds} are absent from some folds (as in scikit-learn): {}",
            small.join(", ")
        ));
    }
}

/// Every grid point on every fold, in parallel; one [`Point`] per grid
/// point, in grid order.
fn cross_validate(
    ctx: &StageContext,
    input: &Input,
    grid: &[(f64, f64)],
    fold_of: &HashMap<usize, usize>,
    folds: usize,
    template: &SvmParams,
    scoring: def::Scoring,
) -> Result<Vec<Point>, StageError> {
    let classes = input.classes.len();
    let jobs: Vec<(usize, usize)> = (0..grid.len()).flat_map(|g| (0..folds).map(move |f| (g, f))).collect();
    let ticker = ctx.ticker(jobs.len(), "fits");
    let results: Vec<Result<(f64, f64), crate::data::CvError>> = jobs
        .par_iter()
        .map(|&(g, f)| {
            let _permit = ctx.permit();
            if ctx.check_cancelled().is_err() {
                return Err("interrupted".into());
            }
            let (fit, val): (Vec<usize>, Vec<usize>) = input.train_rows.iter().partition(|&&i| fold_of[&i] != f);
            let (xs, ys) = input.xy(&fit);
            let params = SvmParams { c: grid[g].0, gamma: grid[g].1, ..template.clone() };
            let started = Instant::now();
            let model = train(&xs, input.dim, &ys, &params)?;
            let seconds = started.elapsed().as_secs_f64();
            let truth: Vec<usize> = val.iter().map(|&i| input.index[i].label_id as usize).collect();
            let pred: Vec<usize> = val.iter().map(|&i| argmax(&model.scores(input.row(i), classes))).collect();
            ticker.tick();
            let score = match scoring {
                def::Scoring::MacroF1 => macro_f1(&truth, &pred, classes),
                def::Scoring::Accuracy => accuracy(&truth, &pred),
            };
            Ok((score, seconds))
        })
        .collect();
    ctx.check_cancelled()?;
    let mut points: Vec<Point> = grid.iter().map(|&(c, gamma)| Point { c, gamma, scores: Vec::new(), fit_seconds: 0.0 }).collect();
    for (&(g, _), r) in jobs.iter().zip(results) {
        let (score, seconds) = r.map_err(StageError::from)?;
        points[g].scores.push(score);
        points[g].fit_seconds += seconds / folds as f64;
    }
    Ok(points)
}

/// Trains on the whole training split with `params`; predictions and scores
/// for the test split.
fn refit_and_predict(input: Input, params: SvmParams) -> Result<Predictions, StageError> {
    let (xs, ys) = input.xy(&input.train_rows);
    let model = train(&xs, input.dim, &ys, &params).map_err(StageError::from)?;
    let test = &input.test_rows;
    let scores: Vec<Vec<f64>> = test.iter().map(|&i| model.scores(input.row(i), input.classes.len())).collect();
    Ok(Predictions {
        ids: test.iter().map(|&i| i as u32).collect(),
        sources: test.iter().map(|&i| input.index[i].source.clone()).collect(),
        y_true: test.iter().map(|&i| input.index[i].label_id).collect(),
        y_pred: scores.iter().map(|s| argmax(s) as u32).collect(),
        scores,
        meta: PredictionsMeta { task: "single".into(), classes: input.classes },
    })
}

/// Folds over originals: an image and its augmented copies share one fold.
fn folds_by_original(index: &[Row], train_rows: &[usize], folds: usize, seed: u64) -> HashMap<usize, usize> {
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

fn write_cv(path: &Path, points: &[Point], best: usize, kernel: Kernel) -> Result<(), StageError> {
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
    Ok(pipe_core::fsx::write(path, text)?)
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
