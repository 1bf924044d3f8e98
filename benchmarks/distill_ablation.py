"""Paired comparison of two distill models on the 60 CUHK validation images (320² protocol) with a bootstrap CI.

    python benchmarks/distill_ablation.py --a runs/distill/d0/ckpt/step_000449/model \
        --b runs/distill/d0_content/ckpt/step_000449/model --out runs/distill/ablation.json [--resamples 2000]

Per image: Fmax (best F_β² over 255 thresholds, β² = 0.3) and MAE, each model run at 320×320 and scored at the mask
size (as in training validation). Reports the mean difference A − B and its 95 % percentile bootstrap interval over
images (seed 0). Compare final checkpoints of equal-step runs (no selection on these images).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    import torch

    from dmenet.distill.config import DistillDataConfig
    from dmenet.distill.data import labelled_items, load_item
    from dmenet.distill.infer import blur_probability
    from dmenet.distill.model_io import load_distill_model
    from dmenet.eval.dbd import DBDAccumulator
    from syndof.io import write_json_atomic

    torch.set_num_threads(a.threads)
    cfg = DistillDataConfig()
    items = labelled_items(cfg.images, cfg.masks, cfg.val_list)
    rows = {}
    for key, path in (("a", a.a), ("b", a.b)):
        model, _ = load_distill_model(path)
        acc = DBDAccumulator(resolution="native")
        for it in items:
            image, mask, _ = load_item(it)
            acc.add(it.image.stem, blur_probability(model, image, side=cfg.val_side), mask > 0.5)
        rows[key] = {m: np.array([r[m] for r in acc.rows]) for m in ("fmax", "mae")}
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(items), (a.resamples, len(items)))
    out = {"a": a.a, "b": a.b, "n_images": len(items)}
    for m in ("fmax", "mae"):
        d = rows["a"][m] - rows["b"][m]
        boots = d[idx].mean(axis=1)
        out[m] = {"a": float(rows["a"][m].mean()), "b": float(rows["b"][m].mean()), "diff": float(d.mean()),
                  "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]}
    write_json_atomic(a.out, out)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
