"""Predict defocus maps for image files or folders.

``python -m dmenet.predict INPUT... --out DIR [--model PATH] [--method NAME[:key=value,…]] [--format png|npy|both]
[--device cpu|cuda] [--threads N] [--workers N] [--recursive] [--flips N] [--raw-sigma] [--max-side N] [--tile-size N]
[--tile-overlap N]``

Defaults are chosen for speed (BENCHMARKS.md, issue 19): one pass (``--flips 1``; the shipped model's recipe averages 8)
at a working resolution of at most 1024 px on the long side (``--max-side``).

Outputs per image ``<stem>`` (folder inputs keep their sub-folder layout under DIR with ``--recursive``):

* ``<stem>_sigma.png`` — uint16, 3 identical channels, ``round(10·σ)`` (SYNDOF encoding; read with
  ``syndof.io.read_sigma_map``) — with ``--format png|both`` (default png);
* ``<stem>_sigma.npy`` — float32 σ in px — with ``--format npy|both``;
* ``<stem>_blur.png`` — 8-bit blur probability (network S, 1 = blurred → 255);
* ``<stem>_preview.png`` — the input and the colour-mapped σ (0 … σ_max, inferno) side by side;
* ``<stem>_source.json`` — which photo made the set: its resolved path and SHA-256 (:data:`PROVENANCE`).

Methods without σ (``gives_sigma`` false: lbp, hifst, laplacian, distill_student, …) write ``<stem>_blur.png``
(their [0, 1] blur map; plus ``<stem>_blur.npy``, the [0, 1] map, with ``--format npy|both``) and
``<stem>_preview.png`` (and ``<stem>_source.json``) only; σ methods (dmenet, galetto, zhuo_sim) write the σ set
above. Images are read with ``syndof.io.read_image_sha256`` (EXIF orientation applied, gray/RGBA/16-bit handled), so
maps are oriented like the displayed image. A file that cannot be read or processed is reported on one line
(``skipped PATH: reason``) and the others go on; the exit status is 1 only when every input failed (2 for usage
errors or a model that cannot be loaded). Options and ``--out`` are checked
before the model loads. The files of one image are written as one set (all of them or, when a write fails, none);
no two inputs share an output prefix; files named like these outputs under ``--out``, or under any folder holding
an earlier run's ``predict.json``, are not taken as inputs. A file of a photo's output names that appears in
``--out`` while the photo runs is never replaced (the photo is skipped and reported).
``--out/predict.json`` records the settings that made its maps (method and its options as resolved, the model file
and a SHA-256 of its contents, those of flips, σ curve, working size and tiles the method reads, format) and the
devices they were made on (``"devices": ["cpu"]``, ``["cuda:0"]``; a rerun on another device is not refused, its
maps differ by float rounding only, and adds its device once it writes a set): rerunning
a batch with the same settings does only what is missing (a photo counts as done when a whole set's
``_source.json``, written with the set, gives the SHA-256 of the bytes the maps were made from (each photo is read
once: those bytes are the ones decoded): another photo of the same name, or an edited one,
is skipped and reported, never given another photo's maps), and a run with other settings is refused before any photo,
so one folder never holds maps of two methods or models. One
``predict`` at a time writes into a folder (a second is refused). In a folder with maps but no record (written by an
older version), a photo whose prefix already has any output file is skipped and reported, never overwritten. A
batch, or an image above 1024² px, gets a ``[i/N] FILE: W×H px`` line before its work; an image whose estimated
memory exceeds what the machine has available is skipped with the ``--max-side`` that fits (judged from its
header before its pixels are decoded).

``--workers N`` shares a batch among N processes, each with its own copy of the model and ``--threads`` threads
(default: the cores divided among the workers): on a 2-core CPU two one-thread workers keep both cores busy through
the parts of a photo that run on one thread (reading, the PNG files). Lines still come in input order; each worker
loads the model once (seconds), so it pays for batches, not single photos, and exits after its current photo when
the batch's process is killed. By default (no ``--workers``, no ``--threads``, on the CPU) a batch of at least
:data:`AUTO_WORKERS_MIN_PHOTOS` photos gets one worker per core, at most :data:`AUTO_WORKERS_MAX`, and no more than
the available memory holds for its largest photo (:func:`auto_workers`); smaller batches run in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dmenet import cli as dcli
from dmenet import memory
from syndof import cli, resize
from syndof import io as sio
from syndof import viz
from syndof.choices import Choice, choices, parse_choice

PREVIEW_MAX_SIDE = 1024
DEFAULT_MAX_SIDE = 1024
"""Default working resolution (long side, px) of ``predict``: larger inputs are area-downsized to it, estimated,
and the maps brought back to the input size; σ is rescaled to input px (``syndof.units.rescale_sigma``: resizing
by s scales blur by s). A 24-megapixel photo then takes seconds instead of many minutes, and σ up to
σ_max·(input side / 1024) px can be reported. ``--max-side 0`` runs at full resolution (tiled above 1024² px);
small blur (below about 0.5 px at the working size) is not resolved at the default."""


DEFAULT_FLIPS = 1
"""Test-time symmetries ``predict`` averages unless ``--flips`` is given: one pass. The shipped model's recipe (what
``evaluate`` and the cards' numbers use) averages 8; on the validation renders 8 flips lower the σ error by 3 %
(0.319 → 0.308 px) for about 5.8× the time (BENCHMARKS.md, "Test-time averaging"), which does not pay at photo
speed. ``--flips 8`` runs the recipe."""


def default_flips_note(departure: str) -> None:
    """Print the recipe departure of the :data:`DEFAULT_FLIPS` default as one ``note:`` line on stderr (a choice
    made for speed, not a user's mistake: no warning)."""
    print(f"note: {DEFAULT_FLIPS} flip by default (speed; --flips 8 runs the model's recipe): {departure}",
          file=sys.stderr)


@dataclass
class Maps:
    """What a method produced for one image: σ px (DMENet only) and a [0, 1] blur map, both (H, W) float32."""

    blur: np.ndarray
    sigma: np.ndarray | None = None
    sigma_max: float | None = None


@dataclass
class Job:
    """One input file and the output prefix (DIR/rel/stem, without the ``_sigma.png`` suffixes). ``same_settings``:
    ``--out``'s settings record (:data:`RECORD`) matches this run's and the batch has decided that this photo's set
    is to be written (:func:`resume_decision`), completing the photo's own set under the prefix when one is there."""

    source: Path
    prefix: Path
    same_settings: bool = False


# ------------------------------------------------------------------------------------------------------------ inputs
def _files_in(folder: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return sio.list_images(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in sio.IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


class Skipped(str):
    """A line of :func:`collect_jobs`' problems that reports ``files`` inputs at once (the output files of a run found
    among the inputs: one line, not one per file); other lines report one input each (:func:`skipped_inputs`)."""

    files: int

    def __new__(cls, text: str, files: int) -> Skipped:
        line = super().__new__(cls, text)
        line.files = files
        return line


def skipped_inputs(problems: Sequence[str]) -> int:
    """How many inputs the problem lines of :func:`collect_jobs` skipped (a :class:`Skipped` line counts its files)."""
    return sum(getattr(line, "files", 1) for line in problems)


def collect_jobs(inputs: Sequence[str | Path], out_dir: Path, recursive: bool = False) -> tuple[list[Job], list[str]]:
    """Expand files and folders into jobs; returns (jobs, problems) where problems are one-line messages, each of one
    skipped input or (a :class:`Skipped` line) of several (:func:`skipped_inputs` counts them).

    Output prefixes are ``out_dir/<relative folder>/<stem>``; two inputs that would share one prefix (``a.jpg`` and
    ``a.png``) keep their extension in the name (``a_jpg``, ``a_png``), and a prefix still taken (a file really
    named ``a_jpg.png``) gets ``_2``, ``_3``…. Files under ``out_dir`` named like this command's outputs are
    skipped (a second run with ``--out`` inside the inputs does not predict on its own maps).
    """
    pairs: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = _files_in(path, recursive)
            broken = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                            if p.suffix.lower() in sio.IMAGE_EXTENSIONS and p.is_symlink() and not p.exists())
            problems.extend(f"skipped {p}: a symbolic link to nothing" for p in broken)
            if not files and not broken:
                problems.append(f"skipped {path}: no image files ({', '.join(sio.IMAGE_EXTENSIONS)})")
            pairs.extend((f, f.relative_to(path).with_suffix("")) for f in files)
        elif path.is_file():
            pairs.append((path, Path(path.stem)))
        else:
            problems.append(f"skipped {path}: no such file or folder")
    out_resolved = out_dir.resolve()
    own = [source for source, _ in pairs if is_output_file(source, out_resolved)]
    if own:
        problems.append(Skipped(f"skipped {len(own)} file(s) under --out {out_dir} that are predict outputs "
                                f"(*{', *'.join(OUTPUT_SUFFIXES)}), e.g. {own[0]}", len(own)))
        pairs = [(source, rel) for source, rel in pairs if not is_output_file(source, out_resolved)]
    earlier = [source for source, _ in pairs if in_earlier_output(source)]
    if earlier:  # another run's --out inside the inputs: its maps and previews are no photos
        problems.append(Skipped(f"skipped {len(earlier)} file(s) named like predict outputs in a folder of an "
                                f"earlier predict (a {RECORD} above them), e.g. {earlier[0]}", len(earlier)))
        pairs = [(source, rel) for source, rel in pairs if not in_earlier_output(source)]
    unique, seen = [], {}
    for source, rel in pairs:  # the same file named twice (directly, through its folder, by a link) runs once
        first = seen.setdefault(source.resolve(), source)
        if first is source:
            unique.append((source, rel))
        elif first != source:
            problems.append(f"skipped {source}: the same file as {first}")
    counts: dict[Path, int] = {}
    for _, rel in unique:
        counts[rel] = counts.get(rel, 0) + 1
    jobs, used = [], set()
    for source, rel in unique:
        if counts[rel] > 1:
            rel = rel.with_name(f"{rel.name}_{source.suffix.lstrip('.').lower()}")
        name, n = rel.name, 2
        while rel in used:  # a.jpg → a_jpg, and a file really named a_jpg.png: never share an output prefix
            rel, n = rel.with_name(f"{name}_{n}"), n + 1
        used.add(rel)
        jobs.append(Job(source=source, prefix=out_dir / rel))
    return jobs, problems


PROVENANCE = "_source.json"
"""The suffix of a set's provenance file: ``{"source": the photo's resolved path, "sha256": its SHA-256}``, written
with the set (the first of its files renamed into place: a set a kill cut short still says whose it is), so that a rerun
counts a set as done only for the photo that made it, not for another photo of the same name or an edited one."""
OUTPUT_SUFFIXES = ("_sigma.png", "_sigma.npy", "_blur.png", "_blur.npy", "_preview.png", PROVENANCE)


def existing_outputs(prefix: Path) -> list[Path]:
    """Files of an earlier output set under ``prefix`` (any of :data:`OUTPUT_SUFFIXES`): a photo whose prefix has
    one is skipped, never overwritten or mixed with a new set (its files may come from another method or format)."""
    return [p for p in (prefix.with_name(prefix.name + s) for s in OUTPUT_SUFFIXES) if p.exists()]


def is_output_file(path: Path, out_dir: Path) -> bool:
    """True for a file this command writes (by suffix) that lies under the (resolved) output folder."""
    if not path.name.endswith(OUTPUT_SUFFIXES):
        return False
    return path.resolve().is_relative_to(out_dir)


def in_earlier_output(path: Path) -> bool:
    """True for a file named like this command's outputs (by suffix) in a folder tree an earlier ``predict`` wrote
    (a folder above it holds :data:`RECORD`), whatever the ``--out`` of this run."""
    return path.name.endswith(OUTPUT_SUFFIXES) and any((folder / RECORD).is_file()
                                                       for folder in path.resolve().parents)


def output_suffixes(has_sigma: bool, fmt: MapFormat | str, provenance: bool = True) -> tuple[str, ...]:
    """The files :func:`write_outputs` writes for one photo (it writes what this says): for a σ method
    (``has_sigma``) or a blur-map method, in format ``fmt``, and (``provenance``) the :data:`PROVENANCE` file last."""
    fmt = parse_choice(MapFormat, fmt, "format")
    maps = ((("_sigma.png",) if fmt.png else ()) + (("_sigma.npy",) if fmt.npy else ())) if has_sigma \
        else (("_blur.npy",) if fmt.npy else ())
    return (*maps, "_blur.png", "_preview.png", *((PROVENANCE,) if provenance else ()))


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


def made_from(prefix: Path) -> str | None:
    """The SHA-256 of the photo that made the set under ``prefix`` (:func:`read_provenance`), or None."""
    record = read_provenance(prefix)
    return None if record is None else record["sha256"]


def whole(prefix: Path, wanted: Sequence[str]) -> bool:
    """Whether every file of ``wanted`` (:func:`output_suffixes`) exists under ``prefix``."""
    return all(prefix.with_name(prefix.name + s).exists() for s in wanted)


def finished_sets(jobs: Sequence[Job], wanted: Sequence[str]) -> dict[str, Path]:
    """``{photo SHA-256: prefix}`` of the whole sets under the batch's own output prefixes that say which photo made
    them (sets elsewhere in ``--out``, e.g. a nested folder of another run, are never taken for this batch's)."""
    found: dict[str, Path] = {}
    for job in jobs:
        digest = made_from(job.prefix)
        if digest is not None and whole(job.prefix, wanted):
            found.setdefault(digest, job.prefix)
    return found


def resume_decision(job: Job, wanted: Sequence[str], finished: dict[str, Path]) -> tuple[bool, str | None]:
    """What a rerun with the same settings does with ``job``: (True, None) its photo's set is whole under its prefix,
    or under another prefix of the batch when its own holds another photo's (the same photos named in another order:
    ``q_png`` and ``q_png_2`` swap); (False, None) write it (its prefix is free, or holds this photo's own incomplete
    set); (False, reason) skip it: its prefix holds a set of another photo, or one that does not say whose it is
    (never overwritten), or the photo cannot be read."""
    try:
        digest = sio.file_sha256(job.source)
    except OSError as exc:
        return False, cli.error_line(exc).removeprefix(f"{job.source}: ")
    earlier = existing_outputs(job.prefix)
    provenance = read_provenance(job.prefix) if earlier else None
    if not earlier or (provenance is not None and provenance["sha256"] == digest):
        return bool(earlier) and whole(job.prefix, wanted), None
    if digest in finished:
        return True, None
    name = job.prefix.name + PROVENANCE
    if provenance is not None:
        return False, (f"{earlier[0]} exists, made from another photo ({provenance['source']}; or this one before "
                       "it changed): never overwritten (name the photos as the run that made it did, or choose "
                       "another --out)")
    if job.prefix.with_name(name).exists():
        return False, f"{earlier[0]} exists and {name} is not a provenance record: never overwritten"
    return False, (f"{earlier[0]} exists without {name} (an older version of predict wrote it), so which photo made it "
                   "is unknown: never overwritten (remove that set to redo it, or choose another --out)")


RECORD = "predict.json"
"""The settings record in ``--out``: what made its maps (:func:`settings_record`). A rerun with the same settings
finishes the batch; one with other settings is refused, so a folder never holds maps of two methods, models or
recipes side by side."""


RECORD_TOOL = "dmenet.predict"
"""The record's ``tool`` value: a JSON file of another tool under :data:`RECORD`'s name is not a settings record."""


def settings_record(args: argparse.Namespace, options, estimator) -> dict:
    """What decides the maps of a photo: the method, its own options as it resolved them
    (:meth:`~dmenet.methods.base.Estimator.method_settings`: defaults included, sorted by key, so a default given
    explicitly or options in another order are the same settings), the model file (path and a SHA-256 of its weights
    and sidecar, so a retrained file under the same name differs; named by ``--model`` or ``model=``), those of the
    shared options the method reads (:attr:`~dmenet.methods.base.Estimator.shared_options`: ``--flips`` for a method
    that ignores it is not recorded), the output format, and ``devices``: the device the maps are made on
    (:func:`device_used`; informative, :data:`INFORMATIVE`)."""
    from dmenet.methods.base import MAP_OPTIONS
    from dmenet.models.model_io import model_digest

    model = estimator.model_file
    own = dict(sorted(estimator.method_settings().items()))
    record = {"tool": RECORD_TOOL, "method": args.method.name, **({"method_options": own} if own else {}),
              "model": None if model is None else str(Path(model).resolve()),
              "model_sha256": None if model is None else model_digest(model)}
    record.update((k, getattr(options, k)) for k in MAP_OPTIONS if k in estimator.shared_options)
    return {**record, "format": args.fmt.value,
            "devices": [device_used(options.device, learned=estimator.model_file is not None)]}


def device_used(device: str | None, learned: bool) -> str:
    """The device a method's maps are made on (``--device`` as it runs): "cpu" for a method without a model file
    (``learned`` false: it runs on the CPU whatever ``--device`` says) and for "cpu:N"; "cuda" resolved to the card
    it means ("cuda:0"); "cuda:N" as given."""
    import torch

    dev = torch.device(device or "cpu")
    if not learned or dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda" and dev.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(dev)


INFORMATIVE = ("model", "devices")
"""Keys of the record that say where, not what: the same model file moved or copied (same SHA-256) is the same
model; maps made on another device (the CPU, a GPU) differ by float rounding only, so a rerun on another device
finishes the batch instead of being refused, and adds its device to ``devices`` once it writes a set."""


def record_check(out: Path, record: dict) -> tuple[str | None, bool]:
    """(problem, same_settings) for ``--out`` against this run's ``record``: its :data:`RECORD` differs (a
    problem naming the keys), matches (resume), or is absent, when earlier outputs without a record (an older
    version's) are left to the per-photo check. A record of this tool beside no map (a run killed before its first
    photo) describes nothing and counts as absent; a file that is not such a record is never taken or replaced."""
    path = out / RECORD
    if path.exists():
        try:
            earlier = sio.read_json_object(path)
        except (OSError, ValueError) as exc:  # predict writes it whole (atomically): not predict's
            return (f"{path}: not a settings record of {RECORD_TOOL} ({cli.error_line(exc)}); choose another --out "
                    "(nothing was changed)"), False
        if earlier.get("tool") != RECORD_TOOL:
            return (f"{path}: not a settings record of {RECORD_TOOL} (tool {_short(earlier.get('tool'))}); "
                    "choose another --out (nothing was changed)"), False
        if not has_outputs(out):
            return None, False
        keys = [*record, *(k for k in earlier if k not in record)]  # the record's order: the method first
        differ = [k for k in keys if k not in INFORMATIVE and record.get(k) != earlier.get(k)]
        if differ:
            # a setting only one of two methods reads is no difference of its own: the method's is the one shown
            other_method = record.get("method") != earlier.get("method")
            shown = [k for k in differ if not other_method or (k in record and k in earlier)]
            text = "; ".join(f"{k} {_setting_text(k, earlier)}, now {_setting_text(k, record)}" for k in shown[:3])
            return (f"--out {out}: holds maps made with other settings ({RECORD}: {text}"
                    f"{'; …' if len(shown) > 3 else ''}); choose another --out (nothing was changed)"), False
        return None, True
    return None, False


def _setting_text(key: str, record: dict) -> str:
    """A setting of a :data:`RECORD` as a refusal shows it: its effective value, never a bare None (``max_side`` None
    is full resolution, the tile options' None their defaults, ``model_sha256`` None no model)."""
    if key not in record:
        return "(not recorded)"
    value = record[key]
    if value is None:
        from dmenet.inference import TILE_OVERLAP, TILE_SIZE

        meaning = {"max_side": "0 (full resolution)", "model_sha256": "no model", "tile_size": f"default ({TILE_SIZE})",
                   "tile_overlap": f"default ({TILE_OVERLAP})"}
        return meaning.get(key, "not set")
    return _short(value)


def _short(value, most: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= most else text[: most - 1] + "…"


def has_outputs(out: Path) -> bool:
    """Whether ``out`` holds any file named like this command's outputs (:data:`OUTPUT_SUFFIXES`)."""
    return out.is_dir() and any(p.name.endswith(OUTPUT_SUFFIXES) for p in out.rglob("*"))


# ----------------------------------------------------------------------------------------------------------- methods
def method_maps(estimator, image: np.ndarray) -> Maps:
    """:class:`Maps` of one (H, W, 3) float32 RGB [0, 1] image: σ when the method gives it, and the blur map."""
    res = estimator.estimate(image, sigma=estimator.gives_sigma, probability=True)
    return Maps(blur=res.blur_probability, sigma=res.sigma, sigma_max=res.sigma_max)


# ----------------------------------------------------------------------------------------------------------- outputs
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
    """Write the files for one image (see module docstring) in format ``fmt`` (:class:`MapFormat` or its value) as
    one set: all of them or, when a write fails (disk full, permission), none (an earlier set under the same prefix
    stays as it was). PNGs use the fast lossless encoder settings (``syndof.io.PNG_FAST``). ``source``: the photo
    file, recorded in the set's :data:`PROVENANCE` file (None: no such file), with ``digest``, the SHA-256 of the
    bytes ``image`` was decoded from (None: the file's as it is when written). Returns the paths written."""
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


# --------------------------------------------------------------------------------------------------------------- CLI
EXAMPLE = "dmenet-predict ../shared/data/cuhk/image/out_of_focus0011.jpg --out runs/predict_example --flips 1"


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("dmenet.predict", __doc__, EXAMPLE)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    dcli.add_model(p)
    dcli.add_method(p)
    p.add_argument("--format", choices=choices(MapFormat), default=MapFormat.PNG.value, dest="fmt",
                   help="σ map format (png: uint16 round(10·σ); npy: float32 px; for methods without σ, npy adds "
                   "the [0, 1] blur map)")
    cli.add_device(p)
    cli.add_threads(p)
    cli.add_workers(p, default=None, help="processes sharing the photos, each with its own model and --threads threads",
                    default_text=f"default: one per core for a batch of >= {AUTO_WORKERS_MIN_PHOTOS} photos on the CPU "
                    "when --threads is not given and memory allows, else 1")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders of folder inputs")
    p.add_argument("--describe", action="store_true",
                   help="first print what the method does to each photo (model file, passes, statistics, curves)")
    dcli.add_flips(p, default=f"{DEFAULT_FLIPS}, for speed; the model's recipe, used by evaluate, may average more: "
                                    "the shipped model's 8", methods=True)
    dcli.add_raw_sigma(p)
    dcli.add_max_side(p, default_text=f"{DEFAULT_MAX_SIDE}; full resolution is tiled")
    p.add_argument("--tile-size", type=cli.positive_int, default=None,
                   help="tile side in px for large images (default 512)")
    p.add_argument("--tile-overlap", type=int, default=None, help="tile overlap in px (default 64)")
    return p


MIN_MAX_SIDE = 32
"""Smallest ``--max-side``: DMENet works on a grid of 16 px cells and needs at least two of them."""


def usage_problem(args: argparse.Namespace) -> str | None:
    """The first invalid option value as one line, or None; checked before any model is loaded or file written."""
    unused = dcli.unused_model(args)
    if unused:
        return unused
    if args.max_side is not None and (args.max_side < 0 or 0 < args.max_side < MIN_MAX_SIDE):
        return f"--max-side must be 0 (full resolution) or >= {MIN_MAX_SIDE} px, got {args.max_side}"
    if args.tile_size is not None or args.tile_overlap is not None:
        from dmenet.inference import MIN_TILE_SIZE, TILE_SIZE, tile_geometry

        if args.tile_size is not None and args.tile_size < MIN_TILE_SIZE:
            return f"--tile-size must be >= {MIN_TILE_SIZE} px, got {args.tile_size}"
        tile = args.tile_size if args.tile_size is not None else TILE_SIZE
        if args.tile_overlap is not None:
            problem = f"--tile-overlap must be >= 0 and smaller than --tile-size ({tile}), got {args.tile_overlap}"
            if args.tile_overlap < 0:
                return problem
            try:
                tile_geometry(tile, args.tile_overlap)  # the rounding inference applies
            except ValueError:
                return problem
    return None


def no_jobs_message(problems: Sequence[str], shown: int = 3) -> str:
    """The one line for inputs that gave no image: each input's problem without its ``skipped`` prefix (the first
    ``shown``, then a count)."""
    lines = [p.removeprefix("skipped ") for p in problems]
    if not lines:
        return "no input images found"
    more = f"; and {len(lines) - shown} more" if len(lines) > shown else ""
    return ("no input images: " if len(lines) > 1 else "") + "; ".join(lines[:shown]) + more


def make_new_folder(out: Path) -> bool:
    """Create ``out`` (and its parents) if it does not exist: True when this call made it. Any other problem is
    left to :func:`prepare_out`, which names it."""
    try:
        Path(out).mkdir(parents=True)
    except OSError:  # exists (a folder or a file), or cannot be made: prepare_out says which
        return False
    return True


def prepare_out(out: Path) -> str | None:
    """Create ``--out`` and check that a file can be written there; the problem as one line, or None."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: exists and is not a folder"
    return cli.writable_folder_problem(out, f"--out {out}")


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.fmt = parse_choice(MapFormat, args.fmt, "--format")  # once; the workers get the member with args
    cli.prepare_process(args)
    problem = usage_problem(args)
    if problem:
        return cli.fail(problem)
    jobs, problems = collect_jobs(args.inputs, args.out, args.recursive)
    if not jobs:  # nothing to run is a usage error: one line naming what was given
        return cli.fail(no_jobs_message(problems))
    for line in problems:
        print(line, file=sys.stderr)
    created = make_new_folder(args.out)  # this run made it (of two runs racing, only one did)
    problem = prepare_out(args.out)  # checked before the model loads (RELIABILITY D2)
    if problem:
        return cli.fail(problem)
    max_side = DEFAULT_MAX_SIDE if args.max_side is None else (args.max_side or None)
    flips = DEFAULT_FLIPS if args.flips is None else args.flips
    note = None if args.flips is not None else default_flips_note  # the default's known departure: a note
    options = dcli.method_options(args, max_side=max_side, flips=flips, on_departure=note)
    # one predict at a time per folder (the record and the sets agree); a folder this run made and left empty (a bad
    # method option or model file, Ctrl-C while the model loads, every input failed) is removed, a run refused by the
    # lock removes nothing
    with sio.folder_lock(args.out, "--out", made=created):
        estimator = args.method.make(options)  # in this process also with --workers: a bad model file fails here
        if args.describe:
            print(estimator.describe(), flush=True)
        return _run_batch(jobs, args, options, estimator, max_side, skipped_inputs(problems))


def _run_batch(jobs: list[Job], args: argparse.Namespace, options, estimator, max_side: int | None,
               not_listed: int = 0) -> int:
    """The batch inside ``--out``'s lock: the settings record (:func:`record_check`), then every photo.
    ``not_listed``: inputs already reported as skipped while the photos were listed (counted in the summary)."""
    out = Path(args.out)
    record = settings_record(args, options, estimator)
    problem, same = record_check(out, record)
    if problem:
        return cli.fail(problem)
    new_record = not same and not has_outputs(out)
    if new_record:
        sio.write_json_atomic(out / RECORD, record)
    elif not same:
        print(f"note: --out {out} holds maps but no {RECORD} (an older version wrote them): photos with maps are "
              "skipped, not checked against these settings", file=sys.stderr)
    grown = None  # a rerun on a device the record does not name yet: the record it leaves once it writes a set
    if same:
        earlier = sio.read_json_object(out / RECORD)
        devices = earlier.get("devices")
        if isinstance(devices, list) and record["devices"][0] not in devices:  # older records: no devices, left so
            grown = {**earlier, "devices": [*devices, *record["devices"]]}
    decided: dict[int, str | None] = {}  # job index → None (done already) or the reason it is skipped
    if same:  # which photos have their whole set already, and which prefixes hold another photo's
        wanted = output_suffixes(estimator.gives_sigma, args.fmt)
        finished = finished_sets(jobs, wanted)
        for index, job in enumerate(jobs):
            done_already, reason = resume_decision(job, wanted, finished)
            if done_already or reason:
                decided[index] = reason
    if same or new_record:
        jobs = [dataclasses.replace(job, same_settings=True) for job in jobs]
    if not estimator.gives_sigma:
        print(f"{args.method} gives a blur map, not σ — writing _blur.png"
              f"{', _blur.npy' if args.fmt.npy else ''} and _preview.png only (with _source.json)")
    todo = [(number, job) for number, job in enumerate(jobs, 1) if number - 1 not in decided]
    workers = min(args.workers or auto_workers([job for _, job in todo], args, max_side,
                                               memory.available_memory(), estimator.extra_bytes_per_pixel(),
                                               estimator.input_bytes_per_pixel()),
                  max(len(todo), 1))
    computed = (_parallel(todo, len(jobs), args, options, workers) if workers > 1
                else (predict_one(job, number, len(jobs), estimator, max_side, args) for number, job in todo))
    results = (decided[i] if i in decided else next(computed) for i in range(len(jobs)))
    done = already = skipped = 0
    batch_start = time.perf_counter()
    try:
        for number, (job, result) in enumerate(zip(jobs, results), 1):
            if isinstance(result, str):  # one bad file must not stop the batch; reported with its reason
                skipped += 1
                print(f"skipped {job.source}: {result}", file=sys.stderr)
                continue
            if result is None:
                already += 1
                print(f"[{number}/{len(jobs)}] {job.source}: done already (same settings, {RECORD})", flush=True)
                continue
            done += 1
            elapsed = time.perf_counter() - batch_start
            eta = f", about {elapsed / number * (len(jobs) - number):.0f} s left" if number < len(jobs) else ""
            print(f"[{number}/{len(jobs)}] {job.source} -> {job.prefix}_* ({result:.2f} s{eta})", flush=True)
    finally:
        if new_record and not done and not has_outputs(out):  # nothing written: the record describes nothing
            (out / RECORD).unlink(missing_ok=True)
        if grown is not None and done:
            sio.write_json_atomic(out / RECORD, grown)
    print(f"{done}/{len(jobs)} images written to {out}" + (f", {already} done already" if already else "")
          + (f", {skipped + not_listed} skipped" if skipped + not_listed else ""))
    return 0 if done + already > 0 else 1


def predict_one(job: Job, number: int, count: int, estimator, max_side: int | None,
                args: argparse.Namespace, batch_alive=None) -> float | str | None:
    """Read, estimate and write one photo: its seconds, or the reason it was skipped (one line, without the file's
    name). With ``job.same_settings`` the batch has decided to write it (a set under its prefix is this photo's own,
    to be completed: :func:`resume_decision`); otherwise a prefix with any output file is skipped. A batch, or a
    large image, gets its ``[number/count] FILE: W×H px`` line first. ``batch_alive`` (a worker's): called before the
    files are written; False (the batch process was killed) writes nothing, so no set lands after the batch's lock
    is gone."""
    start = time.perf_counter()
    earlier = existing_outputs(job.prefix)
    if earlier and not job.same_settings:
        return (f"{earlier[0]} exists: earlier results are never overwritten (remove them or choose another "
                f"--out)")
    try:
        def fits(height: int, width: int) -> None:  # the reason as one line naming no exception type
            try:
                memory.check_memory(height, width, max_side, memory.available_memory(),
                                    estimator.extra_bytes_per_pixel(), estimator.input_bytes_per_pixel())
            except ValueError as exc:
                raise sio.InputError(job.source, str(exc)) from None

        headers: list[tuple[int, int]] = []

        def header_fits(width: int, height: int) -> None:  # before decoding: refused without its pixels
            headers.append((width, height))
            fits(height, width)

        # one read: the set records the SHA-256 of exactly the bytes its maps were made from
        image, digest = sio.read_image_sha256(job.source, check_size=header_fits)
        h, w = image.shape[:2]
        if headers != [(w, h)]:  # a header PIL cannot read
            fits(h, w)
        if count > 1 or h * w > LARGE_IMAGE_PIXELS:  # progress before the long part, not only after it
            faster = "--max-side" + (" or --flips 1" if args.flips not in (None, 1) else "")  # None: 1 already
            note = f" (large: tiled, this takes a while; {faster} is faster)" \
                if h * w > LARGE_IMAGE_PIXELS and not max_side else ""
            print(f"[{number}/{count}] {job.source}: {w}x{h} px{note}", file=sys.stderr, flush=True)
        maps = method_maps(estimator, image)
        if batch_alive is not None and not batch_alive():
            return "not written: the batch process is gone (killed); a rerun does it"
        appeared = [p for p in existing_outputs(job.prefix) if p not in earlier]
        if appeared:  # made while the photo ran (another program, a copy): never replaced
            return f"not written: {appeared[0]} appeared while the photo ran; it is never overwritten"
        write_outputs(job.prefix, image, maps, args.fmt, source=job.source, digest=digest)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, sio.InputError) else f"{exc.__class__.__name__}: {exc}"
        return reason.removeprefix(f"{job.source}: ")
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ worker processes
AUTO_WORKERS_MIN_PHOTOS = 8
"""Smallest batch that gets several workers by default: each worker loads the model (1–2 s), which a few photos do
not pay back."""
AUTO_WORKERS_MAX = 4
"""Most workers started by default (each holds a model and its working memory)."""


def auto_workers(jobs: list[Job], args: argparse.Namespace, max_side: int | None, available: int | None,
                 extra_per_pixel: int = 0, input_per_pixel: int = 0) -> int:
    """The default ``--workers``: 1 on a GPU, with ``--threads`` given, or for a batch smaller than
    :data:`AUTO_WORKERS_MIN_PHOTOS`; else the usable cores (at most :data:`AUTO_WORKERS_MAX`), no more than
    ``available`` bytes hold at :func:`dmenet.memory.estimate_memory` (with ``extra_per_pixel``, ``input_per_pixel``)
    of the batch's largest photo (sizes from the file headers; unreadable headers are left to the workers, which
    report them). ``available`` None: unknown, no memory bound."""
    if args.threads is not None or (args.device or "cpu") != "cpu" or len(jobs) < AUTO_WORKERS_MIN_PHOTOS:
        return 1
    workers = min(cli.available_cpus(), AUTO_WORKERS_MAX)
    if available is not None and workers > 1:
        sizes = [size for size in map(sio.header_size, (j.source for j in jobs)) if size is not None]
        need = max((memory.estimate_memory(h, w, max_side, extra_per_pixel, input_per_pixel) for w, h in sizes),
                   default=memory.MEMORY_FIXED_BYTES)
        workers = max(1, min(workers, available // need))
    return workers


_worker: dict = {}
"""Per worker process (``--workers``): its estimator, the parsed options, the working size and the lock its photos
hold, set once by :func:`_start_worker`."""


def _quiet(departure: str) -> None:
    """A worker's recipe departure: the main process has printed it already."""


def _start_worker(args: argparse.Namespace, options, threads: int, parent: int, stop) -> None:
    """A worker's setup; ``parent`` is the batch's process id (passed in: it may be gone before this runs); ``stop``:
    the batch's event, set when it is interrupted (no photo starts after it)."""
    import threading

    cli.apply_threads(threads)
    from syndof.allocator import reuse_freed_memory

    reuse_freed_memory()
    busy = threading.Lock()

    def leave(status: int) -> None:
        with busy:  # never in the middle of a photo's files
            os._exit(status)

    def leave_with_parent() -> None:  # a killed batch leaves no idle workers behind (each holds a model)
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        leave(1)

    def on_sigterm(signum: int, frame) -> None:  # noqa: ARG001 - finish the photo in progress, then leave
        threading.Thread(target=leave, args=(128 + signum,), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group: the batch stops us
    threading.Thread(target=leave_with_parent, daemon=True).start()
    _worker.update(estimator=args.method.make(options), args=args, max_side=options.max_side, busy=busy,
                   stop=stop, batch_alive=lambda: os.getppid() == parent)


PARENT_POLL_S = 0.5
"""How often a worker checks that the batch's process is still there, seconds."""


def _worker_job(item: tuple[int, int, Job]) -> float | str:
    number, count, job = item
    if _worker["stop"].is_set():  # queued before the batch was interrupted
        return "not started: the batch was interrupted"
    with _worker["busy"]:
        return predict_one(job, number, count, _worker["estimator"], _worker["max_side"], _worker["args"],
                           _worker["batch_alive"])


WORKER_DIED = ("not done: a worker process died (killed, e.g. out of memory); rerun the batch into the same --out "
               "to finish the rest (--workers 1 holds one model)")
"""The reason reported for each photo a dead worker pool left undone."""


def _parallel(jobs: list[tuple[int, Job]], count: int, args: argparse.Namespace, options, workers: int):
    """The results of ``jobs`` (each with its number in the batch of ``count`` photos) in their order from
    ``workers`` spawned processes (a generator). When a worker dies (it
    was killed, e.g. by the kernel's out-of-memory killer), the photos not done yet get :data:`WORKER_DIED` as their
    result, so the batch reports them and ends with its summary."""
    import dataclasses
    import multiprocessing as mp

    threads = args.threads or max(1, cli.available_cpus() // workers)
    options = dataclasses.replace(options, on_departure=_quiet)  # this process has reported any departure
    given = 0
    # spawn: never fork a process whose OpenMP pool is running; a worker that dies raises BrokenProcessPool here
    # instead of leaving the batch waiting
    context = mp.get_context("spawn")
    stop = context.Event()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(args, options, threads, os.getpid(), stop)) as pool:
        try:
            for result in pool.map(_worker_job, [(number, count, job) for number, job in jobs]):
                yield result
                given += 1
        except BrokenProcessPool:
            yield from [WORKER_DIED] * (len(jobs) - given)
        except BaseException:  # Ctrl-C, SIGTERM: no photo starts any more; those in progress finish their files
            stop.set()  # the calls already queued to a worker, which cancel_futures cannot reach
            pool.shutdown(wait=True, cancel_futures=True)
            raise


LARGE_IMAGE_PIXELS = 1024 * 1024
"""Above this many pixels an image is tiled (dmenet.inference.TILE_THRESHOLD) and gets a progress note."""


if __name__ == "__main__":
    sys.exit(main())
