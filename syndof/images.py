"""The one check and conversion of an image handed to the library: any method, application or renderer input.

:func:`as_rgb_float` turns what users pass (uint8 / uint16 / float arrays or CPU tensors; gray, RGB or RGBA) into
(H, W, 3) float32 RGB in [0, 1], and refuses with one ``ValueError`` naming the argument what would otherwise give a
silently wrong result: float images in 0…255 (they would clip to white) or in [-1, 1] (they would clip to black),
NaN / inf pixels, other shapes (channel-first
arrays, 5 channels, empty images) and other dtypes.
"""

from __future__ import annotations

import numpy as np

FLOAT_IMAGE_MAX = 1.5
"""A float image above this is taken for 0…255 values (refused, not clipped); slight overshoot from resizing is
clipped."""

FLOAT_IMAGE_MIN = -0.5
"""A float image below this is taken for a normalised tensor ([-1, 1], mean-subtracted: refused, not clipped, which
turned every pixel below 0 black, a silently wrong map); slight undershoot from resizing is clipped."""

RGB2GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
"""MATLAB ``rgb2gray`` weights (ITU-R BT.601 luma rounded to 4 digits): the gray of the MATLAB originals (the peers,
Galetto & Deng's patches, windows and guide) and of gray-from-RGB maps read for scoring."""


def rgb2gray(red, green, blue):
    """``rgb2gray`` of three channel planes (arrays or tensors of one shape, any range; the result has it too):
    ``R·0.2989 + G·0.5870 + B·0.1140`` (:data:`RGB2GRAY_WEIGHTS`), summed in that order."""
    wr, wg, wb = RGB2GRAY_WEIGHTS
    return red * wr + green * wg + blue * wb


def as_rgb_float(image, name: str = "image", dtype=np.float32, min_side: int = 1) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] of ``image``: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha dropped), uint8
    (÷ 255), uint16 (÷ 65535) or float in [0, 1] (values from :data:`FLOAT_IMAGE_MIN` up to :data:`FLOAT_IMAGE_MAX`
    clipped), a NumPy array or a CPU tensor. ``dtype``: float32 (default) or float64. A new contiguous array; the
    input is never modified.

    Raises:
        ValueError: naming ``name``: another shape or dtype, a side below ``min_side`` px, non-finite values, or a
            float image above :data:`FLOAT_IMAGE_MAX` (8-bit values in a float array) or below
            :data:`FLOAT_IMAGE_MIN` (a [-1, 1] or mean-subtracted tensor).
    """
    try:
        array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be an (H, W, 3) RGB array, got {type(image).__name__} ({exc})") from None
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name} must be (H, W, 3) RGB, got shape {array.shape} (gray (H, W) and RGBA are accepted "
                         "too)")
    check_min_side(array.shape, min_side, name)
    if not array.dtype.isnative:  # e.g. big-endian '>u2' from raw or FITS data: the same values, native order
        array = array.astype(array.dtype.newbyteorder("="))
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array, dtype=dtype) / dtype(255.0)
    if array.dtype == np.uint16:
        return np.ascontiguousarray(array, dtype=dtype) / dtype(65535.0)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name}: unsupported dtype {array.dtype} (uint8, uint16 or float in [0, 1])")
    check_float_pixels(array, name)
    return np.clip(array, 0.0, 1.0).astype(dtype)


def check_min_side(shape: tuple[int, ...], min_side: int, name: str = "image") -> None:
    """ValueError ``"{name} is too small: WxH px (at least {min_side} px a side)"`` when an (H, W, …) ``shape`` has a
    side below ``min_side`` px: the size rule of :func:`as_rgb_float`, for a caller that holds pixels already
    converted (e.g. ``dmenet.galetto.select``, which refuses what the galetto method's ``as_rgb_float(…,
    min_side=32)`` refuses without converting the render again)."""
    if min(shape[:2]) < min_side:
        raise ValueError(f"{name} is too small: {shape[1]}x{shape[0]} px (at least {min_side} px a side)")


def check_float_pixels(array: np.ndarray, name: str = "image") -> None:
    """ValueError naming ``name`` when a float image holds NaN / inf, values above :data:`FLOAT_IMAGE_MAX` (0…255
    stored as float) or below :data:`FLOAT_IMAGE_MIN` (a [-1, 1] or mean-subtracted tensor), the things that would
    come out NaN, white or black; the check of :func:`as_rgb_float`, of the
    image writer and of the image reader (:mod:`syndof.io`). ``array``: a float image of any shape, meant in [0, 1]."""
    if array.size and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite values (NaN or inf)")
    if array.size and float(array.max()) > FLOAT_IMAGE_MAX:
        raise ValueError(f"{name}: float values up to {float(array.max()):g}: float images must be RGB in [0, 1] "
                         "(divide 8-bit values by 255, or pass the uint8 array)")
    if array.size and float(array.min()) < FLOAT_IMAGE_MIN:
        raise ValueError(f"{name}: float values down to {float(array.min()):g}: float images must be RGB in [0, 1] "
                         "(a [-1, 1] tensor: (x + 1) / 2; a mean-subtracted one: undo the normalisation)")
