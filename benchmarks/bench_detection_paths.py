"""``Predictor.estimate`` (σ map and blur probability) of model files whose detection paths differ, side by side.

    python benchmarks/bench_detection_paths.py H8=checkpoints/dmenet_lite.safetensors H8F=runs/r19s/h8f.safetensors \
        [--flips 8 1] [--repeats 5] [--threads 1] [--image PHOTO]

Each model runs its own recipe at each ``--flips`` (an override: the fitted values' flips are not checked here) on
``--image`` (default the CUHK image ``out_of_focus0011.jpg``) area-resized to 640×480. The variants alternate within
every repeat (``benchmarks/interleave.py``), so load on the machine falls on all alike; the script prints, per flips,
each model's B passes (sets of passes × flips: the σ path's, plus the detection path's where its BatchNorm mode
differs, plus a two-label head's second mode), median and min wall ms, and the speed-up of each median over the
first model's, with the 1-minute load average before and after. Rule 19s (``experiments/RULE_19S.md``) uses it for
the feature head (one set of passes) against the two-label head (two).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from syndof import cli  # noqa: E402

PHOTO = REPO.parent / "shared" / "data" / "cuhk" / "image" / "out_of_focus0011.jpg"


def passes(recipe) -> int:
    """Sets of B passes ``Predictor.estimate`` makes for both maps (each set = ``recipe.flips`` passes)."""
    return len({recipe.sigma.bn, *recipe.detection.bns})


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    from dmenet.models.recipe import FLIPS
    from interleave import machine_line, parser

    p = parser("bench_detection_paths", __doc__, "python benchmarks/bench_detection_paths.py "
               "H8=checkpoints/dmenet_lite.safetensors H8F=runs/r19s/h8f.safetensors")
    p.add_argument("models", nargs="+", metavar="NAME=FILE")
    p.add_argument("--flips", type=int, choices=FLIPS, nargs="+", default=[8, 1])
    p.add_argument("--repeats", type=cli.positive_int, default=5)
    cli.add_threads(p, default=1)
    p.add_argument("--image", type=Path, default=PHOTO)
    args = p.parse_args(argv)
    import cv2
    import numpy as np
    import torch

    from dmenet.inference import load_predictor
    from interleave import speedup_rows, time_interleaved
    from syndof import io as sio

    torch.set_num_threads(args.threads)
    pairs = [m.split("=", 1) for m in args.models]
    if any(len(pair) != 2 for pair in pairs):
        p.error("models are NAME=FILE")
    image = cv2.resize(sio.read_image(args.image), (640, 480), interpolation=cv2.INTER_AREA).astype(np.float32)
    print(f"image {args.image.name} at 640x480, {args.repeats} repeats; {machine_line()} before")
    for flips in args.flips:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an override of fitted flips: timing only
            predictors = {name: load_predictor(path, flips=flips) for name, path in pairs}
        times = time_interleaved({name: (lambda x, pr=pr: pr.estimate(x)) for name, pr in predictors.items()},
                                 lambda: image, timed=args.repeats, warmup=1)
        print(f"flips {flips}:")
        for name, med, low, speedup in speedup_rows(times):
            print(f"  {name:8s} {passes(predictors[name].recipe)} set(s) of passes  median {med * 1e3:8.1f} ms  "
                  f"min {low * 1e3:8.1f} ms  speed-up {speedup:.2f}x")
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
