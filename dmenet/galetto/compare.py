"""Side-by-side evaluation of registered methods in one run (``python -m dmenet.galetto.compare``).

Checks (each optional): ``--patches`` classifier top-1 / within ±1 on a patch test set (``test.npz`` of
:mod:`dmenet.galetto.build_patches`); ``--synthetic`` SYNDOF label MAE (σ/σ_max, σ_max from ``dataset.json``, for
methods with σ); ``--rtf`` RTF MAE (σ clipped to 3.275 px, /3.275; methods with σ); ``--cuhk`` CUHK images with
masks: Fmax (255 thresholds on the blur probability), DMENet accuracy and the per-image best-threshold accuracy
(:func:`dmenet.eval.metrics.oracle_accuracy`, Galetto & Deng Table 5); ``--stack`` focal-stack agreement
(:mod:`dmenet.eval.focal_stack`); ``--apps PHOTOS`` the enhancement and fusion checks on the ``--synthetic`` renders
(:mod:`dmenet.galetto.check_apps`); ``--fusion-real STACK …`` Q^AB/F of the σ fusion on real focal stacks (first +
last frame, and the whole stack; :func:`dmenet.galetto.check_apps.real_fusion_scores`). A method is ``NAME`` or
``NAME:key=value,key=value`` (method options, e.g. ``galetto:refine=none,stride=16``; ``NAME:model=PATH`` gives that
method its own model file, ``--model`` gives one file to every learned method, as in every dmenet tool:
:mod:`dmenet.cli`). Writes a new ``OUT`` folder, all or nothing (an existing non-empty ``--out`` is refused, exit 2):
``OUT/metrics.json`` and ``OUT/summary.md``; prints the tables.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dmenet.eval import metrics as M
from dmenet import cli as dcli
from dmenet.eval.benchmarks import read_mask
from dmenet.methods import MethodChoice, MethodOptions
from syndof import cli, io


def build(choices: list[MethodChoice], options: MethodOptions):
    """``{"name[:k=v,…]": estimator}``, each made with ``options`` (:func:`dmenet.cli.method_options`: ``--model``
    for every learned method) and its own ``NAME:key=value`` options (``model=PATH``: its own file). A method that
    cannot be made (bad option, missing or unreadable model file) is a ValueError naming it."""
    methods = {}
    for c in choices:
        try:
            methods[str(c)] = c.make(options)
        except cli.USAGE_ERRORS as exc:
            hint = ("; --model is for every learned method: give one method its own file with NAME:model=PATH"
                    if options.model is not None else "")
            raise ValueError(f"--method {c}: {cli.error_line(exc)}{hint}") from exc
    return methods


def classifier_scores(model_path: str | None, patches: Path) -> dict:
    from dmenet.galetto.method import DEFAULT_MODEL
    from dmenet.galetto.train import accuracy, load_classifier, predict_classes
    import torch

    data = np.load(patches)
    x = torch.from_numpy(data["patches"]).unsqueeze(1).float() / 255.0
    prob = predict_classes(load_classifier(model_path or DEFAULT_MODEL), x)
    label = torch.from_numpy(data["label"])
    pred = prob.argmax(1)
    counts = [int((label == k).sum()) for k in range(prob.shape[1])]
    per_class = [float((pred[label == k] == k).float().mean()) if n else None for k, n in enumerate(counts)]
    out = {**accuracy(prob, label), "n": int(len(label)), "per_class_top1": per_class, "per_class_n": counts}
    if "sigma" in data.files:  # syndof windows: also the error against the window's mean ground-truth σ (px)
        out["mae_sigma_px"] = float(np.abs(pred.numpy() - data["sigma"]).mean())
    return out


def synthetic_scores(methods: dict, root: Path, limit: int | None) -> dict:
    from dmenet.eval.syndof_test import label_errors, read_max_coc
    from syndof import units

    max_coc = read_max_coc(root)
    pairs = sorted(io.index_by_stem(root / "image").items())[:limit]
    maps = io.index_by_stem(root / "blur_map")
    res = {}
    for label, est in methods.items():
        if not est.gives_sigma:
            continue
        maes, t0 = [], time.time()
        for stem, path in pairs:
            gt = units.sigma_to_label(io.read_sigma_map(maps[stem]), max_coc)
            pred = units.sigma_to_label(est.sigma_map(io.read_image(path)), max_coc)
            maes.append(label_errors(pred, gt)[1])
        res[label] = {"mae": float(np.mean(maes)), "n": len(maes), "s_per_image": (time.time() - t0) / len(pairs)}
    return res


def rtf_scores(methods: dict, root: Path) -> dict:
    from dmenet.eval.rtf import list_rtf, load_conversion_table, load_rtf_gt, rtf_errors, find_table

    samples = list_rtf(root)
    table = load_conversion_table(find_table(root))
    res = {}
    for label, est in methods.items():
        if est.gives_sigma:
            maes = [rtf_errors(est.sigma_map(io.read_image(s.image)), load_rtf_gt(s.gt, table))[1] for s in samples]
            res[label] = {"mae": float(np.mean(maes)), "n": len(maes), "stems": [s.stem for s in samples]}
    return res


def cuhk_scores(methods: dict, root: Path) -> dict:
    images = io.list_images(root / "image")
    res = {}
    for label, est in methods.items():
        curves, acc, oracle = [], [], []
        for path in images:
            gt = read_mask(root / "gt" / f"{path.stem}.png", white_is_blurred=True)
            p = est.blur_map(io.read_image(path))
            curves.append(M.f_curve(p, gt)[2])
            acc.append(M.dmenet_accuracy(p, gt))
            oracle.append(M.oracle_accuracy(p, gt))
        res[label] = {"fmax": float(np.max(np.mean(curves, 0))), "dmenet_accuracy": float(np.mean(acc)),
                      "oracle_accuracy": float(np.mean(oracle)), "n": len(images)}
    return res


def stack_scores(methods: dict, stacks: list[str]) -> dict:
    from dmenet.eval.focal_stack import blur_maps, confident_mask, load_stack, reference_focus, score_stack, stack_name

    res: dict = {}
    for spec in stacks:
        _, frames, _ = load_stack(spec, 640)
        focus = reference_focus(frames)
        mask = confident_mask(focus)
        for label, est in methods.items():
            fn = est.sigma_map if est.gives_sigma else est.blur_map
            res.setdefault(label, {})[stack_name(spec)] = score_stack(blur_maps(frames, fn), focus, mask).as_dict()
    for label in res:
        res[label]["mean_agreement"] = float(np.mean([v["agreement"] for v in res[label].values()]))
    return res


def apps_scores(methods: dict, root: Path, photos: Path, count: int) -> dict:
    from dmenet.galetto.check_apps import check_renders

    return {label: check_renders(est, root, photos, count) for label, est in methods.items() if est.gives_sigma}


def fusion_real_scores(methods: dict, stacks: list[str]) -> dict:
    from dmenet.galetto.check_apps import real_fusion_scores

    return {label: real_fusion_scores(est, stacks) for label, est in methods.items() if est.gives_sigma}


EXAMPLE = ("galetto-compare --method galetto:stride=16 --rtf ../shared/data/rtf "
           "--out runs/galetto_compare_example")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    from dmenet.eval.report import markdown_table

    ap = cli.parser("dmenet.galetto.compare", __doc__, EXAMPLE)
    dcli.add_method(ap, many=True, default=["galetto", "dmenet"])
    dcli.add_model(ap, help="model file for every learned method among --method (each its own default without "
                   "it); NAME:model=PATH gives one method its own file, e.g. galetto:model=M")
    ap.add_argument("--patches", type=Path, help="patch test set (.npz)")
    ap.add_argument("--synthetic", type=Path)
    ap.add_argument("--limit", type=cli.positive_int, default=None, help="synthetic: first N samples")
    ap.add_argument("--apps", type=Path, metavar="PHOTOS",
                    help="application checks (dmenet.galetto.check_apps) on the --synthetic renders, whose sharp "
                         "sources are PHOTOS/<id>.jpg")
    ap.add_argument("--apps-count", type=cli.positive_int, default=2, help="--apps: first N renders")
    ap.add_argument("--rtf", type=Path)
    ap.add_argument("--cuhk", type=Path, help="folder with image/ and gt/")
    ap.add_argument("--stack", nargs="*", default=[])
    ap.add_argument("--fusion-real", nargs="+", default=[], metavar="STACK",
                    help="Q^AB/F of the σ fusion on real focal stacks (folders or quoted globs), 640 px long side")
    ap.add_argument("--out", required=True, type=Path,
                    help="new (or empty) output folder (metrics.json, summary.md), written all or nothing")
    cli.add_device(ap)
    cli.add_threads(ap)
    args = ap.parse_args(argv)
    if args.apps and not args.synthetic:
        return cli.fail("--apps checks the --synthetic renders: give --synthetic too")
    problem = dcli.unused_model(args) or cli.new_folder_problem(args.out, "galetto-compare writes a new folder")
    if problem:  # before any work: an earlier run's metrics.json is never replaced
        return cli.fail(problem)
    cli.prepare_process(args)
    methods = build(args.method, dcli.method_options(args))  # bad method option or model file: exit 2
    result: dict = {"methods": {k: v.describe() for k, v in methods.items()}}
    if args.patches:
        from dmenet.galetto.method import GalettoEstimator

        classifier = next((m.model_file for m in methods.values() if isinstance(m, GalettoEstimator)), None)
        result["classifier"] = classifier_scores(classifier, args.patches)  # the first galetto method's file, if any
    for key, fn, arg in (("synthetic", lambda: synthetic_scores(methods, args.synthetic, args.limit), args.synthetic),
                         ("rtf", lambda: rtf_scores(methods, args.rtf), args.rtf),
                         ("cuhk", lambda: cuhk_scores(methods, args.cuhk), args.cuhk),
                         ("stacks", lambda: stack_scores(methods, args.stack), args.stack),
                         ("apps", lambda: apps_scores(methods, args.synthetic, args.apps, args.apps_count), args.apps),
                         ("fusion_real", lambda: fusion_real_scores(methods, args.fusion_real), args.fusion_real)):
        if arg:
            result[key] = fn()
            print(key, {m: {k: v for k, v in r.items() if not isinstance(v, (list, dict))}
                        for m, r in result[key].items()}, flush=True)
    lines = []
    for key in ("synthetic", "rtf", "cuhk", "stacks"):
        if key in result:
            rows = [{"method": m, **{k: v for k, v in r.items() if not isinstance(v, (list, dict))}}
                    for m, r in result[key].items()]
            lines += [f"## {key}", "", markdown_table(rows, list(rows[0])), ""]
    if "fusion_real" in result:
        from dmenet.galetto.check_apps import real_fusion_table

        for border in ("zero", "reflect"):
            rows = real_fusion_table(result["fusion_real"], border)
            if rows:
                lines += [f"## fusion_real (Q^AB/F, {border} Sobel border)", "",
                          markdown_table(rows, list(rows[0])), ""]
    if "classifier" in result:
        c = result["classifier"]
        lines += ["## classifier", "", f"top-1 {c['top1']:.4f}, within ±1 {c['within1']:.4f}, top-1 σ 0–7 "
                  f"{c['top1_0_7']:.4f}, n {c['n']}", ""]
    with io.staged_folder(args.out) as stage:  # all or nothing: --out appears only with both files in it
        io.write_json_atomic(stage / "metrics.json", result)
        io.write_text_atomic(stage / "summary.md", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
