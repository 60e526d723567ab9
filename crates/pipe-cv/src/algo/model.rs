//! Trained SVMs on disk, so that `pipe predict` applies them to new images
//! without retraining, and gets the very numbers the training run got:
//! the stages score their own test images through the same models.
//!
//! A kernel-sum model ([`KernelModel`]) keeps its support vectors (the
//! training rows some decision function uses, of every input), the
//! inputs' widths and the binary decision functions re-indexed to those
//! rows; an OpenCV model keeps its [`Scorer`]. Files: `model.json` (the
//! structure; every `f64` as its IEEE bits, so nothing is rounded through
//! decimal) and `support.f32` (the support vectors, input after input).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::kernel::{Distances, Features};
use super::smo::Binary;
use super::svm::{Kernel, Scorer};
use pipe_core::data::bow::{ArtifactError, read_f32, read_json, write_f32, write_json};

/// Binary decision functions over the kernel sum of some inputs, with
/// the support vectors they need.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelModel {
    /// Each input's RBF width.
    pub widths: Vec<f64>,
    /// Each input's support vectors (the same rows of every input).
    pub support: Vec<Features>,
    /// Support indices into those rows.
    pub binaries: Vec<Binary>,
}

impl KernelModel {
    /// The model of `binaries` trained on the kernel matrix of `fit` (rows
    /// of `inputs`): the rows some binary uses, kept in training order.
    pub fn keep(binaries: Vec<Binary>, fit: &[usize], inputs: &[Features], widths: Vec<f64>) -> KernelModel {
        let mut used: Vec<usize> = binaries.iter().flat_map(|b| b.support.iter().copied()).collect();
        used.sort_unstable();
        used.dedup();
        let at: HashMap<usize, usize> = used.iter().enumerate().map(|(k, &p)| (p, k)).collect();
        let binaries = binaries.into_iter().map(|b| Binary { support: b.support.iter().map(|p| at[p]).collect(), ..b }).collect();
        let support = inputs
            .iter()
            .map(|f| Features { name: f.name.clone(), dim: f.dim, x: used.iter().flat_map(|&p| f.row(fit[p]).iter().copied()).collect() })
            .collect();
        KernelModel { widths, support, binaries }
    }

    fn support_rows(&self) -> usize {
        self.support.first().map_or(0, |f| f.x.len().checked_div(f.dim).unwrap_or(0))
    }

    /// For each of `rows` of `inputs`, every binary's decision value; each
    /// row's kernel values in parallel, `each_row` run before each.
    pub fn decisions<G>(&self, inputs: &[Features], rows: &[usize], each_row: impl Fn() -> G + Sync) -> Vec<Vec<f64>> {
        let m = self.support_rows();
        if m == 0 {
            return rows.iter().map(|_| self.binaries.iter().map(|b| -b.rho).collect()).collect();
        }
        let cols: Vec<usize> = (0..m).collect();
        let k = Distances::across(inputs, rows, &self.support, &cols, each_row).kernel(&self.widths);
        k.chunks(m).map(|k_row| self.binaries.iter().map(|b| b.decision(k_row)).collect()).collect()
    }

    /// Fails unless `inputs` are as many, and as wide, as the model's.
    pub fn check_inputs(&self, inputs: &[Features]) -> Result<(), String> {
        let want: Vec<usize> = self.support.iter().map(|f| f.dim).collect();
        let got: Vec<usize> = inputs.iter().map(|f| f.dim).collect();
        if want == got {
            return Ok(());
        }
        Err(format!("the model was trained on inputs of {want:?} values and is given {got:?}"))
    }
}

/// A trained `svm` or `multilabel-svm`.
#[derive(Debug, Clone, PartialEq)]
pub enum SvmModel {
    /// OpenCV's libsvm, one input.
    OpenCv(Scorer),
    /// pipe's SMO on a kernel sum, one-vs-one over `classes` (ascending label ids).
    KernelSum { classes: Vec<u32>, model: KernelModel },
    /// One binary model per label (`multilabel-svm`).
    PerLabel(KernelModel),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "solver", rename_all = "kebab-case")]
