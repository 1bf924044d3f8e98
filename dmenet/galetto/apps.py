"""Applications of a σ map (Galetto & Deng 2023 §5): adaptive enhancement, defocus magnification, multi-focus
fusion. Pure NumPy functions; images (H, W, 3) RGB, float in [0, 1] or uint8 (gray and RGBA too: every image goes
through :func:`syndof.images.as_rgb_float`), σ maps (H, W) Gaussian σ in px at the image's resolution (from any
registered method), finite and ≥ 0. Malformed images, σ maps and parameters are a ValueError naming the argument.
The command line is :mod:`dmenet.galetto.apps_cli`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dmenet.filters import gaussian_filter, guided_filter, weighted_gf
from dmenet.galetto.method import SIGMA_MAX
from syndof import units
from syndof.images import as_rgb_float

SIGMA_SCALE = SIGMA_MAX  # m = M / 19 in the enhancement gain (the classifier's largest σ, px)


def check_sigma(sigma, shape: tuple[int, ...], name: str = "sigma", nonnegative: bool = True) -> np.ndarray:
    """``sigma`` as a float array of ``shape`` (the image's (H, W), or (K, H, W) for a stack), finite and, when
    ``nonnegative``, ≥ 0 px; a ValueError naming ``name`` otherwise. Float maps keep their dtype (float64 else)."""
    try:
        s = np.asarray(sigma.detach().cpu() if hasattr(sigma, "detach") else sigma)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be a σ map (px) of shape {shape}, got {type(sigma).__name__} ({exc})") from None
    if s.dtype.kind not in "fiu":
        raise ValueError(f"{name}: unsupported dtype {s.dtype} (a float σ map in px)")
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    if s.shape != tuple(shape):
        raise ValueError(f"{name} must match the image: shape {tuple(shape)}, got {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} has non-finite values (NaN or inf)")
    if nonnegative and s.size and float(s.min()) < 0:
        raise ValueError(f"{name} must be >= 0 px, got a minimum of {float(s.min()):g}")
    return s


def check_amount(value, name: str, low: float = 0.0) -> float:
    """``value`` as a float that is finite and ≥ ``low``; a ValueError naming ``name`` otherwise (a NaN gain gave a NaN
    image, a negative one blurred where it should sharpen, a negative or NaN low-pass σ left the image unchanged)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v >= low):
        raise ValueError(f"{name} must be finite and >= {low:g}, got {value!r}")
    return v


def lowpass(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Gaussian low-pass of every channel (SYNDOF kernel, symmetric border), same shape.

    ``image``: (H, W, C) channels last, any range and unit (here RGB in [0, 1]); ``sigma``: Gaussian σ in px. Returns
    (H, W, C) float64 in the same unit, within the input's [min, max] (a normalised, non-negative kernel)."""
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float64))
    return np.moveaxis(gaussian_filter(t, sigma).numpy(), 0, -1)


# ---------------------------------------------------------------------------------------------- a) enhancement
def enhancement_gain(sigma: np.ndarray, lam_max: float = 2.0, alpha1: float = 46.0, beta1: float = 0.1,
                     alpha2: float = 183.0, beta2: float = 0.27) -> np.ndarray:
    """λ(q) = λmax·λ1·λ2 of Eqs. 9–11 with m = σ/19: ≈ λmax for σ ≈ 1.9–5.1 px, → 0 on sharp and very blurred.

    ``sigma``: σ map in px, any shape (normally (H, W)); returns float64 of the same shape in [0, ``lam_max``]
    (a gain, no unit: the detail layer's multiplier)."""
    m = np.asarray(sigma, dtype=np.float64) / SIGMA_SCALE
    lam1 = 1.0 / (1.0 + np.exp(-alpha1 * (m - beta1)))
    lam2 = 1.0 - 1.0 / (1.0 + np.exp(-alpha2 * (m - beta2)))
    return lam_max * lam1 * lam2


def unsharp(image: np.ndarray, gain, low_sigma: float = 2.0) -> np.ndarray:
    """J = I + λ·(I − B), B = Gaussian low-pass (σ ``low_sigma`` px, finite ≥ 0; 0 = J is I); λ a scalar or an
    (H, W) map, finite and ≥ 0 (0 = I unchanged). Clipped [0, 1]. A ValueError naming ``gain`` / ``low_sigma``
    otherwise."""
    low_sigma = check_amount(low_sigma, "low_sigma")
    gain = np.asarray(gain, dtype=np.float64)
    if not np.all(np.isfinite(gain)) or (gain.size and float(gain.min()) < 0):
        raise ValueError("gain must be finite and >= 0 everywhere (0 = the image unchanged)")
    detail = image - lowpass(image, low_sigma)
    return np.clip(image + (gain[..., None] if gain.ndim == 2 else gain) * detail, 0.0, 1.0)


