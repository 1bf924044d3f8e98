"""Sources of sharp RGB + metric depth for the synthesizer: procedural scenes, built-in data, folders of files.

Every source is a small picklable :class:`Source` record (safe to send to spawned worker processes); its
:meth:`Source.load` returns ``(image (H, W, 3) float32 RGB in [0, 1], depth (H, W) float64 mm)``. Sources without
depth (plain photos) get :func:`syndof.random_depth.random_depth` drawn from the sample's generator, so the same
sample seed always gives the same depth.

Built-in data (no download; all of it ships inside the scikit-image wheel):

* Middlebury 2014 "Motorcycle" RGB-D pair (``skimage.data.stereo_motorcycle``): the wheel holds the left view and
  its ground-truth disparity already downscaled ×4 (741×500, about the quarter resolution the original SYNDOF used),
  with the calibration for that size (f = 994.978 px = 3979.911/4, doffs = 31.086 px = 124.343/4, baseline
  193.001 mm). Depth is metric, so nothing needs rescaling; pixels without ground truth are filled.
* scikit-image's bundled photos (astronaut, coffee, chelsea, rocket, camera) with random edge-aligned depth.
* procedural layered scenes (:func:`procedural_scene`), a fresh one for every sample.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from syndof import units
from syndof.choices import Choice, parse_choice
from syndof.io import from_uint8
from syndof.random_depth import FAR_LIMIT_MM, NEAR_RANGE_MM, _smooth_noise, random_depth

# Middlebury 2014 Motorcycle, calibration of the ×4-downscaled pair shipped by scikit-image (its docstring).
MOTORCYCLE_FOCAL_PX = 994.978  # full resolution: 3979.911
MOTORCYCLE_BASELINE_MM = 193.001
MOTORCYCLE_DOFFS_PX = 31.086  # full resolution: 124.343

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")
PROCEDURAL_SIZE = (480, 640)

DEPTH_EXTENSIONS = (".dpt", ".npy", ".pfm", ".png")


# --------------------------------------------------------------------------------------------- procedural scenes
def _noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean unit-std noise with correlation length ``scale`` px (white for scale ≤ 0.5)."""
    if scale > 4:
        return _smooth_noise(rng, shape, scale)  # made at low resolution: fast for large scales
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=scale, mode="wrap") if scale > 0.5 else \
        rng.standard_normal(shape)
    s = f.std()
    return (f - f.mean()) / s if s > 0 else f


