#!/usr/bin/env bash
# Benchmark a training step and inference of boneage's networks (burn, flex) against
# the same models in PyTorch, in one run. Creates a Python venv with torch from PyPI
# the first time (a large download).
# Usage: bench/train.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BONEAGE_BENCH_VENV:-$HOME/.cache/boneage-bench-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch
fi
cargo build --release -q -p boneage-cli
bin="${CARGO_TARGET_DIR:-target}/release/boneage"
"$bin" bench train --reps "${1:-10}" --torch "$venv/bin/python bench/torch_ref.py"
