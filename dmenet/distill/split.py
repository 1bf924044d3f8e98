"""Fixed, seeded train / validation split of the CUHK defocus training images (written once, never rewritten).

The five images of ``cuhk/image/`` (reported as a test) are excluded from both parts.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from syndof.io import write_text_atomic

CUHK_TEST5 = ("out_of_focus0011", "out_of_focus0031", "out_of_focus0035", "out_of_focus0080", "out_of_focus0088")


def make_split(stems: list[str], val_count: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, val) stems: the test five removed, ``val_count`` drawn with ``random.Random(seed)`` from the sorted
    rest."""
    pool = sorted(s for s in stems if s not in CUHK_TEST5)
    if val_count >= len(pool):
        raise ValueError(f"val_count {val_count} leaves no training image (pool {len(pool)})")
    val = sorted(random.Random(seed).sample(pool, val_count))
    chosen = set(val)
    return [s for s in pool if s not in chosen], val


def read_split(path: str | Path) -> list[str]:
    """Stems listed one per line (``#`` comments and blanks ignored)."""
    lines = Path(path).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", required=True, help="cuhk/train_image folder")
    p.add_argument("--val-count", type=int, default=60)
    p.add_argument("--seed", type=int, default=20)
    p.add_argument("--out", required=True, help="prefix: writes PREFIX_train.txt and PREFIX_val.txt")
    a = p.parse_args(argv)
    stems = [f.stem for f in Path(a.images).glob("out_of_focus*.jpg")]
    if not stems:
        print(f"error: no out_of_focus*.jpg in {a.images}", file=sys.stderr)
        return 2
    for part in ("train", "val"):
        if Path(f"{a.out}_{part}.txt").exists():
            print(f"error: {a.out}_{part}.txt exists; a split is never rewritten", file=sys.stderr)
            return 2
    train, val = make_split(stems, a.val_count, a.seed)
    head = f"# CUHK defocus training images, seed {a.seed}, cuhk/image test five excluded\n"
    write_text_atomic(f"{a.out}_train.txt", head + "\n".join(train) + "\n")
    write_text_atomic(f"{a.out}_val.txt", head + "\n".join(val) + "\n")
    print(f"{len(train)} train, {len(val)} val")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
