"""Rule 21r's table and verdict (experiments/RULE_21R.md) from the evaluations that ``experiments/judge_21r.sh``
wrote: ``OUT/NAME/{cuhk/native, cuhk/ddffnet320, sharp, syn}/metrics.json`` for H8 (the shipped model) and
each candidate. Prints the table and the verdict, and writes ``OUT/verdict.json``.

    python experiments/judge_21r.py OUT H8 R1 R2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, also when run as a script

from dmenet.eval.paired import report_metrics  # noqa: E402
from syndof import cli  # noqa: E402
from syndof import io as sio  # noqa: E402

REFERENCE = "H8"
"""The shipped model's name among the NAMEs: the figures every candidate is judged against."""

MARGINS = {"fmax": 0.003, "mae": 0.003, "mae320": 0.005, "sharp": 0.02, "syn_ratio": 1.03, "tie": 0.003}


def read_rows(out: Path, names: list[str]) -> dict[str, dict[str, float]]:
    def metrics(name: str, part: str, *keys: str) -> dict:
        return report_metrics(out / name / part, keys)  # one method: no subfolder

    def row(name: str) -> dict[str, float]:
        native = metrics(name, "cuhk/native", "fmax", "mae")
        return {"fmax": native["fmax"], "mae": native["mae"], "mae320": metrics(name, "cuhk/ddffnet320", "mae")["mae"],
                "sharp": metrics(name, "sharp", "mean_blur")["mean_blur"], "syn": metrics(name, "syn", "mae")["mae"]}

    return {n: row(n) for n in names}


def passes(row: dict[str, float], ref: dict[str, float]) -> bool:
    """The rule's four conditions against the shipped model's figures ``ref``."""
    return (row["fmax"] >= ref["fmax"] - MARGINS["fmax"] and row["mae"] <= ref["mae"] + MARGINS["mae"]
            and row["mae320"] <= ref["mae320"] + MARGINS["mae320"] and row["sharp"] <= ref["sharp"] + MARGINS["sharp"]
            and row["syn"] <= MARGINS["syn_ratio"] * ref["syn"])


def verdict(rows: dict[str, dict[str, float]]) -> tuple[list[str], str]:
    """(candidates that pass, the decision); ``rows`` holds "H8" and the candidates."""
    ref = rows[REFERENCE]
    passing = [n for n in rows if n != REFERENCE and passes(rows[n], ref)]
    if not passing:
        return passing, "H8 stays"
    if {"R1", "R2"} <= set(passing) and abs(rows["R2"]["fmax"] - rows["R1"]["fmax"]) <= MARGINS["tie"] \
            and abs(rows["R2"]["mae"] - rows["R1"]["mae"]) <= MARGINS["tie"]:
        return passing, "R2 ships (within 0.003 of R1's native Fmax and MAE: the faster model)"
    best = max(passing, key=lambda n: rows[n]["fmax"])
    return passing, f"{best} ships (the higher native Fmax among those that pass)"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.script_parser("experiments/judge_21r.py", __doc__,
                          "python experiments/judge_21r.py runs/r21/judge H8 R1 R2")
    p.add_argument("out", type=Path, metavar="OUT", help="judge_21r.sh's folder (OUT/NAME/…/metrics.json)")
    p.add_argument("names", nargs="+", metavar="NAME", help="H8 (the shipped model) and the candidates")
    args = p.parse_args(argv)
    if REFERENCE not in args.names:
        return cli.fail(f"NAME: give {REFERENCE} (the shipped model) among the names, got {' '.join(args.names)}")
    out, names = args.out, args.names
    rows = read_rows(out, names)
    passing, decision = verdict(rows)
    print(f"{'model':6} {'native Fmax':>11} {'native MAE':>10} {'320² MAE':>9} {'sharp val':>9} {'val_bsds':>9}  "
          "passes")
    for n, r in rows.items():
        mark = "—" if n == REFERENCE else str(n in passing)
        print(f"{n:6} {r['fmax']:11.4f} {r['mae']:10.4f} {r['mae320']:9.4f} {r['sharp']:9.4f} {r['syn']:9.4f}  {mark}")
    missing = sorted({"R1", "R2"} - set(names))
    partial = f" (partial: without {', '.join(missing)})" if missing else ""
    print(f"verdict on {', '.join(names)}: {decision}{partial}")
    sio.write_json_atomic(out / "verdict.json", {"rows": rows, "passing": passing, "verdict": decision,
                                                 "models": names, "missing": missing})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
