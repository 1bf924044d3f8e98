"""Galetto σ-map pipeline against hand computation: the 3×3 σ = 1 pre-denoise (fspecial('gaussian', 3, 1)), the
default window step of the code (8 px), the expectation readout Σ p_k·k, the sigmoid detection transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmenet.galetto import PATCH, blurmap


def test_pre_denoise_is_the_3x3_gaussian_of_sigma_1():
    image = np.zeros((9, 9, 3), np.float32)
    image[4, 4] = 1.0
    g = blurmap.gray01(image, denoise=1.0).numpy()
    y, x = np.mgrid[-1:2, -1:2]
    k = np.exp(-(x * x + y * y) / 2.0)
    k /= k.sum()
    assert np.allclose(g[3:6, 3:6], (0.2989 + 0.5870 + 0.1140) * k, atol=1e-6)  # MATLAB rgb2gray of white
    assert np.abs(g[2, :]).max() < 1e-7 and np.abs(g[:, 6:]).max() < 1e-7  # 3×3 support only


def test_sigma_map_default_step_is_8_px(monkeypatch):
    seen = {}

    def fake(model, gray, stride, batch=None, grid=None):
        seen["stride"] = stride
        x, size = blurmap.windows(gray, stride, grid)
        probs = torch.zeros(len(x), 20)
        probs[:, 3] = 1.0
        return probs, size

    monkeypatch.setattr(blurmap, "window_probabilities", fake)
    m = blurmap.sigma_map(None, np.zeros((PATCH + 5, PATCH + 9, 3), np.float32))
    assert seen["stride"] == 8
    assert m.shape == (PATCH + 5, PATCH + 9) and np.all(m == 3.0)


def test_expectation_readout_is_sum_of_p_k_times_k():
    probs = torch.zeros(2, 20)
    probs[0, 0], probs[0, 4] = 0.5, 0.5   # 0.5·0 + 0.5·4 = 2
    probs[1, 19] = 1.0
    assert blurmap.readout(probs, "expectation").tolist() == [2.0, 19.0]
    assert blurmap.readout(probs, "argmax").tolist() == [0.0, 19.0]  # ties keep the first class


@pytest.mark.parametrize("sigma,p", [(2.0, 0.5), (3.0, 1 / (1 + np.exp(-2.0))), (1.0, 1 / (1 + np.exp(2.0)))])
def test_detection_transform_is_sigmoid_of_scale_times_sigma_minus_shift(sigma, p):
    from dmenet.galetto.detection import DetectionTransform, blur_map

    t = DetectionTransform(scale=2.0, shift=2.0)
    assert float(blur_map(np.array([[sigma]]), t)[0, 0]) == pytest.approx(p, abs=1e-6)
    assert float(blur_map(np.array([[3.5]]), None)[0, 0]) == pytest.approx(0.5)  # label σ / 7 without a fit


def test_detection_fit_on_the_quarter_px_grid_picks_the_midpoint():
    """Sharp pixels at σ 1.5 px, blurred at 2.0 px, as many of each: every shift separates them (Fmax 1), and the
    MAE sigmoid(−s·|σ − shift|) summed over both classes is least halfway, at 1.75 px — on the 0.25 px grid
    (0.25 … 6.0); at the steepest scale 8."""
    from dmenet.galetto.detection import SHIFTS, fit

    assert SHIFTS[0] == 0.25 and SHIFTS[-1] == 6.0 and len(SHIFTS) == 24
    gt = np.zeros((10, 10), bool)
    gt[:, 5:] = True
    result = fit([np.where(gt, 2.0, 1.5)], [gt])
    assert (result.scale, result.shift) == (8.0, 1.75)
    assert result.mae == pytest.approx(1 / (1 + np.exp(2.0)), abs=1e-6)  # both classes 0.25 px from the shift


@pytest.mark.parametrize("shifts", [(5.0, 6.0), (6.0, 5.0)])
def test_detection_fit_ties_keep_the_first_candidate(shifts):
    """Sharp at σ 0, blurred at σ 20: at scale 8 both shifts 5 and 6 saturate the sigmoid to exactly 0 and 1
    (MAE 0, Fmax 1, an exact tie), and the grid's first of them is kept."""
    from dmenet.training.fit_dbd import fit_logit_transform

    gt = np.zeros((8, 8), bool)
    gt[:, 4:] = True
    result = fit_logit_transform([np.where(gt, 20.0, 0.0)], [gt], (8.0,), shifts)
    assert result.mae == 0.0
    assert result.shift == shifts[0]


