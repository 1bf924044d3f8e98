"""Size bounds of the Distill networks' architecture configs (``student.*``, ``teacher.*``), checked when a config
or a model sidecar is read (every tool), as ``dmenet.models.config`` bounds DMENet's (reliability.md H51, §30).

Unbounded, ``teacher.aspp_mid=100000000`` counted 474,820 M parameters in ``distill.summary`` and a student decoder
of 10⁸ channels failed inside a torch constructor (2 TB asked) with a traceback; a width of 0 was an IndexError
traceback, ``teacher.sa_reduction=0`` a ZeroDivisionError.
"""

from __future__ import annotations

import math

MAX_WIDTH = 4096
"""Largest channel count of a configured layer (``teacher.aspp_mid``, ``aspp_growth``, ``decoder``;
``student.decoder``): 4× the widest released one (the faithful teacher's 1024-channel ASPP units; its decoder is
256 wide, the faithful student's 512). One 3×3 layer at the bound holds 151 M parameters (0.6 GB in fp32)."""
MAX_ASPP_UNITS = 8
"""Most DenseASPP units (``teacher.aspp_dilations``' length; 0 = none, the bottleneck passes unchanged): twice the
released 4 (DenseASPP's own paper uses 5). Each unit widens the input of every later one by ``aspp_growth``."""
MAX_DILATION = 128
"""Largest ASPP dilation (px at 1/16): the bottleneck's side at the largest input the tools run (2048 px, the
``data.crop`` / ``data.val_side`` / ``--size`` bound); beyond it the off-centre taps read only the zero padding
(released 2 … 8); the smallest is 1 (0 failed inside torch at the first forward)."""
MAX_SA_REDUCTION = 512
"""Largest ``teacher.sa_reduction`` (attention query/key channels = C // reduction; released 8): the smallest
bottleneck's channels (VGG16's 512). A larger one left no query channel: the attention became uniform, unsaid."""


def require_widths(key: str, widths: int | tuple[int, ...]) -> None:
    """Raise ValueError naming ``key`` unless ``widths`` (one width or a tuple of them) are whole channel counts
    1 … MAX_WIDTH."""
    many = isinstance(widths, tuple)
    if not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= MAX_WIDTH
               for w in (widths if many else (widths,))):
        what = "channel counts" if many else "a channel count"
        raise ValueError(f"{key} must be {what} 1 … {MAX_WIDTH}, got {list(widths) if many else widths}")


def require_rate(key: str, value: float) -> None:
    """Raise ValueError naming ``key`` unless ``value`` is a dropout-like rate in [0, 1) (1 drops everything)."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"{key} must be a rate in [0, 1), got {value}")
