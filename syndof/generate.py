"""Generate a SYNDOF-style dataset: sharp RGB + depth → defocused image + ground-truth σ map.

Usage::

    python -m syndof.generate --out DIR [--images DIR [--depths DIR] [--depth-scale K]] [--count N] [--seed S]
        [--max-coc 29] [--workers W] [--shard i/n] [--device cpu|cuda] [--noise] [--jpeg-quality Q]
        [--kernel gaussian|disc|polygon] [--max-size PX]

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
written atomically. A rerun must repeat the settings and inputs recorded in dataset.json (``RECIPE_KEYS``,
``INPUT_KEYS``: the resolved --images / --depths folders, --depth-scale, the number and names of the sources), and a
complete sample's source files must hold what they held when it was made (the SHA-256 of each, ``source_sha256`` in its
meta: a photo rewritten under its name is refused, not resumed as done); otherwise, and for an existing non-empty --out
that is not a dataset of this generator, or an --out that is, holds or lies in an input folder, it stops (exit 2, one
line) before writing anything. Bad inputs are logged (one line naming the file) and counted as failed; the run goes on.
An image name in --images where no file can be read (a symbolic link loop or to nothing, a FIFO) is no source: one
``skipped PATH: reason`` line each (these and the per-sample lines go to stderr). Summary, one line on stdout:
``N written, M skipped, K failed`` of the samples (skipped = already complete, or max σ above σ_max as in the
original), then ``; J input(s) skipped before the run`` when image names of --images were, ``; A already complete, B
over σ_max`` when M > 0, and ``; manifest: S samples``; the exit status is non-zero only when every sample failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from syndof import cli
from syndof import io as sio
from syndof import units
from syndof.blur import MAX_MAX_COC
from syndof.choices import Choice, parse_choice
from syndof.psf import Kernel
from syndof.resize import shrink_long_side
from syndof.scenes import Source, builtin_sources, folder_sources_and_unlisted

log = logging.getLogger("syndof.generate")

SUBDIRS = ("image", "blur_map", "blur_map_norm", "blur_map_binary", "depth")


# ----------------------------------------------------------------------------------------------- one sample, in memory
@dataclass
class SampleResult:
    """A rendered sample. Arrays are (H, W[, 3]).

    A sample :meth:`over_limit` is not rendered (the original skips it after rendering; the renderer refuses CoCs
    above its ``max_coc``): its ``image`` is the input image."""

    image: np.ndarray
    """float32 RGB in [0, 1]: defocused (and, if asked, noisy / JPEG-degraded) image."""
    sigma: np.ndarray
    """float32 σ in px per pixel (the GT map)."""
    coc: np.ndarray
    """float32 CoC in px per pixel."""
    merged_depth: np.ndarray
    """float64 depth of each pixel's layer (mm, after the 5f shift)."""
    camera: object
    """syndof.camera.CameraParams."""
    layered: object
    """syndof.camera.LayeredDepth."""
    augment: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    """seconds: {"camera": …, "render": …, "augment": …}."""

    def over_limit(self, max_coc: float) -> bool:
        """True when max σ exceeds σ_max (the original skips such images)."""
        return sigma_over_limit(self.sigma, max_coc)


def sigma_over_limit(sigma: np.ndarray, max_coc: float) -> bool:
    """Whether a σ map (px) exceeds σ_max of ``max_coc`` (px; :func:`syndof.units.max_sigma`), beyond 1e-9 px of
    rounding: the original generator skips such samples."""
    return float(np.max(sigma)) > units.max_sigma(max_coc) + 1e-9


