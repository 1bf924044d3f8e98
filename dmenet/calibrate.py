"""Post-training steps on a model file, in one tool: each reads a model, writes a new one, and appends itself to the
sidecar's history (tool, arguments, date, data, result).

The usual order after training, each step on the previous one's output::

    python -m dmenet.calibrate average --model RUN/…/step_A.safetensors … step_B.safetensors --out avg.safetensors
    python -m dmenet.calibrate average --run RUN --last 8 --out avg.safetensors    # or: the last 8 checkpoints
    python -m dmenet.calibrate bn --model avg.safetensors --mode moving --synthetic SYN --out bn.safetensors
    python -m dmenet.calibrate sigma --model bn.safetensors --data CALIB_A CALIB_B --out sigma.safetensors
    python -m dmenet.calibrate dbd --model sigma.safetensors --labelled LAB --gt-polarity white-sharp \
        --out model.safetensors
    python -m dmenet.calibrate head --model sigma.safetensors --labelled LAB_NEG --out model.safetensors  # or this
    python -m dmenet.calibrate feature-head --model sigma.safetensors --labelled LAB_NEG --out model.safetensors

* ``average``: uniform weight average of checkpoints of one run (:mod:`dmenet.training.average`); the output keeps
  the last file's recipe and the run's ``run_id``, and its history lists the steps averaged. Files of different
  training runs (other ``run_id`` in their sidecars) are refused: their average is a model of neither run;
  ``--across-runs`` allows runs that all started from one model file (a "model soup" of fine-tunes; the output
  gets a new ``run_id``). A file with no ``run_id`` (written before 6 Dec 2026, or by another tool) cannot be
  checked: averaged, with a warning.
* ``bn``: the σ path's BatchNorm statistics (:mod:`dmenet.training.recalibrate`). ``--mode moving`` re-estimates
  the moving statistics on the given crops and makes them the σ path's; ``--mode image`` makes the σ path normalise
  each image by itself. The detection path keeps what it used: per-image statistics stay per-image; when it used the
  moving statistics that ``--mode moving`` replaces (the file holds one set), the step refuses unless
  ``--detection follow`` says that detection moves to the new statistics too (its transform is then flagged as
  fitted under other statistics: refit it with ``dbd``).
* ``sigma``: the σ curve (:mod:`dmenet.training.fit_sigma`) on held-out SYNDOF renders, with the σ path.
* ``dbd``: the detection transform (:mod:`dmenet.training.fit_dbd`) on labelled training images, with the detection
  path.
* ``head``: the two-label detection head (:mod:`dmenet.training.fit_head`, :mod:`dmenet.models.detection_head`)
  trained on labelled folders, then its transform: the detection logit becomes h(label, B's label with
  ``--second-bn`` statistics) instead of S(label).
* ``feature-head``: a detection head on B's detection features of the detection path's own passes (rule 19r), then
  its transform; with the detection path on the σ path's BatchNorm mode (``--bn``, default the σ path's), one set of
  passes of B gives both maps.

``sigma``, ``dbd``, ``head`` and ``feature-head`` take ``--flips`` (the recipe's flips of the output, used for the
fit). Every fitted value records the conditions it was fitted under (:class:`dmenet.models.recipe.Fit`); when a step
leaves an earlier fitted value under other conditions (new statistics under a fitted curve, other flips), the step
says so and the history entry lists it under ``"stale"``. An input of ``sigma``, ``dbd``, ``head``,
``feature-head`` or ``bn --mode moving`` that cannot be read is skipped: one ``skipped PATH: reason`` line on stderr,
listed under ``"skipped"`` in the history entry, and one stdout line after the model is written counting them (as
``dmenet.galetto.calibrate``). Bad input: exit 2 and one line naming the file or option; nothing written. ``--out``
names a new file pair: one that is an input (``average --run``: one of the checkpoints it reads), that exists
(either file of the pair), that is a folder or whose folder cannot be written is refused before any model is read; a
file of the pair written there meanwhile (another run into the same new ``--out``) is kept and this step refused at
its end (exit 2, one line), neither file of its pair written.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dmenet import cli as dcli
from dmenet.config import GtPolarity
from dmenet.models.recipe import BNMode
from syndof import cli
from syndof.choices import Choice, choices, parse_choice

log = logging.getLogger("dmenet.calibrate")


class Step(Choice):
    """The post-training step, the command's first word (module docstring): AVERAGE = weight average of
    checkpoints, BN = the σ path's BatchNorm statistics, SIGMA = the σ curve, DBD = the detection transform, HEAD =
    the two-label detection head, FEATURE_HEAD = a detection head on B's features."""

    AVERAGE = "average"
    BN = "bn"
    SIGMA = "sigma"
    DBD = "dbd"
    HEAD = "head"
    FEATURE_HEAD = "feature-head"


