"""Galetto applications (dmenet.galetto.apps) on small inputs with values known by hand or by a physical invariant."""

import numpy as np

from dmenet.galetto import apps


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_magnify_keeps_in_focus_pixels_in_front_of_the_blurred_ones():
    """σ = 0 stays 0 under ×k, and sharp = near (docstring): the sharp half is composited last, so its pixels are the
    input's exactly, up to the border with the blurred half."""
    img = _texture(32, 48, seed=1)
    sigma = np.zeros((32, 48))
    sigma[:, 24:] = 2.0
    out = apps.magnify_scale(img, sigma, k=2.0)
    np.testing.assert_allclose(out[:, :24], img[:, :24], atol=1e-6)
    assert np.abs(out[:, 30:] - img[:, 30:]).mean() > 0.05  # the blurred half did get more blur


def test_nlt_weight_is_zero_and_finite_beyond_10_px():
    w = apps.nlt_weight(np.array([10.0, 12.0, 50.0]))
    assert np.all(np.isfinite(w)) and np.all(w < 1e-6) and np.all(w >= 0)
    # and it falls monotonically from sharp to blurred
    q = np.linspace(0, 9.9, 50)
    assert np.all(np.diff(apps.nlt_weight(q)) < 0)


def test_sdof_keeps_sharp_pixels_sharpened_and_smooths_blurred_ones():
    img = _texture(24, 24, seed=2)
    sharp = apps.sdof(img, np.zeros((24, 24)), radius=2, iters=1)
    assert sharp[1].min() > 0.999  # W(0) ≥ W(c0 = 1) = 0.999
    np.testing.assert_allclose(sharp[0], apps.unsharp(img, 0.25), atol=2e-3)  # R ≈ S where W ≈ 1
    blurred = apps.sdof(img, np.full((24, 24), 9.0), radius=2, iters=1)
    assert blurred[1].max() < 0.001  # W(9) < W(c1 = 7) = 0.001
    np.testing.assert_allclose(blurred[0], np.clip(apps.self_guided_smooth(img, 2, iters=1), 0, 1), atol=1e-3)


def test_unsharp_adds_the_detail_of_a_single_bright_pixel():
    img = np.zeros((21, 21, 3))
    img[10, 10] = 0.4
    x = np.arange(-4, 5)  # σ = 2 px low-pass: 2·ceil(2σ) + 1 = 9 taps
    g = np.exp(-x * x / 8.0)
    g0 = (g[4] / g.sum()) ** 2  # centre weight of the separable kernel
    out = apps.unsharp(img, 1.5)
    # J = I + λ(I − B) at the pixel: 0.4 + 1.5·(0.4 − 0.4·g0); around it I = 0 < B, so J clips to 0
    np.testing.assert_allclose(out[10, 10], 0.4 + 1.5 * 0.4 * (1 - g0), rtol=1e-9)
    assert np.all(out[10, 11] == 0) and np.all(out[0, 0] == 0)
    np.testing.assert_allclose(apps.unsharp(np.full((9, 9, 3), 0.3), 2.0), 0.3, atol=1e-12)  # no detail, no change


def test_decision_map_keeps_an_island_of_exactly_the_threshold_area():
    """bwareaopen(BW, P) keeps components of P pixels or more: 1 % of 45² is 20.25, so P = 21."""
    sig = np.stack([np.ones((45, 45)), np.full((45, 45), 0.5)])
    sig[0, 5:8, 5:12] = 0.0  # 3 × 7 = 21 px where frame 0 is sharper
    d = apps.decision_map(sig)
    assert d.sum() == 45 * 45 - 21 and (d[5:8, 5:12] == 0).all()
    sig[0, 7, 11] = 1.0  # 20 px: removed
    assert (apps.decision_map(sig) == 1).all()
