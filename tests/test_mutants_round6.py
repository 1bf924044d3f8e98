"""Round-6 mutation audit (docs/audit.md): values computed by hand or invariants from the specifications, for
formulas no earlier test pinned down (the memory guard, resizing, the Distill split, inference and data, predict's
outputs, settings record and resume, image indexing, SYNDOF layer merging and padding, Galetto's compare,
training, patch sets, application checks and tool). Tiny inputs; the file runs in well under a minute."""

from __future__ import annotations

import numpy as np
import pytest
import torch


# ------------------------------------------------------------------------------------------------------------- memory
MIB600 = 600 * 2**20


def test_estimate_memory_by_hand():
    """estimate_memory = 600 MiB + H·W·(40 + input + (200 + extra)·scale²): 1000×2000 at max_side 1000 (scale 1/2),
    extra 100, input 10: 600 MiB + 2e6·(40 + 10 + 300/4) = 600 MiB + 250e6."""
    from dmenet.memory import estimate_memory

    assert estimate_memory(1000, 2000) == MIB600 + 2_000_000 * 240
    assert estimate_memory(1000, 2000, 1000, extra_per_pixel=100, input_per_pixel=10) == MIB600 + 250_000_000


def test_check_memory_accepts_exactly_the_estimate():
    """check_memory raises only when the estimate is *more* than what is available."""
    from dmenet.memory import check_memory, estimate_memory

    need = estimate_memory(1000, 2000, None, 100, 10)
    check_memory(1000, 2000, None, need, 100, 10)
    with pytest.raises(ValueError):
        check_memory(1000, 2000, None, need - 1, 100, 10)


def test_check_memory_suggests_the_side_that_fits_by_hand():
    """The side that fits: max(H, W)·√(budget / (200 + extra)), budget = (available − 600 MiB)/(H·W) − 40 − input,
    rounded down to a multiple of 16. 1000×2000 with 2e6·(40 + 10 + 75) bytes over the fixed part, extra 100,
    input 10: budget 75, √(75/300) = 1/2, side 1000 → 992 (not 1008: that would not fit)."""
    from dmenet.memory import check_memory

    with pytest.raises(ValueError, match=r"pass --max-side 992 \(or smaller\)"):
        check_memory(1000, 2000, None, MIB600 + 2_000_000 * 125, 100, 10)
    # no extra, no input: budget 50 of 200, side 2000·1/2 = 1000 -> 992
    with pytest.raises(ValueError, match=r"pass --max-side 992 "):
        check_memory(1000, 2000, None, MIB600 + 2_000_000 * 90)


def test_check_memory_suggests_a_side_of_exactly_64():
    """A side of 64 px is still offered (the floor is ≥ 64): 64×128 px, budget 50 of 200 → side 128·1/2 = 64."""
    from dmenet.memory import check_memory

    with pytest.raises(ValueError, match=r"pass --max-side 64 \(or smaller\)"):
        check_memory(64, 128, None, MIB600 + 64 * 128 * 90)
    with pytest.raises(ValueError, match="downsize it first"):
        check_memory(64, 128, None, MIB600 + 64 * 128 * 40)

# ------------------------------------------------------------------------------------------------------------- resize
def test_long_side_scale_never_enlarges_a_short_side_already_below_the_floor():
    """long_side_scale: "a short side already below it keeps its size": 20×400 at max_side 100 with a floor of 32
    keeps scale 1 (the floor would ask for 32/20 = 1.6)."""
    from syndof.resize import long_side_scale

    assert long_side_scale((20, 400), 100, min_short_side=32) == 1.0
    assert long_side_scale((40, 400), 100, min_short_side=32) == pytest.approx(0.8)


def test_resize_back_is_bilinear():
    """resize_back of [0, 1] to 4 px (cv2 bilinear, half-pixel centres): 0, 0.25, 0.75, 1."""
    from syndof.resize import resize_back

    out = resize_back(np.array([[0.0, 1.0]], np.float32), (1, 4))
    assert np.allclose(out, [[0.0, 0.25, 0.75, 1.0]])


def test_shrink_long_side_averages_by_area():
    """shrink_long_side resamples by area: 1×8 → 1×2 gives the mean of each 4 px, (4 + 0 + 0 + 0)/4 = 1 and 0
    (a bilinear sample between px 1 and 2 would give 0)."""
    from syndof.resize import shrink_long_side

    image = np.array([[0, 0, 0, 4, 0, 0, 0, 0]], np.float32).repeat(4, 0)
    out, scale = shrink_long_side(image, 2)
    assert scale == 0.25 and out.shape == (1, 2)
    assert np.allclose(out, [[1.0, 0.0]])

