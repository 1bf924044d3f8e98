"""The command-line vocabulary shared by every ``python -m`` entry point, and its one error rule.

Every tool builds its parser with :func:`parser` and wraps its ``main`` in :func:`entry_point`:

* a usage error (bad option, missing file, unreadable input, bad config value) is printed as ONE line
  ``error: <message naming the file or option>`` on stderr and the exit status is 2 — never a traceback;
* a Python warning raised while the command runs is printed as ONE line ``warning: <message>`` (no source file
  and line: :func:`warning_line`);
* the shared flags mean the same everywhere: ``--config PATH`` (the tool's YAML config), ``--set KEY=VALUE
  [KEY=VALUE …]`` (config overrides; repeating ``--set`` adds more), ``--workers N`` (processes), ``--threads N``
  (torch CPU threads, applied by :func:`apply_threads`), ``--device cpu|cuda|cuda:N`` (checked by
  :func:`check_device`); a model entry point applies both, and the allocator tuning, with :func:`prepare_process`.

The rendering flags of syndof's tools (``generate``, ``render``, ``demo``) and the random seed of every tool are
defined here too, once each, with one check and one help text (a tool adds its own part of the help through a
parameter): ``--seed`` (:func:`add_seed`), ``--max-coc`` (:func:`add_max_coc`, default
:data:`syndof.units.DEFAULT_MAX_COC`), ``--kernel`` (:func:`add_kernel`), ``--depth-scale`` (:func:`add_depth_scale`),
``--merge-tolerance`` (:func:`add_merge_tolerance`) and the sources' ``--max-side`` (:func:`add_source_max_side`).

The model-related flags (``--model``, ``--method``, ``--flips``, ``--raw-sigma``, the working ``--max-side``) and
``--wandb`` are added on top by :mod:`dmenet.cli`.

Errors turned into the one-line message (:data:`USAGE_ERRORS`): ``ValueError`` and its project subclasses
(``syndof.io.InputError``, ``dmenet.configlib.ConfigError``, ``dmenet.models.model_io.ModelFileError``,
``dmenet.training.checkpoint.CheckpointError``), ``OSError`` (missing file, permission, full disk on a write) and
safetensors' ``SafetensorError``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import signal
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

try:  # a corrupt model file raises this from the Rust reader (not a ValueError)
    from safetensors import SafetensorError
except ImportError:  # pragma: no cover - safetensors is a dependency
    class SafetensorError(Exception):  # type: ignore[no-redef]
        pass

USAGE_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, SafetensorError)
"""Exception types :func:`entry_point` reports as ``error: …`` + exit 2."""

EXIT_USAGE = 2


def error_line(exc: BaseException) -> str:
    """One line for ``exc``: an OSError names its file (``PATH: No such file or directory``); newlines are joined."""
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc.__class__.__name__}"
        if exc.filename2 is not None:
            text += f" (→ {exc.filename2})"
    else:
        text = str(exc) or exc.__class__.__name__
    if isinstance(exc, KeyError):  # str(KeyError('x')) is "'x'"
        text = f"missing key {text}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def fail(message: str) -> int:
    """Print ``error: message`` (one line) on stderr and return the usage exit status 2."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


