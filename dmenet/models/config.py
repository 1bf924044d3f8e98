"""Model configuration: the architecture only, a dataclass whose defaults are the paper's DMENet (VGG19, width 1).

Only plain values live here (str, float, int, None) so the config round-trips through YAML and JSON
(``dataclasses.asdict`` / ``ModelConfig(**d)``). What inference does after the weights (BatchNorm mode, test flips,
σ curve, detection transform) is the recipe, :mod:`dmenet.models.recipe`, stored apart from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from syndof import units
from syndof.choices import Choice, choices


class Encoder(Choice):
    """Encoder architecture (``model.encoder``): VGG19 (the paper), VGG16, or MOBILENET_V2 (the lite encoder: taps at
    1/2 … 1/16 plus a small full-resolution stem)."""

    VGG19 = "vgg19"
    VGG16 = "vgg16"
    MOBILENET_V2 = "mobilenet_v2"


ENCODERS = choices(Encoder)
TAIL_SCALES = (1, 2)
INPUT_CONVENTIONS = ("caffe_bgr", "caffe_rgb", "imagenet", "minus_one_one")

MAX_CHANNEL_MULTIPLIER = 16.0
"""Largest ``width`` / ``calib_width`` / ``disc_width``: 16× the paper's channels (a 1024-channel decoder). Above
it the layers alone take tens of GB (``width=1e6`` asked for 884 GB inside a torch constructor: a traceback)."""
MAX_REFINE_BLOCKS = 64
MAX_MOBILENET_D0 = 1024

# Input convention used when neither the config nor the weights file names one.
DEFAULT_CONVENTION = {"vgg19": "caffe_bgr", "vgg16": "caffe_rgb", "mobilenet_v2": "minus_one_one"}


@dataclass(frozen=True)
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
        tail_scale: resolution divisor of the decoder's tail (u0 = gan_feat, its auxiliary head, the refinement
            blocks and the head). 1 = full resolution (paper). 2 = half resolution: d0 enters u0 by
            space-to-depth (``pixel_unshuffle``, 4·c0 channels at 1/2) and the head's logit is upsampled ×2
            bilinearly before the sigmoid; gan_feat and the finest auxiliary map are then at 1/2. A lite speed
            option (BENCHMARKS.md, "Half-resolution tail"): no full-resolution layer but the 3→c0 stem.
    """

    encoder: str = "vgg19"
    init: str | None = None
    input_convention: str | None = None
    width: float = 1.0
    refine_blocks: int = 7
    max_coc: int = units.DEFAULT_MAX_COC
    disc_width: float | None = None
    calib_width: float = 1.0
    mobilenet_d0: int = 16
    tail_scale: int = 1

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"model.encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.input_convention is not None and self.input_convention not in INPUT_CONVENTIONS:
            raise ValueError(f"model.input_convention must be one of {INPUT_CONVENTIONS} or null, "
                             f"got {self.input_convention!r}")
        for name in ("width", "calib_width", "disc_width"):  # channel multipliers (disc_width None = width)
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0 < value <= MAX_CHANNEL_MULTIPLIER):
                raise ValueError(f"model.{name} must be a finite channel multiplier > 0 and <= "
                                 f"{MAX_CHANNEL_MULTIPLIER:g}, got {value}")
        if not 1 <= self.mobilenet_d0 <= MAX_MOBILENET_D0:
            raise ValueError(f"model.mobilenet_d0 must be 1 … {MAX_MOBILENET_D0} (channels), got {self.mobilenet_d0}")
        if not 0 <= self.refine_blocks <= MAX_REFINE_BLOCKS:
            raise ValueError(f"model.refine_blocks must be 0 … {MAX_REFINE_BLOCKS}, got {self.refine_blocks}")
        if self.tail_scale not in TAIL_SCALES:
            raise ValueError(f"model.tail_scale must be one of {TAIL_SCALES}, got {self.tail_scale!r}")
        if self.max_coc < 2:
            raise ValueError(f"model.max_coc must be >= 2, got {self.max_coc}")

    @property
    def sigma_max(self) -> float:
        """σ px that an output of 1 stands for: (max_coc − 1)/4 (7 px for max_coc 29)."""
        return units.max_sigma(self.max_coc)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """A config from its dict; ValueError naming unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        return cls(**d)


def scaled(channels: int, width: float) -> int:
    """round(channels·width), at least 1 — the channel rule used by every width-scaled layer."""
    return max(1, int(round(channels * width)))
