"""Helpers shared by the classical peers: input checks, grayscale, box/guided filters, normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from syndof.images import RGB2GRAY_WEIGHTS, as_rgb_float

MIN_SIDE = 2
"""The smallest image side (px) a peer takes."""


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate a peer input and return it as a new contiguous (H, W, 3) float32 RGB array in [0, 1]
    (:func:`syndof.images.as_rgb_float`).

    Args:
        image: (H, W, 3) RGB, float in [0, 1], uint8 (÷ 255) or uint16 (÷ 65535); gray (H, W) / (H, W, 1) and RGBA
            are accepted too.
        name: the argument named in the error.

    Raises:
        ValueError: naming ``name``: another shape or dtype, NaN / inf, a float image in 0…255, or an image smaller
            than 2×2 px.
    """
    return as_rgb_float(image, name, min_side=MIN_SIDE)




def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] → (H, W) float32 luminance with MATLAB ``rgb2gray``'s weights (kornia's
    ``rgb_to_grayscale``; docs/method.md §17). kornia is imported here: it costs about a second at start-up, and
    only the peers need it."""
    import kornia

    rgb = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    weights = torch.tensor(RGB2GRAY_WEIGHTS, dtype=torch.float32)
    return kornia.color.rgb_to_grayscale(rgb, rgb_weights=weights)[0].numpy()


def box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size``×``size`` window, replicate border (float64 accumulation)."""
    return cv2.blur(np.asarray(x, dtype=np.float64), (size, size), borderType=cv2.BORDER_REPLICATE)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grayscale guide.

    Args:
        guide: (H, W) float guidance image.
        src: (H, W) float map to filter.
        radius: window radius (window ``2·radius + 1``).
        eps: regularisation on the guide's value range (squared units).

    Returns:
        (H, W) float64 filtered map.
    """
    size = 2 * radius + 1
    guide = np.asarray(guide, dtype=np.float64)
    src = np.asarray(src, dtype=np.float64)
    mean_i = box_mean(guide, size)
    mean_p = box_mean(src, size)
    cov_ip = box_mean(guide * src, size) - mean_i * mean_p
    var_i = box_mean(guide * guide, size) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, size) * guide + box_mean(b, size)


def robust_normalise(x: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> np.ndarray:
    """Map ``x`` linearly so that its ``low_pct`` / ``high_pct`` percentiles go to 0 / 1, clipped to [0, 1].

    A constant map returns zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    lo, hi = np.percentile(x, [low_pct, high_pct])
    if not hi > lo:
        return np.zeros_like(x, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
