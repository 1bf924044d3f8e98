"""What a ``--resume`` may change, shared by the trainers (``dmenet.train``, ``dmenet.distill.train``): the runtime
keys (where a run executes and logs, not what it trains) and ``train.steps``, which may extend or shorten a run but
never go below the steps its checkpoint has done; and how a run recorded before a config key existed reads it
(:func:`with_added_keys`, with each trainer's ``ADDED_KEYS``: ``dmenet.train``, ``dmenet.galetto.train``,
``dmenet.distill.train``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

STEPS_KEY = "train.steps"
"""The one recipe key a resume may change: the run's total number of steps."""


def resume_free_keys(runtime: Iterable[str]) -> set[str]:
    """The flat config keys (``section.key``) a resume does not compare: ``train.{k}`` of each ``runtime`` key, and
    :data:`STEPS_KEY`."""
    return {f"train.{k}" for k in runtime} | {STEPS_KEY}


def steps_problem(steps: int, done: int, checkpoint: str | Path, flag: str | None = None) -> str | None:
    """One line refusing a resume whose ``train.steps`` (``steps``; set by ``flag`` too when given, e.g.
    ``--steps``) is below ``done``, the number of steps the ``checkpoint`` folder has done; None when ``steps`` >=
    ``done`` (equal: the run is complete, nothing is left to do)."""
    if steps >= done:
        return None
    label = f"{STEPS_KEY} {steps}" + (f" ({flag})" if flag else "")
    return (f"--resume: {label} is below the step {done} of the checkpoint {checkpoint} ({done} step(s) done); "
            "a resume can only extend a run (nothing was changed)")


def with_added_keys(record: Mapping[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    """A run's recorded config (nested ``{section: {key: value}}``: its config.yaml / config.json, a checkpoint's
    record) with each key of ``added`` (flat ``section.key`` → value) that it lacks set to that value: the value that
    does what the run did before the key existed, which need not be today's default. Without it, a key added since
    the run started took today's default silently (``dmenet.train``) or read as absent and refused the resume
    (``galetto.train``, ``distill.train``). A key the record has keeps its value; an empty section (null, as YAML
    reads ``train:`` with nothing under it) is one without keys, as the config load reads it, so it gets the
    values too; another section that is not a mapping is left as it is (the config load names it). An empty record
    (None: an empty or comment-only config.yaml) is one without sections. ``record`` is not changed."""
    out = {name: dict(section) if isinstance(section, Mapping) else {} if section is None else section
           for name, section in (record or {}).items()}
    for key, value in added.items():
        section, _, name = key.partition(".")
        part = out.setdefault(section, {})
        if isinstance(part, dict):
            part.setdefault(name, value)
    return out


def named_keys(keys: Iterable[str], record: Mapping[str, Any], added: Mapping[str, Any]) -> list[str]:
    """``keys`` (flat ``section.key``) as a refused resume names them, each one the run's nested ``record``
    lacks and ``added`` gives followed by the value it reads as, so the user sees the ``--set`` that resumes the
    run: ``train.channels_last (the run predates the key: false)``."""
    def name(key: str) -> str:
        section, _, field = key.partition(".")
        part = (record or {}).get(section)
        if key in added and not (isinstance(part, Mapping) and field in part):
            return f"{key} (the run predates the key: {json.dumps(added[key])})"
        return key
    return [name(k) for k in keys]
