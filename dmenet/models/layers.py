"""Building blocks shared by DMENet's subnetworks, with TensorFlow-1 semantics where the port needs them.

- :class:`BetaBatchNorm`: TensorLayer 1.11.1 ``BatchNormLayer(gamma_init=None)`` — normalise, then add a learnable
  per-channel beta; no gamma (docs/method.md §11.3).
- :func:`tf_same_pad` / :func:`tf_same_pads`: TF ``SAME`` padding for strided convs, (1, 1) on even and (1, 2) on odd
  sizes for a 4×4/2 conv (docs/method.md §11.4).
- :func:`tf_nearest_resize_align_corners`: TF1 ``resize_nearest_neighbor(align_corners=True)`` (docs/method.md §11.2).
- :class:`CBL`: 3×3 conv (bias, replicate 1-px padding) → BetaBatchNorm → LeakyReLU(0.2), the decoder's unit.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # TF decay 0.9


class BetaBatchNorm(nn.Module):
    """BatchNorm over channels with a learnable shift (beta) and no scale (gamma fixed at 1).

    State dict: ``bias`` (C,), ``running_mean`` (C,), ``running_var`` (C,), ``num_batches_tracked`` ().
    Train mode normalises with batch statistics and updates the running ones (momentum 0.1, unbiased variance as in
    PyTorch; TF uses the biased one — negligible at 3×240²); eval mode uses the running statistics.
    Input (B, C, H, W) or (B, C); output same shape and dtype.
    """

    def __init__(self, num_features: int, eps: float = BN_EPS, momentum: float = BN_MOMENTUM):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) or (B, C), C = ``num_features`` → the same shape and dtype: (x − mean) / √(var + eps) + bias
        per channel (batch statistics in train mode, running ones in eval mode); unit that of ``x``."""
        if self.training and self.num_batches_tracked is not None:  # None inside batch_statistics
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias,
                            self.training, self.momentum, self.eps)

    def extra_repr(self) -> str:
        """Module repr details: channels, eps, momentum, gamma=None."""
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, gamma=None"


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF ``SAME`` on one axis.

    total = max((⌈n/s⌉−1)·s + k − n, 0), before = ⌊total/2⌋, after = the rest: (1, 1) for n = 240, (1, 2) for 15.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def tf_same_pad(x: Tensor, kernel: int, stride: int, value: float = 0.0) -> Tensor:
    """Zero-pad (B, C, H, W) ``x`` so that a VALID conv (kernel, stride) equals TF ``SAME``; output ⌈H/s⌉ × ⌈W/s⌉."""
    top, bottom = tf_same_pads(x.shape[-2], kernel, stride)
    left, right = tf_same_pads(x.shape[-1], kernel, stride)
    if top == bottom == left == right == 0:
        return x
    if top == left == 0 and value == 0.0 and not torch.jit.is_tracing():
        # the usual case (even sizes: pad after only): copy once and zero just the new rows and columns, rather
        # than F.pad's fill of the whole output followed by the copy (same values; ~2x less memory traffic).
        # Not while tracing (ONNX export): the tracer would bake the buffer into the graph as a constant.
        b, c, h, w = x.shape
        out = torch.empty((b, c, h + bottom, w + right), dtype=x.dtype, device=x.device,
                          memory_format=memory_format_of(x))
        out[:, :, :h, :w] = x
        out[:, :, h:, :] = 0.0
        out[:, :, :h, w:] = 0.0
        return out
    return F.pad(x, (left, right, top, bottom), value=value)


def memory_format_of(x: Tensor) -> torch.memory_format:
    """channels-last for a 4-D tensor stored channels-last (and not also plain contiguous), else contiguous."""
    return torch.channels_last if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


