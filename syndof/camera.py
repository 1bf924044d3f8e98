"""SYNDOF camera model: the original ``get_cocs`` (SYNDOF ``blur_by_depth.m``, docs/method.md §8), seeded.

Per attempt (:func:`sample_camera`):

1. focal length ``f ∈ {50, 70, 85}`` mm, weights 0.1/0.4/0.4 normalised (MATLAB ``datasample``);
2. **5f shift**: if ``min(z) < 5f``: ``z ← z − min(z) + 5f``;
3. unique depths far→near ``z_1 > … > z_n``; the focus ``z_f`` is drawn from them with the near-biased
   half-Gaussian weights (10,000 draws of N(n, (n/2)²), histogram in 2n equal bins over the draws' range, first n
   bins, normalised);
4. ``px_per_mm = W/36``, magnification ``m = z_view/z_f`` with ``z_view = f·z_f/(z_f − f + ε)``;
5. CoC ``c(z) = (px_per_mm·m)·(A·|z − z_f|/(z + ε))``, ``A = f/N``, ε = 1e-4, rounded to 0.1 px half away from
   zero (MATLAB ``int64(c·10)/10``);
6. ``N`` solved so that the extreme depth (``z_min`` or ``z_max``, whichever has the larger CoC at N = 1) reaches
   ``max_coc``;
7. consecutive depths with equal rounded CoC merge into one layer (relabelled to the run's first, farthest depth);
8. accepted when the layer count is in [200, 350], else resampled; after ``max_retries`` retries the last attempt
   is used.

Floating-point operations follow the original's order so that CoCs (and their 0.1 roundings) are bit-identical.

Replay (:func:`layers_from_sigma`) reconstructs the original's layers from a σ map and the depth map — see its
docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from syndof import units

EPSILON = 1e-4
"""ε the original adds to depths (and to ``z_f − f``) in the CoC formula."""

FOCAL_LENGTHS_MM = (50.0, 70.0, 85.0)
FOCAL_WEIGHTS = (0.1, 0.4, 0.4)
SENSOR_WIDTH_MM = 36.0
SHIFT_FACTOR = 5.0
FOCUS_DRAWS = 10_000


@dataclass(frozen=True)
class CameraParams:
    """One sampled camera. ``focus_percentile`` = ``1 − i_f/K`` (i_f: 1-based index of the first layer with CoC 0)."""

    focal_mm: float
    f_number: float
    focus_mm: float
    focus_percentile: float
    max_coc: float
    sensor_width_mm: float = SENSOR_WIDTH_MM
    n_layers: int = 0
    attempts: int = 1
    depth_shift_mm: float = 0.0
    """Amount added to every depth by the 5f shift (0 when not applied); ``focus_mm`` is in shifted depths."""


@dataclass
class LayeredDepth:
    """A depth map decomposed into CoC layers, index 0 = farthest."""

    labels: np.ndarray
    """(H, W) int64 layer index per pixel, 0 = farthest."""
    coc: np.ndarray
    """(K,) float64 CoC in px of each layer (multiples of 0.1)."""
    depth_mm: np.ndarray
    """(K,) float64 representative (farthest) depth of each layer, in the depths the CoCs were computed on."""
    exact: bool = True
    """True when the CoCs are the thin-lens model's (sampled, or fitted in replay); False for the σ-run fallback."""
    camera: CameraParams | None = field(default=None)

    @property
    def n_layers(self) -> int:
        """Number of CoC layers K."""
        return int(self.coc.shape[0])

    @property
    def sigma_map(self) -> np.ndarray:
        """(H, W) float32 Gaussian σ in px of each pixel's layer: ``(max(c, 1) − 1)/4``."""
        return units.coc_to_sigma(self.coc)[self.labels].astype(np.float32)

    @property
    def sigma10(self) -> np.ndarray:
        """(H, W) uint16 SYNDOF map value exactly as the original writes it: ``uint16(((max(c,1) − 1)/4)·10)``
        in float64 (rounding half away). Prefer this over encoding :attr:`sigma_map` (float32), which can round
        the other way at ties (e.g. CoC 1.2 → the original stores 0, float32 σ 0.05 would give 1). Units: 0.1 px of
        σ, ≥ 0 (0 in focus; 70 at σ_max = 7 px for CoC 29)."""
        v = units.sigma_to_syndof_value(units.coc_to_sigma(self.coc)).astype(np.uint16)
        return v[self.labels]

    @property
    def coc_map(self) -> np.ndarray:
        """(H, W) float32 CoC in px of each pixel's layer."""
        return self.coc[self.labels].astype(np.float32)

    @property
    def merged_depth(self) -> np.ndarray:
        """(H, W) float64 depth relabelled to each layer's representative depth (the original's merged depth)."""
        return self.depth_mm[self.labels]

    def merged(self, tolerance: float) -> LayeredDepth:
        """These layers with adjacent ones whose σ differ by at most ``tolerance`` px merged into one
        (:func:`syndof.layer_merge.merge_plan`: greedy far → near, never across the focus; merged CoC from the
        pixel-weighted mean σ). Renders faster with fewer layers, approximately.

        The result's :attr:`sigma_map` / :attr:`sigma10` / :attr:`coc_map` are the blur each pixel is rendered
        with when these merged layers are rendered, so they are the ground truth to write with such a render.
        ``depth_mm`` is each group's farthest member's depth; ``exact`` is False once anything was merged.
        ``tolerance`` 0 returns ``self``; negative or non-finite raises ValueError.
        """
        from syndof.layer_merge import merge_plan

        group, coc = merge_plan(self.coc, np.bincount(self.labels.ravel(), minlength=self.n_layers), tolerance)
        if coc.size == self.n_layers:
            return self
        first = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
        return LayeredDepth(labels=group[self.labels], coc=coc, depth_mm=self.depth_mm[first], exact=False,
                            camera=self.camera)


