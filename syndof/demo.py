"""Synthesis demo: generate a few SYNDOF samples from the built-in data and draw a contact sheet.

Usage::

    python -m syndof.demo --out DIR [--count 6] [--max-side 320] [--seed 0] [--threads N]

Writes the samples to ``DIR/syndof/`` (the usual SYNDOF layout, see :mod:`syndof.generate`) and
``DIR/contact_sheet.png``: one row per sample — defocused image | σ map (inferno, 0 … σ_max) | layered depth.
No download and no GPU needed. ``DIR/.syndof-demo.json`` records the SHA-256 of the sheets the demo wrote: an
existing contact_sheet.png that the demo did not write is refused (exit 2) before any work, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

from syndof import cli
from syndof import io as sio
from syndof import units
from syndof.generate import generate
from syndof.recipe import read_max_coc
from syndof.viz import colorize, contact_sheet

DEMO_MAX_SIZE = 320
"""Long side (px) of the demo's sources: keeps the CPU demo to about a minute."""
SHEET_NAME = "contact_sheet.png"
MARKER = ".syndof-demo.json"
"""``{"contact_sheet_sha256": [...]}``: digests of the sheets this demo wrote into the folder (the last few, the
newest last); recorded before the sheet is written, so a run killed in between leaves a sheet still recognised."""
KEEP_DIGESTS = 8


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorded_digests(out_dir: Path) -> list[str]:
    try:
        digests = json.loads((out_dir / MARKER).read_text()).get("contact_sheet_sha256", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [d for d in digests if isinstance(d, str)] if isinstance(digests, list) else []


def sheet_made_by_demo(out_dir: str | Path) -> bool:
    """``out_dir/contact_sheet.png`` was written by this demo: its digest is in :data:`MARKER`, or (a demo folder
    from before the marker) the folder holds only the sheet and ``syndof/``, a dataset of syndof.generate."""
    out_dir = Path(out_dir)
    sheet = out_dir / SHEET_NAME
    if not sheet.is_file() or sheet.is_symlink():
        return False
    if _sha256(sheet) in _recorded_digests(out_dir):
        return True
    if {p.name for p in out_dir.iterdir()} - {MARKER} != {SHEET_NAME, "syndof"}:
        return False
    try:
        ds = json.loads((out_dir / "syndof" / "dataset.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(ds, dict) and ds.get("format") == "syndof" and ds.get("generator") == "syndof.generate"


def check_sheet_path(out_dir: str | Path) -> None:
    """Refuse (ValueError naming it) an existing ``out_dir/contact_sheet.png`` that the demo did not write."""
    sheet = Path(out_dir) / SHEET_NAME
    if (sheet.exists() or sheet.is_symlink()) and not sheet_made_by_demo(out_dir):
        raise ValueError(f"{sheet}: exists and was not written by the demo; move it or choose another --out")


def run_synthesis_demo(out_dir: str | Path, count: int = 6, seed: int = 0, max_size: int | None = DEMO_MAX_SIZE,
                       progress: bool = True, threads: int | None = 1) -> Path:
    """Generate ``count`` samples from the built-in data into ``out_dir/syndof`` and write the contact sheet.
    ``threads``: torch CPU threads while rendering (1, the fast setting for the layered renderer; None: leave
    torch's setting).

    Returns:
        Path of ``out_dir/contact_sheet.png``.
    """
    out_dir = Path(out_dir)
    data_dir = out_dir / "syndof"
    check_sheet_path(out_dir)  # before the work: a sheet of someone else's is never replaced
    summary = generate(data_dir, count=count, seed=seed, max_size=max_size, progress=progress, threads=threads)
    if summary.written + summary.done == 0:
        raise RuntimeError(f"the demo generated no sample ({summary.line()})")
    max_coc = read_max_coc(data_dir)  # the one reader of dataset.json's max_coc (training's and evaluation's)
    rows = []
    for line in (data_dir / "manifest.jsonl").read_text().splitlines()[:count]:
        meta = json.loads(line)
        stem = meta["stem"]
        image = sio.read_image(data_dir / "image" / f"{stem}.png")
        sigma = sio.read_sigma_map(data_dir / "blur_map" / f"{stem}.png")
        depth = sio.read_image(data_dir / "depth" / f"{stem}_depth.png")
        rows.append([image, colorize(sigma, vmax=units.max_sigma(max_coc)), depth])
    sheet_path = out_dir / SHEET_NAME
    check_sheet_path(out_dir)  # again: a file that appeared while the samples were generated
    data = sio.encode_image(sheet_path, contact_sheet(rows, tile=192))
    digest = hashlib.sha256(data).hexdigest()
    known = [d for d in _recorded_digests(out_dir) if d != digest]
    if sheet_path.is_file():  # the sheet there now (the demo's, checked above) stays recognised until replaced
        current = _sha256(sheet_path)
        known = [d for d in known if d != current] + ([current] if current != digest else [])
    sio.write_json_atomic(out_dir / MARKER, {"contact_sheet_sha256": (known + [digest])[-KEEP_DIGESTS:]})
    sio.write_bytes_atomic(sheet_path, data)
    return sheet_path


EXAMPLE = "syndof-demo --out runs/syndof_demo_example --count 1 --max-side 96"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    p = cli.parser("syndof.demo", __doc__, EXAMPLE)
    p.add_argument("--out", required=True, help="output folder")
    cli.add_sample_count(p, 6)
    cli.add_seed(p, use="sample i uses SeedSequence(seed, (i,)), as in syndof.generate")
    cli.add_source_max_side(p, default=DEMO_MAX_SIZE)
    cli.add_threads(p)
    args = p.parse_args(argv)
    cli.apply_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    sheet = run_synthesis_demo(args.out, args.count, args.seed, args.max_side or None, threads=args.threads or 1)
    print(f"contact sheet: {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