def adaptive_enhance(image: np.ndarray, sigma: np.ndarray, lam_max: float = 2.0, low_sigma: float = 2.0) -> np.ndarray:
    """The paper's adaptive unsharp masking (Eq. 8) with gain :func:`enhancement_gain` of the σ map: (H, W, 3)
    float64 in [0, 1]. ``image`` (H, W, 3) RGB (module docstring), ``sigma`` (H, W) px ≥ 0, ``lam_max`` finite ≥ 0
    (0 = the image unchanged), ``low_sigma`` px finite ≥ 0."""
    lam_max = check_amount(lam_max, "lam_max")
    image = as_rgb_float(image, "image")
    sigma = check_sigma(sigma, image.shape[:2])
    return unsharp(image, enhancement_gain(sigma, lam_max), low_sigma)


# --------------------------------------------------------------------------------------------- b) magnification
def nlt_weight(q: np.ndarray, c0: float = 1.0, c1: float = 7.0) -> np.ndarray:
    """W = 1 − exp(−((10 − q)/Σ)^β) with W(c0) = 0.999, W(c1) = 0.001 (Eqs. 12–13); q clipped below 10.
    ``c0`` < ``c1`` < 10 (px; W falls from sharp to blurred), else a ValueError naming them. ``q``: σ map in px,
    any shape (normally (H, W)); returns float64 of the same shape in [0, 1] (a blend weight, no unit; 1 = the
    sharpened image, 0 = the smooth background)."""
    if not (math.isfinite(c0) and c0 < c1 < 10):
        raise ValueError(f"c0 and c1 must satisfy c0 < c1 < 10 px (W(c0) = 0.999 on sharp, W(c1) = 0.001 on "
                         f"blurred), got c0={c0!r}, c1={c1!r}")
    a = math.log(-math.log(0.001)) / math.log(-math.log(0.999))
    big_sigma = math.exp((math.log(10 - c0) - a * math.log(10 - c1)) / (1 - a))
    beta = math.log(-math.log(0.001)) / math.log((10 - c0) / big_sigma)
    d = np.clip(10.0 - np.asarray(q, dtype=np.float64), 1e-9, None)
    return 1.0 - np.exp(-((d / big_sigma) ** beta))


def self_guided_smooth(image: np.ndarray, radius: int = 33, eps: float = 128.0 / 255.0 ** 2,
                       iters: int = 5) -> np.ndarray:
    """The paper's background B: each channel filtered by itself (guided filter, window 2r+1) ``iters`` times.

    ``image``: (H, W, C ≥ 3) float RGB in [0, 1] (``eps`` is in that unit², the paper's 128 on 0–255); ``radius`` px.
    Returns (H, W, 3) float64 in the image's unit (channels 0–2; not clipped: guided filtering may overshoot the
    input's range slightly)."""
    out = np.asarray(image, dtype=np.float64).copy()
    for _ in range(iters):
        out = np.stack([weighted_gf(out[..., c], out[..., c], 2 * radius + 1, eps, mode=0) for c in range(3)], -1)
    return out


