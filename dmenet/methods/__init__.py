"""One door for every defocus method: a name → an :class:`Estimator` with the same small interface.

``make_method("dmenet", MethodOptions(model="m.safetensors"))`` returns an object whose
``estimate(image, sigma=True, probability=True)`` gives an :class:`Estimate` (σ map in px and/or a [0, 1] blur
probability, 1 = blurred) and whose ``describe()`` says in a few lines what happens to an image.
``predict``, ``evaluate``, the focal-stack check, the demo and the benchmarks all build their methods here; the
table of names lives in :mod:`dmenet.methods.registry`.
"""

from dmenet.methods.base import Estimate, Estimator, MethodOptions
from dmenet.methods.registry import METHODS, MethodChoice, MethodSpec, make_method, method_names, parse_method

__all__ = ["Estimate", "Estimator", "MethodOptions", "METHODS", "MethodChoice", "MethodSpec", "make_method",
           "method_names", "parse_method"]
