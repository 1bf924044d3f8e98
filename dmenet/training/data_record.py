"""What a training run reads, recorded when it starts (``RUN/data.json``) and compared on ``--resume``: a resume on
other data under the same paths (photos replaced in a folder, other names in a list file) would train a run on data
its record does not name, so it is refused before anything is written. Used by ``dmenet.train`` (one fingerprint
per input folder) and ``dmenet.distill.train`` (one per list file, and the kd stage's frozen teacher model file);
``dmenet.galetto.train`` hashes its two patch files whole (``RUN/patches.json``).

The fingerprint of a set of files is cheap: the sorted names and each file's size, never the contents (hashing 20k
photos would take minutes at every start). Sizes, not modification times: a copy of the data set (``cp`` without
``-p``, a move to a scratch disk) keeps sizes and changes times, and must still resume; a replaced compressed photo
almost always changes size. A file replaced by another of exactly the same size is not noticed. A list file, small,
is hashed whole (SHA-256) and its names are kept, so a refusal can say which names changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Mapping

from dmenet.configlib import ConfigError
from syndof.io import InputError, file_sha256, read_json_object, write_json_atomic

DATA_RECORD = "data.json"
"""The record's file name in a run folder."""
FORMAT = "dmenet-data-record"


def folder_files(root: Path) -> dict[str, Path]:
    """Every regular file below the folder ``root`` (recursively, following links as the datasets do), by its path
    relative to ``root`` (POSIX spelling); names starting with '.' (``.DS_Store``, editors' and tools' temporaries)
    and what lies in such folders are left out."""
    files: dict[str, Path] = {}
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file():
                files[path.relative_to(root).as_posix()] = path
    return files


def file_set_fingerprint(files: Mapping[str, Path]) -> dict[str, object]:
    """``{"files": N, "names_sha256": hex, "sizes_sha256": hex}`` of ``files`` (recorded name → path): the SHA-256
    of the sorted names (one a line) and of the sorted ``name<TAB>size in bytes`` lines. One ``stat`` per file."""
    names = sorted(files)
    sized = "".join(f"{name}\t{files[name].stat().st_size}\n" for name in names)
    return {"files": len(names), "names_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
            "sizes_sha256": hashlib.sha256(sized.encode()).hexdigest()}


def folder_fingerprint(root: str | Path) -> dict[str, object]:
    """What a run reads from the data folder ``root``: its absolute path (for the reader) and the
    :func:`file_set_fingerprint` of :func:`folder_files`."""
    root = Path(root)
    return {"path": str(root.absolute()), **file_set_fingerprint(folder_files(root))}


def list_fingerprint(list_file: str | Path, names: Iterable[str], files: Iterable[Path]) -> dict[str, object]:
    """What a run reads through the list file ``list_file``: its absolute path, the SHA-256 of its bytes, the
    ``names`` it lists (sorted) and the :func:`file_set_fingerprint` of the ``files`` they select (photos, masks,
    soft targets), each named ``FOLDER/FILE`` by its folder's own name (``image/a.jpg``, ``gt/a.png``)."""
    list_file = Path(list_file)
    return {"path": str(list_file.absolute()), "sha256": file_sha256(list_file), "names": sorted(names),
            **file_set_fingerprint({f"{p.parent.name}/{p.name}": p for p in files})}


def model_fingerprint(path: str | Path) -> dict[str, object]:
    """What a run reads from the model file ``path`` (e.g. the Distill kd stage's frozen teacher, read at every start
    and resume): its weights' absolute path (for the reader) and the SHA-256 of its pair
    (:func:`dmenet.models.model_io.model_digest`; a retrained file keeps its name, and a resume would go on with
    another model). InputError naming what was given when there are no weights to read
    (:func:`dmenet.models.model_io.model_pair_problem`: a folder, a missing file)."""
    from dmenet.models.model_io import model_digest, model_pair_problem, model_paths

    weights = model_paths(path)[0]
    if not weights.is_file():  # a folder given, the weights missing: named as given (a missing sidecar digests empty)
        raise model_pair_problem(path) or InputError(weights, "model file not found")
    return {"path": str(weights.absolute()), "model_sha256": model_digest(path)}


