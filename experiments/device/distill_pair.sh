#!/bin/bash
# Issue 20's faithful pair on a lent GPU, in one call: the released teacher (SE-ResNeXt101, teacher_faithful.yaml)
# and then the released student (EfficientNet-B3 U-Net, student_faithful.yaml) distilled from it, both from
# scratch, ending before a deadline. Write the rule that judges them before the call.
#   python experiments/device/pack_distill.py --quality 85      # here, once: .dev/distill (22 MiB)
#   bash experiments/device/wheels.sh                            # here, once: .whl (kornia, 6.9 MiB)
#   run: DEV=cuda BUDGET=540 bash experiments/device/distill_pair.sh     carry [".dev/distill", ".whl"], timeout_s 600
# The tree (33.4 MiB on 4 Dec), .whl and .dev/distill must stay under the call's 64 MiB.
# Steps: kornia installed from .whl; a PROBE-step run of each network measures its seconds per step; the teacher
# gets TEACHER_SHARE of the time left, the student the rest (step counts multiples of CKPT, the validation
# interval); a run still going at its deadline is stopped and its checkpoints stand. The teacher checkpoint chosen
# by experiments/distill/SELECTION.md (python -m dmenet.distill.select: validation Fmax on 60 CUHK validation
# images at 320², scored at the packed mask size, among checkpoints with sharp-val ≤ 0.2) teaches the student. Both best checkpoints are then calibrated on the validation images (dmenet.distill.calibrate) and
# scored on the 5 CUHK images of .dev/distill/cuhk5 at native size (dmenet.evaluate --benchmark cuhk), when packed.
# $OUT gets each run's val.jsonl and metrics.jsonl, both config.yaml in configs.yaml, the evaluations' metrics and the
# CUDA-only tests' output (8 files, the most that come back); no model file (the teacher's 80 M parameters cannot
# come back; figures are measured there).
# Dry run on a CPU, two steps each at small crops (2 min 10 s here, 2 threads; DATA=a packed folder, PY=.venv/bin/python):
#   DEV=cpu BUDGET=600 PROBE=2 CKPT=2 MIN_STEPS=2 MAX_STEPS=2 EXTRA="data.crop=64 data.batch=2 \
#       data.sharp_per_batch=1 data.val_side=64" bash experiments/device/distill_pair.sh
# (on a loaded machine the teacher's probe outran its 300 s: PROBE_SECS=600 and two validation stems, README.md)
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
DEV=${DEV:-cuda}
BUDGET=${BUDGET:-540}
PROBE=${PROBE:-20}
CKPT=${CKPT:-200}
MIN_STEPS=${MIN_STEPS:-$CKPT}
MAX_STEPS=${MAX_STEPS:-100000}
TEACHER_SHARE=${TEACHER_SHARE:-0.55}
DATA=${DATA:-.dev/distill}
RUNS=${RUNS:-runs/dpair}
OUT=${OUT:-runs/dpair_out}
EXTRA=${EXTRA:-}
THREADS=${THREADS:-$(nproc)}
PROBE_SECS=${PROBE_SECS:-300}   # each probe's limit (a loaded CPU dry run may need more)
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
[ -f "$DATA/MANIFEST.json" ] || { echo "no $DATA/MANIFEST.json: run experiments/device/pack_distill.py" >&2; exit 2; }
[ -e "$RUNS" ] && { echo "$RUNS exists: choose another RUNS" >&2; exit 2; }
mkdir -p "$OUT" "$RUNS"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
source "$(dirname "$0")/common.sh"
install_wheels
$PY -c "import kornia" || { echo "kornia is missing: carry .whl (experiments/device/wheels.sh)" >&2; exit 3; }
cuda_tests "$OUT/pytest_cuda.txt"   # beside the probes; the output comes back in $OUT
PATHS="data.images=$DATA/cuhk/train_image data.masks=$DATA/cuhk/gt data.sharp_images=$DATA/bsds500/train \
data.sharp_val_images=$DATA/bsds500/val"
COMMON="train.device=$DEV train.threads=$THREADS train.wandb=disabled $PATHS $EXTRA"

