"""DMENet inference on images of any size: σ maps (px) and calibrated blur probabilities.

The public API (:func:`load_model`, :class:`Predictor`, :func:`estimate`, :func:`estimate_defocus`,
:func:`estimate_blur_probability`, :func:`predict_label`, :func:`predict_features`, :func:`working_scale`); the parts
it runs are one module each, and their public names are importable from here too (``__all__``):

- :mod:`dmenet.tiling`: the size policy (docs/method.md §7): the image is replicate-padded on the bottom/right to a
  multiple of 16 and cropped back, and above ``tile_threshold`` pixels (1024²) runs in ``tile_size`` tiles (512 px)
  overlapping by ``tile_overlap`` px (64), blended with linear ramps (:data:`~dmenet.tiling.TILE_THRESHOLD`,
  :func:`~dmenet.tiling.tile_geometry`, :func:`~dmenet.tiling.single_pass`);
- :mod:`dmenet.flips`: the test-time symmetries and the average of B's passes over them;
- :mod:`dmenet.logits`: S's logit (:func:`~dmenet.logits.calibration_logit`) and the logit transform
  (:func:`~dmenet.logits.blur_probability_from_logit`).

``max_side`` optionally downsizes the input first; σ is then scaled back by the factor the rounded working size got
(:func:`working_scale`; resizing by ``s`` scales blur by ``s``). What happens after the weights is the model's recipe
(:mod:`dmenet.models.recipe`, ``model.recipe``): a :class:`Predictor` holds (model, recipe) and runs only the paths
asked for — the σ path (B with its BatchNorm mode, averaged over ``recipe.flips`` mirrored / rotated copies, each mapped
back; σ = ``units.label_to_sigma(output, max_coc)``, σ_max = 7 px for max CoC 29, then the σ curve when the recipe has
one) and the detection path (B with its own BatchNorm mode, S or the two-label head on a second BatchNorm mode's label
too, or a feature head on B's inner maps of the same passes, then the logit transform). B's passes of one BatchNorm mode
serve both paths. Overrides (``--flips``, ``--raw-sigma``) give a new Predictor and warn when they contradict what a
fitted value was fitted under; nothing is changed in place.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from dmenet.flips import averaged_passes
from dmenet.logits import blur_probability_from_logit, calibration_logit, direct_calibration_logit
from dmenet.models.detection_head import HeadInputs, feature_head_logit, head_logit
from dmenet.models.recipe import FLIPS, BNMode, Recipe
from dmenet.models.sigma_curve import apply_sigma_curve
from dmenet.tiling import MIN_TILE_SIZE, MULTIPLE, TILE_OVERLAP, TILE_SIZE, TILE_THRESHOLD, tile_geometry
from syndof import resize, units
from syndof.choices import Choice, choices
from syndof.images import as_rgb_float

__all__ = [
    # this module
    "DEFAULT_CHECKPOINT", "MIN_WORK_SIDE", "ONEPASS_CHECKPOINT", "PRECISIONS", "RECIPE_OVERRIDE", "REPO_ROOT",
    "DefocusEstimate", "Precision", "Predictor", "estimate", "estimate_blur_probability", "estimate_defocus",
    "eval_mode", "load_model", "load_predictor", "predict_features", "predict_label", "working_scale",
    # dmenet.tiling
    "MIN_TILE_SIZE", "MULTIPLE", "TILE_OVERLAP", "TILE_SIZE", "TILE_THRESHOLD", "tile_geometry",
    # dmenet.logits
    "blur_probability_from_logit", "calibration_logit", "direct_calibration_logit",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "dmenet_lite.safetensors"
ONEPASS_CHECKPOINT = REPO_ROOT / "checkpoints" / "dmenet_lite_onepass.safetensors"
"""The opt-in one-pass file (checkpoints/ONEPASS_CARD.md), for callers outside the repository root."""
MIN_WORK_SIDE = 2 * MULTIPLE
"""Shortest side (px) ``max_side`` shrinks an image to: a 40×5000 px strip at ``max_side`` 320 ran at 3×320 px,
where B measures nothing (a sharp strip got a median σ of 17 px against 0.1 px at full size)."""


def working_scale(shape: tuple[int, ...], max_side: int | None) -> float:
    """The factor (working size / input size, ≤ 1; 1.0 when it fits) :meth:`Predictor.estimate`'s ``max_side``
    shrinks an (H, W, …) image by: the one its rounded working size got (:func:`syndof.resize.shrunk_scale`, the
    short side kept ≥ :data:`MIN_WORK_SIDE` px), not the one asked. σ (px) at the working size is σ / this px of
    the input (:func:`syndof.units.rescale_sigma`), σ_max too."""
    return resize.shrunk_scale(shape, max_side, minimum=2, min_short_side=MIN_WORK_SIDE)


class Precision(Choice):
    """B's compute precision at inference, by the name a method option gives (``dmenet:precision=bf16``)."""

    FP32 = "fp32"
    """float32, the default: the fast path's values up to rounding."""
    BF16 = "bf16"
    """bfloat16 autocast, about 2× faster on a CPU with bf16 instructions (BENCHMARKS.md, "Inference in
    bfloat16")."""


