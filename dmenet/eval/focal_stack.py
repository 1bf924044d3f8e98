"""Focal-stack consistency: does the predicted sharp region move with the focus plane?

A focal stack is K aligned photos of one static scene, focused at K distances. It has no blur ground truth, but it
has an ordering: at a pixel, the frame whose focus plane is at that pixel's depth is the sharpest, so a defocus map
must be *smallest* in that frame. The reference for "which frame is sharpest here" is the classical
depth-from-focus rule: the frame with the largest local focus measure (windowed standard deviation of the
Laplacian, :func:`dmenet.peers.laplacian.laplacian_sharpness`). It is reliable only where there is texture, so the
score is taken on *confident* pixels only: those whose peak focus measure is at least ``peak_ratio`` times the
median over the stack, and in the top half of peak values of the stack.

Scores (all in [0, 1], per stack):

* ``agreement`` — fraction of confident pixels where argmin over frames of the blur map equals the reference frame
  (chance = 1/K); where several frames tie for the minimum (quantised maps: Galetto's σ classes, σ clipped at 0)
  each counts 1/(frames tied), so the score does not depend on the frames' order;
* ``agreement_pm1`` — the same within ±1 frame (frames are ordered by focus distance, which is their names'
  order, numbers compared as numbers: ``f2`` before ``f10``; chance ≈ (3K − 2)/K²);
* ``rank_corr`` — mean over confident pixels of Spearman's correlation between the blur map and the *negated*
  focus measure across the K frames (1 = the blur map orders the frames like the focus measure; 0 = unrelated;
  ties take their average rank, a map constant over the frames counts 0).

This is a proxy with a classical method as its reference, not a ground truth: it rewards following the focus
plane, not correct σ values. The windowed-Laplacian peer is the reference itself and is therefore not scored.

CLI::

    python -m dmenet.eval.focal_stack --stack DIR [DIR …] [--method dmenet hifst lbp zhuo_sim]
        [--model MODEL] [--device cpu|cuda] [--flips N] [--raw-sigma] [--max-side 640] --out OUT

Methods come from the registry (:func:`dmenet.methods.make_method`): σ (px) for a method that gives σ, its blur
map otherwise.

writes ``OUT/metrics.json``, ``OUT/summary.md`` and ``OUT/<stack>_panel.png`` (frames, then each method's maps), all or
nothing, into a new (or empty) ``OUT`` outside every stack folder. A stack that cannot be scored (fewer than 2 frames, a
folder that cannot be listed, a frame that cannot be read, an image name in its folder where no file can be read: a
symbolic link loop or to nothing, a FIFO; frames of different sizes, frames too small for the reference, refused by a
method or failing in it (a ValueError, torch's RuntimeError, OpenCV's error, MemoryError: :data:`METHOD_STACK_ERRORS`;
a method's programming error still ends the run), no confident pixel; each naming ``--max-side`` when it shrank the
frames) is listed with its reason under ``skipped`` in metrics.json and in summary.md, and reported on one line
(``skipping`` and its reason, naming the stack or its frame once) once a stack is scored; when none can be, the run
ends with one error line giving each (exit 2, nothing written). Two stacks with the same name (:func:`stack_name`)
are refused.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from dmenet import cli as dcli
from dmenet.methods import MethodChoice, MethodOptions
from dmenet.peers._util import MIN_SIDE as PEER_MIN_SIDE
from dmenet.peers.laplacian import laplacian_sharpness
from syndof import cli, io
from syndof.resize import long_side_scale, scaled_size

REFERENCE_WINDOW = 31
"""Window (px) of the reference focus measure for a 640 px long side; scaled with the frame size (odd, ≥ 7)."""

PEAK_RATIO = 1.25
"""A pixel is confident when its focus-measure peak is at least this times its median over the frames."""


@dataclass
class StackScore:
    agreement: float
    agreement_pm1: float
    rank_corr: float
    confident_fraction: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        """The scores as a dict, with the chance levels of ``agreement`` (1/K) and ``agreement_pm1`` ((3K − 2)/K²)
        for K frames."""
        return {"agreement": self.agreement, "agreement_pm1": self.agreement_pm1, "rank_corr": self.rank_corr,
                "confident_fraction": self.confident_fraction, "frames": self.frames,
                "chance": 1.0 / self.frames, "chance_pm1": (3.0 * self.frames - 2.0) / self.frames**2}


def focus_order(path: Path) -> tuple:
    """Sort key of a frame: its name with each number compared as a number (``f2.png`` before ``f10.png``; a plain
    sort put ``f10``–``f12`` before ``f8``, ``f9`` and scored ``agreement_pm1`` against neighbours that were not the
    stack's), a number with a decimal point as a decimal (focus distances: ``d1.25`` before ``d1.5`` and after
    ``d1``; digit runs alone put ``d1.5`` first, review R3), the name itself breaking ties (``f01`` / ``f1``)."""
    parts = re.split(r"(\d+(?:\.\d+)?)", path.name)  # text at even places, numbers at odd ones: like with like
    return tuple(Decimal(t) if k % 2 else t for k, t in enumerate(parts)), path.name


def names_nothing(spec: str | Path) -> bool:
    """``spec`` is no glob pattern (no ``*``, ``?`` or ``[`` in its last part) and nothing is there, not even a link:
    a mistyped stack folder, skipped as "no such folder or file" (not read as its parent folder's pattern)."""
    return not glob.has_magic(Path(spec).name) and not os.path.lexists(spec)


def stack_paths(spec: str | Path) -> list[Path]:
    """The frames named by ``spec``: every image name in a folder, or the names matching a glob pattern (quoted on
    the command line, e.g. ``'photos/hifst_focal_stacks/A*.jpg'``), sorted by name with numbers in it compared as
    numbers (:func:`focus_order`). A folder's image names where no file can be read (a symbolic link loop or to
    nothing, a FIFO: :func:`syndof.io.image_entries`) are kept, as a pattern keeps them, so that :func:`stack_files`
    names them: a stack is its frames in focus order, and one left out unsaid would make its neighbours adjacent
    (``agreement_pm1``) and change the chance levels. InputError naming ``spec`` when it is neither a folder nor a
    pattern (no ``*``, ``?`` or ``[``) and nothing is there (a mistyped folder was "needs at least 2 frames, found
    0"). A pattern leaves out hidden names (:func:`syndof.io.is_hidden`: ``._f1.png`` beside ``f1.png``) as a folder
    does, unless the pattern itself starts with ``.`` (as a shell's ``*`` matches no hidden name but ``.*`` does)."""
    spec = Path(spec)
    if spec.is_dir():
        return sorted(io.image_entries(spec), key=focus_order)
    if names_nothing(spec):
        raise io.InputError(spec, "no such folder or file")
    hidden_asked = io.is_hidden(spec)  # a pattern that itself starts with '.' names hidden files, as in a shell
    return sorted((p for p in spec.parent.glob(spec.name) if p.suffix.lower() in io.IMAGE_EXTENSIONS
                   and (hidden_asked or not io.is_hidden(p))), key=focus_order)


def stack_files(spec: str | Path) -> list[Path]:
    """:func:`stack_paths` of ``spec``, each a file with bytes; no image decoded.

    Raises:
        InputError: naming the first frame that is none (a symbolic link loop or to nothing, a FIFO, a folder, an
            empty file: :func:`syndof.io.check_nonempty_file`); the stack is read whole or not at all.
    """
    paths = stack_paths(spec)
    for path in paths:
        io.check_nonempty_file(path)
    return paths


def stack_name(spec: str | Path) -> str:
    """A file-name-safe name for a stack spec (folder name, or folder + pattern)."""
    spec = Path(spec)
    name = spec.name if spec.is_dir() else f"{spec.parent.name}_{Path(spec.name).stem.replace('*', '')}"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def load_stack(folder: str | Path, max_side: int | None = 640) -> tuple[list[str], np.ndarray, float]:
    """Frames of a focal stack, sorted by file name (the focus order, :func:`focus_order`), resized together.

    Args:
        folder: a folder of images (all the same size), or a glob pattern of them (:func:`stack_paths`).
        max_side: downscale so that the long side is at most this (px); None = native.

    Returns:
        (names, (K, H, W, 3) float32 RGB in [0, 1], scale applied to the native size).

    Raises:
        InputError: no such folder, fewer than 2 frames, a frame name where no file can be read
            (:func:`stack_files`), or frames of different sizes (the message names the folder or file).
    """
    paths = stack_files(folder)
    if len(paths) < 2:
        raise io.InputError(folder, f"a focal stack needs at least 2 frames, found {len(paths)}")
    frames, size = [], None
    for path in paths:
        img = io.read_image(path)
        if size is None:
            size = img.shape[:2]
        elif img.shape[:2] != size:
            raise io.InputError(path, f"frame size {img.shape[1]}×{img.shape[0]} differs from the stack's "
                                      f"{size[1]}×{size[0]}")
        frames.append(img)
    h, w = size
    scale = long_side_scale((h, w), max_side)
    if scale != 1.0:
        dsize = scaled_size((h, w), scale)
        frames = [cv2.resize(f, dsize, interpolation=cv2.INTER_AREA) for f in frames]
    return [p.name for p in paths], np.stack(frames).astype(np.float32), scale


def reference_window(shape: tuple[int, ...]) -> int:
    """Reference window (odd px) for frames of ``shape`` (H, W, …): :data:`REFERENCE_WINDOW` at a 640 px long side."""
    w = max(7, int(round(REFERENCE_WINDOW * max(shape[:2]) / 640.0)))
    return w if w % 2 else w + 1


REFERENCE_MIN_SIDE = PEER_MIN_SIDE
"""Smallest frame side (px) :func:`reference_focus` takes (its Laplacian measure's floor)."""


def shrunk_note(max_side: int | None, shape: tuple[int, ...], scale: float) -> str:
    """What a per-stack reason adds when ``--max-side`` shrank the frames (``shape`` (K, H, W, 3) after it, ``scale``
    < 1): `` at --max-side N (WxH px, S of the frames' size): try a larger --max-side, or 0 for full size``; "" when
    they are at full size (``scale`` 1)."""
    if scale == 1.0:
        return ""
    return (f" at --max-side {max_side} ({shape[2]}x{shape[1]} px, {scale:.3g} of the frames' size): try a larger "
            "--max-side, or 0 for full size")


def reference_focus(frames: np.ndarray, window: int | None = None) -> np.ndarray:
    """(K, H, W) float32 focus measure of each frame (larger = sharper); window default :func:`reference_window`.

    ``frames``: (K, H, W, 3) float32 RGB in [0, 1] (:func:`load_stack`); ``window``: odd side in px. The measure is
    :func:`~dmenet.peers.laplacian.laplacian_sharpness` (intensity units per px², ≥ 0)."""
    window = reference_window(frames.shape[1:]) if window is None else window
    return np.stack([laplacian_sharpness(f, window) for f in frames])


def confident_mask(focus: np.ndarray, peak_ratio: float = PEAK_RATIO) -> np.ndarray:
    """(H, W) bool: pixels whose focus-measure peak is distinct (≥ ``peak_ratio`` × the median over the frames) and
    strong (in the top half of peak values)."""
    peak = focus.max(axis=0)
    distinct = peak >= peak_ratio * np.median(focus, axis=0)
    strong = peak >= np.median(peak)
    return distinct & strong & (peak > 0)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks along axis 0, tied values sharing their average rank (Spearman's rule). Until 6 Dec 2026 ties were
    broken by frame order, which favoured the first frames for maps with tied values (Galetto's integer σ classes,
    σ clipped at 0)."""
    from scipy.stats import rankdata

    return rankdata(x, axis=0).astype(np.float64)


def score_stack(blur: np.ndarray, focus: np.ndarray, mask: np.ndarray | None = None) -> StackScore:
    """Consistency of blur maps with the reference focus measure.

    Args:
        blur: (K, H, W) blur maps of the K frames (larger = more blurred; σ px or any monotone score).
        focus: (K, H, W) reference focus measure (larger = sharper).
        mask: (H, W) bool confident pixels; default :func:`confident_mask`.
    """
    if blur.shape != focus.shape or blur.ndim != 3:
        raise ValueError(f"blur {blur.shape} and focus {focus.shape} must both be (K, H, W)")
    k = blur.shape[0]
    mask = confident_mask(focus) if mask is None else mask
    n = int(mask.sum())
    if n == 0:
        raise ValueError("no confident pixels: the stack has no texture the reference can rank")
    ref = focus.argmax(axis=0)[mask]
    b = blur[:, mask]
    lowest = b == b.min(axis=0)  # (K, n): the frames holding a pixel's smallest blur (several when tied)
    ties = lowest.sum(axis=0)
    near = np.abs(np.arange(k)[:, None] - ref[None, :]) <= 1
    agreement = lowest[ref, np.arange(n)] / ties  # a tie shares the pixel: 1 / (frames tied) per frame
    agreement_pm1 = (lowest & near).sum(axis=0) / ties
    rb = _ranks(b)
    rf = _ranks(-focus[:, mask])
    rb -= rb.mean(axis=0)
    rf -= rf.mean(axis=0)
    den = np.sqrt((rb * rb).sum(axis=0) * (rf * rf).sum(axis=0))
    corr = np.divide((rb * rf).sum(axis=0), den, out=np.zeros_like(den), where=den > 0)  # constant: no order, 0
    return StackScore(agreement=float(np.mean(agreement)), agreement_pm1=float(np.mean(agreement_pm1)),
                      rank_corr=float(np.mean(corr)), confident_fraction=n / mask.size, frames=k)


def blur_maps(frames: np.ndarray, method: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(K, H, W) float32 maps of ``method`` (image → (H, W) blur map) on every frame. ``frames``: (K, H, W, 3)
    float32 RGB in [0, 1]; the maps keep ``method``'s own range and units (σ in px of the frames as given, i.e.
    after :func:`load_stack`'s ``max_side``, not of the files; or a [0, 1] score): only their order is scored."""
    return np.stack([np.asarray(method(f), dtype=np.float32) for f in frames])


def panel(frames: np.ndarray, rows: dict[str, np.ndarray], names: Sequence[str], height: int = 160) -> np.ndarray:
    """uint8 RGB picture: the frames in the first row, each method's maps (each row scaled to its own max) below.

    ``frames``: (K, H, W, 3) float RGB in [0, 1]; ``rows``: label → (K, H, W) maps ≥ 0 in any unit (each row is
    clipped to its 99.5th percentile and scaled by it); ``height``: row height in px. Returns (H', W', 3) uint8
    0…255, each row ``height`` px high plus a 4-px white margin."""
    from dmenet.eval.report import map_to_uint8

    def fit(img: np.ndarray) -> np.ndarray:
        """``img`` (H, W, 3) uint8 resized (area) to ``height`` px high, aspect kept."""
        h, w = img.shape[:2]
        return cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)

    def line(tiles: list[np.ndarray], label: str) -> np.ndarray:
        """One panel row: the tiles side by side at ``height`` px, 4-px white separators, ``label`` drawn top left;
        uint8 RGB (height, W, 3)."""
        sep = np.full((height, 4, 3), 255, np.uint8)
        parts = []
        for t in tiles:
            parts += [fit(t), sep]
        out = np.concatenate(parts[:-1], axis=1)
        cv2.putText(out, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 0, 0), 1, cv2.LINE_AA)
        return out

    lines = [line([np.clip(np.rint(f * 255), 0, 255).astype(np.uint8) for f in frames], " / ".join(names)[:60])]
    for label, maps in rows.items():
        vmax = float(np.percentile(maps, 99.5)) or 1.0
        lines.append(line([map_to_uint8(np.clip(m, 0, vmax), vmax) for m in maps], label))
    width = max(x.shape[1] for x in lines)
    lines = [np.pad(x, ((0, 4), (0, width - x.shape[1]), (0, 0)), constant_values=255) for x in lines]
    return np.concatenate(lines, axis=0)


REFERENCE_METHOD = "laplacian"
"""The registered method that is the reference focus measure itself (never scored)."""


def method_estimator(choice: MethodChoice, options: MethodOptions):
    """The chosen registered method's estimator (ValueError for the reference focus measure itself)."""
    if choice.name == REFERENCE_METHOD:
        raise ValueError(f"{choice.name} is the reference focus measure itself; it cannot be scored against it")
    return choice.make(options)


def estimator_map(estimator) -> Callable[[np.ndarray], np.ndarray]:
    """image → (H, W) map of an estimator: σ px when it gives σ, its blur map otherwise."""
    return estimator.sigma_map if estimator.gives_sigma else estimator.blur_map


METHOD_STACK_ERRORS = (ValueError, RuntimeError, MemoryError, cv2.error)
"""What a method raises on the frames of one stack that skips that stack only (the run goes on): ValueError (a
refusal, e.g. frames below its size floor; InputError is one), RuntimeError (torch's on degenerate frames, e.g. a
kernel larger than the padded input, or CUDA out of memory), ``cv2.error`` (OpenCV refusing a frame, e.g. an empty
resize) and MemoryError (this stack's frames need more memory than there is; a smaller stack may fit). Not caught:
OSError (the frames are read before any method runs, so it is the method's own file, e.g. its model: every stack
would fail), TypeError, AttributeError, KeyError, IndexError, ZeroDivisionError… (a bug of the method, which skipping
each stack would report as bad input), nor :data:`METHOD_BUGS`."""

METHOD_BUGS = (NotImplementedError, RecursionError)
"""RuntimeError's subclasses that are programming errors, not a stack's: they end the run as before."""


def method_failure(exc: BaseException) -> str:
    """The reason (one line) a method failed on a stack's frames: a ValueError's own text (a refusal says what it
    refuses), otherwise prefixed by its type (``RuntimeError: …``, ``MemoryError``), which says what kind of failure
    it was."""
    if isinstance(exc, ValueError):
        return cli.error_line(exc)
    kind = exc.__class__.__name__
    return f"{kind}: {cli.error_line(exc)}" if str(exc).strip() else kind


def method_map(choice: MethodChoice, options: MethodOptions) -> Callable[[np.ndarray], np.ndarray]:
    """image → (H, W) map of the chosen registered method: σ px when it gives σ, its blur map otherwise."""
    return estimator_map(method_estimator(choice, options))


EXAMPLE = ("dmenet-focal-stack --stack ../shared/data/photos/real_dof/hifst_focal_stacks/'F*.png' --method lbp "
           "--max-side 160 --out runs/focal_stack_example")


def stack_folder(spec: str | Path) -> Path:
    """The folder holding a stack spec's frames (the folder itself, or a glob pattern's parent), links resolved."""
    spec = Path(spec)
    return Path(os.path.realpath(spec if spec.is_dir() else spec.parent))


def stacks_problem(specs: Sequence[str], out: str | Path) -> str | None:
    """One line when the ``--stack`` specs and ``--out`` cannot make one clean report, else None (checked before any
    work): two stacks with the same report name (:func:`stack_name`; their scores and panels would overwrite each
    other), or an ``--out`` that is a stack folder or inside one (the report would be mixed with the frames)."""
    seen: dict[str, str] = {}
    for spec in specs:
        name = stack_name(spec)
        if name in seen:
            return (f"--stack {seen[name]} {spec}: both are named {name!r} in the report (metrics.json keys and "
                    f"{name}_panel.png); score them in separate runs, or give one a folder of another name")
        seen[name] = spec
    target = Path(os.path.realpath(out))
    for spec in specs:
        if names_nothing(spec):
            continue  # nothing there to mix with (skipped as "no such folder or file"), not its parent folder
        folder = stack_folder(spec)
        if target == folder or folder in target.parents:
            return f"--out {out}: is inside the stack folder {folder} of --stack {spec}; write the report elsewhere"
    return None


def _summary_markdown(rows: list[dict], skipped: dict[str, dict]) -> str:
    from dmenet.eval.report import markdown_table

    text = markdown_table(rows, ["stack", "method", "frames", "agreement", "chance", "agreement_pm1", "chance_pm1",
                                 "rank_corr", "confident_fraction"])
    if skipped:
        listed = [{"stack": n, "folder": s["folder"], "reason": s["reason"].replace("|", "\\|")}
                  for n, s in skipped.items()]
        text += "\nSkipped stacks (not scored):\n\n" + markdown_table(listed, ["stack", "folder", "reason"])
    return text


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    import logging

    p = cli.parser("dmenet.eval.focal_stack", __doc__, EXAMPLE)
    p.add_argument("--stack", nargs="+", required=True,
                   help="focal stacks: folders, or quoted glob patterns of frames (sorted by name, numbers as "
                        "numbers: f2 before f10); each needs its "
                        "own name (folder name, or folder + pattern)")
    dcli.add_method(p, many=True, default=["dmenet"])
    dcli.add_model(p, help="model file of the learned method(s) in --method (.safetensors + .json sidecar); default "
                   f"each method's shipped file, for dmenet {dcli.DEFAULT_MODEL_TEXT}")
    dcli.add_inference(p, max_side=640, methods=True)
    cli.add_device(p)
    cli.add_threads(p)
    p.add_argument("--out", required=True, help="new (or empty) report folder, written all or nothing")
    args = p.parse_args(argv)
    names = [str(c) for c in args.method]
    twice = sorted({n for n in names if names.count(n) > 1})
    problem = (stacks_problem(args.stack, args.out)
               or (f"--method: {', '.join(twice)} given twice (one row per method in the report)" if twice else None)
               or dcli.unused_model(args)
               or cli.new_folder_problem(args.out, "the focal-stack report is a new folder")
               # the report is staged beside --out: an unwritable folder named the staged `.OUT.part-…` folder
               or cli.folder_to_write_problem(Path(args.out).absolute().parent, f"--out {args.out}"))
    if problem:
        return cli.fail(problem)
    cli.prepare_process(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("dmenet.eval.focal_stack")
    options = dcli.method_options(args, max_side=None)  # frames are resized to --max-side when loaded
    estimators = {str(c): method_estimator(c, options) for c in args.method}
    methods = {m: estimator_map(e) for m, e in estimators.items()}
    described = {m: f"{e.describe()} [scored: {'sigma px' if e.gives_sigma else 'blur map'}]"
                 for m, e in estimators.items()}  # what ran (model file, flips, …), not just its name
    results, rows, skipped = {}, [], {}
    held: list[str] = []  # why each stack was skipped, one line each naming it (or its frame) once, not printed yet

    def skip(name: str, folder: str, reason: str, line: str) -> None:
        """Record stack ``name`` as skipped (folder, reason) and hold its log line until a stack is scored."""
        skipped[name] = {"folder": str(folder), "reason": reason}
        held.append(line)
        if results:
            say_skipped()

    def say_skipped() -> None:  # once a stack is scored; with none, the error line alone names them
        """Log the held skip lines and clear them."""
        for line in held:
            log.error("skipping %s", line)
        held.clear()

    with io.staged_folder(args.out) as out:  # all or nothing: a failure or a signal leaves no partial report
        for folder in args.stack:
            name = stack_name(folder)
            try:
                names, frames, scale = load_stack(folder, args.max_side or None)  # --max-side 0: native
            except (io.InputError, OSError) as exc:  # names the stack, or the frame of it (a folder not listable)
                skip(name, folder, cli.error_line(exc), cli.error_line(exc))
                continue
            note = shrunk_note(args.max_side, frames.shape, scale)
            if min(frames.shape[1:3]) < REFERENCE_MIN_SIDE:  # the reference itself cannot run (2x1 px frames)
                reason = (f"frames too small for the reference focus measure (at least {REFERENCE_MIN_SIDE} px a "
                          f"side){note or f' ({frames.shape[2]}x{frames.shape[1]} px)'}")
                skip(name, folder, reason, f"{folder}: {reason}")
                continue
            focus = reference_focus(frames)
            mask = confident_mask(focus)
            if not mask.any():  # the texture may be there at full size: the note names the option that shrank it
                reason = f"no confident pixels (no texture whose sharpest frame the reference can tell){note}"
                skip(name, folder, reason, f"{folder}: {reason}")
                continue
            maps, refused = {}, None
            for m, fn in methods.items():
                try:
                    maps[m] = blur_maps(frames, fn)
                except METHOD_STACK_ERRORS as exc:  # a method failing on these frames: this stack only
                    if isinstance(exc, METHOD_BUGS):
                        raise
                    refused = f"method {m}: {method_failure(exc)}{note}"
                    break
            if refused is not None:
                skip(name, folder, refused, f"{folder}: {refused}")
                continue
            say_skipped()
            results[name] = {"folder": str(folder), "frames": names, "scale": scale,
                             "methods": {m: score_stack(b, focus, mask).as_dict() for m, b in maps.items()}}
            for m, score in results[name]["methods"].items():
                rows.append({"stack": name, "method": m, **score})
                log.info("%s %s: agreement %.3f (±1: %.3f, chance %.3f), rank corr %.3f", name, m,
                         score["agreement"], score["agreement_pm1"], score["chance"], score["rank_corr"])
            io.write_image(out / f"{name}_panel.png", panel(frames, maps, names))
        if not results:  # raised inside the block: the staged folder is dropped, --out is left as it was
            raise ValueError("no readable focal stack: " + "; ".join(held))
        io.write_json_atomic(out / "metrics.json", {
            "reference": f"windowed Laplacian std, window {REFERENCE_WINDOW} px per 640 px, peak ratio {PEAK_RATIO}",
            "max_side": args.max_side, "methods": described, "stacks": results, "skipped": skipped})
        io.write_text_atomic(out / "summary.md", _summary_markdown(rows, skipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
