"""SYNDOF-format synthetic training data: ``image/{stem}.png`` + ``blur_map/{stem}.png`` paired by stem.

``blur_map`` files are 16-bit PNGs holding ``round(10·σ)`` (or float ``.npy`` σ px), read with
``syndof.io.read_sigma_map``; ``dataset.json`` gives ``max_coc`` (29 when absent). Labels (``σ/σ_max``) are made
after augmentation by ``transforms.to_tensors`` so that resizing can rescale σ in px first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from syndof import io
from syndof.recipe import read_max_coc

log = logging.getLogger(__name__)
MAP_EXTENSIONS = (".png", ".npy", ".tif", ".tiff")


def _examples(stems: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(repr(s) for s in stems[:limit])
    return shown + (f" … ({len(stems)} in all)" if len(stems) > limit else "")


class SyntheticDataset:
    """Pairs of (defocused image, σ map) from a SYNDOF folder.

    Args:
        root: folder with ``image/``, ``blur_map/`` and optionally ``dataset.json``.
        stems: restrict to these stems, in this order (used for the train/validation split); None = all, sorted.

    ``max_coc`` (the largest CoC diameter of the renders, px; σ_max = (max_coc − 1)/4 px) is read from
    ``dataset.json`` by :func:`syndof.recipe.read_max_coc`, evaluation's reader too (a finite number > 1; 29 when
    the file or key is absent). Labels are made with the model's ``max_coc``
    (:func:`dmenet.data.transforms.to_tensors`), not this one.

    Raises:
        InputError: missing sub-folders, no samples (the message names the folder), stems that do not pair up, or
            a ``dataset.json`` that is no file, not a JSON object or whose ``max_coc`` is not a finite number > 1 px
            (the message names dataset.json).
        ValueError: ``stems`` names a stem twice.
    """

    def __init__(self, root: str | Path, stems: Sequence[str] | None = None):
        self.root = Path(root)
        image_dir, map_dir = self.root / "image", self.root / "blur_map"
        if not image_dir.is_dir() or not map_dir.is_dir():
            raise io.InputError(self.root, "not a SYNDOF folder: it needs image/ and blur_map/ "
                                           "(create one with `python -m syndof.generate --out DIR`)")
        images = io.index_by_stem(image_dir, io.IMAGE_EXTENSIONS, case_sensitive=True)
        maps = io.index_by_stem(map_dir, MAP_EXTENSIONS, case_sensitive=True)
        if not images:
            raise io.InputError(image_dir, "no synthetic training samples (no images in this folder)")
        no_map = sorted(set(images) - set(maps))
        no_image = sorted(set(maps) - set(images))
        if no_map or no_image:
            parts = []
            if no_map:
                parts.append(f"images without a blur_map: {_examples(no_map)}")
            if no_image:
                parts.append(f"blur_maps without an image: {_examples(no_image)}")
            raise io.InputError(self.root, "image/ and blur_map/ do not pair by stem; " + "; ".join(parts))
        self.max_coc = read_max_coc(self.root)
        all_stems = sorted(images)
        if stems is not None:
            stems = list(stems)
            repeated = sorted({s for s in stems if stems.count(s) > 1})
            if repeated:
                raise ValueError(f"stems: {_examples(repeated)} given more than once (a sample would be drawn twice "
                                 "or land in both train and validation)")
            unknown = sorted(set(stems) - set(all_stems))
            if unknown:
                raise io.InputError(self.root, f"unknown stems {_examples(unknown)}")
            all_stems = list(stems)
        self.stems = all_stems
        self.images = [images[s] for s in all_stems]
        self.maps = [maps[s] for s in all_stems]

    def __len__(self) -> int:
        return len(self.stems)

    def describe(self, index: int) -> str:
        """The image path of sample ``index`` (for messages)."""
        return str(self.images[index])

    def load(self, index: int) -> dict[str, Any]:
        """Sample dict: ``image`` (H, W, 3) float32 [0, 1], ``sigma`` (H, W) float32 px, ``path``.

        Raises:
            InputError: unreadable image or map, or a map whose size differs from the image.
        """
        image = io.read_image(self.images[index])
        sigma = io.read_sigma_map(self.maps[index])
        if sigma.shape != image.shape[:2]:
            raise io.InputError(self.maps[index], f"σ map is {sigma.shape[1]}x{sigma.shape[0]} px but its image "
                                                  f"is {image.shape[1]}x{image.shape[0]} px")
        return {"image": image, "sigma": sigma, "path": str(self.images[index])}

    def split(self, holdout: int) -> tuple["SyntheticDataset", "SyntheticDataset | None"]:
        """(train, validation): the last ``holdout`` stems in sorted order are held out (validation None when
        ``holdout`` <= 0); train keeps this dataset's order, validation is sorted. The two never share a stem.

        Raises:
            InputError: ``holdout`` >= the number of samples (nothing left to train on).
        """
        if holdout <= 0:
            return self, None
        if holdout >= len(self):
            raise io.InputError(self.root, f"cannot hold out {holdout} of {len(self)} samples for validation")
        held = sorted(self.stems)[-holdout:]
        held_set = set(held)
        return (SyntheticDataset(self.root, [s for s in self.stems if s not in held_set]),
                SyntheticDataset(self.root, held))
