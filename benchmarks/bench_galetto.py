"""Speed of the Galetto & Deng σ map at 640×480 on this CPU (docs/method.md §15; issue target ≤ 1.5 s with refinement).

    python benchmarks/bench_galetto.py [--model checkpoints/galetto_mbv2] [--threads 1] [--repeats 3]

Timed separately (medians of ``--repeats`` after one warm-up; wall and process CPU seconds): the classifier's
sliding window at stride 8 and 16 (``dmenet.galetto.blurmap.sigma_map``, expectation readout), and the two
refinements (``dmenet.galetto.refine.refine_map`` paper / code) on a random 640×480 image. The 1-minute load average
is printed: on the shared 2-core machine the CPU time approximates the uncontended single-thread time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    import torch

    from dmenet.galetto.blurmap import sigma_map
    from dmenet.galetto.method import DEFAULT_MODEL
    from dmenet.galetto.refine import refine_map
    from dmenet.galetto.train import load_classifier

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_classifier(args.model)
    image = np.random.default_rng(0).random((480, 640, 3)).astype(np.float32)
    raw = sigma_map(model, image, stride=16)
    rows = [(f"sigma_map stride {s}", lambda s=s: sigma_map(model, image, stride=s, mode="expectation"))
            for s in (16, 8)]
    rows += [(f"refine {m}", lambda m=m: refine_map(image, raw, m)) for m in ("paper", "code")]
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.1f}")
    for name, fn in rows:
        wall, cpu = timed(fn, args.repeats)
        print(f"{name:22s} wall {wall:6.2f} s   cpu {cpu:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
