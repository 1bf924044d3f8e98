"""Helpers of the hostile-use battery (tests/test_hostile_*.py, cases of docs/reliability.md): run a CLI's ``main`` in
process and check what the user sees."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import signal
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from syndof import io as sio
from syndof.io import listing as sio_listing


def sigint_as_at_a_terminal() -> None:
    """``preexec_fn`` of a child process a test sends Ctrl-C: SIGINT's default action, as a terminal's foreground job
    has it. A test run started in the background (``pytest … &``, a CI step) hands its children SIGINT *ignored*
    (a shell's background jobs ignore it, and the disposition survives exec), and the signal would then do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def unreadable(path: Path, monkeypatch):
    """In the block, ``path`` cannot be opened: ``chmod 000``, or, for root (which reads through it), ``open`` (the
    built-in and ``io.open``, which ``Path.read_text`` calls) raising the kernel's ``PermissionError(13, "Permission
    denied", path)`` for it. Both undone after the block."""
    import builtins
    import io
    import os

    real_open = builtins.open
    if os.geteuid() == 0:
        def denied(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", denied)
        monkeypatch.setattr(io, "open", denied)
    else:
        path.chmod(0)
    try:
        yield
    finally:
        monkeypatch.setattr(builtins, "open", real_open)
        monkeypatch.setattr(io, "open", real_open)
        path.chmod(0o644)


@contextlib.contextmanager
def unwritable_folder(folder: Path, monkeypatch):
    """In the block, nothing can be created in ``folder``: ``chmod 555``, or, for root (which writes through it),
    the write probe of :func:`syndof.cli.folder_to_write_problem` (``tempfile.TemporaryFile``) raising the kernel's
    ``PermissionError(13, "Permission denied")``, as a read-only file system would. The mode is restored after."""
    import os

    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
    else:
        def denied(*args, dir=None, **kwargs):
            raise PermissionError(13, "Permission denied", f"{dir}/.o.tmp123")

        monkeypatch.setattr("tempfile.TemporaryFile", denied)
    try:
        yield
    finally:
        os.chmod(folder, 0o755)


def run_main(main: Callable[[Sequence[str]], int], argv: Sequence[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``main(argv)``; argparse's SystemExit is turned into its status."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_usage_error(rc: int, err: str, *names: str) -> str:
    """Exit status 2, no traceback, and exactly one ``error:`` line that names every one of ``names``."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def assert_logged_usage_error(main: Callable[[Sequence[str]], int], argv: Sequence[str], caplog,
                              *names: str) -> str:
    """For CLIs that also log (train, evaluate): exit status 2 and one ``error:`` line on stderr (the shared CLI
    wrapper, :func:`syndof.cli.entry_point`) naming every one of ``names``; no traceback in stderr or the log."""
    caplog.clear()
    err = io.StringIO()
    with caplog.at_level(logging.INFO), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code if isinstance(exc.code, int) else 1
    assert "Traceback" not in caplog.text
    return assert_usage_error(rc, err.getvalue(), *names)


def write_rgb(path: Path, h: int = 24, w: int = 32, seed: int = 0) -> Path:
    """A small random RGB image file (PNG or JPEG by suffix)."""
    rng = np.random.default_rng(seed)
    sio.write_image(path, rng.random((h, w, 3)).astype(np.float32))
    return path


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path (to show that nothing changed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_cuhk_pairs(root: Path, count: int = 4) -> Path:
    """``count`` CUHK-style pairs under ``root`` (``image/s<i>.png`` random RGB, ``gt/s<i>.png`` white = blurred
    with a sharp band of 8 + i columns), 20 x 30 px; returns ``root``."""
    rng = np.random.default_rng(0)
    for i in range(count):
        mask = np.full((20, 30), 255, np.uint8)
        mask[:, : 8 + i] = 0
        sio.write_image(root / "image" / f"s{i}.png", rng.random((20, 30, 3)).astype(np.float32))
        sio.write_image(root / "gt" / f"s{i}.png", mask)
    return root


def count_walks(monkeypatch) -> list[Path]:
    """Record every folder :func:`syndof.io.image_names` (the one walk under every listing) walks from now on, in
    order; the returned list fills as the test runs."""
    walks: list[Path] = []
    listing = sio.image_names

    def counted(folder, *args, **kwargs):
        walks.append(Path(folder))
        return listing(folder, *args, **kwargs)

    monkeypatch.setattr(sio, "image_names", counted)  # callers outside syndof.io
    monkeypatch.setattr(sio_listing, "image_names", counted)  # the listings of syndof.io.listing
    return walks
