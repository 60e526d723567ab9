#!/usr/bin/env python3
"""Reference values for pipe's EfficientNet-Lite0 import, computed with
PyTorch and the reference model code (`efficientnet-lite-pytorch` 0.1.0) on
a machine that has torch for Python (see ../../README.md, "GPU"):

- OUT/efficientnet-lite0.manifest: every tensor of the shipped legacy .pth
  as torch.load reads it (name, dtype, shape, sha256 of its row-major
  bytes), which scripts/torch_to_safetensors.py --manifest must reproduce;
- OUT/efficientnet_lite0_reference.json: the ImageNet logits and pooled
  features of three fixed 224x224 inputs (a formula, so Rust can rebuild
  them), which pipe-torch's network must reproduce.

    reference.py WEIGHTS.pth MODEL_CODE_DIR OUT
"""
import hashlib
import json
import sys

import numpy as np
import torch

pth, code, out = sys.argv[1:4]
sys.path.insert(0, code)
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

try:
    state = torch.load(pth, map_location="cpu", weights_only=True)
except Exception:
    state = torch.load(pth, map_location="cpu", weights_only=False)
dtypes = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16", torch.float64: "F64"}
with open(f"{out}/efficientnet-lite0.manifest", "w") as f:
    for name, t in state.items():
        shape = "x".join(map(str, t.shape)) or "scalar"
        digest = hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()
        f.write(f"{name}\t{dtypes[t.dtype]}\t{shape}\t{digest}\n")

model = EfficientNet.from_name("efficientnet-lite0")
model.load_state_dict(state)
model.eval()
n, c, h, w = np.meshgrid(np.arange(3), np.arange(3), np.arange(224), np.arange(224), indexing="ij")
x = (1.5 * np.sin(0.37 * (n + 1) * h + 0.23 * (c + 1) * w + 0.5 * n)).astype(np.float32)
with torch.no_grad():
    xs = torch.from_numpy(x)
    logits = model(xs).double().numpy()
    pooled = model.extract_features(xs).mean(dim=(2, 3)).double().numpy()
doc = {
    "inputs": "x[n,c,h,w] = float32(1.5 * sin(0.37*(n+1)*h + 0.23*(c+1)*w + 0.5*n)), n, c < 3, h, w < 224",
    "torch": torch.__version__,
    "logits": [[float(f"{v:.6g}") for v in row] for row in logits],
    "features_first_16": [[float(f"{v:.6g}") for v in row[:16]] for row in pooled],
    "top5": [list(map(int, np.argsort(-row)[:5])) for row in logits],
}
with open(f"{out}/efficientnet_lite0_reference.json", "w") as f:
    json.dump(doc, f)
print("reference: top-5", doc["top5"])
