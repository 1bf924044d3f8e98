"""Mutation round 13 (docs/audit.md): tests that kill the mutants no earlier test noticed, in the code added or
changed on 6 Dec 2026 after round 12 (docs/reliability.md §32–§38): split.py's ``render_sources`` and
``make_group_split``, the syndof_dbd GT pairing (``gt_index``, ``_sample_stem``), ``with_added_keys`` /
``named_keys`` and the trainers' ``ADDED_KEYS``, ``report_metrics``, the 8-bit helpers, the stopped-run line, the
screen cache, ``interleave.output_problem``, and the research scripts' checks. Each expectation is worked out by hand
from the rule the docstrings state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_distill import _script

from dmenet.distill.split import make_group_split

ROOT = Path(__file__).resolve().parents[1]


def _generate_folder(root: Path, metas: dict[str, dict]) -> Path:
    """A ``syndof.generate`` layout as split.py reads it: ``dataset.json``, empty ``image/STEM.png`` and
    ``meta/STEM.json`` holding ``metas[STEM]``; returns the ``image/`` folder."""
    (root / "image").mkdir(parents=True)
    (root / "meta").mkdir()
    (root / "dataset.json").write_text("{}")
    for stem, meta in metas.items():
        (root / "image" / f"{stem}.png").write_bytes(b"")
        (root / "meta" / f"{stem}.json").write_text(json.dumps(meta))
    return root / "image"


# ------------------------------------------------------------------------------------ split.py render_sources
def test_render_sources_needs_both_the_image_name_and_dataset_json(tmp_path):
    """A folder is a generate folder's renders only when it is named ``image`` *and* has ``dataset.json`` beside it:
    an ``image/`` folder without it, or another name beside one, is split render by render (None), not refused for a
    missing ``meta/``. Pins the ``or`` of the test."""
    render_sources = _script("split").render_sources
    (tmp_path / "plain" / "image").mkdir(parents=True)
    assert render_sources(tmp_path / "plain" / "image", ["a"]) is None
    (tmp_path / "other" / "photos").mkdir(parents=True)
    (tmp_path / "other" / "dataset.json").write_text("{}")
    (tmp_path / "other" / "meta").mkdir()
    assert render_sources(tmp_path / "other" / "photos", ["a"]) is None


@pytest.mark.parametrize("recorded", [5, ["a" * 64], {"image": 7}], ids=["number", "list", "image_not_text"])
def test_render_sources_a_source_sha256_that_is_no_text_counts_as_none(tmp_path, recorded):
    """``source_sha256`` that is not a ``{"image": TEXT}`` object (a number, a list, a number under ``image``) is no
    SHA-256: the render takes the SHA-256 another render of its source name records, so both renders of p0 are one
    source keyed by that SHA-256 (not a traceback, not a second source keyed 7)."""
    image = _generate_folder(tmp_path / "syn", {
        "000000_p0": {"source_name": "p0", "source_sha256": recorded},
        "000001_p0": {"source_name": "p0", "source_sha256": {"image": "a" * 64}}})
    assert _script("split").render_sources(image, ["000000_p0", "000001_p0"]) == {"a" * 64: ["000000_p0", "000001_p0"]}


def test_render_sources_an_older_render_listed_after_a_newer_one_takes_its_sha256(tmp_path):
    """The SHA-256 of a source name is taken from whichever render records it: here the newer render (with it) comes
    first in stem order and the older one (without) last; both are one source. Pins the ``if sha is not None`` of
    the name → SHA-256 table (without it the last render's None won and the older render became a second source)."""
    image = _generate_folder(tmp_path / "syn", {
        "000000_p0": {"source_name": "p0", "source_sha256": {"image": "b" * 64}},
        "000001_p0": {"source_name": "p0"}})
    assert _script("split").render_sources(image, ["000000_p0", "000001_p0"]) == {"b" * 64: ["000000_p0", "000001_p0"]}


def test_render_sources_two_photos_of_one_name_stay_two_sources(tmp_path):
    """Two different photos that share a file name (``x.jpg`` of two folders: two SHA-256s) are two sources: a
    render's own SHA-256 comes before the one its name maps to."""
    image = _generate_folder(tmp_path / "syn", {
        "000000_x": {"source_name": "x.jpg", "source_sha256": {"image": "1" * 64}},
        "000001_x": {"source_name": "x.jpg", "source_sha256": {"image": "2" * 64}}})
    assert _script("split").render_sources(image, ["000000_x", "000001_x"]) == {
        "1" * 64: ["000000_x"], "2" * 64: ["000001_x"]}


# ------------------------------------------------------------------------------ dmenet.distill.split make_group_split
def test_make_group_split_stops_as_soon_as_validation_holds_val_count():
    """Four sources of one render each, ``val_count`` 2: exactly two in validation, two in training, for any seed
    (``<``, not ``<=``: a validation already holding ``val_count`` takes no further source)."""
    groups = {k: [f"{k}1"] for k in "abcd"}
    for seed in range(5):
        train, val = make_group_split(groups, 2, seed)
        assert (len(train), len(val)) == (2, 2)


@pytest.mark.parametrize("val_count", [4, 5])
def test_make_group_split_refuses_a_count_that_takes_every_source(val_count):
    """``val_count`` equal to or above all four renders takes every source into validation: a ValueError naming the
    photos (not an IndexError, not an empty training part)."""
    with pytest.raises(ValueError, match="come from 4 source photo"):
        make_group_split({k: [f"{k}1"] for k in "abcd"}, val_count, 0)


def test_make_group_split_keeps_every_stem_once_and_both_parts_sorted():
    """Every stem is in exactly one part (no source dropped after the last one taken), and each part is sorted even
    where a group lists its stems out of order."""
    groups = {"a": ["a2", "a1"], "b": ["b2", "b1"], "c": ["c2", "c1"], "d": ["d1"]}
    for seed in range(6):
        train, val = make_group_split(groups, 2, seed)
        assert sorted(train + val) == sorted(s for g in groups.values() for s in g)
        assert train == sorted(train) and val == sorted(val) and len(val) >= 2


def test_make_group_split_depends_on_the_seed_and_not_on_the_order_groups_are_given():
    """The sources are sorted by key before the seeded shuffle: the same groups given in another order give the same
    split; and the seed matters (five single-render sources, one in validation: across seeds 0–9 more than one
    source is drawn; unshuffled, it would always be the first)."""
    groups = {k: [f"{k}1"] for k in "abcde"}
    backwards = dict(reversed(list(groups.items())))
    assert all(make_group_split(groups, 1, s) == make_group_split(backwards, 1, s) for s in range(10))
    assert len({tuple(make_group_split(groups, 1, s)[1]) for s in range(10)}) > 1


# ---------------------------------------------------------------------------------- syndof_dbd: gt_index, _sample_stem
def _folder(root: Path, names: list[str]) -> Path:
    """Empty files of the given names in ``root`` (pairing lists names only)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_bytes(b"")
    return root


def test_gt_index_strips_a_suffix_given_in_any_case(tmp_path):
    """``gt_index``'s suffix is case-insensitive both ways: a suffix given as ``_BINARY`` indexes ``a_binary.png``
    and ``B_Binary.png`` under ``a`` and ``b`` (the keys are the lower-case stems less the suffix's length)."""
    from dmenet.eval.benchmarks import gt_index

    folder = _folder(tmp_path / "gt", ["a_binary.png", "B_Binary.png"])
    assert gt_index(folder, "_BINARY") == {"a": folder / "a_binary.png", "b": folder / "B_Binary.png"}
    assert gt_index(folder, "_binary") == {"a": folder / "a_binary.png", "b": folder / "B_Binary.png"}


def test_sample_stem_is_the_image_stem_as_written():
    """A sample is named by its GT file's stem less the suffix, in the file's own case: ``Ab_BINARY.png`` → ``Ab``
    (``Ab_BINARY`` is 9 characters, the suffix 7: the first 2); a stem without the suffix, and no
    suffix, keep the stem."""
    from dmenet.eval.benchmarks import _sample_stem

    assert _sample_stem(Path("Ab_BINARY.png"), "_binary") == "Ab"
    assert _sample_stem(Path("Ab_binary.png"), "_binary") == "Ab"
    assert _sample_stem(Path("Ab.png"), "_binary") == "Ab"
    assert _sample_stem(Path("Ab_binary.png"), "") == "Ab_binary"


def test_syndof_dbd_samples_are_named_by_their_image_stem_with_and_without_images(tmp_path):
    """``list_folder_samples`` of a syndof_dbd folder, scoring a method and scoring saved maps: samples ``Ab`` and
    ``c`` (the image's stem as written, not the mask's ``Ab_binary`` nor the lower-case key ``ab``); the masks are
    white = blurred (``white_is_blurred`` True: CoC > 1 px is 255)."""
    from dmenet.eval.benchmarks import get_spec, list_folder_samples

    root = tmp_path / "syn"
    _folder(root / "image", ["Ab.png", "c.png"])
    _folder(root / "blur_map_binary", ["Ab_binary.png", "c_binary.png"])
    spec = get_spec("syndof_dbd")
    assert spec.white_is_blurred is True and spec.gt_suffix == "_binary"
    for need_images in (True, False):
        samples = list_folder_samples(spec, root, need_images=need_images)
        assert [(s.stem, s.gt.name) for s in samples] == [("Ab", "Ab_binary.png"), ("c", "c_binary.png")]


# ------------------------------------------------------------------------------------------ the stopped-run line
def test_every_stopped_line_starts_with_the_quoted_folder(tmp_path):
    """Each of ``stopped_line``'s three lines (a checkpoint; a resume before its first; a new run before its first)
    names the command after ``cd FOLDER &&``, the folder quoted for the shell (``'/x y'``: a space)."""
    from dmenet.training.stopped import stopped_line

    run, cwd = tmp_path / "run", Path("/x y")
    argv = ["--out", "runs/a"]
    assert stopped_line("Ctrl-C", "m", argv, run, tmp_path / "c5", False, cwd) == \
        f"stopped (Ctrl-C): last checkpoint {tmp_path / 'c5'}; continue with: cd '/x y' && python -m m --out runs/a " \
        "--resume"
    assert stopped_line("SIGTERM", "m", argv, run, None, True, cwd) == \
        f"stopped (SIGTERM): no checkpoint written yet in {run}; continue with: cd '/x y' && python -m m --out " \
        "runs/a --resume"
    assert stopped_line("SIGTERM", "m", argv, run, None, False, cwd) == \
        "stopped (SIGTERM): no checkpoint written yet (nothing to --resume); start again with: cd '/x y' && " \
        "python -m m --out runs/a"


# ------------------------------------------------------------------------------ build_training_set's screen cache
def _screen(tmp_path: Path, entry: object) -> tuple[Path, object]:
    """``screen_bsds`` over a BSDS500 folder of one photo ``train/a.png`` whose score the cache holds (``entry``):
    (the cache file, the returned scores or the InputError raised)."""
    from test_build_training_set import _module, one_photo_screen

    from syndof.io import InputError

    bsds, out, cache = one_photo_screen(tmp_path, entry)
    try:
        return cache, _module().screen_bsds(bsds, out, 1.5)
    except InputError as exc:
        return cache, exc


def test_a_screen_score_with_whole_numbers_is_a_score(tmp_path):
    """``fraction`` 0 (JSON ``0``, an int: no blurred cell) is a number; with ``edge_cells`` 7 the photo is accepted
    (7 >= 4 edge cells, 0 < 0.15)."""
    _, scores = _screen(tmp_path, {"edge_cells": 7, "fraction": 0})
    assert scores == {"train/a.png": {"edge_cells": 7, "fraction": 0, "accepted": True}}


@pytest.mark.parametrize("entry", [{"edge_cells": True, "fraction": 0.1}, {"edge_cells": 7.5, "fraction": 0.1},
                                   {"edge_cells": 7, "fraction": False}],
                         ids=["edge_cells_true", "edge_cells_not_whole", "fraction_false"])
def test_a_screen_entry_with_a_bool_or_a_fractional_count_is_refused(tmp_path, entry):
    """``edge_cells`` is a whole number and neither figure a bool (JSON ``true`` is no count, ``false`` no fraction):
    such an entry is refused naming it, the cache left as it was."""
    from syndof.io import InputError

    cache, got = _screen(tmp_path, entry)
    assert isinstance(got, InputError) and "'train/a.png' is not a screen score" in str(got)
    assert json.loads(cache.read_text()) == {"train/a.png": entry}


# ------------------------------------------------------------------------------------- benchmarks' output_problem
def test_output_problem_names_its_own_option_and_a_dangling_link(tmp_path, monkeypatch):
    """A folder output that is not empty is refused under the option given (``--json``, not the ``--out`` of the
    folder helper's line); a file output whose name is a dangling link "exists" (the atomic write would not replace
    it), as ``os.path.lexists`` says."""
    from test_reliability_s32 import _script as _file_script

    interleave = _file_script("benchmarks/interleave.py", monkeypatch)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("")
    problem = interleave.output_problem(full, "--json", folder=True)
    assert problem is not None and problem.startswith(f"--json {full}: exists and is not empty"), problem
    link = tmp_path / "figures.json"
    link.symlink_to(tmp_path / "nowhere")
    problem = interleave.output_problem(link, "--json")
    assert problem is not None and problem.startswith(f"--json {link}: exists, an earlier result"), problem


# ---------------------------------------------------------------------------------------- paired.report_metrics
@pytest.mark.parametrize("record, named", [({"metrics": None}, "no metrics.fmax"), ({"metrics": {}}, "no metrics.fmax"),
                                           ({"metrics": {"mae": 0.1}}, "no metrics.fmax")],
                         ids=["metrics_null", "metrics_empty", "fmax_missing"])
def test_report_metrics_names_the_first_missing_figure_and_a_null_metrics_object(tmp_path, record, named):
    """A ``metrics`` object that is null, or lacks figures, is refused naming the first of ``keys`` missing
    (``fmax`` before ``mae``), an InputError, not a TypeError."""
    from dmenet.eval.paired import report_metrics
    from syndof.io import InputError

    (tmp_path / "metrics.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=named):
        report_metrics(tmp_path, ("fmax", "mae"))


def test_report_metrics_takes_whole_numbers_as_figures(tmp_path):
    """JSON ``1`` and ``0`` (ints: a perfect Fmax, MAE 0) are numbers; the object is returned as written."""
    from dmenet.eval.paired import report_metrics

    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"fmax": 1, "mae": 0}}))
    assert report_metrics(tmp_path, ("fmax", "mae")) == {"fmax": 1, "mae": 0}


