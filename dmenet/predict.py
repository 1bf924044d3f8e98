"""Predict defocus maps for image files or folders.

``python -m dmenet.predict INPUT... --out DIR [--model PATH] [--method NAME[:key=value,…]] [--format png|npy|both]
[--device cpu|cuda] [--threads N] [--workers N] [--recursive] [--flips N] [--raw-sigma] [--max-side N] [--tile-size N]
[--tile-overlap N]``

Defaults are chosen for speed (BENCHMARKS.md, issue 19): one pass (``--flips 1``; the shipped model's recipe averages 8)
at a working resolution of at most 1024 px on the long side (``--max-side``).

Outputs per image ``<stem>`` (folder inputs keep their sub-folder layout under DIR with ``--recursive``):

* ``<stem>_sigma.png`` — uint16, 3 identical channels, ``round(10·σ)`` (SYNDOF encoding; read with
  ``syndof.io.read_sigma_map``) — with ``--format png|both`` (default png);
* ``<stem>_sigma.npy`` — float32 σ in px — with ``--format npy|both``;
* ``<stem>_blur.png`` — 8-bit blur probability (network S, 1 = blurred → 255);
* ``<stem>_preview.png`` — the input and the colour-mapped σ (0 … σ_max, inferno) side by side;
* ``<stem>_source.json`` — which photo made the set: its resolved path and SHA-256
  (:data:`~dmenet.predict_outputs.PROVENANCE`).

Methods without σ (``gives_sigma`` false: lbp, hifst, laplacian, distill_student, …) write ``<stem>_blur.png``
(their [0, 1] blur map; plus ``<stem>_blur.npy``, the [0, 1] map, with ``--format npy|both``) and
``<stem>_preview.png`` (and ``<stem>_source.json``) only; σ methods (dmenet, galetto, zhuo_sim) write the σ set
above. Images are read with ``syndof.io.read_image_sha256`` (EXIF orientation applied, gray/RGBA/16-bit handled), so
maps are oriented like the displayed image. A file that cannot be read or processed is reported on one line
(``skipped PATH: reason``) and the others go on; the exit status is 1 only when every input failed (2 for usage
errors or a model that cannot be loaded). Options and ``--out`` are checked
before the model loads. The files of one image are written as one set (all of them or, when a write fails, none);
no two inputs share an output prefix; files named like these outputs under ``--out``, or under any folder holding
an earlier run's ``predict.json``, are not taken as inputs. A file of a photo's output names that appears in
``--out`` while the photo runs is never replaced (the photo is skipped and reported).
``--out/predict.json`` records the settings that made its maps (method and its options as resolved, the model file
and a SHA-256 of its contents, those of flips, σ curve, working size and tiles the method reads, format) and the
devices they were made on (``"devices": ["cpu"]``, ``["cuda:0"]``; a rerun on another device is not refused, its
maps differ by float rounding only, and adds its device once it writes a set): rerunning
a batch with the same settings does only what is missing (a photo counts as done when a whole set's
``_source.json``, written with the set, gives the SHA-256 of the bytes the maps were made from (each photo is read
once: those bytes are the ones decoded; also a set in the photo's output folder under a prefix no photo of the batch
has, made when the photos were named otherwise, e.g. before ``a.jpg`` joined ``a.png``: the line names it): another
photo of the same name, or an edited one,
is skipped and reported, never given another photo's maps), and a run with other settings is refused before any photo,
so one folder never holds maps of two methods or models. One
``predict`` at a time writes into a folder (a second is refused). In a folder with maps but no record (written by an
older version), a photo whose prefix already has any output file is skipped and reported, never overwritten. A
batch, or an image above 1024² px, gets a ``[i/N] FILE: W×H px`` line before its work; an image whose estimated
memory exceeds what the machine has available is skipped with the ``--max-side`` that fits (judged from its
header before its pixels are decoded).

``--workers N`` shares a batch among N processes, each with its own copy of the model and ``--threads`` threads
(default: the cores divided among the workers): on a 2-core CPU two one-thread workers keep both cores busy through
the parts of a photo that run on one thread (reading, the PNG files). Lines still come in input order; each worker
loads the model once (seconds), so it pays for batches, not single photos, and exits after its current photo when
the batch's process is killed. By default (no ``--workers``, no ``--threads``, on the CPU) a batch of at least
:data:`~dmenet.predict_workers.AUTO_WORKERS_MIN_PHOTOS` photos gets one worker per core, at most
:data:`~dmenet.predict_workers.AUTO_WORKERS_MAX`, and no more than the available memory holds for its largest photo
(:func:`~dmenet.predict_workers.auto_workers`); smaller batches run in this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Sequence

from dmenet import cli as dcli
from dmenet import memory
from dmenet.predict_inputs import Job, collect_jobs, skipped_inputs
from dmenet.predict_outputs import MapFormat, existing_outputs, has_outputs, output_suffixes
from dmenet.predict_photo import predict_one
from dmenet.predict_record import RECORD, record_check, settings_record
from dmenet.predict_resume import finished_sets, resume_place, unclaimed_sets
from dmenet.predict_workers import AUTO_WORKERS_MIN_PHOTOS, auto_workers, parallel
from syndof import cli
from syndof import io as sio
from syndof.choices import choices, parse_choice

DEFAULT_MAX_SIDE = 1024
"""Default working resolution (long side, px) of ``predict``: larger inputs are area-downsized to it, estimated,
and the maps brought back to the input size; σ is rescaled to input px (``syndof.units.rescale_sigma``: resizing
by s scales blur by s). A 24-megapixel photo then takes seconds instead of many minutes, and σ up to
σ_max·(input side / 1024) px can be reported. ``--max-side 0`` runs at full resolution (tiled above 1024² px);
small blur (below about 0.5 px at the working size) is not resolved at the default."""


DEFAULT_FLIPS = 1
"""Test-time symmetries ``predict`` averages unless ``--flips`` is given: one pass. The shipped model's recipe (what
``evaluate`` and the cards' numbers use) averages 8; on the validation renders 8 flips lower the σ error by 3 %
(0.319 → 0.308 px) for about 5.8× the time (BENCHMARKS.md, "Test-time averaging"), which does not pay at photo
speed. ``--flips 8`` runs the recipe."""


def default_flips_note(departure: str) -> None:
    """Print the recipe departure of the :data:`DEFAULT_FLIPS` default as one ``note:`` line on stderr (a choice
    made for speed, not a user's mistake: no warning)."""
    print(f"note: {DEFAULT_FLIPS} flip by default (speed; --flips 8 runs the model's recipe): {departure}",
          file=sys.stderr)


# --------------------------------------------------------------------------------------------------------------- CLI
EXAMPLE = "dmenet-predict ../shared/data/cuhk/image/out_of_focus0011.jpg --out runs/predict_example --flips 1"


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m dmenet.predict`` argument parser (the module docstring is its --help text)."""
    p = cli.parser("dmenet.predict", __doc__, EXAMPLE)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    dcli.add_model(p, help="model file of a learned --method (.safetensors + .json sidecar); default the method's "
                   f"shipped file, for dmenet {dcli.DEFAULT_MODEL_TEXT}")
    dcli.add_method(p)
    p.add_argument("--format", choices=choices(MapFormat), default=MapFormat.PNG.value, dest="fmt",
                   help="σ map format (png: uint16 round(10·σ); npy: float32 px; for methods without σ, npy adds "
                   "the [0, 1] blur map)")
    cli.add_device(p)
    cli.add_threads(p)
    cli.add_workers(p, default=None, help="processes sharing the photos, each with its own model and --threads threads",
                    default_text=f"default: one per core for a batch of >= {AUTO_WORKERS_MIN_PHOTOS} photos on the CPU "
                    "when --threads is not given and memory allows, else 1")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders of folder inputs")
    p.add_argument("--describe", action="store_true",
                   help="first print what the method does to each photo (model file, passes, statistics, curves)")
    dcli.add_flips(p, default=f"{DEFAULT_FLIPS}, for speed; the model's recipe, used by evaluate, may average more: "
                                    "the shipped model's 8", methods=True)
    dcli.add_raw_sigma(p)
    dcli.add_max_side(p, default_text=f"{DEFAULT_MAX_SIDE}; full resolution is tiled")
    p.add_argument("--tile-size", type=cli.positive_int, default=None,
                   help="tile side in px for large images (default 512)")
    p.add_argument("--tile-overlap", type=int, default=None, help="tile overlap in px (default 64)")
    return p


MIN_MAX_SIDE = 32
"""Smallest ``--max-side``: DMENet works on a grid of 16 px cells and needs at least two of them."""


def usage_problem(args: argparse.Namespace) -> str | None:
    """The first invalid option value as one line, or None; checked before any model is loaded or file written."""
    unused = dcli.unused_model(args)
    if unused:
        return unused
    if args.max_side is not None and (args.max_side < 0 or 0 < args.max_side < MIN_MAX_SIDE):
        return f"--max-side must be 0 (full resolution) or >= {MIN_MAX_SIDE} px, got {args.max_side}"
    if args.tile_size is not None or args.tile_overlap is not None:
        from dmenet.tiling import MIN_TILE_SIZE, TILE_SIZE, tile_geometry

        if args.tile_size is not None and args.tile_size < MIN_TILE_SIZE:
            return f"--tile-size must be >= {MIN_TILE_SIZE} px, got {args.tile_size}"
        tile = args.tile_size if args.tile_size is not None else TILE_SIZE
        if args.tile_overlap is not None:
            problem = f"--tile-overlap must be >= 0 and smaller than --tile-size ({tile}), got {args.tile_overlap}"
            if args.tile_overlap < 0:
                return problem
            try:
                tile_geometry(tile, args.tile_overlap)  # the rounding inference applies
            except ValueError:
                return problem
    return None


def no_jobs_message(problems: Sequence[str], shown: int = 3) -> str:
    """The one line for inputs that gave no image: each input's problem without its ``skipped`` prefix (the first
    ``shown``, then a count)."""
    lines = [p.removeprefix("skipped ") for p in problems]
    if not lines:
        return "no input images found"
    more = f"; and {len(lines) - shown} more" if len(lines) > shown else ""
    return ("no input images: " if len(lines) > 1 else "") + "; ".join(lines[:shown]) + more


def make_new_folder(out: Path) -> bool:
    """Create ``out`` (and its parents) if it does not exist: True when this call made it. Any other problem is
    left to :func:`prepare_out`, which names it."""
    try:
        Path(out).mkdir(parents=True)
    except OSError:  # exists (a folder or a file), or cannot be made: prepare_out says which
        return False
    return True


def prepare_out(out: Path) -> str | None:
    """Create ``--out`` and check that a file can be written there; the problem as one line, or None."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: exists and is not a folder"
    return cli.writable_folder_problem(out, f"--out {out}")


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    args = build_parser().parse_args(argv)
    args.fmt = parse_choice(MapFormat, args.fmt, "--format")  # once; the workers get the member with args
    cli.prepare_process(args)
    problem = usage_problem(args)
    if problem:
        return cli.fail(problem)
    jobs, problems = collect_jobs(args.inputs, args.out, args.recursive)
    if not jobs:  # nothing to run is a usage error: one line naming what was given
        return cli.fail(no_jobs_message(problems))
    for line in problems:
        print(cli.one_line(line), file=sys.stderr)
    created = make_new_folder(args.out)  # this run made it (of two runs racing, only one did)
    problem = prepare_out(args.out)  # checked before the model loads (RELIABILITY D2)
    if problem:
        return cli.fail(problem)
    max_side = DEFAULT_MAX_SIDE if args.max_side is None else (args.max_side or None)
    flips = DEFAULT_FLIPS if args.flips is None else args.flips
    note = None if args.flips is not None else default_flips_note  # the default's known departure: a note
    options = dcli.method_options(args, max_side=max_side, flips=flips, on_departure=note)
    # one predict at a time per folder (the record and the sets agree); a folder this run made and left empty (a bad
    # method option or model file, Ctrl-C while the model loads, every input failed) is removed, a run refused by the
    # lock removes nothing
    with sio.folder_lock(args.out, "--out", made=created):
        estimator = args.method.make(options)  # in this process also with --workers: a bad model file fails here
        if args.describe:
            print(estimator.describe(), flush=True)
        return _run_batch(jobs, args, options, estimator, max_side, skipped_inputs(problems))


