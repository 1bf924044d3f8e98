"""The tiny DMENet-lite the unit tests build (MobileNetV2 encoder at width 0.125, one refinement block, S at width
0.25): a few thousand parameters, random weights, eval mode."""

from __future__ import annotations

import torch

from dmenet.models.config import ModelConfig
from dmenet.models.dmenet import build_dmenet

TINY = dict(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25)


def tiny_dmenet(seed: int = 0, **overrides):
    """The tiny model with weights from ``torch.manual_seed(seed)``; ``overrides`` replace ModelConfig fields."""
    torch.manual_seed(seed)
    return build_dmenet(ModelConfig(**{**TINY, **overrides})).eval()
