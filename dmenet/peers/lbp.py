"""LBP-based sharpness (Yi & Eramian, "LBP-based segmentation of defocus blur", TIP 2016).

Metric (their Eq. for m_LBP): on the grayscale image min–max normalised to [0, 1], the 8-neighbour radius-1 local
binary pattern with a threshold — bit p is set when ``g_p − g_c > T_LBP`` (T_LBP = 0.016; diagonal neighbours
bilinearly interpolated) — is mapped to the rotation-invariant uniform code ``riu2`` (number of set bits when the
circular pattern has at most 2 transitions, else 9). Sharpness = fraction of pixels of an s×s window (replicate
border) whose code is in {6, 7, 8, 9}.

``skimage.feature.local_binary_pattern`` is not used: it thresholds at ``g_p − g_c ≥ 0`` and has no T_LBP.

Map (project choice): the paper computes the metric at s = 11, 15, 21 and fuses the scales with Shi et al.'s
multi-scale inference followed by alpha matting of a double-threshold trimap. Here the three scales are averaged and
refined with a guided filter on the grayscale image (radius 8, ε = 1e-3) — image-guided smoothing that keeps the map
continuous for threshold sweeps. The result is inverted: 1 = blurred.
"""

from __future__ import annotations

import numpy as np

from dmenet.filters import Border, box_mean, guided_filter
from dmenet.peers._util import check_image, check_radius, check_window, to_gray

T_LBP = 0.016
WINDOWS = (11, 15, 21)


def _neighbours(gray: np.ndarray, points: int = 8, radius: float = 1.0) -> np.ndarray:
    """(P, H, W) values at the P circular neighbours (bilinear; replicate border)."""
    h, w = gray.shape
    pad = int(np.ceil(radius)) + 1
    padded = np.pad(gray, pad, mode="edge").astype(np.float64)
    out = np.empty((points, h, w), dtype=np.float64)
    for p in range(points):
        angle = 2.0 * np.pi * p / points
        dy, dx = -radius * np.sin(angle), radius * np.cos(angle)
        dy, dx = round(dy, 12), round(dx, 12)  # exact integers for the axis-aligned neighbours
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0

        def shifted(oy: int, ox: int) -> np.ndarray:
            """The (h, w) window of the edge-padded image shifted by (``oy``, ``ox``) px."""
            return padded[pad + oy : pad + oy + h, pad + ox : pad + ox + w]

        out[p] = (
            (1 - fy) * (1 - fx) * shifted(y0, x0)
            + (1 - fy) * fx * shifted(y0, x0 + 1)
            + fy * (1 - fx) * shifted(y0 + 1, x0)
            + fy * fx * shifted(y0 + 1, x0 + 1)
        )
    return out


def lbp_riu2(gray: np.ndarray, threshold: float = T_LBP, points: int = 8, radius: float = 1.0) -> np.ndarray:
    """Thresholded rotation-invariant uniform LBP code.

    Args:
        gray: (H, W) float image (already normalised to [0, 1] by the caller).
        threshold: bit p is set when ``g_p − g_c > threshold``.

    Returns:
        (H, W) int64 codes in 0 … points + 1 (points + 1 = non-uniform).
    """
    bits = (_neighbours(gray, points, radius) - gray[None].astype(np.float64)) > threshold
    ones = bits.sum(axis=0)
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(axis=0)
    return np.where(transitions <= 2, ones, points + 1).astype(np.int64)


def _normalised_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale min–max normalised to [0, 1] (a constant image gives zeros)."""
    gray = to_gray(check_image(image)).astype(np.float64)
    lo, hi = gray.min(), gray.max()
    return (gray - lo) / (hi - lo) if hi > lo else np.zeros_like(gray)


def lbp_sharpness(image: np.ndarray, window: int = 21, threshold: float = T_LBP) -> np.ndarray:
    """Yi & Eramian's m_LBP at one window size (odd px; ValueError naming ``window`` otherwise): (H, W) float32 in
    [0, 1], 1 = sharp."""
    window = check_window(window)
    sharp_codes = (lbp_riu2(_normalised_gray(image), threshold) >= 6).astype(np.float64)  # codes {6, 7, 8, 9}
    return np.clip(box_mean(sharp_codes, window, Border.REPLICATE), 0.0, 1.0).astype(np.float32)


def lbp_blur_map(
    image: np.ndarray,
    windows: tuple[int, ...] = WINDOWS,
    threshold: float = T_LBP,
    guided_radius: int = 8,
    guided_eps: float = 1e-3,
) -> np.ndarray:
    """Multi-scale LBP blur map.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        windows: window sizes (odd px, at least one) whose sharpness maps are averaged.
        threshold: T_LBP.
        guided_radius: guided-filter radius (px, whole, >= 0; 0 disables the refinement).
        guided_eps: guided-filter ε on the [0, 1] grayscale guide.

    Returns:
        (H, W) float32 in [0, 1], 1 = more blurred.

    Raises:
        ValueError: naming the option: an even, non-integral or non-positive window, no window, or a negative or
            non-integral ``guided_radius``; naming ``image`` as :func:`~dmenet.peers._util.check_image`.
    """
    if not isinstance(windows, (tuple, list)) or not windows:
        raise ValueError(f"windows must be a non-empty tuple of odd window sides in px, got {windows!r}")
    windows = tuple(check_window(s, "each of windows") for s in windows)
    guided_radius = check_radius(guided_radius, "guided_radius")
    gray = _normalised_gray(image)
    sharp_codes = (lbp_riu2(gray, threshold) >= 6).astype(np.float64)
    sharp = np.mean([box_mean(sharp_codes, s, Border.REPLICATE) for s in windows], axis=0)
    if guided_radius > 0:
        sharp = guided_filter(gray, sharp, 2 * guided_radius + 1, guided_eps, border=Border.REPLICATE)
    return (1.0 - np.clip(sharp, 0.0, 1.0)).astype(np.float32)
