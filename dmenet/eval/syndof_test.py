"""SYNDOF test protocol (docs/evaluation.md §7): per-image MSE / MAE of the label σ/σ_max, averaged over images.

GT comes either from ``blur_map/`` (uint16 ``round(10·σ)``, this project's generator, or a float32 σ px ``.npy``:
any σ map :func:`syndof.io.read_sigma_map` reads; label = σ/σ_max with σ_max from ``dataset.json``'s ``max_coc``,
default 29 → 7 px: :func:`read_max_coc`, which is :func:`syndof.recipe.read_max_coc`, training's reader too) or from
``gt/`` (DMENet's zip: 8-bit label, value/255 compared directly with the output o).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dmenet.eval.rtf import common_crop
from syndof import io, units
from syndof.choices import Choice, parse_choice
from syndof.recipe import read_max_coc  # named here too: galetto, benchmarks and experiments import it from here


class GTKind(Choice):
    """Encoding of a SYNDOF test set's GT, named by its folder: ``blur_map`` uint16 ``round(10·σ)`` (σ px, this
    project's generator; read as label σ/σ_max), ``gt`` an 8-bit label map (DMENet's zip; value/255)."""

    SIGMA_MAP = "blur_map"
    LABEL = "gt"


def gt_kind(folder: str | os.PathLike) -> GTKind:
    """The GT kind of a SYNDOF GT folder, decided once from its name: ``blur_map/`` holds σ maps, any other folder
    (DMENet's ``gt/``) 8-bit labels."""
    return GTKind.SIGMA_MAP if Path(folder).name == GTKind.SIGMA_MAP.value else GTKind.LABEL


def sigma_map_pairs(root: str | os.PathLike, limit: int | None = None) -> list[tuple[str, Path, Path]]:
    """``(stem, render, σ map)`` of the first ``limit`` renders (all: None; sorted by stem) of a SYNDOF folder:
    ``image/`` and its σ maps in ``blur_map/``, of any suffix :func:`syndof.io.read_sigma_map` reads
    (:data:`syndof.io.SIGMA_MAP_LISTED_EXTENSIONS`: a 16-bit PNG or TIFF, a float ``.npy``). Reads no image: the
    check to run before any work.

    Raises:
        InputError: a missing folder, no render, or naming the first chosen render without its σ map.
    """
    root = Path(root)
    images = sorted(io.index_by_stem(root / "image").items())[:limit]
    maps = io.index_by_stem(root / GTKind.SIGMA_MAP.value, io.SIGMA_MAP_LISTED_EXTENSIONS)  # .npy maps too
    if not images:
        raise io.InputError(root / "image", "no renders to score")
    missing = [path for stem, path in images if stem not in maps]
    if missing:
        raise io.InputError(missing[0], f"no σ map for it in {root / GTKind.SIGMA_MAP.value} ({len(missing)} of the "
                            f"{len(images)} renders to score lack one)")
    return [(stem, path, maps[stem]) for stem, path in images]


def sigma_label(path: str | os.PathLike, max_coc: float, root: str | os.PathLike) -> np.ndarray:
    """The (H, W) float32 label σ/σ_max in [0, 1] of the σ map ``path`` (σ px, any format
    :func:`syndof.io.read_sigma_map` reads) of the SYNDOF folder ``root``, whose ``dataset.json`` gave ``max_coc``
    (:func:`read_max_coc`; σ_max = (max_coc − 1)/4 px). The GT labels of ``evaluate --benchmark syndof``,
    ``galetto.select`` and ``galetto.compare --synthetic``.

    A σ above σ_max is refused, never clipped to the label 1: no render of the folder's generator exceeds σ_max (it
    skips such a sample), so the map says ``dataset.json`` does not describe the folder (a ``max_coc`` smaller than
    its renders'), and every label above it would be scored as 1 (until 7 Dec 2026: ``max_coc`` 1.5 over maps up to
    5.9 px scored every label as 1, exit 0). The comparison is in the SYNDOF file's units, ``round(10·σ)``
    (:func:`syndof.units.sigma_to_syndof_value`): a 16-bit map stores σ_max rounded to 0.1 px, up to 0.05 px above
    it (σ_max 7.25 px, max_coc 30, is stored as 73), and a float32 ``.npy`` holds it to float32's precision; both are
    within. (Training's labels and ``calibrate sigma`` clip with the model's σ_max instead, another scale.)

    Raises:
        InputError: the σ map cannot be read (:func:`syndof.io.read_sigma_map`), or its largest σ is above σ_max,
            naming the map and ``dataset.json``'s ``max_coc``.
    """
    sigma = io.read_sigma_map(path)
    top = units.max_sigma(max_coc)
    largest = float(sigma.max())
    if units.sigma_to_syndof_value(largest) > units.sigma_to_syndof_value(top):
        meta = Path(root) / "dataset.json"
        source = f"max_coc {max_coc:g} in {meta}" if meta.is_file() else (
            f"the default max_coc {max_coc:g} (no {meta})")
        raise io.InputError(path, f"σ up to {largest:g} px, above the σ_max {top:g} px of {source}: it does not "
                                  f"describe this folder's renders (none exceeds its σ_max; labels above it would "
                                  f"be clipped to 1): set dataset.json's max_coc to the one they were rendered with "
                                  f"(σ {largest:g} px needs max_coc >= {4 * largest + 1:g})")
    return units.sigma_to_label(sigma, max_coc).astype(np.float32)


def load_label(path: str | os.PathLike, root: str | os.PathLike, kind: GTKind | None = None) -> np.ndarray:
    """GT label in [0, 1] of one SYNDOF test sample (see module docstring for the two encodings). ``kind``: the
    encoding (:class:`GTKind`); None decides it from the file's folder (:func:`gt_kind`).

    Returns (H, W) float32 label σ/σ_max in [0, 1]: a σ map's px through ``root``'s ``max_coc`` (:func:`sigma_label`:
    InputError for a σ above that σ_max), or an 8-bit label image's value/255 averaged over its 3 channels."""
    path = Path(path)
    if (gt_kind(path.parent) if kind is None else kind) is GTKind.SIGMA_MAP:
        return sigma_label(path, read_max_coc(root), root)
    img = io.read_image(path)  # 8-bit label map, value/255
    return img.mean(axis=2).astype(np.float32)


def label_errors(pred_label: np.ndarray, gt_label: np.ndarray) -> tuple[float, float]:
    """(MSE, MAE) in label units of two (H, W) maps after cropping both to their common top-left size (the network
    crops to ×16); ValueError when a side differs by 16 px or more, a map is not 2-D, or the prediction is not finite
    (:func:`dmenet.eval.rtf.common_crop`)."""
    pred_label, gt_label = common_crop(pred_label, gt_label, "label map")
    diff = np.asarray(pred_label, dtype=np.float64) - np.asarray(gt_label, dtype=np.float64)
    return float(np.mean(diff * diff)), float(np.mean(np.abs(diff)))


def syndof_protocol(kind: GTKind | str, max_coc: float) -> dict:
    """Protocol tags of a SYNDOF-test evaluation whose GT is ``kind`` (:class:`GTKind` or its folder name)."""
    kind = parse_choice(GTKind, kind, "SYNDOF GT folder")
    return {
        "gt": f"{kind.value}/: "
        + ("uint16 round(10 sigma) -> label sigma/sigma_max" if kind is GTKind.SIGMA_MAP else "8-bit label value/255"),
        "sigma_max_px": units.max_sigma(max_coc),
        "units": "label (sigma / sigma_max), not px",
        "crop": "common top-left size",
        "aggregation": "per-image MSE / MAE averaged over images",
    }
