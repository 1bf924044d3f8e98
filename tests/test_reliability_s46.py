"""docs/reliability.md §46 (6 Dec 2026): the thirteenth review, of the day's changes as a user meets them. W1: a
``dataset.json`` ``max_coc`` beyond float (a 401-digit integer) was an ``OverflowError`` traceback in every reader of
it; W2: a ``dataset.json`` that is a folder or a link to nothing was read as absent (σ_max 7 px, unsaid); W3: a
training pair skipped for its unreadable mask (or σ map) was logged and recorded as the photo's fault; W4:
``scaled_syndof.py --scale 3`` wrote σ up to 3 σ_max under the source's ``max_coc`` (its GT labels clipped at 1,
exit 0); W5: a mask saved by ``np.save("gt/STEM.png", mask)`` (``STEM.png.npy``) was "without a mask", not named."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
from hostile_helpers import assert_logged_usage_error, digests
from model_helpers import tiny_dmenet
from test_reliability_s32 import _error_line, _run, _script
from train_data_helpers import TINY, write_labelled, write_real

from dmenet import calibrate, evaluate, train
from dmenet.data import LabelledDataset, SyntheticDataset
from dmenet.models.model_io import save_model
from syndof import io as sio
from syndof import units
from syndof.render_checks import check_max_coc

HUGE = 10**400
"""A JSON integer no float holds (``float(HUGE)``: OverflowError)."""


def _syndof_with_predictions(tmp_path):
    """A one-render SYNDOF folder (σ 2 px) and its saved predictions, for ``evaluate --benchmark syndof``."""
    root = tmp_path / "syn"
    (root / "image").mkdir(parents=True)
    (root / "blur_map").mkdir()
    sio.write_image(root / "image" / "s0.png", np.zeros((32, 32, 3), np.float32))
    sio.write_sigma_map(root / "blur_map" / "s0.png", np.full((32, 32), 2.0, np.float32))
    preds = tmp_path / "preds"
    preds.mkdir()
    sio.write_sigma_map(preds / "s0.png", np.full((32, 32), 2.0, np.float32))
    return root, preds


def _evaluate_syndof(root, preds, out) -> int:
    return _run(evaluate.main, ["--benchmark", "syndof", "--data", str(root), "--predictions", str(preds),
                                "--sigma-mapping", "sigma", "--out", str(out), "--wandb", "disabled"])


def _copy_syndof(src, dst):
    for sub in ("image", "blur_map"):
        (dst / sub).mkdir(parents=True)
        for f in (src / sub).iterdir():
            (dst / sub / f.name).write_bytes(f.read_bytes())
    return dst


def test_w1_a_max_coc_beyond_float_is_one_line_naming_dataset_json(tmp_path, capsys, tiny_syndof):
    """``{"max_coc": 1000…0}`` (401 digits): ``evaluate --benchmark syndof`` (and ``galetto.compare`` /
    ``galetto.select``, the same ``read_max_coc``) and ``SyntheticDataset`` (``dmenet.train``) raised
    ``OverflowError: int too large to convert to float``, exit 1. Now exit 2 / InputError naming the file."""
    root, preds = _syndof_with_predictions(tmp_path)
    (root / "dataset.json").write_text(json.dumps({"max_coc": HUGE}))
    assert _evaluate_syndof(root, preds, tmp_path / "ev") == 2
    line = _error_line(capsys)
    assert str(root / "dataset.json") in line and "max_coc must be a finite number > 1" in line
    assert not (tmp_path / "ev").exists()
    syn = _copy_syndof(tiny_syndof, tmp_path / "train_syn")
    (syn / "dataset.json").write_text(json.dumps({"max_coc": HUGE}))
    with pytest.raises(sio.InputError, match="max_coc must be a finite number > 1"):  # one reader (§48)
        SyntheticDataset(syn)
    with pytest.raises(ValueError, match="finite CoC"):  # the renderer's own check, under it
        check_max_coc(HUGE)
    with pytest.raises(ValueError, match="depth range"):
        units.inverse_depth_to_mm(np.zeros(2), 1000, HUGE)


@pytest.mark.parametrize("what", ["folder", "link to nothing"])
def test_w2_a_dataset_json_that_is_no_file_is_named_not_read_as_absent(tmp_path, capsys, tiny_syndof, what):
    """A ``dataset.json`` that is a folder or a link to nothing was taken for no file: max_coc 29 (σ_max 7 px) for a
    folder rendered with any other, exit 0. Now exit 2 naming it, nothing written; SyntheticDataset the same."""
    root, preds = _syndof_with_predictions(tmp_path)
    syn = _copy_syndof(tiny_syndof, tmp_path / "train_syn")
    for folder in (root, syn):
        if what == "folder":
            (folder / "dataset.json").mkdir()
        else:
            os.symlink(tmp_path / "nothing.json", folder / "dataset.json")
    assert _evaluate_syndof(root, preds, tmp_path / "ev") == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: {root / 'dataset.json'}: a ") and "max_coc is read from this file" in line
    assert not (tmp_path / "ev").exists()
    with pytest.raises(sio.InputError, match="max_coc is read from this file"):
        SyntheticDataset(syn)
    (root / "dataset.json").rmdir() if what == "folder" else (root / "dataset.json").unlink()
    assert _evaluate_syndof(root, preds, tmp_path / "ev") == 0  # no file at all: the default, as before


def test_w3_a_pair_skipped_for_its_mask_names_the_mask(tiny_syndof, tmp_path, caplog):
    """``dmenet.train --labelled`` with ``gt/l1.png`` a link to nothing: the warning and the run's record said
    ``skipping unreadable training image …/image/L1.JPG (a symbolic link to nothing)``, the photo (which reads);
    now they name the mask."""
    lab, real = write_labelled(tmp_path / "lab", count=2), write_real(tmp_path / "real", count=1)
    (lab / "gt" / "l1.png").unlink()
    os.symlink(tmp_path / "nothing.png", lab / "gt" / "l1.png")
    out = tmp_path / "run"
    argv = ["--config", TINY, "--synthetic", tiny_syndof, "--real", real, "--labelled", lab, "--gt-polarity",
            "white-blurred", "--out", out, "--wandb", "disabled", "--device", "cpu", "--steps", "1"]
    with caplog.at_level(logging.WARNING):
        assert train.main([str(a) for a in argv]) == 0
    warned = [r.getMessage() for r in caplog.records if "skipping unreadable" in r.getMessage()]
    assert warned and all(f"{lab / 'gt' / 'l1.png'}: a symbolic link to nothing" in w for w in warned), warned
    records = list((out / "checkpoints").glob("step_*/train.json"))
    assert records and all(f"{lab / 'gt' / 'l1.png'}: a symbolic link to nothing" in r.read_text() for r in records)


def test_w4_scaled_syndof_refuses_an_upscale_beyond_its_max_coc(tmp_path, monkeypatch, capsys):
    """``scaled_syndof.py SRC --scale 3`` on a folder of σ 7 px (max_coc 29, σ_max 7) wrote σ 21 px under the same
    ``max_coc``: evaluate clipped its GT labels at 1 (σ 21 scored as 7), exit 0. Now exit 2 naming the σ map,
    nothing at ``--out``; ×0.5 and ×1 as before."""
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    src = tmp_path / "syn"
    (src / "image").mkdir(parents=True)
    (src / "blur_map").mkdir()
    sio.write_image(src / "image" / "s0.png", np.random.default_rng(0).random((20, 20, 3)).astype(np.float32))
    sio.write_sigma_map(src / "blur_map" / "s0.png", np.full((20, 20), 7.0, np.float32))
    (src / "dataset.json").write_text(json.dumps({"max_coc": 29}))
    assert scaled.main([str(src), "--scale", "3", "--out", str(tmp_path / "x3")]) == 2
    line = _error_line(capsys)
    assert str(src / "blur_map" / "s0.png") in line and "exceeds σ_max 7 px" in line
    assert not (tmp_path / "x3").exists()
    for scale in ("0.5", "1"):
        assert scaled.main([str(src), "--scale", scale, "--out", str(tmp_path / f"x{scale}")]) == 0


def _png_npy(png):
    """``np.save(png, mask)`` as a script would write a mask: numpy appends ``.npy`` (``STEM.png.npy``)."""
    mask = sio.read_raw(png) > 127
    png.unlink()
    np.save(png, mask)
    return png.with_name(png.name + ".npy")


def test_w5_a_mask_saved_as_stem_png_npy_is_named(tmp_path, caplog, capsys):
    """``gt/l0.png.npy`` for ``image/L0.JPG``: ``dmenet.calibrate`` (LabelledDataset, also ``train --labelled``) said
    ``1 image(s) without a mask in gt/``, ``evaluate`` ``unmatched files; 1 image(s) without GT``. Now each names
    the file and says to save it as ``l0.png``, exit 2, nothing written."""
    lab = write_labelled(tmp_path / "lab", count=2, size=(48, 64))
    npy = _png_npy(lab / "gt" / "l0.png")
    assert npy.exists()
    with pytest.raises(sio.InputError, match="save it as l0.png$"):
        LabelledDataset(lab)
    model = save_model(tmp_path / "m.safetensors", tiny_dmenet(), {})
    before = digests(tmp_path)
    assert calibrate.main(["dbd", "--model", str(model), "--labelled", str(lab), "--out",
                           str(tmp_path / "cal.safetensors")]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: {npy}: not read as the mask of L0.JPG: masks are image files")
    assert line.endswith("save it as l0.png") and digests(tmp_path) == before
    out = tmp_path / "ev"
    assert_logged_usage_error(evaluate.main, ["--benchmark", "cuhk", "--data", lab, "--method", "laplacian",
                                              "--wandb", "disabled", "--out", out], caplog,
                              f"{npy}: not read as the mask of L0.JPG", "save it as l0.png")
    assert not out.exists()
    preds = tmp_path / "preds"  # saved predictions: image L0 was left out unsaid (1 image scored, exit 0)
    for stem in ("l0", "l1"):
        sio.write_image(preds / f"{stem}.png", np.zeros((48, 64), np.uint8))
    assert_logged_usage_error(evaluate.main, ["--benchmark", "cuhk", "--data", lab, "--predictions", preds,
                                              "--wandb", "disabled", "--out", out], caplog,
                              f"{npy}: not read as the mask of L0.JPG", "save it as l0.png")
    assert not out.exists()
