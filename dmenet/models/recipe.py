"""The inference recipe: what happens to an image after the weights, stored beside them in the model sidecar.

A DMENet model file holds the architecture (:class:`dmenet.models.config.ModelConfig`, the weights' shape) and,
apart from it, a :class:`Recipe`: two paths through B, each with its own BatchNorm mode, and the values fitted after
training:

* the **σ path**: B (with :attr:`SigmaPath.bn` statistics) → label × σ_max → the σ curve
  (:mod:`dmenet.models.sigma_curve`; ``None`` = identity) → σ px;
* the **detection path**: B (with :attr:`DetectionPath.bn` statistics) → S's logit z → ``sigmoid(scale·(z − shift))``
  → blur probability in [0, 1] (1 = blurred); or, with a two-label head (:mod:`dmenet.models.detection_head`), z =
  h(that label, B's label with :attr:`DetectionPath.second_bn` statistics); or, with a feature head, z = h(B's
  detection features of the same passes) — one set of passes for σ and detection when both paths share a mode;
* both average B's output over :attr:`Recipe.flips` symmetries of the image (1, 2, 4 or 8).

Each fitted value carries the :class:`Fit` conditions it was fitted under (flips, BatchNorm mode and the source of
the moving statistics, data, tool); :meth:`Recipe.contradictions` lists where the recipe now differs from them (an
override such as ``--flips 1`` on a curve fitted at 8 flips). Everything here is immutable: overrides return
copies. No torch import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dmenet.models.detection_head import DetectionHead, HeadInputs
from dmenet.models.sigma_curve import check_sigma_curve
from syndof.choices import Choice

FLIPS = (1, 2, 4, 8)
"""Symmetry counts for test-time averaging: identity; + left-right mirror; + up-down mirror and 180° rotation;
+ the four transposes. Each costs one forward pass of B."""

TRAINING_STATISTICS = "training"
""":attr:`Recipe.moving_stats` of weights whose moving BatchNorm statistics are training's exponential averages."""


class BNMode(Choice):
    """Which statistics B's BatchNorm layers normalise with at inference (the one name for it).

    IMAGE: the statistics of the input image itself (per tile when tiling), as training normalises each batch.
    MOVING: the moving statistics stored in the weights (:attr:`Recipe.moving_stats` says where they come from).
    """

    IMAGE = "image"
    MOVING = "moving"

    def describe(self) -> str:
        """The mode's wording in recipe text: ``"per-image"`` or ``"moving"``."""
        return "per-image" if self is BNMode.IMAGE else "moving"


def _reject_unknown(cls: type, d: dict[str, Any], where: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping, got {d!r}")
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}")


def _check_flips(flips: int, where: str) -> None:
    if type(flips) is not int or flips not in FLIPS:  # 2.0 == 2 and True == 1, but neither counts passes
        raise ValueError(f"{where} must be one of {FLIPS}, got {flips!r}")


@dataclass(frozen=True)
class Fit:
    """The conditions a fitted value was fitted under.

    Attributes:
        tool: what fitted it (e.g. "dmenet.calibrate sigma").
        flips: test-time symmetries of the maps it was fitted on.
        bn: BatchNorm mode of the path at fitting time (its first input's, for the two-label head).
        bn_source: when the path read B with MOVING statistics (``bn`` MOVING, or a head's second input), which
            moving statistics (:attr:`Recipe.moving_stats` then); None otherwise.
        data: the fitting data (folders or image names).
        date: ISO date-time of the fit, None when unknown (format-1 files).
    """

    tool: str
    flips: int
    bn: BNMode
    bn_source: str | None = None
    data: tuple[str, ...] = ()
    date: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bn", BNMode(self.bn))
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        _check_flips(self.flips, "fit flips")

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (``bn`` as its string value)."""
        return {"tool": self.tool, "flips": self.flips, "bn": self.bn.value, "bn_source": self.bn_source,
                "data": list(self.data), "date": self.date}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "fit") -> "Fit":
        """A record from its JSON dict; ValueError naming ``where`` on unknown keys."""
        _reject_unknown(cls, d, where)
        return cls(**d)


def _path_from_dict(cls: type, d: dict[str, Any], where: str, fit_keys: tuple[str, ...]) -> Any:
    """A path dataclass from its JSON dict, with its :class:`Fit` records (keys ``fit_keys``) rebuilt; the detection
    head's weights too (key ``head``)."""
    _reject_unknown(cls, d, where)
    d = dict(d)
    for key in fit_keys:
        if d.get(key) is not None:
            d[key] = Fit.from_dict(d[key], f"{where}.{key}")
    if d.get("head") is not None:
        d["head"] = DetectionHead.from_dict(d["head"])
    return cls(**d)


