"""The two-label detection head: its arithmetic, its place in the recipe and the model file, its training and the
``calibrate head`` step on a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dmenet import calibrate, inference
from dmenet.models.detection_head import NEGATIVE_SLOPE, DetectionHead, head_logit
from dmenet.models.model_io import load_model_file, save_model
from dmenet.models.recipe import BNMode, DetectionPath, Fit, Recipe
from dmenet.training.fit_head import (DetectionHeadNet, HeadTraining, train_head, train_pixel_classifier,
                                      transform_image_indices)
from hostile_helpers import assert_usage_error, run_main
from model_helpers import tiny_dmenet as _tiny
from model_helpers import write_labelled_photos

REPO = Path(__file__).resolve().parents[1]


def _head(seed=0) -> DetectionHead:
    torch.manual_seed(seed)
    return DetectionHeadNet().to_head()


def test_head_logit_is_the_mlp_written_out():
    head = _head(3)
    rng = np.random.default_rng(0)
    a, b = rng.random((7, 9)).astype(np.float32), rng.random((7, 9)).astype(np.float32)
    (w1, b1), (w2, b2), (w3, b3) = head.arrays()
    leaky = lambda v: np.where(v > 0, v, NEGATIVE_SLOPE * v)  # noqa: E731
    x = np.stack([a, b], -1).astype(np.float64)
    want = (leaky(leaky(x @ w1.T + b1) @ w2.T + b2) @ w3.T + b3)[..., 0]
    got = head_logit(head, a, b)
    assert got.shape == (7, 9) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    with torch.no_grad():
        net = DetectionHeadNet.from_head(head)(torch.from_numpy(np.stack([a, b], -1)))
    np.testing.assert_allclose(got, net.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="different shapes"):
        head_logit(head, a, b[:, :3])


def test_head_logit_does_not_depend_on_the_thread_count(tmp_path):
    """The head's maps must not depend on the machine's thread settings: its products run BLAS on one thread,
    whatever OMP_NUM_THREADS says (a multi-threaded product rounds differently)."""
    script = (
        "import sys, numpy as np, torch\n"
        "from dmenet.training.fit_head import DetectionHeadNet\n"
        "from dmenet.models.detection_head import head_logit\n"
        "torch.manual_seed(3); head = DetectionHeadNet().to_head()\n"
        "rng = np.random.default_rng(0); a, b = rng.random((2, 300, 700), dtype=np.float32)\n"
        "np.save(sys.argv[1], head_logit(head, a, b))\n")
    outs = []
    for threads in ("1", "2"):
        out = tmp_path / f"z{threads}.npy"
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, cwd=REPO)
        outs.append(np.load(out))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_head_survives_json_exactly_and_bad_heads_are_refused():
    head = _head(1)
    assert head.widths == (2, 16, 16, 1)
    again = DetectionHead.from_dict(json.loads(json.dumps(head.to_dict())))
    assert again == head  # float32 values are exact as JSON float64
    for arr, arr2 in zip(head.arrays(), again.arrays()):
        assert all(np.array_equal(x, y) for x, y in zip(arr, arr2))
    with pytest.raises(ValueError, match="one output"):
        DetectionHead(layers=head.layers[:2])
    with pytest.raises(ValueError, match="layer 0"):
        DetectionHead(layers=head.layers[1:])  # the first layer must take the two labels
    with pytest.raises(ValueError, match="finite"):
        DetectionHead(layers=((((float("nan"), 0.0),), (0.0,)),))
    with pytest.raises(ValueError, match="malformed"):
        DetectionHead(layers=(((0.0, 0.0),), (0.0,)))
    with pytest.raises(ValueError, match="key 'layers'"):
        DetectionHead.from_dict({"layers": [], "extra": 1})


def test_detection_path_needs_a_head_and_a_distinct_second_mode():
    head = _head()
    with pytest.raises(ValueError, match="second_bn"):
        DetectionPath(bn=BNMode.IMAGE, head=head)
    with pytest.raises(ValueError, match="second_bn"):
        DetectionPath(bn=BNMode.IMAGE, second_bn=BNMode.MOVING)
    with pytest.raises(ValueError, match="must differ"):
        DetectionPath(bn=BNMode.IMAGE, head=head, second_bn=BNMode.IMAGE)
    path = DetectionPath(bn=BNMode.IMAGE, head=head, second_bn="moving")
    assert path.bns == (BNMode.IMAGE, BNMode.MOVING)
    assert DetectionPath(bn=BNMode.IMAGE).bns == (BNMode.IMAGE,)
    assert "head" not in DetectionPath().to_dict()  # files without a head keep their text
    with pytest.raises(ValueError, match="unknown keys"):
        DetectionPath.from_dict({**path.to_dict(), "heads": None})


def test_recipe_round_trip_text_and_contradictions_of_a_head():
    fit = Fit(tool="t", flips=8, bn=BNMode.IMAGE, bn_source="training")
    recipe = Recipe(flips=8).with_bn(BNMode.MOVING, BNMode.IMAGE).with_head(_head(), BNMode.MOVING, fit)
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    assert "head logit z = h(both labels) (2→16→16→1)" in str(recipe)
    assert recipe.contradictions() == []
    assert recipe.with_flips(1).contradictions() == ["the detection head was fitted at 8 flips, used at 1"]
    one = Recipe(flips=1).with_bn(BNMode.MOVING, BNMode.IMAGE).with_head(_head(), BNMode.MOVING, replace(fit, flips=1))
    assert one.with_flips(8).contradictions() == ["the detection head was fitted at 1 flip, used at 8"]
    moved = recipe.with_bn(moving_stats="re-estimated elsewhere")  # the head's second label reads them
    assert moved.contradictions() == ["the detection head was fitted on moving statistics from 'training'; the "
                                      "weights now hold 're-estimated elsewhere'"]
    assert recipe.with_head(None).detection == DetectionPath(bn=BNMode.IMAGE)


def test_training_learns_what_s_cannot_see_and_is_deterministic():
    """Blurred iff the *second* label is high: a function of the first label alone (S) cannot do it."""
    rng = np.random.default_rng(0)
    pairs, masks = [], []
    for _ in range(6):
        x = rng.random((3000, 2)).astype(np.float32)
        pairs.append(x)
        masks.append((x[:, 1] > 0.5).astype(np.float32))
    cfg = HeadTraining(epochs=25, pixels_per_image=512, batch=1024, seed=4)
    net, losses = train_head(pairs, masks, cfg)
    head = net.to_head()
    test = rng.random((2000, 2)).astype(np.float32)
    accuracy = np.mean((head_logit(head, test[:, 0], test[:, 1]) > 0) == (test[:, 1] > 0.5))
    assert accuracy > 0.95 and losses[-1] < losses[0] / 2
    assert train_head(pairs, masks, cfg)[0].to_head() == head
    assert train_head(pairs, masks, HeadTraining(epochs=25, pixels_per_image=512, batch=1024, seed=5))[0] \
        .to_head() != head


def test_the_training_loop_takes_any_pixel_classifier_and_refuses_mismatched_pixels():
    """train_pixel_classifier (the head's loop, used by rule 19r's feature heads): a 5-input linear classifier learns
    a rule on its fourth input; pixel counts that differ from the mask's are refused."""
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((2000, 5)).astype(np.float32) for _ in range(4)]
    masks = [(x[:, 3] > 0.2).astype(np.float32) for x in inputs]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 1), torch.nn.Flatten(0))
    cfg = HeadTraining(epochs=30, pixels_per_image=512, batch=256, lr=0.1)
    losses = train_pixel_classifier(net, inputs, masks, cfg)
    test = rng.standard_normal((3000, 5)).astype(np.float32)
    with torch.no_grad():
        accuracy = np.mean((net(torch.from_numpy(test)).numpy() > 0) == (test[:, 3] > 0.2))
    assert accuracy > 0.97 and losses[-1] < losses[0] / 2 and not net.training
    with pytest.raises(ValueError, match="1999 pixel inputs but 2000 mask pixels"):
        train_pixel_classifier(net, [inputs[0][:-1]], masks[:1], HeadTraining())


