"""Shared fixtures: access to ../shared (skip when absent, fail in CI), seeded RNGs, a temp workspace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable


def _pin_openblas_kernels() -> None:
    """Pin numpy's OpenBLAS to its AVX2 ("Haswell") kernels on CPUs that have AVX2, before numpy is imported.

    The detection head's products run on BLAS: on an AVX-512 CPU OpenBLAS picks its SkylakeX kernels, which sum in
    another order and change the last bits (measured 4 Dec 2026 on an AMD EPYC with AVX-512: the head's map digests
    differed, and matched again with this pin). The pinned maps of tests/recipe_identity.py have been compared within
    float rounding since 5 Dec (torch's own kernels differ between CPUs too); the pin keeps the tests' BLAS the same
    on every AVX2 machine. An explicit OPENBLAS_CORETYPE wins; CPUs without AVX2 are left alone (the kernels would
    not run there)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return
    if " avx2" in flags:
        os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")


_pin_openblas_kernels()

import numpy as np  # noqa: E402 - after the OpenBLAS pin
import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_file(*parts: str) -> Path:
    """Path under ../shared; skips the test when missing, or fails when DEFOCUS_REQUIRE_SHARED=1 (CI)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        msg = f"needs {path} (../shared beside the checkout)"
        if os.environ.get("DEFOCUS_REQUIRE_SHARED") == "1":
            pytest.fail(msg + " — DEFOCUS_REQUIRE_SHARED=1 turns this skip into a failure")
        pytest.skip(msg)
    return path


@pytest.fixture
def shared() -> Callable[..., Path]:
    """``shared("data", "cuhk", "gt")`` → Path, skipping (or failing in CI) when absent."""
    return shared_file


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _torch_determinism():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (the layered renderer is fastest single-threaded: many tiny ops;
    generate() does the same by default); restores the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ dmenet.train runs shared by the train test files
@pytest.fixture(scope="session")
def tiny_syndof(tmp_path_factory) -> Path:
    """Four tiny SYNDOF-style renders (``train_data_helpers.write_syndof``), read-only for the tests."""
    from train_data_helpers import write_syndof

    return write_syndof(tmp_path_factory.mktemp("syn") / "syn", count=4)


@pytest.fixture(scope="session")
def finished_blur_run(tmp_path_factory, tiny_syndof) -> Path:
    """A finished 2-step blur-stage run of ``experiments/tiny.yaml`` on :func:`tiny_syndof` (checkpoint at step 2,
    model_last, metrics, config); read-only: tests that change a run take :func:`blur_run_copy`."""
    from train_data_helpers import blur_cli

    from dmenet.train import main

    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(blur_cli(tiny_syndof, run, "--steps", "2")) == 0
    return run


@pytest.fixture
def blur_run_copy(finished_blur_run, tmp_path) -> Path:
    """A copy of :func:`finished_blur_run` for this test to change."""
    return Path(shutil.copytree(finished_blur_run, tmp_path / "run"))