def _phi_by_hand(gray: np.ndarray, smooth_sigma: float = 0.5) -> np.ndarray:
    """φ of the 32×32 windows at stride 32: fspecial('gaussian', 3, σ) on symmetric padding, the 4-neighbour
    Laplacian on symmetric padding, MATLAB var (N − 1) per window."""
    y, x = np.mgrid[-1:2, -1:2]
    k = np.exp(-(x * x + y * y) / (2 * smooth_sigma ** 2))
    k /= k.sum()
    p = np.pad(gray, 1, mode="symmetric")
    h, w = gray.shape
    b = sum(k[i, j] * p[i:i + h, j:j + w] for i in range(3) for j in range(3))
    q = np.pad(b, 1, mode="symmetric")
    lap = q[:-2, 1:-1] + q[2:, 1:-1] + q[1:-1, :-2] + q[1:-1, 2:] - 4 * b
    return np.array([[np.var(lap[r:r + 32, c:c + 32], ddof=1) for c in range(0, w - 31, 32)]
                     for r in range(0, h - 31, 32)])


def test_sharpness_phi_is_matlab_variance_of_the_laplacian():
    from dmenet.galetto.patches import sharpness_map

    gray = np.random.default_rng(0).uniform(0, 255, (64, 96))
    phi = sharpness_map(torch.from_numpy(gray)).numpy()
    assert phi.shape == (2, 3)
    assert np.allclose(phi, _phi_by_hand(gray), rtol=1e-5)


def test_sharp_positions_need_phi_above_the_threshold():
    """A constant image has φ = 0 exactly: no window has φ > 0."""
    from dmenet.galetto.patches import sharp_positions

    assert sharp_positions(torch.full((64, 64), 100.0), phi=0.0).shape == (0, 2)
    noisy = torch.from_numpy(np.random.default_rng(1).uniform(0, 255, (64, 64)))
    assert sharp_positions(noisy, phi=0.0).shape == (4, 2)


def test_labelled_patches_round_to_the_nearest_level():
    """A constant 100.6 image stays 100.6 under every σ: all 20 levels of the patch are 101 (not 100)."""
    from dmenet.galetto.patches import labelled_patches

    for blur in ("context", "isolated"):
        out = labelled_patches(torch.full((40, 40), 100.6), np.array([[4, 4]]), blur)
        assert out.shape == (1, 20, PATCH, PATCH) and (out == 101).all()


def test_cosine_lr_hand_values():
    """``lr_min + ½ (lr − lr_min)(1 + cos(π min(step / steps, 1)))``; constant lr without ``lr_min``."""
    from dmenet.galetto.train import TrainSettings, lr_at

    t = TrainSettings(steps=100, lr=1e-3, lr_min=1e-4)
    assert lr_at(t, 0) == pytest.approx(1e-3) and lr_at(t, 50) == pytest.approx(5.5e-4)
    assert lr_at(t, 25) == pytest.approx(1e-4 + 0.5 * 9e-4 * (1 + np.cos(np.pi / 4)))
    assert lr_at(t, 100) == pytest.approx(1e-4) and lr_at(t, 130) == pytest.approx(1e-4)
    assert lr_at(TrainSettings(steps=100, lr=1e-3), 70) == 1e-3
