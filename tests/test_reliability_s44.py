"""docs/reliability.md §44: σ measured on a shrunk working copy converted back to input px by the factor the copy's
rounded size got (``syndof.resize.shrunk_scale``), not the one asked (§41, Left); ``SyntheticDataset`` refuses a
``max_coc`` below 1 px as ``syndof.blur.check_max_coc`` does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from model_helpers import tiny_dmenet
from test_reliability_s32 import _error_line, _run

from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
from dmenet.galetto.train import save_classifier
from dmenet.inference import Predictor, working_scale
from dmenet.methods import MethodOptions, make_method
from dmenet.methods.dmenet import DMENetEstimator
from syndof import resize

C = 5.0
"""σ (px at the working size) the stand-ins give everywhere."""
SHAPE = (67, 1025)
"""A photo whose short side rounds visibly at a long side of 512: 1025 × 67 → 512 × 33 px (×0.4995 asked, the short
side ×0.4925), a factor of 0.4960, 0.7 % below the one asked; both sides stay ≥ 32 px (DMENet's and Galetto's
floor), so the size is the asked scale's, rounded."""
MAX_SIDE = 512


def _photo() -> np.ndarray:
    return np.random.default_rng(0).random((*SHAPE, 3)).astype(np.float32)


def test_shrunk_scale_is_the_factor_of_the_size_shrink_long_side_gives():
    """The shape-only factor is ``applied_scale`` of the rounded size (1025 × 37 → 512 × 18: 0.4930 against 0.4995
    asked), 1.0 when the image fits; ``shrink_long_side`` gives that size."""
    got = resize.shrunk_scale((37, 1025), 512)
    assert got == resize.applied_scale((37, 1025), (512, 18)) == pytest.approx(0.49296, abs=1e-5)
    assert resize.long_side_scale((37, 1025), 512) == 512 / 1025
    assert resize.shrink_long_side(np.zeros((37, 1025), np.float32), 512)[0].shape == (18, 512)
    assert resize.shrunk_scale((37, 1025), 2000) == 1.0 == resize.shrunk_scale((37, 1025), None)
    work = resize.shrink_long_side(np.zeros(SHAPE, np.float32), MAX_SIDE)[0]
    assert work.shape == (33, 512)
    assert working_scale(SHAPE, MAX_SIDE) == resize.shrunk_scale(SHAPE, MAX_SIDE) == pytest.approx(0.49602, abs=1e-5)


class _ConstantSigma(Predictor):
    """A Predictor whose B gives the label of σ = :data:`C` px at whatever size it runs at."""

    def label(self, image, bn, **tile_options):
        return np.full(image.shape[:2], C / self.model.config.sigma_max, dtype=np.float32)


def test_dmenet_sigma_at_full_size_is_c_over_the_factor_the_working_size_got():
    """``Predictor.estimate(max_side=512)`` on a 1025 × 67 photo runs at 512 × 33 px; B's σ of C px there is
    C / 0.4960 px of the photo (it was C / 0.4995, 0.7 % low), and the dmenet method's ``sigma_max`` is σ_max / 0.4960
    likewise."""
    model = tiny_dmenet()
    predictor = _ConstantSigma(model, model.recipe.without_sigma_curve())
    assert predictor.recipe.sigma.curve is None
    got = predictor.estimate(_photo(), sigma=True, probability=False, max_side=MAX_SIDE)
    factor = resize.applied_scale(SHAPE, (512, 33))
    assert got.sigma.shape == SHAPE
    np.testing.assert_allclose(got.sigma, C / factor, rtol=1e-6)
    assert abs(float(got.sigma.mean()) - C / resize.long_side_scale(SHAPE, MAX_SIDE)) > 0.02  # the old value
    est = DMENetEstimator(predictor, MethodOptions(max_side=MAX_SIDE)).estimate(_photo(), probability=False)
    np.testing.assert_allclose(est.sigma, C / factor, rtol=1e-6)
    assert est.sigma_max == pytest.approx(predictor.model.config.sigma_max / factor, rel=1e-12)


def _constant_classifier(folder) -> str:
    """A classifier file whose every window is class :data:`C` (σ C px): zero weights, a one-hot bias."""
    torch.manual_seed(0)
    model = BlurClassifier(ClassifierConfig(width=0.25, head_channels=16, blocks=2))
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[int(C)] = 20.0
    save_classifier(folder / "constant", model)
    return str(folder / "constant.safetensors")


def test_galetto_sigma_at_full_size_is_c_over_the_factor_the_working_copy_got(tmp_path):
    """Galetto's ``sigma_map`` (through the method) on the same photo: class C px at 512 × 33 px is C / 0.4960 px of
    the photo, and ``sigma_top`` 19 / 0.4960 px."""
    est = make_method("galetto", MethodOptions(model=_constant_classifier(tmp_path), max_side=MAX_SIDE))
    factor = resize.applied_scale(SHAPE, (512, 33))
    got = est.estimate(_photo(), probability=False)
    assert got.sigma.shape == SHAPE
    np.testing.assert_allclose(got.sigma, C / factor, rtol=1e-6)
    assert got.sigma_max == pytest.approx(19.0 / factor, rel=1e-12)
    full = make_method("galetto", MethodOptions(model=_constant_classifier(tmp_path)))
    np.testing.assert_array_equal(full.estimate(_photo(), probability=False).sigma, C)  # no resize: C itself


@pytest.mark.parametrize("value", [0.5, 0.999, float("nan")])
def test_train_refuses_a_synthetic_max_coc_below_1_px_naming_dataset_json(tiny_syndof, tmp_path, capsys, value):
    """``dataset.json`` with ``max_coc`` 0.5 was taken (only > 0 was asked): no render has a CoC grid below 1 px
    (``syndof.blur.check_max_coc``). Now one line naming the file, exit 2, no run folder."""
    from train_data_helpers import blur_cli

    from dmenet.train import main

    syn = tmp_path / "syn"
    for sub in ("image", "blur_map"):
        (syn / sub).mkdir(parents=True)
        for f in (tiny_syndof / sub).iterdir():
            (syn / sub / f.name).write_bytes(f.read_bytes())
    (syn / "dataset.json").write_text(json.dumps({"max_coc": value}))
    run = tmp_path / "run"
    assert _run(main, blur_cli(syn, run, "--steps", "1")) == 2
    line = _error_line(capsys)
    assert str(syn / "dataset.json") in line and "max_coc must be a finite number > 1" in line  # §48: one reader
    assert not run.exists()


def test_a_synthetic_max_coc_of_29_reads_and_1_is_refused():
    """29 and 13.5 read; ``true``, ``"29"``, null stay refused, and 1 (σ_max 0, which ``check_max_coc`` takes) is
    refused since reliability.md §48: training reads dataset.json with evaluation's reader (> 1)."""
    from dmenet.data import SyntheticDataset
    from syndof import io as sio
    from train_data_helpers import write_syndof
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        root = write_syndof(Path(tmp) / "syn", count=1)
        for value, want in ((29, 29.0), (13.5, 13.5)):
            (root / "dataset.json").write_text(json.dumps({"max_coc": value}))
            assert SyntheticDataset(root).max_coc == want
        for bad in (True, "29", None, 1):
            (root / "dataset.json").write_text(json.dumps({"max_coc": bad}))
            with pytest.raises(sio.InputError, match="max_coc must be a finite number > 1"):
                SyntheticDataset(root)
