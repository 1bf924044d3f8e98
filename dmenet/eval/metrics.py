"""Defocus-blur-detection (DBD) metrics, pure NumPy and vectorised (docs/evaluation.md §4–§5).

Conventions for every function here:

* ``pred``: (H, W) float map in [0, 1] with the **project polarity, 1 = blurred** (sharpness maps are inverted by
  the caller, :func:`to_blur_polarity`).
* ``gt``: (H, W) binary mask (bool or {0, 1}), 1 = blurred, same size as ``pred``; other values (a raw 0–255 mask)
  are a ValueError (:func:`binary_gt`), as is a prediction holding NaN / inf or that is not 2-D.
* A pixel is *positive* at threshold T when ``pred >= T`` (the rule of MLDBD ``Fmeasure_calu.m``, SG ``eval.py``,
  HiFST ``PRDataComputation.m``), except the pooled IoU, which binarises at ``> 0.5`` as D-DFFNet ``test_iou1.py``.
* Precision with nothing detected and recall with nothing to find are 0 (sklearn's ``zero_division=0``);
  F = 0 when P = R = 0.

Threshold counting uses one ``searchsorted`` + ``bincount`` per image, so a 256-threshold sweep costs about as much
as two passes over the pixels (1000 CUHK images: a few seconds).
"""

from __future__ import annotations

import numpy as np

BETA2 = 0.3
"""β² of the F-measure used throughout the DBD literature."""

FMAX_THRESHOLDS = np.arange(1, 256, dtype=np.float64) / 255.0
"""The 255 thresholds ``i/255``, i = 1..255, of the Fmax sweep (MLDBD ``Fmeasure_calu.m``)."""

PR_THRESHOLDS = np.arange(256, dtype=np.float64)
"""The 256 thresholds 0..255 of HiFST's PR curve (applied to the map min–max normalised to [0, 255])."""

TIE_TOLERANCE = 1e-6
"""Thresholds on [0, 1] maps are lowered by this much so ``pred >= i/255`` holds for an 8-bit level ``i`` stored in
float32 (whose rounding can fall one ulp below the float64 threshold)."""


def to_blur_polarity(pred: np.ndarray, sharpness: bool) -> np.ndarray:
    """Return the map with 1 = blurred: ``1 − pred`` for sharpness maps (HiFST, LBP, white = sharp), else ``pred``.

    ``pred`` is any shape, normally an (H, W) map in [0, 1] (no unit: a score, 1 = blurred or 1 = sharp); the result
    is float32 of the same shape (``1 − pred`` keeps [0, 1] in [0, 1]; values are not clipped)."""
    pred = np.asarray(pred, dtype=np.float32)
    return (1.0 - pred).astype(np.float32) if sharpness else pred


def f_measure(precision, recall, beta2: float = BETA2):
    """``F_β = (1 + β²)·P·R / (β²·P + R)``, elementwise; 0 where P = R = 0."""
    p = np.asarray(precision, dtype=np.float64)
    r = np.asarray(recall, dtype=np.float64)
    den = beta2 * p + r
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(den > 0, (1.0 + beta2) * p * r / np.where(den > 0, den, 1.0), 0.0)
    return f if f.ndim else float(f)


def binary_gt(gt: np.ndarray) -> np.ndarray:
    """The GT mask (any shape, normally (H, W)) as a bool array of the same shape (True = blurred). ValueError
    unless it is bool or holds only 0 and 1: a raw 8-bit mask
    (0–255) is refused rather than binarised at ``!= 0``; binarise it as the docs do (value/255 >= 0.5,
    :func:`dmenet.eval.benchmarks.read_mask`)."""
    gt = np.asarray(gt)
    if gt.dtype == bool:
        return gt
    if not np.all((gt == 0) | (gt == 1)):
        lo, hi = (float(np.nanmin(gt)), float(np.nanmax(gt))) if gt.size and np.isfinite(gt).any() else (0.0, 0.0)
        raise ValueError(f"GT must be a binary mask (bool or 0/1, 1 = blurred), got values in [{lo:g}, {hi:g}]; "
                         "binarise an 8-bit mask first (value/255 >= 0.5, as benchmarks.read_mask does)")
    return gt.astype(bool)


