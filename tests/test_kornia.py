"""The peers' grayscale comes from kornia (docs/method.md §17): equal to MATLAB ``rgb2gray``'s weighted sum to float
rounding, and every peer map built on it equal to float rounding to the NumPy formula it replaced."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from dmenet.peers import _util, laplacian, lbp, zhuo_sim

torch.set_num_threads(1)

ULP = 2.0**-23  # float32 spacing at 1


def numpy_gray(image: np.ndarray) -> np.ndarray:
    """The NumPy transcription of MATLAB ``rgb2gray`` the peers used before kornia."""
    return (image[..., 0] * 0.2989 + image[..., 1] * 0.5870 + image[..., 2] * 0.1140).astype(np.float32)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """scikit-image's astronaut at 96×96, float32 RGB in [0, 1] (8-bit values)."""
    img = cv2.resize(data.astronaut(), (96, 96), interpolation=cv2.INTER_AREA)
    return img.astype(np.float32) / 255.0


def test_primaries_give_matlab_weights():
    eye = np.eye(3, dtype=np.float32).reshape(1, 3, 3)  # one pixel each of pure R, G, B
    gray = _util.to_gray(eye)
    assert gray.shape == (1, 3) and gray.dtype == np.float32
    np.testing.assert_allclose(gray[0], [0.2989, 0.5870, 0.1140], rtol=0, atol=ULP)
    white = _util.to_gray(np.ones((2, 2, 3), np.float32))
    np.testing.assert_allclose(white, 0.9999, rtol=0, atol=2 * ULP)  # the weights sum to 0.9999, not 1


def test_gray_equals_numpy_formula_to_rounding(photo):
    rng = np.random.default_rng(0)
    for image in (rng.random((40, 56, 3), dtype=np.float32), photo):
        k, n = _util.to_gray(image), numpy_gray(image)
        assert np.abs(k - n).max() <= 2 * ULP  # one fused multiply-add apart at most
    # the 8-bit gray HiFST works on is unchanged
    to_u8 = lambda g: (g * 255.0 + 0.5).clip(0, 255).astype(np.uint8)  # noqa: E731
    assert np.array_equal(to_u8(_util.to_gray(photo)), to_u8(numpy_gray(photo)))


@pytest.mark.parametrize("module, fn", [(laplacian, "laplacian_blur_map"), (lbp, "lbp_blur_map"),
                                        (zhuo_sim, "zhuo_sim_blur_map")])
def test_peer_maps_equal_to_float_rounding(photo, monkeypatch, module, fn):
    with_kornia = getattr(module, fn)(photo)
    monkeypatch.setattr(module, "to_gray", numpy_gray)
    with_numpy = getattr(module, fn)(photo)
    assert with_kornia.shape == photo.shape[:2]
    np.testing.assert_allclose(with_kornia, with_numpy, rtol=0, atol=1e-5)
