"""Hostile / careless use of ``dmenet.evaluate`` (docs/reliability.md §5): D3, D29–D32."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dmenet import evaluate
from hostile_helpers import assert_logged_usage_error
from syndof import io

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cuhk_like(tmp_path) -> tuple[Path, Path]:
    """5 CUHK-style samples (image/ + gt/, white = blurred, 80 % blurred as defocus photos are) and predictions
    equal to the masks."""
    rng = np.random.default_rng(0)
    data, preds = tmp_path / "cuhk", tmp_path / "preds"
    for i in range(5):
        mask = np.full((20, 30), 255, np.uint8)
        mask[:, : 6] = 0  # a sharp subject on the left fifth
        io.write_image(data / "image" / f"s{i}.jpg", rng.random((20, 30, 3)).astype(np.float32))
        io.write_image(data / "gt" / f"s{i}.png", mask)
        io.write_image(preds / f"s{i}.png", mask)
    return data, preds


def _evaluate(data, preds, out, *extra) -> list[str]:
    return ["--benchmark", "cuhk", "--data", data, "--predictions", preds, "--out", out, "--wandb", "disabled",
            *extra]


def test_d29_benchmark_with_the_opposite_polarity_is_flagged(cuhk_like, tmp_path, caplog):
    data, preds = cuhk_like
    assert evaluate.main([str(a) for a in _evaluate(data, preds, tmp_path / "right")]) == 0
    assert json.loads((tmp_path / "right" / "metrics.json").read_text())["warnings"] == []
    argv = _evaluate(data, preds, tmp_path / "wrong")
    argv[1] = "dut"  # white = sharp: this folder would read as 20 % blurred
    caplog.clear()
    assert evaluate.main([str(a) for a in argv]) == 0
    warnings = json.loads((tmp_path / "wrong" / "metrics.json").read_text())["warnings"]
    assert len(warnings) == 1 and "--benchmark" in warnings[0] and "20%" in warnings[0]
    assert warnings[0] in caplog.text
    argv[1] = "syndof"  # binary masks read as σ labels
    argv[argv.index(tmp_path / "wrong")] = tmp_path / "wrong_syndof"  # a report is written once: a new folder
    assert evaluate.main([str(a) for a in argv]) == 0
    warnings = json.loads((tmp_path / "wrong_syndof" / "metrics.json").read_text())["warnings"]
    assert len(warnings) == 1 and "binary blur masks" in warnings[0]


@pytest.mark.parametrize("pattern", ["{name}.png", "{stem", "{0}.png", "{stem.x}"])
def test_d30_bad_pattern_is_a_usage_error(cuhk_like, tmp_path, caplog, pattern):
    data, preds = cuhk_like
    assert_logged_usage_error(evaluate.main, _evaluate(data, preds, tmp_path / "o", "--pattern", pattern), caplog,
                              "--pattern")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("limit", ["0", "-2"])
def test_d31_limit_below_one_is_a_usage_error(cuhk_like, tmp_path, caplog, limit):
    data, preds = cuhk_like
    assert_logged_usage_error(evaluate.main, _evaluate(data, preds, tmp_path / "o", "--limit", limit), caplog,
                              "--limit")


def test_d32_out_is_an_existing_file(cuhk_like, tmp_path, caplog):
    data, preds = cuhk_like
    target = tmp_path / "f"
    target.write_text("x")
    assert_logged_usage_error(evaluate.main, _evaluate(data, preds, target), caplog, "--out", str(target))
    assert target.read_text() == "x"


def test_d3_corrupt_checkpoint(cuhk_like, tmp_path, caplog):
    data, _ = cuhk_like
    bad = tmp_path / "c.safetensors"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    shutil.copy(REPO / "checkpoints" / "dmenet_lite.json", tmp_path / "c.json")
    assert_logged_usage_error(evaluate.main, ["--benchmark", "cuhk", "--data", data, "--checkpoint", bad, "--out",
                                              tmp_path / "o", "--wandb", "disabled"], caplog, str(bad))
    assert not (tmp_path / "o").exists()
