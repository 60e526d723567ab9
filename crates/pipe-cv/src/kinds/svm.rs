//! `svm`: C-SVC (RBF or linear kernel) tuned by grid search with stratified
//! k-fold cross-validation on the training split, refit on all of it, then
//! predictions and per-class scores for the test split (paper 2.1.1).
//!
//! Grid points x folds run in parallel (scikit-learn's `GridSearchCV` runs
//! one fit at a time by default). Folds keep an image and its augmented
//! copies together, so copies never leak into their original's validation
//! fold. The best point is the highest mean score; ties go to the first in
//! grid order, as `GridSearchCV` does. `cv.csv` keeps the whole table.
//!
//! The trained model is part of the output (`model.json`, `support.f32`,
//! see `algo::model`), and the test images are scored through it; under
//! `pipe predict` the stage scores new images with it instead of training.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use crate::algo::decode::init_opencv;
use crate::algo::kernel::{Distances, Features, Gram, available_memory, check_memory};
use crate::algo::model::{KernelModel, SvmModel};
use crate::algo::smo::OneVsOne;
use crate::algo::svm::{Kernel, SvmParams, train};
use pipe_core::data::bow::{HistogramsMeta, read_f32, read_json};
use pipe_core::data::dataset::{Dataset, Row, balanced_weights};
use pipe_core::data::predictions::argmax;
use pipe_core::data::predictions::{Predictions, PredictionsMeta};
use pipe_core::data::split::{Split, stratified_folds};
use pipe_core::kinds::svm as def;
use pipe_core::kinds::{StageContext, StageError};
use pipe_core::metrics::{accuracy, macro_f1};
use pipe_core::rng::Rng;

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
    if let Some(trained) = ctx.trained().map(Path::to_path_buf) {
        return apply(ctx, &trained);
    }
    let p: def::SvmParams = ctx.typed_params()?;
    let input = Input::read(ctx)?;
    if input.test_rows.is_empty() {
        return Err(StageError::Failed("the input has no test images: set test_fraction > 0 on the load stage".into()));
    }
    let kernel = match p.kernel {
        def::Kernel::Linear => Kernel::Linear,
        def::Kernel::Rbf => Kernel::Rbf,
    };
    let several = input.features.len() > 1;
    let smo = match p.solver {
        def::SvmSolver::Auto => several,
        def::SvmSolver::Smo => true,
        def::SvmSolver::Opencv if several => {
            return Err(StageError::Failed(format!(
                "{} inputs with solver = \"opencv\": OpenCV takes one input; use solver = \"auto\" or \"smo\", which sum the inputs' kernels",
                input.features.len()
            )));
        }
        def::SvmSolver::Opencv => false,
    };
    if kernel == Kernel::Linear && smo {
        let why = if several {
            format!("{} inputs are combined by summing RBF kernels", input.features.len())
        } else {
            "solver = \"smo\" solves RBF kernels".into()
        };
        return Err(StageError::Failed(format!("kernel = \"linear\": {why}; use kernel = \"rbf\", or one input with solver = \"opencv\"")));
    }
    let class_weights =
        (p.class_weight == def::ClassWeight::Balanced).then(|| balanced_weights(&input.labels_of(&input.train_rows), input.classes.len()));
    let gammas: Vec<f64> = if kernel == Kernel::Rbf { p.gamma.clone() } else { vec![0.0] };
    let grid: Vec<(f64, f64)> = p.c.iter().flat_map(|&c| gammas.iter().map(move |&g| (c, g))).collect();
    let units = input.gamma_units(p.gamma_unit, &input.train_rows);
    if p.gamma_unit == def::GammaUnit::Scale {
        let named: Vec<String> = input.features.iter().zip(&units).map(|(f, u)| format!("{} {u:.4}", f.name)).collect();
        ctx.log(format!("gamma = 1 is {} (scikit-learn's gamma=\"scale\")", named.join(", ")));
    }
    if smo {
        check_memory(input.train_rows.len(), input.test_rows.len(), input.features.len(), available_memory())
            .map_err(StageError::Failed)?;
    }
    let solver = if smo {
        Solver::KernelSum { class_weights, units, train: input.distances(ctx, &input.train_rows) }
    } else {
        Solver::OpenCv { template: SvmParams { kernel, c: 0.0, gamma: 0.0, class_weights }, unit: units[0] }
    };
    let (points, b) = if grid.len() == 1 {
        ctx.log(format!("one grid point (c = {}, gamma = {}): fitted once, without cross-validation", grid[0].0, grid[0].1));
        (vec![Point { c: grid[0].0, gamma: grid[0].1, scores: Vec::new(), fit_seconds: 0.0 }], 0)
    } else {
        let folds = p.folds as usize;
        let fold_of = folds_by_original(&input.index, &input.train_rows, folds, ctx.seed);
        warn_small_classes(ctx, &input, folds);
        let search = Search { grid: &grid, fold_of: &fold_of, folds, scoring: p.scoring };
        let points = match &solver {
            Solver::OpenCv { template, unit } => cross_validate(ctx, &input, search, template, *unit)?,
            Solver::KernelSum { class_weights, units, train } => {
                cross_validate_sum(ctx, &input, search, train, class_weights.as_deref(), units)?
            }
        };
        let b = best(&points);
        ctx.log(format!("best: c = {}, gamma = {}, mean {} {:.4}", points[b].c, points[b].gamma, p.scoring.word(), points[b].mean()));
        (points, b)
    };
    let (c, gamma) = (points[b].c, points[b].gamma);
    let model = match solver {
        Solver::OpenCv { template, unit } => refit(&input, SvmParams { c, gamma: gamma * unit, ..template })?,
        Solver::KernelSum { class_weights, units, train } => {
            let (model, unconverged) = refit_sum(ctx, &input, &train, c, gamma, class_weights.as_deref(), &units)?;
            if unconverged > 0 {
                ctx.warn(format!(
                    "the SMO stopped at its iteration limit for {unconverged} class pairs; their decisions may be off (a smaller c converges faster)"
                ));
            }
            model
        }
    };
    let out = ctx.out_dir().to_path_buf();
    let scores = scores(ctx, &model, &input, &input.test_rows);
    predictions_of(input, scores).write(&out).map_err(StageError::from)?;
    model.write(&out)?;
    write_cv(&out.join("cv.csv"), &points, b, kernel)
}

