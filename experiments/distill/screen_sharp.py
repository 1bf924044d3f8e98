"""Screen photos for "sharp everywhere" negatives (all-sharp masks) with a per-tile edge-width estimate.

For a step edge of contrast C blurred by a Gaussian of σ px the steepest gradient is C / (σ √(2π)), so in every
tile with enough contrast σ_tile = C / (max |∇I| √(2π)) (C = 95th − 5th percentile of grey levels). A photo is
kept
when the fraction of contrasted tiles with σ_tile > ``max_sigma`` is at most ``max_fraction``. Flat tiles (sky, walls)
carry no evidence and are ignored.

    python experiments/distill/screen_sharp.py --images ../shared/data/photos/bsds500/train \
        --out experiments/distill/bsds_sharp_train.txt
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np

from syndof import cli
from syndof.io import InputError, list_images, read_image, write_text_atomic


def blurred_tile_fraction(image: np.ndarray, tile: int = 24, min_contrast: float = 0.12,
                          max_sigma: float = 1.5) -> float:
    """Fraction of tiles (side ``tile`` px, contrast ≥ ``min_contrast`` in [0, 1] grey units) whose edge-width σ
    (px) exceeds ``max_sigma``; 0.0 when no tile has contrast. ``image``: (H, W, 3) float32 in [0, 1]."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0  # grey levels per px
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    mag = np.hypot(gx, gy)
    h, w = grey.shape
    counted = blurred = 0
    for y in range(0, h - tile + 1, tile):
        for x in range(0, w - tile + 1, tile):
            g = grey[y:y + tile, x:x + tile]
            lo, hi = np.percentile(g, (5, 95))
            if hi - lo < min_contrast:
                continue
            counted += 1
            sigma = (hi - lo) / (float(mag[y:y + tile, x:x + tile].max()) * math.sqrt(2 * math.pi) + 1e-6)
            blurred += sigma > max_sigma
    return blurred / counted if counted else 0.0


EXAMPLE = ("python experiments/distill/screen_sharp.py --images ../shared/data/photos/bsds500/val "
           "--out runs/distill_screen_example.txt")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.script_parser("experiments/distill/screen_sharp.py", __doc__, EXAMPLE)
    p.add_argument("--images", required=True, help="folder of photos")
    p.add_argument("--out", required=True, help="list of kept stems (refused if it exists)")
    p.add_argument("--max-fraction", type=cli.non_negative_float, default=0.02,
                   help="most blurred-tile fraction kept (default 0.02)")
    p.add_argument("--max-sigma", type=cli.positive_float, default=1.5,
                   help="tile σ (px) counted as blurred (default 1.5)")
    a = p.parse_args(argv)
    if a.max_fraction > 1:  # a fraction of tiles: above 1 every photo passed the screen
        return cli.fail(f"--max-fraction {a.max_fraction:g}: a fraction of the tiles, 0..1")
    if Path(a.out).exists():
        return cli.fail(f"{a.out} exists; a screening list is never rewritten")
    files = list_images(a.images)
    if not files:
        return cli.fail(f"no images in {a.images}")
    kept, scores, skipped = [], [], []
    for f in files:
        try:
            frac = blurred_tile_fraction(read_image(f), max_sigma=a.max_sigma)
        except InputError as e:
            skipped.append(str(e))
            if scores:  # held back until one photo is screened: if none is, the one error line says it all
                print(f"skipped {e}", file=sys.stderr)
            continue
        if not scores:
            print("".join(f"skipped {line}\n" for line in skipped), end="", file=sys.stderr)
        scores.append(frac)
        if frac <= a.max_fraction:
            kept.append(f.stem)
    if not scores:  # every photo failed: a list of nothing would only block the rerun
        more = f"; and {len(skipped) - 2} more" if len(skipped) > 2 else ""
        return cli.fail(f"{a.images}: no photo could be screened ({'; '.join(skipped[:2])}{more}); nothing written")
    head = (f"# sharp-everywhere screen of {a.images}: blurred-tile fraction <= {a.max_fraction} "
            f"(σ_tile > {a.max_sigma} px)\n")
    write_text_atomic(a.out, head + "\n".join(kept) + "\n")
    print(f"kept {len(kept)} of {len(scores)}; median fraction {np.median(scores):.3f}"
          + (f"; {len(skipped)} skipped (unreadable)" if skipped else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
