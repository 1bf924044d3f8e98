"""``Predictor.estimate`` (σ map and blur probability) of one model file under two checkouts of this repository,
side by side: what a code change bought, with its effect on the maps.

    python benchmarks/bench_checkouts.py --before /path/to/old/checkout MODEL [--flips 1] [--threads 1]
        [--rounds 2] [--repeats 7] [--image PHOTO]

A Python process cannot import two versions of ``dmenet``, so each round starts one child process per checkout,
``before`` first, each importing that checkout's code (the child is this file run with ``--child``). Each child tunes
malloc as the entry points do (``syndof.allocator``), loads MODEL with ``--flips``, warms up once and times
``--repeats`` calls of ``estimate`` on ``--image`` (default the CUHK image ``out_of_focus0011.jpg``) area-resized
to 640×480. Printed: each child's median and min ms, the ratio of the medians (before / after) per round, the 1-min
load average, and the largest |Δσ| (px) and |Δ blur probability| between the two checkouts' last maps. The children
run one after the other, so load that changes between them skews a round: read the ratios of several rounds, on a
machine as idle as it gets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from interleave import machine_line, parser
from syndof import cli

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "cuhk" / "image" / "out_of_focus0011.jpg"


def child(code: Path, model: Path, flips: int, threads: int, repeats: int, image_path: Path, out: Path) -> None:
    """Time ``estimate`` with the code of checkout ``code``; write its maps to ``out`` (.npy) and print JSON."""
    sys.path.insert(0, str(code))
    for name in [m for m in sys.modules if m.partition(".")[0] in ("syndof", "dmenet")]:
        del sys.modules[name]  # syndof.cli (this command line) came from this checkout: the timed code is ``code``'s
    from syndof.allocator import reuse_freed_memory

    reuse_freed_memory()
    import statistics
    import time
    import warnings

    import cv2
    import numpy as np
    import torch

    from dmenet.inference import load_predictor
    from syndof import io as sio

    torch.set_num_threads(threads)
    image = cv2.resize(sio.read_image(image_path), (640, 480), interpolation=cv2.INTER_AREA).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an override of fitted flips: timing only
        predictor = load_predictor(model, flips=flips)
    predictor.estimate(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        est = predictor.estimate(image)
        times.append(time.perf_counter() - start)
    np.save(out, np.stack([est.sigma, est.blur_probability]))
    print(json.dumps({"median": statistics.median(times), "min": min(times)}))


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = parser("bench_checkouts", __doc__,
               "python benchmarks/bench_checkouts.py checkpoints/dmenet_lite.safetensors --before ../before")
    p.add_argument("model", type=Path)
    p.add_argument("--before", type=Path, required=True, help="the other checkout (the reference)")
    p.add_argument("--after", type=Path, default=REPO, help="default: this checkout")
    p.add_argument("--flips", type=int, default=1, help="test-time symmetries: 1, 2, 4 or 8 (default 1)")
    cli.add_threads(p, default=1)
    p.add_argument("--rounds", type=cli.positive_int, default=2)
    p.add_argument("--repeats", type=cli.positive_int, default=7)
    p.add_argument("--image", type=Path, default=PHOTO)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: time one checkout, maps to this file
    args = p.parse_args(argv)
    if args.child:
        child(args.after, args.model, args.flips, args.threads, args.repeats, args.image, args.child)
        return 0
    from dmenet.models.recipe import FLIPS  # here, not at the top: a child imports only the timed checkout's code

    if args.flips not in FLIPS:
        p.error(f"--flips {args.flips}: expected one of {', '.join(map(str, FLIPS))}")
    for name in ("before", "after"):
        if not (getattr(args, name) / "dmenet" / "inference.py").is_file():
            p.error(f"--{name} {getattr(args, name)}: not a checkout of this repository")
    if not args.model.is_file():
        p.error(f"model {args.model}: no such file")
    if not args.image.is_file():
        p.error(f"--image {args.image}: no such file")
    import numpy as np

    print(f"{args.model.name}, {args.image.name} at 640x480, flips {args.flips}, {args.threads} thread(s), "
          f"{args.repeats} repeats per child; {machine_line(threads=False)} before")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            figures = {}
            for name in ("before", "after"):
                cmd = [sys.executable, __file__, str(args.model.resolve()), "--before", str(args.before),
                       "--after", str(getattr(args, name).resolve()), "--flips", str(args.flips), "--threads",
                       str(args.threads), "--repeats", str(args.repeats), "--image", str(args.image.resolve()),
                       "--child", str(Path(tmp) / f"{name}.npy")]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:  # the child's own one-line error, or its traceback's last line
                    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                    return cli.fail(f"--{name} {getattr(args, name)}: the child exited with {done.returncode}: {last}")
                figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
            b, a = figures["before"], figures["after"]
            print(f"round {r + 1}: before median {b['median'] * 1e3:7.1f} ms min {b['min'] * 1e3:7.1f} | after median "
                  f"{a['median'] * 1e3:7.1f} ms min {a['min'] * 1e3:7.1f} | ratio {b['median'] / a['median']:.2f}x "
                  f"| load {os.getloadavg()[0]:.2f}")
        before, after = (np.load(Path(tmp) / f"{n}.npy") for n in ("before", "after"))
    print(f"max |Δσ| {np.abs(before[0] - after[0]).max():.3g} px, max |Δ blur probability| "
          f"{np.abs(before[1] - after[1]).max():.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