/// `pipe predict`: the trained model of `trained` (this stage's entry of
/// the training run) scores every image of the input.
fn apply(ctx: &mut StageContext, trained: &Path) -> Result<(), StageError> {
    let input = Input::read(ctx)?;
    let model = SvmModel::read(trained)?;
    let fits = match &model {
        SvmModel::OpenCv(s) => match input.features.as_slice() {
            [one] if one.dim == s.dim => Ok(()),
            _ => Err(format!("the model was trained on one input of {} values", s.dim)),
        },
        SvmModel::KernelSum { model, .. } | SvmModel::PerLabel(model) => model.check_inputs(&input.features),
    };
    fits.map_err(|e| StageError::Failed(format!("{}: {e}", trained.display())))?;
    let rows: Vec<usize> = (0..input.index.len()).collect();
    let scores = scores(ctx, &model, &input, &rows);
    let mut input = input;
    input.test_rows = rows;
    predictions_of(input, scores).write(ctx.out_dir()).map_err(StageError::from)
}

/// One score per class for each of `rows`, from a trained model: the
/// training run's test scores and `pipe predict`'s come from here.
fn scores(ctx: &StageContext, model: &SvmModel, input: &Input, rows: &[usize]) -> Vec<Vec<f64>> {
    let labels = input.classes.len();
    match model {
        SvmModel::OpenCv(scorer) => rows.iter().map(|&i| scorer.scores(input.row(i), labels)).collect(),
        SvmModel::KernelSum { classes, model } => model
            .decisions(&input.features, rows, || ctx.permit())
            .into_iter()
            .map(|d| crate::algo::svm::ovr_scores(classes, d, labels))
            .collect(),
        SvmModel::PerLabel(_) => unreachable!("an svm stage trains one-vs-one models"),
    }
}

