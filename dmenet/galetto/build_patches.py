"""Build the classifier's patch sets from the BSDS500 photos (``python -m dmenet.galetto.build_patches``).

* train / val: sharp windows of the BSDS500 *train + val* photos, split image-disjointly by a seeded rule written
  to ``OUT/split.json`` before any patch is made (a photo goes to val when its place in a seeded permutation of the
  sorted stems falls in the first ``val_fraction``);
* test: sharp windows of the BSDS500 *test* photos (the sources of the synthetic test / validation renders; never
  trained on), a fixed-seed subsample of ``test_count`` (position, σ) pairs.
* syndof test (``--syndof RENDERS --sources PHOTOS``, instead of the three above): 32×32 windows of SYNDOF renders
  (layered, occlusion-filled: not a uniform blur) whose ground-truth σ is nearly constant (max − min ≤
  ``--max-range`` px) and whose window in the sharp source photo passes the same sharpness test. Label =
  round(mean σ). It measures the shift from the uniform-blur patches the classifier trains on to real renders.
  ``--limit N`` takes the first N renders (sorted); the photo-only options (``--photos``, ``--test-count``,
  ``--val-fraction``, ``--seed``, ``--blur``) are refused with it, as ``--sources`` and ``--max-range`` are without it.

A photo that cannot give a patch (unreadable, empty, truncated, not an image, an image name where no file can be
read: a symbolic link loop or to nothing, a FIFO; or smaller than one 32×32 window) is skipped with one line
``skipped PATH: reason`` on stderr before the split is drawn, so the split and the set are those of the usable photos
(listed with their reasons under ``skipped`` in ``split.json``); with no usable photo left in train/val or test the
command refuses (exit 2, nothing written). ``--syndof`` does the same with its renders:
one whose render, σ map or source photo cannot be read, or whose three differ in size, is skipped with one line and
listed under ``skipped`` in ``syndof_test.json``; a render without its σ map, meta file or source photo (a wrong
folder, not a damaged file) is refused before any image is read, as is an ``--out`` that cannot be written.

Outputs (under ``--out``): ``split.json``, ``train.npz`` and ``val.npz`` (patches (N, 20, 32, 32) uint8, stem, y,
x), ``test.npz`` (patches (M, 32, 32) uint8, label (M,) int64, stem, y, x); ``syndof_test.npz`` has the test layout
plus ``sigma`` (M,) float32, the window's mean ground-truth σ in px, and ``syndof_test.json`` beside it its settings,
the renders that gave windows and the skipped ones (written together with it, as one set).

A set is written once and whole: ``--out`` must be missing or an empty folder (an earlier set is never replaced),
the four files are built in a hidden sibling folder renamed to ``--out`` at the end, and that folder is removed on
any failure, Ctrl-C or SIGTERM, so ``--out`` holds a whole set or nothing. Options are checked before any patch is
made: ``--val-fraction`` must give train and val at least one photo each (0 < round(fraction × photos) < photos),
``--test-count`` must be a multiple of 20 (the balanced test sample holds test_count / 20 patches per class).
``--syndof`` may write into an existing folder (beside a patch set) but never replaces a ``syndof_test.npz`` or
``syndof_test.json``.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

from dmenet.galetto import NUM_CLASSES, PATCH
from dmenet.galetto.patches import PatchBlur, labelled_patches, sharp_positions, to_gray255
from syndof import cli
from syndof.choices import choices
from syndof.io import (InputError, atomic_path, image_entries, index_by_stem, read_image, read_json_object,
                       read_sigma_map, staged_folder, write_json_atomic, write_set_atomic)


def split_stems(stems: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Image-disjoint (train, val) stems: a seeded permutation of the sorted stems, the first fraction is val."""
    stems = sorted(stems)
    order = np.random.default_rng(seed).permutation(len(stems))
    n_val = int(round(val_fraction * len(stems)))
    val = sorted(stems[i] for i in order[:n_val])
    return sorted(set(stems) - set(val)), val


