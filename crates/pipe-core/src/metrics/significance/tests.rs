//! Reference values from statsmodels 0.15 / SciPy 1.17 / numpy 2.4, in
//! `reference.json`, which `scripts/check_significance.py` (run by `make
//! test`) recomputes with those libraries: one file, so the two cannot drift.

use serde_json::Value;

use super::*;

/// The `cases` of one section of `reference.json`.
fn cases(section: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(include_str!("reference.json")).expect("reference.json is JSON");
    all[section]["cases"].as_array().unwrap_or_else(|| panic!("reference.json has no {section}")).clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// Per-image correctness of A and B from the four cells of the 2x2 table.
fn paired(both: usize, a_only: usize, b_only: usize, neither: usize) -> (Vec<bool>, Vec<bool>) {
    let cells = [(both, true, true), (a_only, true, false), (b_only, false, true), (neither, false, false)];
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (count, x, y) in cells {
        a.extend(std::iter::repeat_n(x, count));
        b.extend(std::iter::repeat_n(y, count));
    }
    (a, b)
}

#[test]
fn mcnemar_matches_statsmodels_exact() {
    for case in cases("mcnemar") {
        let c: Vec<usize> = case[0].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let ((both, a_only, b_only, neither), want) = ((c[0], c[1], c[2], c[3]), case[1].as_f64().unwrap());
        let (a, b) = paired(both, a_only, b_only, neither);
        let m = mcnemar_exact(&a, &b);
        assert_eq!((m.a_only, m.b_only), (a_only, b_only));
        assert!(close(m.p_value, want, 1e-12), "{:?}: {} vs {want}", (both, a_only, b_only, neither), m.p_value);
    }
    assert_eq!(mcnemar_exact(&[], &[]).p_value, 1.0, "no images, no discordant pairs");
}

#[test]
fn holm_matches_statsmodels() {
    for case in cases("holm") {
        let (p, want) = (floats(&case[0]), floats(&case[1]));
        let got = holm(&p);
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(|(g, w)| close(*g, *w, 1e-12)), "{p:?}: {got:?} vs {want:?}");
    }
}

#[test]
fn t_quantiles_match_scipy() {
    for case in cases("t975_exact") {
        let (df, want) = (case[0].as_u64().unwrap() as usize, case[1].as_f64().unwrap());
        assert_eq!(t_975(df), want, "df {df}");
    }
    // The expansion beyond the table.
    for case in cases("t975_approx") {
        let (df, want) = (case[0].as_u64().unwrap() as usize, case[1].as_f64().unwrap());
        assert!(close(t_975(df), want, 1e-7), "df {df}: {} vs {want}", t_975(df));
    }
    assert!(t_975(0).is_nan());
}

#[test]
fn summaries_match_numpy_and_scipy() {
    for case in cases("summary") {
        let (values, want) = (floats(&case[0]), floats(&case[1]));
        let (mean, std, lo, hi) = (want[0], want[1], want[2], want[3]);
        let s = mean_std_ci95(&values);
        assert_eq!(s.n, values.len());
        for (name, got, want) in [("mean", s.mean, mean), ("std", s.std, std), ("ci_low", s.ci_low, lo), ("ci_high", s.ci_high, hi)] {
            assert!(close(got, want, 1e-12), "{values:?} {name}: {got} vs {want}");
        }
    }
    let none = mean_std_ci95(&[]);
    assert!(none.n == 0 && none.mean.is_nan() && none.ci_low.is_nan());
}

#[test]
fn bootstrap_intervals_use_numpy_percentiles() {
    for case in cases("bootstrap") {
        let (diffs, want) = (floats(&case[0]), floats(&case[1]));
        let (lo, hi, p) = (want[0], want[1], want[2]);
        let b = bootstrap_from_differences(0.1, diffs.clone());
        assert!(close(b.ci_low, lo, 1e-12) && close(b.ci_high, hi, 1e-12), "{diffs:?}: {b:?}");
        assert!(close(b.p_value, p, 1e-12), "{diffs:?}: {b:?}");
        assert_eq!((b.observed, b.resamples), (0.1, diffs.len()));
    }
    let empty = bootstrap_from_differences(0.2, Vec::new());
    assert_eq!((empty.ci_low, empty.ci_high, empty.p_value), (0.2, 0.2, 1.0));
}

