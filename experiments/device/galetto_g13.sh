#!/bin/bash
# Rule g13 (experiments/galetto_rule_g13.md) on the lent GPU: rebuild the patches, check them against this
# project's, probe both runs' speed for 30 s, then train g13p (constant lr) and g13c (cosine) side by side for
# the same N steps, N chosen so that both end before the deadline. Copies each run's best classifier and curve
# to $OUT. Run from the repository root with the BSDS500 photos at $PHOTOS and the ImageNet file at $IMAGENET.
#   DEV=cuda BUDGET=520 bash experiments/device/galetto_g13.sh
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
DEV=${DEV:-cuda}
BUDGET=${BUDGET:-520}                    # seconds from the start until both runs must have ended
PROBE=${PROBE:-600}                      # probe steps (logged every PROBE/6)
CKPT=${CKPT:-2000}                       # validation / checkpoint every CKPT steps; N is a multiple of it
PHOTOS=${PHOTOS:-.dev/bsds500}
IMAGENET=${IMAGENET:-.dev/mobilenet_v2_imagenet_keras.safetensors}
PATCHES=${PATCHES:-runs/gpatch}
RUNS=${RUNS:-runs}
OUT=${OUT:-runs/g13_out}
START=$(date +%s)
mkdir -p "$OUT" "$RUNS"
elapsed() { echo $(( $(date +%s) - START )); }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"

# the project's one CUDA-only test, in the background (it also makes the probe below slower, so N errs short)
[ "$DEV" = cuda ] && { timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_render.py -k cuda \
    > "$OUT/pytest_cuda.txt" 2>&1 & }
[ -f "$PATCHES/val.npz" ] || $PY -m dmenet.galetto.build_patches --photos "$PHOTOS" --out "$PATCHES" || exit 3
echo "patches built at $(elapsed) s"
# a difference is reported, not fatal: the candidates are re-scored here on this machine's val patches (rule g13)
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

common=(--config experiments/galetto_paper.yaml --patches "$PATCHES"
        --set train.device="$DEV" train.wandb=disabled train.imagenet="$IMAGENET")
cosine=(train.lr_min=1e-5)
rm -rf "$RUNS/g13_probe_p" "$RUNS/g13_probe_c"
$PY -m dmenet.galetto.train "${common[@]}" train.steps=$PROBE train.log_every=$((PROBE / 6)) train.ckpt_every=$PROBE \
    --out "$RUNS/g13_probe_p" > "$RUNS/g13_probe_p.log" 2>&1 & pp=$!
$PY -m dmenet.galetto.train "${common[@]}" "${cosine[@]}" train.steps=$PROBE \
    train.log_every=$((PROBE / 6)) train.ckpt_every=$PROBE --out "$RUNS/g13_probe_c" > "$RUNS/g13_probe_c.log" 2>&1 & pc=$!
wait $pp; rp=$?; wait $pc; rc=$?
if [ $rp -ne 0 ] || [ $rc -ne 0 ]; then tail -5 "$RUNS"/g13_probe_?.log; exit 5; fi
# steps/s of the slower run, from its logged rates after the first 100 steps (start-up excluded)
N=$($PY - "$RUNS" $(( BUDGET - $(elapsed) - 45 )) $PROBE $CKPT <<'PYEOF'
import json, sys
rates = []
for r in "pc":
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/g13_probe_{r}/metrics.jsonl")]
    pps = [row["patches_per_s"] for row in rows if "patches_per_s" in row and row["step"] > int(sys.argv[3]) // 6]
    rates.append(sum(pps) / len(pps) / 128)
seconds = int(sys.argv[2]) - 15          # each run's start-up
ckpt = int(sys.argv[4])
n = int(min(rates) * seconds * 0.92) // ckpt * ckpt
print(f"probe steps/s {rates[0]:.1f} (p) {rates[1]:.1f} (c), {seconds} s left: N = {n}", file=sys.stderr)
print(max(n, ckpt))
PYEOF
)
echo "N=$N at $(elapsed) s"
for r in p c; do rm -rf "$RUNS/g13$r"; done
$PY -m dmenet.galetto.train "${common[@]}" train.steps=$N train.ckpt_every=$CKPT --out "$RUNS/g13p" > "$RUNS/g13p.log" 2>&1 & pp=$!
$PY -m dmenet.galetto.train "${common[@]}" "${cosine[@]}" train.steps=$N train.ckpt_every=$CKPT --out "$RUNS/g13c" > "$RUNS/g13c.log" 2>&1 & pc=$!
# a run still going at the deadline is stopped; its best checkpoint so far stands (rule g13)
( sleep $(( BUDGET - $(elapsed) )); kill $pp $pc 2>/dev/null ) & watchdog=$!
wait $pp; echo "g13p rc $?"; wait $pc; echo "g13c rc $?"
kill $watchdog 2>/dev/null
echo "runs ended at $(elapsed) s"
for r in p c; do
  grep "^step" "$RUNS/g13$r.log" | tail -40
  cp "$RUNS/g13$r/best.safetensors" "$OUT/g13${r}_best.safetensors"
  cp "$RUNS/g13$r/best.json" "$OUT/g13${r}_best.json"
  cp "$RUNS/g13$r/metrics.jsonl" "$OUT/g13${r}_metrics.jsonl"
done
echo "done at $(elapsed) s"