# ---------------------------------------------------------------------------------------------- 8-bit helpers
def test_from_uint8_refuses_16_bit_levels_and_gives_float32():
    """uint16 levels (up to 65535) are refused, not divided by 255; uint8 levels give float32 (255 → 1.0, 51 → 0.2)."""
    import numpy as np

    from syndof.io import from_uint8

    with pytest.raises(ValueError, match="uint16"):
        from_uint8(np.array([0, 255], np.uint16))
    got = from_uint8(np.array([51, 255], np.uint8))
    assert got.dtype == np.float32 and got.tolist() == pytest.approx([0.2, 1.0], abs=1e-7)


def test_from_uint8_tensor_refuses_what_is_no_tensor():
    """A list of levels is no tensor: a ValueError saying so (not an AttributeError on ``.dtype``)."""
    from syndof.io import from_uint8_tensor

    with pytest.raises(ValueError, match="expected a torch tensor"):
        from_uint8_tensor([0, 255])


# ------------------------------------------------------------------------------------- experiments/scaled_syndof
def test_scaled_syndof_refuses_a_sigma_map_of_the_images_height_but_another_width(tmp_path, monkeypatch, capsys):
    """A σ map of 32×20 px (H×W) beside a 32×48 image differs in width only: refused all the same, its size written
    W×H as the image's (``20x32`` against ``48x32``); nothing at ``--out``."""
    from test_reliability_s32 import _error_line, _syndof_folder
    from test_reliability_s32 import _script as _file_script

    scaled = _file_script("experiments/scaled_syndof.py", monkeypatch)
    src = _syndof_folder(tmp_path / "syn", [(32, 20)])
    assert scaled.main([str(src), "--scale", "0.5", "--out", str(tmp_path / "half")]) == 2
    line = _error_line(capsys)
    assert f"{src / 'blur_map' / 's0.png'}: σ map is 20x32 px, its image s0.png 48x32" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn"]


