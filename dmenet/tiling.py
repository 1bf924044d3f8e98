"""One pass of B over an image of any size: pad to a multiple of 16, run it whole or in tiles, crop back.

The size policy of docs/method.md §7: the image is **replicate-padded** on the bottom/right to a multiple of
:data:`MULTIPLE` (16 px; as MoRanYue/ComfyUI-DMENet; the official code crops top-left instead) and the output is
cropped back, so every input pixel gets a value. A padded image above ``tile_threshold`` pixels
(:data:`TILE_THRESHOLD`, 1024²) runs in ``tile_size`` tiles (:data:`TILE_SIZE`, 512 px) overlapping by
``tile_overlap`` px (:data:`TILE_OVERLAP`, 64), blended with linear ramps across each overlap
(:func:`_ramp`); tiles start on multiples of 16 so their pooling grids line up with the untiled ones
(:func:`_tile_starts`). :func:`tile_geometry` rounds the tile options; :func:`single_pass` is one pass of B (the
label, or the decoder's detection features) of one image, with B's BatchNorms on the moving averages or on the
input's own statistics. The averaging over flips is :mod:`dmenet.flips`; the public API :mod:`dmenet.inference`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dmenet.memory import LARGE_IMAGE_PIXELS
from dmenet.models.fuse import cached_image_statistics_blur, cached_inference_blur

MULTIPLE = 16
"""B's input sides are padded to a multiple of this (px): its coarsest maps are at 1/16."""
TILE_THRESHOLD = LARGE_IMAGE_PIXELS
"""Above this many pixels the image is tiled (the number of :data:`dmenet.memory.LARGE_IMAGE_PIXELS`, above which
``predict`` and the applications print a progress note)."""
TILE_SIZE = 512
"""Default tile side (px)."""
MIN_TILE_SIZE = 2 * MULTIPLE
"""Smallest tile side (px): per-image BatchNorm statistics at 1/16 need at least two cells in a tile."""
TILE_OVERLAP = 64
"""Default overlap of neighbouring tiles (px)."""


def _tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Tile start offsets covering ``length`` (a multiple of 16 ≥ tile); every start is a multiple of 16."""
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weight: linear ramps of ``overlap`` px at the tile ends that border another tile."""
    w = torch.ones(length)
    if overlap > 0:
        r = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if ramp_start:
            w[:overlap] = torch.minimum(w[:overlap], r)
        if ramp_end:
            w[-overlap:] = torch.minimum(w[-overlap:], r.flip(0))
    return w


def _forward_label(model, x: torch.Tensor, image_stats: bool, features: bool = False) -> torch.Tensor:
    """B's defocus output for (1, 3, H, W) with H, W multiples of 16 → (1, 1, H, W) label, or with ``features``
    the decoder's detection features (1, C, H, W), channel 0 the same label
    (:meth:`dmenet.models.decoder.Decoder.detection_features`).

    With ``image_stats`` B's BatchNorms use the statistics of ``x`` itself (per image, or per tile when tiling)
    instead of the moving averages. Both run the rewritten copies of :mod:`dmenet.models.fuse` (no auxiliary heads):
    BatchNorm folded for the moving averages, not for per-image statistics (they cannot be folded).
    """
    if image_stats:
        blur = cached_image_statistics_blur(model)  # its BatchNorms always use the input's statistics
        return blur(x, features=True) if features else blur(x)
    blur = cached_inference_blur(model)  # BatchNorm folded: the same maps up to rounding
    return blur(x, features=True) if features else blur(x)


def _forward_tiled(model, x: torch.Tensor, tile: int, overlap: int, image_stats: bool,
                   features: bool = False) -> torch.Tensor:
    """Tiled forward (:func:`_forward_label`) of a padded (1, 3, H, W) tensor with linear blending across
    overlaps."""
    _, _, h, w = x.shape
    th, tw = min(tile, h), min(tile, w)
    ys = _tile_starts(h, th, max(MULTIPLE, th - overlap))
    xs = _tile_starts(w, tw, max(MULTIPLE, tw - overlap))
    channels = model.blur.decoder.feature_channels if features else 1
    acc = torch.zeros((1, channels, h, w), device=x.device)
    weight = torch.zeros((1, 1, h, w), device=x.device)
    for y in ys:
        wy = _ramp(th, overlap, y > 0, y + th < h)
        for x0 in xs:
            wx = _ramp(tw, overlap, x0 > 0, x0 + tw < w)
            wt = (wy[:, None] * wx[None, :]).to(x.device)
            out = _forward_label(model, x[:, :, y : y + th, x0 : x0 + tw], image_stats, features)
            acc[:, :, y : y + th, x0 : x0 + tw] += out * wt
            weight[:, :, y : y + th, x0 : x0 + tw] += wt
    return acc.div_(weight.clamp_min_(1e-8))  # in place: with features, acc is C planes of the whole image


