"""DMENet as a registered estimator: B's σ map (px) and S's blur probability, through :mod:`dmenet.inference`."""

from __future__ import annotations

import numpy as np

from dmenet.methods.base import Estimate, Estimator, MethodOptions


class DMENetEstimator(Estimator):
    """A loaded DMENet model plus the inference options (flips, max side, tiles)."""

    name = "dmenet"
    gives_sigma = True
    gives_probability = True

    def __init__(self, model, options: MethodOptions):
        self.model = model
        self.options = options
        self._tile_options = {k: v for k, v in (("tile_size", options.tile_size),
                                                ("tile_overlap", options.tile_overlap)) if v is not None}

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        from dmenet.inference import estimate

        res = estimate(image, self.model, max_side=self.options.max_side, with_probability=probability,
                       with_sigma=sigma, **self._tile_options)
        return Estimate(sigma=res.sigma, blur_probability=res.blur_probability,
                        sigma_max=float(self.model.config.sigma_max))

    def describe(self) -> str:
        from dmenet.models.sigma_curve import describe_sigma_curve

        cfg = self.model.config
        where = self.options.model or "checkpoints/dmenet_lite.safetensors"
        return (f"dmenet {where}: {cfg.test_flips} test flips, σ curve {describe_sigma_curve(cfg.sigma_curve)}, "
                f"{cfg.describe_bn()}; detection = S(label) through sigmoid({cfg.dbd_logit_scale:g}·(z − "
                f"{cfg.dbd_logit_shift:g}))")


def make(options: MethodOptions) -> DMENetEstimator:
    """Load the model file (None = the shipped checkpoint) with ``options``' flips / raw-σ overrides applied."""
    from dmenet.inference import drop_sigma_curve, load_model, set_test_flips

    if options.extra:
        raise ValueError(f"method dmenet takes no method options, got {', '.join(k for k, _ in options.extra)}")
    model = load_model(options.model, device=options.device)
    set_test_flips(model, options.flips)
    drop_sigma_curve(model, options.raw_sigma)
    return DMENetEstimator(model, options)
