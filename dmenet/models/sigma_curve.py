"""σ recalibration curve: a monotone map from B's σ to a corrected σ (px → px), fitted after training.

Why: a network's σ is biased wherever its training data made a range rare; the lite model, for one, stops near
4.5–5 px for a true 6–7 px (docs/history.md §3). The curve that minimises the mean absolute error
among all non-decreasing maps is the L1 isotonic regression of the true σ on the predicted σ (per predicted σ,
the median of the true σ, pooled until the medians are in order). It changes no weight. (SciPy's and
scikit-learn's isotonic regressions minimise the squared error, i.e. fit means; the MAE needs this median
version, written out below.)

The curve is ``N + 1`` σ values (px) at the evenly spaced predicted σ ``0, σ_max/N, …, σ_max`` and is read by
linear interpolation (:func:`apply_sigma_curve`); the inference recipe stores it as ``Recipe.sigma.curve``
(:mod:`dmenet.models.recipe`). :mod:`dmenet.training.fit_sigma` (``python -m dmenet.calibrate sigma``) fits it on
held-out renders.

Everything here is in σ px; label ↔ σ conversions live in :mod:`syndof.units`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRUE_BIN_PX = 0.05
"""Resolution (px) of the true-σ histograms the fit pools: true σ is rounded to it (SYNDOF maps store σ to 0.1 px,
so nothing is lost on them)."""


def curve_knots(n_values: int, sigma_max: float) -> np.ndarray:
    """The predicted σ (px) at which a curve of ``n_values`` values is given: ``linspace(0, σ_max, n_values)``, an
    (n_values,) float64 array (``sigma_max`` in px)."""
    if n_values < 2:
        raise ValueError(f"a sigma curve needs at least 2 values, got {n_values}")
    return np.linspace(0.0, float(sigma_max), int(n_values))


def check_sigma_curve(curve: Sequence[float], sigma_max: float) -> None:
    """Raise ValueError unless ``curve`` has ≥ 2 finite, non-decreasing values in [0, σ_max] px."""
    values = np.asarray(curve, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"sigma_curve must be a list of at least 2 σ values (px), got {list(curve)!r}")
    if not np.all(np.isfinite(values)):
        raise ValueError("sigma_curve has non-finite values")
    if np.any(np.diff(values) < 0):
        raise ValueError("sigma_curve must be non-decreasing")
    if values[0] < 0 or values[-1] > sigma_max + 1e-9:
        raise ValueError(f"sigma_curve values must lie in [0, {sigma_max:g}] px, got {values[0]:g} … {values[-1]:g}")


def apply_sigma_curve(sigma: np.ndarray, curve: Sequence[float], sigma_max: float) -> np.ndarray:
    """Corrected σ of a σ map by the curve (piecewise linear between the knots of :func:`curve_knots`).

    Args:
        sigma: σ map (any shape), px, in [0, σ_max] (values outside are clamped to the end knots).
        curve: ``N + 1`` non-decreasing σ values (px) at predicted σ ``0 … σ_max``.
        sigma_max: σ px of the model's label 1 (7 for max CoC 29).

    Returns:
        float32 array of ``sigma``'s shape, px.
    """
    values = np.asarray(curve, dtype=np.float64)
    knots = curve_knots(values.size, sigma_max)
    return np.interp(np.asarray(sigma, dtype=np.float64), knots, values).astype(np.float32)


def _weighted_median(hist: np.ndarray) -> float:
    """Weighted median (px) of a histogram whose bin i holds values ``i·TRUE_BIN_PX``: the first bin where the
    cumulative count reaches half the total (a minimiser of the L1 error)."""
    cum = np.cumsum(hist)
    return float(np.searchsorted(cum, cum[-1] / 2.0)) * TRUE_BIN_PX


def isotonic_median(hists: np.ndarray) -> np.ndarray:
    """L1 isotonic regression on binned data: pool-adjacent-violators with weighted medians.

    Args:
        hists: (K, M) counts; row k is the histogram (bin i holds ``i·TRUE_BIN_PX`` px) of the true σ of the
            pixels whose predicted σ falls in bin k. Rows must not be empty.

    Returns:
        (K,) non-decreasing σ px: each row's value is the median of the true σ pooled over its block.
    """
    blocks: list[list] = []  # [pooled histogram, median, first row, last row]
    for k, row in enumerate(np.asarray(hists, dtype=np.float64)):
        if row.sum() <= 0:
            raise ValueError(f"histogram row {k} is empty")
        blocks.append([row.copy(), _weighted_median(row), k, k])
        while len(blocks) > 1 and blocks[-2][1] > blocks[-1][1]:
            last = blocks.pop()
            prev = blocks[-1]
            prev[0] = prev[0] + last[0]
            prev[1] = _weighted_median(prev[0])
            prev[3] = last[3]
    out = np.empty(len(hists))
    for _hist, value, first, last in blocks:
        out[first : last + 1] = value
    return out


def fit_sigma_curve(hists: np.ndarray, sigma_max: float, min_pixels: int = 1000) -> np.ndarray:
    """A σ curve from predicted-σ × true-σ histograms.

    Args:
        hists: (N + 1, M) counts: row k holds the true σ (bins of :data:`TRUE_BIN_PX` px) of the pixels whose
            predicted σ is nearest the knot ``k·σ_max/N``.
        sigma_max: σ px of label 1.
        min_pixels: rows with fewer pixels are not fitted; their values follow the nearest fitted rows (linear
            in between; beyond the last fitted row the curve keeps that row's offset from the identity).

    Returns:
        (N + 1,) non-decreasing σ values in [0, σ_max] px.

    Raises:
        ValueError: fewer than 2 rows reach ``min_pixels``.
    """
    hists = np.asarray(hists, dtype=np.float64)
    knots = curve_knots(hists.shape[0], sigma_max)
    fitted = np.flatnonzero(hists.sum(axis=1) >= min_pixels)
    if fitted.size < 2:
        raise ValueError(f"only {fitted.size} predicted-σ bins hold ≥ {min_pixels} pixels; need at least 2")
    values = isotonic_median(hists[fitted])
    offsets = values - knots[fitted]
    # inside: linear between fitted knots; outside: the end rows' offsets from the identity
    curve = knots + np.interp(knots, knots[fitted], offsets)
    # monotone by construction; the running maximum only irons out rounding on plateaus (x + offset ≠ value exactly)
    return np.maximum.accumulate(np.clip(curve, 0.0, sigma_max))


def sigma_histograms(pred_sigma: np.ndarray, true_sigma: np.ndarray, n_values: int, sigma_max: float) -> np.ndarray:
    """(n_values, M) histograms for :func:`fit_sigma_curve` from one image's predicted and true σ maps (px).

    Each pixel goes to the row of the knot nearest its predicted σ and the column ``round(true σ / TRUE_BIN_PX)``
    (true σ clipped to [0, σ_max], as the labels are).
    """
    if pred_sigma.shape != true_sigma.shape:
        raise ValueError(f"predicted {pred_sigma.shape} and true {true_sigma.shape} σ maps differ in size")
    step = sigma_max / (n_values - 1)
    n_true = int(np.rint(sigma_max / TRUE_BIN_PX)) + 1
    rows = np.clip(np.rint(np.asarray(pred_sigma, dtype=np.float64) / step), 0, n_values - 1).astype(np.int64)
    cols = np.clip(np.rint(np.clip(true_sigma, 0.0, sigma_max) / TRUE_BIN_PX), 0, n_true - 1).astype(np.int64)
    flat = np.bincount((rows * n_true + cols).ravel(), minlength=n_values * n_true)
    return flat.reshape(n_values, n_true).astype(np.float64)
