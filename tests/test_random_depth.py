"""syndof.random_depth: edge-aligned random depth for plain photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from syndof.random_depth import random_depth, superpixel_regions


def synthetic_photo(seed: int = 0, h: int = 96, w: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A smoothly shaded background with flat-coloured shapes: (image, shape label map)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.3 * yy, 0.5 + 0.2 * xx, 0.6 - 0.2 * yy], axis=-1)
    labels = np.zeros((h, w), np.int32)
    colours = [(0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.1, 0.1, 0.9), (0.95, 0.9, 0.1), (0.05, 0.05, 0.05)]
    for k, col in enumerate(colours, start=1):
        m = np.zeros((h, w), np.uint8)
        cx, cy = int(rng.integers(15, w - 15)), int(rng.integers(15, h - 15))
        if k % 2:
            cv2.circle(m, (cx, cy), int(rng.integers(8, 20)), 1, -1)
        else:
            cv2.rectangle(m, (cx - 12, cy - 9), (cx + int(rng.integers(5, 15)), cy + int(rng.integers(5, 15))), 1, -1)
        img[m > 0] = col
        labels[m > 0] = k
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    return img, labels


def _boundary(labels: np.ndarray, width: int) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    return ndimage.binary_dilation(edge, iterations=width) if width > 0 else edge


def _jumps(depth: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels on either side of a jump in normalised inverse depth larger than ``threshold``."""
    inv = 1.0 / depth
    inv = (inv - inv.min()) / (inv.max() - inv.min())
    jump = np.zeros(depth.shape, bool)
    dx = np.abs(np.diff(inv, axis=1)) > threshold
    dy = np.abs(np.diff(inv, axis=0)) > threshold
    jump[:, 1:] |= dx
    jump[:, :-1] |= dx
    jump[1:] |= dy
    jump[:-1] |= dy
    return jump


def test_output_type_range_and_determinism():
    img, _ = synthetic_photo()
    d = random_depth(img, np.random.default_rng(3))
    assert d.dtype == np.float64 and d.shape == img.shape[:2]
    assert np.isfinite(d).all()
    assert 500.0 <= d.min() < d.max() <= 30000.0
    np.testing.assert_array_equal(d, random_depth(img, np.random.default_rng(3)))
    assert not np.array_equal(d, random_depth(img, np.random.default_rng(4)))
    # explicit range is honoured exactly
    d2 = random_depth(img, np.random.default_rng(3), near_mm=1000.0, far_mm=5000.0)
    assert d2.min() == pytest.approx(1000.0) and d2.max() == pytest.approx(5000.0)


@pytest.mark.parametrize("seed", range(6))
def test_depth_discontinuities_follow_image_edges(seed):
    img, labels = synthetic_photo(seed)
    depth = random_depth(img, np.random.default_rng(seed))
    jumps = _jumps(depth, threshold=0.05)
    near_edge = _boundary(labels, width=2)
    # There are real discontinuities, and (almost) all of them sit on the shapes' outlines.
    assert jumps.sum() > 0
    assert (jumps & near_edge).sum() / jumps.sum() >= 0.97
    # Away from the outlines the depth is smooth (a superpixel may leak a few pixels across an outline).
    interior = ~_boundary(labels, width=3)
    assert (jumps & interior).sum() <= max(8, 0.01 * jumps.sum())


def test_regions_do_not_split_flat_areas():
    img, labels = synthetic_photo(1)
    regions = superpixel_regions(img, np.random.default_rng(0))
    region_edges = _boundary(regions, width=0)
    shape_edges = _boundary(labels, width=2)
    assert (region_edges & ~shape_edges).sum() <= 0.02 * region_edges.sum() + 5


def test_depth_varies_within_regions_and_ground_prior():
    img, _ = synthetic_photo(2)
    bottom_nearer = 0
    for seed in range(8):
        d = random_depth(img, np.random.default_rng(seed))
        # smooth within-segment variation: many distinct values, not a few flat planes
        assert np.unique(d).size > 0.5 * d.size
        bottom_nearer += d[-10:].mean() < d[:10].mean()
    assert bottom_nearer >= 6  # ground-plane prior: the bottom of the frame is usually nearer


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_camera_finds_200_to_350_layers(name):
    from skimage import data

    from syndof.camera import sample_camera

    photo = cv2.resize(getattr(data, name)(), (128, 96), interpolation=cv2.INTER_AREA) / 255.0
    ok = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        depth = random_depth(photo, rng)
        cam, layered = sample_camera(depth, depth.shape[1], rng)
        ok += 200 <= layered.n_layers <= 350
    assert ok >= 4


def test_accepts_gray_uint8_and_rgba():
    img, _ = synthetic_photo(0, 40, 50)
    u8 = (img * 255).astype(np.uint8)
    d_gray = random_depth(u8[..., 0], np.random.default_rng(0))
    assert d_gray.shape == (40, 50)
    rgba = np.concatenate([u8, np.full((40, 50, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(random_depth(rgba, np.random.default_rng(0)),
                                  random_depth(u8, np.random.default_rng(0)))
