"""The project demo (``make demo``): synthesize a few samples, estimate σ maps with the shipped checkpoint, report.

Usage::

    python -m dmenet.demo --out demo_out [--count 4] [--model PATH] [--flips N] [--max-side N] [--device cpu|cuda]
        [--threads N]

Steps, all on built-in data (no download, no GPU):

1. :func:`syndof.demo.run_synthesis_demo` generates ``count`` SYNDOF samples into ``OUT/syndof`` and writes
   ``OUT/contact_sheet.png``.
2. The default checkpoint (``checkpoints/dmenet_lite.safetensors``, or ``--model``) estimates σ for the
   generated images — where the ground truth is known, the σ MAE (px) is reported — and for scikit-image's bundled
   photos.
3. ``OUT/report.png`` (rows: image | predicted σ | ground-truth σ or blur probability, σ colour range 0 … σ_max) and
   ``OUT/report.md`` summarise it; the σ maps are kept in ``OUT/predictions/<stem>_sigma.png`` (uint16, 3 channels,
   ``round(10·σ)``, as ``predict`` writes them).
4. ``OUT/galetto_coffee_report.png``: the Galetto & Deng classifier's σ map of the coffee photo (skipped when its
   model file is absent).

The demo builds its folder beside ``OUT`` and moves it into place when it is complete
(:func:`syndof.io.staged_folder`). It replaces only a folder it made itself (marked by :data:`MARKER`), so
``make demo`` can run again; any other existing ``OUT`` is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

from dmenet import cli as dcli
from dmenet.methods import MethodOptions, make_method
from syndof import cli
from syndof import io as sio
from syndof.viz import colorize, contact_sheet

log = logging.getLogger("dmenet.demo")

BUILTIN_PHOTOS = ("astronaut", "coffee", "chelsea")
MARKER = ".dmenet-demo"
"""Empty file in every folder the demo writes: the only kind of existing ``--out`` it replaces."""


def _builtin_photo(name: str) -> np.ndarray:
    import skimage.data

    return sio.from_uint8(getattr(skimage.data, name)())


def write_builtin_photos(folder: str | Path) -> list[Path]:
    """The :data:`BUILTIN_PHOTOS` as 8-bit PNG files ``folder/<name>.png`` (the scikit-image arrays as shipped), for
    the tools that read photos from a folder (``evaluate --benchmark sharp``); the paths written."""
    import skimage.data

    paths = [Path(folder) / f"{name}.png" for name in BUILTIN_PHOTOS]
    for name, path in zip(BUILTIN_PHOTOS, paths):
        sio.write_image(path, getattr(skimage.data, name)())  # atomically: never a half-written photo
    return paths


def run_demo(out_dir: str | Path, count: int = 4, checkpoint: str | Path | None = None,
             options: MethodOptions | None = None) -> Path:
    """Run the whole demo into ``out_dir`` with the registered ``dmenet`` method (``checkpoint`` None = the shipped
    model; ``options`` the other method options, e.g. device and flips); returns the path of ``report.md``."""
    from syndof.demo import run_synthesis_demo

    out_dir = Path(out_dir)
    method = make_method("dmenet", dataclasses.replace(options or MethodOptions(), model=checkpoint))
    sheet = run_synthesis_demo(out_dir, count=count, progress=False)

    def estimate(image: np.ndarray):
        """The method's Estimate of ``image`` (H, W, 3) RGB [0, 1]: σ map (H, W) px and blur probability in [0, 1]."""
        return method.estimate(image, sigma=True, probability=True)

    rows, lines = [], ["# Demo report", "", f"Synthesis contact sheet: `{sheet.name}`", "",
                       "| input | σ MAE vs ground truth (px) | mean predicted σ (px) | mean blur probability |",
                       "|---|---|---|---|"]
    data_dir = out_dir / "syndof"
    for line in (data_dir / "manifest.jsonl").read_text().splitlines()[:count]:
        stem = json.loads(line)["stem"]
        image = sio.read_image(data_dir / "image" / f"{stem}.png")
        gt = sio.read_sigma_map(data_dir / "blur_map" / f"{stem}.png")
        est = estimate(image)
        sigma, prob, vmax = est.sigma, est.blur_probability, est.sigma_max
        sio.write_sigma_map(out_dir / "predictions" / f"{stem}_sigma.png", sigma)
        mae = float(np.abs(sigma - gt).mean())
        rows.append([image, colorize(sigma, vmax), colorize(gt, vmax)])
        lines.append(f"| syndof/{stem} | {mae:.3f} | {sigma.mean():.3f} | {prob.mean():.3f} |")
    for name in BUILTIN_PHOTOS:
        image = _builtin_photo(name)
        est = estimate(image)
        sigma, prob, vmax = est.sigma, est.blur_probability, est.sigma_max
        sio.write_sigma_map(out_dir / "predictions" / f"{name}_sigma.png", sigma)
        rows.append([image, colorize(sigma, vmax), prob])
        lines.append(f"| skimage.data.{name} | (no ground truth) | {sigma.mean():.3f} | {prob.mean():.3f} |")
    sio.write_image(out_dir / "report.png", contact_sheet(rows, tile=192))
    lines += ["", "`report.png`: image | predicted σ | ground-truth σ (synthetic rows) or blur probability (photos);",
              f"σ colour range 0 … {vmax:g} px (inferno).", "", f"Method: {method.describe()}."]
    lines += galetto_demo(out_dir)
    lines += distill_demo()
    report = out_dir / "report.md"
    sio.write_text_atomic(report, "\n".join(lines) + "\n")
    return report


