"""DMENet (Lee et al., CVPR 2019) in PyTorch: defocus map estimation with domain adaptation."""

__version__ = "0.1.0"
