"""Inference fast path of B (``dmenet.models.fuse``), step by step, against the plain eval-mode forward.

    python benchmarks/bench_fastpath.py [--model FILE] [--size 480 640] [--repeats 7] [--threads 1]
    python benchmarks/bench_fastpath.py --arch model.tail_scale=2 [--arch K=V,K=V ...]
    python benchmarks/bench_fastpath.py --delta IMAGE ... [--flips N]

Times, interleaved in one run (so load changes hit every variant alike), one forward of the shipped model's B
(``checkpoints/dmenet_lite.safetensors``, moving BatchNorm statistics) on a random (1, 3, H, W) input:
plain (auxiliary heads evaluated), without the auxiliary heads, + BatchNorm folded, + 1×1 convs as matrix
products, + replicate-padded 3×3 convs without the padded copy, + strided TF-SAME convs without the padded copy
(the fast path), and the fast path in the
contiguous (NCHW) layout, and the fast path under bfloat16 autocast (``dmenet:precision=bf16``; not the same
values, a precision trade). Each ``--arch`` adds two rows for the shipped architecture with those model keys
changed (random weights, BatchNorm statistics randomised, so only the times mean anything): its plain forward and
its fast path (max |Δ label| against its own plain forward). Prints min and median wall / process-CPU ms per
variant, the ratio to plain, the max |Δ label| against plain, and the 1-minute load average before and after.

With ``--delta`` it instead runs ``dmenet.inference.estimate`` (σ path with the fast path, then with the plain
forward) on each image and prints max |Δσ| (px) and max |Δ blur probability|; then the same estimate with B in
bfloat16 (``dmenet:precision=bf16``) against the fp32 fast path: mean / 99th percentile / max |Δσ| and mean |Δ blur
probability|.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dmenet import cli as dcli  # noqa: E402
from interleave import machine_line, parser  # noqa: E402
from syndof import cli  # noqa: E402


@cli.entry_point
def main(argv=None) -> int:
    ap = parser("bench_fastpath", __doc__, "python benchmarks/bench_fastpath.py --threads 1 --repeats 7")
    dcli.add_model(ap)
    ap.add_argument("--size", type=cli.positive_int, nargs=2, default=(480, 640), metavar=("H", "W"))
    ap.add_argument("--repeats", type=cli.positive_int, default=7)
    cli.add_threads(ap, default=1)
    ap.add_argument("--delta", type=Path, nargs="+", default=None, help="images for max |Δσ| fast vs plain")
    dcli.add_flips(ap, default="the model's recipe; read by --delta only")
    ap.add_argument("--arch", action="append", default=[], metavar="K=V[,K=V]",
                    help="also time this architecture (shipped config with these model.* keys), random weights")
    args = ap.parse_args(argv)
    if args.delta:
        return _delta(args)
    import torch

    from dmenet.inference import load_model
    from dmenet.models.fuse import InferenceBlur

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    x = torch.rand(1, 3, *args.size).contiguous(memory_format=torch.channels_last)
    blur = model.blur
    cl = torch.channels_last
    variants = {
        "plain (aux heads, BN)": (lambda: blur(x).defocus),
        "- aux heads": (lambda: blur.decoder(blur.encoder(x), with_aux=False)[0]),
        "+ BN folded": InferenceBlur(blur, pointwise=False, replicate=False).to(memory_format=cl),
        "+ 1x1 as matmul": InferenceBlur(blur, replicate=False).to(memory_format=cl),
        "+ no replicate-pad copy": InferenceBlur(blur, strided=False).to(memory_format=cl),
        "+ strided convs unpadded (fast path)": InferenceBlur(blur).to(memory_format=cl),
        "fast path, NCHW layout": InferenceBlur(blur).to(memory_format=torch.contiguous_format),
    }
    fast = variants["+ strided convs unpadded (fast path)"]

    def fast_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):  # what dmenet:precision=bf16 runs
            return fast(x).float()

    variants["fast path, bfloat16 autocast"] = fast_bf16
    refs = dict.fromkeys(variants, variants["plain (aux heads, BN)"])
    for spec in args.arch:
        other = _random_model(model.config, spec.split(","), cl).blur
        plain = (lambda b=other: b(x).defocus)
        variants[f"plain, {spec}"] = refs[f"plain, {spec}"] = plain
        variants[f"fast path, {spec}"] = InferenceBlur(other).to(memory_format=cl)
        refs[f"fast path, {spec}"] = plain
    inputs = {k: x.contiguous() if "NCHW" in k else x for k in variants}
    load0 = os.getloadavg()[0]
    times = {k: [] for k in variants}
    with torch.inference_mode():
        delta = {k: float((f(inputs[k]) if isinstance(f, torch.nn.Module) else f()).sub(refs[k]()).abs().max())
                 for k, f in variants.items()}
        for _ in range(args.repeats):
            for k, f in variants.items():
                call = (lambda f=f, k=k: f(inputs[k])) if isinstance(f, torch.nn.Module) else f
                call()
                t0, c0 = time.perf_counter(), time.process_time()
                call()
                times[k].append(((time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3))
    base = statistics.median(c for _, c in times["plain (aux heads, BN)"])
    print(f"B forward at {args.size[0]}x{args.size[1]}, {args.repeats} repeats, {machine_line()}; "
          f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"{'variant':38s} {'wall min':>9s} {'wall med':>9s} {'cpu min':>8s} {'cpu med':>8s} {'x plain':>8s} "
          f"{'max |dlabel|':>13s}")
    for k, v in times.items():
        w, c = [a for a, _ in v], [b for _, b in v]
        print(f"{k:38s} {min(w):9.0f} {statistics.median(w):9.0f} {min(c):8.0f} {statistics.median(c):8.0f} "
              f"{base / statistics.median(c):8.2f} {delta[k]:13.1e}")
    return 0


def _random_model(config, overrides: list[str], memory_format):
    """The architecture ``config`` with ``model.*`` overrides, random weights and randomised BatchNorm statistics (so
    folding is exercised), eval mode, in ``memory_format``."""
    import torch

    from dmenet.config import apply_overrides
    from dmenet.models.config import ModelConfig
    from dmenet.models.dmenet import build_dmenet

    data = apply_overrides({"model": config.to_dict()}, overrides)
    model = build_dmenet(ModelConfig.from_dict({**data["model"], "init": None}), load_init=False)
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if getattr(m, "running_var", None) is not None:  # nn.BatchNorm2d and BetaBatchNorm
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval().to(memory_format=memory_format)


def _delta(args) -> int:
    import torch

    import dmenet.tiling as tiling
    from dmenet.inference import Predictor, estimate, load_model
    from syndof.io import read_image

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    worst = 0.0
    for path in args.delta:
        img = read_image(path)
        fast = estimate(img, model, flips=args.flips)
        fast_path = tiling.cached_inference_blur
        tiling.cached_inference_blur = lambda m: (lambda x: m.blur(x).defocus)
        try:
            plain = estimate(img, model, flips=args.flips)
        finally:
            tiling.cached_inference_blur = fast_path
        ds = float(np.abs(fast.sigma - plain.sigma).max())
        dp = float(np.abs(fast.blur_probability - plain.blur_probability).max())
        worst = max(worst, ds)
        low = estimate(img, Predictor(model, precision="bf16"), flips=args.flips)
        db, dbp = np.abs(low.sigma - fast.sigma), np.abs(low.blur_probability - fast.blur_probability)
        print(f"{path.name}: {img.shape[1]}x{img.shape[0]}, max |dsigma| {ds:.2e} px "
              f"(sigma up to {plain.sigma.max():.2f} px), max |dprob| {dp:.2e}; bf16 against fp32: |dsigma| mean "
              f"{db.mean():.4f} / p99 {np.percentile(db, 99):.3f} / max {db.max():.3f} px, |dprob| mean "
              f"{dbp.mean():.4f}")
    print(f"max |dsigma| over {len(args.delta)} images: {worst:.2e} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
