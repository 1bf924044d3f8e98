"""A SYNDOF folder shown at another scale: each image and its σ map resized by ``--scale`` (area averaging), σ in the
new px (``units.rescale_sigma``). Writes ``image/`` and ``blur_map/`` (what ``dmenet.evaluate --benchmark syndof``
reads) and a ``dataset.json`` that says where the folder came from. Used by rule 21s (experiments/RULE_21S.md).

    python experiments/scaled_syndof.py runs/gsyn_val16 --scale 0.5 --out runs/gsyn_val16_x0.5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syndof import resize, units  # noqa: E402


def scale_folder(src: Path, out: Path, scale: float) -> int:
    """Write the scaled copy of ``src`` into ``out`` (which must not exist); returns the number of samples."""
    if out.exists():
        raise SystemExit(f"error: {out} exists; choose a new --out")
    images = sorted((src / "image").glob("*.png"))
    if not images:
        raise SystemExit(f"error: {src / 'image'}: no PNG images")
    (out / "image").mkdir(parents=True)
    (out / "blur_map").mkdir()
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        raw = cv2.imread(str(src / "blur_map" / path.name), cv2.IMREAD_UNCHANGED)
        if image is None or raw is None:
            raise SystemExit(f"error: {path.name}: image or blur_map unreadable")
        size = resize.scaled_size(image.shape, scale)
        sigma = cv2.resize(units.syndof_to_sigma(raw), size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / "image" / path.name), cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        cv2.imwrite(str(out / "blur_map" / path.name), units.sigma_to_syndof(units.rescale_sigma(sigma, scale)))
    meta = json.loads((src / "dataset.json").read_text())
    meta["scaled_from"] = {"folder": str(src), "scale": scale, "interpolation": "INTER_AREA (image and σ map)"}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return len(images)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path)
    p.add_argument("--scale", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if not args.scale > 0:
        raise SystemExit("error: --scale must be > 0")
    n = scale_folder(args.src, args.out, args.scale)
    print(f"{n} samples at ×{args.scale:g} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
