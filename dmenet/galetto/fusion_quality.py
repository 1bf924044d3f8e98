"""Q^AB/F, the edge-preservation fusion measure of Xydeas & Petrović (2000): how much of the sources' edge strength
and orientation the fused image keeps, pooled with the sources' edge strengths as weights. 1 would be perfect
preservation; with the paper's constants the ceiling is :data:`Q_MAX` ≈ 0.9748 (see below); a flat fused image
scores ≈ 0.

Reference: C. S. Xydeas and V. Petrović, "Objective image fusion performance measure", Electronics Letters 36(4),
pp. 308–309, 2000 (also Proc. SPIE 4051, 2000). Checked against the public MATLAB toolbox code ``metricXydeas.m``
(Z. Liu 2003, corrected by Yu Liu 2019 to the paper's Eq. 4 and constants); written anew here.

For a gray image X (values ×255 as the reference code works on 0–255 doubles; only the 1e-5 guards below depend on
that scale) and the Sobel responses s_x = X ⋆ [[-1,0,1],[-2,0,2],[-1,0,1]], s_y = X ⋆ [[-1,-2,-1],[0,0,0],[1,2,1]]
(correlation, ``border``: see :func:`edge_maps`):

* edge strength g = √(s_x² + s_y²), orientation α = arctan(s_y / s_x) ∈ (−π/2, π/2), with s_x = 0 replaced by 1e-5
  (so a vertical gradient gives ±π/2 and a flat pixel 0, as in the reference);
* relative strength G^AF = g_F/g_A if g_A > g_F else g_A/g_F, relative orientation A^AF = 1 − |α_A − α_F| / (π/2),
  where a zero strength is replaced by 1e-5 (the reference's guard: a pixel flat in both gives G = 1, a pixel flat
  in one only gives G ≈ 0);
* preservation Q^AF = Γg Γα / ((1 + exp(κg (G^AF − σg))) (1 + exp(κα (A^AF − σα)))) with Γg = 0.9994, κg = −15,
  σg = 0.5, Γα = 0.9879, κα = −22, σα = 0.8 (the paper's values; the toolbox's older copy used 1, −10, 0.5;
  1, −20, 0.75);
* weights w^A = g_A^L, L = 1 (zero strengths replaced by 1e-5 as above), and
  Q^AB/F = Σ_pixels (Q^AF w^A + Q^BF w^B) / Σ_pixels (w^A + w^B).

Perfect preservation (G = A = 1) gives Q^AF = Γg Γα / ((1 + e^{−7.5})(1 + e^{−4.4})) = :data:`Q_MAX`, so a fused
image equal to one source (the other flat) scores Q_MAX, not 1. The only departure from the reference code: its
zero guard is applied in an order that makes G = 0 vs 1e-5/g_B depend on which source comes first where F is flat;
here the guard is applied once to every image, so the measure is exactly symmetric in the sources.

:func:`qabf_sources` is the same pooled sum over K ≥ 2 sources, Σ_k Q^{kF} w^k / Σ_k w^k (equal to :func:`qabf`
for K = 2). RGB inputs become gray by the exact ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B (:data:`LUMA`,
the weights of OpenCV's ``COLOR_RGB2GRAY``), in float64. That is not MATLAB's ``rgb2gray``, whose weights are
rounded to 0.2989, 0.5870, 0.1140 (:data:`syndof.images.RGB2GRAY_WEIGHTS`, summing to 0.9999): Y here is higher by
0.0001 R (≤ 1e-4 on [0, 1]) than rgb2gray's gray. Gray inputs are used as they are.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from syndof.choices import Choice, parse_choice
from syndof.images import as_rgb_float

GAMMA_G, KAPPA_G, SIGMA_G = 0.9994, -15.0, 0.5
GAMMA_A, KAPPA_A, SIGMA_A = 0.9879, -22.0, 0.8
L = 1.0
EPS = 1e-5  # the reference code's guard for zero gradients (on 0–255 values)
LUMA = (0.299, 0.587, 0.114)
"""RGB → gray weights of :func:`to_gray`: ITU-R BT.601 luma, unrounded (not MATLAB ``rgb2gray``'s 0.2989, 0.5870,
0.1140, :data:`syndof.images.RGB2GRAY_WEIGHTS`)."""


class SobelBorder(Choice):
    """Sobel border handling of :func:`edge_maps`: ``zero`` as the reference code, ``reflect`` mirrored."""

    ZERO = "zero"
    REFLECT = "reflect"


BORDERS = {SobelBorder.ZERO: cv2.BORDER_CONSTANT, SobelBorder.REFLECT: cv2.BORDER_REFLECT_101}


def preservation(g_rel: np.ndarray, a_rel: np.ndarray) -> np.ndarray:
    """Q = Γg Γα / ((1 + exp(κg (G − σg))) (1 + exp(κα (A − σα)))) for relative strength G and orientation A.

    ``g_rel``, ``a_rel``: arrays (or scalars) of broadcastable shapes, normally (H, W), no unit: G in [0, 1] (the
    ratio of the weaker to the stronger edge strength), A in (−1, 1] (1 − orientation difference / (π/2), the
    orientations in (−π/2, π/2)). Returns float64 of their broadcast shape in (0, :data:`Q_MAX`] (both κ < 0: Q
    grows with G and A, its ceiling at G = A = 1)."""
    qg = GAMMA_G / (1.0 + np.exp(KAPPA_G * (g_rel - SIGMA_G)))
    qa = GAMMA_A / (1.0 + np.exp(KAPPA_A * (a_rel - SIGMA_A)))
    return qg * qa


Q_MAX = float(preservation(np.float64(1.0), np.float64(1.0)))
"""Q^AF of perfect preservation with the paper's constants (≈ 0.97479): the measure's ceiling."""


def to_gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Gray (H, W) / (H, W, 1) as is, or (H, W, 3) RGB (RGBA: alpha dropped) → BT.601 luma, (H, W) float64 in
    [0, 1]; float in [0, 1], uint8 or uint16 (:func:`syndof.images.as_rgb_float`). Other shapes and dtypes, NaN / inf,
    float values in 0…255 or an empty image: a ValueError naming ``name``."""
    rgb = as_rgb_float(image, f"Q^AB/F: {name}", dtype=np.float64)
    if np.shape(image)[2:] in ((), (1,)):  # gray: its own values, not a luma of three equal channels
        return rgb[..., 0]
    return rgb @ np.asarray(LUMA)


