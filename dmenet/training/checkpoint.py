"""Training checkpoints: safetensors + JSON only (no pickle), written atomically, resumable exactly.

Layout of ``RUN/checkpoints/``::

    step_00000100/model.safetensors + model.json   the whole DMENet (model_io.save_model; B, D, C, S + BN stats)
    step_00000100/train.safetensors                Adam moments of both optimisers, RNG and data-stream tensors
    step_00000100/train.json                       step, epoch, optimiser param groups, AMP scalers, python/numpy
                                                   RNG scalars, data-stream positions, config, init, git hash,
                                                   the run's identity (run_id, parent_run_id, parent_sha256)
    last.json, best.json                           pointers {"dir", "step", "metric"} (written atomically)

A checkpoint folder is written under a temporary name and renamed into place, then the pointers are updated;
other folders are deleted (retention: the ``train.keep_last`` most recent ones + best). ``best`` follows the
validation loss on held-out synthetic samples, or the mean training ``loss_main`` since the previous checkpoint when
there is none.

Run identity (:func:`new_run`): a fresh run draws a ``run_id`` (16 hex digits from :mod:`secrets`, never from the
torch / NumPy / Python generators whose streams a resume replays); every checkpoint's ``train.json`` and model
sidecar and ``model_last``'s sidecar record it, and ``--resume`` reads it back, so every file of one training
trajectory carries one id (``calibrate average`` averages files of one run only). A run started from another model
file (``--init-from``) is a new run with a new id that also records the file's run (``parent_run_id``, None when
that file has none) and its contents (``parent_sha256``, :func:`dmenet.models.model_io.model_digest`); its model's
``init`` record names the file (``started_from``), which ``--resume`` keeps too (:func:`resumed_init`).
"""

from __future__ import annotations

import math
import random
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from dmenet.models import model_io
from syndof.io import InputError, atomic_path, read_json_object, write_json_atomic

FORMAT_VERSION = 1
TMP_SUFFIX = ".tmp"  # ``checkpoints/.step_XXXXXXXX.tmp/``: a checkpoint being written (renamed when complete)
REPO = Path(__file__).resolve().parents[2]


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file."""


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object file of the run folder; unreadable or malformed → CheckpointError naming it."""
    try:
        return read_json_object(path)
    except InputError as exc:
        raise CheckpointError(str(exc)) from None


