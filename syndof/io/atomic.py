"""Writes that leave nothing half-written: a temporary name renamed into place (bytes, text, JSON, a set of files),
staged folders, the --out lock; and reading JSON files (InputError naming the file)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from syndof.io.files import InputError


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
    meanwhile gets an :class:`~syndof.io.files.InputError` naming ``what`` and the folder at once, instead of writing
    beside the first (two training runs into one run folder mixed their metrics and left the last one's weights under
    the first one's config). The lock is the kernel's ``flock`` on the folder itself: no lock file is left behind, and a
    process that dies releases it. Where ``flock`` does not exist (not POSIX) the block runs unlocked.

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
    """Parse the JSON file ``path``; a missing, unreadable or malformed file raises :class:`~syndof.io.files.InputError`
    naming it."""
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
