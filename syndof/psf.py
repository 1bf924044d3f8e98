"""Point-spread functions (blur kernels) of the SYNDOF renderer.

* :func:`gaussian_kernel` — MATLAB ``fspecial('gaussian', [size size], σ)`` (values below ``eps·max`` zeroed,
  normalised to sum 1), cropped to its non-zero support exactly as the original ``get_blur_kernel`` does.
  The original generator uses only this kernel ("only gaussian!", docs/method.md §8).
* :func:`disc_kernel`, :func:`polygon_kernel` — antialiased uniform aperture shapes (circle, n-blade polygon) of a
  given CoC diameter, each summing to 1. They are extensions (the original's disc/polygon TIFs are unused).

All kernels are float64 NumPy arrays, summing to 1; every kernel the renderer uses has odd side lengths and is
centred on the middle pixel (:func:`gaussian_kernel` with an even ``size`` is ``fspecial``'s even kernel, centred
between pixels: see :func:`gaussian_kernel_1d`). :class:`Kernel` names the
three shapes (the ``--kernel`` option of ``syndof.generate`` and ``syndof.render``).
"""

from __future__ import annotations

import math

import numpy as np

from syndof import units
from syndof.choices import Choice, choices, parse_choice

_EPS = np.finfo(np.float64).eps


class Kernel(Choice):
    """PSF shape of one defocus layer of CoC diameter c px (all sum to 1; c ≤ 1 is the 1×1 identity)."""

    GAUSSIAN = "gaussian"
    """Gaussian of σ = (c − 1)/4 px on a max_coc² grid, cropped to its support (the original generator's only one)."""
    DISC = "disc"
    """Uniform antialiased disc of diameter c px (extension)."""
    POLYGON = "polygon"
    """Uniform antialiased regular polygon (6 blades by default) inscribed in a circle of diameter c px (extension)."""


KERNELS = choices(Kernel)
"""The kernel names, in definition order (argparse ``choices`` and messages)."""


def coc_sigma(coc: float) -> float:
    """Gaussian σ (px) of a CoC diameter (px), as the original's ``get_blur_kernel``: :func:`syndof.units.coc_to_sigma`
    of a number."""
    return float(units.coc_to_sigma(float(coc)))


