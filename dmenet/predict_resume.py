"""What a rerun of ``dmenet.predict`` into the same ``--out`` (same settings: :mod:`dmenet.predict_record`) does with
each photo: a set counts as done only when it is whole and its provenance file gives the photo's SHA-256
(:func:`finished_sets`, :func:`resume_place`), and a photo whose own prefix is free is done already when a whole
set of it lies under a prefix no photo of the batch has (:func:`unclaimed_sets`: made when the photos were named
otherwise, e.g. before a second extension of its stem was added); a prefix holding another photo's set is never
overwritten."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dmenet.predict_inputs import Job, prefix_key
from dmenet.predict_outputs import PROVENANCE, existing_outputs, read_provenance
from dmenet.predict_record import RECORD
from syndof import cli
from syndof import io as sio


def made_from(prefix: Path) -> str | None:
    """The SHA-256 of the photo that made the set under ``prefix`` (:func:`read_provenance`), or None."""
    record = read_provenance(prefix)
    return None if record is None else record["sha256"]


def whole(prefix: Path, wanted: Sequence[str]) -> bool:
    """Whether every file of ``wanted`` (:func:`~dmenet.predict_outputs.output_suffixes`) exists under ``prefix``."""
    return all(prefix.with_name(prefix.name + s).exists() for s in wanted)


def finished_sets(jobs: Sequence[Job], wanted: Sequence[str]) -> dict[str, Path]:
    """``{photo SHA-256: prefix}`` of the whole sets under the batch's own output prefixes that say which photo made
    them (sets elsewhere in ``--out``, e.g. a nested folder of another run, are never taken for this batch's)."""
    found: dict[str, Path] = {}
    for job in jobs:
        digest = whole_set_digest(job.prefix, wanted)
        if digest is not None:
            found.setdefault(digest, job.prefix)
    return found


def whole_set_digest(prefix: Path, wanted: Sequence[str]) -> str | None:
    """The SHA-256 of the photo the set under ``prefix`` was made from (its provenance record), when the set is whole
    (every ``wanted`` output there); None otherwise."""
    digest = made_from(prefix)
    return digest if digest is not None and whole(prefix, wanted) else None


def unclaimed_sets(jobs: Sequence[Job], wanted: Sequence[str], out: Path) -> dict[str, Path]:
    """``{photo SHA-256: prefix}`` of the whole sets that say which photo made them, directly in the folders the
    batch writes to under ``out``, under prefixes no job of the batch has (told apart as :func:`prefix_key` does);
    the first by name of a photo's sets. A folder below ``out`` with a settings record of its own (:data:`RECORD`)
    at or above it is another run's: its sets are never taken. One small JSON read per set."""
    claimed = {prefix_key(job.prefix) for job in jobs}
    found: dict[str, Path] = {}
    for folder in sorted({job.prefix.parent for job in jobs}):
        rel = folder.relative_to(out)
        if any((out / up / RECORD).exists() for up in [rel, *rel.parents][:-1]):  # out's own record: these settings
            continue
        try:
            names = sorted(p.name for p in folder.iterdir() if p.name.endswith(PROVENANCE))
        except OSError:  # not made yet (nothing in it) or not listable: nothing to take
            continue
        for name in names:
            prefix = folder / name.removesuffix(PROVENANCE)
            digest = None if prefix_key(prefix) in claimed else whole_set_digest(prefix, wanted)
            if digest is not None:
                found.setdefault(digest, prefix)
    return found


def resume_place(job: Job, wanted: Sequence[str], finished: dict[str, Path],
                 unclaimed: dict[str, Path] | None = None) -> tuple[Path | None, str | None]:
    """What a rerun with the same settings does with ``job``, and where the photo's whole set is: (prefix, None)
    done already, under ``job.prefix`` or under another prefix (which the batch's line names: the photos were named
    otherwise when it was made): of the batch (``finished``) when the files under the photo's own name are another
    photo's (the same photos named in another order: ``q_png`` and ``q_png_2`` swap), or of no photo of the batch
    (``unclaimed``: :func:`unclaimed_sets`) when its own prefix is free or another photo's; (None, None) write it
    (its prefix is free, or holds this photo's own incomplete set); (None, reason) skip it: its prefix holds a set
    of another photo, or one that does not say whose it is (never overwritten), or the photo cannot be read."""
    unclaimed = unclaimed or {}
    try:
        digest = sio.file_sha256(job.source)
    except OSError as exc:
        return None, cli.error_line(exc).removeprefix(f"{job.source}: ")
    earlier = existing_outputs(job.prefix)
    provenance = read_provenance(job.prefix) if earlier else None
    if not earlier:
        return unclaimed.get(digest), None
    if provenance is not None and provenance["sha256"] == digest:
        return (job.prefix if whole(job.prefix, wanted) else None), None
    if digest in finished or digest in unclaimed:
        return finished.get(digest, unclaimed.get(digest)), None
    name = job.prefix.name + PROVENANCE
    if provenance is not None:
        return None, (f"{earlier[0]} exists, made from another photo ({provenance['source']}; or this one before "
                       "it changed): never overwritten (name the photos as the run that made it did, or choose "
                       "another --out)")
    if job.prefix.with_name(name).exists():
        return None, f"{earlier[0]} exists and {name} is not a provenance record: never overwritten"
    return None, (f"{earlier[0]} exists without {name} (an older version of predict wrote it), so which photo made it "
                   "is unknown: never overwritten (remove that set to redo it, or choose another --out)")