def what_changed(before: Mapping[str, object], now: Mapping[str, object]) -> str | None:
    """How the data ``now`` differs from what the record ``before`` says (fingerprints of :func:`folder_fingerprint`,
    :func:`list_fingerprint` or :func:`model_fingerprint`), in words; None when they agree."""
    if "model_sha256" in before or "model_sha256" in now:
        if before.get("model_sha256") != now.get("model_sha256"):
            return "another model file under this name (its SHA-256 is not that of the one the run started with)"
        return None
    listed = "sha256" in before
    if listed and before.get("sha256") != now.get("sha256"):
        old, new = set(before.get("names") or ()), set(now.get("names") or ())
        if old == new:
            return f"its content changed (SHA-256), though it lists the same {len(new)} names"
        added, gone = sorted(new - old), sorted(old - new)
        which = f"{len(added)} new (e.g. {added[0]!r})" if added else f"none new (e.g. {gone[0]!r} is gone)"
        return f"it now lists {len(new)} names, {which}, where the run started with {len(old)}"
    files = "the files it selects" if listed else "its files"
    if before.get("files") != now.get("files"):
        return f"{files}: {now.get('files')} now, {before.get('files')} when the run started"
    if before.get("names_sha256") != now.get("names_sha256"):
        return f"{files}: {now.get('files')}, as when the run started, but with other names"
    if before.get("sizes_sha256") != now.get("sizes_sha256"):
        return (f"{files}: the same {now.get('files')} names, but some of other sizes than when the run started "
                "(files replaced)")
    return None


def write_data_record(run_dir: Path, sources: Mapping[str, Mapping[str, object]]) -> None:
    """Write ``run_dir/data.json``: ``{"format", "sources": {option → fingerprint}}`` (atomically)."""
    write_json_atomic(run_dir / DATA_RECORD, {"format": FORMAT, "sources": dict(sources)})


def check_data_record(run_dir: Path, sources: Mapping[str, Mapping[str, object]], since: Iterable[str] = ()) -> None:
    """Refuse (ConfigError, one line naming the option, its folder or list and what changed) a resume whose data
    ``sources`` (option → fingerprint, as :func:`write_data_record` takes) differ from ``run_dir/data.json``. A run
    written before that record existed has none: it resumes unchecked (what it trained on is unknown); likewise an
    option of ``since`` (recorded only by runs started since it was added) that an older record lacks. An unreadable
    record: InputError naming it."""
    record = run_dir / DATA_RECORD
    if not record.exists() and not record.is_symlink():
        return
    since = set(since)
    before = read_json_object(record).get("sources")
    if not isinstance(before, dict) or not all(isinstance(v, dict) for v in before.values()):
        raise InputError(record, "'sources' must be a JSON object of data fingerprints (a damaged record)")
    for option in sorted(set(before) | set(sources)):
        if option not in sources:
            raise ConfigError(f"{option} {before[option].get('path')}: the run in {run_dir} read it ({record.name}), "
                              "this resume does not; resume on the run's data, or train into another --out folder "
                              "(nothing was changed)")
        if option not in before:
            if option in since:
                continue
            raise ConfigError(f"{option} {sources[option]['path']}: this resume reads it, the run in {run_dir} did "
                              f"not ({record.name}); resume on the run's data, or train into another --out folder "
                              "(nothing was changed)")
        change = what_changed(before[option], sources[option])
        if change is not None:
            raise ConfigError(f"{option} {sources[option]['path']}: {change} ({record} records the run's data); "
                              "resume on the run's data, or train into another --out folder (nothing was changed)")
