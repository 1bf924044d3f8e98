"""Classical defocus-blur peers used as baselines.

:data:`PEERS` maps a name to ``f(image) -> blur map``: input (H, W, 3) float32 RGB in [0, 1], output (H, W) float32
in [0, 1], 1 = more blurred. HiFST's and the Laplacian's are per-image normalised, LBP's is an absolute fraction of
sharp window codes, Zhuo & Sim's is σ / maxBlur; richer functions live in the modules
(:func:`dmenet.peers.zhuo_sim.zhuo_sim_sigma` returns σ in px, which the registered ``zhuo_sim`` method gives as its
σ map).

| name | method | module |
|---|---|---|
| ``hifst`` | Golestaneh & Karam 2017 (PyPI ``blur_detector``), 1 − sharpness | :mod:`dmenet.peers.hifst` |
| ``zhuo_sim`` | Zhuo & Sim 2011, re-blur gradient ratio + matting propagation, σ / 3 | :mod:`dmenet.peers.zhuo_sim` |
| ``lbp`` | Yi & Eramian 2016, thresholded LBP sharpness, 1 − sharpness | :mod:`dmenet.peers.lbp` |
| ``laplacian`` | windowed variance of the Laplacian, 1 − normalised sharpness | :mod:`dmenet.peers.laplacian` |
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dmenet.peers.hifst import hifst_blur_map
from dmenet.peers.laplacian import laplacian_blur_map
from dmenet.peers.lbp import lbp_blur_map
from dmenet.peers.zhuo_sim import zhuo_sim_blur_map

PeerFn = Callable[[np.ndarray], np.ndarray]

PEERS: dict[str, PeerFn] = {
    "hifst": hifst_blur_map,
    "zhuo_sim": zhuo_sim_blur_map,
    "lbp": lbp_blur_map,
    "laplacian": laplacian_blur_map,
}

__all__ = ["PEERS", "PeerFn"]
