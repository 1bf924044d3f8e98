"""Memory of a long-lived generate worker: RSS after each of N samples made in one process.

    python benchmarks/bench_generate_memory.py [--images DIR] [--count 6] [--max-size 240] [--max-coc 43]
        [--same] [--mode fixed|leak|both] [--malloc-trim] [--json OUT.json]

Each sample goes through ``syndof.generate.run_job`` into a temporary folder (load, random depth, camera, render,
PNG writing), exactly the loop a ``--workers`` pool process (or the in-process ``--workers 1`` path) runs.
``--same`` repeats sample 0 (same source and seed) so any growth is a leak, not a larger image.

Modes (``both``: each in a fresh subprocess, so the baselines match):

* ``fixed`` — the current renderer: each SuperLU fill factor is released on the worker thread that made it.
* ``leak`` — the pre-fix behaviour, reproduced by dropping the factors on the main thread: SciPy then never frees
  them (scipy/scipy#15921), and RSS grows by the size of all of one image's fill factors per sample.

``--malloc-trim`` calls glibc ``malloc_trim(0)`` after each sample (it does not cure the leak: the memory is still
allocated, not fragmented). Default sources: the built-in ones (``syndof.scenes.builtin_sources``).

Figures: RSS in MB (the machine's load does not change them; the seconds per sample printed beside them do).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import output_problem, parser  # noqa: E402
from syndof import cli  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_one_mode(args) -> dict:
    import torch

    from syndof import blur
    from syndof.generate import Job, run_job
    from syndof.psf import Kernel
    from syndof.scenes import builtin_sources, folder_sources

    if args.mode == "leak":
        def release_on_main_thread(plan, executor):  # what the renderer did before the fix
            plan.lu = None

        blur.release_plan = release_on_main_thread
    trim = None
    if args.malloc_trim and sys.platform.startswith("linux"):
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    torch.set_num_threads(1)
    sources = folder_sources(args.images) if args.images else builtin_sources()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_genmem_") as tmp:
        start = rss_mb()
        for i in range(args.count):
            index = 0 if args.same else i
            out = Path(tmp) / (f"run{i}" if args.same else "out")  # --same: a new folder, so nothing is "done"
            job = Job(index, sources[index % len(sources)], str(out), args.seed, args.max_coc, Kernel.GAUSSIAN,
                      "cpu", False, None, args.max_size)
            t0 = time.perf_counter()
            res = run_job(job)
            dt = time.perf_counter() - t0
            gc.collect()
            if trim is not None:
                trim(0)
            rows.append({"sample": i, "stem": res.stem, "status": res.status, "seconds": round(dt, 2),
                         "rss_mb": round(rss_mb(), 1)})
            print(f"  [{args.mode}] sample {i} {res.stem:<28} {res.status:<10} {dt:6.1f} s  "
                  f"RSS {rows[-1]['rss_mb']:8.1f} MB", flush=True)
    rss = [r["rss_mb"] for r in rows]
    # growth per sample after the first (which also pays one-off allocations): least-squares slope
    slope = 0.0
    if len(rss) >= 3:
        import numpy as np

        slope = float(np.polyfit(np.arange(len(rss) - 1), rss[1:], 1)[0])
    return {"mode": args.mode, "malloc_trim": bool(trim), "start_rss_mb": round(start, 1), "rss_mb": rss,
            "peak_rss_mb": max(rss) if rss else start, "growth_mb_per_sample": round(slope, 1), "samples": rows}


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = parser("bench_generate_memory", __doc__, "python benchmarks/bench_generate_memory.py --count 6 --same")
    p.add_argument("--images", help="folder of photos (random depth); default: the built-in sources")
    p.add_argument("--count", type=cli.positive_int, default=6, help="samples per mode")
    p.add_argument("--max-size", type=cli.non_negative_int, default=240,
                   help="downscale sources to this long side (0: off)")
    cli.add_max_coc(p, default=43)
    cli.add_seed(p, 2023)
    p.add_argument("--same", action="store_true", help="repeat sample 0 every time")
    p.add_argument("--mode", choices=("fixed", "leak", "both"), default="both")
    p.add_argument("--malloc-trim", action="store_true", help="glibc malloc_trim(0) after each sample")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.max_size = args.max_size or None
    if args.json and (problem := output_problem(args.json, "--json")):
        return cli.fail(problem)

    if args._child or args.mode != "both":
        res = run_one_mode(args)
        if args._child:
            print("RESULT " + json.dumps(res), flush=True)
            return 0
        results = [res]
    else:
        results = []
        for mode in ("leak", "fixed"):
            cmd = [sys.executable, __file__, "--_child", "--mode", mode, "--count", str(args.count),
                   "--max-size", str(args.max_size or 0), "--max-coc", str(args.max_coc), "--seed", str(args.seed)]
            cmd += ["--images", args.images] if args.images else []
            cmd += ["--same"] if args.same else []
            cmd += ["--malloc-trim"] if args.malloc_trim else []
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
            for line in proc.stdout.splitlines():
                if line.startswith("RESULT "):
                    results.append(json.loads(line[7:]))
                else:
                    print(line, flush=True)
            if proc.returncode:  # the child printed its own error line above
                return cli.fail(f"the {mode} child exited with {proc.returncode}")

    print()
    print("| mode | malloc_trim | RSS before | RSS after each sample (MB) | peak | growth / sample |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {'yes' if r['malloc_trim'] else 'no'} | {r['start_rss_mb']:.0f} | "
              f"{', '.join(f'{v:.0f}' for v in r['rss_mb'])} | {r['peak_rss_mb']:.0f} | "
              f"{r['growth_mb_per_sample']:+.1f} MB |")
    if args.json:
        from syndof.io import write_text_atomic  # here: a child measures its own RSS from its first import on

        write_text_atomic(args.json, json.dumps({"args": {k: v for k, v in vars(args).items() if k != "_child"},
                                                 "results": results}, indent=2), replace=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
