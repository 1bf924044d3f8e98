"""Benchmark folders as data: a registry of :class:`BenchmarkSpec` and loaders that pair files by stem.

Polarity, folder names and the default resolution of each set live in :data:`BENCHMARKS` (docs/evaluation.md §2–§3),
never in code branches. Loaders pair image and ground truth **by stem, case-insensitively**, across
``.jpg/.JPG/.jpeg/.png/.bmp`` (a σ-map folder, SYNDOF's ``blur_map/``, across every suffix
:func:`syndof.io.read_sigma_map` reads: :func:`gt_extensions`), and raise :class:`syndof.io.InputError` on unmatched
files, duplicate stems or an image/GT size mismatch, naming the files.

This module imports no protocol: how each task lists, reads and scores its files is in
:mod:`dmenet.eval.protocols` (DBD masks as (H, W) float32 {0, 1} with 1 = blurred, read by :func:`read_mask`; RTF as
σ px, :mod:`dmenet.eval.rtf`; SYNDOF test sets as labels σ/σ_max in [0, 1], :mod:`dmenet.eval.syndof_test`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmenet.eval.dbd import Resolution
from syndof import io
from syndof.choices import Choice

PAIR_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
"""Extensions (compared lower-case) that take part in stem pairing."""


class Task(Choice):
    """What a benchmark's GT is, and so which protocol scores it (:data:`dmenet.eval.protocols.PROTOCOLS`)."""

    DBD = "dbd"  # binary blur masks
    RTF = "rtf"  # disk-radius σ maps (RTF's .mat files)
    SYNDOF = "syndof"  # σ maps / labels of SYNDOF-format renders
    SHARP = "sharp"  # no GT: photos sharp everywhere


@dataclass(frozen=True)
class BenchmarkSpec:
    """How one benchmark is laid out and scored.

    Attributes:
        name: registry key (``--benchmark``).
        task: :class:`Task` (what the GT is, hence the protocol that scores it).
        image_dirs: candidate image folder names under the data root, first existing wins.
        gt_dirs: candidate GT folder names, first existing wins (none for ``Task.SHARP``).
        white_is_blurred: GT polarity for DBD masks (None for regression GT).
        default_resolution: :class:`dmenet.eval.dbd.Resolution` for DBD scoring.
        split: what the folder is expected to hold (written to metrics.json).
        gt_suffix: what a GT file's stem adds to its image's ("" = the same stem; ``_binary`` for the binary masks
            of a ``syndof.generate`` folder).
        sigma_map_dirs: the names of ``gt_dirs`` that hold σ maps (``blur_map``), listed by every suffix
            :func:`syndof.io.read_sigma_map` reads (:func:`gt_extensions`); the others by :data:`PAIR_EXTENSIONS`.
    """

    name: str
    task: Task
    image_dirs: tuple[str, ...]
    gt_dirs: tuple[str, ...]
    white_is_blurred: bool | None
    default_resolution: Resolution
    split: str
    gt_suffix: str = ""
    sigma_map_dirs: tuple[str, ...] = ()


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("cuhk", Task.DBD, ("image",), ("gt",), True, Resolution.NATIVE,
                      "CUHK (Shi et al. 2014): all files found; full release = 704 defocus + 296 motion"),
        BenchmarkSpec("cuhk_train", Task.DBD, ("train_image",), ("gt",), True, Resolution.NATIVE,
                      "CUHK defocus training images (604; select with --split experiments/cuhk_split.json)"),
        BenchmarkSpec("xu100", Task.DBD, ("source", "xu100-source"), ("gt", "xu100-gt"), False, Resolution.R320,
                      "xu100 = CUHK-TE-1 renumbered, 320x320 (BTBNet style)"),
        BenchmarkSpec("dut", Task.DBD, ("source", "dut500-source", "DUT500S-Testing"),
                      ("gt", "dut500-gt", "DUT500GT-Testing"), False, Resolution.R320, "DUT-DBD test set"),
        BenchmarkSpec("ctcug", Task.DBD, ("image", "source"), ("gt",), True, Resolution.NATIVE,
                      "CTCUG, 150 test images"),
        BenchmarkSpec("rtf", Task.RTF, (".",), (".",), None, Resolution.NATIVE,
                      "RTF (D'Andres et al. 2016): image_XX.png + map_XX.mat + convertion.mat"),
        BenchmarkSpec("syndof", Task.SYNDOF, ("image",), ("blur_map", "gt"), None, Resolution.NATIVE,
                      "SYNDOF-format test folder: image/ + blur_map/ (uint16 round(10 sigma) PNG or TIFF, or float "
                      "sigma px .npy) or gt/ (8-bit label)", sigma_map_dirs=("blur_map",)),
        BenchmarkSpec("syndof_dbd", Task.DBD, ("image",), ("blur_map_binary",), True, Resolution.NATIVE,
                      "a syndof.generate folder scored as blur detection: image/STEM.png against "
                      "blur_map_binary/STEM_binary.png (255 = CoC > 1 px = blurred)", gt_suffix="_binary"),
        BenchmarkSpec("sharp", Task.SHARP, ("image", "."), (), None, Resolution.NATIVE,
                      "photos sharp everywhere, no GT files (every pixel in focus); choose them with --stems, e.g. "
                      "experiments/distill/bsds_sharp_val.txt"),
    )
}


