"""Model configuration: one frozen-free dataclass whose defaults are the paper's DMENet (VGG19, width 1).

Only plain values live here (str, float, int, bool, None, a tuple of floats) so the config round-trips through YAML and JSON
(``dataclasses.asdict`` / ``ModelConfig(**d)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dmenet.models.sigma_curve import check_sigma_curve

ENCODERS = ("vgg19", "vgg16", "mobilenet_v2")
INPUT_CONVENTIONS = ("caffe_bgr", "caffe_rgb", "imagenet", "minus_one_one")
TEST_FLIPS = (1, 2, 4, 8)
"""Symmetry counts for test-time averaging (``ModelConfig.test_flips``): identity; + left-right mirror; + up-down
mirror and 180° rotation; + the four transposes."""

# Input convention used when neither the config nor the weights file names one.
DEFAULT_CONVENTION = {"vgg19": "caffe_bgr", "vgg16": "caffe_rgb", "mobilenet_v2": "minus_one_one"}


@dataclass
class ModelConfig:
    """Architecture of DMENet's four subnetworks (B = encoder + decoder, D, C, S).

    Attributes:
        encoder: "vgg19" (paper), "vgg16" or "mobilenet_v2" (lite; taps at 1/2 … 1/16 plus a small full-res stem).
        init: path to torchvision-format encoder weights (``.safetensors`` or weights-only ``.pth``); None = scratch.
            The frozen perceptual network C is initialised from the same file.
        input_convention: "caffe_bgr" | "caffe_rgb" | "imagenet" | "minus_one_one"; None → the weights file's
            ``__metadata__["input"]`` when it states one, else ``DEFAULT_CONVENTION[encoder]``.
        width: channel multiplier of the decoder and of D (1.0 = paper; gan_feat has round(64·width) channels).
        refine_blocks: residual refinement blocks after gan_feat (paper: 7).
        max_coc: CoC px of the training data; σ_max = (max_coc − 1)/4 maps the [0, 1] output to σ px.
        disc_width: channel multiplier of D; None → ``width``.
        calib_width: channel multiplier of S (1.0 = paper's 64/32/16 stack).
        mobilenet_d0: channels of the lite encoder's full-resolution stem (the d0 skip), before ``width``.
        image_bn_stats: inference normalises B's BatchNorm layers with the statistics of the input image itself
            (as training normalises each domain's batch with its own), instead of the moving averages. The paper
            uses the moving averages (False); see :mod:`dmenet.training.recalibrate` for why a model may need this.
        detection_image_bn_stats: the same choice for the label map that S turns into the blur probability (DBD);
            None = as ``image_bn_stats``. A model whose moving statistics were re-estimated for σ (absolute blur)
            can keep per-image statistics for detection (blur relative to the rest of the photo), at the cost of a
            second pass of B when the probability is asked for.
        dbd_logit_scale, dbd_logit_shift: the blur probability given for detection (DBD) maps is
            ``sigmoid(scale · (logit − shift))`` of S's logit; 1 and 0 (the defaults) give S's own probability.
            Inference options fitted after training on labelled training images (:mod:`dmenet.training.fit_dbd`).
        test_flips: inference averages B's output over this many symmetries of the image, each mapped back
            (:data:`TEST_FLIPS`): 1 = none (the paper), 2 = + left-right mirror, 4 = + up-down
            mirror and 180° rotation, 8 = + the four transposes. Costs that many forward passes. An inference option.
        sigma_curve: σ recalibration curve (:mod:`dmenet.models.sigma_curve`): ``N + 1`` non-decreasing σ values
            (px) at the evenly spaced raw σ ``0, σ_max/N, …, σ_max``; inference maps B's σ through it (the label S
            sees is not changed). None = identity. An inference option fitted after training on held-out renders
            (:mod:`dmenet.training.fit_sigma`).
    """

    encoder: str = "vgg19"
    init: str | None = None
    input_convention: str | None = None
    width: float = 1.0
    refine_blocks: int = 7
    max_coc: int = 29
    disc_width: float | None = None
    calib_width: float = 1.0
    mobilenet_d0: int = 16
    image_bn_stats: bool = False
    detection_image_bn_stats: bool | None = None
    dbd_logit_scale: float = 1.0
    dbd_logit_shift: float = 0.0
    test_flips: int = 1
    sigma_curve: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"model.encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.input_convention is not None and self.input_convention not in INPUT_CONVENTIONS:
            raise ValueError(f"model.input_convention must be one of {INPUT_CONVENTIONS} or null, "
                             f"got {self.input_convention!r}")
        if not self.dbd_logit_scale > 0:
            raise ValueError(f"model.dbd_logit_scale must be > 0, got {self.dbd_logit_scale}")
        if self.test_flips not in TEST_FLIPS:
            raise ValueError(f"model.test_flips must be one of {TEST_FLIPS}, got {self.test_flips!r}")
        if not self.width > 0:
            raise ValueError(f"model.width must be > 0, got {self.width}")
        if self.refine_blocks < 0:
            raise ValueError(f"model.refine_blocks must be >= 0, got {self.refine_blocks}")
        if self.max_coc < 2:
            raise ValueError(f"model.max_coc must be >= 2, got {self.max_coc}")
        if self.sigma_curve is not None:
            self.sigma_curve = tuple(float(v) for v in self.sigma_curve)  # JSON / YAML give a list
            check_sigma_curve(self.sigma_curve, self.sigma_max)

    @property
    def detection_bn_image(self) -> bool:
        """Whether the label map S sees uses per-image BatchNorm statistics (``detection_image_bn_stats``)."""
        return self.image_bn_stats if self.detection_image_bn_stats is None else self.detection_image_bn_stats

    def describe_bn(self) -> str:
        """One line for reports: which BatchNorm statistics the σ and the detection paths use."""
        def name(image: bool) -> str:
            return "per-image" if image else "moving"
        return f"BatchNorm statistics: σ {name(self.image_bn_stats)}, detection {name(self.detection_bn_image)}"

    @property
    def sigma_max(self) -> float:
        """σ px that an output of 1 stands for: (max_coc − 1)/4 (7 px for max_coc 29)."""
        return (self.max_coc - 1) / 4.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        return cls(**d)


def scaled(channels: int, width: float) -> int:
    """round(channels·width), at least 1 — the channel rule used by every width-scaled layer."""
    return max(1, int(round(channels * width)))
