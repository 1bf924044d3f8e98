"""Distill model files: ``NAME.safetensors`` (state dict) + ``NAME.json`` (kind, architecture config, provenance).

Loading rebuilds the network from the sidecar and loads strictly; fp16 weights are widened to fp32.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch

from dmenet.config import config_from_dict
from dmenet.configlib import ConfigError
from dmenet.models.model_io import (DISTILL_FORMAT, ModelFileError, model_pair_problem, model_paths, read_tensors,
                                   write_model_pair)
from dmenet.distill.models.teacher import Teacher, TeacherConfig
from dmenet.distill.models.unet import EffUNet, StudentConfig
from syndof.choices import Choice, choices, parse_choice
from syndof.io import InputError, read_json_object

FORMAT = DISTILL_FORMAT  # one spelling, shared with the DMENet reader's refusal of a Distill file


class ModelKind(Choice):
    """The network a distill model file holds (its sidecar's ``kind``): STUDENT = the EfficientNet U-Net
    (:class:`EffUNet`), TEACHER = the teacher (:class:`Teacher`)."""

    STUDENT = "student"
    TEACHER = "teacher"


KINDS = {ModelKind.STUDENT: (EffUNet, StudentConfig), ModelKind.TEACHER: (Teacher, TeacherConfig)}


def build(kind: ModelKind | str, config) -> torch.nn.Module:
    """An untrained network of ``kind`` (ValueError otherwise) built from ``config``."""
    return KINDS[parse_choice(ModelKind, kind, "kind")][0](config)


def save_distill_model(path: str | Path, kind: ModelKind | str, model: torch.nn.Module,
                       meta: dict[str, Any] | None = None, half: bool = False, replace: bool = True) -> Path:
    """Write weights (fp16 when ``half``) and sidecar as one pair (:func:`dmenet.models.model_io.write_model_pair`:
    an earlier pair stays whole when the write fails; without ``replace`` neither file is written over one that
    exists, FileExistsError); returns the weights path."""
    kind = parse_choice(ModelKind, kind, "kind").value
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    info = {"format": FORMAT, "kind": kind, "config": dataclasses.asdict(model.config), **(meta or {})}
    return write_model_pair(path, tensors, info, {"format": FORMAT, "kind": kind}, replace=replace)


def calibration_problem(info: dict[str, Any]) -> str | None:
    """Why a sidecar's output calibration σ(logit_scale·(z − logit_shift)) (:mod:`dmenet.distill.calibrate`; absent:
    1 and 0) cannot be used, or None: ``logit_scale`` must be a finite number > 0 (a negative one turned every map
    upside down, NaN made it NaN, text failed at each image), ``logit_shift`` a finite number."""
    for key, positive in (("logit_scale", True), ("logit_shift", False)):
        value = info.get(key, 1.0)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or (positive and value <= 0):
            return (f"{key} {value!r} is not a finite number{' > 0' if positive else ''} (a calibration "
                    "distill.calibrate writes; refit it from the uncalibrated model)")
    return None


def load_distill_model(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model in eval mode, sidecar). Raises ModelFileError naming the file."""
    weights, sidecar = model_paths(path)
    problem = model_pair_problem(path)  # a folder, a missing file of the pair: named as given
    if problem is not None:
        raise ModelFileError(str(problem))
    try:
        info = read_json_object(sidecar)
    except InputError as e:
        raise ModelFileError(str(e)) from None
    if info.get("format") != FORMAT or info.get("kind") not in choices(ModelKind):
        raise ModelFileError(f"{sidecar}: not a distill model sidecar (format {info.get('format')!r}, "
                             f"kind {info.get('kind')!r})")
    problem = calibration_problem(info)
    if problem:
        raise ModelFileError(f"{sidecar}: {problem}")
    kind = ModelKind(info["kind"])
    try:
        config = config_from_dict(info["config"], KINDS[kind][1])
    except ConfigError as e:
        raise ModelFileError(f"{sidecar}: bad architecture config ({e})") from e
    model = build(kind, config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in read_tensors(weights).items()}
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError) as e:
        raise ModelFileError(f"{weights}: does not fit the {info['kind']} in {sidecar.name} ({str(e)[:200]})") from e
    return model.to(device).eval(), info
