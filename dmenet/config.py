"""Typed training configuration: one dataclass per concern, YAML files, ``a.b=value`` command-line overrides.

Precedence: dataclass defaults (the official DMENet values, codeslake/DMENet ``config.py``) → ``experiments/*.yaml``
→ ``--set a.b=value`` overrides. Unknown keys and values of the wrong type are errors
(:class:`~dmenet.configlib.ConfigError`) that name the key. The resolved config is saved as ``RUN/config.yaml`` by
the training script. This module holds DMENet's dataclasses, the keys older runs lack or kept elsewhere
(:data:`ADDED_KEYS`, :data:`LEGACY_MODEL_KEYS`) and the loading entry points (:func:`load_config`,
:func:`config_from_dict`, :func:`apply_overrides`, whose ``root=`` lets the Galetto and Distill configs load theirs);
the generic machinery (type conversion, overrides, the YAML loader, key comparison, the checks) is
:mod:`dmenet.configlib`, whose public names are importable from here too (``__all__``).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from dmenet.configlib import (ConfigError, UniqueKeyLoader, check_adam, check_choice, config_to_dict,
                              dataclass_from_dict, differing_keys, flat_keys, require_non_negative, require_positive,
                              set_override, split_override)
from dmenet.models.config import ModelConfig
from dmenet.models.recipe import FLIPS, BNMode, DetectionPath, Recipe, SigmaPath
from dmenet.training.resume import with_added_keys
from syndof.choices import Choice, choices, parse_choice

__all__ = [
    # this module
    "ADDED_KEYS", "DEVICES", "LEGACY_MODEL_KEYS", "MAX_CROP", "MAX_SEED", "POLARITIES", "STAGES", "WANDB_MODES",
    "DataConfig", "ExperimentConfig", "GtPolarity", "InferenceConfig", "LossConfig", "OptimConfig", "Stage",
    "TrainConfig", "TrainDevice", "WandbMode", "apply_overrides", "config_from_dict", "consistency_sizes",
    "dump_config", "load_config", "wants_cuda",
    # dmenet.configlib
    "ConfigError", "UniqueKeyLoader", "check_adam", "check_choice", "config_to_dict", "dataclass_from_dict",
    "differing_keys", "flat_keys", "require_non_negative", "require_positive", "set_override", "split_override",
]


class Stage(Choice):
    """DMENet training stage (``train.stage``, ``--stage``): BLUR trains B alone on synthetic data (L_defocus +
    L_aux); JOINT trains B, D and S on synthetic, labelled and unlabelled real batches (C frozen)."""

    BLUR = "blur"
    JOINT = "joint"


class GtPolarity(Choice):
    """Polarity of a labelled folder's binary ``gt/`` masks (``data.gt_polarity``, ``--gt-polarity``): WHITE_BLURRED
    = white is blurred (CUHK), WHITE_SHARP = white is sharp (xu100, DUT). Targets are always 1 = blurred."""

    WHITE_BLURRED = "white-blurred"
    WHITE_SHARP = "white-sharp"

    @property
    def white_is_blurred(self) -> bool:
        """Whether a white mask pixel means blurred (the ``white_is_blurred`` flag of the mask readers)."""
        return self is GtPolarity.WHITE_BLURRED


class WandbMode(Choice):
    """Weights & Biases mode this project passes to ``wandb.init(mode=...)`` (as the plain value): ``offline``
    runs are written under the run folder only (the default; sync later), ``online`` are streamed to the W&B server,
    ``disabled`` starts no W&B run at all (nothing is written there)."""

    OFFLINE = "offline"
    ONLINE = "online"
    DISABLED = "disabled"


class TrainDevice(Choice):
    """Where a training run goes (``train.device``): ``auto`` on CUDA when a GPU is visible, else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


STAGES = choices(Stage)
POLARITIES = choices(GtPolarity)
WANDB_MODES = choices(WandbMode)
DEVICES = choices(TrainDevice)


MAX_SEED = 2**63 - 1
"""Largest ``train.seed``: torch's generators take unsigned 64-bit seeds (a larger one failed inside
``torch.manual_seed``, after the run had started); a negative seed is refused rather than wrapped around."""


def wants_cuda(device: TrainDevice | str) -> bool:
    """Whether a training config's ``device`` (:class:`TrainDevice` or its value) runs on CUDA here: ``auto`` does
    when a GPU is visible; ``cuda`` without one is a ConfigError."""
    import torch

    device = parse_choice(TrainDevice, device, "train.device")
    if device is TrainDevice.CUDA and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but CUDA is not available")
    return device is TrainDevice.CUDA or (device is TrainDevice.AUTO and torch.cuda.is_available())


