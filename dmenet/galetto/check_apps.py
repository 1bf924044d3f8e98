"""Application checks on SYNDOF renders with known σ (issue 18's fusion and enhancement checks, docs/method.md
§15; run by ``galetto-compare --apps``).

For each render (the ``--synthetic`` folder of :mod:`dmenet.galetto.compare`, first ``--apps-count`` stems; the sharp
source photo is ``--apps/<id>.<ext>`` (any image suffix the toolkit reads, :data:`syndof.io.IMAGE_EXTENSIONS`) where the
stem is ``<index>_<id>``, as :mod:`syndof.generate` names its renders), with σ maps from each method (and the ground
truth as an oracle):

* enhancement (G10): adaptive unsharp masking vs global UM λ = 2 — the fraction of clipped pixels on σ_GT < 0.75 px,
  mean |J − I| on σ_GT > 5.5 px, and the Laplacian-variance gain on σ_GT ∈ [2, 5] px;
* fusion (G8): a synthetic pair from the sharp source (A blurred by a Gaussian of 3 px where σ_GT is above its
  median, B elsewhere); PSNR of the fusion against the source vs the better source frame and vs the fusion with the
  true σ maps.
* magnification (issue 18's target): the NLT/SDoF blend and the true ×2 re-render, driven by the estimated σ map;
  the output's σ is measured per window by :func:`reblur_sigma` (the extra Gaussian that best turns the render into
  the output, composed in quadrature with σ_GT): mean rise on the background (σ_GT ≥ 2 px), mean |move| in focus
  (σ_GT < 0.75 px), and the σ_out / σ_in slope of the ×2 mode. The Galetto specification's check G7 is not this: it
  takes medians over the blend-weight masks W < 0.1 / W > 0.9, asks a Laplacian-variance gain ≥ 1.1× in focus, and
  scores the ×2 mode by PSNR against a direct render at 2× CoC; those are not computed.

:func:`check_renders` gives the numbers (its inputs are found, and checked, by :func:`render_inputs`);
``galetto-compare`` writes them under ``"apps"`` in ``OUT/metrics.json`` and their means per method
(:func:`apps_table`) in its printed tables and ``OUT/summary.md``.

Fusion on real focal stacks (G9, ``galetto-compare --fusion-real STACK …``; a stack is a folder or a quoted glob as
in :mod:`dmenet.eval.focal_stack`, frames sorted by name = focus order, resized together to a 640 px long side by
``INTER_AREA``): :func:`real_fusion_scores` fuses the nearest- and farthest-focused frames (first and last name) and,
separately, the whole stack with :func:`dmenet.galetto.apps.fuse` on the method's σ maps, and scores with Q^AB/F
(:mod:`dmenet.galetto.fusion_quality`; for K > 2 frames its pooled K-source form): the fusion, the plain mean of the
frames, a classical fusion (the same decision + guided-filter pipeline on the windowed-Laplacian focus measure
instead of σ) and each frame alone, for zero-padded (reference) and mirrored Sobel borders.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dmenet.filters import gaussian_filter
from dmenet.galetto import apps
from dmenet.galetto.fusion_quality import qabf_sources
from syndof import io, units

REBLUR_GRID = tuple(float(g) for g in np.round(np.arange(0.0, 13.01, 0.25), 2))
"""Candidate extra Gaussian σ (px) of :func:`reblur_sigma` (up to √3·7 px: a ×2 magnification of SYNDOF's 7 px)."""


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB of ``x`` against ``ref``, arrays of one shape (e.g. (H, W, 3)) in [0, 1] (peak 1):
    ``−10·log10(MSE)``; inf when they are equal."""
    return float(-10 * np.log10(np.mean((np.asarray(x, np.float64) - ref) ** 2)))


def lap_var(x: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian of ``x`` (H, W, 3) RGB [0, 1] made gray, over the (H, W) bool ``mask`` (a sharpness
    figure, in [0, 1]-intensity² units)."""
    g = cv2.cvtColor(np.asarray(x, np.float32), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(g, cv2.CV_32F)[mask].var())


def enhancement_check(image: np.ndarray, sigma_gt: np.ndarray, sigma_est: np.ndarray) -> dict:
    """Adaptive (σ_est-driven) vs global unsharp masking of ``image`` ((H, W, 3) RGB in [0, 1]; σ maps (H, W) px):
    the module docstring's figures, each None when its σ_GT region (< 0.75, > 5.5 or 2–5 px) is empty."""
    j = apps.adaptive_enhance(image, sigma_est)
    g = apps.unsharp(image, 2.0)
    sharp, very, mid = sigma_gt < 0.75, sigma_gt > 5.5, (sigma_gt >= 2) & (sigma_gt <= 5)
    at_limit = lambda x: ((x <= 0) | (x >= 1)).any(-1)[sharp]  # noqa: E731
    clipped = lambda x: float(np.mean(at_limit(x) & ~at_limit(image))) if sharp.any() else None  # noqa: E731
    out = {"clipped_sharp_adaptive": clipped(j), "clipped_sharp_global": clipped(g),
           "change_blurred_adaptive": float(np.abs(j - image)[very].mean()) if very.any() else None,
           "change_blurred_global": float(np.abs(g - image)[very].mean()) if very.any() else None,
           "lapvar_gain_mid": lap_var(j, mid) / max(lap_var(image, mid), 1e-12) if mid.any() else None}
    return out


def fusion_check(source: np.ndarray, sigma_gt: np.ndarray, estimate) -> dict:
    """Synthetic two-frame fusion check: ``source`` (H, W, 3) RGB [0, 1] blurred (σ 3 px) where ``sigma_gt`` (H, W, σ
    px) is above its median in one frame and below it in the other, fused with ``estimate`` (image → σ map px); PSNR
    (dB) of the fusion, the best frame, the GT-σ oracle fusion and the frames' mean against ``source``."""
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


def reblur_sigma(image: np.ndarray, output: np.ndarray, sigma_in: np.ndarray, window: int = 32, stride: int = 16,
                 grid: tuple[float, ...] = REBLUR_GRID, max_range: float = 0.5,
                 min_detail: float = 1e-5) -> dict[str, np.ndarray]:
    """σ of ``output`` per window, measured against its input ``image`` of known σ.

    For each window, ĝ = the σ (px) in ``grid`` whose Gaussian (SYNDOF's, symmetric padding) applied to ``image`` is
    closest to ``output`` in mean squared gray difference; then σ_out = √(σ_in² + ĝ²) (Gaussians compose in
    quadrature, :func:`syndof.units.compose_sigma`). An output that is not a further blur of its input (sharpened,
    or an edge-preserving smooth) gets the nearest Gaussian-equivalent. Only windows whose σ_in varies by at most
    ``max_range`` px, and whose input still has detail (mean squared change under a further 2 px blur ≥
    ``min_detail``, gray in [0, 1]) are kept: elsewhere no blur can be measured. The default 1e-5 was chosen on the
    validation renders (``runs/gsyn_val8``, classifier-validation photos) with the true σ as input to the ×2 mode:
    σ_out/σ_in measured 2.08 (median; 10–90 % 1.96–2.18) on 219 background windows, where 1e-4 left 18.

    Args:
        image, output: (H, W, 3) float RGB in [0, 1].
        sigma_in: (H, W) σ px of ``image`` (the render's ground truth).

    Returns:
        ``sigma_in`` (mean over the window), ``sigma_out``, ``extra`` (ĝ), ``y``, ``x``: (M,) arrays, px.
    """
    if image.shape != output.shape or image.shape[:2] != sigma_in.shape:
        raise ValueError(f"image {image.shape}, output {output.shape} and σ map {sigma_in.shape} differ in size")
    gray = lambda x: torch.from_numpy(cv2.cvtColor(np.asarray(x, np.float32), cv2.COLOR_RGB2GRAY)).double()
    i, o = gray(image), gray(output)
    pool = lambda x: F.avg_pool2d(x[None, None], window, stride)[0, 0]
    ssd = torch.stack([pool((o - gaussian_filter(i, g)) ** 2) for g in grid])
    detail = pool((i - gaussian_filter(i, 2.0)) ** 2)
    s = torch.from_numpy(np.asarray(sigma_in, np.float64))
    mean, hi, lo = pool(s), F.max_pool2d(s[None, None], window, stride)[0, 0], -F.max_pool2d(-s[None, None], window,
                                                                                             stride)[0, 0]
    keep = ((hi - lo) <= max_range) & (detail >= min_detail)
    extra = torch.tensor(grid, dtype=torch.float64)[ssd.argmin(0)]
    iy, ix = torch.nonzero(keep, as_tuple=True)
    sig_in = mean[keep].numpy()
    g = extra[keep].numpy()
    return {"sigma_in": sig_in, "extra": g, "sigma_out": units.compose_sigma(sig_in, g), "y": iy.numpy() * stride,
            "x": ix.numpy() * stride}


def magnification_check(image: np.ndarray, sigma_gt: np.ndarray, sigma_est: np.ndarray, k: float = 2.0) -> dict:
    """The two magnification modes driven by ``sigma_est``, measured with :func:`reblur_sigma` against σ_GT:
    ``image`` (H, W, 3) float RGB in [0, 1], ``sigma_gt`` and ``sigma_est`` (H, W) σ in px.

    Returns: per mode (``sdof``, ``scale``) the mean σ rise on background windows (σ_GT ≥ 2 px), the mean |σ move|
    on in-focus windows (σ_GT < 0.75 px), their counts, and (``scale``) the least-squares slope of σ_out on σ_in
    through the origin over windows with σ_GT ≥ 0.5 px (target [1.6, 2.4] for k = 2)."""
    outputs = {"sdof": apps.sdof(image, sigma_est)[0], "scale": apps.magnify_scale(image, sigma_est, k)}
    rows = {}
    for mode, out in outputs.items():
        r = reblur_sigma(image, out, sigma_gt)
        back, focus, blurred = r["sigma_in"] >= 2.0, r["sigma_in"] < 0.75, r["sigma_in"] >= 0.5
        rise = r["sigma_out"] - r["sigma_in"]
        rows[mode] = {"background_rise_px": float(rise[back].mean()) if back.any() else None,
                      "in_focus_move_px": float(np.abs(rise[focus]).mean()) if focus.any() else None,
                      "n_background": int(back.sum()), "n_in_focus": int(focus.sum()),
                      "slope": float((r["sigma_in"][blurred] * r["sigma_out"][blurred]).sum()
                                     / (r["sigma_in"][blurred] ** 2).sum()) if blurred.any() else None}
    return rows


def render_inputs(syndof: Path, photos: Path, count: int) -> list[tuple[str, Path, Path, Path]]:
    """``(stem, render, σ map, source photo)`` paths of the first ``count`` renders (sorted by stem) of the SYNDOF
    folder ``syndof`` (``image/``, ``blur_map/``), each render's sharp source being ``photos/<id>.<ext>`` for a stem
    ``<index>_<id>`` (any suffix of :data:`syndof.io.IMAGE_EXTENSIONS`). Reads no image: a check to run before any work.

    Raises:
        InputError: a missing folder, no render, or naming the first render whose name is not ``<index>_<id>``,
            that has no σ map in ``blur_map/``, or whose source photo is not in ``photos``; naming a render, σ map
            or source photo where no file can be read (a symbolic link loop or to nothing, a FIFO: the listings
            keep such a name, :func:`syndof.io.index_by_stem`; every render is checked, none skipped).
    """
    from dmenet.eval.syndof_test import sigma_map_pairs

    pairs = sigma_map_pairs(syndof, count)
    sources = io.index_by_stem(photos)
    rows = []
    for stem, path, sigma_path in pairs:
        if "_" not in stem:
            raise io.InputError(path, "name is not <index>_<source id> (a syndof.generate render): its source photo "
                                "cannot be found")
        source_id = stem.split("_", 1)[1]
        if source_id not in sources:
            raise io.InputError(path, f"no source photo {source_id}.* in {photos}")
        rows.append((stem, path, sigma_path, sources[source_id]))
    io.refuse_unreadable_names(p for row in rows for p in row[1:])
    return rows


def check_renders(est, syndof: Path, photos: Path, count: int) -> dict:
    """The checks on the first ``count`` renders of ``syndof`` (σ maps from the estimator ``est``, and the ground truth
    as an oracle); ``{stem: {"enhancement", "enhancement_gt_sigma", "fusion", "magnification",
    "magnification_gt_sigma"}}``. Raises InputError as :func:`render_inputs` does, or naming a render whose source
    photo has another size."""
    rows = {}
    for stem, path, sigma_path, source_path in render_inputs(syndof, photos, count):
        image = io.read_image(path)
        sigma_gt = io.read_sigma_map(sigma_path)
        source = io.read_image(source_path)
        if source.shape != image.shape:
            raise io.InputError(path, f"source {source_path.name} size {source.shape} differs from the render")
        sigma_est = est.sigma_map(image)
        rows[stem] = {"enhancement": enhancement_check(image, sigma_gt, sigma_est),
                      "enhancement_gt_sigma": enhancement_check(image, sigma_gt, sigma_gt),
                      "fusion": fusion_check(source, sigma_gt, est.sigma_map),
                      "magnification": magnification_check(image, sigma_gt, sigma_est),
                      "magnification_gt_sigma": magnification_check(image, sigma_gt, sigma_gt)}
    return rows


def _mean(values: list) -> float | None:
    """Mean of the values that are not None (a check that measured nothing on a render gives None); None if none."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


APPS_COLUMNS = {"clipped_sharp_adaptive": ("enhancement", "clipped_sharp_adaptive"),
                "clipped_sharp_global": ("enhancement", "clipped_sharp_global"),
                "change_blurred_adaptive": ("enhancement", "change_blurred_adaptive"),
                "change_blurred_global": ("enhancement", "change_blurred_global"),
                "lapvar_gain_mid": ("enhancement", "lapvar_gain_mid"),
                "psnr_fused": ("fusion", "psnr_fused"), "psnr_best_source": ("fusion", "psnr_best_source"),
                "sdof_background_rise_px": ("magnification", "sdof", "background_rise_px"),
                "sdof_in_focus_move_px": ("magnification", "sdof", "in_focus_move_px"),
                "scale_slope": ("magnification", "scale", "slope")}
"""Columns of :func:`apps_table`: column → key path into one render's :func:`check_renders` entry with the method's
σ maps. With the ground-truth σ maps the path starts with the check's ``*_gt_sigma`` twin, except where
:data:`ORACLE_PATHS` says otherwise."""

ORACLE_PATHS = {"psnr_fused": ("fusion", "psnr_oracle_fusion"), "psnr_best_source": ("fusion", "psnr_best_source")}
"""The fusion check has no ``*_gt_sigma`` twin: its fusion with the true σ maps is ``psnr_oracle_fusion``, and its
best source frame does not depend on σ."""

ORACLE = "σ_GT (oracle)"
"""The :func:`apps_table` row of the ground-truth σ maps."""


def _means(name: str, renders: dict, oracle: bool) -> dict:
    """One :func:`apps_table` row: ``name``, the render count and the mean of each column over ``renders``."""
    row: dict = {"method": name, "renders": len(renders)}
    for column, path in APPS_COLUMNS.items():
        if oracle:
            path = ORACLE_PATHS.get(column, (f"{path[0]}_gt_sigma", *path[1:]))
        row[column] = _mean([functools.reduce(lambda d, k: d[k], path, checks) for checks in renders.values()])
    return row


def apps_table(scores: dict) -> list[dict]:
    """Rows for a summary table of ``{method: check_renders(...)}``: per method the mean over its renders (None
    where no render measured it) of each :data:`APPS_COLUMNS` figure with the method's σ maps, then one
    :data:`ORACLE` row with the ground-truth σ maps (``*_gt_sigma`` checks; ``psnr_fused`` = the fusion with the true
    σ maps), taken from the first method's renders. Units: fractions of pixels, mean |J − I| on [0, 1], dB, px."""
    rows = [_means(method, renders, False) for method, renders in scores.items()]
    first = next(iter(scores.values()), {})
    return rows + [_means(ORACLE, first, True)] if first else rows


def fusion_quality_row(frames: np.ndarray, sigmas: np.ndarray, borders: tuple[str, ...] = ("zero", "reflect")) -> dict:
    """Q^AB/F (pooled over the K frames) of the σ fusion, the plain mean, the Laplacian fusion and each frame alone.

    Args:
        frames: (K, H, W, 3) aligned RGB in [0, 1], K ≥ 2.
        sigmas: (K, H, W) σ maps (px) of the frames.
        borders: Sobel border modes to score with (:func:`dmenet.galetto.fusion_quality.edge_maps`).

    Returns:
        ``{border: {"fused", "mean", "laplacian_gf", "sources" (list), "best_source", "fused_minus_mean"}}``.
    """
    from dmenet.peers.laplacian import DEFAULT_WINDOW, laplacian_sharpness

    fused, _ = apps.fuse(frames, sigmas)
    focus = np.stack([laplacian_sharpness(f, DEFAULT_WINDOW) for f in frames])
    classical, _ = apps.fuse(frames, -focus)  # argmax of focus = argmin of its negative
    mean = frames.mean(0)
    out = {}
    for border in borders:
        q = lambda image: qabf_sources(list(frames), image, border)
        sources = [q(f) for f in frames]
        row = {"fused": q(fused), "mean": q(mean), "laplacian_gf": q(classical), "sources": sources,
               "best_source": max(sources)}
        out[border] = {**row, "fused_minus_mean": row["fused"] - row["mean"]}
    return out


def real_fusion_scores(est, stacks: list[str], max_side: int = 640) -> dict:
    """Q^AB/F figures of the estimator ``est``'s fusion on real focal stacks (module docstring):
    ``{stack name: {"frames": names, "pair": {"frames": [first, last], **row}, "stack": row}}`` with rows of
    :func:`fusion_quality_row`. Raises InputError for a stack of < 2 frames or frames of different sizes."""
    from dmenet.eval.focal_stack import load_stack, stack_name

    res = {}
    for spec in stacks:
        names, frames, _ = load_stack(spec, max_side)
        sigmas = np.stack([est.sigma_map(f) for f in frames])
        ends = [0, len(frames) - 1]
        res[stack_name(spec)] = {"frames": names, "size": list(frames.shape[1:3]),
                                 "pair": {"frames": [names[i] for i in ends],
                                          **fusion_quality_row(frames[ends], sigmas[ends])},
                                 "stack": fusion_quality_row(frames, sigmas)}
    return res


def real_fusion_table(scores: dict, border: str = "zero") -> list[dict]:
    """Flat rows (method, stack, set, Q of fused / mean / Laplacian fusion / best source, fused − mean) of
    ``{method: real_fusion_scores(...)}`` for a summary table."""
    rows = []
    for method, stacks in scores.items():
        for name, r in stacks.items():
            for part in ("pair", "stack"):
                q = r[part][border]
                rows.append({"method": method, "stack": name, "frames": "+".join(r[part]["frames"]) if part == "pair"
                             else f"all {len(r['frames'])}", "fused": q["fused"], "mean": q["mean"],
                             "laplacian_gf": q["laplacian_gf"], "best_source": q["best_source"],
                             "fused_minus_mean": q["fused_minus_mean"]})
    return rows