def generate_sample(image: np.ndarray, depth_mm: np.ndarray, rng: np.random.Generator,
                    max_coc: int = units.DEFAULT_MAX_COC, kernel: Kernel | str = Kernel.GAUSSIAN,
                    device: str | torch.device = "cpu", noise: bool = False, jpeg_quality: int | None = None,
                    merge_tolerance: float = 0.0) -> SampleResult:
    """Draw a camera for ``depth_mm``, decompose it into CoC layers and render the defocused image.

    Args:
        image: (H, W, 3) float RGB in [0, 1] (sharp, all in focus).
        depth_mm: (H, W) depth in mm, finite and positive.
        rng: the sample's generator (camera draws, then noise draws).
        max_coc: CoC of the extreme depth in px, a whole number in 2..255 (σ_max = (max_coc − 1)/4; ValueError
            otherwise).
        kernel: PSF of the renderer (:class:`syndof.psf.Kernel` or its value; Gaussian as the original).
        device: where the rendering runs.
        noise: add Poisson–Gaussian sensor noise after rendering.
        jpeg_quality: re-encode the rendered image as JPEG at this quality (None: off).
        merge_tolerance: px of σ; above 0, adjacent layers whose σ lie within it are merged before rendering
            (:meth:`syndof.camera.LayeredDepth.merged`; faster, approximate). The returned ``layered``, ``sigma``
            and ``coc`` are then the merged layers', i.e. the blur each pixel was actually rendered with.
    """
    from syndof.blur import render_layers
    from syndof.camera import sample_camera

    problem = max_coc_problem(max_coc, "max_coc")
    if problem:
        raise ValueError(problem)
    image = np.asarray(image, dtype=np.float32)
    depth_mm = np.asarray(depth_mm, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    if depth_mm.shape != image.shape[:2]:
        raise ValueError(f"depth {depth_mm.shape} and image {image.shape[:2]} sizes differ")
    timings = {}
    t0 = time.perf_counter()
    camera, layered = sample_camera(depth_mm, image.shape[1], rng, max_coc=max_coc)
    layered = layered.merged(merge_tolerance)  # the identity at 0; the ground truth follows the merged layers
    t1 = time.perf_counter()
    if sigma_over_limit(layered.sigma_map, max_coc):  # skipped as the original does: no render
        return SampleResult(image=image, sigma=layered.sigma_map, coc=layered.coc_map,
                            merged_depth=layered.merged_depth, camera=camera, layered=layered,
                            timings={"camera": t1 - t0})
    dev = torch.device(device)
    img_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(dev)
    labels_t = torch.from_numpy(np.ascontiguousarray(layered.labels)).to(dev)
    coc_t = torch.from_numpy(np.asarray(layered.coc, dtype=np.float64)).to(dev)
    with torch.no_grad():
        out = render_layers(img_t, labels_t, coc_t, max_coc=int(max_coc), kernel=kernel)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    rendered = out.detach().to("cpu", torch.float32).numpy().transpose(1, 2, 0)
    rendered = np.clip(np.ascontiguousarray(rendered), 0.0, 1.0)
    t2 = time.perf_counter()
    augment = {"noise": None, "jpeg_quality": None}
    if noise:
        from syndof.augment import add_sensor_noise, sample_noise_params

        params = sample_noise_params(rng)
        rendered = add_sensor_noise(rendered, rng, **params)
        augment["noise"] = params
    if jpeg_quality is not None:
        from syndof.augment import jpeg_reencode

        rendered = jpeg_reencode(rendered, jpeg_quality)
        augment["jpeg_quality"] = int(jpeg_quality)
    t3 = time.perf_counter()
    timings.update(camera=t1 - t0, render=t2 - t1, augment=t3 - t2)
    return SampleResult(image=rendered.astype(np.float32), sigma=layered.sigma_map, coc=layered.coc_map,
                        merged_depth=layered.merged_depth, camera=camera, layered=layered, augment=augment,
                        timings=timings)


# ------------------------------------------------------------------------------------------------------ file layout
def sample_stem(index: int, source: Source) -> str:
    """File stem of sample ``index``: six-digit index + ``_`` + the source's stem (e.g. ``000042_alley_1``)."""
    return f"{index:06d}_{source.stem}"


def sample_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """Every file of one sample; ``meta`` is written last."""
    return {
        "image": out_dir / "image" / f"{stem}.png",
        "blur_map": out_dir / "blur_map" / f"{stem}.png",
        "blur_map_norm": out_dir / "blur_map_norm" / f"{stem}_norm.png",
        "blur_map_binary": out_dir / "blur_map_binary" / f"{stem}_binary.png",
        "depth": out_dir / "depth" / f"{stem}_depth.png",
        "meta": out_dir / "meta" / f"{stem}.json",
    }


def is_complete(out_dir: Path, stem: str) -> bool:
    """True when every file of sample ``stem`` (:func:`sample_paths`) exists under ``out_dir``."""
    return all(p.is_file() for p in sample_paths(out_dir, stem).values())


MAX_COUNT = 999_999
"""Most samples of one folder: stems are ``{index:06d}_{source}``, so above it the name order (the manifest's, a
listing's) would no longer be the index order (a billion spent minutes listing jobs before the first render)."""


def incomplete_beyond(out_dir: Path, count: int) -> list[str]:
    """Stems of samples with index >= ``count`` that have some of their files but not all (an interrupted run's,
    which a run of ``count`` samples never finishes), sorted."""
    stems = set()
    for key, path in sample_paths(out_dir, "STEM").items():
        suffix = path.stem[len("STEM"):]
        if path.parent.is_dir():
            for p in path.parent.glob(f"*{suffix}{path.suffix}"):
                stem = p.stem[: len(p.stem) - len(suffix)] if suffix else p.stem
                head = stem.split("_", 1)[0]
                if head.isdigit() and int(head) >= count and not p.name.startswith("."):
                    stems.add(stem)
    return sorted(s for s in stems if not is_complete(out_dir, s))


def _remove_stray_temps(paths: dict[str, Path]) -> None:
    """Delete temporary files a killed run left for this sample (only this sample's: shards never share one)."""
    for p in paths.values():
        if p.parent.is_dir():
            for tmp in p.parent.glob(f".{p.stem}.*.tmp"):
                tmp.unlink(missing_ok=True)


def _minmax_u8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, np.uint8)
    return sio.to_uint8((x - lo) / (hi - lo))


