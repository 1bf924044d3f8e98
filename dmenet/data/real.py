"""Unlabelled real photos (the adaptation domain): every image file under a folder, searched recursively."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syndof import io


def real_photo_entries(root: str | Path) -> list[Path]:
    """The image names under the folder ``root`` that :class:`RealDataset` draws from, sorted by path
    (:func:`syndof.io.image_entries`, recursive): also what ``dmenet.train``'s held-out check of ``--real`` looks
    at, so that the two cannot disagree. InputError when ``root`` is no folder."""
    return io.image_entries(root, recursive=True)


class RealDataset:
    """All image names (by extension, case-insensitive) under ``root``, sorted by path, as every recursive listing
    gives them (:func:`syndof.io.image_entries`, the listing of ``calibrate bn``'s real domain too): hidden names and
    those under a hidden folder left out; a name where no file can be read (a symbolic link loop or to nothing, a
    FIFO) kept, so that :meth:`load` names it and the stream skips it with its line, as an undecodable photo (it was
    left out unsaid, and hidden files such as ``._x.jpg`` were drawn; review R6, 6 Dec 2026).

    Raises:
        InputError: ``root`` is not a folder or holds no image.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise io.InputError(self.root, "unlabelled real-photo folder not found")
        self.paths = real_photo_entries(self.root)
        if not self.paths:
            kinds = ", ".join(io.IMAGE_EXTENSIONS)
            raise io.InputError(self.root, f"no images found (searched recursively for {kinds})")

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self, index: int) -> str:
        """The image path of sample ``index`` (for messages)."""
        return str(self.paths[index])

    def load(self, index: int) -> dict[str, Any]:
        """Sample dict: ``image`` (H, W, 3) float32 RGB [0, 1], ``path``. Raises InputError when unreadable."""
        return {"image": io.read_image(self.paths[index]), "path": str(self.paths[index])}
