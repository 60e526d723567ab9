//! C-SVC with an RBF or linear kernel (OpenCV `ml::SVM`, libsvm's
//! algorithm), plus per-class scores that OpenCV does not expose: the
//! one-vs-one decision values are recomputed from the model's support
//! vectors and turned into scikit-learn's `decision_function_shape="ovr"`
//! scores — votes plus summed confidences squashed into (-1/3, 1/3), so the
//! confidences break ties between votes without overturning them.

use opencv::core::{Mat, Ptr, TermCriteria, TermCriteria_Type};
use opencv::ml::SVM;
use opencv::prelude::*;

use super::CvError;
use super::vocab::mat_f32;

fn cv(source: opencv::Error) -> CvError {
    CvError::OpenCv { step: "OpenCV SVM".into(), source }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kernel {
    Rbf,
    Linear,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SvmParams {
    pub kernel: Kernel,
    pub c: f64,
    pub gamma: f64,
    /// Per class (indexed by label id), multiplying C, as scikit-learn's `class_weight`.
    pub class_weights: Option<Vec<f64>>,
}

/// A trained model: OpenCV's, and what scores new samples without it.
pub struct Model {
    svm: Ptr<SVM>,
    pub scorer: Scorer,
}

/// What is needed to score new samples: the support vectors and the
/// decision functions OpenCV trained (see `algo::model` for its file).
#[derive(Debug, Clone, PartialEq)]
pub struct Scorer {
    /// Training labels present, ascending (OpenCV's class order).
    pub classes: Vec<u32>,
    pub kernel: Kernel,
    pub gamma: f64,
    pub dim: usize,
    pub support: Vec<f32>,
    /// Per class pair (i < j, in OpenCV's order): rho, alphas, support-vector indices.
    pub pairs: Vec<(f64, Vec<f64>, Vec<i32>)>,
}

/// Trains on rows of `x` (`dim` wide) with labels `y`.
pub fn train(x: &[f32], dim: usize, y: &[u32], p: &SvmParams) -> Result<Model, CvError> {
    let mut classes: Vec<u32> = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() < 2 {
        return Err(CvError::Failed("the training data has fewer than two classes".into()));
    }
    let mut svm = SVM::create().map_err(cv)?;
    svm.set_type(opencv::ml::SVM_C_SVC).map_err(cv)?;
    svm.set_kernel(if p.kernel == Kernel::Rbf { opencv::ml::SVM_RBF } else { opencv::ml::SVM_LINEAR }).map_err(cv)?;
    svm.set_c(p.c).map_err(cv)?;
    svm.set_gamma(p.gamma).map_err(cv)?;
    svm.set_term_criteria(
        TermCriteria::new((TermCriteria_Type::COUNT as i32) | (TermCriteria_Type::EPS as i32), 100_000, 1e-6).map_err(cv)?,
    )
    .map_err(cv)?;
    if let Some(w) = &p.class_weights {
        let per_class: Vec<f64> = classes.iter().map(|&c| w.get(c as usize).copied().unwrap_or(1.0)).collect();
        let mut m =
            Mat::new_rows_cols_with_default(1, per_class.len() as i32, opencv::core::CV_64F, opencv::core::Scalar::all(0.0)).map_err(cv)?;
        m.data_typed_mut::<f64>().map_err(cv)?.copy_from_slice(&per_class);
        svm.set_class_weights(&m).map_err(cv)?;
    }
    let samples = mat_f32(x, dim)?;
    let mut responses =
        Mat::new_rows_cols_with_default(y.len() as i32, 1, opencv::core::CV_32S, opencv::core::Scalar::all(0.0)).map_err(cv)?;
    responses.data_typed_mut::<i32>().map_err(cv)?.iter_mut().zip(y).for_each(|(r, &l)| *r = l as i32);
    if !svm.train(&samples, opencv::ml::ROW_SAMPLE, &responses).map_err(cv)? {
        return Err(CvError::Failed("OpenCV SVM: training did not converge".into()));
    }
    let sv = svm.get_support_vectors().map_err(cv)?;
    let sv = if sv.is_continuous() { sv } else { sv.try_clone().map_err(cv)? };
    let support = sv.data_typed::<f32>().map_err(cv)?.to_vec();
    let n_pairs = classes.len() * (classes.len() - 1) / 2;
    let mut pairs = Vec::with_capacity(n_pairs);
    for k in 0..n_pairs {
        let (mut alpha, mut idx) = (Mat::default(), Mat::default());
        let rho = svm.get_decision_function(k as i32, &mut alpha, &mut idx).map_err(cv)?;
        let alpha: Vec<f64> = alpha.data_typed::<f64>().map_err(cv)?.to_vec();
        let idx: Vec<i32> = idx.data_typed::<i32>().map_err(cv)?.to_vec();
        pairs.push((rho, alpha, idx));
    }
    Ok(Model { svm, scorer: Scorer { classes, kernel: p.kernel, gamma: p.gamma, dim, support, pairs } })
}

/// scikit-learn's one-vs-rest scores from the one-vs-one decision values
/// (`decisions`: one per class pair (a, b), a < b in `classes`' order,
/// positive for a): per label id in `0..labels`, the votes plus the summed
/// confidence squashed into (-1/3, 1/3), so confidences break ties between
/// votes without overturning them; -1 for labels absent from training.
pub fn ovr_scores(classes: &[u32], decisions: impl IntoIterator<Item = f64>, labels: usize) -> Vec<f64> {
    let n = classes.len();
    let (mut votes, mut conf) = (vec![0f64; n], vec![0f64; n]);
    let mut decisions = decisions.into_iter();
    for a in 0..n {
        for b in a + 1..n {
            let f = decisions.next().expect("one decision per class pair");
            if f > 0.0 {
                votes[a] += 1.0
            } else {
                votes[b] += 1.0
            }
            conf[a] += f;
            conf[b] -= f;
        }
    }
    let mut out = vec![-1.0; labels];
    for (c, &label) in classes.iter().enumerate() {
        out[label as usize] = votes[c] + conf[c] / (3.0 * (conf[c].abs() + 1.0));
    }
    out
}

impl Scorer {
    fn kernel(&self, x: &[f32], s: usize) -> f64 {
        let sv = &self.support[s * self.dim..(s + 1) * self.dim];
        match self.kernel {
            Kernel::Linear => x.iter().zip(sv).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum(),
            Kernel::Rbf => (-self.gamma * x.iter().zip(sv).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum::<f64>()).exp(),
        }
    }

    /// One score per label id in `0..labels`: votes + squashed confidence for
    /// trained classes, -1 for labels absent from training.
    pub fn scores(&self, x: &[f32], labels: usize) -> Vec<f64> {
        // Each support vector serves many class pairs: evaluate the kernel once.
        let k_values: Vec<f64> = (0..self.support.len() / self.dim.max(1)).map(|s| self.kernel(x, s)).collect();
        let decisions =
            self.pairs.iter().map(|(rho, alpha, idx)| alpha.iter().zip(idx).map(|(a, &s)| a * k_values[s as usize]).sum::<f64>() - rho);
        ovr_scores(&self.classes, decisions, labels)
    }
}

impl Model {
    /// See [`Scorer::scores`].
    pub fn scores(&self, x: &[f32], labels: usize) -> Vec<f64> {
        self.scorer.scores(x, labels)
    }

    /// OpenCV's own prediction (most votes, first on ties), for checking.
    pub fn opencv_predict(&self, x: &[f32]) -> Result<u32, CvError> {
        let mut results = Mat::default();
        self.svm.predict(&mat_f32(x, self.scorer.dim)?, &mut results, 0).map_err(cv)?;
        let r = *results.at::<f32>(0).map_err(cv)?;
        Ok(r as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_core::data::predictions::argmax;

    /// Three well-separated 2-D clusters.
    fn toy() -> (Vec<f32>, Vec<u32>) {
        let centres = [(0.0, 0.0), (5.0, 5.0), (0.0, 5.0)];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (label, (cx, cy)) in centres.iter().enumerate() {
            for k in 0..6 {
                let d = k as f32 * 0.1;
                x.extend_from_slice(&[cx + d, cy - d]);
                y.push(label as u32);
            }
        }
        (x, y)
    }

    #[test]
    fn predicts_a_hand_made_problem_and_scores_agree_with_opencv() {
        let (x, y) = toy();
        for kernel in [Kernel::Rbf, Kernel::Linear] {
            let m = train(&x, 2, &y, &SvmParams { kernel, c: 10.0, gamma: 0.5, class_weights: None }).unwrap();
            for (point, want) in [([0.2f32, 0.1], 0), ([4.8, 5.2], 1), ([0.3, 4.7], 2)] {
                let s = m.scores(&point, 4);
                assert_eq!(argmax(&s), want, "{kernel:?} {point:?} {s:?}");
                assert_eq!(m.opencv_predict(&point).unwrap(), want as u32);
                assert_eq!(s[3], -1.0, "a label absent from training scores -1");
            }
        }
    }
}
