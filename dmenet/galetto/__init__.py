"""Galetto & Deng 2023: defocus estimation by classifying 32×32 gray patches into 20 Gaussian-blur levels
(σ = 0…19 px) with a MobileNetV2, a sliding-window σ map, weighted-guided-filter refinement and three applications
(adaptive enhancement, defocus magnification, multi-focus fusion). See docs/method.md §15."""

PATCH = 32
NUM_CLASSES = 20
BATCH = 192
"""Windows per classifier call of the σ map: a speed setting (each window is classified alone; against 1,024 per call
the probabilities moved by ≤ 3e-12 and the argmax σ maps were identical on 9 photos). 192 windows keep MobileNetV2's
largest activations (96 channels × 16² per window) near 19 MB, inside this CPU's last-level cache; 1,024 spilled
it and took 1.7× as long at stride 8 (BENCHMARKS.md, issue 18, 4 Dec 14:15 UTC)."""
