"""Every unit conversion of the project, in one place: σ, CoC, labels, network outputs, SYNDOF file values, sensor
mm → px, σ rescales (depth file formats' scale factors stay in ``syndof.depth_io``, image intensity scaling in
``syndof.io`` / ``syndof.images``: docs/method.md §1).

Quantities (docs/method.md §1):

* **CoC** ``c`` — thin-lens blur-circle diameter in px at the image's resolution, 0 … ``max_coc``.
* **σ** — Gaussian standard deviation in px: ``σ = (c − 1) / 4`` for ``c > 1``, else 0 (CoC < 1 is clamped to 1).
  σ_max = ``(max_coc − 1) / 4`` = 7 px for the default ``max_coc = 29``.
* **label** ``y`` — network target / output: ``y = σ / σ_max`` in [0, 1].
* **SYNDOF file value** — ``round(10·σ)`` stored as uint16 (3 identical channels in the original).
* **resize rule** — resizing an image by a factor ``s`` scales its blur by ``s``: ``σ' = s·σ`` (and ``c' = s·c``).

Functions accept NumPy arrays, torch tensors or Python floats and return the same kind; the array functions work
elementwise: any shape in, the same shape out.
"""

from __future__ import annotations

import math
import numbers
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor, float)

DEFAULT_MAX_COC = 29
"""Largest CoC (px) the original generator renders; σ_max = 7 px."""

SYNDOF_SCALE = 10.0
"""SYNDOF 16-bit maps store ``round(SYNDOF_SCALE · σ)``."""



def _clip(x: Array, lo: float | None, hi: float | None) -> Array:
    if isinstance(x, torch.Tensor):
        return x.clamp(min=lo, max=hi)
    if isinstance(x, np.ndarray):
        return np.clip(x, lo, hi)
    x = float(x)
    if math.isnan(x):  # NaN stays NaN, as np.clip and torch.clamp leave it (max/min would drop it)
        return x
    if lo is not None:
        x = max(lo, x)
    if hi is not None:
        x = min(hi, x)
    return x


def max_sigma(max_coc: float = DEFAULT_MAX_COC) -> float:
    """σ_max in px for a given largest CoC: ``(max_coc − 1) / 4`` (7.0 for 29). ValueError unless ``max_coc`` is a
    finite number ≥ 1 px (:func:`is_finite_number`: an int beyond float, 10**400, is not); a value that is no number
    (:func:`is_number`: text such as ``"29"``, a bool, None) is refused as such, never compared (a TypeError)."""
    if not is_number(max_coc):
        raise ValueError(f"max_coc must be a finite CoC >= 1 px, got {max_coc!r}: a {type(max_coc).__name__}, not a "
                         "number (int or float)")
    if not (is_finite_number(max_coc) and max_coc >= 1):
        raise ValueError(f"max_coc must be a finite CoC >= 1 px, got {max_coc}")
    return (max_coc - 1.0) / 4.0


def coc_to_sigma(coc: Array) -> Array:
    """CoC diameter (px) → Gaussian σ (px): ``(max(c, 1) − 1) / 4``; 0 for CoC ≤ 1."""
    return (_clip(coc, 1.0, None) - 1.0) / 4.0


def sigma_to_coc(sigma: Array) -> Array:
    """Gaussian σ (px, ≥ 0) → CoC diameter (px): ``4σ + 1``. σ = 0 maps to CoC 1 (in focus)."""
    return _clip(sigma, 0.0, None) * 4.0 + 1.0


def sigma_to_label(sigma: Array, max_coc: float = DEFAULT_MAX_COC) -> Array:
    """σ (px) → training label ``σ / σ_max`` clipped to [0, 1]. ValueError when ``max_coc`` gives no σ range
    (``max_coc`` 1 → σ_max 0: the label would be 0/0)."""
    top = max_sigma(max_coc)
    if not top > 0:
        raise ValueError(f"max_coc must be > 1 px for labels (σ_max = (max_coc − 1)/4 = {top:g}), got {max_coc}")
    return _clip(sigma / top, 0.0, 1.0)