@dataclass(frozen=True)
class Sample:
    """One scored item: ``image`` is None when the evaluation needs no images (predictions mode); ``gt`` is None
    for a benchmark without GT files (``sharp``: every pixel counts as in focus)."""

    stem: str
    image: Path | None
    gt: Path | None

    @property
    def path(self) -> Path:
        """The file that names the sample in messages: its GT, or its image when it has no GT."""
        return self.gt if self.gt is not None else self.image


def get_spec(name: str) -> BenchmarkSpec:
    """Registry lookup with a message listing the known names."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def find_dir(root: str | os.PathLike, candidates: tuple[str, ...]) -> Path:
    """First existing ``root/candidate`` folder; raises InputError listing what was tried."""
    root = Path(root)
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    if not root.is_dir():
        problem = "not a folder" if root.exists() else io.special_file_problem(root)  # None: nothing there
        raise io.InputError(root, problem or "no such folder")
    raise io.InputError(root, f"none of the folders {list(candidates)} exists")


def index_by_stem(folder: str | os.PathLike, extensions: tuple[str, ...] = PAIR_EXTENSIONS) -> dict[str, Path]:
    """``{lower-case stem: path}`` of the files in ``folder`` with a pairing extension; raises on duplicate stems."""
    return io.index_by_stem(folder, extensions)


def gt_extensions(spec: BenchmarkSpec, gt_dir: str | os.PathLike) -> tuple[str, ...]:
    """The suffixes the GT folder ``gt_dir`` of ``spec`` is listed by: a σ-map folder (its name in
    ``spec.sigma_map_dirs``) by :data:`syndof.io.SIGMA_MAP_LISTED_EXTENSIONS`, every format
    :func:`syndof.io.read_sigma_map` reads (until 7 Dec 2026 ``blur_map/STEM.npy`` or ``.tif`` was no GT: "image(s)
    without GT"); any other by :data:`PAIR_EXTENSIONS`."""
    return io.SIGMA_MAP_LISTED_EXTENSIONS if Path(gt_dir).name in spec.sigma_map_dirs else PAIR_EXTENSIONS


def _names(keys, index: dict[str, Path], limit: int = 10) -> str:
    keys = sorted(keys)
    shown = ", ".join(index[k].name for k in keys[:limit])
    return shown + (f" … (+{len(keys) - limit} more)" if len(keys) > limit else "")


def gt_index(gt_dir: str | os.PathLike, gt_suffix: str = "", extensions: tuple[str, ...] = PAIR_EXTENSIONS
             ) -> dict[str, Path]:
    """:func:`index_by_stem` (of the files with these ``extensions``) of a GT folder keyed by the stem of the image
    each file belongs to: ``gt_suffix`` removed (case-insensitive). With a ``gt_suffix``, a file whose stem lacks it
    is an InputError naming it: kept under its own stem it paired with the image of that stem (a render copied among
    the masks was scored as its mask), or, beside ``STEM{gt_suffix}``, one of the two was dropped unsaid."""
    suffix = gt_suffix.lower()
    index = index_by_stem(gt_dir, extensions)
    for k, v in index.items():
        if suffix and not k.endswith(suffix):
            raise io.InputError(v, f"not a GT file of this benchmark: its name does not end with {gt_suffix} "
                                   f"(the GT of image STEM is STEM{gt_suffix}; move the file out of {Path(gt_dir)})")
    return {k[: len(k) - len(suffix)] if suffix else k: v for k, v in index.items()}


def _sample_stem(gt: Path, gt_suffix: str) -> str:
    """The stem a sample is named by: its GT file's, less ``gt_suffix`` (the image's stem)."""
    return gt.stem[: len(gt.stem) - len(gt_suffix)] if gt_suffix and gt.stem.lower().endswith(gt_suffix.lower()) \
        else gt.stem


def pair_by_stem(
    image_dir: str | os.PathLike, gt_dir: str | os.PathLike, allow_missing_images: bool = False, gt_suffix: str = "",
    gt_is_mask: bool = False, gt_extensions: tuple[str, ...] = PAIR_EXTENSIONS
) -> list[Sample]:
    """Pair the files of two folders by case-insensitive stem (a GT's less ``gt_suffix``); raises InputError on any
    unmatched file.

    ``allow_missing_images`` scores the subset of GT files that have an image (e.g. 5 CUHK photos beside all 1000
    masks); an image without GT is still an error. ``gt_is_mask`` (the DBD benchmarks): an image without GT whose
    GT stem holds a file of another format (``STEM.npy``) is refused naming that file (:func:`non_image_mask`).
    ``gt_extensions``: the suffixes the GT folder is listed by (:func:`gt_extensions`).
    """
    images, gts = index_by_stem(image_dir), gt_index(gt_dir, gt_suffix, gt_extensions)
    only_img, only_gt = images.keys() - gts.keys(), gts.keys() - images.keys()
    if allow_missing_images:
        only_gt = set()
    if gt_is_mask:
        _refuse_non_image_gt(gt_dir, images, only_img, gt_suffix)
    if only_img or only_gt:
        parts = []
        if only_img:
            parts.append(f"{len(only_img)} image(s) without GT in {gt_dir}: {_names(only_img, images)}")
        if only_gt:
            parts.append(f"{len(only_gt)} GT file(s) without image in {image_dir}: {_names(only_gt, gts)}")
        raise io.InputError(image_dir, "unmatched files; " + "; ".join(parts))
    if not images:
        raise io.InputError(image_dir, "no image files")
    return [Sample(_sample_stem(gts[k], gt_suffix), images[k], gts[k]) for k in sorted(images)]


def list_folder_samples(spec: BenchmarkSpec, root: str | os.PathLike, need_images: bool = True,
                        allow_missing_images: bool = False) -> list[Sample]:
    """Samples of a benchmark laid out as image and GT folders (DBD, SYNDOF), sorted by stem.

    With ``need_images=False`` (scoring saved predictions) only the GT folder is listed; images found beside it
    are attached by stem for the report panels, and missing ones are allowed. ``allow_missing_images``: see
    :func:`pair_by_stem`; with saved predictions it keeps the GT files that have an image beside them, as it does
    with a method (until 5 Dec 2026 it was accepted and ignored there). (RTF has its own layout:
    :func:`dmenet.eval.rtf.list_rtf`.)
    """
    gt_dir = find_dir(root, spec.gt_dirs)
    gt_is_mask = spec.task is Task.DBD
    extensions = gt_extensions(spec, gt_dir)  # a σ-map folder: each format its reader reads
    if need_images:
        return pair_by_stem(find_dir(root, spec.image_dirs), gt_dir, allow_missing_images, spec.gt_suffix, gt_is_mask,
                            extensions)
    gts = gt_index(gt_dir, spec.gt_suffix, extensions)
    try:
        images = index_by_stem(find_dir(root, spec.image_dirs))
    except io.InputError:
        images = {}
    if gt_is_mask:  # an image whose GT is STEM.npy: named, not left out unsaid (or "no GT files")
        _refuse_non_image_gt(gt_dir, images, images.keys() - gts.keys(), spec.gt_suffix)
    if not gts:
        raise io.InputError(gt_dir, "no GT files")
    if allow_missing_images:
        gts = {k: v for k, v in gts.items() if k in images}
        if not gts:
            raise io.InputError(gt_dir, f"--allow-missing-images: no GT file has an image in {root}")
    return [Sample(_sample_stem(gts[k], spec.gt_suffix), images.get(k), gts[k]) for k in sorted(gts)]


def list_image_samples(spec: BenchmarkSpec, root: str | os.PathLike) -> list[Sample]:
    """Samples of a benchmark without GT files (``sharp``): every image of the first existing
    ``spec.image_dirs`` folder, sorted by stem, ``gt`` None."""
    folder = find_dir(root, spec.image_dirs)
    images = index_by_stem(folder)
    if not images:
        raise io.InputError(folder, "no image files")
    return [Sample(images[k].stem, images[k], None) for k in sorted(images)]


def _mask_gray(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, float], str]:
    """A mask file's values as (H, W) float32 value/full range in [0, 1] (white = 1), its raw (min, max), and how it
    was scaled (for messages); decoded as :func:`read_mask` says."""
    raw = io.read_raw(path)  # missing / empty / undecodable: InputError naming the file; EXIF applied
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    if raw.ndim == 2 and raw.dtype in (np.uint8, np.uint16):  # plain grey masks (most sets): no colour conversion
        full = 255 if raw.dtype == np.uint8 else 65535
        return raw.astype(np.float32) / float(full), (int(raw.min()), int(raw.max())), \
            f"{raw.dtype} (full range 0..{full})"
    gray = io.read_image(path).mean(axis=2)
    return gray, (float(gray.min()), float(gray.max())), "(scaled to [0, 1])"


