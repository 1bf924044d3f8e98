"""experiments/build_training_set.py: the held-out EBB! validation copies (×1 links, ×0.5 with σ × 0.5) and the
re-blurred copies (σ := √(σ² + g²))."""

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


def _syndof(syn: Path, stems, shape: tuple[int, int], left: float, right: float) -> Path:
    """A SYNDOF folder of random images whose σ is ``left`` px on the left half and ``right`` px on the right."""
    rng = np.random.default_rng(0)
    sigma = np.full(shape, left, np.float32)
    sigma[:, shape[1] // 2 :] = right
    for stem in stems:
        io.write_image(syn / "image" / f"{stem}.png", rng.random((*shape, 3)).astype(np.float32))
        io.write_sigma_map(syn / "blur_map" / f"{stem}.png", sigma)
    io.write_json_atomic(syn / "dataset.json", {"format": "syndof", "max_coc": 29, "parts": {"x": 13}})
    return syn


def test_validation_half_copy_halves_size_and_sigma(tmp_path):
    mod = _module()
    syn = _syndof(tmp_path / "syn", ("a_000000", "ebb_000001"), (41, 60), left=4.0, right=1.0)

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


def test_reblurred_copy_composes_sigma_and_resumes(tmp_path):
    mod = _module()
    syn = _syndof(tmp_path / "syn", ("a", "b", "c"), (40, 50), left=3.0, right=0.0)

    extras = mod.write_reblurred(syn, ["a", "b", "c"], tmp_path / "rb", seed=9)
    meta = json.loads((tmp_path / "rb" / "dataset.json").read_text())
    assert meta["reblur_px"] == extras and "parts" not in meta and meta["max_coc"] == 29
    assert all(0.5 <= g <= 2.0 for g in extras.values()) and len(set(extras.values())) == 3
    for stem, g in extras.items():
        out = io.read_sigma_map(tmp_path / "rb" / "blur_map" / f"{stem}.png")
        np.testing.assert_allclose(out[:, 0], round(float(np.hypot(3.0, g)), 1), atol=0.051)  # 0.1 px storage
        np.testing.assert_allclose(out[:, -1], round(g, 1), atol=0.051)
        image = io.read_image(tmp_path / "rb" / "image" / f"{stem}.png")
        assert image.std() < io.read_image(syn / "image" / f"{stem}.png").std()  # really blurred
    # resumable: a second call keeps what is there and draws the same g
    (tmp_path / "rb" / "image" / "b.png").write_bytes(b"kept")
    assert mod.write_reblurred(syn, ["a", "b", "c"], tmp_path / "rb", seed=9) == extras
    assert (tmp_path / "rb" / "image" / "b.png").read_bytes() == b"kept"
