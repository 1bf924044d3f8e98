#!/bin/bash
# Rule g14 (experiments/galetto_rule_g14.md) on the lent GPU: as galetto_g13.sh (patches rebuilt and checked, a
# probe of both runs' speed, both runs to a deadline) with larger batches: g14a batch 1024 at lr 2e-3, g14b batch
# 512 at lr 1e-3, both cosine to 1e-5 over the same N steps. Copies each run's best classifier and curve to $OUT.
#   DEV=cuda BUDGET=420 bash experiments/device/galetto_g14.sh
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
DEV=${DEV:-cuda}
BUDGET=${BUDGET:-420}
PROBE=${PROBE:-300}
CKPT=${CKPT:-1000}
PHOTOS=${PHOTOS:-.dev/bsds500}
IMAGENET=${IMAGENET:-.dev/mobilenet_v2_imagenet_keras.safetensors}
PATCHES=${PATCHES:-runs/gpatch}
RUNS=${RUNS:-runs}
OUT=${OUT:-runs/g14_out}
START=$(date +%s)
mkdir -p "$OUT" "$RUNS"
elapsed() { echo $(( $(date +%s) - START )); }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
[ -f "$PATCHES/val.npz" ] || $PY -m dmenet.galetto.build_patches --photos "$PHOTOS" --out "$PATCHES" || exit 3
echo "patches built at $(elapsed) s"
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
        --set train.device="$DEV" train.wandb=disabled train.imagenet="$IMAGENET" train.lr_min=1e-5)
arm_a=(train.batch=1024 train.lr=2e-3)
arm_b=(train.batch=512 train.lr=1e-3)
launch() {  # name, steps, log_every, ckpt_every, settings...
  local name=$1 steps=$2 logs=$3 ckpt=$4; shift 4
  rm -rf "$RUNS/$name"
  $PY -m dmenet.galetto.train "${common[@]}" "$@" train.steps=$steps train.log_every=$logs train.ckpt_every=$ckpt \
      --out "$RUNS/$name" > "$RUNS/$name.log" 2>&1
}
launch g14_probe_a $PROBE $((PROBE / 6)) $PROBE "${arm_a[@]}" & pa=$!
launch g14_probe_b $PROBE $((PROBE / 6)) $PROBE "${arm_b[@]}" & pb=$!
wait $pa; ra=$?; wait $pb; rb=$?
if [ $ra -ne 0 ] || [ $rb -ne 0 ]; then tail -5 "$RUNS"/g14_probe_?.log; exit 5; fi
N=$($PY - "$RUNS" $(( BUDGET - $(elapsed) - 40 )) $PROBE $CKPT <<'PYEOF'
import json, sys
rates = []
for r, batch in (("a", 1024), ("b", 512)):
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/g14_probe_{r}/metrics.jsonl")]
    pps = [row["patches_per_s"] for row in rows if "patches_per_s" in row and row["step"] > int(sys.argv[3]) // 6]
    rates.append(sum(pps) / len(pps) / batch)
seconds = int(sys.argv[2]) - 15
ckpt = int(sys.argv[4])
n = int(min(rates) * seconds * 0.92) // ckpt * ckpt
print(f"probe steps/s {rates[0]:.1f} (a) {rates[1]:.1f} (b), {seconds} s left: N = {n}", file=sys.stderr)
print(max(n, ckpt))
PYEOF
)
echo "N=$N at $(elapsed) s"
launch g14a $N 200 $CKPT "${arm_a[@]}" & pa=$!
launch g14b $N 200 $CKPT "${arm_b[@]}" & pb=$!
# a run still going at the deadline is stopped; its best checkpoint so far stands (rule g14)
( sleep $(( BUDGET - $(elapsed) )); pkill -f "dmenet.galetto.train" || kill $pa $pb ) & watchdog=$!
wait $pa; echo "g14a rc $?"; wait $pb; echo "g14b rc $?"
kill $watchdog 2>/dev/null
echo "runs ended at $(elapsed) s"
for r in a b; do
  grep "^step" "$RUNS/g14$r.log" | tail -40
  cp "$RUNS/g14$r/best.safetensors" "$OUT/g14${r}_best.safetensors"
  cp "$RUNS/g14$r/best.json" "$OUT/g14${r}_best.json"
  cp "$RUNS/g14$r/metrics.jsonl" "$OUT/g14${r}_metrics.jsonl"
done
echo "done at $(elapsed) s"
