"""Galetto & Deng 2023: defocus estimation by classifying 32×32 gray patches into 20 Gaussian-blur levels
(σ = 0…19 px) with a MobileNetV2, a sliding-window σ map, weighted-guided-filter refinement and three applications
(adaptive enhancement, defocus magnification, multi-focus fusion). See docs/method.md §15."""

PATCH = 32
NUM_CLASSES = 20
