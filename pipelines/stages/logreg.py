"""A scikit-learn logistic regression on features pipe computed, as a pipe
`command` stage (see pipelines/custom.toml): each input of the `features`
slot (hog, colour, lbp, embed, ...) standardised and concatenated, one model
per run, predictions with probabilities for every test image."""
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pipe_stage as ps  # noqa: E402

job = ps.job()
parts = [ps.histograms("features", i) for i in range(len(job.inputs["features"]))]
first = parts[0]
train = np.hstack([p.train.data for p in parts])
test = np.hstack([p.test.data for p in parts])
model = make_pipeline(
    StandardScaler(),
    LogisticRegression(C=job.params.get("c", 1.0), max_iter=job.params.get("max_iter", 1000),
                       class_weight=job.params.get("class_weight"), random_state=job.seed % 2**32),
)
ps.progress(0, 1, "fits")
model.fit(train, first.train.labels)
ps.progress(1, 1, "fits")
proba = model.predict_proba(test)
# Columns in pipe's class order; a class without training images scores 0.
scores = np.zeros((len(test), len(first.classes)))
for j, c in enumerate(model.classes_):
    scores[:, first.classes.index(c)] = proba[:, j]
ps.write_predictions(first.test.ids, model.predict(test), first.classes, scores=scores)
