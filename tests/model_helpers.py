"""The tiny DMENet-lite the unit tests build (MobileNetV2 encoder at width 0.125, one refinement block, S at width
0.25): a few thousand parameters, random weights, eval mode; and the small labelled folders the head steps read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dmenet.models.config import ModelConfig
from dmenet.models.dmenet import build_dmenet

TINY = dict(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25)


def tiny_dmenet(seed: int = 0, **overrides):
    """The tiny model with weights from ``torch.manual_seed(seed)``; ``overrides`` replace ModelConfig fields."""
    torch.manual_seed(seed)
    return build_dmenet(ModelConfig(**{**TINY, **overrides})).eval()


def randomise_batchnorm(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm below ``module`` (nn.BatchNorm2d and BetaBatchNorm) non-trivial moving statistics and
    affine terms, drawn from a generator seeded with ``seed``, so that folding BatchNorm or switching its statistics
    visibly changes outputs: mean ~ N(0, 0.5²), variance ~ U[0.2, 2.2], shift ~ N(0, 0.3²), scale ~ U[0.5, 1.5]
    (where the layer has one). Returns ``module``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if getattr(m, "running_var", None) is None:
                continue
            c = m.running_mean.numel()
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=gen) * 2 + 0.2)
            m.bias.copy_(torch.randn(c, generator=gen) * 0.3)
            if getattr(m, "weight", None) is not None:
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
    return module


def write_labelled_photos(root: Path, unreadable: bool = False) -> None:
    """``root/lab``: two 48×64 labelled photos (left half random texture, right half flat grey with a blurred mask);
    ``root/neg``: one sharp-everywhere photo with an all-sharp mask, and with ``unreadable`` a second whose image
    is not a PNG (the steps skip it with a warning)."""
    from syndof import io

    rng = np.random.default_rng(0)
    for i in range(2):
        img = rng.random((48, 64, 3)).astype(np.float32)
        img[:, 32:] = 0.5
        mask = np.zeros((48, 64), np.float32)
        mask[:, 32:] = 1.0
        io.write_image(root / "lab" / "image" / f"a{i}.png", img)
        io.write_image(root / "lab" / "gt" / f"a{i}.png", mask)
    io.write_image(root / "neg" / "image" / "n0.png", rng.random((48, 64, 3)).astype(np.float32))
    io.write_image(root / "neg" / "gt" / "n0.png", np.zeros((48, 64), np.float32))
    if unreadable:
        (root / "neg" / "image" / "n1.png").write_bytes(b"not a png")
        io.write_image(root / "neg" / "gt" / "n1.png", np.zeros((48, 64), np.float32))


class ConstantClassifier(torch.nn.Module):
    """A Galetto "classifier" that always answers class ``k`` (σ k px at the size it runs at)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.full((x.shape[0], 20), -10.0)
        out[:, self.k] = 10.0
        return out

