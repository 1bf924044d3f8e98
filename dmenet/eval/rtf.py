"""RTF blur-estimation protocol of DMENet (``evaluation/RTF/quantitative_RTF.m``; BENCHMARKS.md §6).

GT ``blurMap`` holds a disk-PSF radius in px; each pixel becomes the Gaussian σ of the nearest radius of D'Andrès'
``convertion.mat`` table (:func:`syndof.units.disk_radius_to_sigma`). Predictions become σ px by a selectable
mapping, both are clipped to [0, 3.275], divided by 3.275 (scores are in normalised units, not px), cropped to the
common top-left size, and per-image MSE / MAE are averaged over the images.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from dmenet.eval.benchmarks import Sample
from syndof import io, units

SIGMA_MAPPINGS = ("project", "released", "sigma")
"""How a prediction becomes σ px: ``project`` σ = 7·o (label), ``released`` σ = (15·o − 1)/2 (released DMENet
checkpoint, what ``quantitative_RTF.m`` uses), ``sigma`` the map already holds σ px."""

TABLE_NAME = "convertion.mat"  # (sic), D'Andrès' file name
_IMAGE_RE = re.compile(r"^image_(\w+)$", re.IGNORECASE)


def _loadmat(path: str | os.PathLike) -> dict:
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise io.InputError(path, "file not found")
    try:
        return loadmat(str(path))
    except Exception as exc:  # scipy raises several types for bad files
        raise io.InputError(path, f"cannot read MATLAB file ({exc})") from exc


def load_conversion_table(path: str | os.PathLike) -> np.ndarray:
    """``convertion.mat`` → (23, 2) float64 rows ``[gaussian σ, disk radius]``."""
    mat = _loadmat(path)
    arrays = [v for k, v in mat.items() if not k.startswith("__")]
    if len(arrays) != 1 or np.asarray(arrays[0]).ndim != 2 or np.asarray(arrays[0]).shape[1] != 2:
        raise io.InputError(path, "expected one (N, 2) [sigma, radius] table")
    return np.asarray(arrays[0], dtype=np.float64)


def load_rtf_radius(path: str | os.PathLike) -> np.ndarray:
    """``map_XX.mat`` → (H, W) float64 disk radius px (variable ``blurMap``)."""
    mat = _loadmat(path)
    if "blurMap" not in mat:
        raise io.InputError(path, f"no variable 'blurMap' (found {[k for k in mat if not k.startswith('__')]})")
    return np.asarray(mat["blurMap"], dtype=np.float64)


def load_rtf_sigma(path: str | os.PathLike, table: np.ndarray | None = None) -> np.ndarray:
    """GT σ px of one RTF image: nearest-radius lookup in ``convertion.mat`` (read beside ``path`` by default)."""
    path = Path(path)
    if table is None:
        table = load_conversion_table(path.parent / TABLE_NAME)
    return units.disk_radius_to_sigma(load_rtf_radius(path), table).astype(np.float32)


def list_rtf(root: str | os.PathLike) -> list[Sample]:
    """RTF folder → samples ``image_XX.png`` ↔ ``map_XX.mat`` paired by ``XX``; raises on unmatched files."""
    root = Path(root)
    if not (root / TABLE_NAME).is_file():
        raise io.InputError(root, f"no {TABLE_NAME} (the disk radius → σ table)")
    images = {m.group(1).lower(): p for p in io.list_images(root) if (m := _IMAGE_RE.match(p.stem))}
    maps = {p.stem[4:].lower(): p for p in root.glob("*.mat") if p.stem.lower().startswith("map_")}
    unmatched = sorted(images.keys() ^ maps.keys())
    if unmatched:
        raise io.InputError(root, f"unmatched RTF files for ids {unmatched} (need image_XX.png and map_XX.mat)")
    if not images:
        raise io.InputError(root, "no image_XX.png / map_XX.mat pairs")
    return [Sample(images[k].stem, images[k], maps[k]) for k in sorted(images)]


def prediction_to_sigma(pred: np.ndarray, mapping: str) -> np.ndarray:
    """Prediction → σ px by one of :data:`SIGMA_MAPPINGS` (label o in [0, 1] for the first two)."""
    pred = np.asarray(pred, dtype=np.float64)
    if mapping == "project":
        return units.label_to_sigma(pred)
    if mapping == "released":
        return units.released_output_to_sigma(pred)
    if mapping == "sigma":
        return pred
    raise ValueError(f"sigma mapping must be one of {SIGMA_MAPPINGS}, got {mapping!r}")


def normalise_sigma(sigma: np.ndarray) -> np.ndarray:
    """σ px → RTF score units: clipped to [0, 3.275] and divided by 3.275."""
    return np.clip(np.asarray(sigma, dtype=np.float64), 0.0, units.RTF_SIGMA_MAX) / units.RTF_SIGMA_MAX


def rtf_errors(sigma_pred: np.ndarray, sigma_gt: np.ndarray) -> tuple[float, float]:
    """(MSE, MAE) of one image in normalised units after cropping both maps to their common top-left size."""
    h = min(sigma_pred.shape[0], sigma_gt.shape[0])
    w = min(sigma_pred.shape[1], sigma_gt.shape[1])
    diff = normalise_sigma(sigma_pred[:h, :w]) - normalise_sigma(sigma_gt[:h, :w])
    return float(np.mean(diff * diff)), float(np.mean(np.abs(diff)))


class RegressionAccumulator:
    """Per-image MSE/MAE rows and their means, shared by the RTF and SYNDOF protocols."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, stem: str, mse: float, mae: float, **extra) -> dict:
        row = {"stem": stem, "mse": mse, "mae": mae, **extra}
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        if not self.rows:
            raise ValueError("no images were scored")
        return {
            "n_images": len(self.rows),
            "mse": float(np.mean([r["mse"] for r in self.rows])),
            "mae": float(np.mean([r["mae"] for r in self.rows])),
        }


def rtf_protocol(mapping: str) -> dict:
    """Protocol tags of an RTF evaluation."""
    formula = {"project": "sigma = 7*o", "released": "sigma = max(0, (15*o - 1)/2)", "sigma": "map holds sigma px"}
    return {
        "gt": "blurMap disk radius -> sigma of the nearest radius in convertion.mat",
        "prediction_mapping": f"{mapping}: {formula[mapping]}",
        "normalisation": "sigma clipped to [0, 3.275] then divided by 3.275 (scores in normalised units)",
        "crop": "common top-left size",
        "aggregation": "per-image MSE / MAE averaged over images",
    }
