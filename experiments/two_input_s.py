"""Rule 21h (experiments/RULE_21H.md): a two-input S on B's per-image- and moving-statistics labels (candidate H).

An experiment, not a shipped component: it measures whether S given both labels, h(l_image, l_moving), lowers the
false blur on sharp-everywhere photos without losing CUHK detection. Three steps, one thread each:

    python experiments/two_input_s.py cache --out runs/h21 [--shard 0/2]   # B's two labels, 1 flip (~4 min / 2 cores)
    python experiments/two_input_s.py fit --out runs/h21                   # train h, fit its transform, score H vs B
    python experiments/two_input_s.py after --out runs/h21                 # demo photos, sharp BSDS test, CUHK-5
    python experiments/two_input_s.py onepass --out runs/p19               # rule 19p: heads on the moving label alone
    python experiments/two_input_s.py halfres --out runs/q19 --reference runs/p19   # rule 19q (cache --image-scale 0.5)

``cache`` writes ``OUT/cache/{train,neg,val,sharpval}/STEM.npz`` (float16 labels ``img``, ``mov``; the validation
images also at 320² as ``img_320``, ``mov_320``; ``--flips 8`` for rule 21h8). ``fit`` trains h with the shipped
code of ``dmenet.calibrate head`` (:mod:`dmenet.training.fit_head`; it was this script's own loop for rule 21h, the
same arithmetic and random draws) and writes ``OUT/head.json`` and ``OUT/result.json`` (the rule's verdict).
``after`` prints the figures measured after the verdict. h is a per-pixel MLP 2 → 16 → 16 → 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from dmenet.models.recipe import FLIPS
from syndof import cli
from syndof import io as sio
from syndof.generate import parse_shard

SHARED = Path("../shared/data")
SPLIT = Path("experiments/cuhk_split.json")
SEED, EPOCHS, PIXELS_PER_IMAGE, BATCH = 21, 60, 4096, 32768


def _sets() -> dict[str, list[tuple[str, Path]]]:
    from dmenet.distill.split import read_split

    split = json.loads(SPLIT.read_text())
    cuhk = {p.stem.lower(): p for p in sio.list_images(SHARED / "cuhk" / "train_image")}
    bsds = SHARED / "photos" / "bsds500"
    return {"train": [(s, cuhk[s]) for s in split["train"]],
            "neg": [(s, bsds / "train" / f"{s}.jpg") for s in read_split("experiments/distill/bsds_sharp_train.txt")],
            "val": [(s, cuhk[s]) for s in split["val"]],
            "sharpval": [(s, bsds / "val" / f"{s}.jpg") for s in read_split("experiments/distill/bsds_sharp_val.txt")]}


def labels(model, image: np.ndarray, flips: int = 1, moving_only: bool = False):
    """B's label with per-image and with moving statistics, each the mean of ``flips`` symmetries (H, W) float32;
    with ``moving_only`` the second alone."""
    from dmenet.inference import predict_label
    from dmenet.models.recipe import BNMode

    if moving_only:
        return predict_label(image, model, flips=flips, bn=BNMode.MOVING)
    return (predict_label(image, model, flips=flips, bn=BNMode.IMAGE),
            predict_label(image, model, flips=flips, bn=BNMode.MOVING))


def to_long_side(rgb: np.ndarray, side: int) -> np.ndarray:
    """Rule 21w: the photo resized to long side ``side`` (INTER_AREA shrinking, INTER_CUBIC enlarging)."""
    h, w = rgb.shape[:2]
    if max(h, w) == side:
        return rgb
    size = (side, round(h * side / w)) if w >= h else (round(w * side / h), side)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if max(h, w) > side else cv2.INTER_CUBIC)


def shrunk_label(model, image: np.ndarray, scale: float, flips: int = 1) -> np.ndarray:
    """Rule 19q: B's per-image-statistics label of ``image`` shrunk by ``scale`` (INTER_AREA, sides rounded, ≥ 1 px),
    resized back to the image's size (bilinear), (H, W) float32."""
    from dmenet.inference import predict_label
    from dmenet.models.recipe import BNMode

    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    label = predict_label(small, model, flips=flips, bn=BNMode.IMAGE)
    return cv2.resize(label, (w, h), interpolation=cv2.INTER_LINEAR)