def usable_photos(paths: list[Path]) -> tuple[list[Path], dict[str, str]]:
    """The photos of ``paths`` that can give a patch, in order, and ``{path: reason}`` of the others: each is read here
    (again when its patches are made), and one that is unreadable (:func:`~syndof.io.read_image`'s InputError: empty,
    truncated, not an image …) or smaller than one PATCH×PATCH window is skipped with one line ``skipped PATH:
    reason`` on stderr."""
    usable, skipped = [], {}
    for path in paths:
        try:
            h, w = read_image(path).shape[:2]
        except InputError as exc:
            reason = exc.problem
        except OSError as exc:  # e.g. no permission to read it
            reason = exc.strerror or type(exc).__name__
        else:
            if h >= PATCH and w >= PATCH:
                usable.append(path)
                continue
            reason = f"{w}x{h} px, smaller than one {PATCH}x{PATCH} window"
        skipped[str(path)] = reason
        print(f"skipped {path}: {reason}", file=sys.stderr, flush=True)
    return usable, skipped


def patches_of(paths: list[Path], stride: int, phi: float, smooth_sigma: float,
               blur: PatchBlur | str) -> dict[str, np.ndarray]:
    """All labelled sharp patches of ``paths`` (photos :func:`usable_photos` has read, and warned of when animated:
    not again here, one warning per photo per run) as arrays (patches, stem, y, x): ``patches`` (N, 20, 32, 32)
    uint8 gray levels 0–255, index k blurred by Gaussian σ = k px (:func:`~dmenet.galetto.patches.labelled_patches`),
    ``stem`` (N,) str the photo's stem, ``y``, ``x`` (N,) int32 top-left corners in px."""
    parts, stems, ys, xs = [], [], [], []
    for path in paths:
        gray = to_gray255(read_image(path, note_frames=False))
        pos = sharp_positions(gray, stride, phi, smooth_sigma)
        parts.append(labelled_patches(gray, pos, blur))
        stems += [path.stem] * len(pos)
        ys.append(pos[:, 0])
        xs.append(pos[:, 1])
    return {"patches": np.concatenate(parts), "stem": np.array(stems), "y": np.concatenate(ys).astype(np.int32),
            "x": np.concatenate(xs).astype(np.int32)}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (any shapes and dtypes, values as they are: :func:`npz_bytes`'s layout) to the uncompressed
    ``.npz`` file ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def subsample_test(arrays: dict[str, np.ndarray], count: int, seed: int) -> dict[str, np.ndarray]:
    """A fixed-seed sample of ``count`` (position, σ) pairs, balanced over σ (count // 20 per class): from
    :func:`patches_of`'s arrays (N positions) → ``patches`` (20·per, 32, 32) uint8 gray 0–255, ``label`` (20·per,)
    int64 class = σ px 0…19 (class-major), ``stem``, ``y``, ``x`` of each; with replacement only when per > N."""
    rng = np.random.default_rng(seed)
    n = len(arrays["stem"])
    per = count // NUM_CLASSES
    idx = np.concatenate([rng.choice(n, per, replace=per > n) for _ in range(NUM_CLASSES)])
    label = np.repeat(np.arange(NUM_CLASSES), per)
    return {"patches": arrays["patches"][idx, label], "label": label.astype(np.int64), "stem": arrays["stem"][idx],
            "y": arrays["y"][idx], "x": arrays["x"][idx]}


def render_windows(render: np.ndarray, source: np.ndarray, sigma: np.ndarray, stride: int = PATCH,
                   phi: float = 1000.0, smooth_sigma: float = 0.5, max_range: float = 0.5) -> dict[str, np.ndarray]:
    """Windows of one SYNDOF render with nearly constant ground-truth σ, at the source's sharp positions.

    Args:
        render: (H, W, 3) float RGB in [0, 1], the rendered (blurred) image.
        source: (H, W, 3) float RGB in [0, 1], its sharp source photo (same size): the sharpness test runs here,
            as for the uniform-blur patches.
        sigma: (H, W) ground-truth Gaussian σ in px of ``render``.
        stride, phi, smooth_sigma: the sharpness test (:func:`~dmenet.galetto.patches.sharp_positions`).
        max_range: keep a window only if max σ − min σ over it is at most this (px).

    Returns:
        ``patches`` (M, 32, 32) uint8 gray of the render (0–255, rounded), ``label`` (M,) int64 = round(mean σ)
        clipped to the classifier's 0…19, ``sigma`` (M,) float32 mean σ px, ``y``, ``x`` (M,) int32 corners.
    """
    if render.shape != source.shape or render.shape[:2] != sigma.shape:
        raise ValueError(f"render {render.shape[:2]}, source {source.shape[:2]} and σ map {sigma.shape} differ in "
                         "size")
    pos = sharp_positions(to_gray255(source), stride, phi, smooth_sigma)
    win = np.lib.stride_tricks.sliding_window_view(sigma, (PATCH, PATCH))
    keep = [(y, x) for y, x in pos if np.ptp(win[y, x]) <= max_range]
    gray = to_gray255(render).round().clamp(0, 255).to(torch.uint8).numpy()
    ys = np.array([y for y, _ in keep], np.int32)
    xs = np.array([x for _, x in keep], np.int32)
    mean = np.array([win[y, x].mean() for y, x in keep], np.float32)
    return {"patches": np.stack([gray[y:y + PATCH, x:x + PATCH] for y, x in keep]) if keep
            else np.empty((0, PATCH, PATCH), np.uint8),
            "label": np.clip(np.round(mean), 0, NUM_CLASSES - 1).astype(np.int64), "sigma": mean, "y": ys, "x": xs}


def syndof_inputs(renders: Path, sources: Path, limit: int | None = None) -> list[tuple[str, Path, Path, Path]]:
    """``(stem, render, σ map, source photo)`` of the first ``limit`` renders (all: None; sorted by stem) of a SYNDOF
    folder (``image/``, ``blur_map/``, ``meta/``), the source found as ``sources/<meta source_name>.*``. Reads the meta
    files, no image. ``stem`` is the render's own (its case kept: ``meta/STEM.json`` is read, and the stem recorded).

    Raises:
        InputError: a missing folder, no render, or naming the first render without its σ map or meta file, or the
            meta file whose source photo is not in ``sources``.
    """
    from dmenet.eval.syndof_test import sigma_map_pairs

    pairs = sigma_map_pairs(renders, limit)
    photos = index_by_stem(sources)
    rows = []
    for _, path, sigma_map in pairs:  # the pairing's lower-case key: meta/ and the records take the render's stem
        stem = path.stem  # meta/000001_Alley.json was "render without its meta/ file" (reliability.md §50)
        meta_path = renders / "meta" / f"{stem}.json"
        if not meta_path.is_file():
            raise InputError(path, "render without its meta/ file")
        name = str(read_json_object(meta_path).get("source_name", ""))
        if name.lower() not in photos:  # index_by_stem keys are lower-case
            raise InputError(meta_path, f"source photo {name!r} not found in {sources}")
        rows.append((stem, path, sigma_map, photos[name.lower()]))
    return rows


def windows_or_reason(render: Path, sigma_map: Path, source: Path, stride: int, phi: float, smooth_sigma: float,
                      max_range: float) -> dict[str, np.ndarray] | str:
    """:func:`render_windows` of one render read from its files, or why it cannot give any (one line: an unreadable
    file, named, or sizes that differ)."""
    try:
        return render_windows(read_image(render), read_image(source), read_sigma_map(sigma_map), stride, phi,
                              smooth_sigma, max_range)
    except InputError as exc:  # names its file: the render, its σ map or its source photo
        return exc.reason_for(render)
    except OSError as exc:  # e.g. no permission to read it
        return cli.error_line(exc)
    except ValueError as exc:  # render_windows: sizes that differ
        return str(exc)


def syndof_test(renders: Path, sources: Path, stride: int, phi: float, smooth_sigma: float, max_range: float,
                limit: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """:func:`render_windows` of the renders of :func:`syndof_inputs`: arrays concatenated with a ``stem`` column (the
    render's stem; ``patches`` (M, 32, 32) uint8 gray 0–255, ``label`` (M,) int64 σ class 0…19, ``sigma`` (M,)
    float32 mean σ px, ``y``, ``x`` (M,) int32 corners px, ``stem`` (M,) str), and ``{render path: reason}`` of
    the renders skipped (one line ``skipped PATH: reason`` each on stderr, as photo mode does: an unreadable render,
    σ map or source photo, or sizes that differ).

    Raises:
        InputError: as :func:`syndof_inputs`, or when every render was skipped (the first one named).
    """
    parts, skipped = [], {}
    for stem, path, sigma_map, source in syndof_inputs(renders, sources, limit):
        arrays = windows_or_reason(path, sigma_map, source, stride, phi, smooth_sigma, max_range)
        if isinstance(arrays, str):
            skipped[str(path)] = arrays
            print(f"skipped {path}: {arrays}", file=sys.stderr, flush=True)
            continue
        arrays["stem"] = np.array([stem] * len(arrays["y"]))
        parts.append(arrays)
    if not parts:
        first, reason = next(iter(skipped.items()))
        raise InputError(renders, f"no usable render ({len(skipped)} skipped, the first {first}: {reason}; nothing "
                         "was written)")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, skipped


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` (any shapes and dtypes, values as they are) as the bytes of an uncompressed ``.npz``
    (:func:`numpy.savez`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


PHOTO_DEFAULTS = {"blur": PatchBlur.CONTEXT.value, "val_fraction": 0.15, "test_count": 20000, "seed": 0}
"""Photo-mode options and their defaults (None on the command line = not given: refused with ``--syndof``)."""
SYNDOF_DEFAULTS = {"max_range": 0.5}
"""``--syndof`` options with defaults (refused without it, as is ``--sources``)."""


def mode_problem(args) -> str | None:
    """One line naming an option the chosen mode (``--syndof`` or photos) would ignore, else None."""
    if args.syndof is not None:
        given = [f"--{k.replace('_', '-')}" for k in ("photos", *PHOTO_DEFAULTS) if getattr(args, k) is not None]
        if given:
            return (f"{', '.join(given)}: not used with --syndof (it builds syndof_test.npz from the renders; "
                    "--limit takes the first N renders)")
        return None if args.sources is not None else "--syndof needs --sources (the renders' sharp source photos)"
    given = [f"--{k.replace('_', '-')}" for k in ("sources", *SYNDOF_DEFAULTS) if getattr(args, k) is not None]
    if given:
        return f"{', '.join(given)}: only used with --syndof RENDERS"
    return None if args.photos is not None else "give --photos (BSDS500 folder) or --syndof RENDERS --sources PHOTOS"


def build_syndof(args) -> int:
    """The ``--syndof`` mode of :func:`main`: ``syndof_test.npz`` + ``syndof_test.json`` in ``--out``, as one set."""
    out = Path(args.out)
    targets = [out / "syndof_test.npz", out / "syndof_test.json"]
    existing = [t.name for t in targets if t.exists() or t.is_symlink()]
    if existing:
        return cli.fail(f"--out {out}: exists; {' and '.join(existing)} already there (choose another --out, or "
                        "delete it knowingly to rebuild; nothing was changed)")
    problem = cli.folder_to_write_problem(out, f"--out {out}")
    if problem:  # before any render is read
        return cli.fail(problem)
    max_range = SYNDOF_DEFAULTS["max_range"] if args.max_range is None else args.max_range
    arrays, skipped = syndof_test(args.syndof, args.sources, args.stride, args.phi, args.smooth_sigma, max_range,
                                  args.limit)
    if len(arrays["label"]) == 0:  # an empty test set would score nothing: refused, as photo mode does
        return cli.fail(f"--syndof {args.syndof}: no window of its renders passes the sharpness test (--phi "
                        f"{args.phi:g}, --stride {args.stride}) with a ground-truth σ range <= --max-range "
                        f"{max_range:g} px (nothing was written)")
    stems = sorted(set(arrays["stem"].tolist()))
    record = {"renders": str(args.syndof), "sources": str(args.sources), "stride": args.stride, "phi": args.phi,
              "smooth_sigma": args.smooth_sigma, "max_range": max_range, "limit": args.limit, "with_windows": stems,
              "skipped": skipped}
    write_set_atomic({targets[0]: npz_bytes(arrays),
                      targets[1]: (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")})
    counts = np.bincount(arrays["label"], minlength=NUM_CLASSES)
    print(f"syndof test: {len(arrays['label'])} windows of {len(stems)} renders "
          f"(σ range ≤ {max_range:g} px; {len(skipped)} skipped); per class {counts[counts > 0].tolist()} for σ "
          f"{np.flatnonzero(counts).tolist()}")
    return 0


EXAMPLE = ("galetto-build-patches --photos ../shared/data/photos/bsds500 --out runs/galetto_patches_example "
           "--limit 4 --stride 64 --test-count 40")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    ap = cli.parser("dmenet.galetto.build_patches", __doc__, EXAMPLE)
    ap.add_argument("--photos", help="BSDS500 folder with train/ val/ test/")
    ap.add_argument("--syndof", type=Path, metavar="RENDERS",
                    help="instead: build syndof_test.npz from this SYNDOF folder (needs --sources)")
    ap.add_argument("--sources", type=Path, help="--syndof: folder of the renders' sharp source photos")
    ap.add_argument("--max-range", type=cli.non_negative_float, default=None,
                    help="--syndof: keep windows whose ground-truth σ varies by at most this (px; default 0.5)")
    ap.add_argument("--out", required=True, help="output folder (split.json, train.npz, val.npz, test.npz)")
    ap.add_argument("--stride", type=cli.positive_int, default=32, help="window stride (px; default 32)")
    ap.add_argument("--phi", type=cli.non_negative_float, default=1000.0,
                    help="sharpness threshold: a 32x32 window is kept when the variance of its Laplacian "
                    "(gray 0-255, after --smooth-sigma) exceeds it (default 1000; camera-size photos are smooth "
                    "per pixel: downscale them or lower it)")
    ap.add_argument("--smooth-sigma", type=cli.non_negative_float, default=0.5,
                    help="σ of the 3x3 Gaussian before the Laplacian (px; 0 = none)")
    ap.add_argument("--blur", choices=choices(PatchBlur), default=None,
                    help=f"patch blur (default {PHOTO_DEFAULTS['blur']})")
    ap.add_argument("--val-fraction", type=float, default=None,
                    help=f"share of train+val photos for val (default {PHOTO_DEFAULTS['val_fraction']})")
    ap.add_argument("--test-count", type=cli.positive_int, default=None,
                    help=f"test patches (default {PHOTO_DEFAULTS['test_count']})")
    cli.add_seed(ap, default=None, default_text=str(PHOTO_DEFAULTS["seed"]),
                 use="draws the train/val split and the test sample")
    ap.add_argument("--limit", type=cli.positive_int, default=None,
                    help="use the first N photos of each folder (--syndof: the first N renders)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    problem = mode_problem(args)
    if problem:
        return cli.fail(problem)
    if args.syndof is not None:
        return build_syndof(args)
    for key, value in PHOTO_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    problem = cli.new_folder_problem(out, "build_patches writes a whole new set")
    if problem:
        return cli.fail(problem)
    if args.test_count % NUM_CLASSES:
        return cli.fail(f"--test-count {args.test_count}: must be a multiple of {NUM_CLASSES} (the test sample holds "
                        f"test_count / {NUM_CLASSES} patches of each class)")
    if not 0.0 < args.val_fraction < 1.0:  # NaN too
        return cli.fail(f"--val-fraction {args.val_fraction:g}: must be between 0 and 1 (exclusive)")
    root = Path(args.photos)
    missing = [f"{part}/" for part in ("train", "val", "test") if not (root / part).is_dir()]
    if root.is_dir() and missing:  # a flat folder of one's own photos: say which layout is wanted
        return cli.fail(f"--photos {root}: has no {', '.join(missing)} sub-folder; it needs train/, val/ and test/ "
                        "as BSDS500 (train/ + val/ photos give the train and val patches, test/ the test patches)")
    # a missing folder: InputError → exit 2; an image name where no file can be read (a link loop or to nothing, a
    # FIFO) is kept for usable_photos to skip with its reason, as a damaged photo is (it was left out unsaid)
    pool = image_entries(root / "train") + image_entries(root / "val")
    test = image_entries(root / "test")
    if args.limit:
        pool, test = pool[: args.limit], test[: args.limit]
    if not pool or not test:
        return cli.fail(f"{root}: no photos in train/val or test")
    if len({p.stem for p in pool}) != len(pool):
        return cli.fail(f"{root}: the same photo name in train/ and val/ (the split pairs photos by name)")
    # a photo that cannot give a patch is skipped (one line each) before the split: split and set are the usable ones'
    pool, skipped = usable_photos(pool)
    test, skipped_test = usable_photos(test)
    skipped.update(skipped_test)
    if not pool or not test:
        return cli.fail(f"{root}: no usable photo left in {'train/val' if not pool else 'test'} ({len(skipped)} "
                        "skipped; nothing was written)")
    shared = sorted({p.stem for p in pool} & {p.stem for p in test})  # usable ones: a skipped photo gives no patch
    if shared:
        first = next(p for p in test if p.stem == shared[0])
        return cli.fail(f"{first}: also in train/ or val/ ({len(shared)} test photo name(s) "
                        "shared); the test photos are never trained on, so each must be a photo of its own")
    by_stem = {p.stem: p for p in pool}
    n_val = int(round(args.val_fraction * len(by_stem)))
    if not 0 < n_val < len(by_stem):
        return cli.fail(f"--val-fraction {args.val_fraction:g}: gives {n_val} of {len(by_stem)} photos to val; train "
                        "and val each need at least one (change it or --limit)")
    train, val = split_stems(list(by_stem), args.val_fraction, args.seed)
    settings = {k: getattr(args, k) for k in ("stride", "phi", "smooth_sigma", "blur", "val_fraction", "test_count",
                                              "seed")}
    with staged_folder(out) as stage:  # all or nothing: removed on any failure, Ctrl-C or SIGTERM
        write_json_atomic(stage / "split.json", {"rule": "seeded permutation of sorted train+val stems; first "
                                                 "val_fraction -> val; BSDS test photos -> test", **settings,
                                                 "train": train, "val": val, "test": sorted(p.stem for p in test),
                                                 "skipped": skipped})
        for name, stems in (("train", train), ("val", val)):
            arrays = patches_of([by_stem[s] for s in stems], args.stride, args.phi, args.smooth_sigma, args.blur)
            _need_positions(arrays, root, name, args)
            save_npz(stage / f"{name}.npz", arrays)
            print(f"{name}: {len(arrays['stem'])} sharp positions from {len(stems)} photos", flush=True)
        arrays = patches_of(test, args.stride, args.phi, args.smooth_sigma, args.blur)
        _need_positions(arrays, root, "test", args)
        save_npz(stage / "test.npz", subsample_test(arrays, args.test_count, args.seed))
    print(f"test: {len(arrays['stem'])} sharp positions from {len(test)} photos -> {args.test_count} patches; "
          f"set written to {out}")
    return 0


def _need_positions(arrays: dict[str, np.ndarray], root: Path, name: str, args) -> None:
    """A set with no patch in one part would not train or test: InputError (the staged set is dropped)."""
    if len(arrays["stem"]) == 0:
        raise InputError(root, f"no sharp position in the {name} photos at --phi {args.phi:g} --stride "
                         f"{args.stride} (lower --phi; nothing was written)")


if __name__ == "__main__":
    raise SystemExit(main())
