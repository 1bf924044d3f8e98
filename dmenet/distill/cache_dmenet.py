"""Cache a fixed teacher's blur-probability maps (milestone D0: the shipped DMENet-lite detection map) as 8-bit PNGs.

Resumable: maps already written are skipped; each write is atomic. A corrupt image is skipped and reported.

    python -m dmenet.distill.cache_dmenet --images ../shared/data/cuhk/train_image \
        --list experiments/distill/cuhk_split_train.txt --out runs/distill/dmenet_cache --flips 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dmenet.distill.split import read_split
from syndof.io import InputError, read_image, write_image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="folder of photos (STEM.jpg)")
    p.add_argument("--list", required=True, help="stems to cache, one per line")
    p.add_argument("--out", required=True, help="output folder (STEM.png, 255 = blurred)")
    p.add_argument("--method", default="dmenet", help="registered method whose blur map is the soft target")
    p.add_argument("--flips", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    from dmenet.methods import MethodOptions, make_method

    torch.set_num_threads(a.threads)
    try:
        stems = read_split(a.list)
    except OSError as e:
        print(f"error: cannot read --list {a.list}: {e.strerror}", file=sys.stderr)
        return 2
    files = {f.stem: f for f in Path(a.images).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")}
    missing = [s for s in stems if s not in files]
    if missing:
        print(f"error: {len(missing)} listed stems not in {a.images} (first {missing[0]})", file=sys.stderr)
        return 2
    est = make_method(a.method, MethodOptions(flips=a.flips))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    skipped, t0, done = [], time.time(), 0
    for stem in stems:
        target = out / f"{stem}.png"
        if target.exists():
            continue
        try:
            image = read_image(files[stem])
        except InputError as e:
            skipped.append(f"{files[stem]}: {e}")
            continue
        prob = est.blur_map(image)
        write_image(target, prob)
        done += 1
        print(f"{stem} {time.time() - t0:.0f}s", flush=True)
    for s in skipped:
        print(f"skipped {s}", file=sys.stderr)
    print(f"{done} written, {len(skipped)} skipped, {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
