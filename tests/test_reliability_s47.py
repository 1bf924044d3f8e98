"""reliability.md §47: the "Left" items of §46 — the split modules' public helpers given bad input. Each test failed
before: a negative tile overlap read as 0, a negative pad failing inside numpy, a NaN σ map read as within σ_max,
a fractional seed truncated, a NaN size giving a NaN scale."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmenet import tiling
from syndof import convolve, resize, sample


@pytest.mark.parametrize("overlap", [-8, -16, -1])
def test_tile_geometry_refuses_a_negative_overlap(overlap):
    """Was (64, 0): the sign error blended nothing, unsaid (``predict --tile-overlap -8`` is refused in its CLI)."""
    with pytest.raises(ValueError, match=rf"tile_overlap must be >= 0 px, got {overlap}"):
        tiling.tile_geometry(64, overlap)
    assert tiling.tile_geometry(64, 0) == (64, 0)
    assert tiling.tile_geometry(64, 1) == (64, 16)


@pytest.mark.parametrize("pad", [-1, 1.5, True, "2"])
def test_symmetric_pad_refuses_a_pad_that_is_no_whole_number_of_px(pad):
    x = torch.zeros(1, 4, 5)
    with pytest.raises(ValueError, match="pad must be a whole number of px >= 0"):
        convolve.symmetric_pad(x, pad)


def test_symmetric_pad_of_valid_pads_is_as_before():
    x = torch.arange(12.0).reshape(1, 3, 4)
    assert convolve.symmetric_pad(x, 0) is x
    for pad in (1, np.int64(2), 5):  # a pad beyond the size repeats the reflection, as np.pad 'symmetric'
        want = np.pad(x.numpy(), ((0, 0), (int(pad),) * 2, (int(pad),) * 2), mode="symmetric")
        np.testing.assert_array_equal(convolve.symmetric_pad(x, pad).numpy(), want)


@pytest.mark.parametrize("sigma", [np.array([[0.0, np.nan]]), np.array([[np.nan, 9.0]]), np.full((2, 2), np.nan)])
def test_sigma_over_limit_refuses_a_nan_sigma(sigma):
    """Was False (within the limit) for every NaN map, whatever else it held: a NaN > σ_max is False."""
    with pytest.raises(ValueError, match="sigma holds NaN"):
        sample.sigma_over_limit(sigma, 29)
    assert not sample.sigma_over_limit(np.array([[0.0, 7.0]]), 29)
    assert sample.sigma_over_limit(np.array([[0.0, 7.001]]), 29)


@pytest.mark.parametrize(("seed", "index", "name"), [(1.5, 0, "seed"), (0, 2.5, "index"), (True, 0, "seed"),
                                                     ("3", 0, "seed"), (-1, 0, "seed"), (0, -1, "index")])
def test_sample_rng_refuses_a_seed_or_index_that_is_no_whole_number(seed, index, name):
    """``sample_rng(1.5, 0)`` was ``sample_rng(1, 0)``: another seed's samples, unsaid."""
    with pytest.raises(ValueError, match=rf"{name} must be a whole number >= 0"):
        sample.sample_rng(seed, index)


def test_sample_rng_of_valid_seeds_is_as_before():
    want = np.random.default_rng(np.random.SeedSequence(7, spawn_key=(3,))).random(4)
    for seed, index in ((7, 3), (np.int64(7), np.int32(3))):
        np.testing.assert_array_equal(sample.sample_rng(seed, index).random(4), want)


@pytest.mark.parametrize(("shape", "size"), [((math.nan, 10), (5, 5)), ((10, 10), (math.nan, 5)),
                                             ((10, math.nan), (5, 5)), ((10, 10), (5, math.nan))])
def test_applied_scale_refuses_a_nan_side(shape, size):
    """Was NaN (``min(…) <= 0`` is False for NaN): σ rescaled by it is NaN everywhere."""
    with pytest.raises(ValueError, match="sizes must be > 0 px"):
        resize.applied_scale(shape, size)
    assert resize.applied_scale((480, 640, 3), (320, 240)) == 0.5