def label_to_sigma(label: Array, max_coc: float = DEFAULT_MAX_COC) -> Array:
    """Network output / label in [0, 1] → σ (px): ``σ_max · y`` (the project convention, ``σ = 7·o``)."""
    return _clip(label, 0.0, 1.0) * max_sigma(max_coc)


def sigma_fraction(sigma: Array, sigma_max: float) -> Array:
    """σ (px) → fraction of a method's or benchmark's own largest σ: ``σ / sigma_max`` clipped to [0, 1] (a
    relative blur map, or RTF's normalised units; the SYNDOF label is :func:`sigma_to_label`). ``sigma_max`` in px,
    > 0."""
    return _clip(sigma / sigma_max, 0.0, 1.0)


def coc_to_radius(coc: Array) -> Array:
    """CoC diameter (px) → blur-circle radius (px): ``c / 2`` (the disc / polygon PSFs' geometry)."""
    return coc / 2.0


def sigma_to_syndof(sigma: np.ndarray) -> np.ndarray:
    """σ (px, ≥ 0, finite), any shape → SYNDOF uint16 file value ``round(10·σ)`` (half away from zero, as MATLAB),
    same shape, 0 … 65535 (ValueError for a negative, non-finite or too large σ)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    if np.any(sigma < 0) or not np.all(np.isfinite(sigma)):
        raise ValueError("σ map must be finite and non-negative")
    value = sigma_to_syndof_value(sigma)
    if value.size and value.max() > np.iinfo(np.uint16).max:  # would wrap around silently
        raise ValueError(f"σ up to {sigma.max():g} px does not fit a SYNDOF map (uint16 round(10·σ) ≤ 6553.5 px)")
    return value.astype(np.uint16)


def sigma_to_syndof_value(sigma: np.ndarray) -> np.ndarray:
    """σ (px, ≥ 0) → the SYNDOF file value ``round(10·σ)`` (half away from zero, as MATLAB: ``floor(10·σ + 0.5)``
    for σ ≥ 0) as float64, without :func:`sigma_to_syndof`'s checks and uint16 cast."""
    return np.floor(np.asarray(sigma, dtype=np.float64) * SYNDOF_SCALE + 0.5)


def syndof_value_to_coc(value: np.ndarray) -> np.ndarray:
    """SYNDOF file value v = round(10·σ) → CoC diameter (px) ``0.4·v + 1`` (:func:`sigma_to_coc` of v / 10, in the
    arithmetic the replay of a σ map has always used); float64. v = 0 gives 1 (in focus)."""
    return 0.4 * np.asarray(value, dtype=np.float64) + 1.0


def px_per_mm(width_px: float, sensor_width_mm: float) -> float:
    """Pixels per mm on the sensor: image width (px) / sensor width (mm) (SYNDOF: a 36 mm full-frame sensor)."""
    return width_px / sensor_width_mm


def syndof_to_sigma(value: np.ndarray) -> np.ndarray:
    """SYNDOF uint16 file value (any shape, 0 … 65535) → σ (px, float32, same shape, 0 … 6553.5): ``value / 10``
    (ValueError for another dtype)."""
    value = np.asarray(value)
    if value.dtype != np.uint16:
        raise ValueError(f"SYNDOF σ maps are uint16, got {value.dtype} (read them with cv2.IMREAD_UNCHANGED)")
    return value.astype(np.float32) / SYNDOF_SCALE


def released_output_to_sigma(output: np.ndarray) -> np.ndarray:
    """Output o ∈ [0, 1] of the *released* DMENet checkpoint → σ px: ``σ = max(0, (15·o − 1) / 2)`` (the mapping of
    DMENet's ``quantitative_RTF.m`` for its published PNGs; this project's own label is :func:`label_to_sigma`).
    Float64 array."""
    return np.clip((np.asarray(output, dtype=np.float64) * 15.0 - 1.0) / 2.0, 0.0, None)