class Detection(Choice):
    """``bn --detection``, for a detection path on the moving statistics that ``--mode moving`` replaces: KEEP =
    refuse (they would change under it), FOLLOW = the detection path moves to the new statistics."""

    KEEP = "keep"
    FOLLOW = "follow"


STEPS = choices(Step)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def history_entry(step: str, argv: list[str], data: list[str], result: dict[str, Any], date: str,
                  stale: list[str]) -> dict[str, Any]:
    """One history record of a calibrate step."""
    return {"tool": f"dmenet.calibrate {step}", "arguments": list(argv), "date": date,
            "data": [str(d) for d in data], "result": result, "stale": stale}


def _load(path: str, device: str):
    from dmenet.models.model_io import RESERVED_KEYS, load_model_file

    model, sidecar = load_model_file(path, device=device)
    meta = {k: v for k, v in sidecar.items() if k not in RESERVED_KEYS}
    return model, meta, list(sidecar.get("history") or [])


# ------------------------------------------------------------------------------------------------------- steps
def run_average(args, date: str):
    """Weight average of ``args.models`` (or the run's last checkpoints) of one run (:func:`_one_run`); the last
    file's recipe and history, the run's ``run_id``."""
    from dmenet.models.model_io import ARCHITECTURE_FIELDS, ModelFileError
    from dmenet.training.average import average_state_dicts
    from dmenet.training.checkpoint import RUN_KEYS

    _inputs(args, Step.AVERAGE)  # --run: the checkpoints, chosen once (main's --out guard has read them)
    loaded = [_load(m, args.device) for m in args.models]
    arch = [{f: getattr(m.config, f) for f in ARCHITECTURE_FIELDS} for m, _, _ in loaded]
    for path, a in zip(args.models, arch):
        if a != arch[-1]:
            raise ModelFileError(f"{path}: architecture {a} differs from {args.models[-1]} {arch[-1]}")
    run_id = _one_run(args.models, [m for _, m, _ in loaded], args.across_runs)
    model, meta, history = loaded[-1]
    if run_id is None:  # files of unknown runs: the output claims none (not the last file's)
        for key in RUN_KEYS:
            meta.pop(key, None)
    else:  # their run's (a soup's new one, beside the parent they share)
        meta["run_id"] = run_id
    states = [m.state_dict() for m, _, _ in loaded]
    moving_differ = _moving_statistics_differ(states)  # before loading the average into the last model
    model.load_state_dict(average_state_dicts(states), strict=True)
    if model.recipe.sigma.curve is not None or model.recipe.detection.transform_fit is not None:
        log.warning("the averaged weights keep %s's recipe, whose fitted values were fitted on its own weights: "
                    "refit them (calibrate sigma / dbd)", args.models[-1])
    if moving_differ:
        # the moving statistics are now an average of the files' own: the last file's provenance would mislabel them
        model.recipe = model.recipe.with_bn(moving_stats=(
            f"weight average of {len(loaded)} files' moving statistics (calibrate bn re-estimates them)"))
        log.warning("the BatchNorm moving statistics are averaged too; re-estimate them (calibrate bn)")
    steps = [m.get("step") for _, m, _ in loaded]
    runs = [m.get("run_id") for _, m, _ in loaded]
    result = {"models": [str(Path(m)) for m in args.models], "steps": steps, "run_id": meta.get("run_id"),
              "runs": runs}
    if len(set(runs)) == 1:
        of = f"of run {runs[0]}" if runs[0] is not None else "(no run_id)"
    else:
        of = "of runs " + ", ".join(r or "(no run_id)" for r in runs)
    log.info("averaged %d models: steps %s %s", len(loaded), ", ".join(map(str, steps)), of)
    return model, meta, history, list(args.models), result