@dataclass(frozen=True)
class SigmaPath:
    """σ path: B with ``bn`` statistics, label × σ_max, then ``curve`` (N + 1 σ px at raw σ 0 … σ_max; None =
    identity), fitted under ``curve_fit``."""

    bn: BNMode = BNMode.MOVING
    curve: tuple[float, ...] | None = None
    curve_fit: Fit | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bn", BNMode(self.bn))
        if self.curve is not None:
            object.__setattr__(self, "curve", tuple(float(v) for v in self.curve))
            check_sigma_curve(self.curve, float("inf"))  # the upper bound needs σ_max: Recipe.check

    @property
    def bns(self) -> tuple[BNMode, ...]:
        """BatchNorm modes of the B passes this path needs: (bn,)."""
        return (self.bn,)

    def to_dict(self) -> dict[str, Any]:
        """The σ path as a JSON-ready dict (``curve``: σ px list or None)."""
        return {"bn": self.bn.value, "curve": None if self.curve is None else list(self.curve),
                "curve_fit": None if self.curve_fit is None else self.curve_fit.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SigmaPath":
        """A σ path from its JSON dict (``recipe.sigma`` of the sidecar); ValueError on unknown keys."""
        return _path_from_dict(cls, d, "recipe.sigma", ("curve_fit",))


@dataclass(frozen=True)
class DetectionPath:
    """Detection path: B with ``bn`` statistics, a logit z, ``sigmoid(scale·(z − shift))`` (1 and 0 give the logit's
    own probability), the transform fitted under ``transform_fit``.

    The logit is S's, ``S(label)``, or, with a ``head`` (:mod:`dmenet.models.detection_head`), the two-label head's
    ``h(label, label₂)``, where label₂ is B's output with ``second_bn`` statistics (a second set of passes unless the
    σ path already made it), or a feature head's ``h(features)`` of the ``bn`` passes themselves (no ``second_bn``);
    ``head_fit`` records the conditions the head was trained under.
    """

    bn: BNMode = BNMode.MOVING
    scale: float = 1.0
    shift: float = 0.0
    transform_fit: Fit | None = None
    head: DetectionHead | None = None
    second_bn: BNMode | None = None
    head_fit: Fit | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bn", BNMode(self.bn))
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "shift", float(self.shift))
        if not self.scale > 0:
            raise ValueError(f"recipe.detection.scale must be > 0, got {self.scale}")
        if self.second_bn is not None:
            object.__setattr__(self, "second_bn", BNMode(self.second_bn))
        two_labels = self.head is not None and self.head.source is HeadInputs.LABELS
        if two_labels != (self.second_bn is not None):
            raise ValueError("recipe.detection: a two-label head needs its second_bn, and second_bn needs a two-label "
                             "head (a feature head reads one set of passes)")
        if self.head is not None and self.second_bn is self.bn:
            raise ValueError(f"recipe.detection: the head's two labels would both use {self.bn.describe()} "
                             "BatchNorm statistics (second_bn must differ from bn)")

    @property
    def bns(self) -> tuple[BNMode, ...]:
        """BatchNorm modes of the B passes this path needs: (bn,) for S or a feature head, (bn, second_bn) with a
        two-label head."""
        return (self.bn,) if self.second_bn is None else (self.bn, self.second_bn)

    def to_dict(self) -> dict[str, Any]:
        """The detection path as a JSON-ready dict (head keys only when there is a head, so format-2 files without
        one keep their text)."""
        d = {"bn": self.bn.value, "scale": self.scale, "shift": self.shift,
             "transform_fit": None if self.transform_fit is None else self.transform_fit.to_dict()}
        if self.head is not None:  # files without a head keep their format-2 text unchanged
            d.update(head=self.head.to_dict(), second_bn=None if self.second_bn is None else self.second_bn.value,
                     head_fit=None if self.head_fit is None else self.head_fit.to_dict())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DetectionPath":
        """A detection path from its JSON dict (``recipe.detection``); ValueError on unknown keys."""
        return _path_from_dict(cls, d, "recipe.detection", ("transform_fit", "head_fit"))


