"""DMENet GAN / sharpness losses against hand-computed BCE values with logits that tell the targets apart.

With every logit 0, BCE is ln 2 whatever the target, so these use logits of both signs: BCE(x, 1) = softplus(−x),
BCE(x, 0) = softplus(x)."""

import math

import pytest
import torch

from dmenet import losses


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_adversarial_loss_pushes_both_real_sets_towards_synthetic():
    lab, unl = torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), -1.0)
    # ½[BCE(1, 1) + BCE(−1, 1)] = ½[softplus(−1) + softplus(1)]
    expected = 0.5 * (_softplus(-1.0) + _softplus(1.0))
    assert losses.adversarial_loss(lab, unl).item() == pytest.approx(expected, rel=1e-6)
    assert losses.adversarial_loss(unl, lab).item() == pytest.approx(expected, rel=1e-6)
    big = torch.full((1, 1, 2, 2), 30.0)  # both real sets judged synthetic: the generator has won
    assert losses.adversarial_loss(big, big).item() < 1e-6
    assert losses.adversarial_loss(big, -big).item() == pytest.approx(15.0, rel=1e-6)


def test_discriminator_loss_hand_values_with_distinct_logits():
    s, r, u = torch.full((1, 1, 1, 1), 2.0), torch.full((1, 1, 1, 1), -1.0), torch.full((1, 1, 1, 1), 0.5)
    expected = 0.5 * (2 * _softplus(-2.0) + _softplus(-1.0) + _softplus(0.5))
    assert losses.discriminator_loss(s, r, u).item() == pytest.approx(expected, rel=1e-6)


def test_sharpness_loss_target_is_the_blur_mask():
    logits = torch.tensor([[[[3.0, -2.0]]]])
    mask = torch.tensor([[[[1.0, 0.0]]]])  # 1 = blurred: both logits agree with the mask
    expected = 0.5 * (_softplus(-3.0) + _softplus(-2.0))
    assert losses.sharpness_loss(logits, mask).item() == pytest.approx(expected, rel=1e-6)
    assert losses.sharpness_loss(logits, 1 - mask).item() == pytest.approx(0.5 * (_softplus(3.0) + _softplus(2.0)),
                                                                         rel=1e-6)
