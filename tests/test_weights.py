"""Initialising the encoders (and C) from torchvision-format ImageNet files in ../shared/weights, strictly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from dmenet.models import ModelConfig, build_dmenet
from dmenet.models.weights import WeightsError, convention_from_metadata

VGG16 = ("weights", "vgg16_imagenet_caffe_rgb.safetensors")
MBV2 = ("weights", "mobilenet_v2_imagenet_keras.safetensors")
TINY = dict(width=0.125, refine_blocks=1, calib_width=0.25)


def _tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_vgg16_file_matches_manual_conv(shared):
    path = shared(*VGG16)
    m = build_dmenet(ModelConfig(encoder="vgg16", init=str(path), **TINY)).eval()
    assert m.init_info["input_convention"] == "caffe_rgb" and m.init_info["convention_source"] == "file metadata"
    assert m.init_info["init_name"] == path.name
    w = _tensors(path)
    enc = m.blur.encoder
    for key in ("features.0.weight", "features.28.bias"):
        assert torch.equal(enc.state_dict()[key], w[key])
        assert torch.equal(m.perceptual.encoder.state_dict()[key], w[key])  # C from the same file
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)
    manual = F.relu(F.conv2d(F.pad(x * 255 - mean, (1, 1, 1, 1), mode="replicate"),
                             w["features.0.weight"], w["features.0.bias"]))
    with torch.no_grad():
        ours = enc.features[1](enc.features[0](enc.normalize(x)))
    assert torch.allclose(ours, manual, atol=1e-4)
    # C sees a map tiled to RGB: its feature equals the (untrained) encoder's conv4_3 tap on the tiled image
    y = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m.perceptual(y), enc(y.expand(-1, 3, -1, -1), 4)[3], atol=1e-4)


def test_mobilenet_file_matches_manual_conv(shared):
    path = shared(*MBV2)
    m = build_dmenet(ModelConfig(encoder="mobilenet_v2", init=str(path), **TINY)).eval()
    assert m.init_info["input_convention"] == "minus_one_one"
    w = _tensors(path)
    enc = m.blur.encoder
    x = torch.rand(1, 3, 32, 32)
    z = F.conv2d(F.pad(x * 2 - 1, (0, 1, 0, 1)), w["features.0.0.weight"], stride=2)  # Keras pads (0,1) on even
    z = F.batch_norm(z, w["features.0.1.running_mean"], w["features.0.1.running_var"], w["features.0.1.weight"],
                     w["features.0.1.bias"], False, 0.0, 1e-3)
    manual = F.relu6(z)
    with torch.no_grad():
        ours = enc.features[0](enc.normalize(x))
    assert torch.allclose(ours, manual, atol=1e-5)
    assert torch.equal(m.perceptual.encoder.state_dict()["features.13.conv.3.running_var"],
                       w["features.13.conv.3.running_var"])
    assert not any(k.startswith("features.14.") for k in enc.state_dict())  # beyond 1/16: dropped by name


def test_missing_unexpected_or_mismatched_key_raises(shared, tmp_path):
    w = _tensors(shared(*VGG16))
    cases = {
        "missing": {k: v for k, v in w.items() if k != "features.10.weight"},
        "unexpected": {**w, "features.99.weight": torch.zeros(1)},
        "mismatch": {**w, "features.0.bias": torch.zeros(65)},
    }
    for name, tensors in cases.items():
        p = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(p))
        with pytest.raises(WeightsError):
            build_dmenet(ModelConfig(encoder="vgg16", init=str(p), **TINY))
    p = tmp_path / "wrong_arch.safetensors"
    save_file(w, str(p))
    with pytest.raises(WeightsError):  # a VGG16 file into a VGG19 encoder
        build_dmenet(ModelConfig(encoder="vgg19", init=str(p), **TINY))


def test_classifier_keys_dropped_and_pth_accepted(shared, tmp_path):
    w = _tensors(shared(*VGG16))
    p = tmp_path / "vgg16.pth"
    torch.save({**w, "classifier.0.weight": torch.zeros(4, 4), "classifier.0.bias": torch.zeros(4)}, p)
    m = build_dmenet(ModelConfig(encoder="vgg16", init=str(p), **TINY))
    assert m.init_info["input_convention"] == "imagenet"  # torchvision .pth files: mean/std convention
    assert torch.equal(m.blur.encoder.state_dict()["features.0.weight"], w["features.0.weight"])
    m2 = build_dmenet(ModelConfig(encoder="vgg16", init=str(p), input_convention="caffe_rgb", **TINY))
    assert m2.init_info["input_convention"] == "caffe_rgb" and m2.init_info["convention_source"] == "config"
    bad = tmp_path / "pickle.pth"
    torch.save({"state_dict": w}, bad)
    with pytest.raises(WeightsError):
        build_dmenet(ModelConfig(encoder="vgg16", init=str(bad), **TINY))
    with pytest.raises(WeightsError):
        build_dmenet(ModelConfig(encoder="vgg16", init=str(tmp_path / "absent.safetensors"), **TINY))


def test_convention_from_metadata():
    assert convention_from_metadata({"input_convention": "caffe_bgr"}) == "caffe_bgr"
    assert convention_from_metadata({"input": "RGB scaled to [-1,1] (x/127.5-1)"}) == "minus_one_one"
    assert convention_from_metadata({"input": "RGB, 0-255 scale, minus mean [123.68,116.779,103.939], "
                                              "no std division"}) == "caffe_rgb"
    assert convention_from_metadata({}) is None


def test_build_without_loading_keeps_the_files_convention(shared):
    path = shared(*VGG16)
    m = build_dmenet(ModelConfig(encoder="vgg16", init=str(path), **TINY), load_init=False)
    assert m.blur.encoder.normalize.convention == "caffe_rgb" == m.perceptual.encoder.normalize.convention
    w = _tensors(path)
    assert not torch.equal(m.blur.encoder.state_dict()["features.0.weight"], w["features.0.weight"])


def test_state_mismatch_names_missing_unexpected_and_shape():
    from dmenet.models.weights import state_mismatch

    want = {"a": torch.zeros(2), "b": torch.zeros(3), "n": torch.zeros(())}
    assert state_mismatch(want, dict(want)) is None
    assert state_mismatch(want, {"a": torch.zeros(2), "b": torch.zeros(3), "x": torch.zeros(1)}) == \
        "missing keys ['n'], unexpected keys ['x']"
    assert state_mismatch(want, {"a": torch.zeros(2), "b": torch.zeros(3)}, optional=lambda k: k == "n") is None
    assert state_mismatch(want, {**want, "b": torch.zeros(4)}) == "shape mismatch at b: (4,), expected (3,)"
    many = {f"k{i:02d}": torch.zeros(1) for i in range(10)}
    assert state_mismatch(many, {}).endswith("'k07']…, unexpected keys []")
