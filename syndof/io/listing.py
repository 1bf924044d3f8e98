"""Listing folders: the image files of a folder (recursive or not), what could not be listed, by stem."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from syndof.io.decode import IMAGE_EXTENSIONS
from syndof.io.files import InputError, is_hidden, not_a_folder, special_file_problem


def image_names(folder: str | os.PathLike, recursive: bool = False,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                unreadable: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The names directly in the folder ``folder`` (with ``recursive``, anywhere below it) that are named as images
    (``extensions``, lower-case with the dot, compared case-insensitively; :data:`~syndof.io.decode.IMAGE_EXTENSIONS`
    unless a pairing names others), sorted, whatever stands there (a file, a folder, a link to nothing or in a loop, a
    FIFO); hidden ones and those under a hidden folder (:func:`~syndof.io.files.is_hidden`) left out. The one walk of
    :func:`list_images`, :func:`unlisted_images`, :func:`index_by_stem` and ``predict``'s folder inputs.

    ``recursive`` descends into sub-folders, not into symbolic links to folders (as ``Path.rglob``). A sub-folder
    that cannot be listed (``Permission denied``) is never passed over unsaid (``rglob`` did: its images were left
    out of a batch without a word): it is appended to ``unreadable`` as ``(path, reason)``
    (:func:`unlistable_folder_reason`) when a list is given, else its OSError is raised (naming it). An OSError
    listing ``folder`` itself is raised."""
    folder = Path(folder)
    if not recursive:
        found = list(folder.iterdir())
    else:
        found = []

        def failed(exc: OSError) -> None:
            """A folder os.walk could not list: ``folder`` itself raises, a sub-folder goes to ``unreadable``."""
            where = Path(exc.filename) if exc.filename is not None else folder
            if unreadable is None or where == folder:
                raise exc
            unreadable.append((where, unlistable_folder_reason(exc)))

        for top, dirs, files in os.walk(folder, onerror=failed):
            dirs[:] = [d for d in dirs if not is_hidden(Path(d))]  # never listed: not walked (nor reported)
            found += [Path(top) / name for name in dirs + files]
    return sorted(p for p in found if p.suffix.lower() in extensions
                  and not any(is_hidden(Path(part)) for part in p.relative_to(folder).parts))


def unlistable_folder_reason(exc: OSError) -> str:
    """The reason a batch gives for a sub-folder a recursive listing (:func:`image_names`) could not list, from the
    listing's OSError ``exc``: ``"a folder that cannot be listed (Permission denied)"``."""
    return f"a folder that cannot be listed ({exc.strerror or exc})"


