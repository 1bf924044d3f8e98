"""Evaluation helpers of dmenet.eval.metrics against mathematical properties that pin their constants."""

import numpy as np
import pytest

from dmenet.eval.metrics import imresize_bicubic


def test_imresize_bicubic_upsampling_reproduces_quadratics_as_keys_a_minus_half():
    """MATLAB's bicubic kernel is Keys' a = −0.5, the only member of the family exact on quadratics; a = −0.75
    (OpenCV's) is not. ×2 upsampling maps output row k (1-based) to input coordinate u = k/2 + 1/4."""
    i = np.arange(1, 21, dtype=np.float64)
    x = np.repeat((i * i)[:, None], 3, axis=1)  # rows hold i², constant along a row
    out = imresize_bicubic(x, (40, 3))
    u = np.arange(1, 41) / 2.0 + 0.25
    np.testing.assert_allclose(out[6:-6], np.repeat((u * u)[6:-6, None], 3, axis=1), rtol=1e-12, atol=1e-9)
    # a linear ramp is kept exactly as well, columns too
    y = np.tile(np.arange(1, 13, dtype=np.float64), (5, 1))
    v = np.arange(1, 25) / 2.0 + 0.25
    np.testing.assert_allclose(imresize_bicubic(y, (5, 24))[:, 4:-4], np.tile(v[4:-4], (5, 1)), atol=1e-12)


def test_dbd_resize_map_is_bilinear_unless_both_sides_shrink():
    """docs: area averaging when shrinking both sides, else bilinear; (4, 8) → (8, 4) grows one side."""
    import cv2

    from dmenet.eval.dbd import resize_map

    pred = (np.arange(32, dtype=np.float32).reshape(4, 8) % 7) / 6.0
    linear = np.clip(cv2.resize(pred, (4, 8), interpolation=cv2.INTER_LINEAR), 0, 1)
    area = np.clip(cv2.resize(pred, (4, 8), interpolation=cv2.INTER_AREA), 0, 1)
    assert not np.allclose(linear, area)
    assert np.array_equal(resize_map(pred, (8, 4)), linear)
    assert np.array_equal(resize_map(pred, (2, 4)), np.clip(cv2.resize(pred, (4, 2), interpolation=cv2.INTER_AREA),
                                                            0, 1))


def test_dbd_resized_gt_half_blurred_pixel_counts_as_blurred():
    """A GT shrunk by area averaging is binarised with >= 0.5: a 2×2 block half blurred is blurred."""
    from dmenet.eval.dbd import resize_mask

    assert resize_mask(np.array([[1, 0], [1, 0]], np.float32), (1, 1)).tolist() == [[True]]
    assert resize_mask(np.array([[1, 0], [0, 0]], np.float32), (1, 1)).tolist() == [[False]]


@pytest.mark.parametrize("pred", [np.array([[1.0, 1.0], [1.0, 51 / 255]]),     # 8-bit levels: histogram path
                                  np.array([[1.0, 1.0], [1.0, 0.2001]])])      # per-pixel path
def test_dbd_adaptive_threshold_is_clamped_to_one_and_headline_is_1_5(pred):
    """mean 0.8: 1.5·mean = 1.2 > 1, so the threshold is 1 and the three pixels at 1.0 are blurred (F = 1 against a
    GT blurred exactly there); 2·mean likewise. gt_blur_fraction is the GT's blurred share, 3/4."""
    from dmenet.eval.dbd import DBDAccumulator

    acc = DBDAccumulator()
    assert acc.adaptive_factors[0] == 1.5  # the headline factor (Achanta's 1.5 × mean)
    gt = np.array([[1, 1], [1, 0]], np.float32)
    row = acc.add("a", pred.astype(np.float32), gt)
    assert row["adaptive_f_1.5"] == pytest.approx(1.0)
    assert row["adaptive_f_2"] == pytest.approx(1.0)
    assert row["gt_blur_fraction"] == 0.75
