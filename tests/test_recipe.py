"""The inference recipe apart from the architecture: format-1 reading (byte-identical maps of the shipped model),
format-2 round trips, Predictor overrides as warned copies, only the asked-for paths run, validation as the σ path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from dmenet import inference, logits, tiling
from dmenet.config import load_config
from dmenet.configlib import ConfigError
from dmenet.models.model_io import load_model_file, read_sidecar, save_model
from dmenet.models.recipe import BNMode, Fit, Recipe
from model_helpers import tiny_dmenet as _tiny
from recipe_identity import (BLOCK_ATOL, HASH_FILE, HEAD_HASH_FILE, ONEPASS, ONEPASS_HASH_FILE, PLAIN_PATHS, cases,
                             differences, fingerprint, map_fingerprints, s_predictor)

REPO = Path(__file__).resolve().parents[1]
FORMAT1_JSON = REPO / "tests" / "data" / "dmenet_lite_format1.json"
"""The shipped sidecar as it was until rule 21h8 added the detection head (format 1, as written in Dec 2026)."""


def _shipped_like() -> Recipe:
    """The shipped recipe's shape: σ moving, detection per image, 8 flips, a curve fitted at 8 flips."""
    fit = Fit(tool="t", flips=8, bn=BNMode.MOVING, bn_source="training")
    return Recipe(flips=8).with_bn(BNMode.MOVING, BNMode.IMAGE).with_sigma_curve((0.0, 3.0, 7.0), fit)


# ---------------------------------------------------------------------------------------------- the shipped file
def test_format1_sidecar_maps_to_the_recipe_without_touching_the_file():
    """The sidecar the lite model shipped with before rule 21h8 (format 1)."""
    before = FORMAT1_JSON.read_bytes()
    raw = json.loads(before)
    assert raw["format_version"] == 1
    sidecar = read_sidecar(FORMAT1_JSON)
    assert sidecar["converted_from_format"] == 1 and "image_bn_stats" not in sidecar["architecture"]
    recipe = Recipe.from_dict(sidecar["recipe"])
    cfg = raw["model_config"]
    assert recipe.flips == cfg["test_flips"] == 8
    assert recipe.sigma.bn is BNMode.MOVING and recipe.detection.bn is BNMode.IMAGE
    assert recipe.sigma.curve == tuple(cfg["sigma_curve"])
    assert (recipe.detection.scale, recipe.detection.shift) == (cfg["dbd_logit_scale"], cfg["dbd_logit_shift"])
    assert recipe.sigma.curve_fit.data == tuple(raw["sigma_calibration"]["data"])
    assert "synthetic_v3" in recipe.moving_stats and recipe.sigma.curve_fit.bn_source == recipe.moving_stats
    assert [h["tool"] for h in sidecar["history"]] == ["dmenet.training.average", "dmenet.training.recalibrate",
                                                        "dmenet.training.fit_sigma", "dmenet.training.fit_dbd"]
    assert FORMAT1_JSON.read_bytes() == before


def _remembered(factory, seen: dict):
    """``factory`` (one of PLAIN_PATHS' stand-ins) whose module remembers each pass: a later pass on the same input
    bytes (the same photo, flip and tile) returns a copy of the first one's maps instead of running B again. The S
    run and the head run of one photo feed B the same inputs, so the second run reads them (one thread: the first
    run's bytes are what it would compute)."""
    import hashlib

    def make(model):
        inner = factory(model)

        def forward(x, features: bool = False):
            key = (factory.__name__, tuple(x.shape), features, hashlib.sha256(x.detach().numpy().tobytes()).hexdigest())
            if key not in seen:
                seen[key] = inner(x, features=features)
            return seen[key].clone()
        return forward
    return make


