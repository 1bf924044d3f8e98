"""Learning-rate schedule as a pure function of the step (docs/method.md §5): ``lr = lr0 · decay^(epoch // every)``."""

from __future__ import annotations


def epoch_of(step: int, steps_per_epoch: int) -> int:
    """Epoch (0-based) that iteration ``step`` (0-based) belongs to."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    return step // steps_per_epoch


def lr_at(step: int, base_lr: float, steps_per_epoch: int, decay: float = 0.8, decay_every_epochs: int = 20) -> float:
    """Step decay: ``base_lr · decay ** (epoch // decay_every_epochs)`` (official: 1e-4 · 0.8^(epoch // 20))."""
    return base_lr * decay ** (epoch_of(step, steps_per_epoch) // max(1, decay_every_epochs))