def check_finite_map(pred: np.ndarray, what: str = "prediction") -> np.ndarray:
    """``pred`` as an array, unchanged (an (H, W) map of any dtype, range and unit: nothing is rescaled); ValueError
    when it is not 2-D or holds NaN / inf (a mean over it would be NaN)."""
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) map, got shape {pred.shape}"
                         + (" (a colour image? give one channel)" if pred.ndim == 3 else ""))
    if not np.all(np.isfinite(pred)):
        raise ValueError(f"{what} holds {int(np.count_nonzero(~np.isfinite(pred)))} non-finite value(s) (NaN / inf)")
    return pred


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pred, bool GT) after checking: both 2-D of the same size, pred finite, GT binary (:func:`binary_gt`)."""
    pred = check_finite_map(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape or gt.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} must be 2-D maps of the same size")
    return pred, binary_gt(gt)


def threshold_counts(
    score: np.ndarray, gt: np.ndarray, thresholds: np.ndarray, tolerance: float = 0.0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Counts of the sweep ``positive = score >= T`` for every T of an ascending ``thresholds`` vector (in the
    units of ``score``, an (H, W) map; ``gt`` (H, W) binary, 1 = blurred).

    Returns:
        ``(tp, detected, n_gt)``: (N,) int64 true positives and detections per threshold, and the number of GT
        positives.
    """
    score, gt = _check_pair(score, gt)
    thr = np.asarray(thresholds, dtype=np.float64) - tolerance
    n = len(thr)
    # idx = number of thresholds <= score, so pixel is positive for threshold j iff j < idx.
    idx = np.searchsorted(thr, score.ravel().astype(np.float64, copy=False), side="right")
    det = np.bincount(idx, minlength=n + 1)[::-1].cumsum()[::-1][1:]
    tp = np.bincount(idx[gt.ravel()], minlength=n + 1)[::-1].cumsum()[::-1][1:]
    return tp.astype(np.int64), det.astype(np.int64), int(gt.sum())


def precision_recall(tp, det, n_gt) -> tuple[np.ndarray, np.ndarray]:
    """P = TP/detected, R = TP/#GT, with 0 where the denominator is 0: ``tp`` and ``det`` pixel counts of the same
    shape (e.g. (T,) over a threshold sweep), ``n_gt`` the GT-positive count → (P, R), float64 of that shape in
    [0, 1]."""
    tp = np.asarray(tp, dtype=np.float64)
    det = np.asarray(det, dtype=np.float64)
    p = np.divide(tp, det, out=np.zeros_like(tp), where=det > 0)
    r = tp / n_gt if n_gt > 0 else np.zeros_like(tp)
    return p, r


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error between the continuous map and the binary GT (SG ``eval.py``, D-DFFNet ``eval_mae``).

    Args:
        pred: (H, W) finite blur map, normally in [0, 1] (1 = blurred; no unit).
        gt: (H, W) binary mask of the same size (bool, or 0/1 values; :func:`binary_gt`).

    Returns:
        The mean of ``|pred − gt|`` in the map's units (a fraction in [0, 1] for a [0, 1] map).
    """
    pred, gt = _check_pair(pred, gt)
    return float(np.mean(np.abs(pred.astype(np.float64) - gt)))


def f_curve(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray = FMAX_THRESHOLDS, beta2: float = BETA2):
    """Per-threshold (P, R, F) of one image, each (N,) float64 in [0, 1], for ``pred >= T`` (tie-tolerant, see
    ``TIE_TOLERANCE``): ``pred`` (H, W) blur map in [0, 1] (1 = blurred), ``gt`` (H, W) binary, ``thresholds``
    (N,) in the map's units."""
    tp, det, n_gt = threshold_counts(pred, gt, thresholds, tolerance=TIE_TOLERANCE)
    p, r = precision_recall(tp, det, n_gt)
    return p, r, f_measure(p, r, beta2)


