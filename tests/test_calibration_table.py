"""S as a lookup table at inference (dmenet.models.calibration_table): the same logits as S itself up to float
rounding, kink cells and out-of-range labels through S, the cache keyed on S's tensors, and the shipped model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from dmenet import inference, logits
from dmenet.models.calibration_table import (cached_calibration_table, calibration_table)
from model_helpers import randomise_batchnorm, tiny_dmenet


def _tiny(seed: int = 0):
    """A tiny DMENet whose S has random moving statistics and shifts (so its kinks fall inside [0, 1])."""
    model = tiny_dmenet(seed)
    randomise_batchnorm(model.calibration, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for m in model.calibration.modules():
        if isinstance(m, nn.Conv2d):
            m.bias.data.copy_(torch.randn(m.bias.numel(), generator=gen) * 0.5)
    return model.eval()


def _direct(model, label):
    return logits.direct_calibration_logit(model, label)


def test_table_equals_s_on_random_labels_and_flags_its_kinks(rng):
    model = _tiny()
    table = cached_calibration_table(model)
    assert table.kinks.any() and table.kinks.mean() < 0.01  # this S bends inside [0, 1], in few cells
    label = rng.random((67, 45)).astype(np.float32)
    label[0, :4] = [0.0, 1.0, 0.5, np.float32(1 / 3)]
    label[1, :] = (np.resize(np.flatnonzero(table.kinks), 45) + 0.37) / (table.points - 1)  # inside kink cells
    got = logits.calibration_logit(model, label)
    assert got.dtype == np.float32 and got.shape == label.shape
    np.testing.assert_allclose(got, _direct(model, label), rtol=1e-5, atol=1e-5)  # S's own float32 rounding

    # against S in float64 the table is exact: linear cells by interpolation, kink cells through S
    s64 = copy.deepcopy(model.calibration).double()

    def exact(x):
        with torch.no_grad():
            return s64(torch.from_numpy(np.asarray(x, np.float64)).reshape(1, 1, 1, -1)).reshape(np.shape(x)).numpy()

    truth = exact(label)
    t = label.astype(np.float64) * (table.points - 1)
    i = np.minimum(t.astype(np.intp), table.points - 2)
    read = table.values[i] + (t - i) * table.slopes[i]  # the table's float64 reading, before the float32 result
    assert np.abs(np.where(table.kinks[i], exact(label), read) - truth).max() < 1e-9
    assert np.abs(read - truth)[1].max() > 1e-6  # the kink cells really are off the straight line


def test_labels_outside_the_grid_go_through_s(rng):
    model = _tiny()
    table = cached_calibration_table(model)
    label = rng.random((20, 30)).astype(np.float32)
    label[table.kinks[np.minimum((label * (table.points - 1)).astype(int), table.points - 2)]] = 0.5
    odd = [-0.5, 1.5, np.nan, -1e-7, 1.0 + 1e-6]
    label[0, :5] = odd
    sent = []

    def exact(x):
        sent.append(x.copy())
        return _direct(model, x)

    got = table(label, exact)
    np.testing.assert_array_equal(sent[0], np.float32(odd))  # those and only those, once
    assert len(sent) == 1 and np.isnan(got[0, 2])
    np.testing.assert_allclose(logits.calibration_logit(model, label), _direct(model, label), rtol=1e-5,
                               atol=1e-5)
    table(np.full((3, 3), 0.5, np.float32), exact=lambda x: pytest.fail("S called for labels in linear cells"))


def test_cache_rebuilds_only_when_s_changes():
    model = _tiny()
    label = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    first = cached_calibration_table(model)
    before = logits.calibration_logit(model, label)
    assert cached_calibration_table(model) is first  # nothing changed: same table
    with torch.no_grad():
        model.blur.encoder.parameters().__next__().add_(1.0)  # B is not S: the table stays
    assert cached_calibration_table(model) is first
    with torch.no_grad():
        model.calibration.out.bias.add_(1.0)
    after = logits.calibration_logit(model, label)
    assert cached_calibration_table(model) is not first
    np.testing.assert_allclose(after, before + 1.0, rtol=0, atol=2e-5)
    np.testing.assert_allclose(after, _direct(model, label), rtol=0, atol=2e-5)
    second = cached_calibration_table(model)
    model.calibration.load_state_dict(model.calibration.state_dict())  # copies in place: new version counters
    assert cached_calibration_table(model) is not second


def test_train_mode_runs_s_itself_and_the_table_refuses_it():
    model = _tiny()
    model.calibration.train()
    label = np.random.default_rng(3).random((8, 8)).astype(np.float32)
    with torch.no_grad():
        want = model.calibration(torch.from_numpy(label)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(logits.calibration_logit(model, label), want)  # batch statistics: no table
    assert "_calibration_table_memo" not in model.__dict__
    with pytest.raises(ValueError, match="eval mode"):
        calibration_table(model.calibration)


@pytest.mark.shared
def test_shipped_model_table_matches_s_through_estimate(shared, monkeypatch):
    """RTF image 01 through ``Predictor.estimate`` (1 flip): table vs S itself, at the tolerance the report states
    for the 5 CUHK images and RTF 01 at 8 flips (max |Δ logit| 1.5e-5, max |Δ probability| 5.1e-6)."""
    from syndof import io as sio

    image = sio.read_image(shared("data", "rtf", "image_01.png"))
    predictor = inference.load_predictor(flips=1, report=lambda _: None)
    # S's path with the transform it shipped with until rule 21h8 (tests/recipe_identity.py: PINNED_S_TRANSFORM)
    predictor = inference.Predictor(predictor.model, predictor.recipe.with_head(None).with_transform(6.0, 2.5))
    label = predictor.detection_labels(image)[0]
    z_table = logits.calibration_logit(predictor.model, label)
    z_direct = logits.direct_calibration_logit(predictor.model, label)
    assert np.abs(z_table - z_direct).max() < 3e-5
    fast = predictor.estimate(image, sigma=False).blur_probability
    calls = []  # Predictor.detection_logit looks calibration_logit up in dmenet.inference: replaced there
    monkeypatch.setattr(inference, "calibration_logit",
                        lambda *a: calls.append(1) or logits.direct_calibration_logit(*a))
    plain = predictor.estimate(image, sigma=False).blur_probability
    assert calls and np.abs(fast - plain).max() < 1e-5
