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
# Bad arguments: exit 2 and one line, before any work. Ctrl-C (or SIGTERM): the runs are stopped (each removes its
# unfinished report), exit 130 (143).
set -euo pipefail
refuse() { echo "eval_cuhk_val.sh: $1" >&2; exit 2; }
USAGE="usage: experiments/eval_cuhk_val.sh OUT [FLIPS]"
[[ $# == 1 || $# == 2 ]] || refuse "$USAGE"
OUT=$1 FLIPS=${2:-1}
[[ $OUT != -* ]] || refuse "$USAGE (OUT: a new folder, got $OUT)"
[[ $FLIPS =~ ^[1248]$ ]] || refuse "FLIPS must be 1, 2, 4 or 8, got $FLIPS"
[[ ! -e $OUT ]] || refuse "$OUT exists: give a new folder (nothing is overwritten)"
[[ -z ${MODEL:-} || -f $MODEL ]] || refuse "MODEL=$MODEL: not found"
PY=${PYTHON:-python}
PIDS=()
# set before any child starts: a SIGINT sent to this script alone while a foreground child runs (the METHODS check)
# is acted on when that child ends; without the trap bash would go on as if the child had handled it
stop() {  # background runs ignore the terminal's SIGINT in a script: stop them here
  trap - INT TERM
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait || true
  rmdir "$OUT" 2>/dev/null || true  # nothing finished: no empty folder left
  echo "eval_cuhk_val.sh: interrupted (protocols that finished, if any, are in $OUT)" >&2
  exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM
export OMP_NUM_THREADS=1
read -r -a METHODS <<< "${METHODS:-lbp laplacian dmenet hifst zhuo_sim}"
"$PY" - "${METHODS[@]}" <<'CHECK' || exit 2
import sys
from dmenet.methods.registry import parse_method
try:
    [parse_method(m) for m in sys.argv[1:]] or parse_method("")
except ValueError as exc:
    sys.exit(f"eval_cuhk_val.sh: METHODS: {exc}")
CHECK
SET=(--benchmark cuhk_train --data ../shared/data/cuhk --allow-missing-images --split experiments/cuhk_split.json
     --subset val --threads 1 --wandb disabled)
COMMON=("${SET[@]}" --method "${METHODS[@]}" --flips "$FLIPS" ${MODEL:+--model "$MODEL"})
PUBLISHED=("${SET[@]}" --predictions ../shared/data/cuhk/hifst_maps --pattern '{stem}_HiFSTBlurMap.png' --invert)
run() { nice -n 5 "$PY" -m dmenet.evaluate "$@" & PIDS+=($!); }
finish() {  # a bare `wait` would return 0 whatever the runs did
  local rc=0 pid
  for pid in "${PIDS[@]}"; do wait "$pid" || rc=$?; done
  PIDS=()
  [[ $rc == 0 ]] || { echo "eval_cuhk_val.sh: a protocol run failed (exit $rc)" >&2; exit 1; }
}
run "${COMMON[@]}" --input-size 320 --resolution 320 --out "$OUT/ddffnet320"
run "${COMMON[@]}" --resolution native --out "$OUT/native"
finish
run "${PUBLISHED[@]}" --resolution 320 --out "$OUT/hifst_published_320"
finish
run "${PUBLISHED[@]}" --resolution native --out "$OUT/hifst_published_native"
finish
