"""Test-time symmetries: B's passes over up to 8 mirrored / transposed copies of an image, averaged.

:func:`_symmetry` is the ``k``-th symmetry of the square (bit 0 mirrors left-right, bit 1 up-down, bit 2
transposes), :func:`_inverse_symmetry` maps a pass's output back; :func:`averaged_passes` runs
:func:`dmenet.tiling.single_pass` on each of the first ``flips`` copies (``flips`` one of
:data:`dmenet.models.recipe.FLIPS`) and averages the maps back at the input's orientation: the label in float64, the
other detection features in float32. The public entry points are :func:`dmenet.inference.predict_label` and
:func:`~dmenet.inference.predict_features`.
"""

from __future__ import annotations

import numpy as np

from dmenet.tiling import single_pass


def _symmetry(array: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th of the 8 symmetries of the square (k in 0…7) on the first two axes of ``array``:
    bit 0 mirrors left-right, bit 1 mirrors up-down, bit 2 transposes, applied in that order."""
    if k & 1:
        array = array[:, ::-1]
    if k & 2:
        array = array[::-1]
    if k & 4:
        array = array.swapaxes(0, 1)
    return array


def _inverse_symmetry(array: np.ndarray, k: int) -> np.ndarray:
    """Undo :func:`_symmetry` (each step is its own inverse, so apply them in reverse order)."""
    if k & 4:
        array = array.swapaxes(0, 1)
    if k & 2:
        array = array[::-1]
    if k & 1:
        array = array[:, ::-1]
    return array


def averaged_passes(rgb, model, tile_threshold, tile, overlap, flips, image_stats, dtype, features: bool) -> np.ndarray:
    """The passes of :func:`dmenet.inference.predict_label` (or :func:`~dmenet.inference.predict_features`) over
    the first ``flips`` symmetries of ``rgb`` ((H, W, 3) float32 RGB in [0, 1]), ``model`` in eval mode; the other
    arguments are :func:`dmenet.tiling.single_pass`'s. Returns the (H, W) float32 label in [0, 1] averaged (in
    float64), or with ``features`` the (H, W, C) float32 features, channel-planar, channel 0 that label."""
    total = np.zeros(rgb.shape[:2], dtype=np.float64)
    planes = None  # with features: (C, H, W) float32 sums, channel 0 replaced by the label at the end
    for k in range(flips):
        view = _symmetry(rgb, k)  # a copy: ascontiguousarray keeps the negative strides of a 1-px-wide flip
        out = _inverse_symmetry(single_pass(view.copy() if k else np.ascontiguousarray(view), model,
                                            tile_threshold, tile, overlap, image_stats, dtype, features), k)
        if features:
            if planes is None:  # the first pass's own planes when they are contiguous (no copy at 1 flip)
                planes = np.ascontiguousarray(np.moveaxis(out, -1, 0))
            else:
                planes += np.moveaxis(out, -1, 0)
            out = out[..., 0]
        total += out
    label = np.ascontiguousarray(total / flips, dtype=np.float32)
    if not features:
        return label
    if flips > 1:
        planes[1:] /= np.float32(flips)
    planes[0] = label
    return np.moveaxis(planes, 0, -1)
