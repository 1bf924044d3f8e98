"""One scoring protocol per evaluation task, behind one interface (no ``task ==`` dispatch anywhere else).

A :class:`Protocol` instance scores one map source on one benchmark folder:

* ``list_samples(need_images, allow_missing_images)`` — the (image, GT) pairs, sorted;
* ``load_gt(sample)`` — GT in the protocol's units (DBD: {0, 1} mask, 1 = blurred; RTF: σ px; SYNDOF: label
  σ/σ_max; sharp photos: None, every pixel is in focus);
* ``score(sample, pred, gt)`` — add one image; returns (GT, prediction) as [0, 1] maps for the report panels;
* ``summary()`` / ``rows`` — set-level numbers and per-image rows; ``tags()`` — how it was scored (metrics.json);
* ``write_curves(out_dir, method)`` — extra report files (DBD: PR and F curves), returning pictures for W&B;
  ``compare(out, results)`` — the same across several methods.

Class attributes tell the caller what to feed it: ``scores_sigma`` (a method that gives σ is scored on its σ map;
otherwise on its blur map) and ``saved_map_kind`` (how a saved prediction file is read). :data:`PROTOCOLS` maps
:attr:`BenchmarkSpec.task` to the class; :func:`make_protocol` builds one.
"""

from __future__ import annotations

import abc
import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np

from dmenet.eval import benchmarks as B
from dmenet.eval import dbd, report, rtf, sharp, syndof_test
from syndof import io, units
from syndof.choices import Choice, choices, parse_choice

POLARITY_CHECK_MIN_IMAGES = 5
"""GT sanity warnings (:meth:`Protocol.warnings`) need at least this many scored images."""
BLURRED_SHARE_MIN = 0.45
"""DBD benchmarks hold photos with a sharp subject on a defocused background, so most GT pixels are blurred (CUHK:
63 % over its 1,000 masks). A set whose GT reads as mostly sharp is probably scored with the wrong ``--benchmark``
(the opposite GT polarity: dut / xu100 masks are white = sharp, cuhk / ctcug white = blurred)."""


class MapKind(Choice):
    """What a source's maps hold: ``blur`` a [0, 1] blur map (1 = blurred), ``label`` a label σ/σ_max (or the
    released DMENet output o) in [0, 1], ``sigma`` Gaussian σ in px."""

    BLUR = "blur"
    LABEL = "label"
    SIGMA = "sigma"


MAP_KINDS = choices(MapKind)


@dataclass(frozen=True)
class ProtocolOptions:
    """Scoring choices of ``python -m dmenet.evaluate`` (each protocol reads the ones that apply to it).

    Attributes:
        resolution: DBD scoring size (:class:`dmenet.eval.dbd.Resolution`); None = the benchmark's default.
        adaptive_factor: DBD headline adaptive-threshold factor c (threshold c·mean; 1.5 and 2.0 are also reported).
        rtf_noise: RTF noise level (:class:`dmenet.eval.rtf.NoiseLevel`).
        sigma_mapping: how a [0, 1] map becomes σ px for RTF (:class:`dmenet.eval.rtf.SigmaMapping`); for SYNDOF,
            ``"sigma"`` reads saved maps as σ px.
        input_size: N when the images were resized to N×N before the method (``--input-size``; DBD only: the
            maps are square and their aspect ratio is checked against 1), else None.
        map_resize: DBD: how a prediction reaches the scoring size (:class:`dmenet.eval.dbd.MapResize`).

    The choices may be given as their string values; they are parsed to members on construction (ValueError naming
    the option otherwise).
    """

    resolution: dbd.Resolution | str | None = None
    adaptive_factor: float = 1.5
    rtf_noise: rtf.NoiseLevel | str = rtf.NoiseLevel.FREE
    sigma_mapping: rtf.SigmaMapping | str = rtf.SigmaMapping.PROJECT
    input_size: int | None = None
    map_resize: dbd.MapResize | str = dbd.MapResize.LINEAR

    def __post_init__(self) -> None:
        object.__setattr__(self, "map_resize", parse_choice(dbd.MapResize, self.map_resize, "map resize"))
        if self.resolution is not None:
            object.__setattr__(self, "resolution", parse_choice(dbd.Resolution, self.resolution, "resolution"))
        object.__setattr__(self, "rtf_noise", parse_choice(rtf.NoiseLevel, self.rtf_noise, "RTF noise level"))
        object.__setattr__(self, "sigma_mapping", parse_choice(rtf.SigmaMapping, self.sigma_mapping,
                                                                "sigma mapping"))