enum Stored {
    Opencv { classes: Vec<u32>, kernel: String, gamma: u64, dim: usize, pairs: Vec<StoredPair> },
    KernelSum { classes: Vec<u32>, inputs: Vec<StoredInput>, widths: Vec<u64>, binaries: Vec<StoredBinary> },
    PerLabel { inputs: Vec<StoredInput>, widths: Vec<u64>, binaries: Vec<StoredBinary> },
}

#[derive(Serialize, Deserialize)]
struct StoredPair {
    rho: u64,
    alpha: Vec<u64>,
    support: Vec<i32>,
}

#[derive(Serialize, Deserialize)]
struct StoredInput {
    name: String,
    dim: usize,
}

#[derive(Serialize, Deserialize)]
struct StoredBinary {
    rho: u64,
    coef: Vec<u64>,
    support: Vec<usize>,
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn floats(v: &[u64]) -> Vec<f64> {
    v.iter().map(|&b| f64::from_bits(b)).collect()
}

const MODEL: &str = "model.json";
const SUPPORT: &str = "support.f32";

impl SvmModel {
    /// Writes `model.json` and `support.f32` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), ArtifactError> {
        let kernel_parts = |m: &KernelModel| {
            let inputs = m.support.iter().map(|f| StoredInput { name: f.name.clone(), dim: f.dim }).collect();
            let binaries =
                m.binaries.iter().map(|b| StoredBinary { rho: b.rho.to_bits(), coef: bits(&b.coef), support: b.support.clone() }).collect();
            let support: Vec<f32> = m.support.iter().flat_map(|f| f.x.iter().copied()).collect();
            (inputs, bits(&m.widths), binaries, support)
        };
        let (stored, support) = match self {
            SvmModel::OpenCv(s) => {
                let pairs = s
                    .pairs
                    .iter()
                    .map(|(rho, alpha, idx)| StoredPair { rho: rho.to_bits(), alpha: bits(alpha), support: idx.clone() })
                    .collect();
                let kernel = if s.kernel == Kernel::Rbf { "rbf" } else { "linear" }.to_string();
                (Stored::Opencv { classes: s.classes.clone(), kernel, gamma: s.gamma.to_bits(), dim: s.dim, pairs }, s.support.clone())
            }
            SvmModel::KernelSum { classes, model } => {
                let (inputs, widths, binaries, support) = kernel_parts(model);
                (Stored::KernelSum { classes: classes.clone(), inputs, widths, binaries }, support)
            }
            SvmModel::PerLabel(model) => {
                let (inputs, widths, binaries, support) = kernel_parts(model);
                (Stored::PerLabel { inputs, widths, binaries }, support)
            }
        };
        write_json(&dir.join(MODEL), &stored)?;
        write_f32(&dir.join(SUPPORT), &support)
    }

