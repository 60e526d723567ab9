#!/usr/bin/env bash
# Prepares gpu-bundle/ (ignored by git, carried to the GPU machine) for
# scripts/gpu/run.sh: the release pipe-torch (stripped, gzipped), the
# default pipeline's `data` entry from the cache (run `pipe run
# pipelines/openclipart.toml --stage data` first), EfficientNet-Lite0's
# shipped .pth and the reference model code from PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
PIPE_HOME=${PIPE_HOME:-$HOME/.cache/pipe}
TARGET=${CARGO_TARGET_DIR:-$PIPE_HOME/target}
CACHE=${CACHE:-cache}
B=gpu-bundle
rm -rf "$B" && mkdir -p "$B/pylib"
strip -o "$B/pipe-torch" "$TARGET/release/pipe-torch" && gzip -9 "$B/pipe-torch"
key=$("$TARGET/release/pipe" plan pipelines/openclipart.toml --cache-dir "$CACHE" 2>/dev/null | awk '$1 == "data" {print $4}' | head -1)
entry=$(ls -d "$CACHE"/entries/*/"$key"*/out 2>/dev/null | head -1 || true)
[ -n "${DATA:-}" ] && entry=$DATA
[ -d "$entry" ] || { echo "no cached data entry (key '$key'): set DATA=<entry>/out" >&2; exit 1; }
tar -czf "$B/data.tar.gz" -C "$entry" --transform "s,^\\.,data," .
cp "$PIPE_HOME/weights/efficientnet-lite0.pth" "$B/"
python3 -m pip download --no-deps --quiet -d "$B/wheel" efficientnet-lite-pytorch==0.1.0
python3 -c 'import sys, zipfile, glob; zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]).extractall(sys.argv[2])' "$B/wheel" "$B/pylib"
rm -rf "$B/wheel"
du -sh "$B"/*
