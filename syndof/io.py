"""File input/output shared by ``syndof`` and ``dmenet``: images, σ maps, masks, atomic writes.

Every reader raises :class:`InputError` (a ``ValueError``) whose message names the file and the problem, so batch
jobs can log one line and skip the sample. Every writer goes through a temporary file in the target folder and an
``os.replace``, so a killed run never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io as io_module
import json
import os
import secrets
import shutil
import stat
import struct
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import cv2
import numpy as np

from syndof import frames, png_chunks, units
from syndof.images import as_rgb_float, check_float_pixels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
"""Suffixes read as images."""
WRITE_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""Suffixes :func:`write_image` writes (PNG, or JPEG for .jpg / .jpeg); any other is a ValueError."""
JPEG_EXTENSIONS = (".jpg", ".jpeg")
"""Suffixes written as JPEG (8 bits, quality 95)."""


class InputError(ValueError):
    """A bad input file; ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# ----------------------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Stored:
    """What an image file stores as decoded, before :func:`read_image` makes it RGB float: ``channels`` 1 (gray), 3
    (colour) or 4 (colour or gray with alpha, which :func:`read_image` drops), and the pixel ``dtype`` (uint8,
    uint16, …), e.g. to write a result at the input's depth or say what the RGB result does not keep."""

    channels: int
    dtype: np.dtype


def _stored(raw: np.ndarray) -> Stored:
    """:class:`Stored` of the pixels ``raw`` as decoded."""
    return Stored(1 if raw.ndim == 2 else int(raw.shape[2]), raw.dtype)


def stored_dtype(path: str | os.PathLike) -> np.dtype:
    """The pixel type an image file stores (:attr:`Stored.dtype`). InputError naming the file when it cannot be
    decoded. A caller that reads the image too takes both from one decode: :func:`read_image_stored`."""
    return _read_raw(path, note_frames=False).dtype  # the caller reads the image itself, and hears of its frames then


def read_image_stored(path: str | os.PathLike, note_frames: bool = True) -> tuple[np.ndarray, Stored]:
    """:func:`read_image` of ``path`` and what the file stores (:class:`Stored`), from one read and one decode."""
    raw = _read_raw(path, note_frames)
    return _as_rgb(path, raw), _stored(raw)


def check_nonempty_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is a file with at least one byte; InputError naming it (``file not found``, ``a
    folder, not a file``, ``not a regular file`` for a FIFO, socket or device, a symbolic link loop or to nothing:
    :func:`special_file_problem`; ``file is empty``) otherwise."""
    path = Path(path)
    with _naming(path):
        if not path.is_file():
            raise InputError(path, special_file_problem(path) or "file not found")
        if path.stat().st_size == 0:
            raise InputError(path, "file is empty")
    return path


def read_input_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of the input file ``path``, read once: InputError naming it when it is no file with bytes
    (:func:`check_nonempty_file`) or cannot be read (``"<path>: Permission denied"``). For a reader that decodes
    what it hashes (:func:`syndof.depth_io.read_depth_sha256`)."""
    path = check_nonempty_file(path)
    with _naming(path):
        return path.read_bytes()


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """An OSError of reading the input file ``path`` in the block (``Permission denied``, an I/O error) raised as an
    :class:`InputError` ``"<path>: <strerror>"``: one line naming the file once, as every other bad input (a batch's
    skip line repeated it: ``skipped x.png: PermissionError: [Errno 13] Permission denied: 'x.png'``)."""
    try:
        yield
    except OSError as exc:
        raise InputError(path, exc.strerror or exc.__class__.__name__) from None


SYMLINK_LOOP = "a symbolic link loop (too many levels of symbolic links)"
"""What :func:`special_file_problem` says of a name whose links lead back to themselves (``ln -s a b; ln -s b a``,
or a loop in a folder above it; ``ELOOP``)."""


