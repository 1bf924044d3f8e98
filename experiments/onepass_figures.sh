#!/usr/bin/env bash
# The figures of experiments/ONEPASS_FILE.md: the one-pass detection file beside the default file, same runs.
# Usage: experiments/onepass_figures.sh ONEPASS_FILE OUT      (about 40 min on one core, most of it the 8-flip runs)
#   OUT/val{8,1}/  CUHK validation split (eval_cuhk_val.sh: D-DFFNet 320² and native) and OUT/val{8,1}/sharp (64
#                  sharp BSDS500 val photos), both files, 8 flips (the recipe) and 1 flip (predict's default)
#   OUT/test8/     CUHK 5 test images, the first 20 screened sharp BSDS500 test photos, the three demo photos
# VAL_FLIPS (default "8 1") and TEST_FLIPS (default 8) choose the flips; the folders are named after them.
set -euo pipefail
refuse() { echo "onepass_figures.sh: $1" >&2; exit 2; }
[[ $# == 2 ]] || refuse "usage: experiments/onepass_figures.sh ONEPASS_FILE OUT"
F=$1 OUT=$2
[[ -f $F ]] || refuse "$F: not found"
[[ ! -e $OUT ]] || refuse "$OUT exists: give a new folder (nothing is overwritten)"
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1
BOTH=(--method dmenet "dmenet:model=$F" --threads 1 --wandb disabled)
BSDS=../shared/data/photos/bsds500
for FLIPS in ${VAL_FLIPS:-8 1}; do
  METHODS="dmenet dmenet:model=$F" experiments/eval_cuhk_val.sh "$OUT/val$FLIPS" "$FLIPS"
  "$PY" -m dmenet.evaluate --benchmark sharp --data "$BSDS/val" --stems experiments/distill/bsds_sharp_val.txt \
      "${BOTH[@]}" --flips "$FLIPS" --out "$OUT/val$FLIPS/sharp"
done
T=${TEST_FLIPS:-8}
"$PY" -m dmenet.evaluate --benchmark cuhk --data ../shared/data/cuhk --allow-missing-images "${BOTH[@]}" --flips "$T" \
    --out "$OUT/test$T/cuhk"
"$PY" -m dmenet.evaluate --benchmark sharp --data "$BSDS/test" --stems experiments/distill/bsds_sharp_test.txt \
    --limit 20 "${BOTH[@]}" --flips "$T" --out "$OUT/test$T/sharp20"
DEMO="$OUT/demo_photos"
mkdir -p "$DEMO"
"$PY" -c 'import sys; from dmenet.demo import write_builtin_photos; write_builtin_photos(sys.argv[1])' "$DEMO"
"$PY" -m dmenet.evaluate --benchmark sharp --data "$DEMO" "${BOTH[@]}" --flips "$T" --out "$OUT/test$T/demo"
