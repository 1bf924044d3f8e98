"""Rule 19r (experiments/RULE_19R.md): a detection head on B's features of the σ pass (one pass of B, moving
statistics, 1 flip), against the two-label head H1 of rule 19p.

An experiment, not a shipped component. Two steps, one thread each:

    python experiments/feature_head.py cache --out runs/r19 [--shard 0/2]   # B's features, one pass per photo
    python experiments/feature_head.py fit --out runs/r19 --reference runs/p19   # heads L, F, F+; the gate

``cache`` writes ``OUT/cache/{train,neg}/STEM.npz`` (``x``: 16,384 random pixels × 41 features float16, ``mean``:
the photo means of the 41 features, ``y``: the pixels' mask values) and ``OUT/cache/{val,sharpval}/STEM.npz``
(whole maps: ``l`` the label, ``r`` the refinement output (H, W, 8), ``u`` the first decoder stage (H/8, W/8, 32) of
the padded photo; the validation images also at 320² with the suffix ``_320``). ``fit`` trains the three heads with
the shipped head's loop (:func:`dmenet.training.fit_head.train_pixel_classifier`), fits each transform, scores them
on the validation maps and writes ``OUT/feature_head.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from two_input_s import SPLIT, _gate, _mask, _sets, cached_training_files  # noqa: E402  (rules 19p / 19q's sets, gate)

from syndof import cli  # noqa: E402
from syndof import io as sio  # noqa: E402
from syndof.generate import parse_shard  # noqa: E402

SIDE, SAMPLE_SEED = 128, 19
SAMPLES = SIDE * SIDE  # pixels kept of each training photo
SEED, EPOCHS, PIXELS_PER_IMAGE, BATCH, HIDDEN = 21, 60, 4096, 32768, (32, 16)
ARMS = {"L": slice(0, 1), "F": slice(0, 41), "F+": slice(0, 82)}
"""Each head's inputs among the 82 of :func:`pixel_inputs`: the label; the 41 pixel features; and their photo means."""


