#!/usr/bin/env bash
# The GPU check, run on a machine with an NVIDIA GPU and torch for Python
# (GPU-NOTES: /opt/torch/.venv), from a bundle prepared on a CPU machine by
# scripts/gpu/bundle.sh: pipe-torch built there (tch 0.24, libtorch 2.11 as
# the machine's torch), the default pipeline's `data` entry, the shipped
# EfficientNet-Lite0 weights and the reference model code. pipe-torch runs
# on the machine's own CUDA libraries. Writes everything into $OUT:
# probe.txt, the reference values, and per stage its output folder and log.
set -uo pipefail
B=${BUNDLE:-gpu-bundle}
OUT=${OUT:?set OUT}
PY=${PY:-/opt/torch/.venv/bin/python3}
SITE=$($PY -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
export LD_LIBRARY_PATH="$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib "$SITE"/nvidia/cu13/lib 2>/dev/null | tr '\n' ':')"
export LD_PRELOAD="$SITE/torch/lib/libtorch_cuda.so:$SITE/torch/lib/libc10_cuda.so"
W=$(mktemp -d)
gunzip -c "$B/pipe-torch.gz" > "$W/pipe-torch" && chmod +x "$W/pipe-torch"
tar -xzf "$B/data.tar.gz" -C "$W"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
"$W/pipe-torch" probe > "$OUT/probe.txt" 2>&1; cat "$OUT/probe.txt"
# The path scripts/setup.sh sets up on a GPU machine: no LD_PRELOAD, pipe-torch
# loading libtorch_cuda.so itself (crates/pipe-torch/src/cuda.rs); the library
# path only stands in for the CPU machine's libtorch rpath.
(LD_PRELOAD= LD_LIBRARY_PATH="$SITE/torch/lib" PIPE_TORCH_CUDA="$SITE/torch/lib" "$W/pipe-torch" probe > "$OUT/probe-dlopen.txt" 2>&1; cat "$OUT/probe-dlopen.txt")
(LD_PRELOAD= OMP_NUM_THREADS=4 $PY scripts/gpu/reference.py "$B/efficientnet-lite0.pth" "$B/pylib" "$OUT" > "$OUT/reference.log" 2>&1) &
WEIGHTS="$W/efficientnet-lite0.safetensors"
LD_PRELOAD= $PY scripts/torch_to_safetensors.py "$B/efficientnet-lite0.pth" "$WEIGHTS"
LD_PRELOAD= $PY scripts/torch_to_safetensors.py --manifest "$B/efficientnet-lite0.pth" > "$OUT/converter.manifest"
cmp "$OUT/converter.manifest" "$OUT/efficientnet-lite0.manifest" && echo "converter manifest = torch.load manifest"

# job NAME KIND THREADS PARAMS_JSON [SLOT=DIR:ARTIFACT ...]: a pipe-torch job file.
job() {
    local name=$1 kind=$2 threads=$3 params=$4; shift 4
    mkdir -p "$W/$name"
    LD_PRELOAD= $PY - "$W" "$name" "$kind" "$threads" "$params" "$@" <<'PY'
import json, sys
w, name, kind, threads, params, *slots = sys.argv[1:]
inputs = {}
for s in slots:
    slot, rest = s.split("=", 1)
    d, art = rest.rsplit(":", 1)
    inputs[slot] = [{"stage": slot, "artifact": art, "dir": d}]
job = {"stage": name, "kind": kind, "params": json.loads(params), "seed": 42, "threads": int(threads),
       "pool": int(threads), "inputs": inputs, "out_dir": f"{w}/{name}"}
json.dump(job, open(f"{w}/{name}.job.json", "w"))
PY
}
# run NAME: runs the job, keeps its log and output (not the model weights).
run() {
    local t0=$SECONDS
    timeout "${LIMIT:-250}" "$W/pipe-torch" run "$W/$1.job.json" > "$OUT/$1.events" 2> "$OUT/$1.log" < /dev/null
    echo "$1: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/times.txt"
    mkdir -p "$OUT/$1" && cp -r "$W/$1/." "$OUT/$1/" && find "$OUT/$1" \( -name '*.safetensors' -o -name '*.f32' \) -delete
}
FT='"arch": "efficientnet-lite0", "weights": "'$WEIGHTS'", "input_size": 224, "epochs": 12, "batch_size": 64,
    "learning_rate": 0.001, "backbone_lr": 0.3, "freeze_epochs": 1, "schedule": "onecycle", "warmup_epochs": 2,
    "weight_decay": 0.05, "dropout": 0.2, "shift": 0.125, "device": "cuda", "threads": 4'
D="$W/data:images"
job embed embed 1 '{"weights": "'$WEIGHTS'", "device": "cuda", "batch_size": 64}' images=$D
job ft_flat cnn-stage1 4 "{$FT, \"keep\": \"all\"}" images=$D
job ft_step1 cnn-stage1 4 "{$FT, \"keep\": 2}" images=$D
job ft_keywords multilabel 4 "{$FT}" images=$D
job ft_step2 cnn-stage2 4 "{$FT}" images=$D stage1=$W/ft_step1:predictions
job cpu_epoch cnn-stage1 8 "{$FT, \"keep\": \"all\", \"epochs\": 1, \"freeze_epochs\": 0, \"device\": \"cpu\", \"threads\": 8}" images=$D
(run embed && LD_PRELOAD= $PY scripts/gpu/svc_check.py "$W/embed" "$W/data" > "$OUT/svc_check.txt" 2>&1) &
run ft_flat &
run ft_keywords &
run ft_step1
# A CPU epoch on 8 of this machine's cores, beside stage 2, for the
# epoch-seconds comparison: cut at 90 s, its last progress line says how far it got.
(LIMIT=90 run cpu_epoch) &
run ft_step2
wait
cp "$W"/*.job.json "$OUT/" 2>/dev/null
echo done
