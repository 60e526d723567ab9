# The two commands of the README:
#   make run    installs what is missing, builds, runs the default pipeline
#   make test   installs what is missing, builds, runs the whole test suite
#               (with a one-node Slurm cluster it starts, and stops, itself;
#               and opens a quickstart report in headless Chromium)
# Everything is idempotent: a second call skips the installs in about a second.

SHELL := /bin/bash
PIPE_HOME ?= $(HOME)/.cache/pipe
LIBTORCH ?= $(PIPE_HOME)/libtorch-2.11.0-cpu
# One build folder per machine, shared by every checkout: a fresh clone (CI)
# reuses the dependencies already compiled instead of rebuilding them.
CARGO_TARGET_DIR ?= $(PIPE_HOME)/target
PIPELINE ?= pipelines/openclipart.toml
# `make install` puts pipe, pipe-worker and pipe-torch into $(PREFIX)/bin.
PREFIX ?= $(HOME)/.local
export PIPE_HOME LIBTORCH CARGO_TARGET_DIR

.PHONY: setup build run test bench check-env install

setup:
	@bash scripts/setup.sh

build: setup
	cargo build --release --bins

run: build
	$(CARGO_TARGET_DIR)/release/pipe run $(PIPELINE)

test: setup
	bash scripts/with_slurm.sh cargo test
	python3 scripts/test_torch_to_safetensors.py
	python3 python/test_pipe_stage.py
	python3 scripts/check_significance.py
	python3 scripts/check_report.py

bench: setup
	python3 scripts/bench.py

check-env: build
	$(CARGO_TARGET_DIR)/release/pipe-torch probe

# The engine runs its stages in the two workers it finds next to its own
# executable, so the three go together. pipe-torch keeps the rpath to
# $(LIBTORCH) baked in at link time: leave libtorch where it is.
install: build
	install -d $(PREFIX)/bin
	install -m 755 $(CARGO_TARGET_DIR)/release/pipe $(CARGO_TARGET_DIR)/release/pipe-worker $(CARGO_TARGET_DIR)/release/pipe-torch $(PREFIX)/bin/
	$(PREFIX)/bin/pipe --version