# -------------------------------------------------------------------------------------------------------- image files
def test_index_by_stem_is_lower_case_unless_case_sensitive(tmp_path):
    from syndof.io import index_by_stem

    (tmp_path / "Photo.PNG").write_bytes(b"x")
    assert index_by_stem(tmp_path) == {"photo": tmp_path / "Photo.PNG"}
    assert index_by_stem(tmp_path, case_sensitive=True) == {"Photo": tmp_path / "Photo.PNG"}

# ------------------------------------------------------------------------------------------------------ distill split
def test_distill_split_does_not_depend_on_the_order_of_the_stems():
    """make_split draws from the *sorted* pool: the same stems in another order give the same split."""
    from dmenet.distill.split import make_split

    stems = [f"img{i:02d}" for i in range(12)]
    assert make_split(stems, 4, 7) == make_split(stems[::-1], 4, 7)


def test_read_split_skips_comments_without_a_space(tmp_path):
    """read_split: a line starting with ``#`` is a comment, with or without a space after it."""
    from dmenet.distill.split import read_split

    (tmp_path / "list.txt").write_text("#header\na\n\n# note\nb\n")
    assert read_split(tmp_path / "list.txt") == ["a", "b"]

# ------------------------------------------------------------------------------------------------------ distill infer
class _RedLogit(torch.nn.Module):
    """A 'network' whose logit is its input's red channel (any size): where each output pixel comes from is seen."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        self.seen = tuple(x.shape)
        return x[:, :1] * self.w


def test_distill_blur_probability_crops_the_padding_at_the_bottom_right():
    """Padding goes after the image (bottom, right), so the crop [:h, :w] is the image: p = σ(a·(red − b))."""
    from dmenet.distill.infer import blur_probability

    rng = np.random.default_rng(0)
    image = rng.random((20, 40, 3)).astype(np.float32)
    net = _RedLogit()
    p = blur_probability(net, image, logit_scale=2.0, logit_shift=0.25)
    assert net.seen == (1, 3, 32, 64)  # each side padded to the next multiple of 32
    assert np.allclose(p, 1 / (1 + np.exp(-2.0 * (image[..., 0] - 0.25))), atol=1e-5)


def test_distill_blur_probability_of_an_image_as_small_as_its_padding():
    """16×16 px pads 16 px a side: reflect padding needs a pad smaller than the side, so this one replicates."""
    from dmenet.distill.infer import blur_probability

    image = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    p = blur_probability(_RedLogit(), image)
    assert np.allclose(p, 1 / (1 + np.exp(-image[..., 0])), atol=1e-5)


def test_distill_blur_probability_at_a_side_shrinks_by_area():
    """side < min(H, W): the square copy is area-averaged: 8×8 columns 1,0,0,0,1,0,0,0 at side 2 have mean 1/4
    (a bilinear sample would read 0), and the map comes back at 8×8."""
    from dmenet.distill.infer import blur_probability

    image = np.zeros((8, 8, 3), np.float32)
    image[:, ::4] = 1.0
    p = blur_probability(_RedLogit(), image, side=2)
    assert p.shape == (8, 8)
    assert np.allclose(p, 1 / (1 + np.exp(-0.25)), atol=1e-5)

# ------------------------------------------------------------------------------------------------------- distill data
class _Draws:
    """A stand-in for the generator augment draws from: scale ``s``, crop corner 0, no flip (or a flip)."""

    def __init__(self, s: float, flip: bool = False):
        self.s, self.flip = s, flip

    def uniform(self, lo, hi):
        return self.s

    def integers(self, lo, hi):
        return 0

    def random(self):
        return 0.0 if self.flip else 0.9


def test_augment_rebinarises_a_half_blurred_block_as_blurred():
    """augment: the area-resampled mask is re-binarised at 0.5 (≥, as every GT binarisation here,
    docs/evaluation.md §2): at s = 1/2 a 2×2 block with two blurred pixels is blurred."""
    from dmenet.distill.data import augment

    mask = np.tile(np.array([1, 0, 1, 0], np.float32), (4, 1))
    image = np.zeros((4, 4, 3), np.float32)
    _, m, _ = augment(image, mask, None, 2, 0.5, False, _Draws(0.5))
    assert m.shape == (2, 2) and np.array_equal(m, np.ones((2, 2), np.float32))


def test_augment_flips_image_mask_and_soft_target_together():
    from dmenet.distill.data import augment

    rng = np.random.default_rng(0)
    image = rng.random((4, 4, 3)).astype(np.float32)
    mask = (rng.random((4, 4)) > 0.5).astype(np.float32)
    soft = rng.random((4, 4)).astype(np.float32)
    i, m, s = augment(image, mask, soft, 4, 1.0, True, _Draws(1.0, flip=True))
    assert np.array_equal(i, image[:, ::-1]) and np.array_equal(m, mask[:, ::-1]) and np.array_equal(s, soft[:, ::-1])


def _write_item(tmp_path, image, mask, soft=None):
    import cv2

    from dmenet.distill.data import Item

    cv2.imwrite(str(tmp_path / "a.png"), (image[..., ::-1] * 255).round().astype(np.uint8))
    cv2.imwrite(str(tmp_path / "m.png"), (mask * 255).astype(np.uint8))
    if soft is not None:
        cv2.imwrite(str(tmp_path / "s.png"), soft)
    return Item(tmp_path / "a.png", tmp_path / "m.png", tmp_path / "s.png" if soft is not None else None)


def test_preload_keeps_levels_and_a_binary_mask(tmp_path):
    """preload at long side 2 of a 4×4 item: image levels area-averaged and rounded to uint8 (levels 10 and 13 →
    11.5 → 12; truncation gives 11), the mask re-binarised to {0, 255} (a block of 3 blurred of 4 → 255, 1 of 4 → 0)
    and the soft target (a gray PNG: its 3 equal channels' mean) averaged likewise."""
    from dmenet.distill.data import _float, preload

    image = np.zeros((4, 4, 3), np.float32)
    image[:, :2] = np.array([10, 13, 10, 13], np.float32)[:, None, None] / 255.0
    mask = np.zeros((4, 4), np.float32)
    mask[:2, :2] = [[1, 1], [1, 0]]
    mask[2:, 2:] = [[1, 0], [0, 0]]
    soft = np.full((4, 4), 100, np.uint8)
    soft[0, 0] = 104
    img, m, s = preload(_write_item(tmp_path, image, mask, soft), 2)
    assert img.dtype == np.uint8 and img.shape == (2, 2, 3)
    assert img[0, 0].tolist() == [12, 12, 12] and img[1, 1].tolist() == [0, 0, 0]
    assert m.tolist() == [[255, 0], [0, 0]]
    assert s.tolist() == [[101, 100], [100, 100]]
    assert np.allclose(_float(m), [[1.0, 0.0], [0.0, 0.0]])  # uint8 levels back to [0, 1]: 255 → 1


def test_a_batch_marks_which_samples_have_a_soft_target():
    """TrainStream.batch: has_soft is 1 for a labelled item with a cached soft target, 0 for a sharp negative."""
    from types import SimpleNamespace

    from dmenet.distill.data import Item, TrainStream

    stream = TrainStream.__new__(TrainStream)
    stream.cfg = SimpleNamespace(batch=2, sharp_per_batch=1, crop=4, scale_min=1.0, hflip=False)
    stream.seed = 0
    photo, negative = Item("p.png", "m.png", "s.png"), Item("n.png", None, None)
    stream.labelled, stream.sharp = [photo], [negative]
    z = np.zeros((4, 4), np.uint8)
    stream._memory = {photo: (np.zeros((4, 4, 3), np.uint8), z, z + 255), negative: (np.zeros((4, 4, 3), np.uint8),
                                                                                     z, None)}
    b = stream.batch(0)
    assert b["has_soft"].flatten().tolist() == [1.0, 0.0]
    assert b["sharp"].flatten().tolist() == [0.0, 1.0]
    assert b["soft"][0].min() == 1.0 and b["soft"][1].max() == 0.0


def test_resize_side_shrinks_by_area():
    """distill.data.resize_side (calibration, validation): side < min(H, W) area-averages: 8×8 columns 1,0,0,0,…
    at side 2 give 1/4 (a bilinear sample would read 0)."""
    from dmenet.distill.data import resize_side

    image = np.zeros((8, 8, 3), np.float32)
    image[:, ::4] = 1.0
    assert np.allclose(resize_side(image, 2), 0.25)

# --------------------------------------------------------------------------------------------------- distill training
def test_content_loss_weighs_the_sharp_negatives_by_sharp_weight(tmp_path, monkeypatch):
    """train_step: the content loss's per-sample weight is 1 for a labelled sample and loss.sharp_weight for a
    sharp-everywhere negative (1 − sharp + sharp·w), not 1 + w."""
    from test_distill import TINY, _dataset

    from dmenet.distill import losses as L
    from dmenet.distill import train as T
    from dmenet.distill.config import load_distill_config

    seen = []
    monkeypatch.setattr(L, "content_loss", lambda logits, y, w, edge: seen.append(w.flatten().tolist())
                        or (logits * 0).mean())
    torch.manual_seed(0)
    run = T.build_run(load_distill_config(None, _dataset(tmp_path / "d") + TINY + ["loss.sharp_weight=0.25"]))
    batch = {"image": torch.rand(2, 3, 32, 32), "mask": torch.ones(2, 1, 32, 32), "soft": torch.zeros(2, 1, 32, 32),
             "has_soft": torch.zeros(2, 1, 1, 1), "sharp": torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)}
    T.train_step(run, batch, 0)
    assert seen and all(w == [1.0, 0.25] for w in seen)


