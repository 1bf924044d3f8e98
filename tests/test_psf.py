"""Blur kernels: fspecial-compatible Gaussian (cropped), disc and polygon apertures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from syndof.psf import (KERNELS, Kernel, disc_kernel, gaussian_kernel, gaussian_kernel_1d, make_kernel,
                        polygon_kernel)


def test_gaussian_matches_hand_fspecial():
    # fspecial('gaussian', [3 3], 1): centre 1/(1 + 4e^-1/2 + 4e^-1), edge e^-1/2 · centre, corner e^-1 · centre
    k = gaussian_kernel(1.0, 3)
    centre = 1.0 / (1.0 + 4.0 * math.exp(-0.5) + 4.0 * math.exp(-1.0))
    assert k.shape == (3, 3)
    assert k[1, 1] == pytest.approx(centre, rel=1e-12)
    assert k[0, 1] == pytest.approx(centre * math.exp(-0.5), rel=1e-12)
    assert k[0, 0] == pytest.approx(centre * math.exp(-1.0), rel=1e-12)
    assert centre == pytest.approx(0.2041800, rel=1e-6)


@pytest.mark.parametrize("sigma,size", [(7.0, 29), (0.5, 29), (0.025, 29), (2.3, 29), (1.0, 15)])
def test_gaussian_sums_to_one_and_is_cropped(sigma, size):
    k = gaussian_kernel(sigma, size)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and k.shape[0] <= size
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])
    assert k[k.shape[0] // 2].min() > 0  # cropped to the non-zero support
    g = gaussian_kernel_1d(sigma, size)
    assert np.abs(np.outer(g, g) - k).max() < 1e-15


def test_gaussian_crop_sizes_follow_eps_threshold():
    assert gaussian_kernel(7.0, 29).shape == (29, 29)  # σ_max: whole 29×29 grid (±2σ)
    assert gaussian_kernel(0.5, 29).shape == (9, 9)  # exp(−x²/2σ²) < eps beyond |x| = 4
    assert gaussian_kernel(0.025, 29).shape == (1, 1)  # CoC 1.1: a delta
    assert make_kernel(1.0).shape == (1, 1)


@pytest.mark.parametrize("coc", [2.0, 5.0, 9.5, 29.0])
def test_disc_and_polygon_kernels(coc):
    d = disc_kernel(coc)
    assert d.sum() == pytest.approx(1.0) and d.shape[0] % 2 == 1
    assert np.allclose(d, d.T) and np.allclose(d, d[::-1])
    assert d.shape[0] <= math.ceil(coc) + 2
    p = polygon_kernel(coc, blades=6, rotation=0.3)
    assert p.sum() == pytest.approx(1.0) and p.shape == d.shape
    assert (p > 0).sum() <= (d > 0).sum()  # a polygon inscribed in the disc
    assert np.all(p >= 0) and np.all(d >= 0)


def test_disc_area_matches_coc():
    d = disc_kernel(21.0)
    # coverage (relative to the centre weight) integrates to the disc area π r²
    assert (d / d.max()).sum() == pytest.approx(math.pi * 10.5**2, rel=0.01)


def test_polygon_needs_three_blades():
    with pytest.raises(ValueError, match=">= 3 blades, got 2"):
        polygon_kernel(9.0, blades=2)
    with pytest.raises(ValueError, match=r"kernel must be one of \('gaussian', 'disc', 'polygon'\), got 'star'"):
        make_kernel(5.0, kernel="star")


def test_make_kernel_handles_every_member_and_its_string():
    assert KERNELS == ("gaussian", "disc", "polygon")
    direct = {Kernel.GAUSSIAN: gaussian_kernel(2.0, 29), Kernel.DISC: disc_kernel(9.0),
              Kernel.POLYGON: polygon_kernel(9.0)}
    assert set(direct) == set(Kernel)
    for kernel, want in direct.items():
        for spelled in (kernel, kernel.value):
            k = make_kernel(9.0, 29, spelled)
            assert np.array_equal(k, want) and k.sum() == pytest.approx(1.0)
        assert make_kernel(1.0, 29, kernel).shape == (1, 1)


@pytest.mark.parametrize("bad", ["star", "Gaussian", "", None])
def test_unknown_kernel_is_named_with_the_choices(bad):
    with pytest.raises(ValueError, match=r"kernel must be one of \('gaussian', 'disc', 'polygon'\), got"):
        make_kernel(5.0, kernel=bad)
    with pytest.raises(ValueError, match="kernel must be one of"):
        make_kernel(0.5, kernel=bad)  # checked even where the layer is in focus
