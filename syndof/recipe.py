"""What a SYNDOF dataset folder was made with, and the checks a run passes before it writes anything.

A run's options are checked first (:func:`option_problem`, :func:`max_coc_problem`: one line naming the option);
then its ``--out`` (:func:`check_out_dir`: not an input folder, not a folder of something else). A rerun into an
existing dataset must repeat its recipe, the settings (:data:`RECIPE_KEYS`) and the inputs (:data:`INPUT_KEYS`,
:func:`sources_digest`) that ``dataset.json`` (:data:`DATASET_FORMAT`, :data:`GENERATOR`) and the samples' meta
files record (:func:`check_recipe`), and the source files of its complete samples must hold what they held
(:func:`changed_source`). :func:`recipe_lock` serialises the recipe check and the ``dataset.json`` write of runs
started side by side. Each check raises ValueError or returns one line; :func:`syndof.generate.generate` calls them.
:func:`read_max_coc` is the one reader of a folder's ``dataset.json`` ``max_coc`` for its users (training's
``dmenet.data.SyntheticDataset``, evaluation's ``dmenet.eval.syndof_test``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from syndof import cli, units
from syndof import io as sio
from syndof.render_checks import MAX_MAX_COC
from syndof.choices import parse_choice
from syndof.layout import has_samples, is_complete, sample_paths, sample_stem
from syndof.psf import Kernel
from syndof.scenes import Source


RECIPE_KEYS = ("max_coc", "kernel", "seed", "noise", "jpeg_quality", "max_size", "merge_tolerance")
"""dataset.json fields a rerun into the same folder must repeat (``count`` and ``shard`` may differ). A folder
whose dataset.json or meta lacks ``merge_tolerance`` was rendered exactly (0); dataset.json and meta record it only
when it is above 0, so an exact folder's files are the same as before the option existed."""
MIN_MAX_SIZE = 16
"""Smallest ``--max-side`` (px) other than 0 (no limit)."""
INPUT_KEYS = ("images", "depths", "depth_scale", "n_sources", "sources_sha256")
"""dataset.json fields naming what the samples were made from: the resolved --images and --depths folders (null:
the built-in data / random depth), --depth-scale (null: the depth format's default), the number of sources
(sample i uses source i mod n_sources) and :func:`sources_digest` of their names in order (a photo renamed in
--images keeps the count but moves sources to other indices: sample i of the rerun is another photo). A rerun must
repeat them; a dataset.json without one of them (written before they were recorded) leaves it unknown, and it is
then not added while the folder holds samples."""
DATASET_FORMAT = "syndof"
"""``dataset.json``'s ``format``: a folder :func:`check_out_dir` lets a run add to has it."""
GENERATOR = "syndof.generate"
"""``dataset.json``'s ``generator``: a folder that names another is not added to."""


def sources_digest(sources: list[Source]) -> str:
    """SHA-256 (hex) of the sources' kinds and file names in order (the image and depth file names; folders and
    file contents are not read): equal for one --images / --depths listing, different once a file is renamed,
    added or removed, or the depth files are paired otherwise."""
    import hashlib

    lines = [f"{s.kind.value}\t{s.name}\t{Path(s.image_path).name if s.image_path else ''}\t"
             f"{Path(s.depth_path).name if s.depth_path else ''}" for s in sources]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


INPUT_NOTES = {"sources_sha256": "the sources' names (a file in --images / --depths renamed, added or removed)"}
"""How :func:`check_recipe` names an input key whose value means nothing to a user."""


def _number_in(value, lo: float, hi: float) -> bool:
    """Whether ``float(value)`` is finite (:func:`syndof.units.is_finite_number`: 10**400 is not) and in [lo, hi]."""
    return units.is_finite_number(value) and lo <= float(value) <= hi