def write_sample(out_dir: Path, stem: str, result: SampleResult, meta: dict) -> None:
    """Write the sample's files (each atomically), metadata last."""
    paths = sample_paths(out_dir, stem)
    sio.write_image(paths["image"], result.image)
    # The file value exactly as the original computes it (float64, half away from zero); encoding the float32 σ map
    # could round the other way at ties (CoC 1.2 → 0 in the original).
    sio.write_bytes_atomic(paths["blur_map"], sio.encode_syndof_values(result.layered.sigma10))
    sio.write_bytes_atomic(paths["blur_map_norm"], sio.encode_png(_minmax_u8(result.sigma)))
    binary = np.where(result.coc > 1.0, 255, 0).astype(np.uint8)
    sio.write_bytes_atomic(paths["blur_map_binary"], sio.encode_png(binary))
    depth8 = _minmax_u8(result.merged_depth)
    sio.write_bytes_atomic(paths["depth"], sio.encode_png(np.repeat(depth8[..., None], 3, axis=2)))
    sio.write_json_atomic(paths["meta"], meta)


# ------------------------------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
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
    index: int
    stem: str
    status: Status
    message: str = ""
    timings: dict = field(default_factory=dict)


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``: independent of workers, shards and other samples."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def _resize_to(image: np.ndarray, depth: np.ndarray, max_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    if not max_size:
        return image, depth
    image, scale = shrink_long_side(image, max_size, minimum=2)
    if scale == 1.0:
        return image, depth
    import cv2

    size = image.shape[1::-1]
    # Nearest keeps metric depth values (no "flying pixels" mixed across discontinuities).
    depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
    return np.clip(image, 0.0, 1.0), depth


def run_job(job: Job) -> JobResult:
    """Make one sample (or find it already done); never raises for bad input."""
    out_dir = Path(job.out_dir)
    stem = sample_stem(job.index, job.source)
    if is_complete(out_dir, stem):
        return JobResult(job.index, stem, Status.DONE)
    paths = sample_paths(out_dir, stem)
    _remove_stray_temps(paths)
    rng = sample_rng(job.seed, job.index)
    try:
        image, depth, source_sha256 = job.source.load_recorded(rng)
        image, depth = _resize_to(image, depth, job.max_size)
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


