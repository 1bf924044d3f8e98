#!/usr/bin/env bash
# Rule 21r's verdict (experiments/RULE_21R.md): the shipped model (H8) and each candidate, scored on the rule's three
# validation sets at 8 flips, one evaluate run per model and protocol, then the rule's four conditions per candidate
# and the choice between candidates.
# Usage: experiments/judge_21r.sh OUT NAME=MODEL [NAME=MODEL ...]
#   e.g. experiments/judge_21r.sh runs/r21/judge R1=runs/r21/tail1/candidate.safetensors \
#            R2=runs/r21/tail2/candidate.safetensors
# DATA=runs/lite_data (val_bsds/ from experiments/build_training_set.py), PYTHON=python. About 1 h per model on one
# core (the CUHK split twice, native and 320², with two passes of B at 8 flips).
set -euo pipefail
if [[ $# -lt 2 ]]; then echo "usage: experiments/judge_21r.sh OUT NAME=MODEL [NAME=MODEL ...]" >&2; exit 2; fi
OUT=$1
shift
D=${DATA:-runs/lite_data}
PY=${PYTHON:-python}
[[ -e $OUT ]] && { echo "judge_21r.sh: $OUT exists (choose a new folder)" >&2; exit 2; }
[[ -d $D/val_bsds ]] || { echo "judge_21r.sh: $D/val_bsds not found (experiments/build_training_set.py)" >&2; exit 2; }
NAMES=(H8)
MODELS=(checkpoints/dmenet_lite.safetensors)
source "${BASH_SOURCE%/*}/arms.sh"
arms_read judge_21r.sh H8 "$@"
export OMP_NUM_THREADS=1
COMMON=(--method dmenet --flips 8 --threads 1 --wandb disabled)
for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]} model=${MODELS[$i]}
  mkdir -p "$OUT/$name"
  METHODS=dmenet MODEL=$model PYTHON=$PY experiments/eval_cuhk_val.sh "$OUT/$name/cuhk" 8 > "$OUT/$name/cuhk.log" 2>&1
  "$PY" -m dmenet.evaluate --benchmark sharp --data ../shared/data/photos/bsds500/val \
    --stems experiments/distill/bsds_sharp_val.txt "${COMMON[@]}" --model "$model" --out "$OUT/$name/sharp" \
    > "$OUT/$name/sharp.log" 2>&1
  "$PY" -m dmenet.evaluate --benchmark syndof --data "$D/val_bsds" "${COMMON[@]}" --model "$model" \
    --out "$OUT/$name/syn" > "$OUT/$name/syn.log" 2>&1
done
"$PY" experiments/judge_21r.py "$OUT" "${NAMES[@]}"
