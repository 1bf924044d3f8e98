"""Layered back-to-front defocus rendering with occlusion inpainting (SYNDOF ``blur_by_depth.m``, docs/method.md §9).

Two implementations of the same algorithm:

* :func:`render_layers` — the fast one: work is restricted to 32-px tiles (a layer is blurred and composited only
  on tiles within its kernel radius; the occluder band only on tiles holding both farther and nearer pixels; the
  alpha renormalisation only on tiles where alpha can be fractional), Gaussian kernels are applied separably
  (OpenCV's SIMD filter on CPU, torch ``conv2d`` on CUDA), MATLAB ``'symmetric'`` borders come from one globally
  mirror-padded copy of the image and labels, and ``regionfill`` is assembled from the band's pixels alone. The
  fill systems depend only on the labels, so on CPU a worker thread builds and factorises them ahead of the
  compositing loop. Its output equals :func:`render_layers_reference` to float rounding (tests: < 1e-10 in
  float64).
* :func:`render_layers_reference` — a plain per-layer, full-frame loop, kept for the equality test and the speed
  ratio in ``benchmarks/bench_render.py``.

Both take ``merge_tolerance`` (px of σ, default 0 = exact): an approximation that renders adjacent layers whose σ
lie within that range as one layer (:func:`merge_plan`, :func:`merge_layers`), so fewer compositing passes and fill
solves run. On the Sintel replay 0.075 px keeps ≥ 41 dB against the original renders for about a third of the
time (``benchmarks/bench_render.py --merge-tolerance 0 0.075``); 0 leaves the output bit-for-bit unchanged.

Algorithm (layers k = 0..K−1 far→near, CoC ``c_k``; ``k0`` = first layer with ``c ≤ 1``; buffers C (premultiplied
colour) and A (alpha) start at 0; ``*`` is ``imfilter(…, 'same', 'conv', 'symmetric')``):

1. ``c_k > 1``: ``α = G_k * M_k``, ``F = G_k * (M_k·I)``; else ``α = M_k``, ``F = M_k·I``. ``α < 1e-4 → 0``.
2. For ``k > k0``: U = union of layers < k; ``U_b = G_k * U`` (0 when ``c_k ≤ 1``), ``U_b < 1e-3 → 0``;
   R = ``(U_b > 0) ∧ ¬U``; ``A' = A`` with zeros → 1; ``C ← C/A'``, ``A ← A/A'``; Ĉ = C on U, 0 elsewhere,
   regionfilled over R per channel; Â = regionfill(U, R); in R: ``C ← Ĉ``, ``A ← Â`` (un-premultiplied, as the
   original).
3. ``C ← (1 − α)·C + F``; ``A ← (1 − α)·A + α``.
4. Output ``C / A`` (clipped to [0, 1]; 0 where A = 0, which the original writes for its NaNs).

Borders: MATLAB ``'symmetric'`` = NumPy ``'symmetric'`` = OpenCV ``BORDER_REFLECT`` (edge pixel repeated), not
PyTorch ``'reflect'``. Tensors stay on the input's device (CPU or CUDA); the sparse ``regionfill`` solves run on
the CPU on the (small) occlusion band.
"""

from __future__ import annotations

import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from syndof import psf, units
from syndof.choices import parse_choice
from syndof.cli import available_cpus
from syndof.images import FLOAT_IMAGE_MAX, FLOAT_IMAGE_MIN
from syndof.psf import Kernel
from syndof.regionfill import _solve_crop, factorize_laplace

ALPHA_EPS = 1e-4
"""Blurred-mask values below this are zeroed (original ``mask_blurred < 0.0001``)."""
BAND_EPS = 1e-3
"""Blurred occluder-union values below this are zeroed (original ``mask_sum_prev_blurred < 0.001``)."""
COC_TOLERANCE = 0.2
"""px of CoC above ``max_coc`` still accepted (σ 0.05 px): a SYNDOF σ map stores ``round(10·σ)``, so a map at σ_max
can hold up to σ_max + 0.05 px, and the layers recovered from it (:func:`syndof.camera.layers_from_sigma`) can
reach ``max_coc`` + 0.1 px. Anything above is refused: the kernel grid (``max_coc``) would truncate the blur to a
smaller σ than the CoC's."""


# ------------------------------------------------------------------------------------------------------ kernels
@dataclass
class _Kernel:
    radius: int
    sep: torch.Tensor | None  # 1-D separable factor, or None
    full: torch.Tensor | None  # 2-D kernel (already flipped for true convolution), or None