def list_images(folder: str | os.PathLike, recursive: bool = False,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files (by extension, case-insensitive) directly in ``folder`` (with ``recursive``, anywhere below it),
    sorted by path (:func:`image_names` that are files); hidden ones (:func:`~syndof.io.files.is_hidden`, or under a
    hidden folder) left out, and so are image names where no file can be read (a link loop or to nothing, a FIFO): a
    batch reports those with :func:`unlisted_images` (same ``recursive``). ``extensions``: as :func:`image_names`.
    InputError when ``folder`` is no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise not_a_folder(folder)
    return [p for p in image_names(folder, recursive, extensions) if p.is_file()]


def unlisted_images(folder: str | os.PathLike, recursive: bool = False,
                    extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[tuple[Path, str]]:
    """The entries directly in the folder ``folder`` (with ``recursive``, anywhere below it, as ``predict
    --recursive`` lists) named as images (:data:`~syndof.io.decode.IMAGE_EXTENSIONS`, not hidden:
    :func:`~syndof.io.files.is_hidden`, nor under a hidden folder) that :func:`list_images` leaves out because no file
    can be read there: a symbolic link loop, a link to nothing, a FIFO, socket or device; each with its reason
    (:func:`~syndof.io.files.special_file_problem`), sorted by path. A folder named like an image is none of them (a
    listing never takes a folder for a photo). For a batch's one ``skipped PATH: reason`` line each: the listing alone
    drops them unsaid. ``extensions``: as :func:`image_names`."""
    return [(path, problem) for path in image_names(folder, recursive, extensions)
            if (problem := _unlisted_problem(path)) is not None]


def _unlisted_problem(path: Path) -> str | None:
    """Why :func:`list_images` leaves the image name ``path`` out (:func:`~syndof.io.files.special_file_problem`), None
    for a file or a folder (a listing never takes a folder for a photo) or when nothing is there any more."""
    problem = special_file_problem(path)
    return problem if problem is not None and not os.path.isdir(path) else None


def list_images_and_unlisted(folder: str | os.PathLike, recursive: bool = False,
                             extensions: tuple[str, ...] = IMAGE_EXTENSIONS
                             ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(:func:`list_images`, :func:`unlisted_images`) of ``folder`` from one walk of it (:func:`image_names`), so
    that the files read and the names reported as skipped come from the same listing (two walks could disagree on
    a name made or removed between them, and cost a walk each). With ``recursive``, a sub-folder that cannot be
    listed is among the unlisted, with its reason (:func:`unlistable_folder_reason`), in path order. InputError when
    ``folder`` is no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise not_a_folder(folder)
    files, unlisted = [], []
    for path in image_names(folder, recursive, extensions, unreadable=unlisted):
        if path.is_file():
            files.append(path)
        elif (problem := _unlisted_problem(path)) is not None:
            unlisted.append((path, problem))
    return files, sorted(unlisted)


def image_entries(folder: str | os.PathLike, recursive: bool = False,
                  extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """:func:`list_images` and the names of :func:`unlisted_images` (same ``recursive``) together, sorted by path:
    every image name in ``folder`` that is no folder, whether a file can be read there or not. For a set whose
    members pair by name (a benchmark's images, a focal stack's frames, photos skipped before a split is drawn):
    reading such a name raises an InputError that names it (:func:`~syndof.io.files.check_nonempty_file`), so the caller
    refuses or skips it by its own rule instead of leaving it out unsaid. ``extensions``: as :func:`image_names`.
    InputError when ``folder`` is no folder, or (``recursive``) holds a sub-folder that cannot be listed, naming it: the
    set would lack its images unsaid (no reader of a name could say so)."""
    files, unlisted = list_images_and_unlisted(folder, recursive, extensions)
    for path, why in unlisted:
        if os.path.isdir(path):  # an image name where no file can be read is never a folder (_unlisted_problem)
            raise InputError(path, why)
    return sorted(files + [path for path, _ in unlisted])


def unlisted_note(unlisted: list[tuple[Path, str]]) -> str:
    """For an error of a folder with too few images: ``" (N image name(s) there are no file to read, e.g. PATH:
    reason)"``, of :func:`unlisted_images`' list ``unlisted``; empty when it is."""
    if not unlisted:
        return ""
    path, why = unlisted[0]
    return f" ({len(unlisted)} image name(s) there are no file to read, e.g. {path}: {why})"


UNREADABLE_NAMES_SHOWN = 3
"""How many of the names :func:`refuse_unreadable_names` finds its one line names."""


def refuse_unreadable_names(paths: Iterable[str | os.PathLike | None]) -> None:
    """InputError ``"PATH: reason"`` for the first of ``paths`` (None ones passed over) where no file can be read
    although a name is there (a symbolic link loop or to nothing, a FIFO:
    :func:`~syndof.io.files.special_file_problem`), followed, when there are more, by how many and the next few
    (:data:`UNREADABLE_NAMES_SHOWN` in all, as other counts:
    ``" (3 names where no file can be read, e.g. also B: reason, C: reason)"``), so that one run names what to
    mend, not one name per run; nothing when there is none. For a set read whole that refuses such a name before any
    work (an ``evaluate`` benchmark, a listed split), now that :func:`index_by_stem` keeps the name."""
    named = dict.fromkeys(str(path) for path in paths if path is not None)  # a name given twice counts once
    found = [(path, problem) for path in named if (problem := special_file_problem(Path(path))) is not None]
    if not found:
        return
    (first, problem), more = found[0], found[1:UNREADABLE_NAMES_SHOWN]
    if more:
        listed = ", ".join(f"{path}: {why}" for path, why in more)
        problem += f" ({len(found)} names where no file can be read, e.g. also {listed})"
    raise InputError(first, problem)


def index_by_stem(folder: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                  case_sensitive: bool = False) -> dict[str, Path]:
    """``{stem: path}`` of the entries directly in ``folder`` whose extension (case-insensitive) is in
    ``extensions`` (:func:`image_entries`): the files, and the names where no file can be read (a symbolic link loop
    or to nothing, a FIFO), kept so that reading one names it (:func:`~syndof.io.files.check_nonempty_file`) and each
    caller refuses or skips it by its own rule; until 6 Dec 2026 such a name was left out, so a pairing called its
    partner "unmatched" or scored fewer files unsaid. Hidden names (:func:`~syndof.io.files.is_hidden`) and folders left
    out.

    Keys are lower-case unless ``case_sensitive``. Two entries with the same key raise a "duplicate stem"
    :class:`~syndof.io.files.InputError`, as does a missing folder — pairing datasets by stem never guesses.
    """
    folder = Path(folder)
    index: dict[str, Path] = {}
    for path in image_entries(folder, extensions=extensions):
        key = path.stem if case_sensitive else path.stem.lower()
        if key in index:
            raise InputError(path, f"duplicate stem: {index[key].name} and {path.name} in {folder}")
        index[key] = path
    return index
