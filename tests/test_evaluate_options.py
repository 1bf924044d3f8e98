"""Options of ``evaluate`` and the methods it runs (docs/reliability.md H42): ``--out`` inside an earlier report or
unwritable, the ``split`` text, ``--max-side 0``, ``--dmenet-output label`` with ``--input-size``,
``dmenet_refined:precision``, the smallest working sizes of hifst and the Distill networks, and SG's GT
binarisation in ``sg_fm``."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dmenet import cli as dcli
from dmenet import evaluate
from dmenet.eval import dbd
from dmenet.eval import metrics as M
from dmenet.methods import MethodOptions, make_method
from hostile_helpers import assert_usage_error, digests, run_main, write_cuhk_pairs
from syndof import io


@pytest.fixture
def lab(tmp_path) -> Path:
    """4 CUHK-style pairs (image/ + gt/, white = blurred), 20 x 30 px."""
    return write_cuhk_pairs(tmp_path / "lab")


def _argv(data: Path, out: Path, *methods: str, extra=()) -> list[str]:
    return ["--benchmark", "cuhk", "--data", str(data), "--method", *methods, "--out", str(out), "--wandb",
            "disabled", "--threads", "1", *extra]


# ------------------------------------------------------------------------------------------------- A9 (evaluate)
@pytest.mark.parametrize("inside", ["metrics.json", "hifst", "lbp/again"])
def test_an_out_inside_an_earlier_report_is_refused(lab, tmp_path, capsys, inside):
    """``--out EARLIER/metrics.json`` made a folder of that name inside a finished report, and ``--out EARLIER/hifst``
    beside ``EARLIER/{lbp,laplacian}`` read as a method of that run."""
    earlier = tmp_path / "earlier"
    assert run_main(evaluate.main, _argv(lab, earlier, "lbp", "laplacian"), capsys)[0] == 0
    before = sorted(p.relative_to(earlier) for p in earlier.rglob("*"))
    out = earlier / inside
    rc, _, err = run_main(evaluate.main, _argv(lab, out, "lbp"), capsys)
    assert_usage_error(rc, err, f"--out {out}", str(earlier if inside != "lbp/again" else earlier / "lbp"))
    assert sorted(p.relative_to(earlier) for p in earlier.rglob("*")) == before  # nothing added


def test_an_out_beside_a_report_is_accepted(lab, tmp_path, capsys):
    """A sibling of an earlier report is a new report of its own: the same scores, the earlier one left as it was."""
    first, second = tmp_path / "first", tmp_path / "second"
    assert run_main(evaluate.main, _argv(lab, first, "lbp"), capsys)[0] == 0
    before = digests(first)
    assert run_main(evaluate.main, _argv(lab, second, "lbp"), capsys)[0] == 0
    assert digests(first) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "lab", "second"]
    scores = [json.loads((out / "metrics.json").read_text())["metrics"] for out in (first, second)]
    assert scores[0] == scores[1] and scores[0]["n_images"] == 4
    assert (second / "per_image.csv").read_bytes() == (first / "per_image.csv").read_bytes()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc takes no new files on Linux")
def test_an_unwritable_out_is_named_not_its_staged_name(lab, capsys):
    rc, _, err = run_main(evaluate.main, _argv(lab, Path("/proc/x"), "lbp"), capsys)
    line = assert_usage_error(rc, err, "--out /proc/x")
    assert ".part" not in line


def test_split_says_how_many_were_found_and_how_many_kept(lab, tmp_path, capsys):
    out = tmp_path / "o"
    assert run_main(evaluate.main, _argv(lab, out, "lbp", extra=("--limit", "2")), capsys)[0] == 0
    split = json.loads((out / "metrics.json").read_text())["split"]
    assert split == f"4 samples found in {lab}, 2 kept, first 2"
    out = tmp_path / "all"
    assert run_main(evaluate.main, _argv(lab, out, "lbp"), capsys)[0] == 0
    assert json.loads((out / "metrics.json").read_text())["split"] == f"4 samples found in {lab}"


def test_max_side_0_is_full_resolution_in_evaluate_as_in_predict(lab, tmp_path, capsys):
    """README: ``--max-side 0`` = full resolution (predict); evaluate, through the same flag, refused it."""
    assert run_main(evaluate.main, _argv(lab, tmp_path / "o", "laplacian", extra=("--max-side", "0")), capsys)[0] == 0
    args = evaluate.build_parser().parse_args(_argv(lab, tmp_path / "p", "lbp", extra=("--max-side", "0")))
    assert args.max_side == 0 and dcli.method_options(args).max_side is None
    rc, _, err = run_main(evaluate.main, _argv(lab, tmp_path / "q", "lbp", extra=("--max-side", "-1")), capsys)
    assert_usage_error(rc, err, "--max-side")


# ------------------------------------------------------------------------------------------------ A13 (evaluate)
def test_dmenet_output_label_with_input_size_is_refused(lab, tmp_path, capsys):
    """The label is σ/7 of σ in photo px; under --input-size the method's σ is in px of an anisotropic resize."""
    argv = _argv(lab, tmp_path / "o", "lbp", extra=("--input-size", "32", "--dmenet-output", "label"))
    rc, _, err = run_main(evaluate.main, argv, capsys)
    assert_usage_error(rc, err, "--dmenet-output label", "--input-size")
    assert not (tmp_path / "o").exists()


