"""Benchmark: SYNDOF replay render of the shared Sintel sample (1024×436, ~250–300 layers).

Times, in one run, the fast tiled renderer (``syndof.blur.render_layers``) and the plain per-layer full-frame loop
(``syndof.blur_reference.render_layers_reference``) of the same algorithm on the same inputs and dtype, prints
seconds (wall and process CPU) and the ratio, and the PSNR of each against the original MATLAB render. CUDA is
timed too when available.

With ``--merge-tolerance T1 T2 …`` (px of σ; default 0 = exact) the fast path is timed once per tolerance, the
tolerances interleaved round-robin within each repeat (so machine-load drift hits them alike), and for each the
layer count after merging, the PSNR, and wall / process-CPU min and median are printed (the layer merge itself is
inside the timed call). The plain loop and CUDA are timed at the first tolerance. The CPUs, threads and 1-minute
load average are printed: on a shared machine compare the ratios of one run (plain / fast), not runs.

    python benchmarks/bench_render.py [--repeats 3] [--threads 2] [--skip-plain] [--json OUT.json] \
        [--merge-tolerance 0 0.1 0.25] [--stem STEM]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import machine_line, output_problem, parser  # noqa: E402
from syndof import cli, io  # noqa: E402
from syndof.blur import render_layers  # noqa: E402
from syndof.blur_reference import render_layers_reference  # noqa: E402
from syndof.camera import layers_from_sigma  # noqa: E402
from syndof.depth_io import read_depth  # noqa: E402
from syndof.layer_merge import merge_layers  # noqa: E402
from syndof.render import focal_hint, psnr_uint8  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "syndof_reference"


def timed(fn, repeats: int):
    """Median wall, process-CPU and main-thread-CPU seconds of ``fn()`` over ``repeats`` runs."""
    walls, cpus, mains, out = [], [], [], None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        w0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
        out = fn()
        if out.is_cuda:
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        mains.append(time.thread_time() - m0)
    timed.main_thread = float(np.median(mains))
    return out, float(np.median(walls)), float(np.median(cpus))


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Run every ``fns[key]()`` once per repeat, keys round-robin. Returns the last outputs and, per key, lists of
    wall, process-CPU and main-thread-CPU seconds."""
    outs, times = {}, {key: {"wall": [], "cpu": [], "main": []} for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            w0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
            outs[key] = fn()
            times[key]["wall"].append(time.perf_counter() - w0)
            times[key]["cpu"].append(time.process_time() - c0)
            times[key]["main"].append(time.thread_time() - m0)
    return outs, times


@cli.entry_point
def main(argv=None) -> int:
    ap = parser("bench_render", __doc__, "python benchmarks/bench_render.py --repeats 3 --threads 2 --skip-plain")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--stem", default="MPI_market_2_frame_0001_f_50_fp_0_33_A_0_2")
    ap.add_argument("--repeats", type=cli.positive_int, default=3)
    cli.add_threads(ap, default=2)  # torch and OpenCV threads (the fast path runs single-threaded)
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--merge-tolerance", type=cli.non_negative_float, nargs="+", default=[0.0], metavar="PX",
                    help="layer-merge tolerances in px of σ to time, interleaved (default: 0 = exact)")
    args = ap.parse_args(argv)
    if args.json and (problem := output_problem(args.json, "--json")):
        return cli.fail(problem)
    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    img = io.read_image(args.data / "input" / "sintel_market_2_frame_0001.png")
    depth = read_depth(args.data / "input" / "sintel_market_2_frame_0001.dpt")
    smap = args.data / "output" / "blur_map" / f"{args.stem}.png"
    ref = io.to_uint8(io.read_image(args.data / "output" / "image" / f"{args.stem}.png"))
    print(machine_line(), flush=True)
    t0 = time.perf_counter()
    lay = layers_from_sigma(depth, io.read_sigma_map(smap), focal_mm=focal_hint(smap))
    t_layers = time.perf_counter() - t0
    image = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()
    labels, coc = torch.from_numpy(lay.labels), torch.from_numpy(lay.coc)

    def score(out):
        return round(psnr_uint8(io.to_uint8(out.permute(1, 2, 0).cpu().double().numpy()), ref), 2)

    res = {"stem": args.stem, "size": list(img.shape[:2]), "layers": lay.n_layers, "exact_layers": lay.exact,
           "threads": args.threads, "cpu_count": os.cpu_count(), "torch": torch.__version__,
           "layers_from_sigma_s": round(t_layers, 3), "load_1min": round(os.getloadavg()[0], 2)}
    tols = list(dict.fromkeys(args.merge_tolerance))
    fns = {t: (lambda t=t: render_layers(image, labels, coc, merge_tolerance=t)) for t in tols}
    for fn in fns.values():
        fn()  # warm-up (imports, allocator), also validates every tolerance
    outs, times = interleaved(fns, args.repeats)
    rows = []
    for t in tols:
        tm = times[t]
        n_layers = lay.n_layers if t == 0 else len(merge_layers(labels, coc, t)[1])
        row = {"merge_tolerance": t, "layers": n_layers, "psnr_db": score(outs[t]),
               "wall_min_s": round(min(tm["wall"]), 3), "wall_median_s": round(float(np.median(tm["wall"])), 3),
               "cpu_min_s": round(min(tm["cpu"]), 3), "cpu_median_s": round(float(np.median(tm["cpu"])), 3),
               "main_cpu_median_s": round(float(np.median(tm["main"])), 3)}
        rows.append(row)
        print(f"merge {t:g} px σ: {n_layers} layers, PSNR {row['psnr_db']} dB, wall {row['wall_min_s']:.2f} / "
              f"{row['wall_median_s']:.2f} s, process CPU {row['cpu_min_s']:.2f} / {row['cpu_median_s']:.2f} s "
              f"(min / median of {args.repeats})")
    res["merge"] = rows
    out = outs[tols[0]]
    wall, cpu = float(np.median(times[tols[0]]["wall"])), float(np.median(times[tols[0]]["cpu"]))
    main_cpu = float(np.median(times[tols[0]]["main"]))
    res.update(fast_cpu_wall_s=round(wall, 3), fast_cpu_process_s=round(cpu, 3), fast_psnr_db=score(out),
               fast_main_thread_cpu_s=round(main_cpu, 3), fast_worker_thread_cpu_s=round(cpu - main_cpu, 3))
    print(f"fast  (CPU, float32, merge {tols[0]:g}): wall {wall:.2f} s, process CPU {cpu:.2f} s "
          f"(compositing thread {main_cpu:.2f} s, fill-factorisation thread {cpu - main_cpu:.2f} s), "
          f"PSNR {res['fast_psnr_db']} dB")
    if not args.skip_plain:
        out, pwall, pcpu = timed(lambda: render_layers_reference(image, labels, coc, dtype=torch.float32,
                                                                  merge_tolerance=tols[0]), 1)
        res.update(plain_cpu_wall_s=round(pwall, 3), plain_cpu_process_s=round(pcpu, 3), plain_psnr_db=score(out),
                   ratio_wall=round(pwall / wall, 2), ratio_process=round(pcpu / cpu, 2))
        print(f"plain (CPU, float32): wall {pwall:.2f} s, process CPU {pcpu:.2f} s, PSNR {res['plain_psnr_db']} dB")
        print(f"ratio plain/fast: wall {res['ratio_wall']}x, process CPU {res['ratio_process']}x")
    if torch.cuda.is_available():
        gi, gl = image.cuda(), labels.cuda()
        render_layers(gi, gl, coc, merge_tolerance=tols[0])  # warm-up
        out, gwall, _ = timed(lambda: render_layers(gi, gl, coc, merge_tolerance=tols[0]), args.repeats)
        res.update(fast_cuda_wall_s=round(gwall, 3), fast_cuda_psnr_db=score(out), cuda=torch.cuda.get_device_name())
        print(f"fast  (CUDA): wall {gwall:.2f} s, PSNR {res['fast_cuda_psnr_db']} dB")
    print(json.dumps(res))
    if args.json:
        io.write_text_atomic(args.json, json.dumps(res, indent=2) + "\n", replace=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