def rebuild_manifest(out_dir: str | Path) -> int:
    """Rewrite DIR/manifest.jsonl from DIR/meta/*.json (sorted by stem), atomically. Returns the entry count."""
    out_dir = Path(out_dir)
    lines = []
    meta_dir = out_dir / "meta"
    if meta_dir.is_dir():
        for p in sorted(meta_dir.glob("*.json")):
            if not is_complete(out_dir, p.stem):
                continue
            try:
                lines.append(json.dumps(json.loads(p.read_text()), sort_keys=True))
            except (OSError, ValueError) as exc:
                log.warning("skipped %s in the manifest: %s", p, exc)
    sio.write_text_atomic(out_dir / "manifest.jsonl", "".join(line + "\n" for line in lines))
    return len(lines)


RECIPE_KEYS = ("max_coc", "kernel", "seed", "noise", "jpeg_quality", "max_size", "merge_tolerance")
"""dataset.json fields a rerun into the same folder must repeat (``count`` and ``shard`` may differ). A folder
whose dataset.json or meta lacks ``merge_tolerance`` was rendered exactly (0); dataset.json and meta record it only
when it is above 0, so an exact folder's files are the same as before the option existed."""
MIN_MAX_SIZE = 16
INPUT_KEYS = ("images", "depths", "depth_scale", "n_sources", "sources_sha256")
"""dataset.json fields naming what the samples were made from: the resolved --images and --depths folders (null:
the built-in data / random depth), --depth-scale (null: the depth format's default), the number of sources
(sample i uses source i mod n_sources) and :func:`sources_digest` of their names in order (a photo renamed in
--images keeps the count but moves sources to other indices: sample i of the rerun is another photo). A rerun must
repeat them; a dataset.json without one of them (written before they were recorded) leaves it unknown, and it is
then not added while the folder holds samples."""
DATASET_FORMAT = "syndof"
GENERATOR = "syndof.generate"


def sources_digest(sources: list[Source]) -> str:
    """SHA-256 (hex) of the sources' kinds and file names in order (the image and depth file names; folders and
    file contents are not read): equal for one --images / --depths listing, different once a file is renamed,
    added or removed, or the depth files are paired otherwise."""
    import hashlib

    lines = [f"{s.kind.value}\t{s.name}\t{Path(s.image_path).name if s.image_path else ''}\t"
             f"{Path(s.depth_path).name if s.depth_path else ''}" for s in sources]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


INPUT_NOTES = {"sources_sha256": "the sources' names (a file in --images / --depths renamed, added or removed)"}
"""How :func:`check_recipe` names an input key whose value means nothing to a user."""


def _number_in(value, lo: float, hi: float) -> bool:
    try:
        return math.isfinite(float(value)) and lo <= float(value) <= hi
    except (TypeError, ValueError):
        return False


def max_coc_problem(max_coc, name: str = "--max-coc") -> str | None:
    """One line naming ``name`` unless ``max_coc`` is a whole number of px in 2..MAX_MAX_COC (9.7 passed and was
    rendered and recorded as 9), else None."""
    if isinstance(max_coc, bool) or not _number_in(max_coc, 2, MAX_MAX_COC) or not float(max_coc).is_integer():
        return f"{name} must be an integer in 2..{MAX_MAX_COC} px (σ_max = (max_coc − 1)/4), got {max_coc!r}"
    return None


def option_problem(*, max_coc: int, kernel: Kernel | str, device: str, max_size: int | None, threads: int | None,
                   workers: int, jpeg_quality: int | None, merge_tolerance: float = 0.0, seed: int = 0,
                   depth_scale: float | None = None) -> str | None:
    """The first invalid option of :func:`generate` as one line naming it, or None (checked before any write)."""
    problem = max_coc_problem(max_coc)
    if problem:
        return problem
    try:
        parse_choice(Kernel, kernel, "--kernel")
    except ValueError as exc:
        return str(exc)
    if max_size is not None and max_size < MIN_MAX_SIZE:
        return f"--max-side must be 0 (no limit) or >= {MIN_MAX_SIZE} px, got {max_size}"
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        return f"--seed must be an integer >= 0, got {seed!r}"
    from syndof.depth_io import valid_scale

    if depth_scale is not None and not valid_scale(depth_scale):
        return f"--depth-scale must be a finite number > 0 (raw depth × K = mm), got {depth_scale!r}"
    if threads is not None and threads < 1:
        return f"--threads must be >= 1, got {threads}"
    if workers < 0:
        return f"--workers must be >= 0, got {workers}"
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        return f"--jpeg-quality must be in 1..100, got {jpeg_quality}"
    from syndof.blur import check_merge_tolerance

    try:
        check_merge_tolerance(merge_tolerance, what="--merge-tolerance")
    except ValueError as exc:
        return str(exc)
    try:
        cli.check_device(device)
    except ValueError as exc:
        return str(exc)
    return None


