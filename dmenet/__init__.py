"""DMENet (Lee et al., CVPR 2019) in PyTorch: defocus map estimation with domain adaptation.

``dmenet.load_model``, ``dmenet.estimate_defocus``, ``dmenet.estimate_blur_probability`` and
``dmenet.load_predictor`` / ``dmenet.Predictor`` (a model with its inference recipe; :mod:`dmenet.inference`) are
imported on first use, so ``import dmenet`` stays light (no torch import).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "dmenet.inference",
    "estimate_defocus": "dmenet.inference",
    "estimate_blur_probability": "dmenet.inference",
    "load_predictor": "dmenet.inference",
    "Predictor": "dmenet.inference",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dmenet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