@pytest.mark.shared
@pytest.mark.slow  # 9 photos × 16 passes of B (the head run reads them again): about a minute of one CPU core
def test_shipped_maps_equal_the_pinned_ones(shared, monkeypatch):
    """σ maps of the shipped file through the recipe, and its probability maps with the detection path of commit
    36c3343 (S, sigmoid(6·(z − 2.5))), equal the pinned ones up to float rounding (tests/recipe_identity.py: block
    means within 1e-5; one torch thread, the plain path); its probability maps with the shipped two-label head
    equal those pinned for it (rule 21h8). The default BatchNorm-folded fast path (issue 19) gives the same σ, and S's
    lookup table the same probability, up to float rounding."""
    shared("data", "cuhk", "image")
    shared("data", "rtf", "image_01.png")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = inference.load_model()
        assert model.recipe.detection.head is not None
        name, load = cases(shared("data").parent)[-1]
        image = load()
        fast = inference.estimate(image, s_predictor(model))
        fast_head = inference.estimate(image, model)
        with monkeypatch.context() as m:
            seen: dict = {}
            for k, plain in PLAIN_PATHS.items():
                m.setattr(tiling, k, _remembered(plain, seen))  # B's forward looks them up there
            m.setattr(inference, "calibration_logit", logits.direct_calibration_logit)  # S itself, no table
            got = map_fingerprints(s_predictor(model), shared=shared("data").parent)
            passes = len(seen)
            got_head = map_fingerprints(model, shared=shared("data").parent)
            plain = inference.estimate(image, s_predictor(model))
            plain_head = inference.estimate(image, model)
    finally:
        torch.set_num_threads(before)
    pinned = json.loads(HASH_FILE.read_text())["maps"]
    assert len(pinned) == 9 and differences(got, pinned) == []
    pinned_head = json.loads(HEAD_HASH_FILE.read_text())["maps"]
    assert len(pinned_head) == 9 and differences(got_head, pinned_head) == []
    assert all(got_head[k]["sigma"] == got[k]["sigma"] for k in got)  # the head changes no σ
    assert passes >= 9 * 16 and len(seen) == passes  # every pass of the head run was one of the S run's
    assert np.abs(fast.sigma - plain.sigma).max() < 1e-4, name
    # per-image B is rewritten but never folded; S is read from its table (dmenet.models.calibration_table): float
    # rounding only
    assert np.abs(fast.blur_probability - plain.blur_probability).max() < 1e-4, name
    # the head reads the σ path's (folded) moving-statistics label: float rounding only
    assert np.abs(fast_head.blur_probability - plain_head.blur_probability).max() < 1e-3, name


def test_map_fingerprints_tolerate_rounding_and_catch_a_change():
    sigma = np.random.default_rng(0).random((50, 70)).astype(np.float32) * 7
    pinned = {"a": {"sigma": fingerprint(sigma)}}
    noisy = sigma + np.random.default_rng(1).normal(0, 1e-6, sigma.shape).astype(np.float32)
    assert differences({"a": {"sigma": fingerprint(noisy)}}, pinned) == []
    changed = sigma.copy()
    changed[:4, :5] += 20 * BLOCK_ATOL  # the first of the 16 × 16 blocks moves: a real change
    found = differences({"a": {"sigma": fingerprint(changed)}}, pinned)
    assert len(found) == 1 and found[0].startswith("a sigma: a block mean differs by 0.0002")
    assert differences({"a": {"sigma": fingerprint(sigma[:, 1:])}}, pinned) == [
        "a sigma: shape [50, 69] != pinned [50, 70]"]
    assert differences({}, pinned) == ["a sigma: shape None != pinned [50, 70]"]


# ---------------------------------------------------------------------------------------------- format 2
def test_format2_round_trip_keeps_recipe_history_and_rejects_unknown_keys(tmp_path):
    model = _tiny()
    model.recipe = _shipped_like()
    history = [{"tool": "dmenet.calibrate sigma", "arguments": ["sigma"], "date": "2026-12-03", "data": ["d"]}]
    save_model(tmp_path / "m", model, {"note": 1}, history)
    loaded, sidecar = load_model_file(tmp_path / "m")
    assert loaded.recipe == model.recipe and sidecar["history"] == history and sidecar["note"] == 1
    assert Recipe.from_dict(json.loads(json.dumps(model.recipe.to_dict()))) == model.recipe
    with pytest.raises(ValueError, match="unknown keys"):
        Recipe.from_dict({**model.recipe.to_dict(), "image_bn_stats": True})
    with pytest.raises(ValueError, match="'per-image' is not a valid BNMode"):
        Recipe.from_dict({"sigma": {"bn": "per-image"}})
    with pytest.raises(ValueError, match="reserved"):
        save_model(tmp_path / "x", model, {"recipe": {}})