# -------------------------------------------------------------------------------------------------- B8 (methods)
def test_dmenet_refined_takes_dmenets_precision():
    from dmenet.inference import Precision

    est = make_method("dmenet_refined", MethodOptions(extra=(("precision", "bf16"), ("refine", "paper"))))
    assert est.base.predictor.precision is Precision.BF16
    assert est.method_settings() == {"precision": "bf16", "refine": "paper"}
    assert make_method("dmenet_refined").method_settings() == {"precision": "fp32", "refine": "code"}
    with pytest.raises(ValueError, match="dmenet_refined has no option.*stride.*valid: refine, precision"):
        make_method("dmenet_refined", MethodOptions(extra=(("stride", 8),)))


# ------------------------------------------------------------------------------------------------- B10 (methods)
@pytest.mark.parametrize("name, smallest", [("hifst", 15), ("distill_student", 32)])
def test_a_working_size_too_small_to_measure_is_refused(name, smallest):
    """At max_side 1 both gave all-1.0 maps, silently (dmenet and galetto refuse with one line)."""
    for side in (1, smallest - 1):
        with pytest.raises(ValueError, match=rf"max_side {side} px.*max_side >= {smallest} px"):
            make_method(name, MethodOptions(max_side=side))
    image = np.random.default_rng(0).random((48, 64, 3)).astype(np.float32)
    blur = make_method(name, MethodOptions(max_side=smallest)).blur_map(image)
    assert blur.shape == (48, 64) and float(blur.std()) > 0


# ------------------------------------------------------------------------------------------------------ A8 (sg_fm)
def _sg_eval_fm(mask_white_u8: np.ndarray, gt_u8: np.ndarray, beta2: float = 0.3) -> float:
    """SG eval.py's per-image F (shangcai1/SG ``eval1``, m = 1.5), written out: the saved map /255, T = min(1,
    1.5·mean), map >= T; GT /255 > 0.1; scikit-learn P / R (0 when undefined)."""
    mask = mask_white_u8.astype(float) / 255.0
    pos = mask >= min(1.0, 1.5 * mask.mean())
    gt = gt_u8.astype(float) / 255.0 > 0.1
    tp = np.count_nonzero(pos & gt)
    p = tp / np.count_nonzero(pos) if np.count_nonzero(pos) else 0.0
    r = tp / np.count_nonzero(gt) if np.count_nonzero(gt) else 0.0
    return 0.0 if p == 0 and r == 0 else (1 + beta2) * p * r / (beta2 * p + r)


def _anti_aliased(size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit GT, white = in focus, with an anti-aliased edge of values 60 and 120, between SG's 0.1·255 and the
    project's 0.5·255; the blur map (1 = blurred) as 8-bit levels) of a xu100-like image."""
    gt = np.zeros((size, size), np.uint8)
    gt[:, :12] = 255  # in focus
    gt[:, 12:14] = 120  # the edge: white for SG (> 0.1), blurred for the project (< 0.5)
    gt[:, 14:16] = 60
    blur = np.full((size, size), 230, np.uint8)
    blur[:, :16] = 10  # the map calls the edge in focus
    return gt, blur


def test_sg_fm_binarises_the_gt_as_sg_eval_py_does_on_an_anti_aliased_mask():
    gt_u8, blur_u8 = _anti_aliased()
    pred = blur_u8.astype(np.float32) / 255
    binary = (gt_u8.astype(np.float32) / 255) < 0.5  # the project's mask, 1 = blurred (white = in focus)
    sg = _sg_eval_fm(255 - blur_u8, gt_u8)
    got = M.sg_fm(pred, binary, white_is_blurred=False, white_level=gt_u8.astype(np.float32) / 255)
    assert got == pytest.approx(sg, abs=1e-12)
    assert M.sg_fm(pred, binary, white_is_blurred=False) != pytest.approx(sg, abs=1e-3)  # the >= 0.5 rule differs
    acc = dbd.DBDAccumulator(resolution="native", white_is_blurred=False)
    row = acc.add("a", pred, binary, white_level=gt_u8.astype(np.float32) / 255)
    assert row["sg_fm"] == pytest.approx(sg, abs=1e-12)


def test_evaluate_scores_sg_fm_on_the_gt_files_own_values(tmp_path, capsys):
    """xu100 layout, 320x320 (no resize): evaluate's per-image sg_fm equals SG eval.py's on the same files."""
    data, preds = tmp_path / "xu", tmp_path / "preds"
    expected = {}
    for i in range(3):
        gt_u8, blur_u8 = _anti_aliased(320)
        blur_u8 = np.roll(blur_u8, 3 * i, axis=1)
        io.write_image(data / "gt" / f"{i}.png", gt_u8)
        io.write_image(preds / f"{i}.png", blur_u8)
        expected[str(i)] = _sg_eval_fm(255 - blur_u8, gt_u8)
    out = tmp_path / "o"
    argv = ["--benchmark", "xu100", "--data", str(data), "--predictions", str(preds), "--out", str(out),
            "--wandb", "disabled"]
    assert run_main(evaluate.main, argv, capsys)[0] == 0
    with open(out / "per_image.csv") as f:
        got = {row["stem"]: float(row["sg_fm"]) for row in csv.DictReader(f)}
    assert got == pytest.approx(expected, abs=1e-6)