def galetto_demo(out_dir: Path) -> list[str]:
    """Galetto & Deng's σ map (shipped classifier, stride 16) and its adaptive enhancement on one built-in photo:
    ``OUT/galetto_coffee_report.png``. Skipped (one line) when the classifier file is absent."""
    from dmenet.galetto.method import DEFAULT_MODEL

    if not DEFAULT_MODEL.with_suffix(".safetensors").is_file():
        return ["", f"(galetto skipped: {DEFAULT_MODEL}.safetensors not found)"]
    from dmenet.galetto.apps import adaptive_enhance
    from dmenet.galetto.apps_cli import report
    from dmenet.methods import MethodOptions, make_method

    image = _builtin_photo("coffee")
    sigma = make_method("galetto", MethodOptions(extra=(("stride", 16),))).sigma_map(image)
    tiles = [(image, "input"), (sigma, "galetto sigma px"), (adaptive_enhance(image, sigma), "enhanced")]
    sio.write_image(out_dir / "galetto_coffee_report.png", report(tiles))
    return ["", f"`galetto_coffee_report.png`: Galetto & Deng patch-classifier σ map (stride 16, mean "
                f"{sigma.mean():.2f} px) and the σ-adaptive unsharp masking of skimage.data.coffee."]


def distill_demo() -> list[str]:
    """Mean blur probability of the shipped Distill-DBDGAN student (a fast detector) on the built-in photos, beside
    DMENet's in the table above. The photos are mostly sharp, though chelsea's background and parts of astronaut's
    are naturally defocused (BENCHMARKS.md, "Distill-DBDGAN"). Skipped (one line) when the student is absent."""
    from dmenet.distill.method import DEFAULT_STUDENT

    if not Path(DEFAULT_STUDENT).with_suffix(".safetensors").is_file():
        return ["", f"(distill_student skipped: {DEFAULT_STUDENT} not found)"]
    student = make_method("distill_student", MethodOptions())
    means = [f"{name} {student.blur_map(_builtin_photo(name)).mean():.3f}" for name in BUILTIN_PHOTOS]
    return ["", f"Distill-DBDGAN student (`distill_student`) mean blur probability: {', '.join(means)}."]


EXAMPLE = "dmenet-demo --out runs/demo_example --count 1 --flips 1 --max-side 160"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    p = cli.parser("dmenet.demo", __doc__, EXAMPLE)
    p.add_argument("--out", default="demo_out")
    cli.add_sample_count(p, 4)
    dcli.add_model(p)
    dcli.add_inference(p)
    cli.add_device(p)
    cli.add_threads(p)
    args = p.parse_args(argv)
    cli.prepare_process(args)
    out = Path(args.out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        return cli.fail(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not made_by_demo(out):
        return cli.fail(f"--out {out}: exists and was not written by the demo; choose another --out (the demo "
                        "replaces only its own folders)")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with sio.staged_folder(out, replace=True) as stage:  # a failure or a signal leaves --out as it was
        (stage / MARKER).touch()
        report = out / run_demo(stage, args.count, args.model, dcli.method_options(args)).name
    print(report.read_text())
    print(f"report: {report}")
    return 0


LEGACY_FILES = ("report.md", "report.png", "contact_sheet.png", "syndof/manifest.jsonl")
"""Files every demo folder has held; a folder with all of them and no :data:`MARKER` is a demo folder written before
the marker existed (5 Dec 2026)."""


def made_by_demo(folder: Path) -> bool:
    """``folder`` was written by this demo: it has :data:`MARKER`, or all of :data:`LEGACY_FILES`."""
    return (folder / MARKER).is_file() or all((folder / name).is_file() for name in LEGACY_FILES)


if __name__ == "__main__":
    sys.exit(main())
