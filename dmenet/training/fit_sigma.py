"""Fit a model's σ recalibration curve on held-out synthetic renders (an inference option, no weights change).

The curve (:mod:`dmenet.models.sigma_curve`) is the L1 isotonic regression of the true σ on B's raw σ over every
pixel of the given SYNDOF folders (``image/`` + ``blur_map/``), with the recipe's σ path (its BatchNorm statistics
and flips). It is stored in the recipe's σ path (``Recipe.sigma.curve``, with the conditions it was fitted under) of
a copy of the model; inference then maps σ through it. S and the detection maps keep B's raw output. A curve the
model already has is replaced, not composed.

Fit it on renders that are neither trained on nor used to test: the curve learns how the model's errors depend on
σ in the fitting data's blur distribution, and that distribution should be the one the model will be used on.

Usage: ``python -m dmenet.calibrate sigma --model MODEL.safetensors --data DIR [DIR …] --out OUT.safetensors``
(:mod:`dmenet.calibrate`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dmenet.eval.syndof_test import label_errors
from syndof import io as sio
from syndof import units

log = logging.getLogger("dmenet.fit_sigma")

N_VALUES = 29
"""Curve values by default: one every 0.25 px for σ_max 7."""


def collect(predictor, folders: list[Path]) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    """Raw predicted σ (the σ path of ``predictor``, a :class:`dmenet.inference.Predictor`, before any curve) and true
    σ (px, clipped to the model's σ_max) of every readable sample of ``folders``.

    Returns (predicted maps, true maps, sample names ``folder/stem``, skipped files with the reason, each
    ``"PATH: reason"``); each map (H, W) float32 σ in px, 0 … σ_max, at its image's size. Unreadable samples,
    image / map size mismatches and image names in ``image/`` where no file can be read (a symbolic link loop or to
    nothing, a FIFO: :func:`syndof.io.unlisted_images`) are skipped and reported, one line ``skipped PATH: reason``
    each. A render's σ map is ``blur_map/STEM.*`` of any suffix :func:`syndof.io.read_sigma_map` reads
    (:data:`syndof.io.SIGMA_MAP_LISTED_EXTENSIONS`, stems compared case-insensitively, as ``dmenet.evaluate
    --benchmark syndof`` pairs them; until 7 Dec 2026 only ``STEM.png``: a folder of ``.npy`` maps was "file not
    found" for every render); a render without one is skipped naming ``blur_map/STEM.png``.

    Raises:
        syndof.io.InputError: a folder has no ``image/`` samples at all (saying how many image names there are no
            file, :func:`syndof.io.unlisted_note`), or its ``blur_map/`` holds two maps of one stem (``a.png`` and
            ``a.npy``: which one is the truth is not guessed).
    """
    model = predictor.model
    sigma_max = model.config.sigma_max
    preds, trues, names, skipped = [], [], [], []
    listed = []
    for folder in folders:  # every folder checked before any line is said or any image read
        images, unlisted = (sio.list_images_and_unlisted(folder / "image") if (folder / "image").is_dir()
                            else ([], []))
        if not images:
            raise sio.InputError(folder, "no images in image/ (expected a SYNDOF folder: image/ + blur_map/)"
                                 + sio.unlisted_note(unlisted))
        map_dir = folder / "blur_map"  # every format the reader reads, keyed by lower-case stem (as evaluate)
        maps = sio.index_by_stem(map_dir, sio.SIGMA_MAP_LISTED_EXTENSIONS) if map_dir.is_dir() else {}
        listed.append((folder, images, maps))
        skipped += [f"{path}: {why}" for path, why in unlisted]  # left out of the listing: recorded and said
    for line in skipped:
        log.warning("skipped %s", line)
    for folder, images, maps in listed:
        for path in images:
            gt_path = maps.get(path.stem.lower(), folder / "blur_map" / f"{path.stem}.png")  # none: "not found"
            try:
                image = sio.read_image(path)
                # clipped to the MODEL's σ_max, the most its curve can give, on purpose: the fit is in the model's
                # units, and a truth above it has no better target (not the folder's dataset.json σ_max, which
                # evaluate checks its maps against: dmenet.eval.syndof_test.sigma_label)
                true = np.clip(sio.read_sigma_map(gt_path), 0.0, sigma_max)
                if true.shape != image.shape[:2]:
                    raise sio.InputError(gt_path, f"σ map {true.shape} and image {image.shape[:2]} differ in size")
            except sio.InputError as err:
                log.warning("skipped %s", err)
                skipped.append(str(err))
                continue
            preds.append(units.label_to_sigma(predictor.label(image, predictor.recipe.sigma.bn), model.config.max_coc))
            trues.append(true.astype(np.float32))
            names.append(f"{folder.name}/{path.stem}")
    return preds, trues, names, skipped


def label_mae(preds: list[np.ndarray], trues: list[np.ndarray], max_coc: float) -> float:
    """Per-image label MAE (σ/σ_max units, in [0, 1]) of σ maps (px) averaged over images (the SYNDOF-test
    protocol); ``preds[i]`` and ``trues[i]`` (H, W) of one size, ``max_coc`` in px."""
    return float(np.mean([label_errors(units.sigma_to_label(p, max_coc), units.sigma_to_label(t, max_coc))[1]
                          for p, t in zip(preds, trues)]))