def _sample_recipe(meta: dict) -> dict:
    """The RECIPE_KEYS a sample's meta/*.json records (max_size is not recorded per sample)."""
    augment = meta.get("augment") or {}
    return {"max_coc": meta.get("max_coc"), "kernel": meta.get("kernel"), "seed": meta.get("seed"),
            "noise": augment.get("noise") is not None, "jpeg_quality": augment.get("jpeg_quality"),
            "merge_tolerance": meta.get("merge_tolerance", 0.0)}


def check_recipe(out_dir: Path, recipe: dict) -> None:
    """Refuse to add to (or "skip" into) a folder generated with other settings or inputs: they are compared with
    its dataset.json and with one finished sample's meta, each (the inputs, :data:`INPUT_KEYS`, with dataset.json
    only, where both it and ``recipe`` record them): a sample whose meta disagrees with a dataset.json that the
    options match (an edited dataset.json) is refused too. Raises ValueError naming the folder and the settings."""
    known: dict = {}
    ds_path = out_dir / "dataset.json"
    if ds_path.is_file():
        old = sio.read_json_object(ds_path)
        known.update({k: old[k] for k in RECIPE_KEYS if k in old})
        known.setdefault("merge_tolerance", 0.0)  # recorded only when above 0
        inputs = [INPUT_NOTES.get(k, f"{k} {old[k]!r} (now {recipe[k]!r})") for k in INPUT_KEYS
                  if k in old and k in recipe and old[k] != recipe[k]]
        if inputs:
            raise ValueError(f"{out_dir}: was generated from other inputs: {', '.join(inputs)}: rerun with the "
                             "same --images/--depths/--depth-scale to complete it, or use another --out folder")
    first_meta = next(iter(sorted((out_dir / "meta").glob("*.json"))), None) if (out_dir / "meta").is_dir() else None
    if first_meta is not None:
        meta = sio.read_json(first_meta)
        if isinstance(meta, dict):
            sample = _sample_recipe(meta)
            # the sample's own record too, not only where dataset.json is silent: a dataset.json edited to
            # max_coc 9 let --max-coc 9 add samples beside the max_coc 29 ones, all labelled 9
            disagree = [f"{k} {v!r} in {first_meta.name} (now {recipe[k]!r})" for k, v in sample.items()
                        if k in known and known[k] == recipe[k] and v != recipe[k]]
            if disagree:
                raise ValueError(f"{out_dir}: its samples were generated with {', '.join(disagree)}, although "
                                 "dataset.json says otherwise: use another --out folder")
            known.update({k: v for k, v in sample.items() if k not in known})
    differ = [f"{k} {known[k]!r} (now {recipe[k]!r})" for k in RECIPE_KEYS if k in known and known[k] != recipe[k]]
    if differ:
        raise ValueError(f"{out_dir}: was generated with {', '.join(differ)}: rerun with the same options to "
                         "complete it, or use another --out folder")