# --------------------------------------------------------------------------------------------------- thin lens
def _round_coc(c):
    """MATLAB ``double(int64(c·10))/10``."""
    return units.round_half_away(np.asarray(c, dtype=np.float64), 1)


def thin_lens_coc(depth_mm, focus_mm, focal_mm: float, f_number, px_per_mm: float):
    """Unrounded thin-lens CoC diameter in px (the original ``compute_coc`` before its 0.1 rounding). Depths, focus and
    N broadcast (NumPy), e.g. depths (1, n) against candidate foci (m, 1).

    ``c = (px_per_mm · m) · (A · |z − z_f| / (z + ε))`` with ``A = f/N``, ``m = z_view/z_f``,
    ``z_view = f·z_f/(z_f − f + ε)``, ε = 1e-4 (depths in mm).
    """
    z = np.asarray(depth_mm, dtype=np.float64)
    z_view = (focal_mm * focus_mm) / (focus_mm - focal_mm + EPSILON)
    m_cc = z_view / focus_mm
    aperture = focal_mm / f_number
    coc_real = aperture * (np.abs(z - focus_mm) / (z + EPSILON))
    return (px_per_mm * m_cc) * coc_real


def _solve_f_number(z_min: float, z_max: float, focus_mm, focal_mm: float, px_per_mm: float, max_coc: float):
    """The original's N: the extreme depth with the larger (rounded, N = 1) CoC reaches ``max_coc``. ``focus_mm``
    a number (→ a float) or an array of candidate foci (→ N for each, the same shape).

    When both extremes round to CoC 0 at N = 1 (a depth range of a few parts in 10⁴ at the image's width) the
    original takes ``z_min``; were the focus ``z_min`` itself, N would be 0 (a CoC of 0/0 there, inf elsewhere): the
    other extreme, ``z_max``, is then the one that reaches ``max_coc``. N is 0 only when ``z_min == z_max``."""
    f = focal_mm
    c_far = _round_coc(thin_lens_coc(z_max, focus_mm, f, 1.0, px_per_mm))
    c_near = _round_coc(thin_lens_coc(z_min, focus_mm, f, 1.0, px_per_mm))
    z_e = np.where(c_far > c_near, z_max, z_min)
    z_e = np.where(z_e == focus_mm, np.where(z_e == z_min, z_max, z_min), z_e)  # the focus never sets N (N = 0)
    n = (f**2 / (focus_mm - f)) * (px_per_mm / max_coc) * (np.abs(z_e - focus_mm) / z_e)
    return float(n) if np.ndim(n) == 0 else n