def random_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random colour texture with fine detail (so blur is visible): (H, W, 3) float32 in [0, 1]."""
    shape = (height, width)
    # Multi-octave noise along a random colour direction, plus a weaker independent colour jitter.
    octaves = [(0.0, rng.uniform(0.1, 0.5)), (1.0, rng.uniform(0.3, 1.0)), (3.0, rng.uniform(0.3, 1.0)),
               (rng.uniform(6, 16), rng.uniform(0.2, 1.0))]
    lum = sum(w * _noise(rng, shape, s) for s, w in octaves)
    lum /= max(lum.std(), 1e-6)
    kind = rng.integers(0, 4)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    if kind == 1:  # stripes
        ang, period = rng.uniform(0, np.pi), rng.uniform(4, 24)
        lum = 0.5 * lum + 1.5 * np.sign(np.sin(2 * np.pi * (xx * np.cos(ang) + yy * np.sin(ang)) / period))
    elif kind == 2:  # checkerboard
        cell = rng.uniform(4, 20)
        lum = 0.5 * lum + 1.5 * (((xx // cell + yy // cell) % 2) * 2 - 1)
    elif kind == 3:  # dots
        period = rng.uniform(6, 20)
        d = np.hypot((xx % period) - period / 2, (yy % period) - period / 2)
        lum = 0.5 * lum + 1.5 * np.where(d < period * rng.uniform(0.15, 0.35), 1.0, -1.0)
    base = rng.uniform(0.15, 0.85, 3)
    direction = rng.normal(size=3)
    direction = 0.6 * direction / np.linalg.norm(direction) + 0.4 * np.ones(3) / np.sqrt(3)
    contrast = rng.uniform(0.08, 0.25)
    img = base + contrast * lum[..., None] * direction
    img += 0.03 * np.stack([_noise(rng, shape, 2.0) for _ in range(3)], axis=-1)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _shape_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cx, cy = rng.uniform(0, width), rng.uniform(0.1 * height, height)
    size = rng.uniform(0.08, 0.35) * min(height, width)
    kind = rng.integers(0, 3)
    if kind == 0:
        axes = (max(2, int(size * rng.uniform(0.5, 1.3))), max(2, int(size * rng.uniform(0.5, 1.3))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == 1:
        rect = ((float(cx), float(cy)), (float(size * rng.uniform(0.6, 2.0)), float(size * rng.uniform(0.6, 2.0))),
                float(rng.uniform(0, 90)))
        cv2.fillPoly(mask, [np.round(cv2.boxPoints(rect)).astype(np.int32)], 1)
    else:
        n = int(rng.integers(3, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = size * rng.uniform(0.5, 1.2, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(bool)


def procedural_scene(rng: np.random.Generator, height: int = PROCEDURAL_SIZE[0],
                     width: int = PROCEDURAL_SIZE[1]) -> tuple[np.ndarray, np.ndarray]:
    """A textured layered scene: a ground/background plane and 4–10 textured shapes at different depths.

    Shapes are painted far to near, so nearer ones occlude farther ones; each shape has a slightly tilted depth plane
    (continuous CoCs within it) and a random texture; the background recedes toward the top of the frame.

    Returns:
        image (H, W, 3) float32 RGB in [0, 1]; depth (H, W) float64 in mm (0.5 … 30 m).
    """
    if height < 8 or width < 8:
        raise ValueError(f"procedural scenes need at least 8×8 px, got {width}×{height}")
    near = float(np.exp(rng.uniform(np.log(NEAR_RANGE_MM[0]), np.log(NEAR_RANGE_MM[1]))))
    far = float(np.exp(rng.uniform(np.log(min(4.0 * near, FAR_LIMIT_MM)), np.log(FAR_LIMIT_MM))))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yn, xn = yy / (height - 1), xx / (width - 1)
    # Nearness t ∈ [0, 1] (linear in inverse depth). Background: a ground plane below a random horizon.
    horizon = rng.uniform(0.2, 0.6)
    t_ground_max = rng.uniform(0.3, 0.7)
    t = np.where(yn < horizon, 0.05 * yn / horizon, 0.05 + (t_ground_max - 0.05) * (yn - horizon) / (1 - horizon))
    t += 0.01 * _noise(rng, (height, width), max(height, width) / 8)
    image = random_texture(rng, height, width)
    n_shapes = int(rng.integers(4, 11))
    levels = np.sort(rng.uniform(0.05, 1.0, n_shapes))  # far → near
    for level in levels:
        mask = _shape_mask(rng, height, width)
        if not mask.any():
            continue
        tilt = rng.uniform(-0.08, 0.08, 2)
        plane = level + tilt[0] * (xn - xn[mask].mean()) + tilt[1] * (yn - yn[mask].mean())
        t[mask] = plane[mask]
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        tex = random_texture(rng, rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])  # only the shape's box
        image[box][mask[box]] = tex[mask[box]]
    t = np.clip(t, 0.0, None)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-12)
    return image, np.clip(units.inverse_depth_to_mm(t, near, far), near, far)


# ------------------------------------------------------------------------------------------------------- sources
def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "source"


@functools.lru_cache(maxsize=None)  # read-only arrays: the cache is shared
def _motorcycle() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    from syndof.depth_io import disparity_to_depth

    left, _, disp = data.stereo_motorcycle()
    disp = np.asarray(disp, dtype=np.float64)
    if disp.ndim == 3:
        disp = disp[..., 0]
    depth = disparity_to_depth(disp, MOTORCYCLE_FOCAL_PX, MOTORCYCLE_BASELINE_MM, MOTORCYCLE_DOFFS_PX)
    return _read_only(from_uint8(left)), _read_only(np.array(depth, dtype=np.float64))


@functools.lru_cache(maxsize=None)
def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    img = np.asarray(getattr(data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return _read_only(from_uint8(img[..., :3]))


def _read_only(array: np.ndarray) -> np.ndarray:
    """``array``, made read-only: the cached built-in photos are shared by every caller, which must copy to edit."""
    array.flags.writeable = False
    return array


class SourceKind(Choice):
    """Where a :class:`Source`'s image and depth come from."""

    FILE = "file"
    """an image file (``image_path``) with a depth file (``depth_path``) or, without one, random depth."""
    MOTORCYCLE = "motorcycle"
    """the built-in Middlebury 2014 Motorcycle RGB-D pair (metric depth)."""
    SKIMAGE = "skimage"
    """the scikit-image photo ``skimage.data.<name>`` with random depth."""
    PROCEDURAL = "procedural"
    """a fresh procedural layered scene of ``size`` (H, W) px per sample (:func:`procedural_scene`)."""


