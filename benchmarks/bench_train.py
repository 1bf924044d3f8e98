"""Seconds per DMENet training step (one D step + one B+S step) for the lite and paper configs.

    python benchmarks/bench_train.py                       # lite and paper on CPU (and CUDA when present)
    python benchmarks/bench_train.py --configs lite --steps 5 --device cpu
    python benchmarks/bench_train.py --configs lite --device cpu --threads 2 --steps 6 \
        --variants base train.channels_last=true train.cpu_bf16=true train.channels_last=true,train.cpu_bf16=true

Batches are random tensors of the config's shapes — lite (4+4+4)×256², paper (3+3+3)×240² — so the figure is the
model step alone (data loading runs in threads beside it during training). Reports the median and the minimum over
the timed steps after warm-up steps (the first steps include one-off kernel set-up), the process CPU time per step
(a steadier figure on a machine shared with other jobs) and B's forward GFLOP per crop, with the CPUs, threads and
1-minute load average. Weights are random (no init file is read): the speed does not depend on them.

``--variants`` compares config variants side by side in one process (``base`` = the config as it is, otherwise
comma-separated KEY=VALUE overrides): one trainer each, their steps interleaved on the same batches, so the machine's
load falls on all of them alike; the last column is each variant's speed-up over the first.
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dmenet.config import STAGES, Stage, load_config  # noqa: E402
from dmenet.models.dmenet import build_dmenet  # noqa: E402
from dmenet.training.engine import StepBatches, Trainer  # noqa: E402
from interleave import machine_line, parser, speedup_rows, time_interleaved  # noqa: E402
from syndof import cli  # noqa: E402

CONFIGS = {"lite": "dmenet_lite.yaml", "paper": "dmenet_paper.yaml"}


def random_batches(cfg, device: torch.device, gen: torch.Generator) -> StepBatches:
    t, s = cfg.train, cfg.data.crop

    def img(b):
        return torch.rand(b, 3, s, s, generator=gen).to(device)

    return StepBatches(
        synthetic={"image": img(t.batch_synthetic), "label": torch.rand(t.batch_synthetic, 1, s, s, generator=gen)},
        labelled={"image": img(t.batch_labelled),
                  "mask": (torch.rand(t.batch_labelled, 1, s, s, generator=gen) > 0.5).float()},
        unlabelled={"image": img(t.batch_unlabelled)},
    )


def make_trainer(name: str, device: torch.device, stage: str, overrides=()) -> tuple[Trainer, object]:
    """A trainer of config ``name`` with random weights (seed 0) and no init file."""
    cfg = load_config(REPO / "experiments" / CONFIGS[name], [f"train.stage={stage}", *overrides])
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init=None))
    torch.manual_seed(0)
    model = build_dmenet(cfg.model).to(device)
    return Trainer(model, cfg, device, steps_per_epoch=1000), cfg


def bench(name: str, device: torch.device, steps: int, warmup: int, stage: str, overrides=()) -> dict:
    trainer, cfg = make_trainer(name, device, stage, overrides)
    model = trainer.model
    gen = torch.Generator().manual_seed(0)
    times, cpu_times = [], []
    for i in range(warmup + steps):
        batches = random_batches(cfg, device, gen)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.train_step(batches)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    t = cfg.train
    batch = (f"({t.batch_synthetic}+{t.batch_labelled}+{t.batch_unlabelled})" if Stage(stage) is Stage.JOINT
             else f"{t.batch_synthetic}")
    return {"config": name, "stage": stage, "device": device.type, "amp": trainer.amp, "batch": batch,
            "crop": cfg.data.crop, "median_s": statistics.median(times), "min_s": min(times), "steps": steps,
            "cpu_s": statistics.median(cpu_times), "gflop": blur_gflop(model, cfg.data.crop)}


def bench_variants(name: str, device: torch.device, steps: int, warmup: int, stage: str, variants, overrides=()):
    """Interleaved steps of one trainer per variant on identical batches; prints a row per variant."""
    trainers = {v: make_trainer(name, device, stage, [*overrides, *([] if v == "base" else v.split(","))])[0]
                for v in variants}
    cfg = next(iter(trainers.values())).cfg
    gen = torch.Generator().manual_seed(0)
    times = time_interleaved({v: t.train_step for v, t in trainers.items()}, lambda: random_batches(cfg, device, gen),
                             steps, warmup, torch.cuda.synchronize if device.type == "cuda" else None)
    print(f"{'config':8} {'device':6} {'variant':55} {'median s/step':>14} {'min s/step':>11} {'speed-up':>9}")
    for v, med, fastest, speedup in speedup_rows(times):
        print(f"{name:8} {device.type:6} {v:55} {med:14.3f} {fastest:11.3f} {speedup:9.2f}", flush=True)


def blur_gflop(model, crop: int) -> float:
    """Forward GFLOP of B for one crop (torch.utils.flop_counter; its backward figures overcount depthwise convs,
    so only the forward is reported — a training step costs about 3× this per image plus D, C and S)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.blur(torch.rand(1, 3, crop, crop, device=device))
    return counter.get_total_flops() / 1e9


@cli.entry_point
def main(argv=None) -> int:
    p = parser("bench_train", __doc__, "python benchmarks/bench_train.py --configs lite --steps 5 --device cpu")
    p.add_argument("--configs", nargs="+", default=["lite", "paper"], choices=sorted(CONFIGS))
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    p.add_argument("--steps", type=cli.positive_int, default=5, help="timed steps")
    p.add_argument("--warmup", type=cli.non_negative_int, default=2, help="untimed steps first")
    p.add_argument("--stage", choices=STAGES, default=Stage.JOINT.value)
    cli.add_threads(p)
    cli.add_set(p, help="config overrides applied to every config (e.g. model.width=0.125)")
    p.add_argument("--variants", nargs="+", default=None, metavar="base|KEY=VALUE[,KEY=VALUE]",
                   help="time these config variants side by side, interleaved (the first is the reference)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {machine_line()}" +
          (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    if args.variants:
        for device in devices:
            for name in args.configs:
                bench_variants(name, device, args.steps, args.warmup, args.stage, args.variants, args.overrides)
        return 0
    print(f"{'config':8} {'stage':6} {'device':6} {'amp':5} {'batch':12} {'crop':5} {'median s/step':>14} "
          f"{'min s/step':>11} {'CPU s/step':>11} {'B GFLOP/img':>12}")
    for device in devices:
        rows = []
        for name in args.configs:
            rows.append(r := bench(name, device, args.steps, args.warmup, args.stage, args.overrides))
            print(f"{r['config']:8} {r['stage']:6} {r['device']:6} {str(r['amp']):5} {r['batch']:12} "
                  f"{r['crop']:<5} {r['median_s']:14.3f} {r['min_s']:11.3f} {r['cpu_s']:11.3f} {r['gflop']:12.2f}",
                  flush=True)
        for r in rows[1:]:  # configs timed one after the other: compare CPU s/step, steadier under load
            print(f"ratio {r['config']} / {rows[0]['config']} on {device.type}: median "
                  f"{r['median_s'] / rows[0]['median_s']:.2f}x, CPU {r['cpu_s'] / rows[0]['cpu_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