PRECISIONS = {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16}
"""The torch dtype of each :class:`Precision`."""


@dataclass
class DefocusEstimate:
    """Inference result for one image.

    Attributes:
        sigma: (H, W) float32 Gaussian σ in px at the input resolution (through the recipe's σ curve when it has
            one), or None (σ not asked for).
        label: (H, W) float32 σ-path output of B in [0, 1] (σ / σ_max, before any σ curve), or None. The
            detection path reuses this map for a BatchNorm mode it shares with the σ path. Under ``max_side`` it
            is B's output at the working resolution resized back, so σ / σ_max **of the shrunk image** (a label
            does not rescale: σ / scale can exceed σ_max); ``sigma`` is the one in input px.
        blur_probability: (H, W) float32 in [0, 1] from the calibration network S, or the recipe's two-label head
            (1 = blurred), through the recipe's logit transform, or None.
    """

    sigma: np.ndarray | None
    label: np.ndarray | None
    blur_probability: np.ndarray | None = None


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu"):
    """Load a DMENet model file (``.safetensors`` + ``.json`` sidecar) in eval mode.

    Args:
        path: model file; None → the shipped ``checkpoints/dmenet_lite.safetensors``.
        device: "cpu", "cuda", …

    Returns:
        :class:`dmenet.models.DMENet` in eval mode on ``device``.

    Raises:
        FileNotFoundError: the file (or the shipped default) does not exist.
        dmenet.models.model_io.ModelFileError: the file pair cannot be loaded strictly.
    """
    from dmenet.models.model_io import load_model_file, model_pair_problem, model_paths

    weights = Path(path) if path is not None else DEFAULT_CHECKPOINT
    weights_path, _ = model_paths(weights)
    if not weights_path.is_file() and weights.is_file():
        raise FileNotFoundError(f"{weights}: not a model file (a model is NAME.safetensors + NAME.json; "
                                f"{weights_path.name} not found)")
    if path is None and not weights_path.is_file():
        raise FileNotFoundError(
            f"{weights_path}: the shipped default checkpoint is missing; pass a model file "
            "(e.g. RUN/model_last.safetensors from `python -m dmenet.train`) with --checkpoint / path="
        )
    problem = model_pair_problem(weights)  # a folder, a missing file of the pair: named as given
    if problem is not None:
        raise FileNotFoundError(str(problem))
    model, _ = load_model_file(weights_path, device=device)
    # channels-last makes PyTorch's CPU depthwise convolutions (MobileNetV2 encoder) markedly faster; same numbers
    model = model.to(memory_format=torch.channels_last)
    model.eval()
    return model


