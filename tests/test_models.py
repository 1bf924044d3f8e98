"""DMENet subnetworks: exact parameter counts, shapes, ranges, gradients, frozen C, TF semantics, checkpoint I/O."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dmenet.models import DefocusOutput, DMENet, ModelConfig, build_dmenet
from dmenet.models.calibration import Calibration
from dmenet.models.discriminator import Discriminator
from dmenet.models.layers import (
    CBL,
    BetaBatchNorm,
    tf_nearest_indices,
    tf_nearest_resize_align_corners,
    tf_same_pads,
)
from dmenet.models.model_io import ModelFileError, load_model_file, save_model
from dmenet.models.normalization import InputNormalization


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


TINY = dict(width=0.125, refine_blocks=1, calib_width=0.25)


@pytest.fixture(scope="module")
def paper_model() -> DMENet:
    torch.manual_seed(0)
    return build_dmenet(ModelConfig())


@pytest.fixture(scope="module", params=["vgg16", "mobilenet_v2"])
def tiny_model(request) -> DMENet:
    torch.manual_seed(0)
    return build_dmenet(ModelConfig(encoder=request.param, **TINY))


# ------------------------------------------------------------------------------------------------ parameter counts
def test_paper_parameter_counts(paper_model):
    m = paper_model
    assert n_params(m.blur.encoder) == 20_024_384
    assert n_params(m.blur.decoder) == 6_915_435
    assert n_params(m.blur) == 20_024_384 + 6_915_435
    assert n_params(m.discriminator) == 2_827_200
    assert n_params(m.calibration) == 14_065
    assert n_params(m.perceptual) == 20_024_384
    assert m.blur(torch.rand(1, 3, 32, 32)).features.shape[1] == 64


def test_vgg_taps_and_names(paper_model):
    keys = [k for k in paper_model.blur.encoder.state_dict() if k.startswith("features.")]
    convs = sorted({int(k.split(".")[1]) for k in keys})
    assert convs == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]  # torchvision vgg19 indices
    assert paper_model.blur.encoder.tap_indices == (3, 8, 17, 26, 35)  # ReLU after conv1_2, 2_2, 3_4, 4_4, 5_4


# ---------------------------------------------------------------------------------------------- shapes and ranges
@pytest.mark.parametrize("size", [(32, 32), (32, 48)])
def test_output_shapes_and_range(tiny_model, size):
    h, w = size
    tiny_model.train()
    out = tiny_model.blur(torch.rand(2, 3, h, w))
    assert isinstance(out, DefocusOutput)
    assert out.defocus.shape == (2, 1, h, w)
    assert [tuple(a.shape[-2:]) for a in out.aux] == [(h // s, w // s) for s in (16, 8, 4, 2, 1)]
    assert out.features.shape == (2, 8, h, w)  # round(64 · 0.125)
    for t in [out.defocus, *out.aux]:
        assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    tiny_model.eval()
    with torch.no_grad():
        ev = tiny_model(torch.rand(1, 3, h, w))
    assert ev.defocus.shape == (1, 1, h, w) and len(ev.aux) == 5
    assert tiny_model.discriminator(out.features).shape == (2, 1, -(-h // 32), -(-w // 32))
    assert tiny_model.calibration(out.defocus).shape == (2, 1, h, w)
    c_feat = tiny_model.perceptual(out.defocus)
    assert c_feat.shape[0] == 2 and c_feat.shape[-2:] == (h // 8, w // 8)


def test_half_resolution_tail_shapes_and_layers():
    """tail_scale 2: the output keeps the input's size; gan_feat and the finest aux map are at 1/2, and no layer but
    the 3→c0 stem runs at full resolution."""
    m = build_dmenet(ModelConfig(encoder="mobilenet_v2", tail_scale=2, **TINY)).train()
    h, w = 32, 48
    seen: list[tuple[str, tuple[int, int]]] = []
    hooks = [mod.register_forward_hook(lambda mod, i, o, n=n: seen.append((n, tuple(o.shape[-2:]))))
             for n, mod in m.blur.named_modules() if isinstance(mod, nn.Conv2d)]
    out = m.blur(torch.rand(2, 3, h, w))
    for hook in hooks:
        hook.remove()
    assert out.defocus.shape == (2, 1, h, w)
    assert [tuple(a.shape[-2:]) for a in out.aux] == [(h // s, w // s) for s in (16, 8, 4, 2, 2)]
    assert out.features.shape == (2, 8, h // 2, w // 2)
    assert [n for n, size in seen if size == (h, w)] == ["encoder.stem0.conv"]
    assert m.blur.decoder.u0.conv.in_channels == 8 + 4 * 2  # u1's 8 channels + space-to-depth of d0's 2
    assert m.discriminator(out.features).shape == (2, 1, -(-h // 64), -(-w // 64))
    base = build_dmenet(ModelConfig(encoder="mobilenet_v2", **TINY))
    assert sum(p.numel() for p in m.parameters()) - sum(p.numel() for p in base.parameters()) == 3 * 2 * 9 * 8


@pytest.mark.parametrize("shape, words", [((1, 3, 30, 32), r"multiples of 16, got 30×32"),
                                          ((1, 1, 32, 32), r"must be \(B, 3, H, W\), got \(1, 1, 32, 32\)"),
                                          ((3, 32, 32), r"must be \(B, 3, H, W\), got \(3, 32, 32\)")])
def test_bad_input_shape_raises(tiny_model, shape, words):
    """B's own shape check (conv layers take an unbatched (3, H, W) image, and a 30-row image fails later, in torch,
    with another message)."""
    with pytest.raises(ValueError, match=words):
        tiny_model.blur(torch.rand(*shape))


def test_config_validation():
    with pytest.raises(ValueError, match=r"model\.encoder must be one of .*got 'resnet50'"):
        ModelConfig(encoder="resnet50")
    with pytest.raises(ValueError, match=r"model\.input_convention must be one of .*got 'bgr'"):
        ModelConfig(input_convention="bgr")
    with pytest.raises(ValueError, match=r"unknown model config keys: \['widht'\]"):
        ModelConfig.from_dict({"encoder": "vgg19", "widht": 1.0})
    with pytest.raises(ValueError, match="tail_scale"):
        ModelConfig(tail_scale=4)
    assert ModelConfig().sigma_max == 7.0
    assert ModelConfig.from_dict(ModelConfig(width=0.5).to_dict()) == ModelConfig(width=0.5)


# -------------------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("encoder", ["vgg16", "mobilenet_v2"])
def test_every_trainable_parameter_gets_gradient_and_c_stays_frozen(encoder):
    torch.manual_seed(0)
    m = build_dmenet(ModelConfig(encoder=encoder, **TINY))
    m.train()
    assert not m.perceptual.training and all(not mod.training for mod in m.perceptual.modules())
    frozen_before = {k: v.clone() for k, v in m.perceptual.state_dict().items()}
    x = torch.rand(2, 3, 32, 32)
    y = torch.rand(2, 1, 32, 32)
    out = m.blur(x)
    loss = F.mse_loss(out.defocus, y) + sum(a.mean() for a in out.aux)
    loss = loss + F.mse_loss(m.perceptual(out.defocus), m.perceptual(y))
    loss = loss + m.calibration(out.defocus).mean() + m.discriminator(out.features).mean()
    loss.backward()
    for name, p in m.named_parameters():
        if name.startswith("perceptual."):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            # a conv bias right before train-mode BN is cancelled by the mean subtraction: its gradient is ~0
            if not name.endswith("conv.bias"):
                assert p.grad.abs().sum() > 0, name
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    opt.step()
    m.perceptual(torch.rand(2, 1, 32, 32))  # a forward in "train" mode must not touch C's BN statistics
    for k, v in m.perceptual.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k


def test_gradient_flows_through_frozen_c(tiny_model):
    y = torch.rand(1, 1, 32, 32, requires_grad=True)
    tiny_model.perceptual(y).square().mean().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ layer semantics
def test_no_gamma_in_decoder_d_s(paper_model):
    for sub in (paper_model.blur.decoder, paper_model.discriminator, paper_model.calibration):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in sub.modules())
        bns = [m for m in sub.modules() if isinstance(m, BetaBatchNorm)]
        assert bns and all(not hasattr(m, "weight") for m in bns)
        assert all(name.endswith(".bias") or "conv" in name or "net." in name or "out" in name
                   for name, _ in sub.named_parameters())
        assert not any(n.endswith("bn.weight") for n, _ in sub.named_parameters())


def test_beta_batchnorm_matches_torch():
    torch.manual_seed(0)
    bn = BetaBatchNorm(4)
    ref = nn.BatchNorm2d(4, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.bias.copy_(torch.randn(4))
        ref.bias.copy_(bn.bias)
    x = torch.randn(3, 4, 5, 5) * 3 + 1
    assert torch.allclose(bn(x), ref(x), atol=1e-6)
    assert torch.allclose(bn.running_var, ref.running_var) and int(bn.num_batches_tracked) == 1
    bn.eval(), ref.eval()
    assert torch.allclose(bn(x), ref(x), atol=1e-6)
    assert set(bn.state_dict()) == {"bias", "running_mean", "running_var", "num_batches_tracked"}


def test_replicate_padding(paper_model):
    convs3 = [m for m in paper_model.blur.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs3) > 40 and all(m.padding_mode == "replicate" and m.padding == (1, 1) for m in convs3)
    cbl = CBL(1, 1)
    with torch.no_grad():
        cbl.conv.weight.fill_(1.0)
        cbl.conv.bias.zero_()
    x = torch.zeros(1, 1, 6, 6)
    x[..., 0, :] = 1.0  # the top row: replicate padding repeats it, zero padding would not
    y = cbl.conv(x)
    assert y[0, 0, 0, 2].item() == pytest.approx(6.0)  # 2 rows of ones (pad + row 0) × 3 columns


def test_tf_same_padding_and_discriminator_size():
    assert tf_same_pads(240, 4, 2) == (1, 1)
    assert tf_same_pads(15, 4, 2) == (1, 2)
    d = Discriminator(8, width=0.125)
    x = torch.rand(1, 8, 15, 15)
    assert d.net[0](x).shape[-2:] == (8, 8)  # Conv2d(padding=1) would give 7
    assert Discriminator(8, width=0.125)(torch.rand(1, 8, 240, 240)).shape == (1, 1, 8, 8)
    assert not any(m.bias is not None for m in d.modules() if isinstance(m, nn.Conv2d))


def _reference_indices(n_in: int, n_out: int) -> list[int]:
    scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    out = []
    for i in range(n_out):
        v = np.float32(np.float32(i) * scale)
        r = int(np.floor(v)) + (1 if v - np.floor(v) >= 0.5 else 0)  # roundf: half away from zero (v ≥ 0)
        out.append(min(r, n_in - 1))
    return out


def test_tf_align_corners_nearest_indices():
    idx = tf_nearest_indices(240, 15).tolist()
    assert idx == _reference_indices(240, 15)
    assert idx[:3] == [0, 17, 34] and idx[-1] == 239 and idx[7] == 120  # 119.5 rounds up, not to even
    nearest = F.interpolate(torch.arange(240.0).view(1, 1, 1, 240), size=(1, 15), mode="nearest").flatten().tolist()
    assert sum(a != b for a, b in zip(idx, nearest)) == 14
    for n_out in (30, 60, 120):
        assert tf_nearest_indices(240, n_out).tolist() == _reference_indices(240, n_out)
    assert tf_nearest_indices(3, 5).tolist() == [0, 1, 1, 2, 2]  # 0.5 and 1.5 round away from zero
    assert tf_nearest_indices(120, 240).tolist() == [i // 2 for i in range(240)]  # exact ×2 = duplication
    x = torch.arange(240.0 * 240).view(1, 1, 240, 240)
    y = tf_nearest_resize_align_corners(x, (15, 15))
    assert torch.equal(y, x[..., idx, :][..., :, idx])


@pytest.mark.parametrize("convention, pixel_out", [
    ("caffe_bgr", [0.25 * 255 - 103.939, 0.5 * 255 - 116.779, 1.0 * 255 - 123.68]),
    ("caffe_rgb", [1.0 * 255 - 123.68, 0.5 * 255 - 116.779, 0.25 * 255 - 103.939]),
    ("imagenet", [(1.0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.25 - 0.406) / 0.225]),
    ("minus_one_one", [1.0, 0.0, -0.5]),
])
def test_input_normalisation(convention, pixel_out):
    norm = InputNormalization(convention)
    assert dict(norm.state_dict()) == {}  # non-persistent buffers
    assert {n for n, _ in norm.named_buffers()} == {"order", "scale", "mean", "std"}
    x = torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)  # RGB
    assert torch.allclose(norm(x).flatten(), torch.tensor(pixel_out), atol=1e-4)


def test_model_state_has_no_normalisation_buffers(tiny_model):
    assert not any("normalize" in k for k in tiny_model.state_dict())
    assert tiny_model.blur.encoder.normalize.convention == tiny_model.init_info["input_convention"]


def test_calibration_is_per_pixel():
    s = Calibration().eval()
    assert all(m.kernel_size == (1, 1) for m in s.modules() if isinstance(m, nn.Conv2d))
    x = torch.rand(1, 1, 8, 8)
    y = s(x)
    x2 = x.clone()
    x2[..., 0, 0] = 0.9
    assert torch.equal(s(x2)[..., 1:, :], y[..., 1:, :])


# ------------------------------------------------------------------------------------------------------ model I/O
@pytest.mark.parametrize("encoder", ["vgg16", "mobilenet_v2"])
def test_save_load_round_trip_bit_exact(tmp_path, encoder):
    torch.manual_seed(0)
    m = build_dmenet(ModelConfig(encoder=encoder, **TINY))
    m.train()
    m.blur(torch.rand(2, 3, 32, 32))  # move BN statistics off their initial values
    path = save_model(tmp_path / "model.safetensors", m, {"iteration": 7})
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["format_version"] == 2 and meta["iteration"] == 7 and meta["history"] == []
    assert meta["architecture"]["encoder"] == encoder and meta["init"]["input_convention"]
    m2, meta2 = load_model_file(path)
    assert not m2.training and meta2["iteration"] == 7 and m2.init_info == m.init_info
    s1, s2 = m.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys() and any(k.startswith("perceptual.") for k in s1)
    assert all(torch.equal(s1[k], s2[k]) and s1[k].dtype == s2[k].dtype for k in s1)
    m.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x).defocus, m2(x).defocus)
    assert not list(tmp_path.glob("*.tmp"))


def test_load_is_strict(tmp_path):
    from safetensors.torch import load_file, save_file

    m = build_dmenet(ModelConfig(encoder="vgg16", **TINY))
    path = save_model(tmp_path / "m.safetensors", m, {})
    state = load_file(str(path))
    save_file({**state, "blur.extra.weight": torch.zeros(1)}, str(path))
    with pytest.raises(ModelFileError, match="unexpected"):
        load_model_file(path)
    del state["calibration.out.bias"]
    save_file(state, str(path))
    with pytest.raises(ModelFileError, match="missing"):
        load_model_file(path)
    with pytest.raises(ValueError, match="reserved"):
        save_model(tmp_path / "n.safetensors", m, {"init": 1})
    with pytest.raises(ModelFileError):
        load_model_file(tmp_path / "absent.safetensors")


def test_file_without_tail_scale_loads_and_another_tail_refuses(tmp_path):
    """Files written before ``tail_scale`` existed have the full-resolution tail; a run of another tail refuses."""
    from dmenet.models.model_io import load_weights_from, read_sidecar

    m = build_dmenet(ModelConfig(encoder="mobilenet_v2", **TINY))
    path = save_model(tmp_path / "old.safetensors", m, {})
    sidecar_path = path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    del sidecar["architecture"]["tail_scale"]
    sidecar_path.write_text(json.dumps(sidecar))
    assert "tail_scale" not in read_sidecar(path)["architecture"]
    loaded, _ = load_model_file(path)
    assert loaded.config.tail_scale == 1
    load_weights_from(build_dmenet(ModelConfig(encoder="mobilenet_v2", **TINY)), path)
    with pytest.raises(ModelFileError, match="tail_scale"):
        load_weights_from(build_dmenet(ModelConfig(encoder="mobilenet_v2", tail_scale=2, **TINY)), path)


# ------------------------------------------------------------------------------------------------ lite and summary
def test_mobilenet_lite_taps():
    enc = build_dmenet(ModelConfig(encoder="mobilenet_v2", width=0.25, refine_blocks=0)).blur.encoder
    skips = enc(torch.rand(1, 3, 64, 64))
    assert [tuple(s.shape[1:]) for s in skips] == [(4, 64, 64), (16, 32, 32), (24, 16, 16), (32, 8, 8), (96, 4, 4)]
    assert max(int(k.split(".")[1]) for k in enc.state_dict() if k.startswith("features.")) == 13
    assert any(k.startswith("stem0.") for k in enc.state_dict())


def test_summary_counts(capsys):
    from dmenet.summary import main, summarize

    cfg = ModelConfig(encoder="mobilenet_v2", **TINY)
    rows = {name: (n, flops) for name, n, flops in summarize(cfg, size=32)}
    assert rows["B total"][0] == rows["B encoder"][0] + rows["B decoder"][0] == n_params(build_dmenet(cfg).blur)
    assert rows["S"][0] == n_params(Calibration(0.25))
    # FLOPs = 2 per multiply-add. S at width 0.25 is 1×1 convs 1→16→16→16→8→8→8→4→4→4→1 at every one of 32² pixels
    macs = sum(a * b for a, b in zip((1, 16, 16, 16, 8, 8, 8, 4, 4, 4), (16, 16, 16, 8, 8, 8, 4, 4, 4, 1)))
    assert macs == 852 and rows["S"][1] == 2 * macs * 32 * 32
    # parameters: each 1×1 conv's weights and bias, each BN's β (no γ), and the last conv's 4 weights + 1 bias
    couts = (16, 16, 16, 8, 8, 8, 4, 4, 4)
    assert rows["S"][0] == sum(cin * c + 2 * c for cin, c in zip((1,) + couts[:-1], couts)) + 4 + 1 == 1021
    assert rows["B total"][1] == rows["B encoder"][1] + rows["B decoder"][1]
    assert rows["C (frozen)"][0] == rows["B encoder"][0]  # C is the same MobileNetV2 encoder, frozen
    assert all(flops > 0 for _, flops in rows.values())
    tiny = Path(__file__).resolve().parents[1] / "experiments" / "tiny.yaml"
    assert main(["--config", str(tiny), "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "B total" in out and "C (frozen)" in out
