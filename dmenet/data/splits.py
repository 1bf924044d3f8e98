"""The fixed train / validation split of the 604 CUHK training images, and its loader (issue 21).

The split is a committed JSON file (``experiments/cuhk_split.json``) written once, before any score, by
:func:`make_split` — so every tool reads the same lists and no image is ever both fitted and scored:

* ``held_out``: stems removed from both subsets — the 5 photos of ``cuhk/image/`` (the project's own small CUHK test)
  and the CUHK ids of the ``xu100`` images (``split_to_cuhk.txt``: CUHK-TE-1, a benchmark test split; they are not
  in ``train_image/``, the exclusion is a guard);
* ``val``: ``n_val`` stems drawn by the seeded rule below from the sorted remaining stems;
* ``train``: every other remaining stem.

Rule: ``pool = sorted(stems − held_out)`` (lower-case stems, sorted as strings);
``order = numpy.random.default_rng(seed).permutation(len(pool))``; ``val = sorted(pool[i] for i in order[:n_val])``.

Usage::

    python -m dmenet.data.splits --shared ../shared --out experiments/cuhk_split.json   # write (refuses to overwrite)
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, TypeVar

import numpy as np

from syndof import cli, io
from syndof.choices import Choice, choices

T = TypeVar("T")

class Subset(Choice):
    """A part of a split file (module docstring)."""

    TRAIN = "train"
    VAL = "val"
    HELD_OUT = "held_out"


SUBSETS = choices(Subset)
RULE = ("pool = sorted(lower-case stems of cuhk/train_image minus held_out); "
        "order = numpy.random.default_rng(seed).permutation(len(pool)); val = sorted(pool[order[:n_val]]); "
        "train = sorted(rest of pool)")
SPLIT_FILE = Path(__file__).resolve().parents[2] / "experiments" / "cuhk_split.json"
"""The committed split (module docstring)."""
SHARP_TEST_LIST = Path(__file__).resolve().parents[2] / "experiments" / "distill" / "bsds_sharp_test.txt"
"""The screened sharp-everywhere BSDS500 *test* photos (one stem a line) whose false blur is reported as a test:
never fitted on."""
DEFAULT_SEED = 21
DEFAULT_N_VAL = 100


def xu100_cuhk_stems(split_to_cuhk: str | Path) -> list[str]:
    """Lower-case CUHK stems of ``xu100/split_to_cuhk.txt`` rows ``k.bmp--out_of_focusNNNN.jpg``."""
    rows = [r.strip() for r in Path(split_to_cuhk).read_text().splitlines() if r.strip()]
    return sorted(Path(r.split("--")[-1]).stem.lower() for r in rows)


def make_split(stems: list[str], held_out: list[str], n_val: int = DEFAULT_N_VAL, seed: int = DEFAULT_SEED) -> dict:
    """The split of ``stems`` by the rule of the module docstring.

    Args:
        stems: image stems (any case; compared and stored lower-case).
        held_out: stems kept out of both subsets (need not be among ``stems``).
    Returns:
        ``{"rule", "seed", "n_val", "train", "val", "held_out"}`` with sorted lower-case lists.
    """
    keys = sorted({s.lower() for s in stems})
    if len(keys) != len(stems):
        raise ValueError("duplicate stems (case-insensitive)")
    held = sorted({s.lower() for s in held_out})
    pool = [s for s in keys if s not in set(held)]
    if not 0 < n_val < len(pool):
        raise ValueError(f"n_val must be in 1..{len(pool) - 1}, got {n_val}")
    order = np.random.default_rng(seed).permutation(len(pool))
    val = sorted(pool[i] for i in order[:n_val])
    train = sorted(set(pool) - set(val))
    return {"rule": RULE, "seed": seed, "n_val": n_val, "train": train, "val": val, "held_out": held}


def check_split(split: dict) -> None:
    """Raise ValueError unless ``split`` is a JSON object whose subsets are present, lists of lower-case string
    stems, sorted, duplicate-free and pairwise disjoint, and ``val`` holds ``n_val`` stems."""
    if not isinstance(split, dict):
        raise ValueError(f"the file must hold a JSON object with {', '.join(SUBSETS)}, not a {type(split).__name__}")
    for name in SUBSETS:
        items = split.get(name)
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise ValueError(f"subset {name!r} must be a list of string stems")
        upper = [s for s in items if s != s.lower()]
        if upper:
            raise ValueError(f"subset {name!r} must hold lower-case stems, got {upper[0]!r}")
        if items != sorted(set(items)):
            raise ValueError(f"subset {name!r} must be a sorted list of unique stems")
    for i, a in enumerate(SUBSETS):
        for b in SUBSETS[i + 1:]:
            both = set(split[a]) & set(split[b])
            if both:
                raise ValueError(f"subsets {a!r} and {b!r} share {len(both)} stem(s), e.g. {sorted(both)[0]}")
    if len(split["val"]) != split.get("n_val"):
        raise ValueError(f"val holds {len(split['val'])} stems, n_val says {split.get('n_val')}")


def load_split(path: str | Path, subset: str) -> list[str]:
    """Sorted lower-case stems of ``subset`` (``train``, ``val`` or ``held_out``) of the split file ``path``.

    Raises:
        InputError: unreadable or non-JSON file, an unknown subset, or a file that fails :func:`check_split` (not an
            object, non-string or upper-case stems, unsorted / repeated / shared stems): the message names the file.
    """
    import json

    path = Path(path)
    if subset not in SUBSETS:
        raise io.InputError(path, f"unknown subset {subset!r}; known: {', '.join(SUBSETS)}")
    try:
        split = json.loads(path.read_text())
        check_split(split)
    except (OSError, ValueError) as exc:
        raise io.InputError(path, f"not a valid split file: {exc}") from None
    return list(split[subset])


def cuhk_split(shared: str | Path, n_val: int = DEFAULT_N_VAL, seed: int = DEFAULT_SEED) -> dict:
    """:func:`make_split` of ``shared/data/cuhk/train_image`` with the 5 ``cuhk/image`` stems and the xu100 CUHK
    ids held out; records where the lists came from.

    Raises:
        InputError: a missing folder, or either folder holding an image name where no file can be read (a symbolic
            link loop or to nothing, a FIFO: :func:`syndof.io.unlisted_images`; the first named). Refused, not
            skipped: the split is written once and trusted by every tool, and a stem left out of ``train_image``
            changes the seeded validation draw, one left out of ``image`` is no longer held out (``train_image``
            holds those photos too) and would be fitted on.
    """
    data = Path(shared) / "data"
    # each folder walked once: the stems drawn and the names refused come from one listing (two could disagree)
    listed = {folder: io.list_images_and_unlisted(folder)
              for folder in (data / "cuhk" / "train_image", data / "cuhk" / "image")}
    (train_files, _), (small_files, _) = listed.values()
    stems = [p.stem for p in train_files]
    small_test = [p.stem for p in small_files]
    for folder, (_, unlisted) in listed.items():
        if unlisted:
            raise io.InputError(folder, f"a split lists every image here{io.unlisted_note(unlisted)}: restore each, "
                                        "or remove its name knowingly")
    xu100 = xu100_cuhk_stems(data / "xu100" / "split_to_cuhk.txt")
    split = make_split(stems, small_test + xu100, n_val, seed)
    split["source"] = {"images": "data/cuhk/train_image (604 CUHK defocus training images)", "masks": "data/cuhk/gt",
                       "gt_polarity": "white-blurred",
                       "held_out": "data/cuhk/image (5, the project's small CUHK test) + the CUHK ids of "
                                   "data/xu100/split_to_cuhk.txt (CUHK-TE-1)",
                       "n_images": len(stems)}
    return split


EXAMPLE = "dmenet-splits --shared ../shared --out runs/splits_example.json"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    p = cli.parser("dmenet.data.splits", __doc__, EXAMPLE)
    p.add_argument("--shared", type=Path, default=Path("../shared"), help="the shared folder (data/cuhk, data/xu100)")
    p.add_argument("--out", type=Path, required=True, help="split file to write (.json; never overwritten)")
    p.add_argument("--n-val", type=cli.positive_int, default=DEFAULT_N_VAL, help="validation images")
    cli.add_seed(p, default=DEFAULT_SEED, use="draws the validation images")  # -3: NumPy's line named no option
    args = p.parse_args(argv)
    if args.out.exists() or args.out.is_symlink():  # a dangling link was replaced by the file
        return cli.fail(f"{args.out}: exists; a split is written once (delete it knowingly to redo)")
    split = cuhk_split(args.shared, args.n_val, args.seed)  # bad input: InputError / ValueError → exit 2
    io.write_json_atomic(args.out, split)
    print(f"{args.out}: train {len(split['train'])}, val {len(split['val'])}, held out {len(split['held_out'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def held_out_stems() -> set[str]:
    """Lower-case stems a fit never reads: the ``held_out`` list of the committed split (:data:`SPLIT_FILE`: the 5
    CUHK test photos of ``cuhk/image``, which ``cuhk/train_image`` also holds, and the CUHK ids of CUHK-TE-1)."""
    return set(load_split(SPLIT_FILE, Subset.HELD_OUT.value))


def held_out_among(items: Iterable[T]) -> list[T]:
    """The ``items`` (paths, or anything with a ``stem``: samples) whose stem, case-insensitive, is a held-out test
    photo (:func:`held_out_stems`), in their order: what a fit must refuse before it reads anything."""
    held_out = held_out_stems()
    return [item for item in items if item.stem.lower() in held_out]