/// Who solves the SVM (`solver`): OpenCV's libsvm, or pipe's SMO on the kernel matrix.
enum Solver {
    /// `unit`: what gamma = 1 means for the input.
    OpenCv { template: SvmParams, unit: f64 },
    /// `train`: the inputs' distances among the training images.
    KernelSum { class_weights: Option<Vec<f64>>, units: Vec<f64>, train: Distances },
}

/// The inputs' vectors (every input describes the same images, in the same
/// order) and their index, with its training and test rows.
pub(crate) struct Input {
    pub features: Vec<Features>,
    pub index: Vec<Row>,
    pub classes: Vec<String>,
    pub labels: Vec<String>,
    pub train_rows: Vec<usize>,
    pub validation_rows: Vec<usize>,
    pub test_rows: Vec<usize>,
}

impl Input {
    /// Reads every stage of the `features` input; they must index the same images.
    pub fn read(ctx: &StageContext) -> Result<Input, StageError> {
        let artifacts = ctx.inputs_of("features");
        let Some(first) = artifacts.first() else {
            return Err(StageError::Failed("input `features` is not connected".into()));
        };
        let index = Dataset::read_index(&first.dir).map_err(StageError::from)?;
        let meta = Dataset::read_meta(&first.dir).map_err(StageError::from)?;
        let mut features = Vec::new();
        for a in artifacts {
            let histograms: HistogramsMeta = read_json(&a.dir.join("histograms.json"))?;
            let x = read_f32(&a.dir.join("histograms.f32"))?;
            let other = Dataset::read_index(&a.dir).map_err(StageError::from)?;
            let differs = if other.len() != index.len() {
                Some(format!("{} and {} rows", index.len(), other.len()))
            } else {
                other
                    .iter()
                    .zip(&index)
                    .position(|(o, r)| o.pixel_hash != r.pixel_hash || o.split != r.split)
                    .map(|i| format!("row {i} is {} in `{}` and {} in `{}`", index[i].source, first.stage, other[i].source, a.stage))
            };
            if let Some(differs) = differs {
                return Err(StageError::Failed(format!(
                    "features `{}` and `{}` describe different images ({differs}): list feature stages that read the same images stage",
                    first.stage, a.stage
                )));
            }
            features.push(Features { name: a.stage.clone(), x, dim: histograms.words });
        }
        let rows_of = |split: Split| (0..index.len()).filter(|&i| index[i].split == split).collect::<Vec<usize>>();
        let (train_rows, validation_rows, test_rows) = (rows_of(Split::Train), rows_of(Split::Validation), rows_of(Split::Test));
        Ok(Input { features, index, classes: meta.classes, labels: meta.labels, train_rows, validation_rows, test_rows })
    }

    /// What gamma = 1 means for each input: 1, or its scikit-learn "scale"
    /// on `rows`.
    pub fn gamma_units(&self, unit: def::GammaUnit, rows: &[usize]) -> Vec<f64> {
        match unit {
            def::GammaUnit::Absolute => vec![1.0; self.features.len()],
            def::GammaUnit::Scale => self.features.iter().map(|f| f.scale_gamma(rows)).collect(),
        }
    }

    /// The inputs' squared distances among `rows`.
    pub fn distances(&self, ctx: &StageContext, rows: &[usize]) -> Distances {
        Distances::square(&self.features, rows, || ctx.permit())
    }

    fn row(&self, i: usize) -> &[f32] {
        self.features[0].row(i)
    }

    /// The label ids of `rows`.
    fn labels_of(&self, rows: &[usize]) -> Vec<u32> {
        rows.iter().map(|&i| self.index[i].label_id).collect()
    }

    /// The first input's vectors of `rows`, one after the other, and their labels.
    fn xy(&self, rows: &[usize]) -> (Vec<f32>, Vec<u32>) {
        (rows.iter().flat_map(|&i| self.row(i).iter().copied()).collect(), self.labels_of(rows))
    }
}

