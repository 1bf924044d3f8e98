"""Labelled 32×32 patches for the blur-level classifier (Galetto & Deng 2023 §3.1), from sharp photo regions.

Recipe: gray image on the 0–255 scale (``rgb2gray``) → sharp positions = windows whose 4-neighbour Laplacian of the
3×3-Gaussian-smoothed image (σ ``smooth_sigma``) has variance > ``phi`` → for every σ ∈ {0, …, 19} px the *whole*
gray image is blurred by :func:`dmenet.filters.gaussian_filter` (SYNDOF's Gaussian, symmetric padding, side
2⌈2σ⌉+1) and the sharp windows are cropped ("context" blur), rounded to uint8. Label = σ in px.

A shard is an ``.npz`` holding ``patches`` (N, 20, 32, 32) uint8 (index 1 = the label σ), ``stem`` (N,) str,
``y``, ``x`` (N,) int32 (top-left corner, px).
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from dmenet.filters import Border, gaussian_filter
from dmenet.galetto import NUM_CLASSES, PATCH
from syndof.choices import Choice, parse_choice
from syndof.images import rgb2gray

LAPLACIAN_4 = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def to_gray255(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float RGB in [0, 1] → (H, W) float32 tensor luminance on 0–255 (BT.601, MATLAB ``rgb2gray``)."""
    rgb = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)
    return rgb2gray(rgb[..., 0], rgb[..., 1], rgb[..., 2]) * 255.0


def sharpness_map(gray255: torch.Tensor, stride: int = PATCH, smooth_sigma: float = 0.5) -> torch.Tensor:
    """φ per window: variance of the Laplacian of the smoothed image over each 32×32 window at ``stride``.

    Args:
        gray255: (H, W) gray on 0–255.
        stride: window step px.
        smooth_sigma: σ of the 3×3 Gaussian pre-filter (MATLAB ``fspecial`` default 0.5).

    Returns:
        (rows, cols) float tensor; window (i, j) has its top-left corner at (i·stride, j·stride).
    """
    if gray255.shape[-2] < PATCH or gray255.shape[-1] < PATCH:  # avg_pool2d's error would be a traceback
        raise ValueError(f"image {gray255.shape[-1]}x{gray255.shape[-2]} px: smaller than one {PATCH}x{PATCH} window")
    b = gaussian_filter(gray255.double(), smooth_sigma, size=3)
    from syndof.convolve import symmetric_pad

    lap = F.conv2d(symmetric_pad(b[None, None], 1), LAPLACIAN_4.double()[None, None])
    mean = F.avg_pool2d(lap, PATCH, stride)
    sq = F.avg_pool2d(lap * lap, PATCH, stride)
    return (sq - mean * mean)[0, 0].float() * (PATCH * PATCH) / (PATCH * PATCH - 1)  # MATLAB var (N − 1)


def sharp_positions(gray255: torch.Tensor, stride: int = PATCH, phi: float = 1000.0,
                    smooth_sigma: float = 0.5) -> np.ndarray:
    """(N, 2) int32 top-left corners (y, x) in px of the windows with φ > ``phi``.

    ``gray255``: (H, W) float gray on 0–255 (:func:`to_gray255`); φ is :func:`sharpness_map`'s Laplacian variance,
    in (gray levels on 0–255)²; ``stride``: window step px. Corners are multiples of ``stride``, row-major order."""
    s = sharpness_map(gray255, stride, smooth_sigma)
    iy, ix = torch.nonzero(s > phi, as_tuple=True)
    return np.stack([iy.numpy() * stride, ix.numpy() * stride], axis=1).astype(np.int32)


class PatchBlur(Choice):
    """Where a training patch is blurred: in its whole image (CONTEXT: the patch sees its real surroundings) or
    alone on replicate padding (ISOLATED: the paper's likely procedure, docs/method.md §15)."""

    CONTEXT = "context"
    ISOLATED = "isolated"


def labelled_patches(gray255: torch.Tensor, positions: np.ndarray,
                     blur: PatchBlur | str = PatchBlur.CONTEXT) -> np.ndarray:
    """(N, 20, 32, 32) uint8 patches at ``positions``, index k blurred by Gaussian σ = k px, as ``blur`` says
    (:class:`PatchBlur` or its value; ValueError otherwise)."""
    blur = parse_choice(PatchBlur, blur, "blur")
    n = len(positions)
    out = np.empty((n, NUM_CLASSES, PATCH, PATCH), np.uint8)
    if n == 0:
        return out
    ys, xs = positions[:, 0], positions[:, 1]
    if blur is PatchBlur.ISOLATED:
        crops = torch.stack([gray255[y:y + PATCH, x:x + PATCH] for y, x in zip(ys, xs)]).float()
    for k in range(NUM_CLASSES):
        if blur is PatchBlur.CONTEXT:
            img = gaussian_filter(gray255.float(), float(k))  # float32: 10x faster than float64 on CPU
            win = img.unfold(0, PATCH, 1).unfold(1, PATCH, 1)  # (H−31, W−31, 32, 32) view
            crops_k = win[torch.as_tensor(ys).long(), torch.as_tensor(xs).long()]
        else:
            crops_k = gaussian_filter(crops, float(k), border=Border.REPLICATE)
        out[:, k] = crops_k.round().clamp(0, 255).to(torch.uint8).numpy()
    return out
