"""The project demo (``make demo``): synthesize a few samples, estimate σ maps with the shipped checkpoint, report.

Usage::

    python -m dmenet.demo --out demo_out [--count 4] [--checkpoint PATH]

Steps, all on built-in data (no download, no GPU):

1. :func:`syndof.demo.run_synthesis_demo` generates ``count`` SYNDOF samples into ``OUT/syndof`` and writes
   ``OUT/contact_sheet.png``.
2. The default checkpoint (``checkpoints/dmenet_lite.safetensors``, or ``--checkpoint``) estimates σ for the
   generated images — where the ground truth is known, the σ MAE (px) is reported — and for scikit-image's bundled
   photos.
3. ``OUT/report.png`` (rows: image | predicted σ | ground-truth σ or blur probability, σ colour range 0 … σ_max) and
   ``OUT/report.md`` summarise it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from syndof import io as sio
from syndof import units
from syndof.viz import colorize, contact_sheet

log = logging.getLogger("dmenet.demo")

BUILTIN_PHOTOS = ("astronaut", "coffee", "chelsea")


def _builtin_photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)().astype(np.float32) / 255.0


def run_demo(out_dir: str | Path, count: int = 4, checkpoint: str | Path | None = None) -> Path:
    """Run the whole demo into ``out_dir``; returns the path of ``report.md``."""
    from dmenet.inference import estimate, load_model
    from syndof.demo import run_synthesis_demo

    out_dir = Path(out_dir)
    sheet = run_synthesis_demo(out_dir, count=count, progress=False)
    model = load_model(checkpoint)
    max_coc = model.config.max_coc
    vmax = units.max_sigma(max_coc)
    rows, lines = [], ["# Demo report", "", f"Synthesis contact sheet: `{sheet.name}`", "",
                       "| input | σ MAE vs ground truth (px) | mean predicted σ (px) | mean blur probability |",
                       "|---|---|---|---|"]
    data_dir = out_dir / "syndof"
    for line in (data_dir / "manifest.jsonl").read_text().splitlines()[:count]:
        stem = json.loads(line)["stem"]
        image = sio.read_image(data_dir / "image" / f"{stem}.png")
        gt = sio.read_sigma_map(data_dir / "blur_map" / f"{stem}.png")
        est = estimate(image, model)
        sigma, prob = est.sigma, est.blur_probability
        sio.write_sigma_map(out_dir / "predictions" / f"{stem}_sigma.png", sigma)
        mae = float(np.abs(sigma - gt).mean())
        rows.append([image, colorize(sigma, vmax), colorize(gt, vmax)])
        lines.append(f"| syndof/{stem} | {mae:.3f} | {sigma.mean():.3f} | {prob.mean():.3f} |")
    for name in BUILTIN_PHOTOS:
        image = _builtin_photo(name)
        est = estimate(image, model)
        sigma, prob = est.sigma, est.blur_probability
        sio.write_sigma_map(out_dir / "predictions" / f"{name}_sigma.png", sigma)
        rows.append([image, colorize(sigma, vmax), prob])
        lines.append(f"| skimage.data.{name} | (no ground truth) | {sigma.mean():.3f} | {prob.mean():.3f} |")
    sio.write_image(out_dir / "report.png", contact_sheet(rows, tile=192))
    init = getattr(model, "init_info", {})
    cfg = model.config
    lines += ["", "`report.png`: image | predicted σ | ground-truth σ (synthetic rows) or blur probability (photos);",
              f"σ colour range 0 … {vmax:g} px (inferno).", "",
              f"Checkpoint: `{checkpoint or 'checkpoints/dmenet_lite.safetensors'}`; encoder {cfg.encoder}, init "
              f"`{init.get('init_name') or init.get('init') or 'none'}` (input {init.get('input_convention')}); "
              "recipe:", "", *(f"- {line}" for line in str(model.recipe).split("\n"))]
    report = out_dir / "report.md"
    sio.write_text_atomic(report, "\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dmenet.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="demo_out")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--checkpoint", default=None, help="model file (default: the shipped lite checkpoint)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    report = run_demo(args.out, args.count, args.checkpoint)
    print(report.read_text())
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
