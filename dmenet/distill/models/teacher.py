"""The Distill-DBDGAN teacher (released ``model/Teacher_for_KD.py``): encoder → [DenseASPP ⊕ self-attention] →
U-Net decoder with bilinear ×2 steps → 1×1 → blur logits.

Encoders: Cadene's SE-ResNeXt50/101 32×4d (``encoder.layer0.conv1`` … ``encoder.last_linear``: a Cadene ImageNet
file loads strictly into ``teacher.encoder``), or the project's VGG16 (``../shared/weights``) for the CPU variant.
Skips at 1/2, 1/4, 1/8; bottleneck at 1/16 (SE-ResNeXt without its max-pool, as released).

Fixed against the release: its last ``F.dropout2d(p=0.2)`` had no ``training=`` argument, so it stayed active in
eval mode (every prediction random, scaled by 1/0.8); here it follows ``self.training``. ``dead_weights=True``
also builds the modules the release stores but never runs (SA2_Ex1–4, the ConvTranspose ``deconv`` branches, the
ImageNet classifier) so the stored parameter count matches.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmenet.distill.models.bounds import (MAX_ASPP_UNITS, MAX_DILATION, MAX_SA_REDUCTION, require_rate,
                                          require_widths)
from syndof.choices import Choice, choices, parse_choice


class Backbone(Choice):
    """Teacher encoder (``teacher.backbone``): SE_RESNEXT101 / SE_RESNEXT50 = Cadene's SE-ResNeXt101 / 50 32×4d (the
    released teacher: 101), VGG16 = the project's VGG16 in the Caffe convention (the CPU variant T-cpu)."""

    SE_RESNEXT101 = "se_resnext101"
    SE_RESNEXT50 = "se_resnext50"
    VGG16 = "vgg16"


BACKBONES = choices(Backbone)
SE_RESNEXT_DEPTHS = {Backbone.SE_RESNEXT101: 101, Backbone.SE_RESNEXT50: 50}


@dataclass(frozen=True)
class TeacherConfig:
    """Teacher architecture (defaults: the CPU variant T-cpu of docs/distill.md).

    Attributes:
        backbone: "se_resnext101" | "se_resnext50" (Cadene layout) | "vgg16" (project VGG16, Caffe convention).
        aspp_mid, aspp_growth, aspp_dilations, aspp_dropout: DenseASPP unit widths (1×1 → mid, 3×3 → growth),
            dilations and Dropout2d rate (released: 1024, 128, (2, 4, 6, 8), 0.1).
        sa_reduction: query/key channels = C / sa_reduction (released 8).
        decoder: outputs of dec4, dec3, dec2, dec1 (released num_filters 32: 256, 256, 64, 128).
        dropout: Dropout2d before the 1×1 output (released 0.2; training only here).
        dead_weights: build the released but unused modules (SA2_Ex1–4, deconv branches; parameter-count fidelity).
        classifier: keep Cadene's ImageNet ``last_linear`` (2.05 M, unused) so a full Cadene file loads strictly.
        vgg_weights: ImageNet file for the VGG16 backbone (train.init_imagenet).

    Bounds (:mod:`dmenet.distill.models.bounds`, checked here, so for a config and a model sidecar alike): widths
    1 … MAX_WIDTH channels, at most MAX_ASPP_UNITS dilations of 1 … MAX_DILATION, sa_reduction 1 …
    MAX_SA_REDUCTION, both dropout rates in [0, 1); ValueError naming the key.
    """

    backbone: str = "vgg16"
    aspp_mid: int = 256
    aspp_growth: int = 64
    aspp_dilations: tuple[int, ...] = (2, 4, 6, 8)
    aspp_dropout: float = 0.1
    sa_reduction: int = 8
    decoder: tuple[int, ...] = (256, 256, 128, 64)
    dropout: float = 0.2
    dead_weights: bool = False
    classifier: bool = False
    vgg_weights: str = "../shared/weights/vgg16_imagenet_caffe_rgb.safetensors"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"teacher backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if len(self.decoder) != 4:
            raise ValueError(f"teacher decoder needs 4 widths, got {self.decoder}")
        require_widths("teacher.aspp_mid", self.aspp_mid)
        require_widths("teacher.aspp_growth", self.aspp_growth)
        require_widths("teacher.decoder", self.decoder)
        dilations = self.aspp_dilations
        if len(dilations) > MAX_ASPP_UNITS or not all(1 <= d <= MAX_DILATION for d in dilations):
            raise ValueError(f"teacher.aspp_dilations must be at most {MAX_ASPP_UNITS} dilations of 1 … "
                             f"{MAX_DILATION} px, got {list(dilations)}")
        if not 1 <= self.sa_reduction <= MAX_SA_REDUCTION:
            raise ValueError(f"teacher.sa_reduction must be 1 … {MAX_SA_REDUCTION}, got {self.sa_reduction}")
        require_rate("teacher.aspp_dropout", self.aspp_dropout)
        require_rate("teacher.dropout", self.dropout)


