"""The Galetto applications (:mod:`dmenet.galetto.apps`) on the images users pass: uint8 gives the float result, float
images in 0…255 and malformed σ maps or parameters are one ValueError naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

from dmenet.galetto import apps

H, W = 32, 40


def _image(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((H, W, 3)) * 255).round().astype(np.uint8)


def _sigma() -> np.ndarray:
    return np.tile(np.linspace(0, 6, W, dtype=np.float32), (H, 1))


def test_uint8_gives_the_float_result():
    u8, s = _image(), _sigma()
    f = u8.astype(np.float32) / 255
    np.testing.assert_array_equal(apps.adaptive_enhance(u8, s), apps.adaptive_enhance(f, s))
    for got, want in zip(apps.sdof(u8, s, iters=1), apps.sdof(f, s, iters=1)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(apps.magnify_scale(u8, s), apps.magnify_scale(f, s))
    u8b = _image(1)
    sigmas = np.stack([s, 6 - s])
    for soft in (None, 1.0):
        got = apps.fuse([u8, u8b], sigmas, soft=soft)
        want = apps.fuse(np.stack([f, u8b.astype(np.float32) / 255]), sigmas, soft=soft)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    assert 0.2 < float(apps.adaptive_enhance(u8, s).mean()) < 0.8  # not the all-white result of 0…255 values


def test_float_images_in_0_255_are_refused_naming_the_argument():
    f255, s = _image().astype(np.float32), _sigma()
    for call in (lambda: apps.adaptive_enhance(f255, s), lambda: apps.sdof(f255, s),
                 lambda: apps.magnify_scale(f255, s)):
        with pytest.raises(ValueError, match="^image: float values up to"):
            call()
    ok = _image(1).astype(np.float32) / 255
    with pytest.raises(ValueError, match=r"^frames\[1\]: float values up to"):
        apps.fuse([ok, f255], np.stack([s, s]))
    with pytest.raises(ValueError, match=r"^frames\[1\] is 40x31 px but frames\[0\] 40x32 px"):
        apps.fuse([ok, ok[1:]], np.stack([s, s]))
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        apps.fuse([ok], s[None])


def test_sigma_maps_are_checked():
    u8, s = _image(), _sigma()
    nan = s.copy()
    nan[3, 3] = np.nan
    for bad, words in ((s[:10], r" must match the image: shape \(32, 40\), got \(10, 40\)"),
                       (s.T, " must match"), (nan, " has non-finite"), (-s, " must be >= 0 px"),
                       (s.astype(complex), ": unsupported dtype")):
        for app in (apps.adaptive_enhance, apps.sdof, apps.magnify_scale):
            with pytest.raises(ValueError, match=f"^sigma{words}"):
                app(u8, bad)
    with pytest.raises(ValueError, match="^sigmas has non-finite"):
        apps.fuse([u8, u8], np.stack([s, nan]))
    with pytest.raises(ValueError, match=r"^sigmas must match the image: shape \(2, 32, 40\), got \(3, 32, 40\)"):
        apps.fuse([u8, u8], np.stack([s, s, s]))
    apps.fuse([u8, u8], np.stack([-s, s]))  # fusion takes any finite maps: only their order matters


def test_parameters_are_checked():
    u8, s = _image(), _sigma()
    for step in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^step must be > 0 px"):
            apps.magnify_scale(u8, s, step=step)
    for k in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^magnification k must be >= 1 and finite"):
            apps.magnify_scale(u8, s, k=k)
    for soft in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="^soft must be None or a temperature"):
            apps.fuse([u8, _image(1)], np.stack([s, 6 - s]), soft=soft)
    for c0, c1 in ((7.0, 1.0), (3.0, 3.0), (1.0, 10.0), (float("nan"), 7.0), (1.0, float("nan"))):
        with pytest.raises(ValueError, match=f"^c0 and c1 must satisfy c0 < c1 < 10 px .* got c0={c0!r}, c1={c1!r}"):
            apps.sdof(u8, s, c0=c0, c1=c1)


def test_a_magnification_whose_blur_dwarfs_the_image_is_refused_at_once():
    """k = 50 on σ 19 px asked for σ ≈ 950 px of added blur: minutes of work on a kernel far larger than the image."""
    from dmenet.galetto.apps import magnify_scale

    image = np.full((48, 64, 3), 0.5, np.float32)
    sigma = np.full((48, 64), 19.0, np.float32)
    with pytest.raises(ValueError, match="choose a smaller k"):
        magnify_scale(image, sigma, k=50)
    assert magnify_scale(image, np.full((48, 64), 1.0, np.float32), k=2).shape == (48, 64, 3)


def test_e3_enhancement_amounts_are_checked_and_zero_is_the_identity():
    """``lam_max`` NaN gave a NaN image, −1 blurred where it should sharpen; ``low_sigma`` −1 or NaN, and
    ``sdof``'s ``sharpen`` NaN, were taken silently (an unchanged image, a NaN one)."""
    u8, s = _image(), _sigma()
    image = u8.astype(np.float64) / 255
    for bad in (float("nan"), -1.0, float("inf"), "x"):
        with pytest.raises(ValueError, match="^lam_max must be"):
            apps.adaptive_enhance(u8, s, lam_max=bad)
        with pytest.raises(ValueError, match="^low_sigma must be"):
            apps.adaptive_enhance(u8, s, low_sigma=bad)
        with pytest.raises(ValueError, match="^sharpen must be"):
            apps.sdof(u8, s, sharpen=bad)
    for gain in (-0.5, float("nan"), np.where(s > 1, -1.0, 1.0)):
        with pytest.raises(ValueError, match="^gain must be finite and >= 0"):
            apps.unsharp(image, gain)
    np.testing.assert_allclose(apps.adaptive_enhance(u8, s, lam_max=0.0), image, atol=1e-7)  # λmax 0: identity
    np.testing.assert_allclose(apps.unsharp(image, 2.0, low_sigma=0.0), image, atol=1e-7)  # no detail to add


def test_e4_soft_fusion_of_float32_maps_takes_any_positive_temperature():
    """A float32 σ stack divided by τ = 1e-300 took τ as float32 0: NaN weights (the CLI: ``--soft 1e-300`` ended in
    "OUT.png has non-finite values"); τ = 1e300 overflowed to inf with a warning."""
    import warnings

    u8, other, s = _image(), _image(1), _sigma().astype(np.float32)
    sigmas = np.stack([s, 6 - s]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warning either
        hard, w_hard = apps.fuse([u8, other], sigmas, soft=1e-300)  # τ → 0: every pixel from its sharper frame
        flat, w_flat = apps.fuse([u8, other], sigmas, soft=1e300)  # τ → ∞: the plain mean of the frames
    sharper = (sigmas[1] < sigmas[0]).astype(np.float64)
    np.testing.assert_array_equal(w_hard[1], sharper)
    np.testing.assert_allclose(w_flat, 0.5, atol=1e-12)
    np.testing.assert_allclose(flat, (u8 / 255 + other / 255) / 2, atol=1e-6)
    assert np.isfinite(hard).all()
