"""Paired comparison of distill models (blur detection) with per-image bootstrap CIs.

    python benchmarks/distill_ablation.py --models kd_full=runs/distill/kd_full/ckpt/step_000449/model \
        d0_content=runs/distill/d0_content/ckpt/step_000449/model [more NAME=PATH …] --base d0_content \
        [--synthetic runs/syn_dbd_test] --out runs/distill/ablation.json [--resamples 2000]

Images: with ``--synthetic DIR``, every render of a SYNDOF folder (``image/STEM.png``; GT
``blur_map_binary/STEM_binary.png``, 255 = CoC > 1 px, i.e. blurred); otherwise the 60 CUHK validation images of the
distill split (``DistillDataConfig.val_list``). Each model runs at 320² (``data.val_side``) and is scored at the
GT's size: per image Fmax (best F_β², β² = 0.3, over 255 thresholds) and MAE. For every model but ``--base``:
the mean difference model − base and its 95 % percentile bootstrap interval over images (resampled image sets shared
by all models, seed 0). Compare final checkpoints of equal-step runs: no selection on these images. Scores (Fmax,
MAE: fractions in [0, 1]), not timings: the machine's load does not change them. ``--out`` must be a new file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import output_problem, parser  # noqa: E402
from syndof import cli  # noqa: E402


def synthetic_items(folder: Path) -> list[tuple[str, Path, Path]]:
    """(stem, image, binary GT) of each render in a SYNDOF folder; SystemExit when a GT file is missing."""
    items = []
    for image in sorted((folder / "image").glob("*.png")):
        gt = folder / "blur_map_binary" / f"{image.stem}_binary.png"
        if not gt.is_file():
            raise ValueError(f"{gt}: missing ground truth for {image}")
        items.append((image.stem, image, gt))
    if not items:
        raise ValueError(f"--synthetic {folder}: no renders in {folder}/image")
    return items


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    def name_path(text: str) -> tuple[str, str]:
        name, eq, path = text.partition("=")
        if not (name and eq and path):
            raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
        return name, path

    name_path.__name__ = "NAME=PATH"
    p = parser("distill_ablation", __doc__, "python benchmarks/distill_ablation.py --models "
               "d0=runs/distill/d0/model d1=runs/distill/d1/model --base d0 --out runs/distill/ablation.json")
    p.add_argument("--models", nargs="+", required=True, type=name_path, metavar="NAME=PATH")
    p.add_argument("--base", required=True, help="the NAME every other model is compared with")
    p.add_argument("--synthetic", type=Path, default=None, help="SYNDOF folder (default: CUHK validation split)")
    p.add_argument("--out", required=True, help="the JSON file to write (a new one)")
    p.add_argument("--resamples", type=cli.positive_int, default=2000)
    cli.add_threads(p, default=1)
    a = p.parse_args(argv)
    models = dict(a.models)
    if len(models) < len(a.models):  # dict() would keep the last PATH of a NAME and drop the others unseen
        twice = next(name for name, _ in a.models if [n for n, _ in a.models].count(name) > 1)
        return cli.fail(f"--models: the name {twice} is given twice; each model needs a name of its own")
    if a.base not in models:
        return cli.fail(f"--base {a.base} is not one of --models ({', '.join(models)})")
    if problem := output_problem(a.out, "--out"):
        return cli.fail(problem)
    import torch

    from dmenet.distill.config import DistillDataConfig
    from dmenet.distill.data import labelled_items, load_item
    from dmenet.distill.infer import blur_probability
    from dmenet.distill.model_io import load_distill_model
    from dmenet.eval.dbd import DBDAccumulator, Resolution
    from dmenet.eval.paired import bootstrap_indices, paired_bootstrap
    from syndof import io as sio
    from syndof.io import write_json_atomic

    torch.set_num_threads(a.threads)
    cfg = DistillDataConfig()
    if a.synthetic is not None:
        samples = [(stem, sio.read_image(img), sio.read_image(gt)[..., 0] > 0.5)
                   for stem, img, gt in synthetic_items(a.synthetic)]
        data = f"synthetic DBD test {a.synthetic} ({len(samples)} renders)"
    else:
        samples = []
        for it in labelled_items(cfg.images, cfg.masks, cfg.val_list):
            image, mask, _ = load_item(it)
            samples.append((it.image.stem, image, mask > 0.5))
        data = f"CUHK validation split {cfg.val_list} ({len(samples)} images)"
    rows = {}
    for name, path in models.items():
        model, _ = load_distill_model(path)
        acc = DBDAccumulator(resolution=Resolution.NATIVE)
        for stem, image, mask in samples:
            acc.add(stem, blur_probability(model, image, side=cfg.val_side), mask)
        rows[name] = {m: np.array([r[m] for r in acc.rows]) for m in ("fmax", "mae")}
    idx = bootstrap_indices(len(samples), a.resamples, 0)  # the same resampled image sets for every model
    out = {"data": data, "base": a.base, "models": models, "n_images": len(samples), "rows": {}}
    for name in models:
        row = {m: float(rows[name][m].mean()) for m in ("fmax", "mae")}
        if name != a.base:
            for m in ("fmax", "mae"):
                r = paired_bootstrap(rows[a.base][m], rows[name][m], idx)
                row[f"{m}_diff"] = r.delta
                row[f"{m}_ci95"] = [r.low, r.high]
        out["rows"][name] = row
    write_json_atomic(a.out, out)
    print(data)
    print(f"{'model':14s} {'Fmax':>7s} {'MAE':>7s}  {'ΔFmax [95% CI]':>28s}  {'ΔMAE [95% CI]':>28s}")
    for name, r in out["rows"].items():
        diff = "" if name == a.base else "  ".join(
            f"{r[f'{m}_diff']:+.4f} [{r[f'{m}_ci95'][0]:+.4f}, {r[f'{m}_ci95'][1]:+.4f}]" for m in ("fmax", "mae"))
        print(f"{name:14s} {r['fmax']:7.4f} {r['mae']:7.4f}  {diff}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
