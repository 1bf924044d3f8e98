"""Distill-DBDGAN checkpoints: one folder per step holding every network, optimiser and the step (safetensors +
JSON), the model file it exports, the schedule it records, and reading them back for a resume."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from dmenet.distill.model_io import save_distill_model
from dmenet.distill.run import Run
from dmenet.distill.step import VAL_KEYS
from dmenet.models.model_io import read_tensors
from dmenet.training.checkpoint import CheckpointError, flatten_optimizer, unflatten_optimizer
from syndof import cli
from syndof.io import InputError, read_json_object, staged_folder, write_json_atomic, write_text_atomic


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
"""meta.json key (and, for an extended run, model.json key) of :attr:`~dmenet.distill.run.Run.schedule`:
``[[0, S0], [r1, S1], …]``, the run's ``train.steps`` and the step from which each held."""


def checkpoint_schedule(folder: Path, meta: dict, started: int) -> tuple[tuple[int, int], ...]:
    """The :attr:`~dmenet.distill.run.Run.schedule` a checkpoint was trained under (its meta.json
    :data:`SCHEDULE_KEY`), checked: pairs of integers, the first (0, S0), the steps strictly increasing, each total
    above its start, the last start at most the checkpoint's step. A checkpoint from before 6 Dec 2026 has none:
    ``((0, started),)``, ``started`` being the run's ``train.steps`` (no resume could change it then).
    CheckpointError naming the file otherwise."""
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
    and steps remain to run (the lr decay is stretched from ``start`` to the new total:
    :func:`~dmenet.distill.run.lr_factor`)."""
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
