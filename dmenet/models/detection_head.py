"""The detection heads: per-pixel functions used in place of S, of B's label under two BatchNorm modes (the
two-label head) or of B's features from one pass (the feature head).

Why (experiments/RULE_21H.md, RULE_21H8.md): S sees B's label with *per-image* BatchNorm statistics, which divides
away a blur that covers the whole photo, so a photo that is sharp everywhere still shows "relative" blur; B's label
with *moving* statistics measures absolute blur but ranks blur within a photo worse. The head
``h(l_first, l_second)`` sees both, per pixel, and is trained with BCE on labelled photos (blur masks) plus photos
that are sharp everywhere (all-sharp masks): :mod:`dmenet.training.fit_head`.

``h`` is a small multilayer perceptron: ``2 → hidden … → 1``, LeakyReLU(:data:`NEGATIVE_SLOPE`) between layers, on
the two labels in [0, 1] (σ / σ_max under each BatchNorm mode); its output is a logit (1 = blurred) that goes through
the recipe's transform ``sigmoid(scale·(z − shift))`` as S's does. Its weights are a fitted value of the recipe
(a few hundred numbers kept in the model's JSON sidecar, with the :class:`~dmenet.models.recipe.Fit` they were
fitted under), not tensors of the model file: the architecture and weights of B, D, C and S do not change.

The **feature head** (rule 19r, ``experiments/RULE_19R.md``; :attr:`HeadInputs.FEATURES`) reads instead, per pixel,
what one pass of B already computes for σ: the label, the refinement blocks' output and the first decoder stage's
(:meth:`dmenet.models.decoder.Decoder.detection_features`, 41 values for the lite width), averaged over the recipe's
flips as the label is. It needs no second set of passes with per-image statistics, so a photo's σ map and blur
probability come from one set of passes of B. Same MLP form, its first layer as wide as the features.

:class:`DetectionHead` is the immutable recipe value and :func:`head_logit` / :func:`feature_head_logit` the pure
functions that apply it (numpy; no torch import, as :mod:`dmenet.models.recipe`); the trainable ``nn.Module`` with
the same arithmetic is :class:`dmenet.training.fit_head.DetectionHeadNet`.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from syndof.choices import Choice

NEGATIVE_SLOPE = 0.2
"""LeakyReLU slope between the head's layers (below 1: LeakyReLU(x) = max(x, slope·x))."""
HIDDEN = (16, 16)
"""Default hidden widths (2 → 16 → 16 → 1: 337 numbers)."""
_CHUNK = 1 << 12  # pixels per matrix product: the hidden activations (32 × 4,096 floats, 512 kB) stay in L2;
# 1 << 14 took 50 ms for the 41 → 32 → 16 → 1 head at 640×480 against 26 ms (1 thread, Intel Xeon)


class HeadInputs(Choice):
    """What a detection head reads per pixel (the one name for it).

    LABELS: B's label under the detection path's BatchNorm mode and under its ``second_bn`` (two sets of passes).
    FEATURES: B's detection features of the detection path's own passes (one set; the σ path's when they share a
    BatchNorm mode).
    """

    LABELS = "labels"
    FEATURES = "features"


