"""The developer scripts of benchmarks/ follow the command-line rule of every entry point (syndof/cli.py): ``--help``
works, and a bad option is one line ``error: …`` on stderr with exit status 2, never a traceback. Only argument
parsing runs (no benchmark is timed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if "def main(" in p.read_text(encoding="utf-8"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_both(script: Path, *calls: list[str]) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of ``python script ARGS`` for each ARGS of ``calls``, run side by side."""
    procs = [subprocess.Popen([sys.executable, str(script), *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in calls]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    return results


def test_the_scripts_are_found():
    names = {p.name for p in SCRIPTS}
    assert {"bench_predict.py", "bench_train.py", "bench_checkouts.py", "sigma_bins.py"} <= names
    assert "interleave.py" not in names  # a helper module, no command line


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_help_and_a_bad_option(script):
    (status, out, err), (bad_status, _, bad_err) = run_both(script, ["--help"], ["--no-such-flag"])
    assert status == 0, err
    assert f"python benchmarks/{script.name}" in out and "example:" in out
    assert bad_status == 2, bad_err
    lines = bad_err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), bad_err
    assert "--no-such-flag" in lines[0] or "required" in lines[0]  # argparse names a missing required one first