def changed_source(out_dir: Path, samples: Iterable[tuple[int, Source]]) -> str | None:
    """One line when a complete sample among ``samples`` ((index, source) pairs of this run) was made from a source
    file whose content has changed since: its meta's ``source_sha256`` (:meth:`Source.load_recorded`) differs from
    the file's SHA-256 now. A resume would count it as done and mix samples of two versions of one photo under its
    name. Each file is hashed once; a sample without the record (written before 6 Dec 2026), and a file that cannot
    be read now (the sample stays complete, as before), are not checked. None when nothing changed."""
    if not _has_samples(out_dir):  # a new folder: nothing to check (and no stat per index of a large --count)
        return None
    now: dict[str, str | None] = {}
    for index, source in samples:
        stem = sample_stem(index, source)
        if not is_complete(out_dir, stem):
            continue
        meta = _read_meta(sample_paths(out_dir, stem)["meta"])
        recorded = meta.get("source_sha256")
        if not isinstance(recorded, dict):
            continue
        for role, path in (("image", source.image_path), ("depth", source.depth_path)):
            if path is None or role not in recorded:
                continue
            if path not in now:
                now[path] = sio.readable_file_sha256(path)
            if now[path] is not None and now[path] != recorded[role]:
                return (f"{out_dir}: {path} changed since sample {stem} was made from it (SHA-256 "
                        f"{str(recorded[role])[:12]}…, now {now[path][:12]}…): restore it to complete this folder, or "
                        "use another --out folder")
    return None


def _read_meta(path: Path) -> dict:
    """The JSON object of a sample's meta file, or {} when it is not one (a damaged file: the manifest's to name)."""
    try:
        meta = sio.read_json(path)
    except sio.InputError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies inside it (both resolved)."""
    return path == folder or folder in path.parents


def _has_samples(out_dir: Path) -> bool:
    meta = out_dir / "meta"
    return meta.is_dir() and any(meta.glob("*.json"))


def check_out_dir(out_dir: Path, inputs: dict[str, Path | None]) -> None:
    """Refuse an --out that would mix with or destroy other files (ValueError, one line naming it): a path that is
    not a folder; one that is, lies in or holds an input folder (``inputs``: option name → folder or None); an
    existing non-empty folder that is not a dataset of this generator (its dataset.json must say
    ``"format": "syndof"`` and, if it names a generator, this one)."""
    problem = None if out_dir.exists() else sio.special_file_problem(out_dir)  # a link to nothing, a link loop
    if problem is not None:  # (a loop, or one in a folder above it, ended in resolve()'s RuntimeError traceback)
        raise ValueError(f"--out {out_dir}: {problem}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: exists and is not a folder")
    out_abs = out_dir.resolve()
    for option, folder in inputs.items():
        if folder is None or not Path(folder).is_dir():  # no folder (missing, a link loop): refused by its reader
            continue
        in_abs = Path(folder).resolve()
        if _inside(out_abs, in_abs) or _inside(in_abs, out_abs):
            where = "is" if out_abs == in_abs else "is inside" if _inside(out_abs, in_abs) else "contains"
            raise ValueError(f"--out {out_dir} {where} the {option} folder {folder}: write the dataset to a "
                             "separate folder")
    if not out_dir.is_dir():
        return
    entries = [p for p in out_dir.iterdir() if not (p.name.startswith(".dataset.") and p.name.endswith(".tmp"))]
    if not entries:
        return
    ds_path = out_dir / "dataset.json"
    why = None
    if not ds_path.is_file():
        why = "has no dataset.json"
    else:
        try:
            ds = sio.read_json_object(ds_path)
        except sio.InputError:
            ds = None
        if ds is None:
            why = "has an unreadable dataset.json"
        elif ds.get("format") != DATASET_FORMAT or ds.get("generator", GENERATOR) != GENERATOR:
            why = (f"has a dataset.json of format {ds.get('format')!r}"
                   + (f" by {ds.get('generator')!r}" if "generator" in ds else ""))
    if why:
        raise ValueError(f"--out {out_dir}: is not empty and {why}, so it is not a dataset of {GENERATOR}: "
                         "choose a new or empty --out folder")


@contextlib.contextmanager
def _recipe_lock(out_dir: Path):
    """A blocking ``flock`` on ``out_dir`` for the recipe check and the dataset.json write only (shards of one
    recipe still run side by side; the lock is held for milliseconds). Unlocked where ``flock`` does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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
    with _recipe_lock(out_dir):
        # again under the lock: two runs started together (shards with another --seed) both passed the check above
        # before either wrote dataset.json, and mixed their samples in one folder
        check_recipe(out_dir, {"merge_tolerance": 0.0, **recipe, **inputs})
        old = sio.read_json_object(ds_path) if ds_path.is_file() else None
        if old is not None and _has_samples(out_dir):
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
