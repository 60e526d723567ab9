//! `multilabel`, run by `pipe-torch`: the CNN of `cnn_train` with one
//! sigmoid output per label, then the decision thresholds (fixed, or tuned
//! on the validation split for the best F2 with the trained weights).
//! Under `pipe predict` it applies a trained entry's network and
//! thresholds to new images.

use pipe_core::data::dataset::{Dataset, label_sets};
use pipe_core::data::predictions::{MultiPredictions, PredictionsMeta};
use pipe_core::kinds::multilabel::{MultilabelParams, Threshold};
use pipe_core::kinds::{StageContext, StageError};
use pipe_core::metrics::multi_label_f2;
use pipe_core::metrics::threshold::{decide, read_thresholds, thresholds_csv};

use std::path::Path;

use crate::cnn_train::{Loss, Targets, Task, load_trained, train};

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: MultilabelParams = ctx.typed_params()?;
    let input = ctx.input("images")?.dir.clone();
    let data = Dataset::read(&input).map_err(StageError::from)?;
    let labels = data.meta.labels.clone();
    if labels.is_empty() {
        return Err(StageError::Failed(format!(
            "{}: the images have no label vocabulary: lower the load stage's min_label_count, or use a dataset with label sets",
            input.display()
        )));
    }
    let sets = label_sets(&data.rows, &labels);
    let unlabelled = sets.iter().filter(|s| s.is_none()).count();
    if unlabelled > 0 && ctx.trained().is_none() {
        ctx.log(format!("{unlabelled} of {} images have no label of the vocabulary and take no part", sets.len()));
    }
    let rule = Threshold::of(&p);
    let average = p.f2_average.average();
    let at_least_one = p.at_least_one;
    let task = Task { classes: labels.clone(), targets: Targets::Multi { sets, threshold: rule, average, at_least_one } };
    if let Some(trained) = ctx.trained() {
        return apply(ctx, &data, &task, &p, trained);
    }
    let fitted = train(ctx, &data, &task, &p.training, Loss::PLAIN)?;
    let n = labels.len();
    let thresholds = match rule {
        Threshold::Fixed(t) => vec![t; n],
        tuned => {
            if !data.rows.iter().any(|r| r.split == pipe_core::data::split::Split::Validation) {
                ctx.warn("no validation split: thresholds are tuned on the training images (set load's validation_fraction)");
            }
            let val_truth = task.sets(&fitted.validation);
            let val_scores = fitted.trained.probabilities(&data, &task, &fitted.validation)?;
            let thresholds = tuned.thresholds(&val_truth, &val_scores, n, average, at_least_one);
            let f2 = multi_label_f2(&val_truth, &decide(&val_scores, &thresholds, at_least_one), n, average);
            ctx.log(format!("validation F2 ({} average) with the tuned thresholds: {f2:.4}", format!("{average:?}").to_lowercase()));
            thresholds
        }
    };
    pipe_core::fsx::write(ctx.out_dir().join("thresholds.csv"), thresholds_csv(&labels, &thresholds))?;
    MultiPredictions {
        meta: PredictionsMeta { task: "multi".into(), classes: labels },
        ids: fitted.test.iter().map(|&i| i as u32).collect(),
        sources: fitted.test.iter().map(|&i| data.rows[i].source.clone()).collect(),
        y_true: task.sets(&fitted.test).into_iter().map(|s| s.into_iter().map(|l| l as u32).collect()).collect(),
        y_pred: decide(&fitted.scores, &thresholds, at_least_one).into_iter().map(|s| s.into_iter().map(|l| l as u32).collect()).collect(),
        scores: fitted.scores,
    }
    .write(ctx.out_dir())
    .map_err(StageError::from)
}

/// `pipe predict`: the trained network and thresholds of `trained` (this
/// stage's entry of the training run) decide the labels of every image.
fn apply(ctx: &StageContext, data: &Dataset, task: &Task, p: &MultilabelParams, trained: &Path) -> Result<(), StageError> {
    let labels = task.classes.clone();
    let thresholds = match Threshold::of(p) {
        Threshold::Fixed(t) => vec![t; labels.len()],
        _ => read_thresholds(&trained.join("thresholds.csv"), &labels).map_err(StageError::Failed)?,
    };
    let rows: Vec<usize> = (0..data.rows.len()).collect();
    let scores = load_trained(ctx, data, &p.training, labels.len(), trained)?.probabilities(data, task, &rows)?;
    MultiPredictions {
        meta: PredictionsMeta { task: "multi".into(), classes: labels },
        ids: rows.iter().map(|&i| i as u32).collect(),
        sources: rows.iter().map(|&i| data.rows[i].source.clone()).collect(),
        y_true: vec![Vec::new(); rows.len()],
        y_pred: decide(&scores, &thresholds, p.at_least_one).into_iter().map(|s| s.into_iter().map(|l| l as u32).collect()).collect(),
        scores,
    }
    .write(ctx.out_dir())
    .map_err(StageError::from)
}