def _one_run(paths: list[str], metas: list[dict], across_runs: bool) -> str | None:
    """The ``run_id`` of the files ``paths`` (their sidecars' ``metas``) when they are files of one training run
    (:func:`dmenet.training.checkpoint.new_run`). Averaging weights of different runs gives a model of neither:
    refused (ModelFileError naming two files), unless ``across_runs`` and every file is of a run started from one
    model file (one ``parent_sha256``: a model soup), whose average gets a new run id. A file with no ``run_id``
    (written before the trainer recorded one, or by another tool): a warning that the average cannot be checked,
    and None (the files that record theirs are still checked among themselves)."""
    from dmenet.models.model_io import ModelFileError, model_paths
    from dmenet.training.checkpoint import RUN_ID_SINCE, new_run_id

    ids = [m.get("run_id") for m in metas]
    for path, run_id in zip(paths, ids):
        if run_id is not None and not (isinstance(run_id, str) and run_id):
            raise ModelFileError(f"{model_paths(path)[1]}: 'run_id' must be a non-empty string, got {run_id!r}")
    files = [_real(model_paths(p)[0]) for p in paths]
    known = [i for i, run_id in enumerate(ids) if run_id is not None]  # those without one cannot be compared
    other = next((i for i in known if ids[i] != ids[known[0]]), None)
    if other is not None:  # two files that do record their runs, of different runs
        first = known[0]
        if not across_runs:
            raise ModelFileError(f"{paths[first]} (run {ids[first]}) and {paths[other]} (run {ids[other]}) come from "
                                 "different training runs: averaging weights of different runs gives a model of "
                                 "neither (average checkpoints of one run; --across-runs for runs started from one "
                                 "model file)")
        parents = [metas[i].get("parent_sha256") for i in known]
        lone = next((j for j, p in enumerate(parents) if p is None or p != parents[0]), None)
        if lone is not None:
            which = paths[known[lone]] if parents[lone] is None else f"{paths[first]} and {paths[known[lone]]}"
            raise ModelFileError(f"--across-runs: {which} did not start from one model file (parent_sha256 "
                                 f"{parents[0]} / {parents[lone]}); only runs started from the same file "
                                 "(--init-from) average into a model of that start")
    unknown = next((i for i, run_id in enumerate(ids) if run_id is None), None)
    if unknown is not None:
        other = next((i for i, f in enumerate(files) if f != files[unknown]), None)
        if other is not None:  # (one file named more than once is one model, of one run)
            a, b = sorted((unknown, other))
            log.warning("cannot tell whether %s and %s come from one run (no run_id: written before %s); average "
                        "checkpoints of one run only", paths[a], paths[b], RUN_ID_SINCE)
        return None
    if other is None:
        return ids[0]
    parents = [m.get("parent_sha256") for m in metas]
    run_id = new_run_id()
    log.info("--across-runs: runs %s, all started from one model file (sha256 %s…): the average is run %s",
             ", ".join(dict.fromkeys(ids)), parents[0][:12], run_id)
    return run_id


def _moving_statistics_differ(states: list[dict]) -> bool:
    """Whether the BatchNorm moving statistics of these state dicts are not all equal."""
    import torch

    keys = [k for k in states[0] if k.endswith(("running_mean", "running_var"))]
    return any(not torch.equal(states[0][k], s[k]) for s in states[1:] for k in keys)


def run_bn(args, date: str):
    """σ path BatchNorm statistics: re-estimated moving ones (``--mode moving``) or per-image (``--mode image``)."""
    from dmenet.training.recalibrate import describe_source, domain_batches, domain_crops, image_folders, \
        recalibrate_batchnorm

    model, meta, history = _load(args.model, args.device)
    recipe = model.recipe
    if parse_choice(BNMode, args.mode, "--mode") is BNMode.IMAGE:
        model.recipe = recipe.with_bn(sigma=BNMode.IMAGE)
        log.info("σ path: per-image BatchNorm statistics; detection path unchanged (%s)",
                 recipe.detection.bn.describe())
        return model, meta, history, [], {"mode": "image"}
    if not args.synthetic and not args.real:
        raise ValueError("bn --mode moving needs --synthetic and/or --real")
    follow = parse_choice(Detection, args.detection, "--detection") is Detection.FOLLOW
    if BNMode.MOVING in recipe.detection.bns and not follow:
        raise ValueError(f"{args.model}: the detection path uses the moving statistics this step replaces (the file "
                         "holds one set); pass --detection follow to move it to the new statistics (then refit its "
                         "transform: calibrate dbd) or calibrate bn --mode image instead")
    skipped: list[str] = []  # recorded and said on stdout as the other steps' (reliability.md §50)
    domains = domain_crops(image_folders(args.synthetic, args.real, skipped), args.crops, args.crop, args.seed,
                           skipped)
    n = recalibrate_batchnorm(model.blur, domain_batches(domains, args.batch))
    source = describe_source(args.synthetic, args.real, args.crops, args.crop, args.seed, date)
    model.recipe = recipe.with_bn(sigma=BNMode.MOVING, moving_stats=source)
    result = {"mode": "moving", "batches": n, "batch": args.batch, "crop": args.crop, "crops_per_domain": args.crops,
              "seed": args.seed, "moving_stats": source, "detection": args.detection, "skipped": skipped}
    log.info("re-estimated BatchNorm statistics of B from %d batches (σ path); detection path: %s", n,
             "follows them" if BNMode.MOVING in recipe.detection.bns else "per-image statistics, unchanged")
    data = [d for d in (args.synthetic, args.real) if d]
    return model, meta, history, data, result


