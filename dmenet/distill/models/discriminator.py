"""Conditional PatchGAN discriminator for D1, D2, D3: input (image, blur map) → per-patch realism scores."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """forward(image (B, 3, H, W) in [0, 1], blur map (B, 1, H, W) in [0, 1]) → scores (B, 1, ~H/8, ~W/8).

    Three 4×4/2 convs (widths ``widths``) with LeakyReLU 0.2, then a 4×4/1 conv to one score; every conv has
    spectral normalisation (no BatchNorm), so the Lipschitz bound holds per layer."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 4
        for w in widths:
            layers += [spectral_norm(nn.Conv2d(cin, w, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = w
        layers.append(spectral_norm(nn.Conv2d(cin, 1, 4, stride=1, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor, blur: Tensor) -> Tensor:
        """``image`` (B, 3, H, W) RGB in [0, 1] and ``blur`` (B, 1, H, W) blur map in [0, 1] (both mapped to [−1, 1]
        here) → (B, 1, ⌊H/8⌋ − 1, ⌊W/8⌋ − 1) realism scores for H, W multiples of 8 (no unit, unbounded)."""
        return self.net(torch.cat([image * 2 - 1, blur * 2 - 1], dim=1))
