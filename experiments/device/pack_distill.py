"""Pack the distill training data small enough to travel to a lent GPU with the working tree (issue 20).

    python experiments/device/pack_distill.py [--shared ../shared/data] [--out .dev/distill] [--quality 85]

The device call carries the working tree, the kornia wheels (``.whl``, 7.3 MB) and this folder in at most 64 MiB
(``/work/.library/device/README.md``); the CUHK photos alone are 76 MB at full size. The trainer holds every
photo shrunk to ``data.preload_long_side`` (416 px) anyway, so this writes each listed item exactly as
:func:`dmenet.distill.data.preload` holds it: the photo as a JPEG of ``--quality`` (default 85, the one lossy
step; 90 would not fit), the mask as a PNG (255 = blurred, so the trainer's CUHK polarity reads it unchanged).
Items: the CUHK training and validation stems of ``experiments/distill/cuhk_split_{train,val}.txt`` and the
screened sharp BSDS500 train / val photos of ``bsds_sharp_{train,val}.txt``; never a test image. Layout (the
trainer's ``data.*`` keys point into it; see ``distill_pair.sh``)::

    OUT/cuhk/train_image/STEM.jpg  OUT/cuhk/gt/STEM.png  OUT/bsds500/train/STEM.jpg  OUT/bsds500/val/STEM.jpg
    OUT/cuhk5/image/*.jpg  OUT/cuhk5/gt/*.png   (the 5 shared CUHK test photos and masks, bytes unchanged)
    OUT/MANIFEST.json   (sources, settings, counts, bytes, SHA-256 of every file)

Validation on the device therefore scores at the packed mask size, not at the native one: it only chooses a
checkpoint there. The CUHK-5 scores there use the unchanged test photos. The folder is built beside ``--out`` and
renamed into place; an existing ``--out`` or a bad input (a missing or corrupt photo, an empty list) is exit 2
with one line, leaving nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

LISTS = REPO / "experiments" / "distill"

from syndof import cli  # noqa: E402


@cli.entry_point
def main(argv=None) -> int:
    ap = cli.script_parser("experiments/device/pack_distill.py", __doc__,
                           "python experiments/device/pack_distill.py --out .dev/distill")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--out", type=Path, default=REPO / ".dev" / "distill")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality of the photos (1-100)")
    ap.add_argument("--long-side", type=int, default=416, help="px; the trainer's data.preload_long_side")
    args = ap.parse_args(argv)
    if not 1 <= args.quality <= 100:
        return cli.fail(f"--quality must be in 1..100, got {args.quality}")
    if args.long_side < 32:
        return cli.fail(f"--long-side must be >= 32, got {args.long_side}")
    if args.out.exists():
        return cli.fail(f"--out {args.out} exists; remove it first")
    try:
        return pack(args)
    except (ValueError, OSError) as exc:  # DataError (a ValueError) names the file
        return cli.fail(str(exc).splitlines()[0])


def _write(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path`` (parents made); its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def pack(args) -> int:
    import cv2
    import numpy as np

    from dmenet.distill.data import labelled_items, preload, sharp_items

    cuhk, bsds = args.shared / "cuhk", args.shared / "photos" / "bsds500"
    groups = {  # folder in OUT -> items (labelled ones carry their mask)
        "cuhk/train_image": [it for part in ("train", "val") for it in
                             labelled_items(str(cuhk / "train_image"), str(cuhk / "gt"),
                                            str(LISTS / f"cuhk_split_{part}.txt"))],
        "bsds500/train": sharp_items(str(bsds / "train"), str(LISTS / "bsds_sharp_train.txt")),
        "bsds500/val": sharp_items(str(bsds / "val"), str(LISTS / "bsds_sharp_val.txt")),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    files: dict[str, str] = {}
    try:
        for folder, items in groups.items():
            for item in items:
                image, mask, _ = preload(item, args.long_side)
                if mask is not None and not np.isin(mask, (0, 255)).all():
                    raise ValueError(f"{item.mask}: the preloaded mask is not binary 0 / 255")
                stem = item.image.stem
                written = [(f"{folder}/{stem}.jpg", cv2.imencode(".jpg", image[:, :, ::-1],
                                                                 [cv2.IMWRITE_JPEG_QUALITY, args.quality])[1])]
                if item.mask is not None:
                    written.append((f"cuhk/gt/{stem}.png", cv2.imencode(".png", mask)[1]))  # preload: 0 / 255
                for name, data in written:
                    files[name] = _write(tmp / name, data.tobytes())
        for photo in sorted((cuhk / "image").iterdir()):  # scored on the device at native size, never trained on
            mask = cuhk / "gt" / f"{photo.stem}.png"
            if not mask.is_file():
                raise ValueError(f"{photo}: no mask {mask}")
            for src, name in ((photo, f"cuhk5/image/{photo.name}"), (mask, f"cuhk5/gt/{mask.name}")):
                files[name] = _write(tmp / name, src.read_bytes())
        total = sum((tmp / n).stat().st_size for n in files)
        manifest = {"source": str(args.shared), "long_side": args.long_side, "jpeg_quality": args.quality,
                    "counts": {**{k: len(v) for k, v in groups.items()},
                               "cuhk5/image": sum(n.startswith("cuhk5/image/") for n in files)},
                    "bytes": total, "sha256": files}
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.rename(args.out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    counts = ", ".join(f"{k} {len(v)}" for k, v in groups.items())
    print(f"{args.out}: {counts}; {total / 2**20:.1f} MiB at long side {args.long_side}, JPEG quality {args.quality}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