def training_layout(channels_last: bool) -> torch.memory_format:
    """The memory layout a trainer's ``train.channels_last`` asks for (networks and image batches)."""
    return torch.channels_last if channels_last else torch.contiguous_format


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameter names) computing TF ``SAME`` padding from the input size at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True,
                 groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) → (B, C_out, ⌈H/stride⌉, ⌈W/stride⌉), zero-padded as TF ``SAME``."""
        k, s = self.kernel_size[0], self.stride[0]
        return super().forward(tf_same_pad(x, k, s))


def tf_nearest_indices(in_size: int, out_size: int, device: torch.device | None = None) -> Tensor:
    """Source indices of TF1 ``resize_nearest_neighbor(align_corners=True)`` along one axis: (out_size,) int64 in
    0 … in_size − 1 (on ``device``; the CPU for None).

    ``min(roundf(i·scale), in−1)`` with ``scale = (in−1)/(out−1)`` in float32 (``in/out`` when out == 1), rounding
    half away from zero. 240 → 15 gives 0, 17, 34, …, 239 — not PyTorch ``nearest``'s 0, 16, …, 224.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got in={in_size}, out={out_size}")
    if out_size > 1:
        scale = torch.tensor(in_size - 1, dtype=torch.float32) / torch.tensor(out_size - 1, dtype=torch.float32)
    else:
        scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    v = torch.arange(out_size, dtype=torch.float32) * scale  # float32 product, as TF
    whole = torch.trunc(v)
    rounded = whole + ((v - whole) >= 0.5).to(torch.float32)  # v ≥ 0: half away from zero (roundf)
    idx = torch.clamp(rounded.to(torch.int64), max=in_size - 1)
    return idx if device is None else idx.to(device)


def tf_nearest_resize_align_corners(x: Tensor, size: tuple[int, int]) -> Tensor:
    """TF1 ``resize_nearest_neighbor(x, size, align_corners=True)`` for (…, H, W) tensors (any dtype/device).

    Used for the auxiliary targets (docs/method.md §4, §11.2): a 240² map goes to 15², 30², 60², 120².
    """
    h, w = int(size[0]), int(size[1])
    rows = tf_nearest_indices(x.shape[-2], h, x.device)
    cols = tf_nearest_indices(x.shape[-1], w, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def upsample2x(x: Tensor) -> Tensor:
    """×2 nearest upsampling = TF align-corners nearest for exact ×2 (pixel duplication, docs/method.md §11.2)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def conv3x3(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    """3×3 stride-1 conv with 1-px replicate padding (TF ``SYMMETRIC`` 1-px pad + VALID, docs/method.md §11.1)."""
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="replicate", bias=bias)


class CBL(nn.Sequential):
    """3×3 conv (bias, replicate pad) → BetaBatchNorm → LeakyReLU(0.2). Keys: ``conv.*``, ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        conv = conv3x3(cin, cout) if kernel == 3 else nn.Conv2d(cin, cout, kernel)
        super().__init__()
        self.conv = conv
        self.bn = BetaBatchNorm(cout)
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        he_init(self.conv)


# ------------------------------------------------------------------------------------------------------ initialisers
def he_init(conv: nn.Conv2d) -> None:
    """He / variance scaling (factor 2, fan-in, truncated normal) for convs followed by (L)ReLU; bias 0."""
    fan_in = conv.weight[0].numel()
    std = math.sqrt(2.0 / fan_in)
    nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def xavier_init(conv: nn.Conv2d) -> None:
    """Xavier (Glorot uniform) for convs feeding a sigmoid / logit; bias 0."""
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def check_image(x: Tensor, channels: int, name: str = "image", multiple: int = 16) -> tuple[int, int, int, int]:
    """Raise ValueError unless ``x`` is (B, channels, H, W) with H, W multiples of ``multiple``; returns the shape."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must be (B, {channels}, H, W), got {tuple(x.shape)}")
    b, c, h, w = x.shape
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(f"{name} height and width must be positive multiples of {multiple}, got {h}×{w} "
                         f"(crop or pad first; inference crops top-left)")
    return b, c, h, w


@contextlib.contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Within the block, every BatchNorm of ``module`` normalises with the statistics of the current batch.

    The moving-statistics buffers are detached for the block (set to None, so ``F.batch_norm`` neither reads nor
    updates them) and the same tensor objects put back afterwards: their values *and* in-place version counters
    are unchanged, so caches keyed on them (``dmenet.models.fuse.cached_inference_blur``) stay valid. Other
    layers keep their mode. Used for per-image statistics at inference (``BNMode.IMAGE`` of the recipe).
    """
    names = ("running_mean", "running_var", "num_batches_tracked")
    bns = [m for m in module.modules() if isinstance(m, (BetaBatchNorm, nn.modules.batchnorm._BatchNorm))]
    saved = [(m.training, {k: m._buffers[k] for k in names}) for m in bns]
    for m in bns:
        m.train()
        for k in names:
            m._buffers[k] = None
    try:
        yield
    finally:
        for m, (training, buffers) in zip(bns, saved):
            m.train(training)
            m._buffers.update(buffers)
