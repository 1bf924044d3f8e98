"""Input conventions of ImageNet weight files, applied inside the model to RGB in [0, 1]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# (channel order, scale, mean, std) applied as ((x[:, order]·scale) − mean) / std to RGB in [0, 1].
CONVENTIONS: dict[str, tuple[tuple[int, int, int], float, tuple[float, ...], tuple[float, ...]]] = {
    # paper's vgg19.npy (Caffe): ×255, RGB→BGR, minus the BGR mean, no std
    "caffe_bgr": ((2, 1, 0), 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    # Caffe weights with conv1_1 already reordered to RGB (the shared VGG16 file)
    "caffe_rgb": ((0, 1, 2), 255.0, (123.68, 116.779, 103.939), (1.0, 1.0, 1.0)),
    # torchvision's own ImageNet files
    "imagenet": ((0, 1, 2), 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # Keras MobileNetV2 (the shared file): x/127.5 − 1 on 0–255 = 2x − 1 on [0, 1]
    "minus_one_one": ((0, 1, 2), 2.0, (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
}


class InputNormalization(nn.Module):
    """RGB in [0, 1] → the encoder's input convention. Buffers ``order``, ``scale``, ``mean``, ``std`` are
    non-persistent (not in the state dict): they follow from ``convention``, which checkpoints store in their JSON.
    """

    def __init__(self, convention: str):
        super().__init__()
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown input convention {convention!r}; choose from {sorted(CONVENTIONS)}")
        order, scale, mean, std = CONVENTIONS[convention]
        self.convention = convention
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32), persistent=False)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, 3, H, W) RGB in [0, 1] → (B, 3, H, W) normalised as the encoder's weights expect."""
        return (x.index_select(1, self.order) * self.scale - self.mean) / self.std

    def extra_repr(self) -> str:
        """Module repr details: the convention's name."""
        return self.convention