# ---------------------------------------------------------------------------------- research and benchmark scripts
def test_distill_ablation_names_the_name_given_twice_not_the_first(tmp_path, monkeypatch, capsys):
    """``--models a=… d0=… d0=…``: the name given twice is d0, and the line names it (not ``a``, the first name)."""
    from test_reliability_s32 import _error_line
    from test_reliability_s32 import _script as _file_script

    ablation = _file_script("benchmarks/distill_ablation.py", monkeypatch)
    argv = ["--models", "a=a.safetensors", "d0=b.safetensors", "d0=c.safetensors", "--base", "a",
            "--synthetic", str(tmp_path / "none"), "--out", str(tmp_path / "ablation.json")]
    assert ablation.main(argv) == 2
    assert "the name d0 is given twice" in _error_line(capsys)


def test_train_numerics_takes_a_photo_exactly_the_crops_size(tmp_path, monkeypatch):
    """A 16×16 photo holds a 16² crop (smaller is refused, equal is not)."""
    import numpy as np

    from syndof import io as sio
    from test_reliability_s32 import _script as _file_script

    numerics = _file_script("benchmarks/train_numerics.py", monkeypatch)
    sio.write_image(tmp_path / "a.jpg", np.full((16, 16, 3), 0.5, np.float32))
    assert numerics.crops(tmp_path, 1, 16).shape == (1, 3, 16, 16)


