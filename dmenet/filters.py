"""Image filters shared by the Galetto & Deng pipeline (and usable by any method): Gaussian filtering with MATLAB
``imgaussfilt`` semantics, box means, He et al.'s guided filter (kornia ``guided_blur``) and the weighted guided
filter modes of ``weightedGF.m`` (Galetto & Deng's official code).

Conventions: NumPy in, NumPy out; float64 internally. Box windows are ``size × size`` px (odd), ``'symmetric'``
border by default (MATLAB ``imboxfilt(..., 'Padding', 'symmetric')`` = OpenCV ``BORDER_REFLECT``; the classical
peers' published recipes take ``'replicate'``, :class:`Border`). ε is in the squared units of
the guide's value range (a guide in [0, 1] takes ε ≈ 1e-3, the same guide on 0–255 takes 255² × that).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from syndof import psf
from syndof.convolve import symmetric_pad
from syndof.choices import Choice, parse_choice

WGF_MODES = (0, 1, 3, 6)


class GuidedBackend(Choice):
    """Implementation of :func:`guided_filter`: ``cv2`` OpenCV box means + a batched 3×3 solve (the default, fast);
    ``kornia`` kornia's ``guided_blur`` (the reference; slow on CPU, borders differ slightly)."""

    CV2 = "cv2"
    KORNIA = "kornia"


class Border(Choice):
    """How the filters here extend the image past its edges: ``symmetric`` (MATLAB ``'symmetric'``, the edge
    repeated then mirrored; the default) or ``replicate`` (the edge pixel repeated, however wide the kernel)."""

    SYMMETRIC = "symmetric"
    REPLICATE = "replicate"


CV2_BORDERS = {Border.SYMMETRIC: cv2.BORDER_REFLECT, Border.REPLICATE: cv2.BORDER_REPLICATE}
"""OpenCV's name of each :class:`Border` (OpenCV's ``BORDER_REFLECT`` repeats the edge pixel: MATLAB's
``'symmetric'``)."""


def gaussian_size(sigma: float) -> int:
    """MATLAB ``imgaussfilt``'s default kernel side ``2⌈2σ⌉ + 1`` px (1 for σ ≤ 0)."""
    return 2 * math.ceil(2.0 * sigma) + 1 if sigma > 0 else 1


def gaussian_filter(x: torch.Tensor, sigma: float, size: int | None = None,
                    border: Border | str = Border.SYMMETRIC) -> torch.Tensor:
    """Separable Gaussian filter of the last two dims (``imgaussfilt``), symmetric padding by default (``border``:
    :class:`Border`).

    Args:
        x: (..., H, W) float tensor (any value range; output in the same units).
        sigma: Gaussian σ in px (0 = identity). The kernel is :func:`syndof.psf.gaussian_kernel_1d` — the same
            ``fspecial`` Gaussian the SYNDOF renderer uses.
        size: kernel side before cropping (None = :func:`gaussian_size`).
        border: :class:`Border` (or its value): symmetric, or replicate.

    Returns:
        tensor of x's shape and dtype.
    """
    replicate = parse_choice(Border, border, "border") is Border.REPLICATE
    if sigma <= 0:
        return x.clone()
    g = psf.gaussian_kernel_1d(sigma, size or gaussian_size(sigma))
    r = g.size // 2
    if r == 0:
        return x.clone()
    shape = x.shape
    if not replicate and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and r < min(shape[-2:]):
        # OpenCV's BORDER_REFLECT is 'symmetric' padding (edge repeated); ~7x faster than conv2d on one core
        flat = x.reshape(-1, *shape[-2:]).numpy()
        k = g.astype(flat.dtype)
        out = [cv2.sepFilter2D(plane, -1, k, k, borderType=cv2.BORDER_REFLECT) for plane in flat]
        return torch.from_numpy(np.stack(out)).reshape(shape)
    flat = x.reshape(-1, 1, *shape[-2:])
    y = F.pad(flat, (r, r, r, r), mode="replicate") if replicate else symmetric_pad(flat, r)
    k = torch.as_tensor(g, dtype=x.dtype, device=x.device)
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    return y.reshape(shape)


