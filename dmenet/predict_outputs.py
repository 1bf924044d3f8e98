"""What ``dmenet.predict`` writes for one photo, and how: a method's maps (:class:`Maps`), the map files of
``--format`` (:class:`MapFormat`), the suffixes of a set (:data:`OUTPUT_SUFFIXES`, :func:`output_suffixes`), the
preview, the provenance file (:data:`PROVENANCE`, written by :func:`provenance_bytes`, read by
:func:`read_provenance`) and :func:`write_outputs`, which writes one photo's set all or nothing; and the look-ups of
earlier outputs by those names (:func:`existing_outputs`, :func:`has_outputs`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from syndof import io as sio
from syndof import resize, viz
from syndof.choices import Choice, parse_choice

PREVIEW_MAX_SIDE = 1024


@dataclass
class Maps:
    """What a method produced for one image: σ px (DMENet only) and a [0, 1] blur map, both (H, W) float32."""

    blur: np.ndarray
    sigma: np.ndarray | None = None
    sigma_max: float | None = None


class MapFormat(Choice):
    """The map files of ``--format``: PNG = ``_sigma.png`` (uint16 round(10·σ)); NPY = ``_sigma.npy`` (float32 σ px),
    or ``_blur.npy`` for a method without σ; BOTH = all of them. ``_blur.png`` and ``_preview.png`` are always
    written."""

    PNG = "png"
    NPY = "npy"
    BOTH = "both"

    @property
    def png(self) -> bool:
        """Whether the σ map is written as ``_sigma.png``."""
        return self is not MapFormat.NPY

    @property
    def npy(self) -> bool:
        """Whether the map is written as ``.npy`` (``_sigma.npy``, or ``_blur.npy`` without σ)."""
        return self is not MapFormat.PNG


PROVENANCE = "_source.json"
"""The suffix of a set's provenance file: ``{"source": the photo's resolved path, "sha256": its SHA-256}``, written
with the set (the first of its files renamed into place: a set a kill cut short still says whose it is), so that a rerun
counts a set as done only for the photo that made it, not for another photo of the same name or an edited one."""
OUTPUT_SUFFIXES = ("_sigma.png", "_sigma.npy", "_blur.png", "_blur.npy", "_preview.png", PROVENANCE)


def output_suffixes(has_sigma: bool, fmt: MapFormat | str, provenance: bool = True) -> tuple[str, ...]:
    """The files :func:`write_outputs` writes for one photo (it writes what this says): for a σ method
    (``has_sigma``) or a blur-map method, in format ``fmt``, and (``provenance``) the :data:`PROVENANCE` file last."""
    fmt = parse_choice(MapFormat, fmt, "format")
    maps = ((("_sigma.png",) if fmt.png else ()) + (("_sigma.npy",) if fmt.npy else ())) if has_sigma \
        else (("_blur.npy",) if fmt.npy else ())
    return (*maps, "_blur.png", "_preview.png", *((PROVENANCE,) if provenance else ()))


def existing_outputs(prefix: Path) -> list[Path]:
    """Files of an earlier output set under ``prefix`` (any of :data:`OUTPUT_SUFFIXES`): a photo whose prefix has
    one is skipped, never overwritten or mixed with a new set (its files may come from another method or format)."""
    return [p for p in (prefix.with_name(prefix.name + s) for s in OUTPUT_SUFFIXES) if p.exists()]


def has_outputs(out: Path) -> bool:
    """Whether ``out`` holds any file named like this command's outputs (:data:`OUTPUT_SUFFIXES`)."""
    return out.is_dir() and any(p.name.endswith(OUTPUT_SUFFIXES) for p in out.rglob("*"))


def provenance_bytes(source: Path, digest: str | None = None) -> bytes:
    """The :data:`PROVENANCE` file of a set made from ``source`` (JSON; any path, undecodable names escaped);
    ``digest``: the SHA-256 of the bytes that were read (None: the file's now)."""
    digest = sio.file_sha256(source) if digest is None else digest
    return (json.dumps({"source": str(Path(source).resolve()), "sha256": digest}) + "\n").encode()


def read_provenance(prefix: Path) -> dict[str, str] | None:
    """The :data:`PROVENANCE` file of the set under ``prefix`` (``{"source", "sha256"}``, both strings), None when it
    has none (an older version of predict wrote it) or the file is not one."""
    try:
        record = json.loads(prefix.with_name(prefix.name + PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("source", "sha256"))
    return record if ok else None


def _preview(image: np.ndarray, values: np.ndarray, vmax: float) -> np.ndarray:
    """Input and the colour-mapped ``values`` (0 … vmax, inferno) side by side (uint8 RGB, 8 px white gap), longer
    panel side ≤ 1024 px. Both are downsized before the colour mapping (a 24-megapixel map would need ~1 GB of
    float64 RGBA in the colour map)."""
    import cv2

    image, scale = resize.shrink_long_side(image, PREVIEW_MAX_SIDE)
    if scale < 1.0:
        values = cv2.resize(np.asarray(values, dtype=np.float32), image.shape[1::-1], interpolation=cv2.INTER_AREA)
    left, panel = viz.as_rgb_uint8(image), viz.colorize(values, vmax=vmax)
    gap = np.full((left.shape[0], 8, 3), 255, dtype=np.uint8)
    return np.concatenate([left, gap, panel], axis=1)


def write_outputs(prefix: Path, image: np.ndarray, maps: Maps, fmt: MapFormat | str,
                  source: Path | None = None, digest: str | None = None) -> list[Path]:
    """Write the files for one image (listed in :mod:`dmenet.predict`'s docstring) in format ``fmt``
    (:class:`MapFormat` or its value) as one set: all of them or, when a write fails (disk full, permission), none (an
    earlier set under the same prefix stays as it was). PNGs use the fast lossless encoder settings
    (``syndof.io.PNG_FAST``). ``source``: the photo file, recorded in the set's :data:`PROVENANCE` file (None: no such
    file), with ``digest``, the SHA-256 of the bytes ``image`` was decoded from (None: the file's as it is when
    written). ``image``: the photo, (H, W, 3) float32 RGB in [0, 1] (the preview's left half); ``maps`` at its
    (H, W). Returns the paths written."""
    has_sigma = maps.sigma is not None
    panel = (maps.sigma, maps.sigma_max or float(maps.sigma.max()) or 1.0) if has_sigma else (maps.blur, 1.0)
    encoders = {"_sigma.png": lambda: sio.encode_sigma_map(maps.sigma, fast=True),
                "_sigma.npy": lambda: sio.encode_npy(maps.sigma.astype(np.float32)),
                "_blur.npy": lambda: sio.encode_npy(maps.blur.astype(np.float32)),
                "_blur.png": lambda: sio.encode_png(sio.to_uint8(maps.blur), fast=True),
                "_preview.png": lambda: sio.encode_png(_preview(image, *panel), fast=True),
                PROVENANCE: lambda: provenance_bytes(source, digest)}
    files = {prefix.with_name(prefix.name + s): encoders[s]()
             for s in output_suffixes(has_sigma, fmt, provenance=source is not None)}
    sio.write_set_atomic(files)
    return list(files)
