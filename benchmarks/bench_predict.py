"""Inference speed at 640×480: DMENet lite and paper (VGG19) models, and the classical peers, on this CPU.

    python benchmarks/bench_predict.py [--repeats N] [--only models|peers] [--model lite|paper|both] [--threads N]

Models are randomly initialised (speed does not depend on the weights): architecture from
``experiments/dmenet_lite.yaml`` / ``experiments/dmenet_paper.yaml`` (``model`` section, ``init`` ignored). Timed:
``model.blur`` forward on a (1, 3, 480, 640) tensor under ``torch.inference_mode`` in eval mode, model and input
channels-last as in ``dmenet.inference`` (batch 1, after two warm-up runs), and the whole
``dmenet.inference.estimate`` call (numpy in, σ map + S probability out), for the lite model also with test-time
symmetry averaging over 2 and 8 copies (``Recipe.flips``) and with the detection map's own per-image
BatchNorm pass (``Recipe.detection.bn`` image, the shipped setting). Peers run on the CUHK image
``out_of_focus0011.jpg`` resized to 640×480 (a procedural texture when ../shared is absent).
Medians in ms, wall and process CPU time; the 1-minute load average is printed because other processes on a 2-core
machine inflate wall times (with 2 threads badly: OpenMP workers wait for each other) — compare rows of one run
(ratios), not runs; with ``--threads 1`` the CPU time approximates the uncontended single-thread time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import machine_line, median_seconds, parser  # noqa: E402
from syndof import cli  # noqa: E402

H, W = 480, 640
TARGET_MS = {"lite": 100.0, "paper": 3400.0}


def _median_ms(fn, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median wall time and median process CPU time (ms) of ``fn()`` over ``repeats`` runs after ``warmup``."""
    wall, cpu = median_seconds(fn, repeats, warmup)
    return wall * 1000.0, cpu * 1000.0


def _model_config(name: str):
    import yaml

    from dmenet.models import ModelConfig

    data = yaml.safe_load((REPO / "experiments" / f"dmenet_{name}.yaml").read_text())["model"]
    data["init"] = None  # random init: timing only
    return ModelConfig.from_dict(data)


def _test_image() -> np.ndarray:
    import cv2

    path = REPO.parent / "shared" / "data" / "cuhk" / "image" / "out_of_focus0011.jpg"
    if path.is_file():
        from syndof.io import read_image

        return cv2.resize(read_image(path), (W, H), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((H, W, 3)).astype(np.float32), (0, 0), 1.5)
    img[:, W // 2 :] = cv2.GaussianBlur(img[:, W // 2 :], (0, 0), 3.0)
    return np.clip((img - img.min()) / (img.max() - img.min()), 0, 1).astype(np.float32)


def conv_gmacs(model, x) -> float:
    """Multiply–accumulates (10⁹) of every Conv2d in ``model.blur`` for input ``x`` (one forward with hooks)."""
    import torch

    total = [0]

    def hook(mod, _inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total[0] += out.numel() * (mod.in_channels // mod.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.blur.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        model.blur(x)
    for h in handles:
        h.remove()
    return total[0] / 1e9


def bench_models(repeats: int, names: tuple[str, ...] = ("lite", "paper")) -> None:
    import torch

    from dmenet.inference import Predictor, estimate
    from dmenet.models import build_dmenet
    from dmenet.models.recipe import BNMode

    image = _test_image()
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    x = x.contiguous(memory_format=torch.channels_last)
    rows = {}
    for name in names:
        cfg = _model_config(name)
        model = build_dmenet(cfg).eval().to(memory_format=torch.channels_last)  # as dmenet.inference.load_model
        n_params = sum(p.numel() for p in model.blur.parameters())
        reps = repeats if name == "lite" else max(2, repeats // 4)

        def forward(model=model):
            with torch.inference_mode():
                model.blur(x)

        gmacs = conv_gmacs(model, x)
        fwd, fwd_cpu = _median_ms(forward, reps)
        full, _ = _median_ms(lambda model=model: estimate(image, model), reps, warmup=1)
        rows[name] = fwd
        status = "meets" if fwd <= TARGET_MS[name] else "MISSES"
        print(f"dmenet {name:5s} ({cfg.encoder}, width {cfg.width}, {n_params / 1e6:.2f} M params in B, "
              f"{gmacs:.1f} GMAC conv): forward {fwd:8.1f} ms wall, {fwd_cpu:8.1f} ms CPU "
              f"({2 * gmacs / fwd_cpu * 1e3:.0f} GFLOP/s CPU); estimate() {full:8.1f} ms wall  "
              f"[{status} target {TARGET_MS[name]:.0f} ms]", flush=True)
        if name == "lite":
            for flips in (2, 8):
                ms, _ = _median_ms(lambda model=model, f=flips: estimate(image, model, flips=f), reps, warmup=1)
                print(f"dmenet lite estimate() with test flips {flips}: {ms:8.1f} ms wall ({ms / full:.1f}x flips 1)",
                      flush=True)
            # the shipped setting: σ with the moving statistics, the detection map with per-image ones (2 passes of B)
            mixed = Predictor(model, model.recipe.with_bn(detection=BNMode.IMAGE))
            ms, _ = _median_ms(lambda: estimate(image, mixed), reps, warmup=1)
            print(f"dmenet lite estimate() with a per-image detection pass (recipe.detection.bn image): {ms:8.1f} ms "
                  f"wall ({ms / full:.1f}x one pass)", flush=True)
    if len(rows) == 2:
        print(f"ratio paper/lite forward: {rows['paper'] / rows['lite']:.1f}x")


def bench_peers(repeats: int) -> None:
    """The classical methods of the registry (:func:`dmenet.methods.make_method`), blur map only."""
    from dmenet.methods import make_method, method_names

    image = _test_image()
    for name in method_names(learned=False):
        fn = make_method(name).blur_map
        reps = max(1, repeats // 4) if name in ("hifst", "zhuo_sim") else repeats
        ms, cpu = _median_ms(lambda fn=fn: fn(image), reps, warmup=1)
        print(f"peer {name:10s}: {ms:8.1f} ms wall, {cpu:8.1f} ms CPU", flush=True)


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = parser("bench_predict", __doc__, "python benchmarks/bench_predict.py --repeats 8 --threads 1 --only models")
    p.add_argument("--repeats", type=cli.positive_int, default=10)
    p.add_argument("--only", choices=("models", "peers"), default=None)
    p.add_argument("--model", choices=("lite", "paper", "both"), default="both")
    cli.add_threads(p)
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {machine_line()}, input {W}x{H}")
    if args.only in (None, "models"):
        bench_models(args.repeats, ("lite", "paper") if args.model == "both" else (args.model,))
    if args.only in (None, "peers"):
        bench_peers(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