def special_file_problem(path: Path) -> str | None:
    """Why ``path``, which is there but is no regular file, cannot be read as one: a folder; a FIFO, socket or device
    (which a read would block on or never end); a symbolic link loop (:data:`SYMLINK_LOOP`: was "file not found" /
    "no such file or folder"); a symbolic link to nothing; another error of ``stat`` than "not there" (its text, e.g.
    ``Permission denied`` for a folder above it that cannot be searched). None when it is a regular file or nothing
    is there at all."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SYMLINK_LOOP
        if os.path.islink(path):
            return "a symbolic link to nothing"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        return exc.strerror or exc.__class__.__name__
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device)"
    return None


def _read_raw(path: str | os.PathLike, note_frames: bool = True) -> np.ndarray:
    path = check_nonempty_file(path)
    with _naming(path), open(path, "rb") as fh:
        data = fh.read()
    return _decode_raw(path, data, note_frames)


def _decode_raw(path: Path, data: bytes, note_frames: bool = True) -> np.ndarray:
    """The pixels of ``data``, the bytes of the image file ``path`` (named in errors), as stored (any channels and
    depth); EXIF orientation applied. The format is the bytes' (:func:`image_format`), never the name's: a JPEG
    named ``.png`` or without a suffix keeps its orientation. Nothing else is read from the file. Of an animated or
    multi-page file the first frame (:func:`read_image`), with ``note_frames`` a
    :class:`~syndof.frames.FirstFrameWarning` naming the file and its number of frames."""
    kind = image_format(data)
    img = _decode_first(path, data, kind)
    note = _extra_images_note(data) if note_frames and kind in frames.FRAMED_FORMATS else None
    if note:
        warnings.warn(f"{path}: {note}", frames.FirstFrameWarning, stacklevel=2)
    return img


def _extra_images_note(data: bytes) -> str | None:
    """:func:`syndof.frames.extra_images_note` of the image file's bytes ``data`` (Pillow's header; no pixel decoded);
    None when Pillow cannot read the header (the decoder has read the first image)."""
    try:
        with _quiet_header(), _pil_identify(io_module.BytesIO(data)) as pil:
            return frames.extra_images_note(pil)
    except Exception:  # a damaged frame structure: what the decoder read is the reader's answer
        return None


def _decode_first(path: Path, data: bytes, kind: str | None) -> np.ndarray:
    """:func:`_decode_raw`'s pixels of the first (or only) image of ``data``, of the format ``kind``."""
    if kind == "GIF":
        return _read_gif_first_frame(path, data)
    # IMREAD_UNCHANGED keeps 16-bit and alpha; EXIF orientation is applied separately below (TIFF: by OpenCV).
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:  # above OpenCV's own pixel limit (CV_IO_MAX_IMAGE_PIXELS, 2^30) and other decoder refusals
        img = None
    if img is None:
        raise InputError(path, "cannot decode image (unreadable, truncated or unsupported format)")
    if kind in EXIF_ORIENTED and kind not in DECODER_ORIENTED:
        img = _apply_exif_orientation(data, img)
    return img


def _read_gif_first_frame(path: Path, data: bytes) -> np.ndarray:
    import imageio.v3 as iio

    try:
        frame = np.asarray(iio.imread(io_module.BytesIO(data), index=0, extension=".gif"))
    except Exception as exc:  # imageio raises many types for corrupt files
        raise InputError(path, f"cannot decode GIF ({exc.__class__.__name__})") from exc
    if frame.ndim == 3 and frame.shape[2] >= 3:
        frame = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2BGR)
    return frame


