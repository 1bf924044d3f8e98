#!/usr/bin/env bash
# Rule g16's three stages for Galetto classifier candidates against the shipped file, on validation data only
# (experiments/galetto_rule_g16.md; rule g17 names this script). Run here, on the CPU, one thread per process:
#   bash experiments/galetto_judge.sh OUT NAME=MODEL [NAME=MODEL ...]
# MODEL is a classifier file without its suffix (e.g. runs/g17/best). Writes under OUT:
#   stage1/            dmenet.evaluate --benchmark syndof on the 24 validation renders (runs/gsyn_val16, rebuilt and
#                      checked byte for byte by experiments/validation_renders.py when missing), the shipped file and
#                      every candidate in one run; stage1.txt: dmenet-paired against the shipped file (Δ label MAE,
#                      95 % interval, 10,000 resamples, seed 0)
#   fit_NAME.*         the detection transform refitted on the 100 training-part CUHK images (rule g9's command)
#   val_NAME/          CUHK validation split (100 images) at native size with that transform     (stage 2)
#   sharp_NAME/        the σ label map's mean blur on the 64 screened sharp BSDS500 val photos  (stage 3)
# The bars are the rule's; this script only measures. No test image is read.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: galetto_judge.sh OUT NAME=MODEL [NAME=MODEL ...]" >&2; exit 2; }
OUT=$1; shift
PY=${PY:-python}
VAL=${VAL:-runs/gsyn_val16}
SHARED=${SHARED:-../shared/data}
export OMP_NUM_THREADS=1
[ -e "$OUT" ] && { echo "$OUT exists: choose another OUT" >&2; exit 2; }
source "${BASH_SOURCE%/*}/arms.sh"
NAMES=()
MODELS=()
for arm in "$@"; do
    arm_split galetto_judge.sh "$arm"
    [ -f "$ARM_MODEL.safetensors" ] || { echo "$ARM_MODEL.safetensors: not found" >&2; exit 2; }
    NAMES+=("$ARM_NAME")
    MODELS+=("$ARM_MODEL")
done
mkdir -p "$OUT"
[ -d "$VAL" ] || $PY experiments/validation_renders.py --out "$VAL"
methods=(galetto)
for model in "${MODELS[@]}"; do methods+=("galetto:model=$model"); done
$PY -m dmenet.evaluate --benchmark syndof --data "$VAL" --method "${methods[@]}" --threads 1 --wandb disabled \
    --out "$OUT/stage1" > "$OUT/stage1.log" 2>&1
cands=()
for model in "${MODELS[@]}"; do   # each method's folder under stage1/, named by the registry's slug
    cands+=("$OUT/stage1/$($PY -c 'import sys; from dmenet.methods.registry import parse_method
print(parse_method(sys.argv[1]).slug)' "galetto:model=$model")")
done
$PY -m dmenet.eval.paired "$OUT/stage1/galetto" "${cands[@]}" --metric mae | tee "$OUT/stage1.txt"
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}; model=${MODELS[$i]}
    $PY -m dmenet.galetto.calibrate --benchmark cuhk_train --data "$SHARED/cuhk" --split experiments/cuhk_split.json \
        --allow-missing-images --subset train --limit 100 --max-scale 1.5 --model "$model" --threads 1 \
        --out "$OUT/fit_$name" > "$OUT/fit_$name.log" 2>&1
    $PY -m dmenet.evaluate --benchmark cuhk_train --data "$SHARED/cuhk" --allow-missing-images \
        --split experiments/cuhk_split.json --subset val --method galetto --model "$OUT/fit_$name" --resolution native \
        --threads 1 --wandb disabled --out "$OUT/val_$name" > "$OUT/val_$name.log" 2>&1
    $PY -m dmenet.evaluate --benchmark sharp --data "$SHARED/photos/bsds500/val" \
        --stems experiments/distill/bsds_sharp_val.txt --method "galetto:blur=label,model=$model" --threads 1 \
        --wandb disabled --out "$OUT/sharp_$name" > "$OUT/sharp_$name.log" 2>&1
    # each log ends with a "wrote FOLDER" line: the figures are on the line before it
    echo "$name: stage 2 $(grep ' on cuhk_train: ' "$OUT/val_$name.log" | tail -n 1 | sed 's/.* on cuhk_train: //');" \
        "stage 3 $(grep ' on sharp: ' "$OUT/sharp_$name.log" | tail -n 1 | sed 's/.* on sharp: //')"
done
