"""Zhuo & Sim 2011, "Defocus map estimation from a single image" (Pattern Recognition 44(9)).

1. Edges: Canny on the grayscale image (``skimage.feature.canny``, σ_c = 1, its default thresholds; MATLAB's
   automatic ones — 70th percentile — mark most weak texture in blurred areas and gave worse maps on CUHK).
2. Re-blur the image with a Gaussian of σ0 (= 1 px). For a step edge blurred by σ the gradient-magnitude ratio
   ``R = |∇I| / |∇(I ⊗ g_σ0)|`` at the edge equals ``sqrt(σ² + σ0²) / σ``, so ``σ = σ0 / sqrt(R² − 1)``
   (gradients: central differences). ``R ≤ 1`` (no measurable sharpening) gives ``maxBlur``.
3. Clip to [0, maxBlur] (3 px; 3.275 in DMENet's RTF comparison) and, optionally, joint-bilateral filter the sparse
   map over edge pixels only (guide: grayscale) to suppress outliers — window 13×13, σ_s = 3 px, σ_r = 0.1
   (project values; the paper's are not recorded here).
4. Propagate to a dense map with the matting Laplacian (``dmenet.peers.matting.propagate``: 3×3 windows,
   ε = 1e-7 as Levin's code, λ = 0.005 on edge pixels — a project value; the Python port alikaraali/dfe-pr2010
   uses 0.001 with D = diag(ŝ)). For speed the propagation runs at a working resolution whose longer side is
   at most ``work_side`` (320 px by default; the sparse σ values stay in input-resolution px) and the dense map is
   resized back bilinearly.

The blur map for :data:`dmenet.peers.PEERS` is ``σ / maxBlur``; the registered ``zhuo_sim`` method also gives σ.

Where this differs from the authors' MATLAB code (``defocusEstimation.m`` / ``demo.m``; a spec audit, 5 Dec 2026):
the authors take gradients with Gaussian derivatives (σ1 = 1, σ2 = 1.5·σ1, ``σ = sqrt((R²σ1² − σ2²)/(1 − R²))``);
the central differences here bias small σ upward on pixel-sampled step edges (true σ 0.5 / 1.0 / 2.0 px read as
0.87–0.97 / 1.18–1.29 / 2.09–2.15, a hard step as 0.84), but the authors' form scored worse on RTF 01 in this
pipeline (MAE 0.104 against 0.080: it under-estimates), so it is not used. The authors drop edge pixels with
R ≤ 1.01 (or above σ2/σ1) from the propagation; here R ≤ 1 is kept as a constraint at ``maxBlur`` (6.5–7 % of the
Canny edge pixels of two CUHK photos). Their demo uses a fixed Canny threshold (0.1 relative high, 0.04 low), λ =
0.001, and a bilateral filter of sd 5, sr 0.1·maxBlur with an RGB guide and an extra exp(−σ) weight.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage.feature import canny

from dmenet.peers._util import check_image, to_gray
from dmenet.peers.matting import propagate
from syndof import units
from syndof.resize import resize_back, shrink_long_side

MAX_BLUR = 3.0
MAX_BLUR_RTF = 3.275


def sparse_defocus(
    image: np.ndarray, sigma0: float = 1.0, canny_sigma: float = 1.0, max_blur: float = MAX_BLUR
) -> tuple[np.ndarray, np.ndarray]:
    """σ at edge pixels from the re-blur gradient ratio.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        sigma0: re-blur Gaussian σ0 in px.
        canny_sigma: Canny smoothing σ in px.
        max_blur: largest σ reported (px).

    Returns:
        ``(sigma, edges)``: (H, W) float32 σ in px (0 off edges) and (H, W) bool edge mask.
    """
    gray = to_gray(check_image(image)).astype(np.float64)
    edges = canny(gray, sigma=canny_sigma)  # skimage default thresholds: 0.1 / 0.2 of the [0, 1] range
    gy, gx = np.gradient(gray)
    reblurred = ndimage.gaussian_filter(gray, sigma0, mode="nearest", truncate=4.0)
    ry, rx = np.gradient(reblurred)
    grad = np.hypot(gx, gy)
    grad_re = np.hypot(rx, ry)
    ratio = np.divide(grad, grad_re, out=np.zeros_like(grad), where=grad_re > 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(ratio > 1.0, sigma0 / np.sqrt(np.maximum(ratio * ratio - 1.0, 1e-12)), max_blur)
    sigma = np.clip(np.nan_to_num(sigma, nan=max_blur, posinf=max_blur), 0.0, max_blur)
    return np.where(edges, sigma, 0.0).astype(np.float32), edges


def joint_bilateral_sparse(
    sigma: np.ndarray,
    mask: np.ndarray,
    guide: np.ndarray,
    radius: int = 6,
    sigma_s: float = 3.0,
    sigma_r: float = 0.1,
) -> np.ndarray:
    """Joint bilateral filter of a sparse map, evaluated at and averaging over mask pixels only.

    Args:
        sigma: (H, W) sparse values; mask: (H, W) bool; guide: (H, W) float guidance in [0, 1].

    Returns:
        (H, W) float32 filtered sparse map (0 off the mask).
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros((h, w), dtype=np.float32)
    g0 = guide[ys, xs]
    num = np.zeros(ys.size)
    den = np.zeros(ys.size)
    for dy in range(-radius, radius + 1):
        ny = np.clip(ys + dy, 0, h - 1)
        for dx in range(-radius, radius + 1):
            nx = np.clip(xs + dx, 0, w - 1)
            wgt = mask[ny, nx] * np.exp(
                -(dy * dy + dx * dx) / (2 * sigma_s**2) - (guide[ny, nx] - g0) ** 2 / (2 * sigma_r**2)
            )
            num += wgt * sigma[ny, nx]
            den += wgt
    out = np.zeros((h, w), dtype=np.float32)
    out[ys, xs] = num / np.maximum(den, 1e-12)  # den ≥ 1 (the centre pixel), kept safe anyway
    return out


