"""Distill losses on hand-computable inputs where the per-pixel, per-sample structure matters (batch of 2)."""

import math

import pytest
import torch

from dmenet.distill import losses as L


def test_channel_normalized_is_per_pixel_over_channels():
    f = torch.tensor([[3.0, 1.0], [4.0, 0.0]]).view(1, 2, 1, 2)  # pixel 0: (3, 4), pixel 1: (1, 0)
    out = L.channel_normalized(torch.cat([f, 10 * f]))  # the second sample is the first ×10: the same unit vectors
    expected = torch.tensor([[0.6, 1.0], [0.8, 0.0]]).view(1, 2, 1, 2)
    assert torch.allclose(out[0:1], expected) and torch.allclose(out[1:2], expected)


def test_feature_loss_is_scale_free_per_sample():
    student = torch.tensor([[3.0, 4.0], [1.0, 0.0]]).view(2, 2, 1, 1)  # sample 0 (3, 4), sample 1 (1, 0)
    teacher = student * torch.tensor([2.0, 5.0]).view(2, 1, 1, 1)  # each sample rescaled by its own factor
    ident = torch.nn.Identity()
    assert float(L.feature_loss([student], [teacher], [ident])) == pytest.approx(0.0, abs=1e-7)
    # sample 0 against (4, 3)/5, sample 1 against (0, 1): squared errors 2·0.2² and 2·1², mean over 4 values
    other = torch.tensor([[4.0, 3.0], [0.0, 7.0]]).view(2, 2, 1, 1)
    assert float(L.feature_loss([student], [other], [ident])) == pytest.approx((0.08 + 2.0) / 4, rel=1e-6)


def test_weighted_mean_uses_the_weights_sum():
    x = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    w = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1)
    assert float(L.weighted_mean(x, w)) == pytest.approx((1 * 1 + 3 * 3) / 4)  # = 2.5
    assert float(L.weighted_mean(x, torch.zeros(2, 1, 1, 1))) == 0.0


def test_consistency_loss_hand_value():
    s = torch.tensor([2.0, -1.0]).view(1, 1, 1, 2)
    t = torch.tensor([0.25, 0.5]).view(1, 1, 1, 2)
    # BCE(x, t) = softplus(x) − t·x
    expected = ((math.log1p(math.exp(2.0)) - 0.5) + (math.log1p(math.exp(-1.0)) + 0.5)) / 2
    assert float(L.consistency_loss(s, t, torch.ones(1, 1, 1, 1))) == pytest.approx(expected, rel=1e-6)


def test_content_loss_edge_term_scales_with_its_weight():
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    flat, w = torch.zeros_like(step), torch.ones(1, 1, 1, 1)
    c0, c05, c1 = (float(L.content_loss(flat, step, w, e)) for e in (0.0, 0.5, 1.0))
    assert c0 == pytest.approx(math.log(2), rel=1e-6) and c1 > c0 + 0.05
    assert c05 == pytest.approx(c0 + 0.5 * (c1 - c0), rel=1e-6)


def test_ra_lsgan_uses_the_other_sets_mean_on_varied_scores():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, -2.0])  # E D(r) = 0.5, E D(f) = −1
    # D: E[(r + 1 − 1)²] + E[(f − 0.5 + 1)²] = 0.5 + 1.25; G: E[(f − 0.5 − 1)²] + E[(r + 1 + 1)²] = 7.25 + 6.5
    assert float(L.ra_lsgan_d(real, fake)) == pytest.approx(0.5 + (0.25 + 2.25) / 2)
    assert float(L.ra_lsgan_g(real, fake)) == pytest.approx((2.25 + 12.25) / 2 + (9.0 + 4.0) / 2)


def test_feature_loss_sends_no_gradient_into_the_teacher():
    student = torch.tensor([[3.0, 4.0], [1.0, 0.0]]).view(2, 2, 1, 1).requires_grad_()
    teacher = torch.tensor([[4.0, 3.0], [0.0, 7.0]]).view(2, 2, 1, 1).requires_grad_()
    L.feature_loss([student], [teacher], [torch.nn.Identity()]).backward()
    assert teacher.grad is None and student.grad is not None and student.grad.abs().sum() > 0
