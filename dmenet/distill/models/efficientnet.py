"""EfficientNet-B0…B7 and EfficientNet-Lite0…4 encoders with lukemelas' parameter names (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` …, ``_conv_head``, ``_bn1``), so ImageNet files in that layout load strictly.

Input: (B, 3, H, W) normalised RGB; :meth:`EfficientNet.forward` returns the stem-to-head feature list the U-Net
needs. Convolutions use TF "SAME" padding (asymmetric for stride 2), as the TF-trained weights expect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmenet.models.weights import state_mismatch
from syndof.choices import Choice, parse_choice

# (repeats, kernel, stride, expand ratio, input filters, output filters) of the B0 / Lite0 stages.
BASE_BLOCKS = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
               (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))

# name: (width multiplier, depth multiplier, lite)
VARIANTS = {
    "b0": (1.0, 1.0, False), "b1": (1.0, 1.1, False), "b2": (1.1, 1.2, False), "b3": (1.2, 1.4, False),
    "b4": (1.4, 1.8, False), "b5": (1.6, 2.2, False), "b6": (1.8, 2.6, False), "b7": (2.0, 3.1, False),
    "lite0": (1.0, 1.0, True), "lite1": (1.0, 1.1, True), "lite2": (1.1, 1.2, True), "lite3": (1.2, 1.4, True),
    "lite4": (1.4, 1.8, True),
}
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TF's 0.99 decay in PyTorch's convention


class SkipAt(Choice):
    """Which block's output is the U-Net skip at each resolution (``student.skip_at``): FIRST = the first block at
    that resolution (the released EfficientUnet's hook quirk), LAST = the last block at that resolution."""

    FIRST = "first"
    LAST = "last"


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channel count scaled by ``width`` and rounded to a multiple of ``divisor`` (never down by more than 10 %)."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * scaled else new)


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding computed from the input size (extra pixel bottom / right)."""

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) → (B, C_out, ⌈H/stride⌉, ⌈W/stride⌉), zero-padded as TF ``SAME``."""
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: [1×1 expand–BN–act] → k×k depthwise–BN–act → [SE] → 1×1 project–BN
    → [+ x].

    Drop-connect (stochastic depth, training only) scales the residual branch per sample."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, se_ratio: float,
                 act: type[nn.Module], drop_connect: float):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = Conv2dSame(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        if se_ratio > 0:
            squeezed = max(1, int(cin * se_ratio))
            self._se_reduce = Conv2dSame(mid, squeezed, 1)
            self._se_expand = Conv2dSame(squeezed, mid, 1)
        self._project_conv = Conv2dSame(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.act = act()
        self.expand, self.se = expand != 1, se_ratio > 0
        self.residual = stride == 1 and cin == cout
        self.drop_connect = drop_connect

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) → (B, C_out, H/stride, W/stride); the residual (with drop-connect in training) only when
        stride 1 and C_in = C_out."""
        h = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        h = self.act(self._bn1(self._depthwise_conv(h)))
        if self.se:
            s = F.adaptive_avg_pool2d(h, 1)
            h = h * torch.sigmoid(self._se_expand(self.act(self._se_reduce(s))))
        h = self._bn2(self._project_conv(h))
        if not self.residual:
            return h
        if self.training and self.drop_connect > 0:
            keep = 1.0 - self.drop_connect
            mask = torch.rand(h.shape[0], 1, 1, 1, dtype=h.dtype, device=h.device) < keep
            h = h * mask / keep
        return h + x


@dataclass(frozen=True)
class BlockSpec:
    cin: int
    cout: int
    kernel: int
    stride: int
    expand: int


def block_specs(variant: str) -> list[BlockSpec]:
    """The per-block layout of a variant (Lite keeps the first and last stage's repeat count unscaled)."""
    width, depth, lite = VARIANTS[variant]
    specs: list[BlockSpec] = []
    last = len(BASE_BLOCKS) - 1
    for i, (reps, k, s, e, cin, cout) in enumerate(BASE_BLOCKS):
        cin_r, cout_r = round_filters(cin, width), round_filters(cout, width)
        n = reps if lite and i in (0, last) else int(math.ceil(depth * reps))
        for j in range(n):
            specs.append(BlockSpec(cin_r if j == 0 else cout_r, cout_r, k, s if j == 0 else 1, e))
    return specs


class EfficientNet(nn.Module):
    """Encoder without the classifier (``_fc`` is not built; ImageNet files drop it explicitly on load).

    forward(x: (B, 3, H, W), H, W multiples of 32) -> list of features: the output of the first block at each new
    resolution (1/2, 1/4, 1/8, 1/16: the released EfficientUnet's hook quirk, ``skip_at="first"``) or of the last
    block at that resolution (``skip_at="last"``), then the head (1/32).

    Attributes:
        skip_channels: channels of the four skips (1/2 … 1/16); head_channels: channels of the head.
    """

    def __init__(self, variant: str = "lite0", drop_connect: float = 0.2, skip_at: SkipAt | str = SkipAt.FIRST):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet variant {variant!r}; choose from {', '.join(VARIANTS)}")
        skip_at = parse_choice(SkipAt, skip_at, "skip_at")
        width, _, lite = VARIANTS[variant]
        act = nn.ReLU6 if lite else nn.SiLU
        se = 0.0 if lite else 0.25
        stem = 32 if lite else round_filters(32, width)
        head = 1280 if lite else round_filters(1280, width)
        specs = block_specs(variant)
        self._conv_stem = Conv2dSame(3, stem, 3, stride=2, bias=False)
        self._bn0 = _bn(stem)
        self._blocks = nn.ModuleList(
            MBConv(s.cin, s.cout, s.kernel, s.stride, s.expand, se, act, drop_connect * i / len(specs))
            for i, s in enumerate(specs))
        self._conv_head = Conv2dSame(specs[-1].cout, head, 1, bias=False)
        self._bn1 = _bn(head)
        self.act = act()
        # block index whose output is each skip (the first 4 resolutions after the stem's 1/2)
        scale, firsts, lasts = 2, [], []
        for i, s in enumerate(specs):
            scale *= s.stride
            if i == 0 or s.stride > 1:
                firsts.append(i)
                if i:
                    lasts.append(i - 1)
        lasts.append(len(specs) - 1)
        taps = firsts if skip_at is SkipAt.FIRST else lasts
        self.skip_blocks = tuple(taps[:4])
        self.skip_channels = tuple(specs[i].cout for i in self.skip_blocks)
        self.head_channels = head
        self.variant = variant

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) image already normalised by the caller (the student's ``normalize``), H, W multiples of 32
        → [four skips (B, :attr:`skip_channels`[i], H/2^(i+1), W/2^(i+1)), head (B, :attr:`head_channels`, H/32,
        W/32)]; no unit."""
        x = self.act(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.skip_blocks:
                feats.append(x)
        feats.append(self.act(self._bn1(self._conv_head(x))))
        return feats


CLASSIFIER_KEYS = ("_fc.weight", "_fc.bias")


def load_imagenet(encoder: EfficientNet, state: dict[str, Tensor]) -> None:
    """Load a lukemelas-layout ImageNet state dict strictly, dropping only the classifier (``_fc.*``).

    Raises:
        ValueError: a missing or unexpected key, or a shape mismatch, named.
    """
    state = {k: v for k, v in state.items() if k not in CLASSIFIER_KEYS}
    problem = state_mismatch(encoder.state_dict(), state)
    if problem:
        raise ValueError(f"ImageNet file does not fit efficientnet-{encoder.variant}: {problem}")
    encoder.load_state_dict(state, strict=True)
