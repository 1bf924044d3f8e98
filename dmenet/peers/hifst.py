"""HiFST (Golestaneh & Karam, CVPR 2017) through the PyPI package ``blur_detector`` (0.0.6).

The package computes a *sharpness* map (high = sharp, max-normalised to 1); :func:`hifst_blur_map` inverts it.
Parameters (package defaults): DCT patch sizes 7, 15, 31, 63 (``scale_start=3``, ``num_scales=4``), as the paper,
evaluated on a grid with stride 4 (``downsampling_factor=4``, the package's choice: the official ``HiFST.m`` slides
by 1 and normalises with ``mat2gray`` where the package divides by the maximum), 7×7 local entropy,
domain-transform recursive filter σ_s = 15, σ_r = 0.25, 3 iterations. Input: 8-bit grayscale (``rgb2gray`` weights,
rounded). On the 5 CUHK images the peer's maps score as the published ones (MAE 0.1863 against 0.1862).
Speed: the package loops in Python over grid points; about 2.5 s for 640×480 on the 2-core dev machine
(BENCHMARKS.md, "Inference (dmenet)"). ``max_side`` optionally downsizes large inputs first; the map is resized back.
"""

from __future__ import annotations

import warnings

import numpy as np

from dmenet.peers._util import check_image, to_gray
from syndof.resize import resize_back, shrink_long_side

HIFST_PARAMS = dict(
    downsampling_factor=4,
    num_scales=4,
    scale_start=3,
    entropy_filt_kernel_sze=7,
    sigma_s_RF_filter=15,
    sigma_r_RF_filter=0.25,
    num_iterations_RF_filter=3,
)
"""Keyword arguments passed to ``blur_detector.detectBlur`` (its defaults, stated explicitly)."""


def hifst_sharpness(image: np.ndarray, max_side: int | None = None, **params) -> np.ndarray:
    """HiFST sharpness map.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        max_side: if set and the longer side exceeds it, compute at that size and resize the map back (bilinear).
        **params: overrides of :data:`HIFST_PARAMS`.

    Returns:
        (H, W) float32 in [0, 1], 1 = sharpest (the package divides by the map's maximum).
    """
    import blur_detector  # imported lazily: it pulls in scikit-image rank filters

    image = check_image(image)
    h, w = image.shape[:2]
    gray = (to_gray(image) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    gray, _ = shrink_long_side(gray, max_side, minimum=2)
    kwargs = {**HIFST_PARAMS, **params, "show_progress": False}  # progress display clears the terminal via os.system
    with warnings.catch_warnings():
        # the package calls the deprecated skimage `square` and feeds a float map to the uint8 entropy filter
        warnings.simplefilter("ignore")
        sharp = blur_detector.detectBlur(gray, **kwargs)
    sharp = np.asarray(sharp, dtype=np.float32)
    if sharp.shape != (h, w):
        sharp = resize_back(sharp, (h, w))
    sharp = np.nan_to_num(sharp, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(sharp, 0.0, 1.0)


def hifst_blur_map(image: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """Blur map ``1 − HiFST sharpness``: (H, W) float32 in [0, 1], 1 = more blurred (relative, no unit) of an
    (H, W, 3) RGB image; ``max_side`` (px, None = full size) as :func:`hifst_sharpness`."""
    return (1.0 - hifst_sharpness(image, max_side=max_side)).astype(np.float32)
