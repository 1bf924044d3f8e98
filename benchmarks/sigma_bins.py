"""Where does a model's σ error come from? Mean predicted σ and mean absolute error per 1-px band of true σ.

Reads a SYNDOF folder (``image/`` + ``blur_map/``), predicts each image's σ with
the registered method (:func:`dmenet.methods.make_method`; DMENet through its fitted σ curve when it has one) and
pools the
pixels of all images per band of true σ (px; the last band also holds σ = σ_max). Also prints the per-image label
MAE averaged over images (the SYNDOF-test protocol, ``dmenet.evaluate --benchmark syndof``). Figures in px of σ
(label MAE: a fraction of σ_max), not timings: the machine's load does not change them.

Usage::

    python benchmarks/sigma_bins.py --data runs/lite_data/val_bsds [--method dmenet] [--model MODEL] [--flips 8]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmenet import cli as dcli
from dmenet.eval.syndof_test import label_errors, load_label, read_max_coc
from interleave import parser
from syndof import cli, io, units


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = parser("sigma_bins", __doc__, "python benchmarks/sigma_bins.py --data runs/lite_data/val_bsds")
    p.add_argument("--data", type=Path, required=True, help="SYNDOF folder (image/, blur_map/, dataset.json)")
    dcli.add_method(p)
    dcli.add_model(p)
    dcli.add_flips(p)
    dcli.add_raw_sigma(p)
    cli.add_device(p)
    cli.add_threads(p, default=1)
    args = p.parse_args(argv)
    cli.apply_threads(args.threads)
    method = args.method.make(dcli.method_options(args))
    max_coc = read_max_coc(args.data)
    sigma_max = units.max_sigma(max_coc)
    n_bins = int(np.ceil(sigma_max))
    count, pred_sum, err_sum = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    maes = []
    images = io.list_images(args.data / "image")
    if not images:
        raise io.InputError(args.data / "image", "no images")
    for path in images:
        gt = load_label(args.data / "blur_map" / path.name, args.data)
        pred = units.sigma_to_label(method.sigma_map(io.read_image(path)), max_coc)
        maes.append(label_errors(pred, gt)[1])
        h, w = min(gt.shape[0], pred.shape[0]), min(gt.shape[1], pred.shape[1])
        true_sigma = units.label_to_sigma(gt[:h, :w], max_coc)
        pred_sigma = units.label_to_sigma(pred[:h, :w], max_coc)
        band = np.clip(true_sigma.astype(int), 0, n_bins - 1)
        count += np.bincount(band.ravel(), minlength=n_bins)
        pred_sum += np.bincount(band.ravel(), weights=pred_sigma.ravel(), minlength=n_bins)
        err_sum += np.bincount(band.ravel(), weights=np.abs(pred_sigma - true_sigma).ravel(), minlength=n_bins)
    print(f"{args.data}: {len(images)} images, {method.describe()}, "
          f"label MAE (mean over images) {np.mean(maes):.4f}")
    print("| true σ (px) | share of pixels | mean predicted σ (px) | mean absolute error (px) |")
    print("|---|---|---|---|")
    for b in range(n_bins):
        n = max(count[b], 1.0)
        print(f"| {b}–{b + 1} | {count[b] / count.sum():.3f} | {pred_sum[b] / n:.2f} | {err_sum[b] / n:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
