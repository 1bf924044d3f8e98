"""Files a trainer or a calibration step skipped as unreadable are recorded with what it wrote, not only said in the
log (docs/reliability.md §29): the training streams keep them in every checkpoint's ``train.json`` (carried on by a
resume), ``calibrate dbd`` / ``head`` / ``feature-head`` in the model's history, as ``calibrate sigma`` did."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from dmenet import calibrate
from dmenet.data.stream import DomainStream
from dmenet.data.synthetic import SyntheticDataset
from dmenet.models.model_io import load_model_file, save_model
from model_helpers import tiny_dmenet as _tiny
from syndof import io as sio


def _synthetic(root, stems):
    rng = np.random.default_rng(0)
    for s in stems:
        sio.write_image(root / "image" / f"{s}.png", rng.random((16, 16, 3)).astype(np.float32))
        sio.write_sigma_map(root / "blur_map" / f"{s}.png", rng.random((16, 16)).astype(np.float32) * 2)
    return root


def _transform(sample, gen):
    return {"image": torch.from_numpy(sample["image"]).permute(2, 0, 1)}


def test_a_stream_records_each_skipped_file_in_its_state_and_a_resume_carries_it(tmp_path):
    root = _synthetic(tmp_path / "syn", ["a", "b", "c", "d"])
    bad = root / "image" / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    (root / "image" / "d.png").unlink()
    os.mkfifo(root / "image" / "d.png")
    stream = DomainStream(SyntheticDataset(root), 2, seed=0, transform=_transform, name="synthetic")
    for _ in range(4):
        stream.next_batch()
    lines = stream.skipped
    assert [ln.split(": ", 1)[0] for ln in lines] == [str(bad), str(root / "image" / "d.png")]
    assert lines[1].endswith("not a regular file (a FIFO, socket or device)")
    tensors, values = stream.state_dict()
    assert values["skipped"] == lines
    resumed = DomainStream(SyntheticDataset(root), 2, seed=5, transform=_transform, name="synthetic")
    resumed.load_state_dict(tensors, values)
    assert resumed.skipped == lines  # before it has read anything again
    resumed.next_batch()
    resumed.next_batch()
    assert resumed.skipped == lines  # skipped again: listed once
    old = {k: v for k, v in values.items() if k != "skipped"}  # a checkpoint written before the list existed
    resumed.load_state_dict(tensors, old)
    assert resumed.skipped == []


@pytest.mark.parametrize("step", ["dbd", "head", "feature-head"])
def test_detection_fits_record_the_labelled_images_they_skipped(tmp_path, step):
    lab = tmp_path / "lab"
    rng = np.random.default_rng(1)
    for i in range(2):
        img = rng.random((32, 32, 3)).astype(np.float32)
        sio.write_image(lab / "image" / f"a{i}.png", img)
        mask = np.zeros((32, 32), np.float32)
        mask[:, 16:] = 1
        sio.write_image(lab / "gt" / f"a{i}.png", mask)
    (lab / "image" / "b.png").symlink_to("nowhere.png")
    sio.write_image(lab / "gt" / "b.png", np.zeros((32, 32), np.float32))
    save_model(tmp_path / "m", _tiny(0), {})
    extra = {"dbd": [], "head": ["--epochs", "1", "--second-bn", "image"],
             "feature-head": ["--epochs", "1", "--samples", "64"]}[step]
    assert calibrate.main([step, "--model", str(tmp_path / "m.safetensors"), "--labelled", str(lab), "--flips", "1",
                           *extra, "--out", str(tmp_path / "out")]) == 0
    result = load_model_file(tmp_path / "out")[1]["history"][-1]["result"]
    assert result["skipped"] == [f"{lab / 'image' / 'b.png'}: a symbolic link to nothing"]
    assert len(result["images"]) == 2


def test_a_training_run_records_what_it_skipped_in_every_checkpoint(tmp_path, caplog):
    """A blur-stage run on 6 samples, one training and one validation image corrupt: both are listed in the
    checkpoint's train.json (the stream's under ``streams``, the validation's under ``extra``), and the run ends
    with one warning counting them."""
    import json
    import logging

    from train_data_helpers import blur_cli, write_syndof

    from dmenet.train import main

    root = write_syndof(tmp_path / "syn", count=6)
    for stem in ("s001", "s005"):  # s005: the last stem, held out for validation by data.val_count=1
        (root / "image" / f"{stem}.png").write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        assert main(blur_cli(root, out, "--steps", "3", "--set", "data.val_count=1", "train.ckpt_every=3")) == 0
    meta = json.loads((out / "checkpoints" / "last.json").read_text())
    record = json.loads((out / "checkpoints" / meta["dir"] / "train.json").read_text())
    assert [ln.split(": ")[0] for ln in record["streams"]["synthetic@0"]["skipped"]] == [str(root / "image" /
                                                                                           "s001.png")]
    assert [ln.split(": ")[0] for ln in record["extra"]["validation_skipped"]] == [str(root / "image" / "s005.png")]
    assert any("2 training image(s) were skipped" in r.getMessage() for r in caplog.records)
