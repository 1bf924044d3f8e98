"""How far one joint training step's gradients move from a float64 reference under each layout / precision variant.

    python benchmarks/train_numerics.py                                   # the shipped lite model, CUHK crops
    python benchmarks/train_numerics.py --variants base train.channels_last=true train.cpu_bf16=true

The shipped DMENet-lite weights (``--model``) take one joint step (lite config, (4+4+4) × 256²) on 256² crops of
the first 12 CUHK *training* photos (synthetic labels and masks are seeded random values: only the arithmetic is
measured). The same step in float64 is the reference. Printed per variant: the relative change of ``loss_main``,
the relative error of the whole gradient vector (‖g − g64‖ / ‖g64‖), its cosine with the reference, and the median
of the per-tensor relative errors (unitless ratios), not timings: the machine's load does not change them. A speed
figure for the same variants: ``benchmarks/bench_train.py --variants``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dmenet import cli as dcli  # noqa: E402
from dmenet.config import load_config  # noqa: E402
from dmenet.models.dmenet import build_dmenet  # noqa: E402
from dmenet.models.model_io import load_weights_from  # noqa: E402
from dmenet.training.engine import StepBatches, Trainer  # noqa: E402
from interleave import parser  # noqa: E402
from syndof import cli  # noqa: E402
from syndof.io import read_image  # noqa: E402

CONFIG = REPO / "experiments" / "dmenet_lite.yaml"


def crops(folder: Path, count: int, side: int) -> torch.Tensor:
    """(count, 3, side, side) in [0, 1]: the top-left corner of the first ``count`` photos in sorted order; a photo
    smaller than ``side`` px on a side is a ValueError naming it (its crop would be smaller than the step's)."""
    files = sorted(folder.glob("*.jpg"))[:count]
    if len(files) < count:
        raise ValueError(f"--photos {folder}: {len(files)} .jpg photos, {count} needed")
    images = [read_image(f) for f in files]
    for f, image in zip(files, images):
        if min(image.shape[:2]) < side:
            raise ValueError(f"--photos {f}: {image.shape[1]}x{image.shape[0]} px, smaller than the {side}² crop")
    return torch.stack([torch.from_numpy(np.ascontiguousarray(image[:side, :side])).permute(2, 0, 1)
                        for image in images])


def step_batches(images: torch.Tensor, n: int, seed: int = 0) -> StepBatches:
    gen = torch.Generator().manual_seed(seed)
    side = images.shape[-1]
    return StepBatches(
        synthetic={"image": images[:n], "label": 0.5 * torch.rand(n, 1, side, side, generator=gen)},
        labelled={"image": images[n:2 * n], "mask": torch.rand(n, 1, side, side, generator=gen).round()},
        unlabelled={"image": images[2 * n:3 * n]})


def gradients(overrides: list[str], model_path: Path, batches: StepBatches, float64: bool = False):
    """(metrics, {name: gradient as float64}) of one joint step of the lite config with ``overrides``."""
    cfg = load_config(CONFIG, ["model.init=null", *overrides])
    model = build_dmenet(cfg.model)
    load_weights_from(model, model_path)
    if float64:
        model = model.double()
        batches = StepBatches(**{k: {n: t.double() for n, t in getattr(batches, k).items()}
                                 for k in ("synthetic", "labelled", "unlabelled")})
    trainer = Trainer(model, cfg, torch.device("cpu"), steps_per_epoch=1000)
    metrics = trainer.train_step(batches)
    return metrics, {n: p.grad.detach().double() for n, p in model.named_parameters() if p.grad is not None}


@cli.entry_point
def main(argv=None) -> int:
    p = parser("train_numerics", __doc__, "python benchmarks/train_numerics.py --variants base "
               "train.channels_last=true")
    dcli.add_model(p)
    p.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "cuhk" / "train_image")
    p.add_argument("--variants", nargs="+", metavar="base|KEY=VALUE[,KEY=VALUE]",
                   default=["base", "train.channels_last=true", "train.cpu_bf16=true",
                            "train.channels_last=true,train.cpu_bf16=true"])
    cli.add_threads(p, default=2)
    args = p.parse_args(argv)
    args.model = Path(args.model) if args.model else REPO / "checkpoints" / "dmenet_lite.safetensors"
    torch.set_num_threads(args.threads)
    cfg = load_config(CONFIG)
    for v in args.variants:  # every variant's overrides checked before the float64 reference step
        if v != "base":
            try:
                load_config(CONFIG, v.split(","))
            except ValueError as exc:
                return cli.fail(f"--variants {v}: {exc}")
    n, side = cfg.train.batch_synthetic, cfg.data.crop
    batches = step_batches(crops(args.photos, 3 * n, side), n)
    ref_metrics, ref = gradients([], args.model, batches, float64=True)
    r = torch.cat([g.flatten() for g in ref.values()])
    print(f"# one joint step of {CONFIG.name}, {3 * n} crops of {side}², weights {args.model.name}; "
          f"reference: the same step in float64")
    print(f"{'variant':50} {'loss_main rel':>14} {'grad rel error':>15} {'cosine':>9} {'median per tensor':>18}")
    for v in args.variants:
        metrics, grads = gradients([] if v == "base" else v.split(","), args.model, batches)
        a = torch.cat([grads[k].flatten() for k in ref])
        per_tensor = sorted(float((grads[k] - g).norm() / g.norm().clamp_min(1e-30)) for k, g in ref.items())
        print(f"{v:50} {metrics['loss_main'] / ref_metrics['loss_main'] - 1:14.1e} "
              f"{float((a - r).norm() / r.norm()):15.2e} {float(F.cosine_similarity(a, r, 0)):9.5f} "
              f"{per_tensor[len(per_tensor) // 2]:18.2e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