def image_format(data: bytes) -> str | None:
    """The format of an image file from its first bytes (``data``: the file's bytes or at least their first 12), as
    PIL names it: "JPEG", "PNG", "TIFF", "WEBP" or "GIF"; None for any other. The reader goes by this, not by the
    file's name (a photo saved as ``.png`` that is a JPEG, common on the web, had its EXIF orientation dropped; a
    TIFF named ``.jpg`` was turned twice)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF, either byte order
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


EXIF_ORIENTED = ("JPEG", "MPO", "TIFF", "WEBP", "PNG")
"""Formats (PIL's names; MPO: a camera's multi-picture JPEG) whose EXIF orientation :func:`read_image` applies (and
:func:`header_size` reports), as Pillow's ``exif_transpose``, OpenCV's default ``imread`` and viewers do; a PNG's
from its ``eXIf`` chunk, before or after its pixels."""
DECODER_ORIENTED = ("TIFF",)
"""Of :data:`EXIF_ORIENTED`, the formats whose orientation tag (TIFF tag 274) OpenCV's decoder applies itself, even
with ``IMREAD_IGNORE_ORIENTATION`` (and whose size Pillow reports oriented): applied a second time, every
orientation 2–8 came out wrong (tests/test_io.py pins each of 1–8 against Pillow's ``exif_transpose``)."""


def _pil_identify(fh: BinaryIO):
    """PIL's image of the open file ``fh`` for its header only (size, EXIF); its pixels are never decoded through it.

    Each registered format's opener (``PIL.Image.OPEN``, as ``Image.open`` tries them) is called directly, so that
    PIL's decompression-bomb check, which ``Image.open`` runs on every image it identifies and which guards decoding,
    is not applied to a header (OpenCV decodes the pixels, after a caller's memory check): through ``Image.open`` a
    photo above 179 MP had its orientation dropped silently and no header size, and one above 89 MP printed PIL's
    "decompression bomb" warning. No PIL setting (``Image.MAX_IMAGE_PIXELS``) is changed. WebP's opener checks the
    size itself (above 2× PIL's limit): such a WebP's header is read by :class:`_WebPHeader` instead (its size and
    EXIF, as PIL's gave them), so that its orientation and the caller's memory check are kept."""
    from PIL import Image

    prefix = fh.read(16)
    tried: set[str] = set()
    for load in (Image.preinit, Image.init):  # the common formats first, then every plugin, as Image.open does
        load()
        for fmt in [f for f in Image.ID if f not in tried]:
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            answer = accept(prefix) if accept else True
            if not answer or isinstance(answer, str):  # a string: a reason this format does not open it
                continue
            fh.seek(0)
            try:
                return factory(fh, getattr(fh, "name", ""))
            except (SyntaxError, IndexError, TypeError, struct.error):  # not this format after all
                continue
            except Image.DecompressionBombError:  # WebP's opener checks PIL's limit itself, before the header
                fh.seek(0)
                return _WebPHeader(fh)
    raise ValueError("PIL cannot identify the image")


class _WebPHeader:
    """The header of a WebP file (``fh``, open at its start) as :func:`_pil_identify` uses PIL's: ``size`` (canvas
    width, height) from the VP8X, VP8L or VP8 chunk, and :meth:`getexif` from the EXIF chunk; ValueError when the
    RIFF container or its first chunk is not a WebP header."""

    format = "WEBP"

    def __init__(self, fh: BinaryIO):
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            raise ValueError("not a WebP file")
        self.size: tuple[int, int] | None = None
        self._exif = b""
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:  # the end of the file
                break
            kind, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            payload = fh.read(min(length, 1 << 24) if kind == b"EXIF" else min(length, 16))
            if self.size is None:  # the first chunk: VP8X (extended file), else its one image chunk
                self.size = self._chunk_size(kind, payload)
                if kind != b"VP8X":  # a simple file: no EXIF
                    break
            elif kind == b"EXIF":
                self._exif = payload
                break
            fh.seek(length + (length & 1) - len(payload), os.SEEK_CUR)
        if self.size is None:
            raise ValueError("WebP file without an image header")

    @staticmethod
    def _chunk_size(kind: bytes, payload: bytes) -> tuple[int, int] | None:
        if kind == b"VP8X" and len(payload) >= 10:
            return (int.from_bytes(payload[4:7], "little") + 1, int.from_bytes(payload[7:10], "little") + 1)
        if kind == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
            bits = int.from_bytes(payload[1:5], "little")
            return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        if kind == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
            return (int.from_bytes(payload[6:8], "little") & 0x3FFF, int.from_bytes(payload[8:10], "little") & 0x3FFF)
        return None

    def getexif(self):
        """PIL's ``Exif`` of the EXIF chunk (empty without one)."""
        from PIL import Image

        exif = Image.Exif()
        if self._exif:
            exif.load(self._exif)
        return exif

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def _orientation_exif(pil, fh: BinaryIO):
    """The EXIF of PIL's header ``pil`` of the open file ``fh`` (``Image.Exif``, a mapping of tags) when its format's
    orientation is applied (:data:`EXIF_ORIENTED`), else an empty mapping. A PNG's from its first ``eXIf`` chunk,
    before or after the pixels (:func:`syndof.png_chunks.chunk_data`: chunk headers only; PIL's ``getexif`` decodes a
    whole PNG to find one after them, as its ``exif_transpose`` and OpenCV's ``imread`` apply it)."""
    from PIL import Image

    fmt = getattr(pil, "format", None)
    if fmt not in EXIF_ORIENTED:
        return {}
    if fmt != "PNG":
        return pil.getexif()
    exif = Image.Exif()
    raw = pil.info.get("exif") or png_chunks.chunk_data(fh, b"eXIf")
    if raw:
        exif.load(raw)
    return exif


def _oriented_size(pil, fh: BinaryIO) -> tuple[int, int]:
    """(width, height) of PIL's header ``pil`` of the open file ``fh``, EXIF rotation applied (a TIFF's from its
    stored raster's tags 256 / 257: Pillow may report the size oriented already)."""
    exif = _orientation_exif(pil, fh)
    width, height = pil.size
    if getattr(pil, "format", None) in DECODER_ORIENTED and 256 in exif and 257 in exif:
        width, height = int(exif[256]), int(exif[257])
    swap = exif.get(0x0112, 1) in (5, 6, 7, 8)
    return (height, width) if swap else (width, height)


_QUIET_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_header() -> Iterator[None]:
    """Warnings ignored while PIL reads a header (its "Metadata Warning …" names no file; the reader reports a bad
    file). ``warnings.catch_warnings`` swaps the process's one filter list: two threads inside at once (the training
    stream's and the evaluation's reading threads) restored each other's, leaving "ignore" installed for every warning
    of the process afterwards; one thread at a time here."""
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _header_size(fh: BinaryIO) -> tuple[int, int] | None:
    """:func:`header_size` of the open image file ``fh`` (at its start)."""
    try:
        with _quiet_header():
            with _pil_identify(fh) as pil:
                return _oriented_size(pil, fh)
    except Exception:  # corrupt or unknown header: the decoder reports the file
        return None


def header_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) as :func:`read_image` will return the image (EXIF rotation applied), from the header without
    decoding the pixels; None if the header cannot be read (the reader reports the file later)."""
    if not os.path.isfile(path):  # a FIFO (opening it would wait for a writer), a link to nothing: the reader says
        return None
    try:
        with open(path, "rb") as fh:
            return _header_size(fh)
    except OSError:  # missing or unreadable: the reader reports the file
        return None


def _apply_exif_orientation(data: bytes, img: np.ndarray) -> np.ndarray:
    """Rotate/flip ``img`` (as decoded from the file bytes ``data``, BGR) by the EXIF orientation tag of ``data``,
    if any."""
    buffer = io_module.BytesIO(data)
    try:
        with _quiet_header():  # a damaged EXIF: PIL's warning names no file; the tag is used or not
            with _pil_identify(buffer) as pil:
                orientation = _orientation_exif(pil, buffer).get(0x0112, 1)
    except Exception:  # no EXIF or unreadable header: keep the pixels as decoded
        return img
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    return np.ascontiguousarray(ops[orientation](img)) if orientation in ops else img


def read_image(path: str | os.PathLike, note_frames: bool = True) -> np.ndarray:
    """Read a photo as RGB.

    Grayscale is replicated to 3 channels, alpha is dropped (composited over nothing: the colour is kept),
    16-bit images are scaled to [0, 1] like 8-bit ones, float images (TIFF) are taken as [0, 1] (values up to
    :data:`syndof.images.FLOAT_IMAGE_MAX` clipped), EXIF orientation is applied (:data:`EXIF_ORIENTED`; the format
    is the file's content, not its name). Of an animated or multi-page file (GIF, APNG, WebP, TIFF) the first
    frame or page is read (the one a viewer shows first; of an APNG whose default image is no frame of its
    animation, the animation's first frame, as OpenCV's decoder gives it), and a
    :class:`syndof.frames.FirstFrameWarning` says so, naming the file and its number of frames (a command prints it
    as one ``warning:`` line). ``note_frames=False``: no warning, for a caller that reads a file again in one run
    and has had its warning from the first read (one per file per run, kept by the caller: no state here).

    Returns:
        (H, W, 3) float32 RGB in [0, 1].

    Raises:
        InputError: missing, empty, unreadable (permission), undecodable or truncated file, an unsupported channel
            count or pixel type (int16, int32 … : only uint8, uint16 and float are read), or a float image with NaN /
            inf pixels or values above :data:`syndof.images.FLOAT_IMAGE_MAX` (0…255 stored as float).
    """
    return _as_rgb(path, _read_raw(path, note_frames))


def read_image_sha256(path: str | os.PathLike,
                      check_size: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, str]:
    """:func:`read_image` of ``path`` and the SHA-256 (64 lower-case hex digits, as :func:`file_sha256`) of exactly
    the bytes it decoded: the file is opened and read once, so a file replaced or rewritten meanwhile can never give
    the pixels of one version and the digest of another.

    ``check_size``: called with (width, height) as :func:`header_size` gives them (EXIF rotation applied), read
    from the header on the same open file before the rest of it is read and decoded; whatever it raises refuses the
    file (e.g. a memory check). Not called when the header cannot be read: the caller checks the decoded image.

    Raises:
        InputError: as :func:`read_image` (an unreadable file too: ``"<path>: Permission denied"``).
    """
    path = check_nonempty_file(path)
    with _naming(path), open(path, "rb") as fh:
        if check_size is not None:
            size = _header_size(fh)
            if size is not None:
                check_size(*size)
            fh.seek(0)
        data = fh.read()
    return _as_rgb(path, _decode_raw(path, data)), hashlib.sha256(data).hexdigest()


def _as_rgb(path: str | os.PathLike, img: np.ndarray) -> np.ndarray:
    """:func:`read_image`'s RGB float32 of the pixels ``img`` as decoded from ``path`` (named in errors)."""
    # The shape and dtype checks, scaling, float checks and gray → RGB are as_rgb_float's, as for an array given to
    # any estimator; they run on the decoded pixels before the channels are reordered (cv2.cvtColor raised its own
    # multi-line error for an int32 or int16 colour TIFF instead of naming the file).
    try:
        rgb = as_rgb_float(img, "image", min_side=2)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    if img.ndim == 3 and img.shape[2] in (3, 4):  # decoded as BGR(A); as_rgb_float kept B, G, R and dropped alpha
        rgb = np.ascontiguousarray(rgb[..., ::-1])
    return rgb


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
    """Read a σ map: a SYNDOF 16-bit PNG holding ``round(10·σ)`` (1 or 3 channels) or a float ``.npy`` in px.

    Returns:
        (H, W) float32 σ in px.

    Raises:
        InputError: unreadable file, an 8-bit PNG (not a SYNDOF map), a ``.npy`` of integers or bools (σ in px is
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
    raw = _read_raw(path)
    if raw.dtype != np.uint16:
        raise InputError(path, f"SYNDOF σ maps are 16-bit PNGs holding round(10·σ); this file is {raw.dtype}")
    if raw.ndim == 3:
        raw = raw[..., 1]  # all channels are equal in SYNDOF maps; the original reader takes channel 1
    return units.syndof_to_sigma(raw)


# ----------------------------------------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed. Without
    ``replace``, a ``path`` that exists by then (made meanwhile by another process) is kept and FileExistsError raised:
    the temporary file is hard-linked to ``path``, which fails on an existing name; where the file system has no hard
    links, it is renamed after a last check."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; outputs are ordinary files
        if replace:
            os.replace(tmp_path, path)
        else:
            move_to_new_name(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def move_to_new_name(tmp: Path, path: Path) -> None:
    """``tmp`` renamed to ``path`` only if nothing is there: FileExistsError (naming ``path``) otherwise, ``tmp``
    left in place. Atomic where the file system has hard links (``tmp`` is linked to ``path``, then unlinked);
    elsewhere ``path`` is checked just before the rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "File exists (written meanwhile by another process?)", str(tmp),
                              None, str(path)) from None
    except OSError:  # no hard links here (some network / FUSE file systems)
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists (written meanwhile by another process?)", str(tmp),
                                  None, str(path)) from None
        os.replace(tmp, path)
    else:
        tmp.unlink()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "--out", made: bool | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the block: a second process asking for it
    meanwhile gets an :class:`InputError` naming ``what`` and the folder at once, instead of writing beside the first
    (two training runs into one run folder mixed their metrics and left the last one's weights under the first one's
    config). The lock is the kernel's ``flock`` on the folder itself: no lock file is left behind, and a process that
    dies releases it. Where ``flock`` does not exist (not POSIX) the block runs unlocked.

    A folder made for this run (``made``: by the caller, earlier; None = by this call when missing) that the block
    leaves empty (a failure, Ctrl-C, a batch that wrote nothing) is removed at its end, while the lock is still held:
    never the folder of a run holding it (a process refused by the lock removes nothing)."""
    path = Path(folder)
    if made is None:
        try:
            path.mkdir(parents=True)
            made = True
        except FileExistsError:
            made = False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield path
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{what} {path}", "another process is writing into this folder now (a run of the same "
                             "tool?); wait for it to end or choose another folder (nothing was changed)") from None
        try:
            yield path
        finally:
            if made and path.is_dir() and not any(path.iterdir()):
                with contextlib.suppress(OSError):
                    path.rmdir()
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """All or nothing: yield a new hidden sibling ``.NAME.part-XXXXXXXX`` of ``out`` to write a whole folder into,
    and rename it to ``out`` when the block ends normally. On any exception (a failure, a full disk, Ctrl-C, SIGTERM,
    which every :func:`syndof.cli.entry_point` turns into SystemExit) the sibling is removed and ``out`` is left as it
    was. Without ``replace``, ``out`` must be missing or an empty folder (:func:`syndof.cli.new_folder_problem`); a
    folder that appears meanwhile with files in it is a ValueError naming ``--out``. With ``replace`` (the caller has
    checked that an existing ``out`` is its own), an earlier ``out`` is renamed aside first (``.NAME.old-XXXXXXXX``)
    and removed after the new one is in place: ``out`` is the earlier folder or the new one, but for the moment
    between the two renames (a process killed outright there leaves the earlier one under its aside name)."""
    target = Path(os.path.abspath(out))
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        stage = target.parent / f".{target.name}.part-{secrets.token_hex(4)}"
        try:
            stage.mkdir()  # plain mkdir: the umask's permissions, as the folder written directly had
            break
        except FileExistsError:
            continue
    try:
        yield stage
        old = None
        if replace and target.is_dir():
            old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
            os.rename(target, old)
        try:
            os.rename(stage, target)  # atomic; replaces an empty folder, fails on one with files
        except OSError as exc:
            if old is not None:
                os.rename(old, target)
            raise ValueError(f"--out {out}: {exc.strerror or exc} when moving the finished folder into place "
                             "(another run wrote there meanwhile?); nothing was written") from exc
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, replace: bool = True) -> None:
    """Write ``data`` to ``path`` atomically; without ``replace``, never over a file that exists by then
    (FileExistsError: :func:`atomic_path`)."""
    with atomic_path(path, replace) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str, replace: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``replace``: :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"), replace)


def read_json(path: str | os.PathLike) -> object:
    """Parse the JSON file ``path``; a missing, unreadable or malformed file raises :class:`InputError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as exc:  # not its contents: "Permission denied" (was "invalid JSON ([Errno 13] …)")
        raise InputError(path, exc.strerror or exc.__class__.__name__) from None
    except (UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise InputError(path, f"invalid JSON ({exc})") from None


def read_json_object(path: str | os.PathLike) -> dict:
    """:func:`read_json` of a file that must hold a JSON object (InputError naming it otherwise)."""
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise InputError(path, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def write_json_atomic(path: str | os.PathLike, obj: object, replace: bool = True) -> None:
    """Write ``obj`` as indented JSON atomically (``replace``: :func:`write_bytes_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", replace)


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
    return _imencode_png(arr, fast)


