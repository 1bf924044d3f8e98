"""What a ``--resume`` may change, shared by the trainers (``dmenet.train``, ``dmenet.distill.train``): the runtime
keys (where a run executes and logs, not what it trains) and ``train.steps``, which may extend or shorten a run but
never go below the steps its checkpoint has done."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

STEPS_KEY = "train.steps"
"""The one recipe key a resume may change: the run's total number of steps."""


def resume_free_keys(runtime: Iterable[str]) -> set[str]:
    """The flat config keys (``section.key``) a resume does not compare: ``train.{k}`` of each ``runtime`` key, and
    :data:`STEPS_KEY`."""
    return {f"train.{k}" for k in runtime} | {STEPS_KEY}


def steps_problem(steps: int, done: int, checkpoint: str | Path, flag: str | None = None) -> str | None:
    """One line refusing a resume whose ``train.steps`` (``steps``; set by ``flag`` too when given, e.g.
    ``--steps``) is below ``done``, the number of steps the ``checkpoint`` folder has done; None when ``steps`` >=
    ``done`` (equal: the run is complete, nothing is left to do)."""
    if steps >= done:
        return None
    label = f"{STEPS_KEY} {steps}" + (f" ({flag})" if flag else "")
    return (f"--resume: {label} is below the step {done} of the checkpoint {checkpoint} ({done} step(s) done); "
            "a resume can only extend a run (nothing was changed)")
