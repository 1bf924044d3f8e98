"""Bad data inputs get one clear error, never a silent wrong result (masks, crops, synthetic sets, split files)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from dmenet.data import splits
from dmenet.data import transforms as T
from dmenet.data.labelled import LabelledDataset
from dmenet.data.synthetic import SyntheticDataset
from dmenet.eval import benchmarks as B
from syndof import io


def _save_grey_jpeg(path, array, orientation):
    pil = Image.fromarray(array, mode="L")
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.save(path, quality=100, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", [3, 6])
def test_read_mask_applies_exif_orientation_like_read_image(tmp_path, orientation):
    mask = np.zeros((40, 60), np.uint8)
    mask[:, :20] = 255  # blurred left third, stored unrotated
    _save_grey_jpeg(tmp_path / "m.jpg", mask, orientation)
    got = B.read_mask(tmp_path / "m.jpg")
    want = io.read_image(tmp_path / "m.jpg").mean(axis=2) >= 0.5
    np.testing.assert_array_equal(got, want.astype(np.float32))
    if orientation == 3:
        assert got[:, -20:].all() and not got[:, :40].any()  # rotated 180°
    else:
        assert got.shape == (60, 40)


def test_labelled_dataset_loads_exif_rotated_mask(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "gt").mkdir()
    photo = Image.fromarray(np.full((40, 60, 3), 128, np.uint8))
    exif = photo.getexif()
    exif[0x0112] = 6
    photo.save(tmp_path / "image" / "a.jpg", exif=exif.tobytes())
    mask = np.zeros((40, 60), np.uint8)
    mask[:, :20] = 255
    _save_grey_jpeg(tmp_path / "gt" / "a.jpg", mask, 6)
    sample = LabelledDataset(tmp_path).load(0)
    assert sample["mask"].shape == sample["image"].shape[:2] == (60, 40)


def test_read_mask_scales_by_dtype_and_refuses_masks_that_binarise_to_a_constant(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[:, 4:] = 1  # 0/1 mask: would be all sharp
    cv2.imwrite(str(tmp_path / "01.png"), m)
    with pytest.raises(io.InputError, match=r"01\.png.*values 0\.\.1.*save masks as 0/255"):
        B.read_mask(tmp_path / "01.png")
    m16 = (m.astype(np.uint16) * 255)  # 0/255 stored as 16 bits
    cv2.imwrite(str(tmp_path / "u16_255.png"), m16)
    with pytest.raises(io.InputError, match=r"u16_255\.png"):
        B.read_mask(tmp_path / "u16_255.png")
    cv2.imwrite(str(tmp_path / "u16.png"), m.astype(np.uint16) * 65535)  # a proper 16-bit mask
    np.testing.assert_array_equal(B.read_mask(tmp_path / "u16.png"), m.astype(np.float32))
    cv2.imwrite(str(tmp_path / "flat.png"), np.zeros((8, 8), np.uint8))  # constant file: an all-sharp mask is valid
    assert not B.read_mask(tmp_path / "flat.png").any()


def test_center_crop_and_augment_refuse_a_crop_larger_than_the_sample():
    with pytest.raises(ValueError, match="smaller than the 100 px crop"):
        T.center_crop({"image": np.zeros((40, 60, 3), np.float32)}, 100)
    sample = {"image": np.zeros((64, 64, 3), np.float32), "sigma": np.zeros((64, 64), np.float32)}
    with pytest.raises(ValueError, match="max_min_side"):
        T.augment(sample, 64, None, max_min_side=32)
    out = T.center_crop({"image": np.zeros((40, 60, 3), np.float32)}, 40)
    assert out["image"].shape == (40, 40, 3)


def _synthetic(root, stems, meta=None):
    (root / "image").mkdir(parents=True)
    (root / "blur_map").mkdir()
    for s in stems:
        cv2.imwrite(str(root / "image" / f"{s}.png"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(root / "blur_map" / f"{s}.png"), np.zeros((8, 8), np.uint16))
    if meta is not None:
        (root / "dataset.json").write_text(meta)
    return root


def test_synthetic_split_holds_out_last_sorted_stems_and_refuses_duplicates(tmp_path):
    root = _synthetic(tmp_path / "d", ["a", "b", "c"])
    with pytest.raises(ValueError, match="stems"):
        SyntheticDataset(root, stems=["a", "b", "a"])
    train, val = SyntheticDataset(root, stems=["c", "a", "b"]).split(1)
    assert val.stems == ["c"] and train.stems == ["a", "b"]
    assert not set(train.stems) & set(val.stems)


@pytest.mark.parametrize("meta", ['{"max_coc": null}', '{"max_coc": 0}', '{"max_coc": NaN}', '{"max_coc": -3}',
                                  '{"max_coc": "29"}', "[29]"])
def test_synthetic_refuses_bad_max_coc(tmp_path, meta):
    root = _synthetic(tmp_path / "d", ["a"], meta)
    with pytest.raises(io.InputError, match="dataset.json"):
        SyntheticDataset(root)


def test_synthetic_reads_valid_max_coc(tmp_path):
    assert SyntheticDataset(_synthetic(tmp_path / "d", ["a"], '{"max_coc": 12.5}')).max_coc == 12.5
    assert SyntheticDataset(_synthetic(tmp_path / "e", ["a"], "{}")).max_coc == 29.0


@pytest.mark.parametrize("content", [[1, 2], {"train": [1, "a"], "val": [], "held_out": [], "n_val": 0},
                                     {"train": ["A"], "val": [], "held_out": [], "n_val": 0}])
def test_load_split_refuses_bad_content(tmp_path, content):
    path = tmp_path / "split.json"
    path.write_text(json.dumps(content))
    with pytest.raises(io.InputError, match="split.json"):
        splits.load_split(path, "train")


def test_h98_labelled_and_synthetic_sets_keep_a_name_that_is_no_file_and_skip_it_by_name(tmp_path, caplog):
    """The listings by stem left an image or mask name where no file can be read out: a labelled image so was left
    out unsaid, and a mask (or a synthetic image or σ map) so made its partner "without a mask" / "do not pair by
    stem" (refused, misnamed). The sets keep the name now: reading it names it, so ``readable`` (``fit_dbd``,
    ``fit_head``) and the training streams skip it with one ``skipped PATH: reason`` line as any unreadable file."""
    import logging
    import os

    lab = tmp_path / "lab"
    for d in ("image", "gt"):
        (lab / d).mkdir(parents=True)
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 255
    for s in ("a", "b", "c", "d"):
        cv2.imwrite(str(lab / "image" / f"{s}.png"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(lab / "gt" / f"{s}.png"), mask)
    (lab / "image" / "b.png").unlink()
    (lab / "image" / "b.png").symlink_to("nowhere.png")
    (lab / "gt" / "c.png").unlink()
    os.mkfifo(lab / "gt" / "c.png")
    dataset = LabelledDataset(lab)
    assert [p.name for p in dataset.images] == ["a.png", "b.png", "c.png", "d.png"]
    with caplog.at_level(logging.WARNING, logger="dmenet.data.labelled"):
        read = [s["path"] for s in dataset.readable()]
    assert read == [str(lab / "image" / "a.png"), str(lab / "image" / "d.png")]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"skipped {lab / 'image' / 'b.png'}: a symbolic link to nothing",
        f"skipped {lab / 'gt' / 'c.png'}: not a regular file (a FIFO, socket or device)"]
    root = _synthetic(tmp_path / "syn", ["a", "b", "c"])
    (root / "image" / "b.png").unlink()
    (root / "image" / "b.png").symlink_to("nowhere.png")
    (root / "blur_map" / "c.png").unlink()
    (root / "blur_map" / "c.png").symlink_to("c.png")
    syn = SyntheticDataset(root)
    assert syn.stems == ["a", "b", "c"]
    assert syn.load(0)["sigma"].shape == (8, 8)
    for i, (path, why) in enumerate([(root / "image" / "b.png", "a symbolic link to nothing"),
                                     (root / "blur_map" / "c.png",
                                      "a symbolic link loop (too many levels of symbolic links)")], start=1):
        with pytest.raises(io.InputError) as err:
            syn.load(i)
        assert str(err.value) == f"{path}: {why}"


# reliability.md §48: training (SyntheticDataset) and evaluation (syndof_test.read_max_coc) read dataset.json's
# max_coc with one reader, syndof.recipe.read_max_coc, so both refuse the same folders with the same line.
BAD_MAX_COC = {"null": None, "list": [29], "true": True, "nan": float("nan"), "beyond_float": 10**400, "half": 0.5,
               "one": 1}


@pytest.mark.parametrize("value", list(BAD_MAX_COC.values()), ids=list(BAD_MAX_COC))
def test_training_and_evaluation_refuse_a_bad_max_coc_with_the_same_line_naming_dataset_json(tmp_path, value):
    """null, a list, true, NaN, 10**400, 0.5 and 1 (σ_max = (max_coc − 1)/4 = 0: every label σ/σ_max a division by
    zero; SyntheticDataset took 1 before) are one line naming dataset.json, the same from both readers."""
    from dmenet.eval import syndof_test

    root = _synthetic(tmp_path / "d", ["a"], json.dumps({"max_coc": value}))
    lines = []
    for read in (lambda: SyntheticDataset(root), lambda: syndof_test.read_max_coc(root)):
        with pytest.raises(io.InputError) as err:
            read()
        lines.append(str(err.value))
    assert lines[0] == lines[1]
    assert lines[0].startswith(f"{root / 'dataset.json'}: max_coc must be a finite number > 1") and "\n" not in lines[0]
    assert lines[0].endswith(f"got {json.dumps(value)}")


def test_training_and_evaluation_refuse_a_folder_standing_at_dataset_json_with_the_same_line(tmp_path):
    """A folder at dataset.json is named by both (it was read as no file, max_coc 29, before reliability.md §46)."""
    from dmenet.eval import syndof_test

    root = _synthetic(tmp_path / "d", ["a"])
    (root / "dataset.json").mkdir()
    lines = []
    for read in (lambda: SyntheticDataset(root), lambda: syndof_test.read_max_coc(root)):
        with pytest.raises(io.InputError) as err:
            read()
        lines.append(str(err.value))
    assert lines[0] == lines[1] == (f"{root / 'dataset.json'}: a folder, not a file: the folder's max_coc is read "
                                    "from this file (remove it for the default 29)")


@pytest.mark.parametrize("meta, want", [(None, 29.0), ("{}", 29.0), ('{"max_coc": 1.5}', 1.5),
                                        ('{"max_coc": 13}', 13.0), ('{"max_coc": 255}', 255.0)])
def test_training_and_evaluation_read_the_same_max_coc(tmp_path, meta, want):
    """No file or no key: 29; any finite number > 1 as a float, from both readers (one function)."""
    from dmenet.eval import syndof_test
    from syndof import recipe

    root = _synthetic(tmp_path / "d", ["a"], meta)
    got = SyntheticDataset(root).max_coc, syndof_test.read_max_coc(root), recipe.read_max_coc(root)
    assert got == (want, want, want) and all(type(x) is float for x in got)


def test_training_and_evaluation_name_a_dataset_json_that_is_no_json_alike(tmp_path):
    """Bad JSON and bytes that are no UTF-8: the same ``bad dataset.json (…)`` line from both (training said
    ``invalid dataset.json``)."""
    from dmenet.eval import syndof_test

    root = _synthetic(tmp_path / "d", ["a"])
    for content in (b'{"max_coc": ', b'{"max_coc": \xff\xfe}'):
        (root / "dataset.json").write_bytes(content)
        lines = []
        for read in (lambda: SyntheticDataset(root), lambda: syndof_test.read_max_coc(root)):
            with pytest.raises(io.InputError, match="bad dataset.json") as err:
                read()
            lines.append(str(err.value))
        assert lines[0] == lines[1] and lines[0].startswith(str(root / "dataset.json"))