def _imencode_png(bgr: np.ndarray, fast: bool) -> bytes:
    """PNG bytes of an array already in OpenCV's channel order."""
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


def encode_sigma_map(sigma: np.ndarray, channels: int = 3, fast: bool = False) -> bytes:
    """σ (px) as SYNDOF 16-bit PNG bytes holding ``round(10·σ)`` with ``channels`` identical channels
    (:data:`PNG_FAST` encoder settings with ``fast``)."""
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
    return _imencode_png(value, fast)  # identical channels: no RGB → BGR swap needed


SIGMA_MAP_EXTENSIONS = (".png", ".npy")
"""Suffixes of σ-map files, written by :func:`write_sigma_map` and read by :func:`read_sigma_map`."""


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
    """``array`` as ``.npy`` file bytes (no pickle)."""
    buf = io_module.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically."""
    write_bytes_atomic(path, encode_npy(array))


def write_set_atomic(files: dict[Path, bytes], replace: bool = True) -> None:
    """Write several files as one set: each goes to a temporary file beside it, and only once every one is written
    are they renamed into place. On any error (disk full, permission) every temporary file is removed and no file of
    the set is created or replaced. The OSError raised names the file of the set it failed on (``exc.filename``),
    never the temporary file. Without ``replace`` a file that exists by the time of the rename is kept
    (FileExistsError; the files renamed before it, in reverse order of ``files``, are in place)."""
    current = None
    try:
        with contextlib.ExitStack() as stack:
            for path, data in files.items():
                current = path
                stack.enter_context(atomic_path(path, replace)).write_bytes(data)
            current = None  # all written; os.replace(tmp, target) names the target as filename2
    except OSError as exc:
        target = exc.filename2 if exc.filename2 is not None else current
        if target is None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc  # errno picks the subclass


def is_hidden(path: Path) -> bool:
    """Whether ``path``'s name starts with a dot: not a photo of its folder (macOS's ``._x.jpg`` resource forks beside
    ``x.jpg`` on a copied drive, a tool's staged ``.NAME.part-…`` files), in every listing of a folder as in
    ``predict --recursive``. A hidden file named on its own is still read."""
    return path.name.startswith(".")


def not_a_folder(folder: Path) -> InputError:
    """The error of a listing of ``folder``, which is no folder: "not a folder", or what stands there instead of
    nothing (a symbolic link loop or to nothing: :func:`special_file_problem`)."""
    problem = special_file_problem(folder) if not os.path.exists(folder) else None
    return InputError(folder, problem or "not a folder")


def image_names(folder: str | os.PathLike, recursive: bool = False,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                unreadable: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The names directly in the folder ``folder`` (with ``recursive``, anywhere below it) that are named as images
    (``extensions``, lower-case with the dot, compared case-insensitively; :data:`IMAGE_EXTENSIONS` unless a pairing
    names others), sorted, whatever stands there (a file, a folder, a link to nothing or in a loop, a FIFO); hidden
    ones and those under a hidden folder (:func:`is_hidden`) left out. The one walk of :func:`list_images`,
    :func:`unlisted_images`, :func:`index_by_stem` and ``predict``'s folder inputs.

    ``recursive`` descends into sub-folders, not into symbolic links to folders (as ``Path.rglob``). A sub-folder
    that cannot be listed (``Permission denied``) is never passed over unsaid (``rglob`` did: its images were left
    out of a batch without a word): it is appended to ``unreadable`` as ``(path, reason)``
    (:func:`unlistable_folder_reason`) when a list is given, else its OSError is raised (naming it). An OSError
    listing ``folder`` itself is raised."""
    folder = Path(folder)
    if not recursive:
        found = list(folder.iterdir())
    else:
        found = []

        def failed(exc: OSError) -> None:
            """A folder os.walk could not list: ``folder`` itself raises, a sub-folder goes to ``unreadable``."""
            where = Path(exc.filename) if exc.filename is not None else folder
            if unreadable is None or where == folder:
                raise exc
            unreadable.append((where, unlistable_folder_reason(exc)))

        for top, dirs, files in os.walk(folder, onerror=failed):
            dirs[:] = [d for d in dirs if not is_hidden(Path(d))]  # never listed: not walked (nor reported)
            found += [Path(top) / name for name in dirs + files]
    return sorted(p for p in found if p.suffix.lower() in extensions
                  and not any(is_hidden(Path(part)) for part in p.relative_to(folder).parts))