@dataclass(frozen=True)
class DetectionHead:
    """The head's weights: ``layers[i] = (W, b)`` with W a tuple of rows (out × in) and b (out,), output width 1.

    Inputs (``source``): with :attr:`HeadInputs.LABELS` the detection path's label, then the label of its
    ``second_bn`` (:class:`dmenet.models.recipe.DetectionPath`), and with ``image_mean`` a third, the mean of the
    second label over the whole photo (rule 21g: a measurement of the photo as a whole, the same at every pixel);
    with :attr:`HeadInputs.FEATURES` the C detection features of one pass (C = the first layer's width, which must
    be the model's ``blur.decoder.feature_channels``).
    """

    layers: tuple[tuple[tuple[tuple[float, ...], ...], tuple[float, ...]], ...]
    image_mean: bool = False
    source: HeadInputs = HeadInputs.LABELS

    def __post_init__(self) -> None:
        try:
            layers = tuple((tuple(tuple(float(v) for v in row) for row in w), tuple(float(v) for v in b))
                           for w, b in self.layers)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"detection head: malformed layers (each must be (weight rows, biases)): {exc}") \
                from None
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise ValueError("detection head: no layers")
        if not isinstance(self.image_mean, bool):
            raise ValueError(f"detection head: image_mean must be true or false, got {self.image_mean!r}")
        try:
            object.__setattr__(self, "source", HeadInputs(self.source))
        except ValueError:
            raise ValueError(f"detection head: inputs must be one of {[h.value for h in HeadInputs]}, got "
                             f"{self.source!r}") from None
        if self.source is HeadInputs.FEATURES and self.image_mean:
            raise ValueError("detection head: image_mean is an input of the two-label head only")
        width = self.inputs
        for i, (w, b) in enumerate(layers):
            if not w or any(len(row) != width for row in w) or len(b) != len(w):
                raise ValueError(f"detection head layer {i}: expected ({len(b)} × {width}) weights and matching "
                                 f"biases, got {len(w)} rows of {[len(r) for r in w][:3]}… and {len(b)} biases")
            if not all(math.isfinite(v) for row in w for v in row) or not all(math.isfinite(v) for v in b):
                raise ValueError(f"detection head layer {i}: weights must be finite")
            width = len(w)
        if width != 1:
            raise ValueError(f"detection head: the last layer must have one output, got {width}")

    @property
    def inputs(self) -> int:
        """Input width: 2 labels, 3 with the photo mean; a feature head's first layer's width."""
        if self.source is HeadInputs.FEATURES:
            return len(self.layers[0][0][0])
        return 3 if self.image_mean else 2

    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths, input first: (2, 16, 16, 1) for the default head."""
        return (self.inputs,) + tuple(len(w) for w, _ in self.layers)

    def arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W (out, in), b (out,)) float32 arrays per layer."""
        return [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in self.layers]

    def to_dict(self) -> dict[str, Any]:
        """The head as a JSON-ready dict (``layers`` of weight / bias lists; ``image_mean`` and ``inputs`` only when
        not the defaults, so older files keep their text)."""
        d: dict[str, Any] = {"layers": [{"weight": [list(r) for r in w], "bias": list(b)} for w, b in self.layers]}
        if self.image_mean:  # two-input heads keep their text unchanged
            d["image_mean"] = True
        if self.source is not HeadInputs.LABELS:  # as do two-label heads
            d["inputs"] = self.source.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DetectionHead":
        """A head from its JSON dict (``recipe.detection.head``); ValueError on missing or unknown keys."""
        if not isinstance(d, dict) or "layers" not in d or not set(d) <= {"layers", "image_mean", "inputs"}:
            raise ValueError(f"recipe.detection.head: expected the key 'layers' (and optionally 'image_mean', "
                             f"'inputs'), got {sorted(d) if isinstance(d, dict) else d!r}")
        layers = []
        for i, layer in enumerate(d["layers"]):
            if not isinstance(layer, dict) or set(layer) != {"weight", "bias"}:
                raise ValueError(f"recipe.detection.head.layers[{i}]: expected keys ['bias', 'weight']")
            layers.append((layer["weight"], layer["bias"]))
        return cls(layers=tuple(layers), image_mean=d.get("image_mean", False),
                   source=d.get("inputs", HeadInputs.LABELS.value))


def head_inputs(first: np.ndarray, second: np.ndarray, image_mean: bool) -> np.ndarray:
    """The head's per-pixel inputs (N, 2 or 3) float32 of the two label maps (N pixels): the labels, and with
    ``image_mean`` the float64 mean of ``second`` over all of it (so pass whole photos, never tiles)."""
    first = np.asarray(first, np.float32)
    second = np.asarray(second, np.float32)
    if first.shape != second.shape:
        raise ValueError(f"head_logit: label maps of different shapes {first.shape} and {second.shape}")
    columns = [first.ravel(), second.ravel()]
    if image_mean:
        columns.append(np.full(second.size, second.mean(dtype=np.float64), np.float32))
    return np.stack(columns, 1)


