"""experiments/build_training_set.py: the held-out EBB! validation copies (×1 links, ×0.5 with σ × 0.5) and the
re-blurred copies (σ := √(σ² + g²))."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from syndof import io

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("build_training_set", ROOT / "experiments" / "build_training_set.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def one_photo_screen(tmp_path: Path, entry: object) -> tuple[Path, Path, Path]:
    """(bsds, out, cache): a BSDS500 folder of one photo ``train/a.png`` (empty: never read) whose screen score the
    cache ``out/bsds_screen_t1.5.json`` already holds as ``entry``, for ``screen_bsds(bsds, out, 1.5)``."""
    bsds = tmp_path / "bsds"
    for split in ("train", "val", "test"):
        (bsds / split).mkdir(parents=True)
    (bsds / "train" / "a.png").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    cache = out / "bsds_screen_t1.5.json"
    cache.write_text(json.dumps({"train/a.png": entry}))
    return bsds, out, cache

def _syndof(syn: Path, stems, shape: tuple[int, int], left: float, right: float) -> Path:
    """A SYNDOF folder of random images whose σ is ``left`` px on the left half and ``right`` px on the right."""
    rng = np.random.default_rng(0)
    sigma = np.full(shape, left, np.float32)
    sigma[:, shape[1] // 2 :] = right
    for stem in stems:
        io.write_image(syn / "image" / f"{stem}.png", rng.random((*shape, 3)).astype(np.float32))
        io.write_sigma_map(syn / "blur_map" / f"{stem}.png", sigma)
    io.write_json_atomic(syn / "dataset.json", {"format": "syndof", "max_coc": 29, "parts": {"x": 13}})
    return syn


def test_validation_half_copy_halves_size_and_sigma(tmp_path):
    mod = _module()
    syn = _syndof(tmp_path / "syn", ("a_000000", "ebb_000001"), (41, 60), left=4.0, right=1.0)

    mod.write_validation_ebb(syn, ["ebb_000001"], tmp_path / "full", tmp_path / "half")

    assert sorted(p.name for p in (tmp_path / "full" / "image").iterdir()) == ["ebb_000001.png"]
    assert np.array_equal(io.read_image(tmp_path / "full" / "image" / "ebb_000001.png"),
                          io.read_image(syn / "image" / "ebb_000001.png"))
    half = io.read_sigma_map(tmp_path / "half" / "blur_map" / "ebb_000001.png")
    assert io.read_image(tmp_path / "half" / "image" / "ebb_000001.png").shape == (20, 30, 3)
    assert half.shape == (20, 30)
    # σ is measured in px of the image it belongs to: halving the image halves σ (4 → 2, 1 → 0.5 px).
    assert np.allclose(half[:, :14], 2.0) and np.allclose(half[:, 16:], 0.5)
    meta = json.loads((tmp_path / "half" / "dataset.json").read_text())
    assert meta["max_coc"] == 29 and "parts" not in meta


def test_reblurred_copy_composes_sigma_and_resumes(tmp_path):
    mod = _module()
    syn = _syndof(tmp_path / "syn", ("a", "b", "c"), (40, 50), left=3.0, right=0.0)

    extras = mod.write_reblurred(syn, ["a", "b", "c"], tmp_path / "rb", seed=9)
    meta = json.loads((tmp_path / "rb" / "dataset.json").read_text())
    assert meta["reblur_px"] == extras and "parts" not in meta and meta["max_coc"] == 29
    assert all(0.5 <= g <= 2.0 for g in extras.values()) and len(set(extras.values())) == 3
    for stem, g in extras.items():
        out = io.read_sigma_map(tmp_path / "rb" / "blur_map" / f"{stem}.png")
        np.testing.assert_allclose(out[:, 0], round(float(np.hypot(3.0, g)), 1), atol=0.051)  # 0.1 px storage
        np.testing.assert_allclose(out[:, -1], round(g, 1), atol=0.051)
        image = io.read_image(tmp_path / "rb" / "image" / f"{stem}.png")
        assert image.std() < io.read_image(syn / "image" / f"{stem}.png").std()  # really blurred
    # resumable: a second call keeps what is there and draws the same g
    (tmp_path / "rb" / "image" / "b.png").write_bytes(b"kept")
    assert mod.write_reblurred(syn, ["a", "b", "c"], tmp_path / "rb", seed=9) == extras
    assert (tmp_path / "rb" / "image" / "b.png").read_bytes() == b"kept"


def _fake_shared(root: Path) -> Path:
    """A tiny ``shared/data`` tree: 5 CUHK training images (one upper-case .JPG) with masks (white = blurred),
    and xu100 / DUT test images that must never enter training."""
    data = root / "data"
    rng = np.random.default_rng(1)
    for i in range(1, 6):
        ext = ".JPG" if i == 5 else ".jpg"
        img = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
        (data / "cuhk" / "train_image").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / "cuhk" / "train_image" / f"out_of_focus000{i}{ext}"), img)
        io.write_image(data / "cuhk" / "gt" / f"out_of_focus000{i}.png", np.zeros((12, 16, 3), np.float32))
    for name in ("xu100", "dut"):
        for sub in ("source", "gt"):  # real BMP files (io.write_image writes .png / .jpg only)
            (data / name / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(data / name / sub / "1.bmp"), np.zeros((12, 16, 3), np.uint8))
    return data


def test_labelled_set_is_the_cuhk_training_subset_only(tmp_path):
    """S's labelled set and the CUHK part of the real domain are the split's train subset: no validation,
    held-out, xu100 or DUT image; a folder left by an earlier build (e.g. xu100 test images) stops the build."""
    from dmenet.data.labelled import LabelledDataset
    from dmenet.data.splits import make_split

    mod = _module()
    data = _fake_shared(tmp_path / "shared")
    split = make_split([f"out_of_focus000{i}" for i in range(1, 6)], ["out_of_focus0001"], n_val=1, seed=0)
    split_file = tmp_path / "split.json"
    io.write_json_atomic(split_file, split)
    out = tmp_path / "out"

    rec = mod.write_cuhk_train(data, split_file, out / "labelled", out / "real" / "cuhk")

    lab = LabelledDataset(out / "labelled", white_is_blurred=True)
    stems = sorted(p.stem.lower() for p in lab.images)
    assert stems == split["train"] and len(stems) == 3
    assert not set(stems) & set(split["val"] + split["held_out"])
    assert sorted(p.stem.lower() for p in (out / "real" / "cuhk").iterdir()) == split["train"]
    assert rec["labelled_gt_polarity"] == "white-blurred" and len(rec["labelled_train"]) == 3
    assert not any("xu100" in n or "dut" in n for n in rec["labelled_train"])
    # idempotent on its own output
    assert mod.write_cuhk_train(data, split_file, out / "labelled", out / "real" / "cuhk") == rec
    # an earlier build's test image in labelled/ is refused, named
    (out / "labelled" / "image" / "xu100_1.bmp").symlink_to(data / "xu100" / "source" / "1.bmp")
    with pytest.raises(io.InputError, match="xu100_1.bmp"):
        mod.write_cuhk_train(data, split_file, out / "labelled", out / "real" / "cuhk")
    # a split naming an image that does not exist is refused before anything is linked
    split["train"] = sorted(split["train"] + ["out_of_focus0009"])
    io.write_json_atomic(split_file, split)
    with pytest.raises(io.InputError, match="out_of_focus0009"):
        mod.write_cuhk_train(data, split_file, tmp_path / "lab2", tmp_path / "real2")
    assert not (tmp_path / "lab2").exists()


def test_labelled_neg_adds_sharp_photos_with_all_sharp_masks(tmp_path):
    """labelled_neg = labelled/ + the listed sharp BSDS500 train photos, each with a mask of its own size that says
    "nothing blurred"; a listed photo that does not exist and a folder holding other files are refused, named."""
    from dmenet.data.labelled import LabelledDataset
    from dmenet.data.splits import make_split

    mod = _module()
    data = _fake_shared(tmp_path / "shared")
    rng = np.random.default_rng(2)
    for stem in ("101", "202", "303"):
        io.write_image(data / "photos" / "bsds500" / "train" / f"{stem}.jpg", rng.random((9, 14, 3)).astype(np.float32))
    sharp_list = tmp_path / "sharp.txt"
    sharp_list.write_text("# screen\n101\n303\n")
    split = make_split([f"out_of_focus000{i}" for i in range(1, 6)], [], n_val=1, seed=0)
    io.write_json_atomic(tmp_path / "split.json", split)
    out = tmp_path / "out"
    mod.write_cuhk_train(data, tmp_path / "split.json", out / "labelled", out / "real" / "cuhk")
    cuhk_mask = io.read_image(out / "labelled" / "gt" / "out_of_focus0001.png")
    io.write_image(out / "labelled" / "gt" / "out_of_focus0001.png", np.ones_like(cuhk_mask))  # check it is linked

    rec = mod.write_labelled_with_negatives(data, out / "labelled", sharp_list, out / "labelled_neg")

    lab = LabelledDataset(out / "labelled_neg", white_is_blurred=True)
    names = sorted(p.stem for p in lab.images)
    assert names == sorted(split["train"] + ["sharp_101", "sharp_303"]), names
    for i in range(len(lab)):
        sample = lab.load(i)
        sharp = Path(lab.describe(i)).stem.startswith("sharp_")
        assert sample["mask"].shape == sample["image"].shape[:2]
        if sharp:
            assert sample["mask"].max() == 0.0
        if Path(lab.describe(i)).stem == "out_of_focus0001":
            assert sample["mask"].min() == 1.0  # the CUHK pair is the labelled/ pair, not a copy
    assert "2 sharp-everywhere" in rec["labelled_neg"]
    # idempotent
    assert mod.write_labelled_with_negatives(data, out / "labelled", sharp_list, out / "labelled_neg") == rec
    # a listed photo that does not exist
    sharp_list.write_text("101\n404\n")
    with pytest.raises(io.InputError, match="404"):
        mod.write_labelled_with_negatives(data, out / "labelled", sharp_list, tmp_path / "neg2")
    # a listed photo whose header cannot be read: refused, named, and no mask is written for it
    (data / "photos" / "bsds500" / "train" / "505.jpg").write_bytes(b"not a jpeg")
    sharp_list.write_text("101\n505\n")
    with pytest.raises(io.InputError, match="505.jpg"):
        mod.write_labelled_with_negatives(data, out / "labelled", sharp_list, tmp_path / "neg3")
    assert not (tmp_path / "neg3" / "gt" / "sharp_505.png").exists()
    # another build's file in the folder
    sharp_list.write_text("101\n")
    with pytest.raises(io.InputError, match="sharp_303"):
        mod.write_labelled_with_negatives(data, out / "labelled", sharp_list, out / "labelled_neg")


def test_a_rerun_with_another_screen_keeps_no_excluded_source(tmp_path):
    """The synthesis sources are the photos the screen accepts: a folder from a build with another
    --blur-threshold that holds a now-excluded photo is refused, named, before anything is linked."""
    mod = _module()
    bsds = tmp_path / "bsds500"
    for key in ("train/1.jpg", "val/2.jpg", "test/3.jpg"):
        (bsds / key).parent.mkdir(parents=True, exist_ok=True)
        (bsds / key).write_bytes(b"photo")
    out = tmp_path / "out"
    scores = {k: {"accepted": True} for k in ("train/1.jpg", "val/2.jpg", "test/3.jpg")}
    mod.link_bsds_sources(bsds, out, scores, 1.5)
    assert sorted(p.name for p in (out / "src_bsds_trainval").iterdir()) == ["1.jpg", "2.jpg"]
    mod.link_bsds_sources(bsds, out, scores, 1.5)  # the same screen again: idempotent
    scores["val/2.jpg"]["accepted"] = False
    with pytest.raises(io.InputError, match="2.jpg"):
        mod.link_bsds_sources(bsds, out, scores, 0.5)
    assert sorted(p.name for p in (out / "src_bsds_test").iterdir()) == ["3.jpg"]


def test_missing_inputs_stop_the_build_before_anything_is_written(tmp_path, capsys):
    mod = _module()
    data = _fake_shared(tmp_path / "shared")  # CUHK and xu100 / DUT only: BSDS500, EBB! and the real photos missing
    out = tmp_path / "out"
    assert mod.main(["--shared", str(tmp_path / "shared"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "photos/bsds500/train is not a folder" in err[0] and not out.exists()
    for bsds_split in ("train", "val", "test"):
        (data / "photos" / "bsds500" / bsds_split).mkdir(parents=True)
    assert mod.main(["--shared", str(tmp_path / "shared"), "--out", str(data / "x"), "--screen-only"]) == 2
    assert "lies inside the shared data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        mod.main(["--shared", str(tmp_path / "shared"), "--out", str(out), "--blur-threshold", "nan"])
    assert exit_.value.code == 2 and "--blur-threshold" in capsys.readouterr().err
    for folder in mod.INPUT_FOLDERS:  # every input folder there: the sharp list is checked before any link
        (data / folder).mkdir(parents=True, exist_ok=True)
    (data / "photos" / "bsds500" / "train" / "1.jpg").write_bytes(b"")
    listed = tmp_path / "sharp.txt"
    for sharp_list, words in ((tmp_path / "nope.txt", "nope.txt: cannot read"), (listed, "2 listed photo(s)")):
        listed.write_text("1\n2\n3\n")
        assert mod.main(["--shared", str(tmp_path / "shared"), "--out", str(out), "--sharp-list", str(sharp_list)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --sharp-list") and words in err[0], err
    assert not out.exists() and not (data / "x").exists()


def test_h99_a_listed_image_mask_or_sharp_photo_that_is_no_file_is_named_before_anything_is_linked(tmp_path):
    """The listings by stem left a name where no file can be read out, so a train stem whose mask is a symbolic link
    loop "lacked an image … or a mask", a listed sharp photo that is a FIFO was "not in bsds500/train". Each is
    refused now naming the file and why, before anything is linked."""
    import os

    from dmenet.data.splits import make_split

    mod = _module()
    data = _fake_shared(tmp_path / "shared")
    split = make_split([f"out_of_focus000{i}" for i in range(1, 6)], [], n_val=1, seed=0)
    io.write_json_atomic(tmp_path / "split.json", split)
    mask = data / "cuhk" / "gt" / f"{split['train'][0]}.png"
    kept = tmp_path / "kept.png"
    mask.rename(kept)
    mask.symlink_to(mask.name)
    with pytest.raises(io.InputError) as err:
        mod.write_cuhk_train(data, tmp_path / "split.json", tmp_path / "lab", tmp_path / "real")
    assert str(err.value) == f"{mask}: a symbolic link loop (too many levels of symbolic links)"
    assert not (tmp_path / "lab").exists() and not (tmp_path / "real").exists()
    mask.unlink()
    kept.rename(mask)
    io.write_image(data / "photos" / "bsds500" / "train" / "101.jpg", np.zeros((9, 14, 3), np.float32))
    os.mkfifo(data / "photos" / "bsds500" / "train" / "202.jpg")
    (tmp_path / "sharp.txt").write_text("101\n202\n")
    with pytest.raises(io.InputError) as err:
        mod.sharp_negatives(data, tmp_path / "sharp.txt")
    assert str(err.value) == f"{data / 'photos' / 'bsds500' / 'train' / '202.jpg'}: not a regular file (a FIFO, " \
        "socket or device)"


def test_screen_keeps_the_scores_done_when_it_stops_early(tmp_path, monkeypatch):
    """§35 L2: the BSDS500 screen wrote its cache only after the last photo: a Ctrl-C (or an unreadable photo) after
    minutes of scoring lost every score. The scores finished by then are now kept and not computed again."""
    mod = _module()
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for i in range(2):
            io.write_image(tmp_path / "bsds" / split / f"{i}.png", rng.random((40, 40, 3)).astype(np.float32))
    out = tmp_path / "out"
    out.mkdir()
    scored = []
    real = mod.natural_blur_score

    def stops_at_the_fourth(image, threshold):
        if len(scored) == 3:
            raise KeyboardInterrupt
        scored.append(image.shape)
        return real(image, threshold)

    monkeypatch.setattr(mod, "natural_blur_score", stops_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        mod.screen_bsds(tmp_path / "bsds", out, 1.5)
    cache = json.loads((out / "bsds_screen_t1.5.json").read_text())
    assert sorted(cache) == ["train/0.png", "train/1.png", "val/0.png"]
    scored.clear()
    monkeypatch.setattr(mod, "natural_blur_score", lambda image, threshold: scored.append(1) or real(image, threshold))
    scores = mod.screen_bsds(tmp_path / "bsds", out, 1.5)
    assert len(scored) == 3 and len(scores) == 6  # only the three photos not scored before
    assert json.loads((out / "bsds_screen_t1.5.json").read_text()) == scores
