"""Write the fixed, seeded train / validation split of the CUHK defocus training images (once, never rewritten).

The five images of ``cuhk/image/`` (reported as a test) are excluded from both parts
(:func:`dmenet.distill.split.make_split`); each list's first line, a ``#`` comment, says so.

    python experiments/distill/split.py --images ../shared/data/cuhk/train_image --out experiments/distill/cuhk_split

``--glob`` picks other photos (default ``out_of_focus*.jpg``, CUHK's defocus set), e.g. ``--glob '*.png'`` for the
``image/`` folder of a ``python -m syndof.generate`` data set (docs/distill.md, "Training on your own data"). There,
every render of one source photo goes to the same part (:func:`render_sources`): renders of one photo differ only in
camera and blur, so one in validation beside another in training would score (and select, and calibrate) the model
on a photo it was trained on. Nothing is excluded there (:func:`dmenet.distill.split.make_group_split`), and the
lists' comment line says that instead.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dmenet.distill.split import make_group_split, make_split
from syndof import cli
from syndof.io import InputError, read_json_object, write_set_atomic

DEFAULT_GLOB = "out_of_focus*.jpg"
EXAMPLE = ("python experiments/distill/split.py --images ../shared/data/cuhk/train_image "
           "--out runs/distill_split_example/cuhk_split")


def render_sources(images: Path, stems: list[str]) -> dict[str, list[str]] | None:
    """``{source photo: [render stems]}`` when ``images`` is the ``image/`` folder of a ``syndof.generate`` data set
    (``dataset.json`` beside it), else None. A render's source is the SHA-256 of its photo (``meta/STEM.json``
    ``source_sha256``: the same photo under two names is one source), or for a built-in source, which records none,
    its name (a procedural slot, a new scene each render, then counts as one source: conservative). A render
    without the SHA-256 (written before 6 Dec 2026, in a folder a later ``generate`` extended) takes the SHA-256
    another render of its source name records, so an older and a newer render of one photo are one source; when
    renders of that name record two photos, which one it shows is unknown, and all their renders are one source.
    ``images`` is resolved first (``--images .`` from inside ``image/``, a link to it). InputError when a render has
    no readable meta file."""
    images = images.resolve()
    root = images.parent
    if images.name != "image" or not (root / "dataset.json").is_file():
        return None
    if not (root / "meta").is_dir():  # e.g. a scaled_syndof.py copy: dataset.json, image/, blur_map/ only
        raise InputError(root / "meta", "no such folder: the renders of a folder with dataset.json are split by "
                                        "source photo, read from meta/STEM.json; split the syndof.generate folder "
                                        "this one was made from (its lists name the same stems)")
    named: dict[str, tuple[str, str | None]] = {}  # stem -> (source name, the photo's SHA-256 or None)
    for stem in stems:
        meta = read_json_object(root / "meta" / f"{stem}.json")
        recorded = meta.get("source_sha256")
        sha = recorded.get("image") if isinstance(recorded, dict) else None
        name = meta.get("source_name")
        if not isinstance(sha, str) and not isinstance(name, str):
            raise InputError(root / "meta" / f"{stem}.json", "names no source photo (source_sha256 / source_name)")
        named[stem] = (name, sha if isinstance(sha, str) else None)
    shas_of_name: dict[str, set[str]] = {}
    for name, sha in named.values():
        if sha is not None:
            shas_of_name.setdefault(name, set()).add(sha)
    parent: dict[str, str] = {}  # union-find over SHA-256s: photos an older render may show stay together

    def source_of(key: str) -> str:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    for name, sha in named.values():
        if sha is None and len(shas_of_name.get(name, ())) > 1:  # two photos of one name: which one is unknown
            first, *rest = sorted(source_of(k) for k in shas_of_name[name])
            for other in rest:
                parent[other] = first
    groups: dict[str, list[str]] = {}
    for stem, (name, sha) in named.items():
        key = sha or min(shas_of_name.get(name, ()), default=None) or name
        groups.setdefault(source_of(key), []).append(stem)
    return groups


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.script_parser("experiments/distill/split.py", __doc__, EXAMPLE)
    p.add_argument("--images", required=True, help="cuhk/train_image folder (or any folder of labelled photos)")
    p.add_argument("--glob", default=DEFAULT_GLOB, help=f"which files of --images to split, a pattern of names in "
                   f"that folder (default {DEFAULT_GLOB}: CUHK's defocus photos; '*.png' for a syndof.generate "
                   "folder's image/; its renders are split by source photo: see render_sources)")
    p.add_argument("--val-count", type=cli.positive_int, default=60)
    cli.add_seed(p, 20, use="random.Random's (Python seeds with |seed|: -20 drew the split of 20)")
    p.add_argument("--out", required=True, help="prefix: writes PREFIX_train.txt and PREFIX_val.txt")
    a = p.parse_args(argv)
    if "/" in a.glob or "\\" in a.glob:
        return cli.fail(f"--glob {a.glob}: a pattern of file names in --images, without a folder")
    stems = sorted(f.stem for f in Path(a.images).glob(a.glob) if f.is_file())
    if not stems:
        return cli.fail(f"no {a.glob} in {a.images}")
    twice = sorted(s for s, n in Counter(stems).items() if n > 1)
    if twice:
        return cli.fail(f"--glob {a.glob}: {len(twice)} stem(s) name two files in {a.images}, e.g. {twice[0]}; "
                        "photos are paired with their masks by stem")
    for part in ("train", "val"):
        if Path(f"{a.out}_{part}.txt").exists():
            return cli.fail(f"{a.out}_{part}.txt exists; a split is never rewritten")
    groups = render_sources(Path(a.images), stems)
    try:
        train, val = make_split(stems, a.val_count, a.seed) if groups is None else \
            make_group_split(groups, a.val_count, a.seed)
    except ValueError as exc:  # the split's one check; named by the option here
        return cli.fail(f"--val-count {a.val_count}: {exc} ({len(stems)} photos in {a.images})")
    excluded = ("cuhk/image test five excluded" if groups is None else
                f"the renders of each of {len(groups)} source photos on one side, none excluded")
    head = f"# {a.glob} of {a.images}, seed {a.seed}, {excluded}\n"
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    # both parts or neither (one alone would refuse every rerun), never over a file written meanwhile
    write_set_atomic({Path(f"{a.out}_{part}.txt"): (head + "\n".join(listed) + "\n").encode()
                      for part, listed in (("train", train), ("val", val))}, replace=False)
    by_source = "" if groups is None else f" (renders of {len(groups)} source photos, each on one side)"
    print(f"{len(train)} train, {len(val)} val{by_source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