def test_negative_weight_moves_the_ambiguous_prior_to_the_bce_optimum():
    """Labels x0 < 0.5 are blurred in the labelled images and sharp in as many all-sharp ones: the BCE optimum there
    is P(blurred) = 1 / (1 + w) for a negative weight w (0.5 at w = 1, 0.25 at w = 3); elsewhere sharp."""
    rng = np.random.default_rng(1)
    pairs = [rng.random((4000, 2)).astype(np.float32) for _ in range(6)]
    masks = [(x[:, 0] < 0.5).astype(np.float32) for x in pairs[:3]] + [np.zeros(4000, np.float32)] * 3
    test = rng.random((4000, 2)).astype(np.float32)
    ambiguous = test[:, 0] < 0.4
    for w, expected in ((1.0, 0.5), (3.0, 0.25)):
        cfg = HeadTraining(epochs=40, pixels_per_image=1024, batch=512, seed=2, negative_weight=w)
        prob = 1 / (1 + np.exp(-head_logit(train_head(pairs, masks, cfg)[0].to_head(), test[:, 0], test[:, 1])))
        assert abs(prob[ambiguous].mean() - expected) < 0.04, (w, prob[ambiguous].mean())
        assert prob[test[:, 0] > 0.6].mean() < 0.03
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="negative_weight"):
            HeadTraining(negative_weight=bad)


