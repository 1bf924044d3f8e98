"""Layered back-to-front defocus rendering with occlusion inpainting (SYNDOF ``blur_by_depth.m``, METHOD.md §9).

Two implementations of the same algorithm:

* :func:`render_layers` — the fast one: every per-layer operation runs on a bounding box (the layer's box grown by
  its kernel radius; the occlusion band's box; the box of pixels whose alpha can be fractional), Gaussian kernels
  are applied separably, borders are MATLAB ``'symmetric'`` through one globally mirror-padded copy of the image
  and labels. Its output equals :func:`render_layers_reference` to float rounding.
* :func:`render_layers_reference` — a plain per-layer, full-frame loop, kept for the equality test and the speed
  ratio in ``benchmarks/bench_render.py``.

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

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from syndof import psf
from syndof.regionfill import _solve_crop

ALPHA_EPS = 1e-4
"""Blurred-mask values below this are zeroed (original ``mask_blurred < 0.0001``)."""
BAND_EPS = 1e-3
"""Blurred occluder-union values below this are zeroed (original ``mask_sum_prev_blurred < 0.001``)."""


# ------------------------------------------------------------------------------------------------------ kernels
@dataclass
class _Kernel:
    radius: int
    sep: torch.Tensor | None  # 1-D separable factor, or None
    full: torch.Tensor | None  # 2-D kernel (already flipped for true convolution), or None

    @property
    def identity(self) -> bool:
        return self.radius == 0 and self.sep is None and self.full is None


def _layer_kernels(coc: np.ndarray, max_coc: int, kernel: str, dtype, device) -> list[_Kernel | None]:
    """Per layer: None for c ≤ 1 (no kernel), else the layer's kernel; identical CoCs share one object."""
    cache: dict[float, _Kernel] = {}
    out: list[_Kernel | None] = []
    for c in coc.tolist():
        if c <= 1.0:
            out.append(None)
            continue
        if c not in cache:
            if kernel == "gaussian":
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
    """MATLAB/NumPy ``'symmetric'`` padding of the last two dims (edge pixel repeated; any pad size)."""
    if pad == 0:
        return x
    h, w = x.shape[-2:]
    ri = torch.as_tensor(np.pad(np.arange(h), pad, mode="symmetric"), device=x.device)
    ci = torch.as_tensor(np.pad(np.arange(w), pad, mode="symmetric"), device=x.device)
    return x.index_select(-2, ri).index_select(-1, ci)


def filter_symmetric(x: torch.Tensor, k: _Kernel) -> torch.Tensor:
    """``imfilter(x, K, 'same', 'conv', 'symmetric')`` of (N, H, W)."""
    return _conv_valid(symmetric_pad(x, k.radius), k)


def _check_inputs(image: torch.Tensor, labels: torch.Tensor, coc) -> tuple[np.ndarray, int]:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    if labels.shape != image.shape[1:]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match the image {tuple(image.shape[1:])}")
    coc_np = coc.detach().cpu().double().numpy() if isinstance(coc, torch.Tensor) else np.asarray(coc, np.float64)
    if coc_np.ndim != 1 or coc_np.size == 0:
        raise ValueError("coc must be a non-empty 1-D array (one CoC per layer)")
    if int(labels.min()) < 0 or int(labels.max()) >= coc_np.size:
        raise ValueError(f"labels must lie in [0, {coc_np.size - 1}]")
    in_focus = np.flatnonzero(coc_np <= 1.0)
    k0 = int(in_focus[0]) if in_focus.size else coc_np.size  # no in-focus layer: no occlusion fill
    return coc_np, k0


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


