"""Command line of the σ-map applications (:mod:`dmenet.galetto.apps`)::

    python -m dmenet.galetto.apps_cli enhance IMAGE --out OUT.png [--method galetto] [--lam-max 2]
    python -m dmenet.galetto.apps_cli magnify IMAGE --out OUT.png [--mode sdof | --mode scale --k 2]
    python -m dmenet.galetto.apps_cli fuse FRAME FRAME [...] | FOLDER --out OUT.png [--soft TAU]

Each writes the result ``OUT`` and a report image ``OUT`` with ``_report.png`` appended to the stem (input(s), σ maps,
result; fusion adds the weights). σ maps come from any registered method (``--method NAME[:key=value,…]``, default
galetto; ``--model`` its file). Bad input (unreadable image, a folder where an image is expected, empty folder, a single
frame, frames of different sizes, an unknown or out-of-range option value: ``--lam-max`` finite ≥ 0 (0: the photo
unchanged, as :func:`~dmenet.galetto.apps.adaptive_enhance`), ``--soft`` finite > 0, ``--k`` from 1 to 100; an option
the command does not read, e.g. ``magnify --k 3`` without ``--mode scale``) exits with status 2 and one line naming the
file or option; every input is read and checked before anything is computed. An image name in the FOLDER of ``fuse``
where no file can be read (a symbolic link loop or to nothing, a FIFO) is left out of the frames with one ``skipped
PATH: reason`` line on stderr. The result is RGB: a gray input gives three equal channels and an input's alpha channel
is dropped, each said in one ``note:`` line on stderr (a 16-bit PNG when every input is 16-bit). An image that would
need more memory than is available (``predict``'s memory guard, :mod:`dmenet.memory`, for the σ method, plus the
application's own buffers, :func:`app_bytes_per_pixel`) is refused the same way before its σ map, the line giving the
GiB it needs and the GiB available (and the ``--max-side`` that fits, when one does); a large image gets progress lines
on stderr before its σ map and its application. The report's panels name what ran (mode, k, λmax or τ, the σ method and
its options).
``OUT`` and its report are never written over an existing file or folder, nor over an input: such an ``--out`` is
refused up front, and a file made there meanwhile (another run) is kept and the run refused at the end; the two are
written as one set (both or neither).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

from dmenet import cli as dcli
from dmenet.methods import MethodChoice, parse_method
from syndof import cli, io
from syndof.choices import Choice, choices, parse_choice


class App(Choice):
    """The application, the command's first word: ENHANCE = σ-adaptive unsharp masking of one image, MAGNIFY =
    defocus magnification of one image (``--mode``), FUSE = all-in-focus fusion of two or more frames."""

    ENHANCE = "enhance"
    MAGNIFY = "magnify"
    FUSE = "fuse"


class MagnifyMode(Choice):
    """``magnify --mode``: SDOF = shallow depth of field by the NLT blend (:func:`dmenet.galetto.apps.sdof`), SCALE =
    true re-blur to σ_out = k·σ_in (:func:`dmenet.galetto.apps.magnify_scale`, ``--k``)."""

    SDOF = "sdof"
    SCALE = "scale"


class UsageError(ValueError):
    """Bad input; the message names the file or option."""


K_MAX = 100.0
"""Largest ``--k``: σ_out = k·σ_in is then up to 1900 px for the classifier's largest σ (19 px), far past any photo;
beyond it only the cost grows, and near 1e154 k² overflows (a NaN blur)."""


magnification = cli.checked_number(float, "a number", lambda v: math.isfinite(v) and 1 <= v <= K_MAX,
                                   f"a number from 1 to {K_MAX:g}", "magnification",
                                   "argparse type of ``--k``: a number in [1, :data:`K_MAX`] (not nan, not inf).")


def image_file(path: str | Path, command: App | str) -> Path:
    """``path`` as an image file argument of ``command`` (:class:`App` or its value): a folder there is refused by
    name (reading it would say "not found")."""
    path, command = Path(path), parse_choice(App, command, "command")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; {command.value} expects an image file"
                         + (" (or one folder alone)" if command is App.FUSE else ""))
    return path


def frame_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The frame files of ``fuse`` (the images of one folder, or the files given; checks there are at least 2), and
    one ``skipped PATH: reason`` line for each image name of the folder that is no file to read (a symbolic link
    loop or to nothing, a FIFO: :func:`syndof.io.unlisted_images`), left out of the frames; none for frames named
    one by one (each must read). The folder is listed once (:func:`syndof.io.list_images_and_unlisted`): the error
    of too few frames counts those names, and the skip lines name them, from the same listing as the frames."""
    unlisted: list[tuple[Path, str]] = []
    if len(paths) == 1 and Path(paths[0]).is_dir():
        files, unlisted = io.list_images_and_unlisted(paths[0])
        besides = io.unlisted_note(unlisted)
        if not files:
            raise UsageError(f"{paths[0]}: folder holds no images{besides}")
        if len(files) < 2:
            raise UsageError(f"{files[0]}: fusion needs at least 2 frames, got 1{besides}")
    else:
        files = [image_file(p, App.FUSE) for p in paths]
    if len(files) < 2:
        raise UsageError(f"{files[0] if files else paths}: fusion needs at least 2 frames, got {len(files)}")
    return files, [f"skipped {path}: {why}" for path, why in unlisted]


