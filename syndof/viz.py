"""Visualisation helpers: colour-mapped σ maps and contact sheets (uint8 RGB, ready for PNG or ``wandb.Image``)."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from syndof.io import to_uint8


def colorize(values: np.ndarray, vmax: float, vmin: float = 0.0, cmap: str = "inferno") -> np.ndarray:
    """Map an (H, W) float array (e.g. σ in px) to (H, W, 3) uint8 RGB with a fixed range [vmin, vmax]."""
    if vmax <= vmin:
        raise ValueError(f"vmax ({vmax}) must exceed vmin ({vmin})")
    norm = np.clip((np.asarray(values, dtype=np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)
    return to_uint8(colormaps[cmap](norm)[..., :3])


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) float in [0, 1] or uint8 → (H, W, 3) uint8."""
    arr = image if image.dtype == np.uint8 else to_uint8(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def contact_sheet(rows: list[list[np.ndarray]], tile: int = 192, pad: int = 4) -> np.ndarray:
    """Tile a grid of images (each float [0, 1] or uint8, any size) into one uint8 RGB sheet.

    Every tile is resized to ``tile`` px high (aspect kept, width padded to the widest column).
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
