//! Is approach A really better than B? Paired tests on the same test
//! images, a multiple-comparison correction, and summaries over repeated
//! seeds — pure Rust, each matching its usual Python reference
//! (`scripts/check_significance.py` recomputes the test values below):
//!
//! - [`mcnemar_exact`]: McNemar's exact test on which images each approach
//!   gets right (statsmodels' `mcnemar(table, exact=True)`): a two-sided
//!   binomial test of the discordant pairs, `p = min(1, 2 * P[X <= min(b, c)])`
//!   with `X ~ Binomial(b + c, 1/2)`; `p = 1` without discordant pairs.
//! - [`paired_bootstrap`]: the same resampled test indices for both
//!   approaches, the difference of a metric per resample, its 95% percentile
//!   interval (numpy's default linear interpolation) and a two-sided
//!   bootstrap p-value `min(1, 2 * min(share <= 0, share >= 0))`. Seeded with
//!   [`crate::rng::Rng`], so a run reproduces exactly.
//! - [`holm`]: Holm–Bonferroni adjusted p-values (statsmodels'
//!   `multipletests(method="holm")`).
//! - [`mean_std_ci95`]: mean, sample standard deviation and the Student-t
//!   95% interval of the mean (`scipy.stats.t.ppf(0.975, n - 1)`).

use crate::rng::Rng;

/// The resamples [`paired_bootstrap`] draws unless told otherwise (at least
/// 1,000 for a 95% percentile interval worth reporting).
pub const DEFAULT_RESAMPLES: usize = 1000;

/// McNemar's exact test of two approaches on the same images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McNemar {
    /// Images B gets right and A gets wrong.
    pub b_only: usize,
    /// Images A gets right and B gets wrong.
    pub a_only: usize,
    pub p_value: f64,
}

/// McNemar's exact test from per-image correctness of A and B (the same
/// images in the same order; extra entries of the longer slice are ignored).
pub fn mcnemar_exact(a_correct: &[bool], b_correct: &[bool]) -> McNemar {
    debug_assert_eq!(a_correct.len(), b_correct.len(), "paired test on different numbers of images");
    let (mut a_only, mut b_only) = (0, 0);
    for (&a, &b) in a_correct.iter().zip(b_correct) {
        match (a, b) {
            (true, false) => a_only += 1,
            (false, true) => b_only += 1,
            _ => {}
        }
    }
    let n = a_only + b_only;
    let p_value = (2.0 * binom_cdf_half(a_only.min(b_only), n)).min(1.0);
    McNemar { b_only, a_only, p_value }
}

/// `P[X <= k]` for `X ~ Binomial(n, 1/2)`: the probability of `k` (Loader's
/// saddle-point form, accurate to a few ulps for any `n`), times the sum of
/// the ratios of the lower terms to it, `P(i - 1) / P(i) = i / (n - i + 1)`,
/// each at most 1, stopped once they no longer change the sum. Nothing
/// overflows; a tail below f64's range is 0.
fn binom_cdf_half(k: usize, n: usize) -> f64 {
    if k >= n {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut ratio = 1.0;
    for i in (0..=k).rev() {
        sum += ratio;
        if i == 0 || ratio < sum * 1e-17 {
            break;
        }
        ratio *= i as f64 / (n - i + 1) as f64;
    }
    binom_pmf_half(k, n) * sum
}

/// `P[X = x]` for `X ~ Binomial(n, 1/2)`, as R's `dbinom_raw` (C. Loader,
/// "Fast and accurate computation of binomial probabilities", 2000): Stirling
/// errors and deviances instead of differences of huge log-factorials.
fn binom_pmf_half(x: usize, n: usize) -> f64 {
    if x == 0 || x == n {
        return (-(n as f64) * std::f64::consts::LN_2).exp();
    }
    let (x, n) = (x as f64, n as f64);
    let half = n / 2.0;
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, half) - bd0(n - x, half);
    let lf = (2.0 * std::f64::consts::PI).ln() + x.ln() + (-x / n).ln_1p();
    (lc - 0.5 * lf).exp()
}

