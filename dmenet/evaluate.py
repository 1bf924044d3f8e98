"""Benchmark evaluation CLI: ``python -m dmenet.evaluate --benchmark cuhk --data DIR --method lbp --out DIR``.

Sources of maps (one of): ``--method NAME [NAME …]`` (registered methods, :func:`dmenet.methods.make_method`;
``NAME:key=value,…`` adds the method's own options, e.g. ``galetto:refine=paper``, and ``NAME:model=PATH`` a model
file for that method only, e.g. ``--method galetto galetto:model=B`` scores two files side by side; ``dmenet`` uses
``--model`` or the shipped model, with ``--flips`` / ``--raw-sigma`` / ``--max-side``), ``--model PATH`` alone (=
method dmenet),
or ``--predictions DIR --pattern '{stem}_HiFSTBlurMap.png' [--invert]`` (saved maps; no images needed). How each
task is scored is its protocol (:mod:`dmenet.eval.protocols`): a method that gives σ is scored on σ where the
protocol scores σ (RTF, SYNDOF), on its blur probability otherwise (DBD).

Writes ``--out``, a new (or empty) folder, all or nothing: an existing folder with files is refused (exit 2, nothing
changed), and the report appears only when every method is scored and written (one sub-folder per method when
several are given, plus ``summary.csv`` / ``summary.md`` and a combined PR plot): ``metrics.json`` (numbers +
protocol tags), ``pr_curve.csv`` (DBD), ``per_image.csv``, ``pr_curve.png`` (DBD), ``panel.png`` (worst/best images:
image | GT | prediction), and the same to W&B (``--wandb offline`` by default; ``disabled`` writes nothing there).
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

from dmenet import cli as dcli
from dmenet.eval import benchmarks as B
from dmenet.eval import dbd, report, rtf
from dmenet.eval.protocols import MapKind, Protocol, protocol_class
from dmenet.eval.runner import evaluate_source, stems_problem, write_comparison
from dmenet.methods import MethodChoice, parse_method
from syndof import cli, io, units
from syndof.choices import Choice, choices, parse_choice
from syndof.images import RGB2GRAY_WEIGHTS

log = logging.getLogger("dmenet.evaluate")


class DMENetOutput(Choice):
    """DBD map of a method that gives σ (``--dmenet-output``): ``probability`` its blur probability (its detection
    map, 1 = blurred), ``label`` the SYNDOF defocus label σ/7 in [0, 1] (σ in input px,
    :func:`syndof.units.sigma_to_label`)."""

    PROBABILITY = "probability"
    LABEL = "label"


@dataclass
class Source:
    """Where maps come from. ``fn(sample, image) -> map`` where image is None when ``needs_images`` is False.

    ``kind``: :class:`MapKind` ``BLUR`` (DBD map, 1 = blurred, [0, 1]), ``LABEL`` (σ/σ_max or released o, [0, 1])
    or ``SIGMA`` (σ px) — tells the regression protocols how to read the map. ``origin(sample)``: the file the map
    was read from (saved predictions), named beside the sample when its map is refused; None for computed maps.
    """

    name: str
    fn: Callable[[B.Sample, np.ndarray | None], np.ndarray]
    needs_images: bool
    kind: MapKind
    description: str
    inverted: bool = False
    origin: Callable[[B.Sample], Path | None] | None = None


class SavedValues(Choice):
    """How a saved map's values were read (:func:`read_saved_map`): ``sigma`` the project's σ encoding (σ px
    whatever the values), ``fraction`` an 8/16-bit image as value / max (in [0, 1], never σ px), ``stored`` an
    ``.npy`` or float image as stored."""

    SIGMA = "sigma"
    FRACTION = "fraction"
    STORED = "stored"


def read_prediction(path: Path) -> np.ndarray:
    """A saved map: ``.npy`` as stored (float); a 16-bit image with 3 identical channels as the project's σ encoding
    (``round(10·σ)``: ``predict``'s ``_sigma.png``, SYNDOF's ``blur_map``) → σ px, which a σ benchmark scores with
    ``--sigma-mapping sigma`` and every other reading refuses (:func:`predictions_source`); a gray 8/16-bit image as
    value/max; colour as ``rgb2gray``. Float32, (H, W) for an image file; a ``.npy`` as
    :func:`syndof.io.read_npy_map` gives it ((H, W), or the first channel of (H, W, C))."""
    return read_saved_map(path)[0]


def read_saved_map(path: Path) -> tuple[np.ndarray, SavedValues]:
    """:func:`read_prediction` and how its values were read (:class:`SavedValues`)."""
    if path.suffix.lower() == ".npy":  # syndof.io's reader: an .npz archive, a channels-first array refused
        arr = io.read_npy_map(path, np.float32)  # (a (1, H, W) map was "1xH … not the aspect ratio of its GT")
        if arr.size == 0:
            raise io.InputError(path, f"holds an empty array of shape {arr.shape}, not a map")
        return arr, SavedValues.STORED
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # fast path for the common gray PNG
    if raw is not None and raw.ndim == 2 and raw.dtype in (np.uint8, np.uint16):
        return raw.astype(np.float32) / np.float32(np.iinfo(raw.dtype).max), SavedValues.FRACTION
    if _is_sigma_encoding(raw):
        return units.syndof_to_sigma(raw[..., 0]), SavedValues.SIGMA  # as value/65535 it was σ/6,553.5: near 0
    img = io.read_image(path)  # raises InputError naming the file when unreadable
    kind = SavedValues.FRACTION if raw is not None and raw.dtype in (np.uint8, np.uint16) else SavedValues.STORED
    if _one_channel(img):
        return img[..., 0], kind
    return (img @ np.array(RGB2GRAY_WEIGHTS, dtype=np.float32)).astype(np.float32), kind


def _is_sigma_encoding(raw: np.ndarray | None) -> bool:
    """Whether an image decoded with ``IMREAD_UNCHANGED`` is the project's σ encoding (16-bit, 3 equal channels,
    ``round(10·σ)``: ``predict``'s ``_sigma.png``, SYNDOF's ``blur_map``)."""
    return (raw is not None and raw.ndim == 3 and raw.shape[2] == 3 and raw.dtype == np.uint16
            and _one_channel(raw))


def _one_channel(image: np.ndarray) -> bool:
    """Whether the three channels of an (H, W, 3) image are equal (a gray map saved as RGB)."""
    return np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])


def predictions_source(folder: str, pattern: str, invert: bool, protocol: type[Protocol],
                       sigma_mapping: rtf.SigmaMapping | str | None = None) -> Source:
    """Saved maps ``folder/pattern.format(stem=…)`` matched case-insensitively; missing files raise.

    A file in the σ encoding (:func:`read_saved_map`) is σ px whatever its values: it is scored only by a
    protocol that scores σ with ``sigma_mapping`` ``sigma``, and refused (InputError naming it) otherwise; until 6 Dec
    2026 a σ map whose values all lay in [0, 1] px passed the range check and was scored as a label or a blur map.
    ``invert`` (sharpness maps) is a ValueError for a protocol that scores σ (labels and σ have no such polarity)."""
    folder_p = Path(folder)
    reads_sigma = protocol.scores_sigma and sigma_mapping is not None and \
        rtf.SigmaMapping(sigma_mapping) is rtf.SigmaMapping.SIGMA
    if invert and protocol.scores_sigma:
        raise ValueError(f"--invert is for sharpness maps of blur-detection benchmarks; {protocol.task.value} scores "
                         "labels or sigma px, which have no sharpness polarity: leave --invert out")
    if not folder_p.is_dir():
        raise io.InputError(folder_p, "predictions folder not found")
    index = {p.name.lower(): p for p in folder_p.iterdir() if p.is_file()}

    def origin(sample: B.Sample) -> Path | None:
        """The saved map file of ``sample`` (``pattern`` matched case-insensitively), or None."""
        return index.get(pattern.format(stem=sample.stem).lower())

    def fn(sample: B.Sample, image: np.ndarray | None) -> np.ndarray:
        """The saved map (H, W) of ``sample``: σ px or a [0, 1] map as the protocol reads it (``1 − map`` when
        ``invert``); InputError when missing or in the wrong encoding. ``image`` is unused."""
        name = pattern.format(stem=sample.stem)
        path = origin(sample)
        if path is None:
            raise io.InputError(folder_p / name, f"no prediction for {sample.path.name} (pattern {pattern!r})")
        pred, values = read_saved_map(path)
        if values is SavedValues.FRACTION and reads_sigma:  # value/255 of a label or blur map: scored as σ ≤ 1 px
            raise io.InputError(path, "is an 8/16-bit image read as value/max in [0, 1], not sigma px: "
                                "--sigma-mapping sigma reads predict's _sigma.png (16-bit, 3 equal channels) or .npy "
                                "sigma maps; leave it out to score [0, 1] label maps")
        if values is SavedValues.SIGMA and not reads_sigma:
            raise io.InputError(path, "holds sigma px (16-bit, 3 equal channels: round(10*sigma), predict's "
                                "_sigma.png), not a [0, 1] map: score it on rtf / syndof with --sigma-mapping sigma, "
                                "or give the _blur.png maps for blur detection")
        return 1.0 - pred if invert else pred

    kind = protocol.saved_map_kind
    desc = f"predictions {folder}/{pattern}" + (" inverted (sharpness maps)" if invert else "")
    return Source(Path(folder).name or "predictions", fn, False, kind, desc, inverted=invert, origin=origin)


def method_source(choice: MethodChoice, args, protocol: type[Protocol]) -> Source:
    """A registered method with its options (``--method NAME[:key=value,…]``) as a map source for ``protocol``: its
    σ map when the protocol scores σ and the method gives one, else its blur map (for DBD, ``--dmenet-output label``
    scores σ/σ_max of a method that gives σ instead). The source is named by :attr:`MethodChoice.slug` (the
    sub-folder of ``--out`` when several methods run)."""
    output = parse_choice(DMENetOutput, args.dmenet_output, "--dmenet-output")
    estimator = choice.make(dcli.method_options(args))
    name = choice.slug
    text = estimator.describe()
    if estimator.gives_sigma and protocol.scores_sigma:
        return Source(name, lambda s, im: estimator.sigma_map(im), True, MapKind.SIGMA, f"{text}: sigma px")
    if estimator.gives_sigma and output is DMENetOutput.LABEL:
        def label(sample: B.Sample, image: np.ndarray) -> np.ndarray:
            """The estimator's σ map of ``image`` (σ px in input px) as a label σ/7 in [0, 1], (H, W) float."""
            # σ/7 of σ in input px (docs/evaluation.md §4), whatever the method's own top and --max-side: dividing
            # by the estimate's sigma_max (in input px, so 7/scale under --max-side; 19 for galetto) gave σ/14 at
            # --max-side 320 on a 640 px photo, and another scale per method (review A15, 6 Dec 2026)
            return units.sigma_to_label(estimator.sigma_map(image))

        return Source(name, label, True, MapKind.BLUR, f"{text}: defocus label sigma/sigma_max, sigma_max "
                      f"{units.max_sigma():g} px (SYNDOF label; sigma in input px, clipped to [0, 1])")
    kind = "probability (1 = blurred)" if estimator.gives_sigma else "blur map (1 = blurred)"
    if protocol.scores_sigma:  # a method without σ: its relative map is read as a label, σ = σ_max · map
        log.warning("%s gives no σ: %s scores its relative blur map as a label (σ = σ_max·map), not a σ "
                    "measurement", name, protocol.__name__)
        kind = "relative blur map read as a label (σ = σ_max·map; the method measures no σ)"
    return Source(name, lambda s, im: estimator.blur_map(im), True, MapKind.BLUR, f"{text}: {kind}")


