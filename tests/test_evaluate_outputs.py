"""``python -m dmenet.evaluate``'s ``--out``: written once, all or nothing (an existing report is never overwritten or
mixed with another run's files; a failing or interrupted run leaves no folder), and ``--stems`` checked up front."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dmenet import evaluate
from dmenet.eval import runner
from hostile_helpers import assert_usage_error, run_main, write_cuhk_pairs
from syndof import cli, io

SINGLE = {"metrics.json", "per_image.csv", "pr_curve.csv", "pr_curve.png", "f_curve.csv", "panel.png"}
"""A DBD report of one method (what ``_write`` and the DBD protocol wrote before the all-or-nothing change)."""


@pytest.fixture
def lab(tmp_path) -> Path:
    """4 CUHK-style pairs (image/ + gt/, white = blurred), 20 x 30 px."""
    return write_cuhk_pairs(tmp_path / "lab")


def _argv(data: Path, out: Path, *methods: str, benchmark: str = "cuhk", extra=()) -> list[str]:
    return ["--benchmark", benchmark, "--data", str(data), "--method", *methods, "--out", str(out), "--wandb",
            "disabled", "--threads", "1", *extra]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".part-" in p.name]


def test_success_writes_the_same_files_and_nothing_beside(lab, tmp_path):
    out = tmp_path / "ev" / "o1"  # parents are created, as before
    assert evaluate.main(_argv(lab, out, "laplacian")) == 0
    assert {p.name for p in out.iterdir()} == SINGLE
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["method"] == "laplacian" and meta["benchmark"] == "cuhk" and str(out) in meta["command"]
    assert _leftovers(out.parent) == []
    several = tmp_path / "ev" / "o2"
    several.mkdir()  # an empty folder may be the target
    assert evaluate.main(_argv(lab, several, "laplacian", "lbp")) == 0
    assert {p.name for p in several.iterdir()} == {"laplacian", "lbp", "summary.csv", "summary.md", "pr_curve.png"}
    for name in ("laplacian", "lbp"):
        assert {p.name for p in (several / name).iterdir()} == SINGLE
    assert _leftovers(several.parent) == []


def test_existing_report_is_refused_and_kept_byte_identical(lab, tmp_path, capsys):
    """Audit case 1: a second method, then another benchmark, into the same --out overwrote or mixed the report."""
    out = tmp_path / "o1"
    assert evaluate.main(_argv(lab, out, "laplacian")) == 0
    before = _snapshot(out)
    capsys.readouterr()
    for argv in (_argv(lab, out, "lbp"), _argv(lab / "image", out, "laplacian", benchmark="sharp"),
                 _argv(lab, out, "laplacian", "lbp")):
        rc, _, err = run_main(evaluate.main, argv, capsys)
        line = assert_usage_error(rc, err, "--out", str(out))
        assert "exists" in line
        assert _snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_refusal_comes_before_any_scoring(lab, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(evaluate, "make_sources", lambda *a: pytest.fail("a method was loaded"))
    rc, _, err = run_main(evaluate.main, _argv(lab, out, "laplacian"), capsys)
    assert_usage_error(rc, err, "--out")
    assert (out / "notes.txt").read_text() == "mine" and [p.name for p in out.iterdir()] == ["notes.txt"]


def _failing_second(monkeypatch, exc: BaseException) -> None:
    """The second of two sources fails after the first one's folder was written."""
    real = runner.evaluate_source
    calls = []

    def evaluate_source(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_source", evaluate_source)


def test_a_failing_method_leaves_no_folder(lab, tmp_path, monkeypatch, capsys):
    """Audit case 2 (``--method laplacian galetto:batch=0`` left laplacian/ behind): the whole --out is one set."""
    out = tmp_path / "o10"
    _failing_second(monkeypatch, io.InputError(lab / "image" / "s0.png", "lbp: broken"))
    rc, _, err = run_main(evaluate.main, _argv(lab, out, "laplacian", "lbp"), capsys)
    assert_usage_error(rc, err, "s0.png")
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(143)])
def test_an_interrupted_run_leaves_no_folder(lab, tmp_path, monkeypatch, exc):
    out = tmp_path / "o"
    _failing_second(monkeypatch, exc)
    if isinstance(exc, KeyboardInterrupt):  # entry_point: one line and 130, after the unwinding cleaned up
        assert evaluate.main(_argv(lab, out, "laplacian", "lbp")) == 130
    else:
        with pytest.raises(type(exc)):
            evaluate.main(_argv(lab, out, "laplacian", "lbp"))
    assert not out.exists() and _leftovers(tmp_path) == []


