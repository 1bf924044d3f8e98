"""Optional degradations of rendered images: Poisson–Gaussian sensor noise and JPEG re-encoding.

Both are off by default in ``syndof.generate`` (the original SYNDOF adds neither, docs/method.md §9). They change only
the image, never the σ map. All randomness comes from the caller's ``np.random.Generator``.
"""

from __future__ import annotations

import cv2
import numpy as np

from syndof.io import from_uint8, to_uint8

GAIN_RANGE = (1e-4, 1e-2)
"""Per-photon gain range (image units per electron; 1/gain = electrons at white), drawn log-uniformly."""
READ_STD_RANGE = (1e-3, 1e-2)
"""Gaussian read-noise standard deviation range (image units), drawn uniformly."""


def sample_noise_params(rng: np.random.Generator) -> dict[str, float]:
    """Draw ``{"gain", "read_std"}`` for :func:`add_sensor_noise`: ``gain`` log-uniform in :data:`GAIN_RANGE`
    ([0, 1] image units per electron), ``read_std`` uniform in :data:`READ_STD_RANGE` ([0, 1] image units)."""
    gain = float(np.exp(rng.uniform(np.log(GAIN_RANGE[0]), np.log(GAIN_RANGE[1]))))
    return {"gain": gain, "read_std": float(rng.uniform(*READ_STD_RANGE))}


def add_sensor_noise(image: np.ndarray, rng: np.random.Generator, gain: float | None = None,
                     read_std: float | None = None) -> np.ndarray:
    """Poisson–Gaussian noise: ``y = gain · Poisson(x / gain) + N(0, read_std²)``, clipped to [0, 1].

    Args:
        image: (H, W[, C]) float in [0, 1].
        rng: generator for the noise (and for the parameters left as None).
        gain: image units per photo-electron (larger = noisier shot noise); drawn when None.
        read_std: read-noise std in image units; drawn when None.

    Returns:
        float32 array of the same shape.
    """
    if gain is None or read_std is None:
        params = sample_noise_params(rng)
        gain = params["gain"] if gain is None else gain
        read_std = params["read_std"] if read_std is None else read_std
    if gain <= 0 or read_std < 0:
        raise ValueError(f"need gain > 0 and read_std >= 0, got {gain}, {read_std}")
    x = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    y = gain * rng.poisson(x / gain) + rng.normal(0.0, read_std, size=x.shape)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def jpeg_reencode(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode an (H, W[, 3]) RGB float [0, 1] (or uint8) image as JPEG at ``quality`` (1–100) and decode it back.

    Returns:
        float32 in [0, 1], same shape (deterministic: libjpeg via OpenCV).
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    arr = np.asarray(image)
    u8 = arr if arr.dtype == np.uint8 else to_uint8(arr)
    bgr = cv2.cvtColor(u8, cv2.COLOR_RGB2BGR) if u8.ndim == 3 else u8
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if dec.ndim == 3:
        dec = cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)
    return from_uint8(dec)