def test_validation_runs_cuhk_at_a_square_and_sharp_photos_at_their_long_side(tmp_path):
    """validate (experiments/distill/SELECTION.md): the CUHK validation images run at val_side², the sharp
    validation photos at long side val_side (aspect kept): at val_side 64 a 40×80 sharp photo runs at 32×64."""
    from types import SimpleNamespace

    from dmenet.distill.data import Item
    from dmenet.distill.step import validate
    from syndof.io import write_image

    rng = np.random.default_rng(0)
    write_image(tmp_path / "a.png", rng.random((48, 80, 3)).astype(np.float32))
    write_image(tmp_path / "a_gt.png", np.tile(np.array([0.0, 1.0], np.float32).repeat(40), (48, 1)))
    write_image(tmp_path / "s.png", rng.random((40, 80, 3)).astype(np.float32))
    shapes = []

    class Net(_RedLogit):
        def forward(self, x):
            shapes.append(tuple(x.shape[-2:]))
            return super().forward(x)

    cfg = SimpleNamespace(data=SimpleNamespace(val_side=64, white_is_blurred=True))
    out = validate(cfg, Net(), [Item(tmp_path / "a.png", tmp_path / "a_gt.png", None)],
                   [Item(tmp_path / "s.png", None, None)])
    assert shapes == [(64, 64), (32, 64)]
    assert set(out) == {"val_fmax", "val_mae", "sharp_val_mean"}


