"""Fit a model's σ recalibration curve on held-out synthetic renders (an inference option, no weights change).

The curve (:mod:`dmenet.models.sigma_curve`) is the L1 isotonic regression of the true σ on B's raw σ over every
pixel of the given SYNDOF folders (``image/`` + ``blur_map/``), with the model's own test-time averaging. It is
stored in the model config (``ModelConfig.sigma_curve``) of a copy of the model; inference then maps σ through it.
S and the detection maps keep B's raw output. A curve the model already has is replaced, not composed.

Fit it on renders that are neither trained on nor used to test: the curve learns how the model's errors depend on
σ in the fitting data's blur distribution, and that distribution should be the one the model will be used on.

Usage::

    python -m dmenet.training.fit_sigma --model MODEL.safetensors --data DIR [DIR …] --out OUT.safetensors
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from dmenet.eval.syndof_test import label_errors
from dmenet.inference import predict_label, set_test_flips
from dmenet.models.config import TEST_FLIPS
from dmenet.models.sigma_curve import apply_sigma_curve, fit_sigma_curve, sigma_histograms
from syndof import cli
from syndof import io as sio
from syndof import units

log = logging.getLogger("dmenet.fit_sigma")

N_VALUES = 29
"""Curve values by default: one every 0.25 px for σ_max 7."""


def collect(model, folders: list[Path]) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    """Raw predicted σ and true σ (px, clipped to the model's σ_max) of every readable sample of ``folders``.

    Returns (predicted maps, true maps, sample names ``folder/stem``, skipped files with the reason).
    Unreadable samples and image / map size mismatches are skipped and reported.

    Raises:
        syndof.io.InputError: a folder has no ``image/`` samples at all.
    """
    sigma_max = model.config.sigma_max
    preds, trues, names, skipped = [], [], [], []
    for folder in folders:
        images = sio.list_images(folder / "image") if (folder / "image").is_dir() else []
        if not images:
            raise sio.InputError(folder, "no images in image/ (expected a SYNDOF folder: image/ + blur_map/)")
        for path in images:
            gt_path = folder / "blur_map" / f"{path.stem}.png"
            try:
                image = sio.read_image(path)
                true = np.clip(sio.read_sigma_map(gt_path), 0.0, sigma_max)
                if true.shape != image.shape[:2]:
                    raise sio.InputError(gt_path, f"σ map {true.shape} and image {image.shape[:2]} differ in size")
            except sio.InputError as err:
                log.warning("skipped: %s", err)
                skipped.append(str(err))
                continue
            preds.append(units.label_to_sigma(predict_label(image, model), model.config.max_coc))
            trues.append(true.astype(np.float32))
            names.append(f"{folder.name}/{path.stem}")
    return preds, trues, names, skipped


def label_mae(preds: list[np.ndarray], trues: list[np.ndarray], max_coc: float) -> float:
    """Per-image label MAE (σ/σ_max units) of σ maps (px) averaged over images (the SYNDOF-test protocol)."""
    return float(np.mean([label_errors(units.sigma_to_label(p, max_coc), units.sigma_to_label(t, max_coc))[1]
                          for p, t in zip(preds, trues)]))


EXAMPLE = ("dmenet-fit-sigma --model checkpoints/dmenet_lite.safetensors --data ../shared/data/syndof_reference/output "
           "--flips 1 --out runs/fit_sigma_example.safetensors")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    from dmenet.cli import add_model
    from dmenet.models.model_io import RESERVED_KEYS, load_model_file, save_model

    p = cli.parser("dmenet.training.fit_sigma", __doc__, EXAMPLE)
    add_model(p, required=True, help="trained model file (.safetensors + .json)")
    p.add_argument("--data", required=True, nargs="+", type=Path, help="SYNDOF folders (image/, blur_map/)")
    p.add_argument("--out", required=True, help="output model file (same weights, config with the curve)")
    p.add_argument("--values", type=int, default=N_VALUES, help="curve values, evenly spaced over 0 … σ_max")
    p.add_argument("--min-pixels", type=int, default=1000, help="fewest pixels for a curve value to be fitted")
    p.add_argument("--flips", type=int, choices=TEST_FLIPS, default=None,
                   help="set the model's test_flips first (the fit uses the maps inference will give)")
    cli.add_device(p)
    cli.add_threads(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cli.check_device(args.device)
    cli.apply_threads(args.threads)
    if args.values < 2:
        raise ValueError(f"--values must be >= 2, got {args.values}")
    model, meta = load_model_file(args.model, device=args.device)
    set_test_flips(model, args.flips)
    preds, trues, names, skipped = collect(model, args.data)
    if not preds:
        raise sio.InputError(args.data[0], "no readable sample in the --data folders")
    sigma_max = model.config.sigma_max
    hists = sum(sigma_histograms(pr, tr, args.values, sigma_max) for pr, tr in zip(preds, trues))
    curve = fit_sigma_curve(hists, sigma_max, min_pixels=args.min_pixels)
    model.config.sigma_curve = tuple(round(float(v), 4) for v in curve)  # the curve as stored is the one scored
    max_coc = model.config.max_coc
    before = label_mae(preds, trues, max_coc)
    after = label_mae([apply_sigma_curve(pr, model.config.sigma_curve, sigma_max) for pr in preds], trues, max_coc)
    meta = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    meta["sigma_calibration"] = {
        "method": "L1 isotonic regression of true sigma on raw predicted sigma (px), pooled over all pixels",
        "data": [str(d) for d in args.data], "n_images": len(preds), "skipped": skipped,
        "values": args.values, "min_pixels": args.min_pixels, "test_flips": model.config.test_flips,
        "fit_label_mae_before": round(before, 6), "fit_label_mae_after": round(after, 6),
        "pixels_per_value": [int(n) for n in hists.sum(axis=1)], "source_model": str(args.model),
    }
    save_model(args.out, model.cpu(), meta)
    log.info("test flips %d, %d values: label MAE on the %d fitting images %.4f → %.4f; wrote %s",
             model.config.test_flips, args.values, len(preds), before, after, args.out)
    log.info("curve (px at raw σ 0 … %g): %s", sigma_max, " ".join(f"{v:.2f}" for v in model.config.sigma_curve))
    return 0


if __name__ == "__main__":
    sys.exit(main())