def edge_maps(gray: np.ndarray, border: SobelBorder | str = SobelBorder.ZERO) -> tuple[np.ndarray, np.ndarray]:
    """Sobel edge strength g and orientation α (rad, (−π/2, π/2)) of a gray (H, W) image in [0, 1], computed on
    0–255 values. ``border``: ``"zero"`` pads with 0 like the reference's ``filter2(…, 'same')`` (the image frame
    becomes an edge every image shares), ``"reflect"`` mirrors without repeating the edge pixel (no frame edge)."""
    cv_border = BORDERS[parse_choice(SobelBorder, border, "Q^AB/F: border")]
    x = np.ascontiguousarray(gray * 255.0, dtype=np.float64)
    sx = cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, borderType=cv_border)
    sy = cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, borderType=cv_border)
    g = np.sqrt(sx * sx + sy * sy)
    alpha = np.arctan(sy / np.where(sx == 0, EPS, sx))
    return g, alpha


def _preserved(gs: np.ndarray, als: np.ndarray, gf: np.ndarray, alf: np.ndarray) -> np.ndarray:
    """Per-pixel Q^SF of a source (strength ``gs`` with zeros guarded, orientation ``als``) in the fused image."""
    g_rel = np.minimum(gs, gf) / np.maximum(gs, gf)  # = g_F/g_S if g_S > g_F else g_S/g_F
    a_rel = 1.0 - np.abs(als - alf) / (np.pi / 2)
    return preservation(g_rel, a_rel)


def qabf_sources(sources: Sequence[np.ndarray], fused: np.ndarray,
                 border: SobelBorder | str = SobelBorder.ZERO) -> float:
    """Q^AB/F generalised to K ≥ 2 sources: Σ_k Σ_pixels Q^{kF} w^k / Σ_k Σ_pixels w^k (see the module docstring).

    Args:
        sources: K aligned source images, each (H, W) gray or (H, W, 3) RGB, float in [0, 1].
        fused: the fused image, same (H, W), gray or RGB.
        border: Sobel border handling, ``"zero"`` (reference) or ``"reflect"``.

    Returns:
        Q in [0, :data:`Q_MAX`] (float).

    Raises:
        ValueError: fewer than 2 sources, a malformed image (:func:`to_gray`), or sizes that differ.
    """
    sources = list(sources)
    if len(sources) < 2:
        raise ValueError(f"Q^AB/F needs at least 2 source images, got {len(sources)}")
    return _pooled([to_gray(s, f"sources[{i}]") for i, s in enumerate(sources)], to_gray(fused, "fused"), border,
                   [f"sources[{i}]" for i in range(len(sources))], "fused")


def _pooled(grays: list[np.ndarray], f: np.ndarray, border: SobelBorder | str, names: list[str],
            fused_name: str) -> float:
    """The pooled Q of gray sources ``grays`` in gray fused image ``f`` (all (H, W) float64 in [0, 1])."""
    for name, s in zip(names, grays):
        if s.shape != f.shape:
            raise ValueError(f"Q^AB/F: {name} has size {s.shape[1]}x{s.shape[0]} (W x H) but {fused_name} "
                             f"{f.shape[1]}x{f.shape[0]}; images must be aligned and of one size")
    gf, alf = edge_maps(f, border)
    gf = np.where(gf == 0, EPS, gf)
    num = den = 0.0
    for s in grays:
        gs, als = edge_maps(s, border)
        gs = np.where(gs == 0, EPS, gs)
        w = gs ** L
        num += float((_preserved(gs, als, gf, alf) * w).sum())
        den += float(w.sum())
    return num / den


def qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray, border: SobelBorder | str = SobelBorder.ZERO) -> float:
    """Q^AB/F of fused image ``f`` from sources ``a`` and ``b`` (Xydeas & Petrović 2000; formula in the module
    docstring). Each (H, W) gray or (H, W, 3) RGB (→ BT.601 luma), float in [0, 1] or uint8 (:func:`to_gray`), one
    size; symmetric in a, b. Returns a float in [0, :data:`Q_MAX`]; a ValueError naming ``a``, ``b`` or ``f`` on a
    malformed image (other shapes or dtypes, NaN / inf, float values in 0…255, 0×0) or sizes that differ."""
    return _pooled([to_gray(a, "a"), to_gray(b, "b")], to_gray(f, "f"), border, ["a", "b"], "f")
