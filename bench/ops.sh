#!/usr/bin/env bash
# Benchmark boneage's image operations against OpenCV on a 2080x1600 image, in one
# run. Creates a Python venv with opencv-python-headless the first time.
# Usage: bench/ops.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BONEAGE_BENCH_VENV:-$HOME/.cache/boneage-bench-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import cv2" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q opencv-python-headless numpy
fi
cargo build --release -q -p boneage-cli
bin="${CARGO_TARGET_DIR:-target}/release/boneage"
"$bin" bench ops --reps "${1:-20}" --opencv "$venv/bin/python bench/opencv_ops.py"
