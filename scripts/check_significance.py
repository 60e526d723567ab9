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

The inputs and the expected values are the tests' own: both read
crates/pipe-core/src/metrics/significance/reference.json, so they cannot
drift. `make test` runs this script.

Usage: python3 scripts/check_significance.py
Needs numpy, scipy and statsmodels (`make setup` installs them when missing).
"""
import json
import pathlib
import sys

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

REFERENCE = pathlib.Path(__file__).resolve().parent.parent / "crates/pipe-core/src/metrics/significance/reference.json"


def load():
    ref = json.loads(REFERENCE.read_text())
    cases = {k: v["cases"] for k, v in ref.items() if not k.startswith("_")}
    return (
        [(tuple(c), p) for c, p in cases["mcnemar"]],
        [(p, w) for p, w in cases["holm"] if p],
        {df: v for df, v in cases["t975_exact"]},
        {df: v for df, v in cases["t975_approx"]},
        [(v, tuple(w)) for v, w in cases["summary"]],
        [(a, b, t, p) for a, b, t, p in cases["paired_t"]],
        [(d, tuple(w)) for d, w in cases["bootstrap"]],
    )


MCNEMAR, HOLM, T975_EXACT, T975_APPROX, SUMMARY, PAIRED_T, BOOTSTRAP = load()


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
