"""Geometric augmentation on sample dicts, with explicit per-key interpolation and a seeded ``torch.Generator``.

A sample is a dict of NumPy arrays sharing one geometry:

* ``"image"``: (H, W, 3) float32 RGB in [0, 1] — resized with area (down) / bilinear (up) interpolation;
* ``"sigma"``: (H, W) float32 Gaussian σ in px — resized like the image AND multiplied by the scale
  (``units.rescale_sigma``: resizing an image by ``s`` scales its blur by ``s``);
* ``"mask"``: (H, W) float32 {0, 1}, 1 = blurred — nearest-neighbour resize.

Other keys (str metadata such as ``"path"``) pass through unchanged. Randomness comes only from the generator
argument, so a sample is a pure function of (file, seed).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from syndof import units
from syndof.resize import applied_scale

Sample = dict[str, Any]
_SPATIAL = ("image", "sigma", "mask")


def _geometry(sample: Sample) -> tuple[int, int]:
    h, w = sample["image"].shape[:2]
    for key in _SPATIAL:
        if key in sample and sample[key].shape[:2] != (h, w):
            raise ValueError(f"sample {sample.get('path', '')}: {key} is {sample[key].shape[:2]}, image is {(h, w)}")
    return h, w


def resize(sample: Sample, size: tuple[int, int]) -> Sample:
    """Resize every spatial entry to ``size`` = (H, W); σ values are multiplied by the (geometric-mean) scale."""
    h, w = _geometry(sample)
    new_h, new_w = int(size[0]), int(size[1])
    if (new_h, new_w) == (h, w):
        return dict(sample)
    down = new_h * new_w < h * w
    interp = cv2.INTER_AREA if down else cv2.INTER_LINEAR
    out = dict(sample)
    out["image"] = np.clip(cv2.resize(sample["image"], (new_w, new_h), interpolation=interp), 0.0, 1.0)
    if "sigma" in sample:
        scale = applied_scale((h, w), (new_w, new_h))
        resized = cv2.resize(sample["sigma"], (new_w, new_h), interpolation=interp)
        out["sigma"] = units.rescale_sigma(np.maximum(resized, 0.0), scale).astype(np.float32)
    if "mask" in sample:
        out["mask"] = cv2.resize(sample["mask"], (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    return out


def resize_for_crop(sample: Sample, crop: int, max_min_side: int | None = None) -> Sample:
    """Scale so the shorter side is at least ``crop`` (and at most ``max_min_side`` when given), aspect kept;
    σ (px) is scaled with the image (:func:`resize`).

    Raises:
        ValueError: ``max_min_side`` smaller than ``crop`` (the crop would not fit).
    """
    if max_min_side is not None and max_min_side < crop:
        raise ValueError(f"max_min_side ({max_min_side}) must be >= crop ({crop})")
    h, w = _geometry(sample)
    short = min(h, w)
    target = short
    if short < crop:
        target = crop
    elif max_min_side is not None and short > max_min_side:
        target = max_min_side
    if target == short:
        return sample
    s = target / short
    new_h = target if h == short else max(target, int(round(h * s)))
    new_w = target if w == short else max(target, int(round(w * s)))
    return resize(sample, (new_h, new_w))


def _randint(gen: torch.Generator, high: int) -> int:
    """Uniform integer in [0, high) from ``gen``."""
    return int(torch.randint(high, (1,), generator=gen).item())


def random_crop(sample: Sample, crop: int, gen: torch.Generator) -> Sample:
    """Joint random ``crop``×``crop`` window of every spatial entry (the image must be at least that large)."""
    h, w = _crop_fits(sample, crop)
    return _window(sample, _randint(gen, h - crop + 1), _randint(gen, w - crop + 1), crop)


def _crop_fits(sample: Sample, crop: int) -> tuple[int, int]:
    """The sample's (H, W); ValueError when it is smaller than ``crop`` px on a side."""
    h, w = _geometry(sample)
    if h < crop or w < crop:
        raise ValueError(f"sample {sample.get('path', '')}: {w}x{h} px is smaller than the {crop} px crop")
    return h, w


def _window(sample: Sample, top: int, left: int, crop: int) -> Sample:
    """The ``crop``×``crop`` window at (``top``, ``left``) px of every spatial entry (contiguous copies)."""
    out = dict(sample)
    for key in _SPATIAL:
        if key in sample:
            out[key] = np.ascontiguousarray(sample[key][top : top + crop, left : left + crop])
    return out


def random_vflip(sample: Sample, gen: torch.Generator, p: float = 0.5) -> Sample:
    """Flip every spatial entry upside down with probability ``p`` (the official ``flip_axis(axis=0)``)."""
    flip = float(torch.rand((1,), generator=gen).item()) < p
    if not flip:
        return sample
    out = dict(sample)
    for key in _SPATIAL:
        if key in sample:
            out[key] = np.ascontiguousarray(sample[key][::-1])
    return out


def random_rot90(sample: Sample, gen: torch.Generator) -> Sample:
    """Rotate every spatial entry by k·90°, k uniform in {0, 1, 2, 3} (an odd k turns (H, W) into (W, H); values
    unchanged)."""
    k = _randint(gen, 4)
    if k == 0:
        return sample
    out = dict(sample)
    for key in _SPATIAL:
        if key in sample:
            out[key] = np.ascontiguousarray(np.rot90(sample[key], k, axes=(0, 1)))
    return out


