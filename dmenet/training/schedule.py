"""Learning-rate schedules as pure functions of the step: DMENet's step decay (docs/method.md §5): ``lr = lr0 ·
decay^(epoch // every)``; the cosine angle of a run whose total steps a resume changed (docs/distill.md)."""

from __future__ import annotations

import math
from typing import Sequence


def epoch_of(step: int, steps_per_epoch: int) -> int:
    """Epoch (0-based) that iteration ``step`` (0-based) belongs to."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    return step // steps_per_epoch


def lr_at(step: int, base_lr: float, steps_per_epoch: int, decay: float = 0.8, decay_every_epochs: int = 20) -> float:
    """Step decay: ``base_lr · decay ** (epoch // decay_every_epochs)`` (official: 1e-4 · 0.8^(epoch // 20))."""
    return base_lr * decay ** (epoch_of(step, steps_per_epoch) // max(1, decay_every_epochs))


def cosine_angle(step: int, segments: Sequence[tuple[int, int]]) -> float:
    """Angle in [0, π] of a cosine decay at iteration ``step`` (0-based) of a run whose total number of steps was
    changed by a ``--resume`` (``dmenet.distill.train``), for a factor ``½(1 + cos(angle))``.

    ``segments``: ``((0, S0), (r1, S1), …)``: the run started with S0 total steps; from step r_i on (a resume that
    set ``train.steps`` to S_i) its total was S_i; r_i strictly increasing. The first segment is the plain schedule,
    ``π · min(step, S0) / S0`` (the same float operations as before extensions existed); each later one is
    stretched from its resume point: it starts at the angle r_i had and reaches π at S_i, linearly in the step, so
    the factor is continuous at r_i and ends at its floor at the new total (constant after it). A step before r_i
    takes the earlier segments' angle."""
    if not segments or segments[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(segments, segments[1:])):
        raise ValueError(f"segments must start with (0, steps) and strictly increase, got {list(segments)!r}")
    first = segments[0][1]
    angle = math.pi * min(step, first) / first
    for i in range(1, len(segments)):
        start, total = segments[i]
        if step < start:
            break
        at_start = cosine_angle(start, segments[:i])
        angle = at_start + (math.pi - at_start) * min(1.0, (step - start) / max(1, total - start))
    return angle