def checked_blur_map(sample: B.Sample, pred: np.ndarray, what: str = "blur map") -> np.ndarray:
    """A [0, 1] map (blur map, or a label σ/σ_max when ``what`` says so) clipped to the range (rounding up to
    :data:`dmenet.eval.dbd.RANGE_TOLERANCE` past it allowed); InputError naming the sample's file when it is further
    outside (a σ-px map or a 0–255 map given as a [0, 1] map). ``pred``: any shape, normally (H, W); returns the
    same shape and dtype in [0, 1] (no unit: a score, or σ/σ_max)."""
    lo, hi = float(pred.min()), float(pred.max())
    if lo < -dbd.RANGE_TOLERANCE or hi > 1 + dbd.RANGE_TOLERANCE:
        raise io.InputError(sample.path, f"{what} outside [0, 1] (values {lo:g} to {hi:g}: a 0-255 or sigma-px map? "
                                         "saved sigma maps need --sigma-mapping sigma)")
    return np.clip(pred, 0, 1)


class Protocol(abc.ABC):
    """Scoring of one task; one instance per (benchmark folder, map source). See the module docstring."""

    task: ClassVar[B.Task]
    scores_sigma: ClassVar[bool]
    saved_map_kind: ClassVar[MapKind]
    rank_key: ClassVar[str]
    higher_better: ClassVar[bool]
    headline_keys: ClassVar[tuple[str, ...]]

    def __init__(self, spec: B.BenchmarkSpec, root: str | Path, options: ProtocolOptions | None = None,
                 map_kind: MapKind | str | None = None, inverted: bool = False):
        self.spec, self.root = spec, Path(root)
        self.options = options or ProtocolOptions()
        self.map_kind = self.saved_map_kind if map_kind is None else parse_choice(MapKind, map_kind, "map kind")
        self.inverted = inverted

    def list_samples(self, need_images: bool = True, allow_missing_images: bool = False) -> list[B.Sample]:
        """Samples of the folder (:func:`dmenet.eval.benchmarks.list_folder_samples`)."""
        return B.list_folder_samples(self.spec, self.root, need_images, allow_missing_images)

    @abc.abstractmethod
    def load_gt(self, sample: B.Sample) -> np.ndarray:
        """GT of one sample in the protocol's units: an (H, W) array (a {0, 1} mask, σ px or a label in [0, 1], as
        each protocol's override says), or None when the sample has no GT file."""

    @abc.abstractmethod
    def score(self, sample: B.Sample, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add one finite 2-D prediction; returns (GT, prediction) as [0, 1] maps to show."""

    def summary(self) -> dict:
        """Set-level numbers (raises ValueError when nothing was scored): the accumulator's, ``self.acc``, which
        every protocol sets up in ``__init__``."""
        return self.acc.summary()

    @property
    def rows(self) -> list[dict]:
        """Per-image rows (``stem`` + the per-image numbers): the accumulator's."""
        return self.acc.rows

    @abc.abstractmethod
    def tags(self) -> dict:
        """How the maps were scored (written to metrics.json as ``protocol``)."""

    def warnings(self) -> list[str]:
        """One-line warnings that the GT looks wrong for this benchmark (empty by default)."""
        return []

    def write_curves(self, out_dir: Path, method: str) -> dict[str, np.ndarray]:
        """Extra report files for one method; returns pictures (name → (H, W, 3) uint8 RGB, 0–255) to log. None by
        default."""
        return {}

    @classmethod
    def compare(cls, out: Path, spec: B.BenchmarkSpec, results: list[dict]) -> None:
        """Extra comparison files for several methods (``results``: evaluate_source's dicts). None by default."""


class DBDProtocol(Protocol):
    """Blur detection against binary masks (docs/evaluation.md §4–§5): HiFST PR protocol, Fmax, MAE, adaptive F."""

    task = B.Task.DBD
    scores_sigma = False
    saved_map_kind = MapKind.BLUR
    rank_key, higher_better = "fmax", True
    headline_keys = ("mae", "fmax", "f_at_0.5", "iou_pooled", "pr_auc")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        c = self.options.adaptive_factor
        self.acc = dbd.DBDAccumulator(resolution=self.options.resolution or self.spec.default_resolution,
                                      adaptive_factors=(c,) + tuple(x for x in (1.5, 2.0) if x != c),
                                      square_input=self.options.input_size is not None,
                                      white_is_blurred=bool(self.spec.white_is_blurred),
                                      map_resize=self.options.map_resize)
        self.gt_blurred, self.gt_pixels = 0, 0  # share of GT pixels read as blurred (polarity check)

    def load_gt(self, sample: B.Sample) -> np.ndarray:
        """GT blur mask (H, W) of one sample, {0, 1} float32 (1 = blurred), the benchmark's file polarity normalised
        by :func:`dmenet.eval.benchmarks.read_mask`."""
        return B.read_mask(sample.gt, white_is_blurred=bool(self.spec.white_is_blurred))

    def score(self, sample, pred, gt):
        """Add one blur map ``pred`` (H', W') in [0, 1] (1 = blurred; InputError naming the file when outside [0, 1]
        or its shape does not fit the GT) against the {0, 1} mask ``gt`` (H, W); returns (gt, pred) as [0, 1] maps
        for the report panels."""
        try:
            pred = checked_blur_map(sample, pred)
            self.acc.check_pair(pred, gt)  # the map's and the GT's problems before the GT file is read again
        except ValueError as exc:  # shape / aspect / GT problems: name the file
            raise io.InputError(sample.path, str(exc)) from exc
        # SG's FM binarises the GT file's own values (> 0.1 of white), not the >= 0.5 mask: read them again
        self.acc.add(sample.stem, pred, gt, white_level=B.read_mask_level(sample.gt))
        self.gt_blurred += int(np.count_nonzero(gt))
        self.gt_pixels += gt.size
        return gt, pred

    def warnings(self) -> list[str]:
        """A polarity warning when fewer than :data:`BLURRED_SHARE_MIN` of the scored GT pixels read as blurred
        (needs :data:`POLARITY_CHECK_MIN_IMAGES` images); else empty."""
        if len(self.rows) < POLARITY_CHECK_MIN_IMAGES or not self.gt_pixels:
            return []
        share = self.gt_blurred / self.gt_pixels
        if share >= BLURRED_SHARE_MIN:
            return []
        return [f"{self.root}: only {share:.0%} of the GT pixels read as blurred with --benchmark {self.spec.name}'s "
                f"polarity ({'white' if self.spec.white_is_blurred else 'black'} = blurred), where defocus sets are "
                "mostly blurred: is --benchmark right for this folder?"]

    def tags(self) -> dict:
        """The DBD scoring conventions (accumulator protocol, GT / prediction polarity, binarisation, threshold
        rules) for metrics.json."""
        pol = "GT white = blurred, used as is" if self.spec.white_is_blurred else \
            "GT white = in focus, inverted on load (1 = blurred)"
        pred_pol = "sharpness map inverted (1 - x) before scoring" if self.inverted \
            else "blur map as produced (1 = blurred)"
        return {**self.acc.protocol(), "gt_polarity": pol, "prediction_polarity": pred_pol,
                "gt_binarisation": "gray >= 0.5 (sg_fm: GT value/255 > 0.1 of the white class, as SG eval.py)",
                "threshold_rule": "sweep i/255 (fmax), 0.5 (f_at_0.5, iou), adaptive c*mean, PR 0..255"}

    def write_curves(self, out_dir: Path, method: str) -> dict[str, np.ndarray]:
        """Write ``pr_curve.csv``, ``f_curve.csv`` and ``pr_curve.png`` (thresholds in [0, 1]) to ``out_dir``;
        returns {"pr_curve": the PNG as uint8 RGB (H, W, 3)}."""
        import cv2

        thr, p, r = self.acc.pr_curve()
        report.write_pr_csv(out_dir / "pr_curve.csv", thr, p, r)
        ft, fp, fr, ff = self.acc.f_curve()
        report.write_csv(out_dir / "f_curve.csv", [{"threshold": float(t), "precision": float(a), "recall": float(b),
                                                     "f": float(c)} for t, a, b, c in zip(ft, fp, fr, ff)])
        report.plot_pr_curves(out_dir / "pr_curve.png", {method: (p, r)},
                              f"{self.spec.name} ({self.acc.resolution.value}), HiFST PR protocol")
        return {"pr_curve": cv2.cvtColor(cv2.imread(str(out_dir / "pr_curve.png")), cv2.COLOR_BGR2RGB)}

    @classmethod
    def compare(cls, out: Path, spec: B.BenchmarkSpec, results: list[dict]) -> None:
        """Plot every method's PR curve (read from each result's ``out``/pr_curve.csv) into one ``out``/pr_curve.png."""
        curves = {}
        for r in results:
            with open(Path(r["out"]) / "pr_curve.csv") as fh:
                pr = list(csv.DictReader(fh))
            curves[r["method"]] = (np.array([float(x["precision"]) for x in pr]),
                                   np.array([float(x["recall"]) for x in pr]))
        report.plot_pr_curves(out / "pr_curve.png", curves, f"{spec.name}, HiFST PR protocol")


class _RegressionProtocol(Protocol):
    """Per-image MSE / MAE averaged over images (RTF, SYNDOF)."""

    scores_sigma = True
    saved_map_kind = MapKind.LABEL
    rank_key, higher_better = "mae", False
    headline_keys = ("mse", "mae")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.acc = rtf.RegressionAccumulator()


class RTFProtocol(_RegressionProtocol):
    """DMENet's RTF protocol (:mod:`dmenet.eval.rtf`): σ px clipped to [0, 3.275] and normalised."""

    task = B.Task.RTF

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        table = rtf.find_table(self.root, self.options.rtf_noise)
        self.table = rtf.load_conversion_table(table) if table else None
        self.mapping = rtf.SigmaMapping.SIGMA if self.map_kind is MapKind.SIGMA else self.options.sigma_mapping

    def list_samples(self, need_images: bool = True, allow_missing_images: bool = False) -> list[B.Sample]:
        """The RTF samples of the folder at the configured noise level (:func:`dmenet.eval.rtf.list_rtf`); the two
        flags are ignored."""
        return rtf.list_rtf(self.root, self.options.rtf_noise)

    def load_gt(self, sample: B.Sample) -> np.ndarray:
        """GT σ map (H, W) in px, float, of one RTF sample (:func:`dmenet.eval.rtf.load_rtf_gt`; ``.mat`` radii
        converted by the noise level's table)."""
        return rtf.load_rtf_gt(sample.gt, self.table)

    def score(self, sample, pred, gt):
        """Add one prediction (H, W): σ px for the ``sigma`` mapping, else a label / output o in [0, 1] (InputError
        when outside) turned into σ px by the mapping; the errors are in RTF units (σ clipped to [0, 3.275] px /
        3.275). Returns (GT, prediction) in those [0, 1] units."""
        if self.mapping is not rtf.SigmaMapping.SIGMA:  # a label / output o in [0, 1], not σ px or 0-255
            pred = checked_blur_map(sample, pred, f"{self.map_kind.value} map")
        sigma = rtf.prediction_to_sigma(pred, self.mapping)
        try:
            errors = rtf.rtf_errors(sigma, gt)
        except ValueError as exc:
            raise io.InputError(sample.path, str(exc)) from exc
        self.acc.add(sample.stem, *errors)
        return rtf.normalise_sigma(gt), rtf.normalise_sigma(sigma)

    def tags(self) -> dict:
        """The RTF scoring conventions (σ mapping, noise level) for metrics.json."""
        return rtf.rtf_protocol(self.mapping, self.options.rtf_noise)


class SyndofProtocol(_RegressionProtocol):
    """SYNDOF test folders (:mod:`dmenet.eval.syndof_test`): label σ/σ_max errors."""

    task = B.Task.SYNDOF

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_coc = syndof_test.read_max_coc(self.root)
        self.pred_is_sigma = self.map_kind is MapKind.SIGMA or self.options.sigma_mapping is rtf.SigmaMapping.SIGMA
        self.gt_all_binary = True  # every GT label map holds only 0 and 1 (a DBD mask, not σ labels)

    @cached_property
    def gt_kind(self) -> syndof_test.GTKind:
        """How the GT folder encodes labels, decided once from its name (InputError when there is none)."""
        return syndof_test.gt_kind(B.find_dir(self.root, self.spec.gt_dirs))

    def load_gt(self, sample: B.Sample) -> np.ndarray:
        """GT label σ/σ_max (H, W) in [0, 1], float32, of one SYNDOF test sample."""
        return syndof_test.load_label(sample.gt, self.root, self.gt_kind)

    def score(self, sample, pred, gt):
        """Add one prediction (H, W): σ px (converted by :func:`syndof.units.sigma_to_label` with the folder's
        max_coc) or a label σ/σ_max in [0, 1] (InputError when outside); errors are in label units. Returns (gt,
        label) as [0, 1] maps."""
        if self.pred_is_sigma:
            label = units.sigma_to_label(pred, self.max_coc)
        else:  # a label σ/σ_max in [0, 1], not σ px or 0-255
            label = checked_blur_map(sample, pred, f"{self.map_kind.value} map")
        self.gt_all_binary = self.gt_all_binary and bool(np.all((gt == 0) | (gt == 1)))
        try:
            errors = syndof_test.label_errors(label, gt)
        except ValueError as exc:
            raise io.InputError(sample.path, str(exc)) from exc
        self.acc.add(sample.stem, *errors)
        return gt, label

    def warnings(self) -> list[str]:
        """A warning when every scored GT map holds only 0 and 1 (binary masks rather than σ labels; needs
        :data:`POLARITY_CHECK_MIN_IMAGES` images); else empty."""
        if len(self.rows) < POLARITY_CHECK_MIN_IMAGES or not self.gt_all_binary:
            return []
        return [f"{self.root}: every GT map holds only 0 and 1 (binary blur masks, not σ labels): is --benchmark "
                f"{self.spec.name} right for this folder?"]

    def tags(self) -> dict:
        """The SYNDOF scoring conventions (GT encoding, max_coc in px) for metrics.json."""
        return syndof_test.syndof_protocol(self.gt_kind, self.max_coc)


class SharpProtocol(Protocol):
    """Photos sharp everywhere, no GT files (:mod:`dmenet.eval.sharp`, docs/evaluation.md §12): the false blur of a
    blur map, per image and over the set (lower is better)."""

    task = B.Task.SHARP
    scores_sigma = False
    saved_map_kind = MapKind.BLUR
    rank_key, higher_better = "mean_blur", False
    headline_keys = ("mean_blur", "blurred_share", "worst_mean_blur")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.acc = sharp.SharpAccumulator()

    def list_samples(self, need_images: bool = True, allow_missing_images: bool = False) -> list[B.Sample]:
        """The folder's photos, with no GT (:func:`dmenet.eval.benchmarks.list_image_samples`); the two flags are
        ignored."""
        return B.list_image_samples(self.spec, self.root)

    def load_gt(self, sample: B.Sample) -> None:
        """None: a sharp photo has no GT file (every pixel is in focus)."""
        return None

    def score(self, sample, pred, gt):
        """Add one blur map ``pred`` (H, W) in [0, 1] (1 = blurred; InputError when outside); ``gt`` is ignored.
        Returns (zeros like pred, pred)."""
        pred = checked_blur_map(sample, pred)
        self.acc.add(sample.stem, pred)
        return np.zeros_like(pred), pred

    def tags(self) -> dict:
        """The sharp-photo scoring conventions (prediction polarity) for metrics.json."""
        return sharp.sharp_protocol(self.inverted)


PROTOCOLS: dict[B.Task, type[Protocol]] = {cls.task: cls for cls in (DBDProtocol, RTFProtocol, SyndofProtocol,
                                                                   SharpProtocol)}
"""Task name (:attr:`BenchmarkSpec.task`) → protocol class."""


def protocol_class(spec: B.BenchmarkSpec) -> type[Protocol]:
    """The protocol class of a benchmark."""
    try:
        return PROTOCOLS[spec.task]
    except KeyError:
        raise ValueError(f"benchmark {spec.name!r} has unknown task {spec.task!r}; known: {', '.join(PROTOCOLS)}") \
            from None


def make_protocol(spec: B.BenchmarkSpec, root: str | Path, options: ProtocolOptions | None = None,
                  map_kind: MapKind | str | None = None, inverted: bool = False) -> Protocol:
    """A fresh protocol instance for ``spec`` at ``root`` scoring maps of ``map_kind`` (default: saved maps)."""
    return protocol_class(spec)(spec, root, options, map_kind, inverted)