def test_train_numerics_reads_a_variant_of_two_overrides_as_two(tmp_path, monkeypatch, capsys):
    """``--variants train.channels_last=true,train.cpu_bf16=true`` is two valid overrides (split at the comma): it
    passes the variant check, and the run stops at the next check, the empty ``--photos`` folder."""
    from test_reliability_s32 import _error_line
    from test_reliability_s32 import _script as _file_script

    numerics = _file_script("benchmarks/train_numerics.py", monkeypatch)
    assert numerics.main(["--photos", str(tmp_path), "--variants", "train.channels_last=true,train.cpu_bf16=true"]) == 2
    assert _error_line(capsys).startswith(f"error: --photos {tmp_path}: 0 .jpg photos")


def test_cached_training_files_lists_negatives_alone(tmp_path, monkeypatch):
    """A cache holding only ``neg/`` files (sharp photos) is a cache: ``[("neg", file)]``, not "nothing cached"."""
    from test_reliability_s32 import _script as _file_script

    two = _file_script("experiments/two_input_s.py", monkeypatch)
    (tmp_path / "cache" / "neg").mkdir(parents=True)
    (tmp_path / "cache" / "neg" / "s.npz").write_bytes(b"")
    assert two.cached_training_files(tmp_path, "two_input_s.py") == [("neg", tmp_path / "cache" / "neg" / "s.npz")]


