"""Registered estimators: ``galetto`` (the patch classifier's σ map, refined) and ``refine`` wrappers that apply the
same edge-aware refinement to any registered method's maps (:func:`refined`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmenet.galetto import BATCH, PATCH
from dmenet.galetto.blurmap import Grid, Readout
from dmenet.galetto.refine import Refine
from dmenet.methods.base import (Estimate, Estimator, MethodOptions, max_side_note, parse_settings,
                                 setting_number)
from syndof.choices import Choice, choices, parse_choice
from syndof.images import as_rgb_float
from syndof.resize import shrunk_scale
from syndof import units

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "checkpoints" / "galetto_mbv2"
SIGMA_MAX = 19.0
"""The classifier's largest σ, px at the size it runs at (its last class)."""
# stride, readout, refine, denoise: chosen on synthetic validation renders by σ label MAE
# (experiments/galetto_selection_g5.md and the earlier rounds beside it); refine_blur: the blur map's refinement,
# chosen on CUHK training images by Fmax (experiments/galetto_rule_g7.md); blur: "fitted" = the model file's
# detection transform when it has one (experiments/galetto_rule_g8.md), "label" = clip(σ / 7 px, 0, 1); grid:
# "cover" (this project's window grid) or "matlab" (get_blurmap.m's border windows, docs/method.md §15)
DEFAULTS = {"stride": 8, "readout": "argmax", "refine": "none", "refine_blur": "code", "denoise": 0.0, "batch": BATCH,
            "blur": "fitted", "grid": "cover"}


class BlurSource(Choice):
    """What the blur probability is made of: the model file's fitted detection transform of σ (when the file has
    one; otherwise the label), or the SYNDOF label clip(σ / 7 px, 0, 1)."""

    FITTED = "fitted"
    LABEL = "label"


BLURS = choices(BlurSource)
_CHOICES = {"readout": Readout, "refine": Refine, "refine_blur": Refine, "blur": BlurSource, "grid": Grid}
"""The settings that name a member of a closed set; :func:`make` parses them once."""