def run_sigma(args, date: str):
    """σ curve fitted on SYNDOF folders with the σ path (and ``--flips``)."""
    from dmenet.inference import Predictor
    from dmenet.models.sigma_curve import apply_sigma_curve, fit_sigma_curve, sigma_histograms
    from dmenet.training.fit_sigma import collect, label_mae
    from syndof import io as sio

    if args.values < 2:
        raise ValueError(f"--values must be >= 2, got {args.values}")
    model, meta, history = _load(args.model, args.device)
    predictor = Predictor(model, model.recipe.with_flips(args.flips))
    preds, trues, names, skipped = collect(predictor, args.data)
    if not preds:
        raise sio.InputError(args.data[0], "no readable sample in the --data folders")
    cfg = model.config
    hists = sum(sigma_histograms(pr, tr, args.values, cfg.sigma_max) for pr, tr in zip(preds, trues))
    curve = tuple(round(float(v), 4) for v in fit_sigma_curve(hists, cfg.sigma_max, min_pixels=args.min_pixels))
    recipe = predictor.recipe
    fit = recipe.fit_conditions("dmenet.calibrate sigma", recipe.sigma.bns, [str(d) for d in args.data], date)
    model.recipe = recipe.with_sigma_curve(curve, fit)
    before = label_mae(preds, trues, cfg.max_coc)
    after = label_mae([apply_sigma_curve(pr, curve, cfg.sigma_max) for pr in preds], trues, cfg.max_coc)
    result = {"method": "L1 isotonic regression of true sigma on raw predicted sigma (px), pooled over all pixels",
              "n_images": len(preds), "skipped": skipped, "values": args.values, "min_pixels": args.min_pixels,
              "flips": recipe.flips, "fit_label_mae_before": round(before, 6), "fit_label_mae_after": round(after, 6),
              "pixels_per_value": [int(n) for n in hists.sum(axis=1)]}
    log.info("flips %d, %d values: label MAE on the %d fitting images %.4f → %.4f", recipe.flips, args.values,
             len(preds), before, after)
    log.info("curve (px at raw σ 0 … %g): %s", cfg.sigma_max, " ".join(f"{v:.2f}" for v in curve))
    return model, meta, history, [str(d) for d in args.data], result


def run_dbd(args, date: str):
    """Detection logit transform fitted on a labelled folder with the detection path (and ``--flips``)."""
    from dmenet.inference import Predictor
    from dmenet.training.fit_dbd import fit_logit_transform, labelled_logits

    model, meta, history = _load(args.model, args.device)
    predictor = Predictor(model, model.recipe.with_flips(args.flips))
    white_is_blurred = parse_choice(GtPolarity, args.gt_polarity, "--gt-polarity").white_is_blurred
    skipped: list[str] = []
    logits, masks, names = labelled_logits(predictor, Path(args.labelled), white_is_blurred, skipped)
    fit = fit_logit_transform(logits, masks)
    recipe = predictor.recipe
    conditions = recipe.fit_conditions("dmenet.calibrate dbd", recipe.detection.bns, [str(args.labelled)], date)
    model.recipe = recipe.with_transform(fit.scale, fit.shift, conditions)
    result = {**fit.to_dict(), "flips": recipe.flips, "images": names, "skipped": skipped}
    log.info("flips %d, scale %.2f shift %+.2f: training MAE %.4f (S %.4f), Fmax %.4f (S %.4f) on %d images",
             recipe.flips, fit.scale, fit.shift, fit.mae, fit.s_mae, fit.fmax, fit.s_fmax, fit.n_images)
    return model, meta, history, [str(args.labelled)], result


