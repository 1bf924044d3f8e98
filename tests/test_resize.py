"""syndof.resize: the long-side arithmetic every ``max_side`` uses, and the round trip of a map."""

from __future__ import annotations

import numpy as np
import pytest

from syndof import resize


def test_long_side_scale_and_size():
    assert resize.long_side_scale((480, 640, 3), None) == 1.0
    assert resize.long_side_scale((480, 640), 640) == 1.0  # already fits: never enlarged
    assert resize.long_side_scale((4000, 6000, 3), 1500) == 0.25
    assert resize.scaled_size((4000, 6000), 0.25) == (1500, 1000)  # OpenCV order (width, height)
    assert resize.scaled_size((3, 6000), 0.25) == (1500, 1)  # a side that would round to 0 keeps the minimum
    assert resize.scaled_size((3, 6000), 0.25, minimum=2) == (1500, 2)
    with pytest.raises(ValueError, match="max_side"):
        resize.long_side_scale((10, 20), 0)


def test_shrink_long_side_area_average_and_back():
    image = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
    same, scale = resize.shrink_long_side(image, 60)
    assert same is image and scale == 1.0
    small, scale = resize.shrink_long_side(image, 30)
    assert small.shape == (20, 30, 3) and scale == 0.5
    # halving by area averaging is the mean of each 2×2 block
    blocks = image.reshape(20, 2, 30, 2, 3).mean(axis=(1, 3))
    assert np.abs(small - blocks).max() < 1e-6
    ramp = np.tile(np.linspace(0, 1, 30, dtype=np.float32), (20, 1))
    back = resize.resize_back(ramp, image.shape)
    assert back.shape == (40, 60) and abs(float(back.mean()) - float(ramp.mean())) < 1e-3
