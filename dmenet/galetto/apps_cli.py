"""Command line of the σ-map applications (:mod:`dmenet.galetto.apps`)::

    python -m dmenet.galetto.apps_cli enhance IMAGE --out OUT.png [--method galetto] [--lam-max 2]
    python -m dmenet.galetto.apps_cli magnify IMAGE --out OUT.png [--mode sdof | --mode scale --k 2]
    python -m dmenet.galetto.apps_cli fuse FRAME FRAME [...] | FOLDER --out OUT.png [--soft TAU]

Each writes the result ``OUT`` and a report image ``OUT`` with ``_report.png`` appended to the stem (input(s), σ
maps, result; fusion adds the weights). σ maps come from any registered method (``--method NAME[:key=value,…]``,
default galetto; ``--model`` its file). Bad input (unreadable image, empty folder, a single frame, frames of
different sizes, an unknown option value) exits with status 2 and one line naming the file; every input is read and
checked before anything is computed, and every file is written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dmenet import cli as dcli
from dmenet.methods import MethodChoice, parse_method
from syndof import cli, io


class UsageError(ValueError):
    """Bad input; the message names the file or option."""


def read_frames(paths: list[str]) -> tuple[list[Path], np.ndarray]:
    """Expand one folder or a list of files into (paths, (K, H, W, 3) frames); checks K ≥ 2 and equal sizes."""
    files = [Path(p) for p in paths]
    if len(files) == 1 and files[0].is_dir():
        files = io.list_images(files[0])
        if not files:
            raise UsageError(f"{paths[0]}: folder holds no images")
    if len(files) < 2:
        raise UsageError(f"{files[0] if files else paths}: fusion needs at least 2 frames, got {len(files)}")
    frames = [io.read_image(f) for f in files]
    for f, img in zip(files, frames):
        if img.shape != frames[0].shape:
            raise UsageError(f"{f}: size {img.shape[1]}x{img.shape[0]} differs from {files[0]} "
                             f"({frames[0].shape[1]}x{frames[0].shape[0]}); frames must be aligned")
    return files, np.stack(frames)


def sigma_of(method: MethodChoice, options, images: list[np.ndarray]) -> list[np.ndarray]:
    """σ maps (px) of ``images`` by the chosen registered method with :class:`~dmenet.methods.MethodOptions`."""
    est = method.make(options)
    if not est.gives_sigma:
        raise UsageError(f"--method {method}: gives no σ map in px (choose a method with σ, e.g. galetto, dmenet)")
    return [est.sigma_map(img) for img in images]


def report(tiles: list[tuple[np.ndarray, str]]) -> np.ndarray:
    """Side-by-side uint8 panel: (H, W, 3) images as they are, (H, W) σ maps (px) on one inferno scale, labelled."""
    import cv2

    from syndof.viz import colorize

    maps = [t for t, _ in tiles if t.ndim == 2]
    vmax = max([float(np.percentile(m, 99.5)) for m in maps] + [1.0])
    out = []
    for t, label in tiles:
        rgb = np.ascontiguousarray(colorize(np.clip(t, 0, vmax), vmax) if t.ndim == 2 else io.to_uint8(t))
        cv2.putText(rgb, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        out += [rgb, np.full((rgb.shape[0], 4, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=1)


def report_path(out: Path) -> Path:
    return out.with_name(out.stem + "_report.png")


def options_of(args: argparse.Namespace):
    """The method options of the parsed flags: ``--set k=v`` adds to the options of ``--method NAME:k=v,…`` (a key
    in both is refused when the method is made)."""
    extra = parse_method(f"{args.method.name}:{','.join(args.overrides)}").extra if args.overrides else ()
    return dcli.method_options(args, extra=extra)


def run(args: argparse.Namespace) -> None:
    from dmenet.galetto import apps

    out = Path(args.out)
    if args.command == "fuse":
        files, frames = read_frames(args.inputs)
        sigmas = np.stack(sigma_of(args.method, options_of(args), list(frames)))
        fused, weights = apps.fuse(frames, sigmas, soft=args.soft)
        tiles = [(f, p.name) for f, p in zip(frames, files)] + [(m, f"sigma {p.stem}") for m, p in zip(sigmas, files)]
        tiles += [(fused, "fused")]
        tiles += [(np.repeat(w[..., None], 3, -1), f"weight {p.stem}") for w, p in zip(weights, files)]
        io.write_image(out, fused)
        io.write_image(report_path(out), report(tiles))
        return
    if len(args.inputs) != 1:
        raise UsageError(f"{args.command} takes one image, got {len(args.inputs)}")
    image = io.read_image(args.inputs[0])
    sigma = sigma_of(args.method, options_of(args), [image])[0]
    if args.command == "enhance":
        result = apps.adaptive_enhance(image, sigma, args.lam_max)
        extra = [(np.repeat(apps.enhancement_gain(sigma, args.lam_max)[..., None] / args.lam_max, 3, -1), "gain")]
    elif args.mode == "sdof":
        result, w = apps.sdof(image, sigma)
        extra = [(np.repeat(w[..., None], 3, -1), "W (sharp weight)")]
    else:
        result = apps.magnify_scale(image, sigma, args.k)
        extra = []
    io.write_image(out, result)
    io.write_image(report_path(out), report([(image, "input"), (sigma, "sigma px"), (result, args.command), *extra]))


EXAMPLE = ("galetto-apps enhance ../shared/data/xu100/source/1.bmp --out runs/galetto_apps_example/enhanced.png "
           "--set stride=16")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("dmenet.galetto.apps_cli", __doc__, EXAMPLE)
    ap.add_argument("command", choices=("enhance", "magnify", "fuse"))
    ap.add_argument("inputs", nargs="+", help="image (enhance, magnify) or frames / one folder (fuse)")
    ap.add_argument("--out", required=True, help="result image (.png / .jpg); the report goes beside it")
    dcli.add_method(ap, default="galetto")
    dcli.add_model(ap, help="model file of a learned method (default: the method's shipped one)")
    cli.add_set(ap, help="method options, e.g. --set stride=16 refine=none (as --method galetto:stride=16,…)")
    cli.add_device(ap)
    cli.add_threads(ap)
    ap.add_argument("--lam-max", type=float, default=2.0, help="enhance: largest unsharp-masking gain")
    ap.add_argument("--mode", choices=("sdof", "scale"), default="sdof", help="magnify: NLT blend or true x k")
    ap.add_argument("--k", type=float, default=2.0, help="magnify --mode scale: σ_out = k σ_in (k >= 1)")
    ap.add_argument("--soft", type=float, default=None, help="fuse: soft weights exp(-σ/τ) instead of decisions")
    args = ap.parse_args(argv)
    cli.prepare_process(args)
    if args.k < 1 or (args.soft is not None and args.soft <= 0):
        return cli.fail("--k must be >= 1 and --soft > 0")
    if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        return cli.fail(f"{args.out}: --out must end in .png, .jpg or .jpeg")
    run(args)  # bad input: UsageError / InputError / OSError → exit 2
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
