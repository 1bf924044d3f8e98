"""D — DMENet's patch discriminator on ``gan_feat`` (``feature_discriminator``, docs/method.md §3).

Five 4×4 stride-2 convs without bias, TF ``SAME`` padding ((1, 1) on even, (1, 2) on odd sizes); h0..h3
(64w, 128w, 256w, 512w channels) are followed by BN(beta) → LReLU 0.2; h4 gives one logit per patch. He init,
Xavier on h4. 2,827,200 parameters at width 1; a 240² input gives 8×8 logits (240→120→60→30→15→8).
"""

from __future__ import annotations

from torch import Tensor, nn

from dmenet.models.config import scaled
from dmenet.models.layers import LRELU_SLOPE, BetaBatchNorm, SameConv2d, he_init, xavier_init


class Discriminator(nn.Module):
    """forward(features (B, C, H, W) = gan_feat) -> logits (B, 1, ⌈H/32⌉, ⌈W/32⌉); synthetic = 1, real = 0."""

    def __init__(self, in_channels: int = 64, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for c in (64, 128, 256, 512):
            cout = scaled(c, width)
            conv = SameConv2d(cin, cout, 4, stride=2, bias=False)
            he_init(conv)
            layers += [conv, BetaBatchNorm(cout), nn.LeakyReLU(LRELU_SLOPE)]
            cin = cout
        last = SameConv2d(cin, 1, 4, stride=2, bias=False)
        xavier_init(last)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        """(B, in_channels, H, W) gan_feat → (B, 1, ⌈H/32⌉, ⌈W/32⌉) patch logits (no unit; > 0 leans synthetic);
        ValueError unless 4-D."""
        if features.ndim != 4:
            raise ValueError(f"features must be (B, C, H, W), got {tuple(features.shape)}")
        return self.net(features)
