"""DMENet model files: ``NAME.safetensors`` (every tensor of the state dict, BN statistics and the frozen C included)
plus ``NAME.json``, the sidecar. No pickle anywhere.

Sidecar format 2: ``{"format_version": 2, "architecture": {...ModelConfig}, "recipe": {...Recipe}, "history": [...],
"init": {...}, **meta}``. The recipe (:mod:`dmenet.models.recipe`) is what inference does after the weights; the
history lists the post-training steps that wrote the file (tool, arguments, date, data), oldest first. Files the
trainer writes also carry the run's identity in ``meta`` (``run_id``, ``parent_run_id``, ``parent_sha256``:
:func:`dmenet.training.checkpoint.new_run`), which the calibrate steps copy and ``calibrate average`` compares. Format-1
sidecars (the six inference options inside ``model_config``) are read through
:func:`dmenet.models.recipe.recipe_from_format1`; :func:`read_sidecar` returns every file in the format-2 layout.

The pair is written as one (:func:`write_model_pair`, which every model-file writer uses): both files go to temporary
files beside their names first, then are renamed, weights first; when the sidecar's rename fails, the weights rename
is undone (an earlier weights file comes back, a new one is removed), so no new weights file is left without its
sidecar. Loading is strict: a missing, extra or mis-shaped tensor raises :class:`ModelFileError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dmenet.models.config import ModelConfig
from dmenet.models.dmenet import DMENet, build_dmenet
from dmenet.models.recipe import LEGACY_FIELDS, Recipe, history_from_format1, recipe_from_format1
from dmenet.models.weights import check_can_open, state_mismatch
from syndof.io import InputError, move_to_new_name, read_json_object, special_file_problem, update_digest

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
RESERVED_KEYS = ("format_version", "architecture", "recipe", "history", "init", "model_config",
                 "converted_from_format")


class ModelFileError(ValueError):
    """A model file pair that cannot be loaded; the message names the file and the problem."""


def read_tensors(path: str | Path, error: type[ValueError] = ModelFileError) -> dict[str, torch.Tensor]:
    """Every tensor of the ``.safetensors`` file ``path`` (on the CPU, each with the shape and dtype stored).

    Raises:
        ``error`` (default :class:`ModelFileError`), naming the file: missing, unreadable, empty, truncated or
        corrupt (safetensors' own ``SafetensorError`` never escapes).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    check_can_open(path, error)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise error(f"{path}: not a readable safetensors file (empty, truncated or corrupt: {exc})") from None


MODEL_SUFFIXES = (".safetensors", ".json")
"""The two files of a model: weights and JSON sidecar."""


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights .safetensors, sidecar .json) for ``path`` given with either suffix or none. Any other suffix is part
    of the name (``run.v2`` → ``run.v2.safetensors``): it never names another file (``dmenet_lite.v2`` is not
    ``dmenet_lite.safetensors``)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in MODEL_SUFFIXES else path
    return tuple(stem.with_name(stem.name + suffix) for suffix in MODEL_SUFFIXES)


MODEL_PAIR_TEXT = "a model is NAME.safetensors + NAME.json"


def model_pair_problem(path: str | Path, need_weights: bool = True) -> InputError | None:
    """Why the model file ``path`` (as :func:`model_paths` reads it) cannot be read as a pair, as an
    :class:`~syndof.io.InputError` (not raised) naming what was given, its ``str`` one line: ``path`` itself a folder,
    FIFO, socket, device, link loop or link to nothing; one of the pair's names such a thing (``m.json`` a folder:
    "the sidecar of model m"); neither file there (``path`` named as given, with its ``.safetensors`` when it has
    neither suffix); one of them missing (``need_weights`` False: the weights may be missing, for a reader of the
    sidecar alone). None when both are regular files (their contents are the loader's to check). Every model loader
    asks this first (DMENet, Galetto, Distill), and raises it as its own error type."""
    given = Path(path)
    weights_path, json_path = model_paths(given)
    if given.is_dir():
        return InputError(given, f"is a folder, not a model file; {MODEL_PAIR_TEXT}")
    problem = special_file_problem(given)
    if problem is not None:
        return InputError(given, f"{problem}; {MODEL_PAIR_TEXT}")
    missing = []
    for part, role in ((weights_path, "weights file"), (json_path, "sidecar")):
        problem = special_file_problem(part)
        if problem is not None:
            return InputError(part, f"the {role} of model {given} is {problem}; {MODEL_PAIR_TEXT}")
        if not part.is_file():
            missing.append(part)
    if len(missing) == 2:
        shown = given if given.suffix in MODEL_SUFFIXES else weights_path
        return InputError(shown, f"model file not found (neither {weights_path.name} nor its sidecar {json_path.name} "
                                 "exists)")
    if missing == [json_path]:
        return InputError(json_path, "model sidecar JSON not found (written by save_model beside the weights)")
    if missing == [weights_path] and need_weights:
        return InputError(weights_path, f"model weights not found (beside its sidecar {json_path.name})")
    return None


