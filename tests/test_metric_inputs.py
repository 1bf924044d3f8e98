"""Scoring refuses input it would score wrongly (one clear ValueError / InputError), and all-sharp GT masks are left
out of the F-measure / PR means: the audit's reproductions, each as a test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dmenet import evaluate
from dmenet.eval import benchmarks as B
from dmenet.eval import dbd, paired, rtf, syndof_test
from dmenet.eval import metrics as M
from dmenet.eval.protocols import make_protocol
from hostile_helpers import assert_logged_usage_error
from syndof import io

GT = np.zeros((20, 30), np.float32)
GT[:, 10:] = 1


# ------------------------------------------------------------------ 1. σ maps of another size are not cropped
def test_sigma_errors_refuse_a_map_of_another_size():
    gt = np.ones((360, 360))
    with pytest.raises(ValueError, match="180x180 but its GT 360x360"):
        rtf.rtf_errors(np.ones((180, 180)), gt)
    with pytest.raises(ValueError, match="label map is 180x180"):
        syndof_test.label_errors(np.ones((180, 180)), gt)
    # the network's ×16 crop (< 16 px per side) is still absorbed: common top-left size
    assert rtf.rtf_errors(np.ones((352, 345)), gt) == (0.0, 0.0)
    assert syndof_test.label_errors(gt[:345, :352], gt) == (0.0, 0.0)
    with pytest.raises(ValueError, match="2-D"):
        rtf.rtf_errors(np.ones((360, 360, 3)), gt)
    with pytest.raises(ValueError, match="NaN"):
        rtf.rtf_errors(np.full((360, 360), np.nan), gt)


@pytest.mark.parametrize("benchmark", ["rtf", "syndof"])
@pytest.mark.parametrize("option", [("--input-size", "180"), ("--map-resize", "nearest")])
def test_evaluate_refuses_dbd_resizing_options_on_sigma_benchmarks(tmp_path, caplog, benchmark, option):
    argv = ["--benchmark", benchmark, "--data", tmp_path, "--method", "lbp", *option,
            "--out", tmp_path / "out", "--wandb", "disabled"]
    assert_logged_usage_error(evaluate.main, argv, caplog, option[0], benchmark)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ 2. label maps are range-checked
@pytest.mark.parametrize("scale", [7.0, 255.0])
def test_regression_protocols_refuse_label_maps_outside_0_1(tmp_path, scale):
    sample = B.Sample("a", None, tmp_path / "a.mat")
    label = np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20)
    rtf_p = make_protocol(B.get_spec("rtf"), tmp_path)
    with pytest.raises(io.InputError, match="outside \\[0, 1\\]") as exc:
        rtf_p.score(sample, label * scale, label * 3.0)
    assert str(sample.gt) in str(exc.value)
    syn = make_protocol(B.get_spec("syndof"), tmp_path)
    with pytest.raises(io.InputError, match="outside \\[0, 1\\]"):
        syn.score(sample, label * scale, label)
    # σ maps (map kind sigma) are not range-checked; a [0, 1] label is scored
    make_protocol(B.get_spec("rtf"), tmp_path, map_kind="sigma").score(sample, label * scale, label * 3.0)
    syn.score(sample, label, label)
    assert syn.summary()["mae"] == 0.0


def test_regression_protocol_names_the_file_of_a_resized_map(tmp_path):
    sample = B.Sample("a", None, tmp_path / "a.mat")
    with pytest.raises(io.InputError, match="180x180 but its GT 360x360") as exc:
        make_protocol(B.get_spec("rtf"), tmp_path, map_kind="sigma").score(sample, np.ones((180, 180)),
                                                                           np.ones((360, 360)))
    assert str(sample.gt) in str(exc.value)


# ------------------------------------------------------------------ 3. DBDAccumulator checks its prediction
@pytest.mark.parametrize("pred, match", [
    (GT * 255, "outside|in \\[0, 1\\]"),
    ((GT * 255)[::2, ::2], "in \\[0, 1\\]"),
    (GT - 0.01, "in \\[0, 1\\]"),
    (np.where(GT > 0, np.nan, 0).astype(np.float32), "non-finite"),
    (GT.T.copy(), "aspect ratio"),
    (np.repeat(GT[..., None], 3, axis=2), "2-D.*colour"),
])
def test_dbd_accumulator_refuses_bad_predictions(pred, match):
    acc = dbd.DBDAccumulator()
    with pytest.raises(ValueError, match=match):
        acc.add("x", pred, GT)
    assert not acc.rows


def test_dbd_accumulator_checks_gt_and_aspect():
    acc = dbd.DBDAccumulator()
    with pytest.raises(ValueError, match="GT must be a 2-D"):
        acc.add("x", GT, np.repeat(GT[..., None], 3, axis=2))
    acc.add("half", GT[::2, ::2], GT)  # another size with the GT's aspect ratio: resized
    acc.add("rounding", np.clip(GT + 1e-7, 0, 1 + 1e-7), GT)  # float rounding past 1 is clipped
    assert acc.rows[1]["mae"] == pytest.approx(0.0, abs=1e-6) and acc.rows[0]["mae"] < 0.05
    square = dbd.DBDAccumulator(square_input=True)  # --input-size: maps are N×N whatever the GT
    square.add("sq", np.zeros((16, 16), np.float32), GT)
    with pytest.raises(ValueError, match="square"):
        square.add("not", GT, GT)


# ------------------------------------------------------------------ 4. paired bootstrap
def test_paired_bootstrap_refuses_one_image_and_wrong_indices():
    b, c = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.05, 0.25, 0.2, 0.3])
    with pytest.raises(ValueError, match="at least 2 images, got 1"):
        paired.paired_bootstrap(b[:1], c[:1], np.zeros((10, 1), np.int64))
    with pytest.raises(ValueError, match="at least 2"):
        paired.bootstrap_indices(1)
    with pytest.raises(ValueError, match="\\(resamples, 5\\)"):
        paired.paired_bootstrap(np.r_[b, 0.9], np.r_[c, 0.0], paired.bootstrap_indices(4, 100))
    with pytest.raises(ValueError, match="\\(resamples, 2\\)"):
        paired.paired_bootstrap(b[:2], c[:2], paired.bootstrap_indices(4, 100))
    with pytest.raises(ValueError, match="integers in \\[0, 4\\)"):
        paired.paired_bootstrap(b, c, np.full((10, 4), 7))
    with pytest.raises(ValueError, match="finite"):
        paired.paired_bootstrap(np.r_[b[:3], np.nan], c, paired.bootstrap_indices(4, 100))
    r = paired.paired_bootstrap(b, c, paired.bootstrap_indices(4, 1000))
    assert r.low < r.delta < r.high and r.n == 4


def test_paired_cli_gives_no_interval_for_one_image(tmp_path, capsys):
    for name, value in (("a", 0.3), ("b", 0.1)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "per_image.csv").write_text(f"stem,mae\nim0,{value}\n")
    assert paired.main([str(tmp_path / "a"), str(tmp_path / "b"), "--metric", "mae"]) == 0
    out = capsys.readouterr().out
    assert "no bootstrap interval" in out and "Δ -0.2000 [interval undefined], better on 1 of 1" in out


# ------------------------------------------------------------------ 5. all-sharp GT masks
def test_all_sharp_gt_is_left_out_of_f_and_pr_means():
    acc = dbd.DBDAccumulator()
    acc.add("a", GT, GT)
    row = acc.add("b", 0 * GT, 0 * GT)  # a perfect prediction of an all-sharp mask
    assert np.isnan(row["fmax"]) and np.isnan(row["f_at_0.5"]) and row["mae"] == 0.0
    s = acc.summary()
    assert s["fmax"] == 1.0 and s["f_at_0.5"] == 1.0 and s["adaptive_f_1.5"] == 1.0
    assert s["fmax_of_mean_curve"] == 1.0 and s["pr_auc"] == pytest.approx(1.0)
    assert s["f_skipped_all_sharp"] == 1 and s["n_images"] == 2 and s["mae"] == 0.0
    one = dbd.DBDAccumulator()
    one.add("a", GT, GT)
    assert "f_skipped_all_sharp" not in one.summary()  # reports without such masks keep their keys
    only = dbd.DBDAccumulator()
    only.add("b", 0 * GT, 0 * GT)
    with pytest.raises(ValueError, match="all sharp"):
        only.summary()


# ------------------------------------------------------------------ 6. GT binarisation
def test_metrics_refuse_non_binary_gt():
    raw = (GT * 255).astype(np.uint8)
    for fn in (M.mae, M.f_curve, M.fixed_threshold_prf, M.hifst_pr):
        with pytest.raises(ValueError, match="binary mask"):
            fn(GT, raw)
    with pytest.raises(ValueError, match="binary mask"):
        dbd.DBDAccumulator().add("x", GT, raw)
    # bool and {0, 1} of any dtype are the same GT
    assert M.mae(GT, GT.astype(bool)) == M.mae(GT, GT.astype(np.uint8)) == 0.0


# ------------------------------------------------------------------ 7. non-finite predictions
def test_metrics_refuse_non_finite_predictions():
    p = GT.copy()
    p[0, 0] = np.nan
    for fn in (M.mae, M.f_curve, M.fixed_threshold_prf, M.hifst_pr, M.oracle_accuracy, M.LevelCounts.from_map):
        with pytest.raises(ValueError, match="non-finite"):
            fn(p, GT)
    with pytest.raises(ValueError, match="2-D"):
        M.mae(np.repeat(GT[..., None], 3, axis=2), GT)


def test_a_path_in_a_message_is_the_sample_file(tmp_path):
    sample = B.Sample("x", None, Path(tmp_path / "x.png"))
    proto = make_protocol(B.get_spec("cuhk"), tmp_path)
    with pytest.raises(io.InputError, match="aspect ratio") as exc:
        proto.score(sample, GT.T.copy(), GT)
    assert str(sample.gt) in str(exc.value)
