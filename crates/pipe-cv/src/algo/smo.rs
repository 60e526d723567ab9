//! C-SVC on a precomputed kernel matrix (`algo::kernel`), for the kernels
//! OpenCV cannot take (a sum of RBF kernels over several inputs). The
//! binary solver is libsvm's SMO (Fan, Chen & Lin 2005: second-order
//! working-set selection, the same updates and bias), without shrinking;
//! it stops when the maximal violating pair is within `EPSILON` (libsvm's
//! and scikit-learn's default `tol`). Multi-class is libsvm's one-vs-one,
//! scored as scikit-learn's `decision_function_shape="ovr"` (see
//! [`crate::algo::svm::ovr_scores`]), exactly as the OpenCV path scores.
//! Everything runs in a fixed order: the same matrix gives the same model.

use rayon::prelude::*;

use super::kernel::Gram;
use super::svm::ovr_scores;

/// Stopping tolerance on the maximal violating pair.
const EPSILON: f64 = 1e-3;
/// libsvm's floor for a non-positive curvature.
const TAU: f64 = 1e-12;

/// A binary decision function: f(x) = Σ coef · K(x, support) - rho, with
/// `support` indices into the training [`Gram`]; positive means +1.
#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    pub support: Vec<usize>,
    pub coef: Vec<f64>,
    pub rho: f64,
    pub iterations: usize,
    /// False when the solver stopped at its iteration limit before the
    /// tolerance was met (libsvm warns of the same).
    pub converged: bool,
}

impl Binary {
    /// f(x) from x's kernel values against every training row.
    pub fn decision(&self, k_row: &[f32]) -> f64 {
        self.support.iter().zip(&self.coef).map(|(&s, c)| c * f64::from(k_row[s])).sum::<f64>() - self.rho
    }
}

/// Trains a binary C-SVC on `members` (indices into `gram`) with labels
/// `positive` and per-member box constraints `c`.
pub fn solve(gram: &Gram, members: &[usize], positive: &[bool], c: &[f64]) -> Binary {
    let l = members.len();
    let y: Vec<f64> = positive.iter().map(|&p| if p { 1.0 } else { -1.0 }).collect();
    let q_diag: Vec<f64> = members.iter().map(|&m| f64::from(gram.row(m)[m])).collect();
    let mut alpha = vec![0f64; l];
    let mut grad = vec![-1f64; l];
    let upper = |alpha: &[f64], t: usize| alpha[t] >= c[t];
    let lower = |alpha: &[f64], t: usize| alpha[t] <= 0.0;
    let q_row = |i: usize| -> Vec<f64> {
        let k = gram.row(members[i]);
        members.iter().zip(&y).map(|(&m, &yt)| y[i] * yt * f64::from(k[m])).collect()
    };
    let max_iterations = 10_000_000.max(100 * l);
    let (mut iterations, mut converged) = (0, false);
    while iterations < max_iterations {
        // Working set: i maximal violator, j by second-order gain.
        let (mut g_max, mut i) = (f64::NEG_INFINITY, usize::MAX);
        for t in 0..l {
            let v = if y[t] > 0.0 { (!upper(&alpha, t)).then(|| -grad[t]) } else { (!lower(&alpha, t)).then(|| grad[t]) };
            if let Some(v) = v.filter(|&v| v >= g_max) {
                (g_max, i) = (v, t);
            }
        }
        if i == usize::MAX {
            converged = true;
            break;
        }
        let q_i = q_row(i);
        let (mut g_max2, mut j, mut best) = (f64::NEG_INFINITY, usize::MAX, f64::INFINITY);
        for t in 0..l {
            let (eligible, g_t, sign) = if y[t] > 0.0 { (!lower(&alpha, t), grad[t], -1.0) } else { (!upper(&alpha, t), -grad[t], 1.0) };
            if !eligible {
                continue;
            }
            g_max2 = g_max2.max(g_t);
            let diff = g_max + g_t;
            if diff > 0.0 {
                let quad = q_diag[i] + q_diag[t] + sign * 2.0 * y[i] * q_i[t];
                let gain = -(diff * diff) / if quad > 0.0 { quad } else { TAU };
                if gain <= best {
                    (best, j) = (gain, t);
                }
            }
        }
        if g_max + g_max2 < EPSILON || j == usize::MAX {
            converged = true;
            break;
        }
        iterations += 1;
        let q_j = q_row(j);
        let (old_i, old_j) = (alpha[i], alpha[j]);
        let (c_i, c_j) = (c[i], c[j]);
        if y[i] != y[j] {
            let quad = (q_diag[i] + q_diag[j] + 2.0 * q_i[j]).max(TAU);
            let delta = (-grad[i] - grad[j]) / quad;
            let diff = alpha[i] - alpha[j];
            alpha[i] += delta;
            alpha[j] += delta;
            if diff > 0.0 {
                if alpha[j] < 0.0 {
                    (alpha[j], alpha[i]) = (0.0, diff);
                }
            } else if alpha[i] < 0.0 {
                (alpha[i], alpha[j]) = (0.0, -diff);
            }
            if diff > c_i - c_j {
                if alpha[i] > c_i {
                    (alpha[i], alpha[j]) = (c_i, c_i - diff);
                }
            } else if alpha[j] > c_j {
                (alpha[j], alpha[i]) = (c_j, c_j + diff);
            }
        } else {
            let quad = (q_diag[i] + q_diag[j] - 2.0 * q_i[j]).max(TAU);
            let delta = (grad[i] - grad[j]) / quad;
            let sum = alpha[i] + alpha[j];
            alpha[i] -= delta;
            alpha[j] += delta;
            if sum > c_i {
                if alpha[i] > c_i {
                    (alpha[i], alpha[j]) = (c_i, sum - c_i);
                }
            } else if alpha[j] < 0.0 {
                (alpha[j], alpha[i]) = (0.0, sum);
            }
            if sum > c_j {
                if alpha[j] > c_j {
                    (alpha[j], alpha[i]) = (c_j, sum - c_j);
                }
            } else if alpha[i] < 0.0 {
                (alpha[i], alpha[j]) = (0.0, sum);
            }
        }
        let (d_i, d_j) = (alpha[i] - old_i, alpha[j] - old_j);
        for t in 0..l {
            grad[t] += q_i[t] * d_i + q_j[t] * d_j;
        }
    }
    // The bias: the mean of y·G over free vectors, else the middle of the bounds.
    let (mut upper_bound, mut lower_bound, mut free, mut sum_free) = (f64::INFINITY, f64::NEG_INFINITY, 0usize, 0f64);
    for t in 0..l {
        let yg = y[t] * grad[t];
        if upper(&alpha, t) {
            if y[t] < 0.0 { upper_bound = upper_bound.min(yg) } else { lower_bound = lower_bound.max(yg) }
        } else if lower(&alpha, t) {
            if y[t] > 0.0 { upper_bound = upper_bound.min(yg) } else { lower_bound = lower_bound.max(yg) }
        } else {
            free += 1;
            sum_free += yg;
        }
    }
    let rho = if free > 0 { sum_free / free as f64 } else { (upper_bound + lower_bound) / 2.0 };
    let kept: Vec<usize> = (0..l).filter(|&t| alpha[t] > 0.0).collect();
    Binary {
        support: kept.iter().map(|&t| members[t]).collect(),
        coef: kept.iter().map(|&t| alpha[t] * y[t]).collect(),
        rho,
        iterations,
        converged,
    }
}

