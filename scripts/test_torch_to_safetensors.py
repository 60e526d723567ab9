#!/usr/bin/env python3
"""Tests of torch_to_safetensors.py (run by `make test`): on the shipped
EfficientNet-Lite0 file, every tensor as torch.load reads it (the reference
manifest was written by scripts/gpu/reference.py with torch 2.11), and the
safetensors file it writes holds exactly those bytes."""
import hashlib
import json
import os
import pathlib
import struct
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import torch_to_safetensors as conv  # noqa: E402

PTH = ROOT / "weights" / "efficientnet-lite0.pth"
REFERENCE = ROOT / "crates" / "pipe-torch" / "tests" / "data" / "efficientnet-lite0.manifest"


class ShippedWeights(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not PTH.exists():
            raise AssertionError(f"{PTH} is missing: run `make setup` (scripts/setup.sh installs it)")
        cls.tensors = conv.read_legacy(PTH)

    def test_every_tensor_matches_torch_load(self):
        ours = conv.manifest(self.tensors).splitlines()
        theirs = REFERENCE.read_text().splitlines()
        self.assertEqual(len(ours), 296)
        for a, b in zip(ours, theirs):
            self.assertEqual(a, b)
        self.assertEqual(len(ours), len(theirs))

    def test_the_safetensors_file_holds_the_same_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "w.safetensors")
            conv.write_safetensors(self.tensors, out)
            data = pathlib.Path(out).read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        body = data[8 + n:]
        for line in REFERENCE.read_text().splitlines():
            name, dtype, shape, digest = line.split("\t")
            entry = header[name]
            self.assertEqual(entry["dtype"], dtype)
            self.assertEqual("x".join(map(str, entry["shape"])) or "scalar", shape)
            start, end = entry["data_offsets"]
            self.assertEqual(hashlib.sha256(body[start:end]).hexdigest(), digest, name)


class StridedTensors(unittest.TestCase):
    def test_a_small_file_with_channels_last_and_transposed_tensors_matches_torch_load(self):
        data = ROOT / "crates" / "pipe-torch" / "tests" / "data"
        ours = conv.manifest(conv.read_legacy(data / "small-legacy.pth"))
        self.assertEqual(ours, (data / "small.manifest").read_text())

    def test_the_zip_format_of_the_same_state_dict_gives_the_same_tensors(self):
        data = ROOT / "crates" / "pipe-torch" / "tests" / "data"
        ours = conv.manifest(conv.read_state_dict(data / "small-zip.pt"))
        self.assertEqual(ours, (data / "small.manifest").read_text())


class BadInput(unittest.TestCase):
    def test_a_file_that_is_not_legacy_says_so(self):
        with tempfile.NamedTemporaryFile(suffix=".pth") as f:
            f.write(b"PK\x03\x04 a zip file")
            f.flush()
            with self.assertRaises(conv.LegacyError) as e:
                conv.read_legacy(f.name)
            self.assertIn("not a legacy torch.save file", str(e.exception))

    def test_strided_tensors_are_copied_in_row_major_order(self):
        # A 2x3 float tensor stored transposed (strides 1, 2): storage 0..5.
        storage = struct.pack("<6f", *range(6))
        got = conv._row_major(storage, 4, 0, (2, 3), (1, 2))
        self.assertEqual(struct.unpack("<6f", got), (0.0, 2.0, 4.0, 1.0, 3.0, 5.0))


if __name__ == "__main__":
    unittest.main()
