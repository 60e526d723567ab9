//! Kernel matrices for the SVMs that `pipe` solves itself (`algo::smo`):
//! the sum of one RBF kernel per input, K(a, b) = Σₖ exp(-γₖ ‖aₖ - bₖ‖²),
//! over several feature sets of the same images (HOG and colour, say), so
//! that each cue keeps its own width — what one RBF over the concatenated
//! vectors cannot do (that is the product of the kernels). Each γₖ is the
//! grid's gamma, times scikit-learn's `gamma="scale"` of input k
//! (1 / (values × variance on the training rows)) when gammas are relative.
//! The squared distances are measured once per input ([`Distances`]; the
//! training split's square matrix by its upper triangle) and every gamma's
//! kernel is computed from them, so a grid over gamma costs one pass over
//! the vectors. Rows are computed in parallel; each entry is a fixed-order
//! sum, so the matrices do not depend on the threads.

use rayon::prelude::*;

/// One input's vectors (`dim` values per image, every image of the index).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub name: String,
    pub x: Vec<f32>,
    pub dim: usize,
}

impl Features {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// scikit-learn's `gamma="scale"`: 1 / (dim × variance of every value
    /// of `rows`); 1 when the values do not vary.
    pub fn scale_gamma(&self, rows: &[usize]) -> f64 {
        let n = (rows.len() * self.dim) as f64;
        let mean = rows.iter().flat_map(|&i| self.row(i)).map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = rows.iter().flat_map(|&i| self.row(i)).map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        if var > 0.0 { 1.0 / (self.dim as f64 * var) } else { 1.0 }
    }
}

/// The squared Euclidean distance, summed in eight lanes so that it
/// vectorises (a fixed order: the same bits on every machine and thread).
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += (x[k] - y[k]) * (x[k] - y[k]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The sum of RBF kernels over `inputs`, input k with width `gammas[k]`.
pub struct KernelSum<'a> {
    pub inputs: &'a [Features],
    pub gammas: Vec<f64>,
}

impl KernelSum<'_> {
    pub fn value(&self, a: usize, b: usize) -> f32 {
        self.inputs.iter().zip(&self.gammas).map(|(f, &g)| (-g * f64::from(squared_distance(f.row(a), f.row(b)))).exp() as f32).sum()
    }

    /// K(rows[i], cols[j]) for every pair, row-major (`rows.len()` × `cols.len()`);
    /// `each_row` runs before each row (a permit, a progress tick).
    pub fn matrix<G>(&self, rows: &[usize], cols: &[usize], each_row: impl Fn() -> G + Sync) -> Vec<f32> {
        Distances::between(self.inputs, rows, cols, each_row).kernel(&self.gammas)
    }
}

/// Squared Euclidean distances between two lists of images, one matrix per
/// input (row-major, 4 bytes per entry).
pub struct Distances {
    cols: usize,
    per_input: Vec<Vec<f32>>,
}

impl Distances {
    /// From every image of `rows` to every image of `cols`.
    pub fn between<G>(inputs: &[Features], rows: &[usize], cols: &[usize], each_row: impl Fn() -> G + Sync) -> Distances {
        Distances::across(inputs, rows, inputs, cols, each_row)
    }

    /// From every image of `rows` of `a` to every image of `cols` of `b`
    /// (the same inputs, in the same order: a trained model's support
    /// vectors, say).
    pub fn across<G>(a: &[Features], rows: &[usize], b: &[Features], cols: &[usize], each_row: impl Fn() -> G + Sync) -> Distances {
        let per_input = a
            .iter()
            .zip(b)
            .map(|(fa, fb)| {
                let mut d = vec![0f32; rows.len() * cols.len()];
                if !cols.is_empty() {
                    d.par_chunks_mut(cols.len()).zip(rows).for_each(|(out, &r)| {
                        let _held = each_row();
                        for (o, &c) in out.iter_mut().zip(cols) {
                            *o = squared_distance(fa.row(r), fb.row(c));
                        }
                    });
                }
                d
            })
            .collect();
        Distances { cols: cols.len(), per_input }
    }

    /// Among the images of `rows` (a symmetric matrix): each pair measured
    /// once, then mirrored.
    pub fn square<G>(inputs: &[Features], rows: &[usize], each_row: impl Fn() -> G + Sync) -> Distances {
        let n = rows.len();
        let per_input = inputs
            .iter()
            .map(|f| {
                let mut d = vec![0f32; n * n];
                if n > 0 {
                    d.par_chunks_mut(n).enumerate().for_each(|(i, out)| {
                        let _held = each_row();
                        for j in i + 1..n {
                            out[j] = squared_distance(f.row(rows[i]), f.row(rows[j]));
                        }
                    });
                    for i in 0..n {
                        for j in 0..i {
                            d[i * n + j] = d[j * n + i];
                        }
                    }
                }
                d
            })
            .collect();
        Distances { cols: n, per_input }
    }

