"""Predict defocus maps for image files or folders.

``python -m dmenet.predict INPUT... --out DIR [--checkpoint PATH] [--method dmenet|hifst|zhuo_sim|lbp|laplacian]
[--format png|npy|both] [--device cpu|cuda] [--recursive] [--max-side N] [--tile-size N] [--tile-overlap N]``

Outputs per image ``<stem>`` (folder inputs keep their sub-folder layout under DIR with ``--recursive``):

* ``<stem>_sigma.png`` — uint16, 3 identical channels, ``round(10·σ)`` (SYNDOF encoding; read with
  ``syndof.io.read_sigma_map``) — with ``--format png|both`` (default png);
* ``<stem>_sigma.npy`` — float32 σ in px — with ``--format npy|both``;
* ``<stem>_blur.png`` — 8-bit blur probability (network S, 1 = blurred → 255);
* ``<stem>_preview.png`` — the input and the colour-mapped σ (0 … σ_max, inferno) side by side.

Classical peers have no σ: they write ``<stem>_blur.png`` (their [0, 1] blur map; plus ``<stem>_blur.npy`` with
``--format npy|both``) and ``<stem>_preview.png`` only. Images are read with ``syndof.io.read_image`` (EXIF
orientation applied, gray/RGBA/16-bit handled), so maps are oriented like the displayed image. A file that cannot be
read or processed is reported on one line (``skipped PATH: reason``) and the others go on; the exit status is 1 only
when every input failed (2 for usage errors or a model that cannot be loaded). Every file is written atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dmenet.methods import method_names
from syndof import io as sio
from syndof import viz

PREVIEW_MAX_SIDE = 1024


@dataclass
class Maps:
    """What a method produced for one image: σ px (DMENet only) and a [0, 1] blur map, both (H, W) float32."""

    blur: np.ndarray
    sigma: np.ndarray | None = None
    sigma_max: float | None = None


@dataclass
class Job:
    """One input file and the output prefix (DIR/rel/stem, without the ``_sigma.png`` suffixes)."""

    source: Path
    prefix: Path


# ------------------------------------------------------------------------------------------------------------ inputs
def _files_in(folder: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return sio.list_images(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in sio.IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def collect_jobs(inputs: Sequence[str | Path], out_dir: Path, recursive: bool = False) -> tuple[list[Job], list[str]]:
    """Expand files and folders into jobs; returns (jobs, problems) where problems are one-line messages.

    Output prefixes are ``out_dir/<relative folder>/<stem>``; two inputs that would share one prefix (``a.jpg`` and
    ``a.png``) keep their extension in the name (``a_jpg``, ``a_png``).
    """
    pairs: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = _files_in(path, recursive)
            if not files:
                problems.append(f"skipped {path}: no image files ({', '.join(sio.IMAGE_EXTENSIONS)})")
            pairs.extend((f, f.relative_to(path).with_suffix("")) for f in files)
        elif path.is_file():
            pairs.append((path, Path(path.stem)))
        else:
            problems.append(f"skipped {path}: no such file or folder")
    unique, seen = [], set()
    for source, rel in pairs:  # the same file named twice (directly and through its folder) runs once
        if source.resolve() not in seen:
            seen.add(source.resolve())
            unique.append((source, rel))
    counts: dict[Path, int] = {}
    for _, rel in unique:
        counts[rel] = counts.get(rel, 0) + 1
    jobs = []
    for source, rel in unique:
        if counts[rel] > 1:
            rel = rel.with_name(f"{rel.name}_{source.suffix.lstrip('.').lower()}")
        jobs.append(Job(source=source, prefix=out_dir / rel))
    return jobs, problems


# ----------------------------------------------------------------------------------------------------------- methods
def make_method(method: str, checkpoint: str | None = None, device: str = "cpu", max_side: int | None = None,
                tile_options: dict | None = None, flips: int | None = None,
                raw_sigma: bool = False) -> Callable[[np.ndarray], Maps]:
    """A function image (H, W, 3) float32 RGB [0, 1] → :class:`Maps` for the registered ``method``
    (:func:`dmenet.methods.make_method`); ``tile_options`` are ``tile_size`` / ``tile_overlap``, ``flips`` overrides
    the model's test flips, ``raw_sigma`` ignores its σ curve."""
    from dmenet.methods import MethodOptions
    from dmenet.methods import make_method as make_estimator

    tiles = tile_options or {}
    estimator = make_estimator(method, MethodOptions(model=checkpoint, device=device, flips=flips,
                                                     raw_sigma=raw_sigma, max_side=max_side,
                                                     tile_size=tiles.get("tile_size"),
                                                     tile_overlap=tiles.get("tile_overlap")))

    def run(image: np.ndarray) -> Maps:
        res = estimator.estimate(image, sigma=estimator.gives_sigma, probability=True)
        return Maps(blur=res.blur_probability, sigma=res.sigma, sigma_max=res.sigma_max)

    return run


