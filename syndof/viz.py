"""Visualisation helpers: colour-mapped σ maps and contact sheets (uint8 RGB, ready for PNG or ``wandb.Image``)."""

from __future__ import annotations

import functools

import numpy as np
from matplotlib import colormaps

from syndof.io import to_uint8


def colorize(values: np.ndarray, vmax: float, vmin: float = 0.0, cmap: str = "inferno") -> np.ndarray:
    """Map an (H, W) float array (e.g. σ in px) to (H, W, 3) uint8 RGB with a fixed range [vmin, vmax].

    The colours are matplotlib's ``colormaps[cmap](norm)[..., :3]`` rounded to uint8 (NaN: the map's "bad"
    colour), looked up in a uint8 table with matplotlib's own bin index ``min(⌊norm·N⌋, N − 1)``: the same pixels
    without the float64 RGBA image in between.
    """
    if vmax <= vmin:
        raise ValueError(f"vmax ({vmax}) must exceed vmin ({vmin})")
    norm = np.clip((np.asarray(values, dtype=np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)
    lut = _uint8_lut(cmap)
    n = lut.shape[0] - 1
    with np.errstate(invalid="ignore"):  # NaN (replaced below)
        index = (norm * n).astype(np.intp)  # norm ≥ 0: truncation is the floor, as matplotlib's astype(int)
    np.minimum(index, n - 1, out=index)
    bad = np.isnan(norm)
    if bad.any():
        index[bad] = n
    return lut[index]


@functools.lru_cache(maxsize=16)
def _uint8_lut(cmap: str) -> np.ndarray:
    """(N + 1, 3) uint8: the N colours of the registered colour map ``cmap``, then its "bad" (NaN) colour."""
    cm = colormaps[cmap]
    lut = to_uint8(np.concatenate([cm(np.arange(cm.N)), cm(np.array([np.nan]))])[:, :3])
    lut.flags.writeable = False  # shared by every call
    return lut


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) float in [0, 1] or uint8 → (H, W, 3) uint8."""
    arr = image if image.dtype == np.uint8 else to_uint8(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def contact_sheet(rows: list[list[np.ndarray]], tile: int = 192, pad: int = 4) -> np.ndarray:
    """Tile a grid of images (each float [0, 1] or uint8, any size) into one uint8 RGB sheet.

    Every tile is resized to ``tile`` px high (aspect kept, width ``round(w·tile/h)``, at least 1; area averaging)
    and placed in its column, as wide as the column's widest tile; ``pad`` px of white lie around and between the
    tiles, so the sheet is rows·(tile + pad) + pad high.

    Returns (rows·(tile + pad) + pad, Σ column widths + pad·(columns + 1), 3) uint8 RGB, 0…255 (white 255 between
    tiles). Images: (H, W) gray or (H, W, 3) RGB, as :func:`as_rgb_uint8` takes them.
    """
    import cv2

    resized = []
    for row in rows:
        out = []
        for img in row:
            img = as_rgb_uint8(img)
            h, w = img.shape[:2]
            out.append(cv2.resize(img, (max(1, round(w * tile / h)), tile), interpolation=cv2.INTER_AREA))
        resized.append(out)
    ncol = max(len(r) for r in resized)
    col_w = [max((r[c].shape[1] for r in resized if c < len(r)), default=tile) for c in range(ncol)]
    sheet = np.full((len(resized) * (tile + pad) + pad, sum(col_w) + pad * (ncol + 1), 3), 255, np.uint8)
    for i, row in enumerate(resized):
        x = pad
        for c, img in enumerate(row):
            y = pad + i * (tile + pad)
            sheet[y : y + tile, x : x + img.shape[1]] = img
            x += col_w[c] + pad
    return sheet
