#!/usr/bin/env bash
# Trains the paper's 18 bone-age models (regions A, B, C × regression,
# classification × cohorts mixed, M, F) on the region crops of `boneage preprocess`,
# validated on data/labels/holdout-age.txt, which never enters training.
#
#   bash scripts/train_age_grid.sh CROPS_DIR RUNS_DIR
#
# CROPS_DIR: `boneage preprocess ../shared/data/rsna/raw/*.png --out CROPS_DIR`.
# Interrupted? Run the same command again: finished models are skipped and the
# one that was running continues from its last checkpoint (--resume).
# EPOCHS (mixed, default 8) and SEX_EPOCHS (per-sex, on half the data, default 6)
# set the schedules; BONEAGE sets the binary.
set -euo pipefail
usage="usage: train_age_grid.sh CROPS_DIR RUNS_DIR"
crops=$(realpath "${1:?$usage}")
mkdir -p "${2:?$usage}"
runs=$(realpath "$2")
data=$(realpath "${DATA:-$(dirname "$0")/../../shared/data/rsna/raw}")
bin=${BONEAGE:-boneage}
epochs=${EPOCHS:-8}
sex_epochs=${SEX_EPOCHS:-6}
cd "$(dirname "$0")/.."

# Sized for two CPU cores and for shipping all 18 in under 30 MB: inputs of region
# A 128×96, B 96×96, C 64×150 (the crops' aspect ratios); VGG widths
# 16, 32, 48, 64, 80, 96 and two FC layers of 128 (0.40 M weights, 1.6 MB).
input() { case $1 in A) echo 128x96 ;; B) echo 96x96 ;; C) echo 64x150 ;; esac; }
widths=${WIDTHS:-16,32,48,64,80,96}
hidden=${HIDDEN:-128,128}

for sex in mixed M F; do
  for region in A B C; do
    for head in regression classification; do
      out="$runs/$region-${head:0:3}-$sex"
      n=$epochs
      [[ $sex != mixed ]] && n=$sex_epochs
      # model.safetensors is rewritten after every epoch; the manifest says whether
      # the last one is done.
      if grep -qs "$n of $n epochs" "$out/model.json"; then
        echo "== $out: done"
        continue
      fi
      resume=()
      [[ -d "$out/checkpoints" ]] && resume=(--resume)
      echo "== $out ($n epochs) $(date +%T)"
      "$bin" train age "$data" --crops "$crops" --region "$region" --head "$head" \
        --sex "$sex" --input "$(input "$region")" --epochs "$n" \
        --widths "$widths" --hidden "$hidden" \
        --holdout data/labels/holdout-age.txt --out "$out" "${resume[@]}"
    done
  done
done
echo "== all 18 models in $runs $(date +%T)"