train() {  # NAME CONFIG STEPS SECONDS [KEY=VALUE ...]: a run of STEPS steps, stopped after SECONDS
    local name=$1 config=$2 steps=$3 secs=$4; shift 4
    echo "== $name: $steps steps, at most $secs s, from $(elapsed) s"
    timeout --signal=TERM "$secs" $PY -m dmenet.distill.train --config "$config" --out "$RUNS/$name" --set $COMMON \
        train.steps="$steps" train.ckpt_every="$CKPT" "$@" 2>&1 | tail -n 25
    return "${PIPESTATUS[0]}"   # the trainer's status (124: stopped at SECONDS), not tail's
}
per_step() {  # RUN: seconds per step between its first and last logged rows (metrics.jsonl)
    $PY - "$1/metrics.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"sec"' in l]
a, b = rows[1] if len(rows) > 2 else rows[0], rows[-1]
print(max((b["sec"] - a["sec"]) / max(b["step"] - a["step"], 1), 1e-3))
PYEOF
}
steps_for() {  # SECONDS SEC_PER_STEP: a multiple of CKPT within [MIN_STEPS, MAX_STEPS] that fits (15 % margin)
    $PY -c "import sys; s, p, c = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); \
n = int(0.85 * s / p) // c * c; print(min(max(n, int(sys.argv[4])), int(sys.argv[5])))" "$1" "$2" "$CKPT" \
        "$MIN_STEPS" "$MAX_STEPS"
}
# probes: seconds per step of each network (the student's with a live teacher of the same size, as it will run)
train probe_teacher experiments/distill/teacher_faithful.yaml "$PROBE" "$PROBE_SECS" train.log_every=1 \
    train.ckpt_every="$PROBE" || { echo "the teacher's probe failed (rc $?): stopping" >&2; exit 4; }
T_STEP=$(per_step "$RUNS/probe_teacher")
train probe_student experiments/distill/student_faithful.yaml "$PROBE" "$PROBE_SECS" train.log_every=1 \
    train.ckpt_every="$PROBE" train.teacher_model="$RUNS/probe_teacher/ckpt/step_$(printf %06d $((PROBE - 1)))/model" \
    || { echo "the student's probe failed (rc $?): stopping" >&2; exit 4; }
S_STEP=$(per_step "$RUNS/probe_student")
LEFT=$(( BUDGET - $(elapsed) - 60 ))   # 60 s for calibration and scoring
T_SECS=$($PY -c "print(int($LEFT * $TEACHER_SHARE))")
T_STEPS=$(steps_for "$T_SECS" "$T_STEP")
echo "probe: teacher $T_STEP s/step, student $S_STEP s/step; $LEFT s left at $(elapsed) s"
train teacher experiments/distill/teacher_faithful.yaml "$T_STEPS" "$T_SECS" train.log_every=20
TEACHER=$($PY -m dmenet.distill.select "$RUNS/teacher") || exit 5   # experiments/distill/SELECTION.md
S_SECS=$(( BUDGET - $(elapsed) - 60 ))
S_STEPS=$(steps_for "$S_SECS" "$S_STEP")
train student experiments/distill/student_faithful.yaml "$S_STEPS" "$S_SECS" train.log_every=20 \
    train.teacher_model="$TEACHER/model"
STUDENT=$($PY -m dmenet.distill.select "$RUNS/student") || exit 5
echo "== chosen: teacher $TEACHER, student $STUDENT at $(elapsed) s"
for kind in teacher student; do
    src=$([ $kind = teacher ] && echo "$TEACHER" || echo "$STUDENT")
    $PY -m dmenet.distill.calibrate --model "$src/model" --config experiments/distill/${kind}_faithful.yaml \
        --set $PATHS $EXTRA --threads "$THREADS" --device "$DEV" --out "$RUNS/${kind}_cal/model" | tail -n 2
    if [ -d "$DATA/cuhk5" ]; then
        $PY -m dmenet.evaluate --benchmark cuhk --data "$DATA/cuhk5" --method distill_$kind \
            --model "$RUNS/${kind}_cal/model.safetensors" --device "$DEV" --wandb disabled \
            --out "$RUNS/eval_$kind" 2>&1 | tail -n 4
        cp "$RUNS/eval_$kind/metrics.json" "$OUT/eval_${kind}_cuhk5.json"
    fi
    for f in val.jsonl metrics.jsonl; do cp "$RUNS/$kind/$f" "$OUT/${kind}_$f"; done
done
# both configs in one file (two YAML documents): 8 files in $OUT, the most that come back
{ echo "# teacher: $RUNS/teacher/config.yaml"; cat "$RUNS/teacher/config.yaml"; echo "---"
  echo "# student: $RUNS/student/config.yaml"; cat "$RUNS/student/config.yaml"; } > "$OUT/configs.yaml"
echo "done at $(elapsed) s of $BUDGET"