_ESCAPED = ({code: f"\\x{code:02x}" for code in (*range(32), *range(127, 160)) if code != 9}
            | {10: "\\n", 13: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
"""C0 and C1 controls but tab (C1: NEL ``\\x85`` is a line break, CSI ``\\x9b`` a terminal escape), and Unicode's line
and paragraph separators (``str.splitlines`` breaks at each of these)."""


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters (tab aside; :data:`_ESCAPED`) written as escapes
    (``\\n``, ``\\r``, ``\\x1b``, ``\\u2028`` …): a line naming a file whose name holds a newline stays one line, and
    a terminal escape in a name is shown, not obeyed. For lines printed as they are; :func:`fail` and
    :func:`warning_line` join lines themselves."""
    return text.translate(_ESCAPED)


def warning_line(message, category, filename, lineno, line=None) -> str:
    """:func:`warnings.formatwarning` for a command: ``warning: <message>`` on one line. Python's default adds the
    file, line number and source line of the library call that warned, which tell a user of the command nothing."""
    return f"warning: {' '.join(str(message).split())}\n"


EXIT_INTERRUPTED = 130
"""Exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it)."""


def quiet_opencv(level: int | None = None) -> int | None:
    """Set OpenCV's log level (default: fatal only) and return the previous one (None: OpenCV missing). A command
    reports an undecodable file itself in one line naming it; OpenCV's own ``[ WARN]`` / ``[ERROR] … IHDR chunk``
    lines, which name no file, would come first."""
    try:
        import cv2

        log = cv2.utils.logging
    except (ImportError, AttributeError):
        return None
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_FATAL if level is None else level)
    return previous


def entry_point(main: Callable[..., int | None] | None = None, *,
                errors: tuple[type[BaseException], ...] = ()) -> Callable:
    """Decorator for a CLI ``main(argv=None) -> int``: :data:`USAGE_ERRORS` (plus ``errors``) become
    ``error: <one line>`` on stderr and return 2; Ctrl-C is one line and :data:`EXIT_INTERRUPTED`; warnings are
    printed as :func:`warning_line` while it runs (the previous format is restored after, so a test or program that
    calls ``main`` keeps its own). Use as ``@entry_point`` or ``@entry_point(errors=(X,))``."""

    def wrap(fn: Callable[..., int | None]) -> Callable[..., int]:
        """Wrap a ``main(argv)`` into the uniform CLI entry point."""
        @functools.wraps(fn)
        def wrapper(argv: Sequence[str] | None = None) -> int:
            """Run ``fn(argv)``: known errors and usage errors → one stderr line and their exit status, Ctrl-C →
            :data:`EXIT_INTERRUPTED`; returns 0 for a ``None`` status."""
            previous, warnings.formatwarning = warnings.formatwarning, warning_line
            cv_level = quiet_opencv()
            try:
                with sigterm_unwinds():
                    status = fn(argv)
            except USAGE_ERRORS + errors as exc:
                return fail(error_line(exc))
            except KeyboardInterrupt:  # Ctrl-C: the blocks it unwound have cleaned up; one line, not a traceback
                print("interrupted (Ctrl-C)", file=sys.stderr)
                return EXIT_INTERRUPTED
            finally:
                warnings.formatwarning = previous
                quiet_opencv(cv_level)
            return 0 if status is None else int(status)

        return wrapper

    return wrap(main) if main is not None else wrap


def _probe(folder: Path) -> None:
    """Write and remove a temporary file in ``folder``: OSError when it cannot take new files (a real write:
    ``os.access`` misses a read-only file system)."""
    with tempfile.TemporaryFile(dir=folder):
        pass


def writable_folder_problem(folder: Path, label: str) -> str | None:
    """Create ``folder`` (and its parents) and check that a file can be written there, before any long work: the
    problem as one line starting with ``label`` (e.g. ``--out X``), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _probe(folder)
    except OSError as exc:
        return f"{label}: cannot write there ({exc.strerror or exc})"
    return None


def folder_to_write_problem(folder: str | os.PathLike, label: str) -> str | None:
    """Whether new files can go into ``folder``, checked without creating anything, as one line starting with
    ``label`` (e.g. ``--out X``), or None. An existing folder gets a real probe file (``os.access`` misses a read-only
    file system); a missing one needs its nearest existing ancestor to be a folder this user can write (the tool
    creates the rest when it writes)."""
    folder = Path(folder)
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{label}: {existing} is not a folder"
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{label}: cannot create folder {folder} ({existing} is not writable)"
        return None
    try:
        _probe(folder)
    except OSError as exc:
        return f"{label}: folder {folder} is not writable ({exc.strerror or exc})"
    return None


def new_folder_problem(out: str | os.PathLike, writes: str) -> str | None:
    """``--out`` as one line when it would overwrite or mix with earlier files (anything but a missing path or an
    empty real folder), else None; ``writes`` says what the tool makes there. A folder written all or nothing
    (:func:`syndof.io.staged_folder`) is written once: rerunning into it would leave files of two runs (e.g. one
    benchmark's PR curve beside another's metrics.json)."""
    path = Path(out)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        return f"--out {out}: exists and is not a folder (nothing was changed)"
    if path.is_dir() and any(path.iterdir()):
        return (f"--out {out}: exists and is not empty; {writes} (choose another --out, or delete it knowingly to "
                "redo; nothing was changed)")
    return None


def exit_on_sigterm(signum: int, frame) -> None:  # noqa: ARG001 - the signal handler signature
    """A SIGTERM handler: raise ``SystemExit(128 + signum)`` (143), as Ctrl-C raises KeyboardInterrupt, so that
    ``finally`` / ``except`` blocks run (temporary files of atomic writes removed, staged folders dropped)."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within the block, SIGTERM unwinds the main thread (:func:`exit_on_sigterm`) instead of ending the process on
    the spot, which would leave temporary files behind. Only where it can: in the main thread, and when no other
    handler than the default is set (a caller's own handler is kept). Every :func:`entry_point` runs in one."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` parser whose usage errors are one line (``error: … (see PROG --help)``) and exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        """Print ``message`` as one line pointing at --help and exit with :data:`EXIT_USAGE`."""
        fail(f"{message} (see {self.prog} --help)")
        raise SystemExit(EXIT_USAGE)

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, after :meth:`refuse_repeated_lists`."""
        tokens = sys.argv[1:] if args is None else list(args)
        self.refuse_repeated_lists(tokens)
        return super().parse_known_args(tokens, namespace)

    def refuse_repeated_lists(self, tokens: Sequence[str]) -> None:
        """A list option (``nargs`` ``+`` or ``*``, stored) given twice is a usage error: argparse keeps the last list
        and drops the earlier ones silently (``focal_stack --stack A --stack B`` scored B alone)."""
        head = list(tokens[: list(tokens).index("--")] if "--" in tokens else tokens)
        for action in self._actions:
            if not action.option_strings or action.nargs not in ("+", "*") \
                    or not isinstance(action, argparse._StoreAction):
                continue
            given = [t for t in head if t in action.option_strings
                     or any(t.startswith(o + "=") for o in action.option_strings if o.startswith("--"))]
            if len(given) > 1:
                self.error(f"{action.option_strings[0]} given {len(given)} times: only the last list would count; "
                           f"give every value after one {action.option_strings[0]}")


def parser(prog: str, doc: str | None, example: str) -> OneLineParser:
    """A parser for ``python -m prog``: the first paragraph of ``doc`` as description and ``example`` (one working
    command, run by tests/test_cli.py) as the epilog. A first paragraph ending in ``::`` (a reST literal block
    follows, e.g. usage lines) brings that block along, with one colon."""
    paragraphs = (doc or "").strip().split("\n\n")
    description = paragraphs[0]
    if description.endswith("::") and len(paragraphs) > 1:
        description = f"{description[:-1]}\n\n{paragraphs[1]}"
    return OneLineParser(prog=f"python -m {prog}", description=description,
                         epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def script_parser(path: str, doc: str | None, example: str) -> OneLineParser:
    """:func:`parser` for a script run as ``python PATH`` (``experiments/…``, ``benchmarks/…``), not ``python -m``:
    ``path`` (relative to the checkout, e.g. ``"experiments/judge_19s.py"``) is the ``prog`` its ``--help`` and its
    one-line errors name (``parser`` would name ``python -m PATH``, a command that does not run)."""
    p = parser(path, doc, example)
    p.prog = f"python {path}"
    return p


# ------------------------------------------------------------------------------------------------------ value types
def checked_number(convert: Callable[[str], float], kind: str, ok: Callable[[float], bool], requirement: str,
                    name: str, doc: str) -> Callable[[str], float]:
    """An argparse type: ``convert(text)`` ("expected {kind}" if it fails), then ``ok(value)`` ("must be
    {requirement}" if not)."""

    def parse(text: str):
        """argparse type: ``text`` converted and checked; argparse.ArgumentTypeError naming the requirement
        otherwise."""
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {value}")
        return value

    parse.__name__, parse.__qualname__, parse.__doc__ = name, name, doc
    return parse


positive_int = checked_number(int, "an integer", lambda v: v >= 1, ">= 1", "positive_int",
                               "argparse type: an integer ≥ 1.")
non_negative_int = checked_number(int, "an integer", lambda v: v >= 0, ">= 0", "non_negative_int",
                                   "argparse type: an integer ≥ 0.")
positive_float = checked_number(float, "a number", lambda v: v > 0 and math.isfinite(v), "a finite number > 0",
                                 "positive_float", "argparse type: a finite number > 0 (not nan, not inf).")
non_negative_float = checked_number(float, "a number", lambda v: v >= 0 and math.isfinite(v),
                                     "a finite number >= 0", "non_negative_float",
                                     "argparse type: a finite number ≥ 0 (not nan, not inf).")


# ------------------------------------------------------------------------------------------------------ shared flags
def add_set(p: argparse.ArgumentParser, help: str = "config overrides, e.g. --set train.steps=10 optim.lr=5e-5"):
    """``--set KEY=VALUE [KEY=VALUE …]`` → ``args.overrides`` (a flat list; ``--set`` may be repeated)."""
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help=help)


def add_config(p: argparse.ArgumentParser, help: str = "YAML config file", required: bool = False):
    """``--config PATH`` → ``args.config``: the tool's YAML config (None = its built-in defaults unless
    ``required``); :func:`add_set` gives the overrides on top of it."""
    p.add_argument("--config", required=required, help=help)


def add_workers(p: argparse.ArgumentParser, default: int | None = 1, help: str = "worker processes",
                default_text: str | None = None):
    """``--workers N`` → ``args.workers``: processes (never threads). ``default_text`` replaces the ``(default N)``
    of the help where the tool decides itself (``default`` None)."""
    p.add_argument("--workers", type=positive_int, default=default, metavar="N",
                   help=f"{help} ({default_text or f'default {default}'})")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask on Linux, else all of the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def add_threads(p: argparse.ArgumentParser, default: int | None = None):
    """``--threads N`` → ``args.threads``: torch CPU threads per process (None = torch's default)."""
    p.add_argument("--threads", type=positive_int, default=default, metavar="N",
                   help="torch CPU threads per process" + (f" (default {default})" if default else ""))


def apply_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when given."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def prepare_process(args: argparse.Namespace, auto_device: bool = False) -> None:
    """What a model entry point does right after parsing: ``--device`` checked (:func:`check_device`; ValueError
    naming it), ``--threads`` applied (:func:`apply_threads`), and freed memory kept in the process for the next
    forward (:func:`syndof.allocator.reuse_freed_memory`; process-wide, never changes a result)."""
    from syndof.allocator import reuse_freed_memory

    check_device(args.device, auto=auto_device)
    apply_threads(args.threads)
    reuse_freed_memory()


def add_device(p: argparse.ArgumentParser, default: str = "cpu", auto: bool = False):
    """``--device cpu|cuda|cuda:N`` (and ``auto`` when the tool picks one) → ``args.device``."""
    p.add_argument("--device", default=default, help=f"{'auto | ' if auto else ''}cpu | cuda | cuda:N"
                   + (f" (default {default})" if default else ""))


def check_device(device: str | None, auto: bool = False, name: str = "--device") -> None:
    """Raise ValueError naming ``name`` (the option, or the API's argument) when ``device`` is not a device this
    machine has."""
    if device is None or (auto and device == "auto") or device == "cpu" or (device.startswith("cpu:")
                                                                            and device[4:].isdigit()):
        return  # torch's "cpu:0" is the CPU too
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"{name} {device}: CUDA is not available on this machine")
        if ":" in device and int(device[5:]) >= torch.cuda.device_count():
            raise ValueError(f"{name} {device}: only {torch.cuda.device_count()} CUDA device(s)")
        return
    raise ValueError(f"{name} {device!r}: expected {'auto, ' if auto else ''}cpu, cuda or cuda:N")


