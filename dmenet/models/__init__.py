"""DMENet's subnetworks: ``build_dmenet(ModelConfig)`` -> DMENet with .blur (B), .discriminator (D),
.perceptual (C, frozen), .calibration (S); checkpoint I/O in :mod:`dmenet.models.model_io`."""

from dmenet.models.config import ModelConfig
from dmenet.models.dmenet import MODELS, DefocusOutput, DMENet, build_dmenet

__all__ = ["MODELS", "DMENet", "DefocusOutput", "ModelConfig", "build_dmenet"]