def head_logit(head: DetectionHead, first: np.ndarray, second: np.ndarray, threads: int = 1) -> np.ndarray:
    """The two-label head's logit (1 = blurred) per pixel: ``W₃·ρ(W₂·ρ(W₁·x + b₁) + b₂) + b₃`` for the default
    widths, x the inputs of :func:`head_inputs`, ρ = LeakyReLU(:data:`NEGATIVE_SLOPE`).

    Args:
        head: the weights (:attr:`HeadInputs.LABELS`).
        first: (...) float labels in [0, 1] of the detection path's BatchNorm mode (the whole photo).
        second: labels of the same shape under the detection path's ``second_bn``.
        threads: CPU threads for the matrix products (:func:`_mlp_logit`; the result does not depend on it).

    Returns:
        float32 array of the inputs' shape.
    """
    if head.source is not HeadInputs.LABELS:
        raise ValueError(f"head_logit: this head reads {head.source.value}, not two labels (feature_head_logit)")
    return _mlp_logit(head, head_inputs(first, second, head.image_mean).T, threads).reshape(np.shape(first))


def feature_head_logit(head: DetectionHead, features: np.ndarray, threads: int = 1) -> np.ndarray:
    """The feature head's logit (1 = blurred) per pixel, the MLP of :func:`head_logit` on (..., C) detection
    features (:func:`dmenet.inference.predict_features`; C = ``head.inputs``), either memory layout (pixel-major or
    channel-planar, as ``predict_features`` returns them) without a copy. ``threads`` as in :func:`head_logit`.
    ``features``: normally (H, W, C) float32 (channel 0 B's label in [0, 1], the others activations, no unit).
    Returns float32 of shape (...), normally (H, W): a logit (no unit, any real value, larger = more likely blurred;
    :func:`dmenet.logits.blur_probability_from_logit` maps it to a probability in [0, 1])."""
    if head.source is not HeadInputs.FEATURES:
        raise ValueError(f"feature_head_logit: this head reads {head.source.value}, not B's features")
    features = np.asarray(features, np.float32)
    if features.shape[-1] != head.inputs:
        raise ValueError(f"feature_head_logit: the head reads {head.inputs} features a pixel, got "
                         f"{features.shape[-1]} (a head fitted on another architecture?)")
    planes = np.moveaxis(features, -1, 0)
    columns = (planes.reshape(head.inputs, -1) if planes.flags.c_contiguous  # channel-planar storage
               else features.reshape(-1, head.inputs).T)
    return _mlp_logit(head, columns, threads).reshape(features.shape[:-1])


def _mlp_logit(head: DetectionHead, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """The MLP on (inputs, N) float32 columns (any strides) → (N,) float32 logits.

    Blocks of :data:`_CHUNK` columns go through all layers in turn (the hidden activations stay in cache), each
    block's products on one BLAS thread: a multi-threaded product's rounding depends on its thread count, and the
    maps must not depend on the machine's OMP_NUM_THREADS (numpy's own einsum loop was as exact but 3× slower:
    BENCHMARKS.md). ``threads`` > 1 hands whole blocks to that many Python threads (numpy releases the GIL in its
    products), so every block is still computed the same way and the result does not depend on ``threads``."""
    layers = [(w, b[:, None]) for w, b in head.arrays()]
    slope = np.float32(NEGATIVE_SLOPE)
    out = np.empty(x.shape[1], np.float32)

    def block(start: int) -> None:
        """Run the columns ``start … start + _CHUNK`` through every layer (LeakyReLU between) and write their logits
        into ``out``."""
        a = x[:, start:start + _CHUNK]
        for i, (w, b) in enumerate(layers):
            a = w @ a
            a += b
            if i < len(layers) - 1:
                np.maximum(a, a * slope, out=a)  # LeakyReLU for a slope below 1
        out[start:start + _CHUNK] = a[0]

    starts = range(0, x.shape[1], _CHUNK)
    with threadpool_limits(1, user_api="blas"):
        if threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(min(threads, len(starts))) as pool:
                list(pool.map(block, starts))
        else:
            for start in starts:
                block(start)
    return out
