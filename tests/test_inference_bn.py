"""Per-image BatchNorm statistics at inference, BatchNorm re-estimation, and the shipped checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dmenet.models.config import ModelConfig
from dmenet.models.dmenet import build_dmenet
from dmenet.models.layers import BetaBatchNorm, batch_statistics
from dmenet.training.recalibrate import domain_batches, recalibrate_batchnorm

REPO = Path(__file__).resolve().parents[1]


def _tiny():
    torch.manual_seed(0)
    model = build_dmenet(ModelConfig(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25))
    return model.eval()


def test_batch_statistics_equals_train_mode_and_leaves_state_untouched():
    model = _tiny()
    x = torch.rand(1, 3, 48, 64)
    bn = next(m for m in model.blur.modules() if isinstance(m, BetaBatchNorm))
    bn.running_mean.fill_(5.0)  # moving stats far from the batch's: eval output must differ from batch-stat output
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        eval_out = model.blur(x).defocus
        with batch_statistics(model.blur):
            image_out = model.blur(x).defocus
        reference = _tiny()
        reference.load_state_dict(state)
        reference.blur.train()
        train_out = reference.blur(x).defocus
    assert torch.allclose(image_out, train_out, atol=1e-6)
    assert not torch.allclose(image_out, eval_out, atol=1e-4)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not any(m.training for m in model.blur.modules())


def test_recalibration_gives_the_plain_mean_of_batch_statistics():
    module = torch.nn.Sequential(BetaBatchNorm(3), torch.nn.BatchNorm2d(3))
    module[0].running_mean.fill_(9.0)  # stale statistics must be discarded
    batches = [torch.rand(2, 3, 8, 8) * s + s for s in (0.5, 1.0, 2.0)]
    n = recalibrate_batchnorm(module, batches)
    assert n == 3 and not module.training
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    variances = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(module[0].running_mean, means, atol=1e-5)
    assert torch.allclose(module[0].running_var, variances, atol=1e-5)
    assert module[0].momentum == 0.1 and module[1].momentum == 0.1  # restored


def test_domain_batches_never_mix_domains():
    a = [np.zeros((8, 8, 3), np.float32)] * 4
    b = [np.ones((8, 8, 3), np.float32)] * 4
    out = domain_batches([a, b], batch=2)
    assert [float(t.mean()) for t in out] == [0.0, 1.0, 0.0, 1.0]
    assert out[0].shape == (2, 3, 8, 8)


def test_shipped_checkpoint_loads_and_is_small():
    from dmenet import estimate_defocus, load_model

    path = REPO / "checkpoints" / "dmenet_lite.safetensors"
    assert path.stat().st_size <= 30 * 2**20
    model = load_model()
    assert model.config.image_bn_stats
    image = np.random.default_rng(0).random((37, 53, 3)).astype(np.float32)
    sigma = estimate_defocus(image, model)
    assert sigma.shape == (37, 53) and sigma.dtype == np.float32
    assert 0.0 <= sigma.min() and sigma.max() <= 7.0


def test_shipped_detection_map_transform_is_the_recorded_fit_on_training_images():
    import json

    from dmenet import load_model

    model = load_model()
    sidecar = json.loads((REPO / "checkpoints" / "dmenet_lite.json").read_text())
    fit = sidecar["dbd_calibration"]
    assert (model.config.dbd_logit_scale, model.config.dbd_logit_shift) == (fit["scale"], fit["shift"])
    assert model.config.test_flips == fit["test_flips"]  # fitted on the maps that inference gives
    assert fit["images"] and not any("cuhk" in name.lower() or "out_of_focus" in name for name in fit["images"])
    assert fit["train_mae"] - fit["train_fmax"] <= fit["train_mae_s_probability"] - fit["train_fmax_s_probability"]