MAX_CROP = 2048
"""Largest ``data.crop`` (px): 8× the paper's 240-px crop, a training sample upscaled to it stays within what the
image resize handles (a 100000-px crop made cv2 fail mid-run, after the run folder was written)."""


@dataclass(frozen=True)
class DataConfig:
    """Training data folders and augmentation (docs/method.md §6).

    Attributes:
        synthetic: SYNDOF folder (``image/`` + ``blur_map/`` paired by stem, ``dataset.json``).
        real: unlabelled real photos (searched recursively).
        labelled: labelled real folder (``image/`` + ``gt/`` binary blur masks paired by stem).
        gt_polarity: "white-blurred" (CUHK) or "white-sharp" (xu100, DUT); targets are always 1 = blurred.
        crop: square training crop in px (multiple of 16, at most MAX_CROP: every sample is upscaled to at least
            the crop before cropping, so a crop far above any photo's side only fails inside the image resize).
        max_min_side: images whose shorter side exceeds this are first downscaled to it (σ rescaled; paper 800);
            None keeps the size.
        vflip: random vertical flip (p = 0.5). rot90: random rotation by k·90°, k uniform in {0, 1, 2, 3}.
        scale_min: random downscale of every training sample by s uniform in [scale_min, 1] before the crop, σ
            multiplied by s (1.0 = off, the paper; not in the official code). Teaches B to measure blur in px
            rather than infer it from content. scale_p: probability that a sample is downscaled (1.0 = all).
        reblur_p, reblur_max: with probability ``reblur_p``, a synthetic sample is blurred further by a Gaussian
            of σ uniform in [0, ``reblur_max``] px and its σ becomes √(σ² + g²) (0 = off; not in the paper), so
            no sharp region anchors the scale. Synthetic samples only.
        val_count: synthetic samples held out (the last stems in sorted order) for the validation loss; 0 = none.
        loader_threads: threads decoding images (0 = in the training thread).
    """

    synthetic: str | None = None
    real: str | None = None
    labelled: str | None = None
    gt_polarity: str = "white-blurred"
    crop: int = 240
    max_min_side: int | None = 800
    vflip: bool = True
    rot90: bool = True
    scale_min: float = 1.0
    scale_p: float = 1.0
    reblur_p: float = 0.0
    reblur_max: float = 0.0
    val_count: int = 0
    loader_threads: int = 2

    def __post_init__(self) -> None:
        if self.gt_polarity not in POLARITIES:
            raise ConfigError(f"data.gt_polarity must be one of {POLARITIES}, got {self.gt_polarity!r}")
        if self.crop < 16 or self.crop % 16 or self.crop > MAX_CROP:
            raise ConfigError(f"data.crop must be a positive multiple of 16 in [16, {MAX_CROP}] px, got {self.crop}")
        if not 0.0 < self.scale_min <= 1.0:
            raise ConfigError(f"data.scale_min must be in (0, 1] (downscaling only), got {self.scale_min}")
        if not 0.0 <= self.scale_p <= 1.0:
            raise ConfigError(f"data.scale_p must be in [0, 1], got {self.scale_p}")
        if not 0.0 <= self.reblur_p <= 1.0:
            raise ConfigError(f"data.reblur_p must be in [0, 1], got {self.reblur_p}")
        if not 0.0 <= self.reblur_max <= 10.0:
            raise ConfigError(f"data.reblur_max must be a σ in [0, 10] px, got {self.reblur_max}")
        if self.reblur_p > 0.0 and self.reblur_max == 0.0:
            raise ConfigError("data.reblur_p > 0 needs data.reblur_max > 0 (the largest extra σ, px)")
        if self.max_min_side is not None and self.max_min_side < self.crop:
            raise ConfigError(f"data.max_min_side ({self.max_min_side}) must be >= data.crop ({self.crop})")
        require_non_negative(self, "data", ("val_count", "loader_threads"))  # 0 = no validation / no threads


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (docs/method.md §4); names follow the official config where it has one.

    Attributes:
        scale_consistency: weight of L_scale (:func:`dmenet.losses.scale_consistency_loss`, not in the paper; 0 =
            off): on the unlabelled real batch, B's σ map of the image downscaled by s must equal s × B's σ map
            of the full image, downscaled. Joint stage only.
        scale_consistency_min, scale_consistency_max: range of s; the downscaled side is a multiple of 16 in
            [min·crop, max·crop], drawn uniformly per step (seeded by train.seed and the step).
    """

    defocus: float = 1.0
    aux: float = 1.0
    perceptual: float = 1e-4  # lambda_perceptual
    binary: float = 2e-2  # lambda_binary (sharpness calibration S)
    adv: float = 1e-3  # lambda_adv (B fooling D)
    discriminator: float = 1e-3  # weight of L_D (lambda_adv × lambda_lr_d)
    scale_consistency: float = 0.0
    scale_consistency_min: float = 0.5
    scale_consistency_max: float = 0.75

    def __post_init__(self) -> None:
        for name in ("defocus", "aux", "perceptual", "binary", "adv", "discriminator", "scale_consistency"):
            value = getattr(self, name)  # a negative weight trains that term the wrong way (gradient ascent)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"loss.{name} must be a finite weight >= 0 (0 = off), got {value}")
        if not 0.0 < self.scale_consistency_min <= self.scale_consistency_max < 1.0:
            raise ConfigError("loss.scale_consistency_min/max must satisfy 0 < min <= max < 1, got "
                              f"[{self.scale_consistency_min}, {self.scale_consistency_max}]")


@dataclass(frozen=True)
class OptimConfig:
    """Adam for B+S and for D, step decay per epoch (docs/method.md §5)."""

    lr: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    decay: float = 0.8
    decay_every_epochs: int = 20
    steps_per_epoch: int | None = None  # None → |synthetic train| // train.batch_synthetic (the official epoch)

    def __post_init__(self) -> None:
        check_adam(self, "optim", ("lr", "lr_d"))
        if not 0.0 < self.decay <= 1.0:
            raise ConfigError(f"optim.decay must be in (0, 1] (the lr is multiplied by it every "
                              f"optim.decay_every_epochs epochs), got {self.decay}")
        if self.decay_every_epochs < 0:
            raise ConfigError(f"optim.decay_every_epochs must be >= 0 (0 = every epoch), got {self.decay_every_epochs}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 0:
            raise ConfigError(f"optim.steps_per_epoch must be >= 0 or null (derived), got {self.steps_per_epoch}")


@dataclass(frozen=True)
class TrainConfig:
    """Loop, batch sizes, intervals and run options.

    Attributes:
        stage: "blur" (B alone on synthetic data: L_defocus + L_aux) or "joint" (B, D, S; C frozen).
        steps: total iterations (one D step + one B+S step each in the joint stage).
        batch_synthetic, batch_labelled, batch_unlabelled: mini-batch per domain (paper 3 + 3 + 3).
        log_every: scalars to metrics.jsonl / W&B; image_every: W&B image panel (0 = never);
        ckpt_every: checkpoint interval (a last checkpoint is always written at the end); the validation loss on
            held-out synthetic samples (data.val_count) is computed at every checkpoint.
        keep_last: how many of the most recent checkpoint folders are kept (the best one is kept as well), e.g. 8
            to average the last 8 with ``python -m dmenet.calibrate average --run RUN --last 8``.
        seed: seeds the model init, the data streams and the torch RNG (0 <= seed <= MAX_SEED).
        amp: autocast (fp16) + GradScaler on CUDA; ignored on CPU.
        cpu_bf16: autocast (bfloat16) of the forward passes on CPU; losses, BatchNorm statistics' accumulation and
            the optimiser stay fp32, no GradScaler (bfloat16 has fp32's range). Ignored on CUDA. Fast only on CPUs
            with bf16 instructions (AVX512-BF16, AMX). One step's gradients sit 25 % (norm) from float64's, and in
            rule experiments/RULE_BF16.md two 800-step blur-stage runs ended 0.4 % and 8 % worse than fp32 on
            validation renders (BENCHMARKS.md, "Training step: layout and precision").
        channels_last: B, D, S and the batches in channels-last memory layout (same values up to rounding).
        wandb: "offline" | "online" | "disabled".
        device: "auto" | "cpu" | "cuda".
        init_from: a model file (``.safetensors`` + JSON sidecar, e.g. a blur-stage ``model_last`` or a
            ``checkpoints/step_*/model``) whose B, D, S, C weights start a *new* run; its architecture must equal
            ``model`` (its recipe may differ; the run writes ``inference``'s). Optimiser, schedule and step start
            fresh; ignored on ``--resume`` (the run's own checkpoint wins).
    """

    stage: str = "joint"
    steps: int = 1000
    batch_synthetic: int = 3
    batch_labelled: int = 3
    batch_unlabelled: int = 3
    log_every: int = 10
    image_every: int = 200
    ckpt_every: int = 500
    keep_last: int = 1
    seed: int = 0
    amp: bool = True
    cpu_bf16: bool = False
    channels_last: bool = False
    wandb: str = "offline"
    wandb_project: str = "dmenet"
    device: str = "auto"
    init_from: str | None = None

    def __post_init__(self) -> None:
        check_choice(self, "train", "stage", STAGES)
        check_choice(self, "train", "wandb", WANDB_MODES)
        check_choice(self, "train", "device", DEVICES)
        require_positive(self, "train", ("steps", "batch_synthetic", "batch_labelled", "batch_unlabelled",
                                         "log_every", "ckpt_every", "keep_last"))
        require_non_negative(self, "train", ("image_every",))  # 0 = never
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"train.seed must be in [0, {MAX_SEED}], got {self.seed}")


@dataclass(frozen=True)
class InferenceConfig:
    """The inference recipe a run writes beside its model files (:class:`dmenet.models.recipe.Recipe`, before any
    post-training step); validation evaluates B as its σ path says.

    Attributes:
        sigma_bn: BatchNorm statistics of the σ path, "moving" (the paper) or "image" (per-image statistics).
        detection_bn: the same for the detection path (S's input); None = as ``sigma_bn``.
        flips: test-time symmetries (1, 2, 4 or 8) averaged at inference.
    """

    sigma_bn: str = "moving"
    detection_bn: str | None = None
    flips: int = 1

    def __post_init__(self) -> None:
        modes = tuple(m.value for m in BNMode)
        for name in ("sigma_bn", "detection_bn"):
            value = getattr(self, name)
            if value is not None and value not in modes:
                raise ConfigError(f"inference.{name} must be one of {modes}, got {value!r}")
        if self.flips not in FLIPS:
            raise ConfigError(f"inference.flips must be one of {FLIPS}, got {self.flips!r}")

    def recipe(self) -> Recipe:
        """The recipe of a freshly trained model (no fitted values)."""
        sigma_bn = BNMode(self.sigma_bn)
        detection_bn = sigma_bn if self.detection_bn is None else BNMode(self.detection_bn)
        return Recipe(sigma=SigmaPath(bn=sigma_bn), detection=DetectionPath(bn=detection_bn), flips=self.flips)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs; ``model`` is the architecture (dmenet.models.config.ModelConfig),
    ``inference`` the recipe its model files start with."""

    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.loss.scale_consistency > 0:
            if parse_choice(Stage, self.train.stage, "train.stage") is not Stage.JOINT:
                raise ConfigError("loss.scale_consistency needs train.stage=joint (it uses the unlabelled real batch)")
            if consistency_sizes(self.data.crop, self.loss.scale_consistency_min,
                                 self.loss.scale_consistency_max) == []:
                raise ConfigError(f"no multiple of 16 lies in [{self.loss.scale_consistency_min}, "
                                  f"{self.loss.scale_consistency_max}] × data.crop ({self.data.crop})")


def consistency_sizes(crop: int, scale_min: float, scale_max: float) -> list[int]:
    """Sides (multiples of 16, px) of the downscaled crop for L_scale: those in [scale_min·crop, scale_max·crop]."""
    return [n for n in range(16, crop, 16) if scale_min * crop - 1e-9 <= n <= scale_max * crop + 1e-9]


# ------------------------------------------------------------------------------------- legacy keys, added keys
def _legacy_bn_mode(value: Any) -> Any:
    """A former boolean ``model.*image_bn_stats`` as its ``inference.*_bn`` value: true → image, false → moving (None
    stays None: not set)."""
    if value is None:
        return None
    return BNMode.IMAGE.value if value in (True, "true", "True") else BNMode.MOVING.value


def _same(value: Any) -> Any:
    """A former ``model`` value that its ``inference`` key reads unchanged."""
    return value


LEGACY_MODEL_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "image_bn_stats": ("sigma_bn", _legacy_bn_mode), "detection_image_bn_stats": ("detection_bn", _legacy_bn_mode),
    "test_flips": ("flips", _same)}
"""Inference options that configs written before the recipe kept under ``model``: their ``inference`` keys and how
a former value reads there."""
_LEGACY_FITTED = {"dbd_logit_scale": 1.0, "dbd_logit_shift": 0.0, "sigma_curve": None}


ADDED_KEYS = {"train.init_from": None, "data.scale_min": 1.0, "data.scale_p": 1.0, "loss.scale_consistency": 0.0,
              "loss.scale_consistency_min": 0.5, "loss.scale_consistency_max": 0.75, "train.keep_last": 1,
              "data.reblur_p": 0.0, "data.reblur_max": 0.0, "inference.sigma_bn": "moving",
              "inference.detection_bn": None, "inference.flips": 1, "train.cpu_bf16": False,
              "train.channels_last": False, "model.tail_scale": 1}
"""Keys added to :class:`ExperimentConfig` since the first resumable ``dmenet.train`` runs (22 Nov 2026), each with
the value that does what a run recorded without it did: a run's config.yaml or checkpoint record that lacks one reads
as that value (``dmenet.train --resume``, ``calibrate average --run``; :func:`dmenet.training.resume.with_added_keys`;
before, such a key took today's default, equal to these only by chance): no start file (66d6ba0), no random
downscale (9e9cd41; ``scale_p`` 1: every sample when one is set, as before ffc2503), no L_scale (3eb8c65), the last
checkpoint kept beside the best (f581080), no re-blur (714f5ed), the paper's moving BN statistics and one flip
unless the run's former ``model.image_bn_stats`` / ``test_flips`` say otherwise (1343466; :data:`LEGACY_MODEL_KEYS`,
moved first), fp32 and NCHW (536c01a), a full-resolution tail (cd81418). A new config key goes here too."""


def _move_legacy_model_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A config dict (e.g. an older run's ``config.yaml``) with the former ``model`` inference options moved to
    ``inference``; fitted values at their old defaults are dropped, any other value is a ConfigError."""
    model = data.get("model")
    if not isinstance(model, dict) or not (set(model) & (set(LEGACY_MODEL_KEYS) | set(_LEGACY_FITTED))):
        return data
    data, model = dict(data), dict(model)
    inference = dict(data.get("inference") or {})
    for old, default in _LEGACY_FITTED.items():
        if old in model and model.pop(old) != default:
            raise ConfigError(f"model.{old} is a fitted inference value, not a training option: fit it with "
                              f"`python -m dmenet.calibrate` after training")
    for old, (new, convert) in LEGACY_MODEL_KEYS.items():
        if old in model:
            value = convert(model.pop(old))
            if new in inference and inference[new] != value:
                raise ConfigError(f"model.{old} and inference.{new} disagree")
            inference[new] = value
    data["model"], data["inference"] = model, inference
    return data


def config_from_dict(data: dict[str, Any], root: type | None = None, added: Mapping[str, Any] | None = None) -> Any:
    """Nested dict (YAML/JSON) → ExperimentConfig (or another config dataclass ``root``); missing keys take their
    defaults, unknown keys are errors. For ExperimentConfig the former ``model.image_bn_stats`` /
    ``detection_image_bn_stats`` / ``test_flips`` are read as their ``inference`` keys (older runs' ``config.yaml``).
    ``added`` (a run's own record only: a trainer's ``ADDED_KEYS``): a key ``data`` lacks reads as its value there,
    what the run did before the key existed, not the default (:func:`dmenet.training.resume.with_added_keys`)."""
    if root is None or root is ExperimentConfig:
        root, data = ExperimentConfig, _move_legacy_model_keys(data or {})
    return dataclass_from_dict(root, with_added_keys(data, added) if added else data or {}, "")


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], root: type | None = None) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to a nested dict in place (values parsed as YAML scalars) and return it.
    ``root``: the config dataclass the keys belong to (None = ExperimentConfig)."""
    for item in overrides:
        set_override(data, *split_override(item), root or ExperimentConfig)
    return data


def load_config(path: str | Path | None, overrides: Iterable[str] = (), root: type | None = None,
                added: Mapping[str, Any] | None = None) -> Any:
    """Read a YAML experiment file (None = defaults), apply ``a.b=value`` overrides, check and convert types.
    ``root``: the top-level config dataclass (None = ExperimentConfig; other tools pass their own). ``added``: for
    a run's own record, the keys it may predate and the values they then read as (:func:`config_from_dict`).

    Raises:
        ConfigError: missing/invalid file, unknown key, or a value of the wrong type (the message names the key).
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader) or {}  # noqa: S506 (safe)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a YAML text file (not UTF-8 text)") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        for name, tp in typing.get_type_hints(root or ExperimentConfig).items():  # before a --set replaces one
            if dataclasses.is_dataclass(tp) and data.get(name) is not None and not isinstance(data[name], dict):
                raise ConfigError(f"{path}: section {name!r} must be a mapping of its keys, got {data[name]!r}")
    apply_overrides(data, overrides, root)
    return config_from_dict(data, root, added)


def dump_config(cfg: ExperimentConfig) -> str:
    """YAML text of the resolved config (reloadable by :func:`load_config`)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