class GalettoEstimator(Estimator):
    """Sliding-window σ map of the blur-level classifier (:func:`dmenet.galetto.blurmap.sigma_map`) + refinement."""

    name = "galetto"
    gives_sigma = True
    gives_probability = True

    def __init__(self, model, options: MethodOptions, settings: dict, transform=None, model_file: Path | None = None):
        self.model = model
        self.model_file = Path(model_file) if model_file is not None else None  # the classifier file it was read from
        self.options = options
        self.settings = settings
        self.transform = transform if settings["blur"] is BlurSource.FITTED else None  # DetectionTransform | None

    def method_settings(self) -> dict[str, object]:
        """:data:`DEFAULTS`' keys as resolved, but ``batch`` (how many windows go through the classifier at once,
        not what it gives)."""
        return {k: v.value if isinstance(v, Choice) else v for k, v in self.settings.items() if k != "batch"}

    def extra_bytes_per_pixel(self) -> int:
        """The classifier's windows of the working image, all held at once, twice (the unfold of every 32×32
        window in float32, :func:`dmenet.galetto.blurmap.windows`, and the coverage count of
        :func:`~dmenet.galetto.blurmap.spread`): 2 · 4 · 32² / stride² bytes a working pixel, 128 at the default
        stride 8 and 8 KiB at stride 1. (The refinement runs on the input image: :meth:`input_bytes_per_pixel`.)"""
        return 2 * 4 * PATCH * PATCH // self.settings["stride"] ** 2

    def input_bytes_per_pixel(self) -> int:
        """The refinements of σ and of the blur map's σ, one after the other on the input image
        (:data:`~dmenet.galetto.refine.REFINE_BYTES_PER_PIXEL` of the larger)."""
        from dmenet.galetto.refine import REFINE_BYTES_PER_PIXEL

        return max(REFINE_BYTES_PER_PIXEL[self.settings[key]] for key in ("refine", "refine_blur"))

    def raw_sigma(self, image: np.ndarray) -> np.ndarray:
        """Unrefined σ map, px, (H, W) float32 of an (H, W, 3) RGB image (float [0, 1] or uint8, ≥ 32 px a side:
        :func:`dmenet.galetto.blurmap.sigma_map`)."""
        from dmenet.galetto.blurmap import sigma_map

        s = self.settings
        return sigma_map(self.model, image, stride=s["stride"], mode=s["readout"], denoise=s["denoise"],
                         max_side=self.options.max_side, batch=s["batch"], grid=s["grid"])

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        """Maps of an (H, W, 3) RGB image (float [0, 1] or uint8; gray and RGBA too), at least 32 px (the window)
        a side: σ (H, W) float32 in [0, :meth:`sigma_top`] px and the blur probability (H, W) float32 in [0, 1].
        ValueError naming ``image`` for anything else (:func:`syndof.images.as_rgb_float`)."""
        image = as_rgb_float(image, "image", min_side=PATCH)
        top = self.sigma_top(image.shape)
        if not (sigma or probability):
            return Estimate(sigma_max=top)
        raw = self.raw_sigma(image)
        mode, blur_mode = self.settings["refine"], self.settings["refine_blur"]
        s = self._refined(image, raw, mode, top) if sigma else None
        p = None
        if probability:
            p = self.blur_from_sigma(s if s is not None and blur_mode is mode
                                     else self._refined(image, raw, blur_mode, top))
        return Estimate(sigma=s, blur_probability=p, sigma_max=top)

    def sigma_top(self, shape: tuple[int, ...]) -> float:
        """The largest σ (px) for an (H, W, …) input: the classifier's 19 px at its working size, so 19 / scale px
        at the input size when ``max_side`` shrinks the image by ``scale`` (resizing by s scales σ by s): the σ map's
        own rescale back to input px (:func:`syndof.units.rescale_sigma` by 1 / scale; scale: the factor the rounded
        working size got, :func:`syndof.resize.shrunk_scale` as in :func:`dmenet.galetto.blurmap.sigma_map`)."""
        return units.rescale_sigma(SIGMA_MAX, 1.0 / shrunk_scale(shape, self.options.max_side))

    @staticmethod
    def _refined(image: np.ndarray, raw: np.ndarray, mode: Refine, top: float = SIGMA_MAX) -> np.ndarray:
        """``raw`` σ (px) refined by the image (``mode``), clipped to [0, ``top``] px."""
        from dmenet.galetto.refine import refine_map

        return np.clip(refine_map(image, raw, mode), 0.0, top)

    def blur_sigma(self, image: np.ndarray) -> np.ndarray:
        """The σ map (px) the blur map is made from: refined by ``refine_blur`` (image as in :meth:`estimate`: (H, W,
        3) RGB, float [0, 1] or uint8). Returns (H, W) σ in px, clipped to [0, :meth:`sigma_top`]."""
        image = as_rgb_float(image, "image", min_side=PATCH)
        return self._refined(image, self.raw_sigma(image), self.settings["refine_blur"], self.sigma_top(image.shape))

    def blur_from_sigma(self, sigma: np.ndarray) -> np.ndarray:
        """(H, W) float32 [0, 1] blur map of a σ map (px): :func:`dmenet.galetto.detection.blur_map`."""
        from dmenet.galetto.detection import blur_map

        return blur_map(sigma, self.transform)

    def describe(self) -> str:
        """One line: model file, window stride (px), grid, readout, pre-denoise σ (px), refinement, and how σ (px)
        becomes the blur probability."""
        s = self.settings
        t = self.transform
        blur = (f"sigmoid({t.scale:g} · (σ − {t.shift:g} px)), fitted on labelled training images" if t else
                f"SYNDOF label clip(σ / {units.max_sigma():g} px, 0, 1)"
                + (" (the model file has no fitted transform)" if s["blur"] is BlurSource.FITTED else ""))
        return (f"galetto {self.options.model or 'checkpoints/galetto_mbv2.safetensors'}: 32x32 windows at stride "
                f"{s['stride']} ({s['grid'].value} grid), readout {s['readout'].value}, pre-denoise σ {s['denoise']} "
                f"px, refine {s['refine'].value}; blur probability = {blur} of σ refined {s['refine_blur'].value}"
                f"{max_side_note(self.options.max_side)}")


