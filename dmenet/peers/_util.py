"""Helpers shared by the classical peers: input checks, grayscale, normalisation (their box and guided filters are
:mod:`dmenet.filters`' with ``Border.REPLICATE``, the peers' published recipes)."""

from __future__ import annotations

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


def check_window(value, name: str = "window") -> int:
    """``value`` as a box-window side in px: an odd whole number >= 1 (a window centred on its pixel). ValueError
    naming the option ``name`` otherwise (an even size failed inside :func:`dmenet.filters.box_mean` as "box size must
    be odd", a float or bool in OpenCV)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be an odd whole number of px >= 1 (a window centred on its pixel), "
                         f"got {value!r}")
    return int(value)


def check_radius(value, name: str = "radius") -> int:
    """``value`` as a window radius in px: a whole number >= 0 (the window is 2·radius + 1 px a side). ValueError
    naming the option ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a whole number of px >= 0 (the window is 2·{name} + 1 px), got {value!r}")
    return int(value)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] → (H, W) float32 luminance with MATLAB ``rgb2gray``'s weights (kornia's
    ``rgb_to_grayscale``; docs/method.md §17). kornia is imported here: it costs about a second at start-up, and
    only the peers need it."""
    import kornia

    rgb = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    weights = torch.tensor(RGB2GRAY_WEIGHTS, dtype=torch.float32)
    return kornia.color.rgb_to_grayscale(rgb, rgb_weights=weights)[0].numpy()


def robust_normalise(x: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> np.ndarray:
    """Map ``x`` linearly so that its ``low_pct`` / ``high_pct`` percentiles go to 0 / 1, clipped to [0, 1].
    ``x``: a map of any shape and units (percentiles in 0 … 100); returns float32 of its shape, unitless.

    A constant map returns zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    lo, hi = np.percentile(x, [low_pct, high_pct])
    if not hi > lo:
        return np.zeros_like(x, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
