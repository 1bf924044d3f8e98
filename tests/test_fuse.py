"""Inference fast path (dmenet.models.fuse): folded BatchNorm, 1×1 convs as matmuls, replicate convs without the
padded copy, no auxiliary heads — the same label as the plain eval-mode forward, and the hook in inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dmenet.inference import predict_label
from dmenet.models.fuse import (WIDENING, InferenceBlur, PointwiseConv, ReplicateConv3x3, SamePaddedAfterConv,
                                cached_inference_blur, fold_batchnorms, inference_blur)
from dmenet.models.layers import BetaBatchNorm, SameConv2d, tf_same_pad
from dmenet.models.recipe import BNMode
from model_helpers import randomise_batchnorm, tiny_dmenet


def _tiny(seed: int = 0, **overrides):
    """A tiny random DMENet-lite whose BatchNorms have non-trivial moving statistics and affine terms."""
    model = tiny_dmenet(seed, **overrides)
    randomise_batchnorm(model.blur, seed)
    return model.eval()


@pytest.mark.parametrize("tail_scale", [1, 2])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fast_path_equals_plain_forward(layout, tail_scale):
    model = _tiny(tail_scale=tail_scale).to(memory_format=layout)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fast = inference_blur(model)
    assert fast.folds > 40 and fast.pointwise > 10 and fast.replicate > 10 and fast.strided == 4
    assert not any(isinstance(m, (BetaBatchNorm, nn.BatchNorm2d)) for m in fast.modules())
    x = torch.rand(2, 3, 48, 80).contiguous(memory_format=layout)
    with torch.inference_mode():
        plain = model.blur(x).defocus
        out = fast(x)
    assert out.shape == plain.shape
    assert (out - plain).abs().max().item() < 1e-5
    assert (plain - 0.5).abs().max().item() > 0.01  # a non-trivial map, so the comparison means something
    # the model's own tensors are untouched
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_each_rewrite_matches_its_layer():
    torch.manual_seed(1)
    x = torch.randn(1, 6, 7, 9)
    conv = nn.Conv2d(6, 5, 3, padding=1, padding_mode="replicate")
    assert torch.allclose(ReplicateConv3x3(conv)(x), conv(x), atol=1e-6)
    dw = nn.Conv2d(6, 6, 3, padding=1, padding_mode="replicate", groups=6)
    assert torch.allclose(ReplicateConv3x3(dw)(x), dw(x), atol=1e-6)
    pw = nn.Conv2d(6, 4, 1)
    assert torch.allclose(PointwiseConv(pw)(x), pw(x), atol=1e-6)
    bn = nn.BatchNorm2d(5).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    seq = nn.Sequential(nn.Conv2d(6, 5, 3), bn)
    want = seq(x)
    assert fold_batchnorms(seq) == 1 and isinstance(seq[1], nn.Identity)
    assert torch.allclose(seq(x), want, atol=1e-5)


@pytest.mark.parametrize("cin, cout, bias", [(6, 4, True), (3, 8, True), (2, 6, True), (3, 8, False), (4, 14, True)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pointwise_conv_takes_its_bias_without_addmm(cin, cout, bias, layout):
    """Widening 1×1 convs (C_out ≥ WIDENING·(C_in + 1)) carry the bias as a weight row on a column of ones; the
    others add it after the product; both equal the conv, channels-last out, under bf16 autocast too."""
    torch.manual_seed(cin * cout)
    conv = nn.Conv2d(cin, cout, 1, bias=bias)
    pw = PointwiseConv(conv)
    assert pw.widening == (bias and cout >= WIDENING * (cin + 1))
    assert pw.weight.shape == (cin + pw.widening, cout) and (pw.bias is None) == (pw.widening or not bias)
    x = torch.randn(2, cin, 5, 7).contiguous(memory_format=layout)
    with torch.inference_mode():
        out, want = pw(x), conv(x)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(out, want, atol=1e-6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = pw(x)
        assert low.dtype == torch.bfloat16 and torch.allclose(low.float(), want, atol=0.05, rtol=0.02)


@pytest.mark.parametrize("size", [(8, 10), (9, 11), (8, 11), (2, 6), (16, 16), (64, 96)])
@pytest.mark.parametrize("kernel, stride, groups", [(3, 2, 1), (3, 2, 4), (4, 2, 1), (3, 3, 1)])
def test_same_conv_without_the_padded_copy_equals_same_conv(size, kernel, stride, groups):
    """SamePaddedAfterConv equals SameConv2d on even and odd sizes (odd ones pad before too and fall back), on
    inputs smaller than the kernel, and in a trace."""
    torch.manual_seed(kernel * 10 + groups)
    conv = SameConv2d(4, 8, kernel, stride=stride, groups=groups)
    fast = SamePaddedAfterConv(conv)
    x = torch.randn(2, 4, *size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want, out = conv(x), fast(x)
    assert out.shape == want.shape and torch.allclose(out, want, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    traced = torch.jit.trace(fast, x, check_trace=False)
    assert torch.allclose(traced(x), want, atol=1e-5)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = fast(x)  # strips 3–4 px wide would come back as garbage from PyTorch's bf16 conv (STRIP_MARGIN)
    assert low.dtype == torch.bfloat16 and torch.allclose(low.float(), want, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("size", [(8, 10), (9, 11)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_tf_same_pad_equals_f_pad(size, layout):
    x = torch.randn(2, 3, *size).contiguous(memory_format=layout).requires_grad_(True)
    out = tf_same_pad(x, 3, 2)
    h, w = size
    want = F.pad(x, (0, 1, 0, 1)) if h % 2 == 0 else F.pad(x, (1, 1, 1, 1))
    assert torch.equal(out, want)
    out.sum().backward()  # differentiable (training uses it)
    assert torch.equal(x.grad, torch.ones_like(x))


def test_cache_follows_weight_changes_and_predict_uses_fast_path():
    model = _tiny()
    first = cached_inference_blur(model)
    assert cached_inference_blur(model) is first
    img = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        x = F.pad(x, (0, 8, 0, 8), mode="replicate")
        plain = model.blur(x).defocus[0, 0, :40, :56].numpy()
    label = predict_label(img, model, flips=1, bn=BNMode.MOVING)
    assert np.abs(label - plain).max() < 1e-5
    with torch.no_grad():
        model.blur.decoder.head_out.bias.add_(1.0)  # an in-place weight change (as an optimizer step)
    assert cached_inference_blur(model) is not first
    moved = predict_label(img, model, flips=1, bn=BNMode.MOVING)
    assert np.abs(moved - label).max() > 1e-3


def test_inference_blur_refuses_unfoldable_batchnorm():
    model = _tiny()
    model.blur.decoder.head.add_module("stray", BetaBatchNorm(4))  # a BatchNorm after an activation
    with pytest.raises(ValueError, match="cannot fold"):
        InferenceBlur(model.blur)


def test_bf16_precision_is_a_measured_trade_not_a_copy():
    """dmenet:precision=bf16 runs B under bfloat16 autocast: the shipped model's σ map moves by hundredths of a px on
    average (BENCHMARKS.md, "Inference in bfloat16"), it is not the fp32 map, and the option is checked and kept."""
    import skimage.data

    from dmenet.inference import Predictor, load_model
    from dmenet.methods.base import MethodOptions
    from dmenet.methods.registry import parse_method

    model = load_model()
    img = skimage.data.coffee().astype(np.float32)[:192, :256] / 255.0
    fp32 = Predictor(model, model.recipe.with_flips(1))
    bf16 = Predictor(model, model.recipe.with_flips(1), precision="bf16")
    a, b = fp32.estimate(img), bf16.estimate(img)
    d_sigma = np.abs(a.sigma - b.sigma)
    assert 0 < d_sigma.mean() < 0.05 and np.percentile(d_sigma, 99) < 0.3  # px
    assert np.abs(a.blur_probability - b.blur_probability).mean() < 0.03
    assert bf16.override(flips=2).precision == "bf16"
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        Predictor(model, precision="fp16")
    est = parse_method("dmenet:precision=bf16").make(MethodOptions())
    assert est.predictor.precision == "bf16" and "B in bf16" in est.describe()
    assert parse_method("dmenet").make(MethodOptions()).predictor.precision == "fp32"
    with pytest.raises(ValueError, match="has no option.*window; valid: precision"):
        parse_method("dmenet:window=3").make(MethodOptions())