def make(options: MethodOptions) -> GalettoEstimator:
    """Load the classifier (None = the shipped checkpoint) with stride / readout / refine / denoise options
    (``options.flips`` does not apply and is ignored: an evaluate run of several methods shares one ``--flips``)."""
    from dmenet.galetto.detection import read_transform
    from dmenet.galetto.train import load_classifier

    settings = parse_settings(options.extra_dict(), DEFAULTS, "galetto")
    settings.update({k: parse_choice(cls, settings[k], f"galetto: {k}") for k, cls in _CHOICES.items()})
    settings.update(stride=setting_number(settings, "stride", int, "galetto", "px, at most the window side: larger "
                                          "strides leave pixels no window covers", 1, PATCH),
                    batch=setting_number(settings, "batch", int, "galetto", "windows per classifier call", 1),
                    denoise=setting_number(settings, "denoise", float, "galetto", "px, the pre-denoise Gaussian σ", 0))
    path = options.model or DEFAULT_MODEL
    model = load_classifier(path, device=options.device)
    transform, _ = read_transform(path)
    return GalettoEstimator(model, options, settings, transform, model_file=Path(path))


class RefinedEstimator(Estimator):
    """Any estimator whose σ map and blur map are refined by the image (:func:`dmenet.galetto.refine.refine_map`)."""

    def __init__(self, base: Estimator, mode: Refine = Refine.PAPER):
        self.base = base
        self.mode = mode
        self.name = f"{base.name}_refined"
        self.gives_sigma = base.gives_sigma
        self.gives_probability = base.gives_probability
        self.model_file = base.model_file
        self.min_short_side = base.min_short_side

    def method_settings(self) -> dict[str, object]:
        """The wrapped method's, and ``refine``."""
        return {**self.base.method_settings(), "refine": self.mode.value}

    def extra_bytes_per_pixel(self) -> int:
        """The wrapped method's, on its working image."""
        return self.base.extra_bytes_per_pixel()

    def input_bytes_per_pixel(self) -> int:
        """The refinement's, on the input image (:data:`~dmenet.galetto.refine.REFINE_BYTES_PER_PIXEL`; it runs
        after the wrapped method, so the larger of the two)."""
        from dmenet.galetto.refine import REFINE_BYTES_PER_PIXEL

        return max(self.base.input_bytes_per_pixel(), REFINE_BYTES_PER_PIXEL[self.mode])

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True) -> Estimate:
        """The base method's maps of an (H, W, 3) RGB image (float [0, 1] or uint8; gray and RGBA too), refined with
        the image as the guide: σ (H, W) float32 px (≥ 0), blur probability clipped to [0, 1]."""
        from dmenet.galetto.refine import refine_map

        image = as_rgb_float(image, "image")  # one conversion: the base and the guide see the same [0, 1] image
        est = self.base.estimate(image, sigma=sigma, probability=probability)
        s = None if est.sigma is None else refine_map(image, est.sigma, self.mode)
        p = None if est.blur_probability is None else np.clip(refine_map(image, est.blur_probability, self.mode), 0, 1)
        return Estimate(sigma=s, blur_probability=p, sigma_max=est.sigma_max)

    def describe(self) -> str:
        """The base method's description plus the refinement recipe."""
        return f"{self.base.describe()}; maps refined by the image ({self.mode.value} recipe of Galetto & Deng)"


def refined(base: Estimator, mode: Refine | str = Refine.PAPER) -> RefinedEstimator:
    """Wrap ``base`` so its maps are refined (``mode``: paper | code, as :class:`Refine` or its value)."""
    parsed = parse_choice(Refine, mode, "refine mode")
    if parsed is Refine.NONE:
        raise ValueError(f"refine mode must be paper or code, got {mode!r}")
    return RefinedEstimator(base, parsed)


REFINED_OPTIONS = {"refine": "code"}
"""``dmenet_refined``'s own option (code | paper; by experiments/galetto_selection.md on runs/gsyn_val: label MAE
code 0.0565, paper 0.0668); dmenet's own (:data:`dmenet.methods.dmenet.OPTIONS`) are passed on to it."""


def make_dmenet_refined(options: MethodOptions) -> RefinedEstimator:
    """DMENet with its σ map and blur probability refined: ``extra`` key ``refine`` (code (default) | paper), and
    dmenet's own keys (``precision``: fp32 | bf16) for the wrapped DMENet. Until 6 Dec 2026 ``precision`` was
    refused, so the refined method could not run B in bf16."""
    from dmenet.methods.dmenet import OPTIONS as DMENET_OPTIONS, make as make_dmenet

    settings = parse_settings(options.extra_dict(), {**REFINED_OPTIONS, **DMENET_OPTIONS}, "dmenet_refined")
    passed = tuple((k, v) for k, v in options.extra if k in DMENET_OPTIONS)
    return refined(make_dmenet(MethodOptions(**{**options.__dict__, "extra": passed})), settings["refine"])