def cache(out: Path, shard: tuple[int, int], flips: int = 1, working_side: int | None = None,
          scored_only: bool = False, image_scale: float | None = None) -> None:
    from dmenet.inference import load_model

    model = load_model()
    kinds = ("val", "sharpval") if working_side or scored_only else ("train", "neg", "val", "sharpval")
    jobs = [(k, s, p) for k, v in _sets().items() if k in kinds for s, p in v]
    for i, (k, s, p) in enumerate(jobs):
        dst = out / "cache" / k / f"{s}.npz"
        if i % shard[1] != shard[0] or dst.exists():
            continue
        rgb = sio.read_image(p)
        arrays = {}
        views = [("", rgb)] + ([("_320", cv2.resize(rgb, (320, 320), interpolation=cv2.INTER_AREA))]
                               if k == "val" else [])
        for suffix, img in views:
            if image_scale is not None:
                li, lm = shrunk_label(model, img, image_scale, flips), labels(model, img, flips, moving_only=True)
            else:
                li, lm = labels(model, to_long_side(img, working_side) if working_side else img, flips)
            arrays["img" + suffix], arrays["mov" + suffix] = li.astype(np.float16), lm.astype(np.float16)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with sio.atomic_path(dst) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def cached_training_files(out: Path, script: str) -> list[tuple[str, Path]]:
    """(``train`` or ``neg``, file) of every ``OUT/cache/{train,neg}/STEM.npz`` the ``cache`` step of
    ``experiments/SCRIPT`` wrote into ``out``, sorted by name within each; ValueError naming ``OUT/cache`` and the
    step to run first when there is none (was ``train_head: 0 label sets and 0 masks``, naming no folder)."""
    files = [(k, f) for k in ("train", "neg") for f in sorted((out / "cache" / k).glob("*.npz"))]
    if not files:
        raise ValueError(f"{out / 'cache'}: nothing cached for training (no train/ or neg/ .npz files); run "
                         f"python experiments/{script} cache --out {out} first")
    return files


def _mask(stem: str) -> np.ndarray:
    from dmenet.eval.benchmarks import read_mask

    return read_mask(SHARED / "cuhk" / "gt" / f"{stem}.png") > 0.5


