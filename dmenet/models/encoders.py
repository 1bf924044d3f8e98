"""Encoder construction (VGG16/19, MobileNetV2) with optional ImageNet initialisation and its init record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from dmenet.models.config import Encoder, ModelConfig, scaled
from dmenet.models.mobilenet import MobileNetV2Encoder
from dmenet.models.vgg import VGGEncoder
from dmenet.models.weights import load_encoder_weights, read_weights_file, read_weights_metadata, resolve_convention
from syndof.choices import parse_choice


def make_encoder(arch: Encoder | str, convention: str, d0_channels: int = 16) -> nn.Module:
    """Backbone with its ``normalize`` module. forward(image (B, 3, H, W) RGB [0, 1], levels=5) -> [d0 … d4].

    Keys: ``features.N.*`` (torchvision layout) and, for MobileNetV2, ``stem0.*``. Attributes ``channels``
    (of d0..d4), ``perceptual_level`` (3: the 1/8 tap used by C), ``arch``.
    """
    arch = parse_choice(Encoder, arch, "model.encoder")
    if arch is Encoder.MOBILENET_V2:
        return MobileNetV2Encoder(convention, d0_channels)
    return VGGEncoder(arch.value, convention)


def build_encoder(cfg: ModelConfig, load: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Encoder for ``cfg`` (initialised from ``cfg.init`` when ``load``) and the init record for checkpoints.

    The record: {"encoder", "init" (path str or None), "init_name", "input_convention", "convention_source",
    "init_metadata"}. ``load=False`` builds the same architecture without loading ``cfg.init``'s tensors (a checkpoint
    follows); the convention is then ``cfg.input_convention`` or, when None, resolved from the init file's header
    (which must exist) exactly as with ``load=True``.
    """
    meta: dict[str, str] = {}
    tensors = None
    if cfg.init is not None and load:
        tensors, meta = read_weights_file(cfg.init)
    elif cfg.init is not None and cfg.input_convention is None:
        meta = read_weights_metadata(cfg.init)  # header only: the convention must match the init file's
    convention, source = resolve_convention(cfg.encoder, cfg.input_convention, cfg.init, meta)
    encoder = make_encoder(cfg.encoder, convention, scaled(cfg.mobilenet_d0, cfg.width))
    if tensors is not None:
        load_encoder_weights(encoder, cfg.encoder, tensors, cfg.init)
    info = {
        "encoder": cfg.encoder,
        "init": None if cfg.init is None else str(cfg.init),
        "init_name": None if cfg.init is None else Path(cfg.init).name,
        "input_convention": convention,
        "convention_source": source,
        "init_metadata": meta,
    }
    return encoder, info
