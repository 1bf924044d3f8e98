#!/usr/bin/env bash
# Issue 21 (and 19): retrain DMENet-lite from ImageNet on clean data, with the shipped model's stages, judged by rule
# experiments/RULE_21R.md. S's labelled set is labelled_neg/ (the 499 CUHK training images of the split + 127
# sharp-everywhere BSDS500 train photos); xu100/ and dut/ are not read, so they become a clean test. D's real domain
# is real/ (real_dof, BSDS500 train + val, the same CUHK photos).
#
# Usage: experiments/retrain_21.sh TAIL [OUT]      TAIL = model.tail_scale (1 = as shipped, 2 = half-res tail)
#   DATA=runs/lite_data (from experiments/build_training_set.py), PYTHON=python, OUT default runs/r21/tailTAIL.
#   A dry run (minutes; not the recipe): STEPS="16 16 16 16" CKPT=4 FLIPS=1 CROPS=8 experiments/retrain_21.sh 1 OUT
# Long (about 26,000 steps, 5–6 h on one core): run one TAIL per core, one torch thread each. Every step is skipped
# when its output exists, and an interrupted training stage continues from its last checkpoint (--resume), so the
# script is simply started again after a stop. Stages (docs/history.md §11, without stage 4, the control run):
#   s1  joint from ImageNet, synthetic/ (v1), 128² crops, batches 4+2+2, lr 2e-4, 4,800 steps
#   s2  from s1, synthetic_v2/, downscale s ~ U[0.5, 1], lr 1e-4, 8,000 steps; average of the last 8 checkpoints
#   s3  from s2's average, synthetic_v3/, downscale U[0.35, 1] with p 0.75, lr 5e-5, 7,500 steps; average of the
#       last 8; then the uniform average of s2's and s3's averages (the "soup")
#   s5  from the soup, as s3 plus re-blur (p 0.5, g ≤ 2 px), 6,000 steps; average of the last 8
#   then: σ-path BatchNorm moving statistics on synthetic_v3 crops, σ curve (8 flips), detection head (8 flips).
# Writes OUT/candidate.safetensors (+ .json); nothing in the repository's tracked tree.
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 ]]; then echo "usage: experiments/retrain_21.sh TAIL [OUT]   (TAIL 1 or 2)" >&2; exit 2; fi
TAIL=$1
[[ $TAIL == 1 || $TAIL == 2 ]] || { echo "retrain_21.sh: TAIL must be 1 or 2, got '$TAIL'" >&2; exit 2; }
OUT=${2:-runs/r21/tail$TAIL}
D=${DATA:-runs/lite_data}
PY=${PYTHON:-python}
read -r -a STEPS <<< "${STEPS:-4800 8000 7500 6000}"   # s1 s2 s3 s5
FLIPS=${FLIPS:-8}
CROPS=${CROPS:-256}
CKPT=(${CKPT:+train.ckpt_every=$CKPT})                # the recipe: s1 every 200, later stages every 250
export OMP_NUM_THREADS=1
# splits.json is the builder's last write: without it the folders may be half built (real/ is filled last)
for need in synthetic synthetic_v2 synthetic_v3 real labelled_neg calib_bsds calib_bsds_half calib_bsds_reblur \
            splits.json; do
  [[ -e $D/$need ]] || { echo "retrain_21.sh: $D/$need not found (build it: python experiments/build_training_set.py" \
    "--out $D)" >&2; exit 2; }
done
mkdir -p "$OUT"
exec 9> "$OUT/.lock"  # held by this script and the trainers it starts: a second copy on OUT refuses
flock -n 9 || { echo "retrain_21.sh: $OUT is in use by another run of this script" >&2; exit 2; }
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$OUT/progress.log"; }

COMMON=(--real "$D/real" --labelled "$D/labelled_neg" --gt-polarity white-blurred --threads 1 --wandb offline)
FINETUNE=(--config experiments/dmenet_lite_finetune.yaml)