def test_image_mean_input_decides_what_one_pixel_cannot():
    """Rule 21g's third input: blurred photos have second labels U(0.2, 0.8), sharp ones U(0, 0.6), so one pixel in
    [0.2, 0.6] is ambiguous but the photo's mean (0.5 against 0.3) is not."""
    rng = np.random.default_rng(3)

    def photo(blurred):
        lo, hi = (0.2, 0.8) if blurred else (0.0, 0.6)
        return np.stack([rng.random(3000), rng.uniform(lo, hi, 3000)], -1).astype(np.float32)

    kinds = [True, False] * 4
    pairs = [photo(k) for k in kinds]
    masks = [np.full(3000, float(k), np.float32) for k in kinds]
    accuracy = {}
    for image_mean in (False, True):
        cfg = HeadTraining(epochs=40, pixels_per_image=1024, batch=1024, seed=3, image_mean=image_mean)
        head = train_head(pairs, masks, cfg)[0].to_head()
        assert head.image_mean is image_mean and head.widths[0] == (3 if image_mean else 2)
        tests = [(photo(k), k) for k in (True, False) * 3]
        accuracy[image_mean] = np.mean([np.mean((head_logit(head, x[:, 0], x[:, 1]) > 0) == k) for x, k in tests])
    assert accuracy[True] > 0.97 and accuracy[False] < 0.85, accuracy


def test_image_mean_head_round_trips_and_uses_the_whole_map():
    layers = (([[0.0, 0.0, 2.0]], [-1.0]),)  # logit = 2·mean(second) − 1
    head = DetectionHead(layers=layers, image_mean=True)
    assert head.widths == (3, 1) and head.to_dict()["image_mean"] is True
    assert DetectionHead.from_dict(json.loads(json.dumps(head.to_dict()))) == head
    recipe = Recipe(flips=8).with_bn(BNMode.MOVING, BNMode.IMAGE).with_head(head, BNMode.MOVING)
    assert "h(both labels, the photo mean of the second) (3→1)" in str(recipe)
    assert "image_mean" not in _head().to_dict()  # two-input heads keep their text
    second = np.zeros((4, 6), np.float32)
    second[:, :3] = 1.0  # mean 0.5 → logit 0 everywhere, also where the pixel's own label is 0
    np.testing.assert_array_equal(head_logit(head, np.zeros_like(second), second), np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match=r"\(1 × 3\)"):
        DetectionHead(layers=(([[0.0, 2.0]], [-1.0]),), image_mean=True)
    with pytest.raises(ValueError, match="image_mean"):
        DetectionHead.from_dict({"layers": head.to_dict()["layers"], "image_mean": "yes"})
    with pytest.raises(ValueError, match="expected the key"):
        DetectionHead.from_dict({"layers": head.to_dict()["layers"], "mean": True})