def fixed_threshold_prf(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5, beta2: float = BETA2):
    """(P, R, F) in [0, 1] of ``pred >= threshold`` (D-DFFNet: T = 0.5; tie-tolerant like :func:`f_curve`);
    ``pred`` (H, W) blur map in [0, 1], ``gt`` (H, W) binary (1 = blurred)."""
    pred, gt = _check_pair(pred, gt)
    pos = pred >= threshold - TIE_TOLERANCE
    p, r = precision_recall(np.count_nonzero(pos & gt), np.count_nonzero(pos), int(np.count_nonzero(gt)))
    return float(p), float(r), float(f_measure(p, r, beta2))


def adaptive_threshold(pred: np.ndarray, factor: float = 1.5) -> float:
    """``T = min(1, factor · mean(pred))`` (factor 1.5: DBD convention, SG ``eval.py``; 2.0: salient objects), in
    the units of ``pred``, an (H, W) blur map in [0, 1]."""
    return float(min(1.0, factor * float(np.mean(pred, dtype=np.float64))))


def adaptive_prf(pred: np.ndarray, gt: np.ndarray, factor: float = 1.5, beta2: float = BETA2):
    """(P, R, F, T) at the adaptive threshold of :func:`adaptive_threshold`: P, R, F fractions in [0, 1], T in the
    units of ``pred``, an (H, W) blur map in [0, 1]; ``gt`` (H, W) binary (1 = blurred)."""
    t = adaptive_threshold(pred, factor)
    p, r, f = fixed_threshold_prf(pred, gt, t, beta2)
    return p, r, f, t


SG_WHITE_THRESHOLD = 0.1
"""SG ``eval.py``'s GT binarisation: a pixel is GT-white when its value/255 is above this (``gt > 0.1``)."""


def sg_fm(pred: np.ndarray, gt: np.ndarray, white_is_blurred: bool, factor: float = 1.5,
          beta2: float = BETA2, white_level: np.ndarray | None = None) -> float:
    """F_β of one image by SG's ``eval.py`` (Zhao et al., CVPR 2021; shangcai1/SG), its "FM" when averaged.

    SG scores the class its GT marks white, on a map saved in that polarity as an 8-bit PNG: here the blur map
    ``pred`` (1 = blurred, [0, 1]) is turned into the GT-white polarity (``1 − pred`` when white = in focus, as on
    xu100 and DUT), quantised to ``round(255·x)/255``, thresholded at ``T = min(1, factor·mean)`` (positive =
    map ≥ T, exact on the 8-bit levels), and scored against the GT-white pixels (``gt``: binary, 1 = blurred). P or
    R with a zero denominator is 0 (scikit-learn's default) and F = 0 when both are, so an image without GT-white
    pixels scores 0, as in SG (not left out, unlike this project's other F-measures). The map is scored at the
    resolution given: SG's own runs are at 320×320.

    ``white_level``: the GT file's own values (value/full range, [0, 1], white = 1) at ``pred``'s size; its pixels
    above :data:`SG_WHITE_THRESHOLD` are the GT-white class, as SG's ``gt > 0.1``. An anti-aliased mask (the
    xu100 and DUT files have pixels strictly between 0 and 255: 0.3–2.2 % of each shared file between 0.1 and 0.5 of
    white) has more GT-white pixels by that rule than by the project's ``>= 0.5``; until 6 Dec 2026 the binary
    ``gt`` was used, which is what None still does (the same for a mask of only 0 and 255).
    """
    pred, gt = _check_pair(pred, gt)
    white = pred if white_is_blurred else 1.0 - pred
    levels = np.round(white.astype(np.float64) * 255.0)  # the 8-bit PNG SG reads, as levels 0..255
    t = min(255.0, factor * float(levels.mean()))  # T·255: min(1, c·mean) on the /255 map
    pos = levels >= t - 1e-9
    gt_white = (gt if white_is_blurred else ~gt) if white_level is None else sg_white_class(white_level, gt.shape)
    p, r = precision_recall(np.count_nonzero(pos & gt_white), np.count_nonzero(pos), int(np.count_nonzero(gt_white)))
    return float(f_measure(p, r, beta2))


