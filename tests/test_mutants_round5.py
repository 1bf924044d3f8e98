"""Round-5 mutation audit (docs/audit.md): values computed by hand or invariants from the specifications, for
formulas no earlier test pinned down (the trainers, checkpoints, model files, evaluation reports, Galetto, Distill,
SYNDOF generation). Tiny inputs; each test runs in well under two seconds."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dmenet.config import load_config
from dmenet.training import checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "experiments" / "tiny.yaml"


@pytest.fixture(scope="module")
def trainer():
    """A joint-stage Trainer on the tiny config (no data needed to build it), 10 steps per epoch."""
    from dmenet.models.dmenet import build_dmenet
    from dmenet.training.engine import Trainer

    cfg = load_config(TINY, ["loss.scale_consistency=1.0", "loss.scale_consistency_min=0.25",
                             "loss.scale_consistency_max=0.75"])
    torch.manual_seed(0)
    return Trainer(build_dmenet(cfg.model), cfg, torch.device("cpu"), 10)


# ------------------------------------------------------------------------------------------------------- engine
def test_learning_rate_of_the_last_step_before_a_decay_is_undecayed(trainer):
    """docs/method.md §5: lr = lr0 · 0.8^(epoch // 20), epoch = step // steps_per_epoch: step 199 (10 steps an epoch)
    is epoch 19, still lr0; step 200 is the first decayed one."""
    trainer.step = 199
    assert trainer.set_lr() == {"lr": pytest.approx(1e-4), "lr_d": pytest.approx(1e-4)}
    trainer.step = 200
    assert trainer.set_lr() == {"lr": pytest.approx(8e-5), "lr_d": pytest.approx(8e-5)}
    trainer.step = 0


def test_networks_optimiser_holds_b_and_s(trainer):
    """Module docstring: the B+S step updates B and S (the calibration network) in the joint stage; D has its own
    optimiser and C none."""
    held = {id(p) for group in trainer.opt_g.param_groups for p in group["params"]}
    model = trainer.model
    assert {id(p) for p in model.calibration.parameters()} <= held
    assert {id(p) for p in model.blur.parameters() if p.requires_grad} <= held
    assert not {id(p) for p in model.discriminator.parameters()} & held
    assert not {id(p) for p in model.perceptual.parameters()} & held


# --------------------------------------------------------------------------------------------------- checkpoint
def test_checkpoint_records_the_epoch_of_its_step(trainer, tmp_path):
    """train.json holds the step and its epoch (step // steps_per_epoch): step 25 at 10 steps an epoch is epoch 2."""
    trainer.step = 25
    try:
        folder = checkpoint.save_checkpoint(tmp_path, trainer, {}, {"note": "test"})
    finally:
        trainer.step = 0
    meta = checkpoint.read_meta(folder)
    assert folder.name == "step_00000025"
    assert (meta["step"], meta["epoch"]) == (25, 2)


class _Stream:
    def __init__(self):
        self.loaded = None

    def load_state_dict(self, tensors, scalars):
        self.loaded = (dict(tensors), dict(scalars))


def test_resume_prefers_the_stream_state_saved_by_its_own_rank():
    """load_checkpoint: "a stream saved per rank as {name}@{rank} is preferred" — rank 1 restores syn@1, not syn@0,
    and a name saved once serves every rank."""
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([p])
    tensors: dict[str, torch.Tensor] = {"stream.syn@0.order": torch.tensor([0, 1]),
                                        "stream.syn@1.order": torch.tensor([1, 0]),
                                        "stream.real.order": torch.tensor([5])}
    meta = {"opt_g": checkpoint.flatten_optimizer("opt_g", opt, tensors), "opt_d": None, "scaler_g": {},
            "scaler_d": {}, "streams": {"syn@0": {"pos": 0}, "syn@1": {"pos": 1}, "real": {"pos": 9}}}
    meta["rng"] = checkpoint._rng_state(tensors)
    fake = SimpleNamespace(opt_g=opt, opt_d=None, scaler_g=None, scaler_d=None)
    syn, real = _Stream(), _Stream()
    checkpoint._restore_training_state(Path("ckpt"), meta, tensors, fake, {"syn": syn, "real": real}, rank=1)
    assert syn.loaded[1] == {"pos": 1} and torch.equal(syn.loaded[0]["order"], torch.tensor([1, 0]))
    assert real.loaded[1] == {"pos": 9} and torch.equal(real.loaded[0]["order"], torch.tensor([5]))


def test_recent_models_refuses_zero_checkpoints(tmp_path):
    """recent_models: a count outside 1..train.keep_last raises (0 would be "every checkpoint": models[-0:])."""
    run = tmp_path / "run"
    (run / "checkpoints" / "step_00000010").mkdir(parents=True)
    (run / "checkpoints" / "step_00000010" / "model.safetensors").write_bytes(b"")
    (run / "config.yaml").write_text(TINY.read_text())
    with pytest.raises(checkpoint.CheckpointError, match="0 checkpoints asked for"):
        checkpoint.recent_models(run, 0)
    assert checkpoint.recent_models(run, 1) == [run / "checkpoints" / "step_00000010" / "model.safetensors"]


# ------------------------------------------------------------------------------------------------------ fit_dbd
def test_an_all_blurred_mask_does_not_hold_both_classes():
    """fit_dbd.holds_both_classes: blurred *and* sharp pixels; an all-blurred mask has no Fmax either."""
    from dmenet.training.fit_dbd import holds_both_classes

    assert not holds_both_classes(np.ones((2, 3), bool))
    assert not holds_both_classes(np.zeros((2, 3), bool))
    assert holds_both_classes(np.array([[True, False]]))


def test_map_scores_by_hand():
    """MAE and Fmax (β² = 0.3, thresholds i/255) of one 1×4 map: MAE = (0.1 + 0.8 + 0.5 + 0.1)/4 = 0.375; the best F
    is at T in (0.5, 0.9]: P = 1, R = 1/2, F = 1.3·0.5/(0.3 + 0.5) = 0.8125 (the best precision, 1, is not F)."""
    from dmenet.training.fit_dbd import map_scores

    prob = np.array([[0.9, 0.2, 0.5, 0.1]])
    mask = np.array([[True, True, False, False]])
    mae, fmax = map_scores([prob], [mask])
    assert mae == pytest.approx(0.375)
    assert fmax == pytest.approx(0.8125)


def test_fit_reports_s_own_scores_at_scale_1_shift_0():
    """DBDFit.s_mae / s_fmax are S's own probability, sigmoid(z) (scale 1, shift 0), whatever the grid chose."""
    from dmenet.training.fit_dbd import fit_logit_transform, map_scores

    z = np.array([[2.0, -1.0, 0.5, -3.0], [1.0, 0.2, -0.4, -2.0]])
    mask = np.array([[True, False, True, False], [True, True, False, False]])
    fit = fit_logit_transform([z], [mask])
    s_mae, s_fmax = map_scores([1.0 / (1.0 + np.exp(-z))], [mask])
    assert (fit.s_mae, fit.s_fmax) == (pytest.approx(s_mae, abs=1e-6), pytest.approx(s_fmax, abs=1e-6))


# ----------------------------------------------------------------------------------------------------- fit_head
class _Recorder(torch.nn.Module):
    """A per-pixel classifier that keeps every input it is shown."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(1, 1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.lin(x)[..., 0]


def test_pixel_draws_reach_every_pixel_of_every_image():
    """train_pixel_classifier: each epoch draws pixels_per_image pixels of *every* image, uniformly over its pixels:
    with two pixels an image and 64 draws, both pixels of both images are seen (a draw that skipped an image's last
    pixel would never show 1.0 or 3.0)."""
    from dmenet.training.fit_head import HeadTraining, train_pixel_classifier

    net = _Recorder()
    inputs = [np.array([[0.0], [1.0]], np.float32), np.array([[2.0], [3.0]], np.float32)]
    masks = [np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32)]
    cfg = HeadTraining(epochs=1, pixels_per_image=64, batch=128, transform_images=1)
    train_pixel_classifier(net, inputs, masks, cfg)
    seen = torch.cat(net.seen).flatten().tolist()
    assert sorted(set(seen)) == [0.0, 1.0, 2.0, 3.0]
    assert len(seen) == 128 and seen.count(0.0) + seen.count(1.0) == 64


# ----------------------------------------------------------------------------------------------------- model_io
def test_model_paths_keep_an_unknown_suffix_in_the_name():
    """model_io.model_paths: ``.safetensors`` / ``.json`` / none name the pair; any other suffix is part of the name
    (``dmenet_lite.v2`` is never ``dmenet_lite.safetensors``)."""
    from dmenet.models.model_io import model_paths

    d = Path("runs")
    for given in ("m", "m.safetensors", "m.json"):
        assert model_paths(d / given) == (d / "m.safetensors", d / "m.json")
    assert model_paths(d / "dmenet_lite.v2") == (d / "dmenet_lite.v2.safetensors", d / "dmenet_lite.v2.json")


def test_foreign_sidecar_names_a_train_json_by_its_optimiser_and_streams_together():
    """model_io.foreign_sidecar: a checkpoint's train.json holds both ``opt_g`` and ``streams``; a model sidecar whose
    free meta has one such key is still a DMENet sidecar (None)."""
    from dmenet.models.model_io import foreign_sidecar

    assert "training checkpoint" in foreign_sidecar({"format_version": 1, "opt_g": {}, "streams": {}})
    assert foreign_sidecar({"format_version": 2, "architecture": {}, "recipe": {}, "streams": "notes"}) is None
    assert foreign_sidecar({"format_version": 2, "architecture": {}, "recipe": {}, "opt_g": None}) is None
    # another tool's file states its format and no format_version; a sidecar with both is read as DMENet's
    assert foreign_sidecar({"format": "thing"}) == "a 'thing' file (its sidecar's format), not a DMENet model"
    assert foreign_sidecar({"format": "thing", "format_version": 2}) is None


# ------------------------------------------------------------------------------------------------- eval runner
def test_stem_list_takes_the_part_after_the_double_dash(tmp_path):
    """runner.read_stem_list: lower-case stems, ``a--b.jpg`` rows give ``b``, blanks and # comments skipped."""
    from dmenet.eval.runner import read_stem_list

    path = tmp_path / "list.txt"
    path.write_text("source--Photo_01.jpg\n# a comment\n\n  plain.PNG  \n")
    assert read_stem_list(str(path)) == {"photo_01", "plain"}


def test_panel_leaves_out_images_without_a_score(monkeypatch):
    """runner._panel: rows whose rank metric is NaN (an all-sharp GT has no Fmax) are not ranked: two finite rows
    give one worst and one best, and the NaN one appears in neither."""
    from dmenet.eval import report, runner

    shown = []
    monkeypatch.setattr(report, "make_panel", lambda rows: shown.extend(rows) or np.zeros((1, 1, 3), np.uint8))
    rows = [{"stem": "a", "fmax": float("nan")}, {"stem": "b", "fmax": 0.5}, {"stem": "c", "fmax": 0.7}]
    protocol = SimpleNamespace(rows=rows, rank_key="fmax", higher_better=True)
    tile = np.zeros((4, 4), np.uint8)
    thumbs = {s: (tile, tile) for s in "abc"}
    samples = [SimpleNamespace(stem=s, image=None) for s in "abc"]
    runner._panel(protocol, thumbs, samples)
    assert [r["label"] for r in shown] == ["worst b fmax=0.500", "best c fmax=0.700"]


# ---------------------------------------------------------------------------------------------------------- rtf
def test_rtf_pairs_by_the_value_of_the_trailing_number(tmp_path):
    """rtf.list_rtf (noise layout): images and GT pair by their trailing *number* — image_01 with 1.npy, image_10
    with 10.npy — sorted by id (1 before 10)."""
    import cv2

    from dmenet.eval.rtf import list_rtf

    (tmp_path / "image" / "0").mkdir(parents=True)
    (tmp_path / "gt" / "0").mkdir(parents=True)
    for img, gt in (("image_01", "1"), ("image_10", "010")):
        cv2.imwrite(str(tmp_path / "image" / "0" / f"{img}.png"), np.zeros((4, 4, 3), np.uint8))
        np.save(tmp_path / "gt" / "0" / f"{gt}.npy", np.zeros((4, 4), np.float32))
    samples = list_rtf(tmp_path, "0")
    assert [(s.stem, Path(s.gt).name) for s in samples] == [("image_01", "1.npy"), ("image_10", "010.npy")]


# ---------------------------------------------------------------------------------------------------------- dbd
def test_hifst_curve_of_a_resized_8bit_map_resizes_the_raw_map_itself():
    """dbd.DBDAccumulator: HiFST's PR protocol resizes the *raw* map to the GT size with MATLAB bicubic (metrics.
    hifst_pr); the level histogram of the scoring-size map stands in only when no resize happened. A 2×2 8-bit map
    scored on a 4×4 GT (nearest resize, so the scoring map holds 8-bit levels) gives hifst_pr(raw, gt)."""
    from dmenet.eval import metrics as M
    from dmenet.eval.dbd import DBDAccumulator

    pred = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    gt = np.zeros((4, 4), bool)
    gt[:2, 2:] = gt[2:, :2] = True
    gt[1, 1] = True
    acc = DBDAccumulator(map_resize="nearest")
    acc.add("x", pred, gt)
    _, p, r = acc.pr_curve()
    p_ref, r_ref = M.hifst_pr(pred, gt)
    assert np.allclose(p, p_ref) and np.allclose(r, r_ref)


# -------------------------------------------------------------------------------------------- galetto classifier
def test_channel_rounding_is_keras_make_divisible():
    """Keras ``_make_divisible(v, 8)``: max(8, int(v + 4) // 8 · 8), plus 8 when that falls below 0.9·v:
    44 → 48 (not 40), 11.2 → 16, 33.6 → 32, 3 → 8."""
    from dmenet.galetto.classifier import _divisible

    assert [_divisible(v) for v in (44, 11.2, 33.6, 3)] == [48, 16, 32, 8]


def test_classifier_maps_mid_grey_to_zero_before_the_stem():
    """Module docstring: input gray in [0, 1] is mapped to [−1, 1] inside, so mid-grey 0.5 reaches the bias-free stem
    as 0: the stem's output, hence the logits, do not depend on the stem's weights for that image."""
    from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig

    torch.manual_seed(0)
    model = BlurClassifier(ClassifierConfig(width=0.35, head_channels=16, blocks=2)).eval()
    x = torch.full((1, 1, 32, 32), 0.5)
    with torch.no_grad():
        before = model(x)
        model.features[0][0].weight.mul_(3.0)
        after = model(x)
    assert torch.allclose(before, after, atol=1e-6)


def test_classifier_strides_on_the_first_block_of_each_stage():
    """MobileNetV2 (t, c, n, s): the first block of a stage has stride s, the others 1: a 32×32 patch is 16 px after
    the stem, 16 after stage 1 (s 1), 8, 8 after stage 2, 4, 4, 4 after stage 3 and 2 ×4 after stage 4."""
    from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
    from dmenet.models.mobilenet import InvertedResidual

    model = BlurClassifier(ClassifierConfig(width=0.35, head_channels=16, blocks=4)).eval()
    sizes: list[int] = []
    for m in model.features:
        if isinstance(m, InvertedResidual):
            m.register_forward_hook(lambda mod, i, o: sizes.append(o.shape[-1]))
    with torch.no_grad():
        model(torch.rand(1, 1, 32, 32))
    assert sizes == [16, 8, 8, 4, 4, 4, 2, 2, 2, 2]


# ---------------------------------------------------------------------------------------- galetto build_patches
def test_split_gives_val_the_rounded_fraction_of_a_seeded_permutation():
    """build_patches.split_stems (module docstring): a photo goes to val when its place in a seeded permutation of
    the sorted stems falls in the first val_fraction: round(0.35 · 10) = 4 photos (main() checks the same count)."""
    from dmenet.galetto.build_patches import split_stems

    stems = [f"p{i}" for i in range(10)]
    train, val = split_stems(stems[::-1], 0.35, seed=3)
    order = np.random.default_rng(3).permutation(10)
    assert val == sorted(stems[i] for i in order[:4])
    assert train == sorted(set(stems) - set(val))


def test_test_sample_takes_each_patch_at_its_label():
    """build_patches.subsample_test: a (position, σ) pair is the patch of that position blurred at σ = label."""
    from dmenet.galetto.build_patches import subsample_test

    n = 3
    patches = np.broadcast_to(np.arange(20, dtype=np.uint8)[None, :, None, None], (n, 20, 32, 32)).copy()
    arrays = {"patches": patches, "stem": np.array(["a", "b", "c"]), "y": np.arange(n), "x": np.arange(n)}
    out = subsample_test(arrays, 40, seed=0)
    assert out["label"].tolist() == [k for k in range(20) for _ in range(2)]
    assert all((out["patches"][j] == out["label"][j]).all() for j in range(40))


# ------------------------------------------------------------------------------------------- galetto calibrate
def test_galetto_calibrate_records_the_fitted_maps_scores(tmp_path):
    """galetto.calibrate writes the transform with its training scores: ``train_mae`` / ``train_fmax`` are the MAE
    and Fmax of sigmoid(scale·(σ − shift)) on the fitting images (fit_dbd.map_scores), each under its own key."""
    from dmenet.galetto import calibrate
    from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
    from dmenet.galetto.detection import read_transform
    from dmenet.galetto.train import save_classifier
    from dmenet.methods import parse_method
    from dmenet.training.fit_dbd import map_scores
    from syndof import io as sio

    torch.manual_seed(0)
    save_classifier(tmp_path / "tiny", BlurClassifier(ClassifierConfig(width=0.25, head_channels=16, blocks=2)))
    model = tmp_path / "tiny.safetensors"
    img = np.random.default_rng(2).random((36, 40, 3)).astype(np.float32)
    mask = np.zeros((36, 40), np.uint8)
    mask[:, 20:] = 255
    sio.write_image(tmp_path / "lab" / "image" / "im0.png", img)
    sio.write_image(tmp_path / "lab" / "gt" / "im0.png", mask)
    method = f"galetto:model={model},stride=16"
    assert calibrate.main(["--benchmark", "cuhk", "--data", str(tmp_path / "lab"), "--method", method,
                           "--out", str(tmp_path / "fit")]) == 0
    transform, entry = read_transform(tmp_path / "fit")
    sigma = parse_method(method).make().blur_sigma(sio.read_image(tmp_path / "lab" / "image" / "im0.png"))
    mae, fmax = map_scores([transform.apply(sigma)], [mask > 127])
    assert entry["train_mae"] == pytest.approx(mae, abs=1e-6) and entry["train_fmax"] == pytest.approx(fmax, abs=1e-6)
    assert entry["train_mae"] != entry["train_fmax"]


# -------------------------------------------------------------------------------------------------- distill data
def test_augment_upscales_a_photo_smaller_than_the_crop_on_both_sides():
    """distill.data.augment: s is at least crop / min(h, w), so a 20×80 photo with 32 px crops is upscaled by 1.6
    on both sides (32×128) before the crop: a 32×32 crop whose rows come from a 1.6× stretch of a vertical ramp."""
    from dmenet.distill.data import augment

    ramp = np.repeat(np.linspace(0.0, 1.0, 20, dtype=np.float32)[:, None], 80, 1)
    image = np.repeat(ramp[..., None], 3, 2)
    mask = np.zeros((20, 80), np.float32)
    out, m, soft = augment(image, mask, None, 32, 1.0, False, np.random.default_rng(0))
    assert out.shape == (32, 32, 3) and m.shape == (32, 32) and soft is None
    assert out[0, 0, 0] < 0.02 and out[-1, 0, 0] > 0.98  # the whole 20-row ramp spans the 32 rows


def _stream(batch: int, sharp_per_batch: int, seed: int = 4):
    from dmenet.distill.data import Item, TrainStream

    stream = TrainStream.__new__(TrainStream)
    stream.cfg = SimpleNamespace(batch=batch, sharp_per_batch=sharp_per_batch, crop=8, scale_min=1.0, hflip=True)
    stream.seed = seed
    rng = np.random.default_rng(0)
    stream.labelled = [Item(Path(f"l{i}.png"), Path(f"m{i}.png"), None) for i in range(3)]
    stream.sharp = [Item(Path("s.png"), None, None)] if sharp_per_batch else []
    stream._memory = {it: (rng.integers(0, 256, (12, 12, 3), dtype=np.uint8),
                           (rng.random((12, 12)) < 0.5).astype(np.uint8) * 255, None)
                      for it in stream.labelled}
    stream._memory.update({it: (np.full((12, 12, 3), 128, np.uint8), np.zeros((12, 12), np.uint8), None)
                           for it in stream.sharp})  # preload: a negative's mask is all sharp
    return stream


def test_distill_batch_holds_batch_samples_of_which_n_sharp_negatives():
    """TrainStream.batch: (B − n_sharp) labelled samples + n_sharp sharp negatives: B in all."""
    out = _stream(batch=5, sharp_per_batch=2).batch(0)
    assert out["image"].shape == (5, 3, 8, 8)
    assert out["sharp"].flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert float(out["mask"][3:].sum()) == 0.0


def test_distill_batch_of_step_k_is_drawn_from_the_seed_and_k():
    """Module docstring: every sample of step k is drawn from np.random.default_rng((seed, k))."""
    from dmenet.distill.data import _float, augment

    stream = _stream(batch=3, sharp_per_batch=0, seed=4)
    out = stream.batch(7)
    rng = np.random.default_rng((4, 7))
    picks = rng.integers(0, 3, 3)
    for j, i in enumerate(picks):
        image, mask, _ = (_float(a) for a in stream._memory[stream.labelled[i]])
        image, mask, _ = augment(image, mask, None, 8, 1.0, True, rng)
        assert np.array_equal(out["image"][j].numpy(), image.transpose(2, 0, 1))
        assert np.array_equal(out["mask"][j, 0].numpy(), mask)


def test_distill_split_refuses_a_validation_part_that_takes_every_image():
    """distill.split.make_split: val_count drawn from the pool (the five CUHK test photos removed) must leave a
    training image: 3 of 3 is refused, 2 of 3 leaves one."""
    from dmenet.distill.split import CUHK_TEST5, make_split

    stems = ["a", "b", "c", *CUHK_TEST5]
    with pytest.raises(ValueError, match="leave no training image"):
        make_split(stems, 3, seed=0)
    train, val = make_split(stems, 2, seed=0)
    assert len(train) == 1 and len(val) == 2 and sorted(train + val) == ["a", "b", "c"]


def test_distill_calibration_ties_keep_the_first_grid_point():
    """distill.calibrate.fit: "ties: the first" — logits 0 against targets 0.5 give MAE 0 at shift 0 for every
    scale; the first, scale 0.5, is kept."""
    from dmenet.distill.calibrate import fit

    scale, shift, err = fit(np.zeros((2, 4)), np.full((2, 4), 0.5))
    assert (scale, shift, err) == (0.5, 0.0, 0.0)


# ------------------------------------------------------------------------------------------------ dmenet losses
def test_downscale_images_accepts_the_full_side():
    """losses.downscale_images refuses only sizes outside (0, H] ("square images of side >= size"): size H is the
    identity at scale 1."""
    from dmenet.losses import downscale_images

    x = torch.rand(1, 3, 16, 16)
    small, scale = downscale_images(x, 16)
    assert scale == 1.0 and torch.allclose(small, x)
    with pytest.raises(ValueError, match="side >= 17"):
        downscale_images(x, 17)


# ------------------------------------------------------------------------------------------------ syndof generate
def test_rerun_without_dataset_json_reads_the_noise_setting_from_a_sample(tmp_path):
    """recipe.check_recipe: without dataset.json a finished sample's meta says the settings; its augment.noise
    (the drawn parameters, None when off) means --noise was given: a rerun without --noise is refused, with it
    accepted."""
    import json

    from syndof.recipe import check_recipe

    (tmp_path / "meta").mkdir()
    meta = {"max_coc": 29, "kernel": "gaussian", "seed": 0, "augment": {"noise": {"gain": 0.01}, "jpeg_quality": None}}
    (tmp_path / "meta" / "000000_a.json").write_text(json.dumps(meta))
    recipe = {"max_coc": 29, "kernel": "gaussian", "seed": 0, "jpeg_quality": None, "max_size": None,
              "merge_tolerance": 0.0}
    check_recipe(tmp_path, {**recipe, "noise": True})
    with pytest.raises(ValueError, match="noise True"):
        check_recipe(tmp_path, {**recipe, "noise": False})


# ---------------------------------------------------------------------------------------------------- recipe
def test_removing_the_head_drops_its_fit_record():
    """Recipe.with_head(None): S's logit again, so no head and no head_fit (a fit passed along is not kept)."""
    from dmenet.models.recipe import BNMode, Fit, Recipe

    fit = Fit(tool="t", flips=1, bn=BNMode.MOVING, bn_source="training")
    det = Recipe().with_head(None, second_bn=BNMode.IMAGE, fit=fit).detection
    assert (det.head, det.second_bn, det.head_fit) == (None, None, None)


# ------------------------------------------------------------------------------------------------- data record
def test_data_record_tells_renamed_files_from_a_new_count(tmp_path):
    """data_record.what_changed: as many files under other names, or another number of files, each in its words."""
    from dmenet.training.data_record import folder_fingerprint, what_changed

    (tmp_path / "a.png").write_bytes(b"1")
    (tmp_path / "b.png").write_bytes(b"2")
    before = folder_fingerprint(tmp_path)
    (tmp_path / "b.png").rename(tmp_path / "c.png")
    assert what_changed(before, folder_fingerprint(tmp_path)) == (
        "its files: 2, as when the run started, but with other names")
    (tmp_path / "d.png").write_bytes(b"3")
    assert what_changed(before, folder_fingerprint(tmp_path)) == "its files: 3 now, 2 when the run started"
