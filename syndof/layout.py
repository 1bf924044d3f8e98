"""The files of a SYNDOF dataset folder: where each sample's files go, when a sample is complete, writing them.

A sample of stem ``{index:06d}_{source}`` (:func:`sample_stem`) is six files (:func:`sample_paths`; the layout is
:mod:`syndof.generate`'s module docstring and docs/method.md §10), its ``meta/{stem}.json`` written last, so a sample
whose files all exist is complete (:func:`is_complete`). :func:`write_sample` writes them, each atomically;
:func:`rebuild_manifest` rewrites ``manifest.jsonl`` from the complete samples' meta files; :func:`incomplete_beyond`
and :func:`remove_stray_temps` find what an interrupted run left; :func:`has_samples` tells a new folder from one
holding samples. :data:`MAX_COUNT` is the most samples six-digit stems keep in index order. What a folder was made
with (dataset.json, the checks of a rerun) is :mod:`syndof.recipe`'s.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from syndof import io as sio
from syndof.scenes import Source

if TYPE_CHECKING:  # annotation only: syndof.sample imports syndof.recipe, which imports this module
    from syndof.sample import SampleResult

log = logging.getLogger("syndof.generate")  # the generator's messages, under the name they had before the split


SUBDIRS = ("image", "blur_map", "blur_map_norm", "blur_map_binary", "depth")


def sample_stem(index: int, source: Source) -> str:
    """File stem of sample ``index``: six-digit index + ``_`` + the source's stem (e.g. ``000042_alley_1``)."""
    return f"{index:06d}_{source.stem}"


def sample_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """Every file of one sample; ``meta`` is written last."""
    return {
        "image": out_dir / "image" / f"{stem}.png",
        "blur_map": out_dir / "blur_map" / f"{stem}.png",
        "blur_map_norm": out_dir / "blur_map_norm" / f"{stem}_norm.png",
        "blur_map_binary": out_dir / "blur_map_binary" / f"{stem}_binary.png",
        "depth": out_dir / "depth" / f"{stem}_depth.png",
        "meta": out_dir / "meta" / f"{stem}.json",
    }


def is_complete(out_dir: Path, stem: str) -> bool:
    """True when every file of sample ``stem`` (:func:`sample_paths`) exists under ``out_dir``."""
    return all(p.is_file() for p in sample_paths(out_dir, stem).values())


MAX_COUNT = 999_999
"""Most samples of one folder: stems are ``{index:06d}_{source}``, so above it the name order (the manifest's, a
listing's) would no longer be the index order (a billion spent minutes listing jobs before the first render)."""


def incomplete_beyond(out_dir: Path, count: int) -> list[str]:
    """Stems of samples with index >= ``count`` that have some of their files but not all (an interrupted run's,
    which a run of ``count`` samples never finishes), sorted."""
    stems = set()
    for key, path in sample_paths(out_dir, "STEM").items():
        suffix = path.stem[len("STEM"):]
        if path.parent.is_dir():
            for p in path.parent.glob(f"*{suffix}{path.suffix}"):
                stem = p.stem[: len(p.stem) - len(suffix)] if suffix else p.stem
                head = stem.split("_", 1)[0]
                if head.isdigit() and int(head) >= count and not p.name.startswith("."):
                    stems.add(stem)
    return sorted(s for s in stems if not is_complete(out_dir, s))


def remove_stray_temps(paths: dict[str, Path]) -> None:
    """Delete temporary files a killed run left for this sample (only this sample's: shards never share one)."""
    for p in paths.values():
        if p.parent.is_dir():
            for tmp in p.parent.glob(f".{p.stem}.*.tmp"):
                tmp.unlink(missing_ok=True)


def _minmax_u8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, np.uint8)
    return sio.to_uint8((x - lo) / (hi - lo))


def write_sample(out_dir: Path, stem: str, result: SampleResult, meta: dict) -> None:
    """Write the six files of :func:`sample_paths` (each atomically), ``meta`` last: the image (8-bit RGB), σ as
    ``round(10·σ)`` uint16 (from ``result.layered.sigma10``, the original's float64 rounding), σ min–max scaled to
    8 bits, the mask CoC > 1 px as 0 / 255, the merged depth min–max scaled to 8 bits (3 channels), and ``meta``
    (a JSON object) as given."""
    paths = sample_paths(out_dir, stem)
    sio.write_image(paths["image"], result.image)
    # The file value exactly as the original computes it (float64, half away from zero); encoding the float32 σ map
    # could round the other way at ties (CoC 1.2 → 0 in the original).
    sio.write_bytes_atomic(paths["blur_map"], sio.encode_syndof_values(result.layered.sigma10))
    sio.write_bytes_atomic(paths["blur_map_norm"], sio.encode_png(_minmax_u8(result.sigma)))
    binary = np.where(result.coc > 1.0, 255, 0).astype(np.uint8)
    sio.write_bytes_atomic(paths["blur_map_binary"], sio.encode_png(binary))
    depth8 = _minmax_u8(result.merged_depth)
    sio.write_bytes_atomic(paths["depth"], sio.encode_png(np.repeat(depth8[..., None], 3, axis=2)))
    sio.write_json_atomic(paths["meta"], meta)


def rebuild_manifest(out_dir: str | Path) -> int:
    """Rewrite DIR/manifest.jsonl from DIR/meta/*.json (sorted by stem), atomically. Returns the entry count."""
    out_dir = Path(out_dir)
    lines = []
    meta_dir = out_dir / "meta"
    if meta_dir.is_dir():
        for p in sorted(meta_dir.glob("*.json")):
            if not is_complete(out_dir, p.stem):
                continue
            try:
                lines.append(json.dumps(json.loads(p.read_text()), sort_keys=True))
            except (OSError, ValueError) as exc:
                log.warning("skipped %s in the manifest: %s", p, exc)
    sio.write_text_atomic(out_dir / "manifest.jsonl", "".join(line + "\n" for line in lines))
    return len(lines)


def has_samples(out_dir: Path) -> bool:
    """True when ``out_dir/meta/`` holds a ``*.json`` file (a sample's meta is written last, once it is complete)."""
    meta = out_dir / "meta"
    return meta.is_dir() and any(meta.glob("*.json"))
