"""Tests of pipe_stage.py on artifact folders written as pipe writes them
(run by `make test`: python3 python/test_pipe_stage.py)."""

import csv
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipe_stage as ps  # noqa: E402

SPLITS = ["train", "train", "test", "validation", "test"]
CLASSES = ["cat", "dog"]


def write_index(folder):
    with open(os.path.join(folder, "index.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "source", "label", "label_id", "labels", "split", "pixel_hash", "augmented"])
        for i, split in enumerate(SPLITS):
            w.writerow([i, f"img{i}.png", CLASSES[i % 2], i % 2, "red|blue" if i == 2 else "red", split, "", "false"])
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"classes": CLASSES, "labels": ["red", "blue"]}, f)


def write_images(folder):
    pixels = np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3)
    header = json.dumps({"images": {"dtype": "U8", "shape": [5, 2, 2, 3], "data_offsets": [0, pixels.nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(os.path.join(folder, "images.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + pixels.tobytes())
    write_index(folder)
    return pixels


def write_histograms(folder):
    matrix = np.arange(15, dtype=np.float32).reshape(5, 3) / 10
    matrix.astype("<f4").tofile(os.path.join(folder, "histograms.f32"))
    with open(os.path.join(folder, "histograms.json"), "w") as f:
        json.dump({"words": 3, "normalization": "l2", "images": 5}, f)
    write_index(folder)
    return matrix


class PipeStageTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        self.images_dir, self.hist_dir, self.out = (os.path.join(root, d) for d in ("images", "hog", "out"))
        for d in (self.images_dir, self.hist_dir, self.out):
            os.makedirs(d)
        self.pixels = write_images(self.images_dir)
        self.matrix = write_histograms(self.hist_dir)
        item = lambda stage, kind, d: {"stage": stage, "artifact": kind, "dir": d, "index": os.path.join(d, "index.csv")}
        doc = {"stage": "logreg", "kind": "command", "params": {"c": 1.5}, "seed": 7, "threads": 2,
               "inputs": {"images": [item("data", "images", self.images_dir)], "features": [item("hog", "histograms", self.hist_dir)]},
               "out_dir": self.out, "command": ["python3", "x.py"], "produces": "predictions"}
        self.job_file = os.path.join(root, "job.json")
        with open(self.job_file, "w") as f:
            json.dump(doc, f)
        os.environ["PIPE_JOB"], os.environ["PIPE_OUT"] = self.job_file, self.out

    def tearDown(self):
        self.tmp.cleanup()

    def test_the_job_document_reads_as_attributes(self):
        job = ps.job()
        self.assertEqual((job.stage, job.params["c"], job.seed, job.threads), ("logreg", 1.5, 7, 2))

    def test_images_come_with_their_splits(self):
        x = ps.images()
        np.testing.assert_array_equal(x.pixels, self.pixels)
        self.assertEqual(x.classes, CLASSES)
        np.testing.assert_array_equal(x.test.ids, [2, 4])
        self.assertEqual(list(x.test.labels), ["cat", "cat"])
        np.testing.assert_array_equal(x.train.data, self.pixels[[0, 1]])
        self.assertEqual(x.test.label_sets, [["red", "blue"], ["red"]])

    def test_histograms_are_a_matrix_in_index_order(self):
        x = ps.histograms("features")
        np.testing.assert_array_equal(x.matrix, self.matrix)
        np.testing.assert_array_equal(x.validation.data, self.matrix[[3]])
        np.testing.assert_array_equal(x.validation.label_ids, [1])

    def test_predictions_are_written_as_pipe_reads_them(self):
        ps.write_predictions([2, 4], [1, "cat"], CLASSES, scores=np.array([[0.25, 0.75], [0.5, 0.5]]))
        with open(os.path.join(self.out, "predictions.csv"), newline="") as f:
            self.assertEqual(f.read(), "id,y_pred,score_cat,score_dog\r\n2,dog,0.25,0.75\r\n4,cat,0.5,0.5\r\n")
        ps.write_multilabel([2], [["red", "blue"]], ["red", "blue"], np.array([[0.9, 0.6]]))
        with open(os.path.join(self.out, "predictions.csv"), newline="") as f:
            self.assertEqual(f.read(), "id,y_pred,score_red,score_blue\r\n2,red|blue,0.9,0.6\r\n")

    def test_histograms_are_written_as_little_endian_f32(self):
        ps.write_histograms(np.ones((5, 2), dtype=np.float64))
        self.assertEqual(open(os.path.join(self.out, "histograms.f32"), "rb").read(), struct.pack("<10f", *[1.0] * 10))

    def test_a_missing_slot_names_the_slots_there_are(self):
        code = "import sys; sys.path.insert(0, %r); import pipe_stage as ps; ps.histograms('hog')" % os.path.dirname(ps.__file__)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("this stage has no input `hog` (it has: images, features)", r.stderr)

    def test_progress_and_warnings_are_lines_pipe_reads(self):
        code = "import sys; sys.path.insert(0, %r); import pipe_stage as ps; ps.progress(3, 10, 'folds'); ps.warn('w')" % os.path.dirname(ps.__file__)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        self.assertEqual(r.stdout, "progress 3/10 folds\nwarning: w\n")


if __name__ == "__main__":
    unittest.main()
