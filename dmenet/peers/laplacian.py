"""Local variance of the Laplacian — the simplest sharpness measure, as a blur-map baseline.

Sharpness at a pixel is the standard deviation of the image Laplacian over a ``window``×``window`` neighbourhood
(the windowed form of Pech-Pacheco et al.'s "variance of the Laplacian" focus measure). It is normalised per image
(1st–99th percentile → [0, 1]) and inverted, so 1 = most blurred *in this image*: the map ranks pixels, it carries
no physical unit.
"""

from __future__ import annotations

import cv2
import numpy as np

from dmenet.filters import Border, box_mean
from dmenet.peers._util import check_image, check_window, robust_normalise, to_gray

DEFAULT_WINDOW = 15


def laplacian_sharpness(image: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Windowed standard deviation of the Laplacian.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        window: odd window side in px (ValueError naming ``window`` otherwise).

    Returns:
        (H, W) float32 sharpness (intensity units per px², ≥ 0; larger = sharper).
    """
    window = check_window(window)
    gray = to_gray(check_image(image))
    lap = cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REPLICATE)
    mean = box_mean(lap, window, Border.REPLICATE)
    var = np.maximum(box_mean(lap * lap, window, Border.REPLICATE) - mean * mean, 0.0)
    return np.sqrt(var).astype(np.float32)


def laplacian_blur_map(image: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Blur map from the local Laplacian variance.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        window: odd window side in px (default 15; ValueError naming ``window`` otherwise).

    Returns:
        (H, W) float32 in [0, 1], 1 = more blurred (relative within the image).
    """
    sharp = laplacian_sharpness(image, window)
    # log compresses the several-decade range of the measure so that the percentile stretch is not set by a few edges
    return (1.0 - robust_normalise(np.log1p(sharp / 1e-3))).astype(np.float32)
