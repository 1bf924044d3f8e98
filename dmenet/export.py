"""Export a registered network to ONNX and check it against PyTorch.

``python -m dmenet.export --format onnx [--network NAME] [--model FILE] --out FILE.onnx [--size H W]``

Networks (:data:`EXPORTERS`; input float32 in [0, 1], NCHW):

- ``dmenet`` (default): B's σ path with moving BatchNorm statistics, as :mod:`dmenet.models.fuse` runs it
  (BatchNorm folded, 1×1 convolutions as matrix products, no auxiliary heads). Input ``image`` (N, 3, H, W) RGB;
  output ``label`` (N, 1, H, W) in [0, 1], σ px = label·σ_max (``syndof.units.label_to_sigma``), then the model's σ
  curve if it has one (the curve is not in the graph). The detection path normalises with per-image statistics and
  is not exported. A model whose σ path uses per-image statistics (``recipe.sigma.bn`` image, e.g. one trained
  with ``experiments/dmenet_lite_finetune.yaml`` before ``calibrate bn``) is refused (exit 2). The recipe's test-time
  flips are not in the graph either (one pass). ``--size``: multiples of 16.
- ``distill_student`` / ``distill_teacher``: the Distill-DBDGAN network (default model: the shipped student; a
  teacher needs ``--model``). Input ``image`` (N, 3, H, W) RGB; output ``logit`` (N, 1, H, W), blur probability =
  σ(scale·(logit − shift)) with the sidecar's ``logit_scale`` / ``logit_shift``. ``--size``: multiples of 32 (the
  method's working size for a 640×480 photo is 256 320).
- ``galetto``: the blur-level classifier (default model: the shipped one). Input ``patch`` (N, 1, 32, 32) gray;
  output ``logits`` (N, 20), class k = Gaussian σ of k px. The batch axis is dynamic; ``--size`` is refused (exit
  2): the input is fixed 32×32 windows.

Graphs with an image input are traced at one input size (``--size``, default 480 640, each side at most
:data:`MAX_SIZE` = 8192 px) and are valid for that size only; a size whose trace and check would need more memory
than is available (:func:`export_memory`) is refused before the work (exit 2, one line giving the size). Before
anything is written, ONNX Runtime runs the graph on a random input and the largest |Δ| against the PyTorch forward
is printed; above 1e-4 the command fails (exit 1) and writes nothing.
An existing ``--out`` is never replaced, and one not named ``*.onnx`` is refused (exit 2). onnx and onnxruntime
come with the ``export`` extra (``pip install -e .[export]``).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from dmenet import cli as dcli
from syndof import cli
from syndof.io import write_bytes_atomic

if TYPE_CHECKING:
    import torch

TOLERANCE = 1e-4
DEFAULT_SIZE = (480, 640)
"""``--size`` of the networks with an image input when none is given."""
MAX_SIZE = 8192
"""Largest ``--size`` side (px): a graph is traced, and checked, on one full-size input in memory (100000 100000
failed with a traceback inside the allocator)."""


@dataclass(frozen=True)
class Exportable:
    """A network ready to trace: the eval-mode ``module``, an ``example`` input, the graph's input / output names
    and its dynamic axes (``{name: {axis: label}}``; None = every size fixed at the example's)."""

    module: torch.nn.Module
    example: torch.Tensor
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]] | None = None


@dataclass(frozen=True)
class Exporter:
    """``build(model_file, (H, W)) -> Exportable``; ``multiple``: ``--size`` must be multiples of it (0: the network
    takes no ``--size``); ``bytes_per_pixel``: memory the trace and the ONNX Runtime check take per input pixel, in
    bytes, beyond :data:`EXPORT_FIXED_BYTES` (0: not estimated; see :func:`export_memory`)."""

    build: Callable[[str | None, tuple[int, int]], Exportable]
    multiple: int
    bytes_per_pixel: int = 0


EXPORT_FIXED_BYTES = 512 * 2**20
"""Memory of an export besides its per-pixel part (bytes): the model, its traced graph and the ONNX Runtime session
(measured: about 370 MiB for the distill teacher, under 100 MiB for the others)."""


def _example(*shape: int):
    import torch

    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def _dmenet(model_file: str | None, size: tuple[int, int]) -> Exportable:
    import torch

    from dmenet.inference import load_model
    from dmenet.models.fuse import InferenceBlur

    from dmenet.models.model_io import ModelFileError
    from dmenet.models.recipe import BNMode

    model = load_model(model_file)
    if model.recipe.sigma.bn is not BNMode.MOVING:  # the graph folds the moving statistics: it would not be this model
        raise ModelFileError(f"{model_file}: its σ path normalises with per-image BatchNorm statistics (recipe "
                             f"sigma.bn {model.recipe.sigma.bn.value}), which the exported graph (moving statistics, "
                             "folded) does not compute; fit moving statistics first: python -m dmenet.calibrate bn "
                             "--mode moving --model … --synthetic … --out …")
    # the zero-pad + frame-fix rewrite of replicate convs slices in place, which the tracer cannot export
    net = InferenceBlur(model.blur, replicate=False).to(memory_format=torch.contiguous_format).eval()
    return Exportable(net, _example(1, 3, *size), ["image"], ["label"])


