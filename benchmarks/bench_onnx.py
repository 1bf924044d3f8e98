"""ONNX Runtime against PyTorch for DMENet's σ path (B, moving BatchNorm statistics), same input, interleaved.

    python benchmarks/bench_onnx.py [--model FILE] [--size 480 640] [--repeats 7] [--threads 1]

Exports the model with ``dmenet.export`` (traced at ``--size``) to a temporary file, then times one forward of
the PyTorch fast path (``dmenet.models.fuse``, channels-last, ``torch.inference_mode``) and one ONNX Runtime
``CPUExecutionProvider`` run (graph optimisations on), alternating. Prints min / median wall ms of each, the
ratio, max |Δ| between them and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, nargs=2, default=(480, 640))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import numpy as np
    import onnxruntime as ort
    import torch

    from dmenet.export import EXPORTERS, export_onnx
    from dmenet.inference import load_model
    from dmenet.models.fuse import inference_blur

    torch.set_num_threads(args.threads)
    module, example, inputs, outputs = EXPORTERS["dmenet"](args.model, tuple(args.size))
    fast = inference_blur(load_model(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.onnx"
        export_onnx(module, example, path, inputs, outputs)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = example.numpy()
    xt = example.contiguous(memory_format=torch.channels_last)
    load0 = os.getloadavg()[0]
    runs = {"pytorch fast path": [], "onnxruntime": []}
    with torch.inference_mode():
        delta = float(np.abs(session.run(None, {"image": x})[0] - fast(xt).numpy()).max())
        for _ in range(args.repeats):
            for name, fn in (("pytorch fast path", lambda: fast(xt)),
                             ("onnxruntime", lambda: session.run(None, {"image": x}))):
                fn()
                t0 = time.perf_counter()
                fn()
                runs[name].append((time.perf_counter() - t0) * 1e3)
    print(f"B at {args.size[0]}x{args.size[1]}, {args.threads} thread(s), load {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f}, max |delta| {delta:.1e}")
    for name, t in runs.items():
        print(f"{name:20s} min {min(t):7.0f} ms  median {statistics.median(t):7.0f} ms")
    print(f"ratio pytorch / onnxruntime (median): "
          f"{statistics.median(runs['pytorch fast path']) / statistics.median(runs['onnxruntime']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