# -------------------------------------------------------------------------------- resume: with_added_keys / named_keys
def test_named_keys_names_the_old_value_only_of_a_key_the_run_lacks():
    """A refused key the run's record has is named bare (it differs as recorded); only one it lacks — missing, or its
    section not a mapping (a list naming the key is no value) — gets ``(the run predates the key: VALUE)``."""
    from dmenet.training.resume import named_keys

    added = {"train.channels_last": False, "train.cpu_bf16": False}
    assert named_keys(["train.channels_last", "train.cpu_bf16", "data.crop"],
                      {"train": {"channels_last": True}}, added) == [
        "train.channels_last", "train.cpu_bf16 (the run predates the key: false)", "data.crop"]
    assert named_keys(["train.channels_last"], {"train": ["channels_last"]}, added) == [
        "train.channels_last (the run predates the key: false)"]


def test_each_trainers_old_runs_read_the_values_they_trained_with():
    """docs/reliability.md §33's table, by hand: a run record without any added key reads each as what the older code
    did. dmenet.train: one checkpoint folder kept (``keep_last`` 1: ``update_pointers`` kept the last and the best),
    no downscale (``scale_min`` 1.0, ``scale_p`` 1.0), no scale consistency, no reblur, moving BN, one flip, fp32,
    NCHW, tail 1; galetto.train: NCHW (``channels_last`` false), on the CPU; distill.train: the sharp negatives with
    the teacher's soft target (``loss.sharp_consistency`` true), NCHW, on the CPU, no mask suffix."""
    from dmenet.config import ADDED_KEYS, config_from_dict
    from dmenet.distill.train import _recipe
    from dmenet.galetto.train import ADDED_KEYS as GALETTO_ADDED
    from dmenet.training.resume import with_added_keys

    cfg = config_from_dict({}, added=ADDED_KEYS)
    assert (cfg.train.keep_last, cfg.train.init_from, cfg.train.cpu_bf16, cfg.train.channels_last) == \
        (1, None, False, False)
    assert (cfg.data.scale_min, cfg.data.scale_p, cfg.data.reblur_p, cfg.data.reblur_max) == (1.0, 1.0, 0.0, 0.0)
    assert (cfg.loss.scale_consistency, cfg.loss.scale_consistency_min, cfg.loss.scale_consistency_max) == \
        (0.0, 0.5, 0.75)
    assert (cfg.inference.sigma_bn, cfg.inference.detection_bn, cfg.inference.flips, cfg.model.tail_scale) == \
        ("moving", None, 1, 1)
    assert with_added_keys({}, GALETTO_ADDED)["train"] == {"init_from": None, "imagenet": None, "device": "cpu",
                                                           "channels_last": False}
    assert _recipe("{}\n") == {"train.init_from": None, "train.device": "cpu", "train.channels_last": False,
                               "loss.sharp_consistency": True, "data.mask_suffix": ""}


