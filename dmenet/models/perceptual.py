"""C — the frozen perceptual (content preservation) network (docs/method.md §3).

A separate copy of the encoder architecture initialised from the same ImageNet file (not from B's fine-tuned
encoder), frozen: parameters have ``requires_grad=False`` and the module stays in eval mode even when the parent
is put in train mode. Gradients still flow to its input (L_perc trains B through it).
Input: a 1-channel map in [0, 1] tiled to 3 channels and treated as an RGB image (normalised by the encoder's
convention). Feature: the 1/8 tap — conv4_4 after ReLU (vgg19), conv4_3 (vgg16), features.6 (mobilenet_v2).
"""

from __future__ import annotations

from torch import Tensor, nn


class Perceptual(nn.Module):
    """forward(map (B, 1, H, W) in [0, 1], H, W multiples of 16) -> features (B, C4, H/8, W/8)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "Perceptual":
        """Always eval: C's BatchNorm statistics (MobileNetV2) never change. ``mode`` is ignored."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, H, W) map in [0, 1] (a label σ/σ_max), tiled to 3 channels as RGB → the encoder's 1/8 features
        (B, C4, H/8, W/8): 512 ch after ReLU (VGG), 32 ch (MobileNetV2); no unit. ValueError unless (B, 1, H, W)."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"map must be (B, 1, H, W), got {tuple(x.shape)}")
        return self.encoder.perceptual_features(x.expand(-1, 3, -1, -1))