def model_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a model file pair's contents, weights then sidecar (:func:`model_paths`): the identity of a
    model, which its name is not (a retrained or recalibrated file keeps the name). A missing sidecar counts as
    empty."""
    import hashlib

    digest = hashlib.sha256()
    for part in model_paths(path):
        if part.is_file():
            update_digest(digest, part)
        digest.update(b"\0")
    return digest.hexdigest()


def save_model(path: str | Path, model: DMENet, meta: dict[str, Any] | None = None,
               history: list[dict[str, Any]] | None = None, replace: bool = True) -> Path:
    """Write ``model`` (all state-dict tensors, CPU, contiguous) and its JSON sidecar; returns the weights path.
    Without ``replace`` neither file is written over one that exists (:func:`write_model_pair`: FileExistsError).

    The sidecar holds ``model.config`` (architecture), ``model.recipe``, ``history`` (None = empty) and ``meta``
    (JSON-serialisable, e.g. {"iteration": …, "git_sha": …}), whose keys must not be any of :data:`RESERVED_KEYS`.
    """
    meta = dict(meta or {})
    clash = [k for k in RESERVED_KEYS if k in meta]
    if clash:
        raise ValueError(f"meta keys {clash} are reserved")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    header = {"format": "dmenet", "format_version": str(FORMAT_VERSION), "encoder": model.config.encoder}
    sidecar = {"format_version": FORMAT_VERSION, "architecture": model.config.to_dict(),
               "recipe": model.recipe.to_dict(), "history": list(history or []), "init": model.init_info, **meta}
    return write_model_pair(path, tensors, sidecar, header, replace)


def write_model_pair(path: str | Path, tensors: dict[str, torch.Tensor], sidecar: dict[str, Any],
                     header: dict[str, str] | None = None, replace: bool = True) -> Path:
    """Write ``tensors`` (CPU, contiguous; ``header``: the safetensors metadata) and the JSON object ``sidecar`` as
    the pair :func:`model_paths` names for ``path``, as one; returns the weights path.

    The sidecar is serialised first (as :func:`syndof.io.write_json_atomic` writes it), so one that is not
    JSON-serialisable raises before anything is written. Both files then go to temporaries beside their names and
    are renamed, weights first; when the sidecar's rename raises (an error, or Ctrl-C / SIGTERM as an exception),
    the earlier weights file is put back (a new one removed) and the error propagates: the pair on disk is the
    earlier one or the new one, never new weights with an old sidecar. (Only a process killed outright between the
    two renames, microseconds apart, could leave them mismatched; readers do not check.) Temporaries are removed on
    every exit.

    Without ``replace``, neither file is written over one that exists by the time of its rename (another process's
    pair, written after the caller checked the names were free): each is hard-linked to its name, which fails on an
    existing one (:func:`syndof.io.move_to_new_name`); FileExistsError naming the file that was there, which is
    kept, and when it is the sidecar, the weights file this call had just made is removed again.
    """
    weights_path, json_path = model_paths(path)
    text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    temporaries = []
    try:
        for target in (weights_path, json_path):
            fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f"{target.suffix}.tmp", dir=target.parent)
            os.close(fd)
            temporaries.append(Path(name))
        save_file(tensors, str(temporaries[0]), metadata=header)
        temporaries[1].write_text(text, encoding="utf-8")
        (_replace_pair if replace else _new_pair)((temporaries[0], weights_path), (temporaries[1], json_path))
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
    return weights_path


def _new_pair(first: tuple[Path, Path], second: tuple[Path, Path]) -> None:
    """Move ``first[0]`` → ``first[1]``, then ``second[0]`` → ``second[1]`` (temporaries in the targets' folders),
    neither over an existing name (FileExistsError naming it, that file kept): when the second move fails (that, or
    any error or interrupt), ``first[1]`` is removed again if it is still the file this call put there, and the error
    propagates."""
    (tmp, target), (tmp2, target2) = first, second
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary files
    os.chmod(tmp2, 0o644)
    # a link or a rename keeps the file: its inode is what this call puts at ``target``. The file is held open
    # until the end, so its inode number cannot be freed and given to another process's file put at ``target``
    # meanwhile (which the check below would then take for this call's own, and remove: a flaky test showed it)
    held = os.open(tmp, os.O_RDONLY)
    try:
        made = os.fstat(held)
        try:
            move_to_new_name(tmp, target)
            move_to_new_name(tmp2, target2)
        except BaseException:
            with contextlib.suppress(OSError):
                now = os.lstat(target)
                if (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino):  # never another process's file
                    target.unlink()
            raise
    finally:
        os.close(held)


def _replace_pair(first: tuple[Path, Path], second: tuple[Path, Path]) -> None:
    """Rename ``first[0]`` → ``first[1]``, then ``second[0]`` → ``second[1]`` (temporaries in the targets' folders),
    as one: when the second rename fails, ``first[1]`` is put back as it was (from a hard link, or a copy, taken
    before; removed when it did not exist) and the error propagates."""
    (tmp, target), (tmp2, target2) = first, second
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary files
    os.chmod(tmp2, 0o644)
    backup = None
    try:
        if os.path.lexists(target) and not target.is_dir():
            fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f"{target.suffix}.old", dir=target.parent)
            os.close(fd)
            backup = Path(name)
            try:
                backup.unlink()
                os.link(target, backup, follow_symlinks=False)
            except OSError:  # no hard links on this file system: a copy
                shutil.copy2(target, backup, follow_symlinks=False)
        os.replace(tmp, target)
        try:
            os.replace(tmp2, target2)
        except BaseException:
            if backup is not None:
                os.replace(backup, target)
                backup = None
            else:
                target.unlink(missing_ok=True)
            raise
    finally:
        if backup is not None:
            backup.unlink(missing_ok=True)


FOREIGN_FORMATS = {
    "galetto-classifier": "a galetto-classifier file (sidecar format 'galetto-classifier'), not a DMENet model (use "
                          "it with --method galetto)",
    "galetto-classifier-train": "a Galetto training checkpoint (sidecar format 'galetto-classifier-train'), not a "
                                "DMENet model (the run's model file is best.safetensors)",
}
"""Sidecar ``format`` values of the other trainers' files → what a refusal calls them (the Distill format, whose
line names the network kind, is :func:`foreign_sidecar`'s)."""
DISTILL_FORMAT = "distill-dbdgan"  # dmenet.distill.model_io.FORMAT (that module imports this one)


def foreign_sidecar(sidecar: dict[str, Any]) -> str | None:
    """What the sidecar ``sidecar`` (a JSON object) describes when it is another tool's file, not a DMENet model:
    a Galetto classifier or training checkpoint, a Distill model, a DMENet checkpoint's ``train.json``, or another
    file that states its ``format``; the words of a refusal (one phrase), or None for a DMENet sidecar (or an
    unknown file that says nothing of what it is)."""
    fmt = sidecar.get("format")
    if fmt in FOREIGN_FORMATS:
        return FOREIGN_FORMATS[fmt]
    if fmt == DISTILL_FORMAT:
        kind = sidecar.get("kind")
        use = f" (use it with --method distill_{kind})" if kind in ("student", "teacher") else ""
        return f"a Distill {kind} model file (sidecar format {fmt!r}, kind {kind!r}), not a DMENet model{use}"
    if "opt_g" in sidecar and "streams" in sidecar:
        return ("a DMENet training checkpoint's state (train.json: optimisers, data streams), not a model file (that "
                "checkpoint's model is model.safetensors in the same folder)")
    if isinstance(fmt, str) and "format_version" not in sidecar:
        return f"a {fmt!r} file (its sidecar's format), not a DMENet model"
    return None


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of a model file in the format-2 layout (a format-1 file is converted in memory and gets
    ``"converted_from_format": 1``; the file itself is not touched). Another tool's file (:func:`foreign_sidecar`) is
    refused with a line that says what it is; a path where neither file of the pair exists is named as given."""
    weights_path, json_path = model_paths(path)
    problem = model_pair_problem(path, need_weights=False)
    if problem is not None:
        raise ModelFileError(str(problem))
    try:
        sidecar = read_json_object(json_path)
    except InputError as exc:
        raise ModelFileError(str(exc)) from None
    foreign = foreign_sidecar(sidecar)
    if foreign is not None:
        raise ModelFileError(f"{weights_path}: {foreign}")
    version = sidecar.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelFileError(f"{json_path}: format_version {version!r}, expected one of {READABLE_VERSIONS}")
    if version != FORMAT_VERSION and not isinstance(sidecar.get("model_config"), dict):
        raise ModelFileError(f"{json_path}: 'model_config' must be a JSON object (the ModelConfig fields), got "
                             f"{type(sidecar.get('model_config')).__name__}")
    if not isinstance(sidecar.get("init") or {}, dict):
        raise ModelFileError(f"{json_path}: 'init' must be a JSON object or null")
    try:
        sidecar = sidecar if version == FORMAT_VERSION else _from_format1(sidecar)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{json_path}: format-1 sidecar cannot be read ({err})") from err
    for key in ("architecture", "recipe"):
        if not isinstance(sidecar.get(key), dict):
            raise ModelFileError(f"{json_path}: {key!r} must be a JSON object, got {type(sidecar.get(key)).__name__}")
    return sidecar


def _from_format1(sidecar: dict[str, Any]) -> dict[str, Any]:
    """Format-1 sidecar → format-2 layout: ``model_config`` splits into architecture and recipe."""
    config = dict(sidecar["model_config"])
    meta = {k: v for k, v in sidecar.items() if k not in RESERVED_KEYS}
    recipe = recipe_from_format1(config, meta)
    architecture = {k: v for k, v in config.items() if k not in LEGACY_FIELDS}
    return {"format_version": FORMAT_VERSION, "converted_from_format": 1, "architecture": architecture,
            "recipe": recipe.to_dict(), "history": history_from_format1(meta), "init": sidecar.get("init"), **meta}


def load_model_file(path: str | Path, device: str | torch.device = "cpu") -> tuple[DMENet, dict[str, Any]]:
    """Rebuild the model from the sidecar's config, load the weights strictly, move to ``device``, eval mode.

    The init file named in the config is not read (its weights are in the checkpoint); the input convention comes
    from the sidecar's ``init`` record; ``model.recipe`` is the sidecar's recipe. Returns (model, sidecar dict in the
    format-2 layout, :func:`read_sidecar`).
    """
    weights_path, _ = model_paths(path)
    sidecar = read_sidecar(path)
    problem = model_pair_problem(path)
    if problem is not None:
        raise ModelFileError(str(problem))
    try:
        cfg = ModelConfig.from_dict(dict(sidecar["architecture"]))
        recipe = Recipe.from_dict(sidecar["recipe"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{model_paths(path)[1]}: bad architecture or recipe ({err})") from err
    init = dict(sidecar.get("init") or {})
    convention = cfg.input_convention or init.get("input_convention")
    if convention is None:
        raise ModelFileError(f"{weights_path}: sidecar names no input convention")
    state = read_tensors(weights_path)  # a corrupt file fails before the model is built
    model = build_dmenet(dataclasses.replace(cfg, input_convention=convention), load_init=False)
    try:  # the σ curve against σ_max, a feature head against the decoder it will read
        recipe.check(cfg.sigma_max, model.blur.decoder.feature_channels)
    except ValueError as err:
        raise ModelFileError(f"{model_paths(path)[1]}: bad architecture or recipe ({err})") from err
    model.config = cfg  # as saved (input_convention may be None = "from the init file")
    model.init_info = init or model.init_info
    model.recipe = recipe
    problem = state_mismatch(model.state_dict(), state)
    if problem:
        raise ModelFileError(f"{weights_path}: state dict does not match the config — {problem}")
    model.load_state_dict(state, strict=True)
    model.to(device)
    model.eval()
    return model, sidecar


ARCHITECTURE_FIELDS = ("encoder", "width", "refine_blocks", "max_coc", "disc_width", "calib_width", "mobilenet_d0",
                       "tail_scale")
"""ModelConfig fields that shape the state dict or the meaning of the output (``init`` and ``input_convention`` do
not; the recipe is not part of the architecture)."""


def load_weights_from(model: DMENet, path: str | Path) -> dict[str, Any]:
    """Copy every tensor of the model file ``path`` into ``model`` (a new run starting from earlier weights).

    The file's architecture (:data:`ARCHITECTURE_FIELDS`) and input convention must equal ``model``'s; loading is
    strict. Returns the file's sidecar.

    Raises:
        ModelFileError: missing files, another architecture or input convention, or a state-dict mismatch.
    """
    sidecar = read_sidecar(path)
    weights_path, _ = model_paths(path)
    saved = {**ModelConfig().to_dict(), **sidecar["architecture"]}  # a key newer than the file has its default
    mine = model.config.to_dict()
    differ = {k: (saved.get(k), mine[k]) for k in ARCHITECTURE_FIELDS if saved.get(k) != mine[k]}
    if differ:
        raise ModelFileError(f"{weights_path}: architecture differs from the run's model config "
                             f"(file, run): {differ}")
    theirs = (sidecar.get("init") or {}).get("input_convention") or saved.get("input_convention")
    ours = model.init_info.get("input_convention")
    if theirs != ours:
        raise ModelFileError(f"{weights_path}: input convention {theirs!r} differs from the run's {ours!r}")
    source, _ = load_model_file(path)
    model.load_state_dict(source.state_dict(), strict=True)
    return sidecar