def test_transform_images_leave_out_single_class_masks():
    masks = [np.zeros(4), np.array([0, 1, 0, 1.0]), np.ones(4), np.array([1, 0, 0, 0.0])]
    names = ["d", "c", "b", "a"]
    assert transform_image_indices(masks, names, 5, 0) == [3, 1]  # by name: a, c
    assert len(transform_image_indices(masks, names, 1, 0)) == 1
    with pytest.raises(ValueError, match="both"):
        transform_image_indices([np.zeros(4)], ["x"], 3, 0)
    # all-sharp ones after them (the first draw unchanged); all-blurred masks are never drawn
    more = masks + [np.zeros(4), np.zeros(4)]
    picked = transform_image_indices(more, names + ["e", "f"], 5, 0, negatives=2)
    assert picked[:2] == [3, 1] and sorted(picked[2:]) == sorted(set(picked[2:])) and set(picked[2:]) <= {0, 4, 5}
    assert len(transform_image_indices(more, names + ["e", "f"], 5, 0, negatives=9)) == 5  # 2 + all 3 sharp
    with pytest.raises(ValueError, match="transform_negatives"):
        HeadTraining(transform_negatives=-1)


@pytest.fixture
def labelled(tmp_path):
    """Two labelled photos (left half sharp texture, right half flat = blurred), one sharp-everywhere negative and an
    unreadable one (skipped, named in a warning)."""
    write_labelled_photos(tmp_path, unreadable=True)
    model = _tiny()
    model.recipe = Recipe(flips=1).with_bn(BNMode.MOVING, BNMode.IMAGE)
    save_model(tmp_path / "m.safetensors", model, {"step": 0})
    return tmp_path


def _head_probability(predictor, image) -> np.ndarray:
    """The blur probability the recipe's head gives, written out: B's labels with per-image and moving statistics,
    ``head_logit``, then ``sigmoid(scale·(z − shift))``."""
    det = predictor.recipe.detection
    first, second = predictor.label(image, BNMode.IMAGE), predictor.label(image, BNMode.MOVING)
    z = head_logit(det.head, first, second).astype(np.float64)
    return 1 / (1 + np.exp(-det.scale * (z - det.shift)))