# ------------------------------------------------------------------------------------------- plain reference
def render_layers_reference(image: torch.Tensor, labels: torch.Tensor, coc, max_coc: int = 29,
                            kernel: str = "gaussian", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Plain per-layer full-frame loop of the algorithm (slow; for tests and the speed ratio)."""
    coc_np, k0 = _check_inputs(image, labels, coc)
    dev = image.device
    img = image.to(dtype)
    kernels = _layer_kernels(coc_np, max_coc, kernel, dtype, dev)
    H, W = labels.shape
    C = torch.zeros(3, H, W, dtype=dtype, device=dev)
    A = torch.zeros(H, W, dtype=dtype, device=dev)
    for k, kern in enumerate(kernels):
        M = (labels == k).to(dtype)
        if kern is not None:
            blurred = filter_symmetric(torch.cat([M[None], M[None] * img]), kern)
            alpha, fg = blurred[0], blurred[1:]
        else:
            alpha, fg = M, M[None] * img
        alpha = torch.where(alpha < ALPHA_EPS, torch.zeros_like(alpha), alpha)
        if k > k0:
            U = labels < k
            if kern is not None:
                Ub = filter_symmetric(U.to(dtype)[None], kern)[0]
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
def _layer_boxes(labels_np: np.ndarray, K: int) -> np.ndarray:
    """(K, 4) [r0, r1, c0, c1) bounding boxes (r1/c1 exclusive); empty layers get r0 = r1 = 0."""
    H, W = labels_np.shape
    rows = np.zeros((H, K), dtype=bool)
    cols = np.zeros((W, K), dtype=bool)
    rows[np.repeat(np.arange(H), W), labels_np.ravel()] = True
    cols[np.tile(np.arange(W), H), labels_np.ravel()] = True
    boxes = np.zeros((K, 4), dtype=np.int64)
    has = rows.any(axis=0)
    boxes[has, 0] = rows[:, has].argmax(axis=0)
    boxes[has, 1] = H - rows[::-1, has].argmax(axis=0)
    boxes[has, 2] = cols[:, has].argmax(axis=0)
    boxes[has, 3] = W - cols[::-1, has].argmax(axis=0)
    return boxes


def _union(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _grow(box, r, H, W):
    return (max(box[0] - r, 0), min(box[1] + r, H), max(box[2] - r, 0), min(box[3] + r, W))


def render_layers(image: torch.Tensor, labels: torch.Tensor, coc, max_coc: int = 29, kernel: str = "gaussian",
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """Render a layered defocus image (fast bounding-box implementation; device follows ``image``).

    Args:
        image: (3, H, W) float RGB in [0, 1], CPU or CUDA.
        labels: (H, W) long layer index per pixel, 0 = farthest.
        coc: (K,) CoC diameter in px per layer (tensor or array); ``c ≤ 1`` = in focus.
        max_coc: Gaussian kernel grid size (29 in the original, which also bounds the kernel radius to 14 px).
        kernel: ``"gaussian"`` (the original), ``"disc"`` or ``"polygon"`` (6 blades).
        dtype: compute dtype (default float32; float64 for bit-level comparisons).

    Returns:
        (3, H, W) tensor in [0, 1], dtype of the computation, on ``image.device``.
    """
    coc_np, k0 = _check_inputs(image, labels, coc)
    dtype = dtype or torch.float32
    dev = image.device
    K = coc_np.size
    H, W = labels.shape
    labels_np = labels.detach().cpu().numpy().astype(np.int64, copy=False)
    kernels = _layer_kernels(coc_np, max_coc, kernel, dtype, dev)
    P = max([k.radius for k in kernels if k is not None], default=0)
    img_pad = symmetric_pad(image.to(dtype), P)
    lab_pad = symmetric_pad(labels.to(dev), P)
    boxes = _layer_boxes(labels_np, K)
    nonempty = boxes[:, 1] > boxes[:, 0]
    # suffix union of boxes: the box of ¬U_k = layers ≥ k
    suffix: list = [None] * (K + 1)
    for k in range(K - 1, -1, -1):
        suffix[k] = _union(tuple(boxes[k]) if nonempty[k] else None, suffix[k + 1])
    C = torch.zeros(3, H, W, dtype=dtype, device=dev)
    A = torch.zeros(H, W, dtype=dtype, device=dev)
    dirty = (0, H, 0, W)  # pixels whose alpha may be outside {0, 1}
    for k in range(K):
        kern = kernels[k]
        r = kern.radius if kern is not None else 0
        lbox = _grow(tuple(boxes[k]), r, H, W) if nonempty[k] else None
        if k > k0:
            if dirty is not None:
                r0, r1, c0, c1 = dirty
                a = A[r0:r1, c0:c1]
                denom = torch.where(a == 0, torch.ones_like(a), a)
                C[:, r0:r1, c0:c1] /= denom
                A[r0:r1, c0:c1] = a / denom
            new_dirty = lbox
            band = suffix[k]
            if kern is not None and band is not None:
                r0, r1, c0, c1 = band
                win = lab_pad[r0 + P - r : r1 + P + r, c0 + P - r : c1 + P + r]
                Ub = _conv_valid((win < k).to(dtype)[None], kern)[0]
                R = (Ub >= BAND_EPS) & (labels[r0:r1, c0:c1].to(dev) >= k)
                if bool(R.any()):
                    R_np = R.cpu().numpy()
                    rr = np.flatnonzero(R_np.any(axis=1))
                    cc = np.flatnonzero(R_np.any(axis=0))
                    rbox = (r0 + rr[0], r0 + rr[-1] + 1, c0 + cc[0], c0 + cc[-1] + 1)
                    f0, f1, g0, g1 = _grow(rbox, 1, H, W)
                    Rfull = np.zeros((f1 - f0, g1 - g0), dtype=bool)
                    # R lies inside the band box; copy the part of it that overlaps the fill box
                    Rfull[rbox[0] - f0 : rbox[1] - f0, rbox[2] - g0 : rbox[3] - g0] = R_np[
                        rbox[0] - r0 : rbox[1] - r0, rbox[2] - c0 : rbox[3] - c0]
                    Ucrop = labels_np[f0:f1, g0:g1] < k
                    Cb, Ab = C[:, f0:f1, g0:g1], A[f0:f1, g0:g1]
                    _fill_band(Cb, Ab, Ucrop, Rfull)
                    new_dirty = _union(new_dirty, rbox)
            dirty = new_dirty
        if lbox is None:
            continue
        r0, r1, c0, c1 = lbox
        if kern is not None:
            lw = lab_pad[r0 + P - r : r1 + P + r, c0 + P - r : c1 + P + r]
            iw = img_pad[:, r0 + P - r : r1 + P + r, c0 + P - r : c1 + P + r]
            M = (lw == k).to(dtype)
            blurred = _conv_valid(torch.cat([M[None], M[None] * iw]), kern)
            alpha, fg = blurred[0], blurred[1:]
            alpha = torch.where(alpha < ALPHA_EPS, torch.zeros_like(alpha), alpha)
        else:
            alpha = (labels[r0:r1, c0:c1].to(dev) == k).to(dtype)
            fg = alpha[None] * img_pad[:, r0 + P : r1 + P, c0 + P : c1 + P]
        keep = 1 - alpha
        C[:, r0:r1, c0:c1] = keep * C[:, r0:r1, c0:c1] + fg
        A[r0:r1, c0:c1] = keep * A[r0:r1, c0:c1] + alpha
    return _finish(C, A)