train() {  # NAME INIT(- = ImageNet) TRAIN-ARGS...: one stage; resumes an interrupted one
  local name=$1 init=$2 run=$OUT/$1
  shift 2
  if [[ -f $run/.done ]]; then return 0; fi
  if [[ -d $run/checkpoints ]] && [[ -n $(ls -A "$run/checkpoints") ]]; then
    log "$name: resuming"
    "$PY" -m dmenet.train --out "$run" --resume --threads 1 --wandb offline >> "$run.log" 2>&1
  else
    local from=()
    if [[ $init != - ]]; then from=(--init-from "$init"); fi
    log "$name: starting"
    "$PY" -m dmenet.train "$@" "${COMMON[@]}" "${from[@]}" --out "$run" > "$run.log" 2>&1
  fi
  touch "$run/.done"
  log "$name: done"
}

step() {  # OUTPUT COMMAND...: run a post-training step unless OUTPUT exists
  local out=$1
  shift
  if [[ -f $out ]]; then return 0; fi
  log "$(basename "$out"): $*"
  "$@" > "${out%.safetensors}.log" 2>&1
}

average() {  # NAME SOURCE...: OUT/NAME.safetensors, the uniform weight average of SOURCE (--run … / --models …)
  step "$OUT/$1.safetensors" "$PY" -m dmenet.calibrate average "${@:2}" --out "$OUT/$1.safetensors"
}

STAGE1=(--config experiments/dmenet_lite.yaml --stage joint --synthetic "$D/synthetic" --steps "${STEPS[0]}"
        --set model.calib_width=0.25 data.crop=128 train.batch_labelled=2 train.batch_unlabelled=2 optim.lr=2e-4
        train.ckpt_every=200 train.log_every=25 model.tail_scale="$TAIL" "${CKPT[@]}")
train s1 - "${STAGE1[@]}"

train s2 "$OUT/s1/model_last.safetensors" "${FINETUNE[@]}" --synthetic "$D/synthetic_v2" --steps "${STEPS[1]}" \
  --set train.keep_last=8 model.tail_scale="$TAIL" "${CKPT[@]}"
average s2_avg --run "$OUT/s2" --last 8

LATE=(optim.lr=5e-5 optim.lr_d=5e-5 data.scale_min=0.35 data.scale_p=0.75 train.keep_last=8 model.tail_scale="$TAIL"
      "${CKPT[@]}")
train s3 "$OUT/s2_avg.safetensors" "${FINETUNE[@]}" --synthetic "$D/synthetic_v3" --steps "${STEPS[2]}" \
  --set "${LATE[@]}"
average s3_avg --run "$OUT/s3" --last 8
average soup --models "$OUT/s2_avg.safetensors" "$OUT/s3_avg.safetensors"

train s5 "$OUT/soup.safetensors" "${FINETUNE[@]}" --synthetic "$D/synthetic_v3" --steps "${STEPS[3]}" \
  --set "${LATE[@]}" data.reblur_p=0.5 data.reblur_max=2.0
average s5_avg --run "$OUT/s5" --last 8

step "$OUT/bn.safetensors" "$PY" -m dmenet.calibrate bn --model "$OUT/s5_avg.safetensors" --mode moving \
  --synthetic "$D/synthetic_v3" --crops "$CROPS" --crop 128 --batch 4 --seed 0 --threads 1 --out "$OUT/bn.safetensors"
step "$OUT/sigma.safetensors" "$PY" -m dmenet.calibrate sigma --model "$OUT/bn.safetensors" --data "$D/calib_bsds" \
  "$D/calib_bsds_half" "$D/calib_bsds_reblur" --flips "$FLIPS" --threads 1 --out "$OUT/sigma.safetensors"
step "$OUT/candidate.safetensors" "$PY" -m dmenet.calibrate head --model "$OUT/sigma.safetensors" \
  --labelled "$D/labelled_neg" --gt-polarity white-blurred --flips "$FLIPS" --threads 1 --out "$OUT/candidate.safetensors"
log "candidate: $OUT/candidate.safetensors"
