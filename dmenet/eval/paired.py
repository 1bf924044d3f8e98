"""Paired comparison of two evaluations on the same images: mean difference and its bootstrap interval.

    python -m dmenet.eval.paired BASE CANDIDATE [CANDIDATE ...] --metric mae [--resamples 10000] [--seed 0]
    dmenet-paired eval/dmenet eval/galetto --metric mae          # the same, as a console script

BASE and each CANDIDATE are method folders written by ``python -m dmenet.evaluate`` (their ``per_image.csv``), or
the CSV files themselves. Rows are paired by ``stem``; both must hold the same stems (exit 2 naming one that is
missing), each stem once, with finite values of magnitude at most 1e300 (a score beyond it is no measurement: its
sums and differences overflow); folders whose ``metrics.json`` name different benchmarks, or were scored under
different protocol tags (resolution, resize, GT handling, …; the map source's own tags aside), are
refused.
Every input is checked before anything is printed. For each candidate it prints the means, the mean difference
Δ = candidate − base, its 95 % percentile bootstrap interval over images (``--resamples`` resampled image sets
drawn by ``numpy.random.default_rng(seed)``, the same sets for every candidate; with one image the interval is
undefined and printed as such), and on how many images the candidate is better (``--higher-is-better`` for metrics
such as Fmax; lower is better by default, as for MAE).
This is the test the project's rules name ("paired bootstrap, 10,000 resamples, seed 0"): rule g16's stage 1
reproduces to four decimals (``tests/test_evaluate.py``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from syndof import cli
from syndof.io import InputError, read_json_object


@dataclass(frozen=True)
class Paired:
    """Base and candidate means, Δ = candidate − base, its 95 % interval [low, high], images where the candidate is
    better, and the image count."""

    base: float
    candidate: float
    delta: float
    low: float
    high: float
    better: int
    n: int


MAX_RESAMPLES = 1_000_000
"""Largest ``--resamples``: the resampled index sets are held in memory (resamples × images × 8 bytes)."""

MAX_MAGNITUDE = 1e300
"""Largest per-image |value| taken. Near float64's limit (1.8e308) a difference or a sum overflows to inf (1e308
printed ``inf`` after a NumPy warning, exit 0); below this bound every mean, difference and bootstrap mean of fewer
than 8·10⁷ images is finite. No metric comes near it: a larger value is a damaged file."""

MIN_IMAGES = 2
"""A bootstrap interval needs at least this many images (one image resamples to itself: a zero-width interval)."""


def bootstrap_indices(n: int, resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """(resamples, n) int64 image indices in [0, n), drawn with replacement: the resampled sets every comparison
    shares. ValueError for n < 2 (no interval) or resamples < 1."""
    if n < MIN_IMAGES:
        raise ValueError(f"a bootstrap interval needs at least {MIN_IMAGES} images, got {n}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def paired_bootstrap(base: np.ndarray, candidate: np.ndarray, indices: np.ndarray,
                     higher_is_better: bool = False) -> Paired:
    """Compare per-image values of the same images (same order): two (n,) finite arrays, |values| at most
    :data:`MAX_MAGNITUDE`, n >= 2. ``indices``: the (resamples, n) integer array of :func:`bootstrap_indices` for
    this n, values in [0, n). ValueError naming the problem otherwise (n = 1 would give a zero-width interval;
    indices for another n would resample a subset; larger values overflow)."""
    base, candidate = np.asarray(base, np.float64), np.asarray(candidate, np.float64)
    if base.shape != candidate.shape or base.ndim != 1 or not len(base):
        raise ValueError(f"paired values need two equal-length 1-D arrays, got {base.shape} and {candidate.shape}")
    n = len(base)
    if n < MIN_IMAGES:
        raise ValueError(f"a bootstrap interval needs at least {MIN_IMAGES} images, got {n}")
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(candidate))):
        raise ValueError("paired values must be finite (NaN / inf found)")
    largest = max(np.abs(base).max(), np.abs(candidate).max())
    if largest > MAX_MAGNITUDE:
        raise ValueError(f"paired values must be at most {MAX_MAGNITUDE:g} in magnitude (their differences and means "
                         f"overflow), got {largest:g}")
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != n or not indices.shape[0]:
        raise ValueError(f"indices must be (resamples, {n}) for {n} images (bootstrap_indices({n}, ...)), "
                         f"got shape {indices.shape}")
    if not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0 or indices.max() >= n:
        raise ValueError(f"indices must be integers in [0, {n}), got {indices.dtype} in "
                         f"[{indices.min()}, {indices.max()}]")
    diff = candidate - base
    boots = diff[indices].mean(axis=1)
    better = int(np.sum(diff > 0) if higher_is_better else np.sum(diff < 0))
    return Paired(float(base.mean()), float(candidate.mean()), float(diff.mean()),
                  float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)), better, len(diff))


def csv_path(path: Path) -> Path:
    """The ``per_image.csv`` of an evaluation folder, or ``path`` itself when it names a file."""
    return path / "per_image.csv" if path.is_dir() else path


def read_per_image(path: Path, metric: str, allow_nan: bool = False) -> dict[str, float]:
    """{stem: value} of ``metric`` from an evaluation folder's ``per_image.csv`` (or that file).

    Raises InputError naming the file: no such file, no rows, no ``stem`` / ``metric`` column, a stem listed twice
    (which value would count?), or a value that is not a finite number or beyond :data:`MAX_MAGNITUDE` in
    magnitude (a mean over it is meaningless, or overflows). With ``allow_nan`` an empty or NaN value is kept as
    NaN: evaluate writes NaN where a metric is undefined (F-measures of an all-sharp GT); :func:`main` leaves those
    images out."""
    path = csv_path(path)
    if not path.is_file():
        raise InputError(path, "no per_image.csv (an output folder of python -m dmenet.evaluate)")
    try:  # utf-8-sig: a CSV saved by a spreadsheet starts with a byte-order mark ("no column 'stem'" before)
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:  # a binary file: the line named no file
        raise InputError(path, f"not a CSV text file ({exc})") from None
    if not columns:
        raise InputError(path, "is empty (no header, no rows)")
    missing = [c for c in ("stem", metric) if c not in columns]
    if missing:
        have = ", ".join(k for k in columns if k != "stem")
        raise InputError(path, f"no column {missing[-1]!r} (has: {have or 'none'})")
    if not rows:
        raise InputError(path, "has a header but no rows (an evaluation of no images); nothing to compare")
    values: dict[str, float] = {}
    for r in rows:
        stem, text = r["stem"], r[metric]
        if stem in values:
            raise InputError(path, f"stem {stem!r} is listed twice; an evaluation has one row per image")
        try:
            value = float(text)
        except (TypeError, ValueError):
            if not (allow_nan and text in ("", None)):
                raise InputError(path, f"stem {stem!r}: column {metric!r} is not a number ({text!r})") from None
            value = float("nan")
        if np.isnan(value) and allow_nan:
            values[stem] = value
            continue
        if not np.isfinite(value):
            raise InputError(path, f"stem {stem!r}: {metric} is {text}, not a finite number")
        if abs(value) > MAX_MAGNITUDE:
            raise InputError(path, f"stem {stem!r}: {metric} is {text}, beyond ±{MAX_MAGNITUDE:g} (no score; its "
                                   "differences and means would overflow)")
        values[stem] = value
    return values


def _metrics_of(path: Path) -> dict | None:
    """An evaluation folder's ``metrics.json`` (beside ``per_image.csv``) as a dict; None when there is none (a bare
    CSV). An unreadable metrics.json is an InputError naming it."""
    folder = path if path.is_dir() else path.parent if path.name == "per_image.csv" else None
    if folder is None or not (folder / "metrics.json").is_file():
        return None
    return read_json_object(folder / "metrics.json")


def report_metrics(folder: Path, keys: tuple[str, ...]) -> dict:
    """The ``metrics`` object of the evaluation folder ``folder``'s ``metrics.json`` (what ``dmenet.evaluate`` wrote
    for one method), holding at least ``keys``, each a number (NaN as ``dmenet.evaluate`` writes an undefined
    figure); an InputError naming the file when it is missing, malformed, lacks one of them or holds another value
    there (null, a string: the judges' comparisons were a TypeError traceback) (the rule judges of experiments/
    read their figures with it)."""
    path = folder / "metrics.json"
    metrics = read_json_object(path).get("metrics")
    missing = [k for k in keys if not isinstance(metrics, dict) or k not in metrics]
    if missing:
        raise InputError(path, f"no metrics.{missing[0]} (not a dmenet.evaluate report of this benchmark?)")
    wrong = [k for k in keys if isinstance(metrics[k], bool) or not isinstance(metrics[k], (int, float))]
    if wrong:
        raise InputError(path, f"metrics.{wrong[0]} is {json.dumps(metrics[wrong[0]])}, not a number")
    return metrics


def benchmark_of(path: Path) -> str | None:
    """The ``benchmark`` an evaluation folder's ``metrics.json`` names (beside ``per_image.csv``); None when there is
    no metrics.json (a bare CSV) or it names none. An unreadable metrics.json is an InputError naming it."""
    meta = _metrics_of(path)
    benchmark = None if meta is None else meta.get("benchmark")
    return None if benchmark is None else str(benchmark)


METHOD_TAGS = ("prediction_polarity", "prediction_mapping", "input")
"""Protocol tags of metrics.json that describe the map source (what a method or saved map gives, what it saw), not
the scoring: they may differ between the two sides of a comparison. Every other tag must agree."""


def protocol_of(path: Path) -> dict | None:
    """The scoring tags (metrics.json ``protocol`` less :data:`METHOD_TAGS`) of an evaluation folder; None for a bare
    CSV or a metrics.json without them."""
    meta = _metrics_of(path)
    protocol = None if meta is None else meta.get("protocol")
    if not isinstance(protocol, dict):
        return None
    return {k: v for k, v in protocol.items() if k not in METHOD_TAGS}


def protocol_difference(a: dict, b: dict) -> str | None:
    """The first scoring tag on which two :func:`protocol_of` dicts differ, as ``key: A vs B``; None when they agree."""
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{key}: {a.get(key)!r} vs {b.get(key)!r}"
    return None


EXAMPLE = "dmenet-paired runs/eval_example runs/eval_example --metric mae"  # the evaluate example against itself


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    p = cli.parser("dmenet.eval.paired", __doc__, EXAMPLE)
    p.add_argument("base", type=Path, help="evaluation folder (or per_image.csv) of the base method")
    p.add_argument("candidates", type=Path, nargs="+", help="evaluation folders (or CSVs) of the candidates")
    p.add_argument("--metric", required=True, help="a per_image.csv column, e.g. mae, fmax")
    p.add_argument("--higher-is-better", action="store_true", help="the metric improves upwards (e.g. fmax)")
    p.add_argument("--resamples", type=cli.positive_int, default=10_000,
                   help=f"bootstrap resamples (default 10000, at most {MAX_RESAMPLES:,})")
    cli.add_seed(p, use="draws the bootstrap resamples")
    a = p.parse_args(argv)
    if a.resamples > MAX_RESAMPLES:  # the (resamples, images) index array: 10^10 × 3 images asked for 224 GiB
        return cli.fail(f"--resamples {a.resamples}: at most {MAX_RESAMPLES:,} (the interval settles long before; "
                        "10,000 is the project's rule)")
    # every folder is read and checked before anything is printed: one error line, or the whole comparison
    base = read_per_image(a.base, a.metric, allow_nan=True)
    stems = sorted(base)
    candidates = [(path, read_per_image(path, a.metric, allow_nan=True)) for path in a.candidates]
    named = [(path, benchmark_of(path)) for path in [a.base, *a.candidates]]
    named = [(path, b) for path, b in named if b is not None]
    for path, benchmark in named[1:]:
        if benchmark != named[0][1]:
            raise InputError(path, f"is an evaluation of benchmark {benchmark!r}, {named[0][0]} of "
                                   f"{named[0][1]!r}; paired differences need the same benchmark's images")
    scored = [(path, protocol_of(path)) for path in [a.base, *a.candidates]]
    scored = [(path, tags) for path, tags in scored if tags is not None]
    for path, tags in scored[1:]:
        differs = protocol_difference(scored[0][1], tags)
        if differs:
            raise InputError(path, f"was scored under another protocol than {scored[0][0]} ({differs}); paired "
                                   "differences need the same scoring (numbers of two protocols are not comparable)")
    for path, cand in candidates:
        odd = sorted(set(stems) ^ set(cand))
        if odd:
            raise InputError(path, f"{len(odd)} stem(s) not in both evaluations, e.g. {odd[0]}")
    # an undefined value (NaN: e.g. Fmax of an all-sharp GT) is left out when it is undefined in every evaluation
    # (the same GT), as evaluate's means leave it out; defined in one and not in another is an error
    undefined = [s for s in stems if np.isnan(base[s])]
    for path, values in candidates:
        lone = [s for s in stems if np.isnan(values[s]) != np.isnan(base[s])]
        if lone:
            nan_in, other = (csv_path(path), a.base) if np.isnan(values[lone[0]]) else (csv_path(a.base), path)
            raise InputError(nan_in, f"stem {lone[0]!r}: {a.metric} is nan, not a finite number, where {other} has "
                                     "a value (undefined in only one of them: not the same GT)")
    if undefined:
        stems = [s for s in stems if s not in set(undefined)]
        if not stems:
            raise InputError(a.base, f"{a.metric} is undefined on every image; nothing to compare")
        print(f"{a.metric} undefined on {len(undefined)} image(s) in every evaluation (e.g. an all-sharp GT), left "
              f"out: {', '.join(undefined[:5])}{' …' if len(undefined) > 5 else ''}")
    if len(stems) < MIN_IMAGES:  # one image: the difference, but no interval (it would have zero width)
        print(f"{a.metric}: candidate − base over {len(stems)} image; no bootstrap interval (needs at least "
              f"{MIN_IMAGES} images); base {a.base}: {base[stems[0]]:.4f}")
        for path, cand in candidates:
            delta = cand[stems[0]] - base[stems[0]]
            better = delta > 0 if a.higher_is_better else delta < 0
            print(f"{path}: {cand[stems[0]]:.4f}, Δ {delta:+.4f} [interval undefined], better on {int(better)} of 1")
        return 0
    indices = bootstrap_indices(len(stems), a.resamples, a.seed)
    print(f"{a.metric}: candidate − base over {len(stems)} images, 95 % bootstrap interval ({a.resamples} resamples, "
          f"seed {a.seed}); base {a.base}: {np.mean([base[s] for s in stems]):.4f}")
    for path, cand in candidates:
        r = paired_bootstrap(np.array([base[s] for s in stems]), np.array([cand[s] for s in stems]), indices,
                             a.higher_is_better)
        print(f"{path}: {r.candidate:.4f}, Δ {r.delta:+.4f} [{r.low:+.4f}, {r.high:+.4f}], better on {r.better} of "
              f"{r.n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