def test_distill_checkpoint_step_is_below_train_steps(tmp_path):
    """checkpoint_step: steps run 0 … train.steps − 1, so a checkpoint of step 8 in an 8-step run is damaged."""
    from dmenet.distill.checkpoints import checkpoint_step
    from dmenet.training.checkpoint import CheckpointError

    assert checkpoint_step(tmp_path / "step_000007", {"step": 7}, 8) == 7
    with pytest.raises(CheckpointError, match="not a step of this run"):
        checkpoint_step(tmp_path / "step_000008", {"step": 8}, 8)

# ---------------------------------------------------------------------------------------------------- predict outputs
def test_output_suffixes_of_each_format():
    """MapFormat: PNG = _sigma.png, NPY = _sigma.npy (or _blur.npy without σ), BOTH = all; _blur.png, _preview.png
    always, the provenance file last."""
    from dmenet.predict_outputs import output_suffixes

    tail = ("_blur.png", "_preview.png", "_source.json")
    assert output_suffixes(True, "both") == ("_sigma.png", "_sigma.npy", *tail)
    assert output_suffixes(True, "png") == ("_sigma.png", *tail)
    assert output_suffixes(True, "npy") == ("_sigma.npy", *tail)
    assert output_suffixes(False, "both") == ("_blur.npy", *tail)
    assert output_suffixes(False, "npy") == ("_blur.npy", *tail)
    assert output_suffixes(False, "png") == tail
    assert output_suffixes(False, "png", provenance=False) == tail[:2]


def test_read_provenance_needs_both_fields_as_strings(tmp_path):
    from dmenet.predict_outputs import read_provenance

    prefix = tmp_path / "a"
    (tmp_path / "a_source.json").write_text('{"source": "/x/a.png", "sha256": 5}')
    assert read_provenance(prefix) is None
    (tmp_path / "a_source.json").write_text('{"source": "/x/a.png", "sha256": "ab"}')
    assert read_provenance(prefix) == {"source": "/x/a.png", "sha256": "ab"}


def test_provenance_records_the_resolved_path(tmp_path, monkeypatch):
    import json

    from dmenet.predict_outputs import provenance_bytes

    (tmp_path / "p.png").write_bytes(b"photo")
    monkeypatch.chdir(tmp_path)
    record = json.loads(provenance_bytes(type(tmp_path)("p.png")))
    assert record["source"] == str((tmp_path / "p.png").resolve())


def test_preview_colours_sigma_on_the_methods_sigma_max(tmp_path):
    """write_outputs: the preview's σ panel is on 0 … Maps.sigma_max (when the method gives one), not the map's own
    maximum: σ 1 everywhere with sigma_max 4 is colour 1/4 of the scale."""
    import cv2

    from dmenet.predict_outputs import Maps, write_outputs
    from syndof.viz import colorize

    image = np.zeros((8, 8, 3), np.float32)
    sigma = np.ones((8, 8), np.float32)
    write_outputs(tmp_path / "a", image, Maps(blur=np.zeros((8, 8), np.float32), sigma=sigma, sigma_max=4.0), "png")
    preview = cv2.cvtColor(cv2.imread(str(tmp_path / "a_preview.png")), cv2.COLOR_BGR2RGB)
    assert preview.shape == (8, 8 + 8 + 8, 3)
    assert np.array_equal(preview[:, 16:], colorize(sigma, vmax=4.0))
    assert not np.array_equal(preview[:, 16:], colorize(sigma, vmax=1.0))


