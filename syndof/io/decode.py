"""Reading images: decoding (first frame, EXIF orientation) to RGB float, the stored channels and pixel type, the
format of a file's bytes, header sizes, and the SHA-256 of the very bytes decoded."""

from __future__ import annotations

import contextlib
import hashlib
import io as io_module
import os
import struct
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import cv2
import numpy as np

from syndof import frames, png_chunks
from syndof.images import as_rgb_float
from syndof.io.files import InputError, check_nonempty_file, read_errors_named

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
"""Suffixes read as images."""


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
    return read_raw(path, note_frames=False).dtype  # the caller reads the image itself, and hears of its frames then


def read_image_stored(path: str | os.PathLike, note_frames: bool = True) -> tuple[np.ndarray, Stored]:
    """:func:`read_image` of ``path`` ((H, W, 3) float32 RGB in [0, 1]) and what the file stores (:class:`Stored`),
    from one read and one decode."""
    raw = read_raw(path, note_frames)
    return _as_rgb(path, raw), _stored(raw)


def read_raw(path: str | os.PathLike, note_frames: bool = True) -> np.ndarray:
    """The pixels of the image file ``path`` as stored, unscaled: (H, W) gray or (H, W, C) in OpenCV's BGR(A)
    channel order, of the file's dtype (uint8 0–255, uint16 0–65535, float); EXIF orientation applied, the first
    frame of an animation (:func:`_decode_raw`). InputError naming the file when it cannot be read or decoded."""
    path = check_nonempty_file(path)
    with read_errors_named(path), open(path, "rb") as fh:
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
    return _as_rgb(path, read_raw(path, note_frames))


def read_image_sha256(path: str | os.PathLike,
                      check_size: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, str]:
    """:func:`read_image` of ``path`` and the SHA-256 (64 lower-case hex digits, as
    :func:`~syndof.io.files.file_sha256`) of exactly the bytes it decoded: the file is opened and read once, so a file
    replaced or rewritten meanwhile can never give the pixels of one version and the digest of another.

    ``check_size``: called with (width, height) as :func:`header_size` gives them (EXIF rotation applied), read
    from the header on the same open file before the rest of it is read and decoded; whatever it raises refuses the
    file (e.g. a memory check). Not called when the header cannot be read: the caller checks the decoded image.

    Returns:
        ((H, W, 3) float32 RGB in [0, 1], as :func:`read_image`; the hex digest).

    Raises:
        InputError: as :func:`read_image` (an unreadable file too: ``"<path>: Permission denied"``).
    """
    path = check_nonempty_file(path)
    with read_errors_named(path), open(path, "rb") as fh:
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
