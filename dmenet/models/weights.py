"""Reading torchvision-format ImageNet weights (``features.N.*``) into DMENet's encoders, strictly.

Accepted files: ``.safetensors`` (its ``__metadata__`` may state the input convention) or a weights-only ``.pth``
(``torch.load(weights_only=True)``, a flat ``{name: tensor}`` dict as torchvision ships). Only ``features.*`` keys are
used; ``classifier.*`` keys and, for the MobileNetV2 encoder, blocks ``features.14`` … ``features.18`` (beyond 1/16)
are dropped by name; any other key, a missing encoder key or a shape mismatch raises ``WeightsError``.
"""

from __future__ import annotations

import contextlib
import pickle
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import Tensor, nn

from dmenet.models.config import DEFAULT_CONVENTION, INPUT_CONVENTIONS


class WeightsError(ValueError):
    """A weights file that does not fit the encoder; the message names the file and the keys."""


def state_mismatch(expected: Mapping[str, Tensor], given: Mapping[str, Tensor],
                   optional: Callable[[str], bool] = lambda key: False) -> str | None:
    """How ``given`` fails to fit ``expected`` (a module's ``state_dict()``), in one phrase, or None when it fits:
    missing and unexpected keys (up to 8 of each), else the first tensor whose shape differs. Keys for which
    ``optional`` is true may be missing. The one check behind every strict weights loader (model files, ImageNet
    encoders)."""
    missing = sorted(k for k in expected if k not in given and not optional(k))
    extra = sorted(k for k in given if k not in expected)
    if missing or extra:
        more = lambda keys: "…" if len(keys) > 8 else ""  # noqa: E731
        return f"missing keys {missing[:8]}{more(missing)}, unexpected keys {extra[:8]}{more(extra)}"
    for k in expected:
        if k in given and tuple(given[k].shape) != tuple(expected[k].shape):
            return f"shape mismatch at {k}: {tuple(given[k].shape)}, expected {tuple(expected[k].shape)}"
    return None


# Keys dropped on purpose, per encoder (regular expressions on the full key).
DROPPED_KEYS = {
    "vgg19": [r"classifier\..*"],
    "vgg16": [r"classifier\..*"],
    "mobilenet_v2": [r"classifier\..*", r"features\.(1[4-8])\..*"],
}


def read_weights_file(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Return ({name: tensor}, metadata) of a ``.safetensors`` or weights-only ``.pth`` file: each tensor on the CPU
    with the shape and dtype the file stores (not converted; {} metadata for ``.pth``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        with _open_safetensors(path) as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return tensors, meta
    if path.suffix in (".pth", ".pt", ".bin"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            # weights_only=True refuses any pickle that is not plain tensors/containers: nothing from it ran
            raise WeightsError(f"{path}: not a weights-only torch file (refused by torch.load(weights_only=True): "
                               f"{str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__})") from None
        if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
            raise WeightsError(f"{path}: expected a flat {{name: tensor}} state dict (torchvision format)")
        return dict(obj), {}
    raise WeightsError(f"{path}: unsupported weights format {path.suffix!r} (use .safetensors or .pth)")


def read_weights_metadata(path: str | Path) -> dict[str, str]:
    """A ``.safetensors`` file's ``__metadata__`` (header only, no tensors); {} for other formats."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    with _open_safetensors(path) as f:
        return dict(f.metadata() or {})


def check_can_open(path: Path, error: type[ValueError]) -> None:
    """``error("PATH: reason")`` when the file ``path`` cannot be opened for reading (``Permission denied``, an I/O
    error), else nothing: safetensors says "No such file or directory" of a file it may not read, which was reported
    as "empty, truncated or corrupt". The one check of :func:`_open_safetensors` and
    :func:`dmenet.models.model_io.read_tensors`."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise error(f"{path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _open_safetensors(path: Path) -> Iterator[Any]:
    """``safe_open`` whose corrupt-file errors become a :class:`WeightsError` naming ``path``."""
    from safetensors import SafetensorError, safe_open

    check_can_open(path, WeightsError)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            yield f
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file (empty, truncated or corrupt: {exc})") from None


def convention_from_metadata(meta: dict[str, str]) -> str | None:
    """Input convention stated by a file's metadata (``input_convention`` key, or parsed from the ``input`` text)."""
    if meta.get("input_convention") in INPUT_CONVENTIONS:
        return meta["input_convention"]
    text = meta.get("input", "").replace(" ", "").lower()
    if not text:
        return None
    if "[-1,1]" in text or "127.5-1" in text:
        return "minus_one_one"
    if "std" in text and "nostd" not in text:
        return "imagenet"
    if "bgr" in text:
        return "caffe_bgr"
    if "rgb" in text and ("123.68" in text or "0-255" in text):
        return "caffe_rgb"
    return None


def resolve_convention(encoder: str, configured: str | None, path: str | Path | None,
                       meta: dict[str, str]) -> tuple[str, str]:
    """(convention, source): config > file metadata > ``.pth`` → torchvision "imagenet" > encoder default."""
    if configured is not None:
        return configured, "config"
    found = convention_from_metadata(meta)
    if found is not None:
        return found, "file metadata"
    if path is not None and Path(path).suffix != ".safetensors":
        return "imagenet", "torchvision .pth default"
    return DEFAULT_CONVENTION[encoder], "encoder default"


def encoder_state_from_file(tensors: dict[str, Tensor], encoder: nn.Module, arch: str,
                            path: str | Path = "<weights>") -> dict[str, Tensor]:
    """Map a torchvision ``features.*`` dict onto ``encoder.features`` strictly; returns the state to load.

    ``num_batches_tracked`` buffers may be absent from the file (torchvision and Keras exports differ); every
    parameter and running statistic must be present with the right shape.
    """
    dropped = [re.compile(p) for p in DROPPED_KEYS[arch]]
    wanted = {f"features.{k}": v for k, v in encoder.features.state_dict().items()}
    kept = {k: v for k, v in tensors.items() if not any(p.fullmatch(k) for p in dropped)}
    problem = state_mismatch(wanted, kept, optional=lambda k: k.endswith("num_batches_tracked"))
    if problem:
        raise WeightsError(f"{path}: not a torchvision {arch} encoder file — {problem}")
    return {k: v.to(wanted[k].dtype) for k, v in kept.items()}


def load_encoder_weights(encoder: nn.Module, arch: str, tensors: dict[str, Tensor] | str | Path,
                         path: str | Path = "<weights>") -> None:
    """Load a torchvision dict (or the file at ``tensors``) into ``encoder.features``, strict on the encoder's keys."""
    if isinstance(tensors, (str, Path)):
        path = tensors
        tensors, _ = read_weights_file(tensors)
    state = encoder_state_from_file(tensors, encoder, arch, path)
    current = encoder.features.state_dict()
    for key in current:
        if f"features.{key}" in state:
            current[key] = state[f"features.{key}"]
    encoder.features.load_state_dict(current, strict=True)