/// Each input's width for grid gamma `gamma`: `gamma` times its unit.
pub(crate) fn widths(gamma: f64, units: &[f64]) -> Vec<f64> {
    units.iter().map(|u| gamma * u).collect()
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

/// What a grid search tries and how it scores: grid points (c, gamma),
/// each training row's fold, the fold count and the metric.
#[derive(Clone, Copy)]
struct Search<'a> {
    grid: &'a [(f64, f64)],
    fold_of: &'a HashMap<usize, usize>,
    folds: usize,
    scoring: def::Scoring,
}

/// Every grid point on every fold, in parallel; one [`Point`] per grid
/// point, in grid order.
fn cross_validate(ctx: &StageContext, input: &Input, search: Search, template: &SvmParams, unit: f64) -> Result<Vec<Point>, StageError> {
    let Search { grid, fold_of, folds, scoring } = search;
    let classes = input.classes.len();
    let jobs: Vec<(usize, usize)> = (0..grid.len()).flat_map(|g| (0..folds).map(move |f| (g, f))).collect();
    let ticker = ctx.ticker(jobs.len(), "fits");
    let results: Vec<Result<(f64, f64), crate::algo::CvError>> = jobs
        .par_iter()
        .map(|&(g, f)| {
            let _permit = ctx.permit();
            if ctx.check_cancelled().is_err() {
                return Err("interrupted".into());
            }
            let (fit, val): (Vec<usize>, Vec<usize>) = input.train_rows.iter().partition(|&&i| fold_of[&i] != f);
            let (xs, ys) = input.xy(&fit);
            let dim = input.features[0].dim;
            let params = SvmParams { c: grid[g].0, gamma: grid[g].1 * unit, ..template.clone() };
            let started = Instant::now();
            let model = train(&xs, dim, &ys, &params)?;
            let seconds = started.elapsed().as_secs_f64();
            let truth: Vec<usize> = val.iter().map(|&i| input.index[i].label_id as usize).collect();
            let pred: Vec<usize> = val.iter().map(|&i| argmax(&model.scores(input.row(i), classes))).collect();
            ticker.tick();
            Ok((score(scoring, &truth, &pred, classes), seconds))
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

fn score(scoring: def::Scoring, truth: &[usize], pred: &[usize], classes: usize) -> f64 {
    match scoring {
        def::Scoring::MacroF1 => macro_f1(truth, pred, classes),
        def::Scoring::Accuracy => accuracy(truth, pred),
    }
}

/// Every grid point on every fold for a kernel sum: one kernel matrix of
/// the training split per gamma (from `train`, its distances), each fit's
/// class pairs in parallel.
fn cross_validate_sum(
    ctx: &StageContext,
    input: &Input,
    search: Search,
    train: &Distances,
    class_weights: Option<&[f64]>,
    units: &[f64],
) -> Result<Vec<Point>, StageError> {
    let Search { grid, fold_of, folds, scoring } = search;
    let classes = input.classes.len();
    let labels = input.labels_of(&input.train_rows);
    let fold: Vec<usize> = input.train_rows.iter().map(|i| fold_of[i]).collect();
    let ticker = ctx.ticker(grid.len() * folds, "fits");
    let mut points: Vec<Point> = grid.iter().map(|&(c, gamma)| Point { c, gamma, scores: Vec::new(), fit_seconds: 0.0 }).collect();
    for gamma in distinct_gammas(grid) {
        let gram = Gram { n: input.train_rows.len(), k: train.kernel(&widths(gamma, units)) };
        for (point, &(c, _)) in points.iter_mut().zip(grid).filter(|(_, g)| g.1 == gamma) {
            for f in 0..folds {
                ctx.check_cancelled()?;
                let (fit, val): (Vec<usize>, Vec<usize>) = (0..gram.n).partition(|&r| fold[r] != f);
                let started = Instant::now();
                let model = OneVsOne::train(&gram, &fit, &labels, c, class_weights, || ctx.permit());
                point.fit_seconds += started.elapsed().as_secs_f64() / folds as f64;
                let truth: Vec<usize> = val.iter().map(|&r| labels[r] as usize).collect();
                let pred: Vec<usize> = val.iter().map(|&r| argmax(&model.scores(gram.row(r), classes))).collect();
                point.scores.push(score(scoring, &truth, &pred, classes));
                ticker.tick();
            }
        }
    }
    Ok(points)
}

/// Each gamma of the grid once, in the order of first appearance (the grid
/// is C-major, so its gammas repeat once per C).
fn distinct_gammas(grid: &[(f64, f64)]) -> Vec<f64> {
    let mut gammas: Vec<f64> = Vec::new();
    for &(_, g) in grid {
        if !gammas.contains(&g) {
            gammas.push(g);
        }
    }
    gammas
}

/// Trains the kernel sum on the whole training split: the model, and how
/// many class pairs did not converge.
fn refit_sum(
    ctx: &StageContext,
    input: &Input,
    train: &Distances,
    c: f64,
    gamma: f64,
    class_weights: Option<&[f64]>,
    units: &[f64],
) -> Result<(SvmModel, usize), StageError> {
    let gram = Gram { n: input.train_rows.len(), k: train.kernel(&widths(gamma, units)) };
    let labels = input.labels_of(&input.train_rows);
    let all: Vec<usize> = (0..gram.n).collect();
    let model = OneVsOne::train(&gram, &all, &labels, c, class_weights, || ctx.permit());
    ctx.check_cancelled()?;
    let unconverged = model.unconverged();
    let (classes, pairs) = model.into_parts();
    let model = KernelModel::keep(pairs, &input.train_rows, &input.features, widths(gamma, units));
    Ok((SvmModel::KernelSum { classes, model }, unconverged))
}

/// Trains OpenCV's SVM on the whole training split with `params`.
fn refit(input: &Input, params: SvmParams) -> Result<SvmModel, StageError> {
    let (xs, ys) = input.xy(&input.train_rows);
    let model = train(&xs, input.features[0].dim, &ys, &params).map_err(StageError::from)?;
    Ok(SvmModel::OpenCv(model.scorer))
}

/// The single-label predictions of the test rows from their scores.
fn predictions_of(input: Input, scores: Vec<Vec<f64>>) -> Predictions {
    let test = &input.test_rows;
    Predictions {
        ids: test.iter().map(|&i| i as u32).collect(),
        sources: test.iter().map(|&i| input.index[i].source.clone()).collect(),
        y_true: test.iter().map(|&i| input.index[i].label_id).collect(),
        y_pred: scores.iter().map(|s| argmax(s) as u32).collect(),
        scores,
        meta: PredictionsMeta { task: "single".into(), classes: input.classes },
    }
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
        if p.scores.is_empty() {
            text.push_str(&format!("{k},{},{gamma},,,,1,true\n", p.c));
        } else {
            text.push_str(&format!("{k},{},{gamma},{:.6},{:.6},{:.4},{},{}\n", p.c, p.mean(), p.std(), p.fit_seconds, rank[i], i == best));
        }
    }
    Ok(pipe_core::fsx::write(path, text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gamma_of_a_c_major_grid_is_visited_once() {
        let grid = [(1.0, 0.5), (1.0, 2.0), (10.0, 0.5), (10.0, 2.0)];
        assert_eq!(distinct_gammas(&grid), [0.5, 2.0]);
    }

    #[test]
    fn the_best_point_is_the_first_highest_mean() {
        let pt = |s: &[f64]| Point { c: 1.0, gamma: 1.0, scores: s.to_vec(), fit_seconds: 0.0 };
        assert_eq!(best(&[pt(&[0.5, 0.5]), pt(&[0.9, 0.7]), pt(&[0.8, 0.8]), pt(&[0.1])]), 1, "0.8 mean, first of the two");
        assert!((pt(&[0.9, 0.7]).std() - 0.1).abs() < 1e-12);
    }
}