def score(prob, root: Path, to_input_size: bool = False) -> dict:
    """The rules' figures of a detection map ``prob(l_image, l_moving)`` on the labels cached in ``root``: the 100
    validation images at native size and at 320² (DBD protocol) and the mean over the sharp val photos. With
    ``to_input_size`` a map is resized (bilinear) to the input size first (rule 21w's labels are at another size)."""
    from dmenet.eval.dbd import DBDAccumulator

    def back(p: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        if not to_input_size or p.shape == shape:
            return p
        return cv2.resize(p, shape[::-1], interpolation=cv2.INTER_LINEAR)

    native, at320 = DBDAccumulator(resolution="native"), DBDAccumulator(resolution="320")
    for s in json.loads(SPLIT.read_text())["val"]:
        a, mask = np.load(root / "cache" / "val" / f"{s}.npz"), _mask(s)
        native.add(s, back(prob(a["img"], a["mov"]), mask.shape), mask)
        at320.add(s, back(prob(a["img_320"], a["mov_320"]), (320, 320)), mask)
    sharp = [float(prob(a["img"], a["mov"]).mean()) for a in
             (np.load(f) for f in sorted((root / "cache" / "sharpval").glob("*.npz")))]
    sn, s3 = native.summary(), at320.summary()
    return {"native_fmax": sn["fmax"], "native_mae": sn["mae"], "native_f_at_0.5": sn["f_at_0.5"],
            "320_mae": s3["mae"], "320_f_at_0.5": s3["f_at_0.5"], "320_fmax": s3["fmax"],
            "sharp_val_mean": float(np.mean(sharp)), "sharp_val_n": len(sharp)}


def _train_head(out: Path, moving_only: bool = False, **training):
    """h trained on the labels cached in ``out`` and its transform fitted, as ``dmenet.calibrate head`` does, with
    the rules' settings (:data:`EPOCHS`, :data:`PIXELS_PER_IMAGE`, :data:`BATCH`, :data:`SEED`) and ``training``'s
    other :class:`dmenet.training.fit_head.HeadTraining` fields; with ``moving_only`` both inputs are the moving label
    (rule 19p's P). Returns (head, transform fit, image names, indices of the transform's images)."""
    from dmenet.models.detection_head import head_logit
    from dmenet.training.fit_dbd import fit_logit_transform
    from dmenet.training.fit_head import HeadTraining, train_head, transform_image_indices

    cfg = HeadTraining(epochs=EPOCHS, pixels_per_image=PIXELS_PER_IMAGE, batch=BATCH, seed=SEED, **training)

    pairs, masks, names = [], [], []
    for k, f in cached_training_files(out, "two_input_s.py"):
        a = np.load(f)
        first = a["mov"] if moving_only else a["img"]
        pairs.append(np.stack([first, a["mov"]], -1).astype(np.float32))
        masks.append(_mask(f.stem).astype(np.float32) if k == "train" else np.zeros(a["img"].shape, np.float32))
        names.append(f.stem)
    net, _ = train_head(pairs, masks, cfg)
    head = net.to_head()
    fit_idx = transform_image_indices(masks, names, cfg.transform_images, cfg.seed, cfg.transform_negatives)
    tf = fit_logit_transform([head_logit(head, pairs[i][..., 0], pairs[i][..., 1]) for i in fit_idx],
                             [masks[i] > 0.5 for i in fit_idx])
    return head, tf, names, fit_idx


def onepass(out: Path) -> dict:
    """Rule 19p (experiments/RULE_19P.md): H1 = the two-label head, P = the head on the moving label alone, P+ = P
    with the photo's mean moving label, all fitted on ``out``'s cache (1 flip); the rule's gate of P and P+ against
    H1. Writes ``OUT/onepass.json`` and ``OUT/head_{H1,P,P+}.json``."""
    from dmenet.logits import blur_probability_from_logit
    from dmenet.models.detection_head import head_logit

    arms = {"H1": (False, False), "P": (True, False), "P+": (True, True)}  # (moving only, image mean)
    res: dict = {}
    for name, (moving_only, image_mean) in arms.items():
        head, tf, _, _ = _train_head(out, moving_only, image_mean=image_mean)

        def prob(li, lm, head=head, tf=tf, moving_only=moving_only):
            return blur_probability_from_logit(head_logit(head, lm if moving_only else li, lm), tf.scale, tf.shift)

        res[name] = {**score(prob, out), "transform": tf.to_dict()}
        sio.write_json_atomic(out / f"head_{name}.json", head.to_dict())
    for name in ("P", "P+"):
        res[name]["gate"] = _gate(res[name], res["H1"])
    sio.write_json_atomic(out / "onepass.json", res)
    return res


def _gate(c: dict, ref: dict) -> dict:
    """Rules 19p / 19q: a candidate's validation figures ``c`` against the reference H1's ``ref``."""
    gate = {"1_native": c["native_fmax"] >= ref["native_fmax"] - 0.005 and c["native_mae"] <= ref["native_mae"] + 0.005,
            "2_320_mae": c["320_mae"] <= ref["320_mae"] + 0.005,
            "3_sharp": c["sharp_val_mean"] <= ref["sharp_val_mean"] + 0.02}
    return {**gate, "passes": all(gate.values())}


def halfres(out: Path, reference: Path) -> dict:
    """Rule 19q (experiments/RULE_19Q.md): Q = the two-label head fitted on ``out``'s cache (made with
    ``--image-scale``), gated against H1 of ``reference/onepass.json`` (rule 19p). Writes ``OUT/halfres.json`` and
    ``OUT/head_Q.json``."""
    from dmenet.logits import blur_probability_from_logit
    from dmenet.models.detection_head import head_logit

    head, tf, _, _ = _train_head(out)
    q = {**score(lambda li, lm: blur_probability_from_logit(head_logit(head, li, lm), tf.scale, tf.shift), out),
         "transform": tf.to_dict()}
    ref = sio.read_json_object(reference / "onepass.json")["H1"]
    res = {"H1": ref, "Q": {**q, "gate": _gate(q, ref)}}
    sio.write_json_atomic(out / "head_Q.json", head.to_dict())
    sio.write_json_atomic(out / "halfres.json", res)
    return res


def fit(out: Path, negative_weight: float = 1.0, transform_negatives: int = 0, tag: str = "",
        image_mean: bool = False) -> dict:
    """Train h and fit its transform with the shipped code (:mod:`dmenet.training.fit_head`, the functions of
    ``dmenet.calibrate head``) on the cached labels; score H against B; write ``OUT/head.json`` and the verdict."""
    from dmenet.inference import load_model
    from dmenet.logits import blur_probability_from_logit, calibration_logit
    from dmenet.models.detection_head import head_logit

    head, tf, names, fit_idx = _train_head(out, negative_weight=negative_weight,
                                           transform_negatives=transform_negatives, image_mean=image_mean)
    model = load_model()
    det = model.recipe.detection
    prob = {"B": lambda li, lm: blur_probability_from_logit(calibration_logit(model, li.astype(np.float32)),
                                                            det.scale, det.shift),
            "H": lambda li, lm: blur_probability_from_logit(head_logit(head, li, lm), tf.scale, tf.shift)}
    res: dict = {"h_transform": tf.to_dict(), "transform_images": [names[i] for i in fit_idx]}
    for name, fn in prob.items():
        res[name] = score(fn, out)
    b, c = res["B"], res["H"]
    verdict = {"1_fmax": c["native_fmax"] >= b["native_fmax"] - 0.005,
               "2_native_mae": c["native_mae"] <= b["native_mae"], "3_320_mae": c["320_mae"] <= b["320_mae"],
               "4_sharp": c["sharp_val_mean"] <= b["sharp_val_mean"] - 0.10}
    res["verdict"] = {**verdict, "H_wins": all(verdict.values())}
    sio.write_json_atomic(out / f"head{tag}.json", head.to_dict())
    sio.write_json_atomic(out / f"result{tag}.json", res)
    return res


def working(out: Path, reference: Path) -> dict:
    """Rule 21w: the reference head (``reference/head.json`` and its transform) on labels computed at the working
    size (``out``'s cache), maps resized back (bilinear) to the input size, against the same head at input size."""
    from dmenet.logits import blur_probability_from_logit
    from dmenet.models.detection_head import DetectionHead, head_logit

    head = DetectionHead.from_dict(sio.read_json_object(reference / "head.json"))
    tf = sio.read_json_object(reference / "result.json")["h_transform"]
    prob = lambda li, lm: blur_probability_from_logit(head_logit(head, li, lm), tf["scale"], tf["shift"])
    res = {name: score(prob, root, to_input_size=True) for name, root in (("H8", reference), ("W", out))}
    h, w = res["H8"], res["W"]
    verdict = {"1_320_mae": w["320_mae"] <= h["320_mae"] - 0.010,
               "2_native": w["native_fmax"] >= h["native_fmax"] - 0.002 and w["native_mae"] <= h["native_mae"] + 0.002,
               "3_sharp": w["sharp_val_mean"] <= h["sharp_val_mean"] + 0.02}
    res["verdict"] = {**verdict, "W_passes": all(verdict.values())}
    sio.write_json_atomic(out / "result.json", res)
    return res


def flips_table(runs: list[Path], out: Path) -> dict:
    """The shipped model's detection map (its head and transform, fitted at 8 flips) on the validation labels cached
    in each of ``runs`` (their flips as cached): the quality side of issue 19's flips trade. Writes OUT/flips.json."""
    from dmenet.inference import load_model
    from dmenet.logits import blur_probability_from_logit
    from dmenet.models.detection_head import head_logit

    det = load_model().recipe.detection
    prob = lambda li, lm: blur_probability_from_logit(head_logit(det.head, li, lm), det.scale, det.shift)
    res = {str(root): score(prob, root) for root in runs}
    sio.write_json_atomic(out / "flips.json", res)
    return res


def after(out: Path, tag: str = "") -> dict:
    """H and B on the demo photos, the first 20 screened sharp BSDS500 test photos and CUHK-5 (after the verdict)."""
    import skimage.data

    from dmenet.distill.split import read_split
    from dmenet.eval.dbd import DBDAccumulator
    from dmenet.inference import load_model
    from dmenet.logits import blur_probability_from_logit, calibration_logit
    from dmenet.models.detection_head import DetectionHead, head_logit

    head = DetectionHead.from_dict(sio.read_json_object(out / f"head{tag}.json"))
    tf = sio.read_json_object(out / f"result{tag}.json")["h_transform"]
    model = load_model()
    det = model.recipe.detection

    def both(img):
        li, lm = labels(model, img)
        return (blur_probability_from_logit(calibration_logit(model, li), det.scale, det.shift),
                blur_probability_from_logit(head_logit(head, li, lm), tf["scale"], tf["shift"]))

    res: dict = {}
    for n in ("astronaut", "coffee", "chelsea"):
        res[n] = [float(p.mean()) for p in both(getattr(skimage.data, n)().astype(np.float32) / 255)]
    bsds = [[float(p.mean()) for p in both(sio.read_image(SHARED / "photos/bsds500/test" / f"{s}.jpg"))]
            for s in read_split("experiments/distill/bsds_sharp_test.txt")[:20]]
    res["bsds_test_20"] = np.mean(bsds, 0).tolist()
    accs = [DBDAccumulator(resolution="native"), DBDAccumulator(resolution="native")]
    for p in sio.list_images(SHARED / "cuhk" / "image"):
        for acc, prob in zip(accs, both(sio.read_image(p))):
            acc.add(p.stem, prob, _mask(p.stem))
    res["cuhk5_fmax_mae"] = [[s["fmax"], s["mae"]] for s in (acc.summary() for acc in accs)]
    return res


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.script_parser("experiments/two_input_s.py", __doc__, "python experiments/two_input_s.py fit --out runs/h21")
    p.add_argument("step", choices=("cache", "fit", "after", "working", "flips", "onepass", "halfres"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shard", type=parse_shard, default=(0, 1), help="cache: i/n, 0 <= i < n (run n processes)")
    p.add_argument("--flips", type=int, choices=FLIPS, default=1,
                   help="cache: symmetries averaged per label (1, 2, 4, 8)")
    p.add_argument("--working-side", type=cli.positive_int, default=None,
                   help="cache: labels of the validation and sharp-val photos at this long side (rule 21w)")
    p.add_argument("--image-scale", type=cli.positive_float, default=None,
                   help="cache: the per-image-statistics label of the photo shrunk by this factor, resized back "
                        "(rule 19q: 0.5)")
    p.add_argument("--scored-only", action="store_true",
                   help="cache: only the validation and sharp-val photos (the shipped head's flips table)")
    p.add_argument("--runs", type=Path, nargs="+", default=[],
                   help="flips: cache folders to score with the shipped head, e.g. runs/h21 runs/h21f2 runs/h21f8")
    p.add_argument("--reference", type=Path, default=None,
                   help="working: the run folder of the head and its native-size cache (rule 21w: runs/h21f8)")
    p.add_argument("--negative-weight", type=cli.positive_float, default=1.0,
                   help="fit: BCE weight of the all-sharp photos' pixels (rule 21n)")
    p.add_argument("--transform-negatives", type=cli.non_negative_int, default=0,
                   help="fit: all-sharp photos added to the transform's pool (rule 21t)")
    p.add_argument("--image-mean", action="store_true",
                   help="fit: the photo's mean moving label as a third input (rule 21g)")
    p.add_argument("--tag", default="", help="fit/after: suffix of head.json / result.json (rule 21n: _n2, _n4)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    if a.step == "cache":
        cache(a.out, a.shard, a.flips, a.working_side, a.scored_only,
              a.image_scale)
    elif a.step == "working":
        print(json.dumps(working(a.out, a.reference), indent=1))
    elif a.step == "flips":
        print(json.dumps(flips_table(a.runs, a.out), indent=1))
    elif a.step == "onepass":
        print(json.dumps(onepass(a.out), indent=1))
    elif a.step == "halfres":
        print(json.dumps(halfres(a.out, a.reference), indent=1))
    else:
        result = (fit(a.out, a.negative_weight, a.transform_negatives, a.tag, a.image_mean) if a.step == "fit"
                  else after(a.out, a.tag))
        print(json.dumps(result, indent=1))
    print(f"{a.step}: {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