def _distill(kind: str, shipped: Callable[[], Path] | None):
    """Exporter of a distill ``kind`` (student | teacher) model file; ``shipped``: where the default file lies."""

    def build(model_file: str | None, size: tuple[int, int]) -> Exportable:
        """The distill ``kind`` network of ``model_file`` (None: the shipped one) with an example input (1, 3, H, W)
        for ``size`` (H, W) px; output: blur logits. ModelFileError when none is shipped or the file holds another
        kind."""
        from dmenet.distill.model_io import load_distill_model
        from dmenet.models.model_io import ModelFileError

        if model_file is None and shipped is None:
            raise ModelFileError(f"--network distill_{kind}: no {kind} is shipped; pass --model")
        model, info = load_distill_model(model_file or shipped())
        if info["kind"] != kind:
            raise ModelFileError(f"{model_file}: a distill {info['kind']}, not a {kind} (--network distill_{kind})")
        return Exportable(model, _example(1, 3, *size), ["image"], ["logit"])

    return build


def _galetto(model_file: str | None, size: tuple[int, int]) -> Exportable:
    from dmenet.galetto import BATCH, PATCH
    from dmenet.galetto.method import DEFAULT_MODEL
    from dmenet.galetto.train import load_classifier

    model = load_classifier(model_file or DEFAULT_MODEL)
    return Exportable(model, _example(BATCH, 1, PATCH, PATCH), ["patch"], ["logits"],
                      {"patch": {0: "windows"}, "logits": {0: "windows"}})


def _shipped_student() -> Path:
    from dmenet.distill.method import DEFAULT_STUDENT

    return DEFAULT_STUDENT


# bytes_per_pixel: the growth of the peak resident memory of build + trace + check between 256², 512² and 1024²
# inputs (CPU, torch 2.13, onnxruntime; 5 Dec 2026), rounded up by a third: dmenet (the shipped lite model) 757 and
# 657 B/px, distill_student (shipped) 912 and 893, distill_teacher (TeacherConfig defaults) 2720 and 2255.
EXPORTERS: dict[str, Exporter] = {
    "dmenet": Exporter(_dmenet, 16, 1000),
    "distill_student": Exporter(_distill("student", _shipped_student), 32, 1200),
    "distill_teacher": Exporter(_distill("teacher", None), 32, 3600),
    "galetto": Exporter(_galetto, 0),
}
"""Registered networks: name → exporter (see the module docstring)."""


def export_memory(exporter: Exporter, size: tuple[int, int]) -> int:
    """Bytes that building, tracing and checking ``exporter``'s graph at ``size`` = (H, W) px needs: about
    :data:`EXPORT_FIXED_BYTES` + ``exporter.bytes_per_pixel``·H·W (measured with the shipped models' widths; a wider
    ``--model`` needs more)."""
    return EXPORT_FIXED_BYTES + exporter.bytes_per_pixel * size[0] * size[1]


def onnx_bytes(net: Exportable) -> bytes:
    """Trace ``net`` on its example input to an ONNX graph (opset 17), returned as bytes."""
    import io

    import torch

    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants: expected
        # the TorchScript exporter is chosen on purpose (the dynamo one needs onnxscript); its notices are expected
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript", DeprecationWarning)
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
        torch.onnx.export(net.module, (net.example,), buffer, dynamo=False, input_names=net.inputs,
                          output_names=net.outputs, dynamic_axes=net.dynamic_axes, opset_version=17)
    return buffer.getvalue()


def export_onnx(net: Exportable, path: Path, threads: int = 1) -> float:
    """Trace ``net`` (:func:`onnx_bytes`), check the graph with ONNX Runtime (:func:`check_onnx`) and write it to
    ``path`` (atomically) only when it is within :data:`TOLERANCE`. Returns the check's max |Δ|."""
    graph = onnx_bytes(net)
    delta = check_onnx(net, graph, threads)
    if delta <= TOLERANCE:
        write_bytes_atomic(path, graph)
    return delta


