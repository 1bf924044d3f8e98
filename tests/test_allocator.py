"""syndof.allocator: freed large blocks are reused (no new page faults) after reuse_freed_memory()."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from syndof.allocator import reuse_freed_memory
    if sys.argv[1] == "1":
        assert reuse_freed_memory()
    def forward():  # a chain of layers: each output allocated while its input lives, then the input freed (MB)
        x = np.ones(30_000_000 // 8)
        for mb in (30, 7, 7, 30, 15, 4, 4, 1):
            y = np.ones(mb * 1_000_000 // 8); del x; x = y
    for _ in range(2):  # warm-up: the heap grows
        forward()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        forward()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(tuned: bool) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, "1" if tuned else "0"], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt and minor-fault counts")
def test_tuned_allocator_reuses_freed_blocks():
    plain, tuned = _faults(False), _faults(True)
    # plain glibc trims the heap top / unmaps after the 30 MB layers and faults the pages in again each "forward"
    # (4,095 faults here); tuned, the second forward reuses the first one's pages
    assert plain > 1000
    assert tuned < 100


def test_reuse_freed_memory_is_harmless_to_call_twice():
    import platform

    from syndof.allocator import reuse_freed_memory

    first = reuse_freed_memory()
    assert reuse_freed_memory() == first
    if platform.libc_ver()[0] == "glibc":  # every mallopt call is accepted there (False would mean none is tuned)
        assert first is True
