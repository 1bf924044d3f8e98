"""Write the fixed, seeded train / validation split of the CUHK defocus training images (once, never rewritten).

The five images of ``cuhk/image/`` (reported as a test) are excluded from both parts
(:func:`dmenet.distill.split.make_split`).

    python experiments/distill/split.py --images ../shared/data/cuhk/train_image --out experiments/distill/cuhk_split
"""

from __future__ import annotations

from pathlib import Path

from dmenet.distill.split import make_split
from syndof import cli
from syndof.io import write_text_atomic

EXAMPLE = ("python experiments/distill/split.py --images ../shared/data/cuhk/train_image "
           "--out runs/distill_split_example/cuhk_split")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.parser("split", __doc__, EXAMPLE)
    p.prog = "python experiments/distill/split.py"  # a data-preparation script, not a console script
    p.add_argument("--images", required=True, help="cuhk/train_image folder")
    p.add_argument("--val-count", type=cli.positive_int, default=60)
    cli.add_seed(p, 20, use="random.Random's (Python seeds with |seed|: -20 drew the split of 20)")
    p.add_argument("--out", required=True, help="prefix: writes PREFIX_train.txt and PREFIX_val.txt")
    a = p.parse_args(argv)
    stems = [f.stem for f in Path(a.images).glob("out_of_focus*.jpg")]
    if not stems:
        return cli.fail(f"no out_of_focus*.jpg in {a.images}")
    for part in ("train", "val"):
        if Path(f"{a.out}_{part}.txt").exists():
            return cli.fail(f"{a.out}_{part}.txt exists; a split is never rewritten")
    try:
        train, val = make_split(stems, a.val_count, a.seed)
    except ValueError as exc:  # make_split's one check; named by the option here
        return cli.fail(f"--val-count {a.val_count}: {exc} ({len(stems)} photos in {a.images})")
    head = f"# CUHK defocus training images, seed {a.seed}, cuhk/image test five excluded\n"
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(f"{a.out}_train.txt", head + "\n".join(train) + "\n")
    write_text_atomic(f"{a.out}_val.txt", head + "\n".join(val) + "\n")
    print(f"{len(train)} train, {len(val)} val")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
