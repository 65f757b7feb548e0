#!/usr/bin/env bash
# Builds the Python wheel of `boneage` with the shipped weights inside it.
#
#   bash crates/boneage-py/build_wheel.sh [OUT_DIR]     (default target/wheels)
#
# Copies the models `boneage assess` runs with (models/: U-Net, key points, the
# refining nets, the check after registration, the bone-age models and their
# calibration; not the paper's 18 VGG models) into python/boneage/models, runs
# `maturin build --release`, and removes the copy again (left behind, it would shadow
# models/ in a source checkout and go stale).
# Needs maturin >= 1.9.4 (pip install maturin).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$root/target/wheels}" && cd "${1:-$root/target/wheels}" && pwd)
dest="$here/python/boneage/models"
trap 'rm -rf "$dest" "$dest.tmp"' EXIT
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/age"
cp "$root"/models/{unet,keypoints,capitate,thumb}.{json,safetensors} "$root"/models/hand_template.{json,png} "$dest.tmp/"
cp "$root"/models/age/*.json "$root"/models/age/*.safetensors "$dest.tmp/age/"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
cd "$here"
maturin build --release --locked --out "$out"
