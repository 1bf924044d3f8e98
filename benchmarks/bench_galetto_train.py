"""Speed of the Galetto classifier's training batches on this CPU: the sampler's two dihedral implementations side by
side, and one training step, at the given batch sizes.

    python benchmarks/bench_galetto_train.py [--patches runs/gpatch] [--batches 128 1024] [--threads 4]
        [--repeats 20] [--steps 3] [--device cuda --gpu-steps 200]

``draw_batch`` (``dmenet.galetto.train``) draws (position, σ, transform) triples and applies the transform with one
gather of each sample's pixel permutation on the uint8 patches. The reference row is the earlier implementation
(float patches, eight masked ``rot90``/``flip`` copies), kept here only for the comparison; both draw identical
batches from the same generator (checked before timing). A training step (width 1.0, channels-last, Adam) shows
the sampler's share of a step on this CPU: a few ms against 0.3–3.7 s, so the sampler does not bound CPU training.
(On the lent H200, rules g13 and g14, steps ran at 28–54/s; what bounds them there was not profiled.) Medians of
``--repeats`` (``--steps`` for the step) after one warm-up; the 1-minute load average is printed.

``--device cuda`` adds a table for a lent GPU: training steps per second over ``--gpu-steps`` steps (after a warm-up
of 20), with the batches copied the plain way (``.to(device)``, which waits for the queued kernels) and through
``dmenet.galetto.train.to_device`` (pinned memory, no wait), side by side.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import machine_line, median_seconds, parser  # noqa: E402
from syndof import cli  # noqa: E402




def width1_model(device):
    """The shipped classifier's architecture (width 1.0) in channels-last layout on ``device``, with its Adam."""
    import torch

    from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig

    model = BlurClassifier(ClassifierConfig(width=1.0, head_channels=1280, blocks=7))
    model = model.to(device, memory_format=torch.channels_last).train()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def train_step(model, opt, x, y) -> None:
    """One optimiser step of the training loop (``dmenet.galetto.train.train``) on the batch (x, y)."""
    import torch
    import torch.nn.functional as F

    loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@cli.entry_point
def main(argv=None) -> int:
    import torch

    from dmenet.galetto import NUM_CLASSES
    from dmenet.galetto.train import draw_batch

    def reference_draw(patches, batch, gen):
        idx = torch.randint(patches.shape[0], (batch,), generator=gen)
        label = torch.randint(NUM_CLASSES, (batch,), generator=gen)
        code = torch.randint(8, (batch,), generator=gen)
        x = patches[idx, label].unsqueeze(1).float() / 255.0
        out = x.clone()
        for c in range(8):
            sel = code == c
            if sel.any():
                y = torch.rot90(x[sel], c % 4, dims=(2, 3))
                out[sel] = torch.flip(y, dims=(3,)) if c >= 4 else y
        return out, label

    ap = parser("bench_galetto_train", __doc__,
                "python benchmarks/bench_galetto_train.py --threads 1 --repeats 10 --steps 3")
    ap.add_argument("--patches", type=Path, default=REPO / "runs/gpatch", help="build_patches folder (train.npz)")
    ap.add_argument("--batches", type=cli.positive_int, nargs="+", default=[128, 1024])
    cli.add_threads(ap, default=4)  # galetto_paper.yaml's train.threads
    ap.add_argument("--repeats", type=cli.positive_int, default=20)
    ap.add_argument("--steps", type=cli.positive_int, default=3)
    cli.add_device(ap)  # cuda adds the GPU steps/s table
    ap.add_argument("--gpu-steps", type=cli.positive_int, default=200)
    args = ap.parse_args(argv)
    cli.check_device(args.device)
    torch.set_num_threads(args.threads)
    patches = torch.from_numpy(np.load(args.patches / "train.npz")["patches"])
    print(f"{machine_line()}, {len(patches)} positions")
    model, opt = width1_model("cpu")
    print("| batch | reference draw (ms) | draw_batch (ms) | ratio | training step (ms) |")
    print("|---|---|---|---|---|")
    for b in args.batches:
        a, r = draw_batch(patches, b, torch.Generator().manual_seed(b), True), reference_draw(
            patches, b, torch.Generator().manual_seed(b))
        if not (torch.equal(a[0], r[0]) and torch.equal(a[1], r[1])):
            raise SystemExit(f"batch {b}: the two samplers differ")
        gen = torch.Generator().manual_seed(0)
        ref = median_seconds(lambda: reference_draw(patches, b, gen), args.repeats)[0]
        new = median_seconds(lambda: draw_batch(patches, b, gen, True), args.repeats)[0]
        st = median_seconds(lambda: train_step(model, opt, *draw_batch(patches, b, gen, True)), args.steps)[0]
        print(f"| {b} | {ref * 1e3:.2f} | {new * 1e3:.2f} | {ref / new:.1f}× | {st * 1e3:.0f} |")
    if args.device != "cpu":
        gpu_table(patches, args)
    print(f"load {os.getloadavg()[0]:.2f}")
    return 0


def gpu_table(patches, args) -> None:
    """Steps per second on ``args.device`` with the plain and the pinned, non-blocking batch copies."""
    import torch

    from dmenet.galetto.train import draw_batch, to_device

    device = torch.device(args.device)
    model, opt = width1_model(device)
    copies = {"plain .to(device)": lambda v: v.to(device),
              "to_device (pinned, no wait)": lambda v: to_device(v, device)}
    print(f"\n{torch.cuda.get_device_name(device)}, {args.gpu_steps} steps after 20 of warm-up")
    print("| batch | copy | steps/s | patches/s |")
    print("|---|---|---|---|")
    for b in args.batches:
        for name, copy in copies.items():
            gen = torch.Generator().manual_seed(0)

            def run(n):
                for _ in range(n):
                    train_step(model, opt, *(copy(v) for v in draw_batch(patches, b, gen, True)))
                torch.cuda.synchronize(device)

            run(20)
            t = time.perf_counter()
            run(args.gpu_steps)
            rate = args.gpu_steps / (time.perf_counter() - t)
            print(f"| {b} | {name} | {rate:.1f} | {rate * b:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
