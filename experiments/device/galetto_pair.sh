#!/bin/bash
# Two Galetto classifier runs side by side on a lent GPU (or one alone), ending before a deadline (rules g13, g14).
#   DEV=cuda BUDGET=SECONDS bash experiments/device/galetto_pair.sh NAME_A "KEY=VALUE ..." [NAME_B "KEY=VALUE ..."]
# Rebuilds the patches from the BSDS500 photos at $PHOTOS (unless $PATCHES holds them) and prints their SHA-256
# against this project's; probes both runs' speed ($PROBE steps each); sets one step count N for both (a multiple of
# $CKPT, the validation interval) so that both end before $BUDGET seconds; a run still going then is stopped and its
# best checkpoint stands. Both runs: experiments/galetto_paper.yaml, the ImageNet start ($IMAGENET), W&B off, plus
# each arm's own --set values. Copies each run's best classifier and curve to $OUT (3 files a run), and the CUDA-only
# tests' output (pytest_cuda.txt) when they ran: at most 7 files, under the 8 that come back.
# One run alone has the GPU to itself: e.g. the paper's 100 epochs at batch 1024 (18.5 M samples; ≈ 10 minutes at
# the 30,000 patches/s that g14a ran at while sharing the GPU):
#   DEV=cuda BUDGET=560 CKPT=1000 bash experiments/device/galetto_pair.sh g17 "train.lr_min=1e-5 train.batch=1024 \
#       train.lr=2e-3"
# The two commands of 4 Dec 2026 (the BSDS500 photos and the ImageNet file carried in an ignored .dev/):
#   g13: DEV=cuda BUDGET=515 CKPT=2000 PROBE=600 bash experiments/device/galetto_pair.sh \
#          g13p "" g13c "train.lr_min=1e-5"          (and the CUDA-only test beside the probe)
#   g14: DEV=cuda BUDGET=415 CKPT=1000 PROBE=300 bash experiments/device/galetto_pair.sh \
#          g14a "train.lr_min=1e-5 train.batch=1024 train.lr=2e-3" g14b "train.lr_min=1e-5 train.batch=512"
# (they ran as experiments/device/galetto_g13.sh at 1cad185 and galetto_g14.sh at ff3e932, whose steps this repeats).
# With .whl/ carried (experiments/device/wheels.sh) it installs kornia first and runs all CUDA-only tests beside the
# probe, else only tests/test_render.py's. Each run (probes too) is stopped at the deadline by `timeout` (rc 124).
# Dry run on a CPU (PY=.venv/bin/python; the first call builds the patches, 3 min here, later ones reuse them; 2 min):
#   DEV=cpu BUDGET=150 CKPT=20 PROBE=12 OUT=/tmp/gp_out RUNS=/tmp/gp_runs PATCHES=/tmp/gpatch \
#       bash experiments/device/galetto_pair.sh a "train.lr_min=1e-5 train.batch=64 train.lr=2e-3" b "train.batch=32"
set -u
[ $# -eq 2 ] || [ $# -eq 4 ] || { echo "usage: galetto_pair.sh NAME_A SETTINGS_A [NAME_B SETTINGS_B]" >&2; exit 2; }
export PYTHONUNBUFFERED=1
NAME_A=$1; SET_A=$2; NAME_B=${3:-}; SET_B=${4:-}
ARMS=a; [ -n "$NAME_B" ] && ARMS=ab
PY=${PY:-python3}
DEV=${DEV:-cuda}
BUDGET=${BUDGET:-420}
PROBE=${PROBE:-300}
CKPT=${CKPT:-1000}
PHOTOS=${PHOTOS:-.dev/bsds500}
IMAGENET=${IMAGENET:-.dev/mobilenet_v2_imagenet_keras.safetensors}
PATCHES=${PATCHES:-runs/gpatch}
RUNS=${RUNS:-runs}
OUT=${OUT:-runs/pair_out}
START=$(date +%s)
mkdir -p "$OUT" "$RUNS"
elapsed() { echo $(( $(date +%s) - START )); }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
source "$(dirname "$0")/common.sh"
install_wheels
cuda_tests "$RUNS/pytest_cuda.txt"
[ -f "$PATCHES/val.npz" ] || $PY -m dmenet.galetto.build_patches --photos "$PHOTOS" --out "$PATCHES" || exit 3
echo "patches ready at $(elapsed) s"
$PY - "$PATCHES" <<'PYEOF' || echo "PATCHES DIFFER from this project's"
import hashlib, sys
import numpy as np
want = {"train": "c357860132aafebf", "val": "4ba01c00f98f0892"}
for part, sha in want.items():
    got = hashlib.sha256(np.load(f"{sys.argv[1]}/{part}.npz")["patches"].tobytes()).hexdigest()
    print(part, got[:16], "equal" if got.startswith(sha) else "DIFFERS")
    if not got.startswith(sha):
        sys.exit(1)
PYEOF
launch() {  # name, steps, log_every, ckpt_every, settings (one word list); stopped at the deadline ($BUDGET)
  local name=$1 steps=$2 logs=$3 ckpt=$4 settings=$5 left=$(( BUDGET - $(elapsed) ))
  [ "$left" -ge 1 ] || left=1   # timeout 0 would mean no limit
  rm -rf "$RUNS/$name"
  # shellcheck disable=SC2086  # the settings are a word list on purpose
  timeout --signal=TERM "$left" $PY -m dmenet.galetto.train --config experiments/galetto_paper.yaml \
      --patches "$PATCHES" --out "$RUNS/$name" \
      --set train.device="$DEV" train.wandb=disabled train.imagenet="$IMAGENET" $settings \
      train.steps="$steps" train.log_every="$logs" train.ckpt_every="$ckpt" > "$RUNS/$name.log" 2>&1
}
rm -rf "$RUNS/probe_b" "$RUNS/probe_b.log"
PLOG=$(( PROBE / 6 > 0 ? PROBE / 6 : 1 ))   # train.log_every must be >= 1
launch probe_a "$PROBE" "$PLOG" "$PROBE" "$SET_A" & pa=$!
[ $ARMS = ab ] && { launch probe_b "$PROBE" "$PLOG" "$PROBE" "$SET_B" & pb=$!; }
wait $pa; ra=$?; rb=0; [ $ARMS = ab ] && { wait $pb; rb=$?; }
if [ $ra -ne 0 ] || [ $rb -ne 0 ]; then
  tail -n 5 "$RUNS"/probe_?.log; echo "a probe failed (rc $ra / $rb): stopping" >&2; exit 5
fi
# steps/s of the slower run, from its logged rates after the first PROBE/6 steps (start-up excluded)
N=$($PY - "$RUNS" $(( BUDGET - $(elapsed) - 40 )) $PROBE $CKPT $ARMS <<'PYEOF'
import json, sys
runs, seconds, probe, ckpt = sys.argv[1], int(sys.argv[2]) - 15, int(sys.argv[3]), int(sys.argv[4])
rates = []
for r in sys.argv[5]:
    batch = json.load(open(f"{runs}/probe_{r}/config.json"))["train"]["batch"]
    rows = [json.loads(line) for line in open(f"{runs}/probe_{r}/metrics.jsonl")]
    pps = [row["patches_per_s"] for row in rows if "patches_per_s" in row and row["step"] > probe // 6]
    rates.append(sum(pps) / len(pps) / batch)
n = int(min(rates) * seconds * 0.92) // ckpt * ckpt
print(f"probe steps/s {' / '.join(f'{r:.1f}' for r in rates)}, {seconds} s left: N = {n}", file=sys.stderr)
print(max(n, ckpt))
PYEOF
)
[ -n "$N" ] || { echo "no probe rate from $RUNS/probe_?/metrics.jsonl: stopping" >&2; exit 6; }
echo "N=$N at $(elapsed) s"
launch "$NAME_A" "$N" 200 "$CKPT" "$SET_A" & pa=$!
[ $ARMS = ab ] && { launch "$NAME_B" "$N" 200 "$CKPT" "$SET_B" & pb=$!; }
wait $pa; echo "$NAME_A rc $? (124: stopped at the deadline)"; [ $ARMS = ab ] && { wait $pb; echo "$NAME_B rc $?"; }
echo "runs ended at $(elapsed) s"
[ -f "$RUNS/pytest_cuda.txt" ] && { tail -1 "$RUNS/pytest_cuda.txt"; cp "$RUNS/pytest_cuda.txt" "$OUT/"; }
for r in "$NAME_A" ${NAME_B:+"$NAME_B"}; do
  grep "^step" "$RUNS/$r.log" | tail -40
  for f in best.safetensors best.json metrics.jsonl; do cp "$RUNS/$r/$f" "$OUT/${r}_$f"; done
done
echo "done at $(elapsed) s"