def read_frames(files: list[Path]) -> tuple[np.ndarray, list[io.Stored]]:
    """The (K, H, W, 3) frames of ``files`` (:func:`frame_files`), and what each file stores (for
    :func:`at_input_depth` and :func:`channel_notes`: each file decoded once); checks their sizes are equal.
    Frames: float32 RGB in [0, 1] (:func:`syndof.io.read_image`), K = len(files); UsageError naming the first
    file of another size."""
    frames, stored = zip(*(io.read_image_stored(f) for f in files))
    for f, img in zip(files, frames):
        if img.shape != frames[0].shape:
            raise UsageError(f"{f}: size {img.shape[1]}x{img.shape[0]} differs from {files[0]} "
                             f"({frames[0].shape[1]}x{frames[0].shape[0]}); frames must be aligned")
    return np.stack(frames), list(stored)


APP_BYTES_PER_PIXEL = {App.ENHANCE: 130, MagnifyMode.SDOF: 150, MagnifyMode.SCALE: 140}
"""Peak memory of each one-image application per pixel of its image, beyond ``predict``'s allowance for the image and
its σ map (:data:`dmenet.memory.IO_BYTES_PER_PIXEL`): its float64 copies, the result, the report panel and their
encodings. Measured as the growth of the whole command's peak RSS between 1000² and 2000² px with a stand-in σ map,
6 Dec 2026: enhance 150, magnify sdof 170, magnify scale 157 B a pixel; less predict's 40, plus ~20 %."""
FUSE_BYTES_PER_PIXEL = (85, 55)
"""``fuse``: (fixed, per frame) bytes per pixel of one frame, as :data:`APP_BYTES_PER_PIXEL` (the frames, σ maps,
weights and report panels; measured 209 B for 2 frames, 256 B for 3, predict's 40 included: 75 + 47 a
frame, plus ~15 %)."""


def app_bytes_per_pixel(command: App | str, mode: MagnifyMode | str | None = None, frames: int = 1) -> int:
    """Memory the application ``command`` (``magnify``: in ``mode``; ``fuse``: of ``frames`` frames) holds per pixel
    of its image beyond ``predict``'s memory guard's own allowance: what :func:`sigma_of` adds to the σ method's."""
    command = parse_choice(App, command, "command")
    if command is App.FUSE:
        return FUSE_BYTES_PER_PIXEL[0] + FUSE_BYTES_PER_PIXEL[1] * frames
    if command is App.MAGNIFY:
        return APP_BYTES_PER_PIXEL[parse_choice(MagnifyMode, mode or MagnifyMode.SDOF, "--mode")]
    return APP_BYTES_PER_PIXEL[command]


def sigma_of(method: MethodChoice, options, images: list[np.ndarray],
             files: list[Path] | None = None, app_bytes: int = 0) -> list[np.ndarray]:
    """σ maps of ``images`` ((H, W, 3) float32 RGB in [0, 1] each) by the chosen registered method with
    :class:`~dmenet.methods.MethodOptions`, each (H, W) float32 σ in px ≥ 0 (its ``sigma_map``); an
    image the method cannot measure (e.g. smaller than its window) is a UsageError naming its file (``files``).
    Before any σ map, each image is checked against the available memory by ``predict``'s guard
    (:func:`dmenet.memory.check_memory`: the method's memory, plus ``app_bytes`` per pixel for the application that
    follows, :func:`app_bytes_per_pixel`): one that does not fit is a UsageError naming it, with the GiB it needs and
    the GiB available. A large image (:data:`dmenet.memory.LARGE_IMAGE_PIXELS`) gets a progress line on stderr
    before its σ map."""
    from dmenet import memory

    est = method.make(options)
    if not est.gives_sigma:
        raise UsageError(f"--method {method}: gives no σ map in px (choose a method with σ, e.g. galetto, dmenet)")
    names = files if files is not None else [f"image {k + 1}" for k in range(len(images))]
    available = memory.available_memory()
    for name, img in zip(names, images):
        try:
            memory.check_memory(*img.shape[:2], options.max_side, available, est.extra_bytes_per_pixel(),
                                est.input_bytes_per_pixel() + app_bytes, est.min_short_side,
                                method.spec.reads_max_side)
        except ValueError as exc:  # "6000x4500 px needs about 9.1 GiB, 7.8 GiB available: pass --max-side …"
            raise UsageError(f"{name}: {exc}") from None
    maps = []
    for k, img in enumerate(images):
        h, w = img.shape[:2]
        if h * w > memory.LARGE_IMAGE_PIXELS:  # progress before the long part, as predict
            note = "" if options.max_side or not method.spec.reads_max_side \
                else " (large: this takes a while; --max-side is faster)"
            print(f"[{k + 1}/{len(images)}] {names[k]}: {w}x{h} px: σ map by {method}{note}", file=sys.stderr,
                  flush=True)
        try:
            maps.append(est.sigma_map(img))
        except ValueError as exc:  # "image is too small: 8x8 px" named no file
            if files is None:
                raise
            raise UsageError(f"{files[k]}: {exc}") from None
    return maps


