"""Cache a fixed teacher's blur-probability maps (milestone D0: the shipped DMENet-lite detection map) as 8-bit PNGs.

Resumable: maps already written are skipped; each write is atomic. A corrupt image is skipped and reported.

    python experiments/distill/cache_dmenet.py --images ../shared/data/cuhk/train_image \
        --list experiments/distill/cuhk_split_train.txt --out runs/distill/dmenet_cache --flips 1
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dmenet.distill.split import read_split
from syndof import cli
from syndof.io import InputError, file_sha256, read_image, read_json_object, write_image, write_json_atomic

EXAMPLE = ("python experiments/distill/cache_dmenet.py --images ../shared/data/cuhk/train_image "
           "--list experiments/distill/tiny_val.txt --out runs/distill_cache_example")


SETTINGS = "cache.json"
"""The settings a cache folder's maps were made with (method and its resolved options, flips, source folder, the
model file and its SHA-256: the shipped DMENet-lite has changed over time, and a resumed cache must not mix two
teachers' maps)."""


def settings_problem(out: Path, record: dict) -> str | None:
    """One line when ``out`` holds maps made otherwise than ``record`` says (a rerun would skip them as done and mix
    two targets), or files without a :data:`SETTINGS` record; else None (a new folder, or the same settings: the
    cache resumes)."""
    info = out / SETTINGS
    if info.is_file():
        earlier = read_json_object(info)
        differ = sorted(k for k in record.keys() | earlier.keys() if record.get(k) != earlier.get(k))
        if differ:
            was = ", ".join(f"{k} {earlier.get(k)!r}" for k in differ)
            return f"--out {out}: holds maps made with other settings ({was}); choose another --out"
        return None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return f"--out {out}: exists and is not a cache of this script (no {SETTINGS}); choose another --out"
    return None


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    from dmenet.methods import MethodOptions, make_method, method_names

    p = cli.script_parser("experiments/distill/cache_dmenet.py", __doc__, EXAMPLE)
    p.add_argument("--images", required=True, help="folder of photos (STEM.jpg)")
    p.add_argument("--list", required=True, help="stems to cache, one per line")
    p.add_argument("--out", required=True, help="output folder (STEM.png, 255 = blurred)")
    p.add_argument("--method", default="dmenet", choices=method_names(), metavar="NAME",
                   help="registered method whose blur map is the soft target (default dmenet)")
    p.add_argument("--flips", type=int, choices=(1, 2, 4, 8), default=1, help="test-time symmetries (default 1)")
    cli.add_threads(p, default=1)
    a = p.parse_args(argv)
    cli.apply_threads(a.threads)
    stems = read_split(a.list)
    if not stems:  # a folder of settings and no map would pass for a finished cache
        return cli.fail(f"--list {a.list}: lists no stem (only blanks or # comments); nothing was written")
    files = {f.stem: f for f in Path(a.images).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")}
    missing = [s for s in stems if s not in files]
    if missing:
        return cli.fail(f"{len(missing)} listed stems not in {a.images} (first {missing[0]})")
    out, images = Path(a.out).resolve(), Path(a.images).resolve()
    if out == images or images in out.parents or out in images.parents:
        return cli.fail(f"--out {a.out}: is, holds or lies inside --images {a.images}; the maps go to a folder of "
                        "their own")
    est = make_method(a.method, MethodOptions(flips=a.flips))
    model = None if est.model_file is None else Path(est.model_file).resolve()
    record = {"method": a.method, "options": est.method_settings(), "flips": a.flips, "images": str(images),
              "model": None if model is None else str(model),
              "model_sha256": None if model is None else file_sha256(model)}
    problem = settings_problem(out, record)
    if problem:
        return cli.fail(problem)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / SETTINGS, record)  # a resumed cache continues only under the same settings
    skipped, t0, done = [], time.time(), 0
    for stem in stems:
        target = out / f"{stem}.png"
        if target.exists():
            continue
        try:
            image = read_image(files[stem])
        except InputError as e:
            skipped.append(str(e))  # names the file
            continue
        prob = est.blur_map(image)
        write_image(target, prob)
        done += 1
        print(f"{stem} {time.time() - t0:.0f}s", flush=True)
    for s in skipped:
        print(f"skipped {s}", file=sys.stderr)
    print(f"{done} written, {len(skipped)} skipped, {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
