"""docs/reliability.md §38: leftovers of §32–§36 (P1–P3): the torch side of the 8-bit ↔ [0, 1] helper, the research
scripts' ``fit`` on a folder without a cache, the comment line of a render folder's split lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_distill import _script as _distill_script
from test_reliability_s32 import _error_line, _run, _script

from dmenet.distill.split import read_split
from syndof.io import from_uint8


def test_p1_from_uint8_tensor_gives_known_values_and_refuses_other_dtypes():
    """P1: Galetto divided its uint8 patch tensors by 255 by hand (``compare.classifier_scores``, ``train.draw_batch``,
    ``train.balanced_sample``). The helper gives the known levels 0, 51, 102, 255 as 0, 0.2, 0.4, 1 (float32, shape
    kept), the very values of the NumPy ``from_uint8`` and of the sites' ``.float() / 255.0``; a float batch (already
    in [0, 1]) or 16-bit levels are refused, not divided again."""
    from syndof.io import from_uint8_tensor

    levels = torch.tensor([[[0, 51], [102, 255]]], dtype=torch.uint8)
    got = from_uint8_tensor(levels)
    assert got.dtype == torch.float32 and got.shape == (1, 2, 2)
    assert got.flatten().tolist() == pytest.approx([0.0, 0.2, 0.4, 1.0], abs=1e-7)
    every = torch.arange(256, dtype=torch.uint8).view(16, 16)
    assert torch.equal(from_uint8_tensor(every), every.float() / 255.0)
    assert np.array_equal(from_uint8_tensor(every).numpy(), from_uint8(every.numpy()))
    for wrong in (got, levels.to(torch.int16), levels.numpy()):
        with pytest.raises(ValueError, match="8-bit levels"):
            from_uint8_tensor(wrong)


@pytest.mark.parametrize("script", ["two_input_s.py", "feature_head.py"])
def test_p2_fit_without_a_cache_names_the_folder_and_the_step_to_run_first(tmp_path, monkeypatch, capsys, script):
    """P2: ``fit --out RUN`` on a folder whose ``cache`` step never ran said ``train_head: 0 label sets and 0 masks``
    (two_input_s) or ``no labelled image holds both blurred and sharp pixels`` (feature_head), naming no folder. Now
    one line names ``RUN/cache`` and the command to run first; exit 2."""
    module = _script(f"experiments/{script}", monkeypatch)
    out = tmp_path / "run"
    (out / "cache" / "train").mkdir(parents=True)  # an empty cache folder: a cache step stopped before its first file
    assert _run(module.main, ["fit", "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert str(out / "cache") in line and f"python experiments/{script} cache --out {out}" in line


def test_p3_a_render_folders_split_lists_say_what_was_excluded(tmp_path, capsys):
    """P3: the split of a ``syndof.generate`` folder's renders wrote ``# *.png of …, seed 20, cuhk/image test five
    excluded`` above both lists, false there: the group split excludes nothing. Now the line says the renders of each
    source photo are on one side and none was excluded; a CUHK folder's lists keep their line."""
    image = tmp_path / "syn" / "image"
    (tmp_path / "syn" / "meta").mkdir(parents=True)
    image.mkdir()
    (tmp_path / "syn" / "dataset.json").write_text("{}")
    for stem, source in (("000000_p1", "p1"), ("000001_p1", "p1"), ("000002_p2", "p2"), ("000003_p3", "p3")):
        (image / f"{stem}.png").write_bytes(b"x")
        (tmp_path / "syn" / "meta" / f"{stem}.json").write_text(json.dumps({"source_name": source}))
    out = tmp_path / "lists" / "s"
    split = _distill_script("split")
    assert split.main(["--images", str(image), "--glob", "*.png", "--val-count", "1", "--out", str(out)]) == 0
    for part in ("train", "val"):
        first = (tmp_path / "lists" / f"s_{part}.txt").read_text().splitlines()[0]
        assert first.startswith("# *.png of ") and "test five" not in first
        assert first.endswith("the renders of each of 3 source photos on one side, none excluded")
    assert sorted(read_split(f"{out}_train.txt") + read_split(f"{out}_val.txt")) == sorted(p.stem for p in
                                                                                           image.iterdir())
    cuhk = tmp_path / "cuhk"
    cuhk.mkdir()
    for i in (1, 11, 2, 3):
        (cuhk / f"out_of_focus{i:04d}.jpg").write_bytes(b"x")
    assert split.main(["--images", str(cuhk), "--val-count", "1", "--out", str(tmp_path / "lists" / "c")]) == 0
    first = (tmp_path / "lists" / "c_train.txt").read_text().splitlines()[0]
    assert first.endswith("cuhk/image test five excluded")
    assert "out_of_focus0011" not in read_split(tmp_path / "lists" / "c_train.txt") + read_split(
        tmp_path / "lists" / "c_val.txt")
