"""DMENet's U-Net decoder (``UNet_up``, docs/method.md §2): four ×2 stages, five aux heads, residual refinement, head.

Channel plan at width w (paper w = 1): u3 256w, u2 128w, u1 64w, u0 64w (= gan_feat), aux CBL 256w/128w/64w/32w/32w,
refinement 64w, head 64w → 32w → 1. Every 3×3 conv pads 1 px by replication; every CBL is conv(bias) → BN(beta) →
LReLU 0.2; upsampling is ×2 nearest; concatenation is [upsampled, skip].

With ``tail_scale`` 2 (a lite speed option, not the paper) the tail (u0, aux0, refinement, head) runs at 1/2
resolution: u0 reads [u1's output, space_to_depth(d0)], and the head's logit is upsampled ×2 bilinearly
(``align_corners=False``) before the sigmoid, so the output keeps the input's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmenet.models.config import TAIL_SCALES, scaled
from dmenet.models.layers import CBL, BetaBatchNorm, conv3x3, upsample2x, xavier_init


class AuxHead(nn.Module):
    """CBL(cin → mid) → 3×3 conv → 1 (bias, Xavier) → BN(beta) on the 1-channel map → sigmoid; (B,1,h,w) in [0,1]."""

    def __init__(self, cin: int, mid: int):
        super().__init__()
        self.cbl = CBL(cin, mid)
        self.conv = conv3x3(mid, 1)
        self.bn = BetaBatchNorm(1)
        xavier_init(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, h, w) features → (B, 1, h, w) label σ/σ_max in [0, 1] (sigmoid), same h, w (3×3, pad 1)."""
        return torch.sigmoid(self.bn(self.conv(self.cbl(x))))