def sdof(image: np.ndarray, sigma: np.ndarray, c0: float = 1.0, c1: float = 7.0, sharpen: float = 0.25,
         radius: int = 33, iters: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Shallow depth of field by the NLT blend R = W·S + (1 − W)·B (paper recipe, q = σ px): S = unsharp(I, 0.25),
    B = :func:`self_guided_smooth`. ``image`` (H, W, 3) RGB (module docstring), ``sigma`` (H, W) px ≥ 0, ``c0`` <
    ``c1`` < 10 px, ``sharpen`` finite ≥ 0. Returns (R (H, W, 3) float64 in [0, 1], W (H, W) float64 in (0, 1))."""
    sharpen = check_amount(sharpen, "sharpen")
    image = as_rgb_float(image, "image")
    sigma = check_sigma(sigma, image.shape[:2])
    w = nlt_weight(sigma, c0, c1)[..., None]
    s = unsharp(image, sharpen)
    b = self_guided_smooth(image, radius, iters=iters)
    return np.clip(w * s + (1 - w) * b, 0, 1), w[..., 0]


def magnify_scale(image: np.ndarray, sigma: np.ndarray, k: float = 2.0, step: float = 0.25) -> np.ndarray:
    """True ×k defocus magnification: re-render through SYNDOF's layered renderer so that σ_out = k·σ_in.

    σ is quantised to ``step`` px; each level becomes a layer (larger σ = farther, so sharp regions occlude
    blurred ones), blurred by σ_add = σ·√(k² − 1) (:func:`syndof.units.magnifying_sigma`: Gaussians compose in
    quadrature). ``image`` (H, W, 3) RGB (module docstring), ``sigma`` (H, W) px ≥ 0, 1 ≤ ``k`` < ∞,
    ``step`` > 0 px; a σ_add larger than the image's long side is refused (ValueError). Returns (H, W, 3) float32
    [0, 1].
    """
    from syndof.blur import render_layers

    if not 1 <= k < math.inf:
        raise ValueError(f"magnification k must be >= 1 and finite, got {k!r}")
    if not 0 < step < math.inf:
        raise ValueError(f"step must be > 0 px (the σ quantisation), got {step!r}")
    image = as_rgb_float(image, "image")
    sigma = check_sigma(sigma, image.shape[:2])
    q = np.round(np.clip(sigma, 0, None) / step).astype(np.int64)
    levels = np.unique(q)[::-1]  # far (large σ) first
    labels = np.searchsorted(-levels, -q)  # index into levels (descending)
    add = units.magnifying_sigma(levels * step, k)
    h, w = image.shape[:2]
    if float(add.max()) > max(h, w):  # its kernel would dwarf the image (and take minutes): nothing to magnify
        raise ValueError(f"×{k:g} magnification of σ up to {float(levels.max()) * step:g} px adds a blur of σ "
                         f"{float(add.max()):.0f} px, more than the {w}x{h} image: choose a smaller k")
    coc = units.sigma_to_coc(add)
    max_coc = int(2 * math.ceil(3 * max(float(add.max()), 0.5)) + 1)
    img = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float32))
    out = render_layers(img, torch.from_numpy(labels), coc, max_coc=max_coc)
    return np.moveaxis(out.numpy(), 0, -1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------- c) fusion
def decision_map(sigmas: np.ndarray, min_island: float = 0.01) -> np.ndarray:
    """(H, W) int frame index: argmin_k σ_k, then each 8-connected island of a frame's decision smaller than
    ⌈``min_island`` × area⌉ px is removed (``bwareaopen``, as in GVWA): its pixels go to the frame with the next
    smallest σ there (for two frames, the other one)."""
    from scipy import ndimage

    k, h, w = sigmas.shape
    d = np.argmin(sigmas, 0)
    area = max(math.ceil(min_island * h * w), 1)
    eight = np.ones((3, 3), dtype=bool)  # bwareaopen's default connectivity in 2-D
    for i in range(k):
        m = d == i
        lab, n = ndimage.label(m, structure=eight)
        small = (np.bincount(lab.ravel(), minlength=n + 1) < area)[lab] & m
        if small.any():
            other = sigmas.copy()
            other[i] = np.inf
            d[small] = np.argmin(other, 0)[small]
    return d


def fusion_weights(sigmas: np.ndarray, frames: np.ndarray, min_island: float = 0.01, radius: int = 8,
                   eps: float = 0.01, soft: float | None = None) -> np.ndarray:
    """Per-frame weights (K, H, W) summing to 1, from σ maps (K, H, W) and the frames (K, H, W, 3) in [0, 1].

    The decision map D (:func:`decision_map`, islands removed) gives the initial fused image (each pixel from its
    frame in D); each one-hot D_k is softened by the colour guided filter with that image as the guide (window
    2r+1, ε), as GVWA builds its guide after ``bwareaopen``. ``soft`` τ (px, > 0) instead uses W_k ∝
    exp(−σ_k/τ).
    """
    if soft is not None and not soft > 0:
        raise ValueError(f"soft must be None or a temperature τ > 0 px (W_k ∝ exp(−σ_k/τ)), got {soft!r}")
    k = sigmas.shape[0]
    if soft is not None:  # in float64: a float32 map divided by τ = 1e-300 took τ as 0 (NaN weights), 1e300 as inf
        sigmas = np.asarray(sigmas, dtype=np.float64)
        z = -(sigmas - sigmas.min(0, keepdims=True)) / soft
        e = np.exp(z)
        return e / e.sum(0, keepdims=True)
    d = decision_map(sigmas, min_island)
    guide = np.take_along_axis(frames, d[None, ..., None].repeat(3, -1), 0)[0]
    onehot = np.stack([(d == i).astype(np.float64) for i in range(k)])
    soft_w = np.stack([guided_filter(guide, onehot[i], 2 * radius + 1, eps) for i in range(k)])
    soft_w = np.clip(soft_w, 0, None) + 1e-12
    return soft_w / soft_w.sum(0, keepdims=True)


def fuse(frames, sigmas, soft: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fuse K ≥ 2 aligned frames by their σ maps: returns (fused (H, W, 3) in [0, 1], weights (K, H, W) that sum
    to 1).

    Args:
        frames: (K, H, W, 3) array or a sequence of K (H, W, 3) RGB images of one size (float [0, 1] or uint8; each
            as in the module docstring).
        sigmas: (K, H, W) σ maps (px) of the frames, finite; only their order per pixel and their differences
            matter (a negated focus measure works too).
        soft: None (decision map + guided filter) or a temperature τ > 0 px (:func:`fusion_weights`).
    """
    if len(frames) < 2:
        raise ValueError(f"fusion needs at least 2 frames, got {len(frames)}")
    frames = [as_rgb_float(f, f"frames[{i}]") for i, f in enumerate(frames)]
    for i, f in enumerate(frames[1:], 1):
        if f.shape != frames[0].shape:
            raise ValueError(f"frames[{i}] is {f.shape[1]}x{f.shape[0]} px but frames[0] {frames[0].shape[1]}x"
                             f"{frames[0].shape[0]} px: the frames must be aligned and of one size")
    frames = np.stack(frames)
    sigmas = check_sigma(sigmas, frames.shape[:3], "sigmas", nonnegative=False)
    weights = fusion_weights(sigmas, frames, soft=soft)
    return np.clip((weights[..., None] * frames).sum(0), 0, 1), weights
