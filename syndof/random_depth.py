"""Random, edge-aligned depth for plain photos, so any folder of sharp images becomes SYNDOF training data.

The photo is over-segmented into superpixels (SLIC), whose boundaries follow image edges. Superpixels are grouped
into a few regions by k-means on their mean colour and position, and every connected region gets its own smooth
depth field: a random plane plus low-frequency variation, with a ground-plane prior (regions reaching lower in the
frame are nearer, and depth falls towards the bottom of the frame). Depth therefore jumps **only** at region
boundaries, i.e. at superpixel boundaries, i.e. at image edges, and varies smoothly everywhere else.

Depth is built in normalised *nearness* ``t ∈ [0, 1]`` and mapped linearly in inverse depth between a random far and
near distance. The thin-lens CoC is linear in inverse depth (docs/method.md §8:
``|z − z_f|/z = z_f·|1/z_f − 1/z|``), so a smooth ``t`` gives a smooth, gap-free CoC distribution and the camera
model finds a few hundred CoC layers.

This is a plausible-looking prior, not a depth estimate: a trained network sees correct blur-vs-σ pairs, but the
scene layout is made up (document that when training on it).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.cluster.vq import kmeans2
from skimage.color import rgb2lab
from skimage.segmentation import slic

from syndof import units
from syndof.images import as_rgb_float

NEAR_RANGE_MM = (500.0, 3000.0)
"""The nearest depth of a scene is drawn log-uniformly from this range (mm)."""

FAR_LIMIT_MM = 30000.0
"""Farthest depth of any scene (mm)."""

STRICT_DELTA_E = 2.0
"""Superpixels whose shared boundary has a mean colour step below this CIELAB ΔE are always merged (no edge)."""


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Zero-mean, unit-std low-frequency noise with correlation length ~``scale_px`` (made at low resolution)."""
    h, w = shape
    step = max(1, int(scale_px // 4))
    small = (max(2, -(-h // step) + 1), max(2, -(-w // step) + 1))
    field = ndimage.gaussian_filter(rng.standard_normal(small), sigma=max(scale_px / step, 1.0), mode="reflect")
    field = ndimage.zoom(field, (h / small[0], w / small[1]), order=1, mode="nearest", grid_mode=True)[:h, :w]
    if field.shape != (h, w):  # zoom rounding: pad by edge values
        field = np.pad(field, ((0, h - field.shape[0]), (0, w - field.shape[1])), mode="edge")
    std = field.std()
    return (field - field.mean()) / std if std > 0 else field * 0.0


def superpixel_regions(image: np.ndarray, rng: np.random.Generator, n_superpixels: int | None = None,
                       n_regions: int | None = None, merge_delta_e: float | None = None) -> np.ndarray:
    """Group SLIC superpixels into a few connected regions whose boundaries lie on image edges.

    1. SLIC superpixels (their boundaries follow image edges, or run through flat areas);
    2. adjacent superpixels whose shared boundary is no edge (mean CIELAB ΔE across it below ``merge_delta_e``)
       are merged transitively, so a flat or smoothly shaded area becomes one segment no region boundary crosses;
    3. segments are grouped by k-means on mean colour and position into a few groups, and every group is split into
       its connected pieces.

    Returns:
        (H, W) int64 region labels 0 … R−1.
    """
    img = as_rgb_float(image, dtype=np.float64)
    h, w = img.shape[:2]
    if n_superpixels is None:
        n_superpixels = int(np.clip(h * w // 200, 32, 1200))
    sp = slic(img, n_segments=n_superpixels, compactness=10.0, start_label=0, channel_axis=-1)
    sp = np.unique(sp, return_inverse=True)[1].reshape(h, w)
    n_sp = int(sp.max()) + 1
    lab = rgb2lab(img).reshape(-1, 3)

    def means(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean CIELAB colour (n, 3) and pixel count (n,) of each of the ``n`` labels of ``labels`` (float64)."""
        cnt = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
        m = np.stack([np.bincount(labels.ravel(), weights=lab[:, ch], minlength=n) for ch in range(3)], 1)
        return m / np.maximum(cnt, 1)[:, None], cnt

    # Merge adjacent superpixels whose shared boundary is not an edge: the mean colour step (CIELAB ΔE, lightly
    # smoothed image) between the pixel pairs straddling the boundary is small. A smooth gradient is one segment
    # however much its colour drifts; union-find over the adjacency pairs makes the merging transitive.
    lab_s = ndimage.gaussian_filter(lab.reshape(h, w, 3), sigma=(1.5, 1.5, 0.0))
    keys_all, steps = [], []
    for a, b, la, lb in ((sp[:, :-1], sp[:, 1:], lab_s[:, :-1], lab_s[:, 1:]),
                         (sp[:-1], sp[1:], lab_s[:-1], lab_s[1:])):
        diff = a != b
        lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
        keys_all.append(lo.astype(np.int64) * n_sp + hi)
        steps.append(np.linalg.norm(la[diff] - lb[diff], axis=-1))
    keys_all, steps = np.concatenate(keys_all), np.concatenate(steps)
    keys, inverse = np.unique(keys_all, return_inverse=True)
    delta = np.bincount(inverse, weights=steps) / np.bincount(inverse)
    pairs = np.stack([keys // n_sp, keys % n_sp], axis=1)
    # Kruskal order (weakest boundary first). Boundaries below STRICT_DELTA_E (no visible edge at all) always merge;
    # weak ones below ``merge_delta_e`` join two large segments only while the result stays below a quarter of the
    # frame, so a textured photo is not swallowed by one segment through a chain of soft edges (small pieces, e.g.
    # superpixels straddling an edge, may always join).
    threshold = rng.uniform(3.0, 6.0) if merge_delta_e is None else merge_delta_e
    parent = np.arange(n_sp)
    size = np.bincount(sp.ravel(), minlength=n_sp).astype(np.int64)
    max_size, min_piece = 0.25 * h * w, 0.02 * h * w

    def find(i: int) -> int:
        """Union-find root of superpixel ``i`` (with path halving)."""
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(delta, kind="stable")
    for idx in order[delta[order] < max(threshold, STRICT_DELTA_E)]:
        ra, rb = find(pairs[idx, 0]), find(pairs[idx, 1])
        if ra == rb:
            continue
        if delta[idx] >= STRICT_DELTA_E and size[ra] + size[rb] > max_size and min(size[ra], size[rb]) > min_piece:
            continue
        lo, hi = min(ra, rb), max(ra, rb)
        parent[hi] = lo
        size[lo] += size[hi]
    roots = np.array([find(i) for i in range(n_sp)])
    seg = np.unique(roots, return_inverse=True)[1].reshape(-1)[sp]
    n_seg = int(seg.max()) + 1

    seg_lab, counts = means(seg, n_seg)
    yy, xx = np.mgrid[0:h, 0:w]
    # Position keeps groups compact-ish; its weight is random so some scenes get long, colour-driven regions.
    pos_w = rng.uniform(0.2, 0.8)
    cy = np.bincount(seg.ravel(), weights=yy.ravel(), minlength=n_seg) / counts / max(h, w) * pos_w
    cx = np.bincount(seg.ravel(), weights=xx.ravel(), minlength=n_seg) / counts / max(h, w) * pos_w
    feats = np.concatenate([seg_lab / 100.0, cy[:, None], cx[:, None]], axis=1)
    if n_regions is None:
        n_regions = int(rng.integers(3, 8))
    n_regions = max(1, min(n_regions, n_seg))
    if n_regions == n_seg:
        groups = np.arange(n_seg)
    elif n_regions == 1:
        groups = np.zeros(n_seg, dtype=np.int64)
    else:
        _, groups = kmeans2(feats, n_regions, minit="++", seed=rng)
    sp = seg
    group_map = groups[sp]
    # Split every group into its 4-connected pieces: separate blobs of one colour get separate depths.
    regions = np.zeros((h, w), dtype=np.int64)
    next_label = 0
    for g in np.unique(group_map):
        comp, n = ndimage.label(group_map == g)
        mask = comp > 0
        regions[mask] = comp[mask] - 1 + next_label
        next_label += n
    return regions


def random_depth(image: np.ndarray, rng: np.random.Generator, *, near_mm: float | None = None,
                 far_mm: float | None = None, n_superpixels: int | None = None,
                 n_regions: int | None = None) -> np.ndarray:
    """Random layered depth for a photo, with discontinuities only at image edges.

    Args:
        image: (H, W, 3) RGB float in [0, 1] (uint8/uint16, grayscale and RGBA are accepted too).
        rng: the generator every random choice is drawn from (same seed → same depth).
        near_mm, far_mm: depth range; drawn at random when None (near 0.5–3 m, far up to 30 m, ≥ 3× near).
        n_superpixels, n_regions: segmentation granularity; automatic / random when None.

    Returns:
        (H, W) float64 depth in mm, finite and positive, spanning exactly [near_mm, far_mm].
    """
    img = as_rgb_float(image, dtype=np.float64)
    h, w = img.shape[:2]
    if near_mm is None:
        near_mm = float(np.exp(rng.uniform(np.log(NEAR_RANGE_MM[0]), np.log(NEAR_RANGE_MM[1]))))
    if far_mm is None:
        lo = min(3.0 * near_mm, FAR_LIMIT_MM)
        far_mm = float(np.exp(rng.uniform(np.log(lo), np.log(FAR_LIMIT_MM)))) if lo < FAR_LIMIT_MM else lo
    if not 0 < near_mm < far_mm:
        raise ValueError(f"need 0 < near_mm < far_mm, got {near_mm}, {far_mm}")

    regions = superpixel_regions(img, rng, n_superpixels, n_regions)
    n_reg = int(regions.max()) + 1
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yn, xn = yy / max(h - 1, 1), xx / max(w - 1, 1)
    counts = np.bincount(regions.ravel(), minlength=n_reg).astype(np.float64)
    cy = np.bincount(regions.ravel(), weights=yn.ravel(), minlength=n_reg) / counts
    cx = np.bincount(regions.ravel(), weights=xn.ravel(), minlength=n_reg) / counts
    bottom = ndimage.maximum(yn, labels=regions, index=np.arange(n_reg))
    bottom = np.asarray(bottom, dtype=np.float64)

    # Ground-plane prior. A ground plane seen by a level camera has inverse depth linear in (row − horizon):
    # nearness t_g(y) grows from the horizon to the bottom of the frame (and slowly above it, for variety).
    # The knee at the horizon is smoothed (softplus) so it leaves no visible crease in the σ map.
    horizon = rng.uniform(0.15, 0.6)
    strength = rng.uniform(0.4, 0.9)
    knee = 0.08

    def ground(y: np.ndarray) -> np.ndarray:
        """Ground-plane nearness (relative inverse depth, unitless) of normalised rows ``y`` in [0, 1] (0 = top): a
        softplus knee at the horizon, rising towards the bottom."""
        u = (np.asarray(y, dtype=np.float64) - horizon) / (1.0 - horizon)
        return strength * knee * np.logaddexp(0.0, u / knee) + (1.0 - strength) * 0.5 * y

    # Where a region stands: the 90th percentile of its rows (robust to a few stray low pixels).
    order = np.argsort(regions.ravel(), kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts.astype(np.int64))])
    yflat = yn.ravel()[order]
    foot = np.array([np.percentile(yflat[starts[k]:starts[k + 1]], 90) for k in range(n_reg)])
    top = np.array([yflat[starts[k]:starts[k + 1]].min() for k in range(n_reg)])
    # Background-like regions (reaching the bottom and spanning much of the height) follow the ground gradient
    # row by row; other regions are upright objects at roughly the ground's depth at their foot (plus jitter).
    background = (bottom >= 1.0 - 1e-9) & (bottom - top >= 0.5)
    upright = np.where(background, rng.uniform(0.0, 0.2, n_reg), rng.uniform(0.6, 1.0, n_reg))
    jitter = rng.normal(0.0, 0.1, n_reg)
    jitter = np.where(ground(foot) + jitter < 0, np.abs(jitter), jitter)  # regions above the horizon: not beyond it
    level = ground(foot) + jitter
    tilt_x = rng.uniform(-0.15, 0.15, n_reg)
    tilt_y = rng.uniform(0.0, 0.15, n_reg)
    u = upright[regions]
    t = (1.0 - u) * ground(yn) + u * level[regions]
    t += tilt_x[regions] * (xn - cx[regions]) + tilt_y[regions] * (yn - cy[regions])
    # Smooth within-region variation at two scales: continuous across the frame, so it never adds jumps.
    t += rng.uniform(0.02, 0.06) * _smooth_noise(rng, (h, w), max(h, w) / 6.0)
    t += rng.uniform(0.005, 0.02) * _smooth_noise(rng, (h, w), max(h, w) / 24.0)
    t_min, t_max = t.min(), t.max()
    t = (t - t_min) / (t_max - t_min) if t_max > t_min else np.zeros_like(t)
    return np.clip(units.inverse_depth_to_mm(t, near_mm, far_mm), near_mm, far_mm)
