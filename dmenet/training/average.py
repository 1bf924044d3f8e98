"""Weight averaging of checkpoints from one training run (stochastic weight averaging, Izmailov et al. 2018).

Late checkpoints of a small-batch run scatter around a minimum; their uniform average usually sits nearer its
centre than any one of them, and costs nothing at inference. Floating-point tensors (weights, BatchNorm statistics)
are averaged; integer tensors (``num_batches_tracked``) are taken from the last file. All files must have the same
architecture (:data:`dmenet.models.model_io.ARCHITECTURE_FIELDS`); the output keeps the last file's config.

Usage::

    python -m dmenet.training.average --model RUN/ckpt_a.safetensors RUN/ckpt_b.safetensors … --out OUT.safetensors
    python -m dmenet.training.average --run RUN --last 8 --out OUT.safetensors   # needs train.keep_last >= 8

``--model`` may name a file more than once: ``--model A A B`` is the weighted average ⅔ A + ⅓ B.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from dmenet.models.model_io import ARCHITECTURE_FIELDS, RESERVED_KEYS, ModelFileError, load_model_file, save_model
from dmenet.training.checkpoint import recent_models
from syndof import cli

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


EXAMPLE = ("dmenet-average --model checkpoints/dmenet_lite.safetensors checkpoints/dmenet_lite.safetensors "
           "--out runs/average_example.safetensors")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.parser("dmenet.training.average", __doc__, EXAMPLE)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", nargs="+", metavar="PATH", help="model files of one run, oldest first")
    cli.hidden_alias(src, "--models", "--model", "model", nargs="+")
    src.add_argument("--run", help="a training run folder: average its --last most recent checkpoints")
    p.add_argument("--last", type=cli.positive_int, default=None, help="with --run: how many checkpoints (default 8)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.model is not None and args.last is not None:
        p.error("--last selects checkpoints of --run; with --model, list the files to average")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.run is not None:
        args.model = [str(m) for m in recent_models(Path(args.run), 8 if args.last is None else args.last)]
    loaded = [load_model_file(m) for m in args.model]
    arch = [{f: getattr(m.config, f) for f in ARCHITECTURE_FIELDS} for m, _ in loaded]
    for path, a in zip(args.model, arch):
        if a != arch[-1]:
            raise ModelFileError(f"{path}: architecture {a} differs from {args.model[-1]} {arch[-1]}")
    averaged = average_state_dicts([m.state_dict() for m, _ in loaded])
    model, meta = loaded[-1]
    model.load_state_dict(averaged, strict=True)
    meta = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    meta["weight_average"] = {"models": [str(Path(m)) for m in args.model],
                              "steps": [s.get("step") for _, s in loaded]}
    save_model(args.out, model, meta)
    log.info("averaged %d models; wrote %s", len(loaded), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
