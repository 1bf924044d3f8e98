"""Peak memory and time of Galetto & Deng's refinement (``dmenet.galetto.refine.refine_map``) on a large image, with
the colour guided filter in row strips (``dmenet.filters.in_row_strips``, the default) and as one strip (the code
before 6 Dec 2026), side by side.

    python benchmarks/bench_refine_memory.py [--size 2000 3000] [--modes code paper] [--threads 1]

Each (mode, strips) runs in a fresh subprocess on the same random image (seed 0): the peak RSS growth during the
call (``ru_maxrss`` after it minus before it, the image and the map already held) per image pixel, and the wall time.
``predict``'s memory guard counts :data:`dmenet.galetto.refine.REFINE_BYTES_PER_PIXEL` per input pixel for it.
The 1-minute load average is printed: wall times on the shared 2-core machine move with it, bytes do not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import machine_line, parser  # noqa: E402
from syndof import cli  # noqa: E402

WHOLE = 10**12
"""``STRIP_PIXELS`` that makes one strip of any image: the refinement as it ran before the strips."""


def child(mode: str, strips: bool, height: int, width: int) -> dict:
    import numpy as np

    from dmenet import filters
    from dmenet.galetto.refine import refine_map

    if not strips:
        filters.STRIP_PIXELS = WHOLE
    rng = np.random.default_rng(0)
    image = rng.random((height, width, 3), dtype=np.float32)
    sigma = rng.random((height, width), dtype=np.float32) * 5
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    refine_map(image, sigma, mode)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "strips": strips, "bytes_per_pixel": (peak - before) / (height * width), "s": seconds}


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    ap = parser("bench_refine_memory", __doc__, "python benchmarks/bench_refine_memory.py --size 2000 3000")
    ap.add_argument("--size", nargs=2, type=cli.positive_int, default=[2000, 3000], metavar=("H", "W"))
    ap.add_argument("--modes", nargs="+", choices=("code", "paper"), default=["code", "paper"])
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    cli.add_threads(ap, default=1)
    args = ap.parse_args(argv)
    height, width = args.size
    if args._child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(child(args._child[0], args._child[1] == "strips", height, width)))
        return 0
    print(f"refine_map on a {width}x{height} random image, {args.threads} thread(s) per child; "
          f"{machine_line(threads=False)}")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for mode in args.modes:
        rows = {}
        for strips in ("whole", "strips"):
            cmd = [sys.executable, __file__, "--size", str(height), str(width), "--threads", str(args.threads),
                   "--_child", mode, strips]
            out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True).stdout
            rows[strips] = json.loads(out.strip().splitlines()[-1])
        w, s = rows["whole"], rows["strips"]
        ratio = w["bytes_per_pixel"] / s["bytes_per_pixel"]
        print(f"{mode:5s}  one strip: {w['bytes_per_pixel']:6.0f} B/px {w['s']:6.2f} s   row strips: "
              f"{s['bytes_per_pixel']:6.0f} B/px {s['s']:6.2f} s   memory ×{ratio:.2f}, time ×{w['s'] / s['s']:.2f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