def test_an_interrupted_run_keeps_an_empty_target_folder(lab, tmp_path, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    _failing_second(monkeypatch, KeyboardInterrupt())
    assert evaluate.main(_argv(lab, out, "laplacian", "lbp")) == 130
    assert out.is_dir() and list(out.iterdir()) == [] and _leftovers(tmp_path) == []


def test_staged_folder_refuses_a_report_that_appeared_meanwhile(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(ValueError, match="--out"):
        with io.staged_folder(out) as stage:
            (stage / "metrics.json").write_text("new")
            out.mkdir()
            (out / "metrics.json").write_text("other run")
    assert (out / "metrics.json").read_text() == "other run" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("text", ["", "\n\n", "# header only\n"])
def test_stems_file_listing_nothing_is_named(lab, tmp_path, monkeypatch, capsys, text):
    """Audit case 3: an empty --stems file said 'no images were scored' without naming it."""
    stems = tmp_path / "stems.txt"
    stems.write_text(text)
    out = tmp_path / "o"
    monkeypatch.setattr(evaluate, "make_sources", lambda *a: pytest.fail("a method was loaded"))
    rc, _, err = run_main(evaluate.main, _argv(lab, out, "laplacian", extra=("--stems", stems)), capsys)
    assert_usage_error(rc, err, "--stems", str(stems))
    rc, _, err = run_main(evaluate.main, _argv(lab, out, "laplacian", extra=("--stems", tmp_path / "none.txt")),
                          capsys)
    assert_usage_error(rc, err, "--stems", "none.txt")
    assert not out.exists()


def test_a_method_given_twice_is_refused(lab, tmp_path, capsys):
    rc, _, err = run_main(evaluate.main, _argv(lab, tmp_path / "o", "lbp", "laplacian", "lbp"), capsys)
    assert_usage_error(rc, err, "--method", "lbp")
    assert not (tmp_path / "o").exists()


def test_out_problem_and_stems_problem():
    assert cli.new_folder_problem("/nonexistent/x", "evaluate writes a new folder") is None
    assert runner.stems_problem("/nonexistent/stems.txt").startswith("--stems /nonexistent/stems.txt")


def test_h55_a_long_thin_photo_gets_a_bounded_panel_not_a_failed_evaluation(tmp_path, capsys):
    """A 2×5000 photo scores like any other, but its panel tiles were scaled to the panel's height: 500 000 px wide
    each, past the PNG encoder's width limit, so the whole evaluation failed at its end ("error: PNG encoding
    failed", naming no file; nothing written). Tiles are at most ``MAX_TILE_ASPECT`` × as wide as high."""
    from dmenet.eval import report

    photos = tmp_path / "photos"
    io.write_image(photos / "strip.png", np.random.default_rng(0).random((2, 5000, 3)))
    io.write_image(photos / "square.png", np.random.default_rng(1).random((40, 40, 3)))
    out = tmp_path / "ev"
    rc, _, err = run_main(evaluate.main, _argv(photos, out, "laplacian", benchmark="sharp"), capsys)
    assert rc == 0, err
    panel = io.read_image(out / "panel.png")
    assert panel.shape[1] <= 3 * report.MAX_TILE_ASPECT * report.PANEL_HEIGHT + 8
    assert {r["stem"] for r in csv.DictReader(open(out / "per_image.csv"))} == {"strip", "square"}
