"""Fit Galetto's detection transform on labelled training images (``python -m dmenet.galetto.calibrate``).

``python -m dmenet.galetto.calibrate --benchmark cuhk_train --data ../shared/data/cuhk --split
experiments/cuhk_split.json --subset train [--limit N] [--method galetto:key=value,…] [--model M] --out OUT``

The images are chosen as ``dmenet.evaluate`` chooses them (the same flags: a DBD benchmark folder, ``--split`` /
``--subset``, ``--stems``, ``--include``, ``--limit``; the benchmark fixes the mask polarity). For each, the σ map
its blur map is made from (the method's options, ``refine_blur`` included); then ``sigmoid(scale · (σ − shift))`` is
fitted by :func:`dmenet.galetto.detection.fit`, and a copy of the classifier is written with the transform, the
options and the images in ``OUT.json`` (``OUT.safetensors`` holds the same weights; an existing ``OUT`` is
refused). Never fit on an image you report as test or validation.

An image or mask that cannot be read is skipped, as ``dmenet.calibrate dbd`` skips one: one ``skipped PATH:
reason`` line on stderr, the ``PATH: reason`` listed under ``skipped`` in ``OUT.json``, and a closing stdout line
counting them (the fit is on fewer images than chosen); so is a photo the classifier cannot read, smaller than its
32-px window (the line names it; it stopped the fit, naming no file, until 7 Dec 2026). An image and mask of
different sizes, no readable labelled image, or ``--negatives`` none of which can be read are refused (exit 2, one
line naming the file).

``--negatives DIR [--negative-stems FILE] [--negative-limit N]`` adds photos that are sharp everywhere (e.g. the
BSDS500 *train* photos of ``experiments/distill/bsds_sharp_train.txt``) with all-sharp masks: their mean blur
enters the objective's MAE term (they have no Fmax), so the fit also pays for false blur on sharp photos, which a
DBD set such as CUHK never shows (every CUHK image holds blur).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

import numpy as np

from dmenet import cli as dcli
from dmenet.data.splits import Subset
from dmenet.eval import benchmarks as B
from dmenet.eval.runner import select_samples, selection_text
from dmenet.methods import method_names
from syndof import cli, io
from syndof.choices import parse_choice

log = logging.getLogger("dmenet.galetto.calibrate")
DBD_BENCHMARKS = tuple(sorted(n for n, s in B.BENCHMARKS.items() if s.task is B.Task.DBD))
TEST_ONLY = ("ctcug", "dut", "xu100")
"""DBD benchmarks that are test sets only (no training part): scored, never fitted on."""
FITTED_OPTIONS = ("stride", "readout", "refine_blur", "denoise", "grid")
"""The method options the σ maps of a fit depend on (recorded with the transform)."""


def _skip(exc: io.InputError, errors: list, negative_errors: list | None) -> None:
    """Say ``exc`` as one ``skipped PATH: reason`` line and keep it (and, for a negative, in ``negative_errors``)."""
    log.warning("skipped %s", exc)
    errors.append(exc)
    if negative_errors is not None:
        negative_errors.append(exc)


def fit_samples(estimator, samples: list, white_is_blurred: bool, max_scale: float | None = None,
                negatives: list | None = None, skipped: list[str] | None = None,
                negatives_fitted: list | None = None):
    """σ maps (px, the blur map's) and masks (1 = blurred) of the samples and of the ``negatives`` (photos sharp
    everywhere, ``Sample`` objects without GT: all-sharp masks), then the fit. Returns (DBDFit, label scores, names
    of the images fitted on: the labelled ones, then the negatives).

    An image or mask that cannot be read (the InputError of its reader: missing, a name where no file can be read,
    undecodable, a mask that binarises to a constant), or an image the estimator refuses (its ValueError: a photo
    under the classifier's 32-px window, "image is too small", which named no file and ended the fit, exit 2), is
    skipped with one line ``skipped PATH: reason`` on stderr, the file at fault named, and that ``PATH: reason``
    appended to ``skipped`` when given, for the caller's record: as ``dmenet.calibrate dbd`` skips one (until 7 Dec
    2026 it stopped this fit, exit 2; reliability.md §49). The negatives fitted on (the ``Sample`` objects read) are
    appended to ``negatives_fitted`` when given (the caller counts them: a skipped one is not fitted on). An image
    and mask of different sizes stop the fit (InputError naming both), as there; so do a set with no readable
    labelled sample and ``negatives`` none of which can be read (that fit would be one without the negatives asked
    for, recorded as one with them; reliability.md §50), each an InputError naming the first file skipped."""
    from dmenet.galetto.detection import blur_map, fit
    from dmenet.training.fit_dbd import map_scores

    sigmas, masks, names, errors, negative_errors, negatives_read = [], [], [], [], [], []
    labelled_read = 0
    pool = [(s, True) for s in samples] + [(s, False) for s in negatives or ()]
    for k, (sample, labelled) in enumerate(pool, 1):
        if samples and not labelled and not labelled_read:  # every labelled one skipped: no σ map of a negative
            break
        try:  # the mask is read and checked before the σ map is paid for
            image = io.read_image(sample.image)
            gt = B.read_mask(sample.gt, white_is_blurred) if labelled else None
        except io.InputError as exc:
            _skip(exc, errors, None if labelled else negative_errors)
            continue
        if labelled:
            B.check_same_size(sample, image, gt)  # a refusal, not a skip, as in calibrate dbd
        try:
            sigma = estimator.blur_sigma(image)
        except ValueError as exc:  # the estimator refuses this photo ("image is too small: …", naming no file)
            _skip(io.InputError(sample.image, str(exc)), errors, None if labelled else negative_errors)
            continue
        if labelled:
            masks.append(gt > 0.5)
            labelled_read += 1
        else:
            masks.append(np.zeros(image.shape[:2], dtype=bool))
            negatives_read.append(sample)
        sigmas.append(sigma)
        names.append(sample.image.name)
        log.info("%d/%d: %s%s", k, len(pool), sample.image.name, "" if labelled else " (sharp everywhere)")
    if skipped is not None:
        skipped.extend(str(e) for e in errors)
    if negatives_fitted is not None:
        negatives_fitted.extend(negatives_read)
    if samples and not labelled_read:  # the first error is the first sample's
        raise io.InputError(errors[0].path, f"{errors[0].problem} (no readable labelled sample: all {len(samples)} "
                                            "skipped; nothing was written)")
    if negatives and not negatives_read:  # a fit without the negatives asked for, recorded as with them
        raise io.InputError(negative_errors[0].path, f"{negative_errors[0].problem} (no readable --negatives "
                                                     f"photo: all {len(negatives)} skipped; nothing was written)")
    label = map_scores((blur_map(s, None) for s in sigmas), masks)  # the SYNDOF label map, to compare the fit with
    return fit(sigmas, masks, max_scale), label, names


def select_negatives(args) -> tuple[list, str | None]:
    """The photos of ``--negatives`` (sorted by stem) kept by ``--negative-stems`` and ``--negative-limit``, and one
    line saying which; ([], None) without ``--negatives``."""
    if args.negatives is None:
        return [], None
    from dmenet.data.splits import SHARP_TEST_LIST
    from dmenet.distill.split import read_split

    root, chosen_by = args.negatives, argparse.Namespace(stems=args.negative_stems, limit=args.negative_limit)
    chosen = select_samples(B.list_image_samples(B.get_spec("sharp"), root), chosen_by, root)
    reported = {t.lower() for t in read_split(SHARP_TEST_LIST)}
    tested = sorted(s.stem for s in chosen if s.stem.lower() in reported)
    if tested:  # the sharp-photo test set (docs/evaluation.md §12) is reported, never fitted on
        raise ValueError(f"--negatives {root}: {len(tested)} of the chosen photos (e.g. {tested[0]}) are sharp-photo "
                         f"test photos ({SHARP_TEST_LIST.name}); fit on training photos (e.g. bsds500/train with "
                         "--negative-stems experiments/distill/bsds_sharp_train.txt)")
    return chosen, selection_text(chosen_by, len(chosen), root) + ", all-sharp masks"


EXAMPLE = ("galetto-calibrate --benchmark cuhk_train --data ../shared/data/cuhk --split experiments/cuhk_split.json "
           "--allow-missing-images --subset train --limit 2 --method galetto:stride=32 "
           "--out runs/galetto_calibrate_example/galetto_fit")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    from dmenet.galetto.detection import SCALES, DetectionTransform, write_fitted
    from dmenet.galetto.train import classifier_files

    p = cli.parser("dmenet.galetto.calibrate", __doc__, EXAMPLE)
    p.add_argument("--benchmark", required=True, choices=DBD_BENCHMARKS, help="layout and mask polarity of --data")
    p.add_argument("--data", required=True, type=Path, help="benchmark root folder (e.g. ../shared/data/cuhk)")
    dcli.add_sample_selection(p, verb="fit on", subset="train")
    dcli.add_method(p, default="galetto", exclude=tuple(n for n in method_names() if n != "galetto"))
    dcli.add_model(p, help="classifier file (default: the shipped one)")
    p.add_argument("--max-scale", type=cli.positive_float, help="steepest transform allowed, per px of σ (default: "
                   "the whole grid, up to 8; a steep map keeps its sweep's thresholds near the shift)")
    p.add_argument("--negatives", type=Path, help="folder of photos sharp everywhere to add with all-sharp masks "
                   "(their false blur enters the MAE term), e.g. ../shared/data/photos/bsds500/train")
    p.add_argument("--negative-stems", help="text file listing the --negatives photos to use, one stem per line "
                   "(# comments skipped), e.g. experiments/distill/bsds_sharp_train.txt")
    p.add_argument("--negative-limit", type=cli.positive_int, help="use only the first N --negatives photos (sorted "
                   "by stem)")
    p.add_argument("--out", required=True, type=Path, help="new classifier file (stem, or .safetensors)")
    cli.add_device(p)
    cli.add_threads(p)
    args = p.parse_args(argv)
    cli.prepare_process(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # under a file, in a folder it cannot write, a folder: found after every σ map (reliability.md §28, C2)
    problem = dcli.model_out_problem(args.out, [args.model] if args.model else [])
    if problem:
        return cli.fail(problem)
    if args.max_scale is not None and args.max_scale < SCALES[0]:  # "max scale … leaves no candidate" after the work
        return cli.fail(f"--max-scale {args.max_scale:g}: below the smallest scale of the fit's grid ({SCALES[0]:g} "
                        "per px of σ); no transform could be fitted")
    if args.negatives is None and (args.negative_stems or args.negative_limit):
        return cli.fail("--negative-stems / --negative-limit: give --negatives FOLDER too")
    if args.split and parse_choice(Subset, args.subset, "--subset") is not Subset.TRAIN:
        return cli.fail(f"--subset {args.subset}: a transform is fitted on the train subset of --split only "
                        "(validation and held-out images are scored, never fitted on)")
    if args.benchmark in TEST_ONLY:
        return cli.fail(f"--benchmark {args.benchmark}: a test set (scored, never fitted on); fit on training images "
                        "(--benchmark cuhk_train --split experiments/cuhk_split.json, or your own folder as cuhk)")
    spec = B.get_spec(args.benchmark)
    found = B.list_folder_samples(spec, args.data, True, args.allow_missing_images)
    samples = select_samples(found, args, args.data)
    if not samples:
        return cli.fail(f"--data {args.data}: no sample left to fit on")
    from dmenet.data.splits import held_out_among

    tested = held_out_among(samples)  # a --split's train subset leaves them out; without a split they were fitted on
    if tested:
        return cli.fail(f"{tested[0].image}: a held-out test image ({len(tested)} of the {len(samples)} chosen); a "
                        "transform is fitted on training images only (choose them with --split "
                        "experiments/cuhk_split.json --subset train)")
    negatives, negatives_text = select_negatives(args)
    # an unreadable image or mask (a name no file can be read at, kept by the listings by stem, included) is skipped
    # with its line, recorded under "skipped" and said on stdout, as dmenet.calibrate dbd does (reliability.md §49)
    estimator = args.method.make(dcli.method_options(args))
    skipped: list[str] = []
    sharp_fitted: list = []  # the negatives read: a skipped one is no fitting image (reliability.md §50)
    fitted, (label_mae, label_fmax), names = fit_samples(estimator, samples, spec.white_is_blurred, args.max_scale,
                                                         negatives, skipped, sharp_fitted)
    transform = DetectionTransform(fitted.scale, fitted.shift)
    info = {"fitted_by": "python -m dmenet.galetto.calibrate " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "samples": selection_text(args, len(samples), args.data, len(found)), "images": names,
            "skipped": skipped, "negatives": negatives_text,
            "options": {k: estimator.settings[k] for k in FITTED_OPTIONS},
            "train_mae": round(fitted.mae, 6), "train_fmax": round(fitted.fmax, 6),
            "train_mae_label": round(label_mae, 6), "train_fmax_label": round(label_fmax, 6),
            "n_images": fitted.n_images, **fitted.grid}
    try:  # the file the σ maps came from; never over a pair another run wrote into --out meanwhile
        out = write_fitted(estimator.model_file, args.out, transform, info)
    except FileExistsError:
        return cli.fail(f"--out {args.out}: a classifier file was written there while this fit ran (another "
                        "galetto.calibrate?); it is kept and this one is not written (choose another --out)")
    sharp = f" ({len(sharp_fitted)} sharp everywhere)" if negatives else ""
    print(f"{out}: blur = sigmoid({transform.scale:g} · (σ − {transform.shift:g} px)); on the {fitted.n_images} "
          f"fitting images{sharp} MAE {fitted.mae:.4f} (label map {label_mae:.4f}), Fmax {fitted.fmax:.4f} "
          f"(label map {label_fmax:.4f})")
    line = dcli.fit_skipped_line(out, classifier_files(out)[1], skipped)
    if line:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
