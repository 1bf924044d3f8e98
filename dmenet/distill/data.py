"""Training and validation samples for blur detection: labelled photos (+ cached soft targets) and sharp negatives.

Every sample of step k is drawn from ``np.random.default_rng((seed, k))``, so a resumed run sees exactly the
batches an uninterrupted one would. Targets are 1 = blurred. Bad inputs (missing files, corrupt headers, a mask
or soft target whose size differs from its image, an empty list) raise :class:`DataError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dmenet.distill.config import DistillDataConfig
from dmenet.distill.split import read_split
from dmenet.eval.benchmarks import non_image_mask, read_mask
from syndof.io import InputError, check_nonempty_file, from_uint8, header_size, index_by_stem, read_image
from syndof.resize import long_side_scale, scaled_size


class DataError(ValueError):
    """A bad training input; the message names the file or option."""


@dataclass(frozen=True)
class Item:
    image: Path
    mask: Path | None  # None: a sharp-everywhere negative (all-sharp mask)
    soft: Path | None


def _listed(folder: str, list_file: str, what: str) -> dict[str, Path]:
    try:
        stems = read_split(list_file)
    except OSError as e:
        raise DataError(f"{list_file}: cannot read the {what} list ({e.strerror})") from e
    if not stems:
        raise DataError(f"{list_file}: the {what} list is empty")
    try:
        index = index_by_stem(folder, case_sensitive=True)
    except InputError as e:
        raise DataError(str(e)) from e
    missing = [s for s in stems if s not in index]
    if missing:
        raise DataError(f"{folder}: {len(missing)} {what} image(s) listed in {list_file} are missing, "
                        f"e.g. {missing[0]}")
    return {s: index[s] for s in stems}


def _checked_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image file ``path`` from its header; DataError naming it when it is no file to read
    (missing, empty, a symbolic link loop or to nothing, a FIFO: :func:`syndof.io.check_nonempty_file`, kept by
    :func:`syndof.io.index_by_stem`) or its header cannot be read."""
    try:
        check_nonempty_file(path)
    except InputError as e:
        raise DataError(str(e)) from e
    size = header_size(path)
    if size is None:
        raise DataError(f"{path}: cannot read the image header (corrupt or not an image)")
    return size


def labelled_items(images: str, masks: str, list_file: str, soft: str | None = None,
                   mask_suffix: str = "") -> list[Item]:
    """Items of the listed stems, each mask (and soft target) checked to have its image's size. The mask of photo
    ``STEM`` is ``STEM{mask_suffix}.*`` in ``masks`` (``data.mask_suffix``; "" = the same stem)."""
    photos = _listed(images, list_file, "labelled")
    try:
        mask_index = index_by_stem(masks, case_sensitive=True)
        soft_index = index_by_stem(soft, case_sensitive=True) if soft else {}
    except InputError as e:
        raise DataError(str(e)) from e
    items = []
    for stem, photo in photos.items():
        mask = mask_index.get(stem + mask_suffix)
        if mask is None:
            other = non_image_mask(masks, {stem + mask_suffix: photo}, case_sensitive=True)
            if other is not None:
                raise DataError(str(other))
            raise DataError(f"{photo}: no mask {stem}{mask_suffix}.* in {masks} (data.mask_suffix={mask_suffix!r}; "
                            "a syndof.generate folder's blur_map_binary/ masks need data.mask_suffix=_binary)")
        if soft and stem not in soft_index:
            raise DataError(f"{photo}: no soft target {stem}.png in {soft} (run experiments/distill/cache_dmenet.py)")
        size = _checked_size(photo)
        for other in (mask, soft_index.get(stem)):
            if other is not None and _checked_size(other) != size:
                raise DataError(f"{other}: size {_checked_size(other)} differs from its image {photo} {size}")
        items.append(Item(photo, mask, soft_index.get(stem)))
    return items


def sharp_items(images: str, list_file: str) -> list[Item]:
    """Items (no mask: sharp everywhere) of the photos of ``images`` listed in ``list_file``, each checked for size."""
    items = [Item(p, None, None) for p in _listed(images, list_file, "sharp").values()]
    for it in items:
        _checked_size(it.image)
    return items