# ------------------------------------------------------------------------------------ dmenet.config legacy model keys
def test_legacy_model_keys_read_as_their_inference_keys():
    """An older run's ``model.image_bn_stats`` / ``detection_image_bn_stats`` / ``test_flips``: true (also as the text
    ``"true"``) → ``image``, false → ``moving``, a null detection key stays null (as ``sigma_bn``), flips unchanged;
    each goes to its own key; an ``inference`` key that says the same is no conflict, one that differs is refused."""
    from dmenet.config import config_from_dict
    from dmenet.configlib import ConfigError

    cfg = config_from_dict({"model": {"image_bn_stats": "true", "detection_image_bn_stats": None, "test_flips": 2}})
    assert (cfg.inference.sigma_bn, cfg.inference.detection_bn, cfg.inference.flips) == ("image", None, 2)
    cfg = config_from_dict({"model": {"detection_image_bn_stats": True, "image_bn_stats": False}})
    assert (cfg.inference.sigma_bn, cfg.inference.detection_bn) == ("moving", "image")
    same = config_from_dict({"model": {"image_bn_stats": True}, "inference": {"sigma_bn": "image"}})
    assert same.inference.sigma_bn == "image"
    with pytest.raises(ConfigError, match="model.image_bn_stats and inference.sigma_bn disagree"):
        config_from_dict({"model": {"image_bn_stats": True}, "inference": {"sigma_bn": "moving"}})


