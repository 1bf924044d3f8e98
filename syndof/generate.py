"""Generate a SYNDOF-style dataset: sharp RGB + depth → defocused image + ground-truth σ map.

Usage::

    python -m syndof.generate --out DIR [--images DIR [--depths DIR] [--depth-scale K]] [--count N] [--seed S]
        [--max-coc 29] [--workers W] [--shard i/n] [--device cpu|cuda] [--noise] [--jpeg-quality Q]
        [--kernel gaussian|disc|polygon] [--max-side PX]

With no ``--images`` the built-in data is used (:func:`syndof.scenes.builtin_sources`: Middlebury Motorcycle,
scikit-image photos with random depth, procedural scenes). With ``--images`` but no ``--depths`` every photo gets
random edge-aligned depth (:mod:`syndof.random_depth`); with ``--depths`` depth files are matched to images by stem.

Sample ``i`` uses source ``i mod len(sources)`` and its own generator seeded by ``SeedSequence(seed, spawn_key=(i,))``,
so every sample is reproducible on its own: results are byte-identical whatever ``--workers``/``--shard`` are.

Output layout (docs/method.md §10), for a sample stem ``{i:06d}_{source}``::

    DIR/image/{stem}.png                     8-bit RGB defocused image
    DIR/blur_map/{stem}.png                  uint16, 3 identical channels, round(10·σ)
    DIR/blur_map_norm/{stem}_norm.png        8-bit min–max σ (visualisation)
    DIR/blur_map_binary/{stem}_binary.png    8-bit {0, 255}, 255 where CoC > 1
    DIR/depth/{stem}_depth.png               8-bit min–max merged (layered) depth, 3 channels
    DIR/meta/{stem}.json                     the sample's manifest entry, written last (= "sample complete")
    DIR/manifest.jsonl                       all meta/*.json entries, sorted by stem, rebuilt at the end
    DIR/dataset.json                         {"format": "syndof", "max_coc": …, "sigma_encoding": …, the inputs}

Resume: a sample whose files all exist is skipped, so re-running a killed command finishes the rest. Every file is
written atomically. A rerun must repeat the settings and inputs recorded in dataset.json
(:data:`syndof.recipe.RECIPE_KEYS`, :data:`syndof.recipe.INPUT_KEYS`: the resolved --images / --depths folders,
--depth-scale, the number and names of the sources), and a complete sample's source files must hold what they held when
it was made (the SHA-256 of each, ``source_sha256`` in its meta: a photo rewritten under its name is refused, not
resumed as done); otherwise, and for an existing non-empty --out that is not a dataset of this generator, or an --out
that is, holds or lies in an input folder, it stops (exit 2, one line) before writing anything. Bad inputs are logged
(one line naming the file) and counted as failed; the run goes on. An image name in --images where no file can be read
(a symbolic link loop or to nothing, a FIFO) is no source: one ``skipped PATH: reason`` line each (these and the
per-sample lines go to stderr). Summary, one line on stdout: ``N written, M skipped, K failed`` of the samples (skipped
= already complete, or max σ above σ_max as in the original), then ``; J input(s) skipped before the run`` when image
names of --images were, ``; A already complete, B over σ_max`` when M > 0, and ``; manifest: S samples``; the exit
status is non-zero only when every sample failed.

This module holds the jobs (one per sample, :func:`run_job`), the whole run (:func:`generate` and its
:class:`Summary`) and the command. The rest is one module per purpose, its public names re-exported here:

- :mod:`syndof.sample`: one sample in memory (camera, layered render, noise / JPEG; the σ_max test; the per-sample
  generator; ``--max-side``);
- :mod:`syndof.layout`: the folder's files (stems and paths, completeness, writing a sample, the manifest);
- :mod:`syndof.recipe`: what a folder was made with (dataset.json's settings and inputs) and the checks of the
  options, ``--out`` and a rerun before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing as mp
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from syndof import cli
from syndof import io as sio
from syndof import units
from syndof.choices import Choice, parse_choice
from syndof.layout import (
    MAX_COUNT,
    SUBDIRS,
    has_samples,
    incomplete_beyond,
    is_complete,
    rebuild_manifest,
    remove_stray_temps,
    sample_paths,
    sample_stem,
    write_sample,
)
from syndof.psf import Kernel
from syndof.recipe import (
    DATASET_FORMAT,
    GENERATOR,
    INPUT_KEYS,
    INPUT_NOTES,
    MIN_MAX_SIZE,
    RECIPE_KEYS,
    changed_source,
    check_out_dir,
    check_recipe,
    max_coc_problem,
    option_problem,
    recipe_lock,
    sources_digest,
)
from syndof.sample import SampleResult, generate_sample, sample_rng, shrink_to_max_size, sigma_over_limit
from syndof.scenes import Source, builtin_sources, folder_sources_and_unlisted

__all__ = [
    # this module: the jobs, the whole run, the command
    "EXAMPLE", "Job", "JobResult", "Status", "Summary", "build_parser", "generate", "main", "parse_shard", "run_job",
    # re-exported: syndof.generate.NAME still names them. Replacing one here reaches run_job and generate only; the
    # moved functions look their helpers up in their own modules (syndof.layout.is_complete for rebuild_manifest,
    # syndof.recipe.is_complete for changed_source)
    "SampleResult", "generate_sample", "sample_rng", "sigma_over_limit",  # syndof.sample
    "MAX_COUNT", "SUBDIRS", "incomplete_beyond", "is_complete", "rebuild_manifest", "sample_paths",  # syndof.layout
    "sample_stem", "write_sample",
    "DATASET_FORMAT", "GENERATOR", "INPUT_KEYS", "INPUT_NOTES", "MIN_MAX_SIZE", "RECIPE_KEYS",  # syndof.recipe
    "changed_source", "check_out_dir", "check_recipe", "max_coc_problem", "option_problem", "sources_digest",
]

log = logging.getLogger("syndof.generate")


# ------------------------------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """One sample to make (:func:`run_job`), picklable for the worker processes: its ``index`` and ``source``, the
    folder, and the run's settings (``max_coc`` px, ``max_size`` px of ``--max-side`` or None, ``merge_tolerance`` px
    of σ; the others as :func:`generate`'s)."""

    index: int
    source: Source
    out_dir: str
    seed: int
    max_coc: int
    kernel: Kernel
    device: str
    noise: bool
    jpeg_quality: int | None
    max_size: int | None
    merge_tolerance: float = 0.0


