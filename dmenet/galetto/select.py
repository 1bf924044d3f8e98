"""Score the inference candidates of ``experiments/galetto_selection.md`` on a SYNDOF validation folder
(``python -m dmenet.galetto.select --val runs/gsyn_val --model M --out OUT``). One classifier pass per image and
pre-denoise setting; each readout × refine candidate is derived from it. Writes ``OUT/selection.json`` with every
candidate's mean label MAE and the winner by the rule's order and tolerance.

Checked before the model is loaded (exit 2, one line): ``OUT/selection.json`` must not exist (a selection is never
replaced, also not one another run writes while this one scores: exit 2 then, that one kept) and ``OUT`` must be a
folder this user can write (or create), and the val folder must hold at least one image in ``image/`` and a σ map of
its size in ``blur_map/`` for every one (the first image without one, or the first map of another size, is named).
Every render and σ map is then read: a render either of which cannot be read (empty, truncated, not an image), or
one under the classifier's 32-px window (the galetto method refuses it, ``image is too small: WxH px (at least 32 px
a side)``; the window grid would pad it and rank the candidates on data the method never scores), is skipped with one
line ``skipped PATH: reason`` on stderr, and both stages score the renders left;
``selection.json`` records how many were scored (``renders``) and which were skipped (``skipped``, render path →
reason), so a selection over fewer renders says so. None readable: exit 2, nothing written."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmenet.galetto.blurmap import Readout, gray01, readout, spread, window_probabilities
from dmenet.galetto.refine import Refine, refine_map
from dmenet import cli as dcli
from dmenet.galetto import PATCH
from syndof import cli, io, units
from syndof.images import check_min_side

TOLERANCE = 0.002

window_stride = cli.checked_number(int, "an integer", lambda v: 1 <= v <= PATCH, f"an integer from 1 to {PATCH}",
                                   "window_stride", "argparse type of ``--stride``: a larger stride leaves pixels "
                                   "that no window covers (their σ was NaN: 'label map holds NaN / inf').")


@dataclass(frozen=True)
class Candidate:
    """One inference candidate: the window readout, the σ map's refinement and the pre-denoise σ (px). ``str()`` is
    the key ``selection.json`` writes (``readout=argmax,refine=none,denoise=0``)."""

    readout: Readout
    refine: Refine
    denoise: float

    def __str__(self) -> str:
        return f"readout={self.readout},refine={self.refine},denoise={self.denoise:g}"


def candidates_mae(model, root: Path, stride: int, denoise: float, limit: int | None = None,
                   pairs: list[tuple[str, Path, Path]] | None = None) -> dict[Candidate, float]:
    """Mean label MAE of every readout × refine candidate (pre-denoise σ ``denoise`` px) over the first ``limit``
    renders of ``root`` (all: None), in the rule's order (readout, then refine, as the enums define them).
    ``pairs``: the ``(stem, render, σ map)`` to score instead (:func:`readable_renders`, which read each render and
    warned of an animated one: not again here, so a render warns once per run); None: every one of those renders.
    InputError naming a render under the classifier's window (:func:`window_problem`: the window grid would pad it)."""
    from dmenet.eval.syndof_test import label_errors, read_max_coc, sigma_label, sigma_map_pairs

    max_coc = read_max_coc(root)
    scores: dict[Candidate, list[float]] = {}
    for _, path, sigma_path in sigma_map_pairs(root, limit) if pairs is None else pairs:
        image = io.read_image(path, note_frames=pairs is None)
        problem = window_problem(image.shape)
        if problem:  # the window grid would pad it: a score on data the galetto method refuses
            raise io.InputError(path, problem)
        gt = sigma_label(sigma_path, max_coc, root)  # a σ above the folder's σ_max: InputError naming the map
        gray = gray01(image, denoise)
        probs, size = window_probabilities(model, gray, stride)
        for mode in Readout:
            raw = spread(readout(probs, mode), size, stride)[: gray.shape[0], : gray.shape[1]].numpy()
            for ref in Refine:
                pred = units.sigma_to_label(refine_map(image, raw, ref), max_coc)
                scores.setdefault(Candidate(mode, ref, denoise), []).append(label_errors(pred, gt)[1])
    return {k: float(np.mean(v)) for k, v in scores.items()}


def window_problem(shape: tuple[int, ...]) -> str | None:
    """Why a render of (H, W, …) ``shape`` cannot be scored, or None: a side under the classifier's 32-px window
    (:data:`~dmenet.galetto.PATCH`), the galetto method's refusal (:func:`syndof.images.check_min_side`, the rule and
    words of its ``estimate``), which :func:`~dmenet.galetto.blurmap.window_probabilities` does not check (it pads)."""
    try:
        check_min_side(shape, PATCH)
    except ValueError as exc:
        return f"{exc}: under the classifier's {PATCH}-px window (the galetto method refuses it)"
    return None


def check_val_folder(root: Path, limit: int | None = None) -> int:
    """The number of renders (the first ``limit``) of a SYNDOF folder; InputError (one line) without any image in
    ``image/``, naming the first image (sorted) without its σ map in ``blur_map/``
    (:func:`dmenet.eval.syndof_test.sigma_map_pairs`), or naming the first σ map whose size (from the header) is not
    its render's: found after the whole scoring before, as a line naming no file."""
    from dmenet.eval.syndof_test import sigma_map_pairs

    pairs = sigma_map_pairs(root, limit)
    for _, image, sigma in pairs:
        size_i, size_s = io.header_size(image), io.header_size(sigma)
        if size_i is not None and size_s is not None and size_i != size_s:
            raise io.InputError(sigma, f"σ map is {size_s[0]}x{size_s[1]} px, its render {image.name} "
                                f"{size_i[0]}x{size_i[1]} px")
    return len(pairs)


