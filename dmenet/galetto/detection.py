"""Galetto's blur map (1 = blurred) from its σ map, and the detection transform that makes it one.

Without a fitted transform the blur map is the SYNDOF label ``clip(σ / σ_max, 0, 1)`` (:func:`syndof.units
.sigma_to_label`): a unit conversion that ranks pixels but sits far below 0.5 on real photos, whose blurred regions
mostly have σ ≈ 1–4 px. :func:`fit` chooses ``p = sigmoid(scale · (σ − shift))`` (σ in px; the formula is
:func:`dmenet.logits.blur_probability_from_logit`, DMENet's detection transform) on labelled *training* images by
DMENet's objective (:func:`dmenet.training.fit_dbd.fit_logit_transform`: mean MAE − mean Fmax at native size), and
the classifier's sidecar keeps it under ``"detection"`` (:func:`write_fitted`, :func:`read_transform`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dmenet.galetto.train import classifier_files
from dmenet.models.model_io import ModelFileError, read_tensors, write_model_pair
from dmenet.models.weights import read_weights_metadata
from syndof import units
from syndof.io import read_json_object

SCALES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
"""Candidate steepness values, per px of σ."""
SHIFTS = tuple(float(x) for x in np.round(np.arange(0.25, 6.0001, 0.25), 2))
"""Candidate decision points, σ in px."""


@dataclass(frozen=True)
class DetectionTransform:
    """``p = sigmoid(scale · (σ − shift))``: ``scale`` per px, ``shift`` in px (the σ where p = 0.5)."""

    scale: float
    shift: float

    def apply(self, sigma: np.ndarray) -> np.ndarray:
        """(H, W) σ px → (H, W) float32 blur probability in [0, 1]."""
        from dmenet.logits import blur_probability_from_logit

        return blur_probability_from_logit(sigma, self.scale, self.shift)


def blur_map(sigma: np.ndarray, transform: DetectionTransform | None) -> np.ndarray:
    """(H, W) σ px → (H, W) float32 [0, 1] blur map: the fitted transform, or the SYNDOF label without one."""
    if transform is None:
        return units.sigma_to_label(sigma).astype(np.float32)
    return transform.apply(sigma)


def read_transform(model: str | Path) -> tuple[DetectionTransform | None, dict]:
    """The ``"detection"`` entry of a classifier's sidecar (``model``: its ``.safetensors``, ``.json`` or stem):
    (transform, the whole entry), or (None, {}) when there is none.

    Raises:
        ModelFileError: an entry without a positive ``scale`` and a numeric ``shift``.
    """
    side = classifier_files(model)[1]
    entry = read_json_object(side).get("detection")
    if entry is None:
        return None, {}
    try:
        t = DetectionTransform(float(entry["scale"]), float(entry["shift"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{side}: bad detection entry ({exc.__class__.__name__}: {exc})") from None
    if not t.scale > 0 or not np.isfinite(t.shift):
        raise ModelFileError(f"{side}: detection scale must be > 0 and shift finite, got {t}")
    return t, entry


def fit(sigmas: list[np.ndarray], masks: list[np.ndarray], max_scale: float | None = None):
    """:func:`dmenet.training.fit_dbd.fit_logit_transform` on σ maps (px) over :data:`SCALES` (those ≤
    ``max_scale``) × :data:`SHIFTS`; ``masks``: (H, W) bool, 1 = blurred, the sizes of the σ maps. Returns its
    ``DBDFit`` (``s_mae`` / ``s_fmax`` there are of sigmoid(σ), not of the label map).

    A steep transform puts every threshold i/255 of a sweep close to ``shift`` (within ± ln(254)/scale px), which
    costs Fmax; ``max_scale`` bounds that (experiments/galetto_rule_g9.md)."""
    from dmenet.training.fit_dbd import fit_logit_transform

    scales = tuple(s for s in SCALES if max_scale is None or s <= max_scale)
    if not scales:
        raise ValueError(f"max scale {max_scale} leaves no candidate (smallest {SCALES[0]})")
    return fit_logit_transform(sigmas, masks, scales, SHIFTS)


def write_fitted(source: str | Path, out: str | Path, transform: DetectionTransform, info: dict) -> Path:
    """Copy the classifier ``source`` to ``out`` (``.safetensors`` + ``.json``) with ``"detection"`` set to the
    transform plus ``info``, as one pair (:func:`dmenet.models.model_io.write_model_pair`: the weights' tensors and
    header as read from ``source``; a kill or error leaves both files or neither); refuses an existing ``out``, also
    one another process writes meanwhile (FileExistsError naming it, that file kept). Returns the new
    ``.safetensors`` path."""
    (src_weights, src_json), (weights, side) = classifier_files(source), classifier_files(out)
    for p in (weights, side):
        if p.exists():
            raise FileExistsError(f"{p}: exists; write the fitted classifier to a new name")
    meta = read_json_object(src_json)
    # the file copied, then the sidecar written: a kill between them left weights that blocked the same --out (§30 V2)
    return write_model_pair(out, read_tensors(src_weights), {**meta, "detection": {**asdict(transform), **info}},
                            read_weights_metadata(src_weights) or None, replace=False)