FAITHFUL_TEACHER = TeacherConfig(backbone="se_resnext101", aspp_mid=1024, aspp_growth=128, decoder=(256, 256, 64, 128),
                                 dead_weights=True)


# ------------------------------------------------------------------------------------------ Cadene SE-ResNeXt
class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Squeeze-and-excitation: ``x`` (B, C, h, w) scaled per channel by a sigmoid gate in (0, 1) from its global
        mean; same shape."""
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SEResNeXtBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, groups: int, reduction: int, stride: int = 1,
                 downsample: nn.Module | None = None, base_width: int = 4):
        super().__init__()
        width = math.floor(planes * (base_width / 64)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.se_module = SEModule(planes * 4, reduction)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """Bottleneck 1×1 → grouped 3×3 (stride) → 1×1 + SE, plus the (downsampled) shortcut, then ReLU: (B,
        inplanes, h, w) → (B, 4·planes, h/stride, w/stride)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.se_module(self.bn3(self.conv3(out)))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class SEResNeXt(nn.Module):
    """Cadene ``se_resnext{50,101}_32x4d`` (layer0 = conv1 7×7/2 + bn1 + relu1 + pool, layer1…4, last_linear).

    forward(x) → [layer1 (256, 1/2), layer2 (512, 1/4), layer3 (1024, 1/8), layer4 (2048, 1/16)]: the teacher
    skips layer0's max-pool, as released. ``classifier`` keeps ``last_linear`` (unused) for key fidelity."""

    def __init__(self, depth: int = 101, classifier: bool = False):
        super().__init__()
        blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
        self.layer0 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)), ("bn1", nn.BatchNorm2d(64)),
            ("relu1", nn.ReLU(inplace=True)), ("pool", nn.MaxPool2d(3, stride=2, ceil_mode=True))]))
        self.inplanes = 64
        self.layer1 = self._make_layer(64, blocks[0], 1)
        self.layer2 = self._make_layer(128, blocks[1], 2)
        self.layer3 = self._make_layer(256, blocks[2], 2)
        self.layer4 = self._make_layer(512, blocks[3], 2)
        self.last_linear = nn.Linear(2048, 1000) if classifier else None
        self.channels = (256, 512, 1024, 2048)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [SEResNeXtBottleneck(self.inplanes, planes, 32, 16, stride, downsample)]
        self.inplanes = planes * 4
        layers += [SEResNeXtBottleneck(self.inplanes, planes, 32, 16) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) (the teacher passes RGB in [0, 1] as is), H, W multiples of 16 → [layer1 (B, 256, H/2, W/2),
        layer2 (B, 512, H/4, W/4), layer3 (B, 1024, H/8, W/8), layer4 (B, 2048, H/16, W/16)]; no unit."""
        x = self.layer0.relu1(self.layer0.bn1(self.layer0.conv1(x)))  # no pool (released input_adjust)
        f1 = self.layer1(x)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [f1, f2, f3, self.layer4(f3)]


class VGG16Taps(nn.Module):
    """The project's VGG16 (Caffe input convention) giving conv2_2 (1/2), conv3_3 (1/4), conv4_3 (1/8), conv5_3
    (1/16)."""

    def __init__(self):
        super().__init__()
        from dmenet.models.vgg import VGGEncoder

        self.vgg = VGGEncoder("vgg16", convention="caffe_rgb")
        self.channels = (128, 256, 512, 512)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x`` (B, 3, H, W) RGB in [0, 1] → [conv2_2 (B, 128, H/2, W/2), conv3_3 (256, 1/4), conv4_3 (512, 1/8),
        conv5_3 (512, 1/16)]."""
        return self.vgg(x)[1:]