def run_head(args, date: str):
    """Two-label detection head trained on labelled folders, then its transform (both at ``--flips``)."""
    from dmenet.inference import Predictor
    from dmenet.models.detection_head import head_logit
    from dmenet.training.fit_head import check_transform_pool, labelled_label_pairs, train_head

    cfg = _head_training(args, image_mean=args.image_mean)
    model, meta, history = _load(args.model, args.device)
    recipe = model.recipe.with_flips(args.flips)
    second = BNMode(args.second_bn)
    if second is recipe.detection.bn:
        raise ValueError(f"--second-bn {second.value}: the detection path already uses {second.describe()} "
                         "statistics; the head's second label needs the other mode")
    bns = (recipe.detection.bn, second)  # the head's two inputs
    roots = [Path(r) for r in args.labelled]
    white_is_blurred = parse_choice(GtPolarity, args.gt_polarity, "--gt-polarity").white_is_blurred
    check_transform_pool(roots, white_is_blurred)
    skipped: list[str] = []
    pairs, masks, names = labelled_label_pairs(Predictor(model, recipe), bns, roots, white_is_blurred, skipped)
    net, losses = train_head(pairs, masks, cfg)
    head = net.to_head()
    logits = [head_logit(head, p[..., 0], p[..., 1]) for p in pairs]  # once per image: the fit and the report
    data = [str(r) for r in roots]
    model.recipe, result = _with_fitted_head(recipe, head, second, bns, logits, masks, names, cfg, losses,
                                             "dmenet.calibrate head", data, date)
    result.update(second_bn=second.value, skipped=skipped)
    return model, meta, history, data, result


def run_feature_head(args, date: str):
    """Feature head trained on labelled folders (B's features at ``--samples`` pixels of each photo), then its
    transform (both at ``--flips``, on the detection path's passes with ``--bn`` statistics)."""
    from dmenet.inference import Predictor
    from dmenet.models.detection_head import feature_head_logit
    from dmenet.training.fit_head import check_transform_pool, labelled_feature_samples, train_feature_head

    cfg = _head_training(args, hidden=tuple(args.hidden))
    model, meta, history = _load(args.model, args.device)
    recipe = model.recipe.with_flips(args.flips)
    bn = recipe.sigma.bn if args.bn is None else BNMode(args.bn)
    recipe = recipe.with_head(None).with_bn(detection=bn)
    roots = [Path(r) for r in args.labelled]
    white_is_blurred = parse_choice(GtPolarity, args.gt_polarity, "--gt-polarity").white_is_blurred
    check_transform_pool(roots, white_is_blurred)
    skipped: list[str] = []
    inputs, masks, names = labelled_feature_samples(Predictor(model, recipe), bn, roots, white_is_blurred,
                                                    args.samples, args.seed, skipped)
    net, losses = train_feature_head(inputs, masks, cfg)
    head = net.to_head()
    logits = [feature_head_logit(head, x)[None] for x in inputs]  # (1, N): the transform's maps are 2-D
    data = [str(r) for r in roots]
    model.recipe, result = _with_fitted_head(recipe, head, None, (bn,), logits, [m[None] for m in masks], names,
                                             cfg, losses, "dmenet.calibrate feature-head", data, date)
    result.update(bn=bn.value, samples=args.samples, skipped=skipped)
    return model, meta, history, data, result


def _head_training(args, **extra):
    """The :class:`~dmenet.training.fit_head.HeadTraining` of the options both head steps take
    (``build_parser``'s ``head_options``), with the step's own ``extra`` settings."""
    from dmenet.training.fit_head import HeadTraining

    return HeadTraining(epochs=args.epochs, pixels_per_image=args.pixels_per_image, seed=args.seed,
                        transform_images=args.transform_images, transform_negatives=args.transform_negatives,
                        negative_weight=args.negative_weight, **extra)