    /// The kernel sum with width `gammas[k]` for input k, row-major.
    pub fn kernel(&self, gammas: &[f64]) -> Vec<f32> {
        let len = self.per_input.first().map_or(0, Vec::len);
        let mut k = vec![0f32; len];
        if self.cols == 0 {
            return k;
        }
        k.par_chunks_mut(self.cols).enumerate().for_each(|(row, out)| {
            let at = row * self.cols;
            for (j, o) in out.iter_mut().enumerate() {
                *o = self.per_input.iter().zip(gammas).map(|(d, &g)| (-g * f64::from(d[at + j])).exp() as f32).sum();
            }
        });
        k
    }
}

/// The memory the kernel sum of `inputs` inputs holds for `train` training
/// images and `other` images to score against them: one distance matrix per
/// input and the kernel matrix, for the training split and for the others,
/// 4 bytes per entry.
pub fn bytes_needed(train: usize, other: usize, inputs: usize) -> u64 {
    4 * (inputs as u64 + 1) * (train as u64) * (train as u64 + other as u64)
}

/// Refuses a kernel sum that would not fit in `available` bytes (the
/// machine's available memory, when known), saying what to change.
pub fn check_memory(train: usize, other: usize, inputs: usize, available: Option<u64>) -> Result<(), String> {
    let needed = bytes_needed(train, other, inputs);
    match available {
        Some(free) if needed > free => Err(format!(
            "the kernel matrices of {train} training images and {inputs} inputs need {:.1} GB and {:.1} GB are available: \
             use one input with solver = \"opencv\" (libsvm's kernel cache), fewer inputs, or fewer images",
            needed as f64 / 1e9,
            free as f64 / 1e9
        )),
        _ => Ok(()),
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` where unknown).
pub fn available_memory() -> Option<u64> {
    let text = pipe_core::fsx::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A square kernel matrix over the training rows.
pub struct Gram {
    pub n: usize,
    pub k: Vec<f32>,
}

impl Gram {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.k[i * self.n..(i + 1) * self.n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_sums_one_rbf_per_input_with_its_own_width() {
        let shape = Features { name: "shape".into(), x: vec![0.0, 0.0, 3.0, 4.0], dim: 2 };
        let colour = Features { name: "colour".into(), x: vec![1.0, 0.0], dim: 1 };
        let inputs = [shape, colour];
        let kernel = KernelSum { inputs: &inputs, gammas: vec![0.1, 2.0] };
        let want = (-0.1f64 * 25.0).exp() + (-2.0f64 * 1.0).exp();
        assert!((f64::from(kernel.value(0, 1)) - want).abs() < 1e-6);
        assert_eq!(kernel.value(1, 1), 2.0, "each input adds 1 on the diagonal");
        let m = kernel.matrix(&[0, 1], &[1, 0, 1], || ());
        assert_eq!(m.len(), 6);
        assert_eq!(m[0], m[2]);
        assert_eq!(m[0], m[4], "symmetric");
        let square = Distances::square(&inputs, &[0, 1], || ()).kernel(&[0.1, 2.0]);
        let between = Distances::between(&inputs, &[0, 1], &[0, 1], || ()).kernel(&[0.1, 2.0]);
        assert_eq!(square, between, "the mirrored triangle is the full matrix");
        assert_eq!(square[1], kernel.value(0, 1));
    }

    #[test]
    fn a_kernel_sum_that_does_not_fit_is_refused_with_what_to_change() {
        assert_eq!(bytes_needed(1000, 500, 3), 4 * 4 * 1000 * 1500);
        assert!(check_memory(1000, 500, 3, Some(24_000_000)).is_ok());
        let err = check_memory(60_000, 10_000, 2, Some(8_000_000_000)).unwrap_err();
        assert!(
            err.starts_with("the kernel matrices of 60000 training images and 2 inputs need 50.4 GB and 8.0 GB are available"),
            "{err}"
        );
        assert!(err.contains("solver = \"opencv\""));
        assert!(check_memory(60_000, 10_000, 2, None).is_ok(), "unknown memory: try");
    }

    #[test]
    fn scale_gamma_is_scikit_learns() {
        // Values 0, 2, 0, 2: variance 1, so 1 / (2 x 1).
        let f = Features { name: "f".into(), x: vec![0.0, 2.0, 0.0, 2.0], dim: 2 };
        assert_eq!(f.scale_gamma(&[0, 1]), 0.5);
        let flat = Features { name: "flat".into(), x: vec![1.0; 4], dim: 2 };
        assert_eq!(flat.scale_gamma(&[0, 1]), 1.0);
    }

    #[test]
    fn squared_distance_counts_the_tail_past_the_lanes() {
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        let b = vec![0f32; 11];
        assert_eq!(squared_distance(&a, &b), (0..11).map(|i| (i * i) as f32).sum::<f32>());
    }
}
