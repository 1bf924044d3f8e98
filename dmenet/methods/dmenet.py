"""DMENet as a registered estimator: B's σ map (px) and S's blur probability, through a
:class:`dmenet.inference.Predictor` (the model and its recipe, with the options' overrides)."""

from __future__ import annotations

import numpy as np

from dmenet.methods.base import Estimate, Estimator, MethodOptions


class DMENetEstimator(Estimator):
    """A Predictor (model + recipe) plus the run options (max side, tiles)."""

    name = "dmenet"
    gives_sigma = True
    gives_probability = True

    def __init__(self, predictor, options: MethodOptions):
        self.predictor = predictor
        self.options = options
        self._tile_options = {k: v for k, v in (("tile_size", options.tile_size),
                                                ("tile_overlap", options.tile_overlap)) if v is not None}

    @property
    def model(self):
        return self.predictor.model

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        res = self.predictor.estimate(image, sigma=sigma, probability=probability, max_side=self.options.max_side,
                                      **self._tile_options)
        return Estimate(sigma=res.sigma, blur_probability=res.blur_probability,
                        sigma_max=float(self.model.config.sigma_max))

    def describe(self) -> str:
        where = self.options.model or "checkpoints/dmenet_lite.safetensors"
        sigma_line, detection_line = str(self.predictor.recipe).split("\n")
        return f"dmenet {where}: {sigma_line}\n{detection_line}"


def make(options: MethodOptions) -> DMENetEstimator:
    """Load the model file (None = the shipped checkpoint) as a Predictor with ``options``' flips / raw-σ
    overrides (copies of its recipe; a contradiction with a fitted value goes to ``options.on_departure``, or is a
    warning)."""
    from dmenet.inference import load_predictor

    if options.extra:
        raise ValueError(f"method dmenet takes no method options, got {', '.join(k for k, _ in options.extra)}")
    predictor = load_predictor(options.model, device=options.device, flips=options.flips,
                               raw_sigma=options.raw_sigma, report=options.on_departure)
    return DMENetEstimator(predictor, options)
