"""Train the blur-level classifier (``python -m dmenet.galetto.train``), resumable exactly.

Each step draws ``batch`` (sharp position, σ ∈ 0…19, dihedral transform) triples afresh from ``train.npz``
(:mod:`dmenet.galetto.build_patches`), with a torch Generator whose state is checkpointed. Adam (the paper's lr 1e-3,
β (0.9, 0.999), ε 1e-8), optional cosine decay to ``lr_min`` over ``steps``. Every ``ckpt_every`` steps:
``RUN/last.safetensors`` + ``last.json`` (model, Adam moments, generator state; written atomically) and the
validation top-1 on a fixed-seed balanced sample of ``val.npz``; the best one is also saved as
``RUN/best.safetensors`` + ``best.json`` (model only, loadable by :func:`load_classifier`). Scalars go to
``RUN/metrics.jsonl`` and W&B (mode passed explicitly, offline by default).

A run has a folder of its own: without ``--resume``, ``--out`` must be missing or empty (a folder holding another
run is refused, naming ``--resume`` when it has a checkpoint to continue), and never the ``--patches`` folder or a
folder inside it. ``--resume`` compares the given config with the run's ``config.json`` before anything is written
and refuses any difference (naming the keys) except ``train.device``, ``train.threads``, ``train.wandb`` (where it
runs and logs, not what it trains) and ``train.steps`` (extending or shortening a run, never below the checkpoint's
step; only with a constant lr, ``train.lr_min: null``, since the cosine schedule spans ``train.steps``), and refuses
a ``--patches`` set other than the one the run trained on (``RUN/patches.json``: the size and SHA-256 of its
``train.npz`` and ``val.npz``; a moved copy of the same files is the same set). Metrics rows a killed run logged
past its last checkpoint are dropped on resume, so no step is logged twice. A resume refuses a run whose
``best.safetensors`` or ``best.json`` is missing or damaged (one line naming it: the recorded best would stand with
no model behind it); with neither file there, the best is chosen anew from the next validation (a ``note:``
line). A run holds a lock on ``--out`` from its first write to its end (:func:`syndof.io.folder_lock`): a second
run into the same folder meanwhile is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dmenet.config import DEVICES, MAX_SEED, WANDB_MODES, load_config, wants_cuda
from dmenet.configlib import (ConfigError, check_adam, check_choice, config_to_dict, differing_keys, flat_keys,
                              require_positive)
from dmenet.galetto import NUM_CLASSES, PATCH
from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig, imagenet_features_state
from dmenet.models.layers import training_layout
from dmenet.models.model_io import ModelFileError, model_pair_problem, model_paths, read_tensors, write_model_pair
from dmenet.training.checkpoint import CheckpointError, flatten_optimizer, unflatten_optimizer
from dmenet.training import stopped
from dmenet.training.resume import named_keys, with_added_keys
from dmenet.training.logging import truncate_metrics
from syndof import cli
from syndof.io import (InputError, file_sha256, folder_lock, from_uint8_tensor, read_json_object, write_json_atomic,
                       write_text_atomic)

FORMAT = "galetto-classifier"


@dataclass(frozen=True)
class TrainSettings:
    """Loop settings. steps: optimiser steps; batch: patches per step (paper 128); lr_min: cosine floor (None =
    constant lr, the paper); augment: random dihedral transform (rot90 × flip; blur labels are invariant);
    val_count: balanced fixed-seed validation sample (patches); threads: torch threads; init_from: a classifier
    file (:func:`save_classifier`, e.g. an earlier run's ``best``) whose weights and BN statistics start a new run
    (its architecture must equal ``model``; the optimiser and the sampler start fresh); imagenet: instead, a
    torchvision-layout MobileNetV2 file whose features start a new run (width 1.0, full depth; the stem summed over
    RGB, :func:`~dmenet.galetto.classifier.imagenet_features_state`); device: "cpu" (the default), "cuda" or "auto"
    (CUDA when visible): where the network runs; batches are drawn on the CPU either way, so a run draws the same
    patches on both (on a GPU they travel through pinned memory without a wait, :func:`to_device`); channels_last:
    the network and its batches in channels-last memory layout (default), else NCHW. The same function up to
    rounding, 1.6–1.7× faster per step on one thread of this CPU (2.3× on two). Its rounding is coarser (at width
    1.0 the gradients sit ~6 % from float64's, NCHW's 0.06 %: PyTorch's channels-last CPU BatchNorm statistics),
    yet three paired 2,000-step runs ended with the same validation top-1 (mean Δ −0.001;
    experiments/galetto_rule_g11.md, galetto_rule_g12.md)."""

    steps: int = 1000
    batch: int = 128
    lr: float = 1e-3
    lr_min: float | None = None
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    augment: bool = True
    log_every: int = 50
    ckpt_every: int = 500
    val_count: int = 4000
    seed: int = 0
    threads: int = 1
    wandb: str = "offline"
    wandb_project: str = "galetto"
    init_from: str | None = None
    imagenet: str | None = None
    device: str = "cpu"
    channels_last: bool = True

    def __post_init__(self) -> None:
        check_choice(self, "train", "wandb", WANDB_MODES)
        check_choice(self, "train", "device", DEVICES)
        if self.init_from and self.imagenet:
            raise ConfigError("train.init_from and train.imagenet both start a run's weights: set one of them")
        check_adam(self, "train")
        if self.lr_min is not None and not 0 <= self.lr_min <= self.lr:
            raise ConfigError(f"train.lr_min must be in [0, train.lr] or null, got {self.lr_min}")
        require_positive(self, "train", ("steps", "batch", "log_every", "ckpt_every", "val_count", "threads"))
        if not 0 <= self.seed <= MAX_SEED:  # torch seeds are unsigned 64-bit
            raise ConfigError(f"train.seed must be in [0, {MAX_SEED}], got {self.seed}")


@dataclass(frozen=True)
class GalettoConfig:
    """model: the architecture (:class:`ClassifierConfig`); train: the loop."""

    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    train: TrainSettings = field(default_factory=TrainSettings)


# --------------------------------------------------------------------------------------------------- model files
def classifier_files(path: str | Path) -> tuple[Path, Path]:
    """The ``.safetensors`` and ``.json`` of a classifier named by ``path`` (either file, or the name without them;
    :func:`dmenet.models.model_io.model_paths`)."""
    return model_paths(path)


def save_classifier(path: str | Path, model: BlurClassifier, info: dict | None = None) -> None:
    """``path.safetensors`` (weights + BN statistics) and ``path.json`` (architecture + info), written as one pair
    (:func:`dmenet.models.model_io.write_model_pair`: an earlier pair stays whole when the write fails)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_model_pair(path, tensors, {"format": FORMAT, "model": dataclasses.asdict(model.config), **(info or {})},
                     {"format": FORMAT})


def load_classifier(path: str | Path, device: str = "cpu") -> BlurClassifier:
    """Load :func:`save_classifier`'s files (strict: every tensor must match the architecture)."""
    weights, side = classifier_files(path)
    problem = model_pair_problem(path)  # a folder, a missing file of the pair: named as given
    if problem is not None:
        raise FileNotFoundError(str(problem))
    meta = read_json_object(side)  # InputError naming the file
    if meta.get("format") == FORMAT + "-train":  # RUN/last.*: what --resume reads, not what the methods load
        raise ModelFileError(f"{side}: a training checkpoint of dmenet.galetto.train (weights + optimiser state), "
                             f"not a {FORMAT} file; the run's model is {side.with_name('best.safetensors')}")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{side}: not a {FORMAT} file")
    try:
        model = BlurClassifier(ClassifierConfig(**meta["model"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{side}: bad classifier architecture ({exc})") from None
    try:
        model.load_state_dict(read_tensors(weights), strict=True)  # read_tensors names a corrupt file
    except RuntimeError as exc:
        raise ModelFileError(f"{weights}: does not fit the architecture in {side.name} ({str(exc)[:200]})") from None
    return model.to(device).eval()


# --------------------------------------------------------------------------------------------------------- data
def dihedral_maps(side: int) -> torch.Tensor:
    """(8, side²) int64: row c lists, for each output pixel (row-major), the input pixel that rot90^(c % 4) and then,
    when c >= 4, a horizontal flip put there (the transforms applied to an image of pixel indices)."""
    grid = torch.arange(side * side).view(1, 1, side, side)
    maps = []
    for c in range(8):
        y = torch.rot90(grid, c % 4, dims=(2, 3))
        maps.append((torch.flip(y, dims=(3,)) if c >= 4 else y).reshape(-1))
    return torch.stack(maps)


def dihedral(x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """Per-sample rot90^(code % 4), then a horizontal flip when code >= 4. x: (B, C, h, w) square, any dtype;
    code: (B,) int in 0…7. One gather of each sample's pixel permutation (:func:`dihedral_maps`): the values are
    moved, never computed, so the result is exact."""
    b, ch, h, w = x.shape
    if h != w:
        raise ValueError(f"dihedral needs square images, got {h}x{w}")
    index = dihedral_maps(h).to(x.device)[code.to(x.device)]            # (B, h·w)
    return x.reshape(b, ch, h * w).gather(2, index[:, None].expand(b, ch, h * w)).view(b, ch, h, w)


def draw_batch(patches: torch.Tensor, batch: int, gen: torch.Generator, augment: bool):
    """(x (B, 1, 32, 32) float [0, 1], label (B,) int64) drawn with ``gen`` from (N, 20, 32, 32) uint8. The
    transform moves the uint8 pixels before they become floats (a quarter of the bytes; the same values)."""
    idx = torch.randint(patches.shape[0], (batch,), generator=gen)
    label = torch.randint(NUM_CLASSES, (batch,), generator=gen)
    code = torch.randint(8, (batch,), generator=gen)
    x = patches[idx, label].unsqueeze(1)
    return from_uint8_tensor(dihedral(x, code) if augment else x), label


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``; to a GPU through pinned memory without waiting, so the CPU draws the next batch while the
    GPU runs this step (a plain copy from pageable memory waits for every queued kernel first). The same values."""
    if device.type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def balanced_sample(patches: np.ndarray, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed-seed sample of ``count`` (position, σ) pairs, count // 20 per class (at least 1): ``patches``
    (N, 20, 32, 32) uint8 levels → (x (20·per, 1, 32, 32) float32 in [0, 1], label (20·per,) int64 class = σ px,
    0…19, class-major); positions drawn with replacement only when per > N."""
    rng = np.random.default_rng(seed)
    per = max(count // NUM_CLASSES, 1)
    idx = np.concatenate([rng.choice(len(patches), per, replace=per > len(patches)) for _ in range(NUM_CLASSES)])
    label = np.repeat(np.arange(NUM_CLASSES), per)
    x = from_uint8_tensor(torch.from_numpy(patches[idx, label]).unsqueeze(1))
    return x, torch.from_numpy(label).long()


@torch.no_grad()
def predict_classes(model: BlurClassifier, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """(N, 20) softmax probabilities (CPU) of (N, 1, 32, 32) patches, in eval mode, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([F.softmax(model(x[i:i + batch].to(device)), 1).cpu() for i in range(0, len(x), batch)])


def accuracy(prob: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
    """top-1, within ±1 class, top-1 on classes 0–7 (fractions in [0, 1]) and the mean |class error| (px) of
    ``prob`` (N, 20) class probabilities (or any scores: only the argmax is used) against ``label`` (N,) int64
    classes 0…19 (class k = σ k px)."""
    pred = prob.argmax(1)
    err = (pred - label).abs()
    low = label <= 7
    return {"top1": float((err == 0).float().mean()), "within1": float((err <= 1).float().mean()),
            "top1_0_7": float((err[low] == 0).float().mean()) if low.any() else float("nan"),
            "mae_px": float(err.float().mean())}


# -------------------------------------------------------------------------------------------------------- loop
def lr_at(cfg: TrainSettings, step: int) -> float:
    """Learning rate at ``step``: constant ``cfg.lr``, or cosine from ``cfg.lr`` to ``cfg.lr_min`` over
    ``cfg.steps``."""
    if cfg.lr_min is None:
        return cfg.lr
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * min(step / cfg.steps, 1.0)))


def save_state(run: Path, step: int, model, opt, gen: torch.Generator, best: float | None) -> None:
    """``run/last.safetensors`` (model, Adam moments, generator) + ``last.json`` (step, best, optimiser groups), as
    one pair (:func:`dmenet.models.model_io.write_model_pair`): a resume never reads new tensors with an old step."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT + "-train", "step": step, "best": best, "opt": flatten_optimizer("opt", opt, tensors)}
    tensors["gen"] = gen.get_state()
    write_model_pair(run / "last", tensors, meta)


def last_checkpoint(run: Path) -> Path | None:
    """``run/last.safetensors``, the checkpoint ``--resume`` continues, when its pair (``last.json``) is there, else
    None (what :mod:`dmenet.training.stopped` names when a run is stopped)."""
    return run / "last.safetensors" if (run / "last.json").is_file() else None


def checked_step(meta: dict, path: Path, steps: object) -> int:
    """``meta["step"]`` of ``path`` (a ``last.json``): a whole number from 0 to the run's ``steps`` (a run never
    trains past them), else CheckpointError naming the file (a damaged checkpoint)."""
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 \
            or isinstance(steps, int) and not isinstance(steps, bool) and step > steps:
        raise CheckpointError(f"{path}: step {step!r} is not a step of this run (a whole number from 0 to its "
                              f"train.steps {steps}); a damaged checkpoint (nothing was changed)")
    return step


def load_state(run: Path, model, opt, gen: torch.Generator, steps: int | None = None) -> tuple[int, float | None]:
    """Restore :func:`save_state`'s checkpoint into ``model``, ``opt`` and ``gen``: (step, best). A damaged one
    (missing or bad key, tensors of another architecture, a step outside 0…``steps``) is a CheckpointError naming
    the file and what is wrong."""
    meta_path, tensor_path = run / "last.json", run / "last.safetensors"
    meta = read_json_object(meta_path)
    tensors = read_tensors(tensor_path, CheckpointError)
    for key in ("step", "best", "opt"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: no {key!r} key; a damaged checkpoint (nothing was changed)")
    step = checked_step(meta, meta_path, steps)
    best = meta["best"]
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float)) or not math.isfinite(best)):
        raise CheckpointError(f"{meta_path}: best {best!r} is not a validation top-1 or null (nothing was changed)")
    if "gen" not in tensors:
        raise CheckpointError(f"{tensor_path}: no 'gen' tensor (the batch sampler's state); a damaged checkpoint "
                              "(nothing was changed)")
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{tensor_path}: its model tensors do not fit the run's architecture "
                              f"({' '.join(str(exc).split())[:300]})") from None
    try:
        opt.load_state_dict(unflatten_optimizer("opt", meta["opt"], tensors))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{meta_path}: bad optimiser state 'opt' ({type(exc).__name__}: {exc})") from None
    for index, param in enumerate(p for group in opt.param_groups for p in group["params"]):
        held = opt.state.get(param, {})
        lost = [key for key in ("step", "exp_avg", "exp_avg_sq") if held and key not in held]
        if lost:
            raise CheckpointError(f"{tensor_path}: no opt.state.{index}.{lost[0]} (Adam state); a damaged checkpoint")
    try:
        gen.set_state(tensors["gen"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{tensor_path}: the 'gen' tensor is not a generator state ({exc})") from None
    return step, best


def resumed_best(run: Path, best: float | None, config: ClassifierConfig) -> float | None:
    """The best validation top-1 (0…1) a resume of ``run`` goes on from, given ``best``, the one its ``last.json``
    records: a new ``best.safetensors`` is written only when a later validation beats it, so it stands only while
    the run's best model is there. ``best`` when the pair ``best.safetensors`` + ``best.json`` loads as a classifier
    of ``config`` (or when ``best`` is None: no validation yet); None (the best chosen anew from the next validation,
    said in one ``note:`` line on stderr) when neither file is there; a CheckpointError naming the file otherwise
    (one missing, damaged, of another architecture): the run would end without a best model, or with that one,
    exit 0."""
    if best is None:
        return None
    weights, side = classifier_files(run / "best")
    lost = f"the run's best model (val top-1 {best:.4g}, recorded in {run / 'last.json'})"
    anew = (f"put back a good copy, or delete {weights.name} and {side.name} to choose the best anew from the next "
            "validation (nothing was changed)")
    there = [os.path.lexists(path) for path in (weights, side)]
    if not any(there):
        print(f"note: {run}: no {weights.name} / {side.name}: {lost} is not kept; the best is chosen anew from the "
              "next validation", file=sys.stderr, flush=True)
        return None
    if not all(there):
        gone = weights if not there[0] else side
        raise CheckpointError(f"{gone}: missing; {lost} would stand with no model behind it (a resume writes a new "
                              f"best only when a later validation beats it): {anew}")
    try:
        model = load_classifier(run / "best")
    except (OSError, ValueError) as exc:  # InputError, ModelFileError: the message names the file
        raise CheckpointError(f"{exc}; {lost} cannot be read: {anew}") from None
    if model.config != config:
        raise CheckpointError(f"{weights}: a classifier {model.config}, not this run's {config}; {anew}")
    return best


RUNTIME = ("device", "threads", "wandb")  # train.* keys a resume may change: where it runs and logs, not what it trains
ADDED_KEYS = {"train.init_from": None, "train.imagenet": None, "train.device": "cpu", "train.channels_last": False}
"""Keys added to the config since the first resumable runs (3 Dec 2026), each with the value that does what a run
recorded without it did (:func:`dmenet.training.resume.with_added_keys`): no start file (7d5cd26) nor ImageNet
features (49b578c), the CPU (744def3), the NCHW layout (a72cf13; the default is channels-last since 67d20bf, so a run
from before 4 Dec resumes with ``--set train.channels_last=false``). A new config key goes here too."""
PATCH_RECORD = "patches.json"  # the patch set a run trains on (patch_set_identity)
PATCH_FILES = ("train.npz", "val.npz")
RUN_FILES = ("last.json", "last.safetensors", "best.json", "best.safetensors", "config.json", "metrics.jsonl",
             PATCH_RECORD)


def check_run_folder(run: Path, patches_dir: Path, resume: bool) -> None:
    """Refuse (ConfigError / FileNotFoundError, one line, before anything is written) a run folder that is the patch
    set's folder or inside it, a path that is not a folder, and, without ``resume``, a non-empty folder (naming
    ``--resume`` when it holds a checkpoint); with ``resume``, a folder without ``last.json``."""
    if run.resolve() == patches_dir.resolve() or patches_dir.resolve() in run.resolve().parents:
        raise ConfigError(f"--out {run}: is the --patches folder {patches_dir} or inside it; a run writes into a "
                          "folder of its own (nothing was changed)")
    if run.is_symlink() and not run.is_dir() or run.exists() and not run.is_dir():
        raise ConfigError(f"--out {run}: exists and is not a folder (nothing was changed)")
    if resume:
        if not (run / "last.json").is_file():
            raise FileNotFoundError(f"{run}/last.json: nothing to resume")
        return
    if not run.is_dir() or not any(run.iterdir()):
        return
    held = [name for name in RUN_FILES if (run / name).exists()]
    if "last.json" in held:
        raise ConfigError(f"--out {run}: holds an earlier run ({', '.join(held)}); continue it with --resume, or "
                          "train into another --out folder (nothing was changed)")
    if held:
        raise ConfigError(f"--out {run}: holds an earlier run that saved no checkpoint ({', '.join(held)}; nothing "
                          "to --resume); delete it knowingly or train into another --out folder (nothing was changed)")
    raise ConfigError(f"--out {run}: exists and is not empty; a run writes into a folder of its own (choose another "
                      "--out; nothing was changed)")


def check_resume_config(cfg: GalettoConfig, run: Path) -> None:
    """Refuse (ConfigError naming the keys) a resume whose config differs from ``run/config.json`` in anything but
    the RUNTIME keys and ``train.steps`` (not below the checkpoint's step; only with a constant lr). A key
    ``config.json`` lacks reads as its :data:`ADDED_KEYS` value, and the refusal names that value."""
    config_file = run / "config.json"
    record = read_json_object(config_file)  # missing or bad: InputError naming it
    before = flat_keys(with_added_keys(record, ADDED_KEYS))  # a key newer than the run: what the run did
    now = flat_keys(json.loads(json.dumps(config_to_dict(cfg))))
    free = {f"train.{k}" for k in RUNTIME} | {"train.steps"}
    differ = named_keys(differing_keys(before, now, free), record, ADDED_KEYS)
    if before.get("train.steps") != now.get("train.steps") and cfg.train.lr_min is not None:
        differ.append("train.steps (the cosine lr schedule, train.lr_min set, spans train.steps)")
    if differ:
        raise ConfigError(f"{config_file}: the resumed run's config differs from this one in {', '.join(differ)}; "
                          "resume with the run's config, or train into another --out folder (nothing was changed)")
    done = checked_step(read_json_object(run / "last.json"), run / "last.json", before.get("train.steps"))
    if cfg.train.steps < done:
        raise ConfigError(f"train.steps {cfg.train.steps}: below the step {done} of the checkpoint in {run} "
                          "(nothing was changed)")


def patch_set_identity(patches_dir: Path) -> dict:
    """What a run trains on, for ``RUN/patches.json``: the patch folder's resolved path (for the reader) and the size
    and SHA-256 of its ``train.npz`` and ``val.npz`` (what a resume compares; ~1 GB/s, beside reading them)."""
    ident: dict = {"format": FORMAT + "-patches", "path": str(patches_dir.resolve())}
    for name in PATCH_FILES:
        ident[name] = {"size": (patches_dir / name).stat().st_size, "sha256": file_sha256(patches_dir / name)}
    return ident


def check_patch_set(run: Path, ident: dict) -> None:
    """Refuse (ConfigError naming what differs) a resume on other patch files than ``run/patches.json`` records. A
    run written before that record existed has none: it still resumes, unchecked (what it trained on is unknown)."""
    record = run / PATCH_RECORD
    if not record.exists() and not record.is_symlink():
        return  # a run from before patches.json: nothing to compare with
    before = read_json_object(record)  # unreadable: InputError naming it
    differ = [name for name in PATCH_FILES if before.get(name) != ident[name]]
    if differ:
        raise ConfigError(f"--patches {ident['path']}: its {' and '.join(differ)} differ from the patch set the run in "
                          f"{run} trained on ({before.get('path')}, recorded in {record.name}: size and SHA-256); "
                          "resume with that patch set, or train into another --out folder (nothing was changed)")


def read_patches(path: Path) -> np.ndarray:
    """The (N, 20, 32, 32) uint8 ``patches`` of a build_patches file; InputError naming it when unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            patches = data["patches"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"not a patch file of galetto-build-patches ({type(exc).__name__}: {exc})") from None
    if patches.ndim != 4 or patches.shape[1] != NUM_CLASSES or patches.shape[2:] != (PATCH, PATCH) \
            or len(patches) == 0 or patches.dtype != np.uint8:
        raise InputError(path, f"patches {patches.dtype} {tuple(patches.shape)}: expected (N >= 1, {NUM_CLASSES}, "
                         f"{PATCH}, {PATCH}) uint8")
    return patches


def train(cfg: GalettoConfig, patches_dir: str | Path, run: str | Path, resume: bool = False) -> dict[str, float]:
    """Run (or continue) training; returns the last validation figures."""
    t = cfg.train
    torch.set_num_threads(t.threads)
    run, patches_dir = Path(run), Path(patches_dir)
    check_run_folder(run, patches_dir, resume)
    if resume:
        check_resume_config(cfg, run)
    # the device and the starting weights are checked before anything is written: a refusal leaves no run folder
    device = torch.device("cuda" if wants_cuda(t.device) else "cpu")
    torch.manual_seed(t.seed)
    model = BlurClassifier(cfg.model)
    if t.init_from and not resume:
        start = load_classifier(t.init_from)
        if start.config != cfg.model:
            raise ConfigError(f"train.init_from {t.init_from}: its architecture {start.config} differs from model "
                              f"{cfg.model}")
        model.load_state_dict(start.state_dict(), strict=True)
    if t.imagenet and not resume:
        model.features.load_state_dict(imagenet_features_state(model, t.imagenet), strict=True)
    layout = training_layout(t.channels_last)
    model.to(device, memory_format=layout)
    train_p = torch.from_numpy(read_patches(patches_dir / "train.npz"))
    val_x, val_y = balanced_sample(read_patches(patches_dir / "val.npz"), t.val_count, t.seed + 1)
    ident = patch_set_identity(patches_dir)
    if resume:
        check_patch_set(run, ident)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
    gen = torch.Generator().manual_seed(t.seed)
    # held from the first write to the end: a second run into --out meanwhile is refused (InputError naming --out)
    # instead of mixing its metrics and checkpoints with this one's
    with folder_lock(run, "--out"):
        # checked again under the lock, before any write: another run may have written here since the checks above
        check_run_folder(run, patches_dir, resume)
        step, best = 0, None
        if resume:
            check_resume_config(cfg, run)
            check_patch_set(run, ident)
            step, best = load_state(run, model, opt, gen, t.steps)  # a damaged checkpoint: refused, nothing written
            best = resumed_best(run, best, cfg.model)  # best.* missing or damaged: refused, nothing written
            truncate_metrics(run / "metrics.jsonl", step)  # rows a killed run logged past its last checkpoint
        from dmenet.training.logging import RunLogger

        # W&B starts before the first file of a new run is written: a failed start leaves the folder as it was
        logger = RunLogger(run, mode=t.wandb, project=t.wandb_project, config=config_to_dict(cfg), resume=resume)
        try:
            if not resume:
                write_json_atomic(run / PATCH_RECORD, ident)
            write_text_atomic(run / "config.json", json.dumps(config_to_dict(cfg), indent=2))
        except BaseException:
            logger.close()
            raise
        return _train_loop(cfg, run, model, opt, gen, train_p, val_x, val_y, device, layout, step, best, logger)


def _train_loop(cfg: GalettoConfig, run: Path, model, opt, gen, train_p, val_x, val_y, device, layout, step: int,
                best: float | None, logger) -> dict[str, float]:
    """The training loop; closes ``logger`` (a :class:`dmenet.training.logging.RunLogger`) at its end."""
    t = cfg.train
    metrics: dict[str, float] = {}
    running, tic = [], time.time()
    try:
        while step < t.steps:
            model.train()
            for group in opt.param_groups:
                group["lr"] = lr_at(t, step)
            x, y = (to_device(v, device) for v in draw_batch(train_p, t.batch, gen, t.augment))
            x = x.contiguous(memory_format=layout)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            # kept on the device: reading them every step would wait for the GPU each step
            running.append(torch.stack([loss.detach(), (logits.argmax(1) == y).float().mean()]))
            if step % t.log_every == 0:
                mean_loss, mean_top1 = torch.stack(running).double().mean(0).tolist()
                rate = len(running) * t.batch / max(time.time() - tic, 1e-9)
                logger.log_scalars(step, {"loss": mean_loss, "train_top1": mean_top1,
                                          "lr": lr_at(t, step), "patches_per_s": rate})
                running, tic = [], time.time()
            if step % t.ckpt_every == 0 or step == t.steps:
                metrics = accuracy(predict_classes(model, val_x), val_y)
                logger.log_scalars(step, {f"val_{k}": v for k, v in metrics.items()})
                if best is None or metrics["top1"] > best:
                    best = metrics["top1"]
                    save_classifier(run / "best", model, {"step": step, "val": metrics})
                save_state(run, step, model, opt, gen, best)
                print(f"step {step}: val {json.dumps(metrics)}", flush=True)
    finally:
        logger.close()
    return metrics


EXAMPLE = ("galetto-train --config experiments/galetto_tiny.yaml --patches runs/galetto_patches_example "
           "--out runs/galetto_train_example")


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    ap = cli.parser("dmenet.galetto.train", __doc__, EXAMPLE)
    cli.add_config(ap, help="YAML with model: and train: sections")
    cli.add_set(ap, help="config overrides, e.g. --set train.steps=10 train.lr=1e-3")
    ap.add_argument("--patches", required=True, help="folder of build_patches (train.npz, val.npz)")
    ap.add_argument("--out", required=True, help="run folder; the model file is RUN/best.safetensors (best "
                    "validation top-1), RUN/last.* the checkpoint --resume continues")
    ap.add_argument("--resume", action="store_true")
    cli.add_threads(ap)
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.overrides, root=GalettoConfig)  # ConfigError (a ValueError) → exit 2
    if args.threads:  # --threads is train.threads (a runtime key a resume may change): train() applies the config's
        # value. Set after the config's own values are checked: a bad train.threads in --set is refused, not hidden
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=args.threads))
    for name in ("train.npz", "val.npz"):
        if not (Path(args.patches) / name).is_file():
            return cli.fail(f"{Path(args.patches) / name}: not found (run galetto-build-patches)")
    with stopped.say_how_to_resume("dmenet.galetto.train", argv, args.out, args.resume, last_checkpoint):
        train(cfg, args.patches, args.out, args.resume)  # a refused --out / --resume: ConfigError → exit 2
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
