"""Does a model measure blur in px? σ of the RTF image shown at several scales, brought back to ×1.

A model that measures blur gives the same σ map at every scale once σ is divided by the scale (the factor the
rounded size got, ``resize.applied_scale``: resizing by s scales blur by s); one that guesses blur from content gives
the same raw σ at every scale instead. Prints, per scale, the mean σ (px at ×1), the RTF MAE (DMENet protocol) and
the mean σ in four GT bands.

Second table (``--reblur``): the image blurred as a whole by a Gaussian of σ g px, so its true σ is √(GT² + g²)
(``units.compose_sigma``). A model that ranks blur against the sharpest region of the image barely moves; one
that measures blur follows the composed GT. Prints, per g, the mean σ, the RTF MAE against the composed GT and the
four bands (composed GT → predicted).

Usage::

    python benchmarks/scale_consistency.py [--method dmenet] [--model MODEL] [--flips N] [--rtf ../shared/data/rtf]
        [--scales 0.5 1 2] [--reblur 1 2]

The method comes from the registry (:func:`dmenet.methods.make_method`) and must give σ. Figures in px of σ, not
timings: the machine's load does not change them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dmenet import cli as dcli
from dmenet.eval import rtf
from interleave import parser
from syndof import cli, io, resize, units

BANDS = ((0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0))


def _bands(gt: np.ndarray, target: np.ndarray, sigma: np.ndarray) -> str:
    """Table cells: per band of ``gt`` (px), mean ``target`` → mean predicted ``sigma``."""
    cells = []
    for a, b in BANDS:
        band = (gt >= a) & (gt < b)
        cells.append(f"{target[band].mean():.2f} → {sigma[band].mean():.2f}")
    return " | ".join(cells)


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = parser("scale_consistency", __doc__, "python benchmarks/scale_consistency.py --reblur 1 2")
    dcli.add_method(p)
    dcli.add_model(p)
    dcli.add_flips(p)
    dcli.add_raw_sigma(p)
    cli.add_device(p)
    p.add_argument("--rtf", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rtf"))
    p.add_argument("--scales", type=cli.positive_float, nargs="+", default=[0.5, 1.0, 2.0])
    p.add_argument("--reblur", type=cli.non_negative_float, nargs="*", default=[1.0, 2.0],
                   help="extra Gaussian σ (px) of the second table (none: skip it)")
    cli.add_threads(p, default=1)
    args = p.parse_args(argv)
    cli.apply_threads(args.threads)
    root = Path(args.rtf)
    image = io.read_image(root / "image_01.png")
    gt = rtf.load_rtf_sigma(root / "map_01.mat", rtf.load_conversion_table(root / rtf.TABLE_NAME))
    method = args.method.make(dcli.method_options(args))
    h, w = image.shape[:2]
    print(f"{method.describe()}; GT mean σ {gt.mean():.2f} px")
    print("scale | mean σ (px at ×1) | RTF MAE | " + " | ".join(f"GT [{a},{b}) → pred" for a, b in BANDS))
    for s in args.scales:
        size = (round(w * s), round(h * s))
        x = cv2.resize(image, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        got = resize.applied_scale((h, w), size)  # the factor of the rounded size, not s: what σ scales by
        sigma = units.rescale_sigma(cv2.resize(method.sigma_map(x), (w, h)), 1.0 / got)
        print(f"{s:g} | {sigma.mean():.2f} | {rtf.rtf_errors(sigma, gt)[1]:.4f} | {_bands(gt, gt, sigma)}")
    if args.reblur:
        print("re-blur g (px) | mean σ (px) | RTF MAE vs √(GT² + g²) | "
              + " | ".join(f"GT [{a},{b}): √(GT² + g²) → pred" for a, b in BANDS))
    for g in args.reblur:
        x = cv2.GaussianBlur(image, (0, 0), g, borderType=cv2.BORDER_REFLECT_101) if g > 0 else image
        sigma, target = method.sigma_map(x), units.compose_sigma(gt, g)
        print(f"{g:g} | {sigma.mean():.2f} | {rtf.rtf_errors(sigma, target)[1]:.4f} | {_bands(gt, target, sigma)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