/// A one-vs-one multi-class model over the classes present in training.
pub struct OneVsOne {
    /// Training labels present, ascending.
    classes: Vec<u32>,
    /// Per class pair (a < b in `classes`' order): a is +1.
    pairs: Vec<Binary>,
}

impl OneVsOne {
    /// Trains on `rows` (indices into `gram`) with `labels[row]`, C times the
    /// class weight of each sample's label (indexed by label id); the pairs
    /// in parallel, each run under `each_pair`'s guard.
    pub fn train<G>(
        gram: &Gram,
        rows: &[usize],
        labels: &[u32],
        c: f64,
        weights: Option<&[f64]>,
        each_pair: impl Fn() -> G + Sync,
    ) -> OneVsOne {
        let mut classes: Vec<u32> = rows.iter().map(|&r| labels[r]).collect();
        classes.sort_unstable();
        classes.dedup();
        let pairs_of: Vec<(u32, u32)> =
            (0..classes.len()).flat_map(|a| (a + 1..classes.len()).map(move |b| (a, b))).map(|(a, b)| (classes[a], classes[b])).collect();
        let weight = |label: u32| weights.and_then(|w| w.get(label as usize).copied()).unwrap_or(1.0);
        let pairs = pairs_of
            .par_iter()
            .map(|&(a, b)| {
                let _held = each_pair();
                let members: Vec<usize> = rows.iter().copied().filter(|&r| labels[r] == a || labels[r] == b).collect();
                let positive: Vec<bool> = members.iter().map(|&r| labels[r] == a).collect();
                let bounds: Vec<f64> = members.iter().map(|&r| c * weight(labels[r])).collect();
                solve(gram, &members, &positive, &bounds)
            })
            .collect();
        OneVsOne { classes, pairs }
    }

    /// The classes present in training (ascending) and one binary model
    /// per class pair (a < b in their order).
    pub fn into_parts(self) -> (Vec<u32>, Vec<Binary>) {
        (self.classes, self.pairs)
    }

    /// How many class pairs stopped at the iteration limit.
    pub fn unconverged(&self) -> usize {
        self.pairs.iter().filter(|p| !p.converged).count()
    }