def sg_white_class(white_level: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """SG's GT-white class (bool) of a GT's values ``white_level`` ((H, W), value/full range in [0, 1]): above
    :data:`SG_WHITE_THRESHOLD`. ValueError when its shape is not ``shape`` or it leaves [0, 1]."""
    level = check_finite_map(white_level, "GT white level")
    if level.shape != tuple(shape):
        raise ValueError(f"GT white level must have the map's shape {tuple(shape)}, got {level.shape}")
    if level.min() < 0 or level.max() > 1:
        raise ValueError(f"GT white level must be value/full range in [0, 1], got [{level.min():g}, {level.max():g}]")
    return level > SG_WHITE_THRESHOLD


def iou_counts(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> tuple[int, int]:
    """(|P ∩ G|, |P ∪ G|) pixel counts with P = ``pred > threshold`` — summed over a set for D-DFFNet's pooled
    IoU. ``pred`` (H, W) blur map in [0, 1], ``threshold`` in its units; ``gt`` (H, W) binary, 1 = blurred."""
    pred, gt = _check_pair(pred, gt)
    pos = pred > threshold
    return int(np.count_nonzero(pos & gt)), int(np.count_nonzero(pos | gt))


def dmenet_accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """DMENet's CUHK accuracy: pixel accuracy of ``pred > 0.3·max + 0.7·min`` against the GT (docs/evaluation.md §5).
    ``pred`` (H, W) map of any scale, ``gt`` (H, W) binary (1 = blurred); a fraction in [0, 1]."""
    pred, gt = _check_pair(pred, gt)
    t = 0.3 * float(pred.max()) + 0.7 * float(pred.min())
    return float(np.mean((pred > t) == gt))


def oracle_accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """Pixel accuracy at the per-image best threshold (Galetto & Deng 2023 Table 5, "per-image best λ"): the
    maximum over every T of mean((pred >= T) == gt), T ranging over the map's own values plus +inf (all sharp).
    Exact (a sort and two cumulative sums) and independent of the map's scale (σ px or [0, 1]). ``pred`` (H, W),
    ``gt`` (H, W) binary (1 = blurred); a fraction in [0, 1]."""
    pred, gt = _check_pair(pred, gt)
    order = np.argsort(-pred.ravel(), kind="stable")
    p, g = pred.ravel()[order], gt.ravel()[order].astype(np.int64)
    last = np.r_[p[1:] != p[:-1], True]  # thresholds between distinct values: the positives are a prefix
    tp = np.cumsum(g)[last]
    fp = np.cumsum(1 - g)[last]
    n_neg = g.size - int(g.sum())
    correct = np.r_[n_neg, tp + (n_neg - fp)]  # first entry: nothing positive
    return float(correct.max() / g.size)


# ------------------------------------------------------------------------------------------- HiFST PR protocol
def mat2gray(x: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray``: min–max normalisation to [0, 1] in float64; a constant map is returned as is, clipped.

    ``x`` is any shape and unit (non-empty; NaN not handled); the result is float64 of the same shape, in [0, 1]
    (no unit)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.clip(x, 0.0, 1.0)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    return inner + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))


def _resize_weights(in_len: int, out_len: int) -> np.ndarray:
    """(out_len, in_len) matrix of MATLAB ``imresize`` bicubic weights (antialiased when shrinking)."""
    scale = out_len / in_len
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    d = u[:, None] - idx
    w = scale * _cubic(scale * d) if scale < 1 else _cubic(d)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # symmetric padding
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len))
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), cols.ravel()), w.ravel())
    return mat


