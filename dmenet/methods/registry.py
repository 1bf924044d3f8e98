"""The method table: name → factory → :class:`~dmenet.methods.base.Estimator`.

Adding a method is one row of :data:`METHODS` (the factory is imported on first use, so listing the names stays
light). Every tool that takes ``--method`` builds its estimators through :func:`make_method`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from dmenet.methods.base import Estimator, MethodOptions


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        factory: ``"module:function"``; the function takes a :class:`MethodOptions` and returns an Estimator.
        summary: one line for ``--help`` and reports.
        learned: the method loads a model file (``--model``).
    """

    factory: str
    summary: str
    learned: bool = False

    def load(self) -> Callable[[MethodOptions], Estimator]:
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)


METHODS: dict[str, MethodSpec] = {
    "dmenet": MethodSpec("dmenet.methods.dmenet:make", "DMENet (Lee et al. 2019): σ map (px) + blur probability", True),
    "distill_student": MethodSpec("dmenet.distill.method:make_student",
                                  "Distill-DBDGAN student (Jonna et al. 2023), Lite0 U-Net: blur probability", True),
    "distill_teacher": MethodSpec("dmenet.distill.method:make_teacher",
                                  "Distill-DBDGAN teacher (DenseASPP + attention): blur probability; --model", True),
    "hifst": MethodSpec("dmenet.methods.peers:make_hifst", "HiFST (Golestaneh & Karam 2017), relative blur map"),
    "zhuo_sim": MethodSpec("dmenet.methods.peers:make_zhuo_sim", "Zhuo & Sim 2011, σ / 3 px as blur map"),
    "lbp": MethodSpec("dmenet.methods.peers:make_lbp", "LBP sharpness (Yi & Eramian 2016), relative blur map"),
    "laplacian": MethodSpec("dmenet.methods.peers:make_laplacian", "windowed Laplacian variance, relative blur map"),
    "galetto": MethodSpec("dmenet.galetto.method:make", "Galetto & Deng 2023 patch-blur classifier: σ map (px), "
                          "refined", True),
    "dmenet_refined": MethodSpec("dmenet.galetto.method:make_dmenet_refined", "DMENet with its maps refined by "
                                 "the image (Galetto & Deng's weighted guided filter)", True),
}


def method_names(learned: bool | None = None) -> tuple[str, ...]:
    """Registered names (all, or only the learned / classical ones)."""
    return tuple(n for n, s in METHODS.items() if learned is None or s.learned == learned)


def make_method(name: str, options: MethodOptions | None = None) -> Estimator:
    """Build the estimator registered as ``name``.

    Raises:
        ValueError: unknown name, or an option the method rejects.
        FileNotFoundError / dmenet.models.model_io.ModelFileError: a learned method's model file is missing or
            unreadable.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name].load()(options or MethodOptions())
