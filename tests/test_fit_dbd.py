"""The DBD logit transform: fitting on labelled images, storage in the model file, use at inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmenet import inference
from dmenet import calibrate
from dmenet.logits import blur_probability_from_logit, calibration_logit
from dmenet.models.model_io import load_model_file, save_model
from dmenet.models.recipe import DetectionPath
from dmenet.training import fit_dbd
from syndof import io
from model_helpers import tiny_dmenet as _tiny


def _overlapping_classes(rng, n=4, bias=1.0):
    """Logit maps whose true decision point is ``bias`` (classes overlap: S-like soft posteriors)."""
    logits, masks = [], []
    for _ in range(n):
        gt = np.zeros((40, 50), bool)
        gt[:, : rng.integers(15, 35)] = True
        z = np.where(gt, 1.5, -1.5) + bias + rng.normal(0, 1.0, gt.shape)
        logits.append(z.astype(np.float32))
        masks.append(gt)
    return logits, masks


def test_transform_defaults_to_s_probability():
    z = np.linspace(-6, 6, 25, dtype=np.float32)
    assert np.allclose(blur_probability_from_logit(z), 1 / (1 + np.exp(-z)), atol=1e-6)
    p = blur_probability_from_logit(z, 4.0, 1.0)
    assert np.allclose(p, 1 / (1 + np.exp(-4.0 * (z - 1.0))), atol=1e-6)
    assert p.dtype == np.float32 and 0.0 <= p.min() and p.max() <= 1.0


def test_fit_recovers_the_decision_point_and_beats_s(rng):
    logits, masks = _overlapping_classes(rng, bias=1.0)
    fit = fit_dbd.fit_logit_transform(logits, masks)
    assert fit.shift == pytest.approx(1.0, abs=0.26)  # the shifted decision point, to the grid step
    assert fit.scale in fit_dbd.SCALES and fit.scale > 1.0  # steeper than the soft posterior
    assert fit.mae < fit.s_mae - 0.05  # MAE falls clearly ...
    assert fit.mae - fit.fmax <= fit.s_mae - fit.s_fmax  # ... and (1, 0) is in the grid, so never worse
    # the reported scores are those of the chosen transform
    mae, fmax = fit_dbd._scores(logits, masks, fit.scale, fit.shift)
    assert (mae, fmax) == (pytest.approx(fit.mae), pytest.approx(fit.fmax))


def test_all_sharp_images_score_their_false_blur_and_move_the_shift(rng):
    """An all-sharp mask adds its mean probability to the MAE term and no Fmax; with all-sharp maps whose logits sit
    just below the two-class images' decision point, the fit moves the shift up (towards "sharp")."""
    logits, masks = _overlapping_classes(rng, bias=0.0)
    alone = fit_dbd.fit_logit_transform(logits, masks)
    sharp = [rng.normal(-0.6, 0.3, (40, 50)).astype(np.float32) for _ in range(4)]
    mixed = fit_dbd.fit_logit_transform(logits + sharp, masks + [np.zeros((40, 50), bool)] * 4)
    assert mixed.shift > alone.shift
    mae, fmax = fit_dbd._scores(logits + sharp, masks + [np.zeros((40, 50), bool)] * 4, 2.0, 0.5)
    mae2, fmax2 = fit_dbd._scores(logits, masks, 2.0, 0.5)
    false_blur = np.mean([blur_probability_from_logit(z, 2.0, 0.5).mean() for z in sharp])
    assert fmax == pytest.approx(fmax2) and mae == pytest.approx((4 * mae2 + 4 * false_blur) / 8)
    assert alone.grid["objective"] == fit_dbd.OBJECTIVE and "over the 4 with both classes" in mixed.grid["objective"]
    with pytest.raises(ValueError, match="both blurred and sharp"):
        fit_dbd.fit_logit_transform(sharp, [np.zeros((40, 50), bool)] * 4)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="need as many masks"):
        fit_dbd.fit_logit_transform([], [])
    with pytest.raises(ValueError, match="differ in size"):
        fit_dbd.fit_logit_transform([np.zeros((4, 5), np.float32)], [np.zeros((4, 6), bool)])
    with pytest.raises(ValueError, match="scale must be > 0"):
        DetectionPath(scale=0.0)


def test_transform_round_trips_and_drives_inference(tmp_path):
    model = _tiny()
    model.recipe = model.recipe.with_transform(3.0, -0.5)
    save_model(tmp_path / "m.safetensors", model, {"note": "test"})
    loaded, _ = load_model_file(tmp_path / "m.safetensors")
    loaded.eval()
    assert (loaded.recipe.detection.scale, loaded.recipe.detection.shift) == (3.0, -0.5)
    image = np.random.default_rng(1).random((32, 48, 3)).astype(np.float32)
    result = inference.estimate(image, loaded)
    z = calibration_logit(loaded, result.label)
    expected = 1 / (1 + np.exp(-3.0 * (z.astype(np.float64) + 0.5)))
    assert np.allclose(result.blur_probability, expected, atol=1e-5)
    plain = inference.estimate_blur_probability(image, inference.Predictor(loaded, loaded.recipe.with_transform(1, 0)))
    assert np.allclose(plain, 1 / (1 + np.exp(-z.astype(np.float64))), atol=1e-5)


def test_cli_fits_on_a_labelled_folder_and_reports_bad_input(tmp_path, rng):
    model = _tiny()
    src = tmp_path / "m.safetensors"
    save_model(src, model, {})
    lab = tmp_path / "lab"
    for i in range(2):
        img = rng.random((48, 64, 3)).astype(np.float32)
        img[:, 32:] = 0.5  # flat half: a crude "blurred" region
        io.write_image(lab / "image" / f"a{i}.png", img)
        mask = np.zeros((48, 64), np.float32)
        mask[:, 32:] = 1.0
        io.write_image(lab / "gt" / f"a{i}.png", mask)
    out = tmp_path / "fitted.safetensors"
    assert calibrate.main(["dbd", "--model", str(src), "--labelled", str(lab), "--out", str(out)]) == 0
    fitted, meta = load_model_file(out)
    entry = meta["history"][-1]
    cal = entry["result"]
    assert entry["tool"] == "dmenet.calibrate dbd" and entry["data"] == [str(lab)] and entry["date"]
    assert (fitted.recipe.detection.scale, fitted.recipe.detection.shift) == (cal["scale"], cal["shift"])
    fit = fitted.recipe.detection.transform_fit
    assert (fit.tool, fit.flips, fit.bn, fit.data) == ("dmenet.calibrate dbd", 1, fitted.recipe.detection.bn,
                                                       (str(lab),))
    assert cal["images"] == ["a0.png", "a1.png"] and cal["n_images"] == 2
    assert cal["train_mae"] - cal["train_fmax"] <= cal["train_mae_s_probability"] - cal["train_fmax_s_probability"]
    for a, b in zip(fitted.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)  # weights untouched
    # bad input: a folder without gt/, and a mask of the wrong size
    (tmp_path / "nogt" / "image").mkdir(parents=True)
    assert calibrate.main(["dbd", "--model", str(src), "--labelled", str(tmp_path / "nogt"), "--out",
                           str(tmp_path / "y.safetensors")]) == 2
    io.write_image(lab / "gt" / "a1.png", np.zeros((10, 10), np.float32))
    assert calibrate.main(["dbd", "--model", str(src), "--labelled", str(lab), "--out",
                           str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()
