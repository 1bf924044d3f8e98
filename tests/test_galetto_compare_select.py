"""Review fixes of the Galetto & Deng tools: galetto.compare writes a new --out all or nothing and never replaces an
earlier run, passes model files the way every dmenet tool does (``--model`` for every learned method,
``NAME:model=PATH`` for one); galetto.select keys its candidates by enum members and still writes the same
selection.json; the galetto method's σ top follows the units resize rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmenet.galetto import compare, select
from dmenet.galetto.blurmap import Readout
from dmenet.galetto.refine import Refine
from dmenet.methods import MethodOptions, parse_method
from galetto_helpers import one_error_line, snapshot, write_tiny_classifier, write_val_renders


@pytest.fixture()
def val_folder(tmp_path):
    return write_val_renders(tmp_path / "val")


@pytest.fixture()
def model_file(tmp_path):
    return write_tiny_classifier(tmp_path)


# ------------------------------------------------------------------------------------------------------ compare
def run_compare(model: Path, out: Path, *extra: str) -> int:
    return compare.main(["--method", f"galetto:model={model},stride=32", "--threads", "1", "--out", str(out), *extra])


def test_compare_never_replaces_an_earlier_run(val_folder, model_file, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert run_compare(model_file, out, "--synthetic", str(val_folder)) == 0
    before = snapshot(out)
    assert sorted(before) == ["metrics.json", "summary.md"]
    assert "synthetic" in json.loads(before["metrics.json"])
    capsys.readouterr()
    assert run_compare(model_file, out, "--synthetic", str(val_folder)) == 2
    line = one_error_line(capsys)
    assert f"--out {out}" in line and "not empty" in line
    assert snapshot(out) == before  # the first run's metrics.json byte-identical
    assert not [p for p in tmp_path.iterdir() if ".part-" in p.name]


def test_compare_writes_nothing_when_a_later_check_fails(val_folder, model_file, tmp_path, capsys):
    out = tmp_path / "cmp"
    # --synthetic is scored first, then --rtf fails on a folder that is not there: no half-written --out
    assert run_compare(model_file, out, "--synthetic", str(val_folder), "--rtf", str(tmp_path / "no_rtf")) == 2
    assert "synthetic" in capsys.readouterr().out
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".part-" in p.name]


def test_compare_model_file_per_method(model_file, tmp_path, capsys):
    from dmenet.galetto.method import DEFAULT_MODEL

    methods = compare.build([parse_method(f"galetto:model={model_file}"), parse_method("galetto"),
                             parse_method("lbp")], MethodOptions())
    assert methods[f"galetto:model={model_file}"].model_file == model_file
    assert methods["galetto"].model_file == DEFAULT_MODEL
    # --model is for every learned method, as in every dmenet tool: a classical-only run refuses it ...
    assert compare.main(["--method", "lbp", "--model", str(model_file), "--out", str(tmp_path / "a")]) == 2
    assert "no chosen method loads a model file" in one_error_line(capsys)
    # ... and a method that cannot read it is named, with the per-method spelling as the way out
    assert compare.main(["--method", "galetto", "dmenet", "--model", str(model_file), "--out",
                         str(tmp_path / "b")]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: --method dmenet: ") and "NAME:model=PATH" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ------------------------------------------------------------------------------------------------------- select
def test_select_candidates_are_enum_keyed_in_the_rule_order(val_folder, model_file):
    from dmenet.galetto.train import load_classifier

    scores = select.candidates_mae(load_classifier(model_file), val_folder, 32, 0.0)
    keys = list(scores)
    assert keys == [select.Candidate(m, r, 0.0) for m in Readout for r in Refine]
    assert all(k.readout is m and k.refine is r for k, (m, r) in zip(keys, [(m, r) for m in Readout for r in Refine]))
    assert str(keys[0]) == "readout=argmax,refine=none,denoise=0"
    assert str(select.Candidate(Readout.EXPECTATION, Refine.PAPER, 1.0)) == "readout=expectation,refine=paper,denoise=1"


def test_select_winner_and_json_format(val_folder, model_file, tmp_path, monkeypatch):
    """Stage 1 picks expectation/paper (lowest by more than the tolerance); its denoise=1 twin is lower still and
    wins. selection.json keeps the string keys of every candidate."""
    def fake_mae(model, root, stride, denoise, limit=None):
        out = {}
        for m in Readout:
            for r in Refine:
                good = m is Readout.EXPECTATION and r is Refine.PAPER
                out[select.Candidate(m, r, denoise)] = (0.10 if good else 0.20) - (0.05 if denoise == 1.0 else 0.0)
        return out

    monkeypatch.setattr(select, "candidates_mae", fake_mae)
    out = tmp_path / "sel"
    assert select.main(["--val", str(val_folder), "--model", str(model_file), "--threads", "1", "--out",
                        str(out)]) == 0
    result = json.loads((out / "selection.json").read_text())
    assert result["stage1_winner"] == "readout=expectation,refine=paper,denoise=0"
    assert result["winner"] == "readout=expectation,refine=paper,denoise=1"
    assert result["readout_of_winner"] == "expectation"
    assert set(result["scores"]) == {f"readout={m},refine={r},denoise={d}" for m in ("argmax", "expectation")
                                     for r in ("none", "paper", "code") for d in (0, 1)}
    assert result["scores"]["readout=expectation,refine=paper,denoise=1"] == pytest.approx(0.05)


# ------------------------------------------------------------------------------------------------------- method
def test_sigma_top_is_19_px_rescaled_by_the_units_resize_rule():
    from dmenet.galetto.method import SIGMA_MAX, BlurSource, GalettoEstimator
    from syndof import units

    est = GalettoEstimator(None, MethodOptions(max_side=64), {"blur": BlurSource.LABEL})
    assert est.sigma_top((91, 50, 3)) == units.rescale_sigma(SIGMA_MAX, 91 / 64) == 27.015625  # 19 · 91/64 exactly
    assert est.sigma_top((40, 64, 3)) == SIGMA_MAX  # fits: no rescale
