"""The detection path's per-pixel steps after B: S's logit and the logit transform to a blur probability.

:func:`calibration_logit` is the calibration network S's logit (no unit, 1 = blurred) of a label map, through the
model's cached lookup table of S when S is in eval mode, :func:`direct_calibration_logit` S itself;
:func:`blur_probability_from_logit` is the recipe's transform ``sigmoid(scale · (logit − shift))`` to a probability
in [0, 1]. :class:`dmenet.inference.Predictor` chains them after B's passes.
"""

from __future__ import annotations

import numpy as np
import torch

from dmenet.models.calibration_table import cached_calibration_table


def direct_calibration_logit(model, label: np.ndarray) -> np.ndarray:
    """S itself on a (H, W) label map in [0, 1] (or a 1-D array of labels): logit (no unit), 1 = blurred;
    float32 of the same shape."""
    device = next(model.parameters()).device
    label = np.ascontiguousarray(label, dtype=np.float32)
    with torch.inference_mode():
        t = torch.from_numpy(label if label.ndim == 2 else label.reshape(1, -1))[None, None].to(device)
        logit = model.calibration(t)[0, 0].float().cpu().numpy()
    return np.ascontiguousarray(logit.reshape(label.shape), dtype=np.float32)


def calibration_logit(model, label: np.ndarray) -> np.ndarray:
    """S's logit (1 = blurred) on a (H, W) label map in [0, 1]; (H, W) float32.

    S is per-pixel (1×1 convolutions only), so with S in eval mode this reads the model's cached lookup table of S
    (:func:`dmenet.models.calibration_table.cached_calibration_table`: the same logits up to S's own float32
    rounding, a few ms instead of S's full-resolution pass); labels in the table's kink cells or outside [0, 1] go
    through S itself. S in train mode runs directly (:func:`direct_calibration_logit`).
    """
    if model.calibration.training:
        return direct_calibration_logit(model, label)
    return cached_calibration_table(model)(label, exact=lambda x: direct_calibration_logit(model, x))


def blur_probability_from_logit(logit: np.ndarray, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """``sigmoid(scale · (logit − shift))`` as float32 in [0, 1], the same shape as ``logit`` (any shape; logits have
    no unit, or σ px for Galetto's transform), the recipe's detection transform."""
    z = np.asarray(logit, dtype=np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * scale * (z - shift)))).astype(np.float32)
