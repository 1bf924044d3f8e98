"""The σ recalibration curve: L1 isotonic fit, storage in the recipe / model file, use at inference, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dmenet import calibrate, inference
from dmenet.config import dump_config, load_config
from dmenet.configlib import ConfigError
from dmenet.models import sigma_curve as sc
from dmenet.models.config import ModelConfig
from dmenet.models.dmenet import build_dmenet
from dmenet.models.model_io import load_model_file, save_model
from dmenet.models.recipe import Recipe, SigmaPath
from syndof import io

SIGMA_MAX = 7.0


def _tiny():
    torch.manual_seed(0)
    return build_dmenet(ModelConfig(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25)).eval()


def _hist(values, weights=None):
    """One histogram row holding the given true σ values (px)."""
    row = np.zeros(int(round(SIGMA_MAX / sc.TRUE_BIN_PX)) + 1)
    for v, w in zip(values, weights or [1.0] * len(values)):
        row[int(round(v / sc.TRUE_BIN_PX))] += w
    return row


def test_isotonic_median_keeps_ordered_medians_and_pools_violators():
    ordered = np.stack([_hist([1.0] * 3), _hist([2.0] * 3), _hist([5.0] * 3)])
    assert np.allclose(sc.isotonic_median(ordered), [1.0, 2.0, 5.0], atol=sc.TRUE_BIN_PX)
    # rows 1 and 2 are out of order; the heavier row wins the pooled median (L1: the weighted median)
    rows = np.stack([_hist([1.0]), _hist([4.0], [1.0]), _hist([3.0], [3.0]), _hist([6.0])])
    out = sc.isotonic_median(rows)
    assert np.all(np.diff(out) >= 0)
    assert out[1] == out[2] == pytest.approx(3.0, abs=sc.TRUE_BIN_PX)
    assert out[0] == pytest.approx(1.0, abs=sc.TRUE_BIN_PX) and out[3] == pytest.approx(6.0, abs=sc.TRUE_BIN_PX)
    with pytest.raises(ValueError, match="empty"):
        sc.isotonic_median(np.stack([_hist([1.0]), np.zeros_like(_hist([1.0]))]))


def test_isotonic_median_is_the_best_monotone_fit(rng):
    """Against brute force on a coarse grid: no non-decreasing step function has a lower L1 error."""
    rows = np.stack([_hist(list(rng.choice(np.arange(0, 7.01, 0.5), 5))) for _ in range(4)])
    fit = sc.isotonic_median(rows)
    centres = np.arange(rows.shape[1]) * sc.TRUE_BIN_PX

    def cost(values):
        return sum(float(np.sum(r * np.abs(centres - v))) for r, v in zip(rows, values))

    grid = np.arange(0, 7.01, 0.5)
    best = min(cost(v) for v in np.array(np.meshgrid(grid, grid, grid, grid)).reshape(4, -1).T
               if np.all(np.diff(v) >= 0))
    assert np.all(np.diff(fit) >= 0)
    assert cost(fit) <= best + 1e-9


def test_fit_undoes_a_compressing_model(rng):
    """A model that reports 0.6·σ (capped, as the lite model is for large σ): the curve maps it back."""
    true = rng.uniform(0.0, SIGMA_MAX, (200, 300)).astype(np.float32)
    pred = (0.6 * true + rng.normal(0.0, 0.05, true.shape)).clip(0, SIGMA_MAX).astype(np.float32)
    hists = sc.sigma_histograms(pred, true, 29, SIGMA_MAX)
    assert hists.sum() == true.size
    curve = sc.fit_sigma_curve(hists, SIGMA_MAX)
    knots = sc.curve_knots(29, SIGMA_MAX)
    inside = (knots > 0.3) & (knots < 0.6 * SIGMA_MAX - 0.3)
    assert np.allclose(curve[inside], knots[inside] / 0.6, atol=0.15)
    sc.check_sigma_curve(curve, SIGMA_MAX)
    fixed = sc.apply_sigma_curve(pred, curve, SIGMA_MAX)
    assert fixed.dtype == np.float32 and fixed.shape == pred.shape
    assert np.mean(np.abs(fixed - true)) < 0.2 * np.mean(np.abs(pred - true))


def test_unfitted_ends_keep_the_identity_offset():
    hists = np.zeros((8, int(round(SIGMA_MAX / sc.TRUE_BIN_PX)) + 1))
    hists[2] = _hist([2.5], [5000])  # knot 2 = 2.0 px: true 2.5 (+0.5)
    hists[3] = _hist([3.5], [5000])  # knot 3 = 3.0 px: true 3.5 (+0.5)
    hists[6] = _hist([6.0], [10])    # too few pixels: not fitted
    curve = sc.fit_sigma_curve(hists, SIGMA_MAX, min_pixels=1000)
    assert np.allclose(curve, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.0], atol=sc.TRUE_BIN_PX)
    with pytest.raises(ValueError, match="at least 2"):
        sc.fit_sigma_curve(hists[:3], SIGMA_MAX, min_pixels=1000)


def test_recipe_checks_and_round_trips_the_curve(tmp_path):
    with pytest.raises(ValueError, match="non-decreasing"):
        SigmaPath(curve=(0.0, 2.0, 1.0))
    with pytest.raises(ValueError, match="lie in"):
        Recipe(sigma=SigmaPath(curve=(0.0, 8.0))).check(SIGMA_MAX)
    with pytest.raises(ValueError, match="at least 2"):
        SigmaPath(curve=(1.0,))
    with pytest.raises(ValueError, match="non-finite"):
        SigmaPath(curve=(0.0, float("nan")))
    assert SigmaPath(curve=[0, 3.5, 7]).curve == (0.0, 3.5, 7.0)
    # a fitted value is not a training option: an old run config with a curve is refused, one without reloads
    with pytest.raises(ConfigError, match="unknown config key 'model.sigma_curve'"):
        load_config(None, ["model.sigma_curve=[0, 1, 7]"])
    dumped = tmp_path / "config.yaml"
    dumped.write_text(dump_config(load_config(None)).replace("model:\n", "model:\n  sigma_curve: [0, 2.5, 7]\n"))
    with pytest.raises(ConfigError, match="model.sigma_curve is a fitted inference value"):
        load_config(dumped)
    with pytest.raises(ConfigError, match="scalar"):  # lists only where the field takes one
        load_config(None, ["model.width=[1, 2]"])

    model = _tiny()
    model.recipe = model.recipe.with_sigma_curve((0.0, 2.0, 7.0))
    save_model(tmp_path / "m.safetensors", model, {})
    assert json.loads((tmp_path / "m.json").read_text())["recipe"]["sigma"]["curve"] == [0.0, 2.0, 7.0]
    loaded, _ = load_model_file(tmp_path / "m.safetensors")
    assert loaded.recipe.sigma.curve == (0.0, 2.0, 7.0)
    bad = json.loads((tmp_path / "m.json").read_text())
    bad["recipe"]["sigma"]["curve"] = [0.0, 9.0]  # beyond this model's σ_max
    (tmp_path / "m.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="lie in"):
        load_model_file(tmp_path / "m.safetensors")


def test_inference_maps_sigma_but_not_the_label_or_detection():
    model = _tiny()
    image = np.random.default_rng(3).random((40, 56, 3)).astype(np.float32)
    plain = inference.estimate(image, model)
    curved = inference.estimate(image, inference.Predictor(model, Recipe().with_sigma_curve((0.0, 6.0, 7.0))))
    assert np.array_equal(curved.label, plain.label)
    assert np.array_equal(curved.blur_probability, plain.blur_probability)
    expected = np.interp(plain.sigma, [0.0, 3.5, 7.0], [0.0, 6.0, 7.0])
    assert np.allclose(curved.sigma, expected, atol=1e-5)
    # with max_side the curve applies at the working size (σ_work = σ / 2 here), then σ is rescaled to the
    # input's px: a linear curve σ → 3σ/7 commutes with the bilinear resize, so the map is the plain one × 3/7
    small = inference.estimate(image, inference.Predictor(model, Recipe().with_sigma_curve((0.0, 3.0))), max_side=28)
    small_plain = inference.estimate(image, model, max_side=28)
    assert small.sigma.shape == image.shape[:2]
    assert np.allclose(small.sigma, small_plain.sigma * 3.0 / 7.0, atol=1e-4)


def _syndof_folder(root, rng, n=3):
    for i in range(n):
        sigma = np.zeros((48, 64), np.float32)
        sigma[:, 32:] = 1.0 + i
        io.write_image(root / "image" / f"s_{i}.png", rng.random((48, 64, 3)).astype(np.float32))
        io.write_sigma_map(root / "blur_map" / f"s_{i}.png", sigma)
    io.write_json_atomic(root / "dataset.json", {"format": "syndof", "max_coc": 29})


def test_cli_fits_writes_a_model_and_reports_bad_input(tmp_path, rng, capsys):
    model = _tiny()
    save_model(tmp_path / "m.safetensors", model, {"note": "kept"})
    data = tmp_path / "data"
    _syndof_folder(data, rng)
    (data / "image" / "broken.png").write_bytes(b"not a png")
    rc = calibrate.main(["sigma", "--model", str(tmp_path / "m.safetensors"), "--data", str(data), "--values", "8",
                         "--min-pixels", "100", "--flips", "2", "--out", str(tmp_path / "fit.safetensors")])
    assert rc == 0
    fitted, meta = load_model_file(tmp_path / "fit.safetensors")
    curve = fitted.recipe.sigma.curve
    assert curve is not None and len(curve) == 8 and np.all(np.diff(curve) >= 0)
    entry = meta["history"][-1]
    cal = entry["result"]
    assert entry["tool"] == "dmenet.calibrate sigma" and entry["data"] == [str(data)]
    assert cal["n_images"] == 3 and len(cal["skipped"]) == 1 and "broken.png" in cal["skipped"][0]
    assert cal["fit_label_mae_after"] <= cal["fit_label_mae_before"]
    assert cal["flips"] == 2 and meta["note"] == "kept"
    fit = fitted.recipe.sigma.curve_fit
    assert fitted.recipe.flips == 2 and (fit.flips, fit.bn, fit.data) == (2, fitted.recipe.sigma.bn, (str(data),))
    assert sum(cal["pixels_per_value"]) == 3 * 48 * 64
    for name, tensor in model.state_dict().items():  # no weight changes
        assert torch.equal(tensor, fitted.state_dict()[name])

    empty = tmp_path / "empty"
    (empty / "image").mkdir(parents=True)
    rc = calibrate.main(["sigma", "--model", str(tmp_path / "m.safetensors"), "--data", str(empty),
                         "--out", str(tmp_path / "x.safetensors")])
    assert rc == 2 and not (tmp_path / "x.safetensors").exists()
    assert "no images" in capsys.readouterr().err


def test_raw_sigma_option_of_predict_and_evaluate(tmp_path, rng):
    """--raw-sigma gives B's own σ; without it σ goes through the curve (here the linear σ → 3σ/7)."""
    from dmenet import evaluate, predict

    model = _tiny()
    model.recipe = model.recipe.with_sigma_curve((0.0, 3.0))
    save_model(tmp_path / "m.safetensors", model, {})
    io.write_image(tmp_path / "in" / "x.png", rng.random((48, 64, 3)).astype(np.float32))
    maps = {}
    for name, extra in (("curve", []), ("raw", ["--raw-sigma"])):
        out = tmp_path / name
        assert predict.main([str(tmp_path / "in"), "--out", str(out), "--checkpoint", str(tmp_path / "m.safetensors"),
                             "--format", "npy", "--flips", "1", *extra]) == 0
        maps[name] = np.load(out / "x_sigma.npy")
    assert maps["raw"].max() > 0.1
    np.testing.assert_allclose(maps["curve"], maps["raw"] * 3.0 / 7.0, atol=1e-5)

    data = tmp_path / "syn"
    _syndof_folder(data, rng, n=1)
    scores = {}
    for name, extra in (("curve", []), ("raw", ["--raw-sigma"])):
        out = tmp_path / f"eval_{name}"
        assert evaluate.main(["--benchmark", "syndof", "--data", str(data), "--method", "dmenet", "--checkpoint",
                              str(tmp_path / "m.safetensors"), "--flips", "1", "--out", str(out),
                              "--wandb", "disabled", *extra]) == 0
        scores[name] = json.loads((out / "metrics.json").read_text())
    assert scores["curve"]["metrics"]["mae"] != pytest.approx(scores["raw"]["metrics"]["mae"], abs=1e-4)
    assert "2-value σ curve" in scores["curve"]["source"] and "no σ curve" in scores["raw"]["source"]