def _layer_kernels(coc: np.ndarray, max_coc: int, kernel: Kernel | str, dtype, device) -> list[_Kernel | None]:
    """Per layer: None for c ≤ 1 (no kernel), else the layer's :class:`~syndof.psf.Kernel` ``kernel`` (a member or
    its value; ValueError otherwise; Gaussians as separable factors); identical CoCs share one object."""
    kernel = parse_choice(Kernel, kernel, "kernel")
    cache: dict[float, _Kernel] = {}
    out: list[_Kernel | None] = []
    for c in coc.tolist():
        if c <= 1.0:
            out.append(None)
            continue
        if c not in cache:
            if kernel is Kernel.GAUSSIAN:
                g = psf.gaussian_kernel_1d(psf.coc_sigma(c), max_coc)
                cache[c] = _Kernel(g.size // 2, torch.as_tensor(g, dtype=dtype, device=device), None)
            else:
                k2 = psf.make_kernel(c, max_coc, kernel)
                if k2.shape[0] != k2.shape[1] or k2.shape[0] % 2 == 0:
                    raise ValueError("kernels must be square with an odd side")
                k2 = np.ascontiguousarray(k2[::-1, ::-1])
                cache[c] = _Kernel(k2.shape[0] // 2, None, torch.as_tensor(k2, dtype=dtype, device=device))
        out.append(cache[c])
    return out


def _conv_valid(x: torch.Tensor, k: _Kernel) -> torch.Tensor:
    """'valid' convolution of (N, h, w) by the kernel: output (N, h − 2r, w − 2r)."""
    if k.radius == 0:
        return x * (k.sep[0] if k.sep is not None else k.full[0, 0])
    y = x.unsqueeze(1)
    if k.sep is not None:
        n = k.sep.numel()
        y = F.conv2d(y, k.sep.view(1, 1, 1, n))
        y = F.conv2d(y, k.sep.view(1, 1, n, 1))
    else:
        y = F.conv2d(y, k.full[None, None])
    return y.squeeze(1)


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """MATLAB/NumPy ``'symmetric'`` padding of the last two dims (edge pixel repeated; any pad size):
    (..., H, W) → (..., H + 2·pad, W + 2·pad), ``pad`` in px, dtype and device kept."""
    if pad == 0:
        return x
    h, w = x.shape[-2:]
    ri = torch.as_tensor(np.pad(np.arange(h), pad, mode="symmetric"), device=x.device)
    ci = torch.as_tensor(np.pad(np.arange(w), pad, mode="symmetric"), device=x.device)
    return x.index_select(-2, ri).index_select(-1, ci)


def filter_symmetric(x: torch.Tensor, k: _Kernel) -> torch.Tensor:
    """``imfilter(x, K, 'same', 'conv', 'symmetric')`` of (N, H, W): (N, H, W), same dtype (``k``: a prepared
    kernel with its radius in px)."""
    return _conv_valid(symmetric_pad(x, k.radius), k)


MAX_MAX_COC = 255
"""Largest ``--max-coc`` of ``generate`` and ``render``: the renderer builds a max_coc² kernel per CoC layer and
the layer count grows with max_coc, so memory and time grow about as max_coc³ (255: σ_max 63.5 px, ~1 min and
~0.3 GB for a 64×48 image; 100000: a MemoryError per sample). SYNDOF's own value is 29."""


def check_max_coc(max_coc, what: str = "max_coc") -> float:
    """``max_coc`` (px, the Gaussian kernel grid) as a float; ValueError starting with ``what`` unless it is a finite
    number ≥ 1."""
    try:
        value = float(max_coc)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of px >= 1, got {max_coc!r}") from None
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{what} must be a finite CoC >= 1 px (σ_max = (max_coc − 1)/4), got {max_coc!r}")
    return value


def coc_problem(coc, max_coc: float, max_name: str = "max_coc") -> str | None:
    """The one check of the blur a render is asked for: None when every CoC (px) in ``coc`` is finite, ≥ 0 and at
    most ``max_coc`` + :data:`COC_TOLERANCE`, else one line saying what is wrong (the σ with the CoC; ``max_name``:
    how the caller's user names ``max_coc``). ``coc``: a number or an array of any shape (px); ``max_coc`` in px."""
    coc = np.asarray(coc, dtype=np.float64)
    if not np.all(np.isfinite(coc)):
        return "CoC values must be finite (NaN or inf given)"
    if coc.size == 0:
        return None
    if float(coc.min()) < 0:
        return f"CoC values must be >= 0 px, got {float(coc.min()):g}"
    top = float(coc.max())
    if top > max_coc + COC_TOLERANCE + 1e-4:  # 1e-4: a float32 σ of the stored round(10·σ) (6.8 → 28.2000008 px)
        return (f"σ up to {units.coc_to_sigma(top):g} px (CoC {top:g} px) exceeds σ_max "
                f"{units.max_sigma(max_coc):g} px of {max_name} {max_coc:g}")
    return None


def _check_dtype(dtype, default: torch.dtype) -> torch.dtype:
    """The compute dtype (``default`` for None); ValueError naming ``dtype`` unless float32 or float64."""
    dtype = default if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _check_tile(tile) -> None:
    """ValueError naming ``tile`` unless a whole number ≥ 1 of px."""
    try:
        ok = int(tile) == tile and int(tile) >= 1 and not isinstance(tile, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"tile must be a whole number of px >= 1, got {tile!r}")


def _check_inputs(image: torch.Tensor, labels: torch.Tensor, coc, max_coc=units.DEFAULT_MAX_COC) -> None:
    """ValueError naming the argument for anything :func:`render_layers` would render wrong or fail on deep inside
    (once per render, before layers are merged: merging keeps valid layers valid)."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a (3, H, W) float tensor in [0, 1], got {type(image).__name__}")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be an (H, W) tensor of layer indices, got {type(labels).__name__} "
                         "(torch.from_numpy turns an array into one)")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"image must be float RGB in [0, 1], got {image.dtype} (divide 8-bit values by 255)")
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError(f"image is empty ({image.shape[2]}x{image.shape[1]} px)")
    if labels.shape != image.shape[1:]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match the image {tuple(image.shape[1:])}")
    if labels.is_floating_point() or labels.is_complex():  # 0.6 was taken as layer 0 unsaid: another render
        raise ValueError(f"labels must be an integer tensor of layer indices, got {labels.dtype} "
                         "(labels.long() if they are whole numbers)")
    lo, hi = torch.stack(torch.aminmax(image)).tolist()  # one device sync (NaN propagates to both, ±inf to one)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("image has NaN or inf values")
    if hi > FLOAT_IMAGE_MAX:
        raise ValueError(f"image: values up to {hi:g}; it must be float RGB in [0, 1] (divide 8-bit values by 255)")
    if lo < FLOAT_IMAGE_MIN:
        raise ValueError(f"image: values down to {lo:g}; it must be float RGB in [0, 1] (a [-1, 1] tensor: "
                         "(x + 1) / 2)")
    max_coc = check_max_coc(max_coc)
    try:
        coc_np = coc.detach().cpu().double().numpy() if isinstance(coc, torch.Tensor) else np.asarray(coc, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"coc must be a 1-D array of CoCs in px, got {type(coc).__name__}") from None
    if coc_np.ndim != 1 or coc_np.size == 0:
        raise ValueError("coc must be a non-empty 1-D array (one CoC per layer)")
    problem = coc_problem(coc_np, max_coc)
    if problem:
        raise ValueError(f"coc: {problem}")
    lmin, lmax = torch.stack(torch.aminmax(labels)).tolist()  # one device sync
    if lmin < 0 or lmax >= coc_np.size:
        raise ValueError(f"labels must lie in [0, {coc_np.size - 1}]")


def _layer_table(coc) -> tuple[np.ndarray, int]:
    """(the layers' CoCs as a float64 array, index of the first in-focus layer) of checked layers."""
    coc_np = coc.detach().cpu().double().numpy() if isinstance(coc, torch.Tensor) else np.asarray(coc, np.float64)
    in_focus = np.flatnonzero(coc_np <= 1.0)
    return coc_np, int(in_focus[0]) if in_focus.size else coc_np.size  # no in-focus layer: no occlusion fill


def _fill_band(C: torch.Tensor, A: torch.Tensor, U: np.ndarray, R: np.ndarray) -> None:
    """In place on crops: C (3, h, w), A (h, w) (already renormalised), U/R (h, w) bool. Regionfill over R."""
    vals = np.empty(U.shape + (4,), dtype=np.float64)
    vals[..., :3] = np.where(U[..., None], C.permute(1, 2, 0).cpu().double().numpy(), 0.0)
    vals[..., 3] = U
    out = _solve_crop(vals, R)
    Rt = torch.as_tensor(R, device=C.device)
    filled = torch.as_tensor(out, dtype=C.dtype, device=C.device)
    C[:, Rt] = filled[..., :3][Rt].T
    A[Rt] = filled[..., 3][Rt]


# ------------------------------------------------------------------------------------------------ layer merging
MERGE_SLACK = 1e-9
"""px of σ added to ``merge_tolerance`` so that CoC steps of exactly the tolerance (0.1 px CoC = 0.025 px σ) are
merged regardless of float rounding."""


def check_merge_tolerance(tolerance, what: str = "merge_tolerance") -> float:
    """``tolerance`` as a float; ValueError starting with ``what`` (the name the caller's user knows, e.g. the CLI
    option) unless it is a finite number ≥ 0 (px of σ)."""
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of px of σ >= 0, got {tolerance!r}") from None
    if not math.isfinite(tol) or tol < 0:
        raise ValueError(f"{what} must be a finite σ difference >= 0 px (0 = exact, one layer per CoC), "
                         f"got {tolerance!r}")
    return tol


def merge_plan(coc, counts, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Group adjacent layers whose blur differs by at most ``tolerance`` px of σ (an approximation; 0 = none).

    Layers are scanned far → near and grouped greedily: a layer joins the current group while the group's σ range
    (max − min over its members, ``σ = units.coc_to_sigma(c)``) stays ≤ ``tolerance``, and only layers on the same
    side of focus are grouped (in-focus ``c ≤ 1`` with in-focus, blurred with blurred), so the first in-focus layer
    — where the occlusion fill starts — is kept. A group is rendered as one layer at the group's place in the
    occlusion order (its members no longer occlude one another) with one kernel, of

    * σ = the pixel-count-weighted mean of its members' σ (the plain mean when the group holds no pixel),
    * CoC = ``units.sigma_to_coc(σ)`` rounded to 0.1 px (the generator's CoC grid) and clipped to the members'
      CoC range; an in-focus group gets CoC 1 (σ 0).

    So the σ a pixel is rendered with differs from its own layer's σ by at most ``tolerance`` (+ the 0.1-px CoC
    rounding, ≤ 0.0125 px σ, which never leaves the members' range).

    Args:
        coc: (K,) CoC in px per layer, far → near.
        counts: (K,) pixel count per layer (the weights).
        tolerance: px of σ, finite and ≥ 0 (checked).

    Returns:
        ``group`` (K,) int64 new layer index of every old layer (non-decreasing, 0 … G − 1), and ``merged_coc``
        (G,) float64 CoC in px of each new layer (1 for an in-focus group, else within its members' CoC range,
        rounded to 0.1 px).
        With ``tolerance == 0`` the identity: ``arange(K)`` and ``coc`` unchanged.
    """
    tol = check_merge_tolerance(tolerance)
    coc = np.asarray(coc, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != coc.shape:
        raise ValueError(f"counts {counts.shape} and coc {coc.shape} differ in shape")
    if tol == 0:
        return np.arange(coc.size, dtype=np.int64), coc.copy()
    sigma = units.coc_to_sigma(coc)
    focus = coc <= 1.0
    group = np.zeros(coc.size, dtype=np.int64)
    starts = [0]
    lo = hi = sigma[0]
    for k in range(1, coc.size):
        s = sigma[k]
        if focus[k] != focus[k - 1] or max(hi, s) - min(lo, s) > tol + MERGE_SLACK:
            starts.append(k)
            lo = hi = s
        else:
            lo, hi = min(lo, s), max(hi, s)
        group[k] = len(starts) - 1
    bounds = starts + [coc.size]
    merged = np.empty(len(starts))
    for g in range(len(starts)):
        a, b = bounds[g], bounds[g + 1]
        if focus[a]:
            merged[g] = 1.0
            continue
        w = counts[a:b]
        s_mean = float(np.average(sigma[a:b], weights=w)) if w.sum() > 0 else float(sigma[a:b].mean())
        c = units.round_half_away(float(units.sigma_to_coc(s_mean)), 1)
        merged[g] = min(max(c, float(coc[a:b].min())), float(coc[a:b].max()))
    return group, merged


def merge_layers(labels: torch.Tensor, coc, tolerance: float) -> tuple[torch.Tensor, np.ndarray]:
    """Relabel ``labels`` (H, W) long by :func:`merge_plan` (``coc`` (K,) px, ``tolerance`` px of σ); returns
    (merged labels (H, W) long on the same device, merged CoCs (G,) float64 px).

    The σ each pixel is rendered with is ``units.coc_to_sigma(merged_coc)[merged_labels]``: write that as the
    ground-truth σ map (:meth:`syndof.camera.LayeredDepth.merged` does so), not the unmerged layers' σ."""
    coc_np = coc.detach().cpu().double().numpy() if isinstance(coc, torch.Tensor) else np.asarray(coc, np.float64)
    counts = torch.bincount(labels.reshape(-1), minlength=coc_np.size).cpu().numpy()[: coc_np.size]
    group, merged = merge_plan(coc_np, counts, tolerance)
    lut = torch.as_tensor(group, device=labels.device)
    return lut[labels], merged


# ------------------------------------------------------------------------------------------- plain reference
def render_layers_reference(image: torch.Tensor, labels: torch.Tensor, coc, max_coc: int = units.DEFAULT_MAX_COC,
                            kernel: Kernel | str = Kernel.GAUSSIAN, dtype: torch.dtype = torch.float64, *,
                            merge_tolerance: float = 0.0) -> torch.Tensor:
    """Plain per-layer full-frame loop of the algorithm (slow; for tests and the speed ratio).

    Arguments and errors as in :func:`render_layers` (``dtype`` None: float64): ``image`` (3, H, W) float in [0, 1],
    ``labels`` (H, W) integer layer index (0 = farthest), ``coc`` (K,) px. Returns (3, H, W) in [0, 1] of ``dtype``
    on ``image.device``, as :func:`render_layers`."""
    dtype = _check_dtype(dtype, torch.float64)
    _check_inputs(image, labels, coc, max_coc)
    labels, coc = _maybe_merge(labels, coc, merge_tolerance)
    coc_np, k0 = _layer_table(coc)
    dev = image.device
    img = image.to(dtype)
    kernels = _layer_kernels(coc_np, max_coc, kernel, dtype, dev)
    H, W = labels.shape
    conv = _Conv(dev)
    C = torch.zeros(3, H, W, dtype=dtype, device=dev)
    A = torch.zeros(H, W, dtype=dtype, device=dev)
    for k, kern in enumerate(kernels):
        M = (labels == k).to(dtype)
        if kern is not None:
            blurred = conv(symmetric_pad(torch.cat([M[None], M[None] * img]), kern.radius), kern)
            alpha, fg = blurred[0], blurred[1:]
        else:
            alpha, fg = M, M[None] * img
        alpha = torch.where(alpha < ALPHA_EPS, torch.zeros_like(alpha), alpha)
        if k > k0:
            U = labels < k
            if kern is not None:
                Ub = conv(symmetric_pad(U.to(dtype)[None], kern.radius), kern)[0]
                Ub = torch.where(Ub < BAND_EPS, torch.zeros_like(Ub), Ub)
            else:
                Ub = torch.zeros_like(A)
            R = (Ub > 0) & ~U
            denom = torch.where(A == 0, torch.ones_like(A), A)
            C = C / denom
            A = A / denom
            if bool(R.any()):
                _fill_full(C, A, U.cpu().numpy(), R.cpu().numpy())
        C = (1 - alpha) * C + fg
        A = (1 - alpha) * A + alpha
    return _finish(C, A)


def _fill_full(C, A, U, R):
    from syndof.regionfill import region_bbox

    box = region_bbox(R, margin=1)
    Cb, Ab = C[:, box[0], box[1]], A[box[0], box[1]]
    _fill_band(Cb, Ab, U[box], R[box])
    C[:, box[0], box[1]] = Cb
    A[box[0], box[1]] = Ab


def _finish(C: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    out = torch.where(A > 0, C / torch.where(A > 0, A, torch.ones_like(A)), torch.zeros_like(C))
    return out.clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------------- fast path
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


class _Conv:
    """'valid' convolution of (N, h, w) windows: OpenCV's SIMD separable filter on CPU, torch conv2d on CUDA."""

    def __init__(self, device: torch.device):
        self.cpu = device.type == "cpu"
        self._np: dict[int, np.ndarray] = {}

    def __call__(self, x: torch.Tensor, k: _Kernel) -> torch.Tensor:
        if not self.cpu or k.radius == 0:
            return _conv_valid(x, k)
        import cv2

        r = k.radius
        key = id(k)
        if key not in self._np:
            self._np[key] = (k.sep if k.sep is not None else k.full).cpu().numpy()
        kn = self._np[key]
        xn = x.numpy()
        out = []
        for n in range(xn.shape[0]):
            src = np.ascontiguousarray(xn[n])
            if k.sep is not None:
                y = cv2.sepFilter2D(src, -1, kn, kn, borderType=cv2.BORDER_CONSTANT)
            else:
                y = cv2.filter2D(src, -1, kn, borderType=cv2.BORDER_CONSTANT)
            out.append(y[r:-r, r:-r])
        return torch.from_numpy(np.stack(out))


@dataclass
class _FillPlan:
    """The value-independent half of one occlusion fill: region pixels, factorised Laplace system, and the known
    boundary neighbours (coordinates, owning unknown, whether in U)."""

    ys: np.ndarray
    xs: np.ndarray
    lu: object
    kys: np.ndarray
    kxs: np.ndarray
    kown: np.ndarray
    in_u: np.ndarray


def _plan_fill(labels_np: np.ndarray, k: int, ys: np.ndarray, xs: np.ndarray, idxmap: np.ndarray) -> _FillPlan:
    """Assemble and factorise MATLAB regionfill's system over the region pixels (ys, xs) in O(|R|).

    ``idxmap`` is an (H+2, W+2) int64 scratch array of −1 (restored on return)."""
    H, W = labels_np.shape
    n = ys.size
    idxmap[ys + 1, xs + 1] = np.arange(n)
    deg = np.zeros(n)
    rows, cols = [np.arange(n)], [np.arange(n)]
    kys, kxs, kown = [], [], []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        present = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
        deg += present
        nb = idxmap[ny + 1, nx + 1]
        unknown = nb >= 0
        rows.append(np.flatnonzero(unknown))
        cols.append(nb[unknown])
        kn = np.flatnonzero(present & ~unknown)
        kys.append(ny[kn])
        kxs.append(nx[kn])
        kown.append(kn)
    idxmap[ys + 1, xs + 1] = -1
    kys, kxs, kown = np.concatenate(kys), np.concatenate(kxs), np.concatenate(kown)
    data = np.concatenate([deg] + [-np.ones(r.size) for r in rows[1:]])
    lu = factorize_laplace(np.concatenate(rows), np.concatenate(cols), data, n)
    return _FillPlan(ys, xs, lu, kys, kxs, kown, labels_np[kys, kxs] < k)


def _apply_fill(C: torch.Tensor, A: torch.Tensor, plan: _FillPlan) -> None:
    """Solve the planned fill with the current (renormalised) buffers: Ĉ = C on U, 0 elsewhere; Â = U."""
    n = plan.ys.size
    vals = np.zeros((plan.kys.size, 4))
    if plan.kys.size:
        ky_t = torch.as_tensor(plan.kys, device=C.device)
        kx_t = torch.as_tensor(plan.kxs, device=C.device)
        vals[:, :3] = C[:, ky_t, kx_t].T.cpu().double().numpy()
    vals[:, :3] *= plan.in_u[:, None]
    vals[:, 3] = plan.in_u
    rhs = np.stack([np.bincount(plan.kown, weights=vals[:, j], minlength=n) for j in range(4)], axis=1)
    sol = plan.lu.solve(rhs)
    yt = torch.as_tensor(plan.ys, device=C.device)
    xt = torch.as_tensor(plan.xs, device=C.device)
    solt = torch.as_tensor(sol, dtype=C.dtype, device=C.device)
    C[:, yt, xt] = solt[:, :3].T
    A[yt, xt] = solt[:, 3]


def _release_plan(plan: _FillPlan, executor: ThreadPoolExecutor | None) -> None:
    """Drop the plan's factor on the thread that created it (``executor``'s one thread; None: this one).

    Needed for SuperLU factors (the fallback of ``factorize_laplace`` for wide bands); harmless for the banded
    Cholesky factors (plain NumPy arrays).

    SciPy tracks SuperLU's allocations in a per-thread table and frees a pointer only when the thread freeing it
    finds it in its own table: a factor made on a worker thread and garbage-collected on the main thread is never
    freed (scipy/scipy#15921; a thread's table is not freed when it exits either). That leaked every fill system,
    tens of MB per rendered image, so long-lived generate workers grew without bound. The factor's last reference
    is handed to its creating thread, which drops it there.
    """
    if executor is None:
        plan.lu = None
        return
    box = [plan.lu]  # after the next line, the only reference to the factor
    plan.lu = None
    executor.submit(box.clear)


def _maybe_merge(labels, coc, merge_tolerance):
    """(labels, coc) merged by :func:`merge_layers`; the inputs untouched (same objects) when the tolerance is 0.
    The caller has checked them (:func:`_check_inputs`) before bincount sees bad labels."""
    if check_merge_tolerance(merge_tolerance) == 0:
        return labels, coc
    return merge_layers(labels, coc, merge_tolerance)


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
            :data:`COC_TOLERANCE`]; ``c ≤ 1`` = in focus.
        max_coc: largest CoC in px (finite, ≥ 1): the Gaussian kernel grid size (29 in the original, which also
            bounds the kernel radius to 14 px).
        kernel: :class:`~syndof.psf.Kernel` or its value: ``"gaussian"`` (the original), ``"disc"`` or
            ``"polygon"`` (6 blades); ValueError naming the kernels otherwise.
        dtype: compute dtype, torch.float32 (default, None) or torch.float64 (for bit-level comparisons).
        tile: tile size in px (a whole number ≥ 1).
        merge_tolerance: px of σ (finite, ≥ 0). 0 (default) renders every layer exactly as the original.
            Above 0, adjacent layers whose σ lie within this range are rendered as one layer (fewer compositing
            passes and fill solves; an approximation, see :func:`merge_plan` for the merged layer's CoC). The
            image is then rendered with σ ``units.coc_to_sigma(merged_coc)[merged_labels]`` from
            :func:`merge_layers`, not with the input layers' σ: a caller that writes a ground-truth σ map must
            merge first (:func:`merge_layers` or :meth:`syndof.camera.LayeredDepth.merged`), write the merged
            layers' σ, and render those with tolerance 0 — the result is identical.

    Returns:
        (3, H, W) tensor in [0, 1] on ``image.device``.

    Raises:
        ValueError: naming the argument: not a tensor, bad shapes, an empty image, an image that is not float, has
            NaN / inf or values above :data:`syndof.images.FLOAT_IMAGE_MAX` (0…255) or below
            :data:`syndof.images.FLOAT_IMAGE_MIN` ([-1, 1]), float labels or labels outside the CoC list, a
            CoC that is not finite, negative or above ``max_coc`` (:func:`coc_problem`), a bad ``max_coc``,
            ``dtype`` or ``tile``, an unknown ``kernel``, or a negative / non-finite ``merge_tolerance``.
    """
    dtype = _check_dtype(dtype, torch.float32)
    _check_tile(tile)
    _check_inputs(image, labels, coc, max_coc)
    labels, coc = _maybe_merge(labels, coc, merge_tolerance)
    with _single_threaded(image.device.type == "cpu"):
        return _render_tiled(image, labels, coc, max_coc, kernel, dtype, tile)


def _render_tiled(image, labels, coc, max_coc, kernel, dtype, tile, pipeline=True):
    """:func:`render_layers` on inputs it has checked (and merged)."""
    coc_np, k0 = _layer_table(coc)
    dtype = dtype or torch.float32
    dev = image.device
    K = coc_np.size
    H, W = labels.shape
    T = int(tile)
    labels_np = labels.detach().cpu().numpy().astype(np.int64, copy=False)
    labels_d = labels.to(dev)
    kernels = _layer_kernels(coc_np, max_coc, kernel, dtype, dev)
    conv = _Conv(dev)
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
        return _plan_fill(labels_np, k, np.concatenate(ys_all), np.concatenate(xs_all), scratch.idxmap)

    # The fill systems depend only on the labels and kernels, not on the buffers: on CPU they are assembled and
    # factorised by worker threads a few steps ahead of the compositing loop (LAPACK, SciPy's SuperLU and OpenCV
    # release the GIL): one worker on 2 cores, up to 3 when more cores are available. Each worker is its own
    # single-thread executor (plans go round-robin) because a factor must be released on the thread that made it
    # (see _release_plan).
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
                            _apply_fill(C, A, plan)
                        finally:
                            _release_plan(plan, ex)
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
                    _release_plan(plan, ex)
        plans.clear()
        for ex in executors:
            ex.shutdown(wait=True)  # runs the pending releases
    return _finish(C, A)
