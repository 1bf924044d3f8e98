"""Classical peers against hand computation: LBP threshold T_LBP = 0.016, sharp codes {6, 7, 8, 9} and the three
window sizes 11, 15, 21 (Yi & Eramian 2016), Zhuo & Sim's σ normalisation and data weight λ = 0.005, the
Laplacian's local std, HiFST's 8-bit input."""

from __future__ import annotations

import numpy as np
import pytest

from dmenet.peers import lbp, zhuo_sim


@pytest.mark.parametrize("diff,code", [(0.02, 8), (0.014, 0)])
def test_lbp_threshold_0_016(diff, code):
    """Centre 0, every other pixel ``diff``: axial neighbours differ by ``diff``, the interpolated diagonals by
    diff·(1 − 0.2929²) (the centre's bilinear weight); bits set where the difference exceeds 0.016."""
    gray = np.full((5, 5), diff)
    gray[2, 2] = 0.0
    assert lbp.lbp_riu2(gray)[2, 2] == code


def _codes_image(monkeypatch, codes):
    monkeypatch.setattr(lbp, "lbp_riu2", lambda gray, threshold=lbp.T_LBP: codes)
    return np.random.default_rng(0).random((*codes.shape, 3)).astype(np.float32)


@pytest.mark.parametrize("code,blur", [(5, 1.0), (6, 0.0), (9, 0.0)])
def test_lbp_sharp_codes_are_6_to_9(monkeypatch, code, blur):
    image = _codes_image(monkeypatch, np.full((30, 30), code, np.int64))
    assert np.allclose(lbp.lbp_blur_map(image, guided_radius=0), blur)


def test_lbp_scales_11_15_21_averaged(monkeypatch):
    """One sharp-coded pixel in the middle of a 61×61 image: at it the mean of the three box means is
    (1/121 + 1/225 + 1/441) / 3; at 9 px away only the 21 window reaches it."""
    codes = np.zeros((61, 61), np.int64)
    codes[30, 30] = 7
    image = _codes_image(monkeypatch, codes)
    m = lbp.lbp_blur_map(image, guided_radius=0)
    assert m[30, 30] == pytest.approx(1 - (1 / 121 + 1 / 225 + 1 / 441) / 3, abs=1e-6)
    assert m[30, 39] == pytest.approx(1 - (1 / 441) / 3, abs=1e-6)
    assert m[30, 41] == pytest.approx(1.0, abs=1e-6)


def test_zhuo_sim_blur_map_divides_by_its_max_blur(monkeypatch):
    monkeypatch.setattr(zhuo_sim, "zhuo_sim_sigma", lambda image, max_blur=3.0: np.full(image.shape[:2], 1.5))
    image = np.zeros((8, 8, 3), np.float32)
    assert np.allclose(zhuo_sim.zhuo_sim_blur_map(image), 0.5)  # 1.5 / 3
    assert np.allclose(zhuo_sim.zhuo_sim_blur_map(image, max_blur=6.0), 0.25)


def test_zhuo_sim_propagates_with_lambda_0_005(monkeypatch):
    """The documented data weight on edge pixels (λ = 0.005) is what the solver gets."""
    seen = {}

    def fake(guide, values, known, lam):
        seen["lam"] = lam
        return np.zeros(known.shape)

    monkeypatch.setattr(zhuo_sim, "propagate", fake)
    image = np.zeros((40, 40, 3), np.float32)
    image[:, 20:] = 1.0
    zhuo_sim.zhuo_sim_sigma(image)
    assert seen["lam"] == 0.005


def test_laplacian_sharpness_is_the_local_std_of_the_laplacian():
    """On x²/2000 the 5-point Laplacian is the constant 2/2000 away from the border: its local std is 0."""
    from dmenet.peers.laplacian import laplacian_sharpness

    x = np.arange(40, dtype=np.float64)
    image = np.repeat(np.tile(x * x / 2000.0, (40, 1))[..., None], 3, axis=2).astype(np.float32)
    s = laplacian_sharpness(image, window=5)
    assert np.abs(s[10:30, 10:30]).max() < 1e-5  # not |mean| = 1e-3


def test_hifst_gets_the_gray_image_rounded_to_8_bits(monkeypatch):
    import blur_detector

    seen = {}

    def fake(gray, **kwargs):
        seen["gray"] = gray.copy()
        return np.ones(gray.shape)

    monkeypatch.setattr(blur_detector, "detectBlur", fake)
    from dmenet.peers.hifst import hifst_sharpness

    hifst_sharpness(np.full((6, 8, 3), 0.999, np.float32))  # 254.745 → 255
    assert seen["gray"].dtype == np.uint8 and (seen["gray"] == 255).all()
