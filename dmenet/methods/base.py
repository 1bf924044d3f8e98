"""The estimator interface every registered method implements (:mod:`dmenet.methods.registry`)."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


MAP_OPTIONS = ("flips", "raw_sigma", "max_side", "tile_size", "tile_overlap")
"""The :class:`MethodOptions` fields that can change a method's maps (``model`` aside); each method's registry row
names those it uses (:attr:`dmenet.methods.registry.MethodSpec.shared_options`)."""


@dataclass(frozen=True)
class MethodOptions:
    """Settings a user passes to any method (the shared CLI flags); a method ignores what does not apply to it and
    says so in :meth:`Estimator.describe` only when the option changes its output.

    Attributes:
        model: model file (``.safetensors`` + ``.json`` sidecar) of a learned method; None = its shipped default.
        device: torch device string ("cpu", "cuda", "cuda:1").
        flips: test-time symmetries to average (1, 2, 4 or 8); None = the model's own recipe.
        raw_sigma: ignore a fitted σ recalibration curve (σ straight from the network).
        max_side: run at this long side (px) when the image is larger; σ is rescaled to input px.
        tile_size: tile side (px) for large images; None = the method's default.
        tile_overlap: tile overlap (px); None = the method's default.
        extra: method-specific settings as (key, value) pairs (e.g. ``("stride", 8)``); unknown keys are an error of
            the method's factory.
        on_departure: where a learned method reports that ``flips`` / ``raw_sigma`` contradict what a fitted value of
            its recipe was fitted under (e.g. a σ curve fitted at 8 flips, used at 1), as one line of text. None =
            a :class:`UserWarning`. A tool whose own default departs from the recipe on purpose passes a callable
            that prints a note.
    """

    model: str | Path | None = None
    device: str = "cpu"
    flips: int | None = None
    raw_sigma: bool = False
    max_side: int | None = None
    tile_size: int | None = None
    tile_overlap: int | None = None
    extra: tuple[tuple[str, object], ...] = ()
    on_departure: Callable[[str], None] | None = None

    def extra_dict(self) -> dict[str, object]:
        """The method-specific options ``extra`` as a dict."""
        return dict(self.extra)


def parse_settings(extra: dict, allowed: dict, method: str) -> dict:
    """Merge ``extra`` method options (``MethodOptions.extra``) into ``allowed`` defaults; unknown keys are a
    ValueError naming them and the valid ones."""
    unknown = sorted(set(extra) - set(allowed))
    if unknown:
        raise ValueError(f"method {method} has no option(s) {', '.join(unknown)}; valid: {', '.join(allowed)}")
    return {**allowed, **extra}


def setting_number(settings: dict, key: str, kind: type, method: str, what: str, low: float,
                   high: float | None = None, low_open: bool = False):
    """``settings[key]`` (a method option, :func:`parse_settings`) as ``kind`` (int or float) in [low, high]
    (``low_open``: above ``low``; ``high`` None: no upper bound), or a ValueError naming the method, the option and
    ``what`` it is (e.g. ``"px, the largest σ"``). NaN, infinities, booleans and non-integral values for an int fail."""
    value = settings[key]
    try:
        number = kind(value)
        ok = (not isinstance(value, bool) and math.isfinite(number)
              and (low < number if low_open else low <= number) and (high is None or number <= high))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if ok and kind is int and isinstance(value, float) and not value.is_integer():
        ok = False
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        span = f"{low:g}…{high:g}" if high is not None else bound
        raise ValueError(f"{method}: {key} must be {'an integer' if kind is int else 'a number'} {span} ({what}), "
                         f"got {value!r}")
    return number


def max_side_note(max_side: int | None, min_short_side: int | None = None) -> str:
    """What ``describe`` adds for a method that runs at ``max_side`` (empty for None): the maps are made on the image
    shrunk to that long side, resized back, σ rescaled to input px (reports must say it: it changes the scores);
    ``min_short_side``: the method never shrinks the short side below this many px (a long thin strip then runs
    longer than ``max_side``; ``syndof.resize.long_side_scale``), None: no such floor. evaluate records this text
    in metrics.json ``source``, which ``dmenet.eval.paired`` does not compare (only the protocol tags)."""
    if not max_side:
        return ""
    floor = f", short side kept ≥ {min_short_side} px" if min_short_side else ""
    return f"; run at long side ≤ {max_side} px when larger{floor} (maps resized back, σ in input px)"


@dataclass(frozen=True)
class Estimate:
    """What a method produced for one image, both maps at the input resolution.

    Attributes:
        sigma: (H, W) float32 Gaussian σ in px, or None (method without absolute σ, or not asked for).
        blur_probability: (H, W) float32 in [0, 1], 1 = blurred, or None (not asked for). Classical peers give a
            relative blur map here.
        sigma_max: the largest σ (px of the input image, as ``sigma``) the method can output (for colour scales):
            under ``max_side`` its top at the working size / scale. None when it has none.
    """

    sigma: np.ndarray | None = None
    blur_probability: np.ndarray | None = None
    sigma_max: float | None = None


class Estimator(abc.ABC):
    """A defocus method behind the registry.

    Class attributes:
        name: registry name.
        gives_sigma: ``estimate(sigma=True)`` returns σ in px.
        gives_probability: ``estimate(probability=True)`` returns a blur probability / blur map.
        model_file: the model file a learned method read (its weights; the sidecar beside it), None for the others.
        min_short_side: px its ``max_side`` never shrinks the short side below (a long thin strip then runs longer
            than ``max_side``: :func:`syndof.resize.long_side_scale`), None: no such floor. The memory guard counts
            the working size with it (:func:`dmenet.memory.estimate_memory`).

    Which of the :data:`MAP_OPTIONS` a method reads is its registry row's
    (:attr:`dmenet.methods.registry.MethodSpec.shared_options`), known without building it.
    """

    name: str = ""
    gives_sigma: bool = False
    gives_probability: bool = True
    model_file: Path | None = None
    min_short_side: int | None = None

    @abc.abstractmethod
    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        """Maps for one (H, W, 3) float32 RGB image in [0, 1]. Only what is asked for (and available) is computed;
        the other field is None."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A few lines: which weights, which recipe (what happens to the image), and what runs otherwise than fitted."""

    def method_settings(self) -> dict[str, object]:
        """The method's own options as it resolved them (defaults included; JSON values): those that decide its
        maps, so that ``galetto`` and ``galetto:stride=8`` (the default), or options in another order, compare equal
        in a settings record. Empty for a method without options."""
        return {}

    def extra_bytes_per_pixel(self) -> int:
        """Peak memory this method holds per pixel of its working image beyond ``predict``'s allowance
        (:data:`dmenet.memory.WORK_BYTES_PER_PIXEL`), for the memory guard: 0 unless a method says otherwise."""
        return 0

    def input_bytes_per_pixel(self) -> int:
        """Peak memory this method holds per pixel of the *input* image (which ``max_side`` does not shrink) beyond
        ``predict``'s allowance for the image and its maps (:data:`dmenet.memory.IO_BYTES_PER_PIXEL`), for the memory
        guard: a refinement guided by the full-size image. 0 unless a method says otherwise."""
        return 0

    def sigma_map(self, image: np.ndarray) -> np.ndarray:
        """σ in px of the input, (H, W) float32 ≥ 0 (up to the estimate's ``sigma_max``) for an (H, W, 3) RGB image
        in [0, 1]. Raises ValueError for a method without absolute σ."""
        if not self.gives_sigma:
            raise ValueError(f"method {self.name!r} gives no σ map (a relative blur map only)")
        result = self.estimate(image, sigma=True, probability=False)
        assert result.sigma is not None
        return result.sigma

    def blur_map(self, image: np.ndarray) -> np.ndarray:
        """Blur probability / relative blur map in [0, 1] (1 = blurred), (H, W) float32."""
        if not self.gives_probability:
            raise ValueError(f"method {self.name!r} gives no blur probability")
        result = self.estimate(image, sigma=False, probability=True)
        assert result.blur_probability is not None
        return result.blur_probability
