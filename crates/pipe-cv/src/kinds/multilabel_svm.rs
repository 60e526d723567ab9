//! `multilabel-svm`: one binary SVM per label on the kernel sum of the
//! `features` inputs (`algo::kernel`, solved by `algo::smo`), the labels in
//! parallel; scores are the logistic of each decision value, and the
//! thresholds come from the validation split as in `multilabel`. The
//! models are part of the output (`algo::model`); under `pipe predict` the
//! stage applies them, and its thresholds, to new images.

use rayon::prelude::*;

use pipe_core::data::dataset::label_sets;
use pipe_core::data::predictions::{MultiPredictions, PredictionsMeta};
use pipe_core::kinds::multilabel::Threshold;
use pipe_core::kinds::multilabel_svm::MultilabelSvmParams;
use pipe_core::kinds::{StageContext, StageError};
use pipe_core::metrics::multi_label_f2;
use pipe_core::metrics::threshold::{decide, read_thresholds, thresholds_csv};

use super::svm::{Input, widths};
use crate::algo::kernel::{Gram, available_memory, check_memory};
use crate::algo::model::{KernelModel, SvmModel};
use crate::algo::smo::{Binary, solve};

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: MultilabelSvmParams = ctx.typed_params()?;
    if let Some(trained) = ctx.trained().map(std::path::Path::to_path_buf) {
        return apply(ctx, &p, &trained);
    }
    let input = Input::read(ctx)?;
    let labels = input.labels.clone();
    if labels.is_empty() {
        return Err(StageError::Failed(
            "the images have no label vocabulary: lower the load stage's min_label_count, or use a dataset with label sets".into(),
        ));
    }
    let sets = label_sets(&input.index, &labels);
    let with_set = |rows: &[usize]| rows.iter().copied().filter(|&i| sets[i].is_some()).collect::<Vec<usize>>();
    let (train, mut validation, test) = (with_set(&input.train_rows), with_set(&input.validation_rows), with_set(&input.test_rows));
    if train.is_empty() || test.is_empty() {
        return Err(StageError::Failed(
            "no training or no test images with a label of the vocabulary: check the load stage's fractions".into(),
        ));
    }
    let skipped = sets.iter().filter(|s| s.is_none()).count();
    if skipped > 0 {
        ctx.log(format!("{skipped} of {} images have no label of the vocabulary and take no part", sets.len()));
    }
    let rule = Threshold::from_param(p.threshold);
    if validation.is_empty() {
        if !matches!(rule, Threshold::Fixed(_)) {
            ctx.warn("no validation split: thresholds are tuned on the training images (set load's validation_fraction)");
        }
        validation = train.clone();
    }

    check_memory(train.len(), validation.len().max(test.len()), input.features.len(), available_memory()).map_err(StageError::Failed)?;
    let units = input.gamma_units(p.gamma_unit, &train);
    let gammas = widths(p.gamma, &units);
    let gram = Gram { n: train.len(), k: input.distances(ctx, &train).kernel(&gammas) };
    ctx.check_cancelled()?;
    let ticker = ctx.ticker(labels.len(), "labels");
    let (all, bounds): (Vec<usize>, Vec<f64>) = ((0..train.len()).collect(), vec![p.c; train.len()]);
    let models: Vec<Binary> = (0..labels.len())
        .into_par_iter()
        .map(|l| {
            let _permit = ctx.permit();
            let positive: Vec<bool> = train.iter().map(|&i| sets[i].as_ref().is_some_and(|s| s.contains(&l))).collect();
            let model = solve(&gram, &all, &positive, &bounds);
            ticker.tick();
            model
        })
        .collect();
    ctx.check_cancelled()?;
    let unconverged = models.iter().filter(|m| !m.converged).count();
    if unconverged > 0 {
        ctx.warn(format!(
            "the SMO stopped at its iteration limit for {unconverged} labels; their decisions may be off (a smaller c converges faster)"
        ));
    }
    let model = KernelModel::keep(models, &train, &input.features, gammas);
    let scores_of = |rows: &[usize]| scores(ctx, &model, &input, rows);
    let truth = |rows: &[usize]| -> Vec<Vec<usize>> { rows.iter().map(|&i| sets[i].clone().expect("rows with a set")).collect() };
    let average = p.f2_average.average();
    let n = labels.len();
    let (val_scores, scores) = (scores_of(&validation), scores_of(&test));
    let val_truth = truth(&validation);
    let thresholds = rule.thresholds(&val_truth, &val_scores, n, average, p.at_least_one);
    let f2 = multi_label_f2(&val_truth, &decide(&val_scores, &thresholds, p.at_least_one), n, average);
    ctx.log(format!("validation F2 ({} average) at the thresholds: {f2:.4}", format!("{average:?}").to_lowercase()));
    pipe_core::fsx::write(ctx.out_dir().join("thresholds.csv"), thresholds_csv(&labels, &thresholds))?;
    SvmModel::PerLabel(model).write(ctx.out_dir())?;
    let ids = |sets: Vec<Vec<usize>>| -> Vec<Vec<u32>> { sets.into_iter().map(|s| s.into_iter().map(|l| l as u32).collect()).collect() };
    MultiPredictions {
        meta: PredictionsMeta { task: "multi".into(), classes: labels },
        ids: test.iter().map(|&i| i as u32).collect(),
        sources: test.iter().map(|&i| input.index[i].source.clone()).collect(),
        y_true: ids(truth(&test)),
        y_pred: ids(decide(&scores, &thresholds, p.at_least_one)),
        scores,
    }
    .write(ctx.out_dir())
    .map_err(StageError::from)
}

/// Each label's score for each of `rows`: the logistic of its model's
/// decision value (the training run's and `pipe predict`'s alike).
fn scores(ctx: &StageContext, model: &KernelModel, input: &Input, rows: &[usize]) -> Vec<Vec<f64>> {
    model
        .decisions(&input.features, rows, || ctx.permit())
        .into_iter()
        .map(|d| d.into_iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect())
        .collect()
}

/// `pipe predict`: the models and thresholds of `trained` (this stage's
/// entry of the training run) decide the labels of every input image.
fn apply(ctx: &mut StageContext, p: &MultilabelSvmParams, trained: &std::path::Path) -> Result<(), StageError> {
    let input = Input::read(ctx)?;
    let SvmModel::PerLabel(model) = SvmModel::read(trained)? else {
        return Err(StageError::Failed(format!("{}: not a multilabel-svm model", trained.display())));
    };
    model.check_inputs(&input.features).map_err(|e| StageError::Failed(format!("{}: {e}", trained.display())))?;
    let labels = input.labels.clone();
    let thresholds = match Threshold::from_param(p.threshold) {
        Threshold::Fixed(t) => vec![t; labels.len()],
        _ => read_thresholds(&trained.join("thresholds.csv"), &labels).map_err(StageError::Failed)?,
    };
    let rows: Vec<usize> = (0..input.index.len()).collect();
    let scores = scores(ctx, &model, &input, &rows);
    let ids = |sets: Vec<Vec<usize>>| -> Vec<Vec<u32>> { sets.into_iter().map(|s| s.into_iter().map(|l| l as u32).collect()).collect() };
    MultiPredictions {
        meta: PredictionsMeta { task: "multi".into(), classes: labels },
        ids: rows.iter().map(|&i| i as u32).collect(),
        sources: rows.iter().map(|&i| input.index[i].source.clone()).collect(),
        y_true: vec![Vec::new(); rows.len()],
        y_pred: ids(decide(&scores, &thresholds, p.at_least_one)),
        scores,
    }
    .write(ctx.out_dir())
    .map_err(StageError::from)
}
