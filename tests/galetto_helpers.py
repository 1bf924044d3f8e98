"""Tiny inputs the Galetto & Deng tool tests share: SYNDOF-like validation renders (also named ``<index>_<id>`` with
their source photos and meta files), a random classifier file and a BSDS500-like photo folder with its patch-builder
call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dmenet.galetto import build_patches
from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
from dmenet.galetto.train import save_classifier
from syndof import io as sio


def write_val_renders(root: Path) -> Path:
    """Two 48×64 SYNDOF-like renders under ``root`` (image/ + σ maps of 0 and 2 px in blur_map/)."""
    rng = np.random.default_rng(1)
    for i in range(2):
        sio.write_image(root / "image" / f"r{i}.png", rng.random((48, 64, 3)))
        sio.write_sigma_map(root / "blur_map" / f"r{i}.png", np.full((48, 64), 2.0 * i, np.float32))
    return root


def write_source_renders(root: Path, photos: Path, count: int = 2, size: tuple[int, int] = (48, 64)) -> Path:
    """``count`` SYNDOF-like renders ``00000<i>_src<i>`` under ``root`` (image/, blur_map/ with σ 0 px on the left
    half and 3 px on the right, meta/ naming the source) and their sharp sources ``photos/src<i>.png`` (random
    texture; the render is the source, blurred only in name: enough for the checks to run)."""
    rng = np.random.default_rng(4)
    h, w = size
    sigma = np.where(np.arange(w) < w // 2, 0.0, 3.0)[None].repeat(h, 0).astype(np.float32)
    for i in range(count):
        stem, source = f"00000{i}_src{i}", rng.random((h, w, 3))
        sio.write_image(root / "image" / f"{stem}.png", source)
        sio.write_sigma_map(root / "blur_map" / f"{stem}.png", sigma)
        (root / "meta").mkdir(parents=True, exist_ok=True)
        (root / "meta" / f"{stem}.json").write_text(json.dumps({"source_name": f"src{i}"}))
        sio.write_image(photos / f"src{i}.png", source)
    return root


def write_tiny_classifier(folder: Path) -> Path:
    """A random tiny classifier ``folder/tiny.safetensors`` (+ .json), seed 0; its weights path."""
    torch.manual_seed(0)
    save_classifier(folder / "tiny", BlurClassifier(ClassifierConfig(width=0.25, head_channels=16, blocks=2)))
    return folder / "tiny.safetensors"


# Fixtures ``val_folder`` and ``model_file`` of the compare / select tests: a test module imports the functions
# (``from galetto_helpers import model_file_fixture, val_folder_fixture``) and pytest finds the fixtures there, under
# their ``name`` (the functions are named apart so that a test's parameter does not shadow the import).
@pytest.fixture(name="val_folder")
def val_folder_fixture(tmp_path: Path) -> Path:
    """:func:`write_val_renders` under ``tmp_path/val``."""
    return write_val_renders(tmp_path / "val")


@pytest.fixture(name="model_file")
def model_file_fixture(tmp_path: Path) -> Path:
    """:func:`write_tiny_classifier` in ``tmp_path``: the weights path."""
    return write_tiny_classifier(tmp_path)


def write_bsds_like(root: Path) -> Path:
    """A BSDS500-like folder: 3 + 1 train/val photos and 2 test photos, 160×120 random texture (sharp everywhere)."""
    rng = np.random.default_rng(0)
    for part, n in (("train", 3), ("val", 1), ("test", 2)):
        for i in range(n):
            sio.write_image(root / part / f"{part}{i}.png", rng.random((120, 160, 3)))
    return root


def build(photos: Path, out: Path, *extra: str) -> int:
    """``build_patches.main`` on ``photos`` with small settings (stride 64, 40 test windows, a quarter for val)."""
    return build_patches.main(["--photos", str(photos), "--out", str(out), "--stride", "64", "--test-count", "40",
                               "--val-fraction", "0.25", *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    """The one ``error:`` line a command printed (warnings aside), with no traceback."""
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]
