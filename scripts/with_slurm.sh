#!/usr/bin/env bash
# Runs a command with a one-node Slurm cluster up (see scripts/slurm.sh), and
# PIPE_SLURM_TESTS=1 so that the Slurm end-to-end tests (tests/slurm.rs) fail
# rather than skip without one. A cluster that was already usable is left
# running; one this call started is stopped afterwards, whatever the outcome.
#   bash scripts/with_slurm.sh cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

if bash scripts/slurm.sh status >/dev/null 2>&1; then
    eval "$(bash scripts/slurm.sh env)"
else
    eval "$(bash scripts/slurm.sh start)"
    trap 'bash scripts/slurm.sh stop' EXIT
fi
export PIPE_SLURM_TESTS=1
"$@"