def _runs(values: np.ndarray) -> np.ndarray:
    """Run index (0-based) of each element: consecutive equal values share a run."""
    starts = np.ones(values.shape[0], dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    return np.cumsum(starts) - 1


def _layers_from_depth_cocs(inverse: np.ndarray, z_desc: np.ndarray, c_desc: np.ndarray,
                            shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    run = _runs(c_desc)
    first = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    labels = run[inverse].reshape(shape).astype(np.int64)
    return labels, c_desc[first].copy(), z_desc[first].copy()


def _unique_far_to_near(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique depths far→near and each pixel's index into them."""
    uz, inv = np.unique(depth.ravel(), return_inverse=True)
    return uz[::-1].copy(), (uz.size - 1 - inv.ravel())


def focus_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """The original's near-biased focus weights over n depths ordered far→near: (n,) float64, sum 1 (each in [0, 1],
    a probability per depth; ``n`` ≥ 1)."""
    draws = (n / 2.0) * rng.standard_normal(FOCUS_DRAWS) + n
    counts, _ = np.histogram(draws, bins=2 * n)
    w = counts[:n].astype(np.float64)
    if w.sum() <= 0:  # cannot happen for 10,000 draws, kept for safety
        w = np.ones(n)
    return w / w.sum()


def _check_depth(depth_mm: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth_mm, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth map must be 2-D, got shape {depth.shape}")
    if depth.size == 0:
        raise ValueError(f"depth map is empty (shape {depth.shape})")
    if not np.all(np.isfinite(depth)) or depth.min() <= 0:
        raise ValueError("depth map must be finite and > 0 (fill invalid pixels first: syndof.depth_io)")
    if depth.min() == depth.max():
        raise ValueError("depth map is constant: no defocus can be synthesised")
    return depth


def _check_number(value, name: str, least: float | None = None) -> None:
    """ValueError naming ``name`` unless ``value`` is a finite number, ≥ ``least`` when given, else > 0."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    except OverflowError:  # an int beyond float (10**400): not finite
        x = math.inf
    if isinstance(value, bool) or not math.isfinite(x) or not (x > 0 if least is None else x >= least):
        bound = "> 0" if least is None else f">= {least:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def _count(value, name: str) -> int:
    """``value`` as an int; ValueError naming ``name`` unless a whole number ≥ 0."""
    try:
        n = int(value)
        ok = n == value and n >= 0 and not isinstance(value, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return n


def _attempt(depth: np.ndarray, width_px: int, rng: np.random.Generator, max_coc: float):
    weights = np.asarray(FOCAL_WEIGHTS) / np.sum(FOCAL_WEIGHTS)
    f = float(FOCAL_LENGTHS_MM[rng.choice(len(FOCAL_LENGTHS_MM), p=weights)])
    shift = 0.0
    zmin, zmax = float(depth.min()), float(depth.max())
    if zmin < SHIFT_FACTOR * f:
        shift = SHIFT_FACTOR * f - zmin
        depth = depth - zmin + SHIFT_FACTOR * f
    z_desc, inv = _unique_far_to_near(depth)
    n = z_desc.size
    if n < 2:  # depths of 1e-300…3e-300 mm: all 5f once shifted, a constant map, N = 0 and a 0/0 CoC
        raise ValueError(f"depth map spans {zmin:g}…{zmax:g} mm: shifted to start at 5f = {SHIFT_FACTOR * f:g} mm "
                         "(the original's rule) its depths are one value in float64: no defocus can be synthesised")
    z_f = float(z_desc[rng.choice(n, p=focus_weights(n, rng))])
    px_per_mm = units.px_per_mm(width_px, SENSOR_WIDTH_MM)
    f_number = _solve_f_number(float(z_desc[-1]), float(z_desc[0]), z_f, f, px_per_mm, max_coc)
    c_desc = _round_coc(thin_lens_coc(z_desc, z_f, f, f_number, px_per_mm))
    labels, coc, zrep = _layers_from_depth_cocs(inv, z_desc, c_desc, depth.shape)
    focal_idx = int(np.flatnonzero(coc == 0)[0]) + 1
    params = dict(focal_mm=f, f_number=float(f_number), focus_mm=z_f,
                  focus_percentile=1.0 - focal_idx / coc.size, max_coc=float(max_coc), n_layers=int(coc.size),
                  depth_shift_mm=float(shift))
    return params, LayeredDepth(labels=labels, coc=coc, depth_mm=zrep)


def sample_camera(depth_mm: np.ndarray, width_px: int, rng: np.random.Generator, max_coc: float = units.DEFAULT_MAX_COC,
                  min_layers: int = 200, max_layers: int = 350,
                  max_retries: int = 20) -> tuple[CameraParams, LayeredDepth]:
    """Draw a camera for a depth map (mm) and decompose it into CoC layers, exactly as the original ``get_cocs``.

    Args:
        depth_mm: (H, W) finite positive depth in mm, not constant.
        width_px: image width in px (sets ``px_per_mm = width/36``; normally ``depth_mm.shape[1]``).
        rng: NumPy generator; the same seed reproduces the same sample.
        max_coc: CoC in px reached by the extreme depth (29 → σ_max 7).
        min_layers, max_layers: accepted layer-count range.
        max_retries: resampling attempts after the first; the last attempt is used when none is accepted.

    Returns:
        (CameraParams, LayeredDepth); ``LayeredDepth.camera`` is the same CameraParams.

    Raises:
        ValueError: naming the argument: a bad depth map, ``width_px`` not a finite number ≥ 1, ``rng`` not a
            ``np.random.Generator``, ``max_coc`` not a finite number ≥ 1, layer counts or ``max_retries`` not whole
            numbers ≥ 0, or ``min_layers > max_layers``.
    """
    depth = _check_depth(depth_mm)
    _check_number(width_px, "width_px", least=1)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a np.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    _check_number(max_coc, "max_coc", least=1)
    if _count(min_layers, "min_layers") > _count(max_layers, "max_layers"):
        raise ValueError(f"min_layers {min_layers} > max_layers {max_layers}: no layer count can be accepted")
    max_retries = _count(max_retries, "max_retries")
    for attempt in range(1, max_retries + 2):
        params, layered = _attempt(depth, width_px, rng, max_coc)
        if min_layers <= layered.n_layers <= max_layers:
            break
    cam = CameraParams(attempts=attempt, **params)
    layered.camera = cam
    return cam, layered


# -------------------------------------------------------------------------------------------------------- replay
def _predict_sigma10(z: np.ndarray, z_f: np.ndarray, f: float, z_min: float, z_max: float, px_per_mm: float,
                     max_coc: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised over candidate foci ``z_f`` (m, 1): rounded CoCs and the σ-map values ``uint16(10·σ)``
    (:func:`thin_lens_coc` with :func:`_solve_f_number`'s N for each focus)."""
    f_number = _solve_f_number(z_min, z_max, z_f, f, px_per_mm, max_coc)
    c = _round_coc(thin_lens_coc(z, z_f, f, f_number, px_per_mm))
    sigma = units.coc_to_sigma(c)
    sig10 = units.sigma_to_syndof_value(sigma)
    # the same value written from a float32 σ map (syndof.io.write_sigma_map(LayeredDepth.sigma_map)) can round
    # the other way at ties; accept either encoding
    sig10_f32 = units.sigma_to_syndof_value(sigma.astype(np.float32))
    return c, sig10, sig10_f32


def _fit_camera(z_desc: np.ndarray, v: np.ndarray, width_px: int, max_coc: float,
                focal_candidates) -> tuple[np.ndarray, float, float, float] | None:
    """The first (f, z_f) whose thin-lens CoCs reproduce the σ-map values ``v`` at every unique depth
    (:func:`_camera_fits`), or None."""
    return next(_camera_fits(z_desc, v, width_px, max_coc, focal_candidates), None)


def _camera_fits(z_desc: np.ndarray, v: np.ndarray, width_px: int, max_coc: float,
                 focal_candidates) -> Iterator[tuple[np.ndarray, float, float, float]]:
    """Every (CoCs per unique depth, f, z_f, 5f shift) whose thin-lens CoCs reproduce the σ-map values ``v`` at
    every unique depth, f in the order of ``focal_candidates``, then z_f far → near."""
    change = np.flatnonzero(v[1:] != v[:-1])
    checks = np.unique(np.concatenate([change, change + 1, [0, v.size - 1]]))
    px_per_mm = units.px_per_mm(width_px, SENSOR_WIDTH_MM)
    for f in focal_candidates:
        z = z_desc
        shift = 0.0
        if z[-1] < SHIFT_FACTOR * f:
            shift = SHIFT_FACTOR * f - z[-1]
            z = z - z[-1] + SHIFT_FACTOR * f
        cands = np.flatnonzero(v == 0)
        zmin, zmax = float(z[-1]), float(z[0])
        for start in range(0, cands.size, 4096):
            cc = cands[start : start + 4096]
            _, s10, s10b = _predict_sigma10(z[checks][None, :], z[cc][:, None], f, zmin, zmax, px_per_mm, max_coc)
            vc = v[checks][None, :]
            for ci in cc[np.all((s10 == vc) | (s10b == vc), axis=1)]:
                c, s10_all, s10b_all = _predict_sigma10(z, np.array(z[ci]), f, zmin, zmax, px_per_mm, max_coc)
                if np.all((s10_all == v) | (s10b_all == v)):
                    yield c, float(f), float(z[ci]), shift


def layers_from_sigma(depth_mm: np.ndarray, sigma_px: np.ndarray, max_coc: float = units.DEFAULT_MAX_COC,
                      focal_mm: float | None = None, width_px: int | None = None) -> LayeredDepth:
    """Reconstruct the original generator's layers from its σ map and the (unshifted) depth map.

    The saved map holds ``uint16(10·σ)`` with ``σ = (c − 1)/4``, which loses the CoC's last digit (CoCs 0.1 apart
    often share a value), so the layers cannot be read off the map alone. Reconstruction:

    1. Sort the unique depths far→near; every depth must carry one σ value (else → fallback).
    2. **Camera fit** (exact): the CoC only depends on ``z_f`` (one of the unique depths, with σ = 0) and, through
       the 5f shift and ε, on ``f``. For ``f`` in ``(focal_mm,)`` or (50, 70, 85) and each candidate ``z_f``, the
       original's formulas (same operation order, N solved for ``max_coc``) predict every depth's map value; the
       first (f, z_f) that reproduces all of them gives the exact CoCs, hence the original's layers (runs of equal
       rounded CoC, far→near). A value matches when it equals the original's float64 encoding or the encoding of
       a float32 σ (``syndof.io.write_sigma_map(LayeredDepth.sigma_map)``), which differ only at rounding ties. On
       both SYNDOF Sintel references this finds a unique focus whose layer count and focus percentile match the
       file name.
    3. **Fallback** (maps from other generators, edited maps): one layer per run of consecutive depths with the
       same σ value, CoC ``4σ + 1`` (σ = 0 → CoC 0, in focus). ``exact`` is then False.

    Args:
        depth_mm: (H, W) depth in mm (as read, before any 5f shift).
        sigma_px: (H, W) σ in px (e.g. :func:`syndof.io.read_sigma_map`).
        max_coc: the generator's max_coc (29).
        focal_mm: focal length hint in mm (tried first), e.g. from the file name.
        width_px: image width in px (default: the depth map's width).

    Returns:
        :class:`LayeredDepth` (labels (H, W) int64, coc (K,) px, depth_mm (K,) mm), ``exact`` as above.

    Raises:
        ValueError: naming the argument: a bad depth map, a σ map of another size or with NaN / inf / negative
            values, ``max_coc`` not a finite number ≥ 1, ``focal_mm`` not a finite number > 0, ``width_px`` not ≥ 1.
    """
    depth, v_pix, z_desc, inv, v, width_px = _replay_inputs(depth_mm, sigma_px, max_coc, focal_mm, width_px)
    consistent = bool(np.array_equal(v[inv], v_pix))
    fit = None
    if consistent and np.any(v == 0):
        fit = _fit_camera(z_desc, v, width_px, max_coc, _focal_candidates(focal_mm))
    if fit is not None:
        return _replay_of_fit(fit, z_desc, inv, depth.shape, width_px, max_coc)
    # Fallback: runs of equal σ value per pixel order (pixels of one depth with different σ split by σ).
    if consistent:
        coc_v = np.where(v > 0, units.syndof_value_to_coc(v), 0.0)
        labels, coc, zrep = _layers_from_depth_cocs(inv, z_desc, coc_v, depth.shape)
        return LayeredDepth(labels=labels, coc=_round_coc(coc), depth_mm=zrep, exact=False)
    order = np.lexsort((v_pix, -depth.ravel()))
    key_d, key_v = depth.ravel()[order], v_pix[order]
    start = np.r_[True, (key_d[1:] != key_d[:-1]) | (key_v[1:] != key_v[:-1])]
    group = np.cumsum(start) - 1
    gv = key_v[start]
    run = _runs(gv)
    labels = np.empty(depth.size, dtype=np.int64)
    labels[order] = run[group]
    first = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    coc = np.where(gv[first] > 0, units.syndof_value_to_coc(gv[first]), 0.0)
    return LayeredDepth(labels=labels.reshape(depth.shape), coc=_round_coc(coc), depth_mm=key_d[start][first],
                        exact=False)


def exact_replays(depth_mm: np.ndarray, sigma_px: np.ndarray, max_coc: float = units.DEFAULT_MAX_COC,
                  focal_mm: float | None = None, width_px: int | None = None) -> list[LayeredDepth]:
    """Every exact reconstruction :func:`layers_from_sigma` could return (its step 2), in the order it tries them:
    one per (f, z_f) of the generator's focal lengths (``focal_mm`` first) that reproduces the σ map; the first is
    :func:`layers_from_sigma`'s own. Empty when none does (it then falls back to σ runs).

    The map fixes the focus and the CoCs, not the camera: with N solved for ``max_coc``, ``c(z) = max_coc ·
    g(z)/g(z_e)`` (``g(z) = |z − z_f|/z``) does not depend on f unless the 5f shift moves the depths, so every f
    fits with its own N (∝ f²/(z_f − f)) and gives the same layers, hence the same render. Arguments and errors as
    :func:`layers_from_sigma`; each entry's ``camera`` is its (f, N, z_f)."""
    depth, v_pix, z_desc, inv, v, width_px = _replay_inputs(depth_mm, sigma_px, max_coc, focal_mm, width_px)
    if not (np.array_equal(v[inv], v_pix) and np.any(v == 0)):
        return []
    return [_replay_of_fit(fit, z_desc, inv, depth.shape, width_px, max_coc)
            for fit in _camera_fits(z_desc, v, width_px, max_coc, _focal_candidates(focal_mm))]


def _focal_candidates(focal_mm: float | None) -> list[float]:
    """The focal lengths a replay tries, in order (mm): the hint ``focal_mm`` first, then :data:`FOCAL_LENGTHS_MM`."""
    cands = list(FOCAL_LENGTHS_MM)
    if focal_mm is not None:
        cands = [float(focal_mm)] + [f for f in cands if f != float(focal_mm)]
    return cands


def _replay_inputs(depth_mm: np.ndarray, sigma_px: np.ndarray, max_coc: float, focal_mm: float | None,
                   width_px: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`layers_from_sigma`'s arguments checked (ValueError naming the argument) → (depth (H, W) mm, map values
    per pixel (H·W,), unique depths far → near (n,), each pixel's index into them (H·W,), the map value of each unique
    depth (n,; the last pixel's where a depth carries several), width in px)."""
    depth = _check_depth(depth_mm)
    sigma = np.asarray(sigma_px, dtype=np.float64)
    if sigma.shape != depth.shape:
        raise ValueError(f"σ map {sigma.shape} and depth {depth.shape} differ in size")
    if not np.all(np.isfinite(sigma)) or float(sigma.min()) < 0:
        raise ValueError("sigma_px (the σ map) must be finite and >= 0 px")
    _check_number(max_coc, "max_coc", least=1)
    if focal_mm is not None:
        _check_number(focal_mm, "focal_mm")
    if width_px is not None:
        _check_number(width_px, "width_px", least=1)
    width_px = int(width_px or depth.shape[1])
    v_pix = units.sigma_to_syndof_value(sigma).ravel()
    z_desc, inv = _unique_far_to_near(depth)
    v = np.zeros(z_desc.size)
    v[inv] = v_pix
    return depth, v_pix, z_desc, inv, v, width_px


def _replay_of_fit(fit: tuple[np.ndarray, float, float, float], z_desc: np.ndarray, inv: np.ndarray,
                   shape: tuple[int, int], width_px: int, max_coc: float) -> LayeredDepth:
    """The exact :class:`LayeredDepth` of one camera fit (CoCs per unique depth, f mm, z_f mm, 5f shift mm), its
    camera's N solved as the generator solves it."""
    c, f, z_f, shift = fit
    labels, coc, zrep = _layers_from_depth_cocs(inv, z_desc, c, shape)
    px_per_mm = units.px_per_mm(width_px, SENSOR_WIDTH_MM)
    zs = z_desc + shift if shift else z_desc
    n = _solve_f_number(float(zs[-1]), float(zs[0]), z_f, f, px_per_mm, max_coc)
    focal_idx = int(np.flatnonzero(coc == 0)[0]) + 1
    cam = CameraParams(focal_mm=f, f_number=float(n), focus_mm=z_f, focus_percentile=1.0 - focal_idx / coc.size,
                       max_coc=float(max_coc), n_layers=int(coc.size), attempts=1, depth_shift_mm=shift)
    return LayeredDepth(labels=labels, coc=coc, depth_mm=zrep + shift, exact=True, camera=cam)