def _with_fitted_head(recipe, head, second, bns, logits, masks, names, cfg, losses, tool: str, data: list[str],
                      date: str):
    """The recipe with ``head`` (trained under ``cfg``) and the transform fitted on ``logits`` of a seeded draw of
    the images; and the step's result record (the transform and the mean probability of the all-sharp images)."""
    import numpy as np

    from dmenet.logits import blur_probability_from_logit
    from dmenet.training.fit_dbd import fit_logit_transform
    from dmenet.training.fit_head import transform_image_indices

    fit_idx = transform_image_indices(masks, names, cfg.transform_images, cfg.seed, cfg.transform_negatives)
    fit = fit_logit_transform([logits[i] for i in fit_idx], [masks[i] for i in fit_idx])
    conditions = recipe.fit_conditions(tool, bns, data, date)
    recipe = recipe.with_head(head, second, conditions).with_transform(fit.scale, fit.shift, conditions)
    sharp = [float(blur_probability_from_logit(z, fit.scale, fit.shift).mean())
             for z, m in zip(logits, masks) if not m.any()]
    result = {"training": cfg.to_dict(), "losses": [round(v, 6) for v in losses], "flips": recipe.flips,
              "images": names, "transform": fit.to_dict(), "transform_images": [names[i] for i in fit_idx],
              "all_sharp_images": len(sharp), "all_sharp_mean_probability": round(float(np.mean(sharp)), 6)
              if sharp else None}
    log.info("flips %d, head %s: final BCE %.4f; transform scale %.2f shift %+.2f (training MAE %.4f, Fmax %.4f on "
             "%d images)%s", recipe.flips, "→".join(map(str, head.widths)), losses[-1], fit.scale, fit.shift,
             fit.mae, fit.fmax, fit.n_images,
             f"; all-sharp training images: mean probability {np.mean(sharp):.3f}" if sharp else "")
    return recipe, result


RUNNERS = {Step.AVERAGE: run_average, Step.BN: run_bn, Step.SIGMA: run_sigma, Step.DBD: run_dbd, Step.HEAD: run_head,
           Step.FEATURE_HEAD: run_feature_head}


