"""Applications of a σ map (Galetto & Deng 2023 §5): adaptive enhancement, defocus magnification, multi-focus
fusion. Pure NumPy functions; images (H, W, 3) float RGB in [0, 1], σ maps (H, W) Gaussian σ in px at the image's
resolution (from any registered method). The command line is :mod:`dmenet.galetto.apps_cli`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dmenet.filters import gaussian_filter, guided_filter, weighted_gf
from syndof import units

SIGMA_SCALE = 19.0  # m = M / 19 in the enhancement gain (the classifier's largest σ, px)


def lowpass(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Gaussian low-pass of every channel (SYNDOF kernel, symmetric border), same shape."""
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float64))
    return np.moveaxis(gaussian_filter(t, sigma).numpy(), 0, -1)


# ---------------------------------------------------------------------------------------------- a) enhancement
def enhancement_gain(sigma: np.ndarray, lam_max: float = 2.0, alpha1: float = 46.0, beta1: float = 0.1,
                     alpha2: float = 183.0, beta2: float = 0.27) -> np.ndarray:
    """λ(q) = λmax·λ1·λ2 of Eqs. 9–11 with m = σ/19: ≈ λmax for σ ≈ 1.9–5.1 px, → 0 on sharp and very blurred."""
    m = np.asarray(sigma, dtype=np.float64) / SIGMA_SCALE
    lam1 = 1.0 / (1.0 + np.exp(-alpha1 * (m - beta1)))
    lam2 = 1.0 - 1.0 / (1.0 + np.exp(-alpha2 * (m - beta2)))
    return lam_max * lam1 * lam2


def unsharp(image: np.ndarray, gain, low_sigma: float = 2.0) -> np.ndarray:
    """J = I + λ·(I − B), B = Gaussian low-pass (σ ``low_sigma`` px); λ a scalar or an (H, W) map. Clipped [0, 1]."""
    gain = np.asarray(gain, dtype=np.float64)
    detail = image - lowpass(image, low_sigma)
    return np.clip(image + (gain[..., None] if gain.ndim == 2 else gain) * detail, 0.0, 1.0)


def adaptive_enhance(image: np.ndarray, sigma: np.ndarray, lam_max: float = 2.0, low_sigma: float = 2.0) -> np.ndarray:
    """The paper's adaptive unsharp masking (Eq. 8) with gain :func:`enhancement_gain` of the σ map."""
    return unsharp(image, enhancement_gain(sigma, lam_max), low_sigma)


# --------------------------------------------------------------------------------------------- b) magnification
def nlt_weight(q: np.ndarray, c0: float = 1.0, c1: float = 7.0) -> np.ndarray:
    """W = 1 − exp(−((10 − q)/Σ)^β) with W(c0) = 0.999, W(c1) = 0.001 (Eqs. 12–13); q clipped below 10."""
    a = math.log(-math.log(0.001)) / math.log(-math.log(0.999))
    big_sigma = math.exp((math.log(10 - c0) - a * math.log(10 - c1)) / (1 - a))
    beta = math.log(-math.log(0.001)) / math.log((10 - c0) / big_sigma)
    d = np.clip(10.0 - np.asarray(q, dtype=np.float64), 1e-9, None)
    return 1.0 - np.exp(-((d / big_sigma) ** beta))


def self_guided_smooth(image: np.ndarray, radius: int = 33, eps: float = 128.0 / 255.0 ** 2,
                       iters: int = 5) -> np.ndarray:
    """The paper's background B: each channel filtered by itself (guided filter, window 2r+1) ``iters`` times."""
    out = np.asarray(image, dtype=np.float64).copy()
    for _ in range(iters):
        out = np.stack([weighted_gf(out[..., c], out[..., c], 2 * radius + 1, eps, mode=0) for c in range(3)], -1)
    return out


