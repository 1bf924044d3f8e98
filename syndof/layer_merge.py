"""Layer merging (not in the original; off by default; docs/method.md §9, "Layer merging"): adjacent layers whose
σ lie within ``merge_tolerance`` px are rendered as one layer, so fewer compositing passes and fill solves run.

:func:`merge_plan` groups the layers (far → near, never across the focus) and gives each group's CoC;
:func:`merge_layers` relabels a label map by it; :func:`maybe_merge` is the step both renderers run (nothing at
tolerance 0, which leaves the output bit-for-bit unchanged); :func:`check_merge_tolerance` is the one check of the
tolerance (the command-line option's too).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from syndof import units

MERGE_SLACK = 1e-9
"""px of σ added to ``merge_tolerance`` so that CoC steps of exactly the tolerance (0.1 px CoC = 0.025 px σ) are
merged regardless of float rounding."""


def check_merge_tolerance(tolerance, what: str = "merge_tolerance") -> float:
    """``tolerance`` as a float; ValueError starting with ``what`` (the name the caller's user knows, e.g. the CLI
    option) unless it is a finite number ≥ 0 (px of σ)."""
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of px of σ >= 0, got {tolerance!r}") from None
    if not math.isfinite(tol) or tol < 0:
        raise ValueError(f"{what} must be a finite σ difference >= 0 px (0 = exact, one layer per CoC), "
                         f"got {tolerance!r}")
    return tol


def merge_plan(coc, counts, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Group adjacent layers whose blur differs by at most ``tolerance`` px of σ (an approximation; 0 = none).

    Layers are scanned far → near and grouped greedily: a layer joins the current group while the group's σ range
    (max − min over its members, ``σ = units.coc_to_sigma(c)``) stays ≤ ``tolerance``, and only layers on the same
    side of focus are grouped (in-focus ``c ≤ 1`` with in-focus, blurred with blurred), so the first in-focus layer
    — where the occlusion fill starts — is kept. A group is rendered as one layer at the group's place in the
    occlusion order (its members no longer occlude one another) with one kernel, of

    * σ = the pixel-count-weighted mean of its members' σ (the plain mean when the group holds no pixel),
    * CoC = ``units.sigma_to_coc(σ)`` rounded to 0.1 px (the generator's CoC grid) and clipped to the members'
      CoC range; an in-focus group gets CoC 1 (σ 0).

    So the σ a pixel is rendered with differs from its own layer's σ by at most ``tolerance`` (+ the 0.1-px CoC
    rounding, ≤ 0.0125 px σ, which never leaves the members' range).

    Args:
        coc: (K,) CoC in px per layer, far → near.
        counts: (K,) pixel count per layer (the weights).
        tolerance: px of σ, finite and ≥ 0 (checked).

    Returns:
        ``group`` (K,) int64 new layer index of every old layer (non-decreasing, 0 … G − 1), and ``merged_coc``
        (G,) float64 CoC in px of each new layer (1 for an in-focus group, else within its members' CoC range,
        rounded to 0.1 px).
        With ``tolerance == 0`` the identity: ``arange(K)`` and ``coc`` unchanged.
    """
    tol = check_merge_tolerance(tolerance)
    coc = np.asarray(coc, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != coc.shape:
        raise ValueError(f"counts {counts.shape} and coc {coc.shape} differ in shape")
    if tol == 0:
        return np.arange(coc.size, dtype=np.int64), coc.copy()
    sigma = units.coc_to_sigma(coc)
    focus = coc <= 1.0
    group = np.zeros(coc.size, dtype=np.int64)
    starts = [0]
    lo = hi = sigma[0]
    for k in range(1, coc.size):
        s = sigma[k]
        if focus[k] != focus[k - 1] or max(hi, s) - min(lo, s) > tol + MERGE_SLACK:
            starts.append(k)
            lo = hi = s
        else:
            lo, hi = min(lo, s), max(hi, s)
        group[k] = len(starts) - 1
    bounds = starts + [coc.size]
    merged = np.empty(len(starts))
    for g in range(len(starts)):
        a, b = bounds[g], bounds[g + 1]
        if focus[a]:
            merged[g] = 1.0
            continue
        w = counts[a:b]
        s_mean = float(np.average(sigma[a:b], weights=w)) if w.sum() > 0 else float(sigma[a:b].mean())
        c = units.round_half_away(float(units.sigma_to_coc(s_mean)), 1)
        merged[g] = min(max(c, float(coc[a:b].min())), float(coc[a:b].max()))
    return group, merged


def merge_layers(labels: torch.Tensor, coc, tolerance: float) -> tuple[torch.Tensor, np.ndarray]:
    """Relabel ``labels`` (H, W) long by :func:`merge_plan` (``coc`` (K,) px, ``tolerance`` px of σ); returns
    (merged labels (H, W) long on the same device, merged CoCs (G,) float64 px).

    The σ each pixel is rendered with is ``units.coc_to_sigma(merged_coc)[merged_labels]``: write that as the
    ground-truth σ map (:meth:`syndof.camera.LayeredDepth.merged` does so), not the unmerged layers' σ."""
    coc_np = coc.detach().cpu().double().numpy() if isinstance(coc, torch.Tensor) else np.asarray(coc, np.float64)
    counts = torch.bincount(labels.reshape(-1), minlength=coc_np.size).cpu().numpy()[: coc_np.size]
    group, merged = merge_plan(coc_np, counts, tolerance)
    lut = torch.as_tensor(group, device=labels.device)
    return lut[labels], merged


def maybe_merge(labels, coc, merge_tolerance):
    """(labels, coc) merged by :func:`merge_layers`; the inputs untouched (same objects) when the tolerance is 0.
    The caller has checked them (:func:`~syndof.render_checks.check_inputs`) before bincount sees bad labels."""
    if check_merge_tolerance(merge_tolerance) == 0:
        return labels, coc
    return merge_layers(labels, coc, merge_tolerance)
