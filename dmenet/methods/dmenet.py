"""DMENet as a registered estimator: B's σ map (px) and S's blur probability, through a
:class:`dmenet.inference.Predictor` (the model and its recipe, with the options' overrides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmenet.methods.base import Estimate, Estimator, MethodOptions, max_side_note, parse_settings
from syndof.choices import parse_choice
from syndof import units


OPTIONS = {"precision": "fp32"}
"""dmenet's own method options and their defaults (``dmenet:precision=bf16``): ``precision``, B's compute precision
(:class:`dmenet.inference.Precision`, read there; ``fp32`` is its FP32). Methods that wrap dmenet
(``dmenet_refined``) pass these keys on."""


class DMENetEstimator(Estimator):
    """A Predictor (model + recipe) plus the run options (max side, tiles)."""

    name = "dmenet"
    gives_sigma = True
    gives_probability = True

    def __init__(self, predictor, options: MethodOptions):
        from dmenet.inference import MIN_WORK_SIDE

        self.predictor = predictor
        self.options = options
        self.min_short_side = MIN_WORK_SIDE  # max_side keeps the short side (the memory guard counts it)
        self._tile_options = {k: v for k, v in (("tile_size", options.tile_size),
                                                ("tile_overlap", options.tile_overlap)) if v is not None}

    @property
    def model(self):
        """The predictor's :class:`dmenet.models.dmenet.DMENet`."""
        return self.predictor.model

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        """DMENet's maps of one (H, W, 3) RGB image (float in [0, 1] or uint8): σ (H, W) float32 in px of the input
        (in [0, σ_max / scale] under ``max_side``), the blur probability (H, W) float32 in [0, 1], and ``sigma_max``
        in input px (σ_max of the model rescaled by ``1 / scale``, :func:`dmenet.inference.working_scale`: the factor
        the rounded working size got)."""
        res = self.predictor.estimate(image, sigma=sigma, probability=probability, max_side=self.options.max_side,
                                      **self._tile_options)
        from dmenet.inference import working_scale

        scale = working_scale(np.shape(image), self.options.max_side)  # σ in input px: so is its top
        return Estimate(sigma=res.sigma, blur_probability=res.blur_probability,
                        sigma_max=float(units.rescale_sigma(float(self.model.config.sigma_max), 1.0 / scale)))

    def method_settings(self) -> dict[str, object]:
        """``precision``, B's compute precision."""
        return {"precision": self.predictor.precision.value}

    def extra_bytes_per_pixel(self) -> int:
        """A feature head's planes (:attr:`dmenet.inference.Predictor.feature_bytes_per_pixel`); 0 for the others."""
        return self.predictor.feature_bytes_per_pixel

    def describe(self) -> str:
        """Two or three lines: model file, σ path (with precision and ``max_side`` px note), detection path, and any
        departure from the conditions the recipe was fitted under."""
        from dmenet.inference import MIN_WORK_SIDE, Precision

        where = self.options.model or "checkpoints/dmenet_lite.safetensors"
        sigma_line, detection_line = str(self.predictor.recipe).split("\n")
        precision = "" if self.predictor.precision is Precision.FP32 else f", B in {self.predictor.precision}"
        departures = self.predictor.recipe.contradictions()  # e.g. a σ curve fitted at other flips than it runs
        fits = f"\nnot as fitted: {'; '.join(departures)}" if departures else ""
        side = max_side_note(self.options.max_side, MIN_WORK_SIDE)
        return f"dmenet {where}: {sigma_line}{precision}{side}\n{detection_line}{fits}"



def make(options: MethodOptions) -> DMENetEstimator:
    """Load the model file (None = the shipped checkpoint) as a Predictor with ``options``' flips / raw-σ
    overrides (copies of its recipe; a contradiction with a fitted value goes to ``options.on_departure``, or is a
    warning). The one method option, ``precision`` (``fp32`` default, ``bf16``), is B's compute precision
    (:data:`dmenet.inference.PRECISIONS`)."""
    from dmenet.inference import DEFAULT_CHECKPOINT, Precision, load_predictor

    settings = parse_settings(options.extra_dict(), OPTIONS, "dmenet")
    precision = parse_choice(Precision, str(settings["precision"]), "dmenet: precision")  # before the model loads
    predictor = load_predictor(options.model, device=options.device, flips=options.flips,
                               raw_sigma=options.raw_sigma, report=options.on_departure, precision=precision)
    estimator = DMENetEstimator(predictor, options)
    estimator.model_file = Path(options.model) if options.model is not None else DEFAULT_CHECKPOINT
    return estimator
