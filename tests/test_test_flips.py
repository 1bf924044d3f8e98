"""Test-time symmetry averaging (``Recipe.flips``): the averaged map is equivariant, options are checked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dmenet import inference, predict
from dmenet.flips import _inverse_symmetry, _symmetry
from dmenet.methods import MethodOptions, make_method
from dmenet.models import ModelConfig, build_dmenet
from dmenet.models.model_io import load_model_file, save_model
from dmenet.models.recipe import Recipe

TINY = dict(encoder="mobilenet_v2", width=0.25, refine_blocks=1, calib_width=0.25)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_dmenet(ModelConfig(**TINY)).eval()


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.0), 0.0, 1.0)


def test_the_eight_symmetries_are_distinct_and_inverted():
    a = np.arange(5 * 7 * 3).reshape(5, 7, 3)
    images = [_symmetry(a, k) for k in range(8)]
    assert len({(im.shape, im.tobytes()) for im in (np.ascontiguousarray(i) for i in images)}) == 8
    for k, im in enumerate(images):
        assert np.array_equal(_inverse_symmetry(im, k), a)
    assert images[4].shape == (7, 5, 3)  # transposes swap height and width


def test_flips_one_is_the_plain_forward(model):
    image = _image(40, 56)
    assert model.recipe.flips == 1  # a new model's recipe: one pass
    plain = inference.predict_label(image, model)
    assert np.array_equal(inference.predict_label(image, model, flips=1), plain)


@pytest.mark.parametrize("flips", [2, 4, 8])
def test_averaged_map_is_the_mean_of_the_mapped_back_predictions(model, flips):
    image = _image(40, 56, seed=1)  # not a multiple of 16: padding happens on each transformed copy
    expected = np.mean([_inverse_symmetry(inference.predict_label(
        np.ascontiguousarray(_symmetry(image, k)), model, flips=1), k) for k in range(flips)], axis=0)
    got = inference.predict_label(image, model, flips=flips)
    assert got.shape == (40, 56) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    single = inference.predict_label(image, model, flips=1)
    assert np.abs(got - single).max() > 1e-4  # a random-init net is not symmetric: averaging changes the map


def test_mirror_averaged_map_follows_a_mirrored_image(model):
    image = _image(48, 64, seed=2)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    single = inference.predict_label(image, model, flips=1)
    assert np.abs(inference.predict_label(mirrored, model, flips=1)[:, ::-1] - single).max() > 1e-4
    two = inference.predict_label(image, model, flips=2)
    np.testing.assert_allclose(inference.predict_label(mirrored, model, flips=2)[:, ::-1], two, atol=1e-6)
    eight = inference.predict_label(image, model, flips=8)
    rotated = np.ascontiguousarray(np.rot90(image))  # a rotation is in the 8-element group, not the 2-element one
    np.testing.assert_allclose(np.rot90(inference.predict_label(rotated, model, flips=8), -1), eight, atol=1e-5)


def test_config_default_is_used_and_round_trips(model, tmp_path):
    image = _image(32, 48, seed=3)
    model.recipe = Recipe(flips=4)
    try:
        assert np.array_equal(inference.predict_label(image, model), inference.predict_label(image, model, flips=4))
        path = save_model(tmp_path / "m.safetensors", model)
        loaded, _ = load_model_file(path)
        assert loaded.recipe.flips == 4
    finally:
        model.recipe = Recipe()


def test_bad_flip_counts_are_rejected(model, tmp_path, capsys):
    with pytest.raises(ValueError, match="flips"):
        Recipe(flips=3)
    with pytest.raises(ValueError, match="flips"):
        inference.predict_label(_image(32, 32), model, flips=6)
    path = save_model(tmp_path / "m.safetensors", model)
    cv2.imwrite(str(tmp_path / "a.png"), (255 * _image(32, 32)).astype(np.uint8))
    with pytest.raises(SystemExit) as exit_info:  # the shared --flips flag only takes 1, 2, 4 or 8
        predict.main([str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--model", str(path), "--flips", "3"])
    assert exit_info.value.code == 2 and "--flips" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--flips"):
        make_method("dmenet", MethodOptions(model=path, flips=5))
    assert "mean of 2 flips" in make_method("dmenet", MethodOptions(model=path, flips=2)).describe()
