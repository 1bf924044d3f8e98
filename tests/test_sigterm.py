"""SIGTERM (``kill PID``, a job scheduler's stop) unwinds every command like Ctrl-C does: the temporary file of an
atomic write in progress is removed, and the process ends with status 143 (``syndof.cli.sigterm_unwinds``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from syndof import cli, io

    @cli.entry_point
    def main(argv=None):
        with io.atomic_path(Path(sys.argv[1]) / "result.bin") as tmp:
            tmp.write_bytes(b"half of it")
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would, in the middle of the write
            time.sleep(30)
        return 0

    sys.exit(main())
""")


def test_sigterm_during_an_atomic_write_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 143, run.stderr
    assert list(out.iterdir()) == []  # neither result.bin nor its hidden temporary file


def test_a_handler_already_set_is_kept(tmp_path):
    script = SCRIPT.replace("@cli.entry_point", "signal.signal(signal.SIGTERM, lambda *a: None)\n@cli.entry_point")
    script = script.replace("time.sleep(30)", "pass")
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run([sys.executable, "-c", script, str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and [p.name for p in out.iterdir()] == ["result.bin"]  # the caller's own handler
