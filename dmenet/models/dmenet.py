"""DMENet (Lee et al., CVPR 2019): B (encoder + decoder), D (discriminator), C (frozen perceptual), S (calibration).

``build_dmenet(cfg)`` assembles the four subnetworks; ``MODELS`` is the only registry. Outputs follow
``self.training`` only through BatchNorm (train-mode batch statistics); every forward returns the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import Tensor, nn

from dmenet.models.calibration import Calibration
from dmenet.models.config import ModelConfig
from dmenet.models.decoder import Decoder
from dmenet.models.discriminator import Discriminator
from dmenet.models.encoders import build_encoder
from dmenet.models.layers import check_image
from dmenet.models.perceptual import Perceptual
from dmenet.models.recipe import Recipe


@dataclass
class DefocusOutput:
    """B's outputs.

    Attributes:
        defocus: (B, 1, H, W) float label in [0, 1] (σ / σ_max; σ px = σ_max · defocus).
        aux: five (B, 1, H/s, W/s) maps in [0, 1], coarse → fine (s = 16, 8, 4, 2, t), for the auxiliary losses
            (t = ``model.tail_scale``, 1 in the paper).
        features: (B, round(64·width), H/t, W/t) gan_feat — the discriminator's input (before the refinement blocks).
    """

    defocus: Tensor
    aux: list[Tensor]
    features: Tensor


class BlurNet(nn.Module):
    """B: forward(image (B, 3, H, W) RGB in [0, 1], H, W multiples of 16) -> DefocusOutput."""

    def __init__(self, encoder: nn.Module, decoder: Decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, image: Tensor) -> DefocusOutput:
        """(B, 3, H, W) RGB in [0, 1], H and W positive multiples of 16 (ValueError otherwise) → DefocusOutput:
        defocus (B, 1, H, W) label σ/σ_max in [0, 1], aux and features as :class:`DefocusOutput` says."""
        check_image(image, 3, "image")
        defocus, aux, feat = self.decoder(self.encoder(image))
        return DefocusOutput(defocus=defocus, aux=aux, features=feat)


class DMENet(nn.Module):
    """The four subnetworks. ``forward(image)`` is ``blur(image)``; D, C and S are called by the training loss.

    Attributes:
        blur: B (``blur.encoder``, ``blur.decoder``), the inference model.
        discriminator: D, forward(features) -> patch logits (B, 1, ⌈H/32⌉, ⌈W/32⌉), synthetic = 1.
        perceptual: C (frozen, always eval), forward(map (B, 1, H, W)) -> (B, C4, H/8, W/8) features.
        calibration: S, forward(defocus (B, 1, H, W)) -> logits (B, 1, H, W), 1 = blurred.
        config: the ModelConfig it was built from.
        init_info: {"encoder", "init", "init_name", "input_convention", "convention_source", "init_metadata"}.
        recipe: the inference recipe (:class:`dmenet.models.recipe.Recipe`, immutable) saved beside the weights;
            a new model has the paper's (moving statistics, one pass, no fitted values). Replace it, never edit it.
    """

    def __init__(self, blur: BlurNet, discriminator: Discriminator, perceptual: Perceptual,
                 calibration: Calibration, config: ModelConfig, init_info: dict[str, Any]):
        super().__init__()
        self.blur = blur
        self.discriminator = discriminator
        self.perceptual = perceptual
        self.calibration = calibration
        self.config = config
        self.init_info = init_info
        self.recipe = Recipe()

    @property
    def sigma_max(self) -> float:
        """σ px of an output of 1: (max_coc − 1)/4."""
        return self.config.sigma_max

    def forward(self, image: Tensor) -> DefocusOutput:
        """B's pass (:meth:`BlurNet.forward`): (B, 3, H, W) RGB in [0, 1], H, W multiples of 16 → DefocusOutput
        (defocus (B, 1, H, W) label σ/σ_max in [0, 1]; σ px = :attr:`sigma_max` · defocus)."""
        return self.blur(image)


def build_dmenet(cfg: ModelConfig, load_init: bool = True) -> DMENet:
    """Build DMENet for ``cfg``; encoder and C are initialised from ``cfg.init`` when given (and ``load_init``).

    ``load_init=False`` skips loading the init file's tensors (a checkpoint's state dict follows). The input
    convention is not in the state dict: set ``cfg.input_convention`` to the checkpoint's (its ``init`` record),
    otherwise it is resolved from the init file's header as when it was built.
    """
    encoder, info = build_encoder(cfg, load=load_init)
    frozen, _ = build_encoder(cfg, load=load_init)
    if info["input_convention"] != frozen.normalize.convention:
        raise AssertionError("encoder and perceptual copies disagree on the input convention")
    decoder = Decoder(tuple(encoder.channels), cfg.width, cfg.refine_blocks, cfg.tail_scale)
    disc_width = cfg.width if cfg.disc_width is None else cfg.disc_width
    return DMENet(
        blur=BlurNet(encoder, decoder),
        discriminator=Discriminator(decoder.gan_channels, disc_width),
        perceptual=Perceptual(frozen),
        calibration=Calibration(cfg.calib_width),
        config=cfg,
        init_info=info,
    )


MODELS: dict[str, Callable[[ModelConfig], DMENet]] = {"dmenet": build_dmenet}