def test_printed_recipe_is_two_lines_about_the_image():
    text = str(_shipped_like())
    sigma, detection = text.split("\n")
    assert sigma.startswith("σ: B with moving (training) BatchNorm statistics, mean of 8 flips")
    assert "3-value σ curve" in sigma
    assert detection.startswith("blur probability: B with per-image BatchNorm statistics")
    assert "sigmoid(1·(z − 0))" in detection


# ---------------------------------------------------------------------------------------------- overrides
def test_overrides_are_copies_and_warn_when_they_contradict_a_fit():
    model = _tiny()
    model.recipe = _shipped_like()
    predictor = inference.Predictor(model)
    with pytest.warns(UserWarning, match="σ curve was fitted at 8 flips, used at 1") as record:
        one = predictor.override(flips=1)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert one.recipe.flips == 1 and predictor.recipe.flips == 8 and model.recipe.flips == 8  # nothing mutated
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consistent overrides say nothing
        raw = predictor.override(raw_sigma=True)
        assert raw.recipe.sigma.curve is None and predictor.recipe.sigma.curve is not None
        assert raw.override(flips=1).recipe.flips == 1  # no curve left to contradict
        assert predictor.override(flips=8).recipe == predictor.recipe
    with pytest.raises(ValueError, match="flips"):
        predictor.override(flips=3)
    # statistics changed under a fitted curve, e.g. by a later re-estimation
    moved = model.recipe.with_bn(moving_stats="re-estimated on x")
    assert moved.contradictions() == ["the σ curve was fitted on moving statistics from 'training'; the weights now "
                                      "hold 're-estimated on x'"]
    assert moved.with_bn(sigma=BNMode.IMAGE).contradictions()[0].startswith(
        "the σ curve was fitted with moving BatchNorm statistics, used with per-image ones")


def test_raw_sigma_and_flips_change_only_their_own_output():
    model = _tiny()
    model.recipe = _shipped_like().with_bn(BNMode.MOVING, BNMode.MOVING)
    image = np.random.default_rng(0).random((32, 48, 3)).astype(np.float32)
    predictor = inference.Predictor(model)
    full = predictor.estimate(image)
    raw = predictor.override(raw_sigma=True).estimate(image)
    np.testing.assert_array_equal(raw.blur_probability, full.blur_probability)
    np.testing.assert_array_equal(raw.label, full.label)
    np.testing.assert_allclose(raw.sigma, full.label * 7.0, atol=1e-5)
    np.testing.assert_allclose(full.sigma, np.interp(raw.sigma, [0, 3.5, 7], [0, 3, 7]), atol=1e-5)


# ---------------------------------------------------------------------------------------------- passes
def _pass_hooks(model, calls: list):
    """A forward hook counting B's passes: every path runs B's encoder (the per-image path directly, the
    moving-statistics path inside the BatchNorm-folded copy of :func:`dmenet.models.fuse.cached_inference_blur`)."""
    return [model.blur.encoder.register_forward_hook(lambda *_: calls.append(1))]


def _count_passes(predictor, image, **asked) -> int:
    calls = []
    handles = _pass_hooks(predictor.model, calls)
    try:
        predictor.estimate(image, **asked)
    finally:
        for h in handles:
            h.remove()
    return len(calls)


def test_only_the_asked_paths_run_and_agreeing_paths_share_passes():
    model = _tiny()
    image = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    mixed = inference.Predictor(model, _shipped_like())  # σ moving, detection per image, 8 flips: the shipped shape
    assert _count_passes(mixed, image, sigma=True, probability=False) == 8
    assert _count_passes(mixed, image, sigma=False, probability=True) == 8
    assert _count_passes(mixed, image, sigma=True, probability=True) == 16
    same = inference.Predictor(model, _shipped_like().with_bn(detection=BNMode.MOVING))
    assert _count_passes(same, image, sigma=True, probability=True) == 8
    # the public helpers run one path each
    calls = []
    handles = _pass_hooks(model, calls)
    try:
        inference.estimate_blur_probability(image, mixed)
        assert len(calls) == 8
        inference.estimate_defocus(image, mixed)
        assert len(calls) == 16
    finally:
        for h in handles:
            h.remove()
    alone = mixed.estimate(image, sigma=False)
    np.testing.assert_array_equal(alone.blur_probability, mixed.estimate(image).blur_probability)
    assert alone.sigma is None and alone.label is None


