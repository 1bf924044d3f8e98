"""Long-lived generate workers must not grow: every SuperLU fill factor is released on the thread that made it.

SciPy frees a SuperLU allocation only on the thread that allocated it (scipy/scipy#15921); the renderer factorises
its occlusion-fill systems on worker threads, so a factor dropped on the main thread leaked (tens of MB per image,
~12 GB per generate worker after ~50 BSDS photos at max_coc 43).
"""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import syndof.blur as blur


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def occlusion_stack(size: int = 128, near_layers: int = 12):
    """Far blurred strip, an in-focus layer, then nested nearer squares (CoC 43): wide fill bands every step."""
    yy, xx = np.mgrid[0:size, 0:size]
    d = np.maximum(abs(yy - size / 2), abs(xx - size / 2))
    labels = np.clip((size / 2 - d) / (size / 2) * near_layers, 0, near_layers - 1).astype(np.int64) + 2
    labels[labels == 2] = 1
    labels[:, : size // 8] = 0
    coc = np.full(near_layers + 2, 43.0)
    coc[1] = 1.0
    img = torch.from_numpy(np.random.default_rng(0).random((3, size, size))).float()
    return img, torch.from_numpy(labels), torch.from_numpy(coc)


class _Tracked:
    """Stands in for a SuperLU factor; records the thread that creates it and the one that drops it."""

    def __init__(self, lu, log):
        self._lu, self._log = lu, log
        self.made_on = threading.get_ident()
        log["made"].append(self.made_on)

    def solve(self, rhs):
        return self._lu.solve(rhs)

    def __del__(self):
        self._log["freed"].append((self.made_on, threading.get_ident()))


@pytest.fixture
def tracked_splu(monkeypatch):
    """Forces SuperLU (the banded Cholesky path holds no SuperLU object) and records each factor's threads."""
    import scipy.sparse.linalg as spla

    import syndof.regionfill as regionfill

    monkeypatch.setattr(regionfill, "BANDED_MAX_BANDWIDTH", 0)
    log = {"made": [], "freed": []}
    real = spla.splu
    monkeypatch.setattr(spla, "splu", lambda mat, *a, **k: _Tracked(real(mat, *a, **k), log))
    return log


@pytest.mark.parametrize("cpus", [2, 4])  # 1 and 3 fill threads
def test_fill_factors_are_released_on_their_threads(monkeypatch, tracked_splu, cpus):
    monkeypatch.setattr(blur, "available_cpus", lambda: cpus)
    img, labels, coc = occlusion_stack(64, 8)
    out = blur.render_layers(img, labels, coc, max_coc=43)
    gc.collect()
    made, freed = tracked_splu["made"], tracked_splu["freed"]
    main = threading.get_ident()
    assert made and any(t != main for t in made), "the fill pipeline did not run on worker threads"
    assert len(freed) == len(made)
    assert all(made_on == freed_on for made_on, freed_on in freed)
    # the same pixels as without the pipeline
    with blur._single_threaded(True):
        ref = blur._render_tiled(img, labels, coc, 43, "gaussian", None, 32, pipeline=False)
    assert torch.equal(out, ref)


def test_fill_factors_are_released_after_an_error(monkeypatch, tracked_splu):
    monkeypatch.setattr(blur, "available_cpus", lambda: 4)
    calls = {"n": 0}
    real_apply = blur.apply_fill

    def failing_apply(C, A, plan):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        real_apply(C, A, plan)

    monkeypatch.setattr(blur, "apply_fill", failing_apply)  # where _render_tiled looks it up
    img, labels, coc = occlusion_stack(64, 8)
    with pytest.raises(RuntimeError, match="boom"):
        blur.render_layers(img, labels, coc, max_coc=43)
    gc.collect()
    made, freed = tracked_splu["made"], tracked_splu["freed"]
    assert len(made) > 3 and len(freed) == len(made)
    assert all(made_on == freed_on for made_on, freed_on in freed)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmRSS from /proc/self/status")
def test_repeated_renders_do_not_grow_rss():
    """Before the fix this stack leaked ~20 MB per render (≥ 80 MB here); now RSS stays flat. The minimum over
    the last renders ignores transient allocator peaks (up to ~30 MB)."""
    img, labels, coc = occlusion_stack(112, 10)
    blur.render_layers(img, labels, coc, max_coc=43)  # warm-up: imports, allocator pools
    gc.collect()
    start = _rss_mb()
    after = []
    for _ in range(5):
        blur.render_layers(img, labels, coc, max_coc=43)
        gc.collect()
        after.append(_rss_mb())
    growth = min(after[-2:]) - start
    assert growth < 50.0, f"RSS grew {growth:.0f} MB over 5 renders: {[round(r) for r in after]} (start {start:.0f})"