def readable_renders(root: Path, limit: int | None = None) -> tuple[list[tuple[str, Path, Path]], dict[str, str]]:
    """The ``(stem, render, σ map)`` of the first ``limit`` renders of a SYNDOF folder (:func:`check_val_folder`)
    whose render and σ map can both be read and whose render is not under the classifier's window
    (:func:`window_problem`), in order, and ``{render path: reason}`` of the others, each skipped with
    one line ``skipped PATH: reason`` on stderr (as ``build_patches --syndof``). Every file is decoded here, before
    the model loads, so that both stages of the selection score one set of renders.

    Raises:
        InputError: as :func:`check_val_folder`; a σ map whose decoded size is not its render's; no readable render
            (the first skipped one named).
    """
    from dmenet.eval.syndof_test import sigma_map_pairs

    check_val_folder(root, limit)
    readable, skipped = [], {}
    for stem, image, sigma in sigma_map_pairs(root, limit):
        try:
            shapes = io.read_image(image).shape[:2], io.read_sigma_map(sigma).shape[:2]
        except io.InputError as exc:  # names its file: the render or its σ map
            reason = exc.reason_for(image)
        except OSError as exc:  # e.g. no permission to read it
            reason = cli.error_line(exc)
        else:
            if shapes[0] != shapes[1]:  # sizes a header did not give (check_val_folder compares the others)
                raise io.InputError(sigma, f"σ map is {shapes[1][1]}x{shapes[1][0]} px, its render {image.name} "
                                    f"{shapes[0][1]}x{shapes[0][0]} px")
            reason = window_problem(shapes[0])
            if reason is None:
                readable.append((stem, image, sigma))
                continue
        skipped[str(image)] = reason
        print(f"skipped {image}: {reason}", file=sys.stderr, flush=True)
    if not readable:
        first, reason = next(iter(skipped.items()))
        raise io.InputError(root / "image", f"no readable render ({len(skipped)} skipped, the first {first}: "
                            f"{reason}; nothing was written)")
    return readable, skipped


def pick(scores: dict[Candidate, float]) -> Candidate:
    """Lowest MAE; within TOLERANCE of it, the first candidate in insertion (= the rule's) order."""
    best = min(scores.values())
    return next(k for k, v in scores.items() if v <= best + TOLERANCE)


EXAMPLE = ("galetto-select --val ../shared/data/syndof_reference/output --model checkpoints/galetto_mbv2.safetensors "
           "--stride 32 --limit 1 --out runs/galetto_select_example")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    from dmenet.galetto.train import load_classifier

    ap = cli.parser("dmenet.galetto.select", __doc__, EXAMPLE)
    ap.add_argument("--val", required=True, type=Path, help="SYNDOF validation folder (image/, blur_map/)")
    dcli.add_model(ap, required=True, help="galetto classifier file (.safetensors + .json)")
    ap.add_argument("--stride", type=window_stride, default=8, help=f"window stride (px, 1 to {PATCH})")
    ap.add_argument("--limit", type=cli.positive_int, default=None, help="score only the first N renders (sorted)")
    ap.add_argument("--out", required=True, type=Path, help="output folder (selection.json)")
    cli.add_device(ap)
    cli.add_threads(ap)
    args = ap.parse_args(argv)
    target = args.out / "selection.json"
    if args.out.exists() and not args.out.is_dir():
        return cli.fail(f"--out {args.out}: exists and is not a folder (nothing was changed)")
    if target.exists() or target.is_symlink():
        return cli.fail(f"--out {args.out}: exists; it holds a selection.json already (choose another --out, or "
                        "delete it knowingly to redo; nothing was changed)")
    problem = cli.folder_to_write_problem(args.out, f"--out {args.out}")  # was found after the whole scoring
    if problem:
        return cli.fail(problem)
    pairs, skipped = readable_renders(args.val, args.limit)  # InputError → exit 2, before the model is loaded
    cli.prepare_process(args)
    model = load_classifier(args.model, device=args.device)  # bad file: exit 2
    scores = candidates_mae(model, args.val, args.stride, 0.0, args.limit, pairs=pairs)
    order = [Candidate(m, r, 0.0) for m in Readout for r in Refine]
    first = pick({c: scores[c] for c in order})
    with_denoise = candidates_mae(model, args.val, args.stride, 1.0, args.limit, pairs=pairs)
    denoised = dataclasses.replace(first, denoise=1.0)
    final = pick({first: scores[first], denoised: with_denoise[denoised]})
    result = {"val": str(args.val), "model": args.model, "stride": args.stride, "limit": args.limit,
              "renders": len(pairs), "skipped": skipped,
              "scores": {str(c): v for c, v in {**scores, **with_denoise}.items()}, "stage1_winner": str(first),
              "winner": str(final), "readout_of_winner": first.readout.value}
    try:  # never over a selection another run wrote into --out meanwhile (both passed the check above)
        io.write_json_atomic(target, result, replace=False)
    except FileExistsError:
        return cli.fail(f"--out {args.out}: a selection.json was written there while this selection ran (another "
                        "galetto.select?); it is kept and this one is not written (choose another --out)")
    print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
