"""The method table: name → factory → :class:`~dmenet.methods.base.Estimator`.

Adding a method is one row of :data:`METHODS` (the factory is imported on first use, so listing the names stays
light). Every tool that takes ``--method`` builds its estimators through :func:`make_method`. A command line names a
method with its own options as ``NAME:key=value,key=value`` (e.g. ``galetto:stride=16,refine=paper``):
:func:`parse_method` reads that into a :class:`MethodChoice`, the same in every entry point. One key is common to
every learned method: ``model=PATH`` (its model file, for that method only; ``--model`` gives one file to all).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass
from typing import Callable, Iterable

import yaml

from dmenet.methods.base import MAP_OPTIONS, Estimator, MethodOptions
from syndof.cli import check_device


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        factory: ``"module:function"``; the function takes a :class:`MethodOptions` and returns an Estimator.
        summary: one line for ``--help`` and reports.
        learned: the method loads a model file (``--model``).
        shared_options: the fields of :data:`~dmenet.methods.base.MAP_OPTIONS` its estimator reads (the others it
            ignores), known without building it: the one place that says so. Read by a tool's help (the methods
            that read ``--flips``, :data:`dmenet.cli.FLIPS_READERS`) and by ``predict``'s settings record (only
            the shared options the method reads, :func:`dmenet.predict_record.settings_record`).
    """

    factory: str
    summary: str
    learned: bool = False
    shared_options: tuple[str, ...] = ()

    @property
    def reads_max_side(self) -> bool:
        """Whether ``max_side`` changes the size the method works at (else it runs at the image's own size)."""
        return "max_side" in self.shared_options

    def load(self) -> Callable[[MethodOptions], Estimator]:
        """Import and return the factory ``module:function`` (options → estimator)."""
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)


METHODS: dict[str, MethodSpec] = {  # distill_*: max_side caps the recipe's working size; flips other than 1 refused
    "dmenet": MethodSpec("dmenet.methods.dmenet:make", "DMENet (Lee et al. 2019): σ map (px) + blur probability", True,
                         MAP_OPTIONS),
    "distill_student": MethodSpec("dmenet.distill.method:make_student",
                                  "Distill-DBDGAN student (Jonna et al. 2023), Lite0 U-Net: blur probability", True,
                                  ("max_side",)),
    "distill_teacher": MethodSpec("dmenet.distill.method:make_teacher",
                                  "Distill-DBDGAN teacher (DenseASPP + attention): blur probability; --model", True,
                                  ("max_side",)),
    "hifst": MethodSpec("dmenet.methods.peers:make_hifst", "HiFST (Golestaneh & Karam 2017), relative blur map",
                        shared_options=("max_side",)),
    "zhuo_sim": MethodSpec("dmenet.methods.peers:make_zhuo_sim",
                           "Zhuo & Sim 2011, σ px (max_blur 3) and σ / max_blur as blur map"),
    "lbp": MethodSpec("dmenet.methods.peers:make_lbp", "LBP sharpness (Yi & Eramian 2016), relative blur map"),
    "laplacian": MethodSpec("dmenet.methods.peers:make_laplacian", "windowed Laplacian variance, relative blur map"),
    "galetto": MethodSpec("dmenet.galetto.method:make", "Galetto & Deng 2023 patch-blur classifier: σ map (px), "
                          "refined", True, ("max_side",)),
    "dmenet_refined": MethodSpec("dmenet.galetto.method:make_dmenet_refined", "DMENet with its maps refined by "
                                 "the image (Galetto & Deng's weighted guided filter)", True, MAP_OPTIONS),
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
    options = options or MethodOptions()
    check_device(None if options.device is None else str(options.device), name="device")  # not torch's own errors
    return METHODS[name].load()(options)


MODEL_KEY = "model"
"""``NAME:model=PATH``: the method's model file, for this method only (any learned method)."""


@dataclass(frozen=True)
class MethodChoice:
    """A method as a command line names it: a registered ``name`` and its own options (``extra``).

    ``str()`` gives the text back (``galetto:stride=16``); :attr:`slug` is a folder-safe form (``galetto_stride-16``).
    """

    name: str
    extra: tuple[tuple[str, object], ...] = ()

    def __str__(self) -> str:
        return self.name + (":" + ",".join(f"{k}={v}" for k, v in self.extra) if self.extra else "")

    @property
    def slug(self) -> str:
        """``name`` plus ``_key-value`` per option, characters other than letters, digits, ``._-`` as ``-``."""
        return self.name + "".join(re.sub(r"[^\w.-]", "-", f"_{k}-{v}") for k, v in self.extra)

    @property
    def spec(self) -> MethodSpec:
        """The registry row of the method."""
        return METHODS[self.name]

    def make(self, options: MethodOptions | None = None) -> Estimator:
        """:func:`make_method` with this choice's options added to ``options.extra`` (a key in both: ValueError).
        The key ``model`` (:data:`MODEL_KEY`) is not passed on as a method option: it sets ``options.model``, so that
        one run can score two model files of one method side by side (``galetto galetto:model=B``). It is a
        ValueError for a method that loads no model file, and when ``options.model`` is set too (``--model``)."""
        options = options or MethodOptions()
        own = [(k, v) for k, v in self.extra if k != MODEL_KEY]
        if len(own) < len(self.extra):
            if not METHODS[self.name].learned:
                raise ValueError(f"method {self}: {self.name} loads no model file ({MODEL_KEY}= applies to "
                                 f"{', '.join(method_names(learned=True))})")
            if options.model is not None:
                raise ValueError(f"method {self}: the model file is given twice (--model and {MODEL_KEY}=)")
            options = dataclasses.replace(options, model=str(dict(self.extra)[MODEL_KEY]))
        clash = sorted({k for k, _ in options.extra} & {k for k, _ in own})
        if clash:
            raise ValueError(f"method option(s) {', '.join(clash)} given twice for {self}")
        return make_method(self.name, dataclasses.replace(options, extra=tuple(options.extra) + tuple(own)))


def parse_method(text: str, names: Iterable[str] | None = None) -> MethodChoice:
    """``NAME`` or ``NAME:key=value,key=value`` → :class:`MethodChoice`; values are YAML scalars (``16`` is an int,
    ``paper`` a string). ``names``: the accepted method names (default: all registered).

    Raises:
        ValueError: unknown name, an option without ``=`` or key, a key given twice, or a non-scalar value. Whether
            the method knows the key is its factory's check (:func:`make_method`).
    """
    allowed = tuple(METHODS if names is None else names)
    name, colon, rest = text.partition(":")
    if name not in allowed:
        raise ValueError(f"unknown method {name!r} in {text!r}; choose from {', '.join(allowed)}")
    if colon and not rest:
        raise ValueError(f"method {text!r}: nothing after ':' (expected {name}:key=value,...)")
    extra: list[tuple[str, object]] = []
    for item in rest.split(",") if rest else ():
        key, eq, raw = (part.strip() for part in item.partition("="))
        if not eq or not key or not raw:
            raise ValueError(f"method {text!r}: option {item!r} is not key=value")
        if key in dict(extra):
            raise ValueError(f"method {text!r}: option {key!r} given twice")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = None
        if isinstance(value, (dict, list)) or value is None:
            raise ValueError(f"method {text!r}: option {key}={raw!r} is not a single value")
        extra.append((key, value))
    return MethodChoice(name, tuple(extra))
