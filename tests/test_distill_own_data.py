"""distill-train on one's own labelled data (docs/distill.md, "Training on your own data"): a folder in the layout of
``python -m syndof.generate`` (``image/STEM.png``, ``blur_map_binary/STEM_binary.png``, 255 = blurred) split by
``experiments/distill/split.py --glob`` and trained with ``data.mask_suffix=_binary``; the masks' polarity is
``data.white_is_blurred``; bad input is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_distill import _script

from dmenet.configlib import ConfigError
from dmenet.distill import train as T
from dmenet.distill.config import load_distill_config
from dmenet.distill.data import TrainStream
from dmenet.distill.split import read_split
from syndof.io import write_image

SIDE = 64


def _syndof_folder(root: Path, n: int = 5) -> None:
    """``n`` samples in the generator's layout: a photo whose red channel is 1 exactly where its binary map is 255
    (blurred: the left 8·(i+1) columns), green and blue random."""
    rng = np.random.default_rng(1)
    (root / "image").mkdir(parents=True)
    (root / "blur_map_binary").mkdir()
    for i in range(n):
        blurred = np.zeros((SIDE, SIDE), bool)
        blurred[:, : 8 * (i + 1)] = True
        photo = rng.random((SIDE, SIDE, 3)).astype(np.float32)
        photo[..., 0] = blurred
        stem = f"{i:06d}_src{i}"
        write_image(root / "image" / f"{stem}.png", photo)
        write_image(root / "blur_map_binary" / f"{stem}_binary.png", blurred.astype(np.float32))


def _sets(root: Path, lists: str) -> list[str]:
    return [f"data.images={root / 'image'}", f"data.masks={root / 'blur_map_binary'}", "data.mask_suffix=_binary",
            f"data.train_list={lists}_train.txt", f"data.val_list={lists}_val.txt", "data.sharp_per_batch=0",
            "data.sharp_images=null", "data.sharp_list=null", "data.sharp_val_images=null", "data.sharp_val_list=null",
            "data.preload_long_side=null", f"data.crop={SIDE}", "data.scale_min=1", "data.batch=3",
            f"data.val_side={SIDE}", "student.decoder=[16,16,16,16,8]", "loss.consistency=0", "loss.adv_distill=0",
            "train.wandb=disabled", "train.init_imagenet=false", "train.steps=2", "train.ckpt_every=2"]


def _one_line_exit_2(capsys, argv) -> str:
    assert T.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    return err[0]


def test_a_syndof_folder_splits_trains_and_reads_its_masks_with_the_configured_polarity(tmp_path, capsys):
    root, lists = tmp_path / "syn", str(tmp_path / "lists" / "syn")
    _syndof_folder(root)
    assert _script("split").main(["--images", str(root / "image"), "--glob", "*.png", "--val-count", "2",
                                  "--out", lists]) == 0
    sets = _sets(root, lists)
    cfg = load_distill_config(None, sets)
    batch = TrainStream(cfg.data, cfg.train.seed).batch(0)  # no resize (crop = side, scale_min 1), maybe a flip
    blurred = batch["image"][:, :1] > 0.5  # the red channel marks the blurred pixels
    assert batch["mask"].shape == (3, 1, SIDE, SIDE) and 0 < float(batch["mask"].mean()) < 1
    assert bool((batch["mask"] == blurred.float()).all())  # 255 in blur_map_binary/ is target 1 = blurred
    flipped = load_distill_config(None, sets + ["data.white_is_blurred=false"])
    assert bool((TrainStream(flipped.data, cfg.train.seed).batch(0)["mask"] == (~blurred).float()).all())
    out = tmp_path / "run"
    assert T.main(["--out", str(out), "--set", *sets]) == 0
    assert (out / "ckpt" / "step_000001" / "model.safetensors").is_file()
    listed = json.loads((out / "data.json").read_text())["sources"]["data.train_list"]
    assert len(listed["names"]) == 3 and listed["files"] == 6  # each photo and its _binary mask


@pytest.mark.parametrize("damage,named", [
    ("mask_missing", "000001_src1.png"), ("mask_size", "000002_src2_binary.png"), ("no_suffix", "data.mask_suffix"),
    ("polarity", "data.white_is_blurred"), ("suffix_path", "data.mask_suffix must be a file-name suffix")])
def test_own_data_bad_input_is_one_line_naming_the_file_or_option(tmp_path, capsys, damage, named):
    root, lists = tmp_path / "syn", tmp_path / "split"
    _syndof_folder(root)
    (tmp_path / "split_train.txt").write_text("000000_src0\n000001_src1\n000002_src2\n")
    (tmp_path / "split_val.txt").write_text("000003_src3\n000004_src4\n")
    sets = _sets(root, str(lists))
    if damage == "mask_missing":
        (root / "blur_map_binary" / "000001_src1_binary.png").unlink()
    elif damage == "mask_size":
        write_image(root / "blur_map_binary" / "000002_src2_binary.png", np.ones((SIDE // 2, SIDE), np.float32))
    elif damage == "no_suffix":
        sets.remove("data.mask_suffix=_binary")
    else:
        sets.append({"polarity": "data.white_is_blurred=maybe", "suffix_path": "data.mask_suffix=../x"}[damage])
    err = _one_line_exit_2(capsys, ["--out", str(tmp_path / "run"), "--set", *sets])
    assert named in err
    assert not (tmp_path / "run").exists()


def test_split_glob_refuses_a_folder_pattern_and_stems_named_twice(tmp_path, capsys):
    """--glob is a pattern of names in --images: with a folder in it, or matching a.png and a.jpg (one stem, two
    photos: the mask pairing could not tell them apart), the split is refused, one line, nothing written."""
    split = _script("split")
    images = tmp_path / "img"
    images.mkdir()
    for name in ("a.png", "a.jpg", "b.png", "c.png"):
        write_image(images / name, np.zeros((8, 8, 3), np.float32))
    out = tmp_path / "lists" / "x"
    assert split.main(["--images", str(images), "--glob", "sub/*.png", "--out", str(out)]) == 2
    assert "--glob sub/*.png" in capsys.readouterr().err
    assert split.main(["--images", str(images), "--glob", "*", "--val-count", "1", "--out", str(out)]) == 2
    assert "e.g. a;" in capsys.readouterr().err
    assert not out.parent.exists()
    assert split.main(["--images", str(images), "--glob", "*.png", "--val-count", "1", "--out", str(out)]) == 0
    assert sorted(read_split(f"{out}_train.txt") + read_split(f"{out}_val.txt")) == ["a", "b", "c"]


def test_shipped_configs_pair_masks_by_the_photos_own_stem():
    """Every experiments/distill/*.yaml loads unchanged, with data.mask_suffix "" (the CUHK pairing) and white =
    blurred."""
    configs = sorted((Path(__file__).resolve().parents[1] / "experiments" / "distill").glob("*.yaml"))
    assert configs
    for path in configs:
        data = load_distill_config(path).data
        assert data.mask_suffix == "" and data.white_is_blurred is True, path
    with pytest.raises(ConfigError, match="data.mask_suffix"):
        load_distill_config(None, ["data.mask_suffix=a/b"])