def features(model, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass of B with moving statistics (eval mode, no fold) on an (H, W, 3) float image in [0, 1], padded to
    multiples of 16 as ``predict_label`` pads: (label (H, W), refinement output (H, W, 8), first decoder stage u3
    (Hp/8, Wp/8, 32) of the padded image), float32."""
    from dmenet.tiling import MULTIPLE

    h, w = rgb.shape[:2]
    hp, wp = -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE
    decoder, grabbed = model.blur.decoder, {}
    hooks = [getattr(decoder, name).register_forward_hook(lambda m, i, o, name=name: grabbed.__setitem__(name, o))
             for name in ("refine", "u3")]
    model.eval()
    try:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
            x = F.pad(x, (0, wp - w, 0, hp - h), mode="replicate").contiguous(memory_format=torch.channels_last)
            label = decoder(model.blur.encoder(x), with_aux=False)[0]
    finally:
        for hook in hooks:
            hook.remove()
    as_hwc = lambda t: t[0].permute(1, 2, 0).float().numpy()
    return label[0, 0, :h, :w].clamp(0, 1).float().numpy(), as_hwc(grabbed["refine"])[:h, :w], as_hwc(grabbed["u3"])


def pixel_features(label: np.ndarray, r: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The 41 features of every pixel, (H·W, 41) float32: label, refinement output, u3 bilinear to the padded size
    and cropped (``features``' outputs, float16 from the cache or float32)."""
    h, w = label.shape
    up = F.interpolate(torch.from_numpy(np.array(u, np.float32)).permute(2, 0, 1)[None], scale_factor=8.0,
                       mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()[:h, :w]
    return np.concatenate([label[..., None], r, up], -1, dtype=np.float32).reshape(h * w, 41)


def pixel_inputs(pixels: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(N, 82) float32: each pixel's 41 features and the photo's 41 means."""
    return np.concatenate([pixels, np.broadcast_to(mean, pixels.shape)], -1, dtype=np.float32)


def cache(out: Path, shard: tuple[int, int]) -> None:
    from dmenet.inference import load_model, predict_label
    from dmenet.models.recipe import BNMode

    model = load_model()
    jobs = [(k, s, p) for k, v in _sets().items() for s, p in v]
    for i, (k, s, p) in enumerate(jobs):
        dst = out / "cache" / k / f"{s}.npz"
        if i % shard[1] != shard[0] or dst.exists():
            continue
        rgb = sio.read_image(p)
        label, r, u = features(model, rgb)
        if i < shard[1]:  # the hooked pass is the σ path's pass, to float rounding
            ref = predict_label(rgb, model, flips=1, bn=BNMode.MOVING)
            assert np.abs(ref - label).max() < 1e-4, (s, float(np.abs(ref - label).max()))
        if k in ("train", "neg"):
            px = pixel_features(label, r, u)
            mask = _mask(s).reshape(-1) if k == "train" else np.zeros(len(px), bool)
            pick = np.sort(np.random.default_rng([SAMPLE_SEED, i]).choice(len(px), SAMPLES, replace=False))
            arrays = {"x": px[pick].astype(np.float16), "mean": px.mean(0), "y": mask[pick].astype(np.uint8)}
        else:
            arrays = {"l": label.astype(np.float16), "r": r.astype(np.float16), "u": u.astype(np.float16)}
            if k == "val":
                l3, r3, u3 = features(model, cv2.resize(rgb, (320, 320), interpolation=cv2.INTER_AREA))
                arrays.update(l_320=l3.astype(np.float16), r_320=r3.astype(np.float16), u_320=u3.astype(np.float16))
        dst.parent.mkdir(parents=True, exist_ok=True)
        with sio.atomic_path(dst) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


class PixelMLP(nn.Module):
    """Per-pixel MLP (N, inputs) → (N,) logits, leaky ReLU 0.2 between layers (the shipped head's form)."""

    def __init__(self, inputs: int, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        widths = (inputs,) + hidden + (1,)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < len(self.linears) - 1:
                x = F.leaky_relu(x, 0.2)
        return x[..., 0]

    def logit(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self(torch.from_numpy(x)).numpy()


def fit(out: Path, reference: Path) -> dict:
    """Rule 19r: heads L, F, F+ on ``out``'s cache, their transforms, their validation figures, and the gate of F
    and F+ against H1 of ``reference/onepass.json``. Writes ``OUT/feature_head.json``."""
    from dmenet.eval.dbd import DBDAccumulator
    from dmenet.logits import blur_probability_from_logit
    from dmenet.training.fit_dbd import fit_logit_transform
    from dmenet.training.fit_head import HeadTraining, train_pixel_classifier, transform_image_indices

    cfg = HeadTraining(epochs=EPOCHS, pixels_per_image=PIXELS_PER_IMAGE, batch=BATCH, seed=SEED, hidden=HIDDEN)
    inputs, masks, names = [], [], []
    for _, f in cached_training_files(out, "feature_head.py"):
        a = np.load(f)
        inputs.append(pixel_inputs(a["x"].astype(np.float32), a["mean"]))
        masks.append(a["y"].astype(np.float32))
        names.append(f.stem)
    fit_idx = transform_image_indices(masks, names, cfg.transform_images, cfg.seed)
    val = [(s, np.load(out / "cache" / "val" / f"{s}.npz"), _mask(s)) for s in json.loads(SPLIT.read_text())["val"]]
    sharp = [np.load(f) for f in sorted((out / "cache" / "sharpval").glob("*.npz"))]

    def photo_inputs(a, suffix: str = "") -> np.ndarray:
        px = pixel_features(a["l" + suffix].astype(np.float32), a["r" + suffix], a["u" + suffix])
        return pixel_inputs(px, px.mean(0))

    res: dict = {"H1": sio.read_json_object(reference / "onepass.json")["H1"], "n_train": len(inputs)}
    for name, cols in ARMS.items():
        torch.manual_seed(cfg.seed)
        net = PixelMLP(cols.stop - cols.start)
        losses = train_pixel_classifier(net, [x[:, cols] for x in inputs], masks, cfg)
        square = lambda v: v.reshape(SIDE, SIDE)  # noqa: E731  (the metrics take 2-D maps; MAE and Fmax ignore layout)
        tf = fit_logit_transform([square(net.logit(inputs[i][:, cols])) for i in fit_idx],
                                 [square(masks[i] > 0.5) for i in fit_idx])
        prob = lambda a, suffix="": blur_probability_from_logit(  # noqa: E731
            net.logit(photo_inputs(a, suffix)[:, cols]).reshape(a["l" + suffix].shape), tf.scale, tf.shift)
        native, at320 = DBDAccumulator(resolution="native"), DBDAccumulator(resolution="320")
        for s, a, mask in val:
            native.add(s, prob(a), mask)
            at320.add(s, prob(a, "_320"), mask)
        sn, s3 = native.summary(), at320.summary()
        res[name] = {"native_fmax": sn["fmax"], "native_mae": sn["mae"], "320_mae": s3["mae"],
                     "320_fmax": s3["fmax"], "sharp_val_mean": float(np.mean([prob(a).mean() for a in sharp])),
                     "sharp_val_n": len(sharp), "transform": tf.to_dict(), "final_bce": losses[-1]}
        if name != "L":
            res[name]["gate"] = _gate(res[name], res["H1"])
        print(name, {k: round(v, 4) for k, v in res[name].items() if isinstance(v, float)}, file=sys.stderr)
    sio.write_json_atomic(out / "feature_head.json", res)
    return res


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.script_parser("experiments/feature_head.py", __doc__,
                          "python experiments/feature_head.py fit --out runs/r19 --reference runs/p19")
    p.add_argument("step", choices=("cache", "fit"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shard", type=parse_shard, default=(0, 1), help="cache: i/n, 0 <= i < n (run n processes)")
    p.add_argument("--reference", type=Path, default=Path("runs/p19"), help="fit: rule 19p's folder (onepass.json)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    if a.step == "cache":
        cache(a.out, a.shard)
    else:
        print(json.dumps(fit(a.out, a.reference), indent=1))
    print(f"{a.step}: {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
