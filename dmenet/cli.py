"""Model flags shared by every dmenet entry point, on top of :mod:`syndof.cli` (error rule, ``--set``,
``--workers``, ``--threads``, ``--device``).

* ``--model PATH`` — the model file (``.safetensors`` + ``.json`` sidecar) everywhere; ``--checkpoint`` is a hidden,
  deprecated spelling;
* ``--method NAME [NAME …]`` — registered methods (:func:`dmenet.methods.method_names`), each optionally with its
  own options as ``NAME:key=value,…`` (:func:`dmenet.methods.parse_method`); ``args.method`` holds
  :class:`~dmenet.methods.MethodChoice` objects, built with ``choice.make(method_options(args))``;
* ``--flips N`` — test-time symmetries (1, 2, 4 or 8; default: the model's recipe);
* ``--raw-sigma`` — ignore the model's fitted σ curve;
* ``--max-side N`` — work at this long side (px) when the image is larger;
* ``--wandb MODE`` — the W&B mode (offline, online, disabled), always passed on to ``wandb.init(mode=…)``.

:func:`method_options` turns the parsed flags into the registry's :class:`~dmenet.methods.MethodOptions`;
:func:`unused_model` refuses a ``--model`` that no chosen method would read; :func:`model_out_problem` checks the
``--out`` model file of the tools that write one (``calibrate``, ``distill.calibrate``, ``galetto.calibrate``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dmenet.config import WANDB_MODES, WandbMode
from dmenet.data.splits import SUBSETS
from dmenet.methods import MethodChoice, MethodOptions, method_names, parse_method
from dmenet.methods.registry import METHODS
from dmenet.models.recipe import FLIPS as TEST_FLIPS
from syndof.cli import hidden_alias, non_negative_int, positive_int

DEFAULT_MODEL_TEXT = "checkpoints/dmenet_lite.safetensors"


def add_model(p: argparse.ArgumentParser, required: bool = False, many: bool = False,
              help: str | None = None) -> None:
    """``--model PATH`` (``many``: ``PATH [PATH …]``) → ``args.model``; ``--checkpoint`` is a hidden alias."""
    nargs = "+" if many else None
    text = help or ("model file(s) (.safetensors + .json sidecar)" if many else
                    f"model file (.safetensors + .json sidecar); default {DEFAULT_MODEL_TEXT}")
    # a required --model is a required group of it and its alias, so that the alias satisfies it too
    where = p.add_mutually_exclusive_group(required=True) if required else p
    where.add_argument("--model", dest="model", nargs=nargs, metavar="PATH", help=text)
    hidden_alias(where, "--checkpoint", "--model", "model", nargs=nargs)


def add_method(p: argparse.ArgumentParser, many: bool = False, default: str | list[str] | None = "dmenet",
               exclude: tuple[str, ...] = ()) -> None:
    """``--method NAME[:key=value,…]`` (``many``: several) from the method registry → ``args.method``, a
    :class:`MethodChoice` (``many``: a list of them); a bad name or option text is a one-line usage error (exit 2)."""
    names = tuple(n for n in method_names() if n not in exclude)

    def choice(text: str) -> MethodChoice:
        """argparse type: ``--method`` text → :class:`MethodChoice` (argparse.ArgumentTypeError for an unknown name
        or option)."""
        try:
            return parse_method(text, names)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    choice.__name__ = "method"  # argparse names the type in its messages
    shown = default if isinstance(default, str) else " ".join(default or ())
    parsed = (None if default is None else choice(default) if isinstance(default, str)
              else [choice(d) for d in default])
    p.add_argument("--method", nargs="+" if many else None, type=choice, default=parsed, metavar="NAME",
                   help=", ".join(names) + (f" (default {shown})" if default else "")
                   + "; NAME:key=value,… sets the method's own options, e.g. galetto:stride=16,refine=paper; "
                   "NAME:model=PATH a learned method's model file for that method only")


FLIPS_READERS = tuple(name for name, spec in METHODS.items() if "flips" in spec.shared_options)
"""The registered methods that read ``--flips`` (``flips`` in their registry row's
:attr:`~dmenet.methods.registry.MethodSpec.shared_options`); the others ignore it by design (distill_student /
distill_teacher run one pass and refuse other than 1), which the help of a tool with ``--method`` says."""


def add_flips(p: argparse.ArgumentParser, default: str = "the model's recipe", methods: bool = False) -> None:
    """``--flips N`` → ``args.flips`` (None = not given: the tool's default, named in the help by ``default``).
    ``methods``: the tool takes ``--method``, and the help names the methods that read it (:data:`FLIPS_READERS`)."""
    readers = (f"; read by {' and '.join(FLIPS_READERS)} only; other methods ignore it (distill_student / "
               "distill_teacher refuse other than 1)") if methods else ""
    p.add_argument("--flips", type=int, choices=TEST_FLIPS, default=None, metavar="N",
                   help=f"test-time symmetries to average: 1, 2, 4 or 8 (default: {default}){readers}")


def add_raw_sigma(p: argparse.ArgumentParser) -> None:
    """``--raw-sigma`` → ``args.raw_sigma``."""
    p.add_argument("--raw-sigma", action="store_true", help="ignore the model's fitted σ curve (σ = B's output)")


def add_max_side(p: argparse.ArgumentParser, default: int | None = None, default_text: str | None = None) -> None:
    """``--max-side N`` → ``args.max_side``: the working long side in px, an integer ≥ 0, where 0 means full
    resolution (:func:`method_options` passes it on as None), the same in every tool (``predict``'s README
    ``--max-side 0``; evaluate refused 0 until 6 Dec 2026). ``default_text`` names a default the tool applies itself
    (``predict``: 1024 when not given)."""
    shown = default_text or (str(default) if default else "full resolution")
    p.add_argument("--max-side", type=non_negative_int, default=default, metavar="N",
                   help="working resolution: downsize larger inputs to this long side (px) first, σ rescaled to "
                   f"input px; 0 = full resolution (default {shown})")


def add_wandb(p: argparse.ArgumentParser, default: str | None = WandbMode.OFFLINE.value,
              help: str | None = None) -> None:
    """``--wandb MODE`` → ``args.wandb``, one of :data:`~dmenet.config.WANDB_MODES` (passed on to
    ``wandb.init(mode=…)``); ``default`` None: not given (a trainer then takes its config's ``train.wandb``)."""
    p.add_argument("--wandb", choices=WANDB_MODES, default=default, help=help)


def add_inference(p: argparse.ArgumentParser, max_side: int | None = None, methods: bool = False) -> None:
    """The inference options of a learned method: ``--flips``, ``--raw-sigma``, ``--max-side`` (``methods``: as in
    :func:`add_flips`)."""
    add_flips(p, methods=methods)
    add_raw_sigma(p)
    add_max_side(p, max_side)


def add_sample_selection(p: argparse.ArgumentParser, verb: str = "score", subset: str = "val") -> None:
    """Which samples of a benchmark folder a tool uses (:func:`dmenet.eval.runner.select_samples`):
    ``--allow-missing-images``, ``--stems FILE``, ``--split FILE --subset S`` (default ``subset``), ``--include
    GLOB``, ``--limit N``."""
    p.add_argument("--allow-missing-images", action="store_true",
                   help=f"{verb} only GT files that have an image (default: an unmatched GT file is an error)")
    p.add_argument("--stems", help=f"text file listing the stems to {verb}, one per line; 'k.bmp--name.jpg' rows "
                   "(xu100 split_to_cuhk.txt) use the name after the last '--'")
    p.add_argument("--split", help=f"split file (dmenet.data.splits, e.g. experiments/cuhk_split.json): {verb} "
                   "only the stems of --subset")
    p.add_argument("--subset", choices=SUBSETS, default=subset,
                   help=f"subset of --split (default {subset})")
    p.add_argument("--include", help=f"{verb} only stems matching this glob, e.g. 'out_of_focus*' (CUHK defocus)")
    p.add_argument("--limit", type=positive_int, help=f"{verb} only the first N samples (sorted by stem)")


def method_options(args: argparse.Namespace, **changes) -> MethodOptions:
    """:class:`MethodOptions` from the parsed shared flags (absent flags keep the defaults; ``--max-side 0``, full
    resolution, is ``max_side`` None); ``changes`` win."""
    fields = {"model": getattr(args, "model", None), "device": getattr(args, "device", None) or "cpu",
              "flips": getattr(args, "flips", None), "raw_sigma": getattr(args, "raw_sigma", False),
              "max_side": getattr(args, "max_side", None) or None, "tile_size": getattr(args, "tile_size", None),
              "tile_overlap": getattr(args, "tile_overlap", None)}
    fields.update(changes)
    return MethodOptions(**fields)


def unused_model(args: argparse.Namespace) -> str | None:
    """One line when ``--model`` is given but none of ``args.method`` loads a model file (a classical peer would
    silently ignore it, even a corrupt one), else None. With several methods one learned method is enough: ``--model``
    is for every learned method among them."""
    model = getattr(args, "model", None)
    method = getattr(args, "method", None)
    chosen = [c for c in (method if isinstance(method, list) else [method]) if c is not None]
    if model is None or not chosen or any(METHODS[c.name].learned for c in chosen):
        return None
    return (f"--model {model}: no chosen method loads a model file ({', '.join(str(c) for c in chosen)}; --model is "
            f"for {', '.join(method_names(learned=True))})")


def model_out_problem(out: str | os.PathLike, inputs: list = (), option: str = "--out") -> str | None:
    """Why the new model file ``out`` (``NAME``, ``NAME.safetensors`` or ``NAME.json``: the pair
    :func:`dmenet.models.model_io.model_paths` names) must be refused before any work, or None: an empty name, (either
    file of the pair of) one of the ``inputs`` (links followed), a file of its pair or the name itself exists
    (earlier work is never replaced; a folder is not a model file), or its folder cannot be written (under a file, no
    permission). The check of every tool that writes a model file; it found such an ``--out`` only after its work
    (reliability.md §28, C2)."""
    from dmenet.models.model_io import model_paths
    from syndof.cli import folder_to_write_problem

    if not str(out).strip() or not Path(out).name:  # "", "." (argparse's Path("")), "/": "PosixPath('.') has an
        return f"{option} {str(out)!r}: names no file; give a new model file name (NAME.safetensors)"  # empty name"
    pair = model_paths(out)
    read = {os.path.realpath(p) for m in inputs for p in model_paths(m)}
    if any(os.path.realpath(p) in read for p in pair):
        return f"{option} {out}: is an input of this step; write a new file (earlier work is never overwritten)"
    if Path(out).is_dir():
        return f"{option} {out}: is a folder; give a new model file name (NAME.safetensors)"
    for target in (Path(out), *pair):
        if os.path.lexists(target):
            what = " (a folder)" if target.is_dir() else ""
            return f"{option} {target}: exists{what}; write the new model to a new name"
    return folder_to_write_problem(pair[0].parent, f"{option} {out}")  # the writers create missing folders


SKIPPED_SHOWN = 3
"""How many of a fit's skipped inputs :func:`fit_skipped_line` names."""


def fit_skipped_line(written: str | os.PathLike, record: str | os.PathLike, skipped: list[str]) -> str | None:
    """The stdout line of a calibration (``dmenet.calibrate``, ``dmenet.galetto.calibrate``) that fitted on its set
    without the inputs it could not use, or None when it skipped none: ``"WRITTEN: fitted without N input(s) it could
    not use, listed under "skipped" in RECORD: PATH: reason; …"`` (the first :data:`SKIPPED_SHOWN` of the
    ``PATH: reason`` lines ``skipped``). An input is skipped when it cannot be read or is refused for what it is (a
    photo under the galetto classifier's window or under ``calibrate bn``'s ``--crop``): the reasons say which;
    until 7 Dec 2026 the line called every one "unreadable". A skip changes the fit: it is said beside the result,
    not only among the warnings (each input's own ``skipped PATH: reason`` line on stderr) and in the written
    record."""
    if not skipped:
        return None
    shown = "; ".join(skipped[:SKIPPED_SHOWN]) + (f"; … ({len(skipped) - SKIPPED_SHOWN} more)"
                                                   if len(skipped) > SKIPPED_SHOWN else "")
    return (f"{written}: fitted without {len(skipped)} input(s) it could not use, listed under \"skipped\" in "
            f"{record}: {shown}")
