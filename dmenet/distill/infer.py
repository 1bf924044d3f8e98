"""Inference of a distill network on one photo: pad to a multiple of 32 (reflect), crop back, calibrated sigmoid
(:func:`dmenet.logits.blur_probability_from_logit`, the transform :mod:`dmenet.distill.calibrate` fits)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dmenet.logits import blur_probability_from_logit
from syndof.images import as_rgb_float
from syndof.resize import resize_back, shrink_long_side


MIN_SHORT_SIDE = 32
"""``max_side`` never shrinks the short side below this many px (:func:`syndof.resize.long_side_scale`): a long
thin strip (40×3848 at the recipe's 320) ran 3 px high, padded to 32, and came back all 1.0 on both a sharp and a
blurred half. DMENet's floor alike (:data:`dmenet.inference.MIN_WORK_SIDE`); photos under 10:1 at 320 unchanged."""

MIN_IMAGE_SIDE = 8
"""The smallest image side (px) the networks measure at its own size (``side`` None): below it the map is constant,
whatever the image. Tried on 9 photos (DUT, BSDS500 test) area-shrunk to s×s px: the student's map was
all 1.0 on 9 of 9 at s = 2–3 (and on sharp noise at 1–4), constant (std < 1e-3) on 7 at 4, 6 at 5, 1 at 6 and 7,
none at 8 (galetto takes 32 px a side, DMENet more than 16 px on one, the peers 2)."""


@torch.no_grad()
def blur_probability(model: torch.nn.Module, image: np.ndarray, side: int | None = None,
                     max_side: int | None = None, multiple: int = 32, logit_scale: float = 1.0,
                     logit_shift: float = 0.0) -> np.ndarray:
    """Blur probability (H, W) float32 in [0, 1] (1 = blurred) of an (H, W, 3) RGB image: float in [0, 1] or uint8
    (gray and RGBA too; :func:`syndof.images.as_rgb_float`, whose ValueError names ``image``), at least
    :data:`MIN_IMAGE_SIDE` px a side (any size ≥ 1 px with ``side``, which resizes it; the network's input is padded
    to a multiple of ``multiple``).

    ``side``: run at side² (the paper's 320² protocol), ``max_side``: shrink so the long side is at most this
    (the short side kept ≥ :data:`MIN_SHORT_SIDE` px); the map is resized back to (H, W) either way. The
    probability is σ(logit_scale·(z − logit_shift)) of the network's logit z (a monotone calibration: per-image
    rankings, hence F-max, do not change)."""
    image = as_rgb_float(image, "image", min_side=1 if side is not None else MIN_IMAGE_SIDE)
    h, w = image.shape[:2]
    work = image
    if side is not None:
        work = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA if side < min(h, w) else cv2.INTER_LINEAR)
    else:
        work, _ = shrink_long_side(image, max_side, min_short_side=MIN_SHORT_SIDE)
    x = torch.from_numpy(np.ascontiguousarray(work.transpose(2, 0, 1)))[None].float()
    device = next(model.parameters()).device
    x = x.to(device).contiguous(memory_format=torch.channels_last)
    hh, ww = x.shape[-2:]
    ph, pw = (-hh) % multiple, (-ww) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(hh, ww) > max(ph, pw) else "replicate")
    logits = model(x)[0, 0, :hh, :ww].float()
    prob = blur_probability_from_logit(logits.cpu().numpy(), logit_scale, logit_shift)
    if prob.shape != (h, w):
        prob = resize_back(prob, (h, w))
    return np.clip(prob, 0.0, 1.0).astype(np.float32)
