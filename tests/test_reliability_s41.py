"""docs/reliability.md §41: the twelfth review, units and scale (V1–V4): the inverse-depth law in one place, σ scaled
by the factor an image got (not the one asked), a SYNDOF folder's ``max_coc`` read checked, and the house rule
"resizing an image by s scales its blur by s" through the training pipeline's resizes."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from test_reliability_s32 import _error_line, _run, _script

from dmenet.data import transforms
from syndof import io as sio
from syndof import resize, units


def test_v1_inverse_depth_to_mm_is_the_one_law_of_the_8_bit_maps_and_the_generated_scenes():
    """V1: ``1/z = 1/far + t·(1/near − 1/far)`` was written out in ``syndof.random_depth``, ``syndof.scenes`` and
    ``experiments/build_training_set.py`` beside ``units.inverse_depth8_to_mm``. The helper maps nearness 1 → near,
    0 → far, linear in inverse depth; the 8-bit reader is it at ``v/255`` to the last bit; a bad range or nearness is
    refused."""
    t = np.array([0.0, 0.25, 0.5, 1.0])
    z = units.inverse_depth_to_mm(t, 1000.0, 4000.0)
    assert z.dtype == np.float64 and z[0] == pytest.approx(4000.0) and z[-1] == pytest.approx(1000.0)
    assert np.allclose(1.0 / z, 1.0 / 4000.0 + t * (1.0 / 1000.0 - 1.0 / 4000.0), rtol=0, atol=1e-18)
    v = np.arange(256.0)
    assert np.array_equal(units.inverse_depth8_to_mm(v, 700.0, 9000.0), units.inverse_depth_to_mm(v / 255.0, 700.0,
                                                                                                   9000.0))
    for bad in ((t, 4000.0, 1000.0), (t, 0.0, 10.0), (t, 1.0, float("inf")), (t + 0.5, 1.0, 2.0),
                (np.array([np.nan]), 1.0, 2.0), (np.array([-0.1]), 1.0, 2.0)):
        with pytest.raises(ValueError):
            units.inverse_depth_to_mm(*bad)


def test_v1_the_generated_scenes_depth_follows_the_law_between_near_and_far():
    """V1: ``random_depth`` (a given range) and ``procedural_scene`` give depth in mm spanning their range, whose
    inverse is linear in a nearness in [0, 1] (what the helper computes)."""
    from syndof.random_depth import random_depth
    from syndof.scenes import procedural_scene

    image = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    depth = random_depth(image, np.random.default_rng(1), near_mm=700.0, far_mm=9000.0)
    assert depth.min() == pytest.approx(700.0) and depth.max() == pytest.approx(9000.0)
    nearness = (1.0 / depth - 1.0 / 9000.0) / (1.0 / 700.0 - 1.0 / 9000.0)
    assert np.allclose(units.inverse_depth_to_mm(nearness, 700.0, 9000.0), depth, rtol=1e-12)
    _, scene = procedural_scene(np.random.default_rng(2), 32, 48)
    assert 500.0 <= scene.min() < scene.max() <= 30000.0


def test_v1_build_training_sets_ebb_depth_is_the_units_conversion_in_float64(tmp_path, monkeypatch):
    """V1: ``ebb_depth_to_mm`` computed the law in float32 (a depth off by up to ~1e-7 of itself, so CoCs rounded to
    0.1 px could move) and took any range (near > far gave a depth that grows with nearness, unsaid). Now it is
    ``units.inverse_depth8_to_mm`` of the bilinearly resized 8-bit levels, in float64, and refuses a bad range."""
    module = _script("experiments/build_training_set.py", monkeypatch)
    levels = np.tile(np.linspace(0, 255, 24).round().astype(np.uint8), (12, 1))
    path = tmp_path / "d.png"
    assert cv2.imwrite(str(path), levels)
    depth = module.ebb_depth_to_mm(path, (48, 24))
    want = units.inverse_depth8_to_mm(cv2.resize(levels.astype(np.float32), (48, 24),
                                                 interpolation=cv2.INTER_LINEAR), 1000.0, 12000.0)
    assert depth.shape == (24, 48) and depth.dtype == np.float64
    assert np.array_equal(depth, want)
    with pytest.raises(ValueError, match="near < far"):
        module.ebb_depth_to_mm(path, (48, 24), near_mm=12000.0, far_mm=1000.0)


def test_v2_applied_scale_is_the_factor_the_rounded_size_got():
    """V2: the factor an image is resized by is its sizes' (geometric mean of the two axes), not the one asked."""
    assert resize.applied_scale((33, 33), resize.scaled_size((33, 33), 0.5)) == pytest.approx(16 / 33)
    assert resize.applied_scale((480, 640, 3), (320, 240)) == 0.5
    assert resize.applied_scale((30, 45), (2, 2)) == pytest.approx(np.sqrt(2 / 30 * 2 / 45))
    with pytest.raises(ValueError):
        resize.applied_scale((0, 10), (5, 5))


