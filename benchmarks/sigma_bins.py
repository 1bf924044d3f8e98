"""Where does a model's σ error come from? Mean predicted σ and mean absolute error per 1-px band of true σ.

Reads a SYNDOF folder (``image/`` + ``blur_map/``), predicts each image's σ with
:func:`dmenet.inference.estimate_defocus` (so through the model's ``sigma_curve`` when it has one) and pools the
pixels of all images per band of true σ (px; the last band also holds σ = σ_max). Also prints the per-image label
MAE averaged over images (the SYNDOF-test protocol, ``dmenet.evaluate --benchmark syndof``).

Usage::

    python benchmarks/sigma_bins.py --data runs/lite_data/val_bsds [--checkpoint MODEL] [--flips 8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dmenet import inference
from dmenet.eval.syndof_test import label_errors, load_label, read_max_coc
from syndof import io, units


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="SYNDOF folder (image/, blur_map/, dataset.json)")
    p.add_argument("--checkpoint", help="model file (default: the shipped checkpoint)")
    p.add_argument("--flips", type=int, help="test-time symmetries (default: the model's recipe)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = inference.load_predictor(args.checkpoint, flips=args.flips)
    max_coc = read_max_coc(args.data)
    sigma_max = units.max_sigma(max_coc)
    n_bins = int(np.ceil(sigma_max))
    count, pred_sum, err_sum = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    maes = []
    images = io.list_images(args.data / "image")
    if not images:
        raise SystemExit(f"{args.data / 'image'}: no images")
    for path in images:
        gt = load_label(args.data / "blur_map" / path.name, args.data)
        pred = units.sigma_to_label(inference.estimate_defocus(io.read_image(path), model), max_coc)
        maes.append(label_errors(pred, gt)[1])
        h, w = min(gt.shape[0], pred.shape[0]), min(gt.shape[1], pred.shape[1])
        true_sigma = units.label_to_sigma(gt[:h, :w], max_coc)
        pred_sigma = units.label_to_sigma(pred[:h, :w], max_coc)
        band = np.clip(true_sigma.astype(int), 0, n_bins - 1)
        count += np.bincount(band.ravel(), minlength=n_bins)
        pred_sum += np.bincount(band.ravel(), weights=pred_sigma.ravel(), minlength=n_bins)
        err_sum += np.bincount(band.ravel(), weights=np.abs(pred_sigma - true_sigma).ravel(), minlength=n_bins)
    print(f"{args.data}: {len(images)} images, test flips {model.recipe.flips}, "
          f"label MAE (mean over images) {np.mean(maes):.4f}")
    print("| true σ (px) | share of pixels | mean predicted σ (px) | mean absolute error (px) |")
    print("|---|---|---|---|")
    for b in range(n_bins):
        n = max(count[b], 1.0)
        print(f"| {b}–{b + 1} | {count[b] / count.sum():.3f} | {pred_sum[b] / n:.2f} | {err_sum[b] / n:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
