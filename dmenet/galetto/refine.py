"""Edge-aware refinement of a σ map by the image (Galetto & Deng 2023 §3.3 and the official ``refine_blurmapGF.m``).

Two recipes, selectable (docs/method.md §15):

* ``paper``: guide = gray of the image smoothed by the self-guided weighted guided filter (mode 6, window
  2⌊r/2⌉+1, ε 0.05 on [0, 1]); the map is filtered ``iters`` times by mode-6 WGIF guided by it (window 2r+1,
  ε 0.005, r = 16, 7 iterations).
* ``code``: box filter of the map (window 45), then two colour guided filters (He et al., window 45, ε 1e-6) with
  the *unsmoothed* 0–255 RGB image as guide (the code's smoothed guide is computed but never used).

Every filter is linear in the map, so σ stays in px; the output is clipped at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmenet.filters import box_mean, guided_filter, weighted_gf
from syndof.choices import Choice, choices, parse_choice
from syndof.images import rgb2gray
from syndof.units import round_half_away


class Refine(Choice):
    """Refinement recipe of a map by its image: none, the paper's, or the official code's (module docstring)."""

    NONE = "none"
    PAPER = "paper"
    CODE = "code"


REFINES = choices(Refine)

REFINE_BYTES_PER_PIXEL = {Refine.NONE: 0, Refine.PAPER: 130, Refine.CODE: 150}
"""Peak memory of :func:`refine_map` per pixel of its image, beyond the image and the map, for ``predict``'s memory
guard (:meth:`dmenet.methods.base.Estimator.input_bytes_per_pixel`). Measured on a 3000×2000 image, 6 Dec 2026:
paper 116 B, code 136 B with the colour guided filter in row strips (374 B before them). The code recipe's figure is
an average over many strips: one strip (:data:`dmenet.filters.STRIP_PIXELS`, 1 MP) holds ~270 B a pixel more
(~0.28 GB), within the guard's fixed allowance, so images of 1 MP or less peak at ~400 B a pixel (e.g. galetto at
max_side 512 on a 1024² image: 0.87 GiB against a guard of 0.85 GiB)."""


@dataclass(frozen=True)
class RefineSettings:
    """radius r (paper 16), iters (paper 7), eps on [0, 1] guide (paper 0.005), guide_eps (0.05);
    code_size (45) and code_eps (1e-6 on the 0–255 guide) for the ``code`` recipe."""

    radius: int = 16
    iters: int = 7
    eps: float = 0.005
    guide_eps: float = 0.05
    code_size: int = 45
    code_eps: float = 1e-6


def smooth_guide(image: np.ndarray, radius: int = 16, eps: float = 0.05) -> np.ndarray:
    """Gray guide of the paper: each RGB channel self-guided by mode-6 WGIF (window 2⌊r/2⌉+1), then ``rgb2gray``.
    (H, W, 3) [0, 1] → (H, W) float64 [0, 1]."""
    size = 2 * int(round_half_away(radius / 2)) + 1  # MATLAB round: r = 9 → 11 (Python's round gave 9)
    smooth = [weighted_gf(image[..., c], image[..., c], size, eps, mode=6) for c in range(3)]
    return rgb2gray(*smooth)


def refine_map(image: np.ndarray, m: np.ndarray, mode: Refine | str = Refine.PAPER,
               settings: RefineSettings = RefineSettings()) -> np.ndarray:
    """Refine map ``m`` (H, W; σ px or any linear blur measure) by image (H, W, 3) float RGB [0, 1] with recipe
    ``mode`` (:class:`Refine` or its value; ValueError otherwise).

    Returns (H, W) float32, ≥ 0 (``Refine.NONE`` returns m unchanged).
    """
    mode = parse_choice(Refine, mode, "refine")
    if mode is Refine.NONE:
        return np.asarray(m, dtype=np.float32)
    if image.shape[:2] != m.shape:
        raise ValueError(f"map {m.shape} and image {image.shape[:2]} differ in size")
    if mode is Refine.PAPER:
        guide = smooth_guide(image, settings.radius, settings.guide_eps)
        out = np.asarray(m, dtype=np.float64)
        for _ in range(settings.iters):
            out = weighted_gf(guide, out, 2 * settings.radius + 1, settings.eps, mode=6)
    else:  # Refine.CODE
        rgb255 = np.asarray(image, dtype=np.float64) * 255.0
        out = box_mean(m, settings.code_size)
        for _ in range(2):
            out = guided_filter(rgb255, out, settings.code_size, settings.code_eps)
    return np.maximum(out, 0.0).astype(np.float32)
