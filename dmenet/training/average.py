"""Weight averaging of checkpoints from one training run (stochastic weight averaging, Izmailov et al. 2018).

Late checkpoints of a small-batch run scatter around a minimum; their uniform average usually sits nearer its
centre than any one of them, and costs nothing at inference. Floating-point tensors (weights, BatchNorm statistics)
are averaged; integer tensors (``num_batches_tracked``) are taken from the last file. All files must have the same
architecture (:data:`dmenet.models.model_io.ARCHITECTURE_FIELDS`); the output keeps the last file's recipe.

Usage (:mod:`dmenet.calibrate`)::

    python -m dmenet.calibrate average --model RUN/ckpt_a.safetensors RUN/ckpt_b.safetensors … --out OUT.safetensors
    python -m dmenet.calibrate average --run RUN --last 8 --out OUT.safetensors   # needs train.keep_last >= 8

``--model`` may name a file more than once: ``--model A A B`` is the weighted average ⅔ A + ⅓ B.
"""

from __future__ import annotations


import torch


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform mean of floating-point tensors over ``states`` (float64 accumulation); others from the last one.
    Every tensor keeps its shape, dtype and unit (the mean cast back to the last state's dtype); integer ones
    (e.g. ``num_batches_tracked``) are copies of the last state's.

    Raises:
        ValueError: no states, or key sets / shapes that differ.
    """
    if not states:
        raise ValueError("nothing to average")
    keys = list(states[-1])
    for i, s in enumerate(states):
        if list(s) != keys:
            raise ValueError(f"state {i} has other keys than the last one")
        bad = [k for k in keys if s[k].shape != states[-1][k].shape]
        if bad:
            raise ValueError(f"state {i}: shape mismatch for {bad[:4]}")
    out = {}
    for k in keys:
        last = states[-1][k]
        if last.is_floating_point():
            out[k] = (sum(s[k].double() for s in states) / len(states)).to(last.dtype)
        else:
            out[k] = last.clone()
    return out
