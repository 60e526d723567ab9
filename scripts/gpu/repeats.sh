#!/usr/bin/env bash
# Repeats of run.sh's fine-tuning jobs with other seeds (for intervals), and
# embed at 128 px beside 224, on the same GPU machine: SEEDS="43 44".
# Everything comes back as one archive, $OUT/repeats.tar.gz.
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
WEIGHTS="$W/efficientnet-lite0.safetensors"
LD_PRELOAD= $PY scripts/torch_to_safetensors.py "$B/efficientnet-lite0.pth" "$WEIGHTS"
job() {
    local name=$1 kind=$2 seed=$3 params=$4; shift 4
    mkdir -p "$W/$name"
    LD_PRELOAD= $PY - "$W" "$name" "$kind" "$seed" "$params" "$@" <<'PY'
import json, sys
w, name, kind, seed, params, *slots = sys.argv[1:]
inputs = {}
for s in slots:
    slot, rest = s.split("=", 1)
    d, art = rest.rsplit(":", 1)
    inputs[slot] = [{"stage": slot, "artifact": art, "dir": d}]
job = {"stage": name, "kind": kind, "params": json.loads(params), "seed": int(seed), "threads": 4,
       "pool": 4, "inputs": inputs, "out_dir": f"{w}/{name}"}
json.dump(job, open(f"{w}/{name}.job.json", "w"))
PY
}
run() {
    local t0=$SECONDS
    timeout 250 "$W/pipe-torch" run "$W/$1.job.json" > "$W/$1.events" 2> "$W/$1.log" < /dev/null
    echo "$1: exit $? after $((SECONDS - t0)) s" | tee -a "$W/times.txt"
}
FT='"arch": "efficientnet-lite0", "weights": "'$WEIGHTS'", "input_size": 224, "epochs": 12, "batch_size": 64,
    "learning_rate": 0.001, "backbone_lr": 0.3, "freeze_epochs": 1, "schedule": "onecycle", "warmup_epochs": 2,
    "weight_decay": 0.05, "dropout": 0.2, "shift": 0.125, "device": "cuda", "threads": 4'
D="$W/data:images"
job embed128 embed 42 '{"weights": "'$WEIGHTS'", "device": "cuda", "batch_size": 64, "input_size": 128}' images=$D
(run embed128 && LD_PRELOAD= $PY scripts/gpu/svc_check.py "$W/embed128" "$W/data" > "$W/svc_check128.txt" 2>&1) &
for seed in ${SEEDS:-43 44}; do
    job ft_flat_$seed cnn-stage1 $seed "{$FT, \"keep\": \"all\"}" images=$D
    job ft_keywords_$seed multilabel $seed "{$FT}" images=$D
    job ft_step1_$seed cnn-stage1 $seed "{$FT, \"keep\": 2}" images=$D
    job ft_step2_$seed cnn-stage2 $seed "{$FT}" images=$D stage1=$W/ft_step1_$seed:predictions
    run ft_flat_$seed &
    run ft_keywords_$seed &
    (run ft_step1_$seed && run ft_step2_$seed) &
done
wait
tar -czf "$OUT/repeats.tar.gz" --exclude='*.safetensors' --exclude='*.f32' --exclude=data --exclude=pipe-torch -C "$W" .
cat "$W/times.txt" "$W/svc_check128.txt"
