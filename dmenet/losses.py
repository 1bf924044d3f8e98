"""DMENet losses (docs/method.md §4) as pure functions. Every term is a plain mean over all elements.

Tensor conventions: defocus maps and labels (B, 1, H, W) in [0, 1] (σ/σ_max); masks (B, 1, H, W) {0, 1} with
1 = blurred; discriminator outputs are logits (B, 1, h, w) with synthetic = 1, real = 0.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dmenet.models.layers import tf_nearest_resize_align_corners
from syndof import units


def defocus_loss(pred: Tensor, target: Tensor) -> Tensor:
    """L_defocus = MSE(B(x_s), y_s): ``pred``, ``target`` (B, 1, H, W) labels σ/σ_max in [0, 1] → a 0-d loss in
    (σ/σ_max)², in [0, 1]."""
    return F.mse_loss(pred, target)


def aux_loss(aux: Sequence[Tensor], target: Tensor) -> Tensor:
    """L_aux = Σ_k MSE(aux_k, down_k(y_s)), targets resized with TF nearest ``align_corners`` (docs/method.md §11.2).

    Args:
        aux: coarse → fine side outputs (B, 1, h_k, w_k); a full-resolution one is compared with ``target`` itself.
        target: (B, 1, H, W) label.
    """
    total = target.new_zeros(())
    for out in aux:
        size = tuple(out.shape[-2:])
        down = target if size == tuple(target.shape[-2:]) else tf_nearest_resize_align_corners(target, size)
        total = total + F.mse_loss(out, down)
    return total


def perceptual_loss(perceptual: Callable[[Tensor], Tensor], pred: Tensor, target: Tensor) -> Tensor:
    """L_perc = MSE(C(B(x_s)), C(y_s)); gradients flow through the frozen C into ``pred`` only. ``pred``, ``target``
    (B, 1, H, W) labels σ/σ_max in [0, 1] → a 0-d loss ≥ 0 (C's features: no unit)."""
    with torch.no_grad():
        target_feat = perceptual(target)
    return F.mse_loss(perceptual(pred), target_feat)


def downscale_images(x: Tensor, size: int) -> tuple[Tensor, float]:
    """Area-downscale square images (B, C, H, H) to ``size``² px; returns them and the scale ``size / H``."""
    if x.shape[-1] != x.shape[-2] or not 0 < size <= x.shape[-1]:
        raise ValueError(f"expected square images of side >= {size}, got {tuple(x.shape[-2:])}")
    return F.interpolate(x, size=(size, size), mode="area"), size / x.shape[-1]


def scale_consistency_loss(pred_small: Tensor, pred_full: Tensor, scale: float) -> Tensor:
    """L_scale = MSE(B(down_s(x)), s · down_s(B(x))): resizing an image by s scales its blur by s.

    Args:
        pred_small: (B, 1, h, w) B's label map (σ/σ_max) of the image downscaled by ``scale``.
        pred_full: (B, 1, H, W) B's label map of the full image; the caller detaches it (the target).
        scale: h / H in (0, 1). Labels are linear in σ, so the target is the area-downscaled map × ``scale``.
    """
    target = units.rescale_sigma(F.interpolate(pred_full, size=tuple(pred_small.shape[-2:]), mode="area"), scale)
    return F.mse_loss(pred_small, target)


def sharpness_loss(logits: Tensor, mask: Tensor) -> Tensor:
    """L_sharp = BCE-with-logits(S(B(x_r)), m_r), mask 1 = blurred: ``logits`` (B, 1, H, W) (no unit), ``mask``
    the same shape in {0, 1} → a 0-d loss ≥ 0 (nats)."""
    return F.binary_cross_entropy_with_logits(logits, mask)


def _bce_const(logits: Tensor, value: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, value))


def adversarial_loss(d_labelled: Tensor, d_unlabelled: Tensor) -> Tensor:
    """L_adv for B (non-saturating): ½[BCE(D(f(x_r)), 1) + BCE(D(f(x_u)), 1)] — real features made to look synthetic.
    ``d_labelled``, ``d_unlabelled``: D's patch logits (B, 1, h, w), any shapes (no unit) → a 0-d loss ≥ 0 (nats)."""
    return 0.5 * (_bce_const(d_labelled, 1.0) + _bce_const(d_unlabelled, 1.0))


def discriminator_loss(d_synthetic: Tensor, d_labelled: Tensor, d_unlabelled: Tensor) -> Tensor:
    """L_D (unweighted) = ½[2·BCE(D(f(x_s)), 1) + BCE(D(f(x_r)), 0) + BCE(D(f(x_u)), 0)]: D's patch logits
    (B, 1, h, w) of the three batches, any shapes (no unit) → a 0-d loss ≥ 0 (nats)."""
    return 0.5 * (2.0 * _bce_const(d_synthetic, 1.0) + _bce_const(d_labelled, 0.0) + _bce_const(d_unlabelled, 0.0))
