"""One SYNDOF sample in memory: draw a camera for a depth map, render the defocused image, degrade it if asked.

:func:`generate_sample` is the whole physics of one sample (docs/method.md §8–§9): the camera and its CoC layers
(:func:`syndof.camera.sample_camera`), the layered render (:func:`syndof.blur.render_layers`), then optional sensor
noise and JPEG re-encoding (:mod:`syndof.augment`). :class:`SampleResult` holds what it returns;
:func:`sigma_over_limit` is the σ_max test the original generator skips samples by; :func:`sample_rng` is the
per-sample generator that makes each sample reproducible on its own; :func:`shrink_to_max_size` is ``--max-side``
applied to a photo and its depth. Nothing here reads or writes files: :mod:`syndof.layout` writes a sample,
:mod:`syndof.generate` runs many.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from syndof import units
from syndof.psf import Kernel
from syndof.recipe import max_coc_problem
from syndof.resize import shrink_long_side


@dataclass
class SampleResult:
    """A rendered sample. Arrays are (H, W[, 3]).

    A sample :meth:`over_limit` is not rendered (the original skips it after rendering; the renderer refuses CoCs
    above its ``max_coc``): its ``image`` is the input image."""

    image: np.ndarray
    """float32 RGB in [0, 1]: defocused (and, if asked, noisy / JPEG-degraded) image."""
    sigma: np.ndarray
    """float32 σ in px per pixel (the GT map)."""
    coc: np.ndarray
    """float32 CoC in px per pixel."""
    merged_depth: np.ndarray
    """float64 depth of each pixel's layer (mm, after the 5f shift)."""
    camera: object
    """syndof.camera.CameraParams."""
    layered: object
    """syndof.camera.LayeredDepth."""
    augment: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    """seconds: {"camera": …, "render": …, "augment": …}."""

    def over_limit(self, max_coc: float) -> bool:
        """True when the largest σ of :attr:`sigma` (px) exceeds σ_max = (``max_coc`` − 1)/4 px, ``max_coc`` the
        largest CoC in px (:func:`sigma_over_limit`; the original skips such images)."""
        return sigma_over_limit(self.sigma, max_coc)


def sigma_over_limit(sigma: np.ndarray, max_coc: float) -> bool:
    """Whether a σ map (px, any shape) exceeds σ_max = (``max_coc`` − 1)/4 px of ``max_coc`` (the largest CoC, px;
    :func:`syndof.units.max_sigma`), beyond 1e-9 px of rounding: the original generator skips such samples.
    ValueError for a σ map holding NaN (it was read as within the limit)."""
    largest = float(np.max(sigma))
    if math.isnan(largest):
        raise ValueError("sigma holds NaN: no σ map of a rendered sample does (is the depth map finite?)")
    return largest > units.max_sigma(max_coc) + 1e-9


