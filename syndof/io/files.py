"""Input files: the error every reader raises (and the OSErrors of a read turned into it), special-file and
emptiness checks, an input's bytes read once, hidden names, the error of a listing that is no folder, SHA-256 of a
file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Iterator


class InputError(ValueError):
    """A bad input file; ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def reason_for(self, item: str | os.PathLike) -> str:
        """This error as the reason a batch gives for skipping ``item`` (the input it names in its own ``skipped
        ITEM: reason`` line, e.g. a photo): :attr:`problem` alone when the error is about ``item`` itself, the whole
        ``"<path>: <problem>"`` when it is about another file read for it (its mask, its σ map, its source photo),
        so that file is named and the item not blamed for it.

        ``item``: a path as ``str`` or any ``os.PathLike`` (``Path``). The two are compared as paths
        (``Path(item) == Path(self.path)``): a ``Path`` matches its text, and ``./a.png`` or ``d//a.png`` the
        ``a.png`` / ``d/a.png`` that :class:`Path` (which every reader makes of its argument) writes in the
        message; no file system access (a link and its target, or a relative and an absolute name of one file,
        are two paths)."""
        return self.problem if Path(self.path) == Path(item) else str(self)


def check_nonempty_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is a file with at least one byte; InputError naming it (``file not found``, ``a
    folder, not a file``, ``not a regular file`` for a FIFO, socket or device, a symbolic link loop or to nothing:
    :func:`special_file_problem`; ``file is empty``) otherwise."""
    path = Path(path)
    with read_errors_named(path):
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
    with read_errors_named(path):
        return path.read_bytes()


@contextlib.contextmanager
def read_errors_named(path: str | os.PathLike) -> Iterator[None]:
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
