"""Scoring a set of blur-detection maps: resolution handling and per-set aggregation (docs/evaluation.md §4–§5).

:class:`DBDAccumulator` takes one (prediction, GT) pair at a time — prediction in the project polarity
(1 = blurred, float in [0, 1]) at any size, GT binary at its native size — and keeps only per-threshold sums, so
memory does not grow with the set. ``summary()`` returns every protocol's numbers with their names spelled out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from dmenet.eval import metrics as M
from syndof.choices import Choice, choices, parse_choice


class Resolution(Choice):
    """DBD scoring size (:func:`prepare_pair`): ``native`` the GT's own size (the prediction is resized to it;
    HiFST / D-DFFNet style), ``320`` both maps at 320×320 px (SG / MLDBD style)."""

    NATIVE = "native"
    R320 = "320"


RESOLUTIONS = choices(Resolution)


class MapResize(Choice):
    """How a prediction is brought to the scoring size (:func:`resize_map`): ``linear`` area averaging when
    shrinking both sides, else bilinear (the default); ``nearest`` nearest neighbour, D-DFFNet's upsampling of its
    320² maps to the GT (``--input-size 320 --resolution native --map-resize nearest`` is its protocol)."""

    LINEAR = "linear"
    NEAREST = "nearest"


MAP_RESIZES = choices(MapResize)
EVAL_SIZE_320 = (320, 320)
RANGE_TOLERANCE = 1e-6
"""A prediction may pass [0, 1] by this much (float rounding; clipped); further out it is refused."""
ASPECT_TOLERANCE = 0.05
"""Largest relative difference between the prediction's and the GT's aspect ratio h/w (resizing to the GT size
absorbs rounding and ×16 crops; a transposed or foreign map is refused)."""


def resize_map(pred: np.ndarray, shape: tuple[int, int], how: MapResize = MapResize.LINEAR) -> np.ndarray:
    """Resize a continuous map to ``shape`` (H, W): :class:`MapResize` ``how`` (linear: area averaging when
    shrinking both sides, else bilinear; nearest: nearest neighbour).

    ``pred`` is a 2-D (h, w) map in [0, 1] (a score or mask, no unit); returns (H, W) float32 clipped to [0, 1]. A
    map already of ``shape`` is returned as float32 unchanged (not clipped)."""
    pred = np.asarray(pred, dtype=np.float32)
    if pred.shape == tuple(shape):
        return pred
    shrink = shape[0] <= pred.shape[0] and shape[1] <= pred.shape[1]
    interp = cv2.INTER_NEAREST if how is MapResize.NEAREST else cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.clip(cv2.resize(pred, (shape[1], shape[0]), interpolation=interp), 0.0, 1.0)


def resize_mask(gt: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a binary mask to ``shape``: area-average (bilinear when enlarging), then ``>= 0.5``.

    ``gt`` (h, w) bool or {0, 1} (1 = blurred) → (H, W) = ``shape`` bool."""
    gt = np.asarray(gt, dtype=np.float32)
    if gt.shape == tuple(shape):
        return gt >= 0.5
    return resize_map(gt, shape) >= 0.5


