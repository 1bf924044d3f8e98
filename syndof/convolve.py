"""The layers' kernels as tensors and the convolutions both renderers apply (docs/method.md §9).

* :func:`layer_kernels`: per layer, None (in focus, ``c ≤ 1``) or a :class:`LayerKernel`: the Gaussian as its
  separable 1-D factor, the disc and polygon as 2-D kernels flipped for true convolution (the kernels themselves
  come from :mod:`syndof.psf`).
* :func:`symmetric_pad` and :func:`filter_symmetric`: MATLAB's ``imfilter(…, 'same', 'conv', 'symmetric')``.
* :class:`Conv`: the 'valid' convolution of padded windows, OpenCV's SIMD filter on CPU, torch ``conv2d`` on CUDA.

Borders: MATLAB ``'symmetric'`` = NumPy ``'symmetric'`` = OpenCV ``BORDER_REFLECT`` (edge pixel repeated), not
PyTorch ``'reflect'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from syndof import psf
from syndof.choices import parse_choice
from syndof.psf import Kernel


@dataclass
class LayerKernel:
    """One blurred layer's kernel as :func:`layer_kernels` prepares it: ``radius`` in px (the kernel is
    (2·radius + 1)² px) and either ``sep``, the (2·radius + 1,) 1-D factor of a separable Gaussian, or ``full``, the
    (2·radius + 1, 2·radius + 1) 2-D kernel already flipped for true convolution; the other is None. Weights sum to
    1, in the render's dtype, on its device."""

    radius: int
    sep: torch.Tensor | None  # 1-D separable factor, or None
    full: torch.Tensor | None  # 2-D kernel (already flipped for true convolution), or None


def layer_kernels(coc: np.ndarray, max_coc: int, kernel: Kernel | str, dtype, device) -> list[LayerKernel | None]:
    """Per layer: None for c ≤ 1 (no kernel), else the layer's :class:`~syndof.psf.Kernel` ``kernel`` (a member or
    its value; ValueError otherwise; Gaussians as separable factors); identical CoCs share one object."""
    kernel = parse_choice(Kernel, kernel, "kernel")
    cache: dict[float, LayerKernel] = {}
    out: list[LayerKernel | None] = []
    for c in coc.tolist():
        if c <= 1.0:
            out.append(None)
            continue
        if c not in cache:
            if kernel is Kernel.GAUSSIAN:
                g = psf.gaussian_kernel_1d(psf.coc_sigma(c), max_coc)
                cache[c] = LayerKernel(g.size // 2, torch.as_tensor(g, dtype=dtype, device=device), None)
            else:
                k2 = psf.make_kernel(c, max_coc, kernel)
                if k2.shape[0] != k2.shape[1] or k2.shape[0] % 2 == 0:
                    raise ValueError("kernels must be square with an odd side")
                k2 = np.ascontiguousarray(k2[::-1, ::-1])
                cache[c] = LayerKernel(k2.shape[0] // 2, None, torch.as_tensor(k2, dtype=dtype, device=device))
        out.append(cache[c])
    return out


def _conv_valid(x: torch.Tensor, k: LayerKernel) -> torch.Tensor:
    """'valid' convolution of (N, h, w) by the kernel: output (N, h − 2r, w − 2r)."""
    if k.radius == 0:
        return x * (k.sep[0] if k.sep is not None else k.full[0, 0])
    y = x.unsqueeze(1)
    if k.sep is not None:
        n = k.sep.numel()
        y = F.conv2d(y, k.sep.view(1, 1, 1, n))
        y = F.conv2d(y, k.sep.view(1, 1, n, 1))
    else:
        y = F.conv2d(y, k.full[None, None])
    return y.squeeze(1)


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """MATLAB/NumPy ``'symmetric'`` padding of the last two dims (edge pixel repeated; any pad size):
    (..., H, W) → (..., H + 2·pad, W + 2·pad), ``pad`` in px (a whole number ≥ 0; ValueError otherwise), dtype and
    device kept."""
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:  # one scalar test a layer
        raise ValueError(f"pad must be a whole number of px >= 0, got {pad!r}")
    if pad == 0:
        return x
    h, w = x.shape[-2:]
    ri = torch.as_tensor(np.pad(np.arange(h), pad, mode="symmetric"), device=x.device)
    ci = torch.as_tensor(np.pad(np.arange(w), pad, mode="symmetric"), device=x.device)
    return x.index_select(-2, ri).index_select(-1, ci)


def filter_symmetric(x: torch.Tensor, k: LayerKernel) -> torch.Tensor:
    """``imfilter(x, K, 'same', 'conv', 'symmetric')`` of (N, H, W): (N, H, W), same dtype (``k``: a prepared
    kernel with its radius in px)."""
    return _conv_valid(symmetric_pad(x, k.radius), k)


class Conv:
    """'valid' convolution of (N, h, w) windows: OpenCV's SIMD separable filter on CPU, torch conv2d on CUDA."""

    def __init__(self, device: torch.device):
        self.cpu = device.type == "cpu"
        self._np: dict[int, np.ndarray] = {}

    def __call__(self, x: torch.Tensor, k: LayerKernel) -> torch.Tensor:
        if not self.cpu or k.radius == 0:
            return _conv_valid(x, k)
        import cv2

        r = k.radius
        key = id(k)
        if key not in self._np:
            self._np[key] = (k.sep if k.sep is not None else k.full).cpu().numpy()
        kn = self._np[key]
        xn = x.numpy()
        out = []
        for n in range(xn.shape[0]):
            src = np.ascontiguousarray(xn[n])
            if k.sep is not None:
                y = cv2.sepFilter2D(src, -1, kn, kn, borderType=cv2.BORDER_CONSTANT)
            else:
                y = cv2.filter2D(src, -1, kn, borderType=cv2.BORDER_CONSTANT)
            out.append(y[r:-r, r:-r])
        return torch.from_numpy(np.stack(out))