def box_mean(x: np.ndarray, size: int, border: Border | str = Border.SYMMETRIC) -> np.ndarray:
    """Mean over ``size × size`` windows (odd size, px), ``border`` (:class:`Border`, symmetric by default): ``x``
    (H, W) or (H, W, C) (per channel), any range and units → float64 of the same shape, range and units."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"box size must be odd and >= 1, got {size}")
    return cv2.blur(np.asarray(x, dtype=np.float64), (size, size),
                    borderType=CV2_BORDERS[parse_choice(Border, border, "border")])


def guided_filter(guide: np.ndarray, src: np.ndarray, size: int, eps: float,
                  backend: GuidedBackend | str = GuidedBackend.CV2,
                  border: Border | str = Border.SYMMETRIC) -> np.ndarray:
    """He et al.'s guided filter (MATLAB ``imguidedfilter``), gray or colour guide.

    Args:
        guide: (H, W) gray or (H, W, 3) colour guide, any value range (ε is in its squared units).
        src: (H, W) map to filter.
        size: box window side (odd px), e.g. 45 for MATLAB ``'NeighborhoodSize', 45``.
        eps: regularisation ε (MATLAB's ``DegreeOfSmoothing``).
        backend: :class:`GuidedBackend` or its value (ValueError otherwise): "cv2" (OpenCV box means + a batched
            3×3 solve; default) or "kornia" (``kornia.filters.guided_blur``, the reference; its CPU box filter is a
            45-tap convolution, ~100× slower at 640×480 on one core, and its 'reflect' border does not repeat the
            edge pixel, so borders differ slightly).
        border: :class:`Border` of the box means (symmetric by default; replicate for the classical peers).

    Returns:
        (H, W) float64 filtered map.
    """
    border = parse_choice(Border, border, "border")
    guide = np.asarray(guide, dtype=np.float64)
    src = np.asarray(src, dtype=np.float64)
    if parse_choice(GuidedBackend, backend, "backend") is GuidedBackend.KORNIA:
        from kornia.filters import guided_blur

        g = torch.as_tensor(guide)
        g = g[None, None] if g.ndim == 2 else g.permute(2, 0, 1)[None]
        out = guided_blur(g, torch.as_tensor(src)[None, None], (size, size), eps,
                          border_type="replicate" if border is Border.REPLICATE else "reflect", separable=True)
        return out[0, 0].numpy()
    if guide.ndim == 2:
        return weighted_gf(guide, src, size, eps, mode=0, border=border)
    if guide.shape[:2] != src.shape:  # the strips slice both by the guide's rows: a taller src was cut silently
        raise ValueError(f"guided_filter: guide {guide.shape} and src {src.shape} differ in size")

    def coefficients(g: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel linear coefficients of the colour guided filter on a row strip: ``a`` (h, W, 3) and ``b`` (h,
        W), with ``src = a·g + b`` in each box (guide ``g`` (h, W, 3), ``p`` (h, W))."""
        mu_i, mu_p = box_mean(g, size, border), box_mean(p, size, border)
        cov_ip = box_mean(g * p[..., None], size, border) - mu_i * mu_p[..., None]
        outer = g[..., :, None] * g[..., None, :]
        sigma = box_mean(outer.reshape(*p.shape, 9), size, border).reshape(*p.shape, 3, 3)
        sigma = sigma - mu_i[..., :, None] * mu_i[..., None, :] + eps * np.eye(3)
        a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
        return a, mu_p - (a * mu_i).sum(-1)

    def output(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple[np.ndarray]:
        """Filtered strip (h, W): ``box(a)·g + box(b)``, as a 1-tuple for :func:`in_row_strips`."""
        return ((box_mean(a, size, border) * g).sum(-1) + box_mean(b, size, border),)

    # each output row depends on the rows within size // 2 of it, twice over: two passes of row strips, each strip
    # with that many rows of context, keep the ~400 B per pixel of the 3×3 systems to one strip's rows
    a, b = in_row_strips(coefficients, (guide, src), size // 2)
    return in_row_strips(output, (a, b, guide), size // 2)[0]


STRIP_PIXELS = 2**20
"""Pixels of a row strip that :func:`in_row_strips` aims at (its own rows; context rows come on top)."""


def in_row_strips(f, inputs: tuple[np.ndarray, ...], context: int,
                  strip_pixels: int | None = None) -> tuple[np.ndarray, ...]:
    """``f(*inputs)`` computed on row strips of the inputs and put together, to bound the memory of ``f``'s
    temporaries by a strip's.

    Args:
        f: takes arrays of the inputs' rows (each (h, W, …)) and returns a tuple of arrays, each (h, W, …). Output
            row y may depend on input rows y ± ``context`` only, with the image's first and last rows as the edges
            of its border rule (box means with a symmetric border qualify: ``context`` = the window's half side).
        inputs: arrays with the same number of rows H (first axis).
        context: rows of context each strip gets above and below its own rows (not kept).
        strip_pixels: a strip's own rows × W, about (at least ``context`` + 1 rows); None = :data:`STRIP_PIXELS`.

    Returns:
        ``f(*inputs)``'s arrays, equal up to float rounding (box sums start at each strip).
    """
    h, w = inputs[0].shape[:2]
    if any(x.shape[0] != h for x in inputs):
        raise ValueError(f"in_row_strips: inputs of {[x.shape[0] for x in inputs]} rows; they must have the same")
    rows = max(context + 1, (strip_pixels or STRIP_PIXELS) // max(w, 1))
    outputs: tuple[np.ndarray, ...] = ()
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        lo, hi = max(0, y0 - context), min(h, y1 + context)
        parts = f(*(x[lo:hi] for x in inputs))
        if not outputs:
            outputs = tuple(np.empty((h, *part.shape[1:]), dtype=part.dtype) for part in parts)
        for out, part in zip(outputs, parts):
            out[y0:y1] = part[y0 - lo:y1 - lo]
    return outputs


def weighted_gf(guide: np.ndarray, src: np.ndarray, size: int, eps: float, mode: int = 6,
                border: Border | str = Border.SYMMETRIC) -> np.ndarray:
    """Weighted guided filter of ``weightedGF.m`` with a gray guide.

    Modes: 0 plain guided filter; 1 variance-weighted averaging of the coefficients (TIP 2020, α = 2);
    3 edge-aware regularisation ε/w (WGIF, TIP 2015); 6 = 3 + 1 with the code's weight 1/(var⁴ + 1e-10).
    ``a = cov/(var + ε/w)`` with ``w = (var + 1e-10)·box(1/(var + 1e-10))`` (modes 3, 6) or ``w = 1``
    (modes 0, 1); ``b = μ_p − a·μ_I``; output ``(box(v·a)·I + box(v·b)) / box(v)`` with v = 1 (modes 0, 3),
    ``1/(var² + 1e-10)`` (mode 1) or ``1/(var⁴ + 1e-10)`` (mode 6).

    Args:
        guide: (H, W) gray guide; src: (H, W) map; size: odd box side px; eps: ε in the guide's squared units;
        border: :class:`Border` of every box mean.

    Returns:
        (H, W) float64.
    """
    if mode not in WGF_MODES:
        raise ValueError(f"weighted_gf mode must be one of {WGF_MODES}, got {mode}")
    I = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)

    def box(x: np.ndarray) -> np.ndarray:
        """Box mean of ``x`` over the ``size``-px window with the chosen border."""
        return box_mean(x, size, border)

    mu_i, mu_p = box(I), box(p)
    var = np.maximum(box(I * I) - mu_i * mu_i, 0.0)
    cov = box(I * p) - mu_i * mu_p
    w = (var + 1e-10) * box(1.0 / (var + 1e-10)) if mode in (3, 6) else 1.0
    a = cov / (var + eps / w)
    b = mu_p - a * mu_i
    if mode in (0, 3):
        return box(a) * I + box(b)
    v = 1.0 / (var ** (2 if mode == 1 else 4) + 1e-10)
    return (box(v * a) * I + box(v * b)) / box(v)