/// Accuracy of two fixed prediction vectors on the items at `idx`.
fn accuracies(a: &[bool], b: &[bool]) -> impl Fn(&[usize]) -> (f64, f64) {
    let (a, b) = (a.to_vec(), b.to_vec());
    move |idx: &[usize]| {
        let share = |v: &[bool]| idx.iter().filter(|&&i| v[i]).count() as f64 / idx.len().max(1) as f64;
        (share(&a), share(&b))
    }
}

#[test]
fn paired_bootstrap_is_seeded_and_sensible() {
    // A right on 90 of 100, B on 40 of 100: a clear difference.
    let (a, b) = paired(40, 50, 0, 10);
    let run = |seed| paired_bootstrap(a.len(), DEFAULT_RESAMPLES, seed, accuracies(&a, &b));
    let r = run(7);
    assert_eq!(r, run(7), "same seed, same result");
    assert_ne!(r.ci_low, run(8).ci_low, "another seed, other resamples");
    assert!(close(r.observed, 0.5, 1e-12));
    assert!(r.ci_low > 0.35 && r.ci_high < 0.65 && r.ci_low < 0.5 && r.ci_high > 0.5, "{r:?}");
    assert_eq!(r.p_value, 0.0, "no resample reverses a 50-point difference");
    assert_eq!(r.resamples, DEFAULT_RESAMPLES);
    // Identical approaches: every difference is 0, p = 1.
    let same = paired_bootstrap(a.len(), DEFAULT_RESAMPLES, 7, accuracies(&a, &a));
    assert_eq!((same.observed, same.ci_low, same.ci_high, same.p_value), (0.0, 0.0, 0.0, 1.0));
    // The same resamples as `resample_indices`, so approaches can be scored once each.
    let f = accuracies(&a, &b);
    let diffs: Vec<f64> = resample_indices(a.len(), DEFAULT_RESAMPLES, 7)
        .map(|idx| {
            let (x, y) = f(&idx);
            x - y
        })
        .collect();
    assert_eq!(bootstrap_from_differences(0.5, diffs), r);
}

#[test]
fn binomial_tail_is_stable_for_large_n() {
    // P[X <= n/2] for even n is 1/2 + C(n, n/2) / 2^(n+1); ~0.5 for large n.
    let p = binom_cdf_half(50_000, 100_000);
    assert!(p > 0.5 && p < 0.51, "{p}");
    assert!(binom_cdf_half(0, 100_000) == 0.0, "underflows to 0 gracefully, never NaN");
    assert_eq!(binom_cdf_half(3, 3), 1.0);
    assert!(close(binom_cdf_half(1, 3), 0.5, 1e-15));
}

#[test]
fn binomial_terms_match_exact_arithmetic() {
    // mpmath at 40 digits: P[X <= 40000] for Binomial(80500, 1/2), doubled.
    assert!(close(2.0 * binom_cdf_half(40_000, 80_500), 0.07862036880510799, 1e-13));
    // P[X = 3] for Binomial(10, 1/2) = 120 / 1024 (the Stirling table), and n = 40 (the series).
    assert!(close(binom_pmf_half(3, 10), 120.0 / 1024.0, 1e-14));
    assert!(close(binom_pmf_half(20, 40), 137846528820.0 / 1099511627776.0, 1e-14));
}

#[test]
fn the_paired_t_test_matches_scipy() {
    for case in cases("paired_t") {
        let (a, b, t, p) = (floats(&case[0]), floats(&case[1]), case[2].as_f64().unwrap(), case[3].as_f64().unwrap());
        let r = paired_t(&a, &b);
        assert!((r.t - t).abs() < 1e-9 * t.abs(), "{a:?} {b:?}: t {} vs {t}", r.t);
        assert!((r.p_value - p).abs() < 1e-9 * p, "{a:?} {b:?}: p {} vs {p}", r.p_value);
    }
    assert_eq!(paired_t(&[0.5, 0.6], &[0.5, 0.6]).p_value, 1.0, "no difference at all");
    assert_eq!(paired_t(&[0.6, 0.7], &[0.5, 0.6]).p_value, 0.0, "the same difference every time");
    assert!(paired_t(&[0.6], &[0.5]).p_value.is_nan(), "one pair: no test");
}
