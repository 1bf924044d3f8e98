"""Default ``dmenet.predict`` on a batch of photos: seconds per image, process start and model load excluded.

    python benchmarks/bench_predict_batch.py [--size 480 640] [--count 20] [--threads 2] [--flips 1 8]
    python benchmarks/bench_predict_batch.py --flips default --methods dmenet dmenet:precision=bf16
    python benchmarks/bench_predict_batch.py --flips default --models shipped runs/x/model.safetensors
    python benchmarks/bench_predict_batch.py --flips default --workers default 1 2 --threads 2   # workers × threads

Makes ``--count`` photos of the given size from ``../shared/data/cuhk/train_image`` (area-resized, PNG, in a
temporary folder), then runs ``python -m dmenet.predict FOLDER --out TMP --threads N --method M`` once per
``--methods`` entry, ``--models`` file (``shipped`` = the method's default) and ``--flips`` value (``default`` =
predict's own default) and reads each image's time from predict's ``[i/N] … (t s)`` progress line (read, estimate
σ + blur map, write the four files). With ``--workers`` values (``predict --workers N``, each worker with
``--threads`` ÷ N threads; ``default`` passes neither flag: predict's own choice) photos overlap, so the figure
that counts is the **throughput**: the wall time from the first photo's line to the last one's over the photos
between them (process start and model loads excluded), printed for every run. Prints min / median / mean per
image, the throughput, the total wall of the process, and the 1-minute load average before and after: on a shared
machine compare runs of one invocation (they alternate), not invocations.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interleave import parser
from syndof import cli

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "cuhk" / "train_image"


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> None:
    import cv2

    sources = sorted(SHARED.glob("*.jpg"))[:count]
    if len(sources) < count:
        raise ValueError(f"--count {count}: needs {count} photos in {SHARED}, found {len(sources)}")
    for i, src in enumerate(sources):
        image = cv2.resize(cv2.imread(str(src)), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"photo{i:02d}.png"), image)


@cli.entry_point
def main(argv=None) -> int:
    from dmenet.methods import method_names, parse_method
    from dmenet.models.recipe import FLIPS

    def checked(ok, what):
        def parse(text: str) -> str:
            try:
                good = ok(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
            if not good:
                raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
            return text

        parse.__name__ = "value"
        return parse

    ap = parser("bench_predict_batch", __doc__, "python benchmarks/bench_predict_batch.py --flips default "
                "--workers default")
    ap.add_argument("--size", type=cli.positive_int, nargs=2, default=(480, 640), metavar=("H", "W"))
    ap.add_argument("--count", type=cli.positive_int, default=20)
    ap.add_argument("--threads", type=cli.positive_int, default=2, metavar="N",
                    help="torch CPU threads in all, split among the --workers (default 2)")
    ap.add_argument("--flips", nargs="+", default=["default", "8"],
                    type=checked(lambda t: t == "default" or t in map(str, FLIPS), "default, 1, 2, 4 or 8"),
                    help="flips values to run (default = predict's)")
    ap.add_argument("--methods", nargs="+", default=["dmenet"], type=checked(
        lambda t: parse_method(t, method_names()) is not None, "a method"), help="--method texts to run, in this order")
    ap.add_argument("--workers", nargs="+", default=["1"],
                    type=checked(lambda t: t == "default" or (t.isdigit() and int(t) >= 1), "default or N >= 1"),
                    help="predict --workers values to run (default = neither --workers nor --threads)")
    ap.add_argument("--models", nargs="+", default=["shipped"],
                    help="model files passed as --model (shipped = none, the method's default), in this order")
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; each run's line gives its workers, threads and load")
    with tempfile.TemporaryDirectory(dir=REPO.parent) as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        make_photos(photos, args.count, tuple(args.size))
        runs = [(m, f, model, n) for m in args.methods for model in args.models for f in args.flips
                for n in args.workers]
        for i, (method, flips, model, workers) in enumerate(runs):
            threads = "default" if workers == "default" else max(1, args.threads // int(workers))
            cmd = [sys.executable, "-m", "dmenet.predict", str(photos), "--out", str(Path(tmp) / f"out{i}"),
                   "--method", method]
            cmd += [] if workers == "default" else ["--threads", str(threads), "--workers", workers]
            cmd += [] if flips == "default" else ["--flips", flips]
            cmd += [] if model == "shipped" else ["--model", model]
            load0, t0 = os.getloadavg()[0], time.perf_counter()
            done_at, lines = [], []
            with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
                for line in proc.stdout:
                    lines.append(line)
                    if " -> " in line:
                        done_at.append(time.perf_counter())
            if proc.returncode != 0:
                return cli.fail(f"{' '.join(cmd)} exited with {proc.returncode}")
            wall = time.perf_counter() - t0
            times = [float(t) for t in re.findall(r"-> .*? \((\d+\.\d+) s", "".join(lines))]
            throughput = (done_at[-1] - done_at[0]) / (len(done_at) - 1) if len(done_at) > 1 else float("nan")
            name = method if model == "shipped" else f"{method} {model}"
            print(f"{name}, {args.size[1]}x{args.size[0]}, {len(times)} images, {workers} worker(s) x {threads} "
                  f"thread(s), flips {flips}: throughput {throughput * 1e3:.0f} ms per image; "
                  f"per image min {min(times) * 1e3:.0f} / median {statistics.median(times) * 1e3:.0f} / mean "
                  f"{statistics.mean(times) * 1e3:.0f} ms; process {wall:.1f} s; load {load0:.2f} -> "
                  f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