def unlistable_folder_reason(exc: OSError) -> str:
    """The reason a batch gives for a sub-folder a recursive listing (:func:`image_names`) could not list, from the
    listing's OSError ``exc``: ``"a folder that cannot be listed (Permission denied)"``."""
    return f"a folder that cannot be listed ({exc.strerror or exc})"


def list_images(folder: str | os.PathLike, recursive: bool = False,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files (by extension, case-insensitive) directly in ``folder`` (with ``recursive``, anywhere below it),
    sorted by path (:func:`image_names` that are files); hidden ones (:func:`is_hidden`, or under a hidden folder)
    left out, and so are image names where no file can be read (a link loop or to nothing, a FIFO): a batch reports
    those with :func:`unlisted_images` (same ``recursive``). ``extensions``: as :func:`image_names`. InputError when
    ``folder`` is no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise not_a_folder(folder)
    return [p for p in image_names(folder, recursive, extensions) if p.is_file()]


def unlisted_images(folder: str | os.PathLike, recursive: bool = False,
                    extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[tuple[Path, str]]:
    """The entries directly in the folder ``folder`` (with ``recursive``, anywhere below it, as ``predict
    --recursive`` lists) named as images (:data:`IMAGE_EXTENSIONS`, not hidden: :func:`is_hidden`, nor under a hidden
    folder) that :func:`list_images` leaves out because no file can be read there: a symbolic link loop, a link to
    nothing, a FIFO, socket or device; each with its reason (:func:`special_file_problem`), sorted by path. A folder
    named like an image is none of them (a listing never takes a folder for a photo). For a batch's one ``skipped
    PATH: reason`` line each: the listing alone drops them unsaid. ``extensions``: as :func:`image_names`."""
    return [(path, problem) for path in image_names(folder, recursive, extensions)
            if (problem := _unlisted_problem(path)) is not None]


def _unlisted_problem(path: Path) -> str | None:
    """Why :func:`list_images` leaves the image name ``path`` out (:func:`special_file_problem`), None for a file or a
    folder (a listing never takes a folder for a photo) or when nothing is there any more."""
    problem = special_file_problem(path)
    return problem if problem is not None and not os.path.isdir(path) else None


def list_images_and_unlisted(folder: str | os.PathLike, recursive: bool = False,
                             extensions: tuple[str, ...] = IMAGE_EXTENSIONS
                             ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(:func:`list_images`, :func:`unlisted_images`) of ``folder`` from one walk of it (:func:`image_names`), so
    that the files read and the names reported as skipped come from the same listing (two walks could disagree on
    a name made or removed between them, and cost a walk each). With ``recursive``, a sub-folder that cannot be
    listed is among the unlisted, with its reason (:func:`unlistable_folder_reason`), in path order. InputError when
    ``folder`` is no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise not_a_folder(folder)
    files, unlisted = [], []
    for path in image_names(folder, recursive, extensions, unreadable=unlisted):
        if path.is_file():
            files.append(path)
        elif (problem := _unlisted_problem(path)) is not None:
            unlisted.append((path, problem))
    return files, sorted(unlisted)


def image_entries(folder: str | os.PathLike, recursive: bool = False,
                  extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """:func:`list_images` and the names of :func:`unlisted_images` (same ``recursive``) together, sorted by path:
    every image name in ``folder`` that is no folder, whether a file can be read there or not. For a set whose
    members pair by name (a benchmark's images, a focal stack's frames, photos skipped before a split is drawn):
    reading such a name raises an InputError that names it (:func:`check_nonempty_file`), so the caller refuses or
    skips it by its own rule instead of leaving it out unsaid. ``extensions``: as :func:`image_names`. InputError
    when ``folder`` is no folder, or (``recursive``) holds a sub-folder that cannot be listed, naming it: the set
    would lack its images unsaid (no reader of a name could say so)."""
    files, unlisted = list_images_and_unlisted(folder, recursive, extensions)
    for path, why in unlisted:
        if os.path.isdir(path):  # an image name where no file can be read is never a folder (_unlisted_problem)
            raise InputError(path, why)
    return sorted(files + [path for path, _ in unlisted])


def unlisted_note(unlisted: list[tuple[Path, str]]) -> str:
    """For an error of a folder with too few images: ``" (N image name(s) there are no file to read, e.g. PATH:
    reason)"``, of :func:`unlisted_images`' list ``unlisted``; empty when it is."""
    if not unlisted:
        return ""
    path, why = unlisted[0]
    return f" ({len(unlisted)} image name(s) there are no file to read, e.g. {path}: {why})"


UNREADABLE_NAMES_SHOWN = 3
"""How many of the names :func:`refuse_unreadable_names` finds its one line names."""


def refuse_unreadable_names(paths: Iterable[str | os.PathLike | None]) -> None:
    """InputError ``"PATH: reason"`` for the first of ``paths`` (None ones passed over) where no file can be read
    although a name is there (a symbolic link loop or to nothing, a FIFO: :func:`special_file_problem`), followed,
    when there are more, by how many and the next few (:data:`UNREADABLE_NAMES_SHOWN` in all, as other counts:
    ``" (3 names where no file can be read, e.g. also B: reason, C: reason)"``), so that one run names what to
    mend, not one name per run; nothing when there is none. For a set read whole that refuses such a name before any
    work (an ``evaluate`` benchmark, a listed split), now that :func:`index_by_stem` keeps the name."""
    named = dict.fromkeys(str(path) for path in paths if path is not None)  # a name given twice counts once
    found = [(path, problem) for path in named if (problem := special_file_problem(Path(path))) is not None]
    if not found:
        return
    (first, problem), more = found[0], found[1:UNREADABLE_NAMES_SHOWN]
    if more:
        listed = ", ".join(f"{path}: {why}" for path, why in more)
        problem += f" ({len(found)} names where no file can be read, e.g. also {listed})"
    raise InputError(first, problem)


def index_by_stem(folder: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                  case_sensitive: bool = False) -> dict[str, Path]:
    """``{stem: path}`` of the entries directly in ``folder`` whose extension (case-insensitive) is in
    ``extensions`` (:func:`image_entries`): the files, and the names where no file can be read (a symbolic link loop
    or to nothing, a FIFO), kept so that reading one names it (:func:`check_nonempty_file`) and each caller refuses
    or skips it by its own rule; until 6 Dec 2026 such a name was left out, so a pairing called its partner
    "unmatched" or scored fewer files unsaid. Hidden names (:func:`is_hidden`) and folders left out.

    Keys are lower-case unless ``case_sensitive``. Two entries with the same key raise a "duplicate stem"
    :class:`InputError`, as does a missing folder — pairing datasets by stem never guesses.
    """
    folder = Path(folder)
    index: dict[str, Path] = {}
    for path in image_entries(folder, extensions=extensions):
        key = path.stem if case_sensitive else path.stem.lower()
        if key in index:
            raise InputError(path, f"duplicate stem: {index[key].name} and {path.name} in {folder}")
        index[key] = path
    return index


HASH_BLOCK = 1 << 20
"""Bytes read at a time by :func:`update_digest` (1 MiB: a large file is never held whole in memory)."""


def update_digest(digest, path: str | os.PathLike) -> None:
    """Feed the bytes of the file ``path`` to ``digest`` (a :mod:`hashlib` object), :data:`HASH_BLOCK` bytes at a
    time. OSError (missing, unreadable) as ``open`` raises it."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(HASH_BLOCK), b""):
            digest.update(block)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of the file ``path``'s bytes as 64 lower-case hex digits (read in blocks, :func:`update_digest`)."""
    digest = hashlib.sha256()
    update_digest(digest, path)
    return digest.hexdigest()


def readable_file_sha256(path: str | os.PathLike) -> str | None:
    """:func:`file_sha256` of ``path`` when it is a regular file that can be read now; None otherwise (nothing there,
    a folder, a FIFO, socket or device, which a read would block on, or an error reading it)."""
    if not Path(path).is_file():
        return None
    try:
        return file_sha256(path)
    except OSError:
        return None