class Status(Choice):
    """Outcome of one sample's job."""

    WRITTEN = "written"
    """rendered and its files written."""
    DONE = "done"
    """already complete in the folder (a resumed run): nothing done."""
    OVER_LIMIT = "over_limit"
    """rendered, but its max σ exceeds σ_max: not written (the original skips such images)."""
    FAILED = "failed"
    """bad input or an error while rendering: not written; the message says why."""


@dataclass
class JobResult:
    """What :func:`run_job` did with sample ``index`` (file stem ``stem``): its :class:`Status`, the line to log
    (empty when written or already done) and the seconds per stage (``timings`` of
    :class:`syndof.sample.SampleResult`)."""

    index: int
    stem: str
    status: Status
    message: str = ""
    timings: dict = field(default_factory=dict)


def run_job(job: Job) -> JobResult:
    """Make one sample (or find it already done); never raises for bad input."""
    out_dir = Path(job.out_dir)
    stem = sample_stem(job.index, job.source)
    if is_complete(out_dir, stem):
        return JobResult(job.index, stem, Status.DONE)
    paths = sample_paths(out_dir, stem)
    remove_stray_temps(paths)
    rng = sample_rng(job.seed, job.index)
    try:
        image, depth, source_sha256 = job.source.load_recorded(rng)
        image, depth = shrink_to_max_size(image, depth, job.max_size)
        result = generate_sample(image, depth, rng, max_coc=job.max_coc, kernel=job.kernel, device=job.device,
                                 noise=job.noise, jpeg_quality=job.jpeg_quality,
                                 merge_tolerance=job.merge_tolerance)
    except sio.InputError as exc:
        return JobResult(job.index, stem, Status.FAILED, f"failed {exc}")
    except Exception as exc:  # noqa: BLE001 — one bad sample must not stop the batch
        return JobResult(job.index, stem, Status.FAILED,
                         f"failed {job.source.describe()}: {exc.__class__.__name__}: {exc}")
    if result.over_limit(job.max_coc):
        return JobResult(job.index, stem, Status.OVER_LIMIT,
                         f"{stem}: max σ {result.sigma.max():.2f} > σ_max {units.max_sigma(job.max_coc):.2f}, "
                         "skipped",
                         result.timings)
    sigma = result.sigma
    meta = {
        "stem": stem,
        "index": job.index,
        "source": job.source.describe(),
        "source_name": job.source.name,
        **({"source_sha256": source_sha256} if source_sha256 else {}),
        "seed": job.seed,
        "seed_spawn_key": [job.index],
        "height": int(sigma.shape[0]),
        "width": int(sigma.shape[1]),
        "max_coc": job.max_coc,
        "kernel": job.kernel.value,
        "camera": dataclasses.asdict(result.camera),
        "n_layers": int(result.layered.n_layers),
        **({"merge_tolerance": job.merge_tolerance} if job.merge_tolerance else {}),
        "sigma": {"min": float(sigma.min()), "mean": float(sigma.mean()), "max": float(sigma.max())},
        "augment": result.augment,
        "files": {k: str(p.relative_to(out_dir)) for k, p in paths.items() if k != "meta"},
    }
    try:
        write_sample(out_dir, stem, result, meta)
    except FileNotFoundError:
        # another run on the same --out removed this sample's temporary file (its stray-temp cleanup) or is
        # writing the same sample: the files are deterministic, so take its result or write them once more
        if not is_complete(out_dir, stem):
            write_sample(out_dir, stem, result, meta)
    return JobResult(job.index, stem, Status.WRITTEN, "", result.timings)


