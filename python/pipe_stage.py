"""Helpers for a pipe `command` stage written in Python (numpy only).

A command stage is your program, run by `pipe run` with two environment
variables: PIPE_JOB names a JSON document (stage, params, seed, threads, each
input slot's artifact folder, out_dir) and PIPE_OUT the folder to write into.
With this module a stage is a dozen lines:

    import sys; sys.path.insert(0, "../python")   # where this file is
    import pipe_stage as ps

    job = ps.job()
    x = ps.histograms("features")                 # a hog / colour / embed stage
    model = fit(x.train.matrix, x.train.labels, c=job.params["c"])
    ps.write_predictions(x.test.ids, model.predict(x.test.matrix), classes=x.classes,
                         scores=model.predict_proba(x.test.matrix))

What pipe checks and publishes for each `produces` is in docs/artifacts.md.
"""

import csv
import json
import os
import struct
import sys
from types import SimpleNamespace

import numpy as np

_SAFETENSORS_DTYPES = {"U8": np.uint8, "F32": np.float32, "F64": np.float64, "I64": np.int64, "U32": np.uint32}


class Job(SimpleNamespace):
    """The job document: stage, params, seed, threads, inputs, out_dir."""


def job(path=None):
    """The job document of this run (from PIPE_JOB, or `path`)."""
    path = path or os.environ.get("PIPE_JOB")
    if not path:
        sys.exit("error: PIPE_JOB is not set: this program is a pipe `command` stage; run it with `pipe run`")
    with open(path) as f:
        doc = json.load(f)
    return Job(**doc)


def out_dir():
    """The folder the stage writes its output into (PIPE_OUT)."""
    return os.environ.get("PIPE_OUT") or job().out_dir


def _input(slot, i, the_job):
    the_job = the_job or job()
    items = the_job.inputs.get(slot)
    if not items:
        sys.exit(f"error: this stage has no input `{slot}` (it has: {', '.join(the_job.inputs) or 'none'}); "
                 f"add it under [stages.{the_job.stage}.inputs]")
    return items[i]


def _index(item):
    """The rows of an input's image index (id, source, label, label_id, labels, split, ...)."""
    with open(item["index"], newline="") as f:
        return list(csv.DictReader(f))


def _dataset(item):
    with open(os.path.join(item["dir"], "dataset.json")) as f:
        return json.load(f)


def read_safetensors(path, name):
    """One tensor of a safetensors file as a numpy array (memory-mapped)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header[name]
    start, end = meta["data_offsets"]
    dtype = np.dtype(_SAFETENSORS_DTYPES[meta["dtype"]]).newbyteorder("<")
    count = (end - start) // dtype.itemsize
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + n + start, shape=(count,)).reshape(meta["shape"])


class Split(SimpleNamespace):
    """The rows of one split: ids, labels (class names), label_ids, and matrix or pixels."""


def _splits(rows, data, classes):
    ids = np.array([int(r["id"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    labels = np.array([r["label"] for r in rows], dtype=object)
    label_ids = np.array([int(r["label_id"]) for r in rows])
    sets = [[l for l in r["labels"].split("|") if l] for r in rows]
    out = SimpleNamespace(ids=ids, split=split, labels=labels, label_ids=label_ids, label_sets=sets, classes=classes)
    for name in ("train", "validation", "test"):
        keep = split == name
        setattr(out, name, Split(ids=ids[keep], labels=labels[keep], label_ids=label_ids[keep],
                                 label_sets=[s for s, k in zip(sets, keep) if k], data=data[keep]))
    return out


def images(slot="images", i=0, the_job=None):
    """An images input (a load or augment stage): `.pixels` (N, H, W, C) uint8,
    `.ids`, `.labels`, `.label_ids`, `.split`, `.classes`, and `.train`,
    `.validation`, `.test` (each with ids, labels, label_ids, data)."""
    item = _input(slot, i, the_job)
    pixels = read_safetensors(os.path.join(item["dir"], "images.safetensors"), "images")
    meta = _dataset(item)
    out = _splits(_index(item), pixels, meta["classes"])
    out.pixels = pixels
    out.label_names = meta.get("labels", [])
    return out


def histograms(slot="features", i=0, the_job=None):
    """A histograms input (encode, hog, colour, lbp, embed, or a command stage):
    `.matrix` (N, D) float32 in index order, with the same fields as `images`."""
    item = _input(slot, i, the_job)
    with open(os.path.join(item["dir"], "histograms.json")) as f:
        meta = json.load(f)
    matrix = np.fromfile(os.path.join(item["dir"], "histograms.f32"), dtype="<f4").reshape(meta["images"], meta["words"])
    dataset = _dataset(item)
    out = _splits(_index(item), matrix, dataset["classes"])
    out.matrix = matrix
    out.label_names = dataset.get("labels", [])
    return out


def progress(done, total, unit="steps"):
    """Moves the stage's progress bar."""
    print(f"progress {int(done)}/{int(total)} {unit}", flush=True)


def warn(message):
    """A warning pipe shows now and keeps with the stage's log."""
    print(f"warning: {message}", flush=True)


def write_predictions(ids, y_pred, classes, scores=None):
    """Single-label predictions for the test images: ids, one class name (or
    class index) per id, and optionally an (n, classes) matrix of scores."""
    y_pred = [classes[int(p)] if isinstance(p, (int, np.integer)) else str(p) for p in y_pred]
    if len(y_pred) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(y_pred)} predictions")
    header = ["id", "y_pred"] + ([f"score_{c}" for c in classes] if scores is not None else [])
    with open(os.path.join(out_dir(), "predictions.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for k, (i, p) in enumerate(zip(ids, y_pred)):
            w.writerow([int(i), p] + ([repr(float(s)) for s in scores[k]] if scores is not None else []))


def write_multilabel(ids, label_sets, labels, scores):
    """Multi-label predictions: per id a set of label names, and an (n, labels) matrix of scores."""
    with open(os.path.join(out_dir(), "predictions.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "y_pred"] + [f"score_{l}" for l in labels])
        for k, (i, s) in enumerate(zip(ids, label_sets)):
            w.writerow([int(i), "|".join(s)] + [repr(float(v)) for v in scores[k]])


def write_histograms(matrix):
    """One feature vector per image of the input, in its index order (for `svm`)."""
    np.ascontiguousarray(matrix, dtype="<f4").tofile(os.path.join(out_dir(), "histograms.f32"))
