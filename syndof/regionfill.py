"""MATLAB ``regionfill``: Laplace interpolation inside a region from the pixels on its outer boundary.

Each region pixel ``x`` satisfies ``deg·x − Σ neighbours = 0`` over its 4-neighbours that lie inside the image
(``deg`` = 4, 3 on an image edge, 2 in a corner — MATLAB's Neumann-like edge rule); neighbours outside the region
are known values (the region's 4-connected outer perimeter). The sparse system is built only on the region's
bounding box grown by one pixel, which holds every equation and every boundary value.

The systems are symmetric positive definite and, on the thin occlusion bands of the renderer, nearly banded: they
are solved by a banded Cholesky factorisation after a reverse Cuthill–McKee reordering (LAPACK ``pbtrf``), with
SciPy's SuperLU for systems whose reordered bandwidth stays large (:func:`factorize_laplace`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee

BANDED_MAX_BANDWIDTH = 96
"""Above this reordered half-bandwidth b a system goes to SuperLU (banded Cholesky costs O(n·b²))."""


class BandedCholesky:
    """Cholesky factor of a symmetric positive definite sparse matrix in banded storage after an RCM reordering."""

    def __init__(self, perm: np.ndarray, factor: np.ndarray):
        self.perm, self.factor = perm, factor

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A x = rhs`` for (n,) or (n, m) ``rhs``."""
        x = sla.cho_solve_banded((self.factor, False), rhs[self.perm], check_finite=False)
        out = np.empty_like(x)
        out[self.perm] = x
        return out


def factorize_laplace(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int,
                      max_bandwidth: int | None = None):
    """Factorise the symmetric positive definite (n, n) matrix given by COO triplets (no duplicates).

    Returns an object with ``solve(rhs)``: a :class:`BandedCholesky` when the reverse Cuthill–McKee reordering
    brings the half-bandwidth to ≤ ``max_bandwidth`` (default :data:`BANDED_MAX_BANDWIDTH`), else SciPy's
    ``splu`` factor. Both solve to float64 rounding (residuals ~1e-13 on the renderer's bands).
    """
    limit = BANDED_MAX_BANDWIDTH if max_bandwidth is None else max_bandwidth
    mat = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    if limit > 0 and n > 1:
        perm = reverse_cuthill_mckee(mat, symmetric_mode=True).astype(np.int64)
        inv = np.empty(n, dtype=np.int64)
        inv[perm] = np.arange(n)
        pr, pc = inv[rows], inv[cols]
        upper = pr <= pc
        bw = int((pc[upper] - pr[upper]).max())
        if bw <= limit:
            ab = np.zeros((bw + 1, n))
            ab[bw + pr[upper] - pc[upper], pc[upper]] = data[upper]
            return BandedCholesky(perm, sla.cholesky_banded(ab, lower=False, check_finite=False))
    return spla.splu(mat.tocsc())


def region_bbox(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """Bounding box (row slice, column slice) of the (H, W) bool ``mask`` grown by ``margin`` px (clipped to the
    array), or None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w)))


def solve_crop(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Laplace-fill the region ``mask`` of ``values``, every channel with the same region: the linear system of the
    module docstring (``deg·x − Σ neighbours = 0`` at each region pixel, 4-neighbours inside the crop; the pixels
    outside the region that touch it are its known boundary values), solved by :func:`factorize_laplace`.

    Args:
        values: (h, w, C) array of any real dtype, units and range (channels last; C ≥ 1): the crop, whose values
            inside the region are not read. Each crop edge must be an image edge or ≥ 1 px away from the region
            (:func:`region_bbox` with ``margin=1`` gives such a crop): a crop edge counts as an image edge (its
            pixels get degree 3 or 2), so a region cut by the crop would be solved against the wrong boundary.
        mask: (h, w) bool, True = pixel to fill. Each 4-connected part of the region must touch a False pixel:
            a part with no boundary values has a singular system (:func:`regionfill` gives an all-True mask
            MATLAB's zeros itself). An all-False mask fills nothing.

    Returns:
        (h, w, C) float64 copy of ``values`` (same units) with the region's pixels replaced by the solution; the
        others unchanged. The caller of a 2-D image adds and removes the channel axis (:func:`regionfill`).
    """
    h, w = mask.shape
    idx = np.full((h + 2, w + 2), -1, dtype=np.int64)
    ys, xs = np.nonzero(mask)
    n = ys.size
    if n == 0:  # nothing to fill (was an IndexError)
        return values.astype(np.float64, copy=True)
    idx[ys + 1, xs + 1] = np.arange(n)
    inside = np.zeros((h + 2, w + 2), dtype=bool)
    inside[1:-1, 1:-1] = True
    known = np.zeros((h + 2, w + 2, values.shape[2]), dtype=np.float64)
    known[1:-1, 1:-1] = np.where(mask[..., None], 0.0, values)
    deg = np.zeros(n)
    rhs = np.zeros((n, values.shape[2]))
    rows = [np.arange(n)]
    cols = [np.arange(n)]
    data = []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + 1 + dy, xs + 1 + dx
        present = inside[ny, nx]
        deg += present
        nb = idx[ny, nx]
        unknown = nb >= 0
        rows.append(np.flatnonzero(unknown))
        cols.append(nb[unknown])
        rhs += known[ny, nx] * (present & ~unknown)[:, None]
    data = np.concatenate([deg] + [-np.ones(r.size) for r in rows[1:]])
    sol = factorize_laplace(np.concatenate(rows), np.concatenate(cols), data, n).solve(rhs) if n > 1 else rhs / deg[0]
    out = values.astype(np.float64, copy=True)
    out[ys, xs] = sol
    return out


def regionfill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the pixels where ``mask`` is true by Laplace interpolation (MATLAB ``regionfill(I, mask)``).

    Args:
        image: (H, W) or (H, W, C) array; channels are filled independently with the same region.
        mask: (H, W) bool region to fill.

    Returns:
        float64 copy of ``image`` (same shape, range and units) with the region replaced.
    """
    img = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    squeeze = img.ndim == 2
    vals = img[..., None] if squeeze else img
    out = vals.copy()
    box = region_bbox(mask, margin=1)
    if box is not None:
        if mask.all():
            out[:] = 0.0  # no boundary: MATLAB returns zeros (with a warning)
        else:
            out[box] = solve_crop(vals[box], mask[box])
    return out[..., 0] if squeeze else out