def _check_argument_order(image) -> None:
    """TypeError when a model (or Predictor) was passed where the image belongs."""
    if isinstance(image, (torch.nn.Module, Predictor)):
        raise TypeError("the image comes first: estimate(image, model), estimate_defocus(image, model)")


def _as_rgb_float(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8/uint16/float image → float32 RGB in [0, 1] (gray and RGBA are accepted too;
    :func:`syndof.images.as_rgb_float`), after the argument-order check."""
    _check_argument_order(image)
    return as_rgb_float(image)


def predict_label(
    image: np.ndarray,
    model,
    tile_threshold: int | None = TILE_THRESHOLD,
    tile_size: int = TILE_SIZE,
    tile_overlap: int = TILE_OVERLAP,
    flips: int | None = None,
    bn: BNMode | None = None,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """B's output for one image at its own resolution.

    Args:
        image: (H, W, 3) float RGB in [0, 1] or uint8.
        model: DMENet (eval mode).
        tile_threshold: tile when the padded image has more pixels (H·W, px²) than this (None = never).
        tile_size: tile side in px (rounded down to a multiple of 16).
        tile_overlap: overlap in px (rounded up to a multiple of 16, < tile_size).
        flips: average over this many symmetries of the image (:data:`~dmenet.models.recipe.FLIPS`); None = the
            model's ``recipe.flips``.
        bn: BatchNorm statistics, :class:`~dmenet.models.recipe.BNMode`; None = the model's σ path's
            (``recipe.sigma.bn``).
        dtype: B's compute precision, a value of :data:`PRECISIONS` (float32 = no autocast).

    Returns:
        (H, W) float32 label σ/σ_max in [0, 1] (σ px = σ_max · label before any σ curve).
    """
    return _predict(image, model, tile_threshold, tile_size, tile_overlap, flips, bn, dtype, features=False)


def predict_features(
    image: np.ndarray,
    model,
    tile_threshold: int | None = TILE_THRESHOLD,
    tile_size: int = TILE_SIZE,
    tile_overlap: int = TILE_OVERLAP,
    flips: int | None = None,
    bn: BNMode | None = None,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """B's detection features for one image at its own resolution: :func:`predict_label`'s passes (same arguments),
    each giving the decoder's :meth:`~dmenet.models.decoder.Decoder.detection_features` instead of the label alone,
    averaged over the flips.

    Returns:
        (H, W, C) float32, C = ``model.blur.decoder.feature_channels``; channel 0 is exactly
        ``predict_label(image, model, …)`` (the label in [0, 1]); the others are B's inner activations (no unit).
        Stored channel-planar: ``np.moveaxis(features, -1, 0)`` is a C-contiguous (C, H, W) array (each channel a
        contiguous plane, as B's passes write them and :func:`~dmenet.models.detection_head.feature_head_logit`
        reads them).
    """
    return _predict(image, model, tile_threshold, tile_size, tile_overlap, flips, bn, dtype, features=True)


def _predict(image, model, tile_threshold, tile_size, tile_overlap, flips, bn, dtype, features: bool) -> np.ndarray:
    """:func:`predict_label` (``features`` False) or :func:`predict_features`. The label is averaged in float64,
    the other features in float32 (C values a pixel: half the memory), channel-planar."""
    rgb = _as_rgb_float(image)
    flips = model.recipe.flips if flips is None else flips
    if flips not in FLIPS:
        raise ValueError(f"flips must be one of {FLIPS}, got {flips!r}")
    tile, overlap = tile_geometry(tile_size, tile_overlap)
    image_stats = BNMode(model.recipe.sigma.bn if bn is None else bn) is BNMode.IMAGE
    with eval_mode(model):  # the caller's model keeps its modes (a validation inside a training loop)
        return averaged_passes(rgb, model, tile_threshold, tile, overlap, flips, image_stats, dtype, features)


_EVAL_MODE_LOCK = threading.Lock()
"""Guards the switch of :func:`eval_mode` (the per-model record of the calls inside it lives on the model)."""
_EVAL_HOLD = "_eval_mode_hold"
"""``model.__dict__`` key, present while calls are inside :func:`eval_mode`: [calls, the modes the first found]."""


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Within the block every module of ``model`` is in eval mode; afterwards each has its own mode again (the
    caller's, e.g. training: B's BatchNorm then keeps updating its moving statistics in the caller's loop). Calls that
    overlap (threads sharing a Predictor, nested calls) restore the modes the first of them found, when the last
    leaves: the second could otherwise record the first's eval modes and restore those for good. The record is kept
    on the model for the calls' duration only (nothing of it stays, so a copy of the model carries none)."""
    with _EVAL_MODE_LOCK:
        hold = model.__dict__.get(_EVAL_HOLD)
        if hold is None:
            modes = [(m, m.training) for m in model.modules()]
            model.eval()  # recorded only once it switched (an overridden train() that raises leaves no record)
            hold = model.__dict__[_EVAL_HOLD] = [0, modes]
        hold[0] += 1
    try:
        yield
    finally:
        with _EVAL_MODE_LOCK:
            hold[0] -= 1
            if hold[0] == 0:
                del model.__dict__[_EVAL_HOLD]
                for m, training in hold[1]:
                    m.training = training


RECIPE_OVERRIDE = "recipe override: "
"""Start of the warning :meth:`Predictor.override` gives when an override contradicts a fitted value."""


class Predictor:
    """A model and the recipe it runs: ``Predictor(model)`` uses ``model.recipe``.

    Immutable in use: :meth:`override` returns a new Predictor on the same model, and a call changes no state, so
    one Predictor may serve several threads (each call takes torch's threads as they are set). ``str(predictor)`` is
    the recipe's two-line description (what happens to an image). ``precision`` (:class:`Precision`) is how B
    computes, an inference setting outside the recipe.
    """

    def __init__(self, model, recipe: Recipe | None = None, precision: Precision | str = Precision.FP32):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(choices(Precision))}, got {precision!r}")
        self.model = model
        self.recipe = model.recipe if recipe is None else recipe
        self.recipe.check(model.config.sigma_max, model.blur.decoder.feature_channels)
        self.precision = Precision(precision)

    @classmethod
    def of(cls, model_or_predictor) -> "Predictor":
        """``model_or_predictor`` itself when it is a Predictor, else ``Predictor(model)``."""
        if not isinstance(model_or_predictor, (Predictor, torch.nn.Module)):
            raise TypeError(f"model must be a DMENet (dmenet.load_model()) or a Predictor, got "
                            f"{type(model_or_predictor).__name__}")
        return model_or_predictor if isinstance(model_or_predictor, Predictor) else cls(model_or_predictor)

    def override(self, flips: int | None = None, raw_sigma: bool = False,
                 report: Callable[[str], None] | None = None) -> "Predictor":
        """A Predictor with ``flips`` symmetries (None = the recipe's) and, with ``raw_sigma``, no σ curve.

        When the copy contradicts what a fitted value was fitted under (e.g. a σ curve fitted at 8 flips used at 1),
        ``report`` gets the description (one line); with ``report`` None it is a :class:`UserWarning` starting
        with :data:`RECIPE_OVERRIDE`.

        Raises:
            ValueError: ``flips`` is not one of :data:`~dmenet.models.recipe.FLIPS`.
        """
        recipe = self.recipe.with_flips(flips)
        if raw_sigma:
            recipe = recipe.without_sigma_curve()
        before = set(self.recipe.contradictions())
        new = [c for c in recipe.contradictions() if c not in before]
        if new:
            departure = "; ".join(new)
            if report is None:
                warnings.warn(RECIPE_OVERRIDE + departure, UserWarning, stacklevel=2)
            else:
                report(departure)
        return Predictor(self.model, recipe, self.precision)

    def __str__(self) -> str:
        return str(self.recipe)

    # ---------------------------------------------------------------------------------------------- the paths
    def label(self, image: np.ndarray, bn: BNMode, **tile_options) -> np.ndarray:
        """B's output (H, W) float32 in [0, 1] (the label σ/σ_max) of an (H, W, 3) RGB image in [0, 1] or uint8,
        with ``bn`` statistics, averaged over the recipe's flips."""
        return predict_label(image, self.model, flips=self.recipe.flips, bn=bn, dtype=PRECISIONS[self.precision],
                             **tile_options)

    def features(self, image: np.ndarray, bn: BNMode, **tile_options) -> np.ndarray:
        """B's detection features (H, W, C) float32 of an (H, W, 3) RGB image in [0, 1], with ``bn`` statistics,
        averaged over the recipe's flips (:func:`predict_features`; channel 0 is :meth:`label`'s map, the label in
        [0, 1]; the others are B's activations, no unit or range)."""
        return predict_features(image, self.model, flips=self.recipe.flips, bn=bn,
                                dtype=PRECISIONS[self.precision], **tile_options)

    @property
    def reads_features(self) -> bool:
        """Whether the detection logit is a feature head's (one set of passes gives the label and the features)."""
        head = self.recipe.detection.head
        return head is not None and head.source is HeadInputs.FEATURES

    @property
    def feature_bytes_per_pixel(self) -> int:
        """Bytes a feature head's detection path holds per pixel of the working image beyond the label path's: the
        C float32 feature planes of the whole image (:func:`predict_features`), twice at flips > 1 (the sum and
        the current pass). 0 without a feature head. Measured: a 12 MP photo at full resolution peaks at 3.1 GB at
        1 flip and 4.9 GB at 2 flips, against 1.2 GB on the label path (BENCHMARKS.md, "One-pass detection
        file")."""
        if not self.reads_features:
            return 0
        return 4 * self.model.blur.decoder.feature_channels * (1 if self.recipe.flips == 1 else 2)

    def sigma_from_label(self, label: np.ndarray) -> np.ndarray:
        """σ px of a σ-path label map (H, W) in [0, 1]: ×σ_max (px), then the recipe's σ curve when it has one.
        (H, W) float32 σ in px."""
        cfg = self.model.config
        sigma = units.label_to_sigma(label, cfg.max_coc)
        if self.recipe.sigma.curve is not None:
            sigma = apply_sigma_curve(sigma, self.recipe.sigma.curve, cfg.sigma_max)
        return np.asarray(sigma, dtype=np.float32)

    def detection_labels(self, image: np.ndarray, sigma_label: np.ndarray | None = None,
                         **tile_options) -> tuple[np.ndarray, ...]:
        """B's maps the detection logit reads, one per mode of ``recipe.detection.bns``: S's input, the two-label
        head's two inputs (each (H, W) float32 label in [0, 1]), or a feature head's (H, W, C) features
        (:meth:`features`). ``sigma_label`` (the σ path's map of the same image) is reused for a mode it shares with
        the σ path (no second set of passes for it)."""
        if self.reads_features:
            return (self.features(image, self.recipe.detection.bn, **tile_options),)
        return tuple(sigma_label if sigma_label is not None and bn is self.recipe.sigma.bn
                     else self.label(image, bn, **tile_options) for bn in self.recipe.detection.bns)

    def detection_logit(self, labels: tuple[np.ndarray, ...]) -> np.ndarray:
        """The detection logit (1 = blurred) of :meth:`detection_labels`: S on the first, the recipe's two-label
        head on both (:func:`dmenet.models.detection_head.head_logit`) or its feature head on the features
        (:func:`~dmenet.models.detection_head.feature_head_logit`). (H, W) float32."""
        det = self.recipe.detection
        if det.head is None:
            with eval_mode(self.model):  # S in eval mode whatever the caller's model is in (as in estimate)
                return calibration_logit(self.model, labels[0])
        threads = torch.get_num_threads()  # the head's blocks on torch's threads; the same logits on any number
        if self.reads_features:
            return feature_head_logit(det.head, labels[0], threads)
        return head_logit(det.head, labels[0], labels[1], threads)

    def probability_from_labels(self, labels: tuple[np.ndarray, ...]) -> np.ndarray:
        """Blur probability of :meth:`detection_labels`: the detection logit through the recipe's transform.
        (H, W) float32 in [0, 1]."""
        det = self.recipe.detection
        return blur_probability_from_logit(self.detection_logit(labels), det.scale, det.shift)

    def estimate(self, image: np.ndarray, sigma: bool = True, probability: bool = True,
                 max_side: int | None = None, **tile_options) -> DefocusEstimate:
        """σ map and / or blur probability for one image; only the paths asked for run.

        Args:
            image: (H, W, 3) float RGB in [0, 1] or uint8.
            sigma: compute the σ path (``sigma`` and ``label`` are None without it).
            probability: compute the detection path (``blur_probability`` is None without it).
            max_side: long side in px; if set and the longer side exceeds it, run at that size (area resize) and
                bring the maps back (bilinear; σ divided by the factor the working size got, :func:`working_scale`);
                the short side is never shrunk below :data:`MIN_WORK_SIDE` px (a long thin strip runs longer than
                ``max_side``).
            **tile_options: ``tile_threshold``, ``tile_size``, ``tile_overlap`` of :func:`predict_label`.

        Returns:
            :class:`DefocusEstimate` at the input resolution. B runs ``recipe.flips`` times per BatchNorm mode
            needed: the σ path's, and the detection path's one (S, feature head) or two (two-label head) where they
            differ from it. The model runs in eval mode and each of its modules has its own mode again after.
        """
        if not (sigma or probability):
            raise ValueError("estimate: ask for σ, the blur probability or both")
        with eval_mode(self.model):  # S too: a model in train mode would run S on the batch's statistics
            return self._estimate(image, sigma, probability, max_side, **tile_options)

    def _estimate(self, image: np.ndarray, sigma: bool, probability: bool, max_side: int | None,
                  **tile_options) -> DefocusEstimate:
        """:meth:`estimate`, the model in eval mode."""
        rgb = _as_rgb_float(image)
        h, w = rgb.shape[:2]
        rgb, _ = resize.shrink_long_side(rgb, max_side, minimum=2, min_short_side=MIN_WORK_SIDE)
        shrunk = rgb.shape[:2] != (h, w)
        scale = resize.applied_scale((h, w), rgb.shape[1::-1])  # the factor the rounded size got: working_scale
        per_image = ((sigma and self.recipe.sigma.bn is BNMode.IMAGE)
                     or (probability and BNMode.IMAGE in self.recipe.detection.bns))
        cells = -(-rgb.shape[0] // MULTIPLE) * -(-rgb.shape[1] // MULTIPLE)
        if per_image and cells < 2:  # per-image BatchNorm statistics at 1/16 need more than one value per channel
            raise ValueError(f"image too small for DMENet ({rgb.shape[1]}x{rgb.shape[0]} px"
                             f"{' after max_side' if shrunk else ''}): it needs more than 16 px on one side")
        det = self.recipe.detection
        if probability and self.reads_features and (not sigma or self.recipe.sigma.bn is det.bn):
            features = self.features(rgb, det.bn, **tile_options)  # one set of passes for both maps
            label = features[..., 0].copy() if sigma else None
            prob = self.probability_from_labels((features,))
            del features
        else:
            label = self.label(rgb, self.recipe.sigma.bn, **tile_options) if sigma else None
            prob = (self.probability_from_labels(self.detection_labels(rgb, label, **tile_options))
                    if probability else None)
        sig = None if label is None else self.sigma_from_label(label)
        if shrunk:
            if label is not None:
                label = resize.resize_back(label, (h, w))
                sig = units.rescale_sigma(resize.resize_back(sig, (h, w)), 1.0 / scale)
            if prob is not None:
                prob = np.clip(resize.resize_back(prob, (h, w)), 0.0, 1.0)
        return DefocusEstimate(sigma=None if sig is None else np.asarray(sig, dtype=np.float32), label=label,
                               blur_probability=prob)


def load_predictor(path: str | Path | None = None, device: str | torch.device = "cpu", flips: int | None = None,
                   raw_sigma: bool = False, report: Callable[[str], None] | None = None,
                   precision: Precision | str = Precision.FP32) -> Predictor:
    """:func:`load_model` with its saved recipe, then the ``--flips`` / ``--raw-sigma`` overrides
    (:meth:`Predictor.override`; ``report`` gets a contradiction with a fitted value, None = a warning), computing
    in ``precision`` (:data:`PRECISIONS`)."""
    predictor = Predictor(load_model(path, device=device), precision=precision)
    if flips is None and not raw_sigma:
        return predictor
    return predictor.override(flips=flips, raw_sigma=raw_sigma, report=report)


def _predictor(model, flips: int | None) -> Predictor:
    """The Predictor of a model or Predictor argument, with a ``flips=`` keyword override applied."""
    predictor = Predictor.of(model)
    return predictor if flips is None else predictor.override(flips=flips)


def estimate(
    image: np.ndarray,
    model,
    max_side: int | None = None,
    with_probability: bool = True,
    with_sigma: bool = True,
    flips: int | None = None,
    **tile_options,
) -> DefocusEstimate:
    """σ map and (optionally) blur probability for one image: :meth:`Predictor.estimate` of ``model`` (a DMENet,
    run with its own recipe, or a :class:`Predictor`).

    Args:
        image: (H, W, 3) float RGB in [0, 1] or uint8.
        model: DMENet (eval mode) or Predictor.
        max_side: run at this long side (px) when the image is larger (see :meth:`Predictor.estimate`).
        with_probability: run the detection path (S and the logit transform).
        with_sigma: run the σ path. Without it only the detection path runs and ``sigma`` / ``label`` are None.
        flips: override the recipe's flips (a copy; warns when it contradicts a fit).
        **tile_options: ``tile_threshold``, ``tile_size``, ``tile_overlap`` of :func:`predict_label`.

    Returns:
        :class:`DefocusEstimate` at the input resolution: ``sigma`` (H, W) float32 σ px, ``label`` (H, W) float32
        in [0, 1], ``blur_probability`` (H, W) float32 in [0, 1] (1 = blurred); None for a path not run.
    """
    _check_argument_order(image)
    return _predictor(model, flips).estimate(image, sigma=with_sigma, probability=with_probability,
                                             max_side=max_side, **tile_options)


def estimate_defocus(image: np.ndarray, model, max_side: int | None = None, **tile_options) -> np.ndarray:
    """Defocus map of one image (the σ path only).

    Args:
        image: (H, W, 3) float RGB in [0, 1] or uint8, any size.
        model: DMENet from :func:`load_model` (or ``load_model_file``), or a :class:`Predictor`.
        max_side: optional downsizing of large inputs, long side in px (see :func:`estimate`).
        **tile_options: ``tile_threshold`` (px, default 1024²), ``tile_size`` (512 px), ``tile_overlap`` (64 px),
            ``flips`` (default: the recipe's).

    Returns:
        (H, W) float32 Gaussian σ in px at the input resolution, in [0, σ_max / scale].
    """
    return estimate(image, model, max_side=max_side, with_probability=False, **tile_options).sigma


def estimate_blur_probability(image: np.ndarray, model, max_side: int | None = None, **tile_options) -> np.ndarray:
    """Blur probability (the detection path only: B, S, the recipe's logit transform): (H, W) float32 in [0, 1],
    1 = blurred, of ``image`` (H, W, 3) float RGB in [0, 1] or uint8; ``max_side`` (px) as :func:`estimate`."""
    result = estimate(image, model, max_side=max_side, with_probability=True, with_sigma=False, **tile_options)
    assert result.blur_probability is not None
    return result.blur_probability
