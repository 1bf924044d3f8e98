#!/usr/bin/env bash
# Issue 21: the standard DBD protocols on the CUHK validation split (experiments/cuhk_split.json, subset val,
# 100 images), the shipped DMENet-lite beside the classical peers, one invocation per protocol, run side by side:
#   ddffnet320: image resized to 320x320 before the method, map and GT scored at 320x320 (D-DFFNet / xu100 style:
#               MAE, F_beta at 0.5 with beta^2 = 0.3, IoU pooled at > 0.5 — columns mae, f_at_0.5, iou_pooled)
#   native:     image at its own size, map scored at the GT size (Fmax, MAE, HiFST-protocol PR curve)
# HiFST's published maps (cuhk/hifst_maps, computed at native size) are scored by both protocols too.
# Usage: experiments/eval_cuhk_val.sh OUT [FLIPS]    (FLIPS: DMENet test-time symmetries, default 1 = one pass)
# METHODS="lbp laplacian dmenet" experiments/eval_cuhk_val.sh OUT drops the slow peers (hifst ~1-3 s, zhuo_sim
# ~5-8 s of CPU per image). MODEL=FILE scores that DMENet model file instead of the shipped checkpoint.
set -euo pipefail
OUT=${1:?usage: experiments/eval_cuhk_val.sh OUT [FLIPS]}
FLIPS=${2:-1}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1
read -r -a METHODS <<< "${METHODS:-lbp laplacian dmenet hifst zhuo_sim}"
SET=(--benchmark cuhk_train --data ../shared/data/cuhk --allow-missing-images --split experiments/cuhk_split.json
     --subset val --threads 1 --wandb disabled)
COMMON=("${SET[@]}" --method "${METHODS[@]}" --flips "$FLIPS" ${MODEL:+--model "$MODEL"})
PUBLISHED=("${SET[@]}" --predictions ../shared/data/cuhk/hifst_maps --pattern '{stem}_HiFSTBlurMap.png' --invert)
nice -n 5 "$PY" -m dmenet.evaluate "${COMMON[@]}" --input-size 320 --resolution 320 --out "$OUT/ddffnet320" &
A=$!
nice -n 5 "$PY" -m dmenet.evaluate "${COMMON[@]}" --resolution native --out "$OUT/native" &
B=$!
rc=0
wait "$A" || rc=$?   # a bare `wait` would return 0 whatever the two runs did
wait "$B" || rc=$?
[[ $rc == 0 ]] || { echo "eval_cuhk_val.sh: a protocol run failed (exit $rc)" >&2; exit 1; }
nice -n 5 "$PY" -m dmenet.evaluate "${PUBLISHED[@]}" --resolution 320 --out "$OUT/hifst_published_320"
nice -n 5 "$PY" -m dmenet.evaluate "${PUBLISHED[@]}" --resolution native --out "$OUT/hifst_published_native"