@dataclass(frozen=True)
class Recipe:
    """What inference does to an image (see the module docstring).

    Attributes:
        sigma: the σ path. detection: the detection path.
        flips: test-time symmetries averaged on both paths (:data:`FLIPS`).
        moving_stats: where the weights' moving BatchNorm statistics come from (:data:`TRAINING_STATISTICS`, or
            the re-estimation that wrote them).
    """

    sigma: SigmaPath = field(default_factory=SigmaPath)
    detection: DetectionPath = field(default_factory=DetectionPath)
    flips: int = 1
    moving_stats: str = TRAINING_STATISTICS

    def __post_init__(self) -> None:
        _check_flips(self.flips, "recipe flips (--flips)")

    # ------------------------------------------------------------------------------------------------ questions
    def contradictions(self) -> list[str]:
        """One line per fitted value whose fitting conditions differ from this recipe (empty when consistent)."""
        out = []
        det = self.detection
        for what, bns, fit in (("σ curve", self.sigma.bns, self.sigma.curve_fit if self.sigma.curve else None),
                               ("detection transform", det.bns, det.transform_fit),
                               ("detection head", det.bns, det.head_fit if det.head is not None else None)):
            if fit is None:
                continue
            if fit.flips != self.flips:
                plural = "" if fit.flips == 1 else "s"
                out.append(f"the {what} was fitted at {fit.flips} flip{plural}, used at {self.flips}")
            if fit.bn is not bns[0]:
                out.append(f"the {what} was fitted with {fit.bn.describe()} BatchNorm statistics, used with "
                           f"{bns[0].describe()} ones")
            elif BNMode.MOVING in bns and fit.bn_source != self.moving_stats:
                out.append(f"the {what} was fitted on moving statistics from {fit.bn_source!r}; the weights now "
                           f"hold {self.moving_stats!r}")
        return out

    def fit_conditions(self, tool: str, bns: tuple[BNMode, ...], data: tuple[str, ...] | list[str],
                       date: str) -> Fit:
        """A :class:`Fit` for a value fitted now, under this recipe, on a path whose B passes use ``bns``
        (``SigmaPath.bns`` / ``DetectionPath.bns``)."""
        source = self.moving_stats if BNMode.MOVING in bns else None
        return Fit(tool=tool, flips=self.flips, bn=bns[0], bn_source=source, data=tuple(data), date=date)

    # ------------------------------------------------------------------------------------------------ copies
    def with_flips(self, flips: int | None) -> "Recipe":
        """A copy averaging ``flips`` symmetries (None = unchanged)."""
        return self if flips is None else dataclasses.replace(self, flips=flips)

    def without_sigma_curve(self) -> "Recipe":
        """A copy whose σ is B's own output × σ_max (``--raw-sigma``); detection does not change."""
        return dataclasses.replace(self, sigma=SigmaPath(bn=self.sigma.bn))

    def with_sigma_curve(self, curve, fit: Fit | None = None) -> "Recipe":
        """A copy with σ curve ``curve`` (None = identity) fitted under ``fit``."""
        return dataclasses.replace(self, sigma=dataclasses.replace(
            self.sigma, curve=None if curve is None else tuple(curve), curve_fit=fit))

    def with_transform(self, scale: float, shift: float, fit: Fit | None = None) -> "Recipe":
        """A copy with detection transform ``sigmoid(scale·(z − shift))`` fitted under ``fit``."""
        return dataclasses.replace(self, detection=dataclasses.replace(
            self.detection, scale=scale, shift=shift, transform_fit=fit))

    def with_head(self, head: DetectionHead | None, second_bn: BNMode | str | None = None,
                  fit: Fit | None = None) -> "Recipe":
        """A copy whose detection logit is ``head`` on (the detection label, B's label with ``second_bn``) — or, for a
        feature head (``second_bn`` None), on the detection passes' features — trained under ``fit``; ``head`` None =
        S again. The transform is kept (refit it: it was fitted on the other logit)."""
        return dataclasses.replace(self, detection=dataclasses.replace(
            self.detection, head=head, second_bn=None if head is None else second_bn,
            head_fit=None if head is None else fit))

    def with_bn(self, sigma: BNMode | str | None = None, detection: BNMode | str | None = None,
                moving_stats: str | None = None) -> "Recipe":
        """A copy with other BatchNorm modes (None = unchanged) and, when given, another source of the moving
        statistics."""
        return dataclasses.replace(
            self,
            sigma=self.sigma if sigma is None else dataclasses.replace(self.sigma, bn=BNMode(sigma)),
            detection=self.detection if detection is None else dataclasses.replace(self.detection,
                                                                                  bn=BNMode(detection)),
            moving_stats=self.moving_stats if moving_stats is None else moving_stats)

    # ------------------------------------------------------------------------------------------------ text
    def __str__(self) -> str:
        """Two lines: what happens to an image on each path."""
        def bn(mode: BNMode) -> str:
            """A BatchNorm mode in words, naming the moving statistics' source."""
            return "per-image" if mode is BNMode.IMAGE else f"moving ({self.moving_stats})"

        flips = "1 pass" if self.flips == 1 else f"mean of {self.flips} flips"
        curve = "no σ curve" if self.sigma.curve is None else f"{len(self.sigma.curve)}-value σ curve"
        det = self.detection
        if det.head is None:
            logit = "S logit z"
        else:
            widths = "→".join(str(w) for w in det.head.widths)
            if det.head.source is HeadInputs.FEATURES:
                logit = f"head logit z = h({det.head.inputs} features of the same passes) ({widths})"
            else:
                logit = (f"and with {bn(det.second_bn)} ones, head logit z = h(both labels"
                         f"{', the photo mean of the second' if det.head.image_mean else ''}) ({widths})")
        return (f"σ: B with {bn(self.sigma.bn)} BatchNorm statistics, {flips}, label × σ_max, {curve} → σ px\n"
                f"blur probability: B with {bn(det.bn)} BatchNorm statistics, {flips}, {logit} → "
                f"sigmoid({det.scale:g}·(z {'−' if det.shift >= 0 else '+'} {abs(det.shift):g}))")

    # ------------------------------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The recipe as a JSON-ready dict (the sidecar's ``recipe`` entry)."""
        return {"flips": self.flips, "moving_stats": self.moving_stats, "sigma": self.sigma.to_dict(),
                "detection": self.detection.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        """Inverse of :meth:`to_dict`; unknown keys and bad values raise ValueError."""
        _reject_unknown(cls, d, "recipe")
        d = dict(d)
        if "sigma" in d:
            d["sigma"] = SigmaPath.from_dict(d["sigma"])
        if "detection" in d:
            d["detection"] = DetectionPath.from_dict(d["detection"])
        return cls(**d)

    def check(self, sigma_max: float, feature_channels: int | None = None) -> "Recipe":
        """Raise ValueError unless the σ curve suits a model of ``sigma_max`` px and a feature head reads the
        model's ``feature_channels`` (None: not checked); returns self."""
        if self.sigma.curve is not None:
            check_sigma_curve(self.sigma.curve, sigma_max)
        head = self.detection.head
        if (feature_channels is not None and head is not None and head.source is HeadInputs.FEATURES
                and head.inputs != feature_channels):
            raise ValueError(f"recipe.detection.head reads {head.inputs} features a pixel; this model's decoder "
                             f"gives {feature_channels} (the head was fitted on another architecture)")
        return self


# ---------------------------------------------------------------------------------------------- format 1
LEGACY_FIELDS = ("image_bn_stats", "detection_image_bn_stats", "dbd_logit_scale", "dbd_logit_shift", "test_flips",
                 "sigma_curve")
"""The six inference options that format-1 sidecars kept in ``model_config``."""


def _legacy_moving_stats(bn_record: dict[str, Any] | None) -> str:
    """:attr:`Recipe.moving_stats` text for a format-1 ``bn_at_inference`` record."""
    if not bn_record or bn_record.get("mode") != "re-estimated moving statistics":
        return TRAINING_STATISTICS
    parts = [f"{k}={bn_record[k]}" for k in ("synthetic", "real") if bn_record.get(k)]
    return (f"re-estimated on {', '.join(parts) or 'unknown data'} ({bn_record.get('crops_per_domain')} crops of "
            f"{bn_record.get('crop')} px per domain, seed {bn_record.get('seed')})")


def recipe_from_format1(model_config: dict[str, Any], meta: dict[str, Any]) -> Recipe:
    """The recipe a format-1 sidecar describes: its six inference fields of ``model_config`` plus the fitting
    records ``sigma_calibration`` / ``dbd_calibration`` / ``bn_at_inference`` of its other keys.

    A fit's BatchNorm source is taken as the file's current one (format 1 did not record it; every post-training
    tool wrote the statistics before the fits that followed).
    """
    sigma_bn = BNMode.IMAGE if model_config.get("image_bn_stats") else BNMode.MOVING
    det = model_config.get("detection_image_bn_stats")
    det_bn = sigma_bn if det is None else (BNMode.IMAGE if det else BNMode.MOVING)
    moving = _legacy_moving_stats(meta.get("bn_at_inference"))
    flips = int(model_config.get("test_flips", 1))

    def fit(record: dict[str, Any] | None, tool: str, bn: BNMode, data: list[str]) -> Fit | None:
        """The :class:`Fit` of a format-1 calibration record, or None without one."""
        if not record:
            return None
        return Fit(tool=tool, flips=int(record.get("test_flips", flips)), bn=bn,
                   bn_source=moving if bn is BNMode.MOVING else None, data=tuple(data), date=None)

    curve = model_config.get("sigma_curve")
    sig = meta.get("sigma_calibration")
    dbd = meta.get("dbd_calibration")
    return Recipe(
        sigma=SigmaPath(bn=sigma_bn, curve=None if curve is None else tuple(curve),
                        curve_fit=fit(sig, "dmenet.training.fit_sigma", sigma_bn, (sig or {}).get("data", []))
                        if curve is not None else None),
        detection=DetectionPath(
            bn=det_bn, scale=model_config.get("dbd_logit_scale", 1.0), shift=model_config.get("dbd_logit_shift", 0.0),
            transform_fit=fit(dbd, "dmenet.training.fit_dbd", det_bn,
                              [(dbd or {}).get("labelled", "")] if dbd else [])),
        flips=flips,
        moving_stats=moving,
    )


def history_from_format1(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """History entries reconstructed from a format-1 sidecar's records, in the order the tools ran."""
    steps = (("weight_average", "dmenet.training.average", "models"),
             ("bn_at_inference", "dmenet.training.recalibrate", None),
             ("sigma_calibration", "dmenet.training.fit_sigma", "data"),
             ("dbd_calibration", "dmenet.training.fit_dbd", "labelled"))
    out = []
    for key, tool, data_key in steps:
        record = meta.get(key)
        if not record:
            continue
        if data_key is None:
            data = [record[k] for k in ("synthetic", "real") if record.get(k)]
        else:
            value = record.get(data_key)
            data = list(value) if isinstance(value, list) else [value]
        out.append({"tool": tool, "arguments": None, "date": None, "data": data, "record": key})
    return out
