"""Distill-DBDGAN losses (forms and reasons: docs/distill.md §Losses). Maps are (B, 1, H, W); probabilities in
[0, 1], 1 = blurred; per-sample weights (B, 1, 1, 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import sobel
from torch import Tensor


def weighted_mean(per_pixel: Tensor, weight: Tensor) -> Tensor:
    """Σ w·x / Σ w over the batch with per-sample weights (0 when every weight is 0): ``per_pixel`` (B, 1, H, W)
    (any shape ``weight`` expands to), ``weight`` (B, 1, 1, 1) ≥ 0 → a 0-d tensor in ``per_pixel``'s unit."""
    w = weight.expand_as(per_pixel)
    return (per_pixel * w).sum() / w.sum().clamp_min(1e-8)


def content_loss(logits: Tensor, mask: Tensor, weight: Tensor, edge: float = 1.0) -> Tensor:
    """BCE(σ(logits), mask) + ``edge``·L1(|Sobel σ(logits)|, |Sobel mask|), per-sample weighted: ``logits``
    (B, 1, H, W) (no unit), ``mask`` (B, 1, H, W) in [0, 1] (1 = blurred), ``weight`` (B, 1, 1, 1) ≥ 0 → a 0-d
    loss ≥ 0 (BCE in nats plus the edge term; no unit).

    The Sobel term penalises blurry or misplaced boundaries of the blur map (Sobel cited by the paper)."""
    bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
    loss = weighted_mean(bce, weight)
    if edge > 0:
        loss = loss + edge * weighted_mean((sobel(torch.sigmoid(logits)) - sobel(mask)).abs(), weight)
    return loss


def consistency_loss(student_logits: Tensor, soft: Tensor, weight: Tensor) -> Tensor:
    """BCE between the student and the teacher's soft target (= per-pixel KL(T‖S) + H(T)), where weight > 0:
    ``student_logits`` (B, 1, H, W) (no unit), ``soft`` (B, 1, H, W) teacher probabilities in [0, 1], ``weight``
    (B, 1, 1, 1) ≥ 0 → a 0-d loss ≥ 0 (nats).

    Its gradient in logit space is σ(s) − t: it never vanishes on saturated pixels, unlike an L1 on
    probabilities."""
    return weighted_mean(F.binary_cross_entropy_with_logits(student_logits, soft, reduction="none"), weight)


def channel_normalized(f: Tensor) -> Tensor:
    """Features divided by their L2 norm over channels at each pixel (scale-free comparison): (B, C, H, W) → the
    same shape, each pixel's channel vector of length 1 (norm clamped at 1e-6: a zero vector stays 0); no unit."""
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-6)


def feature_loss(student_feats: list[Tensor], teacher_feats: list[Tensor], adapters) -> Tensor:
    """Σ_l MSE(norm(A_l(F_S^l)), norm(F_T^l)) with the teacher features detached; sizes must match per level:
    ``student_feats[l]`` (B, C_S^l, H_l, W_l), ``adapters[l]`` maps it to ``teacher_feats[l]``'s (B, C_T^l, H_l, W_l)
    (the shortest of the three lists sets the levels) → a 0-d loss ≥ 0, no unit (:func:`channel_normalized`)."""
    total = student_feats[0].new_zeros(())
    for fs, ft, adapter in zip(student_feats, teacher_feats, adapters):
        total = total + F.mse_loss(channel_normalized(adapter(fs)), channel_normalized(ft.detach()))
    return total


def ra_lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic-average LSGAN discriminator loss: E[(D(r) − E D(f) − 1)²] + E[(D(f) − E D(r) + 1)²].
    ``real``, ``fake``: D's scores (any shapes, e.g. (B, 1, h, w); no unit) → a 0-d loss ≥ 0."""
    return ((real - fake.mean() - 1) ** 2).mean() + ((fake - real.mean() + 1) ** 2).mean()


def ra_lsgan_g(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic-average LSGAN generator loss (the D loss with the roles swapped): ``real``, ``fake`` D's scores
    (any shapes; no unit) → a 0-d loss ≥ 0."""
    return ((fake - real.mean() - 1) ** 2).mean() + ((real - fake.mean() + 1) ** 2).mean()
