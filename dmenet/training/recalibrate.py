"""BatchNorm re-estimation for inference: replace the moving statistics by exact averages over chosen data.

Why: DMENet trains B with one train-mode forward pass per domain (synthetic, labelled real, unlabelled real;
docs/method.md §5), so its moving statistics are an exponential blend dominated by whichever domain ran last in each iteration.
Eval-mode outputs then drift from train-mode ones (measured on the lite model at step 1100: synthetic-test label MAE
0.077 with batch statistics vs 0.260 with the moving ones). Re-estimating the statistics after training, with a
cumulative (equal-weight) average over crops from the domains the model will see at inference, removes the drift
without touching any learned weight.

A mixed synthetic + real re-estimation only partly closes the gap (0.270 → 0.205 at step 1200), because B's
features are normalised per domain during training. ``--mode image`` re-estimates nothing: the model's config gets
``image_bn_stats = True`` and inference normalises each image with its own statistics (0.074 at step 1200, the same
as training's batch statistics). Releases until 2 Dec 2026 05:10 used it, but per-image statistics divide away a
blur that covers the whole image, so B learned to rank blur within the image instead of measuring it. The shipped
model re-estimates on synthetic crops only (``--mode running --synthetic``): rule-v9 validation 0.0498 against
0.0819 per image, 0.0716 mixed and 0.1197 on the real domain alone (docs/history.md §7).

Usage::

    python -m dmenet.training.recalibrate --model RUN/model_last.safetensors --out OUT.safetensors \
        --mode running [--synthetic DIR] [--real DIR] [--crops 64] [--crop 256] [--seed 0]

``--mode running`` with one domain only (``--synthetic`` or ``--real``) re-estimates the statistics on it alone
(AdaBN, Li et al. 2016, when it is the target domain). Either way the output's ``image_bn_stats`` is off, since the
new statistics are what σ inference uses, and its ``detection_image_bn_stats`` is the source's: the label map S
sees, and so the fitted detection map (:mod:`dmenet.training.fit_dbd`), stays as it was.
    python -m dmenet.training.recalibrate --model RUN/model_last.safetensors --out OUT.safetensors --mode image
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from dmenet.models.layers import BetaBatchNorm
from syndof import cli
from syndof import io as sio

log = logging.getLogger("dmenet.recalibrate")

_BN_TYPES = (BetaBatchNorm, nn.modules.batchnorm._BatchNorm)


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Reset every BatchNorm of ``module`` and re-estimate its statistics as the plain mean over ``batches``.

    Args:
        module: network whose forward takes one batch (B, 3, H, W) RGB in [0, 1].
        batches: input batches; each contributes with equal weight (cumulative average, momentum 1/(k+1)).
    Returns:
        Number of batches used. ``module`` is left in eval mode; learned parameters are unchanged.
    """
    bns = [m for m in module.modules() if isinstance(m, _BN_TYPES)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.running_mean.zero_()
        m.running_var.fill_(1.0)
        m.num_batches_tracked.zero_()
    was_training = module.training
    module.train()
    n = 0
    try:
        for n, batch in enumerate(batches, start=1):
            for m in bns:
                m.momentum = 1.0 / n
            module(batch)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        module.train(was_training)
    if n == 0:
        raise ValueError("no batch given for BatchNorm re-estimation")
    module.eval()
    return n


def random_crops(paths: list[Path], count: int, crop: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` random ``crop``² crops (H, W, 3 float RGB) from images drawn from ``paths``; bad files are skipped."""
    crops: list[np.ndarray] = []
    order = rng.permutation(len(paths))
    i = 0
    while len(crops) < count and i < 10 * count:
        path = paths[order[i % len(paths)]]
        i += 1
        try:
            img = sio.read_image(path)
        except sio.InputError as err:
            log.warning("skipped: %s", err)
            continue
        h, w = img.shape[:2]
        if min(h, w) < crop:
            continue
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        crops.append(img[y : y + crop, x : x + crop])
    if not crops:
        raise ValueError(f"no usable image of at least {crop}² px among {len(paths)} files")
    return crops


def domain_batches(domains: list[list[np.ndarray]], batch: int) -> list[torch.Tensor]:
    """Interleave per-domain batches (never mixing domains inside one batch, as in training)."""
    per_domain = [[np.stack(d[i : i + batch]) for i in range(0, len(d) - batch + 1, batch)] for d in domains]
    out = []
    for group in zip(*per_domain):
        out.extend(torch.from_numpy(b).permute(0, 3, 1, 2).contiguous() for b in group)
    return out


EXAMPLE = ("dmenet-recalibrate --model checkpoints/dmenet_lite.safetensors --real ../shared/data/cuhk/image "
           "--crops 4 --crop 128 --out runs/recalibrate_example.safetensors")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    from dmenet.cli import add_model
    from dmenet.models.model_io import RESERVED_KEYS, load_model_file, save_model

    p = cli.parser("dmenet.training.recalibrate", __doc__, EXAMPLE)
    add_model(p, required=True)
    p.add_argument("--mode", choices=("running", "image"), default="running",
                   help="running: re-estimate the moving statistics; image: per-image statistics at inference")
    p.add_argument("--synthetic", help="SYNDOF folder (its image/ is used); --mode running")
    p.add_argument("--real", help="folder of real photos (recursive); --mode running")
    p.add_argument("--out", required=True)
    p.add_argument("--crops", type=int, default=64, help="crops per domain")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    cli.add_device(p)
    cli.add_threads(p)
    args = p.parse_args(argv)
    cli.check_device(args.device)
    cli.apply_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    model, meta = load_model_file(args.model, device=args.device)
    meta = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    if args.mode == "image":
        model.config.image_bn_stats = True
        meta["bn_at_inference"] = {"mode": "image statistics", "source_model": str(args.model)}
        save_model(args.out, model, meta)
        log.info("wrote %s (inference uses per-image BatchNorm statistics)", args.out)
        return 0
    if not args.synthetic and not args.real:
        p.error("--mode running needs --synthetic and/or --real")
    rng = np.random.default_rng(args.seed)
    folders = []
    if args.synthetic:
        folders.append((Path(args.synthetic) / "image", False))
    if args.real:
        folders.append((Path(args.real), True))
    domains = []
    for folder, recursive in folders:
        if not folder.is_dir():
            p.error(f"{folder}: not a folder")
        paths = (sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in sio.IMAGE_EXTENSIONS)
                 if recursive else sio.list_images(folder))
        if not paths:
            p.error(f"{folder}: no images")
        try:
            domains.append(random_crops(paths, args.crops, args.crop, rng))
        except ValueError as err:
            p.error(f"{folder}: {err}")
    n = recalibrate_batchnorm(model.blur, [b.to(args.device) for b in domain_batches(domains, args.batch)])
    # σ uses the re-estimated statistics; the detection path (S, fitted by fit_dbd) keeps the source's normalisation
    model.config.detection_image_bn_stats = model.config.detection_bn_image
    model.config.image_bn_stats = False
    meta["bn_at_inference"] = {"batches": n, "batch": args.batch, "crop": args.crop, "crops_per_domain": args.crops,
                               "mode": "re-estimated moving statistics", "synthetic": args.synthetic,
                               "real": args.real, "seed": args.seed, "source_model": str(args.model)}
    save_model(args.out, model.cpu(), meta)
    log.info("re-estimated BatchNorm statistics of B from %d batches; wrote %s", n, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
