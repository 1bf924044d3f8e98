"""What a training command (``dmenet.train``, ``dmenet.galetto.train``, ``dmenet.distill.train``) says when it is
stopped by Ctrl-C or SIGTERM: one stderr line naming the last checkpoint its run folder holds and the exact command
that continues the run (the same command with ``--resume``), or that no checkpoint was written yet and how to start
again. The exit status is left as it is (130 for Ctrl-C through :func:`syndof.cli.entry_point`, 143 for SIGTERM
through :func:`syndof.cli.exit_on_sigterm`)."""
from __future__ import annotations

import contextlib
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

SIGTERM_EXIT = 128 + signal.SIGTERM
"""The status :func:`syndof.cli.exit_on_sigterm` leaves with (143)."""


def command_line(module: str, argv: Sequence[str], resume: bool, cwd: Path | None = None) -> str:
    """``python -m MODULE ARGV…`` as a shell line (each argument quoted where needed), with ``--resume`` added when
    ``resume`` and ``argv`` lacks it, or removed when not ``resume``. With ``cwd``, the line starts ``cd CWD && ``:
    relative paths among the arguments mean what they meant to the stopped command from any folder."""
    args = [a for a in argv if a != "--resume"]
    line = shlex.join(["python", "-m", module, *args, *(["--resume"] if resume else [])])
    return line if cwd is None else f"cd {shlex.quote(str(cwd))} && {line}"


def stopped_line(how: str, module: str, argv: Sequence[str], run_dir: Path, last: Path | None,
                 resumed: bool, cwd: Path | None = None) -> str:
    """The line a stopped run prints. ``how``: ``Ctrl-C`` or ``SIGTERM``; ``last``: the run's last checkpoint (a
    file or folder), None when it holds none; ``resumed``: whether the stopped command was a ``--resume`` (a run
    folder that held a run before this command, so never to be deleted); ``cwd``: the folder the command ran in
    (the command named starts with ``cd CWD &&``; None: not named)."""
    if last is not None:
        return f"stopped ({how}): last checkpoint {last}; continue with: {command_line(module, argv, True, cwd)}"
    if resumed:
        return (f"stopped ({how}): no checkpoint written yet in {run_dir}; continue with: "
                f"{command_line(module, argv, True, cwd)}")
    left = run_dir.is_dir() and any(run_dir.iterdir())
    # a new run starts in a missing or empty folder (checked before it writes): what it holds is this run's alone
    return (f"stopped ({how}): no checkpoint written yet (nothing to --resume); "
            + (f"delete {run_dir} (only this run's files) and " if left else "")
            + f"start again with: {command_line(module, argv, False, cwd)}")


@contextlib.contextmanager
def say_how_to_resume(module: str, argv: Sequence[str] | None, run_dir: str | Path, resumed: bool,
                      last_checkpoint: Callable[[Path], Path | None], speak: bool = True) -> Iterator[None]:
    """Within the block, Ctrl-C (KeyboardInterrupt) and SIGTERM (``SystemExit(143)``) print :func:`stopped_line` on
    stderr and go on unwinding (the exit status unchanged). ``argv``: the command's arguments (None: ``sys.argv``);
    ``last_checkpoint(run_dir)``: the run's newest complete checkpoint or None (a pointer it cannot read counts as
    none); ``speak``: False on the processes of a data-parallel job that write nothing (rank > 0)."""
    run_dir = Path(run_dir)
    try:
        yield
    except KeyboardInterrupt:
        if speak:
            _say("Ctrl-C", module, argv, run_dir, resumed, last_checkpoint)
        raise
    except SystemExit as exc:
        if speak and exc.code == SIGTERM_EXIT:
            _say("SIGTERM", module, argv, run_dir, resumed, last_checkpoint)
        raise


def _say(how: str, module: str, argv: Sequence[str] | None, run_dir: Path, resumed: bool,
         last_checkpoint: Callable[[Path], Path | None]) -> None:
    """Print :func:`stopped_line` naming the current folder (a damaged checkpoint pointer: no checkpoint named; the
    resume will say why; a current folder deleted meanwhile: none named)."""
    try:
        last = last_checkpoint(run_dir)
    except (OSError, ValueError):
        last = None
    try:
        cwd = Path.cwd()
    except OSError:
        cwd = None
    args = sys.argv[1:] if argv is None else list(argv)
    print(stopped_line(how, module, args, run_dir, last, resumed, cwd), file=sys.stderr, flush=True)
