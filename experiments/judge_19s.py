"""Rule 19s's gate (experiments/RULE_19S.md): the feature head H8F against the shipped two-label head H8.

    python experiments/judge_19s.py [--h8 runs/r21/judge/H8] [--h8f runs/r19s]

Reads ``{cuhk/native, cuhk/ddffnet320, sharp}/metrics.json`` under each folder (H8's from ``judge_21r.sh``, H8F's
from the commands of the rule), prints both rows and the three conditions, and writes ``H8F/verdict.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MARGINS = {"fmax": -0.005, "mae": 0.005, "mae320": 0.005, "sharp": 0.02}
"""Allowed change against H8 per figure (rule 19r's margins): Fmax may drop by 0.005, the others rise as given."""


def row(folder: Path) -> dict[str, float]:
    def metrics(part: str) -> dict:
        return json.loads((folder / part / "metrics.json").read_text())["metrics"]

    native = metrics("cuhk/native")
    return {"fmax": native["fmax"], "mae": native["mae"], "mae320": metrics("cuhk/ddffnet320")["mae"],
            "sharp": metrics("sharp")["mean_blur"]}


def conditions(cand: dict[str, float], ref: dict[str, float]) -> dict[str, bool]:
    """Each figure within its margin of H8's."""
    return {k: cand[k] >= ref[k] + m if m < 0 else cand[k] <= ref[k] + m for k, m in MARGINS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    (args.h8f / "verdict.json").write_text(json.dumps({"H8": ref, "H8F": cand, "conditions": ok,
                                                       "passes": passed}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
