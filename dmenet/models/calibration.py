"""S — DMENet's sharpness calibration network (``Binary_Net``, docs/method.md §3): a per-pixel 1×1 conv stack.

Channels 64, 64, 64, 32, 32, 32, 16, 16, 16 (×width), each 1×1 conv (bias) → BN(beta) → LReLU 0.2, then a 1×1 conv
to one logit (1 = blurred). 14,065 parameters at width 1. Trained with B's output on labelled real crops; not used
by the defocus estimate itself.
"""

from __future__ import annotations

from torch import Tensor, nn

from dmenet.models.config import scaled
from dmenet.models.layers import CBL, xavier_init

CALIB_CHANNELS = (64, 64, 64, 32, 32, 32, 16, 16, 16)


class Calibration(nn.Module):
    """forward(defocus (B, 1, H, W) in [0, 1]) -> logits (B, 1, H, W); sigmoid gives P(blurred)."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for c in CALIB_CHANNELS:
            cout = scaled(c, width)
            layers.append(CBL(cin, cout, kernel=1))
            cin = cout
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(cin, 1, 1)
        xavier_init(self.out)

    def forward(self, defocus: Tensor) -> Tensor:
        """(B, 1, H, W) label σ/σ_max in [0, 1] (B's output) → (B, 1, H, W) logits (no unit; sigmoid = P(blurred)),
        any H, W (1×1 convs); ValueError unless 4-D with one channel."""
        if defocus.ndim != 4 or defocus.shape[1] != 1:
            raise ValueError(f"defocus must be (B, 1, H, W), got {tuple(defocus.shape)}")
        return self.out(self.body(defocus))