def test_preview_of_a_large_photo_shrinks_the_map_to_the_image():
    """_preview: a 600×2100 photo and its map both come to 293×1024 px, side by side with an 8 px gap."""
    from dmenet.predict_outputs import _preview

    out = _preview(np.zeros((600, 2100, 3), np.float32), np.zeros((600, 2100), np.float32), 1.0)
    assert out.shape == (293, 1024 + 8 + 1024, 3)

# ----------------------------------------------------------------------------------------------------- predict resume
def _set(prefix, photo_digest, suffixes):
    import json

    for s in suffixes:
        (prefix.parent / (prefix.name + s)).write_bytes(b"x")
    (prefix.parent / (prefix.name + "_source.json")).write_text(
        json.dumps({"source": str(prefix), "sha256": photo_digest}))


WANTED = ("_blur.png", "_preview.png", "_source.json")


def test_finished_sets_keep_the_first_whole_set_of_a_photo(tmp_path):
    """finished_sets: {digest: prefix} of the whole sets that say their photo; the batch's first prefix wins, and a
    set missing a file is not finished."""
    from dmenet.predict_inputs import Job
    from dmenet.predict_resume import finished_sets

    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    _set(a, "d1", WANTED[:2])
    _set(b, "d1", WANTED[:2])
    _set(c, "d2", WANTED[:1])  # no preview: incomplete
    jobs = [Job(tmp_path / "pa.png", a), Job(tmp_path / "pb.png", b), Job(tmp_path / "pc.png", c)]
    assert finished_sets(jobs, WANTED) == {"d1": a}


def test_resume_place_by_case(tmp_path):
    """resume_place: a free prefix is written; a photo's own incomplete set is completed (written); its own whole
    set is done; a prefix holding another photo's set is skipped unless the photo's set is whole elsewhere in the
    batch (done, there)."""
    from dmenet.predict_inputs import Job
    from dmenet.predict_resume import resume_place
    from syndof.io import file_sha256

    photo = tmp_path / "p.png"
    photo.write_bytes(b"photo")
    digest = file_sha256(photo)
    out = tmp_path / "out"
    out.mkdir()
    assert resume_place(Job(photo, out / "free"), WANTED, {}) == (None, None)
    _set(out / "part", digest, WANTED[:1])
    assert resume_place(Job(photo, out / "part"), WANTED, {}) == (None, None)
    _set(out / "whole", digest, WANTED[:2])
    assert resume_place(Job(photo, out / "whole"), WANTED, {}) == (out / "whole", None)
    _set(out / "other", "0" * 64, WANTED[:2])
    place, reason = resume_place(Job(photo, out / "other"), WANTED, {})
    assert place is None and "made from another photo" in reason
    assert resume_place(Job(photo, out / "other"), WANTED, {digest: out / "whole"}) == (out / "whole", None)

# ----------------------------------------------------------------------------------------------------- predict record
def test_device_used_for_a_method_without_a_model_is_the_cpu():
    from dmenet.predict_record import device_used

    assert device_used("cpu", learned=False) == "cpu"
    assert device_used(None, learned=True) == "cpu"
    assert device_used("cuda:1", learned=False) == "cpu"
    assert device_used("cuda:1", learned=True) == "cuda:1"


def _record(**kw):
    return {"tool": "dmenet.predict", "method": "dmenet", "model": "/m", "model_sha256": "ab", "flips": 1,
            "max_side": None, "tile_size": None, "format": "png", "devices": ["cpu"], **kw}


def test_record_check_names_three_differences_then_an_ellipsis(tmp_path):
    """record_check: the first 3 differing settings are named, "; …" only when there are more; the informative
    keys (model path, devices) are no difference."""
    import json

    from dmenet.predict_record import record_check

    (tmp_path / "a_blur.png").write_bytes(b"x")
    (tmp_path / "predict.json").write_text(json.dumps(_record()))
    assert record_check(tmp_path, _record(model="/elsewhere", devices=["cuda:0"])) == (None, True)
    problem, same = record_check(tmp_path, _record(flips=8, max_side=320, tile_size=512))
    assert not same and "flips 1, now 8" in problem and "max_side 0 (full resolution), now 320" in problem
    assert "tile_size" in problem and "…" not in problem
    problem, _ = record_check(tmp_path, _record(flips=8, max_side=320, tile_size=512, format="npy"))
    assert "format" not in problem and problem.count(", now ") == 3 and "; …" in problem


