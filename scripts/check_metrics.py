#!/usr/bin/env python3
"""Cross-checks a run's metrics.csv against scikit-learn, from the run's own
predictions/<approach>.csv files: single-label approaches, and multi-label
ones on their indicator matrices (per label, micro, macro, weighted, samples).

Usage: python3 scripts/check_metrics.py reports/<pipeline>/latest
Needs scikit-learn (`pip install scikit-learn`); exits non-zero on any mismatch.
"""
import csv
import pathlib
import re
import sys

import numpy as np
from sklearn.metrics import accuracy_score, fbeta_score, precision_recall_fscore_support, top_k_accuracy_score


def close(a, b):
    return abs(float(a) - float(b)) < 1e-9


def check(run, approach, metrics):
    rows = list(csv.DictReader(open(run / "predictions" / f"{approach}.csv", newline="")))
    classes = [c[len("score_"):] for c in rows[0] if c.startswith("score_")]
    yt = [classes.index(r["y_true"]) for r in rows]
    yp = [classes.index(r["y_pred"]) for r in rows]
    labels = sorted(set(yt) | set(yp))
    m = {r["class"]: r for r in metrics if r["approach"] == approach}
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    f2 = fbeta_score(yt, yp, beta=2, labels=labels, average=None, zero_division=0)
    for i, label in enumerate(labels):
        row = m[classes[label]]
        assert all(close(row[k], v) for k, v in [("precision", p[i]), ("recall", r[i]), ("f1", f[i]), ("f2", f2[i]), ("support", s[i])]), (approach, row)
    for avg in ["micro", "macro", "weighted"]:
        p, r, f, _ = precision_recall_fscore_support(yt, yp, labels=labels, average=avg, zero_division=0)
        f2 = fbeta_score(yt, yp, beta=2, labels=labels, average=avg, zero_division=0)
        row = m[f"{avg} avg"]
        assert all(close(row[k], v) for k, v in [("precision", p), ("recall", r), ("f1", f), ("f2", f2)]), (approach, avg, row)
    assert close(m["accuracy"]["f1"], accuracy_score(yt, yp))
    scores = np.array([[float(r["score_" + c]) for c in classes] for r in rows])
    for k in (3, 5):
        if f"top-{k}" in m and k < len(classes):
            expected = top_k_accuracy_score(yt, scores, k=k, labels=list(range(len(classes))))
            assert close(m[f"top-{k}"]["f1"], expected), (approach, k, m[f"top-{k}"], expected)
    return len(rows)


def check_multi(run, approach, metrics):
    rows = list(csv.DictReader(open(run / "predictions" / f"{approach}.csv", newline="")))
    labels = [c[len("score_"):] for c in rows[0] if c.startswith("score_")]

    def indicator(column):
        m = np.zeros((len(rows), len(labels)), dtype=int)
        for i, r in enumerate(rows):
            # A label set is one field, its members joined by `|` (empty: no
            # label); files from before the `|` form joined ids by spaces.
            for l in re.split(r"[|\s]+", r[column].strip()):
                if l:
                    m[i, int(l)] = 1
        return m

    yt, yp = indicator("y_true_ids"), indicator("y_pred_ids")
    m = {r["class"]: r for r in metrics if r["approach"] == approach}
    p, r, f, s = precision_recall_fscore_support(yt, yp, zero_division=0)
    f2 = fbeta_score(yt, yp, beta=2, average=None, zero_division=0)
    for i, label in enumerate(labels):
        row = m[label]
        assert all(close(row[k], v) for k, v in [("precision", p[i]), ("recall", r[i]), ("f1", f[i]), ("f2", f2[i]), ("support", s[i])]), (approach, row)
    for avg in ["micro", "macro", "weighted", "samples"]:
        p, r, f, _ = precision_recall_fscore_support(yt, yp, average=avg, zero_division=0)
        f2 = fbeta_score(yt, yp, beta=2, average=avg, zero_division=0)
        row = m[f"{avg} avg"]
        assert all(close(row[k], v) for k, v in [("precision", p), ("recall", r), ("f1", f), ("f2", f2)]), (approach, avg, row)
    return len(rows)


def main():
    run = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    metrics = list(csv.DictReader(open(run / "metrics.csv", newline="")))
    for approach in sorted({r["approach"] for r in metrics if r["task"] == "single"}):
        n = check(run, approach, metrics)
        print(f"{approach}: {n} test images, every row matches scikit-learn")
    for approach in sorted({r["approach"] for r in metrics if r["task"] == "multi"}):
        n = check_multi(run, approach, metrics)
        print(f"{approach} (multi-label): {n} test images, every row matches scikit-learn")


if __name__ == "__main__":
    main()
