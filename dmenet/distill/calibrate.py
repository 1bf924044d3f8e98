"""Fit the monotone output calibration p = σ(a·(z − b)) of a distill model on the validation images (min mean MAE).

    distill-calibrate --model runs/distill/d0/ckpt/step_000449/model --out runs/distill/cal/model

The network runs at ``data.val_side``² on the validation list of the config (never a test image); per-image MAE
is estimated on 4,096 seeded random pixels of each image at that size (area-resized mask), averaged over
images, and minimised over a grid of
a ∈ [0.5, 8] and b ∈ [−3, 3]. F-max is unchanged (the transform is monotone). Writes a new model file (same weights,
sidecar with ``logit_scale``, ``logit_shift`` and the fit record); an existing output is refused.
"""

from __future__ import annotations

import numpy as np
import torch

from dmenet import cli as dcli
from dmenet.configlib import ConfigError
from dmenet.logits import blur_probability_from_logit
from syndof import cli


PIXELS = 4096


def sample_pixels(logits: list[np.ndarray], masks: list[np.ndarray], seed: int = 0):
    """(Z, M): (n_images, PIXELS) logits and mask values at the same seeded random pixels of each image."""
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, z.size, PIXELS) for z in logits]
    return (np.stack([z.ravel()[i] for z, i in zip(logits, picks)]),
            np.stack([m.ravel()[i] for m, i in zip(masks, picks)]))


def fit(z: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """(scale, shift, MAE) minimising the mean |σ(scale·(z − shift)) − m| over a grid (ties: the first): ``z`` the
    logits and ``m`` the masks (1 = blurred; 0/1, or probabilities in [0, 1]) of the same pixels, arrays of one shape
    (e.g. the (n_images, PIXELS) of :func:`sample_pixels`); the MAE is in probability units."""
    best = (1.0, 0.0, float("inf"))
    for scale in np.round(np.arange(0.5, 8.01, 0.25), 2):
        for shift in np.round(np.arange(-3.0, 3.01, 0.1), 2):
            err = float(np.abs(blur_probability_from_logit(z, scale, shift) - m).mean())
            if err < best[2]:
                best = (float(scale), float(shift), err)
    return best


EXAMPLE = ("distill-calibrate --model checkpoints/distill_student.safetensors --config experiments/distill/tiny.yaml "
           "--out runs/distill_calibrate_example/model")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    from dmenet.distill.config import load_distill_config
    from dmenet.distill.data import labelled_items, load_item, resize_side
    from dmenet.distill.model_io import load_distill_model, save_distill_model
    from dmenet.eval.dbd import resize_mask

    p = cli.parser("dmenet.distill.calibrate", __doc__, EXAMPLE)
    dcli.add_model(p, required=True, help="distill model file (.safetensors + .json)")
    p.add_argument("--out", required=True, metavar="PATH", help="new model file (refused if it exists)")
    cli.add_config(p, help="distill config whose data section names the validation list")
    cli.add_set(p, help="config overrides, e.g. --set data.val_side=320")
    cli.add_threads(p, default=1)
    cli.add_device(p)
    a = p.parse_args(argv)
    cli.apply_threads(a.threads)
    cli.check_device(a.device)
    problem = dcli.model_out_problem(a.out, [a.model])  # under a file, unwritable, a folder: found after the fit
    if problem:
        return cli.fail(problem)
    cfg = load_distill_config(a.config, a.overrides).data
    model, info = load_distill_model(a.model, a.device)
    items = labelled_items(cfg.images, cfg.masks, cfg.val_list, mask_suffix=cfg.mask_suffix)
    from dmenet.data.splits import held_out_among

    tested = held_out_among(it.image for it in items)
    if tested:  # cuhk/train_image holds the 5 test photos of cuhk/image too: a list naming one fitted on it
        raise ConfigError(f"{tested[0]}: a CUHK test photo (held out by experiments/cuhk_split.json) in "
                          f"data.val_list {cfg.val_list}; a calibration is fitted on validation images only")
    logits, masks = [], []
    with torch.no_grad():
        for it in items:
            image, mask, _ = load_item(it, cfg.white_is_blurred)
            x = torch.from_numpy(np.ascontiguousarray(resize_side(image, cfg.val_side).transpose(2, 0, 1)))[None]
            logits.append(model(x.to(a.device))[0, 0].cpu().numpy().astype(np.float64))
            if not np.isfinite(logits[-1]).all():  # a diverged model: "fitted" to scale 1, shift 0, MAE inf, exit 0
                raise ValueError(f"--model {a.model}: the network's output on {it.image} is not finite (NaN / inf "
                                 "weights: a diverged or damaged model); nothing was written")
            masks.append(resize_mask(mask, (cfg.val_side, cfg.val_side)).astype(np.float64))
    z, m = sample_pixels(logits, masks)
    raw = float(np.abs(blur_probability_from_logit(z) - m).mean())
    scale, shift, err = fit(z, m)
    meta = {k: v for k, v in info.items() if k not in ("format", "kind", "config")}
    meta.update(logit_scale=scale, logit_shift=shift,
                calibration={"source": str(a.model), "config": a.config, "overrides": list(a.overrides),
                             "images": cfg.images, "masks": cfg.masks, "val_list": cfg.val_list,
                             "n_images": len(items), "side": cfg.val_side, "mae_raw": raw, "mae_fit": err,
                             # the file's own transform, replaced here (it was dropped without a word)
                             "replaced": {k: info[k] for k in ("logit_scale", "logit_shift", "calibration")
                                          if k in info} or None})
    try:  # never over a pair another run wrote into --out meanwhile (both passed the check above)
        save_distill_model(a.out, info["kind"], model, meta, replace=False)  # tensors copied to the CPU there
    except FileExistsError:
        return cli.fail(f"--out {a.out}: a model file was written there while this calibration ran (another "
                        "distill.calibrate?); it is kept and this one is not written (choose another --out)")
    print(f"scale {scale:g} shift {shift:g}: validation MAE {raw:.4f} -> {err:.4f} ({len(items)} images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
