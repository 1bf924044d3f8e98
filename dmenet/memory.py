"""The memory guard of the tools that estimate maps of whole photos (``predict``, the σ-map applications, ``export``):
a rough estimate of the peak memory one photo needs (:func:`estimate_memory`), the memory the machine has available
(:func:`available_memory`), and :func:`check_memory`, which refuses a photo that does not fit with the ``--max-side``
that does; :data:`LARGE_IMAGE_PIXELS`, above which a photo gets a progress line."""

from __future__ import annotations

import os

from syndof import resize

WORK_BYTES_PER_PIXEL = 200
"""Peak memory per pixel of the image DMENet works on (tiled above 1024² px; measured: 5.5 GB peak RSS for a
6000×4000 photo with 8 flips, docs/reliability.md #10)."""
IO_BYTES_PER_PIXEL = 40
"""Per input pixel: the decoded image, the full-size σ / probability maps and their encodings."""
MEMORY_FIXED_BYTES = 600 * 2**20
"""Model, one tile's activations and the interpreter."""
LARGE_IMAGE_PIXELS = 1024 * 1024
"""Above this many pixels an image is tiled (:data:`dmenet.tiling.TILE_THRESHOLD` is this number) and gets a
progress note (``predict``, the σ-map applications)."""


def estimate_memory(height: int, width: int, max_side: int | None = None, extra_per_pixel: int = 0,
                    input_per_pixel: int = 0, min_short_side: int | None = None) -> int:
    """Rough peak bytes to predict one ``height`` × ``width`` image (``max_side`` = the ``--max-side`` option;
    ``extra_per_pixel``: the method's :meth:`~dmenet.methods.base.Estimator.extra_bytes_per_pixel`, per pixel of the
    working image; ``input_per_pixel``: its :meth:`~dmenet.methods.base.Estimator.input_bytes_per_pixel`, per pixel
    of the input image, which ``--max-side`` does not shrink; ``min_short_side``: the method's
    :attr:`~dmenet.methods.base.Estimator.min_short_side`, the px its ``max_side`` never shrinks the short side below,
    so a long thin strip is counted at the size it runs at, not at ``max_side``)."""
    scale = resize.long_side_scale((height, width), max_side or None, min_short_side)  # max_side 0: full resolution
    work = WORK_BYTES_PER_PIXEL + extra_per_pixel
    return int(MEMORY_FIXED_BYTES + height * width * (IO_BYTES_PER_PIXEL + input_per_pixel + work * scale * scale))


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` of /proc/meminfo, else the free physical
    pages), or None when the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(height: int, width: int, max_side: int | None, available: int | None,
                 extra_per_pixel: int = 0, input_per_pixel: int = 0, min_short_side: int | None = None,
                 max_side_applies: bool = True) -> None:
    """Raise ValueError when the image would need more memory than ``available`` bytes (None: unknown, no check);
    the message gives the ``--max-side`` that fits (``extra_per_pixel``, ``input_per_pixel``, ``min_short_side`` as
    in :func:`estimate_memory`), or says to downsize the photo when no working size fits (a strip whose short side
    the method keeps may fit at none). ``max_side_applies`` False: the method runs at the image's own size whatever
    ``max_side`` (its registry row does not list it: :attr:`dmenet.methods.registry.MethodSpec.shared_options`), so
    the image is counted at full size and no ``--max-side`` is offered."""
    if available is None:
        return
    if not max_side_applies:
        max_side = None
    need = estimate_memory(height, width, max_side, extra_per_pixel, input_per_pixel, min_short_side)
    if need <= available:
        return
    budget = (available - MEMORY_FIXED_BYTES) / (height * width) - IO_BYTES_PER_PIXEL - input_per_pixel
    side = int(max(height, width) * (budget / (WORK_BYTES_PER_PIXEL + extra_per_pixel)) ** 0.5) if budget > 0 else 0
    fits = max_side_applies and side >= 64 and estimate_memory(
        height, width, side // 16 * 16, extra_per_pixel, input_per_pixel, min_short_side) <= available
    way_out = (f"pass --max-side {side // 16 * 16} (or smaller)" if fits
               else "downsize it first or use a machine with more memory")
    raise ValueError(f"{width}x{height} px needs about {need / 2**30:.1f} GiB, {available / 2**30:.1f} GiB "
                     f"available: {way_out}")
