#!/usr/bin/env bash
# Cross-validation of one bone-age recipe: one run per fold of data/labels/folds
# (every labelled film of raw + extra in exactly one fold), each trained on the other
# four folds and validated on its own, so that `boneage evaluate --cv` can give every
# film an out-of-fold prediction.
#
#   bash scripts/train_cv.sh CROPS_DIR RUNS_DIR [RECIPE]
#
# CROPS_DIR: region crops of the films of both folders (`boneage preprocess
# ../shared/data/rsna/raw/*.png ../shared/data/rsna/extra/*.png --out CROPS_DIR`).
# RUNS_DIR/fold-K/RECIPE/ is fold K's run. Interrupted? Run the same command again:
# finished folds are skipped and the one that was running continues from its last
# checkpoint (--resume).
# RECIPE: lite0-A-reg (default: EfficientNet-Lite0 from ImageNet weights, region A at
# 256×192, regression, mixed sex), lite0-B-reg (the same on region B, the carpals, at
# 192×192: about the crop's own resolution), lite0-C-reg (region C, metacarpals and
# proximal phalanges, at 160×352), lite0-D-reg (region D, the fingers: middle and
# distal phalanges, at 256×416 from crops of an 800×1040 canvas), lite0-[ABCD]-cls (the same with the 240-way
# classification head, whose softmax expectation is the age), lite1-[ABC]-reg/-cls (the
# same on the deeper EfficientNet-Lite1: `python scripts/import_efficientnet.py --variant
# lite1` first), or vgg-A-reg (the paper recipe's VGG for region A).
# INPUT (HxW, e.g. 256x256) replaces the recipe's input size: for crops of a larger
# canvas (`boneage preprocess --canvas 800x1040`; the runs record the canvas and
# `assess` registers onto it), keep their runs in a RUNS_DIR of their own.
# OOF (a folder, e.g. docs/cv/NAME/oof): as soon as a fold is trained, its films'
# out-of-fold predictions are written there, without and with test-time augmentation
# (RECIPE-fold-K.csv, RECIPE-fold-K-tta.csv: `boneage evaluate --holdout` on the
# fold), and a fold whose two files are there is skipped. Kept in the repository, they
# outlive the machine: `boneage evaluate --cv data/labels/folds --predictions F ...`
# pools them (give every fold's file of each recipe, all with or all without --tta).
# INIT (a RUNS_DIR of an earlier cross-validation of the same recipe): each fold starts
# from that fold's trained weights (`--init RUNS/fold-K/RECIPE/model.safetensors`)
# instead of the ImageNet ones, a second schedule on top of the first; LR (default
# 5e-4) is the schedule's first learning rate.
# SEED (default 1) draws the initial head, the batches and the augmentation: another
# seed is another run of the same recipe (keep it in a RUNS_DIR and OOF of its own).
# EPOCHS (default 8) sets the schedule; FOLDS (default "1 2 3 4 5") which folds run;
# BONEAGE the binary; PRETRAINED the ImageNet weights
# (default pretrained/efficientnet-lite0.safetensors, or -lite1 for the lite1 recipes; see
# scripts/import_efficientnet.py).
set -euo pipefail
usage="usage: train_cv.sh CROPS_DIR RUNS_DIR [RECIPE]"
crops=$(realpath "${1:?$usage}")
mkdir -p "${2:?$usage}"
runs=$(realpath "$2")
recipe=${3:-lite0-A-reg}
shared=$(realpath "$(dirname "$0")/../../shared/data/rsna")
bin=${BONEAGE:-boneage}
epochs=${EPOCHS:-8}
cd "$(dirname "$0")/.."
case $recipe in
  lite[01]-[ABCD]-reg|lite[01]-[ABCD]-cls)
    backbone=${recipe:0:5}
    pretrained=${PRETRAINED:-pretrained/efficientnet-$backbone.safetensors}
    region=${recipe:6:1}
    head=regression; [[ $recipe == *-cls ]] && head=classification
    input=(); [[ $region == B ]] && input=(--input 192x192); [[ $region == C ]] && input=(--input 160x352)
    [[ $region == D ]] && input=(--input 256x416)
    [[ -n ${INPUT:-} ]] && input=(--input "$INPUT")
    args=(--region "$region" "${input[@]}" --head "$head" --sex mixed --backbone "$backbone"
          --batch 16 --lr "${LR:-5e-4}" --lr-end 1e-5 --adam-eps 1e-8)
    start=(--pretrained "$pretrained") ;;
  vgg-A-reg)
    args=(--region A --head regression --sex mixed --input 128x96
          --widths 16,32,48,64,80,96 --hidden 128,128)
    start=() ;;
  *) echo "unknown recipe $recipe: lite[01]-[ABC]-reg, lite[01]-[ABC]-cls or vgg-A-reg" >&2; exit 2 ;;
esac

if [[ -n ${INIT:-} && $recipe != lite* ]]; then
  echo "INIT is for the lite recipes" >&2
  exit 2
fi
oof=${OOF:+$(mkdir -p "$OOF" && realpath "$OOF")}
for k in ${FOLDS:-1 2 3 4 5}; do
  out="$runs/fold-$k/$recipe"
  if [[ -n $oof && -s $oof/$recipe-fold-$k.csv && -s $oof/$recipe-fold-$k-tta.csv ]]; then
    echo "== fold $k of $recipe: out-of-fold predictions in $oof"
    continue
  fi
  if grep -qs "$epochs of $epochs epochs" "$out/model.json"; then
    echo "== $out: done"
  else
    resume=()
    [[ -d "$out/checkpoints" ]] && resume=(--resume)
    [[ -n ${INIT:-} ]] && start=(--init "$(realpath "$INIT")/fold-$k/$recipe/model.safetensors")
    echo "== $out ($epochs epochs) $(date +%T)"
    "$bin" train age "$shared/raw" --also "$shared/extra" --crops "$crops" "${args[@]}" \
      "${start[@]}" --epochs "$epochs" --seed "${SEED:-1}" --holdout "data/labels/folds/fold-$k.txt" --out "$out" \
      "${resume[@]}"
  fi
  [[ -n $oof ]] || continue
  # The fold's model alone in a models folder, evaluated on the fold's films.
  models="$runs/fold-$k/.models-$recipe"
  mkdir -p "$models"
  ln -sfn "$out" "$models/$recipe"
  for tta in "" --tta; do
    ev="$runs/fold-$k/.evaluate-$recipe$tta"
    "$bin" evaluate "$shared/raw" --also "$shared/extra" --holdout "data/labels/folds/fold-$k.txt" \
      --models "$models" --crops "$crops" $tta --out "$ev" > "$ev.log"
    name="$oof/$recipe-fold-$k${tta:+-tta}.csv"
    cp "$ev/predictions.csv" "$name.tmp"
    mv "$name.tmp" "$name"
  done
  echo "== fold $k of $recipe: out-of-fold predictions in $oof $(date +%T)"
done
echo "== folds ${FOLDS:-1 2 3 4 5} of $recipe in $runs $(date +%T)"