def max_coc_problem(max_coc, name: str = "--max-coc") -> str | None:
    """One line naming ``name`` unless ``max_coc`` is a whole number of px in 2..MAX_MAX_COC (9.7 passed and was
    rendered and recorded as 9; the text ``"29"`` passed and was a TypeError inside the camera), else None."""
    if not units.is_number(max_coc) or not _number_in(max_coc, 2, MAX_MAX_COC) or not float(max_coc).is_integer():
        return f"{name} must be an integer in 2..{MAX_MAX_COC} px (σ_max = (max_coc − 1)/4), got {max_coc!r}"
    return None


def read_max_coc(folder: str | os.PathLike) -> float:
    """``max_coc`` of the SYNDOF folder ``folder`` from its ``dataset.json``: the largest CoC diameter in px of its
    renders, whose σ labels are σ/σ_max with σ_max = (max_coc − 1)/4 px; :data:`syndof.units.DEFAULT_MAX_COC` (29,
    σ_max 7 px) when the file or its key is absent. The one reader for training and evaluation.

    A JSON number > 1 that is finite (:func:`syndof.units.is_finite_number`) is taken, as a float. The bound is > 1,
    not the renderer's ≥ 1 (:func:`syndof.render_checks.check_max_coc`, a kernel grid): 1 gives σ_max 0, so every
    label σ/σ_max divides by zero, and it says the folder's renders have no blur, which no render of ``generate``
    (``--max-coc`` 2 … 255) has.

    Raises:
        InputError: one line naming ``dataset.json`` when something other than a file stands there (a folder, a link
            to nothing: was read as absent, 29), it cannot be read or parsed, it holds no JSON object, or its
            ``max_coc`` is not a finite number > 1 (null, a list, text, true, NaN, 10**400, 0.5, 1).
    """
    meta = Path(folder) / "dataset.json"
    problem = sio.special_file_problem(meta)  # a folder or a link to nothing there was read as no file: 29
    if problem is not None:
        raise sio.InputError(meta, f"{problem}: the folder's max_coc is read from this file (remove it for the "
                                   f"default {units.DEFAULT_MAX_COC})")
    if not meta.is_file():
        return float(units.DEFAULT_MAX_COC)
    with sio.read_errors_named(meta):  # "…/dataset.json: Permission denied"
        text = meta.read_bytes()
    try:
        record = json.loads(text.decode("utf-8"))
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise sio.InputError(meta, f"bad dataset.json ({exc})") from None
    if not isinstance(record, dict):
        raise sio.InputError(meta, f"dataset.json must hold a JSON object, not {type(record).__name__}")
    value = record.get("max_coc", units.DEFAULT_MAX_COC)
    if not (units.is_number(value) and units.is_finite_number(value) and value > 1):  # a JSON int or float
        raise sio.InputError(meta, f"max_coc must be a finite number > 1 (the largest CoC in px; σ_max = "
                                   f"(max_coc − 1)/4 px), got {json.dumps(value)}")
    return float(value)


def option_problem(*, max_coc: int, kernel: Kernel | str, device: str, max_size: int | None, threads: int | None,
                   workers: int, jpeg_quality: int | None, merge_tolerance: float = 0.0, seed: int = 0,
                   depth_scale: float | None = None) -> str | None:
    """The first invalid option of :func:`syndof.generate.generate` as one line naming it, or None (checked before
    any write)."""
    problem = max_coc_problem(max_coc)
    if problem:
        return problem
    try:
        parse_choice(Kernel, kernel, "--kernel")
    except ValueError as exc:
        return str(exc)
    if max_size is not None and max_size < MIN_MAX_SIZE:
        return f"--max-side must be 0 (no limit) or >= {MIN_MAX_SIZE} px, got {max_size}"
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        return f"--seed must be an integer >= 0, got {seed!r}"
    from syndof.depth_io import valid_scale

    if depth_scale is not None and not valid_scale(depth_scale):
        return f"--depth-scale must be a finite number > 0 (raw depth × K = mm), got {depth_scale!r}"
    if threads is not None and threads < 1:
        return f"--threads must be >= 1, got {threads}"
    if workers < 0:
        return f"--workers must be >= 0, got {workers}"
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        return f"--jpeg-quality must be in 1..100, got {jpeg_quality}"
    from syndof.layer_merge import check_merge_tolerance

    try:
        check_merge_tolerance(merge_tolerance, what="--merge-tolerance")
    except ValueError as exc:
        return str(exc)
    try:
        cli.check_device(device)
    except ValueError as exc:
        return str(exc)
    return None