def read_mask_level(path: str | os.PathLike) -> np.ndarray:
    """A mask file's own values, (H, W) float32 value/full range in [0, 1] with white = 1, whatever the dataset's
    polarity and unbinarised (decoded as :func:`read_mask`): what SG's FM binarises its own way
    (:func:`dmenet.eval.metrics.sg_fm`)."""
    return _mask_gray(path)[0]


def read_mask(path: str | os.PathLike, white_is_blurred: bool = True, threshold: float = 0.5) -> np.ndarray:
    """Read a binary blur mask and normalise its polarity to the project convention (1 = blurred).

    The file is decoded like :func:`syndof.io.read_image` (EXIF orientation of JPEG/TIFF/WebP/PNG files applied, so
    the mask stays aligned with its photo). A one-channel mask is scaled by its dtype's range (uint8 / 255,
    uint16 / 65535); a colour mask is read as RGB [0, 1] and its channels averaged (alpha dropped).

    Args:
        path: 8-bit or 16-bit mask (0 / full range, e.g. 0/255 or 0/65535), grey or RGB/RGBA.
        white_is_blurred: the dataset's polarity (CUHK: True; xu100, DUT: False).
        threshold: binarisation threshold on the [0, 1] value (``>=``).

    Returns:
        (H, W) float32 in {0, 1}, 1 = blurred.

    Raises:
        syndof.io.InputError: the file is missing or unreadable, or it holds more than one value yet binarises
            to a constant mask (e.g. a 0/1-valued 8-bit mask, or 0/255 stored as 16 bits): the message names it.
    """
    gray, (lo, hi), kind = _mask_gray(path)
    blurred = gray >= threshold
    if lo != hi and (blurred.all() or not blurred.any()):
        raise io.InputError(path, f"mask values {lo:g}..{hi:g} {kind} all lie on one side of the threshold "
                                  f"{threshold:g} of the full range, so the mask would be constant: save masks "
                                  "as 0/255 (8-bit) or 0/65535 (16-bit)")
    if not white_is_blurred:
        blurred = ~blurred
    return blurred.astype(np.float32)


