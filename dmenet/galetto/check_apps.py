"""Application checks on SYNDOF renders with known σ (issue 18's fusion and enhancement checks, docs/method.md
§15; run by ``galetto-compare --apps``).

For each render (the ``--synthetic`` folder of :mod:`dmenet.galetto.compare`, first ``--apps-count`` stems; the sharp
source photo is ``--apps/<id>.jpg`` where the stem is ``<index>_<id>``), with σ maps from each method (and the ground
truth as an oracle):

* enhancement (G10): adaptive unsharp masking vs global UM λ = 2 — the fraction of clipped pixels on σ_GT < 0.75 px,
  mean |J − I| on σ_GT > 5.5 px, and the Laplacian-variance gain on σ_GT ∈ [2, 5] px;
* fusion (G8): a synthetic pair from the sharp source (A blurred by a Gaussian of 3 px where σ_GT is above its
  median, B elsewhere); PSNR of the fusion against the source vs the better source frame and vs the fusion with the
  true σ maps.

:func:`check_renders` gives the numbers; ``galetto-compare`` writes them under ``"apps"`` in ``OUT/metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dmenet.galetto import apps
from syndof import io


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((np.asarray(x, np.float64) - ref) ** 2)))


def lap_var(x: np.ndarray, mask: np.ndarray) -> float:
    g = cv2.cvtColor(np.asarray(x, np.float32), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(g, cv2.CV_32F)[mask].var())


def enhancement_check(image: np.ndarray, sigma_gt: np.ndarray, sigma_est: np.ndarray) -> dict:
    j = apps.adaptive_enhance(image, sigma_est)
    g = apps.unsharp(image, 2.0)
    sharp, very, mid = sigma_gt < 0.75, sigma_gt > 5.5, (sigma_gt >= 2) & (sigma_gt <= 5)
    clipped = lambda x: float(np.mean(((x <= 0) | (x >= 1)).any(-1)[sharp] & ~((image <= 0) | (image >= 1)).any(-1)[sharp]))
    out = {"clipped_sharp_adaptive": clipped(j), "clipped_sharp_global": clipped(g),
           "change_blurred_adaptive": float(np.abs(j - image)[very].mean()) if very.any() else None,
           "change_blurred_global": float(np.abs(g - image)[very].mean()) if very.any() else None,
           "lapvar_gain_mid": lap_var(j, mid) / max(lap_var(image, mid), 1e-12) if mid.any() else None}
    return out


def fusion_check(source: np.ndarray, sigma_gt: np.ndarray, estimate) -> dict:
    far = sigma_gt > np.median(sigma_gt)
    blurred = apps.lowpass(source, 3.0)
    a = np.where(far[..., None], blurred, source)
    b = np.where(far[..., None], source, blurred)
    frames = np.stack([a, b]).astype(np.float32)
    fused, _ = apps.fuse(frames, np.stack([estimate(a), estimate(b)]))
    oracle, _ = apps.fuse(frames, np.stack([far * 3.0, (~far) * 3.0]))
    mean = frames.mean(0)
    return {"psnr_fused": psnr(fused, source), "psnr_best_source": max(psnr(a, source), psnr(b, source)),
            "psnr_oracle_fusion": psnr(oracle, source), "psnr_mean": psnr(mean, source)}


def check_renders(est, syndof: Path, photos: Path, count: int) -> dict:
    """Both checks on the first ``count`` renders of ``syndof`` (σ maps from the estimator ``est``, and the ground truth
    as an oracle); ``{stem: {"enhancement", "enhancement_gt_sigma", "fusion"}}``. Raises InputError naming a render
    whose source photo has another size."""
    rows = {}
    for stem, path in sorted(io.index_by_stem(syndof / "image").items())[:count]:
        image = io.read_image(path)
        sigma_gt = io.read_sigma_map(syndof / "blur_map" / f"{stem}.png")
        source = io.read_image(photos / f"{stem.split('_', 1)[1]}.jpg")
        if source.shape != image.shape:
            raise io.InputError(path, f"source size {source.shape} differs from the render")
        rows[stem] = {"enhancement": enhancement_check(image, sigma_gt, est.sigma_map(image)),
                      "enhancement_gt_sigma": enhancement_check(image, sigma_gt, sigma_gt),
                      "fusion": fusion_check(source, sigma_gt, est.sigma_map)}
    return rows
