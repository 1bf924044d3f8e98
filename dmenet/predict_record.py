"""The settings record of ``dmenet.predict`` in ``--out`` (:data:`RECORD`, ``predict.json``): what made the
folder's maps (:func:`settings_record`, with the devices of :func:`device_used`) and whether a run may write there
(:func:`record_check`: the same settings resume the batch, other settings are refused before any photo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmenet.predict_outputs import has_outputs
from syndof import cli
from syndof import io as sio


RECORD = "predict.json"
"""The settings record in ``--out``: what made its maps (:func:`settings_record`). A rerun with the same settings
finishes the batch; one with other settings is refused, so a folder never holds maps of two methods, models or
recipes side by side."""


RECORD_TOOL = "dmenet.predict"
"""The record's ``tool`` value: a JSON file of another tool under :data:`RECORD`'s name is not a settings record."""


def settings_record(args: argparse.Namespace, options, estimator) -> dict:
    """What decides the maps of a photo: the method, its own options as it resolved them
    (:meth:`~dmenet.methods.base.Estimator.method_settings`: defaults included, sorted by key, so a default given
    explicitly or options in another order are the same settings), the model file (path and a SHA-256 of its weights
    and sidecar, so a retrained file under the same name differs; named by ``--model`` or ``model=``), those of the
    shared options the method reads (its registry row's :attr:`~dmenet.methods.registry.MethodSpec.shared_options`:
    ``--flips`` for a method that ignores it is not recorded), the output format, and ``devices``: the device the maps
    are made on (:func:`device_used`; informative, :data:`INFORMATIVE`)."""
    from dmenet.methods.base import MAP_OPTIONS
    from dmenet.methods.registry import METHODS
    from dmenet.models.model_io import model_digest

    model = estimator.model_file
    own = dict(sorted(estimator.method_settings().items()))
    record = {"tool": RECORD_TOOL, "method": args.method.name, **({"method_options": own} if own else {}),
              "model": None if model is None else str(Path(model).resolve()),
              "model_sha256": None if model is None else model_digest(model)}
    record.update((k, getattr(options, k)) for k in MAP_OPTIONS if k in METHODS[args.method.name].shared_options)
    return {**record, "format": args.fmt.value,
            "devices": [device_used(options.device, learned=estimator.model_file is not None)]}


def device_used(device: str | None, learned: bool) -> str:
    """The device a method's maps are made on (``--device`` as it runs): "cpu" for a method without a model file
    (``learned`` false: it runs on the CPU whatever ``--device`` says) and for "cpu:N"; "cuda" resolved to the card
    it means ("cuda:0"); "cuda:N" as given."""
    import torch

    dev = torch.device(device or "cpu")
    if not learned or dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda" and dev.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(dev)


INFORMATIVE = ("model", "devices")
"""Keys of the record that say where, not what: the same model file moved or copied (same SHA-256) is the same
model; maps made on another device (the CPU, a GPU) differ by float rounding only, so a rerun on another device
finishes the batch instead of being refused, and adds its device to ``devices`` once it writes a set."""


def record_check(out: Path, record: dict) -> tuple[str | None, bool]:
    """(problem, same_settings) for ``--out`` against this run's ``record``: its :data:`RECORD` differs (a
    problem naming the keys), matches (resume), or is absent, when earlier outputs without a record (an older
    version's) are left to the per-photo check. A record of this tool beside no map (a run killed before its first
    photo) describes nothing and counts as absent; a file that is not such a record is never taken or replaced."""
    path = out / RECORD
    if path.exists():
        try:
            earlier = sio.read_json_object(path)
        except (OSError, ValueError) as exc:  # predict writes it whole (atomically): not predict's
            return (f"{path}: not a settings record of {RECORD_TOOL} ({cli.error_line(exc)}); choose another --out "
                    "(nothing was changed)"), False
        if earlier.get("tool") != RECORD_TOOL:
            return (f"{path}: not a settings record of {RECORD_TOOL} (tool {_short(earlier.get('tool'))}); "
                    "choose another --out (nothing was changed)"), False
        if not has_outputs(out):
            return None, False
        keys = [*record, *(k for k in earlier if k not in record)]  # the record's order: the method first
        differ = [k for k in keys if k not in INFORMATIVE and record.get(k) != earlier.get(k)]
        if differ:
            # a setting only one of two methods reads is no difference of its own: the method's is the one shown
            other_method = record.get("method") != earlier.get("method")
            shown = [k for k in differ if not other_method or (k in record and k in earlier)]
            text = "; ".join(f"{k} {_setting_text(k, earlier)}, now {_setting_text(k, record)}" for k in shown[:3])
            return (f"--out {out}: holds maps made with other settings ({RECORD}: {text}"
                    f"{'; …' if len(shown) > 3 else ''}); choose another --out (nothing was changed)"), False
        return None, True
    return None, False


def _setting_text(key: str, record: dict) -> str:
    """A setting of a :data:`RECORD` as a refusal shows it: its effective value, never a bare None (``max_side`` None
    is full resolution, the tile options' None their defaults, ``model_sha256`` None no model)."""
    if key not in record:
        return "(not recorded)"
    value = record[key]
    if value is None:
        from dmenet.tiling import TILE_OVERLAP, TILE_SIZE

        meaning = {"max_side": "0 (full resolution)", "model_sha256": "no model", "tile_size": f"default ({TILE_SIZE})",
                   "tile_overlap": f"default ({TILE_OVERLAP})"}
        return meaning.get(key, "not set")
    return _short(value)


def _short(value, most: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= most else text[: most - 1] + "…"