# ------------------------------------------------------------------------------------------------- rendering flags
def add_seed(p: argparse.ArgumentParser, default: int | None = 0, use: str | None = None,
             default_text: str | None = None) -> None:
    """``--seed SEED`` → ``args.seed``: a random seed, an integer ≥ 0 (:data:`non_negative_int`) in every tool (a
    negative one failed in NumPy with a line naming no option, or was passed on unchecked). ``use`` says what the
    tool seeds; ``default_text`` names a default the tool applies itself (``default`` None)."""
    shown = default_text or default
    p.add_argument("--seed", type=non_negative_int, default=default,
                   help=f"random seed, an integer >= 0 (default {shown})" + (f"; {use}" if use else ""))


def max_coc_value(text: str) -> int:
    """argparse type of ``--max-coc``: an integer in 2..:data:`syndof.render_checks.MAX_MAX_COC` px, the bounds
    ``generate`` and ``render`` check in their APIs too (1 gives σ_max 0, beyond 255 the kernel grid runs out of
    memory)."""
    from syndof.render_checks import MAX_MAX_COC

    check = checked_number(int, "an integer", lambda v: 2 <= v <= MAX_MAX_COC,
                           f"an integer in 2..{MAX_MAX_COC} px (σ_max = (max_coc − 1)/4)", "max_coc", "")
    return check(text)