def _sample_recipe(meta: dict) -> dict:
    """The RECIPE_KEYS a sample's meta/*.json records (max_size is not recorded per sample)."""
    augment = meta.get("augment") or {}
    return {"max_coc": meta.get("max_coc"), "kernel": meta.get("kernel"), "seed": meta.get("seed"),
            "noise": augment.get("noise") is not None, "jpeg_quality": augment.get("jpeg_quality"),
            "merge_tolerance": meta.get("merge_tolerance", 0.0)}


def check_recipe(out_dir: Path, recipe: dict) -> None:
    """Refuse to add to (or "skip" into) a folder generated with other settings or inputs: they are compared with
    its dataset.json and with one finished sample's meta, each (the inputs, :data:`INPUT_KEYS`, with dataset.json
    only, where both it and ``recipe`` record them): a sample whose meta disagrees with a dataset.json that the
    options match (an edited dataset.json) is refused too. Raises ValueError naming the folder and the settings."""
    known: dict = {}
    ds_path = out_dir / "dataset.json"
    if ds_path.is_file():
        old = sio.read_json_object(ds_path)
        known.update({k: old[k] for k in RECIPE_KEYS if k in old})
        known.setdefault("merge_tolerance", 0.0)  # recorded only when above 0
        inputs = [INPUT_NOTES.get(k, f"{k} {old[k]!r} (now {recipe[k]!r})") for k in INPUT_KEYS
                  if k in old and k in recipe and old[k] != recipe[k]]
        if inputs:
            raise ValueError(f"{out_dir}: was generated from other inputs: {', '.join(inputs)}: rerun with the "
                             "same --images/--depths/--depth-scale to complete it, or use another --out folder")
    first_meta = next(iter(sorted((out_dir / "meta").glob("*.json"))), None) if (out_dir / "meta").is_dir() else None
    if first_meta is not None:
        meta = sio.read_json(first_meta)
        if isinstance(meta, dict):
            sample = _sample_recipe(meta)
            # the sample's own record too, not only where dataset.json is silent: a dataset.json edited to
            # max_coc 9 let --max-coc 9 add samples beside the max_coc 29 ones, all labelled 9
            disagree = [f"{k} {v!r} in {first_meta.name} (now {recipe[k]!r})" for k, v in sample.items()
                        if k in known and known[k] == recipe[k] and v != recipe[k]]
            if disagree:
                raise ValueError(f"{out_dir}: its samples were generated with {', '.join(disagree)}, although "
                                 "dataset.json says otherwise: use another --out folder")
            known.update({k: v for k, v in sample.items() if k not in known})
    differ = [f"{k} {known[k]!r} (now {recipe[k]!r})" for k in RECIPE_KEYS if k in known and known[k] != recipe[k]]
    if differ:
        raise ValueError(f"{out_dir}: was generated with {', '.join(differ)}: rerun with the same options to "
                         "complete it, or use another --out folder")


