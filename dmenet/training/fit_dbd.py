"""Fit the DBD logit transform of a trained model on labelled training images (an inference option, no weights change).

Why: S is a per-pixel 1×1 network on B's output, so with BCE it learns the posterior P(blurred | B's output) — a
soft curve wherever B's σ estimates of the two classes overlap. The DBD benchmarks score a continuous map against a
*binary* mask with MAE (minimised by a hard decision, not by a calibrated probability) next to Fmax (a threshold
sweep, which needs a map that still ranks pixels). This tool chooses ``sigmoid(scale · (logit − shift))`` of S's
logit on a fixed grid, by the mean over the labelled *training* images of ``MAE − Fmax`` (both DBD headline metrics,
same protocol as :mod:`dmenet.eval.dbd` at native resolution), and stores ``scale`` and ``shift`` in the recipe's
detection path (``Recipe.detection``, with the conditions they were fitted under). The grid bounds the steepness
(scale ≤ 8), so the map keeps a transition band for threshold sweeps. Test images must not be among the fitting
images.

Usage: ``python -m dmenet.calibrate dbd --model RUN/model.safetensors --labelled DIR --gt-polarity white-sharp
--out OUT.safetensors`` (:mod:`dmenet.calibrate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from dmenet.eval import metrics
from dmenet.logits import blur_probability_from_logit
from syndof import io as sio

OBJECTIVE = "mean MAE - mean Fmax over the fitting images (native resolution)"
SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
"""Candidate steepness values (1 = S's own probability)."""
SHIFTS = tuple(float(x) for x in np.round(np.arange(-3.0, 3.0001, 0.25), 2))
"""Candidate logit shifts (0 = S's own decision point)."""


@dataclass
class DBDFit:
    """Result of :func:`fit_logit_transform`: the chosen transform, its training-image scores, and S's own."""

    scale: float
    shift: float
    mae: float
    fmax: float
    s_mae: float
    s_fmax: float
    n_images: int
    grid: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The fit as a JSON-ready dict: ``scale`` and ``shift`` (logit units), training MAE / Fmax in [0, 1] of the
        transform and of S's probability, image count and the grid."""
        return {"scale": self.scale, "shift": self.shift, "train_mae": round(self.mae, 6),
                "train_fmax": round(self.fmax, 6), "train_mae_s_probability": round(self.s_mae, 6),
                "train_fmax_s_probability": round(self.s_fmax, 6), "n_images": self.n_images, **self.grid}


def holds_both_classes(mask: np.ndarray) -> bool:
    """The (H, W) binary mask (nonzero = blurred) has blurred and sharp pixels: an image with an Fmax (an all-sharp
    photo has none)."""
    return 0 < np.count_nonzero(mask) < mask.size


def _scores(logits: list[np.ndarray], masks: list[np.ndarray], scale: float, shift: float,
            two_class: list[bool] | None = None) -> tuple[float, float]:
    """Mean MAE over the images and mean Fmax over those whose mask holds both classes (an all-sharp or all-blurred
    mask has no Fmax: its MAE, the mean false probability, is what it scores) for one transform. ``two_class``:
    :func:`holds_both_classes` of each mask, when the caller already has it (the grid search asks once)."""
    return map_scores((blur_probability_from_logit(z, scale, shift) for z in logits), masks, two_class)


def map_scores(maps: Iterable[np.ndarray], masks: list[np.ndarray],
               two_class: list[bool] | None = None) -> tuple[float, float]:
    """Mean MAE over the [0, 1] blur maps and mean Fmax over those whose mask holds both classes (the objective's two
    terms for any map, e.g. a label map to compare a fit with). ``maps`` may be a generator: one map is held at a
    time. Each map (H, W) float in [0, 1] (1 = blurred), its mask (H, W) bool (1 = blurred); both scores fractions
    in [0, 1]."""
    if two_class is None:
        two_class = [holds_both_classes(gt) for gt in masks]
    maes, fmaxes = [], []
    for prob, gt, both in zip(maps, masks, two_class):
        maes.append(metrics.mae(prob, gt))
        if both:
            fmaxes.append(float(np.max(metrics.f_curve(prob, gt)[2])))
    return float(np.mean(maes)), float(np.mean(fmaxes))


def fit_logit_transform(
    logits: list[np.ndarray],
    masks: list[np.ndarray],
    scales: tuple[float, ...] = SCALES,
    shifts: tuple[float, ...] = SHIFTS,
) -> DBDFit:
    """Grid search of ``(scale, shift)`` minimising mean MAE − mean Fmax (MAE over every image, Fmax over the
    images whose mask holds both classes: all-sharp photos in the pool make false blur on them count).

    Args:
        logits: per image (H, W) detection logits (S's or the head's; 1 = blurred).
        masks: per image (H, W) binary GT, 1 = blurred (same sizes as ``logits``); at least one with both classes.
        scales, shifts: the grid; ties keep the first (smallest scale, then smallest shift).

    Raises:
        ValueError: no images, or a logit/mask size mismatch.
    """
    if not logits or len(logits) != len(masks):
        raise ValueError(f"need as many masks as logit maps (≥ 1), got {len(logits)} and {len(masks)}")
    for z, gt in zip(logits, masks):
        if z.shape != gt.shape:
            raise ValueError(f"logit map {z.shape} and mask {gt.shape} differ in size")
    two_class = [holds_both_classes(gt) for gt in masks]
    n_fmax = sum(two_class)
    if not n_fmax:
        raise ValueError("no mask holds both blurred and sharp pixels: Fmax is undefined on every image")
    best = None
    for scale in scales:
        for shift in shifts:
            mae, fmax = _scores(logits, masks, scale, shift, two_class)
            if best is None or mae - fmax < best[0] - 1e-12:
                best = (mae - fmax, scale, shift, mae, fmax)
    s_mae, s_fmax = _scores(logits, masks, 1.0, 0.0, two_class)
    _, scale, shift, mae, fmax = best
    return DBDFit(scale=scale, shift=shift, mae=mae, fmax=fmax, s_mae=s_mae, s_fmax=s_fmax, n_images=len(logits),
                  grid={"scales": list(scales), "shifts": [shifts[0], shifts[-1], len(shifts)],
                        "objective": OBJECTIVE if len(logits) == n_fmax else
                        f"{OBJECTIVE}; Fmax over the {n_fmax} with both classes"})


def labelled_logits(predictor, root: Path, white_is_blurred: bool, skipped: list[str] | None = None
                    ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Detection logits (S's or the two-label head's: the detection path of ``predictor``, a
    :class:`dmenet.inference.Predictor`) and GT masks (1 = blurred) of every image of a labelled ``image/`` +
    ``gt/`` folder: (logits, each (H, W) float32, unbounded; masks, each (H, W) bool; image file names).

    Unreadable images are skipped with a warning (and their ``PATH: reason`` appended to ``skipped`` when given); a
    mask whose size differs from its image raises (:class:`dmenet.data.labelled.MaskSizeError`, a ValueError).
    """
    from dmenet.data.labelled import LabelledDataset

    dataset = LabelledDataset(root, white_is_blurred=white_is_blurred)
    logits, masks, names = [], [], []
    for sample in dataset.readable(skipped):
        logits.append(predictor.detection_logit(predictor.detection_labels(sample["image"])))
        masks.append(sample["mask"] > 0.5)
        names.append(Path(sample["path"]).name)
    if not logits:
        raise sio.InputError(root, "no readable labelled image")
    return logits, masks, names
