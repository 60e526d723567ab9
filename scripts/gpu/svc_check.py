#!/usr/bin/env python3
"""scikit-learn's RBF SVC on an `embed` entry's features (C chosen on the
validation split, gamma "scale"), test accuracy and macro F1: checks that
pipe's features are as good as GPU-NOTES's PyTorch ones (0.807 / 0.507).

    svc_check.py EMBED_OUT_DIR DATA_DIR (its index.csv)
"""
import csv
import json
import sys

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import SVC

d = sys.argv[1]
meta = json.load(open(f"{d}/histograms.json"))
x = np.fromfile(f"{d}/histograms.f32", dtype="<f4").reshape(meta["images"], meta["words"])
rows = list(csv.DictReader(open(f"{sys.argv[2]}/index.csv")))
y = np.array([r["label"] for r in rows])
split = np.array([r["split"] for r in rows])
tr, va, te = (split == "train"), (split == "validation"), (split == "test")
best = max((SVC(C=c, gamma="scale").fit(x[tr], y[tr]).score(x[va], y[va]), c) for c in (1.0, 10.0, 100.0))
model = SVC(C=best[1], gamma="scale").fit(x[tr], y[tr])
p = model.predict(x[te])
print(f"features {x.shape}, C = {best[1]} (validation accuracy {best[0]:.3f})")
print(f"test accuracy {accuracy_score(y[te], p):.3f}, macro F1 {f1_score(y[te], p, average='macro'):.3f}")