def _run_batch(jobs: list[Job], args: argparse.Namespace, options, estimator, max_side: int | None,
               not_listed: int = 0) -> int:
    """The batch inside ``--out``'s lock: the settings record (:func:`record_check`), then every photo.
    ``not_listed``: inputs already reported as skipped while the photos were listed (counted in the summary)."""
    out = Path(args.out)
    record = settings_record(args, options, estimator)
    problem, same = record_check(out, record)
    if problem:
        return cli.fail(problem)
    new_record = not same and not has_outputs(out)
    if new_record:
        sio.write_json_atomic(out / RECORD, record)
    elif not same:
        print(f"note: --out {out} holds maps but no {RECORD} (an older version wrote them): photos with maps are "
              "skipped, not checked against these settings", file=sys.stderr)
    grown = None  # a rerun on a device the record does not name yet: the record it leaves once it writes a set
    if same:
        earlier = sio.read_json_object(out / RECORD)
        devices = earlier.get("devices")
        if isinstance(devices, list) and record["devices"][0] not in devices:  # older records: no devices, left so
            grown = {**earlier, "devices": [*devices, *record["devices"]]}
    # job index → None (done already), the prefix of its set when that is another photo's name, or why it is skipped
    decided: dict[int, str | Path | None] = {}
    if same:  # which photos have their whole set already, and which prefixes hold another photo's
        wanted = output_suffixes(estimator.gives_sigma, args.fmt)
        finished, unclaimed = finished_sets(jobs, wanted), unclaimed_sets(jobs, wanted, out)
        for index, job in enumerate(jobs):
            place, reason = resume_place(job, wanted, finished, unclaimed)
            unclaimed = {digest: p for digest, p in unclaimed.items() if p != place}  # one photo's set, taken once
            if place is not None or reason:
                decided[index] = reason if place is None else None if place == job.prefix else place
    if same or new_record:
        jobs = [dataclasses.replace(job, same_settings=True) for job in jobs]
    if not estimator.gives_sigma:
        print(f"{args.method} gives a blur map, not σ — writing _blur.png"
              f"{', _blur.npy' if args.fmt.npy else ''} and _preview.png only (with _source.json)")
    todo = [(number, job) for number, job in enumerate(jobs, 1) if number - 1 not in decided]
    work_side = max_side if args.method.spec.reads_max_side else None  # the others run at the photo's own size
    workers = min(args.workers or auto_workers([job for _, job in todo], args, work_side,
                                               memory.available_memory(), estimator.extra_bytes_per_pixel(),
                                               estimator.input_bytes_per_pixel(), estimator.min_short_side),
                  max(len(todo), 1))
    computed = (parallel(todo, len(jobs), args, options, workers) if workers > 1
                else (predict_one(job, number, len(jobs), estimator, max_side, args) for number, job in todo))
    results = (decided[i] if i in decided else next(computed) for i in range(len(jobs)))
    done = already = skipped = 0
    batch_start = time.perf_counter()
    try:
        for number, (job, result) in enumerate(zip(jobs, results), 1):
            if isinstance(result, str):  # one bad file must not stop the batch; reported with its reason
                skipped += 1
                print(cli.one_line(f"skipped {job.source}: {result}"), file=sys.stderr)
                continue
            if result is None or isinstance(result, Path):
                already += 1
                other = f" ({job.prefix}_* is another photo's)" if existing_outputs(job.prefix) else ""
                where = "" if result is None else (f"; its set is {result}_*, made when the photos were named "
                                                   f"otherwise{other}")
                print(cli.one_line(f"[{number}/{len(jobs)}] {job.source}: done already (same settings, {RECORD})"
                                   f"{where}"), flush=True)
                continue
            done += 1
            elapsed = time.perf_counter() - batch_start
            eta = f", about {elapsed / number * (len(jobs) - number):.0f} s left" if number < len(jobs) else ""
            print(cli.one_line(f"[{number}/{len(jobs)}] {job.source} -> {job.prefix}_* ({result:.2f} s{eta})"),
                  flush=True)
    finally:
        if new_record and not done and not has_outputs(out):  # nothing written: the record describes nothing
            (out / RECORD).unlink(missing_ok=True)
        if grown is not None and done:
            sio.write_json_atomic(out / RECORD, grown)
    print(f"{done}/{len(jobs)} images written to {out}" + (f", {already} done already" if already else "")
          + (f", {skipped + not_listed} skipped" if skipped + not_listed else ""))
    return 0 if done + already > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
