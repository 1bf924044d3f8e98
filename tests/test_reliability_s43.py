"""docs/reliability.md §43 (6 Dec 2026): a mask or DBD GT saved in a format no reader reads (``STEM.npy``) is named
by every reader, not called missing: ``dmenet.train --labelled`` and ``dmenet.calibrate`` (``LabelledDataset``) said
"N image(s) without a mask in gt/", ``dmenet.evaluate`` "unmatched files; N image(s) without GT" (with a method) or
"no GT files" / nothing at all (with saved predictions). Now each says what Distill's trainer says (reliability.md
§42, one function: :func:`dmenet.eval.benchmarks.non_image_mask`): exit 2, one line naming the file, that masks are
image files, and the PNG to save; a ``.npy`` beside an image mask changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from hostile_helpers import assert_logged_usage_error, digests
from model_helpers import tiny_dmenet
from train_data_helpers import TINY, write_labelled, write_real

from dmenet import calibrate, evaluate, train
from dmenet.data import LabelledDataset
from dmenet.models.model_io import save_model
from syndof import io

SAVE = "masks are image files"


def _npy_for_png(png: Path) -> Path:
    """Replace the mask ``png`` by a bool ``.npy`` of the same stem (what a script might save); returns it."""
    mask = io.read_raw(png) > 127
    png.unlink()
    np.save(png.with_suffix(".npy"), mask)
    return png.with_suffix(".npy")


def test_train_labelled_names_a_npy_mask(tiny_syndof, tmp_path, caplog):
    """``dmenet.train --labelled LAB`` with ``gt/l1.npy`` for ``image/L1.JPG``: was ``LAB: 1 image(s) without a mask
    in gt/, e.g. L1.JPG``; now exit 2, one line naming ``gt/l1.npy`` and ``l1.png``, no run folder."""
    lab, real = write_labelled(tmp_path / "lab", count=2), write_real(tmp_path / "real", count=1)
    npy = _npy_for_png(lab / "gt" / "l1.png")
    before = digests(lab)
    out = tmp_path / "run"
    argv = ["--config", TINY, "--synthetic", tiny_syndof, "--real", real, "--labelled", lab, "--gt-polarity",
            "white-blurred", "--out", out, "--wandb", "disabled", "--device", "cpu", "--steps", "1"]
    line = assert_logged_usage_error(train.main, argv, caplog, f"{npy}: not read as the mask of L1.JPG", SAVE,
                                     "save it as l1.png")
    assert "without a mask" not in line and not out.exists() and digests(lab) == before


def test_labelled_dataset_names_the_first_npy_and_counts_the_others_and_a_npy_beside_a_png_changes_nothing(tmp_path):
    """The shared class of ``dmenet.train`` and ``dmenet.calibrate``: the first such file by stem is named with the
    count of the others; ``.npy`` files beside every PNG mask (inverse masks, which would flip the targets if read)
    leave the pairs and the loaded masks as they were; a photo with no mask file at all is still "without a mask"."""
    lab = write_labelled(tmp_path / "lab", count=3)
    plain = LabelledDataset(lab)
    loaded = [plain.load(i)["mask"] for i in range(len(plain))]
    for png in (lab / "gt").glob("*.png"):
        np.save(png.with_suffix(".npy"), io.read_raw(png) < 128)
    beside = LabelledDataset(lab)
    assert (beside.images, beside.masks) == (plain.images, plain.masks)
    assert all(np.array_equal(beside.load(i)["mask"], m) for i, m in enumerate(loaded))
    for stem in ("l1", "l2"):
        (lab / "gt" / f"{stem}.png").unlink()
    try:
        LabelledDataset(lab)
    except io.InputError as err:
        assert str(err).startswith(f"{lab / 'gt' / 'l1.npy'}: not read as the mask of L1.JPG: {SAVE}"), err
        assert str(err).endswith(f"save it as l1.png (and 1 other mask(s) of another format in {lab / 'gt'})"), err
    else:
        raise AssertionError("a photo whose mask is a .npy was accepted")
    (lab / "gt" / "l1.npy").unlink()
    (lab / "gt" / "l2.npy").unlink()
    try:
        LabelledDataset(lab)
    except io.InputError as err:
        assert "2 image(s) without a mask in gt/, e.g. L1.JPG" in str(err), err
    else:
        raise AssertionError("photos without a mask were accepted")


def test_calibrate_dbd_names_a_npy_mask(tmp_path, capsys):
    """``dmenet.calibrate dbd --labelled LAB`` (also ``head`` and ``feature-head``, the same class): was ``LAB: 1
    image(s) without a mask in gt/``; now exit 2 naming the ``.npy``, nothing written."""
    lab = write_labelled(tmp_path / "lab", count=2, size=(48, 64))
    npy = _npy_for_png(lab / "gt" / "l0.png")
    model = save_model(tmp_path / "m.safetensors", tiny_dmenet(), {})
    before = digests(tmp_path)
    out = tmp_path / "cal.safetensors"
    assert calibrate.main(["dbd", "--model", str(model), "--labelled", str(lab), "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: {npy}: not read as the mask of L0.JPG: {SAVE}"), err
    assert "save it as l0.png" in err[0] and digests(tmp_path) == before


def _cuhk(root: Path) -> Path:
    """A 3-image ``--benchmark cuhk`` folder (image/ + gt/, 16×16 px, the right half of each mask white)."""
    mask = np.zeros((16, 16), np.uint8)
    mask[:, 8:] = 255
    rng = np.random.default_rng(3)
    for stem in "abc":
        io.write_image(root / "image" / f"{stem}.png", rng.random((16, 16, 3)).astype(np.float32))
        io.write_image(root / "gt" / f"{stem}.png", mask)
        io.write_image(root.parent / "pred" / f"{stem}.png", np.repeat(mask[..., None], 3, axis=2))
    return root


def test_evaluate_names_a_npy_gt_with_a_method_and_with_saved_predictions(tmp_path, caplog):
    """``evaluate --benchmark cuhk`` with ``gt/b.npy``: was ``unmatched files; 1 image(s) without GT`` with a method,
    and with ``--predictions`` image b was left out unsaid (2 images scored, exit 0), or, every GT a ``.npy``, "no GT
    files"; ``--benchmark syndof_dbd`` (GT ``STEM_binary``) the same. Now exit 2 naming the file, nothing written."""
    cuhk = _cuhk(tmp_path / "cuhk")
    npy = _npy_for_png(cuhk / "gt" / "b.png")
    syn = tmp_path / "syn"
    shutil.copytree(cuhk / "image", syn / "image")
    (syn / "blur_map_binary").mkdir()
    for stem in "ac":
        shutil.copy(cuhk / "gt" / f"{stem}.png", syn / "blur_map_binary" / f"{stem}_binary.png")
    shutil.copy(npy, syn / "blur_map_binary" / "b_binary.npy")
    cases = [(["--benchmark", "cuhk", "--data", cuhk, "--method", "laplacian"], npy, "b.png"),
             (["--benchmark", "cuhk", "--data", cuhk, "--predictions", tmp_path / "pred"], npy, "b.png"),
             (["--benchmark", "syndof_dbd", "--data", syn, "--method", "laplacian"],
              syn / "blur_map_binary" / "b_binary.npy", "b_binary.png")]
    for i, (argv, named, png) in enumerate(cases):
        out = tmp_path / f"o{i}"
        line = assert_logged_usage_error(evaluate.main, [*argv, "--wandb", "disabled", "--out", out], caplog,
                                         f"{named}: not read as the mask of b.png: {SAVE}", f"save it as {png}")
        assert "unmatched" not in line and not out.exists()
    for stem in "ac":  # every GT a .npy, scoring saved predictions: was "no GT files"
        _npy_for_png(cuhk / "gt" / f"{stem}.png")
    assert_logged_usage_error(evaluate.main, [*cases[1][0], "--wandb", "disabled", "--out", tmp_path / "o9"], caplog,
                              f"{cuhk / 'gt' / 'a.npy'}: not read as the mask of a.png: {SAVE}",
                              f"(and 2 other mask(s) of another format in {cuhk / 'gt'})")


def test_evaluate_scores_the_same_with_a_npy_beside_each_png_gt(tmp_path):
    """``.npy`` files beside the PNG masks (inverse masks) are not read: the same images, the same scores."""
    cuhk = _cuhk(tmp_path / "cuhk")

    def scores(out: Path) -> dict:
        assert evaluate.main(["--benchmark", "cuhk", "--data", str(cuhk), "--predictions", str(tmp_path / "pred"),
                              "--wandb", "disabled", "--out", str(out)]) == 0
        meta = json.loads((out / "metrics.json").read_text())
        return meta["metrics"], meta["warnings"], (out / "per_image.csv").read_text()

    before = scores(tmp_path / "o1")
    for png in (cuhk / "gt").glob("*.png"):
        np.save(png.with_suffix(".npy"), io.read_raw(png) < 128)
    after = scores(tmp_path / "o2")
    assert before == after and before[0]["mae"] == 0.0 and before[2].count("\n") == 4  # 3 images, each its own GT
