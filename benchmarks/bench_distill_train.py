"""Seconds per Distill-DBDGAN training step, config variants side by side in one process.

    python benchmarks/bench_distill_train.py --threads 2 --variants base train.channels_last=true
    python benchmarks/bench_distill_train.py --stage joint --threads 2 --variants base train.channels_last=true

``--stage kd``: the D0 student recipe (``experiments/distill/student_d0.yaml``: EfficientNet-Lite0 U-Net, cached soft
targets, no discriminators). ``--stage joint``: rule J1's fine-tune (the same student with a VGG16 teacher and
D1–D3, the loss weights of ``experiments/distill/RULE_J1.md``). Weights are random and no ImageNet file is read;
batches are random tensors of the config's shapes (batch × crop², one sharp negative), so data loading is excluded.
One run per variant, their steps interleaved on the same batches, so load falls on all alike; the last column is the
speed-up over the first variant. Seconds per step (median and min of ``--steps`` after ``--warmup``); the CPUs,
threads and 1-minute load average are printed: on a shared machine compare the speed-ups of one run, not runs.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dmenet.distill.config import load_distill_config  # noqa: E402
from dmenet.distill.run import build_run  # noqa: E402
from dmenet.distill.step import train_step  # noqa: E402
from interleave import machine_line, parser, speedup_rows, time_interleaved  # noqa: E402
from syndof import cli  # noqa: E402

CONFIG = REPO / "experiments" / "distill" / "student_d0.yaml"
STAGES = {
    "kd": ["train.init_imagenet=false"],
    "joint": ["train.init_imagenet=false", "train.stage=joint", "data.soft_targets=none", "loss.consistency=0.5",
              "loss.feature=0.1", "loss.adv_teacher=0.01", "loss.adv_student=0.01", "loss.adv_distill=0.01"],
}


def random_batch(cfg, gen: torch.Generator) -> dict[str, torch.Tensor]:
    b, s = cfg.data.batch, cfg.data.crop
    sharp = torch.zeros(b, 1, 1, 1)
    sharp[-cfg.data.sharp_per_batch:] = 1.0
    mask = (torch.rand(b, 1, s, s, generator=gen) > 0.5).float() * (1 - sharp)
    return {"image": torch.rand(b, 3, s, s, generator=gen), "mask": mask, "sharp": sharp,
            "soft": torch.rand(b, 1, s, s, generator=gen), "has_soft": 1 - sharp}


@cli.entry_point
def main(argv=None) -> int:
    p = parser("bench_distill_train", __doc__, "python benchmarks/bench_distill_train.py --stage kd --threads 1")
    p.add_argument("--stage", choices=sorted(STAGES), default="kd")
    p.add_argument("--variants", nargs="+", default=["base", "train.channels_last=true"],
                   metavar="base|KEY=VALUE[,KEY=VALUE]")
    p.add_argument("--steps", type=cli.positive_int, default=8, help="timed steps")
    p.add_argument("--warmup", type=cli.non_negative_int, default=2, help="untimed steps first")
    cli.add_threads(p, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = {}
    for v in args.variants:
        cfg = load_distill_config(CONFIG, [*STAGES[args.stage], *([] if v == "base" else v.split(","))])
        torch.manual_seed(0)
        runs[v] = build_run(cfg)
    cfg = next(iter(runs.values())).cfg
    gen = torch.Generator().manual_seed(0)
    index = itertools.count()  # (batch, step): the step drives the learning-rate schedule, as in training
    times = time_interleaved({v: (lambda b, run=run: train_step(run, *b)) for v, run in runs.items()},
                             lambda: (random_batch(cfg, gen), next(index)), args.steps, args.warmup)
    print(f"# distill {args.stage} step, batch {cfg.data.batch} × {cfg.data.crop}², {machine_line()}, "
          f"torch {torch.__version__}")
    print(f"{'variant':40} {'median s/step':>14} {'min s/step':>11} {'speed-up':>9}")
    for v, med, fastest, speedup in speedup_rows(times):
        print(f"{v:40} {med:14.3f} {fastest:11.3f} {speedup:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
