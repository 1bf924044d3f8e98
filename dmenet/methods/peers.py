"""The classical peers (:mod:`dmenet.peers`) as registered estimators: a relative [0, 1] blur map, no σ, except
Zhuo & Sim's, which measures σ in px (:class:`ZhuoSimEstimator`)."""

from __future__ import annotations

from functools import partial
from typing import Callable

import numpy as np

from dmenet.methods.base import Estimate, Estimator, MethodOptions, parse_settings, setting_number
from syndof import units


FULL_SIZE_NOTE = "; runs at full size (max_side does not apply)"
"""What ``describe`` adds when ``max_side`` is set for a peer that always runs at the image's own size."""


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
        """One line naming the peer and its output (relative blur map, 1 = blurred; no σ)."""
        return f"{self.name}: {self._text} (classical peer, relative blur map, 1 = blurred; no σ)"


def _peer(name: str, text: str, options: MethodOptions, fn: Callable[[np.ndarray], np.ndarray] | None = None
          ) -> PeerEstimator:
    """The peer ``name`` (``fn``: its map function with ``max_side`` bound; None = :data:`dmenet.peers.PEERS`' entry,
    which runs at full size: ``describe`` says so when ``max_side`` is set)."""
    from dmenet.peers import PEERS

    if options.extra:
        raise ValueError(f"method {name} takes no method options, got {', '.join(k for k, _ in options.extra)}")
    if fn is None and options.max_side:
        text += FULL_SIZE_NOTE
    return PeerEstimator(name, fn or PEERS[name], text)


HIFST_MIN_SIDE = 15
"""Smallest ``max_side`` (px) HiFST takes. Found by trying (6 Dec 2026, the xu100 and DUT photos at 1:1 to 2:1):
below it some photos gave a constant map (all 1.0 at max_side ≤ 6, also at 8–14 for some shapes), from 15 none
did; 15 is also the second DCT patch, so a 2:1 photo's short side keeps the first (7 px)."""


def make_hifst(options: MethodOptions) -> PeerEstimator:
    """HiFST at a long side of at most ``options.max_side`` px (the map resized back; None = full size). A
    ``max_side`` below :data:`HIFST_MIN_SIDE` px is a ValueError naming it (it gave a constant map, silently, until
    6 Dec 2026)."""
    from dmenet.peers.hifst import hifst_blur_map

    if options.max_side is not None and options.max_side < HIFST_MIN_SIDE:
        raise ValueError(f"method hifst: max_side {options.max_side} px is too small to measure blur (a constant "
                         f"map); use max_side >= {HIFST_MIN_SIDE} px, or none (full size)")
    side = f"; long side ≤ {options.max_side} px, map resized back" if options.max_side else ""
    return _peer("hifst", "Golestaneh & Karam 2017 via PyPI blur_detector, 1 − sharpness" + side, options,
                 partial(hifst_blur_map, max_side=options.max_side))


class ZhuoSimEstimator(Estimator):
    """Zhuo & Sim 2011 (:func:`dmenet.peers.zhuo_sim.zhuo_sim_sigma`): σ in px at the input resolution, clipped at
    ``max_blur``, and the blur map σ / ``max_blur``. Its σ is scored as σ by the σ benchmarks (RTF, SYNDOF); until
    5 Dec 2026 it was registered as a relative map and RTF read σ / 3 as a label (σ = 7·map: 2.33× its σ)."""

    name = "zhuo_sim"
    gives_sigma = True
    gives_probability = True

    def __init__(self, max_blur: float, full_size_note: str = ""):
        self.max_blur = max_blur
        self._note = full_size_note

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        """σ (H, W) float32 px in [0, max_blur] and/or the blur map σ / max_blur of an (H, W, 3) RGB image (float
        [0, 1] or uint8; gray and RGBA too), at least 2×2 px; ValueError naming ``image`` otherwise."""
        from dmenet.peers.zhuo_sim import zhuo_sim_sigma

        if not (sigma or probability):
            return Estimate(sigma_max=self.max_blur)
        s = zhuo_sim_sigma(image, max_blur=self.max_blur)
        return Estimate(sigma=s if sigma else None,
                        blur_probability=(units.sigma_fraction(s, self.max_blur).astype(np.float32) if probability
                                          else None),
                        sigma_max=self.max_blur)

    def method_settings(self) -> dict[str, object]:
        """Settings to record: ``max_blur`` (σ clip in px)."""
        return {"max_blur": self.max_blur}

    def describe(self) -> str:
        """One line naming the method and its σ clip ``max_blur`` (px)."""
        return (f"zhuo_sim: Zhuo & Sim 2011 re-blur gradient ratio + matting, σ px clipped at max_blur "
                f"{self.max_blur:g} (blur map σ / {self.max_blur:g}; classical peer){self._note}")


def make_zhuo_sim(options: MethodOptions) -> ZhuoSimEstimator:
    """Zhuo & Sim with method option ``max_blur`` (px, > 0; default 3 as the authors' code, 3.275 as DMENet's RTF
    comparison)."""
    from dmenet.peers.zhuo_sim import MAX_BLUR

    settings = parse_settings(options.extra_dict(), {"max_blur": MAX_BLUR}, "zhuo_sim")
    max_blur = setting_number(settings, "max_blur", float, "zhuo_sim", "px, the largest σ", 0, low_open=True)
    note = FULL_SIZE_NOTE if options.max_side else ""
    return ZhuoSimEstimator(max_blur, note)


def make_lbp(options: MethodOptions) -> PeerEstimator:
    """The Yi & Eramian 2016 LBP peer: relative blur map in [0, 1] (1 = blurred), no σ."""
    return _peer("lbp", "Yi & Eramian 2016 thresholded LBP, 1 − sharpness", options)


def make_laplacian(options: MethodOptions) -> PeerEstimator:
    """The windowed Laplacian-std peer: relative blur map in [0, 1] (1 = blurred), no σ."""
    return _peer("laplacian", "windowed standard deviation of the Laplacian, 1 − normalised sharpness", options)