def sdof(image: np.ndarray, sigma: np.ndarray, c0: float = 1.0, c1: float = 7.0, sharpen: float = 0.25,
         radius: int = 33, iters: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Shallow depth of field by the NLT blend R = W·S + (1 − W)·B (paper recipe, q = σ px): S = unsharp(I, 0.25),
    B = :func:`self_guided_smooth`. Returns (R, W)."""
    w = nlt_weight(sigma, c0, c1)[..., None]
    s = unsharp(image, sharpen)
    b = self_guided_smooth(image, radius, iters=iters)
    return np.clip(w * s + (1 - w) * b, 0, 1), w[..., 0]


def magnify_scale(image: np.ndarray, sigma: np.ndarray, k: float = 2.0, step: float = 0.25) -> np.ndarray:
    """True ×k defocus magnification: re-render through SYNDOF's layered renderer so that σ_out = k·σ_in.

    σ is quantised to ``step`` px; each level becomes a layer (larger σ = farther, so sharp regions occlude
    blurred ones), blurred by σ_add = σ·√(k² − 1) (Gaussians compose in quadrature, :func:`syndof.units.
    compose_sigma`). Returns (H, W, 3) [0, 1].
    """
    from syndof.blur import render_layers

    if k < 1:
        raise ValueError(f"magnification k must be >= 1, got {k}")
    q = np.round(np.clip(sigma, 0, None) / step).astype(np.int64)
    levels = np.unique(q)[::-1]  # far (large σ) first
    labels = np.searchsorted(-levels, -q)  # index into levels (descending)
    add = levels * step * math.sqrt(k * k - 1.0)
    coc = units.sigma_to_coc(add)
    max_coc = int(2 * math.ceil(3 * max(float(add.max()), 0.5)) + 1)
    img = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float32))
    out = render_layers(img, torch.from_numpy(labels), coc, max_coc=max_coc)
    return np.moveaxis(out.numpy(), 0, -1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------- c) fusion
def fusion_weights(sigmas: np.ndarray, guide: np.ndarray, min_island: float = 0.01, radius: int = 8,
                   eps: float = 0.01, soft: float | None = None) -> np.ndarray:
    """Per-frame weights (K, H, W) summing to 1.

    Decision D = argmin_k σ_k; islands of a frame's decision smaller than ``min_island`` × area are given to the
    surrounding frame (``bwareaopen``); each one-hot D_k is softened by the colour guided filter (guide = the
    initial fused image, window 2r+1, ε); ``soft`` τ instead uses W_k ∝ exp(−σ_k/τ).
    """
    from scipy import ndimage

    k, h, w = sigmas.shape
    if soft is not None:
        z = -(sigmas - sigmas.min(0, keepdims=True)) / soft
        e = np.exp(z)
        return e / e.sum(0, keepdims=True)
    d = np.argmin(sigmas, 0)
    area = max(int(min_island * h * w), 1)
    for i in range(k):  # drop small islands of frame i: assign them to the best other frame there
        m = d == i
        lab, n = ndimage.label(m)
        small = (np.bincount(lab.ravel(), minlength=n + 1) < area)[lab] & m
        if small.any():
            other = sigmas.copy()
            other[i] = np.inf
            d[small] = np.argmin(other, 0)[small]
    onehot = np.stack([(d == i).astype(np.float64) for i in range(k)])
    soft_w = np.stack([guided_filter(guide, onehot[i], 2 * radius + 1, eps) for i in range(k)])
    soft_w = np.clip(soft_w, 0, None) + 1e-12
    return soft_w / soft_w.sum(0, keepdims=True)


def fuse(frames: np.ndarray, sigmas: np.ndarray, soft: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fuse K aligned frames (K, H, W, 3) by their σ maps (K, H, W): returns (fused (H, W, 3), weights (K, H, W))."""
    if frames.shape[0] < 2:
        raise ValueError("fusion needs at least 2 frames")
    d = np.argmin(sigmas, 0)
    initial = np.take_along_axis(frames, d[None, ..., None].repeat(3, -1), 0)[0]
    weights = fusion_weights(sigmas, initial, soft=soft)
    return np.clip((weights[..., None] * frames).sum(0), 0, 1), weights
