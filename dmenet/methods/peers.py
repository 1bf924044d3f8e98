"""The classical peers (:mod:`dmenet.peers`) as registered estimators: a relative [0, 1] blur map, no σ."""

from __future__ import annotations

from functools import partial
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
        """Blur map (H, W) float32 in [0, 1] of an (H, W, 3) RGB image (float [0, 1] or uint8; gray and RGBA too),
        at least 2×2 px; ValueError naming ``image`` otherwise (:func:`dmenet.peers._util.check_image`)."""
        blur = np.clip(self._fn(image), 0.0, 1.0).astype(np.float32) if probability else None
        return Estimate(sigma=None, blur_probability=blur)

    def describe(self) -> str:
        return f"{self.name}: {self._text} (classical peer, relative blur map, 1 = blurred; no σ)"


def _peer(name: str, text: str, options: MethodOptions, fn: Callable[[np.ndarray], np.ndarray] | None = None
          ) -> PeerEstimator:
    """The peer ``name`` (``fn``: its map function with the options bound; None = :data:`dmenet.peers.PEERS`' entry,
    which runs at full size: ``describe`` says so when ``max_side`` is set)."""
    from dmenet.peers import PEERS

    if options.extra:
        raise ValueError(f"method {name} takes no method options, got {', '.join(k for k, _ in options.extra)}")
    if fn is None and options.max_side:
        text += "; runs at full size (max_side does not apply)"
    return PeerEstimator(name, fn or PEERS[name], text)


def make_hifst(options: MethodOptions) -> PeerEstimator:
    """HiFST at a long side of at most ``options.max_side`` px (the map resized back; None = full size)."""
    from dmenet.peers.hifst import hifst_blur_map

    side = f"; long side ≤ {options.max_side} px, map resized back" if options.max_side else ""
    return _peer("hifst", "Golestaneh & Karam 2017 via PyPI blur_detector, 1 − sharpness" + side, options,
                 partial(hifst_blur_map, max_side=options.max_side))


def make_zhuo_sim(options: MethodOptions) -> PeerEstimator:
    return _peer("zhuo_sim", "Zhuo & Sim 2011 re-blur gradient ratio + matting, σ / 3 px", options)


def make_lbp(options: MethodOptions) -> PeerEstimator:
    return _peer("lbp", "Yi & Eramian 2016 thresholded LBP, 1 − sharpness", options)


def make_laplacian(options: MethodOptions) -> PeerEstimator:
    return _peer("laplacian", "windowed variance of the Laplacian, 1 − normalised sharpness", options)
