"""SYNDOF-style synthetic depth-of-field generator (thin-lens CoC, layered Gaussian rendering)."""

__version__ = "0.1.0"