class ResBlock(nn.Module):
    """main: CBL → CBL; shortcut: 1×1 conv → BN(beta) → LReLU; out = main + shortcut, no activation after the sum."""

    def __init__(self, ch: int):
        super().__init__()
        self.main = nn.Sequential(CBL(ch, ch), CBL(ch, ch))
        self.shortcut = CBL(ch, ch, kernel=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, ch, h, w) → (B, ch, h, w): main + shortcut."""
        return self.main(x) + self.shortcut(x)


def _stage(cin: int, cout: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[CBL(cin if i == 0 else cout, cout) for i in range(n)])


class Decoder(nn.Module):
    """forward(skips [d0 … d4] at 1/1 … 1/16) -> (defocus (B,1,H,W) in [0,1], aux [1/16 … 1/t], gan_feat at 1/t),
    t = ``tail_scale``.

    Args:
        skip_channels: channels of d0..d4 (VGG: 64, 128, 256, 512, 512).
        width: channel multiplier (1.0 = paper, 6,915,435 parameters on VGG skips).
        refine_blocks: number of residual refinement blocks (paper 7).
        tail_scale: 1 (paper) or 2: resolution divisor of the tail (u0, aux0, refinement, head).
    """

    def __init__(self, skip_channels: tuple[int, ...], width: float = 1.0, refine_blocks: int = 7,
                 tail_scale: int = 1):
        super().__init__()
        if tail_scale not in TAIL_SCALES:
            raise ValueError(f"tail_scale must be one of {TAIL_SCALES}, got {tail_scale!r}")
        self.tail_scale = tail_scale
        c0, c1, c2, c3, c4 = skip_channels
        n3, n2, n1, n0 = (scaled(c, width) for c in (256, 128, 64, 64))
        self.gan_channels, self.u3_channels = n0, n3
        self.aux4 = AuxHead(c4, scaled(256, width))
        self.u3 = _stage(c4 + c3, n3, 3)
        self.aux3 = AuxHead(n3, scaled(128, width))
        self.u2 = _stage(n3 + c2, n2, 3)
        self.aux2 = AuxHead(n2, scaled(64, width))
        self.u1 = _stage(n2 + c1, n1, 3)
        self.aux1 = AuxHead(n1, scaled(32, width))
        self.u0 = CBL(n1 + c0 * tail_scale ** 2, n0)
        self.aux0 = AuxHead(n0, scaled(32, width))
        self.refine = nn.Sequential(*[ResBlock(n0) for _ in range(refine_blocks)])
        head_mid = scaled(32, width)
        self.head = nn.Sequential(CBL(n0, n0), CBL(n0, head_mid))
        self.head_out = conv3x3(head_mid, 1)
        xavier_init(self.head_out)

    def _decode(self, skips: list[Tensor], with_aux: bool) -> tuple[Tensor, list[Tensor], Tensor, Tensor, Tensor]:
        """The decoder's pass: (logit (B,1,H,W), aux, gan_feat, u3's output at 1/8, the refinement output at 1/t)."""
        d0, d1, d2, d3, d4 = skips
        aux: list[Tensor] = []
        if with_aux:
            aux.append(self.aux4(d4))
        u3 = n = self.u3(torch.cat([upsample2x(d4), d3], 1))
        if with_aux:
            aux.append(self.aux3(n))
        n = self.u2(torch.cat([upsample2x(n), d2], 1))
        if with_aux:
            aux.append(self.aux2(n))
        n = self.u1(torch.cat([upsample2x(n), d1], 1))
        if with_aux:
            aux.append(self.aux1(n))
        t = self.tail_scale
        if t == 1:
            gan_feat = self.u0(torch.cat([upsample2x(n), d0], 1))
        else:
            gan_feat = self.u0(torch.cat([n, F.pixel_unshuffle(d0, t)], 1))
        if with_aux:
            aux.append(self.aux0(gan_feat))
        refined = self.refine(gan_feat)
        logit = self.head_out(self.head(refined))
        if t > 1:
            logit = F.interpolate(logit, scale_factor=float(t), mode="bilinear", align_corners=False)
        return logit, aux, gan_feat, u3, refined

    def forward(self, skips: list[Tensor], with_aux: bool = True) -> tuple[Tensor, list[Tensor], Tensor]:
        """``skips`` [d0 … d4]: (B, skip_channels[i], H/2^i, W/2^i) → (defocus (B, 1, H, W) label σ/σ_max in
        [0, 1], aux: five (B, 1, H/s, W/s) maps in [0, 1] for s = 16, 8, 4, 2, t (coarse → fine), gan_feat
        (B, :attr:`gan_channels`, H/t, W/t)), t = ``tail_scale``. ``with_aux=False`` skips the five auxiliary heads
        (they only feed training losses); aux is then []."""
        logit, aux, gan_feat, _, _ = self._decode(skips, with_aux)
        return torch.sigmoid(logit), aux, gan_feat

    @property
    def feature_channels(self) -> int:
        """Channels of :meth:`detection_features`: 1 + refinement (64w) + u3 (256w); 41 for the lite width 0.125."""
        return 1 + self.gan_channels + self.u3_channels

    def detection_features(self, skips: list[Tensor]) -> Tensor:
        """B's label and two of its inner maps, per pixel, for a detection head that needs no second pass
        (:class:`dmenet.models.detection_head.HeadInputs` ``FEATURES``): (B, :attr:`feature_channels`, H, W) =
        [the label in [0, 1] (``forward``'s output), the refinement output (bilinear ×t), u3's output (bilinear ×8)],
        bilinear with ``align_corners=False``, contiguous (channel-planar whatever the model's memory format: each map
        is upsampled straight into its planes). Channel 0 equals ``forward(skips)[0]`` exactly."""
        logit, _, _, u3, refined = self._decode(skips, with_aux=False)
        (b, _, h, w), n0 = logit.shape, refined.shape[1]
        out = logit.new_empty((b, self.feature_channels, h, w))  # contiguous: channel-planar
        torch.sigmoid(logit, out=out[:, :1])
        for start, x in ((1, refined), (1 + n0, u3)):
            x, part = x.contiguous(), out[:, start:start + x.shape[1]]  # planar in, planar out: one write per map
            if x.shape[-2:] == (h, w):
                part.copy_(x)
            else:  # F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False), written in place
                torch.ops.aten.upsample_bilinear2d.out(x, [h, w], False, None, None, out=part)
        return out