def test_to_uint8_rounds_to_the_nearest_level_and_clips():
    """``round(255·x)``, clipped: 0.002 → 0.51 → level 1 (not 0: truncated), 0.998 → 254.49 → 254, 0.999 → 254.745 →
    255; −0.1 and 1.2 → 0 and 255."""
    import numpy as np

    from syndof.io import to_uint8

    assert to_uint8(np.array([0.002, 0.998, 0.999, -0.1, 1.2])).tolist() == [1, 254, 255, 0, 255]


def test_galetto_feeds_its_classifier_patches_in_0_1(monkeypatch):
    """``compare.classifier_scores`` and ``train.balanced_sample`` hand the classifier float32 patches in [0, 1]:
    uint8 level 255 is 1.0, 51 is 0.2 (not 255.0 and 51.0). A stand-in classifier records what it was given."""
    import numpy as np
    import torch

    from dmenet.galetto import compare, train

    seen = []

    def predict(model, x):
        seen.append(x)
        return torch.full((x.shape[0], train.NUM_CLASSES), 1.0 / train.NUM_CLASSES)

    monkeypatch.setattr(train, "load_classifier", lambda path: None)
    monkeypatch.setattr(train, "predict_classes", predict)
    patches = np.zeros((2, 32, 32), np.uint8)
    patches[0, 0, 0], patches[1, 0, 0] = 255, 51
    compare.classifier_scores("stand-in", {"patches": patches, "label": np.array([0, 1])})
    assert seen[0].dtype == torch.float32 and seen[0].shape == (2, 1, 32, 32)
    assert seen[0][:, 0, 0, 0].tolist() == pytest.approx([1.0, 0.2], abs=1e-7)
    x, label = train.balanced_sample(np.full((1, train.NUM_CLASSES, 32, 32), 51, np.uint8), train.NUM_CLASSES, 0)
    assert x.dtype == torch.float32 and x.shape == (train.NUM_CLASSES, 1, 32, 32)
    assert float(x.max()) == pytest.approx(0.2, abs=1e-7) and float(x.min()) == pytest.approx(0.2, abs=1e-7)


# ----------------------------------------------------------------------------------------- predict's default workers
def test_auto_workers_take_no_device_for_the_cpu(tmp_path, monkeypatch):
    """``args.device`` None (no device named: the CPU, as ``cli.check_device`` passes it) is the CPU, not a GPU: a
    batch of ``AUTO_WORKERS_MIN_PHOTOS`` photos on 6 usable cores gets 4 workers (``AUTO_WORKERS_MAX``), as with
    ``--device cpu``."""
    from test_reliability_s36 import auto_worker_batch

    from dmenet import predict, predict_workers

    folder, jobs = auto_worker_batch(tmp_path, monkeypatch)
    args = predict.build_parser().parse_args([str(folder), "--out", str(tmp_path / "out")])
    args.device = None
    assert predict_workers.AUTO_WORKERS_MAX == 4 and predict_workers.auto_workers(jobs, args, 1024, None) == 4


def test_scaled_syndof_refuses_an_out_that_is_a_file(tmp_path, monkeypatch, capsys):
    """``--out`` an existing file (not a folder) exists all the same: refused before any work with the line that
    says so, the file unchanged."""
    from test_reliability_s32 import _error_line, _syndof_folder
    from test_reliability_s32 import _script as _file_script

    scaled = _file_script("experiments/scaled_syndof.py", monkeypatch)
    src = _syndof_folder(tmp_path / "syn", [(32, 48)])
    out = tmp_path / "half"
    out.write_text("kept")
    assert scaled.main([str(src), "--scale", "0.5", "--out", str(out)]) == 2
    assert _error_line(capsys) == f"error: {out} exists; choose a new --out"
    assert out.read_text() == "kept" and sorted(p.name for p in tmp_path.iterdir()) == ["half", "syn"]
