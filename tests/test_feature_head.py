"""The feature head (rule 19r): B's detection features, their flip and tile averaging, the head in the recipe and the
model file, one set of passes for σ and detection, and the ``calibrate feature-head`` step on a tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dmenet.flips
from dmenet import calibrate, inference, tiling
from dmenet.models.detection_head import (NEGATIVE_SLOPE, DetectionHead, HeadInputs, feature_head_logit,
                                          head_logit)
from dmenet.models.fuse import InferenceBlur
from dmenet.models.model_io import ModelFileError, load_model_file, save_model
from dmenet.models.recipe import BNMode, DetectionPath, Recipe
from dmenet.training.fit_head import DetectionHeadNet, HeadTraining, train_feature_head
from hostile_helpers import assert_usage_error, run_main
from model_helpers import randomise_batchnorm
from model_helpers import tiny_dmenet as _tiny
from model_helpers import write_labelled_photos


def _model(seed: int = 0, **overrides):
    model = _tiny(seed, **overrides)
    randomise_batchnorm(model.blur, seed)
    return model


def _feature_head(channels: int, seed: int = 0, hidden=(8,)) -> DetectionHead:
    torch.manual_seed(seed)
    return DetectionHeadNet(hidden=hidden, features=channels).to_head()


def _with_feature_head(model, head: DetectionHead, flips: int = 2, scale: float = 2.0, shift: float = 0.5) -> Recipe:
    recipe = dataclasses.replace(model.recipe, flips=flips)
    return recipe.with_head(head).with_transform(scale, shift)


@pytest.mark.parametrize("tail", [1, 2])
def test_detection_features_are_the_label_and_the_inner_maps_upsampled(tail):
    model = _model(tail_scale=tail)
    decoder = model.blur.decoder
    x = torch.rand(1, 3, 48, 64)
    grabbed = {}
    hooks = [getattr(decoder, n).register_forward_hook(lambda m, i, o, n=n: grabbed.__setitem__(n, o))
             for n in ("refine", "u3")]
    with torch.no_grad():
        label = decoder(model.blur.encoder(x), with_aux=False)[0]
        for h in hooks:
            h.remove()
        feats = decoder.detection_features(model.blur.encoder(x))
    assert feats.shape == (1, decoder.feature_channels, 48, 64)
    assert feats.is_contiguous()  # channel-planar, as predict_features and the head read them
    assert decoder.feature_channels == 1 + grabbed["refine"].shape[1] + grabbed["u3"].shape[1]
    assert grabbed["refine"].shape[-1] == 64 // tail and grabbed["u3"].shape[-1] == 8
    assert torch.equal(feats[:, :1], label)  # the label is the σ path's, bit for bit
    up = lambda t: F.interpolate(t, size=(48, 64), mode="bilinear", align_corners=False)  # noqa: E731
    n0 = grabbed["refine"].shape[1]
    torch.testing.assert_close(feats[:, 1:1 + n0], up(grabbed["refine"]) if tail > 1 else grabbed["refine"])
    torch.testing.assert_close(feats[:, 1 + n0:], up(grabbed["u3"]))
    # the fused fast path gives the same features up to rounding
    with torch.no_grad():
        fused = InferenceBlur(model.blur)(x, features=True)
    torch.testing.assert_close(fused, feats, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("bn", list(BNMode))
def test_predict_features_carry_predict_label_exactly_and_average_over_flips(bn):
    model = _model()
    rgb = np.random.default_rng(0).random((40, 64, 3)).astype(np.float32)  # width a multiple of 16: mirror-exact pad
    for flips in (1, 2, 8):
        feats = inference.predict_features(rgb, model, flips=flips, bn=bn)
        assert feats.shape == (40, 64, model.blur.decoder.feature_channels) and feats.dtype == np.float32
        assert np.moveaxis(feats, -1, 0).flags.c_contiguous  # stored channel-planar
        np.testing.assert_array_equal(feats[..., 0], inference.predict_label(rgb, model, flips=flips, bn=bn))
    one = inference.predict_features(rgb, model, flips=1, bn=bn)
    mirrored = inference.predict_features(rgb[:, ::-1], model, flips=1, bn=bn)[:, ::-1]
    two = inference.predict_features(rgb, model, flips=2, bn=bn)
    np.testing.assert_allclose(two, (one + mirrored) / 2, atol=1e-5)  # the mean of the identity and the mirror
    assert not np.allclose(one[..., 1:], mirrored[..., 1:], atol=1e-3)  # (a mirror changes the features)


def test_tiled_features_carry_the_tiled_label_and_stay_close_to_untiled():
    model = _model()
    rgb = np.random.default_rng(1).random((64, 96, 3)).astype(np.float32)
    tiles = dict(tile_threshold=1, tile_size=48, tile_overlap=16)
    feats = inference.predict_features(rgb, model, flips=1, bn=BNMode.MOVING, **tiles)
    np.testing.assert_array_equal(feats[..., 0], inference.predict_label(rgb, model, flips=1, bn=BNMode.MOVING,
                                                                         **tiles))
    whole = inference.predict_features(rgb, model, flips=1, bn=BNMode.MOVING)
    assert np.abs(feats - whole).mean() < 0.1 * np.abs(whole).mean()  # blended tiles, not another map


def test_feature_head_logit_is_the_mlp_written_out_and_refuses_other_inputs():
    head = _feature_head(5, hidden=(4, 3))
    x = np.random.default_rng(2).normal(size=(6, 7, 5)).astype(np.float32)
    a = x.reshape(-1, 5).astype(np.float64)
    for i, (w, b) in enumerate(head.arrays()):
        a = a @ w.T.astype(np.float64) + b
        if i < 2:
            a = np.where(a > 0, a, NEGATIVE_SLOPE * a)
    np.testing.assert_allclose(feature_head_logit(head, x), a.reshape(6, 7), atol=1e-5)
    assert head.inputs == 5 and head.widths == (5, 4, 3, 1) and head.source is HeadInputs.FEATURES
    with pytest.raises(ValueError, match="reads 5 features a pixel, got 4"):
        feature_head_logit(head, x[..., :4])
    with pytest.raises(ValueError, match="not two labels"):
        head_logit(head, x[..., 0], x[..., 1])
    with pytest.raises(ValueError, match="not B's features"):
        feature_head_logit(DetectionHeadNet().to_head(), x)


def test_the_head_gives_the_same_logits_on_any_thread_count_and_either_feature_layout():
    from dmenet.models import detection_head
    head = _feature_head(41, hidden=(32, 16))
    n = 2 * detection_head._CHUNK + 1000  # three blocks of columns, the last one short
    planes = np.random.default_rng(3).normal(size=(41, 3, n // 3)).astype(np.float32)
    planar = np.moveaxis(planes, 0, -1)  # (3, n/3, 41) view of channel-planar storage, as predict_features gives
    pixel_major = np.ascontiguousarray(planar)
    one = feature_head_logit(head, planar)
    assert one.shape == (3, n // 3)
    np.testing.assert_array_equal(feature_head_logit(head, planar, threads=3), one)  # blocks, each as on 1 thread
    np.testing.assert_allclose(feature_head_logit(head, pixel_major), one, atol=1e-6)
    labels = DetectionHeadNet().to_head()  # the two-label head runs the same blocks
    first, second = planes[0] ** 2 / (1 + planes[0] ** 2), planes[1] ** 2 / (1 + planes[1] ** 2)
    np.testing.assert_array_equal(head_logit(labels, first, second, threads=2), head_logit(labels, first, second))


def test_feature_head_json_round_trip_and_refusals():
    head = _feature_head(41)
    d = head.to_dict()
    assert d["inputs"] == "features" and DetectionHead.from_dict(d) == head
    assert "inputs" not in DetectionHeadNet().to_head().to_dict()  # two-label heads keep their text
    with pytest.raises(ValueError, match="inputs must be one of"):
        DetectionHead.from_dict({**d, "inputs": "pixels"})
    with pytest.raises(ValueError, match="image_mean is an input of the two-label head only"):
        DetectionHead.from_dict({**d, "image_mean": True})
    with pytest.raises(ValueError, match="two-label head only"):
        DetectionHeadNet(image_mean=True, features=41)
    net = DetectionHeadNet.from_head(head)  # the trainable form holds the same weights
    x = torch.randn(10, 41)
    np.testing.assert_allclose(net(x).detach().numpy(), feature_head_logit(head, x.numpy()), atol=1e-5)


def test_a_feature_head_reads_one_set_of_passes_in_the_recipe():
    head = _feature_head(41)
    path = DetectionPath(bn=BNMode.MOVING, head=head)
    assert path.bns == (BNMode.MOVING,)
    with pytest.raises(ValueError, match="a two-label head needs its second_bn"):
        DetectionPath(bn=BNMode.MOVING, head=head, second_bn=BNMode.IMAGE)
    with pytest.raises(ValueError, match="a two-label head needs its second_bn"):
        DetectionPath(bn=BNMode.MOVING, head=DetectionHeadNet().to_head())
    recipe = Recipe(detection=path)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    assert "h(41 features of the same passes) (41→8→1)" in str(recipe)
    with pytest.raises(ValueError, match="reads 41 features a pixel; this model's decoder gives 9"):
        recipe.check(7.0, feature_channels=9)


def test_one_set_of_passes_gives_sigma_and_the_probability(monkeypatch):
    model = _model()
    head = _feature_head(model.blur.decoder.feature_channels)
    predictor = inference.Predictor(model, _with_feature_head(model, head))
    image = np.random.default_rng(3).random((40, 56, 3)).astype(np.float32)
    calls = []
    real = dmenet.flips.single_pass  # looked up there by the passes over the flips
    monkeypatch.setattr(dmenet.flips, "single_pass", lambda *a, **k: calls.append(a[-1]) or real(*a, **k))
    est = predictor.estimate(image)
    assert calls == [True, True]  # two flips, each one feature pass; no label-only pass
    monkeypatch.setattr(dmenet.flips, "single_pass", real)
    sigma_only = predictor.estimate(image, probability=False)
    np.testing.assert_array_equal(est.sigma, sigma_only.sigma)
    np.testing.assert_array_equal(est.label, sigma_only.label)
    feats = inference.predict_features(image, model, flips=2, bn=BNMode.MOVING)
    z = feature_head_logit(head, feats).astype(np.float64)
    np.testing.assert_allclose(est.blur_probability, 1 / (1 + np.exp(-2.0 * (z - 0.5))), atol=1e-6)
    np.testing.assert_array_equal(inference.estimate_blur_probability(image, predictor), est.blur_probability)
    # a detection path on the other BatchNorm mode needs its own passes, and gives another map
    other = inference.Predictor(model, predictor.recipe.with_bn(detection=BNMode.IMAGE))
    assert not np.allclose(other.estimate(image).blur_probability, est.blur_probability, atol=1e-3)


def test_a_model_file_refuses_a_feature_head_of_another_width(tmp_path):
    model = _model()
    model.recipe = _with_feature_head(model, _feature_head(model.blur.decoder.feature_channels + 1))
    save_model(tmp_path / "m.safetensors", model, {"step": 0})
    with pytest.raises(ModelFileError, match="this model's decoder gives"):
        load_model_file(tmp_path / "m.safetensors")


def test_training_a_feature_head_is_deterministic_and_learns_a_feature():
    rng = np.random.default_rng(4)
    inputs = [rng.normal(size=(256, 6)).astype(np.float32) for _ in range(3)]
    masks = [(x[:, 3] > 0).astype(np.float32) for x in inputs]  # blur is feature 3's sign
    cfg = HeadTraining(epochs=40, pixels_per_image=128, batch=64, hidden=(8,), seed=1)
    net, losses = train_feature_head(inputs, masks, cfg)
    again, _ = train_feature_head(inputs, masks, cfg)
    assert net.to_head() == again.to_head() and net.to_head().inputs == 6
    assert losses[-1] < 0.3 < losses[0]
    with pytest.raises(ValueError, match="one width"):
        train_feature_head([inputs[0], inputs[1][:, :5]], masks[:2], cfg)


@pytest.fixture
def labelled(tmp_path):
    """Two labelled photos (left half texture, right half flat = blurred), one sharp negative, a tiny model."""
    write_labelled_photos(tmp_path)
    model = _model()
    model.recipe = Recipe(flips=1).with_bn(BNMode.MOVING, BNMode.IMAGE)
    save_model(tmp_path / "m.safetensors", model, {"step": 0})
    return tmp_path


def test_calibrate_feature_head_writes_a_one_pass_detection_path(labelled):
    t = labelled
    argv = ["feature-head", "--model", str(t / "m.safetensors"), "--labelled", str(t / "lab"), str(t / "neg"),
            "--epochs", "3", "--pixels-per-image", "64", "--samples", "500", "--hidden", "8", "--flips", "2",
            "--transform-negatives", "1", "--out", str(t / "f.safetensors")]
    assert calibrate.main(argv) == 0
    model, sidecar = load_model_file(t / "f.safetensors")
    recipe, det = model.recipe, model.recipe.detection
    assert det.head.source is HeadInputs.FEATURES and det.head.widths == (model.blur.decoder.feature_channels, 8, 1)
    assert det.bn is BNMode.MOVING and det.second_bn is None and det.bns == (BNMode.MOVING,)  # the σ path's mode
    assert det.head_fit == det.transform_fit and det.head_fit.tool == "dmenet.calibrate feature-head"
    assert det.head_fit.flips == 2 and recipe.flips == 2 and recipe.contradictions() == []
    result = sidecar["history"][-1]["result"]
    assert result["images"] == ["lab/a0.png", "lab/a1.png", "neg/n0.png"] and result["samples"] == 500
    assert result["transform_images"] == ["lab/a0.png", "lab/a1.png", "neg/n0.png"] and len(result["losses"]) == 3
    assert result["bn"] == "moving" and result["training"]["hidden"] == [8]
    # the same step again gives the same head (seeded pixels, initialisation and batches)
    assert calibrate.main(argv[:-1] + [str(t / "g.safetensors")]) == 0
    assert load_model_file(t / "g.safetensors")[0].recipe.detection.head == det.head
    est = inference.Predictor(model).estimate(np.random.default_rng(5).random((40, 56, 3)).astype(np.float32))
    assert est.blur_probability.shape == (40, 56) and 0 <= est.blur_probability.min() <= est.blur_probability.max() <= 1


@pytest.mark.parametrize("option,value", [("--hidden", "0"), ("--samples", "0"), ("--bn", "both")])
def test_calibrate_feature_head_refuses_bad_options(labelled, capsys, option, value):
    t = labelled
    argv = ["feature-head", "--model", str(t / "m.safetensors"), "--labelled", str(t / "lab"), option, value,
            "--out", str(t / "f.safetensors")]
    rc, _, err = run_main(calibrate.main, argv, capsys)
    assert_usage_error(rc, err, option)
    assert not (t / "f.safetensors").exists()


@pytest.mark.parametrize("shape, crop", [((41, 48, 64), (45, 61)), ((3, 16, 32), (16, 17)), ((2, 32, 16), (32, 16)),
                                         ((5, 17, 3), (1, 1))])
def test_planes_are_cropped_in_place(shape, crop):
    """The crop of B's padded feature planes reuses their storage (no second full-resolution copy) and equals a
    crop by copy, whatever the overlap of a plane's crop with its own and the next planes' values."""
    planes = torch.from_numpy(np.random.default_rng(3).random(shape, dtype=np.float32))
    expected = planes[:, : crop[0], : crop[1]].clone()
    got = tiling._crop_planes_in_place(planes, *crop)
    assert got.is_contiguous() and got.data_ptr() == planes.data_ptr()
    assert torch.equal(got, expected)
