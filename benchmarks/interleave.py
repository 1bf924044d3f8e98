"""Timing variants side by side: their steps interleaved on the same inputs, so load on a shared machine falls on
all of them alike (used by ``bench_train.py --variants``, ``bench_distill_train.py`` and others); and what every
script of benchmarks/ shares: its parser (:func:`parser`), the machine line printed beside the figures
(:func:`machine_line`) and the check of an output path (:func:`output_problem`). Never imported by the package."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
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


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds of each of ``repeats`` calls of ``fn()`` after ``warmup`` untimed ones (with one
    torch thread the CPU time stays close to the uncontended run time when other processes share the cores)."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall and median process-CPU seconds of :func:`time_calls`."""
    walls, cpus = time_calls(fn, repeats, warmup)
    return statistics.median(walls), statistics.median(cpus)


def speedup_rows(times: dict[str, list[float]]) -> list[tuple[str, float, float, float]]:
    """(variant, median s, min s, speed-up of the median over the first variant's) per variant."""
    base = statistics.median(next(iter(times.values())))
    return [(name, statistics.median(t), min(t), base / statistics.median(t)) for name, t in times.items()]


# ------------------------------------------------------------------------------------ what every script shares
def parser(name: str, doc: str | None, example: str):
    """:func:`syndof.cli.script_parser` for ``python benchmarks/NAME.py``: that ``prog``, and the whole docstring as the
    description, so that ``--help`` says what is measured, in which units and on what machine load."""
    from syndof import cli

    p = cli.script_parser(f"benchmarks/{name}.py", doc, example)
    p.description = (doc or "").strip()
    return p


def machine_line(threads: bool = True) -> str:
    """``N CPUs, T torch thread(s), load average L (1 min)``: what a printed figure was measured on (``threads``
    False: without this process's torch threads, for a script whose children do the work)."""
    text = f"{os.cpu_count()} CPUs, "
    if threads:
        import torch

        text += f"{torch.get_num_threads()} torch thread(s), "
    return text + f"load average {os.getloadavg()[0]:.2f} (1 min)"


REPO = Path(__file__).resolve().parents[1]


def output_problem(path: str | Path, option: str, folder: bool = False) -> str | None:
    """``option PATH`` as one line when a script must not write there, else None: inside the repository's
    ``checkpoints/`` (shipped files), an earlier result (an existing file; for a ``folder`` output, a folder
    that is not empty: :func:`syndof.cli.new_folder_problem`), or a place no file can be written (its folder is a
    file or not writable: :func:`syndof.cli.folder_to_write_problem`), checked before the script's long work."""
    from syndof import cli

    target = Path(path).absolute()
    if target.resolve().is_relative_to((REPO / "checkpoints").resolve()):
        return (f"{option} {path}: inside checkpoints/ (shipped files); write the results elsewhere (nothing was "
                "changed)")
    if folder:
        problem = cli.new_folder_problem(path, "this script writes a new folder")
        return problem.replace("--out", option, 1) if problem else cli.folder_to_write_problem(path, f"{option} {path}")
    if os.path.lexists(target):
        return (f"{option} {path}: exists, an earlier result (choose another name, or delete it knowingly to redo; "
                "nothing was changed)")
    return cli.folder_to_write_problem(target.parent, f"{option} {path}")
