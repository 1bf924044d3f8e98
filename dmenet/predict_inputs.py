"""The inputs of ``dmenet.predict``: files and folders expanded into jobs (:class:`Job`, :func:`collect_jobs`), each
photo with an output prefix of its own, and the inputs skipped on the way (:class:`Skipped`, :func:`skipped_inputs`):
missing files, links to nothing or in a loop, a second name of one photo, and the outputs of this or an earlier run
(:func:`is_output_file`, :func:`in_earlier_output`)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dmenet.predict_outputs import OUTPUT_SUFFIXES
from dmenet.predict_record import RECORD
from syndof import io as sio


@dataclass
class Job:
    """One input file and the output prefix (DIR/rel/stem, without the ``_sigma.png`` suffixes). ``same_settings``:
    ``--out``'s settings record (:data:`RECORD`) matches this run's and the batch has decided that this photo's set
    is to be written (:func:`~dmenet.predict_resume.resume_place`), completing the photo's own set under the prefix
    when one is there."""

    source: Path
    prefix: Path
    same_settings: bool = False


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


def collect_jobs(inputs: Sequence[str | Path], out_dir: Path, recursive: bool = False) -> tuple[list[Job], list[str]]:
    """Expand files and folders into jobs; returns (jobs, problems) where problems are one-line messages, each of one
    skipped input or (a :class:`Skipped` line) of several (:func:`skipped_inputs` counts them).

    Output prefixes are ``out_dir/<relative folder>/<stem>``; two inputs that would share one prefix (``a.jpg`` and
    ``a.png``; also ``a.png`` and ``A.png``, one name where letter case is not told apart: :func:`prefix_key`) keep
    their extension in the name (``a_jpg``, ``a_png``), and a prefix still taken (a file really named ``a_jpg.png``;
    ``a_png`` and ``A_png``) gets ``_2``, ``_3``…. Files under ``out_dir`` named like this command's outputs are
    skipped (a second run with ``--out`` inside the inputs does not predict on its own maps).
    """
    pairs: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            # one walk: a link to nothing or in a loop, a FIFO, in ``broken``
            try:
                files, broken = sio.list_images_and_unlisted(path, recursive)
            except OSError as exc:  # a batch skips an input folder it cannot list, as a missing file (§31 W6)
                problems.append(f"skipped {path}: {sio.unlistable_folder_reason(exc)}")
                continue
            problems.extend(f"skipped {p}: {why}" for p, why in broken)
            if not files and not broken:
                problems.append(f"skipped {path}: no image files ({', '.join(sio.IMAGE_EXTENSIONS)})")
            pairs.extend((f, f.relative_to(path).with_suffix("")) for f in files)
        elif path.is_file():
            pairs.append((path, Path(path.stem)))
        else:
            problems.append(f"skipped {path}: {sio.special_file_problem(path) or 'no such file or folder'}")
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
    counts: dict[str, int] = {}
    for _, rel in unique:
        counts[prefix_key(rel)] = counts.get(prefix_key(rel), 0) + 1
    jobs, used = [], set()
    for source, rel in unique:
        if counts[prefix_key(rel)] > 1:
            rel = rel.with_name(f"{rel.name}_{source.suffix.lstrip('.').lower()}")
        name, n = rel.name, 2
        while prefix_key(rel) in used:  # a.jpg → a_jpg, and a file really named a_jpg.png: never share a prefix
            rel, n = rel.with_name(f"{name}_{n}"), n + 1
        used.add(prefix_key(rel))
        jobs.append(Job(source=source, prefix=out_dir / rel))
    return jobs, problems


def prefix_key(rel: Path) -> str:
    """What two output prefixes (``rel``: relative, without suffix) must differ in to name different files on every
    file system: the text case-folded after NFC normalization. macOS (APFS, HFS+) and Windows (NTFS) compare names
    so by default: ``A.png`` and ``a.png`` (photos of one folder on Linux, or of two folders) would write one set
    over the other there."""
    return unicodedata.normalize("NFC", str(rel)).casefold()