def test_record_check_of_another_method_names_only_the_shared_settings(tmp_path):
    """Another method: a setting only one of them reads (flips) is not shown; the method is."""
    import json

    from dmenet.predict_record import record_check

    (tmp_path / "a_blur.png").write_bytes(b"x")
    earlier = _record()
    (tmp_path / "predict.json").write_text(json.dumps(earlier))
    now = {k: v for k, v in _record(method="lbp", model=None, model_sha256=None).items()
           if k not in ("flips", "tile_size")}
    problem, same = record_check(tmp_path, now)
    assert not same and "method 'dmenet', now 'lbp'" in problem and "flips" not in problem


def test_a_record_beside_no_map_counts_as_absent(tmp_path):
    import json

    from dmenet.predict_record import record_check

    (tmp_path / "predict.json").write_text(json.dumps(_record(flips=8)))
    assert record_check(tmp_path, _record()) == (None, False)


def test_short_values_are_cut_to_forty_characters():
    from dmenet.predict_record import _short

    assert _short("x" * 38) == repr("x" * 38)  # 40 characters with the quotes
    cut = _short("x" * 50)
    assert len(cut) == 40 and cut.endswith("…")


def test_settings_record_keeps_only_the_shared_options_the_method_reads():
    """settings_record: of the map options, those in the method's registry row (hifst: max_side only; flips 8 is not
    recorded); its own options sorted by key; the output format and the device."""
    from types import SimpleNamespace

    from dmenet.methods import METHODS
    from dmenet.predict_record import settings_record

    assert METHODS["hifst"].shared_options == ("max_side",)
    args = SimpleNamespace(method=SimpleNamespace(name="hifst"), fmt=SimpleNamespace(value="png"))
    options = SimpleNamespace(flips=8, raw_sigma=False, max_side=320, tile_size=512, tile_overlap=32, device="cpu")
    est = SimpleNamespace(model_file=None, method_settings=lambda: {"window": 21, "border": "replicate"})
    assert settings_record(args, options, est) == {
        "tool": "dmenet.predict", "method": "hifst", "method_options": {"border": "replicate", "window": 21},
        "model": None, "model_sha256": None, "max_side": 320, "format": "png", "devices": ["cpu"]}
    assert list(settings_record(args, options, est)["method_options"]) == ["border", "window"]


# ---------------------------------------------------------------------------------------------------- galetto compare
class _MapOfMean:
    """An estimator whose blur map is chosen by its image's mean (0: image A, else image B)."""

    gives_sigma = False

    def __init__(self, a, b):
        self.a, self.b = a, b

    def blur_map(self, image):
        return self.a if float(image.mean()) < 0.5 else self.b


def test_cuhk_fmax_is_the_maximum_of_the_mean_f_curve(tmp_path):
    """compare.cuhk_scores: Fmax = max over T of the mean F(T) over images (β² = 0.3), not the mean of each image's
    best F. A = [0.9, 0.1], B = [0.05, 0], GT [1, 0] (rows of 2×2 px): at T = 1/255 A has P 1/2, R 1
    (F = 0.65/1.15) and B is perfect; above 0.05 B detects nothing. Fmax = (0.65/1.15 + 1)/2 = 0.7826 (each image's
    best is 1)."""
    import cv2

    from dmenet.galetto.compare import cuhk_scores

    pairs = []
    for name, level in (("a", 0), ("b", 255)):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((2, 2, 3), level, np.uint8))
        cv2.imwrite(str(tmp_path / f"{name}_gt.png"), np.array([[255, 0], [255, 0]], np.uint8))
        pairs.append((tmp_path / f"{name}.png", tmp_path / f"{name}_gt.png"))
    est = _MapOfMean(np.array([[0.9, 0.1]] * 2), np.array([[0.05, 0.0]] * 2))
    res = cuhk_scores({"m": est}, pairs, {})["m"]
    assert res["fmax"] == pytest.approx((0.65 / 1.15 + 1.0) / 2, abs=1e-9)
    assert res["n"] == 2


def test_classifier_scores_by_hand(monkeypatch):
    """compare.classifier_scores on a stand-in classifier predicting classes 1, 3, 2 for patches labelled 2, 3, 2
    with mean σ 2.0, 2.5, 2.0: top-1 2/3 (class 2: 1/2, class 3: 1); mae_sigma_px = mean |pred − σ| =
    (1 + 0.5 + 0)/3 = 0.5; the patches reach the classifier in [0, 1] (255 → 1)."""
    from dmenet.galetto import compare, train

    seen = {}

    def classes(model, x):
        seen["max"] = float(x.max())
        return torch.nn.functional.one_hot(torch.tensor([1, 3, 2]), 20).float()

    monkeypatch.setattr(train, "load_classifier", lambda path: None)
    monkeypatch.setattr(train, "predict_classes", classes)
    data = {"patches": np.full((3, 32, 32), 255, np.uint8), "label": np.array([2, 3, 2]),
            "sigma": np.array([2.0, 2.5, 2.0], np.float32)}
    out = compare.classifier_scores("m", data)
    assert seen["max"] == 1.0
    assert out["top1"] == pytest.approx(2 / 3) and out["n"] == 3
    assert out["per_class_top1"][2] == 0.5 and out["per_class_top1"][3] == 1.0 and out["per_class_n"][2] == 2
    assert out["mae_sigma_px"] == pytest.approx(0.5)


