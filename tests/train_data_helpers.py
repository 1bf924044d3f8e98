"""Tiny on-disk datasets for the dmenet training tests (SYNDOF, labelled and unlabelled folders in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from syndof import io


def write_syndof(root: Path, count: int = 6, sizes: list[tuple[int, int]] | None = None, seed: int = 0,
                 max_coc: int = 29) -> Path:
    """SYNDOF folder: image/{stem}.png, blur_map/{stem}.png (uint16 round(10σ)), dataset.json."""
    rng = np.random.default_rng(seed)
    sizes = sizes or [(48 + 8 * (i % 4), 80) for i in range(count)]
    for i, (h, w) in enumerate(sizes[:count]):
        image = rng.random((h, w, 3)).astype(np.float32)
        sigma = (rng.random((h, w)) * 7.0).astype(np.float32)
        io.write_image(root / "image" / f"s{i:03d}.png", image)
        io.write_sigma_map(root / "blur_map" / f"s{i:03d}.png", sigma)
    io.write_json_atomic(root / "dataset.json", {"format": "syndof", "max_coc": max_coc})
    return root


def write_labelled(root: Path, count: int = 3, size: tuple[int, int] = (70, 90), seed: int = 1) -> Path:
    """image/L{i}.JPG + gt/l{i}.png (stems differ in case and extension), masks white = blurred."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        io.write_image(root / "image" / f"L{i}.JPG", rng.random((h, w, 3)).astype(np.float32))
        mask = np.zeros((h, w), np.uint8)
        mask[:, : w // 2] = 255
        io.write_image(root / "gt" / f"l{i}.png", mask)
    return root


def write_real(root: Path, count: int = 3, size: tuple[int, int] = (66, 100), seed: int = 2) -> Path:
    """Unlabelled photos in nested folders."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        sub = root / ("a" if i % 2 else "b") / "deeper"
        io.write_image(sub / f"r{i}.jpg", rng.random((*size, 3)).astype(np.float32))
    return root


def write_all(root: Path) -> dict[str, Path]:
    return {"synthetic": write_syndof(root / "syn"), "labelled": write_labelled(root / "lab"),
            "real": write_real(root / "real")}


TINY = Path(__file__).resolve().parents[1] / "experiments" / "tiny.yaml"
"""The tiny training config the train tests run."""


def blur_cli(synthetic: Path, out: Path, *extra: str, config: Path = TINY) -> list[str]:
    """``dmenet.train`` arguments for a blur-stage run of ``config`` on ``synthetic`` into ``out`` (CPU, W&B off),
    then ``extra``."""
    return ["--config", str(config), "--stage", "blur", "--synthetic", str(synthetic), "--out", str(out),
            "--wandb", "disabled", "--device", "cpu", *extra]
