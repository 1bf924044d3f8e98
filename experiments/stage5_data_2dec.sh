#!/usr/bin/env bash
# Stage 5's real and labelled sets as they were on 2 Dec 2026 (checkpoints/MODEL_CARD.md, "Reproduce"), made from
# a build of experiments/build_training_set.py. Since fd4133c (3 Dec) the builder puts the CUHK training pairs in
# labelled/ and their photos in real/cuhk/; stage 5 had real/ without them and labelled/ = xu100 + DUT 1-3
# (masks white = sharp). Links only; an existing OUT is refused.
#   usage: experiments/stage5_data_2dec.sh DATA OUT [SHARED]   (DATA: the builder's output; SHARED: ../shared)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DATA OUT [SHARED]" >&2; exit 2; }
data=$(realpath "$1"); out=$2; shared=$(realpath "${3:-../shared}")
for d in "$data/real/bsds" "$data/real/real_dof" "$shared/data/xu100/source" "$shared/data/dut/gt"; do
  [ -d "$d" ] || { echo "$d: not found" >&2; exit 2; }
done
[ ! -e "$out" ] || { echo "$out: exists; refusing to mix sets (remove it first)" >&2; exit 2; }
mkdir -p "$out.part/real" "$out.part/labelled/image" "$out.part/labelled/gt"
cp -rs "$data/real/bsds" "$data/real/real_dof" "$out.part/real/"   # file links: the loaders do not follow dir links
for n in xu100 dut; do
  for f in "$shared/data/$n/source"/*; do ln -s "$(realpath "$f")" "$out.part/labelled/image/${n}_$(basename "$f")"; done
  for f in "$shared/data/$n/gt"/*; do ln -s "$(realpath "$f")" "$out.part/labelled/gt/${n}_$(basename "$f")"; done
done
mv "$out.part" "$out"
echo "$out: real/ $(find -L "$out/real" -type f | wc -l) photos, labelled/ $(ls "$out/labelled/image" | wc -l) pairs"