# ----------------------------------------------------------------------------------------------------------- outputs
def _preview(image: np.ndarray, panel: np.ndarray) -> np.ndarray:
    """Input and colour-mapped panel side by side (uint8 RGB, 8 px white gap), longer panel side ≤ 1024 px."""
    import cv2

    left = viz.as_rgb_uint8(image)
    h, w = left.shape[:2]
    scale = min(1.0, PREVIEW_MAX_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        left = cv2.resize(left, size, interpolation=cv2.INTER_AREA)
        panel = cv2.resize(panel, size, interpolation=cv2.INTER_AREA)
    gap = np.full((left.shape[0], 8, 3), 255, dtype=np.uint8)
    return np.concatenate([left, gap, panel], axis=1)


def write_outputs(prefix: Path, image: np.ndarray, maps: Maps, fmt: str) -> list[Path]:
    """Write the files for one image (see module docstring); returns the paths written."""
    written: list[Path] = []

    def out(suffix: str) -> Path:
        path = prefix.with_name(prefix.name + suffix)
        written.append(path)
        return path

    if maps.sigma is not None:
        if fmt in ("png", "both"):
            sio.write_sigma_map(out("_sigma.png"), maps.sigma)
        if fmt in ("npy", "both"):
            sio.write_npy(out("_sigma.npy"), maps.sigma.astype(np.float32))
        panel = viz.colorize(maps.sigma, vmax=maps.sigma_max or float(maps.sigma.max()) or 1.0)
    else:
        if fmt in ("npy", "both"):
            sio.write_npy(out("_blur.npy"), maps.blur.astype(np.float32))
        panel = viz.colorize(maps.blur, vmax=1.0)
    sio.write_image(out("_blur.png"), sio.to_uint8(maps.blur))
    sio.write_image(out("_preview.png"), _preview(image, panel))
    return written


# --------------------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dmenet.predict", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("--checkpoint", default=None,
                   help="DMENet model file (.safetensors + .json); default checkpoints/dmenet_lite.safetensors")
    p.add_argument("--method", choices=method_names(), default="dmenet")
    p.add_argument("--format", choices=("png", "npy", "both"), default="png", dest="fmt",
                   help="σ map format (png: uint16 round(10·σ); npy: float32 px)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders of folder inputs")
    p.add_argument("--max-side", type=int, default=None, help="downsize larger inputs to this long side first")
    p.add_argument("--tile-size", type=int, default=None, help="tile side in px for large images (default 512)")
    p.add_argument("--tile-overlap", type=int, default=None, help="tile overlap in px (default 64)")
    p.add_argument("--flips", type=int, default=None,
                   help="DMENet: average over 1, 2, 4 or 8 mirrored/rotated copies (default: the model's "
                   "recipe)")
    p.add_argument("--raw-sigma", action="store_true",
                   help="DMENet: ignore the recipe's σ curve (σ = B's output × σ_max)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    jobs, problems = collect_jobs(args.inputs, args.out, args.recursive)
    for line in problems:
        print(line, file=sys.stderr)
    if not jobs:
        print("error: no input images found", file=sys.stderr)
        return 1
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"error: --device {args.device} requested but CUDA is not available", file=sys.stderr)
            return 2
    tile_options = {k: v for k, v in (("tile_size", args.tile_size), ("tile_overlap", args.tile_overlap))
                    if v is not None}
    try:
        run = make_method(args.method, args.checkpoint, args.device, args.max_side, tile_options, args.flips,
                          args.raw_sigma)
    except (FileNotFoundError, ValueError) as exc:  # ModelFileError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.method != "dmenet":
        print(f"{args.method} is a classical peer: it gives a relative blur map, not σ — writing _blur.png"
              f"{' and _blur.npy' if args.fmt != 'png' else ''} and _preview.png only")
    done = 0
    for job in jobs:
        start = time.perf_counter()
        try:
            image = sio.read_image(job.source)
            maps = run(image)
            write_outputs(job.prefix, image, maps, args.fmt)
        except Exception as exc:  # one bad file must not stop the batch; reported with its reason
            reason = str(exc) if isinstance(exc, sio.InputError) else f"{exc.__class__.__name__}: {exc}"
            reason = reason.removeprefix(f"{job.source}: ")
            print(f"skipped {job.source}: {reason}", file=sys.stderr)
            continue
        done += 1
        print(f"{job.source} -> {job.prefix}_* ({time.perf_counter() - start:.2f} s)")
    print(f"{done}/{len(jobs)} images written to {args.out}")
    return 0 if done > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
