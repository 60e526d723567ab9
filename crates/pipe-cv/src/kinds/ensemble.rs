//! `ensemble`: soft voting over single-label approaches evaluated on the
//! same test images. Each approach's scores are first made a distribution
//! per image: probabilities (the CNNs' softmax) stay as they are; other
//! scores (the SVM's one-vs-rest decision values, votes plus squashed
//! confidences as scikit-learn's `decision_function_shape="ovr"`) go through
//! a softmax, so one more vote weighs e times more. The distributions are
//! averaged with `weights` (equal by default) and the prediction is the
//! class of highest average. An approach beyond the paper, named as its own
//! row in `evaluate`.

use pipe_core::data::predictions::Predictions;
use pipe_core::data::predictions::argmax;
use pipe_core::kinds::ensemble::EnsembleParams;
use pipe_core::kinds::{StageContext, StageError};

pub fn run(ctx: &mut StageContext) -> Result<(), StageError> {
    let p: EnsembleParams = ctx.typed_params()?;
    let inputs: Vec<(String, Predictions)> = ctx
        .inputs_of("predictions")
        .iter()
        .map(|a| Predictions::read(&a.dir).map(|p| (a.stage.clone(), p)).map_err(StageError::from))
        .collect::<Result<_, _>>()?;
    let weights = p.weights.unwrap_or_else(|| vec![1.0; inputs.len()]);
    if weights.len() != inputs.len() {
        return Err(StageError::Failed(format!(
            "{} weights for {} inputs: give one weight per input, in order",
            weights.len(),
            inputs.len()
        )));
    }
    let combined = vote(&inputs, &weights)?;
    ctx.log(format!("soft vote of {}", inputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")));
    combined.write(ctx.out_dir()).map_err(StageError::from)
}

/// The weighted soft vote; every input must cover the same images and classes.
pub fn vote(inputs: &[(String, Predictions)], weights: &[f64]) -> Result<Predictions, StageError> {
    let Some((first_name, first)) = inputs.first() else {
        return Err(StageError::Failed("no inputs to vote".into()));
    };
    for (name, p) in inputs {
        if p.meta.classes != first.meta.classes || p.ids != first.ids {
            return Err(StageError::Failed(format!(
                "`{name}` and `{first_name}` predict other images or classes: an ensemble needs approaches on the same test split and classes"
            )));
        }
        if p.scores.len() != p.ids.len() {
            return Err(StageError::Failed(format!("`{name}` has no scores to vote with")));
        }
    }
    let total: f64 = weights.iter().sum();
    let n = first.meta.classes.len();
    let scores: Vec<Vec<f64>> = (0..first.ids.len())
        .map(|row| {
            let mut mean = vec![0.0; n];
            for ((_, p), w) in inputs.iter().zip(weights) {
                for (m, v) in mean.iter_mut().zip(distribution(&p.scores[row])) {
                    *m += w / total * v;
                }
            }
            mean
        })
        .collect();
    Ok(Predictions {
        meta: first.meta.clone(),
        ids: first.ids.clone(),
        sources: first.sources.clone(),
        y_true: first.y_true.clone(),
        y_pred: scores.iter().map(|s| argmax(s) as u32).collect(),
        scores,
    })
}

/// `scores` as a distribution: unchanged when they already are one, else
/// their softmax.
fn distribution(scores: &[f64]) -> Vec<f64> {
    let sum: f64 = scores.iter().sum();
    if scores.iter().all(|v| (0.0..=1.0).contains(v)) && (sum - 1.0).abs() < 1e-6 {
        return scores.to_vec();
    }
    let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scores.iter().map(|v| (v - top).exp()).collect();
    let z: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / z).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_core::data::predictions::PredictionsMeta;

    fn approach(scores: Vec<Vec<f64>>) -> Predictions {
        Predictions {
            meta: PredictionsMeta { task: "single".into(), classes: vec!["a".into(), "b".into()] },
            ids: vec![0, 1],
            sources: vec!["x".into(), "y".into()],
            y_true: vec![0, 1],
            y_pred: scores.iter().map(|s| argmax(s) as u32).collect(),
            scores,
        }
    }

    #[test]
    fn distributions_are_averaged_with_weights() {
        let cnn = approach(vec![vec![0.6, 0.4], vec![0.45, 0.55]]);
        // Decision values one vote apart: softmax 1/(1+e^-1) = 0.731 for the winner.
        let svm = approach(vec![vec![1.2, 0.2], vec![0.1, 1.1]]);
        let win = 1.0 / (1.0 + (-1.0f64).exp());
        let equal = vote(&[("cnn".into(), cnn.clone()), ("svm".into(), svm.clone())], &[1.0, 1.0]).unwrap();
        assert!((equal.scores[0][0] - (0.6 + win) / 2.0).abs() < 1e-12, "{:?}", equal.scores[0]);
        assert!((equal.scores[0].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(equal.y_pred, vec![0, 1]);
        let leaning = vote(&[("cnn".into(), cnn), ("svm".into(), svm)], &[3.0, 1.0]).unwrap();
        assert!((leaning.scores[1][1] - (0.75 * 0.55 + 0.25 * win)).abs() < 1e-12);
    }

    #[test]
    fn other_test_images_are_refused() {
        let mut other = approach(vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        other.ids = vec![0, 2];
        let err = vote(&[("a".into(), approach(vec![vec![1.0, 0.0], vec![0.0, 1.0]])), ("b".into(), other)], &[1.0, 1.0]).unwrap_err();
        assert!(err.to_string().contains("same test split"), "{err}");
    }
}
