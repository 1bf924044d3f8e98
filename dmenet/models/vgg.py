"""VGG16/VGG19 encoders in torchvision's parameter layout (``features.N.weight``/``bias``), DMENet's ``VGG19_down``.

3×3 convs with 1-px replicate padding (TF ``SYMMETRIC``) + ReLU, 2×2/2 max-pool between the five blocks, no pool5.
Skips d0..d4 are the ReLU outputs of the last conv of each block (vgg19: conv1_2, conv2_2, conv3_4, conv4_4, conv5_4;
vgg16: conv1_2, conv2_2, conv3_3, conv4_3, conv5_3) at 1/1, 1/2, 1/4, 1/8, 1/16.
"""

from __future__ import annotations

from torch import Tensor, nn

from dmenet.models.layers import conv3x3
from dmenet.models.normalization import InputNormalization

# torchvision cfg "D" (vgg16) and "E" (vgg19) without the final "M" (no pool5).
VGG_CFGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


class VGGEncoder(nn.Module):
    """VGG conv stack. forward(image: (B, 3, H, W) RGB in [0, 1], H, W multiples of 16) -> [d0, …, d4].

    ``normalize`` (non-persistent buffers) maps RGB [0, 1] to the weights' input convention first.

    Attributes:
        channels: channels of d0..d4 (64, 128, 256, 512, 512).
        tap_indices: indices into ``features`` (the ReLU after each block's last conv) whose outputs are the skips.
        perceptual_level: skip index used by the perceptual network C (3 = conv4 block after ReLU).
    """

    def __init__(self, arch: str = "vgg19", convention: str = "caffe_bgr"):
        super().__init__()
        self.normalize = InputNormalization(convention)
        if arch not in VGG_CFGS:
            raise ValueError(f"unknown VGG arch {arch!r}")
        layers: list[nn.Module] = []
        taps: list[int] = []
        cin = 3
        for v in VGG_CFGS[arch]:
            if v == "M":
                taps.append(len(layers) - 1)  # ReLU before the pool
                layers.append(nn.MaxPool2d(2, 2))
            else:
                conv = conv3x3(cin, int(v))
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # torchvision's init
                nn.init.zeros_(conv.bias)
                layers += [conv, nn.ReLU(inplace=True)]
                cin = int(v)
        taps.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)
        self.arch = arch
        self.tap_indices = tuple(taps)
        self.channels = (64, 128, 256, 512, 512)
        self.perceptual_level = 3

    def forward(self, x: Tensor, levels: int = 5) -> list[Tensor]:
        """(B, 3, H, W) RGB in [0, 1] (normalised here to the weights' convention) → the first ``levels`` skips
        (stops early: C needs only 4): d_i (B, (64, 128, 256, 512, 512)[i], H/2^i, W/2^i), the ReLU before each
        pool (H/2^i rounded down by the pools); no unit."""
        out: list[Tensor] = []
        x = self.normalize(x)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.tap_indices:
                out.append(x)
                if len(out) == levels:
                    break
        return out

    def perceptual_features(self, image: Tensor) -> Tensor:
        """The conv4 block's last ReLU output (conv4_4 vgg19 / conv4_3 vgg16, 512 ch, 1/8) of RGB [0, 1] ``image``:
        (B, 3, H, W) → (B, 512, H/8, W/8) (d3 of :meth:`forward`); no unit."""
        return self.forward(image, self.perceptual_level + 1)[self.perceptual_level]