def add_max_coc(p: argparse.ArgumentParser, use: str | None = None, default: int | None = None) -> None:
    """``--max-coc C`` → ``args.max_coc``: the largest CoC in px (:func:`max_coc_value`), default ``default`` or
    :data:`syndof.units.DEFAULT_MAX_COC` (SYNDOF's 29) when None. ``use`` adds the tool's own part of the help."""
    from syndof.render_checks import MAX_MAX_COC
    from syndof.units import DEFAULT_MAX_COC

    default = DEFAULT_MAX_COC if default is None else default
    p.add_argument("--max-coc", type=max_coc_value, default=default,
                   help=f"largest CoC in px{', ' + use if use else ''}: an integer in 2..{MAX_MAX_COC}, "
                   f"σ_max = (c−1)/4 (default {default})")


def sample_count_value(text: str) -> int:
    """argparse type of ``--count`` (samples to render): an integer in 1..:data:`syndof.layout.MAX_COUNT` (sample
    names have 6 digits; 0 made an empty dataset and exited 0)."""
    from syndof.layout import MAX_COUNT

    check = checked_number(int, "an integer", lambda v: 1 <= v <= MAX_COUNT,
                           f"an integer in 1..{MAX_COUNT:,} (sample names have 6 digits)", "count", "")
    return check(text)


