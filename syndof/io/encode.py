"""Encoding images: PNG / JPEG bytes from float or integer arrays, writing them, and 8-bit levels ↔ [0, 1]."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from syndof.images import check_float_pixels
from syndof.io.atomic import write_bytes_atomic

WRITE_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""Suffixes :func:`write_image` writes (PNG, or JPEG for .jpg / .jpeg); any other is a ValueError."""


JPEG_EXTENSIONS = (".jpg", ".jpeg")
"""Suffixes written as JPEG (8 bits, quality 95)."""


PNG_SMALL = [cv2.IMWRITE_PNG_COMPRESSION, 3]
"""PNG encoder settings for files kept in bulk (datasets, renders): zlib level 3, libpng's adaptive row filters."""


PNG_FAST = ([cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
             cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
            if hasattr(cv2, "IMWRITE_PNG_FILTER") else [])
"""PNG encoder settings for ``predict``'s outputs: zlib level 1, the "up" row filter only, run-length strategy;
about 2.5× faster than :data:`PNG_SMALL` on 640×480 maps, files up to ~20 % larger
(``benchmarks/bench_predict_parts.py``).
OpenCV builds without ``IMWRITE_PNG_FILTER`` get OpenCV's own default (level 1, "sub" filter, run-length), which is
nearly as fast. Both are lossless: only the file bytes differ, never the decoded pixels."""


def encode_png(array: np.ndarray, fast: bool = False) -> bytes:
    """Encode (H, W), (H, W, 3) RGB or (H, W, 4) RGBA uint8/uint16 as PNG bytes (deterministic; :data:`PNG_FAST`
    settings with ``fast``, else :data:`PNG_SMALL`)."""
    arr = np.ascontiguousarray(array)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG needs uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    return encode_bgr_png(arr, fast)


def encode_bgr_png(bgr: np.ndarray, fast: bool = False) -> bytes:
    """PNG bytes of (H, W), (H, W, 3) BGR or (H, W, 4) BGRA uint8 / uint16, an array already in OpenCV's channel
    order, as it is (:data:`PNG_FAST` settings with ``fast``, else :data:`PNG_SMALL`): :func:`encode_png` after its
    RGB → BGR swap, and :func:`syndof.io.maps.encode_syndof_values`, whose identical channels need none."""
    ok, buf = cv2.imencode(".png", bgr, PNG_FAST if fast else PNG_SMALL)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1], any shape → uint8 levels 0…255 of the same shape (``round(255·x)``, clipped)."""
    return np.clip(np.asarray(image, dtype=np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def from_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 levels 0…255, any shape → float32 in [0, 1] of the same shape (``v / 255``; :func:`to_uint8` gives the
    levels back). ValueError for any other dtype: a float image in [0, 1] divided again would be 255× too dark, and
    uint16 levels up to 65535× too bright (:func:`syndof.images.as_rgb_float` reads any image dtype)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected 8-bit levels (uint8), got {array.dtype}")
    return array.astype(np.float32) / np.float32(255.0)


def from_uint8_tensor(levels):
    """:func:`from_uint8` for a torch tensor: uint8 levels 0…255, any shape and device → float32 in [0, 1], same shape
    and device (``levels.float() / 255``; on the CPU the very values :func:`from_uint8` gives). ValueError for a
    tensor of any other dtype (a float batch in [0, 1] divided again would be 255× too dark) or for no tensor."""
    import torch  # only a caller holding a tensor has torch loaded already

    if not isinstance(levels, torch.Tensor):
        raise ValueError(f"expected a torch tensor of 8-bit levels, got {type(levels).__name__}")
    if levels.dtype != torch.uint8:
        raise ValueError(f"expected 8-bit levels (torch.uint8), got {levels.dtype}")
    return levels.float() / 255.0


def _image_to_encode(path: Path, image) -> np.ndarray:
    """The uint8 / uint16 array :func:`encode_image` encodes for ``path``; ValueError naming ``path`` for anything
    that would be written wrong (see :func:`encode_image`)."""
    suffix = path.suffix.lower()
    if suffix not in WRITE_IMAGE_EXTENSIONS:
        given = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ValueError(f"{path}: cannot write an image with {given}; name it {', '.join(WRITE_IMAGE_EXTENSIONS)} "
                         "(PNG, or JPEG for .jpg / .jpeg)")
    try:
        arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: the image is not an array ({type(image).__name__}: {exc})") from None
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"{path}: the image must be (H, W), (H, W, 3) RGB or (H, W, 4) RGBA (channels last), got "
                         f"shape {arr.shape}")
    if min(arr.shape[:2]) == 0:
        raise ValueError(f"{path}: the image is empty ({arr.shape[1]}x{arr.shape[0]} px)")
    if arr.dtype in (np.uint8, np.uint16):
        if arr.dtype == np.uint16 and suffix in JPEG_EXTENSIONS:
            raise ValueError(f"{path}: JPEG holds 8 bits; pass uint8 or float in [0, 1], or write a .png for 16 bits")
        return arr
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{path}: unsupported image dtype {arr.dtype} (uint8 or uint16 as they are, float in [0, 1])")
    if arr.dtype != np.bool_:
        check_float_pixels(arr, str(path))
    return to_uint8(arr)


def encode_image(path: str | os.PathLike, image: np.ndarray) -> bytes:
    """The bytes :func:`write_image` writes for ``path``: an (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA image,
    float (or bool) in [0, 1] (values up to :data:`syndof.images.FLOAT_IMAGE_MAX` clipped, rounded to 8 bits) or
    uint8 / uint16 as is, as JPEG (quality 95, 8 bits, alpha dropped) for a .jpg / .jpeg name, PNG for .png.

    Raises:
        ValueError: naming ``path``: another suffix, shape or dtype (integers other than uint8 / uint16), an empty
            image, NaN / inf pixels, float values above :data:`syndof.images.FLOAT_IMAGE_MAX` (0…255 as float), or
            uint16 for a JPEG.
    """
    path = Path(path)
    arr = _image_to_encode(path, image)
    if path.suffix.lower() in JPEG_EXTENSIONS:
        bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 and arr.shape[2] in (3, 4) else arr
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise ValueError(f"{path}: JPEG encoding failed")
        return buf.tobytes()
    return encode_png(arr)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image as PNG or JPEG (by the name), atomically: (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA,
    float in [0, 1] (rounded to 8 bits) or uint8 / uint16 intensity levels as they are. What is accepted and refused
    (ValueError, nothing written): :func:`encode_image`."""
    write_bytes_atomic(path, encode_image(path, image))
