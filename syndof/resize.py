"""Shrinking an image so its long side fits a working size, and bringing a map back: the one place for the size
arithmetic every method's ``max_side`` uses. Resizing by ``scale`` (new size / old size) scales blur in px by the
same factor: convert σ with :func:`syndof.units.rescale_sigma`, never here.
"""

from __future__ import annotations

import math

import numpy as np


def long_side_scale(shape: tuple[int, ...], max_side: int | None, min_short_side: int | None = None) -> float:
    """Factor (≤ 1) that brings the long side of an (H, W, …) shape down to ``max_side`` px; 1.0 when it already
    fits or ``max_side`` is None. ``min_short_side`` (None: no floor, the long side is exactly ``max_side``, a caller's
    ``minimum`` size then keeps the short side): the factor never takes the short side below this many px (a
    short side already below it keeps its size), so a long thin strip keeps enough rows to be measured: its long
    side then stays above ``max_side``."""
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer))
                                 or max_side < 1):
        raise ValueError(f"max_side must be a whole number of px >= 1 (or None: no limit), got {max_side!r}")
    h, w = shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return 1.0
    scale = max_side / max(h, w)
    return scale if min_short_side is None else min(1.0, max(scale, min_short_side / min(h, w)))


def scaled_size(shape: tuple[int, ...], scale: float, minimum: int = 1) -> tuple[int, int]:
    """(width, height) — OpenCV's order — of an (H, W, …) shape resized by ``scale``, rounded, each at least
    ``minimum`` px."""
    h, w = shape[:2]
    return max(minimum, round(w * scale)), max(minimum, round(h * scale))


def applied_scale(shape: tuple[int, ...], size: tuple[int, int]) -> float:
    """The factor (new size / old size) an (H, W, …) ``shape`` was resized by to ``size`` = (width, height), OpenCV's
    order: the geometric mean ``√((h'/H)·(w'/W))`` of the two axes' factors, what blur in px scales by (convert σ
    with :func:`syndof.units.rescale_sigma`). It differs from the scale asked of :func:`scaled_size` by that size's
    rounding (33 px × 0.5 → 16 px: 0.485), a lot for small sizes (33 px × 0.05 → 2 px: 0.061). ValueError for a
    side ≤ 0 or NaN."""
    h, w = shape[:2]
    new_w, new_h = size
    if not all(side > 0 for side in (h, w, new_h, new_w)):  # `min(…) <= 0` let NaN through
        raise ValueError(f"sizes must be > 0 px, got {w}x{h} -> {new_w}x{new_h}")
    return math.sqrt((new_h / h) * (new_w / w))


def shrunk_scale(shape: tuple[int, ...], max_side: int | None, minimum: int = 1,
                 min_short_side: int | None = None) -> float:
    """The factor (new size / old size, < 1 unless ``minimum`` raises a side) :func:`shrink_long_side` resizes an
    (H, W, …) ``shape`` by, arguments as there: :func:`applied_scale` of the rounded size, not the
    :func:`long_side_scale` asked (1025 × 37 px to a long side of 512: 0.4995 asked, 0.4930 got); 1.0 when it fits.
    σ measured on the shrunk copy is σ in px of the input ÷ this (:func:`syndof.units.rescale_sigma` by its
    inverse), exactly."""
    scale = long_side_scale(shape, max_side, min_short_side)
    return 1.0 if scale == 1.0 else applied_scale(shape, scaled_size(shape, scale, minimum))


def shrink_long_side(image: np.ndarray, max_side: int | None, minimum: int = 1,
                     min_short_side: int | None = None) -> tuple[np.ndarray, float]:
    """(image resized by area averaging so its long side is at most ``max_side``, the scale asked); the image itself
    and 1.0 when it already fits. ``image``: (H, W) or (H, W, C), values and dtype kept (an intensity image keeps its
    range; a σ map does not rescale its values: :func:`syndof.units.rescale_sigma`). ``minimum``: the smallest side
    the result may have (px); ``min_short_side`` as in :func:`long_side_scale`; the scale is
    :func:`long_side_scale`'s (≤ 1, 1.0 exactly when nothing was resized). σ scales by the factor the rounded size
    got, not by it: :func:`shrunk_scale` (or :func:`applied_scale` of the two shapes)."""
    scale = long_side_scale(image.shape, max_side, min_short_side)
    if scale == 1.0:
        return image, 1.0
    import cv2

    return cv2.resize(image, scaled_size(image.shape, scale, minimum), interpolation=cv2.INTER_AREA), scale


def resize_back(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A map computed on a shrunk copy, (h, w) or (h, w, C), bilinearly resized to the (H, W, …) ``shape`` of the
    original; same dtype, values in the input's range and units (not rescaled: do σ with
    :func:`syndof.units.rescale_sigma`)."""
    import cv2

    h, w = shape[:2]
    return cv2.resize(values, (w, h), interpolation=cv2.INTER_LINEAR)
