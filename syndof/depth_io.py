"""Depth-map readers for the SYNDOF sources, all returning depth in mm (float64).

Formats: Sintel ``.dpt`` (float32 tag 202021.25, int32 width, int32 height, row-major float32 depths), 16-bit PNG
(first channel; read with OpenCV ``IMREAD_UNCHANGED`` — Pillow would silently keep only the high byte), ``.npy``
and ``.pfm`` (either endianness, rows stored bottom-up). ``scale`` multiplies the raw values (the original: Sintel
×1000, SYNTHIA / Middlebury PNG in cm ×10).

Invalid pixels (inf, NaN, ≤ 0) are replaced by the nearest valid pixel's value (Euclidean distance transform), so
no NaN ever leaves this module. A depth map that is all invalid or constant cannot be defocused and raises
:class:`syndof.io.InputError` naming the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from syndof import units
from syndof.io import InputError, check_nonempty_file, read_input_bytes, read_npy_map, write_bytes_atomic

DPT_TAG = 202021.25
"""Sintel ``.dpt`` header tag (float32)."""

SINTEL_SCALE = 1000.0
SYNDOF_PNG_SCALE = 10.0


def valid_scale(scale) -> bool:
    """Whether ``scale`` is a usable factor from raw depth values to mm: a finite number > 0
    (:func:`syndof.units.is_finite_number`: an int beyond float, 10**400, is not)."""
    return units.is_finite_number(scale) and float(scale) > 0


def default_scale(path: str | os.PathLike) -> float:
    """The factor to mm by the file's format: Sintel ``.dpt`` (metres) ×1000, a 16-bit PNG ×10 (SYNTHIA /
    Middlebury, cm). The original generator also read a PNG under any path containing "MPI" ×1000; that rule is not
    kept (the name of a folder must not change a unit: a user's ``MPII/`` folder read 100× too deep): give such a
    PNG ``--depth-scale 1000``. The Sintel sources it was written for are ``.dpt`` files."""
    return SINTEL_SCALE if Path(path).suffix.lower() == ".dpt" else SYNDOF_PNG_SCALE


def fill_invalid(depth: np.ndarray, name: str | os.PathLike = "<array>") -> np.ndarray:
    """Replace inf/NaN/≤0 values by the value of the nearest valid pixel; InputError when none is valid.
    ``depth``: (H, W) in any unit (the readers: mm); returns (H, W) float64 in the same unit."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        raise InputError(name, "depth map has no valid (finite, > 0) pixel")
    if valid.all():
        return depth
    _, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
    return depth[iy, ix]


def _read_dpt(path: Path, raw: bytes) -> np.ndarray:
    """The raw values of the Sintel ``.dpt`` file ``path`` whose bytes are ``raw``."""
    if len(raw) < 12:
        raise InputError(path, f"truncated .dpt header ({len(raw)} bytes)")
    tag = np.frombuffer(raw[:4], dtype="<f4")[0]
    if tag != np.float32(DPT_TAG):
        raise InputError(path, f"wrong .dpt tag {tag!r} (expected {DPT_TAG}; wrong format or endianness)")
    w, h = (int(v) for v in np.frombuffer(raw[4:12], dtype="<i4"))
    if w <= 0 or h <= 0 or w * h > 1 << 31:
        raise InputError(path, f"implausible .dpt size {w}x{h}")
    need = 12 + 4 * w * h
    if len(raw) < need:
        raise InputError(path, f"truncated .dpt: {len(raw)} bytes, {need} expected for {w}x{h}")
    return np.frombuffer(raw[12:need], dtype="<f4").reshape(h, w).astype(np.float64)


def _read_pfm(path: Path, data: bytes) -> np.ndarray:
    """The first channel of the PFM file ``path`` whose bytes are ``data``, rows top-down."""
    m = re.match(rb"(P[fF])\s+(\d+)\s+(\d+)\s+([-+0-9.eE]+)\s", data)
    if m is None:
        raise InputError(path, "not a PFM file (bad header)")
    channels = 3 if m.group(1) == b"PF" else 1
    w, h, scale = int(m.group(2)), int(m.group(3)), float(m.group(4))
    dtype = "<f4" if scale < 0 else ">f4"
    n = w * h * channels
    body = data[m.end() :]
    if len(body) < 4 * n:
        raise InputError(path, f"truncated PFM: {len(body)} data bytes, {4 * n} expected")
    arr = np.frombuffer(body[: 4 * n], dtype=dtype).reshape(h, w, channels)[::-1, :, 0]
    return arr.astype(np.float64)


def _read_png(path: Path, data: bytes) -> np.ndarray:
    """The first channel of the 16-bit PNG file ``path`` whose bytes are ``data``."""
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(path, "cannot decode depth image (unreadable or truncated)")
    if img.dtype != np.uint16:
        raise InputError(path, f"depth PNGs must be 16-bit, got {img.dtype} (8-bit maps hold no metric depth): "
                               "convert it to depth in mm first, e.g. a float .npy (a relative or inverse map, "
                               "white = near, mapped to a metric range)")
    if img.ndim == 3:
        # MATLAB's first channel (R) is OpenCV's last (BGR order); SYNDOF maps have equal channels anyway.
        img = img[..., 2] if img.shape[2] >= 3 else img[..., 0]
    return img.astype(np.float64)


def read_depth(path: str | os.PathLike, scale: float | None = None) -> np.ndarray:
    """Read a depth map and return it in mm.

    Args:
        path: ``.dpt``, ``.png`` (16-bit), ``.npy`` or ``.pfm``.
        scale: factor applied to the raw values; None → :func:`default_scale` (×1000 for ``.dpt``, ×10 for
            ``.png``), ×1 for ``.npy``/``.pfm``.

    Returns:
        (H, W) float64 depth in mm, invalid pixels filled from their nearest valid neighbour.

    Raises:
        InputError: missing/unreadable/truncated/undecodable file, wrong header, all-invalid or constant depth.
        ValueError: ``scale`` given but not a finite number > 0 (before the file is read).
    """
    return _read_depth(path, scale)[0]


def read_depth_sha256(path: str | os.PathLike, scale: float | None = None) -> tuple[np.ndarray, str]:
    """:func:`read_depth` of ``path`` and the SHA-256 (64 lower-case hex digits, as
    :func:`syndof.io.file_sha256`) of exactly the bytes it decoded: the file is read once, so a file rewritten
    meanwhile can never give the depth of one version and the digest of another (as
    :func:`syndof.io.read_image_sha256`). The depth as :func:`read_depth`'s, (H, W) float64 mm. Raises as
    :func:`read_depth`."""
    depth, data = _read_depth(path, scale)
    return depth, hashlib.sha256(data).hexdigest()


def _read_depth(path: str | os.PathLike, scale: float | None) -> tuple[np.ndarray, bytes]:
    """:func:`read_depth` of ``path`` and the file's bytes it decoded (read once)."""
    if scale is not None and not valid_scale(scale):
        raise ValueError(f"depth scale (--depth-scale) must be a finite factor > 0 to mm, got {scale!r}")
    path = check_nonempty_file(path)
    ext = path.suffix.lower()
    readers = {".dpt": _read_dpt, ".pfm": _read_pfm, ".png": _read_png,
               ".npy": lambda p, data: read_npy_map(p, np.float64, data)}
    if ext not in readers:
        raise InputError(path, f"unsupported depth format {ext!r} (.dpt, .png, .npy, .pfm)")
    data = read_input_bytes(path)
    raw = readers[ext](path, data)
    if raw.ndim != 2 or min(raw.shape) < 2:
        raise InputError(path, f"depth map must be 2-D and at least 2x2, got shape {raw.shape}")
    if scale is None:
        scale = default_scale(path) if ext in (".dpt", ".png") else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        depth = raw * float(scale)
    depth = fill_invalid(depth, path)
    if depth.min() == depth.max():
        raise InputError(path, f"depth map is constant ({depth.min():g} mm): no defocus can be synthesised")
    return depth, data


def disparity_to_depth(disp: np.ndarray, focal_px: float, baseline_mm: float, doffs_px: float = 0.0,
                       name: str | os.PathLike = "<disparity>") -> np.ndarray:
    """Middlebury disparity (px) → depth (mm): ``baseline · f / (d + doffs)``; ``disp`` (H, W), returns (H, W)
    float64 mm (``focal_px``, ``doffs_px`` in px, ``baseline_mm`` in mm).

    Invalid disparities (inf, NaN, ≤ 0, or ``d + doffs ≤ 0``) are filled from the nearest valid pixel's depth.
    """
    disp = np.asarray(disp, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = disp + float(doffs_px)
        depth = np.where(np.isfinite(disp) & (disp > 0) & (denom > 0), baseline_mm * focal_px / denom, np.nan)
    return fill_invalid(depth, name)


def write_dpt(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write a Sintel ``.dpt`` (raw values as float32; no scaling), atomically. ``depth``: (H, W) in m, Sintel's unit
    (:func:`read_depth` multiplies a ``.dpt``'s values by 1000 to mm: write depth in mm as ``depth_mm / 1000``)."""
    depth = np.asarray(depth, dtype="<f4")
    h, w = depth.shape
    header = np.array([DPT_TAG], dtype="<f4").tobytes() + np.array([w, h], dtype="<i4").tobytes()
    write_bytes_atomic(path, header + depth.tobytes())


def write_pfm(path: str | os.PathLike, array: np.ndarray, little_endian: bool = True) -> None:
    """Write a single-channel PFM (rows bottom-up, scale −1 little-endian / +1 big-endian), atomically. ``array``
    (H, W), stored as float32 values unscaled (:func:`read_depth` reads a ``.pfm`` ×1, i.e. as mm)."""
    arr = np.asarray(array, dtype="<f4" if little_endian else ">f4")
    h, w = arr.shape
    header = f"Pf\n{w} {h}\n{-1.0 if little_endian else 1.0}\n".encode("ascii")
    write_bytes_atomic(path, header + arr[::-1].tobytes())
