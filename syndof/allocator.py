"""Keep freed memory in the process instead of handing it back to the kernel after every large tensor.

glibc's ``malloc`` serves blocks above its mmap threshold (128 KiB, raised dynamically up to 32 MiB) with fresh
``mmap`` pages and unmaps them on ``free``. A DMENet forward at 640×480 allocates and frees activations of up to 30
MB each: every forward then touches ~66 MB of new pages, ~16,000 minor page faults and ~50 ms of kernel time per
forward on the 2-core CPU (BENCHMARKS.md, "Idle-machine figures"). :func:`reuse_freed_memory` raises the mmap
threshold to its maximum and stops heap trimming, so the second forward reuses the first one's pages (0 page
faults).

This is process-wide tuning, like ``torch.set_num_threads``: only entry points call it, right after parsing. It
never changes a result; on a C library without ``mallopt`` (macOS, musl) it does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter numbers (glibc ``malloc.h``)."""

MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
"""glibc's largest accepted mmap threshold on 64-bit (``DEFAULT_MMAP_THRESHOLD_MAX``), bytes."""

TRIM_THRESHOLD = 1 << 30
"""Free heap top kept before trimming, bytes (1 GiB: the process's own peak is what stays mapped)."""

TOP_PAD = 64 * 1024 * 1024
"""Extra bytes requested from the kernel each time the heap grows."""


def reuse_freed_memory() -> bool:
    """Tune glibc ``malloc`` as above; True when every ``mallopt`` call was accepted, False where unavailable."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
