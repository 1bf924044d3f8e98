"""MobileNetV2 (width 1.0) encoder for the lite DMENet, in torchvision's layout ``features.0`` … ``features.13``.

Design (lite model):
- ``features.0`` … ``features.13`` are torchvision's MobileNetV2 blocks up to the last stride-16 block; blocks 14–18
  (1/32 and the 1280-channel head) are not built — DMENet's encoder stops at 1/16 (no pool5), and in the shared
  Keras file they are the part fine-tuned on a dog task.
- Skips: d1 = features.1 (16 ch, 1/2), d2 = features.3 (24 ch, 1/4), d3 = features.6 (32 ch, 1/8, also the
  perceptual tap of C), d4 = features.13 (96 ch, 1/16).
- d0 (full resolution) is a cheap trainable stem ``stem0``: 3×3 conv (replicate pad) 3 → ``d0_channels`` → BN(beta)
  → LReLU on the normalised image (not in any ImageNet file; always from scratch). It carries the fine detail the
  stride-2 stem discards, as conv1_2 does for VGG.
- Convs with stride 2 use TF ``SAME`` padding ((0, 1) on even sizes) and BatchNorm eps 1e-3, as Keras (the shared
  file's origin) computes; stride-1 depthwise convs zero-pad 1 on all sides. Torchvision-trained files (eps 1e-5,
  symmetric pad) differ by a small shift that fine-tuning absorbs.
"""

from __future__ import annotations

from torch import Tensor, nn

from dmenet.models.layers import CBL, SameConv2d
from dmenet.models.normalization import InputNormalization

BN_EPS_KERAS = 1e-3
# (expansion t, output channels c, repeats n, first stride s): torchvision's inverted-residual settings.
MBV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
MBV2_TAPS = (1, 3, 6, 13)  # features index whose output is d1..d4


def _conv(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Conv2d:
    if stride > 1:
        return SameConv2d(cin, cout, k, stride=stride, bias=False, groups=groups)
    return nn.Conv2d(cin, cout, k, stride=1, padding=(k - 1) // 2, bias=False, groups=groups)


class ConvBNReLU6(nn.Sequential):
    """torchvision ``Conv2dNormActivation``: keys ``0`` (conv), ``1`` (BN), ReLU6 at ``2``."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(_conv(cin, cout, k, stride, groups), nn.BatchNorm2d(cout, eps=BN_EPS_KERAS),
                         nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """torchvision ``InvertedResidual``: ``conv`` = [expand ConvBNReLU6] + depthwise ConvBNReLU6 + 1×1 conv + BN."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU6(cin, hidden, k=1))
        layers += [ConvBNReLU6(hidden, hidden, k=3, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS_KERAS)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) → (B, cout, H/stride, W/stride); + x when stride 1 and cin = cout."""
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Encoder(nn.Module):
    """forward(image: (B, 3, H, W) RGB [0, 1], H, W multiples of 16) -> [d0, d1, d2, d3, d4] at 1/1 … 1/16."""

    def __init__(self, convention: str = "minus_one_one", d0_channels: int = 16):
        super().__init__()
        self.normalize = InputNormalization(convention)
        blocks: list[nn.Module] = [ConvBNReLU6(3, 32, k=3, stride=2)]
        cin = 32
        for t, c, n, s in MBV2_SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*blocks)
        self.stem0 = CBL(3, d0_channels)
        self._init_weights()
        self.arch = "mobilenet_v2"
        self.channels = (d0_channels, 16, 24, 32, 96)
        self.perceptual_level = 3

    def _init_weights(self) -> None:
        for m in self.features.modules():  # torchvision's MobileNetV2 init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, levels: int = 5) -> list[Tensor]:
        """(B, 3, H, W) RGB in [0, 1] (normalised here to the weights' convention) → the first ``levels`` skips
        (d0 = stem0 always first; C stops after d3): d_i (B, :attr:`channels`[i], H/2^i, W/2^i), channels
        (d0_channels, 16, 24, 32, 96); no unit."""
        x = self.normalize(x)
        out = [self.stem0(x)]
        if levels <= 1:
            return out
        for i, block in enumerate(self.features):
            x = block(x)
            if i in MBV2_TAPS:
                out.append(x)
                if len(out) == levels:
                    break
        return out

    def perceptual_features(self, image: Tensor) -> Tensor:
        """The 1/8 tap (features.6 output, 32 ch) of RGB [0, 1] ``image``, without the full-resolution stem:
        (B, 3, H, W) → (B, 32, H/8, W/8) (d3 of :meth:`forward`); no unit."""
        x = self.normalize(image)
        for block in self.features[: MBV2_TAPS[2] + 1]:
            x = block(x)
        return x
