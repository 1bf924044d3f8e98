"""Evaluation helpers of dmenet.eval.metrics against mathematical properties that pin their constants."""

import numpy as np

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
