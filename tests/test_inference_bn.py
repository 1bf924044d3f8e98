"""Per-image BatchNorm statistics at inference, BatchNorm re-estimation, and the shipped checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dmenet.models.layers import BetaBatchNorm, batch_statistics
from dmenet.models.recipe import BNMode, Recipe
from dmenet.training.recalibrate import domain_batches, recalibrate_batchnorm
from model_helpers import tiny_dmenet as _tiny

REPO = Path(__file__).resolve().parents[1]


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


def test_inference_leaves_a_training_model_in_its_modes_with_eval_mode_maps():
    """``predict_label`` and ``Predictor.estimate`` switched the caller's model to eval mode for good: a validation
    inside a fine-tuning loop went on training with BatchNorm frozen. They now run in eval mode and give each module
    its own mode back; the maps equal those of the model in eval mode, and BatchNorm's moving statistics are
    untouched."""
    from dmenet.inference import Predictor, predict_label

    model = _tiny()
    image = np.random.default_rng(5).random((48, 64, 3)).astype(np.float32)
    model.eval()
    want, want_label = Predictor(model).estimate(image), predict_label(image, model, flips=2)
    model.train()
    model.calibration.eval()  # a mixed state comes back as it was, module by module
    modes = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    got, got_label = Predictor(model).estimate(image), predict_label(image, model, flips=2)
    assert [m.training for m in model.modules()] == modes and model.blur.training
    np.testing.assert_array_equal(got.sigma, want.sigma)
    np.testing.assert_array_equal(got.blur_probability, want.blur_probability)
    np.testing.assert_array_equal(got_label, want_label)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_batch_statistics_keeps_buffer_versions_so_the_fast_path_cache_survives():
    from dmenet.models.fuse import cached_inference_blur

    model = _tiny()
    x = torch.rand(1, 3, 48, 64)
    versions = [(t.data_ptr(), t._version) for t in model.blur.buffers()]
    with torch.inference_mode():
        fast = cached_inference_blur(model)
        with batch_statistics(model.blur):
            model.blur.decoder(model.blur.encoder(x), with_aux=False)
        assert [(t.data_ptr(), t._version) for t in model.blur.buffers()] == versions
        assert cached_inference_blur(model) is fast  # not rebuilt after a per-image-statistics pass


def test_image_statistics_copy_is_b_with_per_image_statistics_up_to_rounding():
    from dmenet.models.fuse import cached_image_statistics_blur

    model = _tiny()
    for m in model.blur.modules():
        if isinstance(m, BetaBatchNorm):
            m.running_mean.uniform_(-1.0, 1.0)  # moving statistics unlike the image's
    x = torch.rand(1, 3, 48, 64).contiguous(memory_format=torch.channels_last)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        with batch_statistics(model.blur):
            skips = model.blur.encoder(x)
            plain = model.blur.decoder(skips, with_aux=False)[0]
            plain_features = model.blur.decoder.detection_features(skips)
        moving = model.blur.decoder(model.blur.encoder(x), with_aux=False)[0]
        copy = cached_image_statistics_blur(model)
        assert copy.folds == 0 and copy.pointwise > 0 and copy.replicate > 0  # every rewrite but the fold
        with batch_statistics(copy):
            got, features = copy(x), copy(x, features=True)
        assert cached_image_statistics_blur(model) is copy  # B unchanged: the same copy
    # per-image statistics of the tiny B's 3×4-cell bottleneck amplify rounding: 5e-5 on its features here
    assert torch.allclose(got, plain, atol=1e-5) and torch.allclose(features, plain_features, atol=2e-4)
    assert not torch.allclose(got, moving, atol=1e-3)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not any(m.training for m in (*model.blur.modules(), *copy.modules()))
    with torch.no_grad():
        next(model.blur.parameters()).add_(0.1)
    assert cached_image_statistics_blur(model) is not copy  # B changed: rebuilt


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
    assert model.recipe.sigma.bn is BNMode.MOVING and model.recipe.detection.bn is BNMode.IMAGE
    image = np.random.default_rng(0).random((37, 53, 3)).astype(np.float32)
    sigma = estimate_defocus(image, model)
    assert sigma.shape == (37, 53) and sigma.dtype == np.float32
    assert 0.0 <= sigma.min() and sigma.max() <= 7.0


def test_shipped_detection_head_is_the_recorded_fit_on_training_images():
    """Rule 21h8: the shipped detection logit is a two-label head trained by ``calibrate head`` at the recipe's 8
    flips on the CUHK training split plus sharp-everywhere BSDS500 train photos; no validation or held-out image."""
    import json

    from dmenet import load_model

    model = load_model()
    sidecar = json.loads((REPO / "checkpoints" / "dmenet_lite.json").read_text())
    entry = sidecar["history"][-1]
    det = model.recipe.detection
    assert sidecar["format_version"] == 2 and entry["tool"] == "dmenet.calibrate head"
    assert det.head is not None and det.second_bn is BNMode.MOVING and det.bn is BNMode.IMAGE
    assert (det.scale, det.shift) == (entry["result"]["transform"]["scale"], entry["result"]["transform"]["shift"])
    assert det.head_fit.flips == det.transform_fit.flips == model.recipe.flips == 8
    assert model.recipe.contradictions() == []  # every value is used as it was fitted
    split = json.loads((REPO / "experiments" / "cuhk_split.json").read_text())
    used = {name.split("/")[-1].rsplit(".", 1)[0] for name in entry["result"]["images"]}
    assert len(used) == 626 and {s for s in used if not s.startswith("sharp_")} == set(split["train"])
    assert not used & (set(split["val"]) | set(split["held_out"]))
    fit = entry["result"]["transform"]
    assert fit["train_mae"] - fit["train_fmax"] <= fit["train_mae_s_probability"] - fit["train_fmax_s_probability"]


def test_calibrate_bn_moving_mode_gives_the_sigma_path_new_statistics(tmp_path, capsys):
    """Re-estimated statistics become the σ path's (one domain is enough), the moving statistics really change
    (the weights do not), and the detection path keeps its per-image statistics."""
    import json

    from dmenet import calibrate
    from dmenet.models.model_io import load_model_file, save_model
    from syndof import io

    model = _tiny()
    model.recipe = Recipe().with_bn(sigma=BNMode.IMAGE, detection=BNMode.IMAGE)
    save_model(tmp_path / "m.safetensors", model, {})
    rng = np.random.default_rng(0)
    for i in range(4):
        io.write_image(tmp_path / "syn" / "image" / f"{i}.png", rng.random((40, 40, 3)).astype(np.float32))
    assert calibrate.main(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "moving", "--synthetic",
                           str(tmp_path / "syn"), "--crops", "4", "--crop", "32", "--batch", "2",
                           "--out", str(tmp_path / "r.safetensors")]) == 0
    out, meta = load_model_file(tmp_path / "r.safetensors")
    assert out.recipe.sigma.bn is BNMode.MOVING and out.recipe.detection.bn is BNMode.IMAGE
    assert str(tmp_path / "syn") in out.recipe.moving_stats
    entry = meta["history"][-1]
    assert entry["tool"] == "dmenet.calibrate bn" and entry["result"]["batches"] == 2
    before, after = model.blur.state_dict(), out.blur.state_dict()
    changed = [k for k in before if k.endswith("running_mean") and not torch.equal(before[k], after[k])]
    assert changed
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "num_batches" not in k)
    assert json.loads((tmp_path / "r.json").read_text())["recipe"]["sigma"]["bn"] == "moving"
    # an empty or missing folder is a usage error naming it, and writes nothing
    (tmp_path / "empty" / "image").mkdir(parents=True)
    for folder in ("empty", "missing"):
        capsys.readouterr()
        assert calibrate.main(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "moving", "--synthetic",
                               str(tmp_path / folder), "--out", str(tmp_path / f"{folder}.safetensors")]) == 2
        assert not (tmp_path / f"{folder}.safetensors").exists()
        assert str(tmp_path / folder / "image") in capsys.readouterr().err


def test_detection_path_keeps_its_own_statistics():
    """σ with the moving statistics, the detection map with per-image ones: estimate() gives each path's map, and
    the probability equals S on the per-image label (what calibrate dbd fits)."""
    from dmenet import inference

    model = _tiny()
    for m in model.blur.modules():
        if isinstance(m, (BetaBatchNorm, torch.nn.BatchNorm2d)):
            m.running_mean.fill_(0.3)  # moving statistics far from any image's
    image = np.random.default_rng(1).random((48, 64, 3)).astype(np.float32)
    running = inference.estimate(image, inference.Predictor(model, Recipe()))
    per_image = inference.estimate(image, inference.Predictor(model, Recipe().with_bn(BNMode.IMAGE, BNMode.IMAGE)))
    assert not np.allclose(running.label, per_image.label, atol=1e-3)
    mixed_predictor = inference.Predictor(model, Recipe().with_bn(BNMode.MOVING, BNMode.IMAGE))
    mixed = inference.estimate(image, mixed_predictor)
    np.testing.assert_array_equal(mixed.label, running.label)
    np.testing.assert_allclose(mixed.blur_probability, per_image.blur_probability, atol=1e-6)
    np.testing.assert_array_equal(mixed_predictor.detection_labels(image)[0], per_image.label)
    assert mixed_predictor.detection_labels(image, sigma_label=running.label)[0] is not running.label
    shared = inference.Predictor(model, Recipe())  # both paths moving: the σ-path label is reused
    assert shared.detection_labels(image, sigma_label=running.label)[0] is running.label


def test_shipped_checkpoint_measures_a_global_blur():
    """A sharp photo blurred as a whole by a Gaussian of 2 px has σ ≈ 2 px everywhere (Gaussians compose in
    quadrature). The release before the re-estimated statistics said 1.2 px on the sharp photo: it ranked blur
    against the sharpest region instead of measuring it."""
    import cv2
    import skimage.data

    from dmenet import estimate_defocus, load_model

    model = load_model()
    image = skimage.data.astronaut()[::2, ::2].astype(np.float32) / 255.0  # 256 px, in focus
    with pytest.warns(UserWarning, match="σ curve was fitted at 8 flips, used at 1"):
        sharp = estimate_defocus(image, model, flips=1)
    with pytest.warns(UserWarning, match="σ curve was fitted at 8 flips, used at 1"):  # the same warning, no other
        blurred = estimate_defocus(cv2.GaussianBlur(image, (0, 0), 2.0), model, flips=1)
    assert np.median(sharp) < 0.6
    assert 1.6 < np.median(blurred) < 2.6


def test_per_image_statistics_pass_is_the_same_from_several_threads():
    """The per-image-statistics copy holds no state a call changes (its BatchNorms always use the input's
    statistics), so one model serves threads: before, each call switched the shared copy's modes and buffers, and
    concurrent calls read each other's (up to 0.31 apart in blur probability, docs/reliability.md H4)."""
    import threading

    from dmenet.inference import predict_label
    from dmenet.models.fuse import ImageStatisticsNorm, cached_image_statistics_blur

    model = _tiny()
    for m in model.blur.modules():
        if isinstance(m, BetaBatchNorm):
            m.running_mean.uniform_(-1.0, 1.0)  # moving statistics unlike any image's
    rng = np.random.default_rng(0)
    images = [rng.random((48 + 16 * i, 64, 3)).astype(np.float32) for i in range(4)]
    refs = [predict_label(im, model, flips=1, bn=BNMode.IMAGE) for im in images]
    found: list[float] = []

    def work() -> None:
        for _ in range(6):
            for im, ref in zip(images, refs):
                found.append(float(np.abs(predict_label(im, model, flips=1, bn=BNMode.IMAGE) - ref).max()))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 72 and max(found) == 0.0
    copy = cached_image_statistics_blur(model)
    assert copy.image_norms > 0 and not any(isinstance(m, BetaBatchNorm) for m in copy.modules())
    assert all(isinstance(m, ImageStatisticsNorm) or not isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())


