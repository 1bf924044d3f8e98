"""Layered back-to-front defocus rendering with occlusion inpainting (SYNDOF ``blur_by_depth.m``, docs/method.md §9):
the fast tiled renderer, :func:`render_layers`.

Work is restricted to 32-px tiles (a layer is blurred and composited only on tiles within its kernel radius; the
occluder band only on tiles holding both farther and nearer pixels; the alpha renormalisation only on tiles where
alpha can be fractional), Gaussian kernels are applied separably (OpenCV's SIMD filter on CPU, torch ``conv2d`` on
CUDA), MATLAB ``'symmetric'`` borders come from one globally mirror-padded copy of the image and labels, and
``regionfill`` is assembled from the band's pixels alone. The fill systems depend only on the labels, so on CPU a
worker thread builds and factorises them ahead of the compositing loop. Its output equals
:func:`~syndof.blur_reference.render_layers_reference` to float rounding (tests: < 1e-10 in float64).

Both renderers take ``merge_tolerance`` (px of σ, default 0 = exact): an approximation that renders adjacent layers
whose σ lie within that range as one layer (:func:`~syndof.layer_merge.merge_plan`,
:func:`~syndof.layer_merge.merge_layers`), so fewer compositing passes and fill solves run. On the Sintel replay
0.075 px keeps ≥ 41 dB against the original renders for about a third of the time
(``benchmarks/bench_render.py --merge-tolerance 0 0.075``); 0 leaves the output bit-for-bit unchanged.

The rest of the renderer, one module per purpose (their public names are re-exported here: every name
``syndof.blur`` offered before still imports from it):

* :mod:`syndof.blur_reference`: the algorithm step by step (steps 1–4 in its docstring) as a plain per-layer,
  full-frame loop, and the thresholds and output step both renderers share;
* :mod:`syndof.convolve`: the layers' kernels as tensors, MATLAB ``'symmetric'`` padding, the convolutions;
* :mod:`syndof.render_checks`: the input checks (``max_coc`` and its bound, the CoCs, image, labels, dtype, tile);
* :mod:`syndof.layer_merge`: the layer-merging approximation;
* :mod:`syndof.fill_plans`: this renderer's occlusion fills, factorised ahead and released on their thread.

Tensors stay on the input's device (CPU or CUDA); the sparse ``regionfill`` solves run on the CPU on the (small)
occlusion band.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from syndof import units
from syndof.blur_reference import ALPHA_EPS, BAND_EPS, finish, layer_table, render_layers_reference
from syndof.cli import available_cpus
from syndof.convolve import Conv, filter_symmetric, layer_kernels, symmetric_pad
from syndof.fill_plans import apply_fill, plan_fill, release_plan
from syndof.layer_merge import MERGE_SLACK, check_merge_tolerance, maybe_merge, merge_layers, merge_plan
from syndof.psf import Kernel
from syndof.render_checks import (
    COC_TOLERANCE,
    MAX_MAX_COC,
    check_dtype,
    check_inputs,
    check_max_coc,
    check_tile,
    coc_problem,
)

__all__ = [
    # this module: the fast tiled renderer
    "render_layers",
    # re-exported: syndof.blur.NAME still names them. Replacing one of them here reaches only _render_tiled, and
    # only for ALPHA_EPS, BAND_EPS and symmetric_pad, which it reads here; the reference loop, the checks and the
    # merge look their names up in their own modules (a test replacing a helper of the fast path, e.g. apply_fill,
    # release_plan or available_cpus, replaces it here, where _render_tiled finds it)
    "ALPHA_EPS", "BAND_EPS", "render_layers_reference",  # syndof.blur_reference
    "filter_symmetric", "symmetric_pad",  # syndof.convolve
    "COC_TOLERANCE", "MAX_MAX_COC", "check_max_coc", "coc_problem",  # syndof.render_checks
    "MERGE_SLACK", "check_merge_tolerance", "merge_layers", "merge_plan",  # syndof.layer_merge
]


@contextlib.contextmanager
def _single_threaded(enabled: bool):
    """Run torch, OpenCV and the BLAS libraries (SciPy's OpenBLAS, via ``threadpoolctl``) single-threaded: the fast
    path issues thousands of small ops, for which intra-op threads only add synchronisation (and busy-waiting
    OpenMP threads collapse on a shared, loaded machine). The fill worker's banded Cholesky solves (LAPACK) are
    small: with OpenBLAS' own threads they spun against the compositing thread and took 3× the CPU (BENCHMARKS.md,
    "Idle-machine figures")."""
    if not enabled:
        yield
        return
    import cv2
    from threadpoolctl import threadpool_limits

    nt, ncv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(nt)
        cv2.setNumThreads(ncv)


def _runs_to_rects(active: np.ndarray, T: int, H: int, W: int) -> list[tuple[int, int, int, int]]:
    """Active tile grid (nty, ntx) → pixel rectangles (r0, r1, c0, c1): per tile row, the span of its active
    tiles (fewer, larger calls beat exact runs here)."""
    rows = np.flatnonzero(active.any(axis=1))
    if rows.size == 0:
        return []
    sub = active[rows]
    first = sub.argmax(axis=1)
    last = active.shape[1] - sub[:, ::-1].argmax(axis=1)
    r0 = rows * T
    r1 = np.minimum(r0 + T, H)
    return list(zip(r0.tolist(), r1.tolist(), (first * T).tolist(), np.minimum(last * T, W).tolist()))


def _dilate_tiles(grid: np.ndarray, d: int) -> np.ndarray:
    if d <= 0:
        return grid
    out = grid.copy()
    for _ in range(d):
        g = out.copy()
        g[1:] |= out[:-1]
        g[:-1] |= out[1:]
        out = g.copy()
        out[:, 1:] |= g[:, :-1]
        out[:, :-1] |= g[:, 1:]
    return out


def render_layers(image: torch.Tensor, labels: torch.Tensor, coc, max_coc: int = units.DEFAULT_MAX_COC,
                  kernel: Kernel | str = Kernel.GAUSSIAN, dtype: torch.dtype | None = None, tile: int = 32, *,
                  merge_tolerance: float = 0.0) -> torch.Tensor:
    """Render a layered defocus image (fast tiled implementation; device follows ``image``).

    Work is restricted to tiles: a layer is blurred and composited only on the tiles within its kernel radius of
    its pixels; the occluder band ``U_b`` is convolved only on tiles holding both farther pixels (within the
    radius) and current/nearer pixels; the alpha renormalisation runs only on tiles where alpha can be
    fractional; ``regionfill`` is assembled from the band's pixels alone.

    Args:
        image: (3, H, W) float tensor, RGB in [0, 1] (finite; values up to :data:`syndof.images.FLOAT_IMAGE_MAX`
            are taken as they are), CPU or CUDA.
        labels: (H, W) integer tensor (long, int, uint8 or bool), layer index per pixel in [0, K), 0 = farthest;
            float labels are refused (ValueError), not truncated.
        coc: (K,) CoC diameter in px per layer (tensor or array), finite, in [0, ``max_coc`` +
            :data:`~syndof.render_checks.COC_TOLERANCE`]; ``c ≤ 1`` = in focus.
        max_coc: largest CoC in px (finite, ≥ 1): the Gaussian kernel grid size (29 in the original, which also
            bounds the kernel radius to 14 px).
        kernel: :class:`~syndof.psf.Kernel` or its value: ``"gaussian"`` (the original), ``"disc"`` or
            ``"polygon"`` (6 blades); ValueError naming the kernels otherwise.
        dtype: compute dtype, torch.float32 (default, None) or torch.float64 (for bit-level comparisons).
        tile: tile size in px (a whole number ≥ 1).
        merge_tolerance: px of σ (finite, ≥ 0). 0 (default) renders every layer exactly as the original.
            Above 0, adjacent layers whose σ lie within this range are rendered as one layer (fewer compositing
            passes and fill solves; an approximation, see :func:`~syndof.layer_merge.merge_plan` for the merged
            layer's CoC). The image is then rendered with σ ``units.coc_to_sigma(merged_coc)[merged_labels]`` from
            :func:`~syndof.layer_merge.merge_layers`, not with the input layers' σ: a caller that writes a
            ground-truth σ map must merge first (:func:`~syndof.layer_merge.merge_layers` or
            :meth:`syndof.camera.LayeredDepth.merged`), write the merged layers' σ, and render those with tolerance
            0 — the result is identical.

    Returns:
        (3, H, W) tensor in [0, 1] on ``image.device``.

    Raises:
        ValueError: naming the argument: not a tensor, bad shapes, an empty image, an image that is not float, has
            NaN / inf or values above :data:`syndof.images.FLOAT_IMAGE_MAX` (0…255) or below
            :data:`syndof.images.FLOAT_IMAGE_MIN` ([-1, 1]), float labels or labels outside the CoC list, a
            CoC that is not finite, negative or above ``max_coc`` (:func:`~syndof.render_checks.coc_problem`), a
            bad ``max_coc``, ``dtype`` or ``tile``, an unknown ``kernel``, or a negative / non-finite
            ``merge_tolerance``.
    """
    dtype = check_dtype(dtype, torch.float32)
    check_tile(tile)
    check_inputs(image, labels, coc, max_coc)
    labels, coc = maybe_merge(labels, coc, merge_tolerance)
    with _single_threaded(image.device.type == "cpu"):
        return _render_tiled(image, labels, coc, max_coc, kernel, dtype, tile)


def _render_tiled(image, labels, coc, max_coc, kernel, dtype, tile, pipeline=True):
    """:func:`render_layers` on inputs it has checked (and merged)."""
    coc_np, k0 = layer_table(coc)
    dtype = dtype or torch.float32
    dev = image.device
    K = coc_np.size
    H, W = labels.shape
    T = int(tile)
    labels_np = labels.detach().cpu().numpy().astype(np.int64, copy=False)
    labels_d = labels.to(dev)
    kernels = layer_kernels(coc_np, max_coc, kernel, dtype, dev)
    conv = Conv(dev)
    P = max([k.radius for k in kernels if k is not None], default=0)
    img_pad = symmetric_pad(image.to(dtype), P)
    lab_pad = symmetric_pad(labels_d, P)
    # tile statistics: which layers each tile holds, min/max label per tile
    nty, ntx = -(-H // T), -(-W // T)
    ty = np.repeat(np.arange(H) // T, W)
    tx = np.tile(np.arange(W) // T, H)
    tid = ty * ntx + tx
    flat = labels_np.ravel()
    presence = (np.bincount(tid * K + flat, minlength=nty * ntx * K) > 0).reshape(nty, ntx, K)
    tmax = np.full(nty * ntx, -1, dtype=np.int64)
    tmin = np.full(nty * ntx, K, dtype=np.int64)
    np.maximum.at(tmax, tid, flat)
    np.minimum.at(tmin, tid, flat)
    tmax, tmin = tmax.reshape(nty, ntx), tmin.reshape(nty, ntx)
    C = torch.zeros(3, H, W, dtype=dtype, device=dev)
    A = torch.zeros(H, W, dtype=dtype, device=dev)
    dirty = np.ones((nty, ntx), dtype=bool)  # tiles where alpha may be outside {0, 1}
    scratch = threading.local()  # one (H+2, W+2) index map per worker thread

    def plan_step(k: int):
        """Region R_k of step k (> k0, blurred layer) and its factorised fill system, or None when R_k is empty."""
        kern = kernels[k]
        r = kern.radius
        band = _dilate_tiles(tmin < k, -(-r // T)) & (tmax >= k)
        ys_all, xs_all = [], []
        for r0, r1, c0, c1 in _runs_to_rects(band, T, H, W):
            win = lab_pad[r0 + P - r : r1 + P + r, c0 + P - r : c1 + P + r]
            Ub = conv((win < k).to(dtype)[None], kern)[0]
            R = (Ub >= BAND_EPS) & (labels_d[r0:r1, c0:c1] >= k)
            yy, xx = np.nonzero(R.cpu().numpy())
            if yy.size:
                ys_all.append(yy + r0)
                xs_all.append(xx + c0)
        if not ys_all:
            return None
        if not hasattr(scratch, "idxmap"):
            scratch.idxmap = np.full((H + 2, W + 2), -1, dtype=np.int64)
        return plan_fill(labels_np, k, np.concatenate(ys_all), np.concatenate(xs_all), scratch.idxmap)

    # The fill systems depend only on the labels and kernels, not on the buffers: on CPU they are assembled and
    # factorised by worker threads a few steps ahead of the compositing loop (LAPACK, SciPy's SuperLU and OpenCV
    # release the GIL): one worker on 2 cores, up to 3 when more cores are available. Each worker is its own
    # single-thread executor (plans go round-robin) because a factor must be released on the thread that made it
    # (see syndof.fill_plans.release_plan).
    fill_steps = [k for k in range(k0 + 1, K) if kernels[k] is not None]
    workers = max(1, min(3, available_cpus() - 1))
    pipelined = pipeline and dev.type == "cpu" and bool(fill_steps)
    executors = [ThreadPoolExecutor(max_workers=1) for _ in range(workers)] if pipelined else []
    plans: dict = {}  # step -> (executor or None, future or plan)
    lookahead = 2 * workers + 1
    queue = iter(fill_steps)
    n_submitted = 0

    def submit(_upto: int) -> None:
        """Queue occlusion-fill plans up to ``lookahead`` steps ahead (on the worker threads, or inline without
        them)."""
        nonlocal n_submitted
        while len(plans) < lookahead + 1:
            nxt = next(queue, None)
            if nxt is None:
                return
            if executors:
                ex = executors[n_submitted % len(executors)]
                plans[nxt] = (ex, ex.submit(plan_step, nxt))
            else:
                plans[nxt] = (None, plan_step(nxt))
            n_submitted += 1

    try:
        submit(0)
        for k in range(K):
            kern = kernels[k]
            r = kern.radius if kern is not None else 0
            dtile = -(-r // T)
            layer_tiles = _dilate_tiles(presence[:, :, k], dtile)
            if k > k0:
                for r0, r1, c0, c1 in _runs_to_rects(dirty, T, H, W):
                    a = A[r0:r1, c0:c1]
                    denom = torch.where(a == 0, torch.ones_like(a), a)
                    C[:, r0:r1, c0:c1] /= denom
                    A[r0:r1, c0:c1] = a / denom
                dirty = layer_tiles.copy()
                entry = plans.pop(k, None)
                if entry is not None:
                    ex, plan = entry
                    plan = plan.result() if ex is not None else plan
                    if plan is not None:
                        try:
                            apply_fill(C, A, plan)
                        finally:
                            release_plan(plan, ex)
                        dirty[plan.ys // T, plan.xs // T] = True
                submit(k + lookahead)
            if kern is not None:
                for r0, r1, c0, c1 in _runs_to_rects(layer_tiles, T, H, W):
                    lw = lab_pad[r0 + P - r : r1 + P + r, c0 + P - r : c1 + P + r]
                    iw = img_pad[:, r0 + P - r : r1 + P + r, c0 + P - r : c1 + P + r]
                    M = (lw == k).to(dtype)
                    blurred = conv(torch.cat([M[None], M[None] * iw]), kern)
                    alpha, fg = blurred[0], blurred[1:]
                    alpha = torch.where(alpha < ALPHA_EPS, torch.zeros_like(alpha), alpha)
                    C[:, r0:r1, c0:c1] = (1 - alpha) * C[:, r0:r1, c0:c1] + fg
                    A[r0:r1, c0:c1] = (1 - alpha) * A[r0:r1, c0:c1] + alpha
            else:
                for r0, r1, c0, c1 in _runs_to_rects(layer_tiles, T, H, W):
                    alpha = (labels_d[r0:r1, c0:c1] == k).to(dtype)
                    fg = alpha[None] * img_pad[:, r0 + P : r1 + P, c0 + P : c1 + P]
                    C[:, r0:r1, c0:c1] = (1 - alpha) * C[:, r0:r1, c0:c1] + fg
                    A[r0:r1, c0:c1] = (1 - alpha) * A[r0:r1, c0:c1] + alpha
    finally:
        # Only after an error are plans left: cancel those not started, release the factors of the others.
        for ex, fut in plans.values():
            if ex is not None and not fut.cancel():
                try:
                    plan = fut.result()
                except BaseException:  # noqa: BLE001 — the error that stopped the loop is already propagating
                    plan = None
                if plan is not None:
                    release_plan(plan, ex)
        plans.clear()
        for ex in executors:
            ex.shutdown(wait=True)  # runs the pending releases
    return finish(C, A)
