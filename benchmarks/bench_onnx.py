"""ONNX Runtime against PyTorch for every exportable network, same inputs, interleaved (rule experiments/RULE_ORT.md).

    python benchmarks/bench_onnx.py [--networks dmenet distill_student galetto] [--threads 1 2] [--repeats 7]

Per network, at the input its method runs for a 640×480 photo, one forward of the PyTorch path the method runs
today against ONNX Runtime running the graph ``python -m dmenet.export`` writes for it (:class:`OrtNetwork`: traced
at the input's shape on first use, CPU provider, threads that sleep between runs), alternating:

- ``dmenet``: B's σ path at 480×640, PyTorch fast path (``dmenet.models.fuse``, channels-last);
- ``distill_student``: the shipped student at 256×320 (its working size), channels-last;
- ``galetto``: the shipped classifier over the 4,800 windows of a 640×480 photo at stride 8, 192 per call (the
  method's batch), PyTorch as its folded copy; a second ONNX row classifies all windows in one call.

Prints min / median wall ms, the ratio of medians, max |Δ| of the outputs, the first-call (trace + session) time,
and the 1-minute load average before and after: on a shared machine compare the ratios of one run, not runs. Rule
ORT judged these figures: PyTorch stays every method's only backend (BENCHMARKS.md, "ONNX Runtime against PyTorch,
every network").
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from interleave import machine_line, parser  # noqa: E402
from syndof import cli  # noqa: E402

NETWORKS = ("dmenet", "distill_student", "galetto")
WINDOWS = 4800  # 32×32 windows of a 640×480 photo at stride 8 (60 × 80)


class OrtNetwork:
    """``network(x)`` run by ONNX Runtime: the graph is traced at ``x``'s shape on first use (axes in
    ``dynamic_axes`` may change without a new graph) and its session kept."""

    def __init__(self, network, input_name: str, output_name: str, dynamic_axes: tuple[int, ...] = (),
                 threads: int = 1):
        self.network, self.input_name, self.output_name = network.eval(), input_name, output_name
        self.dynamic_axes, self.threads, self.sessions = tuple(dynamic_axes), threads, {}

    def __call__(self, x):
        import torch

        from dmenet.export import Exportable, onnx_bytes, ort_session

        x = x.float().contiguous()
        key = tuple(None if i in self.dynamic_axes else n for i, n in enumerate(x.shape))
        if key not in self.sessions:
            axes = {i: f"axis{i}" for i in self.dynamic_axes}
            self.sessions[key] = ort_session(onnx_bytes(Exportable(
                self.network, x, [self.input_name], [self.output_name],
                {self.input_name: axes, self.output_name: axes} if axes else None)), self.threads)
        return torch.from_numpy(self.sessions[key].run([self.output_name], {self.input_name: x.numpy()})[0])


def networks(name: str, threads: int):
    """{variant: forward on a fixed input} for one network; the first variant is the PyTorch path of today."""
    import torch

    from dmenet.export import EXPORTERS

    gen = torch.Generator().manual_seed(0)
    if name == "dmenet":
        from dmenet.inference import load_model
        from dmenet.models.fuse import inference_blur

        fast = inference_blur(load_model(None))
        ort = OrtNetwork(EXPORTERS["dmenet"].build(None, (480, 640)).module, "image", "label", threads=threads)
        x = torch.rand(1, 3, 480, 640, generator=gen)
        xc = x.contiguous(memory_format=torch.channels_last)
        return {"pytorch": lambda: fast(xc), "onnxruntime": lambda: ort(x)}
    if name == "distill_student":
        student = EXPORTERS["distill_student"].build(None, (256, 320)).module.to(memory_format=torch.channels_last)
        ort = OrtNetwork(student, "image", "logit", threads=threads)
        xc = torch.rand(1, 3, 256, 320, generator=gen).contiguous(memory_format=torch.channels_last)
        return {"pytorch": lambda: student(xc), "onnxruntime": lambda: ort(xc)}
    from dmenet.galetto import BATCH
    from dmenet.models.fuse import cached_folded_copy

    model = EXPORTERS["galetto"].build(None, (0, 0)).module
    folded = cached_folded_copy(model)
    ort = OrtNetwork(model, "patch", "logits", dynamic_axes=(0,), threads=threads)
    x = torch.rand(WINDOWS, 1, 32, 32, generator=gen)

    def batched(net):
        return lambda: torch.cat([net(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])

    return {"pytorch": batched(folded), "onnxruntime": batched(ort), "onnxruntime, one call": lambda: ort(x)}


def time_variants(variants: dict, repeats: int) -> dict[str, list[float]]:
    from interleave import time_interleaved

    return time_interleaved({k: (lambda _, f=f: f()) for k, f in variants.items()}, lambda: None, repeats, 1)


def report(title: str, times: dict[str, list[float]], delta: float, extra: str = "") -> None:
    from interleave import speedup_rows

    print(f"{title}: max |delta| {delta:.1e}{extra}")
    for name, med, best, ratio in speedup_rows(times):
        print(f"  {name:24s} min {best * 1e3:8.1f} ms  median {med * 1e3:8.1f} ms  x{ratio:.2f} vs first")


@cli.entry_point
def main(argv=None) -> int:
    ap = parser("bench_onnx", __doc__, "python benchmarks/bench_onnx.py --networks dmenet --threads 1 2")
    ap.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    ap.add_argument("--threads", type=cli.positive_int, nargs="+", default=[1, 2], metavar="N",
                    help="torch and ONNX Runtime threads, each timed (default 1 2)")
    ap.add_argument("--repeats", type=cli.positive_int, default=7)
    args = ap.parse_args(argv)
    import torch

    print(f"{machine_line()} at the start")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name in args.networks:
            variants = networks(name, threads)
            with torch.inference_mode():
                want = variants["pytorch"]().float().contiguous()
                t0 = time.perf_counter()
                got = variants["onnxruntime"]()
                first = time.perf_counter() - t0
                times = time_variants(variants, args.repeats)
            report(f"{name}, {threads} thread(s)", times, float((got - want).abs().max()),
                   f", first call (trace + session) {first:.1f} s")
    print(f"load {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
