"""The checks of a layered render's inputs, made once before :func:`syndof.blur.render_layers` or
:func:`syndof.blur_reference.render_layers_reference` draws anything (docs/method.md §9).

* The CoC bounds: :data:`MAX_MAX_COC` (the largest ``--max-coc``), :func:`check_max_coc`, :data:`COC_TOLERANCE`
  and :func:`coc_problem`, the one check of the blur a render is asked for (also called by ``syndof.render`` and
  by the generator's option checks, ``syndof.recipe``).
* The renderers' arguments: :func:`check_inputs` (image, labels, CoCs, ``max_coc``), :func:`check_dtype`,
  :func:`check_tile`.

Each raises a ValueError naming the argument (:func:`coc_problem` returns the line instead).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from syndof import units
from syndof.images import FLOAT_IMAGE_MAX, FLOAT_IMAGE_MIN

COC_TOLERANCE = 0.2
"""px of CoC above ``max_coc`` still accepted (σ 0.05 px): a SYNDOF σ map stores ``round(10·σ)``, so a map at σ_max
can hold up to σ_max + 0.05 px, and the layers recovered from it (:func:`syndof.camera.layers_from_sigma`) can
reach ``max_coc`` + 0.1 px. Anything above is refused: the kernel grid (``max_coc``) would truncate the blur to a
smaller σ than the CoC's."""

MAX_MAX_COC = 255
"""Largest ``--max-coc`` of ``generate`` and ``render``: the renderer builds a max_coc² kernel per CoC layer and
the layer count grows with max_coc, so memory and time grow about as max_coc³ (255: σ_max 63.5 px, ~1 min and
~0.3 GB for a 64×48 image; 100000: a MemoryError per sample). SYNDOF's own value is 29."""


def check_max_coc(max_coc, what: str = "max_coc") -> float:
    """``max_coc`` (px, the Gaussian kernel grid) as a float; ValueError starting with ``what`` unless it is a finite
    number ≥ 1."""
    try:
        value = float(max_coc)
    except OverflowError:  # an int beyond float (10**400): as inf, refused below as not finite
        value = math.inf
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of px >= 1, got {max_coc!r}") from None
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{what} must be a finite CoC >= 1 px (σ_max = (max_coc − 1)/4), got {max_coc!r}")
    return value


def coc_problem(coc, max_coc: float, max_name: str = "max_coc") -> str | None:
    """The one check of the blur a render is asked for: None when every CoC (px) in ``coc`` is finite, ≥ 0 and at
    most ``max_coc`` + :data:`COC_TOLERANCE`, else one line saying what is wrong (the σ with the CoC; ``max_name``:
    how the caller's user names ``max_coc``). ``coc``: a number or an array of any shape (px); ``max_coc`` in px."""
    coc = np.asarray(coc, dtype=np.float64)
    if not np.all(np.isfinite(coc)):
        return "CoC values must be finite (NaN or inf given)"
    if coc.size == 0:
        return None
    if float(coc.min()) < 0:
        return f"CoC values must be >= 0 px, got {float(coc.min()):g}"
    top = float(coc.max())
    if top > max_coc + COC_TOLERANCE + 1e-4:  # 1e-4: a float32 σ of the stored round(10·σ) (6.8 → 28.2000008 px)
        return (f"σ up to {units.coc_to_sigma(top):g} px (CoC {top:g} px) exceeds σ_max "
                f"{units.max_sigma(max_coc):g} px of {max_name} {max_coc:g}")
    return None


def check_dtype(dtype, default: torch.dtype) -> torch.dtype:
    """The compute dtype (``default`` for None); ValueError naming ``dtype`` unless float32 or float64."""
    dtype = default if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def check_tile(tile) -> None:
    """ValueError naming ``tile`` unless a whole number ≥ 1 of px."""
    try:
        ok = int(tile) == tile and int(tile) >= 1 and not isinstance(tile, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"tile must be a whole number of px >= 1, got {tile!r}")


def check_inputs(image: torch.Tensor, labels: torch.Tensor, coc, max_coc=units.DEFAULT_MAX_COC) -> None:
    """ValueError naming the argument for anything :func:`syndof.blur.render_layers` (or the reference loop) would
    render wrong or fail on deep inside (once per render, before layers are merged: merging keeps valid layers
    valid). ``image`` (3, H, W) float in [0, 1], ``labels`` (H, W) integer, ``coc`` (K,) px, ``max_coc`` px."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a (3, H, W) float tensor in [0, 1], got {type(image).__name__}")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be an (H, W) tensor of layer indices, got {type(labels).__name__} "
                         "(torch.from_numpy turns an array into one)")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"image must be float RGB in [0, 1], got {image.dtype} (divide 8-bit values by 255)")
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError(f"image is empty ({image.shape[2]}x{image.shape[1]} px)")
    if labels.shape != image.shape[1:]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match the image {tuple(image.shape[1:])}")
    if labels.is_floating_point() or labels.is_complex():  # 0.6 was taken as layer 0 unsaid: another render
        raise ValueError(f"labels must be an integer tensor of layer indices, got {labels.dtype} "
                         "(labels.long() if they are whole numbers)")
    lo, hi = torch.stack(torch.aminmax(image)).tolist()  # one device sync (NaN propagates to both, ±inf to one)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("image has NaN or inf values")
    if hi > FLOAT_IMAGE_MAX:
        raise ValueError(f"image: values up to {hi:g}; it must be float RGB in [0, 1] (divide 8-bit values by 255)")
    if lo < FLOAT_IMAGE_MIN:
        raise ValueError(f"image: values down to {lo:g}; it must be float RGB in [0, 1] (a [-1, 1] tensor: "
                         "(x + 1) / 2)")
    max_coc = check_max_coc(max_coc)
    try:
        coc_np = coc.detach().cpu().double().numpy() if isinstance(coc, torch.Tensor) else np.asarray(coc, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"coc must be a 1-D array of CoCs in px, got {type(coc).__name__}") from None
    if coc_np.ndim != 1 or coc_np.size == 0:
        raise ValueError("coc must be a non-empty 1-D array (one CoC per layer)")
    problem = coc_problem(coc_np, max_coc)
    if problem:
        raise ValueError(f"coc: {problem}")
    lmin, lmax = torch.stack(torch.aminmax(labels)).tolist()  # one device sync
    if lmin < 0 or lmax >= coc_np.size:
        raise ValueError(f"labels must lie in [0, {coc_np.size - 1}]")
