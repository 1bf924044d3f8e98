"""Paired comparison of two evaluations on the same images: mean difference and its bootstrap interval.

    python -m dmenet.eval.paired BASE CANDIDATE [CANDIDATE ...] --metric mae [--resamples 10000] [--seed 0]
    dmenet-paired eval/dmenet eval/galetto --metric mae          # the same, as a console script

BASE and each CANDIDATE are method folders written by ``python -m dmenet.evaluate`` (their ``per_image.csv``), or
the CSV files themselves. Rows are paired by ``stem``; both must hold the same stems (exit 2 naming one that is
missing). For each candidate it prints the means, the mean difference Δ = candidate − base, its 95 % percentile
bootstrap interval over images (``--resamples`` resampled image sets drawn by ``numpy.random.default_rng(seed)``,
the same sets for every candidate), and on how many images the candidate is better (``--higher-is-better`` for
metrics such as Fmax; lower is better by default, as for MAE). This is the test the project's rules name ("paired
bootstrap, 10,000 resamples, seed 0"): rule g16's stage 1 reproduces to four decimals (``tests/test_evaluate.py``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from syndof import cli
from syndof.io import InputError


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


def bootstrap_indices(n: int, resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """(resamples, n) image indices drawn with replacement: the resampled sets every comparison shares."""
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def paired_bootstrap(base: np.ndarray, candidate: np.ndarray, indices: np.ndarray,
                     higher_is_better: bool = False) -> Paired:
    """Compare per-image values of the same images (same order). ``indices``: :func:`bootstrap_indices`."""
    base, candidate = np.asarray(base, np.float64), np.asarray(candidate, np.float64)
    if base.shape != candidate.shape or base.ndim != 1 or not len(base):
        raise ValueError(f"paired values need two equal-length 1-D arrays, got {base.shape} and {candidate.shape}")
    diff = candidate - base
    boots = diff[indices].mean(axis=1)
    better = int(np.sum(diff > 0) if higher_is_better else np.sum(diff < 0))
    return Paired(float(base.mean()), float(candidate.mean()), float(diff.mean()),
                  float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)), better, len(diff))


def read_per_image(path: Path, metric: str) -> dict[str, float]:
    """{stem: value} of ``metric`` from an evaluation folder's ``per_image.csv`` (or that file)."""
    path = path / "per_image.csv" if path.is_dir() else path
    if not path.is_file():
        raise InputError(path, "no per_image.csv (an output folder of python -m dmenet.evaluate)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "stem" not in rows[0] or metric not in rows[0]:
        have = ", ".join(k for k in (rows[0] if rows else {}) if k != "stem")
        raise InputError(path, f"no column {metric!r} (has: {have or 'no rows'})")
    try:
        return {r["stem"]: float(r[metric]) for r in rows}
    except ValueError as exc:
        raise InputError(path, f"column {metric!r}: {exc}") from None


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
    base = read_per_image(a.base, a.metric)
    stems = sorted(base)
    indices = bootstrap_indices(len(stems), a.resamples, a.seed)
    print(f"{a.metric}: candidate − base over {len(stems)} images, 95 % bootstrap interval ({a.resamples} resamples, "
          f"seed {a.seed}); base {a.base}: {np.mean([base[s] for s in stems]):.4f}")
    for path in a.candidates:
        cand = read_per_image(path, a.metric)
        odd = sorted(set(stems) ^ set(cand))
        if odd:
            raise InputError(path, f"{len(odd)} stem(s) not in both evaluations, e.g. {odd[0]}")
        r = paired_bootstrap(np.array([base[s] for s in stems]), np.array([cand[s] for s in stems]), indices,
                             a.higher_is_better)
        print(f"{path}: {r.candidate:.4f}, Δ {r.delta:+.4f} [{r.low:+.4f}, {r.high:+.4f}], better on {r.better} of "
              f"{r.n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