def test_a_patch_test_set_with_label_20_is_refused(tmp_path):
    """read_patch_test_set: labels are the classes 0…19; 20 is outside them."""
    from dmenet.galetto.compare import read_patch_test_set
    from syndof.io import InputError

    patches = np.zeros((2, 32, 32), np.uint8)
    np.savez(tmp_path / "ok.npz", patches=patches, label=np.array([0, 19]))
    assert read_patch_test_set(tmp_path / "ok.npz")["label"].tolist() == [0, 19]
    np.savez(tmp_path / "bad.npz", patches=patches, label=np.array([0, 20]))
    with pytest.raises(InputError, match="outside the classes 0…19"):
        read_patch_test_set(tmp_path / "bad.npz")

# --------------------------------------------------------------------------------------------------- galetto training
def test_galetto_accuracy_by_hand():
    """accuracy: top-1, within ±1 class, top-1 over labels 0…7 (7 included) and the mean |class error|. Labels
    7, 8, 3, 3 predicted 7, 10, 4, 3: errors 0, 2, 1, 0 → top1 1/2, within1 3/4, top1_0_7 2/3 (labels 7, 3, 3),
    mae 3/4."""
    from dmenet.galetto.train import accuracy

    label = torch.tensor([7, 8, 3, 3])
    prob = torch.nn.functional.one_hot(torch.tensor([7, 10, 4, 3]), 20).float()
    assert accuracy(prob, label) == pytest.approx({"top1": 0.5, "within1": 0.75, "top1_0_7": 2 / 3, "mae_px": 0.75})


def test_balanced_sample_holds_one_patch_of_each_class_at_least():
    """balanced_sample: count // 20 per class, at least 1: 10 asked give one of each of the 20 classes."""
    from dmenet.galetto.train import balanced_sample

    patches = np.random.default_rng(0).integers(0, 256, (3, 20, 32, 32), dtype=np.uint8)
    x, label = balanced_sample(patches, 10, 0)
    assert label.tolist() == list(range(20)) and x.shape == (20, 1, 32, 32)

# ------------------------------------------------------------------------------------------------- galetto patch sets
def test_a_photo_of_exactly_one_window_is_usable(tmp_path):
    import cv2

    from dmenet.galetto.build_patches import usable_photos

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((31, 32, 3), np.uint8))
    usable, skipped = usable_photos([tmp_path / "a.png", tmp_path / "b.png"])
    assert usable == [tmp_path / "a.png"] and list(skipped) == [str(tmp_path / "b.png")]


def test_render_windows_by_hand():
    """render_windows of one 32×32 window: σ range exactly max_range (1.5 … 2.0) is kept; label round(mean σ 1.75)
    = 2; the render's gray levels rounded (a constant 100.6/255 → 101, 100.6·0.9999 for rgb2gray's weights)."""
    from dmenet.galetto.build_patches import render_windows

    source = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)  # sharp: one window passes φ
    render = np.full((32, 32, 3), 100.6 / 255, np.float32)
    sigma = np.full((32, 32), 1.5, np.float32)
    sigma[:, 16:] = 2.0
    out = render_windows(render, source, sigma)
    assert out["label"].tolist() == [2] and out["sigma"].tolist() == [1.75]
    assert out["patches"].shape == (1, 32, 32) and np.all(out["patches"] == 101)
    sigma[0, 0] = 1.49  # range 0.51: dropped
    assert render_windows(render, source, sigma)["label"].size == 0

# ----------------------------------------------------------------------------------------- galetto application checks
def test_psnr_by_hand():
    from dmenet.galetto.check_apps import psnr

    assert psnr(np.full((2, 2), 0.1), np.zeros((2, 2))) == pytest.approx(20.0)


def test_enhancement_check_counts_sigma_5_as_mid_and_not_pixels_clipped_already():
    """enhancement_check: the mid region is 2 ≤ σ_GT ≤ 5 (5 included); the clipped fraction counts pixels that
    the enhancement took to 0 or 1, not those already there (a white image stays white: 0)."""
    from dmenet.galetto.check_apps import enhancement_check

    image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    assert enhancement_check(image, np.full((16, 16), 5.0), np.full((16, 16), 5.0))["lapvar_gain_mid"] is not None
    white = np.ones((16, 16, 3), np.float32)
    out = enhancement_check(white, np.zeros((16, 16)), np.zeros((16, 16)))
    assert out["clipped_sharp_adaptive"] == 0.0 and out["clipped_sharp_global"] == 0.0


