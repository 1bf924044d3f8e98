"""Fixed, seeded train / validation split of the CUHK defocus training images (written once, never rewritten).

The five images of ``cuhk/image/`` (reported as a test) are excluded from both parts. The lists are written once by
``python experiments/distill/split.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

CUHK_TEST5 = ("out_of_focus0011", "out_of_focus0031", "out_of_focus0035", "out_of_focus0080", "out_of_focus0088")


def make_split(stems: list[str], val_count: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, val) stems: the test five removed, ``val_count`` drawn with ``random.Random(seed)`` from the sorted
    rest."""
    pool = sorted(s for s in stems if s not in CUHK_TEST5)
    if val_count >= len(pool):
        raise ValueError(f"{val_count} validation images leave no training image (pool of {len(pool)}, the 5 CUHK "
                         "test photos excluded)")
    val = sorted(random.Random(seed).sample(pool, val_count))
    chosen = set(val)
    return [s for s in pool if s not in chosen], val


def make_group_split(groups: dict[str, list[str]], val_count: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, val) stems where the stems of one group (renders of one source photo) never straddle the two parts.

    ``groups``: ``{group key: [stems]}``. The groups, sorted by key, are shuffled with ``random.Random(seed)`` and
    taken whole into validation until it holds at least ``val_count`` stems; ValueError when that leaves no group
    for training. Both parts are sorted.
    """
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    val: list[str] = []
    taken = 0
    while len(val) < val_count and taken < len(keys):
        val += groups[keys[taken]]
        taken += 1
    if taken >= len(keys):
        raise ValueError(f"{val_count} validation images leave no training image: the {sum(map(len, groups.values()))} "
                         f"images come from {len(keys)} source photo(s), and the renders of one photo stay on one side")
    return sorted(s for k in keys[taken:] for s in groups[k]), sorted(val)


def read_split(path: str | Path) -> list[str]:
    """Stems listed one per line (``#`` comments and blanks ignored)."""
    lines = Path(path).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