def test_overlapping_inference_calls_give_a_training_model_its_modes_back():
    """Review of 67bd658: two threads sharing one Predictor on a training model overlap (A enters, B enters, A leaves,
    B leaves). B recorded the eval modes A had switched to, so A's exit put B's model back in train mode mid-call and
    B's exit left the caller's model in eval mode for good. The modes the first call found come back once the last
    call leaves."""
    from dmenet.inference import eval_mode

    model = _tiny()
    model.train()
    model.calibration.eval()
    modes = [m.training for m in model.modules()]
    a, b = eval_mode(model), eval_mode(model)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert not any(m.training for m in model.modules())  # B is still running: eval
    b.__exit__(None, None, None)
    assert [m.training for m in model.modules()] == modes


def test_detection_logit_runs_s_in_eval_mode_whatever_the_model_is_in():
    """Review of 67bd658: predict_label no longer leaves the model in eval mode, so ``probability_from_labels(
    detection_labels(x))`` on a training model ran S with batch statistics (0.49 off Predictor.estimate's
    probability) and updated S's moving statistics."""
    from dmenet.inference import Predictor

    torch.manual_seed(0)
    model = _tiny()
    for m in model.calibration.modules():
        if isinstance(m, BetaBatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    image = np.random.default_rng(0).random((48, 64, 3)).astype(np.float32)
    predictor = Predictor(model)
    model.eval()
    want = predictor.estimate(image).blur_probability
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    got = predictor.probability_from_labels(predictor.detection_labels(image))
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