def test_fusion_check_blurs_only_pixels_above_the_median():
    """fusion_check: frame a is blurred where σ_GT > median (strictly), b elsewhere: σ 0, 1, 1, 2 (median 1) blurs
    only the σ-2 column in a."""
    from dmenet.galetto.check_apps import fusion_check

    source = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    sigma = np.tile(np.repeat(np.array([0.0, 1.0, 1.0, 2.0]), 2), (8, 1))
    frames = []
    fusion_check(source, sigma, lambda f: frames.append(f) or np.zeros(f.shape[:2]))
    a, b = frames
    assert np.array_equal(a[:, :6], source[:, :6]) and not np.allclose(a[:, 6:], source[:, 6:])
    assert np.array_equal(b[:, 6:], source[:, 6:]) and not np.allclose(b[:, :6], source[:, :6])


def test_magnification_check_figures_by_hand(monkeypatch):
    """magnification_check on measured windows σ_in 0.5, 2, 0.7 → σ_out 0.4, 5, 0.9: background (σ_in ≥ 2) rise 3;
    in-focus (σ_in < 0.75) mean |move| (0.1 + 0.2)/2 = 0.15; slope through the origin over σ_in ≥ 0.5:
    Σ σ_in·σ_out / Σ σ_in² = (0.2 + 10 + 0.63)/(0.25 + 4 + 0.49)."""
    from dmenet.galetto import check_apps

    r = {"sigma_in": np.array([0.5, 2.0, 0.7]), "sigma_out": np.array([0.4, 5.0, 0.9])}
    monkeypatch.setattr(check_apps, "reblur_sigma", lambda image, out, sigma: r)
    monkeypatch.setattr(check_apps.apps, "sdof", lambda image, sigma: (image, None))
    monkeypatch.setattr(check_apps.apps, "magnify_scale", lambda image, sigma, k: image)
    rows = check_apps.magnification_check(np.zeros((4, 4, 3)), np.zeros((4, 4)), np.zeros((4, 4)))
    assert rows["scale"] == pytest.approx({"background_rise_px": 3.0, "in_focus_move_px": 0.15, "n_background": 1,
                                           "n_in_focus": 2, "slope": 10.83 / 4.74})

# ------------------------------------------------------------------------------------------- galetto application tool
def test_at_input_depth_rounds_to_16_bits_only_when_every_input_has_them(tmp_path):
    """at_input_depth: 0.5 → round(32767.5) = 32768 when every input is 16-bit; one 8-bit input keeps the float."""
    import cv2

    from dmenet.galetto.apps_cli import at_input_depth
    from syndof.io import read_image_stored

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((2, 2, 3), np.uint16))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((2, 2, 3), np.uint8))
    a, b = (read_image_stored(tmp_path / name)[1] for name in ("a.png", "b.png"))
    result = np.full((2, 2, 3), 0.5)
    out = at_input_depth(result, tmp_path / "o.png", [a])
    assert out.dtype == np.uint16 and np.all(out == 32768)
    assert at_input_depth(result, tmp_path / "o.png", [a, b]) is result


def test_fuse_memory_grows_with_each_frame():
    from dmenet.galetto.apps_cli import FUSE_BYTES_PER_PIXEL, app_bytes_per_pixel

    assert app_bytes_per_pixel("fuse", frames=3) - app_bytes_per_pixel("fuse", frames=2) == FUSE_BYTES_PER_PIXEL[1]
    assert app_bytes_per_pixel("fuse", frames=1) == sum(FUSE_BYTES_PER_PIXEL)


def test_report_scales_sigma_maps_to_their_99_5th_percentile():
    """report: σ maps share one scale, 0 … the 99.5th percentile (one outlier of 100 among 399 px of 2 does not set
    it): a σ-2 pixel gets the top colour."""
    from dmenet.galetto.apps_cli import report
    from syndof.viz import colorize

    m = np.full((20, 20), 2.0)
    m[0, 0] = 100.0
    panel = report([(m, "s")])
    assert np.array_equal(panel[19, 19], colorize(np.ones((1, 1)), 1.0)[0, 0])

# ----------------------------------------------------------------------------------------------- SYNDOF layer merging
def test_merged_coc_stays_within_its_members():
    """merge_plan: the group's CoC, rounded to 0.1 px, is clipped to its members' range: 3.02 and 3.04 give 3.02,
    not 3.0."""
    from syndof.layer_merge import merge_plan

    assert merge_plan([3.02, 3.04], [1, 1], 0.25)[1] == pytest.approx([3.02])