def imresize_bicubic(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(x, shape)`` for a 2-D double map: bicubic, antialiased when shrinking, no rounding.

    ``x`` (h, w) in any range and unit → (H, W) = ``shape`` float64 in the same unit; ``x`` itself (as float64) when
    it already has that shape. Not clipped: bicubic overshoot can leave ``x``'s [min, max] near edges."""
    x = np.asarray(x, dtype=np.float64)
    if tuple(x.shape) == tuple(shape):
        return x
    return _resize_weights(x.shape[0], shape[0]) @ x @ _resize_weights(x.shape[1], shape[1]).T


def _snap(score: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
    """Snap values within ``tolerance`` of an integer onto it, so float rounding cannot move a pixel across an
    integer threshold (a level that is exactly T in exact arithmetic counts as ``>= T``)."""
    r = np.rint(score)
    return np.where(np.abs(score - r) <= tolerance, r, score)


def hifst_pr(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One image's contribution to HiFST's PR curve (``Evaluation/PRDataComputation.m``).

    The blur-polarity map is min–max normalised to [0, 255] (``mat2gray``; for a sharpness map this equals the
    script's ``255 − mat2gray(map)·255`` once the caller inverted it), resized to the GT size with MATLAB bicubic
    ``imresize`` (no uint8 rounding; values within 1e-4 of an integer are snapped onto it so that float32 storage
    of an 8-bit map cannot flip a tie), and swept over T = 0..255 with ``positive = map >= T``. An image whose TP is
    0 at a threshold adds 0 to both P and R there. Averaging over images (including the zeros) gives the curve.

    Args:
        pred: (h, w) blur map (1 = blurred), any size.
        gt: (H, W) binary GT, bool or {0, 1} (ValueError otherwise; the script takes any non-zero 8-bit value as
            blurred, the project binarises files at value/255 >= 0.5 on reading).

    Returns:
        (P, R), each (256,) float64, for thresholds 0..255.
    """
    gt = binary_gt(gt)
    score = _snap(imresize_bicubic(mat2gray(check_finite_map(pred)) * 255.0, gt.shape), 1e-4)
    tp, det, n_gt = threshold_counts(score, gt, PR_THRESHOLDS)
    p, r = precision_recall(tp, det, n_gt)
    return p, r


def pr_auc(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under a PR curve: trapezoid rule over recall with the points sorted by recall, the curve extended flat
    from its lowest-recall point to R = 0 (the highest precision at that recall). A map that saturates (many pixels
    at its maximum) cannot reach low recall; the flat extension keeps such maps — and perfect ones — from being scored
    on a truncated recall range. ``precision``, ``recall``: (K,) fractions in [0, 1] (e.g. :func:`hifst_pr`'s); the
    area is in [0, 1]."""
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    order = np.lexsort((-p, r))  # by recall, ties by falling precision (vertical steps add no area)
    p, r = p[order], r[order]
    return float(np.trapezoid(np.r_[p[0], p], np.r_[0.0, r]))


# ------------------------------------------------------------------------------- fast path for 8-bit maps
class LevelCounts:
    """Histogram of a map quantised to 8-bit levels ``k/255`` (a saved PNG, or a float map that holds them).

    Every threshold metric of an image is a function of the per-level pixel counts, so one ``bincount`` replaces a
    pass per threshold. Results equal the per-pixel functions above (``tests/test_metrics.py`` checks it); levels
    are exact ``k/255``, so float32 rounding of a stored level (e.g. ``1 − v/255``) cannot flip a tie.
    """

    def __init__(self, codes: np.ndarray, gt: np.ndarray):
        gt = binary_gt(gt).ravel()
        codes = codes.ravel()
        self.n_all = np.bincount(codes, minlength=256).astype(np.int64)
        self.n_pos = np.bincount(codes[gt], minlength=256).astype(np.int64)
        self.n_gt = int(self.n_pos.sum())
        self.size = int(self.n_all.sum())
        self._det_ge = self.n_all[::-1].cumsum()[::-1]  # [k] = pixels with level >= k
        self._tp_ge = self.n_pos[::-1].cumsum()[::-1]
        present = np.flatnonzero(self.n_all)
        self.lo, self.hi = int(present[0]), int(present[-1])

    @staticmethod
    def from_map(pred: np.ndarray, gt: np.ndarray, tolerance: float = 1e-3) -> "LevelCounts | None":
        """Build from an (H, W) [0, 1] map ``pred`` and its (H, W) binary ``gt`` (1 = blurred) if every pixel is
        within ``tolerance``/255 of a level ``k/255``, else None.
        ValueError when ``pred`` is not 2-D or holds NaN / inf."""
        q = check_finite_map(pred).astype(np.float32) * np.float32(255.0)
        codes = np.rint(q)
        if codes.min() < 0 or codes.max() > 255 or np.abs(q - codes).max() > tolerance:
            return None
        return LevelCounts(codes.astype(np.intp), gt)

    def _first_level(self, threshold: float, strict: bool) -> int:
        # smallest level k with k/255 >= T (tie-tolerant) or k/255 > T
        x = threshold * 255.0
        k = np.floor(x + 1e-9) + 1 if strict else np.ceil(x - TIE_TOLERANCE * 255.0)
        return int(np.clip(k, 0, 256))

    def counts(self, threshold: float, strict: bool = False) -> tuple[int, int]:
        """(TP, detected) pixel counts of ``pred >= T`` (or ``> T`` when ``strict``); T in [0, 1] map units."""
        k = self._first_level(threshold, strict)
        return (int(self._tp_ge[k]), int(self._det_ge[k])) if k < 256 else (0, 0)

    def prf(self, threshold: float, beta2: float = BETA2) -> tuple[float, float, float]:
        """(precision, recall, F_β) in [0, 1] of ``pred >= threshold`` (threshold in [0, 1] map units; β² =
        ``beta2``)."""
        p, r = precision_recall(*self.counts(threshold), self.n_gt)
        return float(p), float(r), float(f_measure(p, r, beta2))

    def f_curve(self, beta2: float = BETA2):
        """(P, R, F) at the 255 thresholds i/255 (level i), each (255,) float64 in [0, 1]."""
        p, r = precision_recall(self._tp_ge[1:], self._det_ge[1:], self.n_gt)
        return p, r, f_measure(p, r, beta2)

    def mae(self) -> float:
        """Mean absolute error in [0, 1] between the map (levels k/255) and the binary GT."""
        v = np.arange(256) / 255.0
        return float(((self.n_pos * (1.0 - v)).sum() + ((self.n_all - self.n_pos) * v).sum()) / self.size)

    def mean(self) -> float:
        """Mean map value in [0, 1]."""
        return float((self.n_all * (np.arange(256) / 255.0)).sum() / self.size)

    def iou_counts(self, threshold: float = 0.5) -> tuple[int, int]:
        """(intersection, union) pixel counts of ``pred > threshold`` (threshold in [0, 1]) and the GT blur mask."""
        tp, det = self.counts(threshold, strict=True)
        return tp, det + self.n_gt - tp

    def dmenet_accuracy(self) -> float:
        """DMENet's pixel accuracy in [0, 1]: the map thresholded strictly above 0.3·max + 0.7·min of its own values,
        compared with the GT mask."""
        tp, det = self.counts(0.3 * self.hi / 255.0 + 0.7 * self.lo / 255.0, strict=True)
        return float((tp + (self.size - self.n_gt) - (det - tp)) / self.size)

    def oracle_accuracy(self) -> float:
        """:func:`oracle_accuracy` from the level counts: the best of ``pred >= k/255`` over every level k, and of
        nothing positive."""
        tp = np.r_[self._tp_ge, 0]
        fp = np.r_[self._det_ge, 0] - tp
        return float((tp + (self.size - self.n_gt) - fp).max() / self.size)

    def hifst_pr(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`hifst_pr` for a map already at the GT size: ``mat2gray`` on the integer levels, as MATLAB does
        on the uint8 file. Returns (P, R), each (256,) float64 in [0, 1] (fractions), for thresholds 0..255."""
        levels = np.arange(256, dtype=np.float64)
        score = mat2gray(np.clip(levels, self.lo, self.hi)) * 255.0 if self.hi > self.lo else levels
        score = _snap(score, 1e-4)
        idx = np.searchsorted(PR_THRESHOLDS, score, side="right")  # thresholds <= score of each level
        det = np.bincount(idx, weights=self.n_all, minlength=257)[::-1].cumsum()[::-1][1:]
        tp = np.bincount(idx, weights=self.n_pos, minlength=257)[::-1].cumsum()[::-1][1:]
        return precision_recall(tp, det, self.n_gt)
