"""Parameters and MACs of the Distill-DBDGAN networks at size² (torch.utils.flop_counter; 1 MAC = 2 FLOPs).

    distill-summary [--size 320] [--config experiments/distill/student_d0.yaml] [--model M]

Without ``--config``/``--model`` it prints the faithful pair (released teacher and student) and the CPU pair of the
default config. Large networks are built on the meta device (no memory, no arithmetic), so counting the faithful
teacher takes a second. "stored" counts every parameter the module holds, "forward" only those the forward pass
uses (the released teacher stores unused branches).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dmenet import cli as dcli
from syndof import cli


def count(model: nn.Module, size: int = 320) -> dict[str, float]:
    """{"stored": parameters held, "forward": parameters of modules the forward pass runs, "macs": multiply-adds
    of one 1×3×size×size forward}. Works on meta-device models."""
    device = next(model.parameters()).device
    used: set[nn.Module] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: used.add(m)) for m in model.modules()]
    x = torch.zeros(1, 3, size, size, device=device)
    counter = FlopCounterMode(display=False)
    model.eval()
    try:
        with counter, torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    forward = sum(p.numel() for m in used for p in m.parameters(recurse=False))
    return {"stored": float(sum(p.numel() for p in model.parameters())), "forward": float(forward),
            "macs": counter.get_total_flops() / 2}


def on_meta(build) -> nn.Module:
    """``build()`` run on the meta device: the module's shapes without memory or weights."""
    with torch.device("meta"):
        return build()


EXAMPLE = "distill-summary --config experiments/distill/tiny.yaml --size 64"


MAX_SIZE = 2048
"""Largest ``--size`` (px): six times the networks' 320² and far past any photo the project runs them on (a size of
1e9 failed inside the FLOP counter with a traceback; the CPU variants count at 2048 in seconds)."""


def size_multiple_of_32(text: str) -> int:
    """argparse type: a multiple of 32 px from 32 to :data:`MAX_SIZE`."""
    value = cli.positive_int(text)
    if value % 32 or value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"must be a multiple of 32 up to {MAX_SIZE}, got {value}")
    return value


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    from dmenet.distill.config import load_distill_config
    from dmenet.distill.model_io import load_distill_model
    from dmenet.distill.models.teacher import FAITHFUL_TEACHER, Teacher
    from dmenet.distill.models.unet import FAITHFUL_STUDENT, EffUNet

    p = cli.parser("dmenet.distill.summary", __doc__, EXAMPLE)
    p.add_argument("--size", type=size_multiple_of_32, default=320, metavar="PX",
                   help="square input side, a multiple of 32 (default 320)")
    cli.add_config(p, help="distill experiment YAML: counts its student and teacher")
    cli.add_set(p, help="config overrides, e.g. --set student.encoder=lite1")
    dcli.add_model(p, help="a distill model file: counts that network")
    a = p.parse_args(argv)
    if a.model and (a.config or a.overrides):  # the file's own architecture is counted: they were ignored unsaid
        return cli.fail(f"--model {a.model}: counts the network the file holds; --config / --set do not apply to it")
    if a.model:
        nets = {a.model: load_distill_model(a.model)[0]}
    else:
        cfg = load_distill_config(a.config, a.overrides)
        nets = {}
        if not a.config:
            nets["faithful teacher (SE-ResNeXt101)"] = on_meta(lambda: Teacher(FAITHFUL_TEACHER))
            nets["faithful student (EfficientNet-B3 U-Net)"] = on_meta(lambda: EffUNet(FAITHFUL_STUDENT))
        nets[f"teacher ({cfg.teacher.backbone})"] = on_meta(lambda: Teacher(cfg.teacher))
        nets[f"student (efficientnet-{cfg.student.encoder})"] = on_meta(lambda: EffUNet(cfg.student))
    print(f"{'network':44s} {'stored M':>9s} {'forward M':>9s} {'GMAC@' + str(a.size):>10s}")
    for name, net in nets.items():
        c = count(net, a.size)
        print(f"{name:44s} {c['stored'] / 1e6:9.2f} {c['forward'] / 1e6:9.2f} {c['macs'] / 1e9:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
