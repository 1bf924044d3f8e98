"""The classical peers (:mod:`dmenet.peers`) as registered estimators: a relative [0, 1] blur map, no σ."""

from __future__ import annotations

from typing import Callable

import numpy as np

from dmenet.methods.base import Estimate, Estimator, MethodOptions


class PeerEstimator(Estimator):
    """A ``f(image) -> blur map`` peer (input (H, W, 3) float32 RGB [0, 1], output (H, W) [0, 1], 1 = blurred)."""

    gives_sigma = False
    gives_probability = True

    def __init__(self, name: str, fn: Callable[[np.ndarray], np.ndarray], text: str):
        self.name = name
        self._fn = fn
        self._text = text

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        blur = np.clip(self._fn(image), 0.0, 1.0).astype(np.float32) if probability else None
        return Estimate(sigma=None, blur_probability=blur)

    def describe(self) -> str:
        return f"{self.name}: {self._text} (classical peer, relative blur map, 1 = blurred; no σ)"


def _peer(name: str, text: str, options: MethodOptions) -> PeerEstimator:
    from dmenet.peers import PEERS

    if options.extra:
        raise ValueError(f"method {name} takes no method options, got {', '.join(k for k, _ in options.extra)}")
    return PeerEstimator(name, PEERS[name], text)


def make_hifst(options: MethodOptions) -> PeerEstimator:
    return _peer("hifst", "Golestaneh & Karam 2017 via PyPI blur_detector, 1 − sharpness", options)


def make_zhuo_sim(options: MethodOptions) -> PeerEstimator:
    return _peer("zhuo_sim", "Zhuo & Sim 2011 re-blur gradient ratio + matting, σ / 3 px", options)


def make_lbp(options: MethodOptions) -> PeerEstimator:
    return _peer("lbp", "Yi & Eramian 2016 thresholded LBP, 1 − sharpness", options)


def make_laplacian(options: MethodOptions) -> PeerEstimator:
    return _peer("laplacian", "windowed variance of the Laplacian, 1 − normalised sharpness", options)
