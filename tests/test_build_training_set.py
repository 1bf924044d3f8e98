"""experiments/build_training_set.py: the held-out EBB! validation copies (×1 links, ×0.5 with σ × 0.5)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from syndof import io

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("build_training_set", ROOT / "experiments" / "build_training_set.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_validation_half_copy_halves_size_and_sigma(tmp_path):
    mod = _module()
    syn = tmp_path / "syn"
    rng = np.random.default_rng(0)
    sigma = np.full((41, 60), 4.0, np.float32)
    sigma[:, 30:] = 1.0
    for stem in ("a_000000", "ebb_000001"):
        io.write_image(syn / "image" / f"{stem}.png", rng.random((41, 60, 3)).astype(np.float32))
        io.write_sigma_map(syn / "blur_map" / f"{stem}.png", sigma)
    io.write_json_atomic(syn / "dataset.json", {"format": "syndof", "max_coc": 29, "parts": {"x": 13}})

    mod.write_validation_ebb(syn, ["ebb_000001"], tmp_path / "full", tmp_path / "half")

    assert sorted(p.name for p in (tmp_path / "full" / "image").iterdir()) == ["ebb_000001.png"]
    assert np.array_equal(io.read_image(tmp_path / "full" / "image" / "ebb_000001.png"),
                          io.read_image(syn / "image" / "ebb_000001.png"))
    half = io.read_sigma_map(tmp_path / "half" / "blur_map" / "ebb_000001.png")
    assert io.read_image(tmp_path / "half" / "image" / "ebb_000001.png").shape == (20, 30, 3)
    assert half.shape == (20, 30)
    # σ is measured in px of the image it belongs to: halving the image halves σ (4 → 2, 1 → 0.5 px).
    assert np.allclose(half[:, :14], 2.0) and np.allclose(half[:, 16:], 0.5)
    meta = json.loads((tmp_path / "half" / "dataset.json").read_text())
    assert meta["max_coc"] == 29 and "parts" not in meta
