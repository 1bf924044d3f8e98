"""Synthesis demo: generate a few SYNDOF samples from the built-in data and draw a contact sheet.

Usage::

    python -m syndof.demo --out DIR [--count 6] [--max-side 320] [--seed 0] [--threads N]

Writes the samples to ``DIR/syndof/`` (the usual SYNDOF layout, see :mod:`syndof.generate`) and
``DIR/contact_sheet.png``: one row per sample — defocused image | σ map (inferno, 0 … σ_max) | layered depth.
No download and no GPU needed.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from syndof import cli
from syndof import io as sio
from syndof import units
from syndof.generate import generate
from syndof.viz import colorize, contact_sheet

DEMO_MAX_SIZE = 320
"""Long side (px) of the demo's sources: keeps the CPU demo to about a minute."""


def run_synthesis_demo(out_dir: str | Path, count: int = 6, seed: int = 0, max_size: int | None = DEMO_MAX_SIZE,
                       progress: bool = True) -> Path:
    """Generate ``count`` samples from the built-in data into ``out_dir/syndof`` and write the contact sheet.

    Returns:
        Path of ``out_dir/contact_sheet.png``.
    """
    out_dir = Path(out_dir)
    data_dir = out_dir / "syndof"
    summary = generate(data_dir, count=count, seed=seed, max_size=max_size, progress=progress)
    if summary.written + summary.done == 0:
        raise RuntimeError(f"the demo generated no sample ({summary.line()})")
    max_coc = json.loads((data_dir / "dataset.json").read_text()).get("max_coc", units.DEFAULT_MAX_COC)
    rows = []
    for line in (data_dir / "manifest.jsonl").read_text().splitlines()[:count]:
        meta = json.loads(line)
        stem = meta["stem"]
        image = sio.read_image(data_dir / "image" / f"{stem}.png")
        sigma = sio.read_sigma_map(data_dir / "blur_map" / f"{stem}.png")
        depth = sio.read_image(data_dir / "depth" / f"{stem}_depth.png")
        rows.append([image, colorize(sigma, vmax=units.max_sigma(max_coc)), depth])
    sheet_path = out_dir / "contact_sheet.png"
    sio.write_image(sheet_path, contact_sheet(rows, tile=192))
    return sheet_path


EXAMPLE = "syndof-demo --out runs/syndof_demo_example --count 1 --max-side 96"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.parser("syndof.demo", __doc__, EXAMPLE)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--count", type=cli.positive_int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-side", type=int, default=DEMO_MAX_SIZE, metavar="N",
                   help=f"downscale sources to this long side (0: off; default {DEMO_MAX_SIZE})")
    cli.hidden_alias(p, "--max-size", "--max-side", "max_side", type=int)
    cli.add_threads(p)
    args = p.parse_args(argv)
    cli.apply_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    sheet = run_synthesis_demo(args.out, args.count, args.seed, args.max_side or None)
    print(f"contact sheet: {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
