#!/usr/bin/env bash
# Rule 21r's "measured after the verdict, whatever it is" (experiments/RULE_21R.md): test figures of the reference
# and of each candidate, side by side in one run per protocol, 8 flips, one torch thread per process, two processes
# at a time. Test data only, never used to choose: run it after experiments/judge_21r.sh has given its verdict.
# Usage: experiments/after_21r.sh OUT NAME=MODEL [NAME=MODEL ...]
#   e.g. experiments/after_21r.sh runs/r21/after H8=runs/r21/h8.safetensors R1=runs/r21/tail1/candidate.safetensors \
#            R2=runs/r21/tail2/candidate.safetensors
#   (H8: a copy of the shipped file as it was before any replacement, with its .json.) DATA=runs/lite_data (its
#   synthetic_test/), PYTHON=python. Writes under OUT, each with its log, then prints every summary table:
#   xu100/ dut/ cuhk5/   detection, the 3 + 3 shared xu100 and DUT images (clean only for a model whose labelled
#                        training did not read them) and the 5 shared CUHK test images
#   syndof/ rtf/         σ: the 60 synthetic test renders; RTF image 01; rtf_scale_NAME.txt: RTF at ×0.5 / ×1 / ×2
#                        brought back to ×1, and re-blurred by 1 and 2 px (benchmarks/scale_consistency.py)
#   focal/               the four focal stacks (agreement with a focus measure)
#   sharp_test20/ sharp_demo/   mean blur probability on the first 20 screened sharp BSDS500 test photos and on the
#                        demo's three photos (astronaut, coffee, chelsea, written to OUT/demo_photos as PNG)
# OUT/arms.txt records each NAME with its file's sha256; a rerun on the same OUT with the same arms keeps every
# finished measurement (OUT/NAME.done) and redoes the others (so a stopped run resumes); other arms, or a folder
# without arms.txt, are refused, as is a second copy on the same OUT. Ctrl-C (or SIGTERM) stops both lanes and the
# measurement running in each (a script's background jobs ignore the terminal's SIGINT), exit 130 (143).
set -euo pipefail
PIDS=()  # the two lanes
stop() {  # set before any child starts (a SIGINT while a foreground child runs is acted on when it ends)
  trap - INT TERM
  local lanes
  lanes=$(IFS=,; echo "${PIDS[*]}")
  [[ -z $lanes ]] || pkill -TERM -P "$lanes" 2>/dev/null || true  # the measurement in progress in each lane
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait || true
  echo "after_21r.sh: interrupted (finished measurements are kept in ${OUT:-OUT}: the same command resumes)" >&2
  exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM
if [[ $# -lt 2 ]]; then echo "usage: experiments/after_21r.sh OUT NAME=MODEL [NAME=MODEL ...]" >&2; exit 2; fi
OUT=$1
shift
D=${DATA:-runs/lite_data}
PY=${PYTHON:-python}
S=../shared/data
[[ -e $OUT && ! -f $OUT/arms.txt ]] && {
  echo "after_21r.sh: $OUT exists and is not a run of this script (choose a new folder)" >&2; exit 2; }
[[ -d $D/synthetic_test ]] || { echo "after_21r.sh: $D/synthetic_test not found (experiments/build_training_set.py)" >&2
                                exit 2; }
source "${BASH_SOURCE%/*}/arms.sh"
NAMES=()
MODELS=()
arms_read after_21r.sh "" "$@"
METHODS=("${MODELS[@]/#/dmenet:model=}")
ARMS=$(for i in "${!NAMES[@]}"; do echo "${NAMES[$i]}=$(sha256sum < "${MODELS[$i]}" | cut -d' ' -f1)"; done)
if [[ -e $OUT && $(< "$OUT/arms.txt") != "$ARMS" ]]; then
  echo "after_21r.sh: $OUT holds the figures of other models (its arms.txt; choose a new folder)" >&2
  exit 2
fi
mkdir -p "$OUT/demo_photos"
exec 9> "$OUT/.lock"
flock -n 9 || { echo "after_21r.sh: $OUT is in use by another run of this script" >&2; exit 2; }
[[ -f $OUT/arms.txt ]] || echo "$ARMS" > "$OUT/arms.txt"
export OMP_NUM_THREADS=1
"$PY" -c 'import sys; from dmenet.demo import write_builtin_photos; write_builtin_photos(sys.argv[1])' \
    "$OUT/demo_photos"

EVAL=(-m dmenet.evaluate --method "${METHODS[@]}" --flips 8 --threads 1 --wandb disabled)
run() {  # NAME ARGS...: one protocol, its output in OUT/NAME and its log in OUT/NAME.log; kept once OUT/NAME.done
  local name=$1
  shift
  [[ -f $OUT/$name.done ]] && return 0
  rm -rf "${OUT:?}/$name"  # a stopped run's partial output
  "$PY" "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  touch "$OUT/$name.done"
}
(
  run xu100 "${EVAL[@]}" --benchmark xu100 --data "$S/xu100"
  run dut "${EVAL[@]}" --benchmark dut --data "$S/dut"
  run cuhk5 "${EVAL[@]}" --benchmark cuhk --data "$S/cuhk" --allow-missing-images
  run rtf "${EVAL[@]}" --benchmark rtf --data "$S/rtf"
  run sharp_demo "${EVAL[@]}" --benchmark sharp --data "$OUT/demo_photos"
  run sharp_test20 "${EVAL[@]}" --benchmark sharp --data "$S/photos/bsds500/test" \
    --stems experiments/distill/bsds_sharp_test.txt --limit 20
  for i in "${!NAMES[@]}"; do
    [[ -f $OUT/rtf_scale_${NAMES[$i]}.done ]] && continue
    "$PY" benchmarks/scale_consistency.py --method "${METHODS[$i]}" --flips 8 --reblur 1 2 --threads 1 \
      > "$OUT/rtf_scale_${NAMES[$i]}.txt" 2>&1
    touch "$OUT/rtf_scale_${NAMES[$i]}.done"
  done
) &
A=$!
PIDS+=("$A")
(
  run syndof "${EVAL[@]}" --benchmark syndof --data "$D/synthetic_test"
  F=$S/photos/real_dof
  run focal -m dmenet.eval.focal_stack --stack "$F/pcb_focal_stack/stack_a" "$F/pcb_focal_stack/stack_b" \
    "$F/hifst_focal_stacks/A*.jpg" "$F/hifst_focal_stacks/F*.png" --method "${METHODS[@]}" --flips 8 --threads 1
) &
B=$!
PIDS+=("$B")
rc=0
wait "$A" || rc=$?
wait "$B" || rc=$?
[[ $rc == 0 ]] || { echo "after_21r.sh: a measurement failed (exit $rc): see the logs in $OUT" >&2; exit 1; }
for i in "${!NAMES[@]}"; do echo "${NAMES[$i]} = ${METHODS[$i]}"; done
for name in xu100 dut cuhk5 syndof rtf focal sharp_test20 sharp_demo; do
  echo "## $name"
  if [[ -f $OUT/$name/summary.md ]]; then cat "$OUT/$name/summary.md"; else cat "$OUT/$name/metrics.json"; fi
done
for name in "${NAMES[@]}"; do
  echo "## RTF scale, $name"
  cat "$OUT/rtf_scale_$name.txt"
done