def add_sample_count(p: argparse.ArgumentParser, default: int | None, default_text: str | None = None) -> None:
    """``--count N`` → ``args.count``: how many samples a renderer writes (:func:`sample_count_value`);
    ``default_text`` names a default the tool applies itself (``default`` None)."""
    p.add_argument("--count", type=sample_count_value, default=default,
                   help=f"number of samples, an integer >= 1 (default {default_text or default})")


def add_kernel(p: argparse.ArgumentParser) -> None:
    """``--kernel NAME`` → ``args.kernel``: the PSF (:data:`syndof.psf.KERNELS`), default gaussian."""
    from syndof.psf import KERNELS, Kernel

    p.add_argument("--kernel", choices=KERNELS, default=Kernel.GAUSSIAN.value,
                   help=f"PSF (default {Kernel.GAUSSIAN.value}, as the original)")


def add_depth_scale(p: argparse.ArgumentParser, use: str | None = None) -> None:
    """``--depth-scale K`` → ``args.depth_scale``: the factor from raw depth values to mm, a finite number > 0
    (:data:`positive_float`, the check of :func:`syndof.depth_io.valid_scale`); None = the depth format's default
    (:func:`syndof.depth_io.read_depth`). ``use`` adds the tool's own part of the help."""
    p.add_argument("--depth-scale", type=positive_float, default=None, metavar="K",
                   help="multiply raw depth values by K to get mm, a finite number > 0 (default: by format, ×1000 "
                   "for .dpt, ×10 for 16-bit PNG, ×1 for .npy / .pfm)"
                   + (f"; {use}" if use else ""))


def merge_tolerance_value(text: str) -> float:
    """argparse type of ``--merge-tolerance``: px of σ, finite and ≥ 0
    (:func:`syndof.layer_merge.check_merge_tolerance`, the check of the APIs)."""
    from syndof.layer_merge import check_merge_tolerance

    try:
        return check_merge_tolerance(text, what="the value")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


merge_tolerance_value.__name__ = "merge_tolerance"  # argparse names the type in its messages


def add_merge_tolerance(p: argparse.ArgumentParser) -> None:
    """``--merge-tolerance PX`` → ``args.merge_tolerance`` (:func:`merge_tolerance_value`; default 0, exact)."""
    p.add_argument("--merge-tolerance", type=merge_tolerance_value, default=0.0, metavar="PX",
                   help="render adjacent layers whose σ differ by at most PX px as one layer (faster, approximate; "
                        "default 0 = exact, as the original)")


def source_max_side_value(text: str) -> int:
    """argparse type of the sources' ``--max-side``: 0 (no limit) or an integer ≥
    :data:`syndof.recipe.MIN_MAX_SIZE` px, the check of :func:`syndof.generate.generate`."""
    from syndof.recipe import MIN_MAX_SIZE

    check = checked_number(int, "an integer", lambda v: v == 0 or v >= MIN_MAX_SIZE,
                           f"0 (no limit) or >= {MIN_MAX_SIZE} px", "max_side", "")
    return check(text)


def add_source_max_side(p: argparse.ArgumentParser, default: int | None = None) -> None:
    """``--max-side N`` (hidden deprecated spelling ``--max-size``) → ``args.max_side``: downscale the sources whose
    long side exceeds N px (:func:`source_max_side_value`; 0 and None: no limit). Not :func:`dmenet.cli.add_max_side`,
    a model's working resolution."""
    from syndof.recipe import MIN_MAX_SIZE

    p.add_argument("--max-side", type=source_max_side_value, default=default, metavar="N",
                   help=f"downscale sources whose long side exceeds N px to N px; 0 = no limit, else >= {MIN_MAX_SIZE} "
                   f"(default {default or 'no limit'})")
    hidden_alias(p, "--max-size", "--max-side", "max_side", type=source_max_side_value)


def hidden_alias(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    """A deprecated spelling ``old`` of ``new`` (same ``dest``), hidden from ``--help``; warns on stderr."""

    class _Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"warning: {old} is deprecated, use {new}", file=sys.stderr)
            setattr(namespace, self.dest, values)

    p.add_argument(old, dest=dest, action=_Deprecated, help=argparse.SUPPRESS, **kwargs)