def prepare_pair(pred: np.ndarray, gt: np.ndarray, resolution: Resolution | str,
                 map_resize: MapResize | str = MapResize.LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """Bring prediction and GT to the scoring resolution (:class:`Resolution` or its value; ValueError otherwise).

    ``native``: the prediction is resized to the GT size (HiFST / D-DFFNet style; D-DFFNet upsamples with
    nearest: ``map_resize`` :class:`MapResize`, default linear). ``320``: both go to 320×320 (SG / MLDBD style).

    ``pred`` (h, w) in [0, 1] (1 = blurred), ``gt`` (H, W) bool or {0, 1}. Returns (prediction, GT) of the same
    (H', W'): :func:`resize_map`'s float32 in [0, 1] and :func:`resize_mask`'s bool.
    """
    resolution = parse_choice(Resolution, resolution, "resolution")
    how = parse_choice(MapResize, map_resize, "map resize")
    shape = tuple(np.asarray(gt).shape) if resolution is Resolution.NATIVE else EVAL_SIZE_320
    return resize_map(pred, shape, how), resize_mask(gt, shape)


@dataclass
class DBDAccumulator:
    """Running per-image scores and per-threshold sums of a DBD evaluation.

    Attributes:
        resolution: :class:`Resolution` (its value ``"native"`` or ``"320"`` is parsed on construction).
        map_resize: :class:`MapResize`, how the prediction reaches the scoring size (default linear).
        adaptive_factors: factors c of the adaptive threshold ``min(1, c·mean)``; the first is the headline one.
        fixed_threshold: D-DFFNet's fixed threshold (0.5).
        beta2: β² of the F-measure (0.3).
        square_input: predictions are maps of images resized to N×N (``evaluate --input-size``): their aspect
            ratio is checked against 1, not the GT's.
        white_is_blurred: the benchmark's GT polarity (True: white = blurred, CUHK; False: white = in focus, xu100,
            DUT), needed by SG's FM (``sg_fm``, :func:`metrics.sg_fm`), which scores the GT-white class; None =
            unknown, no ``sg_fm``.

    Images whose GT has no blurred pixel count for MAE, the accuracies and the pooled IoU only; F-measure, PR and
    adaptive means are over the other images (docs/evaluation.md §12: an all-sharp mask has no Fmax).
    """

    resolution: Resolution | str = Resolution.NATIVE
    adaptive_factors: tuple[float, ...] = (1.5, 2.0)
    fixed_threshold: float = 0.5
    beta2: float = M.BETA2
    square_input: bool = False
    white_is_blurred: bool | None = None
    map_resize: MapResize | str = MapResize.LINEAR
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.resolution = parse_choice(Resolution, self.resolution, "resolution")
        self.map_resize = parse_choice(MapResize, self.map_resize, "map resize")
        n = len(M.FMAX_THRESHOLDS)
        self._f_sum = np.zeros(n)
        self._p_sum = np.zeros(n)
        self._r_sum = np.zeros(n)
        self._pr_p = np.zeros(len(M.PR_THRESHOLDS))
        self._pr_r = np.zeros(len(M.PR_THRESHOLDS))
        self._inter = 0
        self._union = 0
        self._n_f = 0  # images with a blurred GT pixel: those in the F-measure / PR means

    def check_pair(self, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pred clipped to [0, 1], GT as {0, 1} float32) after checking them; ValueError naming the problem: a map
        that is not 2-D (e.g. an H×W×3 image), a prediction holding NaN / inf or outside [0, 1] by more than
        ``RANGE_TOLERANCE`` (a 0–255 or σ-px map), a GT that is not binary (:func:`metrics.binary_gt`), or a
        prediction whose aspect ratio h/w differs from the GT's (from 1 when ``square_input``) by more than
        ``ASPECT_TOLERANCE`` (relative; e.g. a transposed map). ``pred`` (h, w), ``gt`` (H, W); both returned at
        their own sizes."""
        pred = M.check_finite_map(pred)
        gt = np.asarray(gt)
        if gt.ndim != 2:
            raise ValueError(f"GT must be a 2-D (H, W) mask, got shape {gt.shape}")
        gt = M.binary_gt(gt).astype(np.float32)
        lo, hi = float(pred.min()), float(pred.max())
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            raise ValueError(f"prediction must be a blur map in [0, 1], got values in [{lo:g}, {hi:g}] (a 0-255 or "
                             "sigma-px map? divide it to [0, 1] first)")
        if min(pred.shape) == 0 or min(gt.shape) == 0:
            raise ValueError(f"empty map: prediction {pred.shape}, GT {gt.shape}")
        want = 1.0 if self.square_input else gt.shape[0] / gt.shape[1]
        have = pred.shape[0] / pred.shape[1]
        if abs(have / want - 1.0) > ASPECT_TOLERANCE:
            raise ValueError(f"prediction {pred.shape[0]}x{pred.shape[1]} (HxW) does not have the aspect ratio of "
                             + ("a square --input-size map" if self.square_input else
                                f"its GT {gt.shape[0]}x{gt.shape[1]}") + " (transposed, or a crop of another image?)")
        return np.clip(pred, 0.0, 1.0), gt

    def add(self, stem: str, pred: np.ndarray, gt: np.ndarray, white_level: np.ndarray | None = None) -> dict:
        """Score one image. ``pred``: (h, w) float in [0, 1], 1 = blurred, same aspect ratio as the GT (any size;
        square when ``square_input``); ``gt``: (H, W) binary (bool or {0, 1}), 1 = blurred. Bad input is a
        ValueError (:meth:`check_pair`). ``white_level``: the GT file's values ((H, W), value/full range, white = 1,
        :func:`dmenet.eval.benchmarks.read_mask_level`) for SG's FM, which binarises them its own way
        (:func:`metrics.sg_fm`); None: ``gt`` is used.

        Maps holding 8-bit levels take the histogram path (:class:`metrics.LevelCounts`), others the per-pixel one.
        An all-sharp GT (no blurred pixel) has no precision / recall: the image counts for MAE, accuracy and the
        pooled IoU, its F-measure / PR numbers are NaN in its row and left out of those means
        (``f_skipped_all_sharp`` in the summary).
        """
        pred, gt = self.check_pair(pred, gt)
        pred_e, gt_e = prepare_pair(pred, gt, self.resolution, self.map_resize)
        levels = M.LevelCounts.from_map(pred_e, gt_e)
        if levels is not None:
            scores = self._scores_levels(levels, pred, gt_e)
        else:
            scores = self._scores_pixels(pred_e, gt_e, pred)
        p, r, f, pr_p, pr_r, (inter, union) = scores.pop("_curves")
        self._inter += inter
        self._union += union
        all_sharp = not gt_e.any()
        if not all_sharp:
            self._n_f += 1
            self._f_sum += f
            self._p_sum += p
            self._r_sum += r
            self._pr_p += pr_p
            self._pr_r += pr_r
        k = int(np.argmax(f))
        row = {"stem": stem, "mae": scores.pop("mae"), "fmax": float(f[k]),
               "fmax_threshold": float(M.FMAX_THRESHOLDS[k])}
        row.update(scores)
        if all_sharp:  # no blurred pixel: precision / recall / F are undefined, not 0
            for key in ("fmax", "fmax_threshold", *self._f_keys()):
                row[key] = float("nan")
        row["iou"] = inter / union if union else 0.0
        if self.white_is_blurred is not None:  # SG counts an image without GT-white pixels as F = 0: kept
            level = None if white_level is None else resize_map(white_level, gt_e.shape)  # area, as the GT
            row["sg_fm"] = M.sg_fm(pred_e, gt_e, self.white_is_blurred, 1.5, self.beta2, white_level=level)
        row["gt_blur_fraction"] = float(gt_e.mean())
        self.rows.append(row)
        return row

    def _scores_pixels(self, pred_e: np.ndarray, gt_e: np.ndarray, pred_raw: np.ndarray) -> dict:
        t = f"{self.fixed_threshold:g}"
        p05, r05, f05 = M.fixed_threshold_prf(pred_e, gt_e, self.fixed_threshold, self.beta2)
        out = {"mae": M.mae(pred_e, gt_e), f"f_at_{t}": f05, f"precision_at_{t}": p05, f"recall_at_{t}": r05}
        for c in self.adaptive_factors:
            out[f"adaptive_f_{c:g}"] = M.adaptive_prf(pred_e, gt_e, c, self.beta2)[2]
        out["dmenet_accuracy"] = M.dmenet_accuracy(pred_e, gt_e)
        out["best_threshold_accuracy"] = M.oracle_accuracy(pred_e, gt_e)
        pr = M.hifst_pr(pred_raw, gt_e)
        iou = M.iou_counts(pred_e, gt_e, self.fixed_threshold)
        out["_curves"] = (*M.f_curve(pred_e, gt_e, beta2=self.beta2), *pr, iou)
        return out

    def _scores_levels(self, lv: M.LevelCounts, pred_raw: np.ndarray, gt_e: np.ndarray) -> dict:
        t = f"{self.fixed_threshold:g}"
        p05, r05, f05 = lv.prf(self.fixed_threshold, self.beta2)
        out = {"mae": lv.mae(), f"f_at_{t}": f05, f"precision_at_{t}": p05, f"recall_at_{t}": r05}
        mean = lv.mean()
        for c in self.adaptive_factors:
            out[f"adaptive_f_{c:g}"] = lv.prf(min(1.0, c * mean), self.beta2)[2]
        out["dmenet_accuracy"] = lv.dmenet_accuracy()
        out["best_threshold_accuracy"] = lv.oracle_accuracy()
        # HiFST resizes the raw map to the GT size itself; when no resize happens the levels are the raw map's.
        pr = lv.hifst_pr() if np.shape(pred_raw) == gt_e.shape else M.hifst_pr(pred_raw, gt_e)
        out["_curves"] = (*lv.f_curve(self.beta2), *pr, lv.iou_counts(self.fixed_threshold))
        return out

    def _f_keys(self) -> list[str]:
        """Per-image row keys that need a blurred GT pixel (undefined for an all-sharp GT)."""
        t = f"{self.fixed_threshold:g}"
        return [f"f_at_{t}", f"precision_at_{t}", f"recall_at_{t}",
                *(f"adaptive_f_{c:g}" for c in self.adaptive_factors)]

    def _mean(self, key: str) -> float:
        values = [row[key] for row in self.rows if not np.isnan(row[key])]
        return float(np.mean(values)) if values else float("nan")

    def pr_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """HiFST-protocol PR curve: (thresholds 0..255, mean precision, mean recall) over the images with a blurred
        GT pixel; each (256,) float64, P and R in [0, 1] (fractions; all 0 before any such image)."""
        n = max(self._n_f, 1)
        return M.PR_THRESHOLDS.copy(), self._pr_p / n, self._pr_r / n

    def f_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Image-averaged (thresholds i/255, P, R, F) of the 255-threshold sweep over the images with a blurred GT
        pixel; each (255,) float64 in [0, 1] (thresholds in map units, P / R / F fractions; 0 before any image)."""
        n = max(self._n_f, 1)
        return M.FMAX_THRESHOLDS.copy(), self._p_sum / n, self._r_sum / n, self._f_sum / n

    def summary(self) -> dict:
        """Set-level numbers; every key names its protocol (see ``protocol()`` for the tags)."""
        if not self.rows:
            raise ValueError("no images were scored")
        if not self._n_f:
            raise ValueError(f"every one of the {len(self.rows)} GT masks is all sharp (no blurred pixel): "
                             "F-measure and PR are undefined")
        thr, _, _, f_mean = self.f_curve()
        _, pr_p, pr_r = self.pr_curve()
        k = int(np.argmax(f_mean))
        t = f"{self.fixed_threshold:g}"
        out = {
            "n_images": len(self.rows),
            "mae": self._mean("mae"),
            "fmax": self._mean("fmax"),
            "fmax_of_mean_curve": float(f_mean[k]),
            "fmax_of_mean_curve_threshold": float(thr[k]),
            f"f_at_{t}": self._mean(f"f_at_{t}"),
            f"precision_at_{t}": self._mean(f"precision_at_{t}"),
            f"recall_at_{t}": self._mean(f"recall_at_{t}"),
            "iou_pooled": self._inter / self._union if self._union else 0.0,
            "pr_auc": M.pr_auc(pr_p, pr_r),
            "dmenet_accuracy": self._mean("dmenet_accuracy"),
            "best_threshold_accuracy": self._mean("best_threshold_accuracy"),
        }
        if self._n_f < len(self.rows):  # key only when it happens (reports without all-sharp masks are unchanged)
            out["f_skipped_all_sharp"] = len(self.rows) - self._n_f
        for c in self.adaptive_factors:
            out[f"adaptive_f_{c:g}"] = self._mean(f"adaptive_f_{c:g}")
        if self.white_is_blurred is not None:
            out["sg_fm"] = self._mean("sg_fm")
        return out

    def _resize_text(self) -> str:
        """How the map (and at 320² the GT) is resized before scoring, for :meth:`protocol`."""
        nearest = self.map_resize is MapResize.NEAREST
        if self.resolution is Resolution.NATIVE:
            how = "nearest, as D-DFFNet" if nearest else "bilinear, area when shrinking"
            return f"prediction to GT size ({how})"
        how = "nearest" if nearest else "area/bilinear"
        return f"prediction ({how}) and GT (area/bilinear, re-binarised at >= 0.5) to 320x320"

    def protocol(self) -> dict:
        """Protocol tags written next to the numbers (docs/evaluation.md §10)."""
        t = f"{self.fixed_threshold:g}"
        return {
            "resolution": self.resolution.value,
            "resize": self._resize_text(),
            "positive_class": "blurred = 1 (sharpness maps inverted before scoring)",
            "beta2": self.beta2,
            "aggregation": "per-image scores averaged over images (mae, fmax, f_at, adaptive_f, accuracy); "
            "iou pooled over the set; PR curve = per-image P/R averaged",
            "mae": "mean over images of mean |pred - gt| (pred continuous, gt binary)",
            "fmax": "per-image max F over thresholds i/255 (i = 1..255, pred >= T), averaged over images",
            "fmax_of_mean_curve": "max over T of the image-averaged F(T) curve (a different quantity from fmax)",
            f"f_at_{t}": f"D-DFFNet: pred >= {t}, per-image P/R/F averaged over images",
            "iou_pooled": f"D-DFFNet: pred > {t}, intersection and union pooled over the set",
            "adaptive_f": "per image T = min(1, c * mean(pred)) on the blur map as produced (float, 1 = blurred), "
            f"pred >= T - 1e-6, blurred class positive, per-image F averaged; c in {list(self.adaptive_factors)}. "
            "Not SG's FM (sg_fm): with T = 1 a float map counts only pixels at 1, where an 8-bit map counts 255",
            **({"sg_fm": "SG eval.py's FM: the map in the GT-white polarity as 8-bit levels, T = min(1, 1.5 * "
                "mean), map >= T, GT-white class positive (white = "
                + ("blurred" if self.white_is_blurred else "in focus") + " here; GT value/255 > 0.1, as SG's "
                "eval.py, when the GT file's values are given), per-image F averaged, images "
                "without GT-white pixels count 0; at this run's resolution (SG: 320x320)"}
               if self.white_is_blurred is not None else {}),
            "pr_curve": "HiFST PRDataComputation.m: mat2gray(map)*255, MATLAB bicubic imresize to GT size, "
            "T = 0..255, map >= T, per-image P/R (0 where TP = 0) averaged over all images",
            "pr_auc": "trapezoid of the HiFST-protocol mean PR curve over recall (points sorted by recall, "
            "extended flat from the lowest-recall point to recall 0)",
            "dmenet_accuracy": "DMENet: per image pixel accuracy of pred > 0.3*max + 0.7*min, averaged; on the "
            "map scored (DMENet's own figure thresholds its defocus map: --dmenet-output label)",
            "best_threshold_accuracy": "Galetto & Deng 2023 Table 5: per image pixel accuracy of pred >= T at the "
            "image's best T (any T, including all sharp), averaged",
        }
