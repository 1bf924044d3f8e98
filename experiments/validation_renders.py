"""Rebuild the 24 validation renders that rules g16, bf16 and 21s scored (``runs/gsyn_val16``), byte for byte.

    python experiments/validation_renders.py [--shared ../shared/data] [--out runs/gsyn_val16] [--threads 1]

Sources: the 45 BSDS500 train/val photos that the Galetto classifier holds out for validation, chosen by the same
rule and defaults as ``dmenet.galetto.build_patches`` (a seeded permutation of the sorted train + val stems, the first
15 % with seed 0; no BSDS500 test photo, none of them trained the classifier). They are linked into
``OUT_src`` and rendered by ``python -m syndof.generate --count 24 --seed 216``, as rule g16 wrote. The renders'
bytes are then checked against :data:`SHA256` (the folder the three rules scored, 4 Dec 2026): a mismatch is exit 1
and names the first file that differs. An existing ``--out`` is refused (exit 2).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from syndof import cli  # noqa: E402 - after the path line above

COUNT, SEED = 24, 216
FOLDERS = ("image", "blur_map", "depth")
SHA256 = "643fb250a9e73be5706a49a38442f05a086f999631c3de7ab88feaf9f6d1f41f"  # runs/gsyn_val16 as scored


def folder_digest(out: Path) -> tuple[str, dict[str, str]]:
    """SHA-256 over the sorted (name, file digest) pairs of the renders' image, σ map and depth files."""
    files = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
             for folder in FOLDERS for p in sorted((out / folder).iterdir())}
    total = hashlib.sha256("".join(f"{k} {v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
    return total, files


@cli.entry_point
def main(argv=None) -> int:
    from dmenet.galetto.build_patches import split_stems
    from syndof.generate import main as generate
    from syndof.io import list_images

    ap = cli.script_parser("experiments/validation_renders.py", __doc__, "python experiments/validation_renders.py")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "gsyn_val16")
    cli.add_threads(ap, default=1)
    ap.add_argument("--digest", action="store_true", help="only print the digest of an existing --out")
    args = ap.parse_args(argv)
    if args.digest:
        if not all((args.out / folder).is_dir() for folder in FOLDERS):
            return cli.fail(f"--out {args.out}: not a render folder (needs {', '.join(FOLDERS)})")
        print(folder_digest(args.out)[0])
        return 0
    src = args.out.with_name(args.out.name + "_src")
    for path in (args.out, src):  # the source links too: a foreign photo there would be rendered
        if path.exists() or path.is_symlink():
            return cli.fail(f"{path} exists; remove it first")
    bsds = args.shared / "photos" / "bsds500"
    pool = list_images(bsds / "train") + list_images(bsds / "val")
    if not pool:
        return cli.fail(f"--shared {args.shared}: no photos in {bsds / 'train'} or {bsds / 'val'}")
    by_stem = {p.stem: p for p in pool}
    _, val = split_stems(list(by_stem), 0.15, 0)
    src.mkdir(parents=True)
    rc = 1
    try:
        for stem in val:
            link = src / by_stem[stem].name
            if not link.exists():
                link.symlink_to(by_stem[stem].resolve())
        rc = generate(["--out", str(args.out), "--images", str(src), "--count", str(COUNT), "--seed", str(SEED),
                       "--threads", str(args.threads)])
    finally:
        if rc and not args.out.exists():  # nothing rendered: the links alone would refuse the rerun
            shutil.rmtree(src, ignore_errors=True)
    if rc:
        return rc
    total, files = folder_digest(args.out)
    if total != SHA256:
        print(f"{args.out}: digest {total} differs from the scored folder's {SHA256}", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(val)} source photos, {COUNT} renders, identical to the folder rules g16, bf16 and 21s "
          f"scored ({total[:16]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
