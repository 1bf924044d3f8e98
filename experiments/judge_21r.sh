#!/usr/bin/env bash
# Rule 21r's verdict (experiments/RULE_21R.md): the shipped model (H8) and each candidate, scored on the rule's three
# validation sets at 8 flips, one evaluate run per model and protocol, then the rule's four conditions per candidate
# and the choice between candidates.
# Usage: experiments/judge_21r.sh OUT [NAME=MODEL ...]
#   e.g. experiments/judge_21r.sh runs/r21/judge R1=runs/r21/tail1/candidate.safetensors \
#            R2=runs/r21/tail2/candidate.safetensors
# Each model's figures go to OUT/NAME; OUT/NAME/model.sha256 (the model file's hash) marks them complete. A rerun
# with the same OUT keeps complete figures of the same file (so H8 can be scored first: `judge_21r.sh OUT` alone
# scores only H8), redoes a folder that has no mark (an interrupted run), and refuses a name whose mark names another
# file. A second copy on the same OUT refuses. The verdict needs at least one candidate.
# DATA=runs/lite_data (val_bsds/ from experiments/build_training_set.py), PYTHON=python. About 1 h per model on one
# core (the CUHK split twice, native and 320², with two passes of B at 8 flips).
set -euo pipefail
if [[ $# -lt 1 ]]; then echo "usage: experiments/judge_21r.sh OUT [NAME=MODEL ...]" >&2; exit 2; fi
OUT=$1
shift
D=${DATA:-runs/lite_data}
PY=${PYTHON:-python}
[[ -e $OUT && ! -d $OUT ]] && { echo "judge_21r.sh: $OUT exists and is not a folder" >&2; exit 2; }
[[ -d $D/val_bsds ]] || { echo "judge_21r.sh: $D/val_bsds not found (experiments/build_training_set.py)" >&2; exit 2; }
NAMES=(H8)
MODELS=(checkpoints/dmenet_lite.safetensors)
source "${BASH_SOURCE%/*}/arms.sh"
arms_read judge_21r.sh H8 "$@"
mkdir -p "$OUT"
exec 9> "$OUT/.lock"  # two copies on one OUT would score the same model into the same folder
flock -n 9 || { echo "judge_21r.sh: $OUT is in use by another run of this script" >&2; exit 2; }
HASHES=()
for i in "${!NAMES[@]}"; do  # every refusal before any work
  HASHES+=("$(sha256sum < "${MODELS[$i]}" | cut -d' ' -f1)")
  mark=$OUT/${NAMES[$i]}/model.sha256
  if [[ -f $mark && $(< "$mark") != "${HASHES[$i]}" ]]; then
    echo "judge_21r.sh: $OUT/${NAMES[$i]} holds the figures of another model file (choose a new OUT or name)" >&2
    exit 2
  fi
done
export OMP_NUM_THREADS=1
COMMON=(--method dmenet --flips 8 --threads 1 --wandb disabled)
for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]} model=${MODELS[$i]}
  if [[ -f $OUT/$name/model.sha256 ]]; then echo "judge_21r.sh: $name: scored before, kept"; continue; fi
  rm -rf "${OUT:?}/$name"  # an interrupted run's partial figures
  mkdir -p "$OUT/$name"
  METHODS=dmenet MODEL=$model PYTHON=$PY experiments/eval_cuhk_val.sh "$OUT/$name/cuhk" 8 > "$OUT/$name/cuhk.log" 2>&1
  "$PY" -m dmenet.evaluate --benchmark sharp --data ../shared/data/photos/bsds500/val \
    --stems experiments/distill/bsds_sharp_val.txt "${COMMON[@]}" --model "$model" --out "$OUT/$name/sharp" \
    > "$OUT/$name/sharp.log" 2>&1
  "$PY" -m dmenet.evaluate --benchmark syndof --data "$D/val_bsds" "${COMMON[@]}" --model "$model" \
    --out "$OUT/$name/syn" > "$OUT/$name/syn.log" 2>&1
  echo "${HASHES[$i]}" > "$OUT/$name/model.sha256.part" && mv "$OUT/$name/model.sha256.part" "$OUT/$name/model.sha256"
  echo "judge_21r.sh: $name scored"
done
if [[ ${#NAMES[@]} -lt 2 ]]; then echo "judge_21r.sh: H8 scored; the verdict needs a candidate"; exit 0; fi
"$PY" experiments/judge_21r.py "$OUT" "${NAMES[@]}"
