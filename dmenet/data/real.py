"""Unlabelled real photos (the adaptation domain): every image file under a folder, searched recursively."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syndof import io


class RealDataset:
    """All images (by extension, case-insensitive) under ``root``, sorted by relative path.

    Raises:
        InputError: ``root`` is not a folder or holds no image.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise io.InputError(self.root, "unlabelled real-photo folder not found")
        self.paths = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in io.IMAGE_EXTENSIONS)
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