def ort_session(graph: bytes | Path, threads: int = 1):
    """An ONNX Runtime CPU session of ``graph`` (bytes or a file) with ``threads`` intra-op threads that sleep, not
    spin, between runs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # no busy-waiting between runs: ONNX Runtime's idle threads would otherwise spin and slow the PyTorch work
    # around each call (measured: a PyTorch forward timed right after a spinning session ran 2× slower)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph if isinstance(graph, bytes) else str(graph), opts,
                                providers=["CPUExecutionProvider"])


def check_inputs(net: Exportable) -> list:
    """The inputs :func:`check_onnx` runs: ``net.example``, and for a graph with dynamic axes also the example with
    one item fewer along its first axis (two if it holds one), so a size the trace baked in as a constant shows."""
    import torch

    if not net.dynamic_axes:
        return [net.example]
    n = net.example.shape[0]
    return [net.example, net.example[: n - 1] if n > 1 else torch.cat([net.example, net.example])]


def check_onnx(net: Exportable, graph: bytes | Path, threads: int = 1) -> float:
    """Largest |Δ| between ONNX Runtime's output of ``graph`` (bytes or a file) and the PyTorch module's over
    :func:`check_inputs`; inf where the shapes differ or ONNX Runtime cannot run an input (a traced size)."""
    import numpy as np
    import torch
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException

    session = ort_session(graph, threads)
    delta = 0.0
    for x in check_inputs(net):
        try:
            got = session.run(None, {net.inputs[0]: x.numpy()})[0]
        except (Fail, InvalidArgument, RuntimeException):  # a shape the graph fixed at the example's
            return math.inf
        with torch.inference_mode():
            want = net.module(x).numpy()
        if got.shape != want.shape:
            return math.inf
        delta = max(delta, float(np.abs(got - want).max()))
    return delta


EXAMPLE = "dmenet-export --format onnx --out runs/export_example.onnx --size 64 64"


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m dmenet.export`` argument parser (its description: the module docstring's first paragraph)."""
    p = cli.parser("dmenet.export", __doc__.split("\n\n", 1)[0], EXAMPLE)
    p.add_argument("--format", choices=("onnx",), required=True)
    p.add_argument("--network", choices=sorted(EXPORTERS), default="dmenet", help="network to export (default dmenet)")
    dcli.add_model(p, help="model file (.safetensors + .json sidecar); default the network's shipped file, for dmenet "
                   f"{dcli.DEFAULT_MODEL_TEXT} (distill_teacher: none is shipped, --model is needed)")
    p.add_argument("--out", type=Path, required=True, help="output .onnx file (a new name ending in .onnx)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help=f"input size the graph is traced at (default {DEFAULT_SIZE[0]} {DEFAULT_SIZE[1]}; multiples "
                        f"of 16 for dmenet, 32 for distill_*; at most {MAX_SIZE} per side; not for galetto, whose "
                        "input is 32×32 windows)")
    cli.add_threads(p, default=1)
    return p


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    args = build_parser().parse_args(argv)
    cli.apply_threads(args.threads)
    exporter = EXPORTERS[args.network]
    if not exporter.multiple and args.size is not None:
        return cli.fail(f"--size is not used by --network {args.network} (its input is fixed 32×32 windows, the "
                        "batch axis dynamic); leave --size out")
    h, w = DEFAULT_SIZE if args.size is None else args.size
    if exporter.multiple and (h <= 0 or w <= 0 or h % exporter.multiple or w % exporter.multiple):
        return cli.fail(f"--size must be positive multiples of {exporter.multiple} for --network {args.network}, "
                        f"got {h} {w}")
    if exporter.multiple and max(h, w) > MAX_SIZE:
        return cli.fail(f"--size {h} {w}: each side must be at most {MAX_SIZE} px (the graph is traced and checked "
                        "on one input of that size in memory)")
    if args.out.exists() or args.out.is_symlink():  # never replaced: it may be a model, another export, anything
        return cli.fail(f"--out {args.out}: exists; export to a new name")
    if args.out.suffix.lower() != ".onnx":  # an ONNX graph under x.png was written, exit 0: a "photo" no tool reads
        return cli.fail(f"--out {args.out}: must end in .onnx (the file is an ONNX graph)")
    problem = cli.writable_folder_problem(args.out.parent, f"--out {args.out}")  # before the work
    if problem:
        return cli.fail(problem)
    # On CPU torch reports a failed allocation as a plain RuntimeError (and the kernel may kill the process instead),
    # so the memory is estimated up front; a MemoryError (numpy, Python) during the work is refused the same way.
    if not exporter.multiple:  # fixed 32×32 windows: nothing the user can shrink
        size, advice = f"--network {args.network}", f"{args.out} not written"
    else:
        size = f"--size {h} {w}" if args.size is not None else f"input size {h} {w} (the default)"
        advice = f"choose a smaller --size; {args.out} not written"
    from dmenet import memory

    need, available = export_memory(exporter, (h, w)), memory.available_memory()
    if available is not None and need > available:
        return cli.fail(f"{size}: tracing and checking the graph needs about {need / 2**30:.1f} GiB, "
                        f"{available / 2**30:.1f} GiB available ({advice})")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return cli.fail(f"{exc.name} is not installed (pip install -e .[export])")
    try:
        net = exporter.build(args.model, (h, w))  # bad model file: exit 2
        delta = export_onnx(net, args.out, args.threads)
    except MemoryError:  # anything else keeps its traceback
        return cli.fail(f"{size}: not enough memory to trace and check the graph at this size ({advice})")
    shape = "x".join(str(n) for n in net.example.shape)
    if delta > TOLERANCE:
        inputs = " or ".join("x".join(str(n) for n in x.shape) for x in check_inputs(net))
        print(f"error: {args.network}: ONNX Runtime's output differs from PyTorch's by {delta:.2e} (tolerance "
              f"{TOLERANCE:g}) at input {inputs}; {args.out} not written", file=sys.stderr)
        return 1
    print(f"{args.out}: {args.network}, input {shape}{' (dynamic axes)' if net.dynamic_axes else ''}, "
          f"max |Δ| vs PyTorch {delta:.2e} (tolerance {TOLERANCE:g})")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