# ---------------------------------------------------------------------------------------- context modules
class DenseASPP(nn.Module):
    """Densely connected atrous units; unit i sees the input and every earlier unit's output.

    forward((B, C, h, w)) → (B, C + n·growth, h, w), concatenated newest first as released."""

    def __init__(self, cin: int, mid: int, growth: int, dilations: tuple[int, ...], dropout: float):
        super().__init__()
        units = []
        for i, d in enumerate(dilations):
            c = cin + i * growth
            layers: list[tuple[str, nn.Module]] = [("norm1", nn.BatchNorm2d(c, momentum=0.0003))] if i else []
            layers += [("relu1", nn.ReLU()), ("conv1", nn.Conv2d(c, mid, 1)),
                       ("norm2", nn.BatchNorm2d(mid, momentum=0.0003)), ("relu2", nn.ReLU()),
                       ("conv2", nn.Conv2d(mid, growth, 3, dilation=d, padding=d))]
            units.append(nn.Sequential(OrderedDict(layers)))
        self.units = nn.ModuleList(units)
        self.dropout = dropout
        self.out_channels = cin + len(dilations) * growth
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, h, w) features → (B, :attr:`out_channels`, h, w) = [unit n's output, …, unit 1's, x] (growth
        channels each; dropout2d in train mode only); no unit."""
        feature = x
        for unit in self.units:
            y = F.dropout2d(unit(feature), self.dropout, training=self.training)
            feature = torch.cat([y, feature], dim=1)
        return feature


def self_attention(x: Tensor, query: Tensor, key: Tensor, value: Tensor, gamma: Tensor) -> Tensor:
    """SAGAN non-local block: ``γ · V·softmax(QᵀK)ᵀ + x``. x, value: (B, C, h, w); query, key: (B, C', h, w)."""
    b, c, h, w = x.shape
    energy = torch.bmm(query.flatten(2).transpose(1, 2), key.flatten(2))  # (B, hw, hw)
    attention = torch.softmax(energy, dim=-1)
    out = torch.bmm(value.flatten(2), attention.transpose(1, 2)).view(b, c, h, w)
    return gamma * out + x


class SelfAttention(nn.Module):
    """SAGAN self-attention with γ initialised to 0 (the block starts as the identity)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.key_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (B, C, h, w) → ``γ · attention(x) + x``, same shape (:func:`self_attention`)."""
        return self_attention(x, self.query_conv(x), self.key_conv(x), self.value_conv(x), self.gamma)


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """3×3 conv (padding 1, bias) → BatchNorm → ReLU, ``cin`` → ``cout`` channels, size kept."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """3×3 conv–BN–ReLU then bilinear ×2 (``upsample``); ``deconv``: the released, unused ConvTranspose branch."""

    def __init__(self, cin: int, cout: int, dead_middle: int | None = None):
        super().__init__()
        self.upsample = conv_bn_relu(cin, cout)
        if dead_middle is not None:
            self.deconv = nn.Sequential(conv_bn_relu(cin, dead_middle),
                                        nn.ConvTranspose2d(dead_middle, cout, 4, stride=2, padding=1),
                                        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, h, w) → (B, cout, 2h, 2w): conv–BN–ReLU, then bilinear ×2."""
        return F.interpolate(self.upsample(x), scale_factor=2, mode="bilinear", align_corners=False)


class Teacher(nn.Module):
    """forward(image: (B, 3, H, W) RGB in [0, 1], H, W multiples of 16) → blur logits (B, 1, H, W).

    :meth:`features` also returns the decoder outputs at 1/8, 1/4, 1/2 (dec4, dec3, dec2) for the feature term.
    The SE-ResNeXt variants take [0, 1] RGB as released (no normalisation); VGG16 applies its Caffe convention."""

    def __init__(self, config: TeacherConfig = TeacherConfig()):
        super().__init__()
        self.config = config
        backbone = parse_choice(Backbone, config.backbone, "teacher backbone")
        if backbone is Backbone.VGG16:
            self.encoder: nn.Module = VGG16Taps()
        else:
            self.encoder = SEResNeXt(SE_RESNEXT_DEPTHS[backbone], config.classifier)
        c1, c2, c3, c4 = self.encoder.channels
        self.aspp = DenseASPP(c4, config.aspp_mid, config.aspp_growth, config.aspp_dilations, config.aspp_dropout)
        self.attention = SelfAttention(c4, config.sa_reduction)
        d4, d3, d2, d1 = config.decoder
        middles = (2 * d4, 2 * d3, 4 * d2, d1) if config.dead_weights else (None,) * 4
        self.dec4 = DecoderBlock(self.aspp.out_channels + c4, d4, middles[0])
        self.dec3 = DecoderBlock(d4 + c3, d3, middles[1])
        self.dec2 = DecoderBlock(d3 + c2, d2, middles[2])
        self.dec1 = DecoderBlock(d2 + c1, d1, middles[3])
        self.outmask = nn.Conv2d(d1, 1, 1)
        if config.dead_weights:  # released SA2_Ex1…4 (with_attn=False, never called)
            self.unused_attention = nn.ModuleList(SelfAttention(c, 8) for c in (64, 320, 768, 1280))

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channel counts of the decoder outputs dec4, dec3, dec2 that :meth:`features` returns."""
        return tuple(self.config.decoder[:3])

    def features(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(blur logits (B, 1, H, W), decoder outputs dec4, dec3, dec2 at 1/8, 1/4, 1/2 (B, C_i, H/k, W/k), no unit)
        of ``image`` (B, 3, H, W) RGB in [0, 1], H and W multiples of 16."""
        f1, f2, f3, f4 = self.encoder(image)
        x = torch.cat([self.aspp(f4), self.attention(f4)], dim=1)
        x4 = self.dec4(x)
        x3 = self.dec3(torch.cat([x4, f3], dim=1))
        x2 = self.dec2(torch.cat([x3, f2], dim=1))
        x1 = self.dec1(torch.cat([x2, f1], dim=1))
        x1 = F.dropout2d(x1, self.config.dropout, training=self.training)  # released: always on (bug, fixed)
        return self.outmask(x1), [x4, x3, x2]

    def forward(self, image: Tensor) -> Tensor:
        """Blur logits (B, 1, H, W) (sigmoid: blur probability, 1 = blurred) of (B, 3, H, W) RGB in [0, 1]."""
        return self.features(image)[0]
