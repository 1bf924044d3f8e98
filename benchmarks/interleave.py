"""Timing variants side by side: their steps interleaved on the same inputs, so load on a shared machine falls on
all of them alike (used by ``bench_train.py --variants`` and ``bench_distill_train.py``)."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def time_interleaved(steps: dict[str, Callable[[object], object]], make_input: Callable[[], object], timed: int,
                     warmup: int, sync: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Wall seconds of each variant's ``step(input)`` over ``timed`` rounds after ``warmup`` untimed ones; every
    round draws one input and runs every variant on it, in the order given. ``sync`` (e.g. a CUDA synchronize) is
    called before and after each timed call."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + timed):
        batch = make_input()
        for name, step in steps.items():
            if sync:
                sync()
            start = time.perf_counter()
            step(batch)
            if sync:
                sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def speedup_rows(times: dict[str, list[float]]) -> list[tuple[str, float, float, float]]:
    """(variant, median s, min s, speed-up of the median over the first variant's) per variant."""
    base = statistics.median(next(iter(times.values())))
    return [(name, statistics.median(t), min(t), base / statistics.median(t)) for name, t in times.items()]
