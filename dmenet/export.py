"""Export a registered network to ONNX and check it against PyTorch.

``python -m dmenet.export --format onnx [--model FILE] --out FILE.onnx [--network dmenet] [--size H W]``

The DMENet export is B's σ path with moving BatchNorm statistics, as :mod:`dmenet.models.fuse` runs it:
BatchNorm folded, 1×1 convolutions as matrix products, no auxiliary heads. Input ``image`` is (N, 3, H, W) float32
RGB in [0, 1]. Output ``label`` is (N, 1, H, W) in [0, 1], with σ px = label·σ_max (``syndof.units.label_to_sigma``),
and then the model's σ curve if it has one (the curve is not in the graph). The graph is traced at one input size
(``--size``, multiples of 16, default 480 640) and is valid for that size only. The detection path normalises with
per-image statistics and is not exported.

After the export, ONNX Runtime runs the file on a random input of that size and the largest |Δ| against the
PyTorch forward is printed. The command fails (exit 1) above 1e-4. onnx and onnxruntime come with the ``export``
extra (``pip install -e .[export]``).

Other networks register an exporter in :data:`EXPORTERS`: ``name -> fn(model_file, size) -> (module, example
input, input names, output names)``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Sequence

from dmenet import cli as dcli
from syndof import cli

TOLERANCE = 1e-4


def _dmenet(model_file: str | None, size: tuple[int, int]):
    import torch

    from dmenet.inference import load_model
    from dmenet.models.fuse import InferenceBlur

    model = load_model(model_file)
    # the zero-pad + frame-fix rewrite of replicate convs slices in place, which the tracer cannot export
    net = InferenceBlur(model.blur, replicate=False).to(memory_format=torch.contiguous_format).eval()
    return net, torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)), ["image"], ["label"]


EXPORTERS: dict[str, Callable] = {"dmenet": _dmenet}
"""Registered networks: name → exporter (see the module docstring)."""


def export_onnx(module, example, path: Path, input_names: list[str], output_names: list[str]) -> None:
    """Trace ``module`` on ``example`` to an ONNX file at ``path``, written atomically (opset 17)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants: expected
            torch.onnx.export(module, (example,), tmp, dynamo=False, input_names=input_names,
                              output_names=output_names, opset_version=17)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_onnx(module, example, path: Path, threads: int = 1) -> float:
    """Largest |Δ| between ONNX Runtime's output for ``example`` and the PyTorch module's."""
    import numpy as np
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: example.numpy()})[0]
    with torch.inference_mode():
        want = module(example).numpy()
    return float(np.abs(got - want).max())


EXAMPLE = "dmenet-export --format onnx --out runs/export_example.onnx --size 64 64"


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("dmenet.export", __doc__.split("\n\n", 1)[0], EXAMPLE)
    p.add_argument("--format", choices=("onnx",), required=True)
    p.add_argument("--network", choices=sorted(EXPORTERS), default="dmenet")
    dcli.add_model(p)
    p.add_argument("--out", type=Path, required=True, help="output .onnx file")
    p.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"),
                   help="input size the graph is traced at (multiples of 16)")
    cli.add_threads(p, default=1)
    return p


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.apply_threads(args.threads)
    h, w = args.size
    if h <= 0 or w <= 0 or h % 16 or w % 16:
        return cli.fail(f"--size must be positive multiples of 16, got {h} {w}")
    if args.out.exists() and args.out.is_dir():
        return cli.fail(f"--out {args.out} is a folder")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return cli.fail(f"{exc.name} is not installed (pip install -e .[export])")
    module, example, inputs, outputs = EXPORTERS[args.network](args.model, (h, w))  # bad model file: exit 2
    export_onnx(module, example, args.out, inputs, outputs)
    delta = check_onnx(module, example, args.out, args.threads)
    print(f"{args.out}: {args.network} at {h}x{w}, max |Δ| vs PyTorch {delta:.2e} (tolerance {TOLERANCE:g})")
    return 0 if delta <= TOLERANCE else 1

if __name__ == "__main__":
    raise SystemExit(main())
