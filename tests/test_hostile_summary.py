"""Hostile / careless use of ``dmenet.summary`` (docs/reliability.md §6): D33."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmenet import summary
from hostile_helpers import assert_usage_error, run_main

TINY = Path(__file__).resolve().parents[1] / "experiments" / "tiny.yaml"


@pytest.mark.parametrize("size", ["0", "-16", "17", "100000"])
def test_d33_size_out_of_range_is_one_line_before_any_allocation(capsys, monkeypatch, size):
    monkeypatch.setattr(summary, "build_dmenet", lambda *a, **k: pytest.fail("model built for an invalid --size"))
    assert_usage_error(*run_main(summary.main, ["--config", TINY, "--size", size], capsys)[::2], "--size", size)


def test_valid_size_still_counts(capsys):
    from dmenet.config import load_config

    rc, out, err = run_main(summary.main, ["--config", TINY, "--size", "32"], capsys)
    assert rc == 0 and "input 32x32" in out, err
    rows = summary.summarize(load_config(TINY).model, size=32)
    assert [name for name, _, _ in rows] == ["B encoder", "B decoder", "B total", "D", "S", "C (frozen)"]
    lines = out.splitlines()
    for name, n, flops in rows:  # every count printed as summarize gives it
        assert f"{name:<12} {n:>14,} {n / 1e6:>8.3f} {flops / 1e9:>10.2f}" in lines, name
    assert "S                     1,021" in out  # by hand: tests/test_models.py::test_summary_counts


@pytest.mark.parametrize("override, names", [("model.width=1e6", "model.width"),
                                             ("model.refine_blocks=100000", "model.refine_blocks"),
                                             ("model.mobilenet_d0=100000", "model.mobilenet_d0")])
def test_h51_absurd_channel_counts_are_one_line_not_an_allocation_traceback(capsys, monkeypatch, override, names):
    """``--set model.width=1e6`` asked torch for 884 GB inside a layer constructor: a 35-line traceback."""
    monkeypatch.setattr(summary, "build_dmenet", lambda *a, **k: pytest.fail("model built for an absurd config"))
    rc, _, err = run_main(summary.main, ["--config", TINY, "--size", "32", "--set", override], capsys)
    assert rc == 2 and names in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