@pytest.mark.parametrize(("side", "scale", "want"), [(33, 0.5, 9.7), (33, 0.05, 1.2)])
def test_v2_scaled_syndof_scales_sigma_by_the_factor_the_image_got(tmp_path, monkeypatch, capsys, side, scale, want):
    """V2: ``scaled_syndof.py SRC --scale 0.5`` wrote a 33×33 render at 16×16 (×0.485) with σ 20 px labelled 10.0
    (×0.5, the asked factor); at ``--scale 0.05`` a 2×2 image (×0.061) was labelled σ 1.0 for 1.2 px. σ now scales by
    the factor the image got: 9.7 and 1.2 px (SYNDOF's 0.1 px steps)."""
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    src = tmp_path / "syn"
    (src / "image").mkdir(parents=True)
    (src / "blur_map").mkdir()
    sio.write_image(src / "image" / "s0.png", np.random.default_rng(0).random((side, side, 3)).astype(np.float32))
    sio.write_sigma_map(src / "blur_map" / "s0.png", np.full((side, side), 20.0, np.float32))
    (src / "dataset.json").write_text(json.dumps({"max_coc": 29}))
    assert scaled.main([str(src), "--scale", str(scale), "--out", str(tmp_path / "out")]) == 0
    sigma = sio.read_sigma_map(tmp_path / "out" / "blur_map" / "s0.png")
    image = sio.read_image(tmp_path / "out" / "image" / "s0.png")
    assert sigma.shape == image.shape[:2] == (round(side * scale),) * 2
    assert np.allclose(sigma, want)


def test_v2_every_training_resize_scales_the_sigma_label_with_the_image():
    """The house rule through the training pipeline (checked, holding): the resize for the crop (up), ``max_min_side``
    (down), the random downscale and ``augment`` as a whole give σ × the factor each image got; the label is
    σ/σ_max of the model's ``max_coc``."""
    image = np.random.default_rng(0).random((200, 300, 3)).astype(np.float32)
    sample = {"image": image, "sigma": np.full((200, 300), 4.0, np.float32)}
    up = transforms.resize_for_crop(sample, 256)
    assert up["image"].shape[:2] == (256, 384) and np.allclose(up["sigma"], 4.0 * 256 / 200, rtol=1e-5)
    down = transforms.resize_for_crop(sample, 64, max_min_side=100)
    assert down["image"].shape[:2] == (100, 150) and np.allclose(down["sigma"], 2.0, rtol=1e-5)
    for seed in range(4):
        out = transforms.random_downscale(sample, 64, torch.Generator().manual_seed(seed), 0.4)
        factor = resize.applied_scale((200, 300), out["image"].shape[1::-1])
        assert factor < 1 and np.allclose(out["sigma"], 4.0 * factor, rtol=1e-5)
    crop = transforms.augment(sample, 64, torch.Generator().manual_seed(1), max_min_side=100, scale_min=0.5)
    label = transforms.to_tensors(crop, 29)["label"]
    assert np.allclose(label.numpy() * units.max_sigma(29), crop["sigma"], rtol=1e-5)


@pytest.mark.parametrize("value", [None, [1], "x", 0.5, 1, True, float("nan")])
def test_v3_evaluate_names_dataset_json_when_its_max_coc_gives_no_sigma_max(tmp_path, capsys, value):
    """V3: ``evaluate --benchmark syndof`` on a folder whose ``dataset.json`` has ``max_coc`` null or a list: a
    ``TypeError`` traceback; 0.5 or 1: ``error: max_coc must be …`` naming no file (σ_max ≤ 0); ``true`` read as 1.
    Now one line naming dataset.json, exit 2."""
    from dmenet import evaluate

    root = tmp_path / "syn"
    (root / "image").mkdir(parents=True)
    (root / "blur_map").mkdir()
    sio.write_image(root / "image" / "s0.png", np.zeros((32, 32, 3), np.float32))
    sio.write_sigma_map(root / "blur_map" / "s0.png", np.full((32, 32), 2.0, np.float32))
    (root / "dataset.json").write_text(json.dumps({"max_coc": value}))
    preds = tmp_path / "preds"
    preds.mkdir()
    sio.write_sigma_map(preds / "s0.png", np.full((32, 32), 2.0, np.float32))
    code = _run(evaluate.main, ["--benchmark", "syndof", "--data", str(root), "--predictions", str(preds),
                                "--sigma-mapping", "sigma", "--out", str(tmp_path / "ev"), "--wandb", "disabled"])
    assert code == 2
    line = _error_line(capsys)
    assert str(root / "dataset.json") in line and "max_coc" in line
    assert not (tmp_path / "ev").exists()


def test_v3_a_dataset_json_that_is_no_object_is_named_and_a_good_one_reads():
    """V3: a ``dataset.json`` holding a list was an ``AttributeError`` traceback in ``read_max_coc``."""
    import tempfile
    from pathlib import Path

    from dmenet.eval.syndof_test import read_max_coc

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        assert read_max_coc(root) == 29.0
        (root / "dataset.json").write_text("[1]")
        with pytest.raises(sio.InputError, match="JSON object"):
            read_max_coc(root)
        (root / "dataset.json").write_text(json.dumps({"max_coc": 13}))
        assert read_max_coc(root) == 13.0