def random_downscale(sample: Sample, crop: int, gen: torch.Generator, scale_min: float,
                     scale_max: float = 1.0, p: float = 1.0) -> Sample:
    """With probability ``p``, resize by ``s`` uniform in [``scale_min``, ``scale_max``] ⊆ (0, 1] (σ multiplied by
    ``s``, see :func:`resize`).

    The same scene then appears with several blur sizes in px, so blur has to be measured, not guessed from
    content. Only downscaling: upscaling would add interpolation blur that the label does not have. ``s`` is
    raised where needed so the shorter side stays ≥ ``crop``. ``p`` < 1 keeps part of the samples at their own
    size, so the largest σ stay as frequent as without the augmentation.
    """
    if not 0.0 < scale_min <= scale_max <= 1.0:
        raise ValueError(f"downscale range must satisfy 0 < min <= max <= 1, got [{scale_min}, {scale_max}]")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"downscale probability must be in [0, 1], got {p}")
    apply, u = (float(v) for v in torch.rand((2,), generator=gen))
    if apply >= p:
        return sample
    s = scale_min + (scale_max - scale_min) * u
    h, w = _geometry(sample)
    s = max(s, crop / min(h, w))
    if s >= 1.0:
        return sample
    return resize(sample, (max(crop, int(round(h * s))), max(crop, int(round(w * s)))))


def reblur(sample: Sample, extra: float) -> Sample:
    """Blur the image with a Gaussian of σ ``extra`` px (reflected border) and set σ to
    ``units.compose_sigma(σ, extra)``. Only for σ-labelled samples: a mask sample's sharp region would no longer
    be sharp, so one raises ``ValueError``."""
    if "sigma" not in sample or "mask" in sample:
        raise ValueError(f"sample {sample.get('path', '')}: only σ-labelled samples can be re-blurred")
    if extra <= 0.0:
        return sample
    out = dict(sample)
    out["image"] = np.clip(cv2.GaussianBlur(sample["image"], (0, 0), extra, borderType=cv2.BORDER_REFLECT_101),
                           0.0, 1.0)
    out["sigma"] = units.compose_sigma(sample["sigma"], extra).astype(np.float32)
    return out


def random_reblur(sample: Sample, gen: torch.Generator, p: float, max_sigma: float) -> Sample:
    """With probability ``p``, :func:`reblur` by σ uniform in [0, ``max_sigma``] px.

    Every SYNDOF render has its focus plane inside the scene, so B can learn "the sharpest region is σ ≈ 0" and
    rank the rest, instead of measuring blur: the shipped weights hardly change their σ when a whole image is
    blurred further. A re-blurred sample has no sharp region at all, and its label says so. Applied at the
    working size before the crop, so the crop has no border effect."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"re-blur probability must be in [0, 1], got {p}")
    if not max_sigma >= 0.0:
        raise ValueError(f"re-blur max σ must be >= 0 px, got {max_sigma}")
    apply, u = (float(v) for v in torch.rand((2,), generator=gen))
    if apply >= p:
        return sample
    return reblur(sample, max_sigma * u)  # σ 0 (max_sigma 0) leaves the sample as it is


def center_crop(sample: Sample, crop: int) -> Sample:
    """Deterministic central ``crop``×``crop`` window of every spatial entry (validation); the sample must be at
    least ``crop`` px on both sides (odd margins: the extra pixel is left at the bottom / right).

    Raises:
        ValueError: the sample is smaller than the crop (as :func:`random_crop`).
    """
    h, w = _crop_fits(sample, crop)
    return _window(sample, (h - crop) // 2, (w - crop) // 2, crop)


def augment(sample: Sample, crop: int, gen: torch.Generator | None, *, max_min_side: int | None = None,
            vflip: bool = True, rot90: bool = True, scale_min: float = 1.0, scale_p: float = 1.0,
            reblur_p: float = 0.0, reblur_max: float = 0.0) -> Sample:
    """Training pipeline: resize for the crop → random downscale (``scale_min`` < 1, with probability ``scale_p``)
    → random re-blur (σ-labelled samples only, ``reblur_p`` > 0) → random crop → vertical flip → rot90 (``gen``
    None = centre crop, no randomness)."""
    sample = resize_for_crop(sample, crop, max_min_side)
    if gen is None:
        return center_crop(sample, crop)
    if scale_min < 1.0:
        sample = random_downscale(sample, crop, gen, scale_min, p=scale_p)
    if reblur_p > 0.0:
        sample = random_reblur(sample, gen, reblur_p, reblur_max)
    sample = random_crop(sample, crop, gen)
    if vflip:
        sample = random_vflip(sample, gen)
    if rot90:
        sample = random_rot90(sample, gen)
    return sample


def to_tensors(sample: Sample, max_coc: float) -> dict[str, torch.Tensor]:
    """Sample → tensors: ``image`` (3, H, W) float32 [0, 1]; ``label`` (1, H, W) = σ/σ_max clipped to [0, 1];
    ``mask`` (1, H, W) {0, 1} float32 (1 = blurred)."""
    out = {"image": torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))).float()}
    if "sigma" in sample:
        label = units.sigma_to_label(sample["sigma"], max_coc)
        out["label"] = torch.from_numpy(np.ascontiguousarray(label, dtype=np.float32))[None]
    if "mask" in sample:
        out["mask"] = torch.from_numpy(np.ascontiguousarray(sample["mask"], dtype=np.float32))[None]
    return out
