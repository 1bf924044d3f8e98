"""Sharp-everywhere photos (docs/evaluation.md §12): how much blur a method reports where there is none.

A photo with a wide depth of field (e.g. the BSDS500 photos that pass ``experiments/distill/screen_sharp.py``, listed
in ``experiments/distill/bsds_sharp_{train,val,test}.txt``) has no ground-truth file: every pixel counts as in focus.
A DBD benchmark cannot score such a photo (its Fmax is undefined and CUHK holds none), so a method tuned on CUHK alone
may mark a whole sharp photo as blurred. Per image: ``mean_blur``, the mean of the [0, 1] blur map (1 = blurred,
the false blur, equal to the map's MAE against an all-sharp mask), and ``blurred_share``, the share of pixels at or
above 0.5 (D-DFFNet's fixed threshold, with :data:`dmenet.eval.metrics.TIE_TOLERANCE` as F at 0.5). Set level:
both averaged over images, and the worst image's ``mean_blur``.
"""

from __future__ import annotations

import numpy as np

from dmenet.eval.metrics import TIE_TOLERANCE

THRESHOLD = 0.5
"""Fixed decision threshold of ``blurred_share`` (blur map ≥ 0.5 = called blurred)."""


def false_blur(pred: np.ndarray) -> tuple[float, float]:
    """(mean blur, share of pixels ≥ 0.5) of one (H, W) [0, 1] blur map of a photo that is sharp everywhere."""
    pred = np.asarray(pred, dtype=np.float64)
    return float(pred.mean()), float(np.mean(pred >= THRESHOLD - TIE_TOLERANCE))


class SharpAccumulator:
    """Per-image rows of :func:`false_blur` and their means."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, stem: str, pred: np.ndarray) -> dict:
        """Score one (H, W) blur map in [0, 1] (1 = blurred) of the photo ``stem``: its row (``mean_blur``,
        ``blurred_share``, both fractions in [0, 1]) is kept and returned."""
        mean_blur, share = false_blur(pred)
        row = {"stem": stem, "mean_blur": mean_blur, "blurred_share": share}
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        """{n_images, mean_blur, blurred_share, worst_mean_blur}: blur-map means in [0, 1] averaged over images and
        the largest; ValueError when nothing was scored."""
        if not self.rows:
            raise ValueError("no images were scored")
        means = [r["mean_blur"] for r in self.rows]
        return {"n_images": len(self.rows), "mean_blur": float(np.mean(means)),
                "blurred_share": float(np.mean([r["blurred_share"] for r in self.rows])),
                "worst_mean_blur": float(np.max(means))}


def sharp_protocol(inverted: bool = False) -> dict:
    """Protocol tags of a sharp-photo evaluation (``inverted``: saved sharpness maps, scored as 1 − x)."""
    return {"gt": "none: every pixel of every photo counts as in focus (photos chosen as sharp everywhere)",
            "prediction_polarity": "sharpness map inverted (1 - x) before scoring" if inverted
            else "blur map as produced (1 = blurred)",
            "threshold_rule": f"mean of the map (mean_blur); share of pixels >= {THRESHOLD} (blurred_share)",
            "resolution": "native (the map at the photo's size; --resolution does not apply)",
            "aggregation": "per-image values averaged over images; worst_mean_blur = the largest per-image mean"}