def single_pass(rgb: np.ndarray, model, tile_threshold: int | None, tile: int, overlap: int,
                image_stats: bool, dtype: torch.dtype = torch.float32, features: bool = False) -> np.ndarray:
    """B's output for one (H, W, 3) float32 image: pad to multiples of 16, forward (tiled if large) in ``dtype``
    (float32, or autocast to a lower precision), crop back: the (H, W) label clamped to [0, 1], or with
    ``features`` the (H, W, C) detection features (channel 0 that label).

    ``tile_threshold``: tile when the padded image has more pixels than this (None = never); ``tile``, ``overlap``:
    px, as :func:`tile_geometry` rounds them; ``image_stats``: B's BatchNorms on the statistics of the image (of each
    tile when tiled) instead of the moving averages (:func:`_forward_label`); ``model`` in eval mode."""
    h, w = rgb.shape[:2]
    device = next(model.parameters()).device
    hp, wp = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(device)
        if (hp, wp) != (h, w):
            x = F.pad(x, (0, wp - w, 0, hp - h), mode="replicate")
        x = x.contiguous(memory_format=torch.channels_last)
        if tile_threshold is not None and hp * wp > tile_threshold and max(hp, wp) > tile:
            out = _forward_tiled(model, x, tile, overlap, image_stats, features)
        else:
            out = _forward_label(model, x, image_stats, features)
        if not features:
            return out[0, 0, :h, :w].float().clamp(0.0, 1.0).cpu().numpy()
        planes = _crop_planes_in_place(out[0].float().cpu(), h, w)
        planes[0].clamp_(0.0, 1.0)
        return planes.permute(1, 2, 0).numpy()


def _crop_planes_in_place(planes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The top-left (h, w) of each plane of a contiguous CPU (C, Hp, Wp) tensor, as a contiguous (C, h, w) view of
    the same storage: each plane's crop is moved down to its place (plane i's crop only overwrites planes ≤ i, whose
    values were read already; ``np.copyto`` handles a plane's overlap with itself). A crop by copy would hold a
    second set of C full-resolution planes: 2 GB for the 41 feature planes of a 12-megapixel photo."""
    c, hp, wp = planes.shape
    planes = planes.contiguous()  # no copy when it is (B's passes write channel-planar maps)
    if (hp, wp) == (h, w):
        return planes
    array = planes.numpy()
    flat = array.reshape(-1)
    for i in range(c):
        np.copyto(flat[i * h * w:(i + 1) * h * w].reshape(h, w), array[i, :h, :w])
    return planes.view(-1)[: c * h * w].view(c, h, w)


def tile_geometry(tile_size: int, tile_overlap: int) -> tuple[int, int]:
    """(tile, overlap) in px: the tile side rounded down and the overlap rounded up to multiples of 16.

    Raises:
        ValueError: a size is not a whole number, the tile is below ``MIN_TILE_SIZE``, the overlap is negative, or the
            rounded overlap is not smaller than the tile.
    """
    for name, value in (("tile_size", tile_size), ("tile_overlap", tile_overlap)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be a whole number of px, got {value!r}")
    if tile_size < MIN_TILE_SIZE:
        raise ValueError(f"tile_size must be >= {MIN_TILE_SIZE} px (per-image BatchNorm statistics at 1/{MULTIPLE} "
                         f"need two cells a tile), got {tile_size}")
    if tile_overlap < 0:  # was read as 0: a caller's sign error blended nothing, unsaid
        raise ValueError(f"tile_overlap must be >= 0 px, got {tile_overlap}")
    tile = tile_size // MULTIPLE * MULTIPLE
    overlap = -(-tile_overlap // MULTIPLE) * MULTIPLE
    if overlap >= tile:
        raise ValueError(f"tile_overlap ({tile_overlap}) must be smaller than tile_size ({tile_size})")
    return tile, overlap
