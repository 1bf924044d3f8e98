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
``OUT/metrics.json`` and ``OUT/summary.md``; prints each check's table as it is done (the apps table holds each
method's means over the renders, :func:`dmenet.galetto.check_apps.apps_table`).

Every input is checked before any model is loaded or any image scored (exit 2, one line naming the file or option):
the patch set's layout, each ``--synthetic`` render's σ map (of the first ``--limit``; a render or σ map name
where no file can be read is refused), each ``--apps`` render's name and source photo, the RTF and CUHK pairs,
and each stack of ``--stack`` / ``--fusion-real`` (≥ 2 frames, each a file: a stack's image name where no file can
be read is refused, as a stack is scored with all its frames).
An RTF or CUHK image (or its ground truth) that cannot be decoded, or an image name there where no file can be read
(a symbolic link loop or to nothing, a FIFO), is skipped by every method, with one line ``skipped FILE: reason``;
the count is in the check's table, ``metrics.json`` (``skipped``) and the closing line (a folder none of whose
images can be read: exit 2, nothing written). A ``--synthetic`` render is scored by every method or the check stops:
one that cannot be decoded, that a method refuses (under the galetto classifier's 32-px window), or whose σ map is
above the folder's σ_max (``dataset.json``'s ``max_coc`` does not describe it) is exit 2 naming the file, nothing
written.
``--patches`` scores the classifier of the first ``galetto`` method, so it needs one among ``--method``. The σ checks
(``--synthetic``, ``--rtf``, ``--apps``, ``--fusion-real``) need a method with σ: with none they are refused; a method
without σ (e.g. lbp) is left out of them with a note line under the table (and listed under ``no_sigma`` in
``metrics.json``).
"""

from __future__ import annotations

import glob
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dmenet.eval import metrics as M
from dmenet import cli as dcli
from dmenet.eval.benchmarks import read_mask
from dmenet.galetto import NUM_CLASSES, PATCH
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


def read_patch_test_set(path: Path) -> dict[str, np.ndarray]:
    """A patch test set (``test.npz`` / ``syndof_test.npz`` of :mod:`dmenet.galetto.build_patches`), read whole:
    ``patches`` (M, 32, 32) uint8 gray 0–255, ``label`` (M,) integer σ class 0…19, optionally ``sigma`` (M,) px.

    Raises:
        InputError: naming ``path`` and what is wrong: unreadable, truncated or not a .npz, a train/val set
            ((N, 20, 32, 32) patches), a missing array, or arrays of another shape or type.
    """
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise io.InputError(path, "a single .npy array, not a .npz patch set")
        with data:
            arrays = {k: data[k] for k in data.files}
    except OSError as exc:
        raise io.InputError(path, f"cannot read it ({exc.strerror or exc})") from exc
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise io.InputError(path, f"truncated or damaged .npz ({exc})") from exc
    except ValueError as exc:  # neither a zip nor a .npy: numpy tries it as a pickle, which is refused
        raise io.InputError(path, "not a .npz archive") from exc
    patches, label = arrays.get("patches"), arrays.get("label")
    if patches is not None and patches.ndim == 4:
        raise io.InputError(path, f"patches {patches.shape}: a train/val set of build_patches, not a test set "
                            "(give its test.npz or a syndof_test.npz)")
    missing = [k for k, v in (("patches", patches), ("label", label)) if v is None]
    if missing:
        raise io.InputError(path, f"no {' or '.join(missing)} array: not a patch test set (test.npz or "
                            "syndof_test.npz of dmenet.galetto.build_patches)")
    if patches.ndim != 3 or patches.shape[1:] != (PATCH, PATCH) or patches.dtype != np.uint8:
        raise io.InputError(path, f"patches {patches.shape} {patches.dtype}: expected (M, {PATCH}, {PATCH}) uint8")
    if label.shape != (len(patches),) or label.dtype.kind not in "iu":
        raise io.InputError(path, f"label {label.shape} {label.dtype}: expected ({len(patches)},) integers")
    if not len(label):
        raise io.InputError(path, "no patches")
    if label.min() < 0 or label.max() >= NUM_CLASSES:
        raise io.InputError(path, f"labels {label.min()}…{label.max()} outside the classes 0…{NUM_CLASSES - 1}")
    if "sigma" in arrays and arrays["sigma"].shape != label.shape:
        raise io.InputError(path, f"sigma {arrays['sigma'].shape}: expected {label.shape}, one per patch")
    return arrays


def classifier_scores(model_path: str | None, data: dict[str, np.ndarray]) -> dict:
    """Top-1, within ±1, per-class top-1 (and, for SYNDOF windows, the MAE in px against their mean σ) of the
    classifier ``model_path`` (the shipped one: None) on a patch set of :func:`read_patch_test_set`."""
    from dmenet.galetto.method import DEFAULT_MODEL
    from dmenet.galetto.train import accuracy, load_classifier, predict_classes
    import torch

    x = io.from_uint8_tensor(torch.from_numpy(data["patches"]).unsqueeze(1))
    prob = predict_classes(load_classifier(model_path or DEFAULT_MODEL), x)
    label = torch.from_numpy(data["label"]).long()
    pred = prob.argmax(1)
    counts = [int((label == k).sum()) for k in range(prob.shape[1])]
    per_class = [float((pred[label == k] == k).float().mean()) if n else None for k, n in enumerate(counts)]
    out = {**accuracy(prob, label), "n": int(len(label)), "per_class_top1": per_class, "per_class_n": counts}
    if "sigma" in data:  # syndof windows: also the error against the window's mean ground-truth σ (px)
        out["mae_sigma_px"] = float(np.abs(pred.numpy() - data["sigma"]).mean())
    return out


def synthetic_scores(methods: dict, pairs: list[tuple[str, Path, Path]], max_coc: float, root: Path) -> dict:
    """Label MAE (σ/σ_max, σ_max = (``max_coc`` − 1)/4 px; ``max_coc`` the largest CoC in px, from ``root``'s
    ``dataset.json``) of each method with σ over ``pairs`` (:func:`dmenet.eval.syndof_test.sigma_map_pairs` of the
    SYNDOF folder ``root``). Every method reads each render; the first warns of an animated one
    (``FirstFrameWarning``), the others not again (one warning per file per run).

    Raises:
        InputError: naming the file: a render or σ map that cannot be read, a σ above σ_max
            (:func:`dmenet.eval.syndof_test.sigma_label`), or a render a method refuses (its ValueError, e.g. a render
            under the galetto classifier's 32-px window, "image is too small", which named no file). ``--synthetic``
            scores every method on the same renders, so one it cannot score stops the check (as an undecodable one
            does), never a skip.
    """
    from dmenet.eval.syndof_test import label_errors, sigma_label
    from syndof import units

    res = {}
    for i, (label, est) in enumerate((k, e) for k, e in methods.items() if e.gives_sigma):
        maes, t0 = [], time.time()
        for _, path, sigma_path in pairs:
            gt = sigma_label(sigma_path, max_coc, root)
            image = io.read_image(path, note_frames=i == 0)
            try:
                sigma = est.sigma_map(image)
            except io.InputError:  # names its own file (e.g. the method's model)
                raise
            except ValueError as exc:  # the method refuses this render ("image is too small: …" named no file)
                raise io.InputError(path, f"{exc} (method {label}; every --synthetic render is scored by every "
                                          "method: remove it or leave the method out)") from exc
            pred = units.sigma_to_label(sigma, max_coc)
            maes.append(label_errors(pred, gt)[1])
        res[label] = {"mae": float(np.mean(maes)), "n": len(maes), "s_per_image": (time.time() - t0) / len(pairs)}
    return res


def rtf_inputs(root: Path) -> tuple[list, np.ndarray | None]:
    """RTF samples of ``root`` and its σ conversion table ((N, 2) float64 rows [Gaussian σ, disk radius], px; None
    when every ground truth is a σ ``.npy``).
    Raises InputError naming the folder: unmatched files, no sample, or .mat radius maps without the table."""
    from dmenet.eval.rtf import TABLE_NAME, find_table, list_rtf, load_conversion_table

    if not root.is_dir():
        raise io.InputError(root, "not a folder")
    samples = list_rtf(root)
    if not samples:
        raise io.InputError(root, "no RTF samples")
    table_path = find_table(root)
    if table_path is None and any(Path(s.gt).suffix.lower() == ".mat" for s in samples):
        raise io.InputError(root, f"its .mat radius maps need {TABLE_NAME} (looked in gt/<s>/, gt/ and the root)")
    return samples, (load_conversion_table(table_path) if table_path is not None else None)


def read_or_skip(image: Path, read, skipped: dict[str, str]):
    """``read()`` (an image and its ground truth), or None when either cannot be read: ``image`` is then added to
    ``skipped`` (its path → the reason) and reported in one line (``skipped FILE: reason``) the first time; an image
    already in ``skipped`` gives None at once (every method scores the same images)."""
    if str(image) in skipped:
        return None
    try:
        return read()
    except io.InputError as exc:  # a corrupt image or mask: the batch goes on without it
        skipped[str(image)] = str(exc)
        print(f"skipped {exc}", file=sys.stderr, flush=True)
        return None


def none_read(images: list[Path], skipped: dict[str, str]) -> io.InputError:
    """The error of a check none of whose ``images`` could be read (every one skipped)."""
    return io.InputError(images[0].parent, f"no image could be read ({len(skipped)} skipped)")


def rtf_scores(methods: dict, samples: list, table: np.ndarray | None, skipped: dict[str, str]) -> dict:
    """RTF MAE of each method with σ over ``samples`` (:func:`rtf_inputs`); a sample whose image or ground truth
    cannot be read is skipped (:func:`read_or_skip`, into ``skipped``); InputError when none can. The first method
    warns of an animated image, the others not again. ``table``: (N, 2) ``[σ px, radius px]`` for ``.mat`` ground
    truth, or None (:func:`dmenet.eval.rtf.load_rtf_gt`). Returns {method: {"mae": mean over the images of the
    per-image MAE in normalised units (σ px clipped to [0, 3.275], / 3.275: in [0, 1]), "n", "stems"}}."""
    from dmenet.eval.rtf import load_rtf_gt, rtf_errors

    res = {}
    for i, (label, est) in enumerate((k, e) for k, e in methods.items() if e.gives_sigma):
        maes, stems = [], []
        for s in samples:
            pair = read_or_skip(s.image, lambda: (io.read_image(s.image, note_frames=i == 0),
                                                  load_rtf_gt(s.gt, table)), skipped)
            if pair is not None:
                maes.append(rtf_errors(est.sigma_map(pair[0]), pair[1])[1])
                stems.append(s.stem)
        if not maes:
            raise none_read([Path(s.image) for s in samples], skipped)
        res[label] = {"mae": float(np.mean(maes)), "n": len(maes), "stems": stems}
    return res


def cuhk_pairs(root: Path) -> list[tuple[Path, Path]]:
    """``(image, mask)`` of a CUHK-style folder (``image/``, ``gt/<stem>.png``), sorted by image name; an image name
    of ``image/`` where no file can be read (a symbolic link loop or to nothing, a FIFO:
    :func:`syndof.io.image_entries`) is kept, so the scoring skips and records it as it does an image that cannot
    be decoded (:func:`read_or_skip`), never leaves it out unsaid. Raises InputError: a missing folder, no image, or
    naming the first image without its mask."""
    images = io.image_entries(root / "image")
    if not images:
        raise io.InputError(root / "image", "no images to score")
    pairs = [(path, root / "gt" / f"{path.stem}.png") for path in images]
    missing = [image for image, gt in pairs if not gt.is_file()]
    if missing:
        raise io.InputError(missing[0], f"no mask {missing[0].stem}.png for it in {root / 'gt'}")
    return pairs


def cuhk_scores(methods: dict, pairs: list[tuple[Path, Path]], skipped: dict[str, str]) -> dict:
    """Fmax, DMENet accuracy and the per-image best-threshold accuracy of every method over ``pairs``; a pair whose
    image or mask cannot be read is skipped (:func:`read_or_skip`, into ``skipped``); InputError when none can. The
    first method warns of an animated image, the others not again."""
    res = {}
    for i, (label, est) in enumerate(methods.items()):
        curves, acc, oracle = [], [], []
        for path, mask in pairs:
            pair = read_or_skip(path, lambda: (io.read_image(path, note_frames=i == 0),
                                               read_mask(mask, white_is_blurred=True)), skipped)
            if pair is None:
                continue
            p, gt = est.blur_map(pair[0]), pair[1]
            curves.append(M.f_curve(p, gt)[2])
            acc.append(M.dmenet_accuracy(p, gt))
            oracle.append(M.oracle_accuracy(p, gt))
        if not curves:
            raise none_read([path for path, _ in pairs], skipped)
        res[label] = {"fmax": float(np.max(np.mean(curves, 0))), "dmenet_accuracy": float(np.mean(acc)),
                      "oracle_accuracy": float(np.mean(oracle)), "n": len(curves)}
    return res


def stack_problem(spec: str, option: str) -> str | None:
    """One line naming ``option`` and ``spec`` when the focal stack ``spec`` (a folder or a glob pattern) does not
    give at least 2 frames (a missing folder or pattern said as such) or names a frame that is no file with bytes (a
    symbolic link loop or to nothing, a FIFO, an empty file: :func:`dmenet.eval.focal_stack.stack_files`), else
    None. Reads no image."""
    from dmenet.eval.focal_stack import stack_files

    path = Path(spec)
    if not path.is_dir() and not glob.has_magic(spec):  # before stack_files, whose "X: no such folder or file" said
        # the path twice and dropped the hint (review R1, 6 Dec 2026)
        what = "is a single file" if path.is_file() else io.special_file_problem(path) or "no such folder or file"
        return f"{option} {spec}: {what} (a stack is a folder of frames or a quoted glob pattern of them)"
    try:
        found = len(stack_files(spec))
    except io.InputError as exc:  # a frame name where no file can be read: the stack is scored whole or not at all
        return f"{option} {spec}: {exc}"
    if found >= 2:
        return None
    if found == 0:
        return f"{option} {spec}: no image {'in this folder' if path.is_dir() else 'matches this pattern'}"
    return f"{option} {spec}: a focal stack needs at least 2 frames, found 1"


def stack_scores(methods: dict, stacks: list[str]) -> dict:
    """Focal-stack agreement of every method ({label: estimator}) on each stack (frames scaled to 640 px long side; σ
    map when the method gives one, else its blur map): {label: {stack: scores, "mean_agreement": mean over stacks in
    [0, 1]}}."""
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
    """Application checks (:func:`dmenet.galetto.check_apps.check_renders`) on the first ``count`` renders under
    ``root``, for every method that gives σ: {label: {stem: figures}}."""
    from dmenet.galetto.check_apps import check_renders

    return {label: check_renders(est, root, photos, count) for label, est in methods.items() if est.gives_sigma}


def fusion_real_scores(methods: dict, stacks: list[str]) -> dict:
    """Q^AB/F fusion figures on real focal ``stacks`` for every method that gives σ
    (:func:`dmenet.galetto.check_apps.real_fusion_scores`): {label: {stack: …}}."""
    from dmenet.galetto.check_apps import real_fusion_scores

    return {label: real_fusion_scores(est, stacks) for label, est in methods.items() if est.gives_sigma}


SIGMA_CHECKS = {"synthetic": "--synthetic", "rtf": "--rtf", "apps": "--apps", "fusion_real": "--fusion-real"}
"""The checks that score σ maps in px (result key → option): only methods with σ take part."""


def check_inputs(args) -> dict:
    """Every input of ``args`` checked before any model is loaded (InputError / ValueError naming the file or
    option), and what the scoring needs: ``{"patches": arrays, "synthetic": (pairs, max_coc, root), "rtf": (samples,
    table), "cuhk": pairs}`` for the checks asked for."""
    from dmenet.eval.syndof_test import read_max_coc, sigma_map_pairs
    from dmenet.galetto.check_apps import render_inputs

    inputs: dict = {}
    if args.patches:
        inputs["patches"] = read_patch_test_set(args.patches)
    if args.synthetic:
        pairs = sigma_map_pairs(args.synthetic, args.limit)
        # a render or σ map name no file can be read at (kept by the listings by stem) is refused here, as --apps
        # refuses it: it stopped the scoring after the model had loaded (review R2, 6 Dec 2026)
        io.refuse_unreadable_names(path for _, render, sigma in pairs for path in (render, sigma))
        inputs["synthetic"] = pairs, read_max_coc(args.synthetic), args.synthetic
    if args.apps:
        if not args.apps.is_dir():
            raise ValueError(f"--apps {args.apps}: no such folder (the renders' sharp source photos)")
        render_inputs(args.synthetic, args.apps, args.apps_count)
    if args.rtf:
        inputs["rtf"] = rtf_inputs(args.rtf)
    if args.cuhk:
        inputs["cuhk"] = cuhk_pairs(args.cuhk)
    for option, specs in (("--stack", args.stack), ("--fusion-real", args.fusion_real)):
        problem = next(filter(None, (stack_problem(spec, option) for spec in specs)), None)
        if problem:
            raise ValueError(problem)
    return inputs


def option_problem(args) -> str | None:
    """One line for a combination of options that would score nothing asked for, else None: ``--apps`` without the
    ``--synthetic`` renders, ``--patches`` without a galetto method (it scores that method's classifier), a method
    given twice (scored and reported once, unsaid); no check at all (an empty report was written, exit 0), after
    the ``--model`` check (:func:`dmenet.cli.unused_model`)."""
    names = [str(c) for c in args.method]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"--method: {', '.join(twice)} given twice (one row per method in each table)"
    if args.apps and not args.synthetic:
        return "--apps checks the --synthetic renders: give --synthetic too"
    if args.patches and not any(c.name == "galetto" for c in args.method):
        return (f"--patches {args.patches}: scores the galetto classifier, and no galetto method is among --method "
                f"({', '.join(str(c) for c in args.method)}; add galetto or galetto:model=PATH)")
    if not any((args.patches, args.synthetic, args.rtf, args.cuhk, args.stack, args.apps, args.fusion_real)):
        return dcli.unused_model(args) or ("no check asked for: give at least one of --patches, --synthetic, --rtf, "
                                           "--cuhk, --stack, --fusion-real (nothing was written)")
    return None


def first_galetto_model(methods: dict):
    """The model file of the first galetto method among ``methods`` (the one ``--patches`` scores; None = shipped)."""
    from dmenet.galetto.method import GalettoEstimator

    return next((m.model_file for m in methods.values() if isinstance(m, GalettoEstimator)), None)


def no_sigma(methods: dict) -> list[str]:
    """The labels of ``methods`` that give no σ map in px (left out of the :data:`SIGMA_CHECKS`)."""
    return [label for label, est in methods.items() if not est.gives_sigma]


def sigma_problem(args, methods: dict) -> str | None:
    """One line when σ checks are asked for and no method of ``methods`` gives σ (they would score nothing)."""
    asked = [option for key, option in SIGMA_CHECKS.items() if getattr(args, key)]
    if asked and len(no_sigma(methods)) == len(methods):
        return (f"{', '.join(asked)}: needs a method that gives σ in px, and --method {' '.join(methods)} gives a "
                "relative blur map only (add e.g. galetto or dmenet)")
    return None


def flat_rows(scores: dict) -> list[dict]:
    """``{method: {figure: value}}`` → table rows of each method's scalar figures (lists and dicts left out)."""
    return [{"method": m, **{k: v for k, v in r.items() if not isinstance(v, (list, dict))}} for m, r in scores.items()]


def classifier_tables(scores: dict) -> list[tuple[str, list[dict] | str]]:
    """The classifier's line (top-1, within ±1, top-1 for σ 0–7, n)."""
    return [("## classifier", f"top-1 {scores['top1']:.4f}, within ±1 {scores['within1']:.4f}, top-1 σ 0–7 "
             f"{scores['top1_0_7']:.4f}, n {scores['n']}")]


def fusion_tables(scores: dict) -> list[tuple[str, list[dict] | str]]:
    """Q^AB/F of the real-stack fusion, with either Sobel border."""
    from dmenet.galetto.check_apps import real_fusion_table

    return [(f"## fusion_real (Q^AB/F, {border} Sobel border)", real_fusion_table(scores, border))
            for border in ("zero", "reflect")]


def apps_tables(scores: dict) -> list[tuple[str, list[dict] | str]]:
    """Each method's means over the renders (and the ground truth's)."""
    from dmenet.galetto.check_apps import apps_table

    return [("## apps (means over the renders; σ from each method, and the ground truth)", apps_table(scores))]


def plain_tables(key: str):
    """A function giving the one table of a check whose result is ``{method: {figure: value}}``, headed ``key``."""
    return lambda scores: [(f"## {key}", flat_rows(scores))]


def section(tables: list[tuple[str, list[dict] | str]], skipped: list[str]) -> list[str]:
    """Markdown lines of one check's result: each (heading, rows or a line of text), and a note naming the methods
    ``skipped`` (no σ map; an empty list for the checks every method takes part in)."""
    from dmenet.eval.report import markdown_table

    lines = []
    for heading, body in tables:
        lines += [heading, ""] + ([body, ""] if isinstance(body, str)
                                  else [markdown_table(body, list(body[0]))] if body else [])
    if skipped:
        lines += [f"not scored (no σ map in px): {', '.join(skipped)}", ""]
    return lines


EXAMPLE = ("galetto-compare --method galetto:stride=16 --rtf ../shared/data/rtf "
           "--out runs/galetto_compare_example")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    ap = cli.parser("dmenet.galetto.compare", __doc__, EXAMPLE)
    dcli.add_method(ap, many=True, default=["galetto", "dmenet"])
    dcli.add_model(ap, help="model file for every learned method among --method (each its own default without "
                   "it); NAME:model=PATH gives one method its own file, e.g. galetto:model=M")
    ap.add_argument("--patches", type=Path, help="patch test set (.npz): scores the first galetto method's classifier")
    ap.add_argument("--synthetic", type=Path)
    ap.add_argument("--limit", type=cli.positive_int, default=None, help="synthetic: first N samples")
    ap.add_argument("--apps", type=Path, metavar="PHOTOS",
                    help="application checks (dmenet.galetto.check_apps) on the --synthetic renders <index>_<id>, "
                         "whose sharp sources are PHOTOS/<id>.<ext>")
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
    problem = (option_problem(args) or dcli.unused_model(args)
               or cli.new_folder_problem(args.out, "galetto-compare writes a new folder")
               # the report is staged beside --out after all the scoring: an unwritable folder was found only then
               or cli.folder_to_write_problem(Path(args.out).absolute().parent, f"--out {args.out}"))
    if problem:  # before any work: an earlier run's metrics.json is never replaced
        return cli.fail(problem)
    inputs = check_inputs(args)  # every input path and file layout, before any model is loaded
    cli.prepare_process(args)
    methods = build(args.method, dcli.method_options(args))  # bad method option or model file: exit 2
    problem = sigma_problem(args, methods)
    if problem:
        return cli.fail(problem)
    result: dict = {"methods": {k: v.describe() for k, v in methods.items()}}
    skipped = no_sigma(methods)
    if skipped and any(getattr(args, key) for key in SIGMA_CHECKS):
        result["no_sigma"] = skipped
    unread: dict[str, dict[str, str]] = {"rtf": {}, "cuhk": {}}  # check → image skipped → why (read_or_skip)
    checks = [  # (result key, asked for, scoring, its tables)
        ("classifier", args.patches, lambda: classifier_scores(first_galetto_model(methods), inputs["patches"]),
         classifier_tables),
        ("synthetic", args.synthetic, lambda: synthetic_scores(methods, *inputs["synthetic"]),
         plain_tables("synthetic")),
        ("rtf", args.rtf, lambda: rtf_scores(methods, *inputs["rtf"], unread["rtf"]), plain_tables("rtf")),
        ("cuhk", args.cuhk, lambda: cuhk_scores(methods, inputs["cuhk"], unread["cuhk"]), plain_tables("cuhk")),
        ("stacks", args.stack, lambda: stack_scores(methods, args.stack), plain_tables("stacks")),
        ("apps", args.apps, lambda: apps_scores(methods, args.synthetic, args.apps, args.apps_count), apps_tables),
        ("fusion_real", args.fusion_real, lambda: fusion_real_scores(methods, args.fusion_real), fusion_tables)]
    lines = []
    for key, asked, score, tables in checks:
        if asked:
            result[key] = score()
            part = section(tables(result[key]), skipped if key in SIGMA_CHECKS else [])
            if unread.get(key):
                part += [f"skipped {len(unread[key])} unreadable image(s), scored by no method: "
                         + ", ".join(unread[key]), ""]
            print("\n".join(part), flush=True)
            lines += part
    if any(unread.values()):
        result["skipped"] = {key: list(paths) for key, paths in unread.items() if paths}
    with io.staged_folder(args.out) as stage:  # all or nothing: --out appears only with both files in it
        io.write_json_atomic(stage / "metrics.json", result)
        io.write_text_atomic(stage / "summary.md", "\n".join(lines))
    count = sum(map(len, unread.values()))
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'summary.md'}"
          + (f"; {count} image(s) skipped (unreadable)" if count else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
