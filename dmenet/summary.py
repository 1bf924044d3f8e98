"""Parameters and FLOPs of DMENet's subnetworks for an experiment config.

    python -m dmenet.summary --config experiments/dmenet_paper.yaml [--size 240] [--set model.width=0.5 ...]

Prints, per subnetwork (B encoder, B decoder, B total, D, S, C), the parameter count and the forward FLOPs of one
image of size×size (torch.utils.flop_counter: 2 FLOPs per multiply-add, convolutions and matmuls only). The model
is built from scratch (``model.init`` is not read): counts do not depend on the weights.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dmenet.models import DMENet, ModelConfig, build_dmenet
from syndof import cli

MAX_SIZE = 1024
"""Largest ``--size``: the paper network's activations at 1024² already take a few GB."""


def count_params(module: nn.Module) -> int:
    """Number of parameters (elements) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def count_flops(fn: Callable[[], object]) -> int:
    """Forward FLOPs of one call of ``fn`` (torch's FlopCounterMode, no grad)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def summarize(cfg: ModelConfig, size: int = 240) -> list[tuple[str, int, int]]:
    """[(name, parameters, forward FLOPs at 1×3×size×size)] for B encoder, B decoder, B total, D, S, C."""
    if size % 16 or not 16 <= size <= MAX_SIZE:
        raise ValueError(f"--size must be a multiple of 16 in [16, {MAX_SIZE}], got {size} (FLOPs grow with "
                         "size², so larger inputs can be extrapolated)")
    cfg = dataclasses.replace(cfg, init=None, input_convention=cfg.input_convention or None)
    model: DMENet = build_dmenet(cfg).eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        skips = model.blur.encoder(x)
        out = model.blur(x)
    rows = [
        ("B encoder", count_params(model.blur.encoder), count_flops(lambda: model.blur.encoder(x))),
        ("B decoder", count_params(model.blur.decoder), count_flops(lambda: model.blur.decoder(skips))),
        ("B total", count_params(model.blur), count_flops(lambda: model.blur(x))),
        ("D", count_params(model.discriminator), count_flops(lambda: model.discriminator(out.features))),
        ("S", count_params(model.calibration), count_flops(lambda: model.calibration(out.defocus))),
        ("C (frozen)", count_params(model.perceptual), count_flops(lambda: model.perceptual(out.defocus))),
    ]
    return rows


def format_table(rows: list[tuple[str, int, int]], cfg: ModelConfig, size: int) -> str:
    """Text table of :func:`summarize`'s rows: parameters (count and M) and GFLOPs at a ``size``×``size`` input,
    under a header naming ``cfg``'s architecture."""
    lines = [f"DMENet encoder={cfg.encoder} width={cfg.width} refine_blocks={cfg.refine_blocks} "
             f"tail_scale={cfg.tail_scale} input {size}x{size}",
             f"{'subnetwork':<12} {'parameters':>14} {'(M)':>8} {'GFLOPs':>10}"]
    for name, n, flops in rows:
        lines.append(f"{name:<12} {n:>14,} {n / 1e6:>8.3f} {flops / 1e9:>10.2f}")
    return "\n".join(lines)


EXAMPLE = "dmenet-summary --config experiments/dmenet_lite.yaml --size 96 --set model.width=0.5"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    parser = cli.parser("dmenet.summary", __doc__, EXAMPLE)
    cli.add_config(parser, help="experiment YAML (experiments/*.yaml)", required=True)
    parser.add_argument("--size", type=cli.positive_int, default=240,
                        help="square input size for FLOPs (multiple of 16)")
    cli.add_set(parser, help="config overrides, e.g. --set model.width=0.5 model.refine_blocks=2")
    cli.add_threads(parser)
    args = parser.parse_args(argv)
    cli.apply_threads(args.threads)
    from dmenet.config import load_config

    cfg = load_config(args.config, args.overrides).model
    rows = summarize(cfg, args.size)
    print(format_table(rows, cfg, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
