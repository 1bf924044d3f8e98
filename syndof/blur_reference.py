"""The layered back-to-front renderer with occlusion inpainting (SYNDOF ``blur_by_depth.m``, docs/method.md §9) as a
plain per-layer, full-frame loop: the algorithm step by step. The fast tiled renderer
(:func:`syndof.blur.render_layers`) equals :func:`render_layers_reference` to float rounding (tests: < 1e-10 in
float64); this one is kept for that equality test and the speed ratio in ``benchmarks/bench_render.py``.

Algorithm (layers k = 0..K−1 far→near, CoC ``c_k``; ``k0`` = first layer with ``c ≤ 1``; buffers C (premultiplied
colour) and A (alpha) start at 0; ``*`` is ``imfilter(…, 'same', 'conv', 'symmetric')``):

1. ``c_k > 1``: ``α = G_k * M_k``, ``F = G_k * (M_k·I)``; else ``α = M_k``, ``F = M_k·I``. ``α < 1e-4 → 0``.
2. For ``k > k0``: U = union of layers < k; ``U_b = G_k * U`` (0 when ``c_k ≤ 1``), ``U_b < 1e-3 → 0``;
   R = ``(U_b > 0) ∧ ¬U``; ``A' = A`` with zeros → 1; ``C ← C/A'``, ``A ← A/A'``; Ĉ = C on U, 0 elsewhere,
   regionfilled over R per channel; Â = regionfill(U, R); in R: ``C ← Ĉ``, ``A ← Â`` (un-premultiplied, as the
   original).
3. ``C ← (1 − α)·C + F``; ``A ← (1 − α)·A + α``.
4. Output ``C / A`` (clipped to [0, 1]; 0 where A = 0, which the original writes for its NaNs).

Both renderers share the thresholds :data:`ALPHA_EPS` and :data:`BAND_EPS`, :func:`layer_table` (the layers' CoCs
and ``k0``) and :func:`finish` (step 4), defined here. The kernels and borders are :mod:`syndof.convolve`'s, the
input checks :mod:`syndof.render_checks`', the optional layer merge :mod:`syndof.layer_merge`'s.
"""

from __future__ import annotations

import numpy as np
import torch

from syndof import units
from syndof.convolve import Conv, layer_kernels, symmetric_pad
from syndof.layer_merge import maybe_merge
from syndof.psf import Kernel
from syndof.regionfill import solve_crop
from syndof.render_checks import check_dtype, check_inputs

ALPHA_EPS = 1e-4
"""Blurred-mask values below this are zeroed (original ``mask_blurred < 0.0001``)."""

BAND_EPS = 1e-3
"""Blurred occluder-union values below this are zeroed (original ``mask_sum_prev_blurred < 0.001``)."""


def layer_table(coc) -> tuple[np.ndarray, int]:
    """(the layers' CoCs as a float64 array, index of the first in-focus layer) of checked layers."""
    coc_np = coc.detach().cpu().double().numpy() if isinstance(coc, torch.Tensor) else np.asarray(coc, np.float64)
    in_focus = np.flatnonzero(coc_np <= 1.0)
    return coc_np, int(in_focus[0]) if in_focus.size else coc_np.size  # no in-focus layer: no occlusion fill


def _fill_band(C: torch.Tensor, A: torch.Tensor, U: np.ndarray, R: np.ndarray) -> None:
    """In place on crops: C (3, h, w), A (h, w) (already renormalised), U/R (h, w) bool. Regionfill over R."""
    vals = np.empty(U.shape + (4,), dtype=np.float64)
    vals[..., :3] = np.where(U[..., None], C.permute(1, 2, 0).cpu().double().numpy(), 0.0)
    vals[..., 3] = U
    out = solve_crop(vals, R)
    Rt = torch.as_tensor(R, device=C.device)
    filled = torch.as_tensor(out, dtype=C.dtype, device=C.device)
    C[:, Rt] = filled[..., :3][Rt].T
    A[Rt] = filled[..., 3][Rt]


def render_layers_reference(image: torch.Tensor, labels: torch.Tensor, coc, max_coc: int = units.DEFAULT_MAX_COC,
                            kernel: Kernel | str = Kernel.GAUSSIAN, dtype: torch.dtype = torch.float64, *,
                            merge_tolerance: float = 0.0) -> torch.Tensor:
    """Plain per-layer full-frame loop of the algorithm (slow; for tests and the speed ratio).

    Arguments and errors as in :func:`syndof.blur.render_layers` (``dtype`` None: float64): ``image`` (3, H, W)
    float in [0, 1], ``labels`` (H, W) integer layer index (0 = farthest), ``coc`` (K,) px. Returns (3, H, W) in
    [0, 1] of ``dtype`` on ``image.device``, as :func:`~syndof.blur.render_layers`."""
    dtype = check_dtype(dtype, torch.float64)
    check_inputs(image, labels, coc, max_coc)
    labels, coc = maybe_merge(labels, coc, merge_tolerance)
    coc_np, k0 = layer_table(coc)
    dev = image.device
    img = image.to(dtype)
    kernels = layer_kernels(coc_np, max_coc, kernel, dtype, dev)
    H, W = labels.shape
    conv = Conv(dev)
    C = torch.zeros(3, H, W, dtype=dtype, device=dev)
    A = torch.zeros(H, W, dtype=dtype, device=dev)
    for k, kern in enumerate(kernels):
        M = (labels == k).to(dtype)
        if kern is not None:
            blurred = conv(symmetric_pad(torch.cat([M[None], M[None] * img]), kern.radius), kern)
            alpha, fg = blurred[0], blurred[1:]
        else:
            alpha, fg = M, M[None] * img
        alpha = torch.where(alpha < ALPHA_EPS, torch.zeros_like(alpha), alpha)
        if k > k0:
            U = labels < k
            if kern is not None:
                Ub = conv(symmetric_pad(U.to(dtype)[None], kern.radius), kern)[0]
                Ub = torch.where(Ub < BAND_EPS, torch.zeros_like(Ub), Ub)
            else:
                Ub = torch.zeros_like(A)
            R = (Ub > 0) & ~U
            denom = torch.where(A == 0, torch.ones_like(A), A)
            C = C / denom
            A = A / denom
            if bool(R.any()):
                _fill_full(C, A, U.cpu().numpy(), R.cpu().numpy())
        C = (1 - alpha) * C + fg
        A = (1 - alpha) * A + alpha
    return finish(C, A)


def _fill_full(C, A, U, R):
    from syndof.regionfill import region_bbox

    box = region_bbox(R, margin=1)
    Cb, Ab = C[:, box[0], box[1]], A[box[0], box[1]]
    _fill_band(Cb, Ab, U[box], R[box])
    C[:, box[0], box[1]] = Cb
    A[box[0], box[1]] = Ab


def finish(C: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Step 4, the output of both renderers: ``C / A`` of the premultiplied colour C (3, H, W) and alpha A (H, W),
    clipped to [0, 1], 0 where ``A = 0`` (the original's NaNs); (3, H, W), C's dtype and device."""
    out = torch.where(A > 0, C / torch.where(A > 0, A, torch.ones_like(A)), torch.zeros_like(C))
    return out.clamp(0.0, 1.0)
