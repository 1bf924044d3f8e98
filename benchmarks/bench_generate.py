"""SYNDOF generation throughput at 640×480: samples/s and where the time goes.

    python benchmarks/bench_generate.py [--count 4] [--threads 1] [--device cpu] [--json out.json]

Two measurements on the same sources (procedural scenes and scikit-image photos with random depth, all 640×480):

1. ``generate_sample`` in-process, timed per stage: source (loading + random depth / procedural scene), camera
   sampling (``sample_camera``: focus draw, layer decomposition, retries), rendering (``render_layers``);
2. end to end ``syndof.generate.generate`` into a temporary folder (adds PNG encoding and atomic writes), from which
   samples/s is reported.

One untimed warm-up sample runs first. Seconds per sample and samples/s; the CPUs, threads and 1-minute load
average are printed. The figures depend on the load of the machine: compare within one run.

Prints a Markdown table row set for BENCHMARKS.md.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interleave import machine_line, output_problem, parser  # noqa: E402
from syndof import cli  # noqa: E402
from syndof.generate import generate  # noqa: E402
from syndof.io import write_text_atomic  # noqa: E402
from syndof.sample import generate_sample, sample_rng  # noqa: E402
from syndof.scenes import Source, SourceKind  # noqa: E402

SIZE = (480, 640)


def bench_sources() -> list[Source]:
    return [Source("procedural", "procedural", size=SIZE), Source("coffee", "skimage"),
            Source("procedural2", "procedural", size=SIZE), Source("astronaut", "skimage")]


def _load(source: Source, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    if source.kind is SourceKind.SKIMAGE:
        from syndof.random_depth import random_depth
        from syndof.scenes import _skimage_photo

        image = cv2.resize(_skimage_photo(source.name), SIZE[::-1], interpolation=cv2.INTER_AREA)
        return image, random_depth(image, rng)
    return source.load(rng)


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = parser("bench_generate", __doc__, "python benchmarks/bench_generate.py --count 4 --threads 1")
    p.add_argument("--count", type=cli.positive_int, default=4, help="samples per measurement")
    cli.add_threads(p)
    cli.add_device(p)
    cli.add_seed(p, use="sample i uses SeedSequence(seed, (i,))")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    if args.json and (problem := output_problem(args.json, "--json")):
        return cli.fail(problem)
    cli.check_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sources = bench_sources()
    print(machine_line(), flush=True)

    # warm-up (imports, scikit-image data caches, first-call allocations): not timed
    warm_rng = sample_rng(args.seed + 1, 0)
    generate_sample(*_load(sources[0], warm_rng), warm_rng, device=args.device)

    # 1. per stage
    rows = []
    for i in range(args.count):
        src = sources[i % len(sources)]
        rng = sample_rng(args.seed, i)
        t0 = time.perf_counter()
        image, depth = _load(src, rng)
        t1 = time.perf_counter()
        res = generate_sample(image, depth, rng, device=args.device)
        rows.append({"source": src.name, "load": t1 - t0, "camera": res.timings["camera"],
                     "render": res.timings["render"], "layers": res.layered.n_layers,
                     "attempts": res.camera.attempts})
        print(f"  {src.name:12s} load {rows[-1]['load']:.2f}s camera {rows[-1]['camera']:.2f}s "
              f"render {rows[-1]['render']:.2f}s ({rows[-1]['layers']} layers, {rows[-1]['attempts']} attempts)",
              flush=True)

    # 2. end to end (writes files)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = generate(tmp, sources=sources, count=args.count, seed=args.seed, device=args.device,
                           threads=torch.get_num_threads(), progress=False)
        wall = time.perf_counter() - t0
    per = {k: statistics.mean(r[k] for r in rows) for k in ("load", "camera", "render")}
    total = sum(per.values())
    result = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads, device {args.device}; {machine_line()} at the end",
        "size": f"{SIZE[1]}x{SIZE[0]}",
        "count": args.count,
        "mean_s": per,
        "share": {k: v / total for k, v in per.items()},
        "mean_layers": statistics.mean(r["layers"] for r in rows),
        "end_to_end_samples_per_s": summary.written / wall if wall > 0 else float("nan"),
        "end_to_end_s_per_sample": wall / max(summary.written, 1),
    }
    print(json.dumps(result, indent=2))
    print("\n| stage (640×480, mean of %d) | s/sample | share |" % args.count)
    print("|---|---|---|")
    for k, label in (("load", "source (load + random depth / procedural scene)"),
                     ("camera", "camera sampling + layer decomposition"), ("render", "layered rendering")):
        print(f"| {label} | {per[k]:.2f} | {100 * result['share'][k]:.0f} % |")
    print(f"| end to end `generate` (incl. PNG writes) | {result['end_to_end_s_per_sample']:.2f} | "
          f"{result['end_to_end_samples_per_s']:.3f} samples/s |")
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n", replace=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
