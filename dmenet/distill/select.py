"""The checkpoint selection rule of distill runs (``experiments/distill/SELECTION.md``), applied to a run folder.

    python -m dmenet.distill.select RUN          # prints RUN/ckpt/step_NNNNNN of the chosen checkpoint

Among the checkpoints of ``RUN/val.jsonl`` whose ``sharp_val_mean`` is at most 0.2, take the highest ``val_fmax``;
checkpoints within 0.002 of it are tied, and the tie goes to the lowest ``val_mae``, then to the later step. If no
checkpoint has ``sharp_val_mean`` ≤ 0.2, take the lowest ``sharp_val_mean`` (equal ones: the later step), or the
later step when none is finite (every one NaN / inf); either fallback prints a ``note:`` line on stderr. A run
without sharp validation photos (no row reports it) is chosen on Fmax alone. A score of NaN (a diverged checkpoint)
makes its row no candidate. Only rows whose checkpoint still holds its model file are candidates (the trainer keeps
every checkpoint's model file; ``train.keep_last`` prunes only the training state).

A damaged ``val.jsonl`` is refused (exit 2, one line naming it and the line), never read around: a row that is no
object, a step that is no whole number ≥ 0 or is missing, a score that is no number or outside [0, 1], a step logged
twice, a ``sharp_val_mean`` some rows report and others not.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Sequence

from dmenet.distill.step import VAL_KEYS
from syndof import cli
from syndof.io import InputError

SHARP_BAR = 0.2
FMAX_TIE = 0.002


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value) -> bool:
    """A checkpoint step: an int >= 0 (not a bool, not a float such as 1.5 or 2.0)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def row_problem(row) -> str | None:
    """Why one parsed ``val.jsonl`` row cannot be a checkpoint's record, or None: not an object, a ``step`` missing
    or not a whole number >= 0, a score of :data:`~dmenet.distill.step.VAL_KEYS` that is no number (NaN / inf are:
    a diverged checkpoint, no candidate) or a finite one outside [0, 1]. A string or null score was left out of the
    choice unsaid (another checkpoint chosen), a null beside a string a TypeError traceback."""
    if not isinstance(row, dict):
        return "is not an object (a row is an object with a whole step >= 0)"
    if not _whole(row.get("step")):
        return f"step {row.get('step')!r} (a row is an object with a whole step >= 0)"
    for key in VAL_KEYS:
        value = row.get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{key} {value!r} is not a number"
        if math.isfinite(value) and not 0.0 <= value <= 1.0:
            return f"{key} {value!r} is not a score in [0, 1]"
    return None


def choose(rows: Sequence[dict]) -> dict:
    """The chosen row of validation ``rows`` (dicts with step, val_fmax, val_mae and optionally sharp_val_mean).

    Raises ValueError when ``rows`` is empty or a row lacks ``step`` / ``val_fmax`` / ``val_mae``."""
    if not rows:
        raise ValueError("no validated checkpoint to choose from")
    for row in rows:
        missing = [k for k in ("step", "val_fmax", "val_mae") if k not in row]
        if missing:
            raise ValueError(f"validation row {row} lacks {', '.join(missing)}")
    # a NaN / inf score (a diverged checkpoint) is no candidate: max() and min() gave it the choice or an empty tie
    # depending on the row order (a first row with val_fmax NaN: "min() arg is an empty sequence")
    rows = [r for r in rows if all(_finite(r[k]) for k in ("val_fmax", "val_mae"))]
    if not rows:
        raise ValueError("no validated checkpoint with finite val_fmax and val_mae")
    if not any("sharp_val_mean" in r for r in rows):  # a run without sharp validation photos: Fmax alone
        sharp_ok = list(rows)
    else:
        sharp_ok = [r for r in rows if _finite(r.get("sharp_val_mean")) and r["sharp_val_mean"] <= SHARP_BAR]
    if not sharp_ok:
        measured = [r for r in rows if _finite(r.get("sharp_val_mean"))]
        if not measured:  # every sharp_val_mean NaN / inf: the later step (a NaN key compared by identity before)
            return max(rows, key=lambda r: r["step"])
        return min(measured, key=lambda r: (r["sharp_val_mean"], -r["step"]))
    top = max(r["val_fmax"] for r in sharp_ok)
    tied = [r for r in sharp_ok if r["val_fmax"] >= top - FMAX_TIE]
    return min(tied, key=lambda r: (r["val_mae"], -r["step"]))


def choose_in_run(run: Path) -> tuple[Path, dict]:
    """(checkpoint folder, its validation row) chosen among ``run``'s checkpoints whose model file exists."""
    log = run / "val.jsonl"
    if not log.is_file():
        raise InputError(log, "no validation log (has the run reached a checkpoint?)")
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(log, f"unreadable ({exc})") from None
    rows, line_of = [], {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(log, f"not JSON lines ({exc.msg}, line {number})") from None
        # a step of 1.5 or true named step_000001's folder (int() of it), null / inf / a non-object row gave a
        # traceback; a row without step, or with a score of text, was left out unsaid (reliability.md §28, C1)
        problem = row_problem(row)
        if problem:
            what = f"{line.strip()[:40]!r} " if not isinstance(row, dict) else ""
            raise InputError(log, f"line {number}: {what}{problem}")
        if row["step"] in line_of:  # the better of two records of one checkpoint was taken as its score
            raise InputError(log, f"line {number}: step {row['step']} again (first on line {line_of[row['step']]}); "
                             "one checkpoint has one record")
        line_of[row["step"]] = number
        rows.append(row)
    sharp = [r for r in rows if "sharp_val_mean" in r]
    if sharp and len(sharp) < len(rows):  # the rows without it were dropped from the choice unsaid
        missing = next(r["step"] for r in rows if "sharp_val_mean" not in r)
        raise InputError(log, f"line {line_of[missing]}: no sharp_val_mean, which {len(sharp)} other row(s) report "
                         "(a log of two runs?)")
    from dmenet.distill.checkpoints import checkpoint_folder

    kept = [r for r in rows if (checkpoint_folder(run, r["step"]) / "model.safetensors").is_file()]
    if not kept:
        raise InputError(run, f"none of the {len(rows)} validated checkpoints has its model file on disk")
    try:
        row = choose(kept)
    except ValueError as exc:
        raise InputError(log, str(exc)) from None
    return checkpoint_folder(run, row["step"]), row


EXAMPLE = "distill-select runs/distill_train_example"


@cli.entry_point
def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    p = cli.parser("dmenet.distill.select", __doc__, EXAMPLE)
    p.add_argument("run", type=Path, help="a distill run folder (val.jsonl, ckpt/)")
    args = p.parse_args(argv)
    folder, row = choose_in_run(args.run)
    print(folder)
    print(f"chosen by experiments/distill/SELECTION.md: {json.dumps(row)}", file=sys.stderr)
    sharp = row.get("sharp_val_mean")
    if _finite(sharp) and sharp > SHARP_BAR:  # the rule's fallback: a pick that passed no bar must not look like one
        print(f"note: no checkpoint has sharp_val_mean <= {SHARP_BAR}; this is the one with the lowest ({sharp:.4g}), "
              "the rule's fallback, not a checkpoint that meets the bar", file=sys.stderr)
    elif "sharp_val_mean" in row and not _finite(sharp):  # chosen only when no checkpoint has a finite one
        print("note: no checkpoint has a finite sharp_val_mean (NaN / inf in every row); this is the latest step, the "
              "rule's fallback, not a checkpoint that meets the bar", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
