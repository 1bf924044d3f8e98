"""Weight averaging of checkpoints from one training run (stochastic weight averaging, Izmailov et al. 2018).

Late checkpoints of a small-batch run scatter around a minimum; their uniform average usually sits nearer its
centre than any one of them, and costs nothing at inference. Floating-point tensors (weights, BatchNorm statistics)
are averaged; integer tensors (``num_batches_tracked``) are taken from the last file. All files must have the same
architecture (:data:`dmenet.models.model_io.ARCHITECTURE_FIELDS`); the output keeps the last file's config.

Usage::

    python -m dmenet.training.average --models RUN/ckpt_a.safetensors RUN/ckpt_b.safetensors … --out OUT.safetensors
    python -m dmenet.training.average --run RUN --last 8 --out OUT.safetensors   # needs train.keep_last >= 8

``--models`` may name a file more than once: ``--models A A B`` is the weighted average ⅔ A + ⅓ B.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from dmenet.models.model_io import ARCHITECTURE_FIELDS, RESERVED_KEYS, ModelFileError, load_model_file, save_model
from dmenet.training.checkpoint import CheckpointError, recent_models

log = logging.getLogger("dmenet.average")


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform mean of floating-point tensors over ``states`` (float64 accumulation); others from the last one.

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dmenet.training.average", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--models", nargs="+", help="model files of one run, oldest first")
    src.add_argument("--run", help="a training run folder: average its --last most recent checkpoints")
    p.add_argument("--last", type=int, default=None, help="with --run: how many checkpoints (default 8)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.models is not None and args.last is not None:
        p.error("--last selects checkpoints of --run; with --models, list the files to average")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.run is not None:
            args.models = [str(m) for m in recent_models(Path(args.run), 8 if args.last is None else args.last)]
        loaded = [load_model_file(m) for m in args.models]
        arch = [{f: getattr(m.config, f) for f in ARCHITECTURE_FIELDS} for m, _ in loaded]
        for path, a in zip(args.models, arch):
            if a != arch[-1]:
                raise ModelFileError(f"{path}: architecture {a} differs from {args.models[-1]} {arch[-1]}")
        averaged = average_state_dicts([m.state_dict() for m, _ in loaded])
    except (ModelFileError, CheckpointError, FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    model, meta = loaded[-1]
    model.load_state_dict(averaged, strict=True)
    meta = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    meta["weight_average"] = {"models": [str(Path(m)) for m in args.models],
                              "steps": [s.get("step") for _, s in loaded]}
    save_model(args.out, model, meta)
    log.info("averaged %d models; wrote %s", len(loaded), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