def load_item(item: Item, white_is_blurred: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(image (H, W, 3) float32 [0, 1], mask (H, W) float32 {0, 1}, soft (H, W) float32 [0, 1] or None)."""
    try:
        image = read_image(item.image)
        mask = (read_mask(item.mask, white_is_blurred) if item.mask is not None
                else np.zeros(image.shape[:2], np.float32))
        soft = read_image(item.soft).mean(axis=2) if item.soft is not None else None
    except InputError as e:
        raise DataError(str(e)) from e
    if mask.shape != image.shape[:2] or (soft is not None and soft.shape != image.shape[:2]):
        raise DataError(f"{item.mask or item.soft}: size differs from its image {item.image}")
    return image, mask, soft


def augment(image: np.ndarray, mask: np.ndarray, soft: np.ndarray | None, crop: int, scale_min: float,
            hflip: bool, rng: np.random.Generator):
    """Random downscale by s ∈ [scale_min, 1] (at least to the crop), random crop, random horizontal flip.

    Blur in px scales with s, like the image; the mask is resampled by area and re-binarised at 0.5. Takes and
    returns :func:`load_item`'s arrays, image (H, W, 3) float32 RGB [0, 1], mask (H, W) float32 {0, 1} (1 = blurred),
    soft (H, W) float32 [0, 1] or None, cropped to ``crop`` × ``crop`` px (views, not copies)."""
    h, w = mask.shape
    s = max(rng.uniform(scale_min, 1.0), crop / min(h, w))
    if s < 1.0:
        size = (max(crop, round(w * s)), max(crop, round(h * s)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) >= 0.5).astype(np.float32)
        soft = cv2.resize(soft, size, interpolation=cv2.INTER_AREA) if soft is not None else None
    elif s > 1.0:  # smaller than the crop: upscale
        size = (max(crop, round(w * s)), max(crop, round(h * s)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        soft = cv2.resize(soft, size, interpolation=cv2.INTER_LINEAR) if soft is not None else None
    h, w = mask.shape
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    image, mask = image[y:y + crop, x:x + crop], mask[y:y + crop, x:x + crop]
    soft = soft[y:y + crop, x:x + crop] if soft is not None else None
    if hflip and rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
        soft = soft[:, ::-1] if soft is not None else None
    return image, mask, soft


def preload(item: Item, long_side: int | None, white_is_blurred: bool = True):
    """The item shrunk so its long side is at most ``long_side`` (area resampling; the mask re-binarised at 0.5),
    as uint8 arrays (image (H, W, 3), mask (H, W), soft (H, W) or None) to keep a whole training set in memory."""
    image, mask, soft = load_item(item, white_is_blurred)
    h, w = mask.shape
    s = long_side_scale((h, w), long_side)
    if s != 1.0:
        size = scaled_size((h, w), s)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) >= 0.5).astype(np.float32)
        soft = cv2.resize(soft, size, interpolation=cv2.INTER_AREA) if soft is not None else None
    q = lambda a: None if a is None else np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)  # noqa: E731
    return q(image), q(mask), q(soft)


def _float(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else from_uint8(a)


class TrainStream:
    """Batches of step k: (B − n_sharp) labelled samples + n_sharp sharp negatives, drawn from the training set
    held in memory at long side ``data.preload_long_side``.

    :meth:`batch` returns tensors image (B, 3, c, c) in [0, 1], mask (B, 1, c, c) in {0, 1}, soft (B, 1, c, c)
    (0 where absent), has_soft (B, 1, 1, 1) in {0, 1}, sharp (B, 1, 1, 1) in {0, 1}."""

    def __init__(self, cfg: DistillDataConfig, seed: int):
        self.cfg, self.seed = cfg, seed
        self.labelled = labelled_items(cfg.images, cfg.masks, cfg.train_list, cfg.soft_targets, cfg.mask_suffix)
        self.sharp = (sharp_items(cfg.sharp_images, cfg.sharp_list)
                      if cfg.sharp_per_batch and cfg.sharp_images and cfg.sharp_list else [])
        self._memory = {it: preload(it, cfg.preload_long_side, cfg.white_is_blurred)
                        for it in self.labelled + self.sharp}

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """The batch of ``step`` (seeded by (seed, step)), as in the class docstring: image (B, 3, c, c) RGB in
        [0, 1], mask (B, 1, c, c) {0, 1} (1 = blurred), soft (B, 1, c, c) (0 where absent), has_soft and sharp
        (B, 1, 1, 1) {0, 1}; c = ``data.crop`` px."""
        cfg = self.cfg
        rng = np.random.default_rng((self.seed, step))
        n_sharp = cfg.sharp_per_batch if self.sharp else 0
        picks = [self.labelled[i] for i in rng.integers(0, len(self.labelled), cfg.batch - n_sharp)]
        picks += [self.sharp[i] for i in rng.integers(0, len(self.sharp), n_sharp)] if n_sharp else []
        out: dict[str, list[np.ndarray]] = {"image": [], "mask": [], "soft": [], "has_soft": [], "sharp": []}
        for item in picks:
            image, mask, soft = (_float(a) for a in self._memory[item])
            image, mask, soft = augment(image, mask, soft, cfg.crop, cfg.scale_min, cfg.hflip, rng)
            out["image"].append(np.ascontiguousarray(image.transpose(2, 0, 1)))
            out["mask"].append(mask[None].copy())
            out["soft"].append((soft if soft is not None else np.zeros_like(mask))[None].copy())
            out["has_soft"].append(np.full((1, 1, 1), float(soft is not None), np.float32))
            out["sharp"].append(np.full((1, 1, 1), float(item.mask is None), np.float32))
        return {k: torch.from_numpy(np.stack(v).astype(np.float32)) for k, v in out.items()}


def resize_side(image: np.ndarray, side: int) -> np.ndarray:
    """Square ``side``² RGB (the paper's 320² protocol), area-resampled when shrinking: ``image`` (H, W, 3) (or
    (H, W)) → (side, side, 3) (or (side, side)) of the same dtype and value range (bilinear unless
    ``side`` < min(H, W); the aspect ratio is not kept)."""
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if side < min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(image, (side, side), interpolation=interp)
