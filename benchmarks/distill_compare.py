"""Distill-DBDGAN student side by side with DMENet-lite's detection map and the classical peers, in one run.

    python benchmarks/distill_compare.py --out runs/distill/compare [--student checkpoints/distill_student.safetensors]
        [--methods distill_student dmenet lbp hifst laplacian zhuo_sim] [--sharp-bsds 20] [--repeats 5]

1. DBD on the 5 CUHK images of ``../shared/data/cuhk/image`` (GT white = blurred): "native" = the photo at its own
   size through each method's recipe, scored at the mask size; "320" = the photo resized to 320×320 first (the
   paper's protocol), scored at 320×320 (dmenet.eval.dbd).
2. Sharp-everywhere photos: mean blur probability on the demo's built-in photos (scikit-image astronaut, coffee,
   chelsea) and on the first N screened sharp BSDS500 *test* photos (experiments/distill/bsds_sharp_test.txt).
   Learned methods only (the peers give relative maps).
3. Speed at 640×480: the student's estimator vs DMENet-lite's detection path (``estimate(sigma=False)``, its
   shipped recipe) with ``--threads`` torch threads, median wall and process-CPU ms after a warm-up; the 1-minute
   load average is printed (a shared 2-core machine inflates wall times: compare ratios within one run; each
   learned method's ratio to the first is printed).
Writes ``OUT/summary.json`` and ``OUT/summary.md`` into a new (or empty) folder ``--out``, both or neither.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import median_seconds, output_problem, parser  # noqa: E402
from syndof import cli  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
LEARNED = ("distill_student", "distill_teacher", "dmenet")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    from dmenet.methods import method_names

    p = parser("distill_compare", __doc__, "python benchmarks/distill_compare.py --out runs/distill/compare "
               "--methods distill_student --sharp-bsds 20 --threads 2")
    p.add_argument("--out", required=True, help="a new (or empty) folder for summary.json and summary.md")
    p.add_argument("--student", help="student model file (default: the shipped checkpoint)")
    p.add_argument("--teacher", help="teacher model file (adds distill_teacher)")
    p.add_argument("--methods", nargs="+", choices=method_names(), metavar="NAME",
                   default=["distill_student", "dmenet", "lbp", "hifst", "laplacian", "zhuo_sim"],
                   help=", ".join(method_names()))
    p.add_argument("--sharp-bsds", type=cli.non_negative_int, default=20,
                   help="screened BSDS test photos in the sharp check")
    p.add_argument("--repeats", type=cli.positive_int, default=5)
    cli.add_threads(p, default=2)
    a = p.parse_args(argv)
    if problem := output_problem(a.out, "--out", folder=True):
        return cli.fail(problem)
    import torch

    from dmenet.distill.split import read_split
    from dmenet.eval.benchmarks import read_mask
    from dmenet.eval.dbd import DBDAccumulator
    from dmenet.methods import MethodOptions, make_method
    from skimage import data as skdata
    from syndof.io import read_image, write_set_atomic

    torch.set_num_threads(a.threads)
    methods = list(a.methods) + (["distill_teacher"] if a.teacher and "distill_teacher" not in a.methods else [])
    models = {"distill_student": a.student, "distill_teacher": a.teacher}
    ests = {m: make_method(m, MethodOptions(model=models.get(m))) for m in methods}
    cuhk = sorted((SHARED / "cuhk" / "image").glob("*.jpg"))
    if not cuhk:
        print(f"error: no CUHK images in {SHARED / 'cuhk' / 'image'}", file=sys.stderr)
        return 2
    pairs = [(f.stem, read_image(f), read_mask(SHARED / "cuhk" / "gt" / f"{f.stem}.png")) for f in cuhk]
    result: dict = {"methods": {m: e.describe() for m, e in ests.items()}, "dbd": {}, "sharp": {}, "speed": {}}
    for m, est in ests.items():
        for res in ("native", "320"):
            acc = DBDAccumulator(resolution=res, square_input=res == "320")  # 320²: a square map of the photo
            for stem, img, gt in pairs:
                x = img if res == "native" else cv2.resize(img, (320, 320), interpolation=cv2.INTER_AREA)
                acc.add(stem, est.blur_map(x), gt > 0.5)
            s = acc.summary()
            result["dbd"][f"{m}@{res}"] = {k: s[k] for k in ("fmax", "fmax_of_mean_curve", "mae", "f_at_0.5",
                                                              "iou_pooled")}
            print(m, res, json.dumps(result["dbd"][f"{m}@{res}"]), flush=True)
    photos = {n: getattr(skdata, n)().astype(np.float32) / 255 for n in ("astronaut", "coffee", "chelsea")}
    bsds_dir = SHARED / "photos" / "bsds500" / "test"
    bsds = read_split(REPO / "experiments" / "distill" / "bsds_sharp_test.txt")[:a.sharp_bsds]
    for m in (m for m in ests if m in LEARNED):
        row = {n: float(ests[m].blur_map(im).mean()) for n, im in photos.items()}
        row["bsds_test_mean"] = float(np.mean([ests[m].blur_map(read_image(bsds_dir / f"{s}.jpg")).mean()
                                               for s in bsds])) if bsds else None  # --sharp-bsds 0: no NaN
        row["bsds_n"] = len(bsds)
        result["sharp"][m] = row
        print(m, "sharp", json.dumps(row), flush=True)
    img640 = cv2.resize(pairs[0][1], (640, 480), interpolation=cv2.INTER_AREA)
    for m in (m for m in ests if m in LEARNED):
        wall, cpu = (1e3 * s for s in median_seconds(lambda: ests[m].estimate(img640, sigma=False, probability=True),
                                                            a.repeats))
        result["speed"][m] = {"wall_ms": wall, "cpu_ms": cpu}
        first, ref = next(iter(result["speed"].items()))  # the ratios: against the first learned method
        print(f"{m} speed: wall {wall:.0f} ms, CPU {cpu:.0f} ms (640x480, {a.threads} threads); "
              f"wall {wall / ref['wall_ms']:.2f}x {first}'s, CPU {cpu / ref['cpu_ms']:.2f}x", flush=True)
    result["speed"]["threads"] = a.threads
    result["speed"]["load_1min"] = os.getloadavg()[0]
    out = Path(a.out)
    lines = ["| method @ input | fmax | fmax_of_mean_curve | mae | f_at_0.5 | iou_pooled |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {k} | " + " | ".join(f"{v[c]:.4f}" for c in ("fmax", "fmax_of_mean_curve", "mae", "f_at_0.5",
                                                                "iou_pooled")) + " |" for k, v in result["dbd"].items()]
    lines += ["", "| method | astronaut | coffee | chelsea | BSDS test (n) |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {r['astronaut']:.3f} | {r['coffee']:.3f} | {r['chelsea']:.3f} | "
              + ("–" if r["bsds_test_mean"] is None else f"{r['bsds_test_mean']:.3f}") + f" ({r['bsds_n']}) |"
              for m, r in result["sharp"].items()]
    lines += ["", f"| method | wall ms (640×480, {a.threads} threads) | CPU ms |", "|---|---|---|"]
    lines += [f"| {m} | {r['wall_ms']:.0f} | {r['cpu_ms']:.0f} |" for m, r in result["speed"].items()
              if isinstance(r, dict)]
    lines += ["", f"load average (1 min) at the end: {result['speed']['load_1min']:.1f}"]
    write_set_atomic({out / "summary.json": (json.dumps(result, indent=2, sort_keys=True) + "\n").encode(),
                      out / "summary.md": ("\n".join(lines) + "\n").encode()})  # both or neither: a rerun is refused
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
