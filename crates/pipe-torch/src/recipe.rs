//! The training recipe around the network: the learning-rate schedule, the
//! on-the-fly augmentation the feeder applies to training batches, and
//! test-time flip averaging. Everything random is drawn from the stage's
//! seed, the epoch and the image (never from the batch or a thread), so the
//! same key gives the same bytes.

use pipe_core::kinds::cnn;
use pipe_core::rng::Rng;

/// The learning rate at each optimiser step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Linear warm-up from base/warm-up steps to the base over `warmup`
    /// steps, then half a cosine down to zero at the last step.
    Cosine { warmup: usize },
    /// One cycle (Smith 2018, as PyTorch's `OneCycleLR` with cosine
    /// annealing): from base/25 up to the base over `warmup` steps (30% of
    /// them when no warm-up is given), then down to base/25/10⁴.
    OneCycle { warmup: usize },
}

impl Schedule {
    /// From `schedule` and `warmup_epochs`, with `steps_per_epoch`.
    pub fn new(kind: cnn::Schedule, warmup_epochs: usize, steps_per_epoch: usize) -> Schedule {
        let warmup = warmup_epochs * steps_per_epoch;
        match kind {
            cnn::Schedule::Cosine => Schedule::Cosine { warmup },
            cnn::Schedule::OneCycle => Schedule::OneCycle { warmup },
            cnn::Schedule::Constant => Schedule::Constant,
        }
    }

    /// The rate at `step` (0-based) of `total` steps, for base rate `base`.
    pub fn rate(self, base: f64, step: usize, total: usize) -> f64 {
        let total = total.max(1);
        let cos_between = |from: f64, to: f64, done: f64| to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * done).cos());
        match self {
            Schedule::Constant => base,
            Schedule::Cosine { warmup } => {
                let warmup = warmup.min(total - 1);
                if step < warmup {
                    base * (step + 1) as f64 / warmup as f64
                } else {
                    let span = (total - warmup).max(1) as f64;
                    cos_between(base, 0.0, (step - warmup) as f64 / span)
                }
            }
            Schedule::OneCycle { warmup } => {
                let up = if warmup > 0 { warmup.min(total - 1) } else { (total as f64 * 0.3) as usize }.max(1);
                let start = base / 25.0;
                if step < up {
                    cos_between(start, base, step as f64 / up as f64)
                } else {
                    let span = (total - up).max(1) as f64;
                    cos_between(base, start / 1e4, (step - up) as f64 / span)
                }
            }
        }
    }
}

/// Which variant of an image: the stage's seed, the epoch, the image's row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    pub seed: u64,
    pub epoch: usize,
    pub row: usize,
}

/// Random flips and shifts of training images, drawn per (seed, epoch,
/// image): each epoch sees new variants, the same ones on every run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    pub flip: bool,
    /// The largest shift, as a fraction of the side.
    pub shift: f64,
}

impl Jitter {
    /// From `flip` and `shift`; `None` when neither changes an image.
    pub fn new(flip: bool, shift: f64) -> Option<Jitter> {
        let j = Jitter { flip, shift };
        (j.flip || j.shift > 0.0).then_some(j)
    }

    /// Applies `variant` to one image, `c` planes of `side`×`side` scaled
    /// pixels; uncovered pixels become `fill` (white, per channel).
    pub fn apply(&self, image: &mut [f32], c: usize, side: usize, variant: Variant, fill: &[f32]) {
        let Variant { seed, epoch, row } = variant;
        let mut rng = Rng::new(seed, &format!("cnn/jitter/{epoch}/{row}"));
        let flip = self.flip && rng.below(2) == 1;
        let most = (self.shift * side as f64).round() as i64;
        let mut offset = || if most > 0 { rng.below((2 * most + 1) as usize) as i64 - most } else { 0 };
        let (dx, dy) = (offset(), offset());
        if !flip && dx == 0 && dy == 0 {
            return;
        }
        let source = image.to_vec();
        let s = side as i64;
        for ch in 0..c {
            let plane = &source[ch * side * side..(ch + 1) * side * side];
            let out = &mut image[ch * side * side..(ch + 1) * side * side];
            for y in 0..s {
                for x in 0..s {
                    let (sx, sy) = (x - dx, y - dy);
                    let sx = if flip { s - 1 - sx } else { sx };
                    out[(y * s + x) as usize] =
                        if (0..s).contains(&sx) && (0..s).contains(&sy) { plane[(sy * s + sx) as usize] } else { fill[ch] };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_at_given_steps() {
        let b = 0.01;
        assert_eq!(Schedule::Constant.rate(b, 7, 10), b);
        let cos = Schedule::Cosine { warmup: 4 };
        assert!((cos.rate(b, 0, 104) - b / 4.0).abs() < 1e-12, "warm-up starts at base/warm-up");
        assert!((cos.rate(b, 3, 104) - b).abs() < 1e-12, "and reaches the base");
        assert!((cos.rate(b, 4, 104) - b).abs() < 1e-12, "the cosine starts at the base");
        assert!((cos.rate(b, 54, 104) - b / 2.0).abs() < 1e-12, "half way down at the middle");
        assert!(cos.rate(b, 103, 104) < b * 1e-3, "near zero at the end");
        let one = Schedule::OneCycle { warmup: 0 };
        assert!((one.rate(b, 0, 100) - b / 25.0).abs() < 1e-12, "starts at base/25");
        assert!((one.rate(b, 30, 100) - b).abs() < 1e-12, "peaks after 30% of the steps");
        assert!(one.rate(b, 99, 100) < b / 25.0, "ends below where it started");
    }

    #[test]
    fn jitter_is_a_function_of_seed_epoch_and_image() {
        let j = Jitter { flip: true, shift: 0.25 };
        let image: Vec<f32> = (0..2 * 8 * 8).map(|v| v as f32).collect();
        let variant = |seed, epoch, row| {
            let mut x = image.clone();
            j.apply(&mut x, 2, 8, Variant { seed, epoch, row }, &[2.0, 2.0]);
            x
        };
        assert_eq!(variant(1, 3, 5), variant(1, 3, 5), "the same draw every time");
        let epochs: Vec<Vec<f32>> = (0..6).map(|e| variant(1, e, 5)).collect();
        assert!(epochs.iter().any(|v| v != &epochs[0]), "epochs see different variants");
        assert!(epochs.iter().any(|v| v != &image), "some variant changes the image");
        assert_ne!(variant(1, 3, 5), variant(2, 3, 5), "another seed, another draw");
    }

    #[test]
    fn a_flip_mirrors_each_row() {
        let j = Jitter { flip: true, shift: 0.0 };
        // Find an epoch whose draw flips, then check the mirror.
        let image: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let flipped = (0..20)
            .map(|e| {
                let mut x = image.clone();
                j.apply(&mut x, 1, 3, Variant { seed: 9, epoch: e, row: 0 }, &[2.0]);
                x
            })
            .find(|x| x != &image)
            .expect("a coin lands on flip within 20 epochs");
        assert_eq!(flipped, [2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0]);
    }
}
