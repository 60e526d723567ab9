#!/usr/bin/env python3
"""Recomputes the reference values of the significance unit tests
(crates/pipe-core/src/metrics/significance/tests.rs) with the usual Python
implementations, and exits non-zero on any mismatch:

  - McNemar's exact test: statsmodels' `mcnemar(table, exact=True)`;
  - Holm adjustment: statsmodels' `multipletests(method="holm")`;
  - Student-t 95% critical values: scipy's `t.ppf(0.975, df)`;
  - mean, sample std and t interval: numpy and scipy;
  - bootstrap percentiles: numpy's default (linear) `percentile`;
  - the paired t-test over repeats: scipy's `ttest_rel`.

The inputs and the expected values below are the tests' own, copied here:
the script reads nothing else. When a test's value changes, change it here
too and re-run.

Usage: python3 scripts/check_significance.py
Needs numpy, scipy and statsmodels (`python3 -m pip install scipy statsmodels`).
"""
import sys

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

# (both right, only A right, only B right, both wrong) -> exact p-value
MCNEMAR = [
    ((10, 2, 9, 3), 0.0654296875),
    ((5, 0, 0, 5), 1.0),
    ((0, 7, 7, 0), 1.0),
    ((100, 30, 12, 8), 0.007915897334896727),
    ((0, 0, 25, 0), 5.960464477539063e-08),
    ((0, 40000, 40500, 0), 0.07862036880511007),
    ((3, 1, 0, 2), 1.0),
]

HOLM = [
    ([0.01, 0.04, 0.03, 0.005, 0.2, 0.04], [0.05, 0.12, 0.12, 0.03, 0.2, 0.12]),
    ([0.5, 0.9], [1.0, 1.0]),
    ([0.02], [0.02]),
]

# df -> t.ppf(0.975, df); beyond 30 the Rust side uses an expansion (1e-7).
T975_EXACT = {1: 12.706204736174694, 2: 4.302652729749462, 5: 2.5705818356363146, 6: 2.4469118511449786,
              10: 2.228138851986274, 29: 2.045229642132703, 30: 2.0422724563012378}
T975_APPROX = {31: 2.039513446396408, 39: 2.022690920036761, 100: 1.9839715185235518, 1000: 1.9623390808264083}

# values -> (mean, std ddof=1, ci low, ci high)
SUMMARY = [
    ([0.81, 0.79, 0.84], (0.8133333333333334, 0.025166114784235794, 0.7508172385395757, 0.875849428127091)),
    ([0.5, 0.7], (0.6, 0.14142135623730948, -0.6706204736174691, 1.870620473617469)),
    ([0.3], (0.3, 0.0, 0.3, 0.3)),
]

# (a, b) -> scipy.stats.ttest_rel(a, b): (t, two-sided p)
PAIRED_T = [
    ([0.81, 0.79, 0.84], [0.75, 0.74, 0.80], 8.660254037844332, 0.01307245756034668),
    ([0.5, 0.7, 0.6, 0.65], [0.52, 0.69, 0.61, 0.66], -1.1920791213585396, 0.3189317919127754),
    ([0.9, 0.8], [0.7, 0.75], 1.6666666666666672, 0.3440417392452613),
]

# resampled differences -> (2.5th percentile, 97.5th percentile, two-sided p)
BOOTSTRAP = [
    ([0.3, -0.1, 0.2, 0.05, 0.0, 0.15, -0.2], (-0.185, 0.285, 6 / 7)),
    ([0.0, 0.0, 0.0], (0.0, 0.0, 1.0)),
]


def close(a, b, tol=1e-12):
    return abs(a - b) <= tol * max(1.0, abs(b))


def main():
    bad = []

    def check(what, got, want, tol=1e-12):
        if not close(float(got), want, tol):
            bad.append(f"{what}: computed {got!r}, the tests say {want!r}")

    for (both, a_only, b_only, neither), want in MCNEMAR:
        got = mcnemar([[both, a_only], [b_only, neither]], exact=True).pvalue
        check(f"mcnemar {(both, a_only, b_only, neither)}", got, want)
    for p, want in HOLM:
        got = multipletests(p, method="holm")[1]
        for i, (g, w) in enumerate(zip(got, want)):
            check(f"holm {p}[{i}]", g, w)
    for df, want in T975_EXACT.items():
        check(f"t.ppf(0.975, {df})", stats.t.ppf(0.975, df), want)
    for df, want in T975_APPROX.items():
        check(f"t.ppf(0.975, {df})", stats.t.ppf(0.975, df), want)
    for values, (mean, std, lo, hi) in SUMMARY:
        v = np.array(values)
        n = len(v)
        s = v.std(ddof=1) if n > 1 else 0.0
        half = stats.t.ppf(0.975, n - 1) * s / np.sqrt(n) if n > 1 else 0.0
        for name, g, w in [("mean", v.mean(), mean), ("std", s, std), ("ci_low", v.mean() - half, lo), ("ci_high", v.mean() + half, hi)]:
            check(f"summary {values} {name}", g, w)
    for diffs, (lo, hi, p) in BOOTSTRAP:
        d = np.array(diffs)
        check(f"percentile 2.5 of {diffs}", np.percentile(d, 2.5), lo)
        check(f"percentile 97.5 of {diffs}", np.percentile(d, 97.5), hi)
        check(f"bootstrap p of {diffs}", min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))), p)
    for a, b, t, p in PAIRED_T:
        r = stats.ttest_rel(a, b)
        check(f"ttest_rel {a} {b} t", r.statistic, t, 1e-9)
        check(f"ttest_rel {a} {b} p", r.pvalue, p, 1e-9)
    for line in bad:
        print("MISMATCH", line)
    checked = len(MCNEMAR) + sum(len(w) for _, w in HOLM) + len(T975_EXACT) + len(T975_APPROX) + 4 * len(SUMMARY) + 3 * len(BOOTSTRAP) + 2 * len(PAIRED_T)
    print(f"{checked - len(bad)} of {checked} reference values agree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