def compose_sigma(sigma: Array, extra: float | Array) -> Array:
    """σ (px) after a further Gaussian blur of σ ``extra`` px (a number, or an array broadcasting with ``sigma``):
    Gaussian blurs compose in quadrature, ``√(σ² + extra²)`` (exact for a region of one blur; at occlusion edges of a
    layered render it is the blur the pixel gets, up to the layer mixing)."""
    if not np.all(np.asarray(extra) >= 0):
        raise ValueError(f"extra blur σ must be >= 0 px, got {extra}")
    return (sigma * sigma + extra * extra) ** 0.5


def magnifying_sigma(sigma: Array, k: float) -> Array:
    """The further Gaussian blur σ (px) that turns a blur of σ px into one of ``k·σ`` px: ``σ·√(k² − 1)``, the
    inverse of :func:`compose_sigma` (``compose_sigma(σ, magnifying_sigma(σ, k)) = k·σ``). ``sigma`` in px (≥ 0);
    ValueError unless ``k`` is one finite number ≥ 1 (a blur can only grow)."""
    if not 1 <= k < math.inf:
        raise ValueError(f"magnification k must be >= 1 and finite, got {k!r}")
    return sigma * math.sqrt(k * k - 1.0)


def rescale_sigma(sigma: Array, scale: float) -> Array:
    """σ (or CoC) after resizing the image by ``scale`` (new size / old size): ``σ · scale``. A list or tuple of σ is
    taken as a NumPy array (float64). ValueError unless ``scale`` is one finite number > 0."""
    try:
        factor = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"resize scale must be one number > 0, got {scale!r}") from None
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"resize scale must be a finite number > 0, got {scale}")
    if isinstance(sigma, (list, tuple)):  # a list times an int would repeat the list
        sigma = np.asarray(sigma, dtype=np.float64)
    return sigma * factor  # the checked Python float: keeps σ's kind and dtype whatever kind ``scale`` was


