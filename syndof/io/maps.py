"""σ maps and .npy arrays: reading, encoding and writing (SYNDOF PNG encoding, .npy)."""

from __future__ import annotations

import io as io_module
import os
from pathlib import Path

import numpy as np

from syndof import units
from syndof.io.atomic import write_bytes_atomic
from syndof.io.decode import IMAGE_EXTENSIONS, image_format, read_raw
from syndof.io.encode import encode_bgr_png
from syndof.io.files import InputError, check_nonempty_file

MAX_MAP_CHANNELS = 4
"""Most channels (last axis) a 3-D ``.npy`` map may have: (H, W, C) with C ≤ 4 keeps its first channel."""


def _load_npy(path: str | os.PathLike, data: bytes | None = None) -> np.ndarray:
    """The array of a plain ``.npy`` file of numbers (bool, integer or float), as stored; InputError otherwise (an
    ``.npz`` archive under an ``.npy`` name said as such, and closed). ``data``: the file's bytes, read already
    (``path`` then only names it); None reads the file."""
    if data is None:
        path = check_nonempty_file(path)  # a FIFO named .npy: np.load would wait for a writer
    try:
        arr = np.load(path if data is None else io_module.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError… for bad files
        raise InputError(path, f"cannot read .npy ({exc.__class__.__name__}: {exc})") from exc
    if isinstance(arr, np.lib.npyio.NpzFile):  # np.load reads an .npz archive (zip) whatever the file's name
        arr.close()
        raise InputError(path, "is an .npz archive, not an .npy array (save each map with numpy.save)")
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":  # strings, complex, structured…
        raise InputError(path, f"holds {getattr(arr, 'dtype', type(arr).__name__)} values, not numbers per pixel")
    return arr


def _map_of(path: str | os.PathLike, arr: np.ndarray, dtype: type) -> np.ndarray:
    arr = np.asarray(arr, dtype=dtype)
    if arr.ndim == 3 and arr.shape[2] > MAX_MAP_CHANNELS:  # (1, H, W) was read as a (1, H) map of its column 0
        raise InputError(path, f"a 3-D map must be (H, W, C) with its C <= {MAX_MAP_CHANNELS} channels last, got "
                               f"shape {arr.shape} (channels first? save it as (H, W))")
    return arr[..., 0] if arr.ndim == 3 else arr


def read_npy_map(path: str | os.PathLike, dtype: type = np.float32, data: bytes | None = None) -> np.ndarray:
    """Read a per-pixel map from ``.npy`` (no pickle) as ``dtype``; a 3-D array (H, W, C ≤ 4) keeps its first
    channel. The one ``.npy`` map reader (depth maps, RTF ground truth, ``evaluate``'s saved predictions).
    ``data``: the file's bytes when the caller has read them (``path`` names it in errors).

    Raises:
        InputError: the file cannot be read as a plain ``.npy`` array of numbers (bool, integer or float), or is a
            3-D array with more than :data:`MAX_MAP_CHANNELS` channels last (a channels-first (C, H, W) array).
    """
    return _map_of(path, _load_npy(path, data), dtype)


def read_sigma_map(path: str | os.PathLike) -> np.ndarray:
    """Read a σ map: a SYNDOF 16-bit PNG (or TIFF) holding ``round(10·σ)`` (1 or 3 channels) or a float ``.npy``
    in px.

    Returns:
        (H, W) float32 σ in px.

    Raises:
        InputError: unreadable file, an image of another pixel type than uint16 (an 8-bit PNG, TIFF or GIF, a
            float TIFF: not a SYNDOF map; named with its format), a ``.npy`` of integers or bools (σ in px is
            float; an integer array may hold the PNG's 10·σ), a 3-D ``.npy`` with its channels first, an empty
            map, or negative/non-finite values.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        raw = _load_npy(path)
        if raw.dtype.kind != "f":  # uint16 round(10·σ) saved as .npy was read as σ px, 10× too large
            raise InputError(path, f"σ maps in .npy hold float σ in px; this file holds {raw.dtype} (a SYNDOF "
                                   "round(10·σ) array? divide it by 10 and save it as float32)")
        arr = _map_of(path, raw, np.float32)
        if arr.ndim != 2:
            raise InputError(path, f"σ map must be 2-D, got shape {arr.shape}")
        if arr.size == 0:
            raise InputError(path, f"σ map is empty (shape {arr.shape})")
        if not np.all(np.isfinite(arr)) or arr.min() < 0:
            raise InputError(path, "σ map has negative or non-finite values")
        return arr
    raw = read_raw(path)
    if raw.dtype != np.uint16:  # SYNDOF writes uint16 round(10·σ); 8-bit or float pixels are another map
        raise InputError(path, f"a σ map is a 16-bit PNG or TIFF holding round(10·σ) (SYNDOF) or a float .npy of σ "
                               f"px; this file is {_stored_kind(path, raw.dtype)}")
    if raw.ndim == 3:
        raw = raw[..., 1]  # all channels are equal in SYNDOF maps; the original reader takes channel 1
    return units.syndof_to_sigma(raw)


def _stored_kind(path: Path, dtype: np.dtype) -> str:
    """What the image file ``path``, decoded to pixels of ``dtype``, is, for a refusal: its depth and format, e.g.
    "an 8-bit TIFF (uint8)", "a 32-bit float TIFF (float32)", "an 8-bit GIF (uint8)". The format is the file's
    first bytes' (:func:`~syndof.io.decode.image_format`), else its suffix (BMP), as the decoder goes by the bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:  # gone since it was decoded: the suffix names it
        head = b""
    fmt = image_format(head) or path.suffix.lstrip(".").upper() or "image"
    dtype = np.dtype(dtype)
    depth = f"{dtype.itemsize * 8}-bit" + (" float" if dtype.kind == "f" else "")
    article = "an" if depth.startswith("8-") else "a"
    return f"{article} {depth} {fmt} ({dtype})"


def encode_sigma_map(sigma: np.ndarray, channels: int = 3, fast: bool = False) -> bytes:
    """(H, W) σ (px, finite, ≥ 0) as SYNDOF 16-bit PNG bytes holding ``round(10·σ)`` with ``channels`` identical
    channels (:data:`~syndof.io.encode.PNG_FAST` encoder settings with ``fast``)."""
    return encode_syndof_values(units.sigma_to_syndof(sigma), channels, fast)


def encode_syndof_values(value: np.ndarray, channels: int = 3, fast: bool = False) -> bytes:
    """SYNDOF σ-map PNG bytes of values already in the file's units, (H, W) uint16 ``round(10·σ)`` (e.g.
    :attr:`syndof.camera.LayeredDepth.sigma10`, computed without a float32 σ in between), with ``channels``
    identical channels."""
    value = np.asarray(value)
    if value.dtype != np.uint16:
        raise ValueError(f"SYNDOF σ maps are uint16, got {value.dtype}")
    if value.ndim != 2 or value.size == 0:
        raise ValueError(f"a σ map must be a non-empty (H, W) array, got shape {value.shape}")
    if channels == 3:
        value = np.repeat(value[..., None], 3, axis=2)
    elif channels != 1:
        raise ValueError("channels must be 1 or 3")
    return encode_bgr_png(value, fast)  # identical channels: no RGB → BGR swap needed


SIGMA_MAP_EXTENSIONS = (".png", ".npy")
"""Suffixes of σ-map files, written by :func:`write_sigma_map` and read by :func:`read_sigma_map`."""

SIGMA_MAP_LISTED_EXTENSIONS = IMAGE_EXTENSIONS + (".npy",)
"""Suffixes a σ-map folder (a SYNDOF ``blur_map/``) is listed by to pair its maps with their renders by stem (the
``syndof`` benchmark of ``dmenet.evaluate``, :func:`dmenet.eval.syndof_test.sigma_map_pairs`): every suffix
:func:`read_sigma_map` reads, ``.npy`` (float σ px) and the image suffixes (a 16-bit PNG or TIFF holding
``round(10·σ)``; a file of an 8-bit format is paired, then refused by the reader naming it, not called missing).
Until 7 Dec 2026 those listings left ``.npy`` out (and the benchmark ``.tif``): such a folder was refused as
renders without σ maps."""


def write_sigma_map(path: str | os.PathLike, sigma: np.ndarray, channels: int = 3) -> None:
    """Write an (H, W) σ map (px, finite, ≥ 0), atomically, as :func:`read_sigma_map` reads it back: a ``.png`` name
    gets a SYNDOF 16-bit PNG holding ``round(10·σ)`` with ``channels`` identical channels, a ``.npy`` name the float32
    σ (``channels`` unused). Another suffix, shape or bad values: ValueError, nothing written."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        arr = np.asarray(sigma, dtype=np.float32)
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError(f"{path}: a σ map must be a non-empty (H, W) array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or float(arr.min()) < 0:
            raise ValueError(f"{path}: σ map must be finite and non-negative")
        write_npy(path, arr)
    elif suffix == ".png":
        write_bytes_atomic(path, encode_sigma_map(sigma, channels))
    else:
        given = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ValueError(f"{path}: σ maps are written as {' or '.join(SIGMA_MAP_EXTENSIONS)} (16-bit SYNDOF PNG or "
                         f"float32 px), not with {given}")


def encode_npy(array: np.ndarray) -> bytes:
    """``array`` (any shape, any non-object dtype, values as they are) as ``.npy`` file bytes (no pickle)."""
    buf = io_module.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically: any shape and non-object dtype, values and units as they are
    (:func:`encode_npy`)."""
    write_bytes_atomic(path, encode_npy(array))
