"""RTF blur-estimation protocol of DMENet (``evaluation/RTF/quantitative_RTF.m``; docs/evaluation.md §6).

GT ``blurMap`` holds a disk-PSF radius in px; each pixel becomes the Gaussian σ of the nearest radius of D'Andrès'
``convertion.mat`` table (:func:`syndof.units.disk_radius_to_sigma`). Predictions become σ px by a selectable
mapping, both are clipped to [0, 3.275], divided by 3.275 (scores are in normalised units, not px), cropped to the
common top-left size (sizes must agree to < 16 px per side, the network's ×16 crop: a map of another size is refused),
and per-image MSE / MAE are averaged over the images.

Two folder layouts are read (:func:`list_rtf`):

* the RTF release: ``image_XX.png`` + ``map_XX.mat`` + ``convertion.mat`` in one folder (noise-free images only);
* DMENet's test zip: ``image/{0,1,1.6}/`` + ``gt/{0,1,1.6}/`` (one sub-folder per noise level s), the GT either as
  ``.mat`` (``blurMap`` radius, MATLAB path; ``convertion.mat`` found in ``gt/<s>/``, ``gt/`` or the root) or as
  ``.npy`` holding σ px (Python path). Images and GT pair by their trailing number (``image_01`` ↔ ``map_01`` ↔
  ``01``), or by stem when they have none.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from dmenet.eval.benchmarks import Sample
from syndof import io, units
from syndof.choices import Choice, choices, parse_choice


class SigmaMapping(Choice):
    """How a prediction becomes σ px: ``project`` σ = 7·o (label o = σ/σ_max in [0, 1]), ``released``
    σ = max(0, (15·o − 1)/2) (output o in [0, 1] of the released DMENet checkpoint, what ``quantitative_RTF.m``
    uses), ``sigma`` the map already holds σ px."""

    PROJECT = "project"
    RELEASED = "released"
    SIGMA = "sigma"


SIGMA_MAPPINGS = choices(SigmaMapping)

RTF_SIGMA_MAX = 3.275
"""Largest Gaussian σ (px) of D'Andrès' disk→Gaussian table; RTF scores divide by it (docs/evaluation.md §6)."""

TABLE_NAME = "convertion.mat"  # (sic), D'Andrès' file name


class NoiseLevel(Choice):
    """Noise level s of DMENet's RTF test folders, the name of their sub-folders ``image/<s>/`` and ``gt/<s>/``:
    ``0`` noise-free (the only level of the RTF release's flat folder), ``1`` and ``1.6`` the noisy copies."""

    FREE = "0"
    S1 = "1"
    S1_6 = "1.6"


NOISE_LEVELS = choices(NoiseLevel)
"""Noise levels s of DMENet's RTF test folders (``image/<s>/``, ``gt/<s>/``)."""
_IMAGE_RE = re.compile(r"^image_(\w+)$", re.IGNORECASE)
_TRAILING_NUMBER = re.compile(r"(\d+)$")


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
    """GT σ px of one RTF image: nearest-radius lookup in ``convertion.mat`` (read beside ``path`` by default).

    ``table``: (N, 2) float64 rows ``[σ px, disk radius px]`` (:func:`load_conversion_table`). Returns (H, W) float32
    σ in px, each value one of the table's σ column (the ``blurMap`` radius is in px)."""
    path = Path(path)
    if table is None:
        table = load_conversion_table(path.parent / TABLE_NAME)
    return units.disk_radius_to_sigma(load_rtf_radius(path), table).astype(np.float32)


def is_noise_layout(root: str | os.PathLike) -> bool:
    """True for DMENet's ``image/<s>/`` + ``gt/<s>/`` layout, False for the RTF release's flat folder."""
    root = Path(root)
    return (root / "image").is_dir() and (root / "gt").is_dir()


def _first_table(folders) -> Path | None:
    return next((f / TABLE_NAME for f in folders if (f / TABLE_NAME).is_file()), None)


def find_table(root: str | os.PathLike, noise: NoiseLevel | str = NoiseLevel.FREE) -> Path | None:
    """``convertion.mat`` for an RTF folder (release: in the root; noise layout: ``gt/<s>/``, ``gt/`` or the root);
    None when there is none. ``noise``: :class:`NoiseLevel` or its value (ValueError otherwise)."""
    root = Path(root)
    noise = parse_choice(NoiseLevel, noise, "RTF noise level")
    return _first_table((root / "gt" / noise.value, root / "gt", root))


def _pair_key(stem: str) -> str:
    m = _TRAILING_NUMBER.search(stem)
    return str(int(m.group(1))) if m else stem.lower()


def list_rtf(root: str | os.PathLike, noise: NoiseLevel | str = NoiseLevel.FREE) -> list[Sample]:
    """RTF samples sorted by id (see the module docstring for the two layouts); raises on unmatched files. An image
    name where no file can be read (a symbolic link loop or to nothing, a FIFO) is a sample, as a ground-truth name
    is (:func:`syndof.io.image_entries`): reading it names it (``evaluate`` refuses it, ``galetto.compare`` skips
    and records it), where it was left out and its ground truth called "unmatched".

    Args:
        root: the RTF release folder, or DMENet's ``test/RTF`` folder (with ``image/`` and ``gt/``).
        noise: noise level s for the noise layout (:class:`NoiseLevel` or its value, ValueError otherwise); the
            release folder only has "0".
    """
    root = Path(root)
    noise = parse_choice(NoiseLevel, noise, "RTF noise level")
    if is_noise_layout(root):
        image_dir, gt_dir = root / "image" / noise.value, root / "gt" / noise.value
        for d in (image_dir, gt_dir):
            if not d.is_dir():
                raise io.InputError(d, f"no folder for noise level {noise.value}")
        images = {_pair_key(p.stem): p for p in io.image_entries(image_dir)}
        gts = {_pair_key(p.stem): p for p in sorted(gt_dir.iterdir())
               if p.suffix.lower() in (".mat", ".npy") and p.name != TABLE_NAME}
        where = f"{image_dir} / {gt_dir}"
    else:
        if noise is not NoiseLevel.FREE:
            raise io.InputError(root, f"noise level {noise.value} needs DMENet's image/<s>/ + gt/<s>/ layout; "
                                      "the RTF release folder holds the noise-free images only")
        if not (root / TABLE_NAME).is_file():
            raise io.InputError(root, f"no {TABLE_NAME} (the disk radius → σ table)")
        images = {m.group(1).lower(): p for p in io.image_entries(root) if (m := _IMAGE_RE.match(p.stem))}
        gts = {p.stem[4:].lower(): p for p in root.glob("*.mat") if p.stem.lower().startswith("map_")}
        where = str(root)
    unmatched = sorted(images.keys() ^ gts.keys())
    if unmatched:
        raise io.InputError(root, f"unmatched RTF files for ids {unmatched} in {where}")
    if not images:
        raise io.InputError(root, f"no RTF image / GT pairs in {where}")
    return [Sample(images[k].stem, images[k], gts[k]) for k in sorted(images, key=lambda k: (len(k), k))]


def load_rtf_gt(path: str | os.PathLike, table: np.ndarray | None) -> np.ndarray:
    """GT σ px of one RTF sample: ``.npy`` holds σ px (DMENet's Python path), ``.mat`` a ``blurMap`` radius
    converted by ``table`` (:func:`load_rtf_sigma`). Returns (H, W) float32 σ in px (a ``.npy`` is checked 2-D,
    finite and ≥ 0, InputError otherwise); ``table`` (N, 2) ``[σ px, radius px]``, or None for ``.npy`` files."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        sigma = io.read_npy_map(path)
        if sigma.ndim != 2 or not np.all(np.isfinite(sigma)) or sigma.min() < 0:
            raise io.InputError(path, f"an RTF σ map must be 2-D, finite and ≥ 0 (shape {sigma.shape})")
        return sigma.astype(np.float32)
    if table is None:
        raise io.InputError(path, f"a .mat radius map needs {TABLE_NAME} (looked in gt/<s>/, gt/ and the root)")
    return load_rtf_sigma(path, table)


def prediction_to_sigma(pred: np.ndarray, mapping: SigmaMapping | str) -> np.ndarray:
    """Prediction → σ px by ``mapping`` (:class:`SigmaMapping` or its value, ValueError otherwise; label o in
    [0, 1] for the first two).

    ``pred`` any shape, normally (H, W); returns float64 of the same shape, σ in px: in [0, σ_max = 7] for the
    project and released mappings (inputs outside [0, 1] clipped there), the values as given for ``sigma``."""
    mapping = parse_choice(SigmaMapping, mapping, "sigma mapping")
    pred = np.asarray(pred, dtype=np.float64)
    if mapping is SigmaMapping.PROJECT:
        return units.label_to_sigma(pred)
    if mapping is SigmaMapping.RELEASED:
        return units.released_output_to_sigma(pred)
    return pred  # SigmaMapping.SIGMA


def normalise_sigma(sigma: np.ndarray) -> np.ndarray:
    """σ px → RTF score units: clipped to [0, 3.275] and divided by 3.275. Any shape, normally (H, W); float64 of
    the same shape in [0, 1] (fraction of RTF's largest σ, 3.275 px)."""
    return units.sigma_fraction(np.asarray(sigma, dtype=np.float64), RTF_SIGMA_MAX)


MAX_CROP = 16
"""Map and GT may differ by less than this many px per side (the network's crop to a multiple of 16); the common
top-left size is scored. A larger difference is a map of another size (σ would need rescaling): refused."""


def common_crop(pred: np.ndarray, gt: np.ndarray, what: str = "map") -> tuple[np.ndarray, np.ndarray]:
    """Both (H, W) maps cropped to their common top-left size. ValueError when either is not 2-D, the prediction
    holds NaN / inf, or a side differs by ``MAX_CROP`` px or more (a resized map: cropping it compares a corner)."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.ndim != 2 or gt.ndim != 2:
        raise ValueError(f"{what} {pred.shape} and GT {gt.shape} must both be 2-D (H, W) maps")
    if not np.all(np.isfinite(pred)):
        raise ValueError(f"{what} holds NaN / inf")
    dh, dw = abs(pred.shape[0] - gt.shape[0]), abs(pred.shape[1] - gt.shape[1])
    if max(dh, dw) >= MAX_CROP:
        raise ValueError(f"{what} is {pred.shape[1]}x{pred.shape[0]} but its GT {gt.shape[1]}x{gt.shape[0]}: "
                         f"only a crop of < {MAX_CROP} px per side (the network's x16 crop) is absorbed; a map of "
                         "another size would compare a corner with unrescaled sigma")
    h, w = min(pred.shape[0], gt.shape[0]), min(pred.shape[1], gt.shape[1])
    return pred[:h, :w], gt[:h, :w]


def rtf_errors(sigma_pred: np.ndarray, sigma_gt: np.ndarray) -> tuple[float, float]:
    """(MSE, MAE) of one image in normalised units (σ px clipped to [0, 3.275], / 3.275) after cropping both (H, W)
    σ-px maps to their common top-left size; ValueError when a side differs by ``MAX_CROP`` px or more, a map is
    not 2-D, or the prediction is not finite (:func:`common_crop`)."""
    sigma_pred, sigma_gt = common_crop(sigma_pred, sigma_gt, "sigma map")
    diff = normalise_sigma(sigma_pred) - normalise_sigma(sigma_gt)
    return float(np.mean(diff * diff)), float(np.mean(np.abs(diff)))


class RegressionAccumulator:
    """Per-image MSE/MAE rows and their means, shared by the RTF and SYNDOF protocols."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, stem: str, mse: float, mae: float, **extra) -> dict:
        """Record one image's ``mse`` and ``mae`` (in the protocol's units: RTF normalised σ or SYNDOF label, both
        [0, 1]-based) plus ``extra`` fields; returns the row."""
        row = {"stem": stem, "mse": mse, "mae": mae, **extra}
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        """{n_images, mse, mae}: per-image errors averaged over images; ValueError when nothing was scored."""
        if not self.rows:
            raise ValueError("no images were scored")
        return {
            "n_images": len(self.rows),
            "mse": float(np.mean([r["mse"] for r in self.rows])),
            "mae": float(np.mean([r["mae"] for r in self.rows])),
        }


_FORMULAS = {SigmaMapping.PROJECT: "sigma = 7*o", SigmaMapping.RELEASED: "sigma = max(0, (15*o - 1)/2)",
             SigmaMapping.SIGMA: "map holds sigma px"}


def rtf_protocol(mapping: SigmaMapping | str, noise: NoiseLevel | str = NoiseLevel.FREE) -> dict:
    """Protocol tags of an RTF evaluation (plain strings; enum members or their values in)."""
    mapping = parse_choice(SigmaMapping, mapping, "sigma mapping")
    noise = parse_choice(NoiseLevel, noise, "RTF noise level")
    return {
        "gt": "blurMap disk radius -> sigma of the nearest radius in convertion.mat (.npy GT: sigma px)",
        "noise_level": noise.value,
        "prediction_mapping": f"{mapping.value}: {_FORMULAS[mapping]}",
        "normalisation": "sigma clipped to [0, 3.275] then divided by 3.275 (scores in normalised units)",
        "crop": "common top-left size",
        "aggregation": "per-image MSE / MAE averaged over images",
    }
