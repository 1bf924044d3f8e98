"""Labelled real data (CUHK-style): ``image/`` photos + ``gt/`` binary blur masks paired by stem.

Stems are compared case-insensitively and extensions may differ (``image/a.JPG`` ↔ ``gt/a.png``). Every image needs
a mask; masks without an image are ignored (e.g. the full CUHK mask set beside a few images). The polarity of the
masks is normalised when they are read, so targets are always 1 = blurred. A mask whose size differs from its
image stops the dataset build (sizes are read from the file headers, EXIF orientation applied).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

from dmenet.eval.benchmarks import non_image_mask, read_mask
from syndof import io

log = logging.getLogger(__name__)


class MaskSizeError(ValueError):
    """A ground-truth mask whose size differs from its image (not a skippable read error)."""


class LabelledDataset:
    """(image, mask) pairs; ``white_is_blurred`` False for datasets whose white means in focus (xu100, DUT).

    Raises:
        InputError: missing folders, no images, images without a mask (naming a mask file of another format, e.g.
            ``gt/STEM.npy``, when there is one: :func:`dmenet.eval.benchmarks.non_image_mask`).
        MaskSizeError: a mask whose size differs from its image (the message names both files).
    """

    def __init__(self, root: str | Path, white_is_blurred: bool = True):
        self.root = Path(root)
        self.white_is_blurred = white_is_blurred
        image_dir, gt_dir = self.root / "image", self.root / "gt"
        if not image_dir.is_dir() or not gt_dir.is_dir():
            raise io.InputError(self.root, "labelled folder needs image/ and gt/ sub-folders")
        images, masks = io.index_by_stem(image_dir), io.index_by_stem(gt_dir)
        if not images:
            raise io.InputError(image_dir, "no labelled images")
        missing = sorted(set(images) - set(masks))
        if missing:
            named = non_image_mask(gt_dir, {k: images[k] for k in missing})  # e.g. gt/STEM.npy: named, not "missing"
            if named is not None:
                raise named
            raise io.InputError(self.root, f"{len(missing)} image(s) without a mask in gt/, e.g. "
                                           f"{images[missing[0]].name}")
        extra = len(set(masks) - set(images))
        if extra:
            log.info("%s: %d mask(s) in gt/ have no image and are ignored", self.root, extra)
        keys = sorted(images)
        self.images = [images[k] for k in keys]
        self.masks = [masks[k] for k in keys]
        for image, mask in zip(self.images, self.masks):
            size_i, size_m = io.header_size(image), io.header_size(mask)
            if size_i is not None and size_m is not None and size_i != size_m:
                raise MaskSizeError(f"{mask}: mask is {size_m[0]}x{size_m[1]} px but its image {image} is "
                                    f"{size_i[0]}x{size_i[1]} px")

    def __len__(self) -> int:
        return len(self.images)

    def describe(self, index: int) -> str:
        """The image path of sample ``index`` (for messages)."""
        return str(self.images[index])

    def load(self, index: int) -> dict[str, Any]:
        """Sample dict: ``image`` (H, W, 3) float32 [0, 1], ``mask`` (H, W) float32 {0, 1} (1 = blurred), ``path``.

        Raises:
            InputError: unreadable file. MaskSizeError: decoded sizes differ.
        """
        image = io.read_image(self.images[index])
        mask = read_mask(self.masks[index], white_is_blurred=self.white_is_blurred)
        if mask.shape != image.shape[:2]:
            raise MaskSizeError(f"{self.masks[index]}: mask is {mask.shape[1]}x{mask.shape[0]} px but its image "
                                f"{self.images[index]} is {image.shape[1]}x{image.shape[0]} px")
        return {"image": image, "mask": mask, "path": str(self.images[index])}

    def readable(self, skipped: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """:meth:`load` of every pair in order; an unreadable file (a name where no file can be read included: the
        listing keeps it, :func:`syndof.io.index_by_stem`) is skipped with one warning ``skipped PATH: reason``, and
        the ``PATH: reason`` line is appended to ``skipped`` when given (for the caller's record). A mask of another
        size still raises :class:`MaskSizeError`."""
        for i in range(len(self)):
            try:
                yield self.load(i)
            except io.InputError as err:
                log.warning("skipped %s", err)
                if skipped is not None:
                    skipped.append(str(err))