@dataclass(frozen=True)
class Source:
    """One source of sharp RGB (+ depth). ``kind``: a :class:`SourceKind` or its value ("file", "motorcycle",
    "skimage" or "procedural"), parsed on construction (ValueError naming the kinds otherwise)."""

    name: str
    kind: SourceKind
    image_path: str | None = None
    depth_path: str | None = None
    depth_scale: float | None = None
    size: tuple[int, int] | None = None  # (H, W) of procedural scenes
    other_depths: tuple[str, ...] = ()
    """Further depth files with the image's stem besides ``depth_path``: the pairing is ambiguous and ``load``
    refuses it (naming them) rather than pick one."""
    depth_missing: bool = False
    """A depth folder was given but holds no file with the image's stem (``depth_path`` is then the pattern searched,
    ``<folder>/<stem>.*``): ``load`` refuses it rather than fall back to random depth."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", parse_choice(SourceKind, self.kind, "source kind"))

    @property
    def stem(self) -> str:
        """File-name-safe name used in sample stems."""
        return _safe_name(self.name)

    def describe(self) -> str:
        """Where the data comes from (recorded in the manifest)."""
        if self.kind is SourceKind.FILE:
            return self.image_path if self.depth_path is None else f"{self.image_path} + {self.depth_path}"
        if self.kind is SourceKind.MOTORCYCLE:
            return "skimage.data.stereo_motorcycle (Middlebury 2014 Motorcycle, GT disparity)"
        if self.kind is SourceKind.SKIMAGE:
            return f"skimage.data.{self.name} + random_depth"
        # SourceKind.PROCEDURAL
        return f"procedural_scene {self.size[1]}x{self.size[0]}" if self.size else "procedural_scene"

    @property
    def has_depth(self) -> bool:
        """True when the source gives depth (its own file, or a generated scene)."""
        return self.kind is SourceKind.MOTORCYCLE or self.kind is SourceKind.PROCEDURAL or self.depth_path is not None

    def load(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Image (H, W, 3) float32 RGB [0, 1] and depth (H, W) float64 mm; random draws come from ``rng``.

        Raises:
            syndof.io.InputError: unreadable image or depth, or depth/image size mismatch.
        """
        image, depth, _ = self.load_recorded(rng)
        return image, depth

    def load_recorded(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
        """:meth:`load` (image (H, W, 3) float32 RGB [0, 1], depth (H, W) float64 mm), and the SHA-256 (64 hex
        digits) of each file it read: ``{"image": …}`` and, with a depth
        file, ``"depth"``; ``{}`` for the built-in sources. Each is of the very bytes decoded, each file read once
        (:func:`syndof.io.read_image_sha256`, :func:`syndof.depth_io.read_depth_sha256`), so neither digest can
        belong to another version than the one read.
        """
        if self.kind is SourceKind.PROCEDURAL:
            h, w = self.size or PROCEDURAL_SIZE
            return (*procedural_scene(rng, h, w), {})
        if self.kind is SourceKind.MOTORCYCLE:
            image, depth = _motorcycle()
            return image.copy(), depth.copy(), {}
        if self.kind is SourceKind.SKIMAGE:
            image = _skimage_photo(self.name).copy()
            return image, random_depth(image, rng), {}
        # SourceKind.FILE
        from syndof.io import InputError, read_image_sha256

        image, image_sha256 = read_image_sha256(self.image_path)
        if self.depth_path is None:
            return image, random_depth(image, rng), {"image": image_sha256}
        from syndof.depth_io import read_depth_sha256

        if self.other_depths:
            names = ", ".join(Path(p).name for p in (self.depth_path, *self.other_depths))
            raise InputError(self.image_path, f"several depth files with stem {Path(self.image_path).stem!r} in "
                                              f"{Path(self.depth_path).parent} ({names}): keep one")
        if self.depth_missing:
            raise InputError(self.image_path, f"no depth file with stem {Path(self.image_path).stem!r} in "
                                              f"{Path(self.depth_path).parent}")
        depth, depth_sha256 = read_depth_sha256(self.depth_path, scale=self.depth_scale)
        depth = np.asarray(depth, dtype=np.float64)
        if depth.shape != image.shape[:2]:
            raise InputError(self.depth_path, f"depth is {depth.shape[1]}x{depth.shape[0]} px but image "
                                              f"{self.image_path} is {image.shape[1]}x{image.shape[0]} px")
        return image, depth, {"image": image_sha256, "depth": depth_sha256}


def builtin_sources(procedural: int = 2, procedural_size: tuple[int, int] = PROCEDURAL_SIZE) -> list[Source]:
    """The built-in data that needs no download: Motorcycle RGB-D, scikit-image photos, procedural scenes.

    Args:
        procedural: how many procedural slots to include (every sample drawn from a slot is a new scene).
        procedural_size: (H, W) of procedural scenes.
    """
    sources = [Source("middlebury-motorcycle", SourceKind.MOTORCYCLE)]
    sources += [Source(n, SourceKind.SKIMAGE) for n in SKIMAGE_PHOTOS]
    sources += [Source(f"procedural{i}", SourceKind.PROCEDURAL, size=tuple(procedural_size))
                for i in range(procedural)]
    return sources


def folder_sources(images: str | Path, depths: str | Path | None = None,
                   depth_scale: float | None = None) -> list[Source]:
    """Sources for every image in ``images``; with ``depths``, depth files are matched to images by stem.

    An image without a depth file of the same stem still becomes a source (its load fails with an InputError naming
    the missing file, so the batch logs and skips it), as does one with several (``a.npy`` and ``a.png``: its load
    fails naming them; the pairing never guesses). With one folder for both, a photo is never its own depth map
    (``x.png`` + ``x.dpt``: the ``.dpt``), and a depth file that is another photo's depth (``a.jpg`` + 16-bit
    ``a.png``) is not taken as a photo. The sources of :func:`folder_sources_and_unlisted`.
    """
    return folder_sources_and_unlisted(images, depths, depth_scale)[0]


def folder_sources_and_unlisted(images: str | Path, depths: str | Path | None = None,
                                depth_scale: float | None = None
                                ) -> tuple[list[Source], list[tuple[Path, str]]]:
    """(:func:`folder_sources`, the image names in ``images`` where no file can be read with each one's reason:
    :func:`syndof.io.unlisted_images`) from one walk of ``images`` (:func:`syndof.io.list_images_and_unlisted`),
    so that the photos rendered and the names a batch reports as skipped come from the same listing.
    InputError when ``depths`` (checked first) or ``images`` is no folder."""
    from syndof.io import list_images_and_unlisted

    sources = []
    depth_by_stem: dict[str, list[Path]] = {}
    if depths is not None:
        depths = Path(depths)
        if not depths.is_dir():
            from syndof.io import not_a_folder

            raise not_a_folder(depths)
        for p in sorted(depths.iterdir()):
            if p.is_file() and p.suffix.lower() in DEPTH_EXTENSIONS:
                depth_by_stem.setdefault(p.stem, []).append(p)
    image_list, unlisted = list_images_and_unlisted(images)
    photos = {p.resolve() for p in image_list}
    stem_count: dict[str, int] = {}
    for img in image_list:
        stem_count[img.stem] = stem_count.get(img.stem, 0) + 1
    for stem, found in depth_by_stem.items():
        if len(found) > 1:  # one folder for both (Sintel: x.png + x.dpt): a photo is not its own depth
            depth_by_stem[stem] = [p for p in found if p.resolve() not in photos] or found
    for img in image_list:
        if depths is None:
            sources.append(Source(img.stem, SourceKind.FILE, image_path=str(img)))
            continue
        found = depth_by_stem.get(img.stem, [])
        if len(found) == 1 and found[0].resolve() == img.resolve() and stem_count[img.stem] > 1:
            continue  # the depth map of the other photo with this stem (a.jpg + a.png in one folder), not a photo
        sources.append(Source(img.stem, SourceKind.FILE, image_path=str(img),
                              depth_path=str(found[0]) if found else str(Path(depths) / f"{img.stem}.*"),
                              depth_scale=depth_scale, other_depths=tuple(str(p) for p in found[1:]),
                              depth_missing=not found))
    return sources, unlisted