# ------------------------------------------------------------------------------------------------------- CLI
EXAMPLE = ("dmenet-calibrate sigma --model checkpoints/dmenet_lite.safetensors --data ../shared/data/syndof_reference/"
           "output --out runs/calibrate_example.safetensors")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m dmenet.calibrate`` parser with one sub-command per step (the module docstring is its --help
    text)."""
    from dmenet.training.fit_head import FEATURE_HIDDEN, FEATURE_SAMPLES, HeadTraining
    from dmenet.training.fit_sigma import N_VALUES

    p = cli.parser("dmenet.calibrate", __doc__, EXAMPLE)
    sub = p.add_subparsers(dest="step", required=True, metavar="{" + ",".join(STEPS) + "}")  # OneLineParser too

    def common(q: argparse.ArgumentParser) -> None:
        """Add the options every step takes: ``--out``, device and threads."""
        q.add_argument("--out", required=True, help="output model file (.safetensors + .json)")
        cli.add_device(q)
        cli.add_threads(q)

    q = sub.add_parser(Step.AVERAGE.value, help="uniform weight average of checkpoints of one run")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", "--models", dest="models", nargs="+",
                     help="model files of one run, oldest first (a file named twice counts twice)")
    src.add_argument("--run", help="a training run folder: average its --last most recent checkpoints")
    q.add_argument("--last", type=cli.positive_int, default=None, help="with --run: how many checkpoints (default 8)")
    q.add_argument("--across-runs", action="store_true",
                   help="allow files of different training runs when every run started from one model file "
                        "(--init-from; the same parent_sha256): a 'model soup' of fine-tunes; the average gets a new "
                        "run_id. Without it, files of different runs are refused")
    common(q)

    q = sub.add_parser(Step.BN.value, help="the σ path's BatchNorm statistics")
    dcli.add_model(q, required=True, help="the model file to calibrate (.safetensors + .json sidecar)")
    q.add_argument("--mode", choices=choices(BNMode), default=BNMode.MOVING.value,
                   help="moving (default): re-estimate the moving statistics on crops; image: per-image statistics")
    q.add_argument("--synthetic", help="SYNDOF folder (its image/ is used); --mode moving")
    q.add_argument("--real", help="folder of real photos (recursive); --mode moving")
    q.add_argument("--crops", type=cli.positive_int, default=64, help="crops per domain (default 64)")
    q.add_argument("--crop", type=cli.positive_int, default=256, help="crop side in px (default 256)")
    q.add_argument("--batch", type=cli.positive_int, default=4,
                   help="crops per batch, one domain each (default 4; --crops a multiple of it)")
    cli.add_seed(q, use="draws the crops")
    q.add_argument("--detection", choices=choices(Detection), default=Detection.KEEP.value,
                   help="when the detection path also uses the moving statistics: keep (default) = refuse (they would "
                        "change under it), follow = it uses the new ones")
    common(q)

    q = sub.add_parser(Step.SIGMA.value, help="the σ curve, on held-out SYNDOF renders")
    dcli.add_model(q, required=True, help="the model file to calibrate (.safetensors + .json sidecar)")
    q.add_argument("--data", required=True, nargs="+", type=Path, help="SYNDOF folders (image/, blur_map/)")
    q.add_argument("--values", type=int, default=N_VALUES, help="curve values, evenly spaced over 0 … σ_max")
    q.add_argument("--min-pixels", type=cli.positive_int, default=1000,
                   help="fewest pixels for a curve value to be fitted (default 1000)")
    dcli.add_flips(q, default="the model's recipe; the output keeps them and is fitted with them")
    common(q)

    q = sub.add_parser(Step.DBD.value, help="the detection map's logit transform, on labelled training images")
    dcli.add_model(q, required=True, help="the model file to calibrate (.safetensors + .json sidecar)")
    q.add_argument("--labelled", required=True, help="labelled training folder (image/, gt/)")
    q.add_argument("--gt-polarity", choices=choices(GtPolarity), default=GtPolarity.WHITE_BLURRED.value,
                   help="polarity of the gt/ masks: white-blurred (CUHK; the default) or white-sharp (xu100, DUT)")
    dcli.add_flips(q, default="the model's recipe; the output keeps them and is fitted with them")
    common(q)

    def head_options(q: argparse.ArgumentParser) -> None:  # shared by head and feature-head
        """Add the options shared by ``head`` and ``feature-head``."""
        dcli.add_model(q, required=True, help="the model file to calibrate (.safetensors + .json sidecar)")
        q.add_argument("--labelled", required=True, nargs="+", help="labelled folders (image/, gt/); photos sharp "
                       "everywhere with all-sharp masks teach the head that a flat sharp region is sharp")
        q.add_argument("--gt-polarity", choices=choices(GtPolarity), default=GtPolarity.WHITE_BLURRED.value,
                       help="polarity of the gt/ masks: white-blurred (CUHK; the default) or white-sharp (xu100, DUT)")
        dcli.add_flips(q, default="the model's recipe; the output keeps them and is fitted with them")
        q.add_argument("--epochs", type=cli.positive_int, default=HeadTraining.epochs)
        q.add_argument("--pixels-per-image", type=cli.positive_int, default=HeadTraining.pixels_per_image,
                       help="random pixels of every image per epoch (feature-head: of the kept ones)")
        q.add_argument("--transform-images", type=cli.positive_int, default=HeadTraining.transform_images,
                       help="images (with both classes) the transform is fitted on, a seeded draw")
        q.add_argument("--transform-negatives", type=cli.non_negative_int,
                       default=HeadTraining.transform_negatives,
                       help="all-sharp photos added to the transform's fitting pool (a seeded draw)")
        q.add_argument("--negative-weight", type=cli.positive_float, default=HeadTraining.negative_weight,
                       help="training weight of the pixels of all-sharp photos (1 = every pixel alike)")
        cli.add_seed(q, default=HeadTraining.seed, use="the head's training and every seeded draw")
        common(q)

    q = sub.add_parser(Step.HEAD.value, help="the two-label detection head and its transform, on labelled photos")
    q.add_argument("--second-bn", choices=choices(BNMode), default=BNMode.MOVING.value,
                   help="BatchNorm mode of the head's second label (the first is the detection path's own)")
    q.add_argument("--image-mean", action="store_true",
                   help="give the head the photo's mean second label as a third input (rule 21g)")
    head_options(q)

    q = sub.add_parser(Step.FEATURE_HEAD.value, help="a detection head on B's features of one set of passes, and its "
                       "transform, on labelled photos")
    q.add_argument("--bn", choices=choices(BNMode), default=None,
                   help="BatchNorm mode of the detection path's passes (default: the σ path's, so that one set of "
                   "passes gives both maps)")
    q.add_argument("--samples", type=cli.positive_int, default=FEATURE_SAMPLES,
                   help="random pixels of each photo whose features are kept")
    q.add_argument("--hidden", type=cli.positive_int, nargs="+", default=list(FEATURE_HIDDEN),
                   help="hidden layer widths")
    head_options(q)
    return p


def _inputs(args, step: Step) -> list[str]:
    """The model files ``step`` reads; ``average --run`` resolves its checkpoints here (once: ``args.models``)."""
    from dmenet.training.checkpoint import recent_models

    if step is not Step.AVERAGE:
        return [args.model]
    if args.models is None:
        args.models = [str(m) for m in recent_models(Path(args.run), 8 if args.last is None else args.last)]
    return list(args.models)


def _real(path: Path) -> Path:
    """``path`` with its links followed (``A``, ``./A`` and a link to it are one file). A link loop stays as it is,
    for the reader to name (``Path.resolve`` raised a RuntimeError traceback)."""
    return Path(os.path.realpath(path))


def _distinct_files(models: list[str] | None) -> set:
    """The weights files ``--model`` names (:func:`_real`: ``A``, ``./A.safetensors`` and a link to it are one
    file)."""
    from dmenet.models.model_io import model_paths

    return {_real(model_paths(m)[0]) for m in models or ()}


def _test_image_problem(roots: list[str]) -> str | None:
    """Why labelled folders must not be fitted on, or None: one holds a held-out test photo (a stem of the committed
    split's ``held_out`` list, :func:`dmenet.data.splits.held_out_among`: the 5 CUHK test photos of
    ``cuhk/image``, which ``../shared/data/cuhk`` is, and the CUHK ids of CUHK-TE-1); the first one is named. The
    check of ``galetto.calibrate`` and ``distill.calibrate``: a transform or head is fitted on training images only."""
    from dmenet.data.splits import held_out_among

    for root in roots:
        images = Path(root) / "image"
        if not images.is_dir():
            continue  # the step's own reader names a folder without image/
        tested = held_out_among(sorted(images.iterdir()))
        if tested:
            return (f"{tested[0]}: a held-out test photo ({len(tested)} in {root}; experiments/cuhk_split.json); "
                    "a detection transform or head is fitted on training images only (e.g. the train subset of "
                    "cuhk/train_image)")
    return None


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    from dmenet.models.model_io import model_paths, save_model

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    step = parse_choice(Step, args.step, "step")
    if step is Step.AVERAGE and args.models is not None and args.last is not None:
        parser.error("average: --last selects checkpoints of --run; with --model, list the files to average")
    if step is Step.AVERAGE and (len(_distinct_files(args.models)) == 1 or args.last == 1):
        # wrote a copy "averaged 1 models" (or, --model A A, "averaged 2 models: steps 6, 6")
        parser.error("average: needs at least two models (--model A B …, or --run with --last 2 or more); one file "
                     "averaged is itself, however often it is named")
    if step is Step.BN and args.crops % args.batch:  # the last partial batch would be dropped, the record not
        parser.error(f"bn: --crops {args.crops} must be a multiple of --batch {args.batch} (whole batches only)")
    if step is Step.BN and args.mode == BNMode.IMAGE.value and (args.synthetic or args.real):  # read nothing
        parser.error("bn --mode image: per-image statistics read no crops; --synthetic / --real apply to --mode "
                     "moving only")
    cli.prepare_process(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    problem = dcli.model_out_problem(args.out, _inputs(args, step))  # before any model is read: nothing is replaced
    if problem:
        return cli.fail(problem)
    if step in (Step.DBD, Step.HEAD, Step.FEATURE_HEAD):
        problem = _test_image_problem([args.labelled] if isinstance(args.labelled, str) else args.labelled)
        if problem:
            return cli.fail(problem)
    date = _now()
    model, meta, history, data, result = RUNNERS[step](args, date)  # bad input: ValueError / OSError → exit 2
    stale = model.recipe.contradictions()
    for line in stale:
        log.warning("stale: %s", line)
    entry = history_entry(step.value, argv, data, result, date, stale)
    try:  # never over a pair another run wrote into --out meanwhile (both passed the check above)
        written = save_model(args.out, model, meta, history + [entry], replace=False)
    except FileExistsError as exc:
        return cli.fail(f"--out {args.out}: {Path(exc.filename2 or exc.filename).name} was written there while this "
                        "step ran (another calibrate?); it is kept and this model is not written (choose another "
                        "--out)")
    log.info("wrote %s (+ %s)\n%s", written, model_paths(written)[1].name, model.recipe)
    line = dcli.fit_skipped_line(written, model_paths(written)[1], result.get("skipped") or [])
    if line:  # a fit on fewer inputs than given: said with the result, not only among the warnings (§49)
        print(line)
    return 0

if __name__ == "__main__":
    sys.exit(main())
