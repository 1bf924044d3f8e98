"""The checkpoint selection rule of distill runs (``experiments/distill/SELECTION.md``), applied to a run folder.

    python -m dmenet.distill.select RUN          # prints RUN/ckpt/step_NNNNNN of the chosen checkpoint

Among the checkpoints of ``RUN/val.jsonl`` whose ``sharp_val_mean`` is at most 0.2, take the highest ``val_fmax``;
checkpoints within 0.002 of it are tied, and the tie goes to the lowest ``val_mae``, then to the later step. If no
checkpoint has ``sharp_val_mean`` ≤ 0.2, take the lowest ``sharp_val_mean``; a run without sharp validation
photos (no row reports it) is chosen on Fmax alone. Only rows whose checkpoint still holds its model file are
candidates (the trainer keeps every checkpoint's model file; ``train.keep_last`` prunes only the training state).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Sequence

from syndof import cli
from syndof.io import InputError

SHARP_BAR = 0.2
FMAX_TIE = 0.002


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value) -> bool:
    """A checkpoint step: an int >= 0 (not a bool, not a float such as 1.5 or 2.0)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
        measured = [r for r in rows if _finite(r.get("sharp_val_mean"))] or rows
        return min(measured, key=lambda r: (r.get("sharp_val_mean", float("inf")), -r["step"]))
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
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(log, f"not JSON lines ({exc.msg}, line {number})") from None
        # a row is an object whose step is a whole number >= 0: a step of 1.5 or true named step_000001's folder
        # (int() of it), null / inf / a non-object row gave a traceback
        step = row.get("step") if isinstance(row, dict) else None
        if not isinstance(row, dict) or ("step" in row and not _whole(step)):
            what = f"step {step!r}" if isinstance(row, dict) else f"{line.strip()[:40]!r} is not an object"
            raise InputError(log, f"line {number}: {what} (a row is an object with a whole step >= 0)")
        rows.append(row)
    from dmenet.distill.train import checkpoint_folder

    kept = [r for r in rows
            if "step" in r and (checkpoint_folder(run, r["step"]) / "model.safetensors").is_file()]
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