def gaussian_kernel_1d(sigma: float, size: int) -> np.ndarray:
    """1-D factor of :func:`gaussian_kernel`: normalised ``exp(−x²/2σ²)`` on the same cropped support; ``sigma``
    in px, ``size`` the full kernel side (``max_coc``); returns (2r + 1,) float64 summing to 1 (``[1.0]`` for σ ≤ 0).

    For an odd ``size`` (the original's 29) the outer product of this vector with itself equals
    :func:`gaussian_kernel` up to the ``eps·max`` corner values that ``fspecial`` zeroes (relative difference
    < 1e-15), so a separable convolution with it is faithful. For an even ``size`` (e.g. ``--max-coc 28``)
    ``fspecial``'s kernel is even and centred between pixels, so MATLAB's ``imfilter`` would move the render by half a
    pixel; this factor instead has 2r + 1 taps (r = half the even side) centred on the pixel, and the renderer
    uses it: a deliberate deviation (docs/method.md §9).
    """
    k2 = gaussian_kernel(sigma, size)
    r = k2.shape[0] // 2
    if sigma <= 0 or r == 0:
        return np.ones(1)
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def gaussian_kernel(sigma: float, size: int) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', [size size], sigma)`` cropped to its non-zero support.

    Args:
        sigma: standard deviation in px (> 0; ``σ ≤ 0`` gives the 1×1 identity kernel).
        size: full (square) kernel size before cropping — ``max_coc`` in the original (29).

    Returns:
        (s, s) float64 kernel, ``s ≤ size`` odd when ``size`` is odd, summing to 1.
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"kernel size must be >= 1, got {size}")
    if not sigma > 0:
        return np.ones((1, 1))
    half = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - half
    xx, yy = np.meshgrid(x, x)
    h = np.exp(-(xx * xx + yy * yy) / (2.0 * sigma * sigma))
    h[h < _EPS * h.max()] = 0.0
    s = h.sum()
    if s != 0:
        h = h / s
    rows = np.nonzero(h.any(axis=1))[0]
    cols = np.nonzero(h.any(axis=0))[0]
    return h[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _supersampled_shape(inside, coc: float, oversample: int) -> np.ndarray:
    """Antialiased indicator of ``inside(x, y)`` on an odd grid covering a CoC-diameter shape, summing to 1."""
    coc = float(coc)
    if coc <= 1.0:
        return np.ones((1, 1))
    r = int(math.ceil(units.coc_to_radius(coc) - 0.5))  # pixels whose centre-square may touch the shape
    n = 2 * r + 1
    sub = (np.arange(n * oversample, dtype=np.float64) + 0.5) / oversample - (n / 2.0)
    xx, yy = np.meshgrid(sub, sub)
    cover = inside(xx, yy).astype(np.float64)
    k = cover.reshape(n, oversample, n, oversample).mean(axis=(1, 3))
    k[k < 1e-12] = 0.0
    return k / k.sum()


def disc_kernel(coc: float, oversample: int = 8) -> np.ndarray:
    """Uniform disc of diameter ``coc`` px, antialiased by ``oversample²`` supersampling, summing to 1.

    ``coc ≤ 1`` gives the 1×1 identity kernel (in focus). Returns (s, s) float64, s odd.
    """
    rad = units.coc_to_radius(float(coc))
    return _supersampled_shape(lambda x, y: x * x + y * y <= rad * rad, coc, oversample)


def polygon_kernel(coc: float, blades: int = 6, rotation: float = 0.0, oversample: int = 8) -> np.ndarray:
    """Regular ``blades``-gon aperture inscribed in a circle of diameter ``coc`` px, antialiased, summing to 1.

    Args:
        coc: circumscribed diameter in px (``≤ 1`` → identity).
        blades: number of aperture blades (≥ 3).
        rotation: polygon rotation in radians.

    Returns:
        (s, s) float64 kernel, s odd.
    """
    if blades < 3:
        raise ValueError(f"a polygon aperture needs >= 3 blades, got {blades}")
    rad = units.coc_to_radius(float(coc))
    apothem = rad * math.cos(math.pi / blades)
    mids = [rotation + (2 * i + 1) * math.pi / blades for i in range(blades)]
    normals = [(math.cos(a), math.sin(a)) for a in mids]

    def inside(x, y):
        """Bool mask of the points (``x``, ``y``) (px from the centre) inside the polygon."""
        ok = np.ones_like(x, dtype=bool)
        for nx, ny in normals:
            ok &= x * nx + y * ny <= apothem
        return ok

    return _supersampled_shape(inside, coc, oversample)


def make_kernel(coc: float, max_coc: int = units.DEFAULT_MAX_COC, kernel: Kernel | str = Kernel.GAUSSIAN,
                blades: int = 6, rotation: float = 0.0) -> np.ndarray:
    """Kernel of one layer of CoC ``coc`` px: :class:`Kernel` ``kernel`` (a member or its value; ValueError naming
    the kernels otherwise) — Gaussian (σ = (c − 1)/4 on a max_coc² grid), disc or ``blades``-gon rotated by
    ``rotation`` rad; 1×1 for c ≤ 1. Returns a (s, s) float64 kernel summing to 1."""
    kernel = parse_choice(Kernel, kernel, "kernel")
    if coc <= 1.0:
        return np.ones((1, 1))
    if kernel is Kernel.GAUSSIAN:
        return gaussian_kernel(coc_sigma(coc), max_coc)
    if kernel is Kernel.DISC:
        return disc_kernel(coc)
    return polygon_kernel(coc, blades, rotation)  # Kernel.POLYGON
