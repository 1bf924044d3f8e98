"""The fast renderer's occlusion fills (step 2 of docs/method.md §9; :func:`syndof.blur.render_layers`), in two
halves. The value-independent half depends only on the labels and kernels: the fill region's pixels and MATLAB
``regionfill``'s Laplace system over them, assembled from the band's pixels alone and factorised
(:func:`plan_fill` → :class:`FillPlan`), on CPU by worker threads ahead of the compositing loop. The other half
solves it with the current buffers (:func:`apply_fill`). :func:`release_plan` drops a factor on the thread that
made it (SciPy's SuperLU factors leak otherwise).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from syndof.regionfill import factorize_laplace


@dataclass
class FillPlan:
    """The value-independent half of one occlusion fill: region pixels, factorised Laplace system, and the known
    boundary neighbours (coordinates, owning unknown, whether in U)."""

    ys: np.ndarray
    xs: np.ndarray
    lu: object
    kys: np.ndarray
    kxs: np.ndarray
    kown: np.ndarray
    in_u: np.ndarray


def plan_fill(labels_np: np.ndarray, k: int, ys: np.ndarray, xs: np.ndarray, idxmap: np.ndarray) -> FillPlan:
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
    return FillPlan(ys, xs, lu, kys, kxs, kown, labels_np[kys, kxs] < k)


def apply_fill(C: torch.Tensor, A: torch.Tensor, plan: FillPlan) -> None:
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


def release_plan(plan: FillPlan, executor: ThreadPoolExecutor | None) -> None:
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
