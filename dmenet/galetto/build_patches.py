"""Build the classifier's patch sets from the BSDS500 photos (``python -m dmenet.galetto.build_patches``).

* train / val: sharp windows of the BSDS500 *train + val* photos, split image-disjointly by a seeded rule written
  to ``OUT/split.json`` before any patch is made (a photo goes to val when its place in a seeded permutation of the
  sorted stems falls in the first ``val_fraction``);
* test: sharp windows of the BSDS500 *test* photos (the sources of the synthetic test / validation renders; never
  trained on), a fixed-seed subsample of ``test_count`` (position, σ) pairs.

Outputs (under ``--out``, each written atomically): ``split.json``, ``train.npz`` and ``val.npz`` (patches
(N, 20, 32, 32) uint8, stem, y, x), ``test.npz`` (patches (M, 32, 32) uint8, label (M,) int64, stem, y, x).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmenet.galetto import NUM_CLASSES
from dmenet.galetto.patches import labelled_patches, sharp_positions, to_gray255
from syndof import cli
from syndof.io import InputError, atomic_path, list_images, read_image, write_json_atomic


def split_stems(stems: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Image-disjoint (train, val) stems: a seeded permutation of the sorted stems, the first fraction is val."""
    stems = sorted(stems)
    order = np.random.default_rng(seed).permutation(len(stems))
    n_val = int(round(val_fraction * len(stems)))
    val = sorted(stems[i] for i in order[:n_val])
    return sorted(set(stems) - set(val)), val


def patches_of(paths: list[Path], stride: int, phi: float, smooth_sigma: float, blur: str) -> dict[str, np.ndarray]:
    """All labelled sharp patches of ``paths`` as arrays (patches, stem, y, x)."""
    parts, stems, ys, xs = [], [], [], []
    for path in paths:
        gray = to_gray255(read_image(path))
        pos = sharp_positions(gray, stride, phi, smooth_sigma)
        parts.append(labelled_patches(gray, pos, blur))
        stems += [path.stem] * len(pos)
        ys.append(pos[:, 0])
        xs.append(pos[:, 1])
    return {"patches": np.concatenate(parts), "stem": np.array(stems), "y": np.concatenate(ys).astype(np.int32),
            "x": np.concatenate(xs).astype(np.int32)}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def subsample_test(arrays: dict[str, np.ndarray], count: int, seed: int) -> dict[str, np.ndarray]:
    """A fixed-seed sample of ``count`` (position, σ) pairs, balanced over σ (count // 20 per class)."""
    rng = np.random.default_rng(seed)
    n = len(arrays["stem"])
    per = count // NUM_CLASSES
    idx = np.concatenate([rng.choice(n, per, replace=per > n) for _ in range(NUM_CLASSES)])
    label = np.repeat(np.arange(NUM_CLASSES), per)
    return {"patches": arrays["patches"][idx, label], "label": label.astype(np.int64), "stem": arrays["stem"][idx],
            "y": arrays["y"][idx], "x": arrays["x"][idx]}


EXAMPLE = ("galetto-build-patches --photos ../shared/data/photos/bsds500 --out runs/galetto_patches_example "
           "--limit 4 --stride 64 --test-count 40")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("dmenet.galetto.build_patches", __doc__, EXAMPLE)
    ap.add_argument("--photos", required=True, help="BSDS500 folder with train/ val/ test/")
    ap.add_argument("--out", required=True, help="output folder (split.json, train.npz, val.npz, test.npz)")
    ap.add_argument("--stride", type=cli.positive_int, default=32, help="window stride (px)")
    ap.add_argument("--phi", type=float, default=1000.0, help="sharpness threshold on the 0-255 scale")
    ap.add_argument("--smooth-sigma", type=float, default=0.5)
    ap.add_argument("--blur", choices=("context", "isolated"), default="context")
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--test-count", type=cli.positive_int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=cli.positive_int, default=None, help="use the first N photos of each folder")
    args = ap.parse_args(argv)
    root, out = Path(args.photos), Path(args.out)
    pool = list_images(root / "train") + list_images(root / "val")  # a missing folder: InputError → exit 2
    test = list_images(root / "test")
    if args.limit:
        pool, test = pool[: args.limit], test[: args.limit]
    if not pool or not test:
        return cli.fail(f"{root}: no photos in train/val or test")
    by_stem = {p.stem: p for p in pool}
    train, val = split_stems(list(by_stem), args.val_fraction, args.seed)
    settings = {k: getattr(args, k) for k in ("stride", "phi", "smooth_sigma", "blur", "val_fraction", "test_count",
                                              "seed")}
    write_json_atomic(out / "split.json", {"rule": "seeded permutation of sorted train+val stems; first "
                                           "val_fraction -> val; BSDS test photos -> test", **settings,
                                           "train": train, "val": val, "test": sorted(p.stem for p in test)})
    for name, stems in (("train", train), ("val", val)):
        arrays = patches_of([by_stem[s] for s in stems], args.stride, args.phi, args.smooth_sigma, args.blur)
        save_npz(out / f"{name}.npz", arrays)
        print(f"{name}: {len(arrays['stem'])} sharp positions from {len(stems)} photos", flush=True)
    arrays = patches_of(test, args.stride, args.phi, args.smooth_sigma, args.blur)
    save_npz(out / "test.npz", subsample_test(arrays, args.test_count, args.seed))
    print(f"test: {len(arrays['stem'])} sharp positions from {len(test)} photos -> {args.test_count} patches")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