def changed_source(out_dir: Path, samples: Iterable[tuple[int, Source]]) -> str | None:
    """One line when a complete sample among ``samples`` ((index, source) pairs of this run) was made from a source
    file whose content has changed since: its meta's ``source_sha256`` (:meth:`~syndof.scenes.Source.load_recorded`)
    differs from the file's SHA-256 now. A resume would count it as done and mix samples of two versions of one photo
    under its name. Each file is hashed once; a sample without the record (written before 6 Dec 2026), and a file
    that cannot be read now (the sample stays complete, as before), are not checked. None when nothing changed."""
    if not has_samples(out_dir):  # a new folder: nothing to check (and no stat per index of a large --count)
        return None
    now: dict[str, str | None] = {}
    for index, source in samples:
        stem = sample_stem(index, source)
        if not is_complete(out_dir, stem):
            continue
        meta = _read_meta(sample_paths(out_dir, stem)["meta"])
        recorded = meta.get("source_sha256")
        if not isinstance(recorded, dict):
            continue
        for role, path in (("image", source.image_path), ("depth", source.depth_path)):
            if path is None or role not in recorded:
                continue
            if path not in now:
                now[path] = sio.readable_file_sha256(path)
            if now[path] is not None and now[path] != recorded[role]:
                return (f"{out_dir}: {path} changed since sample {stem} was made from it (SHA-256 "
                        f"{str(recorded[role])[:12]}…, now {now[path][:12]}…): restore it to complete this folder, or "
                        "use another --out folder")
    return None


def _read_meta(path: Path) -> dict:
    """The JSON object of a sample's meta file, or {} when it is not one (a damaged file: the manifest's to name)."""
    try:
        meta = sio.read_json(path)
    except sio.InputError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies inside it (both resolved)."""
    return path == folder or folder in path.parents


def check_out_dir(out_dir: Path, inputs: dict[str, Path | None]) -> None:
    """Refuse an --out that would mix with or destroy other files (ValueError, one line naming it): a path that is
    not a folder; one that is, lies in or holds an input folder (``inputs``: option name → folder or None); an
    existing non-empty folder that is not a dataset of this generator (its dataset.json must say
    ``"format": "syndof"`` and, if it names a generator, this one)."""
    problem = None if out_dir.exists() else sio.special_file_problem(out_dir)  # a link to nothing, a link loop
    if problem is not None:  # (a loop, or one in a folder above it, ended in resolve()'s RuntimeError traceback)
        raise ValueError(f"--out {out_dir}: {problem}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: exists and is not a folder")
    out_abs = out_dir.resolve()
    for option, folder in inputs.items():
        if folder is None or not Path(folder).is_dir():  # no folder (missing, a link loop): refused by its reader
            continue
        in_abs = Path(folder).resolve()
        if _inside(out_abs, in_abs) or _inside(in_abs, out_abs):
            where = "is" if out_abs == in_abs else "is inside" if _inside(out_abs, in_abs) else "contains"
            raise ValueError(f"--out {out_dir} {where} the {option} folder {folder}: write the dataset to a "
                             "separate folder")
    if not out_dir.is_dir():
        return
    entries = [p for p in out_dir.iterdir() if not (p.name.startswith(".dataset.") and p.name.endswith(".tmp"))]
    if not entries:
        return
    ds_path = out_dir / "dataset.json"
    why = None
    if not ds_path.is_file():
        why = "has no dataset.json"
    else:
        try:
            ds = sio.read_json_object(ds_path)
        except sio.InputError:
            ds = None
        if ds is None:
            why = "has an unreadable dataset.json"
        elif ds.get("format") != DATASET_FORMAT or ds.get("generator", GENERATOR) != GENERATOR:
            why = (f"has a dataset.json of format {ds.get('format')!r}"
                   + (f" by {ds.get('generator')!r}" if "generator" in ds else ""))
    if why:
        raise ValueError(f"--out {out_dir}: is not empty and {why}, so it is not a dataset of {GENERATOR}: "
                         "choose a new or empty --out folder")


@contextlib.contextmanager
def recipe_lock(out_dir: Path):
    """A blocking ``flock`` on ``out_dir`` for the recipe check and the dataset.json write only (shards of one
    recipe still run side by side; the lock is held for milliseconds). Unlocked where ``flock`` does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