/// `ln(n!) - ln(sqrt(2 pi n) (n / e)^n)` for a whole `n`.
fn stirlerr(n: f64) -> f64 {
    /// Exact (to f64) for n = 0..=15.
    const SMALL: [f64; 16] = [
        0.0,
        0.08106146679532726,
        0.0413406959554093,
        0.02767792568499834,
        0.020790672103765093,
        0.016644691189821193,
        0.013876128823070748,
        0.01189670994589177,
        0.010411265261972096,
        0.009255462182712733,
        0.00833056343336287,
        0.007573675487951841,
        0.00694284010720953,
        0.006408994188004207,
        0.0059513701127588475,
        0.005554733551962801,
    ];
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        return SMALL[n as usize];
    }
    let nn = n * n;
    if n > 500.0 {
        (S0 - S1 / nn) / n
    } else if n > 80.0 {
        (S0 - (S1 - S2 / nn) / nn) / n
    } else if n > 35.0 {
        (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
    }
}

/// The deviance term `x ln(x / np) + np - x`, by a series when `x` is near `np`.
fn bd0(x: f64, np: f64) -> f64 {
    if (x - np).abs() < 0.1 * (x + np) {
        let mut v = (x - np) / (x + np);
        let mut s = (x - np) * v;
        let mut ej = 2.0 * x * v;
        v *= v;
        for j in 1..1000 {
            ej *= v;
            let next = s + ej / (2 * j + 1) as f64;
            if next == s {
                return next;
            }
            s = next;
        }
    }
    x * (x / np).ln() + np - x
}

/// A paired bootstrap of the difference `metric(A) - metric(B)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// The difference on the test set as it is.
    pub observed: f64,
    /// The 2.5th and 97.5th percentiles of the resampled differences.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Two-sided: `min(1, 2 * min(share of differences <= 0, share >= 0))`.
    pub p_value: f64,
    pub resamples: usize,
}

/// The resamples of [`paired_bootstrap`]: `resamples` draws of `n` indices
/// in `0..n` with replacement, from `seed`. The same seed gives the same
/// resamples, so several approaches can be scored on them once each and
/// paired afterwards (see [`bootstrap_from_differences`]).
pub fn resample_indices(n: usize, resamples: usize, seed: u64) -> impl Iterator<Item = Vec<usize>> {
    let mut rng = Rng::new(seed, "paired-bootstrap");
    (0..resamples).map(move |_| (0..n).map(|_| rng.below(n)).collect())
}

/// Paired bootstrap over `n` test items: `metric(indices)` returns
/// `(metric of A, metric of B)` on the items at `indices` (repeats
/// included); it is called once on `0..n` for the observed difference, then
/// once per resample. `resamples` of at least [`DEFAULT_RESAMPLES`] give a
/// stable 95% interval.
pub fn paired_bootstrap(n: usize, resamples: usize, seed: u64, metric: impl Fn(&[usize]) -> (f64, f64)) -> Bootstrap {
    let all: Vec<usize> = (0..n).collect();
    let (a, b) = metric(&all);
    let differences = resample_indices(n, resamples, seed)
        .map(|idx| {
            let (a, b) = metric(&idx);
            a - b
        })
        .collect();
    bootstrap_from_differences(a - b, differences)
}

/// The interval and p-value of resampled differences (from
/// [`resample_indices`]) around the observed one. No resamples: the interval
/// is the observed difference and `p = 1`.
pub fn bootstrap_from_differences(observed: f64, mut differences: Vec<f64>) -> Bootstrap {
    let m = differences.len();
    if m == 0 {
        return Bootstrap { observed, ci_low: observed, ci_high: observed, p_value: 1.0, resamples: 0 };
    }
    differences.sort_by(f64::total_cmp);
    let below = differences.iter().filter(|d| **d <= 0.0).count() as f64 / m as f64;
    let above = differences.iter().filter(|d| **d >= 0.0).count() as f64 / m as f64;
    Bootstrap {
        observed,
        ci_low: percentile(&differences, 2.5),
        ci_high: percentile(&differences, 97.5),
        p_value: (2.0 * below.min(above)).min(1.0),
        resamples: m,
    }
}

/// numpy's default (`method="linear"`) percentile `q` in [0, 100] of sorted,
/// non-empty values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Holm–Bonferroni adjusted p-values, in the order given: sorted ascending,
/// the `i`-th (from 0) of `m` becomes `max over j <= i of min(1, (m - j) * p_j)`.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (j, &i) in order.iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Mean, spread and the 95% interval of the mean of some values (e.g. one
/// metric over repeated seeds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// The sample standard deviation (`ddof = 1`); 0 for one value.
    pub std: f64,
    /// `mean -/+ t(0.975, n - 1) * std / sqrt(n)`; the mean itself for one value.
    pub ci_low: f64,
    pub ci_high: f64,
}

