"""Benchmark evaluation CLI: ``python -m dmenet.evaluate --benchmark cuhk --data DIR --method lbp --out DIR``.

Sources of maps (one of): ``--method NAME [NAME …]`` (a :data:`dmenet.peers.PEERS` name or ``dmenet``, which uses
``--checkpoint`` or the default checkpoint through :mod:`dmenet.inference`), ``--checkpoint PATH`` alone (= method
dmenet), or ``--predictions DIR --pattern '{stem}_HiFSTBlurMap.png' [--invert]`` (saved maps; no images needed).

Writes to ``--out`` (one sub-folder per method when several are given, plus ``summary.csv`` / ``summary.md`` and a
combined PR plot): ``metrics.json`` (numbers + protocol tags), ``pr_curve.csv`` (DBD), ``per_image.csv``,
``pr_curve.png`` (DBD), ``panel.png`` (worst/best images: image | GT | prediction), and the same to W&B
(``--wandb offline`` by default; ``disabled`` writes nothing there).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from dmenet.eval import benchmarks as B
from dmenet.eval import dbd, rtf
from dmenet.eval.runner import evaluate_source
from syndof import io, units

log = logging.getLogger("dmenet.evaluate")


@dataclass
class Source:
    """Where maps come from. ``fn(sample, image) -> map`` where image is None when ``needs_images`` is False.

    ``kind``: ``"blur"`` (DBD map, 1 = blurred, [0, 1]), ``"label"`` (σ/σ_max or released o, [0, 1]) or
    ``"sigma"`` (σ px) — tells the regression protocols how to read the map.
    """

    name: str
    fn: Callable[[B.Sample, np.ndarray | None], np.ndarray]
    needs_images: bool
    kind: str
    description: str
    inverted: bool = False


def read_prediction(path: Path) -> np.ndarray:
    """A saved map: ``.npy`` as stored (float); a gray 8/16-bit image as value/max; colour as ``rgb2gray``."""
    if path.suffix.lower() == ".npy":
        arr = np.load(path, allow_pickle=False).astype(np.float32)
        return arr[..., 0] if arr.ndim == 3 else arr
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # fast path for the common gray PNG
    if raw is not None and raw.ndim == 2 and raw.dtype in (np.uint8, np.uint16):
        return raw.astype(np.float32) / np.float32(np.iinfo(raw.dtype).max)
    img = io.read_image(path)  # raises InputError naming the file when unreadable
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]):
        return img[..., 0]
    return (img @ np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)).astype(np.float32)


def predictions_source(folder: str, pattern: str, invert: bool, task: str) -> Source:
    """Saved maps ``folder/pattern.format(stem=…)`` matched case-insensitively; missing files raise."""
    folder_p = Path(folder)
    if not folder_p.is_dir():
        raise io.InputError(folder_p, "predictions folder not found")
    index = {p.name.lower(): p for p in folder_p.iterdir() if p.is_file()}

    def fn(sample: B.Sample, image: np.ndarray | None) -> np.ndarray:
        name = pattern.format(stem=sample.stem)
        path = index.get(name.lower())
        if path is None:
            raise io.InputError(folder_p / name, f"no prediction for {sample.gt.name} (pattern {pattern!r})")
        pred = read_prediction(path)
        return 1.0 - pred if invert else pred

    kind = "blur" if task == "dbd" else "label"
    desc = f"predictions {folder}/{pattern}" + (" inverted (sharpness maps)" if invert else "")
    return Source(Path(folder).name or "predictions", fn, False, kind, desc, inverted=invert)


def peer_source(name: str) -> Source:
    from dmenet.peers import PEERS

    if name not in PEERS:
        raise ValueError(f"unknown method {name!r}; known: dmenet, {', '.join(PEERS)}")
    peer = PEERS[name]
    return Source(name, lambda sample, image: peer(image), True, "blur", f"peer dmenet.peers.PEERS[{name!r}]")


def dmenet_source(checkpoint: str | None, task: str, output: str, flips: int | None = None,
                  raw_sigma: bool = False) -> Source:
    from dmenet import inference

    predictor = inference.load_predictor(checkpoint, flips=flips, raw_sigma=raw_sigma)
    cfg = predictor.model.config
    where = f"{checkpoint or 'default checkpoint'} (" + "; ".join(str(predictor.recipe).split("\n")) + ")"
    if task == "dbd" and output == "probability":
        return Source("dmenet", lambda s, im: inference.estimate_blur_probability(im, predictor), True, "blur",
                      f"DMENet {where}: calibration network S probability (1 = blurred)")
    max_coc = cfg.max_coc
    if task == "dbd":
        def label(s, im):
            return units.sigma_to_label(inference.estimate_defocus(im, predictor), max_coc)
        return Source("dmenet", label, True, "blur",
                      f"DMENet {where}: defocus label sigma/sigma_max (max_coc {max_coc})")
    return Source("dmenet", lambda s, im: inference.estimate_defocus(im, predictor), True, "sigma",
                  f"DMENet {where}: sigma px")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dmenet.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", required=True, choices=sorted(B.BENCHMARKS))
    p.add_argument("--data", required=True, help="benchmark root folder (e.g. ../shared/data/cuhk)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--method", nargs="+", help="PEERS name(s) and/or 'dmenet'; several give one table")
    src.add_argument("--predictions", help="folder of saved maps")
    p.add_argument("--checkpoint", help="DMENet weights (.safetensors) for --method dmenet (or alone)")
    p.add_argument("--pattern", default="{stem}.png", help="prediction file name, e.g. '{stem}_HiFSTBlurMap.png'")
    p.add_argument("--invert", action="store_true", help="predictions are sharpness maps (white = sharp)")
    p.add_argument("--out", required=True)
    p.add_argument("--resolution", choices=dbd.RESOLUTIONS, help="DBD scoring size (default: the benchmark's)")
    p.add_argument("--adaptive-factor", type=float, default=1.5, help="headline adaptive-F factor (2.0 also reported)")
    p.add_argument("--rtf-noise", choices=rtf.NOISE_LEVELS, default="0",
                   help="RTF noise level s (DMENet's image/<s>/ + gt/<s>/ layout; the RTF release has 0 only)")
    p.add_argument("--sigma-mapping", choices=rtf.SIGMA_MAPPINGS, default="project",
                   help="RTF: how a saved [0,1] map becomes sigma px (released = DMENet's published PNGs); "
                   "syndof: 'sigma' converts saved sigma px maps to labels, otherwise maps are labels")
    p.add_argument("--dmenet-output", choices=("probability", "label"), default="probability",
                   help="DBD map of --method dmenet: S probability or defocus label sigma/7")
    p.add_argument("--flips", type=int, help="DMENet test-time symmetries 1, 2, 4 or 8 (default: the model's "
                   "recipe)")
    p.add_argument("--raw-sigma", action="store_true",
                   help="DMENet: ignore the recipe's sigma curve (sigma = B's output x sigma_max)")
    p.add_argument("--wandb", choices=("offline", "online", "disabled"), default="offline")
    p.add_argument("--allow-missing-images", action="store_true",
                   help="score only GT files that have an image (default: an unmatched GT file is an error)")
    p.add_argument("--stems", help="text file listing the stems to score, one per line; 'k.bmp--name.jpg' rows "
                   "(xu100 split_to_cuhk.txt) use the name after the last '--'")
    p.add_argument("--include", help="score only stems matching this glob, e.g. 'out_of_focus*' (CUHK defocus)")
    p.add_argument("--limit", type=int, help="score only the first N samples (sorted by stem)")
    p.add_argument("--workers", type=int, default=4, help="threads reading files")
    return p


def make_sources(args, spec: B.BenchmarkSpec) -> list[Source]:
    if args.predictions:
        return [predictions_source(args.predictions, args.pattern, args.invert, spec.task)]
    methods = args.method or (["dmenet"] if args.checkpoint else None)
    if not methods:
        raise SystemExit("give --method, --checkpoint or --predictions")
    return [dmenet_source(args.checkpoint, spec.task, args.dmenet_output, args.flips, args.raw_sigma) if m == "dmenet"
            else peer_source(m) for m in methods]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    spec = B.get_spec(args.benchmark)
    out = Path(args.out)
    results = []
    try:
        sources = make_sources(args, spec)
        for source in sources:
            t0 = time.perf_counter()
            sub = out if len(sources) == 1 else out / source.name
            command = ["python -m dmenet.evaluate", *(argv if argv is not None else sys.argv[1:])]
            result = evaluate_source(spec, args, source, sub, command=command)
            log.info("%s on %s: %s (%.1f s)", source.name, spec.name, result["headline"], time.perf_counter() - t0)
            results.append(result)
    except (io.InputError, FileNotFoundError, ValueError) as exc:
        # a benchmark with a missing or unreadable file is incomplete: stop (nothing partial is reported)
        log.error("%s", exc)
        return 2
    if len(results) > 1:
        from dmenet.eval.runner import write_comparison

        write_comparison(out, spec, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