# ---------------------------------------------------------------------------------------------- training side
def test_trainer_validates_as_the_sigma_path_says():
    from dmenet.training.engine import Trainer
    from dmenet.models.layers import batch_statistics

    cfg = load_config(None, ["train.stage=blur", "train.amp=false"])
    model = _tiny()
    for m in model.blur.modules():
        if hasattr(m, "running_mean") and m.running_mean is not None:
            m.running_mean.fill_(0.5)  # moving statistics unlike any image's
    trainer = Trainer(model, cfg, torch.device("cpu"), steps_per_epoch=10)
    batch = {"image": torch.rand(2, 3, 32, 32), "label": torch.rand(2, 1, 32, 32)}
    with torch.no_grad():
        model.blur.eval()
        moving_pred = model.blur(batch["image"]).defocus
        with batch_statistics(model.blur):
            image_pred = torch.cat([model.blur(x[None]).defocus for x in batch["image"]])
    moving = float(torch.nn.functional.mse_loss(moving_pred, batch["label"]))
    per_image = float(torch.nn.functional.mse_loss(image_pred, batch["label"]))
    assert abs(moving - per_image) > 1e-4
    model.recipe = Recipe()
    assert trainer.validate([batch]) == pytest.approx(moving, rel=1e-5)
    model.recipe = Recipe().with_bn(sigma=BNMode.IMAGE)
    assert trainer.validate([batch]) == pytest.approx(per_image, rel=1e-5)


def test_experiment_config_carries_the_recipe_and_reads_old_model_keys(tmp_path):
    cfg = load_config(None, ["inference.sigma_bn=image", "inference.flips=2"])
    recipe = cfg.inference.recipe()
    assert (recipe.sigma.bn, recipe.detection.bn, recipe.flips) == (BNMode.IMAGE, BNMode.IMAGE, 2)
    with pytest.raises(ConfigError, match="inference.sigma_bn"):
        load_config(None, ["inference.sigma_bn=running"])
    old = tmp_path / "config.yaml"  # a run's config.yaml written before the recipe
    old.write_text("model:\n  encoder: mobilenet_v2\n  image_bn_stats: true\n  detection_image_bn_stats: null\n"
                   "  test_flips: 1\n  dbd_logit_scale: 1.0\n  dbd_logit_shift: 0.0\n  sigma_curve: null\n")
    cfg = load_config(old)
    assert cfg.inference.sigma_bn == "image" and cfg.inference.detection_bn is None
    assert cfg.model.encoder == "mobilenet_v2"


@pytest.mark.shared  # 9 photos × 1 pass of B: about 4 s
def test_onepass_file_maps_equal_the_pinned_ones(shared):
    """checkpoints/dmenet_lite_onepass (experiments/ONEPASS_FILE.md) is the shipped file's σ path with a feature head,
    fitted at 1 flip, in place of the two-label head: its probability maps equal those pinned for it (block means
    within 1e-5, one torch thread); σ and the probability come from one set of B's passes with the σ path's
    statistics (no per-image-statistics pass), and its σ is the shipped file's at 1 flip."""
    import warnings

    shared("data", "cuhk", "image")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        onepass, default = inference.load_model(ONEPASS), inference.load_model()
        predictor, shipped = inference.Predictor.of(onepass), inference.Predictor.of(default)
        assert predictor.reads_features and predictor.recipe.flips == 1 and shipped.recipe.flips == 8
        assert predictor.recipe.sigma == shipped.recipe.sigma
        assert predictor.recipe.detection.bns == (predictor.recipe.sigma.bn,) == (BNMode.MOVING,)  # one pass
        got = map_fingerprints(onepass, shared=shared("data").parent)
        image = cases(shared("data").parent)[0][1]()
        one = inference.estimate(image, onepass)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the shipped fits were made at 8 flips
            two = inference.estimate(image, default, flips=1)
    finally:
        torch.set_num_threads(before)
    pinned = json.loads(ONEPASS_HASH_FILE.read_text())["maps"]
    assert len(pinned) == 9 and differences(got, pinned) == []
    assert np.abs(one.sigma - two.sigma).max() < 1e-4
    assert np.abs(one.blur_probability - two.blur_probability).max() > 0.05  # another detection path


def test_default_recipe_runs_one_pass():
    """An untouched recipe runs B once (no test-time flips): the paper's single pass."""
    from dmenet.models.recipe import Recipe

    r = Recipe()
    assert r.flips == 1
    assert str(r).count("1 pass") == 2  # both paths
