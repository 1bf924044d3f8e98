"""The developer scripts of benchmarks/ follow the command-line rule of every entry point (syndof/cli.py): ``--help``
works and says what machine load the figures expect, and a bad option or value (repeats 0, threads 0, an unknown
method, a missing file, an output over an earlier result) is one line ``error: …`` naming it on stderr with exit
status 2, never a traceback. Only argument parsing and the checks before any work run (no benchmark is timed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if "def main(" in p.read_text(encoding="utf-8"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
MISSING = "no/such/file.png"
BAD = {  # per script: one bad value its checks refuse before any work, and what the error line must name
    "bench_checkouts.py": (["m.safetensors", "--before", ".", "--repeats", "0"], "--repeats"),
    "bench_detection_paths.py": (["A=m.safetensors", "--flips", "3"], "--flips"),
    "bench_distill_train.py": (["--steps", "0"], "--steps"),
    "bench_fastpath.py": (["--repeats", "-1"], "--repeats"),
    "bench_galetto.py": (["--repeats", "0"], "--repeats"),
    "bench_galetto_train.py": (["--steps", "0"], "--steps"),
    "bench_generate.py": (["--json", "setup.cfg"], "--json setup.cfg"),  # an earlier result is never replaced
    "bench_generate_memory.py": (["--count", "0"], "--count"),
    "bench_onnx.py": (["--threads", "0"], "--threads"),
    "bench_predict.py": (["--repeats", "0"], "--repeats"),
    "bench_predict_batch.py": (["--methods", "no_such_method"], "--methods"),
    "bench_predict_parts.py": (["--repeats", "0"], "--repeats"),
    "bench_refine_memory.py": (["--threads", "0"], "--threads"),
    "bench_render.py": (["--json", "checkpoints/x.json"], "checkpoints/"),
    "bench_train.py": (["--warmup", "-1"], "--warmup"),
    "distill_ablation.py": (["--models", "a", "--base", "a", "--out", "x.json"], "--models"),
    "distill_compare.py": (["--out", "benchmarks"], "--out benchmarks"),  # a folder that is not empty
    "scale_consistency.py": (["--scales", "0"], "--scales"),
    "sigma_bins.py": (["--data", "x", "--method", "no_such_method"], "--method"),
    "train_numerics.py": (["--photos", MISSING], MISSING),
}


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
def test_help_and_a_bad_value(script):
    bad, named = BAD[script.name]
    # two processes a script (each imports torch): an unknown flag is argparse's own refusal, the same in every
    # script; the bad value reaches the script's own checks
    (status, out, err), (value_status, _, value_err) = run_both(script, ["--help"], bad)
    assert status == 0, err
    assert f"python benchmarks/{script.name}" in out and "example:" in out
    assert "load" in out  # what load the figures expect (or that load does not change them)
    assert value_status == 2, value_err
    lines = value_err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], value_err


def test_every_script_has_a_bad_input_case():
    assert {p.name for p in SCRIPTS} == set(BAD)