def test_calibrate_head_writes_a_head_that_drives_inference(labelled, monkeypatch, caplog):
    t = labelled
    argv = ["head", "--model", str(t / "m.safetensors"), "--labelled", str(t / "lab"), str(t / "neg"),
            "--epochs", "3", "--pixels-per-image", "64", "--flips", "2", "--transform-negatives", "1",
            "--out", str(t / "h.safetensors")]
    assert calibrate.main(argv) == 0
    model, sidecar = load_model_file(t / "h.safetensors")
    recipe = model.recipe
    det = recipe.detection
    assert det.head is not None and det.second_bn is BNMode.MOVING and recipe.flips == 2
    assert det.head_fit == det.transform_fit and det.head_fit.tool == "dmenet.calibrate head"
    assert (det.head_fit.flips, det.head_fit.bn, det.head_fit.bn_source) == (2, BNMode.IMAGE, "training")
    assert recipe.contradictions() == []
    entry = sidecar["history"][-1]
    assert entry["tool"] == "dmenet.calibrate head" and entry["data"] == [str(t / "lab"), str(t / "neg")]
    assert entry["result"]["images"] == ["lab/a0.png", "lab/a1.png", "neg/n0.png"]
    assert any("skipped" in r.message and "n1.png" in r.message for r in caplog.records)
    assert entry["result"]["transform_images"] == ["lab/a0.png", "lab/a1.png", "neg/n0.png"]  # two-class, then sharp
    assert entry["result"]["all_sharp_images"] == 1 and len(entry["result"]["losses"]) == 3
    assert entry["result"]["training"]["negative_weight"] == 1.0
    assert entry["result"]["training"]["transform_negatives"] == 1

    image = np.random.default_rng(5).random((40, 56, 3)).astype(np.float32)
    predictor = inference.Predictor(model)
    calls = []
    real_label = inference.Predictor.label
    monkeypatch.setattr(inference.Predictor, "label",
                        lambda self, img, bn, **kw: calls.append(bn) or real_label(self, img, bn, **kw))
    est = predictor.estimate(image)
    assert sorted(calls) == [BNMode.IMAGE, BNMode.MOVING]  # σ's moving pass serves the head's second label
    monkeypatch.setattr(inference.Predictor, "label", real_label)
    np.testing.assert_array_equal(predictor.label(image, BNMode.MOVING), est.label)
    np.testing.assert_allclose(est.blur_probability, _head_probability(predictor, image), atol=1e-6)
    alone = inference.estimate_blur_probability(image, predictor)  # detection only: both passes, same map
    np.testing.assert_array_equal(alone, est.blur_probability)
    s_only = inference.Predictor(model, recipe.with_head(None)).estimate(image).blur_probability
    assert not np.allclose(s_only, est.blur_probability, atol=1e-3)


def test_calibrate_head_refuses_folders_without_a_two_class_mask_before_any_pass(labelled, capsys, monkeypatch):
    t = labelled
    monkeypatch.setattr(inference.Predictor, "label", lambda *a, **k: pytest.fail("B ran before the check"))
    argv = ["head", "--model", str(t / "m.safetensors"), "--labelled", str(t / "neg"),
            "--out", str(t / "h.safetensors")]
    assert calibrate.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "both blurred and sharp" in err[0] and str(t / "neg") in err[0]
    assert not (t / "h.safetensors").exists()


def test_calibrate_head_refuses_a_second_mode_equal_to_the_first(labelled, capsys):
    t = labelled
    argv = ["head", "--model", str(t / "m.safetensors"), "--labelled", str(t / "lab"), "--second-bn", "image",
            "--out", str(t / "h.safetensors")]
    assert calibrate.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--second-bn image" in err[0]
    assert not (t / "h.safetensors").exists() and not (t / "h.json").exists()


@pytest.mark.parametrize("option, value", [("--negative-weight", v) for v in ("0", "-2", "nan", "inf", "two")]
                         + [("--transform-negatives", v) for v in ("-1", "1.5", "x")])
def test_calibrate_head_refuses_bad_numbers(labelled, capsys, option, value):
    t = labelled
    argv = ["head", "--model", t / "m.safetensors", "--labelled", t / "lab", option, value,
            "--out", t / "h.safetensors"]
    rc, _, err = run_main(calibrate.main, argv, capsys)
    assert_usage_error(rc, err, option)
    assert not (t / "h.safetensors").exists()


def test_calibrate_head_image_mean_round_trips_through_the_model_file(labelled):
    t = labelled
    argv = ["head", "--model", str(t / "m.safetensors"), "--labelled", str(t / "lab"), str(t / "neg"),
            "--epochs", "2", "--pixels-per-image", "64", "--image-mean", "--out", str(t / "g.safetensors")]
    assert calibrate.main(argv) == 0
    model, sidecar = load_model_file(t / "g.safetensors")
    head = model.recipe.detection.head
    assert head.image_mean and head.widths[0] == 3 and sidecar["history"][-1]["result"]["training"]["image_mean"]
    image = np.random.default_rng(6).random((40, 56, 3)).astype(np.float32)
    predictor = inference.Predictor(model)  # the photo mean is of the whole second map
    np.testing.assert_allclose(predictor.estimate(image).blur_probability, _head_probability(predictor, image),
                               atol=1e-6)
