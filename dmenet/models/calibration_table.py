"""S at inference as a lookup table: the calibration network's logit sampled on a uniform grid over [0, 1].

S (:class:`dmenet.models.calibration.Calibration`) is a stack of 1×1 convolutions, BatchNorms and LeakyReLUs on a
one-channel label map. In eval mode (moving statistics) each BatchNorm is a fixed per-channel affine map, so S is
one scalar function ``z = f(label)`` applied to every pixel, and a continuous piecewise-linear one: linear between
the labels where some unit's pre-activation crosses 0 (its "kinks"; 115 grid cells of [0, 1] hold one for the
shipped S).

:class:`CalibrationTable` holds ``f`` at ``TABLE_POINTS`` evenly spaced labels, evaluated once in float64, and reads
it by linear interpolation, which is exact (up to float64 rounding) in every grid cell where ``f`` is linear. The
cells that hold a kink are found when the table is built (``f`` at the cell's midpoint is not the mean of its ends)
and their pixels go through S itself, as do labels outside [0, 1] and NaN: no value is extrapolated or smoothed over
a kink. Against the direct float32 S the table then differs by S's own float32 rounding (max |Δ logit| 1.5e-5 on
the five CUHK test images and RTF 01, the same as a float64 S).

Training and anything that needs gradients keep calling S directly; only :func:`dmenet.logits.calibration_logit`
uses the table, and only when S is in eval mode.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
from torch import nn

from dmenet.models.fuse import fold_batchnorms, pointwise_as_linear

TABLE_POINTS = 16385
"""Grid size: labels i / 16384, i = 0 … 16384 (0.3 MB of float64 values, slopes and flags); building it evaluates
S at 32,769 labels (about 25–40 ms on one CPU thread, once per model). A kink cell is 1/16384 wide: on the shipped
S 115 of them, holding at most 1.4 % of the pixels of the five CUHK test images and RTF 01 (the pixels that go
through S). 65,537 points send 4× fewer pixels to S but take 3× longer to build; the lookup time is about the
same."""
KINK_TOLERANCE = 1e-9
"""A cell whose midpoint logit is further than this from the mean of its ends holds a kink. Interpolation error in
a cell with one kink is at most twice the midpoint deviation, so the cells kept are exact to 2e-9. (Two kinks in one
cell whose deviations cancel at the midpoint would pass unnoticed; the shipped S has the same 115 kink cells at
16,385 and at 65,537 points.)"""
_CHUNK = 8192  # grid labels per forward while building: keeps S's activations in cache


class CalibrationTable:
    """``f(label)`` of S on a uniform grid, read by linear interpolation; kink cells go through S.

    Attributes:
        values: (N,) float64 logits ``f(i / (N − 1))``, i = 0 … N − 1 (1 = blurred, before the recipe's transform).
        slopes: (N − 1,) float64 ``values[i + 1] − values[i]`` (per grid step, not per unit label).
        kinks: (N − 1,) bool, True for the cells where ``f`` is not linear (not read from the table).
    """

    def __init__(self, values: np.ndarray, kinks: np.ndarray | None = None):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.size < 2 or not np.all(np.isfinite(values)):
            raise ValueError(f"table needs >= 2 finite values, got shape {values.shape}")
        self.values = values
        self.slopes = np.diff(values)
        self.kinks = np.zeros(values.size - 1, bool) if kinks is None else np.asarray(kinks, dtype=bool)
        if self.kinks.shape != self.slopes.shape:
            raise ValueError(f"kinks must be ({values.size - 1},), got {self.kinks.shape}")

    @property
    def points(self) -> int:
        """Number of stored values."""
        return self.values.size

    def __call__(self, label: np.ndarray, exact: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Logits of a label map.

        Args:
            label: (…) float label in [0, 1] (B's output, σ / σ_max), any shape.
            exact: S itself on a 1-D float32 array of labels → 1-D logits; used for labels in kink cells, outside
                [0, 1] or NaN (not called when there are none).

        Returns:
            float32 logits, the shape of ``label``.
        """
        label = np.asarray(label)
        t = label.astype(np.float64)  # a copy: worked on in place below
        inside = bool(t.size == 0 or (t.min() >= 0.0 and t.max() <= 1.0))  # False with a NaN too
        outside = None if inside else ~((t >= 0.0) & (t <= 1.0))
        if outside is not None:
            t[outside] = 0.0
        last = self.values.size - 1
        t *= last
        i = t.astype(np.intp)
        np.minimum(i, last - 1, out=i)  # label 1.0 reads the last cell at fraction 1
        t -= i
        t *= self.slopes[i]
        t += self.values[i]
        z = t.astype(np.float32)
        direct = self.kinks[i]
        if outside is not None:
            direct |= outside
        if direct.any():
            z[direct] = np.asarray(exact(np.ascontiguousarray(label[direct], dtype=np.float32)), np.float32)
        return z


def calibration_table(calibration: nn.Module, points: int = TABLE_POINTS) -> CalibrationTable:
    """Sample S's logit at ``points`` labels evenly spaced over [0, 1] and flag the cells that hold a kink (S on a
    float64 CPU copy with its BatchNorms folded; S itself is not touched).

    Raises:
        ValueError: S is in train mode (its BatchNorms would use the grid's own statistics), or ``points`` < 2.
    """
    if calibration.training:
        raise ValueError("calibration_table needs S in eval mode (moving BatchNorm statistics)")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    s64 = copy.deepcopy(calibration).to("cpu", torch.float64)
    fold_batchnorms(s64)  # same function (eval mode), fewer passes over the activations
    pointwise_as_linear(s64)
    grid = torch.linspace(0.0, 1.0, 2 * points - 1, dtype=torch.float64)  # the table's labels and cell midpoints
    with torch.inference_mode():
        fine = torch.cat([s64(c.view(1, 1, 1, -1)).reshape(-1) for c in grid.split(_CHUNK)]).numpy()
    values, mid = fine[::2], fine[1::2]
    kinks = np.abs(mid - 0.5 * (values[:-1] + values[1:])) > KINK_TOLERANCE
    return CalibrationTable(values, kinks)


def cached_calibration_table(model: nn.Module) -> CalibrationTable:
    """:func:`calibration_table` of ``model.calibration``, rebuilt only when S's tensors changed since the last call.

    Like :func:`dmenet.models.fuse.cached_inference_blur`, the memo lives on the model object (outside its state
    dict and module tree) and is keyed by every parameter's and buffer's storage address and in-place version
    counter, so an optimizer step, ``load_state_dict`` or a move to another device rebuilds it.
    """
    s = model.calibration
    key = tuple((t.data_ptr(), t._version) for t in (*s.parameters(), *s.buffers()))
    memo = model.__dict__.get("_calibration_table_memo")
    if memo is None or memo[0] != key:
        memo = (key, calibration_table(s))
        object.__setattr__(model, "_calibration_table_memo", memo)
    return memo[1]
