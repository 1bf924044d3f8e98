"""Rule 19s's gate (experiments/RULE_19S.md): the feature head H8F against the shipped two-label head H8.

    python experiments/judge_19s.py [--h8 runs/r21/judge/H8] [--h8f runs/r19s]

Reads ``{cuhk/native, cuhk/ddffnet320, sharp}/metrics.json`` under each folder (H8's from ``judge_21r.sh``, H8F's
from the commands of the rule), prints both rows and the three conditions, and writes ``H8F/verdict.json`` (which
names both folders: rule 19t judges against R2's with ``--h8``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, also when run as a script

from dmenet.eval.paired import report_metrics  # noqa: E402
from syndof import cli  # noqa: E402
from syndof import io as sio  # noqa: E402

MARGINS = {"fmax": -0.005, "mae": 0.005, "mae320": 0.005, "sharp": 0.02}
"""Allowed change against H8 per figure (rule 19r's margins): Fmax may drop by 0.005, the others rise as given."""


def row(folder: Path) -> dict[str, float]:
    native = report_metrics(folder / "cuhk/native", ("fmax", "mae"))
    return {"fmax": native["fmax"], "mae": native["mae"],
            "mae320": report_metrics(folder / "cuhk/ddffnet320", ("mae",))["mae"],
            "sharp": report_metrics(folder / "sharp", ("mean_blur",))["mean_blur"]}


def conditions(cand: dict[str, float], ref: dict[str, float]) -> dict[str, bool]:
    """Each figure within its margin of H8's."""
    return {k: cand[k] >= ref[k] + m if m < 0 else cand[k] <= ref[k] + m for k, m in MARGINS.items()}


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.script_parser("experiments/judge_19s.py", __doc__,
                          "python experiments/judge_19s.py --h8 runs/r21/judge/H8 --h8f runs/r19s")
    p.add_argument("--h8", type=Path, default=Path("runs/r21/judge/H8"))
    p.add_argument("--h8f", type=Path, default=Path("runs/r19s"))
    args = p.parse_args(argv)
    ref, cand = row(args.h8), row(args.h8f)
    ok = conditions(cand, ref)
    print("| model | native Fmax | native MAE | 320² MAE | sharp val |\n|---|---|---|---|---|")
    for name, r in (("H8 (two-label head)", ref), ("H8F (feature head)", cand)):
        print(f"| {name} | {r['fmax']:.4f} | {r['mae']:.4f} | {r['mae320']:.4f} | {r['sharp']:.4f} |")
    passed = all(ok.values())
    print(f"conditions: {ok} -> H8F {'passes' if passed else 'fails'}")
    sio.write_json_atomic(args.h8f / "verdict.json", {"H8": ref, "H8F": cand, "conditions": ok, "passes": passed,
                                                      "folders": {"H8": str(args.h8), "H8F": str(args.h8f)}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