    /// Reads what [`SvmModel::write`] wrote.
    pub fn read(dir: &Path) -> Result<SvmModel, ArtifactError> {
        let path = dir.join(MODEL);
        let stored: Stored = read_json(&path)?;
        let support = read_f32(&dir.join(SUPPORT))?;
        let malformed = |what: &str| ArtifactError::Malformed { path: path.clone(), what: what.to_string() };
        let kernel_model = |inputs: Vec<StoredInput>,
                            widths: Vec<u64>,
                            binaries: Vec<StoredBinary>|
         -> Result<KernelModel, ArtifactError> {
            let width: usize = inputs.iter().map(|i| i.dim).sum();
            if width == 0 || support.len() % width != 0 || inputs.len() != widths.len() {
                return Err(malformed("the support vectors do not match the inputs"));
            }
            let rows = support.len() / width;
            let mut at = 0;
            let mut features = Vec::with_capacity(inputs.len());
            for input in inputs {
                let len = rows * input.dim;
                features.push(Features { name: input.name, dim: input.dim, x: support[at..at + len].to_vec() });
                at += len;
            }
            let binaries: Vec<Binary> = binaries
                .into_iter()
                .map(|b| Binary { support: b.support, coef: floats(&b.coef), rho: f64::from_bits(b.rho), iterations: 0, converged: true })
                .collect();
            if binaries.iter().any(|b| b.support.len() != b.coef.len() || b.support.iter().any(|&s| s >= rows)) {
                return Err(malformed("a decision function names support vectors the file does not hold"));
            }
            Ok(KernelModel { widths: floats(&widths), support: features, binaries })
        };
        Ok(match stored {
            Stored::Opencv { classes, kernel, gamma, dim, pairs } => {
                let kernel = match kernel.as_str() {
                    "rbf" => Kernel::Rbf,
                    "linear" => Kernel::Linear,
                    other => return Err(malformed(&format!("unknown kernel `{other}`"))),
                };
                if dim == 0 || support.len() % dim != 0 {
                    return Err(malformed("the support vectors do not match the dimension"));
                }
                let pairs = pairs.into_iter().map(|p| (f64::from_bits(p.rho), floats(&p.alpha), p.support)).collect();
                SvmModel::OpenCv(Scorer { classes, kernel, gamma: f64::from_bits(gamma), dim, support, pairs })
            }
            Stored::KernelSum { classes, inputs, widths, binaries } => {
                SvmModel::KernelSum { classes, model: kernel_model(inputs, widths, binaries)? }
            }
            Stored::PerLabel { inputs, widths, binaries } => SvmModel::PerLabel(kernel_model(inputs, widths, binaries)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(support: Vec<usize>, coef: Vec<f64>, rho: f64) -> Binary {
        Binary { support, coef, rho, iterations: 0, converged: true }
    }

    #[test]
    fn a_kept_model_decides_as_the_training_rows_did_and_survives_its_files() {
        let a = Features { name: "a".into(), x: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], dim: 2 };
        let b = Features { name: "b".into(), x: vec![1.0, 0.5, 0.25, 0.125], dim: 1 };
        let inputs = [a, b];
        let fit = [3, 1, 0];
        // Decisions on the kernel matrix against all of `fit`, as training computes them.
        let binaries = vec![binary(vec![2, 0], vec![0.1 + 0.2, -1.0 / 3.0], 0.7), binary(vec![0], vec![2.0], -0.1)];
        let widths = vec![0.3, 1.7];
        let full = Distances::between(&inputs, &[2, 3], &fit, || ()).kernel(&widths);
        let want: Vec<Vec<f64>> = full.chunks(fit.len()).map(|k| binaries.iter().map(|b| b.decision(k)).collect()).collect();
        let model = KernelModel::keep(binaries, &fit, &inputs, widths);
        assert_eq!(model.support[0].x, [6.0, 7.0, 0.0, 1.0], "rows 3 and 0, in training order");
        assert_eq!(model.decisions(&inputs, &[2, 3], || ()), want, "bit for bit");
        let dir = tempfile::tempdir().unwrap();
        let stored = SvmModel::KernelSum { classes: vec![0, 2], model };
        stored.write(dir.path()).unwrap();
        assert_eq!(SvmModel::read(dir.path()).unwrap(), stored);
    }

    #[test]
    fn an_opencv_model_survives_its_files_exactly() {
        let scorer = Scorer {
            classes: vec![0, 1],
            kernel: Kernel::Rbf,
            gamma: 0.1 + 0.2,
            dim: 2,
            support: vec![1.0, 2.0, 3.0, 4.0],
            pairs: vec![(1.0 / 3.0, vec![0.5, -0.5], vec![0, 1])],
        };
        let dir = tempfile::tempdir().unwrap();
        SvmModel::OpenCv(scorer.clone()).write(dir.path()).unwrap();
        assert_eq!(SvmModel::read(dir.path()).unwrap(), SvmModel::OpenCv(scorer));
    }
}
