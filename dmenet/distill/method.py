"""Distill-DBDGAN networks as registered methods (``distill_student``, ``distill_teacher``): blur probability only.

Recipe: the photo is shrunk so its long side is at most ``work_long_side`` px (the sidecar's value, or
``DEFAULT_WORK_LONG_SIDE`` = 320 when it has none, as for the shipped student), padded to a multiple of 32, and the
map is resized back. ``--max-side`` is a cap, as for every method (:class:`~dmenet.methods.base.MethodOptions`):
the network runs at min(``work_long_side``, ``max_side``), so ``predict``'s default working size for big photos
(1024) leaves the recipe's 320 unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dmenet.methods.base import Estimate, Estimator, MethodOptions
from syndof.images import as_rgb_float
from syndof.resize import long_side_scale

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STUDENT = REPO_ROOT / "checkpoints" / "distill_student.safetensors"
DEFAULT_WORK_LONG_SIDE = 320
MIN_WORK_SIDE = 32
"""Smallest ``max_side`` (px): the networks pad their input to a multiple of 32 (the encoder's stride), so below
32 px they see mostly padding. Tried on the xu100 and DUT photos at 1:1 to 2:1 (6 Dec 2026): the student's map was
all 1.0 at max_side 1–2 and nearly constant (std < 1e-3) at 4 on 16 of 18, at 6 on 11, at 8 on 1; from 12 px the
maps varied, on inputs padded to 32."""


class DistillEstimator(Estimator):
    gives_sigma = False
    gives_probability = True

    def __init__(self, name: str, model, info: dict, path: Path, work_long_side: int | None):
        from dmenet.distill.infer import MIN_SHORT_SIDE
        from dmenet.distill.model_io import ModelKind

        self.name, self.model, self.info, self.path = name, model, info, path
        self.min_short_side = MIN_SHORT_SIDE  # its working size keeps the short side (the memory guard counts it)
        self.model_file = path
        self.work_long_side = work_long_side
        self.student = ModelKind(info["kind"]) is ModelKind.STUDENT  # else the teacher

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        """Blur probability (H, W) float32 in [0, 1] of an (H, W, 3) RGB image (float [0, 1] or uint8; gray and RGBA
        too), at least :data:`~dmenet.distill.infer.MIN_IMAGE_SIDE` (8) px a side; ValueError naming ``image``
        otherwise (:func:`syndof.images.as_rgb_float`): below it the map was all 1.0 whatever the image."""
        from dmenet.distill.infer import MIN_IMAGE_SIDE, blur_probability

        image = as_rgb_float(image, "image", min_side=MIN_IMAGE_SIDE)
        if not probability:
            return Estimate()
        return Estimate(blur_probability=blur_probability(
            self.model, image, max_side=self.work_long_side, logit_scale=float(self.info.get("logit_scale", 1.0)),
            logit_shift=float(self.info.get("logit_shift", 0.0))))

    def describe(self) -> str:
        """One line: the network, its step, working size (px), and the logit → probability calibration ``σ(scale·(z −
        shift))``."""
        cfg = self.info["config"]
        arch = (f"EfficientNet-{cfg['encoder']} U-Net" if self.student
                else f"{cfg['backbone']} teacher")
        from dmenet.distill.infer import MIN_SHORT_SIDE

        side = (f"long side ≤ {self.work_long_side} px, short side kept ≥ {MIN_SHORT_SIDE} px" if self.work_long_side
                else "native size")
        shift = float(self.info.get('logit_shift', 0.0))
        cal = f"σ({self.info.get('logit_scale', 1.0):g}·(z {'−' if shift >= 0 else '+'} {abs(shift):g}))"
        return (f"{self.name} {self.path}: {arch}, step {self.info.get('step', '?')}; run at {side}, 1 pass, no flips; "
                f"probability {cal}")


def _make(name: str, options: MethodOptions, default: Path | None) -> DistillEstimator:
    from dmenet.distill.model_io import load_distill_model

    if options.extra:
        raise ValueError(f"method {name} takes no method options, got {', '.join(k for k, _ in options.extra)}")
    if options.flips not in (None, 1):
        raise ValueError(f"method {name} runs one pass (flips 1), got flips={options.flips}")
    long_side_scale((1, 1), options.max_side)  # every method's check of max_side (ValueError), before loading
    if options.max_side is not None and options.max_side < MIN_WORK_SIDE:
        raise ValueError(f"method {name}: max_side {options.max_side} px is too small to measure blur (the network "
                         f"pads its input to {MIN_WORK_SIDE} px); use max_side >= {MIN_WORK_SIDE} px, or none")
    if options.model is None and default is None:
        raise ValueError(f"method {name} has no shipped model; pass --model")
    path = Path(options.model) if options.model is not None else default
    model, info = load_distill_model(path, options.device)
    model = model.to(memory_format=torch.channels_last)  # ~30 % faster depthwise convs on CPU
    side = info.get("work_long_side", DEFAULT_WORK_LONG_SIDE)
    if options.max_side is not None:  # a cap, never a larger working size than the recipe's
        side = min(side, options.max_side) if side else options.max_side
    return DistillEstimator(name, model, info, path, side)


def make_student(options: MethodOptions) -> DistillEstimator:
    """The shipped student (``checkpoints/distill_student.safetensors``) or ``options.model``."""
    return _make("distill_student", options, DEFAULT_STUDENT)


def make_teacher(options: MethodOptions) -> DistillEstimator:
    """A trained teacher model file (``options.model``; none is shipped)."""
    return _make("distill_teacher", options, None)
