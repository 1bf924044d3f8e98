"""Training transforms against hand values: vertical flip flips rows of every map alike, the centre crop leaves an
odd margin's extra pixel at the bottom / right, random downscale keeps the shorter side ≥ crop and scales σ."""

from __future__ import annotations

import numpy as np
import torch

from dmenet.data import transforms as T


def _sample(h, w):
    img = np.arange(h * w * 3, dtype=np.float32).reshape(h, w, 3) / (h * w * 3)
    sigma = np.arange(h * w, dtype=np.float32).reshape(h, w)
    return {"image": img, "sigma": sigma}


def test_vflip_reverses_rows_of_image_and_sigma():
    s = _sample(4, 5)
    out = T.random_vflip(s, torch.Generator().manual_seed(0), p=1.0)
    assert np.array_equal(out["image"], s["image"][::-1])
    assert np.array_equal(out["sigma"], s["sigma"][::-1])
    assert np.array_equal(T.random_vflip(s, torch.Generator().manual_seed(0), p=0.0)["sigma"], s["sigma"])


def test_center_crop_extra_margin_pixel_goes_bottom_right():
    s = _sample(5, 7)
    out = T.center_crop(s, 2)  # margins: rows 1 above, 2 below; columns 2 left, 3 right
    assert np.array_equal(out["sigma"], s["sigma"][1:3, 2:4])
    assert np.array_equal(out["image"], s["image"][1:3, 2:4])


def test_random_downscale_keeps_the_short_side_at_the_crop_and_scales_sigma():
    """Scale 0.1 asked on 40×100 with crop 32: raised to 32/40 = 0.8 → 32×80, σ × 0.8."""
    s = {"image": np.full((40, 100, 3), 0.5, np.float32), "sigma": np.full((40, 100), 2.0, np.float32)}
    out = T.random_downscale(s, 32, torch.Generator().manual_seed(0), 0.1, 0.1)
    assert out["image"].shape == (32, 80, 3) and out["sigma"].shape == (32, 80)
    assert np.allclose(out["sigma"], 1.6, atol=1e-5)
