"""σ map of an image by sliding the blur-level classifier over it (Galetto & Deng 2023 §3.2, ``get_blurmap.m``).

Windows of 32×32 px start at 0 with step ``stride``; the image is padded ``'symmetric', 'post'`` so the last window
reaches its border, and the grid stops there. ``get_blurmap.m`` instead starts windows up to the last pixel and
pads each short crop alone; the maps differ in the last 31 px of each axis only (docs/method.md §15, "Window
grid"). All windows are cut by one ``unfold`` and classified in batches; each window's σ (argmax class = σ in px, or
the expectation Σ p_k·k) is spread over the pixels it covers and averaged by coverage (Eq. 6) with ``fold``. No
per-image rescale: the output is Gaussian σ in px at the input resolution (``max_side`` runs the classifier on a
downscaled copy and rescales σ with :func:`syndof.units.rescale_sigma` by the factor the copy's rounded size got,
:func:`syndof.resize.shrunk_scale`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from dmenet.filters import gaussian_filter
from dmenet.galetto import BATCH, PATCH
from dmenet.galetto.classifier import BlurClassifier
from dmenet.models.fuse import cached_folded_copy
from syndof.convolve import symmetric_pad
from syndof.choices import Choice, choices, parse_choice
from syndof.images import as_rgb_float, rgb2gray
from syndof.resize import applied_scale, resize_back, shrink_long_side
from syndof.units import rescale_sigma


class Readout(Choice):
    """σ of a window from its 20 class probabilities: the argmax class (faithful) or the expectation Σ p_k·k."""

    ARGMAX = "argmax"
    EXPECTATION = "expectation"


READOUTS = choices(Readout)


class Grid(Choice):
    """Where the windows sit (docs/method.md §15, "Window grid"): COVER (the default) pads the image so windows at
    0, s, 2s, … just cover it; MATLAB starts a window at every multiple of the stride inside the image and pads each
    short crop alone (``'symmetric', 'post'``), as ``get_blurmap.m``."""

    COVER = "cover"
    MATLAB = "matlab"


GRIDS = choices(Grid)


def gray01(image: np.ndarray, denoise: float = 0.0) -> torch.Tensor:
    """(H, W, 3) float RGB [0, 1] → (H, W) float32 gray [0, 1] (``rgb2gray``), after an optional 3×3 Gaussian
    pre-denoise of σ ``denoise`` px on each channel (the code's ``fspecial('gaussian', 3, 1)``; 0 = off)."""
    rgb = torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    if denoise > 0:
        rgb = gaussian_filter(rgb, denoise, size=3)
    return rgb2gray(rgb[0], rgb[1], rgb[2])


def _post_pad(gray: torch.Tensor, stride: int) -> torch.Tensor:
    """Symmetric 'post' padding so that windows at 0, stride, … cover the whole image."""
    h, w = gray.shape
    need = [max(PATCH, PATCH + math.ceil(max(n - PATCH, 0) / stride) * stride) - n for n in (h, w)]
    if need == [0, 0]:
        return gray
    big = symmetric_pad(gray[None], max(need))[0]  # symmetric on all sides; keep the bottom/right part
    p = max(need)
    return big[p:p + h + need[0], p:p + w + need[1]]


def _matlab_rows(n: int, stride: int) -> torch.Tensor:
    """(starts, 32) source indices along one axis of ``get_blurmap.m``'s windows: starts 0, s, … < n; a crop that
    runs past the border is padded ``'symmetric', 'post'`` on its own (MATLAB ``padarray``: reflections of the crop,
    repeated when the pad is longer than the crop)."""
    starts = torch.arange(0, n, stride)[:, None]
    k = torch.arange(PATCH)[None, :]
    length = (n - starts).clamp(max=PATCH)  # the crop's own length
    m = k % (2 * length)
    return starts + torch.where(m < length, m, 2 * length - 1 - m)


def windows(gray: torch.Tensor, stride: int, grid: Grid | str = Grid.COVER) -> tuple[torch.Tensor, tuple[int, int]]:
    """Every 32×32 window of a (H, W) gray image at ``stride`` on ``grid`` (:class:`Grid`): ((L, 1, 32, 32), the
    size of the canvas they tile), L = rows × cols in row-major order (``unfold``'s). COVER: after the symmetric
    bottom/right padding that makes them cover the image; MATLAB: ``get_blurmap.m``'s, every crop padded alone.
    ``gray``: a (H, W) float tensor, values as given (the classifier's gray in [0, 1]); the windows keep its dtype
    and values; the canvas size is (H', W') px."""
    if parse_choice(Grid, grid, "grid") is Grid.MATLAB:
        rows, cols = _matlab_rows(gray.shape[0], stride), _matlab_rows(gray.shape[1], stride)
        win = gray[rows[:, None, :, None], cols[None, :, None, :]]  # (rows, cols, 32, 32)
        canvas = (int(rows[-1, 0]) + PATCH, int(cols[-1, 0]) + PATCH)
        return win.reshape(-1, 1, PATCH, PATCH), canvas
    padded = _post_pad(gray, stride)
    cols = F.unfold(padded[None, None], PATCH, stride=stride)[0].T  # (L, 1024)
    return cols.reshape(-1, 1, PATCH, PATCH), tuple(padded.shape)


@torch.no_grad()
def window_probabilities(model: BlurClassifier, gray: torch.Tensor, stride: int, batch: int = BATCH,
                         grid: Grid | str = Grid.COVER) -> tuple[torch.Tensor, tuple[int, int]]:
    """Class probabilities of every window (:func:`windows`), ``batch`` windows per call: ((L, 20), padded size).
    The classifier runs as its folded copy (BatchNorms folded into the convs, 1×1 convs as matrix products:
    :func:`dmenet.models.fuse.cached_folded_copy`), the eval-mode function up to float rounding and 2.3–2.8× faster
    (BENCHMARKS.md). ValueError when a probability is not finite (a model with NaN / inf weights)."""
    x, size = windows(gray, stride, grid)
    dev = next(model.parameters()).device
    net = cached_folded_copy(model)
    probs = torch.cat([F.softmax(net(x[i:i + batch].to(dev)), 1).cpu() for i in range(0, len(x), batch)])
    if not torch.isfinite(probs).all():  # argmax of NaN is class 0: a diverged model read as σ 0 px, sharp everywhere
        raise ValueError("the classifier's class probabilities are not finite (NaN / inf weights: a diverged or "
                         "damaged model file)")
    return probs, size


def readout(probs: torch.Tensor, mode: Readout | str = Readout.ARGMAX) -> torch.Tensor:
    """(L, 20) probabilities → (L,) σ px: the argmax class, or the expectation Σ p_k·k (``mode``: :class:`Readout`
    or its value; ValueError otherwise)."""
    if parse_choice(Readout, mode, "readout") is Readout.ARGMAX:
        return probs.argmax(1).float()
    return probs @ torch.arange(probs.shape[1], dtype=probs.dtype)


def spread(values: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """Average per-window values over the pixels each window covers (Eq. 6): (L,) → (H', W') map.

    ``values``: (L,) tensor in any unit (σ px of :func:`readout`, or a probability), one per window of
    :func:`windows` at ``stride`` in its row-major order; ``size``: the canvas (H', W') px :func:`windows` gave.
    Returns a (H', W') float32 tensor in the same unit: each pixel a windows' mean, so within [min, max] of
    ``values`` wherever a window covers it (every pixel at ``stride`` ≤ 32)."""
    v = values[None, None, :].expand(1, PATCH * PATCH, -1)
    total = F.fold(v.float(), size, PATCH, stride=stride)
    cover = F.fold(torch.ones_like(v, dtype=torch.float32), size, PATCH, stride=stride)
    return (total / cover)[0, 0]


def sigma_map(model: BlurClassifier, image: np.ndarray, stride: int = 8, mode: Readout | str = Readout.ARGMAX,
              denoise: float = 0.0, max_side: int | None = None, batch: int = BATCH,
              grid: Grid | str = Grid.COVER) -> np.ndarray:
    """σ (px at the input resolution) of an image, (H, W) float32 in [0, 19 / scale] px (scale = working size /
    input size, the factor the copy's rounded size got, :func:`syndof.resize.shrunk_scale`; 1 without ``max_side``).

    Args:
        model: the classifier (eval mode is set here).
        image: (H, W, 3) RGB, float in [0, 1] or uint8 (any input :func:`syndof.images.as_rgb_float` takes), at
            least 32 px (the window side) a side.
        stride: window step in px of the image the classifier runs on (the copy ``max_side`` makes; paper 16,
            code 8).
        mode: readout, "argmax" (faithful: integer σ per window) or "expectation".
        denoise: pre-denoise Gaussian σ in px of that image too (code 1; 0 = off): under ``max_side`` it is
            ``denoise / scale`` px of the input.
        max_side: run on a copy downscaled to this long side when the image is larger (σ rescaled to input px);
            the copy must keep at least 32 px a side.
        grid: where the windows sit (:class:`Grid`: cover, or matlab as ``get_blurmap.m``).

    Raises:
        ValueError: a malformed image or one below 32 px a side (naming ``image``), a working copy below 32 px a side
            (naming ``max_side``), ``stride`` < 1.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    image = as_rgb_float(image, "image", min_side=PATCH)
    h, w = image.shape[:2]
    work, _ = shrink_long_side(image, max_side)
    if min(work.shape[:2]) < PATCH:
        raise ValueError(f"max_side {max_side}: the {w}x{h} px image would be classified at {work.shape[1]}x"
                         f"{work.shape[0]} px, below the {PATCH}-px window; use a larger max_side")
    gray = gray01(work, denoise)
    probs, size = window_probabilities(model, gray, stride, batch, grid)
    m = spread(readout(probs, mode), size, stride)[: gray.shape[0], : gray.shape[1]].numpy()
    if work.shape[:2] != (h, w):  # σ scales by the factor the rounded size got (shrunk_scale), not the one asked
        m = rescale_sigma(resize_back(m, (h, w)), 1.0 / applied_scale((h, w), work.shape[1::-1]))
    return np.ascontiguousarray(m, dtype=np.float32)
