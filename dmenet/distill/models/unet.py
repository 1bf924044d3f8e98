"""The Distill-DBDGAN student: an EfficientNet encoder + a U-Net decoder (EfficientUnet layout).

Decoder step i: ``up_convs.i`` = ConvTranspose 2×2/2, concatenated with the encoder skip, ``double_convs.i`` =
2 × (3×3 conv–BN–ReLU). With ``concat_input`` a fifth step concatenates the input image at full resolution. The
released student is ``variant="b3"``, widths (512, 256, 128, 64, 32), ``concat_input=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dmenet.distill.models.bounds import require_rate, require_widths
from dmenet.distill.models.efficientnet import VARIANTS, EfficientNet, SkipAt
from syndof.choices import choices

# name: (mean, std) applied to RGB in [0, 1]
NORMALIZATIONS = {
    "lite": ((127 / 255,) * 3, (128 / 255,) * 3),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "none": ((0.0,) * 3, (1.0,) * 3),
}


@dataclass(frozen=True)
class StudentConfig:
    """Student architecture.

    Attributes:
        encoder: EfficientNet variant ("b0"…"b7", "lite0"…"lite4").
        decoder: channels of the five decoder steps (1/16, 1/8, 1/4, 1/2, 1/1).
        concat_input: the last step concatenates the RGB input (released: True).
        skip_at: "first" (released hook quirk) or "last" block of each resolution.
        normalize: "lite" ((255x − 127) / 128, the EfficientNet-Lite weights' convention), "imagenet" (mean/std)
            or "none" (the released code feeds [0, 1] straight in).
        drop_connect: stochastic-depth rate of the last block, in [0, 1).

    Bounds (:mod:`dmenet.distill.models.bounds`, checked here, so for a config and a model sidecar alike): decoder
    widths 1 … MAX_WIDTH channels; ValueError naming the key.
    """

    encoder: str = "lite0"
    decoder: tuple[int, ...] = (128, 64, 32, 24, 16)
    concat_input: bool = True
    skip_at: str = "first"
    normalize: str = "lite"
    drop_connect: float = 0.2

    def __post_init__(self) -> None:
        if self.encoder not in VARIANTS:  # was refused when the network was built, naming no key
            raise ValueError(f"student.encoder must be one of {', '.join(VARIANTS)}, got {self.encoder!r}")
        if self.skip_at not in choices(SkipAt):
            raise ValueError(f"student.skip_at must be one of {choices(SkipAt)}, got {self.skip_at!r}")
        if len(self.decoder) != 5:
            raise ValueError(f"student decoder needs 5 widths, got {self.decoder}")
        require_widths("student.decoder", self.decoder)
        require_rate("student.drop_connect", self.drop_connect)
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"student normalize must be one of {', '.join(NORMALIZATIONS)}, got {self.normalize!r}")


FAITHFUL_STUDENT = StudentConfig(encoder="b3", decoder=(512, 256, 128, 64, 32), normalize="none")


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """(3×3 conv (padding 1) → BatchNorm → ReLU) twice, ``cin`` → ``cout`` channels, size kept."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EffUNet(nn.Module):
    """forward(image: (B, 3, H, W) RGB in [0, 1], H, W multiples of 32) -> blur logits (B, 1, H, W).

    :meth:`features` returns (logits, decoder features at 1/8, 1/4, 1/2) for the feature constraint.
    """

    def __init__(self, config: StudentConfig = StudentConfig()):
        super().__init__()
        self.config = config
        self.encoder = EfficientNet(config.encoder, config.drop_connect, config.skip_at)
        skips = list(reversed(self.encoder.skip_channels))  # 1/16, 1/8, 1/4, 1/2
        cin = self.encoder.head_channels
        ups, convs = [], []
        for i, width in enumerate(config.decoder):
            if i == 4 and not config.concat_input:
                break
            skip = skips[i] if i < 4 else 3
            ups.append(nn.ConvTranspose2d(cin, width, 2, stride=2))
            convs.append(double_conv(width + skip, width))
            cin = width
        self.up_convs = nn.ModuleList(ups)
        self.double_convs = nn.ModuleList(convs)
        self.final_conv = nn.Conv2d(cin, 1, 1)
        mean, std = NORMALIZATIONS[config.normalize]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channel counts of the decoder features (1/8, 1/4, 1/2) that :meth:`features` returns."""
        return tuple(self.config.decoder[1:4])

    def features(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(blur logits (B, 1, H, W), decoder features at 1/8, 1/4, 1/2 (B, C_i, H/k, W/k), no unit) of ``image``
        (B, 3, H, W) RGB in [0, 1], H and W multiples of 32."""
        feats = self.encoder((image - self.mean) / self.std)
        x, skips = feats[-1], list(reversed(feats[:-1]))
        taps = []
        for i, (up, conv) in enumerate(zip(self.up_convs, self.double_convs)):
            x = up(x)
            x = conv(torch.cat([x, skips[i] if i < 4 else image], dim=1))
            if 1 <= i <= 3:
                taps.append(x)
        if not self.config.concat_input:
            x = nn.functional.interpolate(x, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return self.final_conv(x), taps

    def forward(self, image: Tensor) -> Tensor:
        """Blur logits (B, 1, H, W) (sigmoid: blur probability, 1 = blurred) of (B, 3, H, W) RGB in [0, 1]."""
        return self.features(image)[0]
