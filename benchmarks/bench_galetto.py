"""Speed of the Galetto & Deng σ map at 640×480 on this CPU (docs/method.md §15; issue target ≤ 1.5 s with refinement).

    python benchmarks/bench_galetto.py [--model M [M ...]] [--strides 16 8] [--batches 192 1024] [--threads 1]
        [--repeats 3]

Timed separately (medians of ``--repeats`` after one warm-up; wall and process CPU seconds): each model's sliding
window at each stride and each batch (windows per classifier call) (``dmenet.galetto.blurmap.sigma_map``,
expectation readout; rows of one stride side by side, with their ratio to that stride's first row), the registered
``galetto`` method with its defaults (σ map and blur map, what ``predict`` runs; the first model), the classifier
alone on the σ map's stride-16 windows as the eval-mode network and as the folded copy the σ map uses (ratio and
max |Δ probability|), and the two refinements
(``dmenet.galetto.refine.refine_map`` paper / code) on a random 640×480 image. The 1-minute load average
is printed: on the shared 2-core machine the CPU time approximates the uncontended single-thread time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import machine_line, median_seconds, parser  # noqa: E402
from syndof import cli  # noqa: E402


@cli.entry_point
def main(argv=None) -> int:
    import torch

    from dmenet.galetto import BATCH, blurmap
    from dmenet.galetto.blurmap import sigma_map
    from dmenet.galetto.method import DEFAULT_MODEL
    from dmenet.galetto.refine import refine_map
    from dmenet.galetto.train import load_classifier
    from dmenet.methods.base import MethodOptions
    from dmenet.methods.registry import make_method
    from dmenet.models.fuse import cached_folded_copy

    ap = parser("bench_galetto", __doc__, "python benchmarks/bench_galetto.py --model checkpoints/galetto_mbv2 "
                "--strides 16 8 --threads 2 --repeats 5")
    ap.add_argument("--model", nargs="+", default=[str(DEFAULT_MODEL)], help="classifier file(s)")
    ap.add_argument("--strides", type=cli.positive_int, nargs="+", default=[16, 8])
    ap.add_argument("--batches", type=cli.positive_int, nargs="+", default=[BATCH, 1024],
                    help="windows per classifier call, each timed (default: the shipped setting, then 1024)")
    cli.add_threads(ap, default=1)
    ap.add_argument("--repeats", type=cli.positive_int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [(Path(m).name, load_classifier(m)) for m in args.model]
    image = np.random.default_rng(0).random((480, 640, 3)).astype(np.float32)
    raw = sigma_map(models[0][1], image, stride=16)
    rows = [(f"{name} stride {s} batch {b}", s,
             lambda net=net, s=s, b=b: sigma_map(net, image, stride=s, mode="expectation", batch=b))
            for s in args.strides for name, net in models for b in args.batches]
    method = make_method("galetto", MethodOptions(model=args.model[0]))
    rows.append(("galetto method, defaults", None, lambda: method.estimate(image)))
    rows += [(f"refine {m}", None, lambda m=m: refine_map(image, raw, m)) for m in ("paper", "code")]
    windows = blurmap.windows(blurmap.gray01(image, 0.0), 16)[0]
    net = models[0][1].eval()
    folded = cached_folded_copy(net)
    print(machine_line())
    first: dict[int, float] = {}
    for name, stride, fn in rows:
        wall, cpu = median_seconds(fn, args.repeats)
        ratio = "" if stride is None or stride not in first else f"   {wall / first[stride]:.2f}x the first row"
        first.setdefault(stride, wall)
        print(f"{name:32s} wall {wall:6.2f} s   cpu {cpu:6.2f} s{ratio}")
    with torch.no_grad():
        plain_wall, _ = median_seconds(lambda: net(windows), args.repeats)
        folded_wall, _ = median_seconds(lambda: folded(windows), args.repeats)
        delta = (torch.softmax(net(windows), 1) - torch.softmax(folded(windows), 1)).abs().max().item()
    print(f"{models[0][0]} on {len(windows)} windows: eval-mode network {plain_wall:.3f} s, folded copy "
          f"{folded_wall:.3f} s ({plain_wall / folded_wall:.2f}x), max |delta p| {delta:.1e}")
    print(f"load average after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
