"""BatchNorm re-estimation for inference: replace the moving statistics by exact averages over chosen data.

Why: DMENet trains B with one train-mode forward pass per domain (synthetic, labelled real, unlabelled real;
docs/method.md §5), so its moving statistics are an exponential blend dominated by whichever domain ran last in
each iteration.
Eval-mode outputs then drift from train-mode ones (measured on the lite model at step 1100: synthetic-test label MAE
0.077 with batch statistics vs 0.260 with the moving ones). Re-estimating the statistics after training, with a
cumulative (equal-weight) average over crops from the domains the model will see at inference, removes the drift
without touching any learned weight.

A mixed synthetic + real re-estimation only partly closes the gap (0.270 → 0.205 at step 1200), because B's features
are normalised per domain during training. ``--mode image`` re-estimates nothing: the recipe's σ path gets per-image
BatchNorm statistics (:class:`dmenet.models.recipe.BNMode`) and inference normalises each image by itself (0.074 at
step 1200, the same as training's batch statistics). Releases until 2 Dec 2026 05:10 used it, but per-image
statistics divide away a blur that covers the whole image, so B learned to rank blur within the image instead of
measuring it. The shipped model re-estimates on synthetic crops only (``--mode moving --synthetic``): rule-v9
validation 0.0498 against 0.0819 per image, 0.0716 mixed and 0.1197 on the real domain alone
(docs/history.md §7).

Usage: ``python -m dmenet.calibrate bn`` (:mod:`dmenet.calibrate`), which keeps the detection path's statistics
apart from the σ path's (the former ``--mode running`` is ``--mode moving``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from dmenet.models.layers import BetaBatchNorm
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


def random_crops(paths: list[Path], count: int, crop: int, rng: np.random.Generator,
                 skipped: list[str] | None = None) -> list[np.ndarray]:
    """``count`` random ``crop``² crops (H, W, 3 float RGB) from images drawn from ``paths``; bad files are skipped.
    A file drawn again is read again, but says its skip line, or warns of its further frames, once; a file that
    cannot be read or is smaller than ``crop`` px a side is not read again. Returns ``count`` crops, each (crop,
    crop, 3) float32 RGB in [0, 1] (:func:`syndof.io.read_image`; a view of the read photo): once a photo gave a
    crop the draws go on until there are ``count`` (until 7 Dec 2026 they stopped after 10·``count`` draws, so a
    folder of mostly small photos gave fewer crops than the recipe's record says, reliability.md §50); ValueError
    when none of the first 10·``count`` draws gives one. ``skipped``: each unreadable file's ``PATH: reason`` is
    appended, once, for the caller's record."""
    crops: list[np.ndarray] = []
    order = rng.permutation(len(paths))
    i = 0
    seen: set[Path] = set()  # drawn before in this call: its warning or skip line was given then
    unusable: set[Path] = set()  # unreadable or smaller than the crop: never read again
    every = len(set(paths))
    while len(crops) < count and (crops or i < 10 * count) and len(unusable) < every:  # all unusable: stop
        path = paths[order[i % len(paths)]]
        i += 1
        if path in unusable:
            continue
        first = path not in seen
        seen.add(path)
        try:
            img = sio.read_image(path, note_frames=first)
        except sio.InputError as err:
            log.warning("skipped %s", err)
            if skipped is not None:
                skipped.append(str(err))
            unusable.add(path)
            continue
        h, w = img.shape[:2]
        if min(h, w) < crop:
            unusable.add(path)
            continue
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        crops.append(img[y : y + crop, x : x + crop])
    if not crops:
        raise ValueError(f"no usable image of at least {crop}² px among {len(paths)} files")
    return crops


def domain_batches(domains: list[list[np.ndarray]], batch: int) -> list[torch.Tensor]:
    """Interleave per-domain batches (never mixing domains inside one batch, as in training): ``domains[k]`` a list
    of (crop, crop, 3) float32 RGB [0, 1] crops → (batch, 3, crop, crop) tensors, domain 0's first batch, domain
    1's, …, then the second ones; only whole batches, as many per domain as the smallest domain gives."""
    per_domain = [[np.stack(d[i : i + batch]) for i in range(0, len(d) - batch + 1, batch)] for d in domains]
    out = []
    for group in zip(*per_domain):
        out.extend(torch.from_numpy(b).permute(0, 3, 1, 2).contiguous() for b in group)
    return out


def image_folders(synthetic: str | None, real: str | None,
                  skipped: list[str] | None = None) -> list[tuple[Path, list[Path]]]:
    """(folder, image paths) per domain: a SYNDOF folder's ``image/`` and / or a real-photo folder (recursive), as
    :func:`syndof.io.list_images` lists them (hidden names left out, as in every listing); an image name where no
    file can be read (a symbolic link loop or to nothing, a FIFO: :func:`syndof.io.unlisted_images`) is left out
    with one line ``skipped PATH: reason``, that ``PATH: reason`` appended to ``skipped`` when given.

    Raises:
        ValueError: a folder is missing or holds no image (the message names it, and how many image names there are
            no file: :func:`syndof.io.unlisted_note`).
    """
    out, left_out = [], []
    domains = ([(Path(synthetic) / "image", False)] if synthetic else []) + ([(Path(real), True)] if real else [])
    for folder, recursive in domains:
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder")
        paths, unlisted = sio.list_images_and_unlisted(folder, recursive)
        if not paths:
            raise ValueError(f"{folder}: no images{sio.unlisted_note(unlisted)}")
        out.append((folder, paths))
        left_out += unlisted
    for path, why in left_out:  # after every folder's check: a refused run says its one line alone
        log.warning("skipped %s: %s", path, why)
        if skipped is not None:
            skipped.append(f"{path}: {why}")
    return out


def domain_crops(folders: list[tuple[Path, list[Path]]], count: int, crop: int, seed: int,
                 skipped: list[str] | None = None) -> list[list[np.ndarray]]:
    """:func:`random_crops` of each domain from one seeded generator; errors name the folder (ValueError).
    Returns per folder a list of ``count`` (crop, crop, 3) float32 RGB crops in [0, 1]; the unreadable files'
    ``PATH: reason`` appended to ``skipped`` when given."""
    rng = np.random.default_rng(seed)
    domains = []
    for folder, paths in folders:
        try:
            domains.append(random_crops(paths, count, crop, rng, skipped))
        except ValueError as err:
            raise ValueError(f"{folder}: {err}") from err
    return domains


def describe_source(synthetic: str | None, real: str | None, crops: int, crop: int, seed: int, date: str) -> str:
    """The recipe's ``moving_stats`` text for statistics re-estimated on these crops."""
    parts = [f"{k}={v}" for k, v in (("synthetic", synthetic), ("real", real)) if v]
    return f"re-estimated on {', '.join(parts)} ({crops} crops of {crop} px per domain, seed {seed}; {date})"