def report(tiles: list[tuple[np.ndarray, str]]) -> np.ndarray:
    """Side-by-side uint8 panel: (H, W, 3) images as they are, (H, W) σ maps (px) on one inferno scale, labelled."""
    import cv2

    from syndof.viz import colorize

    maps = [t for t, _ in tiles if t.ndim == 2]
    vmax = max([float(np.percentile(m, 99.5)) for m in maps] + [1.0])
    out = []
    for t, label in tiles:
        rgb = np.ascontiguousarray(colorize(np.clip(t, 0, vmax), vmax) if t.ndim == 2 else io.to_uint8(t))
        cv2.putText(rgb, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        out += [rgb, np.full((rgb.shape[0], 4, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=1)


def report_path(out: Path) -> Path:
    """The report picture's path beside result ``out``: ``<stem>_report.png``."""
    return out.with_name(out.stem + "_report.png")


def check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse, before any work, an ``--out`` whose result or report would replace an input (same file after
    resolving links), an existing file, link or folder; and an ``--out`` whose folder cannot be written."""
    sources = {os.path.realpath(p): p for p in inputs}
    for path in (out, report_path(out)):
        label = f"--out {out}" + ("" if path == out else f": its report {path}")
        if os.path.realpath(path) in sources:
            raise UsageError(f"{label}: is the input {sources[os.path.realpath(path)]}; write to a new name")
        if path.is_dir():
            raise UsageError(f"{label}: is a folder; give a new image file name")
        if os.path.lexists(path):
            raise UsageError(f"{label}: exists; write to a new name")
    problem = cli.folder_to_write_problem(out.absolute().parent, f"--out {out}")
    if problem:
        raise UsageError(problem)


def at_input_depth(result: np.ndarray, out: Path, stored: list[io.Stored]) -> np.ndarray:
    """``result`` ((H, W, 3) float RGB in [0, 1]) as (H, W, 3) uint16 0–65535 when every input stores 16 bits
    (``stored``: what each input file stores, :func:`syndof.io.read_image_stored`) and ``out`` is a PNG (it was
    rounded to 8 bits whatever the input held); else as it is (written with 8 bits)."""
    if out.suffix.lower() != ".png" or not all(s.dtype == np.uint16 for s in stored):
        return result
    return np.round(np.clip(result, 0.0, 1.0) * 65535.0).astype(np.uint16)


def channel_notes(inputs: list[Path], stored: list[io.Stored]) -> list[str]:
    """One ``note:`` line for each input whose channels the RGB result does not keep (:func:`syndof.io.read_image`
    makes every photo RGB, as :mod:`dmenet.galetto.apps` documents): a gray photo gives three equal channels, an
    alpha channel is dropped. ``stored``: what each input file stores (:func:`syndof.io.read_image_stored`)."""
    notes = []
    for path, s in zip(inputs, stored):
        if s.channels == 1:
            notes.append(f"note: {path}: a gray image; the result is RGB (three equal channels)")
        elif s.channels == 4:
            notes.append(f"note: {path}: its alpha channel is dropped; the result is RGB, without transparency")
    return notes


def write_outputs(out: Path, result: np.ndarray, panel: np.ndarray) -> None:
    """Write the result ((H, W, 3) float RGB in [0, 1], 8 bits; or uint16 0–65535, :func:`at_input_depth`) and its
    report ``panel`` ((h, w, 3) uint8 RGB, :func:`report`) as one set: on any failure neither is left (nor a
    temporary file)."""
    rep = report_path(out)
    files = {out: io.encode_image(out, result), rep: io.encode_png(panel)}
    new_folders = [f for f in [out.absolute().parent, *out.absolute().parent.parents] if not f.exists()]
    try:
        # renamed in reverse order: the report first, the result last; never over a file made since check_out (two
        # runs with one --out both exited 0, the second silently replacing the first's result)
        io.write_set_atomic(files, replace=False)
    except OSError as exc:
        ours = out.is_file() and out.read_bytes() == files[out]
        if not ours and rep.is_file() and rep.read_bytes() == files[rep]:
            rep.unlink()  # the report went in but the result failed: take it back (check_out saw no file there)
        for folder in new_folders:  # innermost first: the folders this write created, if left empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise UsageError(f"--out {out}: cannot write the result and its report ({cli.error_line(exc)}); "
                         "nothing written") from None


def options_of(args: argparse.Namespace):
    """The method options of the parsed flags: ``--set k=v`` adds to the options of ``--method NAME:k=v,…`` (a key
    in both is refused when the method is made)."""
    extra = parse_method(f"{args.method.name}:{','.join(args.overrides)}").extra if args.overrides else ()
    return dcli.method_options(args, extra=extra)


def method_label(args: argparse.Namespace) -> str:
    """The σ source as the command line chose it, for the report panel: method, --set options, --model file."""
    return (" ".join([str(args.method), *args.overrides])
            + (f" model {Path(args.model).name}" if getattr(args, "model", None) else "")
            + (f" max-side {args.max_side}" if getattr(args, "max_side", None) else ""))


def say_large(what: str, shape: tuple[int, ...]) -> None:
    """A progress line on stderr before the application runs on a large image (``shape`` (H, W, …); as predict's,
    above :data:`dmenet.memory.LARGE_IMAGE_PIXELS`): it runs at full size whatever ``--max-side``."""
    from dmenet import memory

    h, w = shape[:2]
    if h * w > memory.LARGE_IMAGE_PIXELS:
        print(f"{what}: {w}x{h} px at full size (large: this takes a while)", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> None:
    """Run one application (``fuse``, ``enhance`` or ``magnify``) from the parsed ``args``: σ maps (px) of the inputs
    by the chosen method, the result image and its report written beside ``--out``; UsageError for conflicting paths."""
    from dmenet.galetto import apps

    out, command = Path(args.out), parse_choice(App, args.command, "command")
    if command is App.FUSE:
        files, skipped = frame_files(args.inputs)
        check_out(out, files)
        if len(args.inputs) == 1 and os.path.realpath(out.absolute().parent) == os.path.realpath(args.inputs[0]):
            raise UsageError(f"--out {out}: lies in the frames' folder {args.inputs[0]}, where a rerun would take the "
                             "result and its report for frames; write it elsewhere")
        for line in skipped:  # after the checks: a refused run says one line
            print(line, file=sys.stderr, flush=True)
        frames, stored = read_frames(files)
        sigmas = np.stack(sigma_of(args.method, options_of(args), list(frames), files,
                                   app_bytes_per_pixel(command, frames=len(files))))
        say_large(f"{command.value}: {len(files)} frames", frames.shape[1:3])
        fused, weights = apps.fuse(frames, sigmas, soft=args.soft)
        tiles = [(f, p.name) for f, p in zip(frames, files)] + [(m, f"sigma {p.stem}") for m, p in zip(sigmas, files)]
        how = f"soft tau {args.soft:g}" if args.soft is not None else "decision"
        tiles += [(fused, f"fused {how} ({method_label(args)})")]
        tiles += [(np.repeat(w[..., None], 3, -1), f"weight {p.stem}") for w, p in zip(weights, files)]
        for line in channel_notes(files, stored):  # after every check: a refused run says its one line alone
            print(line, file=sys.stderr, flush=True)
        write_outputs(out, at_input_depth(fused, out, stored), report(tiles))
        return
    if len(args.inputs) != 1:
        raise UsageError(f"{command.value} takes one image, got {len(args.inputs)}")
    source = image_file(args.inputs[0], command)
    check_out(out, [source])
    image, stored = io.read_image_stored(source)
    sigma = sigma_of(args.method, options_of(args), [image], [source], app_bytes_per_pixel(command, args.mode))[0]
    say_large(f"{command.value}{' ' + args.mode if command is App.MAGNIFY else ''}: {source}", image.shape[:2])
    label = command.value  # the panel says what ran: it was "magnify" for the NLT blend and for x k alike
    if command is App.ENHANCE:
        label += f" lam-max {args.lam_max:g}"
        result = apps.adaptive_enhance(image, sigma, args.lam_max)
        gain = apps.enhancement_gain(sigma, args.lam_max)  # shown as λ/λmax in [0, 1]; λmax 0: λ is 0 everywhere
        gain = gain / args.lam_max if args.lam_max > 0 else gain
        extra = [(np.repeat(gain[..., None], 3, -1), "gain")]
    elif parse_choice(MagnifyMode, args.mode, "--mode") is MagnifyMode.SDOF:
        label += " sdof (NLT blend)"
        result, w = apps.sdof(image, sigma)
        extra = [(np.repeat(w[..., None], 3, -1), "W (sharp weight)")]
    else:
        label += f" scale x{args.k:g}"
        try:
            result = apps.magnify_scale(image, sigma, args.k)
        except ValueError as exc:  # "×100 magnification … adds a blur of σ 200 px, more than the image" named nothing
            raise UsageError(f"{source}: --k {args.k:g}: {exc}") from None
        extra = []
    tiles = [(image, "input"), (sigma, f"sigma px ({method_label(args)})"), (result, label), *extra]
    for line in channel_notes([source], [stored]):  # after every check: a refused run says its one line alone
        print(line, file=sys.stderr, flush=True)
    write_outputs(out, at_input_depth(result, out, [stored]), report(tiles))


READS = {App.ENHANCE: ("lam_max",), App.MAGNIFY: ("mode", "k"), App.FUSE: ("soft",)}
"""The application options each command reads; another one given is refused (``magnify --k 3`` without ``--mode
scale`` ran the NLT blend, which has no k, and said nothing)."""


def unread_option(args: argparse.Namespace) -> str | None:
    """One line naming an option ``args.command`` does not read (given explicitly), else None."""
    command = parse_choice(App, args.command, "command")
    flags = {"lam_max": "--lam-max", "mode": "--mode", "k": "--k", "soft": "--soft"}
    for key, flag in flags.items():
        if getattr(args, key) is not None and key not in READS[command]:
            users = [a.value for a, keys in READS.items() if key in keys]
            return f"{flag}: {command.value} does not read it (only {' / '.join(users)} does)"
    if command is App.MAGNIFY and args.k is not None and args.mode != MagnifyMode.SCALE.value:
        return f"--k {args.k:g}: read by magnify --mode scale only (the default mode, sdof, has no k); add --mode scale"
    return None


EXAMPLE = ("galetto-apps enhance ../shared/data/xu100/source/1.bmp --out runs/galetto_apps_example/enhanced.png "
           "--set stride=16")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    ap = cli.parser("dmenet.galetto.apps_cli", __doc__, EXAMPLE)
    ap.add_argument("command", choices=choices(App))
    ap.add_argument("inputs", nargs="+", help="image (enhance, magnify) or frames / one folder (fuse)")
    ap.add_argument("--out", required=True, help="result image (.png / .jpg); the report goes beside it")
    dcli.add_method(ap, default="galetto")
    dcli.add_model(ap, help="model file of a learned method (default: the method's shipped one)")
    cli.add_set(ap, help="method options, e.g. --set stride=16 refine=none (as --method galetto:stride=16,…)")
    cli.add_device(ap)
    cli.add_threads(ap)
    dcli.add_max_side(ap)  # the σ map of a camera photo at full size took minutes; the application runs at full size
    ap.add_argument("--lam-max", type=cli.non_negative_float, default=None,
                    help="enhance: largest unsharp-masking gain λmax (finite >= 0, 0 = the photo unchanged; default "
                    "and paper 2)")
    ap.add_argument("--mode", choices=choices(MagnifyMode), default=None,
                    help="magnify: NLT blend or true x k (default sdof)")
    ap.add_argument("--k", type=magnification, default=None,
                    help=f"magnify --mode scale: σ_out = k σ_in (1 <= k <= {K_MAX:g}; default 2)")
    ap.add_argument("--soft", type=cli.positive_float, default=None, metavar="TAU",
                    help="fuse: soft weights exp(-σ/τ) instead of decisions (τ px, finite > 0)")
    args = ap.parse_args(argv)
    problem = unread_option(args)
    if problem:
        return cli.fail(problem)
    args.lam_max = 2.0 if args.lam_max is None else args.lam_max
    args.mode = MagnifyMode.SDOF.value if args.mode is None else args.mode
    args.k = 2.0 if args.k is None else args.k
    cli.prepare_process(args)
    if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        return cli.fail(f"{args.out}: --out must end in .png, .jpg or .jpeg")
    run(args)  # bad input: UsageError / InputError / OSError → exit 2
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