/// `scipy.stats.t.ppf(0.975, df)` for df 1..=30.
const T975: [f64; 30] = [
    12.706204736174694,
    4.302652729749462,
    3.1824463052837078,
    2.7764451051977934,
    2.5705818356363146,
    2.4469118511449786,
    2.364624251592784,
    2.306004135204166,
    2.262157162798205,
    2.228138851986274,
    2.200985160091639,
    2.1788128296672284,
    2.1603686564627913,
    2.144786687917804,
    2.131449545559776,
    2.1199052992212546,
    2.1098155778333156,
    2.1009220402410382,
    2.0930240544083087,
    2.085963447265864,
    2.0796138447276795,
    2.0738730679040254,
    2.0686576104190486,
    2.0638985616280245,
    2.0595385527532972,
    2.0555294386428735,
    2.0518305164802846,
    2.0484071417952454,
    2.045229642132703,
    2.0422724563012378,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom: exact
/// (to f64) for df <= 30, beyond that the Cornish–Fisher expansion around
/// the normal quantile (Abramowitz & Stegun 26.7.5), within 1e-7 of SciPy.
pub fn t_975(df: usize) -> f64 {
    if df == 0 {
        return f64::NAN;
    }
    if df <= T975.len() {
        return T975[df - 1];
    }
    let z: f64 = 1.959963984540054;
    let v = df as f64;
    let g1 = (z.powi(3) + z) / 4.0;
    let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
    let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
    let g4 = (79.0 * z.powi(9) + 776.0 * z.powi(7) + 1482.0 * z.powi(5) - 1920.0 * z.powi(3) - 945.0 * z) / 92160.0;
    z + g1 / v + g2 / v.powi(2) + g3 / v.powi(3) + g4 / v.powi(4)
}

/// Mean, sample standard deviation and the Student-t 95% interval of the
/// mean. No values: everything NaN.
pub fn mean_std_ci95(values: &[f64]) -> Summary {
    let n = values.len();
    if n == 0 {
        return Summary { n, mean: f64::NAN, std: f64::NAN, ci_low: f64::NAN, ci_high: f64::NAN };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Summary { n, mean, std: 0.0, ci_low: mean, ci_high: mean };
    }
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = t_975(n - 1) * std / (n as f64).sqrt();
    Summary { n, mean, std, ci_low: mean - half, ci_high: mean + half }
}

/// Student's paired t-test (scipy's `ttest_rel`, two-sided): repeat K of
/// one approach against repeat K of another (the same derived seed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedT {
    pub n: usize,
    /// Mean of a - b over the pairs.
    pub mean_difference: f64,
    pub t: f64,
    pub p_value: f64,
}

/// [`PairedT`] of equal-length `a` and `b` (at least two pairs). Equal
/// differences give p = 0 (all zero: p = 1) where scipy's t is undefined.
pub fn paired_t(a: &[f64], b: &[f64]) -> PairedT {
    let n = a.len().min(b.len());
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let s = mean_std_ci95(&d);
    if n < 2 {
        return PairedT { n, mean_difference: s.mean, t: f64::NAN, p_value: f64::NAN };
    }
    if s.std == 0.0 {
        let p_value = if s.mean == 0.0 { 1.0 } else { 0.0 };
        return PairedT { n, mean_difference: s.mean, t: s.mean.signum() * f64::INFINITY, p_value };
    }
    let t = s.mean / (s.std / (n as f64).sqrt());
    let df = (n - 1) as f64;
    PairedT { n, mean_difference: s.mean, t, p_value: incomplete_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0) }
}

/// The regularized incomplete beta function I_x(a, b), by its continued
/// fraction (Numerical Recipes 6.4, modified Lentz).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) { front * beta_fraction(a, b, x) / a } else { 1.0 - front * beta_fraction(b, a, 1.0 - x) / b }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = if d.abs() < TINY { TINY } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))] {
            d = 1.0 + aa * d;
            d = if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum: f64 = C[0] + C.iter().enumerate().skip(1).map(|(i, c)| c / (x + i as f64)).sum::<f64>();
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests;
