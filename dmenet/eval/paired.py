"""Paired comparison of two evaluations on the same images: mean difference and its bootstrap interval.

    python -m dmenet.eval.paired BASE CANDIDATE [CANDIDATE ...] --metric mae [--resamples 10000] [--seed 0]
    dmenet-paired eval/dmenet eval/galetto --metric mae          # the same, as a console script

BASE and each CANDIDATE are method folders written by ``python -m dmenet.evaluate`` (their ``per_image.csv``), or
the CSV files themselves. Rows are paired by ``stem``; both must hold the same stems (exit 2 naming one that is
missing), each stem once, with finite values; folders whose ``metrics.json`` name different benchmarks are refused.
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


MIN_IMAGES = 2
"""A bootstrap interval needs at least this many images (one image resamples to itself: a zero-width interval)."""


def bootstrap_indices(n: int, resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """(resamples, n) image indices drawn with replacement: the resampled sets every comparison shares. ValueError
    for n < 2 (no interval) or resamples < 1."""
    if n < MIN_IMAGES:
        raise ValueError(f"a bootstrap interval needs at least {MIN_IMAGES} images, got {n}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def paired_bootstrap(base: np.ndarray, candidate: np.ndarray, indices: np.ndarray,
                     higher_is_better: bool = False) -> Paired:
    """Compare per-image values of the same images (same order): two (n,) finite arrays, n >= 2. ``indices``: the
    (resamples, n) integer array of :func:`bootstrap_indices` for this n, values in [0, n). ValueError naming the
    problem otherwise (n = 1 would give a zero-width interval; indices for another n would resample a subset)."""
    base, candidate = np.asarray(base, np.float64), np.asarray(candidate, np.float64)
    if base.shape != candidate.shape or base.ndim != 1 or not len(base):
        raise ValueError(f"paired values need two equal-length 1-D arrays, got {base.shape} and {candidate.shape}")
    n = len(base)
    if n < MIN_IMAGES:
        raise ValueError(f"a bootstrap interval needs at least {MIN_IMAGES} images, got {n}")
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(candidate))):
        raise ValueError("paired values must be finite (NaN / inf found)")
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


def read_per_image(path: Path, metric: str) -> dict[str, float]:
    """{stem: value} of ``metric`` from an evaluation folder's ``per_image.csv`` (or that file).

    Raises InputError naming the file: no such file, no rows, no ``stem`` / ``metric`` column, a stem listed twice
    (which value would count?), or a value that is not a finite number (a mean over it is meaningless)."""
    path = csv_path(path)
    if not path.is_file():
        raise InputError(path, "no per_image.csv (an output folder of python -m dmenet.evaluate)")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
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
            raise InputError(path, f"stem {stem!r}: column {metric!r} is not a number ({text!r})") from None
        if not np.isfinite(value):
            raise InputError(path, f"stem {stem!r}: {metric} is {text}, not a finite number")
        values[stem] = value
    return values


def benchmark_of(path: Path) -> str | None:
    """The ``benchmark`` an evaluation folder's ``metrics.json`` names (beside ``per_image.csv``); None when there is
    no metrics.json (a bare CSV) or it names none. An unreadable metrics.json is an InputError naming it."""
    folder = path if path.is_dir() else path.parent if path.name == "per_image.csv" else None
    if folder is None or not (folder / "metrics.json").is_file():
        return None
    meta = read_json_object(folder / "metrics.json")
    benchmark = meta.get("benchmark")
    return None if benchmark is None else str(benchmark)


EXAMPLE = "dmenet-paired runs/eval_example runs/eval_example --metric mae"  # the evaluate example against itself


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("dmenet.eval.paired", __doc__, EXAMPLE)
    p.add_argument("base", type=Path, help="evaluation folder (or per_image.csv) of the base method")
    p.add_argument("candidates", type=Path, nargs="+", help="evaluation folders (or CSVs) of the candidates")
    p.add_argument("--metric", required=True, help="a per_image.csv column, e.g. mae, fmax")
    p.add_argument("--higher-is-better", action="store_true", help="the metric improves upwards (e.g. fmax)")
    p.add_argument("--resamples", type=cli.positive_int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    # every folder is read and checked before anything is printed: one error line, or the whole comparison
    base = read_per_image(a.base, a.metric)
    stems = sorted(base)
    candidates = [(path, read_per_image(path, a.metric)) for path in a.candidates]
    named = [(path, benchmark_of(path)) for path in [a.base, *a.candidates]]
    named = [(path, b) for path, b in named if b is not None]
    for path, benchmark in named[1:]:
        if benchmark != named[0][1]:
            raise InputError(path, f"is an evaluation of benchmark {benchmark!r}, {named[0][0]} of "
                                   f"{named[0][1]!r}; paired differences need the same benchmark's images")
    for path, cand in candidates:
        odd = sorted(set(stems) ^ set(cand))
        if odd:
            raise InputError(path, f"{len(odd)} stem(s) not in both evaluations, e.g. {odd[0]}")
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
