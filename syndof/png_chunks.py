"""The chunks of a PNG file, walked by their 8-byte headers without reading or decoding the pixel data: what
:mod:`syndof.io` needs beyond the pixels (the ``eXIf`` orientation wherever it lies; an animation's frames are
counted by Pillow, :mod:`syndof.frames`)."""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Callable, Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The first 8 bytes of every PNG file."""


def chunks(fh: BinaryIO) -> Iterator[tuple[bytes, int, int]]:
    """``(type, length, offset)`` of each chunk of the PNG file ``fh`` (binary, seekable, the signature at offset 0),
    in file order: its 4-byte type (``b"IHDR"``, ``b"IDAT"``, ``b"eXIf"`` …), the length of its data in bytes and the
    offset of that data in the file. Ends after ``IEND`` or at the end of the file (a truncated file: the chunks whose
    headers are there). Only headers are read (one positioned read per chunk); a consumer may read a chunk's data from
    ``fh`` meanwhile."""
    read_at = _reader(fh)
    position = len(PNG_SIGNATURE)
    while True:
        head = read_at(position, 8)
        if len(head) < 8:
            return
        length = struct.unpack(">I", head[:4])[0]
        kind = head[4:]
        yield kind, length, position + 8
        if kind == b"IEND":
            return
        position += 12 + length  # length, type, data, CRC


def _reader(fh: BinaryIO) -> Callable[[int, int], bytes]:
    """``read_at(offset, size)`` of ``fh``: ``os.pread`` on a file with a descriptor (a buffered file's seek to each
    chunk refilled its buffer: the whole file read, 8 KiB at a time, for a walk of its headers), else seek and read."""
    try:
        fd = fh.fileno()
    except (AttributeError, OSError, ValueError):  # BytesIO: io.UnsupportedOperation
        fd = None
    if fd is not None and hasattr(os, "pread"):
        return lambda offset, size: os.pread(fd, size, offset)

    def seek_and_read(offset: int, size: int) -> bytes:
        fh.seek(offset)
        return fh.read(size)

    return seek_and_read


def chunk_data(fh: BinaryIO, kind: bytes, limit: int = 1 << 24) -> bytes | None:
    """The data of the first chunk of type ``kind`` in the PNG file ``fh`` (before or after the pixel data), at most
    ``limit`` bytes of it; None without one."""
    for found, length, offset in chunks(fh):
        if found == kind:
            fh.seek(offset)
            return fh.read(min(length, limit))
    return None