def disk_radius_to_sigma(radius: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Disk-PSF radius (px) → Gaussian σ (px) by the nearest radius of D'Andrès' table.

    Args:
        radius: any shape, disk radius in px.
        table: (N, 2) rows ``[gaussian σ, disk radius]`` (the layout of RTF ``convertion.mat``).
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 2:
        raise ValueError(f"conversion table must be (N, 2) [sigma, radius], got {table.shape}")
    radius = np.asarray(radius, dtype=np.float64)
    idx = np.abs(radius[..., None] - table[:, 1]).argmin(axis=-1)
    return table[idx, 0]


def is_finite_number(value) -> bool:
    """Whether ``value`` reads as a finite float: ``float(value)`` succeeds and is neither NaN nor ±inf. For a number
    given by a user (a dataset.json value, an API argument, an option) whose finiteness is all a check needs.

    Takes what ``float()`` takes: an int of any size, a float, a NumPy or PyTorch scalar, a bool (True is 1.0) and
    numeric text (``"29"``, ``" 1e3 "``). An int beyond float's range (``10**400``, what JSON reads from 401 digits)
    is not finite: False, where ``math.isfinite`` and ``float()`` raise OverflowError. What ``float()`` refuses
    with a TypeError or ValueError (None, a list, ``"abc"``, a NumPy array of several values) is False too. A caller
    that must refuse bool or text (a JSON value must be a JSON number) checks the type first, as
    :func:`syndof.recipe.read_max_coc` does, and :func:`max_sigma` and :func:`_check_depth_range` (:func:`is_number`:
    they compare the value, which text would fail with a TypeError)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def is_number(value) -> bool:
    """Whether ``value`` is a number an API check may compare: a Python int or float or a NumPy integer or float
    scalar (any :class:`numbers.Real`), not a bool (nor ``np.bool_``). Text (``"29"``, which
    :func:`is_finite_number` reads as a number), None, arrays and tensors are not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_depth_range(near_mm: float, far_mm: float) -> None:
    """ValueError unless 0 < ``near_mm`` < ``far_mm`` (mm), both numbers (:func:`is_number`: not text, a bool or
    None, which compared with a TypeError) and finite (:func:`is_finite_number`: an int beyond float, 10**400, is
    not)."""
    for name, value in (("near", near_mm), ("far", far_mm)):
        if not is_number(value):
            raise ValueError(f"the depth range must be 0 < near < far mm (finite), got near {near_mm!r}, far "
                             f"{far_mm!r}: {name} is a {type(value).__name__}, not a number (int or float)")
    if not (is_finite_number(near_mm) and is_finite_number(far_mm) and 0 < near_mm < far_mm):
        raise ValueError(f"the depth range must be 0 < near < far mm (finite), got near {near_mm!r}, far {far_mm!r}")


def inverse_depth8_to_mm(value: np.ndarray, near_mm: float, far_mm: float) -> np.ndarray:
    """Depth in mm from an 8-bit relative inverse-depth map (white = near, e.g. the EBB! / PyNET-Bokeh maps of
    ``rgbd/pynet_bokeh``), mapped to a metric range chosen by the user: 255 → ``near_mm``, 0 → ``far_mm``, linear in
    inverse depth between them, ``1/z = 1/far + (v/255)·(1/near − 1/far)``. The maps are relative and unitless, so
    the range is a modelling choice, not a measurement (docs/method.md §1).

    Args:
        value: (H, W) 8-bit values 0 … 255 (any integer or float dtype).
        near_mm, far_mm: finite distances in mm, 0 < ``near_mm`` < ``far_mm``.

    Returns:
        (H, W) float64 depth in mm, ``near_mm`` … ``far_mm`` (larger = farther).

    Raises:
        ValueError: a range that is not 0 < near < far (finite), or values outside 0 … 255.
    """
    _check_depth_range(near_mm, far_mm)
    v = np.asarray(value, dtype=np.float64)
    if v.size and (not np.isfinite(v).all() or v.min() < 0 or v.max() > 255):
        raise ValueError("an 8-bit inverse-depth map holds values 0 … 255")
    return _nearness_to_mm(v / 255.0, near_mm, far_mm)  # checked: v/255 is a nearness in [0, 1]


def inverse_depth_to_mm(nearness: np.ndarray, near_mm: float, far_mm: float) -> np.ndarray:
    """Depth in mm from a relative nearness ``t`` in [0, 1], linear in inverse depth: 1 → ``near_mm``, 0 →
    ``far_mm``, ``1/z = 1/far + t·(1/near − 1/far)`` (the law of :func:`inverse_depth8_to_mm`, whose ``t`` is
    ``v/255``, and of the generated scenes' depth: ``syndof.random_depth``, ``syndof.scenes``).

    Args:
        nearness: any shape, unitless, finite, in [0, 1] (1 = nearest).
        near_mm, far_mm: finite distances in mm, 0 < ``near_mm`` < ``far_mm``.

    Returns:
        float64 depth in mm of ``nearness``'s shape, ``near_mm`` … ``far_mm`` (larger = farther).

    Raises:
        ValueError: a range that is not 0 < near < far (finite), or a nearness outside [0, 1] or not finite.
    """
    _check_depth_range(near_mm, far_mm)
    t = np.asarray(nearness, dtype=np.float64)
    if t.size and (not np.isfinite(t).all() or t.min() < 0 or t.max() > 1):
        raise ValueError("a relative nearness holds values 0 … 1 (1 = near)")
    return _nearness_to_mm(t, near_mm, far_mm)


def _nearness_to_mm(t: np.ndarray, near_mm: float, far_mm: float) -> np.ndarray:
    """The law of :func:`inverse_depth_to_mm` unchecked (its two callers check the range and their values once):
    ``t`` float64 nearness in [0, 1], any shape → float64 depth in mm of its shape."""
    return 1.0 / (1.0 / far_mm + t * (1.0 / near_mm - 1.0 / far_mm))


def round_half_away(x: Array, decimals: int = 0) -> Array:
    """MATLAB ``round``: half away from zero, optionally at ``decimals`` digits. NaN and ±inf are returned as they
    are (for a Python number as for arrays and tensors)."""
    f = 10.0**decimals
    if isinstance(x, torch.Tensor):
        return torch.sign(x) * torch.floor(x.abs() * f + 0.5) / f
    if isinstance(x, np.ndarray):
        return np.sign(x) * np.floor(np.abs(x) * f + 0.5) / f
    if not math.isfinite(x):
        return float(x)
    return math.copysign(math.floor(abs(x) * f + 0.5) / f, x)