EXAMPLE = ("dmenet-evaluate --benchmark rtf --data ../shared/data/rtf --method lbp --out runs/eval_example "
           "--wandb disabled")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m dmenet.evaluate`` argument parser (the module docstring is its --help text)."""
    p = cli.parser("dmenet.evaluate", __doc__, EXAMPLE)
    p.add_argument("--benchmark", required=True, choices=sorted(B.BENCHMARKS))
    p.add_argument("--data", required=True, help="benchmark root folder (e.g. ../shared/data/cuhk)")
    src = p.add_mutually_exclusive_group()
    dcli.add_method(src, many=True, default=None)
    src.add_argument("--predictions", help="folder of saved maps")
    dcli.add_model(p, help="model file of the learned method(s) in --method (each gets it; for one method only, or two "
                   "files side by side: --method galetto galetto:model=PATH); alone: --method dmenet; default each "
                   "method's shipped file, for dmenet "
                   f"{dcli.DEFAULT_MODEL_TEXT}")
    p.add_argument("--pattern", default="{stem}.png", help="prediction file name, e.g. '{stem}_HiFSTBlurMap.png'")
    p.add_argument("--invert", action="store_true", help="predictions are sharpness maps (white = sharp)")
    p.add_argument("--out", required=True)
    p.add_argument("--resolution", choices=dbd.RESOLUTIONS, help="DBD scoring size (default: the benchmark's)")
    p.add_argument("--map-resize", choices=dbd.MAP_RESIZES, default=dbd.MapResize.LINEAR.value,
                   help="DBD: how a prediction reaches the scoring size: linear (area when shrinking, else "
                   "bilinear) or nearest (D-DFFNet: --input-size 320 --resolution native --map-resize nearest)")
    p.add_argument("--adaptive-factor", type=float, default=1.5, help="headline adaptive-F factor (2.0 also reported)")
    p.add_argument("--rtf-noise", choices=rtf.NOISE_LEVELS, default=rtf.NoiseLevel.FREE.value,
                   help="RTF noise level s (DMENet's image/<s>/ + gt/<s>/ layout; the RTF release has 0 only)")
    p.add_argument("--sigma-mapping", choices=rtf.SIGMA_MAPPINGS, default=rtf.SigmaMapping.PROJECT.value,
                   help="RTF: how a saved [0,1] map becomes sigma px (released = DMENet's published PNGs); "
                   "syndof: 'sigma' converts saved sigma px maps to labels, otherwise maps are labels")
    p.add_argument("--dmenet-output", choices=choices(DMENetOutput), default=DMENetOutput.PROBABILITY.value,
                   help="DBD map of --method dmenet: its blur probability (the detection map) or the SYNDOF "
                        "defocus label sigma/7 (sigma in input px, clipped to [0, 1])")
    dcli.add_inference(p, methods=True)
    cli.add_device(p)
    cli.add_threads(p)
    dcli.add_wandb(p)
    dcli.add_sample_selection(p)
    p.add_argument("--input-size", type=int, help="resize each image to N x N before the method (xu100 / "
                   "D-DFFNet style: 320); the map is scored at --resolution")
    return p


def make_sources(args, spec: B.BenchmarkSpec) -> list[Source]:
    """The map sources the parsed ``args`` ask for: one of saved ``--predictions``, else one per ``--method``
    (``--model`` alone: dmenet); ValueError when none is given."""
    protocol = protocol_class(spec)
    if args.predictions:
        return [predictions_source(args.predictions, args.pattern, args.invert, protocol, args.sigma_mapping)]
    methods = args.method or ([parse_method("dmenet")] if args.model else None)
    if not methods:
        raise ValueError("give --method, --model or --predictions")
    return [method_source(m, args, protocol) for m in methods]


def usage_problem(args) -> str | None:
    """The first invalid option as one line naming it, or None (checked before any model is loaded or file
    written)."""
    try:
        args.pattern.format(stem="x")
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        return (f"--pattern {args.pattern!r}: not a file-name pattern with the field {{stem}} "
                f"({exc.__class__.__name__}: {exc})")
    if args.limit is not None and args.limit < 1:
        return f"--limit must be >= 1 (omit it to score every sample), got {args.limit}"
    unused = dcli.unused_model(args)
    if unused:
        return unused
    wandb_problem = report.wandb_mode_problem(args.wandb)
    if wandb_problem:
        return wandb_problem
    if getattr(args, "stems", None):
        problem = stems_problem(args.stems)
        if problem:
            return problem
    problem = label_resize_problem(args)
    if problem:
        return problem
    return out_problem(args.out)


def label_resize_problem(args) -> str | None:
    """One line when ``--dmenet-output label`` meets ``--input-size N``, else None. The label is σ/7 with σ in px of
    the photo (docs/evaluation.md §4); under --input-size the method sees an N × N resize (a different scale along
    each side), so its σ is in px of that resize and no single factor turns it back. Until 6 Dec 2026 that σ was
    scored as is."""
    output = parse_choice(DMENetOutput, args.dmenet_output, "--dmenet-output")
    if output is DMENetOutput.LABEL and args.input_size is not None:
        return (f"--dmenet-output label with --input-size {args.input_size}: the label is sigma/7 in px of the photo, "
                "but --input-size resizes it (a different scale per side) before the method: leave one of them out")
    return None


def out_problem(out: str) -> str | None:
    """``--out`` as one line naming it when evaluate cannot write its new report there, else None: an existing
    folder with files (:func:`syndof.cli.new_folder_problem`); a path inside an earlier evaluate report
    (:func:`report.enclosing_report`: its files would mix with that run's); a parent folder that cannot take new
    files (:func:`syndof.cli.folder_to_write_problem`: the report is staged beside ``--out``, whose temporary name
    the error named until 6 Dec 2026)."""
    problem = cli.new_folder_problem(out, "evaluate writes a new folder")
    if problem:
        return problem
    earlier = report.enclosing_report(out)
    if earlier is not None:
        return (f"--out {out}: lies inside {earlier}, an earlier evaluate report (its files would mix with that "
                "run's): choose an --out outside it")
    return cli.folder_to_write_problem(Path(out).absolute().parent, f"--out {out}")


def inapplicable_option(args, spec: B.BenchmarkSpec) -> str | None:
    """One line naming a scoring option given (a value other than its default) that ``spec``'s protocol does not
    read, else None. Until 6 Dec 2026 only --input-size and --map-resize were refused for σ benchmarks; --resolution,
    --adaptive-factor, --dmenet-output, --rtf-noise and --sigma-mapping were accepted and ignored where they do not
    apply (``--sigma-mapping released`` on syndof read saved maps as labels, and its report did not say so)."""
    protocol = protocol_class(spec)
    task = spec.task
    given = []
    if task is not B.Task.DBD and args.resolution is not None:
        given.append(("--resolution", "blur-detection benchmarks"))
    if task is not B.Task.DBD and args.adaptive_factor != 1.5:
        given.append(("--adaptive-factor", "blur-detection benchmarks"))
    if protocol.scores_sigma and args.dmenet_output != DMENetOutput.PROBABILITY.value:
        given.append(("--dmenet-output", "blur-detection benchmarks (σ benchmarks score a method's σ)"))
    if task is not B.Task.RTF and args.rtf_noise != rtf.NoiseLevel.FREE.value:
        given.append(("--rtf-noise", "rtf"))
    mapping = rtf.SigmaMapping(args.sigma_mapping)
    if not protocol.scores_sigma and mapping is not rtf.SigmaMapping.PROJECT:
        given.append(("--sigma-mapping", "rtf and syndof"))
    elif task is B.Task.SYNDOF and mapping is rtf.SigmaMapping.RELEASED:
        given.append(("--sigma-mapping released", "rtf (syndof reads saved maps as labels, or σ px with "
                      "--sigma-mapping sigma)"))
    if not given:
        return None
    option, where = given[0]
    return f"{option} is for {where}; --benchmark {spec.name} does not read it: leave it out"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """A benchmark with a missing or unreadable file is incomplete: it stops with exit 2 (nothing partial is
    reported)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    cli.prepare_process(args)
    spec = B.get_spec(args.benchmark)
    out = Path(args.out)
    problem = usage_problem(args) or inapplicable_option(args, spec)
    if problem:
        return cli.fail(problem)
    sources = make_sources(args, spec)
    names = [source.name for source in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return cli.fail(f"--method: {', '.join(twice)} given twice (each method writes the sub-folder of --out named "
                        "after it)")
    command = ["python -m dmenet.evaluate", *(argv if argv is not None else sys.argv[1:])]
    results = []
    with io.staged_folder(out) as stage:  # all or nothing: --out appears only when every method is scored and written
        for source in sources:
            t0 = time.perf_counter()
            write = stage if len(sources) == 1 else stage / source.name
            result = evaluate_source(spec, args, source, write, command=command)
            log.info("%s on %s: %s (%.1f s)", source.name, spec.name, result["headline"], time.perf_counter() - t0)
            results.append(result)
        if len(results) > 1:
            write_comparison(stage, spec, results)
    log.info("wrote %s", out)
    hint = report.wandb_sync_hint(out)
    if hint:
        log.info("%s", hint)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
