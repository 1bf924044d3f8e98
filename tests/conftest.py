"""Shared fixtures: access to ../shared (skip when absent, fail in CI), seeded RNGs, a temp workspace."""

from __future__ import annotations

import os
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