def generate_sample(image: np.ndarray, depth_mm: np.ndarray, rng: np.random.Generator,
                    max_coc: int = units.DEFAULT_MAX_COC, kernel: Kernel | str = Kernel.GAUSSIAN,
                    device: str | torch.device = "cpu", noise: bool = False, jpeg_quality: int | None = None,
                    merge_tolerance: float = 0.0) -> SampleResult:
    """Draw a camera for ``depth_mm``, decompose it into CoC layers and render the defocused image.

    Args:
        image: (H, W, 3) float RGB in [0, 1] (sharp, all in focus).
        depth_mm: (H, W) depth in mm, finite and positive.
        rng: the sample's generator (camera draws, then noise draws).
        max_coc: CoC of the extreme depth in px, a whole number in 2..255 (σ_max = (max_coc − 1)/4; ValueError
            otherwise).
        kernel: PSF of the renderer (:class:`syndof.psf.Kernel` or its value; Gaussian as the original).
        device: where the rendering runs.
        noise: add Poisson–Gaussian sensor noise after rendering.
        jpeg_quality: re-encode the rendered image as JPEG at this quality (None: off).
        merge_tolerance: px of σ; above 0, adjacent layers whose σ lie within it are merged before rendering
            (:meth:`syndof.camera.LayeredDepth.merged`; faster, approximate). The returned ``layered``, ``sigma``
            and ``coc`` are then the merged layers', i.e. the blur each pixel was actually rendered with.
    """
    from syndof.blur import render_layers
    from syndof.camera import sample_camera

    problem = max_coc_problem(max_coc, "max_coc")
    if problem:
        raise ValueError(problem)
    image = np.asarray(image, dtype=np.float32)
    depth_mm = np.asarray(depth_mm, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    if depth_mm.shape != image.shape[:2]:
        raise ValueError(f"depth {depth_mm.shape} and image {image.shape[:2]} sizes differ")
    timings = {}
    t0 = time.perf_counter()
    camera, layered = sample_camera(depth_mm, image.shape[1], rng, max_coc=max_coc)
    layered = layered.merged(merge_tolerance)  # the identity at 0; the ground truth follows the merged layers
    t1 = time.perf_counter()
    if sigma_over_limit(layered.sigma_map, max_coc):  # skipped as the original does: no render
        return SampleResult(image=image, sigma=layered.sigma_map, coc=layered.coc_map,
                            merged_depth=layered.merged_depth, camera=camera, layered=layered,
                            timings={"camera": t1 - t0})
    dev = torch.device(device)
    img_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(dev)
    labels_t = torch.from_numpy(np.ascontiguousarray(layered.labels)).to(dev)
    coc_t = torch.from_numpy(np.asarray(layered.coc, dtype=np.float64)).to(dev)
    with torch.no_grad():
        out = render_layers(img_t, labels_t, coc_t, max_coc=int(max_coc), kernel=kernel)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    rendered = out.detach().to("cpu", torch.float32).numpy().transpose(1, 2, 0)
    rendered = np.clip(np.ascontiguousarray(rendered), 0.0, 1.0)
    t2 = time.perf_counter()
    augment = {"noise": None, "jpeg_quality": None}
    if noise:
        from syndof.augment import add_sensor_noise, sample_noise_params

        params = sample_noise_params(rng)
        rendered = add_sensor_noise(rendered, rng, **params)
        augment["noise"] = params
    if jpeg_quality is not None:
        from syndof.augment import jpeg_reencode

        rendered = jpeg_reencode(rendered, jpeg_quality)
        augment["jpeg_quality"] = int(jpeg_quality)
    t3 = time.perf_counter()
    timings.update(camera=t1 - t0, render=t2 - t1, augment=t3 - t2)
    return SampleResult(image=rendered.astype(np.float32), sigma=layered.sigma_map, coc=layered.coc_map,
                        merged_depth=layered.merged_depth, camera=camera, layered=layered, augment=augment,
                        timings=timings)


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``: independent of workers, shards and other samples. ``seed`` and ``index``:
    whole numbers ≥ 0 (ValueError otherwise: ``int()`` read 1.5 as seed 1)."""
    for name, value in (("seed", seed), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def shrink_to_max_size(image: np.ndarray, depth: np.ndarray,
                       max_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``--max-side``: a photo and its depth map shrunk so the long side is at most ``max_size`` px (a side never
    below 2 px); both unchanged when they fit or ``max_size`` is None or 0.

    ``image``: (H, W, 3) float RGB in [0, 1], area-averaged (:func:`syndof.resize.shrink_long_side`) and clipped to
    [0, 1]; ``depth``: (H, W) in mm, resized by nearest neighbour, so every value is one of the input's. Returns
    (image (h, w, 3), depth (h, w)).
    """
    if not max_size:
        return image, depth
    image, scale = shrink_long_side(image, max_size, minimum=2)
    if scale == 1.0:
        return image, depth
    import cv2

    size = image.shape[1::-1]
    # Nearest keeps metric depth values (no "flying pixels" mixed across discontinuities).
    depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
    return np.clip(image, 0.0, 1.0), depth