    /// One score per label id in `0..labels` from x's kernel values against
    /// every training row: votes plus squashed confidences, -1 for labels
    /// absent from training.
    pub fn scores(&self, k_row: &[f32], labels: usize) -> Vec<f64> {
        ovr_scores(&self.classes, self.pairs.iter().map(|p| p.decision(k_row)), labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::kernel::{Features, KernelSum};
    use crate::algo::svm::{Kernel, SvmParams, train};
    use pipe_core::data::predictions::argmax;

    /// Three noisy 2-D clusters, overlapping a little.
    fn clusters() -> (Vec<f32>, Vec<u32>) {
        let mut rng = pipe_core::rng::Rng::new(7, "smo-test");
        let centres = [(0.0f32, 0.0f32), (2.0, 2.0), (0.0, 2.5)];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (label, (cx, cy)) in centres.iter().enumerate() {
            for _ in 0..30 {
                x.extend_from_slice(&[cx + rng.range(-1.2, 1.2) as f32, cy + rng.range(-1.2, 1.2) as f32]);
                y.push(label as u32);
            }
        }
        (x, y)
    }

    fn gram_of(x: &[f32], gamma: f64) -> (Vec<Features>, Gram) {
        let inputs = vec![Features { name: "x".into(), x: x.to_vec(), dim: 2 }];
        let n = x.len() / 2;
        let rows: Vec<usize> = (0..n).collect();
        let k = KernelSum { inputs: &inputs, gammas: vec![gamma] }.matrix(&rows, &rows, || ());
        (inputs, Gram { n, k })
    }

    #[test]
    fn one_input_agrees_with_opencvs_libsvm() {
        let (x, y) = clusters();
        let (inputs, gram) = gram_of(&x, 0.5);
        let rows: Vec<usize> = (0..y.len()).collect();
        let ours = OneVsOne::train(&gram, &rows, &y, 10.0, None, || ());
        let opencv = train(&x, 2, &y, &SvmParams { kernel: Kernel::Rbf, c: 10.0, gamma: 0.5, class_weights: None }).unwrap();
        let probes: Vec<[f32; 2]> = (0..40).map(|i| [-1.5 + 0.1 * i as f32, 3.0 - 0.08 * i as f32]).collect();
        let all = Features { name: "x".into(), x: x.iter().copied().chain(probes.iter().flatten().copied()).collect(), dim: 2 };
        let kernel = KernelSum { inputs: std::slice::from_ref(&all), gammas: vec![0.5] };
        let _ = inputs;
        for (p, probe) in probes.iter().enumerate() {
            let k_row = kernel.matrix(&[y.len() + p], &rows, || ());
            let (a, b) = (ours.scores(&k_row, 4), opencv.scores(probe, 4));
            assert_eq!(argmax(&a), argmax(&b), "{probe:?}: {a:?} against {b:?}");
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() < 0.02, "{probe:?}: {a:?} against {b:?}");
            }
        }
    }

    #[test]
    fn the_solution_meets_the_box_and_equality_constraints() {
        let (x, y) = clusters();
        let (_inputs, gram) = gram_of(&x, 0.5);
        let members: Vec<usize> = (0..y.len()).filter(|&r| y[r] != 2).collect();
        let positive: Vec<bool> = members.iter().map(|&r| y[r] == 0).collect();
        let model = solve(&gram, &members, &positive, &vec![1.0; members.len()]);
        assert!(model.iterations > 0 && model.converged);
        assert!(model.coef.iter().all(|c| c.abs() <= 1.0 + 1e-9), "0 <= alpha <= C");
        assert!(model.coef.iter().sum::<f64>().abs() < 1e-9, "sum of alpha y = 0");
        let right = members.iter().zip(&positive).filter(|&(&r, &p)| (model.decision(gram.row(r)) > 0.0) == p).count();
        assert!(right as f64 / members.len() as f64 > 0.9, "separates the training data: {right} of {}", members.len());
    }

    #[test]
    fn class_weights_move_the_boundary_towards_the_lighter_class() {
        let (x, y) = clusters();
        let (_inputs, gram) = gram_of(&x, 0.5);
        let rows: Vec<usize> = (0..y.len()).collect();
        let count = |w: Option<&[f64]>| {
            let m = OneVsOne::train(&gram, &rows, &y, 0.1, w, || ());
            rows.iter().filter(|&&r| argmax(&m.scores(gram.row(r), 3)) == 2).count()
        };
        assert!(count(Some(&[1.0, 1.0, 20.0])) > count(None), "a heavier class 2 claims more training points");
    }

    #[test]
    fn the_model_does_not_depend_on_the_threads() {
        let (x, y) = clusters();
        let rows: Vec<usize> = (0..y.len()).collect();
        let scores_with = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (_inputs, gram) = gram_of(&x, 0.5);
                let m = OneVsOne::train(&gram, &rows, &y, 10.0, None, || ());
                rows.iter().map(|&r| m.scores(gram.row(r), 3)).collect::<Vec<_>>()
            })
        };
        assert_eq!(scores_with(1), scores_with(3), "bit for bit");
    }
}