def _downsample_sparse(values: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted mean of the known values per working-resolution pixel; ``size`` = (width, height)."""
    m = mask.astype(np.float32)
    cover = cv2.resize(m, size, interpolation=cv2.INTER_AREA)
    total = cv2.resize(values.astype(np.float32) * m, size, interpolation=cv2.INTER_AREA)
    known = cover > 1e-6
    return np.where(known, total / np.maximum(cover, 1e-6), 0.0), known


def zhuo_sim_sigma(
    image: np.ndarray,
    sigma0: float = 1.0,
    max_blur: float = MAX_BLUR,
    lam: float = 0.005,
    work_side: int | None = 320,
    bilateral: bool = True,
) -> np.ndarray:
    """Dense defocus map (Gaussian σ in px) by Zhuo & Sim.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        sigma0: re-blur σ0 (px).
        max_blur: clip value (px): 3 (paper code) or :data:`MAX_BLUR_RTF` (DMENet's RTF comparison).
        lam: propagation data weight λ.
        work_side: longest side of the propagation grid (None = full resolution; slow above ~0.2 Mpx).
        bilateral: joint-bilateral filter the sparse map first.

    Returns:
        (H, W) float32 σ in px (input resolution), in [0, max_blur].
    """
    image = check_image(image)
    h, w = image.shape[:2]
    sparse, edges = sparse_defocus(image, sigma0=sigma0, max_blur=max_blur)
    if bilateral:
        sparse = joint_bilateral_sparse(sparse, edges, to_gray(image).astype(np.float64))
    if not edges.any():  # no edge: nothing to measure (flat image) — report "maximally blurred"
        return np.full((h, w), max_blur, dtype=np.float32)
    guide, scale = shrink_long_side(image, work_side, minimum=3)
    if scale < 1.0:
        values, known = _downsample_sparse(sparse, edges, (guide.shape[1], guide.shape[0]))
        dense = propagate(guide, values, known, lam=lam)
        dense = resize_back(dense.astype(np.float32), (h, w))
    else:
        dense = propagate(image, sparse, edges, lam=lam)
    return np.clip(dense, 0.0, max_blur).astype(np.float32)


def zhuo_sim_blur_map(image: np.ndarray, max_blur: float = MAX_BLUR) -> np.ndarray:
    """Blur map ``σ / max_blur``: (H, W) float32 in [0, 1], 1 = more blurred."""
    return units.sigma_fraction(zhuo_sim_sigma(image, max_blur=max_blur), max_blur).astype(np.float32)