def _refuse_non_image_gt(gt_dir: str | os.PathLike, images: dict[str, Path], without_gt: Iterable[str],
                         gt_suffix: str) -> None:
    """Raise :func:`non_image_mask`'s error when an image of ``without_gt`` (stems of ``images`` with no GT file)
    has its GT ``STEM{gt_suffix}`` saved in a format the pairing does not list (``PAIR_EXTENSIONS``)."""
    named = non_image_mask(gt_dir, {k + gt_suffix.lower(): images[k] for k in without_gt}, PAIR_EXTENSIONS)
    if named is not None:
        raise named


def non_image_mask(folder: str | os.PathLike, missing: dict[str, Path],
                   extensions: tuple[str, ...] = io.IMAGE_EXTENSIONS, case_sensitive: bool = False
                   ) -> io.InputError | None:
    """The error naming a mask saved in a format no reader of the toolkit reads (e.g. ``STEM.npy``), or None.

    Every mask and DBD GT reader (Distill's ``labelled_items``, :class:`dmenet.data.labelled.LabelledDataset` for
    ``dmenet.train --labelled`` and ``dmenet.calibrate``, :func:`pair_by_stem` and :func:`list_folder_samples` for
    ``dmenet.evaluate``) lists its mask folder by image suffix and reads a mask with :func:`read_mask`; when a photo's
    mask is missing it calls this, so that a mask file of another format is named as such rather than called absent.

    Args:
        folder: the mask folder, listed once (hidden names and sub-folders left out; unlistable: None).
        missing: ``{mask stem: its image}`` of the photos without a mask (the stem the mask would have, i.e. with
            any mask suffix; compared lower-cased unless ``case_sensitive``).
        extensions: the suffixes (lower-case, with the dot) the caller lists as masks; any other suffix is not read.
        case_sensitive: whether stems are compared case-sensitively (Distill) or not (the others).

    Returns:
        :class:`syndof.io.InputError` naming the first such file (by mask stem, then file name), its image, and the
        PNG to save, with how many other photos have one; None when no missing mask has a file of another suffix.
        A file ``STEM.png.npy`` (what ``np.save("gt/STEM.png", mask)`` writes) is one of ``STEM``.
    """
    if not missing:
        return None
    wanted = missing if case_sensitive else {k.lower(): v for k, v in missing.items()}
    found: dict[str, list[tuple[Path, str]]] = {}
    try:
        for p in Path(folder).iterdir():
            if p.suffix.lower() in extensions or io.is_hidden(p) or p.is_dir():
                continue
            # STEM.npy, and STEM.png.npy: what np.save("gt/STEM.png", mask) writes (it appends .npy)
            stems = [p.stem] + ([Path(p.stem).stem] if Path(p.stem).suffix.lower() in io.IMAGE_EXTENSIONS else [])
            for stem in stems:
                key = stem if case_sensitive else stem.lower()
                if key in wanted:
                    found.setdefault(key, []).append((p, stem))
                    break
    except OSError:
        return None  # the caller's own "missing" line stands
    if not found:
        return None
    first = min(found)
    path, stem = min(found[first], key=lambda q: q[0].name)
    more = f" (and {len(found) - 1} other mask(s) of another format in {Path(folder)})" if len(found) > 1 else ""
    return io.InputError(path, f"not read as the mask of {wanted[first].name}: masks are image files "
                               f"({' '.join(extensions)}: 8- or 16-bit, 0 / full range, e.g. a 0/255 PNG); save it "
                               f"as {stem}.png{more}")


def check_same_size(sample: Sample, image: np.ndarray, gt: np.ndarray) -> None:
    """Raise InputError naming both files when image and GT sizes differ (never skip the pair silently): ``image``
    (H, W, …) and ``gt`` (H', W', …) of any dtype and range; only their first two sizes (px) are compared."""
    if image.shape[:2] != gt.shape[:2]:
        raise io.InputError(
            sample.image,
            f"image is {image.shape[1]}x{image.shape[0]} but its GT {sample.gt} is {gt.shape[1]}x{gt.shape[0]}",
        )
