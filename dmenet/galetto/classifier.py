"""MobileNetV2 blur-level classifier on 32×32×1 patches (Galetto & Deng 2023 §3.1), from the project's blocks.

Keras ``MobileNetV2(input_shape=(32, 32, 1), classes=20)`` layout: stride-2 3×3 stem, the 17 inverted-residual
blocks (:mod:`dmenet.models.mobilenet`, TF ``SAME`` padding, BN ε 1e-3), a 1×1 head to ``head_channels``, global
average pooling and a linear 20-way layer. ``width`` scales every block's channels (rounded to multiples of 8 as
Keras' ``alpha``); the head keeps 1280 channels for width ≤ 1 as in Keras. Input (B, 1, 32, 32) gray in [0, 1]
(mapped to [−1, 1] inside); output logits (B, 20), class k = Gaussian σ of k px.

The paper trains from scratch (ImageNet weights need 3 channels). :func:`imagenet_features_state` offers the
design's optional start from ImageNet instead: the shared width-1.0 MobileNetV2 file, its RGB stem summed over the
three channels (exact for a gray image repeated as RGB, both in [−1, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from dmenet.galetto import NUM_CLASSES
from dmenet.models.mobilenet import MBV2_SETTINGS, ConvBNReLU6, InvertedResidual
from dmenet.models.weights import WeightsError, read_weights_file, state_mismatch

FULL_SETTINGS = MBV2_SETTINGS + [(6, 160, 3, 2), (6, 320, 1, 1)]


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture. width: channel multiplier (Keras alpha); head_channels: last 1×1 conv (Keras 1280);
    blocks: how many (t, c, n, s) stages of the 7 to build (7 = full; fewer = a tiny tier for tests)."""

    width: float = 1.0
    head_channels: int = 1280
    blocks: int = 7
    num_classes: int = NUM_CLASSES

    def __post_init__(self) -> None:
        if not 0.0 < self.width <= 2.0:
            raise ValueError(f"width must be in (0, 2], got {self.width}")
        if not 1 <= self.blocks <= len(FULL_SETTINGS):
            raise ValueError(f"blocks must be in [1, {len(FULL_SETTINGS)}], got {self.blocks}")
        if self.head_channels < 1 or self.num_classes < 2:
            raise ValueError("head_channels must be >= 1 and num_classes >= 2")


def _divisible(v: float, d: int = 8) -> int:
    """Keras ``_make_divisible``: nearest multiple of d, not below 90 % of v."""
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class BlurClassifier(nn.Module):
    """forward(x: (B, 1, 32, 32) gray [0, 1]) -> (B, num_classes) logits."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = config
        cin = _divisible(32 * config.width)
        layers: list[nn.Module] = [ConvBNReLU6(1, cin, k=3, stride=2)]
        for t, c, n, s in FULL_SETTINGS[: config.blocks]:
            cout = _divisible(c * config.width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(ConvBNReLU6(cin, config.head_channels, k=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(config.head_channels, config.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, 32, 32) gray in [0, 1] (mapped to [−1, 1] inside) → (B, num_classes) logits (no unit); class k
        is σ = k px (softmax gives the class probabilities)."""
        y = self.features(x * 2.0 - 1.0)
        return self.classifier(torch.flatten(y.mean(dim=(2, 3)), 1))


def imagenet_features_state(model: BlurClassifier, path: str | Path) -> dict[str, Tensor]:
    """The state of ``model.features`` from a torchvision-layout MobileNetV2 file (``features.0`` … ``features.18``,
    width 1.0, e.g. ``../shared/weights/mobilenet_v2_imagenet_keras.safetensors``), strictly: every key of the
    classifier's features must be there with its shape, and nothing else but ``classifier.*`` keys. The stem's RGB
    kernel (32, 3, 3, 3) becomes the gray one (32, 1, 3, 3) by summing over the input channels. The 20-way linear
    layer is not in the file and keeps its initialisation. Raises WeightsError naming the file."""
    tensors, _ = read_weights_file(path)
    tensors = {k: v for k, v in tensors.items() if not k.startswith("classifier.")}
    stem = "features.0.0.weight"
    if stem in tensors and tensors[stem].ndim == 4 and tensors[stem].shape[1] == 3:
        tensors[stem] = tensors[stem].sum(dim=1, keepdim=True)
    state = model.features.state_dict()
    problem = state_mismatch({f"features.{k}": v for k, v in state.items()}, tensors,
                             optional=lambda k: k.endswith("num_batches_tracked"))
    if problem:
        raise WeightsError(f"{path}: not a MobileNetV2 file for this classifier ({model.config}) — {problem}")
    for key, value in tensors.items():
        name = key.removeprefix("features.")
        state[name] = value.to(state[name].dtype)
    return state