def git_info() -> dict[str, Any]:
    """{"sha": HEAD or None, "dirty": bool or None} of the repository holding this package."""
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip())
        return {"sha": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


# ---------------------------------------------------------------------------------------------------- run identity
RUN_ID_SINCE = "6 Dec 2026"
"""When the trainer began to record ``run_id``: a file without one was written before (or by another tool)."""
RUN_KEYS = ("run_id", "parent_run_id", "parent_sha256")
"""The run-identity fields of a checkpoint's ``train.json`` and of every model sidecar the trainer writes."""


def new_run_id() -> str:
    """A fresh run's id: 16 hex digits from the OS's random source (:mod:`secrets`), which draws nothing from the
    torch, NumPy or Python generators (the run's random streams stay what its seed makes them)."""
    return secrets.token_hex(8)


def new_run(parent: str | Path | None = None) -> dict[str, Any]:
    """The identity of a run that starts now (:data:`RUN_KEYS`): a new ``run_id``; for a run started from the model
    file ``parent``, that file's ``run_id`` (None when it records none) and SHA-256 of its pair; None otherwise."""
    run: dict[str, Any] = {"run_id": new_run_id(), "parent_run_id": None, "parent_sha256": None}
    if parent is not None:
        sidecar = model_io.read_sidecar(parent)
        parent_id = sidecar.get("run_id")
        run.update(parent_run_id=parent_id if isinstance(parent_id, str) else None,
                   parent_sha256=model_io.model_digest(parent))
    return run


START_KEYS = ("started_from", "started_from_meta")
"""The keys a run started from another model file (``--init-from``) adds to its model's ``init`` record: the file
(as given) and that file's own sidecar fields."""


def resumed_init(meta: dict[str, Any], built: dict[str, Any]) -> dict[str, Any]:
    """The model ``init`` record a ``--resume`` continues with: ``built`` (the record of the model as the run's config
    builds it, which knows nothing of a start file) with the :data:`START_KEYS` of the checkpoint's ``train.json``
    ``meta``, so a run started ``--init-from`` a file still says so in every checkpoint and model file it writes after
    a resume (they were dropped, and a resumed fine-tune's ``model_last`` read as a run from scratch)."""
    saved = meta.get("init")
    saved = saved if isinstance(saved, dict) else {}
    return {**built, **{key: saved[key] for key in START_KEYS if key in saved}}


def resumed_run(meta: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The identity a ``--resume`` continues with, from its checkpoint's ``train.json`` ``meta``: the one it
    records, and False; a checkpoint from before run ids (no ``run_id``) gets a new one (the run's files before it
    record none, so they can never be mistaken for another run's), and True."""
    run_id = meta.get("run_id")
    if isinstance(run_id, str) and run_id:
        return {k: meta.get(k) for k in RUN_KEYS}, False
    return new_run(), True


# ------------------------------------------------------------------------------------------------ optimiser state
def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``opt.state_dict()`` split for a safetensors file and its JSON sidecar; :func:`unflatten_optimizer` inverts it.

    Every tensor of the per-parameter state goes into ``tensors`` (a copy on the CPU, contiguous) under
    ``"{prefix}.state.{index}.{key}"``, ``index`` being the parameter's position in the optimiser's param groups and
    ``key`` the state entry (Adam: ``step``, ``exp_avg``, ``exp_avg_sq``), e.g. ``opt_g.state.3.exp_avg``. Returns the
    JSON part: ``{"param_groups": state_dict's param groups as they are (lr, betas, …, "params": indices),
    "scalars": {"{index}.{key}": value}}`` (per-parameter state entries that are not tensors). No other key of
    ``tensors`` may start with ``"{prefix}.state."``.
    """
    state = opt.state_dict()
    scalars: dict[str, Any] = {}
    for idx, pstate in state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars[f"{idx}.{key}"] = value
    return {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(prefix: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The ``state_dict`` for ``Optimizer.load_state_dict`` from :func:`flatten_optimizer`'s JSON part ``meta`` and the
    ``"{prefix}.state.*"`` entries of ``tensors`` (other entries are ignored)."""
    state: dict[int, dict[str, Any]] = {}
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


# ------------------------------------------------------------------------------------------------------ RNG state
def _rng_state(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    tensors["rng.torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.torch_cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    return {"numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": version, "state": list(internal), "gauss_next": gauss_next}}


def _set_rng_state(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch_cpu"].to(torch.uint8))
    if "rng.torch_cuda" in tensors and torch.cuda.is_available():
        states = list(tensors["rng.torch_cuda"].to(torch.uint8))
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    n = meta["numpy"]
    np.random.set_state((n["kind"], tensors["rng.numpy_keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = meta["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ----------------------------------------------------------------------------------------------------- save / load
def folder_name(step: int) -> str:
    """The name of the checkpoint folder of ``step`` (≥ 0): ``step_`` and the step in at least 8 digits
    (``step_00000300``), so that the names sort as the steps do."""
    return f"step_{step:08d}"


def save_checkpoint(run_dir: Path, trainer, streams: dict[str, Any], config: dict[str, Any],
                    extra: dict[str, Any] | None = None, run: dict[str, Any] | None = None) -> Path:
    """Write ``RUN/checkpoints/step_XXXXXXXX/`` for the trainer's current step; returns the folder.

    Args:
        trainer: :class:`dmenet.training.engine.Trainer` (model, optimisers, scalers, step).
        streams: name → DomainStream, or name → (tensors, scalars) already gathered (e.g. from every rank).
        config: resolved config as a dict.
        extra: JSON-serialisable fields stored in train.json (e.g. best metric, running loss).
        run: the run's identity (:func:`new_run`, :func:`resumed_run`), stored in train.json and the model sidecar;
            None = none recorded.
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = folder_name(trainer.step)
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}{TMP_SUFFIX}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:  # any exit before the rename (an error, a full disk, Ctrl-C, SIGTERM → SystemExit) removes the partial one
        _write_checkpoint(tmp, trainer, streams, config, extra, run or {})
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_checkpoint(tmp: Path, trainer, streams: dict[str, Any], config: dict[str, Any],
                      extra: dict[str, Any] | None, run: dict[str, Any]) -> None:
    """The files of :func:`save_checkpoint` into the temporary folder ``tmp``."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "step": trainer.step, "epoch": trainer.epoch,
                            "stage": trainer.cfg.train.stage, "config": config, "init": trainer.model.init_info,
                            "git": git_info(), "extra": extra or {}, **run}
    meta["opt_g"] = flatten_optimizer("opt_g", trainer.opt_g, tensors)
    meta["opt_d"] = flatten_optimizer("opt_d", trainer.opt_d, tensors) if trainer.opt_d is not None else None
    meta["scaler_g"] = trainer.scaler_g.state_dict()
    meta["scaler_d"] = trainer.scaler_d.state_dict()
    meta["rng"] = _rng_state(tensors)
    meta["streams"] = {}
    for sname, stream in streams.items():
        s_tensors, s_scalars = stream if isinstance(stream, tuple) else stream.state_dict()
        for key, value in s_tensors.items():
            tensors[f"stream.{sname}.{key}"] = value.detach().cpu().contiguous().clone()
        meta["streams"][sname] = s_scalars

    model_io.save_model(tmp / "model", trainer.model, {"step": trainer.step, "git_sha": meta["git"]["sha"], **run})
    with atomic_path(tmp / "train.safetensors") as path:
        save_file(tensors, str(path), metadata={"format": "dmenet-train", "format_version": str(FORMAT_VERSION)})
    write_json_atomic(tmp / "train.json", meta)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete ``checkpoints/.step_*.tmp/`` folders a killed run left half-written (never a checkpoint: one is only
    renamed into place once complete); returns those removed."""
    root = Path(run_dir) / "checkpoints"
    stale = sorted(p for p in root.glob(f".step_*{TMP_SUFFIX}") if p.is_dir() and not p.is_symlink()) \
        if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path)
    return stale


def update_pointers(run_dir: Path, folder: Path, step: int, metric: float | None, keep_last: int = 1) -> bool:
    """Point ``last.json`` at ``folder``; also ``best.json`` when ``metric`` improves (on a NaN best any number does).
    Deletes the checkpoint folders that are neither the best nor among the ``keep_last`` most recent ones (by step,
    ``folder`` included). Returns True when ``folder`` became the best."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    root = Path(run_dir) / "checkpoints"
    entry = {"dir": folder.name, "step": step, "metric": metric}
    best_path = root / "best.json"
    best = best_pointer(run_dir)
    improved = metric is not None and (best is None or best.get("metric") is None or metric <= best["metric"]
                                       or math.isnan(best["metric"]))  # a diverged validation's NaN: a number beats it
    write_json_atomic(root / "last.json", entry)
    if improved:
        write_json_atomic(best_path, entry)
        best = entry
    folders = sorted((p for p in root.glob("step_*") if p.is_dir() and p.name <= folder.name), reverse=True)
    keep = {best["dir"] if best else None, *(p.name for p in folders[:keep_last])}
    for path in root.glob("step_*"):
        if path.is_dir() and path.name not in keep:
            shutil.rmtree(path)
    return improved


def recent_models(run_dir: Path, count: int) -> list[Path]:
    """Model files (``step_*/model.safetensors``) of the ``count`` most recent checkpoints of a run, oldest first.

    Only the run's retention window counts (``train.keep_last`` in ``RUN/config.yaml``): a best checkpoint kept from
    before that window would not be one of the consecutive most recent ones.

    Raises:
        CheckpointError: no readable ``RUN/config.yaml``, ``count`` above the run's ``train.keep_last``, or fewer
            checkpoints than ``count`` on disk.
    """
    from dmenet.config import ADDED_KEYS, load_config
    from dmenet.configlib import ConfigError

    try:
        keep_last = load_config(Path(run_dir) / "config.yaml", added=ADDED_KEYS).train.keep_last
    except ConfigError as exc:
        raise CheckpointError(f"{run_dir}: not a training run ({exc})") from exc
    root = Path(run_dir) / "checkpoints"
    if not 1 <= count <= keep_last:
        raise CheckpointError(f"{root}: {count} checkpoints asked for, the run keeps its last {keep_last} "
                              "(train.keep_last)")
    models = sorted(root.glob("step_*/model.safetensors"))
    if len(models) < count:
        raise CheckpointError(f"{root}: {len(models)} checkpoints, {count} asked for")
    return models[-count:]


def read_pointer(pointer: Path) -> dict[str, Any]:
    """A ``last.json`` / ``best.json`` of :func:`update_pointers`, checked: ``dir`` names a checkpoint folder beside
    it (never followed out of the run, ``../other_run/…``, or to an absolute path) and ``metric`` is a number or
    null (the loss ``best`` follows; NaN and ±inf as :func:`json.dumps` writes a diverged validation's). CheckpointError
    naming the file otherwise."""
    entry = _read_json_object(pointer)
    name, metric = entry.get("dir"), entry.get("metric")
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise CheckpointError(f"{pointer}: 'dir' must name a checkpoint folder beside it, got {name!r}")
    if metric is not None and (isinstance(metric, bool) or not isinstance(metric, (int, float))):
        raise CheckpointError(f"{pointer}: 'metric' must be a number or null, got {metric!r}")
    return entry


def best_pointer(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``checkpoints/best.json`` (:func:`read_pointer`), or None when it has none yet."""
    pointer = Path(run_dir) / "checkpoints" / "best.json"
    return read_pointer(pointer) if pointer.exists() or pointer.is_symlink() else None


def resolve(run_dir: Path, which: str = "last") -> Path:
    """Folder of the ``last`` or ``best`` checkpoint of a run."""
    pointer = Path(run_dir) / "checkpoints" / f"{which}.json"
    if not pointer.is_file():
        raise CheckpointError(f"{pointer}: no checkpoint to resume from (run without --resume to start)")
    folder = pointer.parent / read_pointer(pointer)["dir"]
    if not folder.is_dir():
        raise CheckpointError(f"{pointer}: points at missing folder {folder}")
    return folder


def read_meta(folder: Path) -> dict[str, Any]:
    """The run's ``train.json`` under ``folder``; CheckpointError when missing or of another format version."""
    meta_path = Path(folder) / "train.json"
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: missing")
    meta = _read_json_object(meta_path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: format_version {meta.get('format_version')}, expected {FORMAT_VERSION}")
    return meta


def load_checkpoint(folder: Path, trainer, streams: dict[str, Any], rank: int = 0) -> dict[str, Any]:
    """Restore model (strict), optimisers, scalers, RNG and data streams into live objects; returns train.json.

    ``streams`` maps names to DomainStreams; a stream saved per rank as ``{name}@{rank}`` is preferred.
    """
    folder = Path(folder)
    meta = read_meta(folder)
    missing = [k for k in ("step", "opt_g", "opt_d", "scaler_g", "scaler_d", "streams", "rng") if k not in meta]
    if missing:
        raise CheckpointError(f"{folder / 'train.json'}: missing {missing}")
    weights = model_io.read_tensors(folder / "model.safetensors", CheckpointError)
    expected = trainer.model.state_dict()
    wrong = sorted(set(expected) ^ set(weights)) or [k for k in expected
                                                    if tuple(expected[k].shape) != tuple(weights[k].shape)]
    if wrong:
        raise CheckpointError(f"{folder / 'model.safetensors'}: does not fit the run's model config "
                              f"(missing, unexpected or mis-shaped tensors {wrong[:8]})")
    trainer.model.load_state_dict({k: v.to(trainer.device) for k, v in weights.items()}, strict=True)
    trainer.snapshot_perceptual()
    tensors = model_io.read_tensors(folder / "train.safetensors", CheckpointError)
    try:
        _restore_training_state(folder, meta, tensors, trainer, streams, rank)
    except (KeyError, TypeError, RuntimeError) as exc:  # a hand-edited or foreign train.json / train.safetensors
        raise CheckpointError(f"{folder}: train.json / train.safetensors do not fit this run "
                              f"({exc.__class__.__name__}: {exc})") from None
    trainer.step = int(meta["step"])
    return meta


def _restore_training_state(folder: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor], trainer,
                            streams: dict[str, Any], rank: int) -> None:
    """Optimisers, scalers, data streams and RNG of :func:`load_checkpoint`."""
    trainer.opt_g.load_state_dict(unflatten_optimizer("opt_g", meta["opt_g"], tensors))
    if trainer.opt_d is not None:
        if meta["opt_d"] is None:
            raise CheckpointError(f"{folder}: saved by the blur stage (no D optimiser); start the joint stage from "
                                  f"its model file instead of resuming")
        trainer.opt_d.load_state_dict(unflatten_optimizer("opt_d", meta["opt_d"], tensors))
    if meta["scaler_g"]:
        trainer.scaler_g.load_state_dict(meta["scaler_g"])
    if meta["scaler_d"]:
        trainer.scaler_d.load_state_dict(meta["scaler_d"])
    for name, stream in streams.items():
        key = f"{name}@{rank}" if f"{name}@{rank}" in meta["streams"] else name
        if key not in meta["streams"]:
            raise CheckpointError(f"{folder}: no saved state for data stream {name!r}")
        prefix = f"stream.{key}."
        s_tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        stream.load_state_dict(s_tensors, meta["streams"][key])
    _set_rng_state(meta["rng"], tensors)