def _init_worker(threads: int, quiet_opencv: bool = False) -> None:
    torch.set_num_threads(threads)
    if quiet_opencv:  # as the command's own process (cli.entry_point): bad files are reported in one line each
        cli.quiet_opencv()


def _opencv_quiet() -> bool:
    """Whether this process runs OpenCV at fatal-only logging (a command: :func:`syndof.cli.quiet_opencv`)."""
    try:
        import cv2

        return cv2.utils.logging.getLogLevel() <= cv2.utils.logging.LOG_LEVEL_FATAL
    except (ImportError, AttributeError):
        return False


# ---------------------------------------------------------------------------------------------------- whole dataset
@dataclass
class Summary:
    """Counts of one :func:`generate` run: samples ``written``, already complete (``done``), over σ_max
    (``over_limit``) and ``failed``; ``inputs_skipped`` counts the inputs (image names in ``--images`` where no file
    can be read) skipped before the run, which are no samples; ``manifest``: the samples ``manifest.jsonl`` lists
    after the run (the folder's complete samples, this run's and earlier ones)."""

    written: int = 0
    done: int = 0
    over_limit: int = 0
    failed: int = 0
    inputs_skipped: int = 0
    manifest: int = 0
    failures: list = field(default_factory=list)
    timings: dict = field(default_factory=lambda: {"camera": 0.0, "render": 0.0, "augment": 0.0})

    @property
    def skipped(self) -> int:
        """Samples not rendered: already complete plus over the σ limit."""
        return self.done + self.over_limit

    @property
    def all_failed(self) -> bool:
        """True when some sample failed and none was written, complete or over the limit."""
        return self.failed > 0 and self.written == 0 and self.done == 0 and self.over_limit == 0

    def line(self) -> str:
        """One-line count summary of the samples: written, skipped, failed; and the inputs skipped before the run
        when there are any (their ``skipped PATH: reason`` lines came first; "0 skipped" counts samples only)."""
        before = f"; {self.inputs_skipped} input(s) skipped before the run" if self.inputs_skipped else ""
        return f"{self.written} written, {self.skipped} skipped, {self.failed} failed{before}"

    def report(self) -> str:
        """The command's one summary line (stdout): :meth:`line`, what the skipped samples were (already complete,
        over σ_max) when there are any, and the manifest's sample count."""
        why = f"; {self.done} already complete, {self.over_limit} over σ_max" if self.skipped else ""
        return f"{self.line()}{why}; manifest: {self.manifest} samples"


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard`` text ``i/n`` → (i, n) with 0 ≤ i < n; argparse.ArgumentTypeError otherwise."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def generate(out_dir: str | Path, *, images: str | Path | None = None, depths: str | Path | None = None,
             depth_scale: float | None = None, sources: list[Source] | None = None, count: int | None = None,
             seed: int = 0, max_coc: int = units.DEFAULT_MAX_COC, workers: int = 1, shard: tuple[int, int] = (0, 1),
             device: str = "cpu", noise: bool = False, jpeg_quality: int | None = None,
             kernel: Kernel | str = Kernel.GAUSSIAN,
             max_size: int | None = None, threads: int | None = 1, progress: bool = True,
             merge_tolerance: float = 0.0) -> Summary:
    """Generate (or complete) a SYNDOF dataset in ``out_dir``; see the module docstring. Returns the counts.

    ``threads``: torch intra-op threads per process (None: leave torch's setting). The renderer runs hundreds of
    small per-layer operations, for which threading overhead dominates: 1 thread per process, and ``workers`` for
    parallelism, is the fast setting (BENCHMARKS.md, "Synthesizer (syndof)").

    ``merge_tolerance`` (px of σ, 0 = exact): render adjacent CoC layers whose σ lie within it as one layer
    (:meth:`syndof.camera.LayeredDepth.merged`; about 3.4× faster at 0.075 px, 41 dB against the exact render on the
    Sintel replay); each sample's σ map is then the σ it was rendered with.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    max_size = max_size or None  # 0 = no limit
    problem = option_problem(max_coc=max_coc, kernel=kernel, device=device, max_size=max_size, threads=threads,
                             workers=workers, jpeg_quality=jpeg_quality, merge_tolerance=merge_tolerance, seed=seed,
                             depth_scale=depth_scale)
    if problem:
        raise ValueError(problem)
    kernel = parse_choice(Kernel, kernel, "--kernel")
    if count is not None and not 1 <= int(count) <= MAX_COUNT:
        raise ValueError(f"--count must be 1..{MAX_COUNT:,} (sample names have 6 digits), got {count}")
    if depths is not None and images is None and sources is None:
        raise ValueError("--depths needs --images (the photos the depth files belong to)")
    if depth_scale is not None and depths is None and sources is None:  # was ignored: random depth is in mm
        raise ValueError("--depth-scale needs --depths (it scales depth files; random depth is made in mm)")
    check_out_dir(out_dir, {"--images": None if sources is not None or images is None else Path(images),
                            "--depths": None if sources is not None or depths is None else Path(depths)})
    inputs: dict = {}
    unlisted: list[tuple[Path, str]] = []  # image names in --images that are no file: reported, no source
    if sources is None:
        # one walk of --images: the photos rendered and the names reported skipped (two could disagree)
        sources, unlisted = (folder_sources_and_unlisted(images, depths, depth_scale) if images is not None
                             else (builtin_sources(), []))
        inputs = {"images": None if images is None else str(Path(images).resolve()),
                  "depths": None if depths is None else str(Path(depths).resolve()),
                  "depth_scale": None if depths is None or depth_scale is None else float(depth_scale)}
    if not sources:
        raise ValueError(f"no input images found in {images}{sio.unlisted_note(unlisted)}")
    inputs["n_sources"] = len(sources)
    inputs["sources_sha256"] = sources_digest(sources)
    count = len(sources) if count is None else int(count)
    ds_path = out_dir / "dataset.json"
    recipe = {"max_coc": int(max_coc), "kernel": kernel.value, "seed": int(seed), "noise": bool(noise),
              "jpeg_quality": jpeg_quality, "max_size": max_size,
              **({"merge_tolerance": float(merge_tolerance)} if merge_tolerance else {})}
    check_recipe(out_dir, {"merge_tolerance": 0.0, **recipe, **inputs})  # before anything is created
    shard_i, shard_n = shard
    changed = changed_source(out_dir, ((i, sources[i % len(sources)]) for i in range(shard_i, count, shard_n)))
    if changed:
        raise ValueError(changed)
    out_dir.mkdir(parents=True, exist_ok=True)
    with recipe_lock(out_dir):
        # again under the lock: two runs started together (shards with another --seed) both passed the check above
        # before either wrote dataset.json, and mixed their samples in one folder
        check_recipe(out_dir, {"merge_tolerance": 0.0, **recipe, **inputs})
        old = sio.read_json_object(ds_path) if ds_path.is_file() else None
        if old is not None and has_samples(out_dir):
            # written before the inputs were recorded: they stay unknown rather than claimed for the existing samples
            inputs = {k: v for k, v in inputs.items() if k in old}
        dataset = {**(old or {}), "format": DATASET_FORMAT, "sigma_encoding": "uint16 round(10*sigma)",
                   "generator": GENERATOR, **recipe, **inputs}
        if old != dataset:
            sio.write_json_atomic(ds_path, dataset)

    for path, why in unlisted:  # a link loop or to nothing, a FIFO: list_images left it out unsaid
        log.warning("skipped %s: %s", path, why)
    jobs = [Job(i, sources[i % len(sources)], str(out_dir), int(seed), int(max_coc), kernel, device, bool(noise),
                jpeg_quality, max_size, float(merge_tolerance)) for i in range(shard_i, count, shard_n)]
    summary = Summary(inputs_skipped=len(unlisted))

    def account(res: JobResult) -> None:
        """Add one job's result to ``summary`` (counts, failure messages, per-stage timings in s) and log its
        message."""
        if res.status is Status.WRITTEN:
            summary.written += 1
        elif res.status is Status.DONE:
            summary.done += 1
        elif res.status is Status.OVER_LIMIT:
            summary.over_limit += 1
            log.info(res.message)
        else:  # Status.FAILED
            summary.failed += 1
            summary.failures.append(res.message)
            log.warning(res.message)
        for k, v in res.timings.items():
            summary.timings[k] = summary.timings.get(k, 0.0) + v

    from tqdm.contrib.logging import logging_redirect_tqdm

    # one handler prints each line: the root's when the CLI (basicConfig) set one up, else this module's
    redirect = [logging.getLogger()] if logging.getLogger().handlers else [log]

    bar = tqdm(total=len(jobs), desc="syndof", unit="img", disable=not progress, dynamic_ncols=True)
    old_threads = torch.get_num_threads()
    with logging_redirect_tqdm(loggers=redirect):
        if workers <= 1 or len(jobs) <= 1:
            if threads:
                torch.set_num_threads(threads)
            try:
                for job in jobs:
                    account(run_job(job))
                    bar.update(1)
            finally:
                torch.set_num_threads(old_threads)
        else:
            threads = threads or max(1, (os.cpu_count() or 1) // workers)
            ctx = mp.get_context("spawn")
            with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker,
                          initargs=(threads, _opencv_quiet())) as pool:
                for res in pool.imap_unordered(run_job, jobs, chunksize=1):
                    account(res)
                    bar.update(1)
    bar.close()
    summary.manifest = rebuild_manifest(out_dir)
    left = incomplete_beyond(out_dir, count)
    if left:  # a killed run's partial samples past this --count: image/ and blur_map/ no longer pair by stem
        log.warning("%s: %d incomplete sample(s) of an interrupted run lie beyond --count %d (%s%s): rerun with "
                    "--count %d to finish them, or delete their files", out_dir, len(left), count,
                    ", ".join(left[:3]), ", …" if len(left) > 3 else "", int(left[-1].split("_", 1)[0]) + 1)
    return summary  # the command prints summary.report() on stdout: one summary, the per-sample lines logged above


EXAMPLE = "syndof-generate --out runs/generate_example --count 2 --max-side 128 --no-progress"


def build_parser() -> argparse.ArgumentParser:
    """Output layout, resume and determinism: see the module docstring."""
    p = cli.parser("syndof.generate", __doc__, EXAMPLE)
    p.add_argument("--out", required=True, help="output folder (SYNDOF layout)")
    p.add_argument("--images", help="folder of sharp photos (default: the built-in data)")
    p.add_argument("--depths", help="folder of depth maps matched to --images by stem, each the photo's size, "
                   "in .npy / .pfm (mm), .dpt (Sintel) or 16-bit PNG (an 8-bit map is refused: convert a "
                   "relative one to mm first) (default: random depth)")
    cli.add_depth_scale(p, use="with --depths")
    cli.add_sample_count(p, None, "one per source")
    cli.add_seed(p, use="sample i uses SeedSequence(seed, (i,))")
    cli.add_max_coc(p)
    cli.add_workers(p)
    p.add_argument("--shard", type=parse_shard, default=(0, 1),
                   help="i/n: make samples i, i+n, i+2n, … (default 0/1)")
    cli.add_device(p)
    p.add_argument("--noise", action="store_true", help="add Poisson–Gaussian sensor noise")
    p.add_argument("--jpeg-quality", type=int, default=None, help="re-encode rendered images as JPEG (1–100)")
    cli.add_kernel(p)
    cli.add_source_max_side(p)
    cli.add_threads(p, default=1)  # 1: fastest for the layered renderer; scale with --workers
    cli.add_merge_tolerance(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    args = build_parser().parse_args(argv)  # generate() checks every option, --device too, before any write
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    summary = generate(args.out, images=args.images, depths=args.depths, depth_scale=args.depth_scale,
                       count=args.count, seed=args.seed, max_coc=args.max_coc, workers=args.workers,
                       shard=args.shard, device=args.device, noise=args.noise, jpeg_quality=args.jpeg_quality,
                       kernel=args.kernel, max_size=args.max_side, threads=args.threads or None,
                       progress=not args.no_progress, merge_tolerance=args.merge_tolerance)
    print(summary.report())
    return 1 if summary.all_failed else 0


if __name__ == "__main__":
    sys.exit(main())
