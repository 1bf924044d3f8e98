"""reliability.md §49: one skip reason (``InputError.reason_for``), a public crop solver (``regionfill.solve_crop``),
SYNDOF σ maps of every format ``read_sigma_map`` reads paired by ``evaluate --benchmark syndof`` and the galetto
tools, and the two detection calibrators agreeing on an unreadable mask (skipped, recorded, said on stdout). Each
test failed with the old ``dmenet/`` and ``syndof/``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from syndof import io as sio


# ------------------------------------------------------------------------------------------- InputError.reason_for
def test_reason_for_gives_the_problem_of_the_item_itself_and_the_whole_line_of_another_file(tmp_path):
    """The error about the item itself: its problem alone (the skip line names the item once); about a companion
    file (its mask, its σ map): the whole ``PATH: problem``. ``item`` as str or Path, compared as paths: a Path and
    its text, ``./a.png`` and ``a.png``, ``d//a.png`` and ``d/a.png`` are one item."""
    err = sio.InputError(tmp_path / "image" / "a.png", "file is empty")
    for item in (tmp_path / "image" / "a.png", str(tmp_path / "image" / "a.png"), f"{tmp_path}//image/./a.png"):
        assert err.reason_for(item) == "file is empty", item
    other = tmp_path / "gt" / "a.png"
    assert err.reason_for(other) == err.reason_for(str(other)) == f"{tmp_path / 'image' / 'a.png'}: file is empty"
    rel = sio.InputError(Path("./sub/a.png"), "file not found")  # the reader's Path: "sub/a.png"
    assert rel.path == "sub/a.png" and rel.reason_for("./sub/a.png") == rel.reason_for("sub/a.png") == "file not found"
    assert rel.reason_for("sub/b.png") == "sub/a.png: file not found"


class _Described:
    """A stream dataset (``dmenet.data.stream.Dataset``) that names its samples by the paths it was given, as text
    (``./sub/a.png``), and reads them with ``read_image``, whose error names the file as ``Path`` writes it."""

    def __init__(self, names: list[str]):
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> dict:
        return {"image": sio.read_image(self.names[index]), "path": self.names[index]}

    def describe(self, index: int) -> str:
        return self.names[index]


def test_a_stream_skip_names_a_sample_given_as_dot_slash_path_once(tmp_path, monkeypatch):
    """``DomainStream`` compared the error's path with ``describe(i)`` as text: ``./sub/a.png`` (the sample) and
    ``sub/a.png`` (the reader's ``Path``) differed, so the photo's own problem was recorded as if of another file:
    ``./sub/a.png: sub/a.png: file not found``."""
    from dmenet.data.stream import DomainStream

    monkeypatch.chdir(tmp_path)
    sio.write_image(tmp_path / "sub" / "b.png", np.zeros((8, 8, 3), np.float32))
    stream = DomainStream(_Described(["./sub/a.png", "./sub/b.png"]), 1, 0,
                          lambda s, g: {"image": torch.from_numpy(s["image"])}, "test")
    for _ in range(2):
        stream.next_batch()
    assert stream.skipped == ["./sub/a.png: file not found"]


# ------------------------------------------------------------------------------------------- regionfill.solve_crop
def test_solve_crop_is_public_and_shared_by_the_reference_renderer():
    """``blur_reference`` imported the private ``_solve_crop``; one public name now, used by both modules."""
    from syndof import blur_reference, regionfill

    assert blur_reference.solve_crop is regionfill.solve_crop and not hasattr(regionfill, "_solve_crop")
    assert regionfill.solve_crop.__doc__ and "(h, w, C)" in regionfill.solve_crop.__doc__


def test_solve_crop_fills_as_regionfill_and_an_empty_region_is_a_copy():
    """On a crop with the region ≥ 1 px from its edges it is :func:`regionfill` per channel (float64); an all-False
    mask fills nothing (was an IndexError: ``deg[0]`` of no pixel)."""
    from syndof.regionfill import regionfill, solve_crop

    rng = np.random.default_rng(0)
    values = rng.random((9, 11, 2)).astype(np.float32)
    mask = np.zeros((9, 11), bool)
    mask[3:6, 4:8] = True
    out = solve_crop(values, mask)
    assert out.dtype == np.float64 and out.shape == values.shape
    for c in range(2):
        np.testing.assert_allclose(out[..., c], regionfill(values[..., c], mask), atol=1e-12)
    np.testing.assert_array_equal(out[~mask], values[~mask].astype(np.float64))
    empty = solve_crop(values, np.zeros((9, 11), bool))
    assert empty.dtype == np.float64 and np.array_equal(empty, values.astype(np.float64))


# ------------------------------------------------------------------------------------------- SYNDOF σ formats
def _syndof(root: Path, suffix: str) -> Path:
    """Renders a, b (24×32) and their σ maps (multiples of 0.1 px, so a PNG's round(10·σ) keeps them) as
    ``blur_map/STEM{suffix}``: a 16-bit PNG, a 16-bit TIFF or a float32 .npy."""
    import cv2

    rng = np.random.default_rng(3)
    for stem in ("a", "b"):
        sio.write_image(root / "image" / f"{stem}.png", rng.random((24, 32, 3)).astype(np.float32))
        tenths = rng.integers(0, 60, (24, 32)).astype(np.uint16)
        path = root / "blur_map" / f"{stem}{suffix}"
        if suffix == ".tif":
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), tenths)
        else:
            sio.write_sigma_map(path, tenths.astype(np.float32) / 10)
    return root


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_evaluate_syndof_scores_sigma_maps_of_every_format_read_sigma_map_reads(tmp_path, suffix):
    """``evaluate --benchmark syndof`` paired ``blur_map/`` by .jpg .jpeg .png .bmp: a folder whose σ maps are
    .npy (``write_sigma_map``'s other format) or 16-bit .tif, both read by ``read_sigma_map``, was refused as
    "unmatched files; 2 image(s) without GT". Now paired, and scored as the same maps saved as PNG."""
    from dmenet import evaluate

    scores = {}
    for name in (".png", suffix):
        data = _syndof(tmp_path / f"syn{name}", name)
        out = tmp_path / f"out{name}"
        assert evaluate.main(["--benchmark", "syndof", "--data", str(data), "--method", "laplacian", "--out",
                              str(out), "--wandb", "disabled"]) == 0
        scores[name] = json.loads((out / "metrics.json").read_text())["metrics"]
    assert scores[suffix]["n_images"] == 2 and scores[suffix] == pytest.approx(scores[".png"], abs=1e-9)


def test_syndof_sigma_map_pairs_pairs_npy_maps(tmp_path):
    """``sigma_map_pairs`` (``galetto.build_patches --syndof``, ``galetto.select``, ``galetto.compare``) listed
    ``blur_map/`` by image suffixes: ``blur_map/a.npy`` was "no σ map for it"."""
    from dmenet.eval.syndof_test import sigma_map_pairs

    root = _syndof(tmp_path / "syn", ".npy")
    assert [(s, r.name, m.name) for s, r, m in sigma_map_pairs(root)] == [("a", "a.png", "a.npy"),
                                                                          ("b", "b.png", "b.npy")]


# ------------------------------------------------------------------------------------------- calibrators agree
def _labelled_with_bad_mask(root: Path) -> Path:
    """Three 36×40 photos with right-half masks; ``gt/b.png`` is no image."""
    rng = np.random.default_rng(5)
    mask = np.zeros((36, 40), np.uint8)
    mask[:, 20:] = 255
    for stem in ("a", "b", "c"):
        sio.write_image(root / "image" / f"{stem}.png", rng.random((36, 40, 3)).astype(np.float32))
        sio.write_image(root / "gt" / f"{stem}.png", mask)
    (root / "gt" / "b.png").write_bytes(b"not a png")
    return root


BAD_MASK = "cannot decode image (unreadable, truncated or unsupported format)"


def test_calibrate_dbd_says_a_skipped_mask_on_stdout(tmp_path, capsys, caplog):
    """``dmenet.calibrate dbd`` skipped a photo whose mask is unreadable with a warning and its history's
    ``skipped`` list, and said nothing on stdout: the fit on 2 of 3 photos read as a fit on the folder."""
    from dmenet import calibrate
    from dmenet.models.model_io import load_model_file, save_model
    from model_helpers import tiny_dmenet

    lab = _labelled_with_bad_mask(tmp_path / "lab")
    save_model(tmp_path / "m", tiny_dmenet(0), {})
    line = f"{lab / 'gt' / 'b.png'}: {BAD_MASK}"
    assert calibrate.main(["dbd", "--model", str(tmp_path / "m.safetensors"), "--labelled", str(lab), "--flips", "1",
                           "--out", str(tmp_path / "fit")]) == 0
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == [f"skipped {line}"]
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'fit.safetensors'}: fitted without 1 input(s) it could not use, listed under \"skipped\" in "
        f"{tmp_path / 'fit.json'}: {line}"]
    result = load_model_file(tmp_path / "fit")[1]["history"][-1]["result"]
    assert result["skipped"] == [line] and result["images"] == ["a.png", "c.png"]


def _galetto_model(tmp_path: Path) -> Path:
    from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
    from dmenet.galetto.train import save_classifier

    torch.manual_seed(0)
    save_classifier(tmp_path / "tiny", BlurClassifier(ClassifierConfig(width=0.25, head_channels=16, blocks=2)))
    return tmp_path / "tiny.safetensors"


def test_galetto_calibrate_skips_an_unreadable_mask_as_calibrate_dbd(tmp_path, capsys, caplog):
    """``dmenet.galetto.calibrate`` refused the folder ``calibrate dbd`` fits on (exit 2, ``error: …/gt/b.png:
    cannot decode image …``). Both skip now: the same ``skipped PATH: reason`` line, recorded (``skipped`` in
    ``OUT.json``, the images fitted on listed) and said on stdout."""
    from dmenet.galetto import calibrate

    lab = _labelled_with_bad_mask(tmp_path / "lab")
    line = f"{lab / 'gt' / 'b.png'}: {BAD_MASK}"
    assert calibrate.main(["--benchmark", "cuhk", "--data", str(lab), "--model", str(_galetto_model(tmp_path)),
                           "--method", "galetto:stride=16", "--out", str(tmp_path / "fit")]) == 0
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == [f"skipped {line}"]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith(f"{tmp_path / 'fit.safetensors'}: blur = sigmoid(")
    assert out[1] == (f"{tmp_path / 'fit.safetensors'}: fitted without 1 input(s) it could not use, listed under "
                      f"\"skipped\" in {tmp_path / 'fit.json'}: {line}")
    entry = json.loads((tmp_path / "fit.json").read_text())["detection"]
    assert entry["skipped"] == [line] and entry["images"] == ["a.png", "c.png"] and entry["n_images"] == 2


def test_galetto_calibrate_refuses_a_folder_without_a_readable_mask_and_a_mask_of_another_size(tmp_path, capsys):
    """What stays a refusal (exit 2, one line naming the file, nothing written), as in ``calibrate dbd``: no
    labelled photo left to fit on, or a mask whose size is not its photo's."""
    from dmenet.galetto import calibrate

    lab = _labelled_with_bad_mask(tmp_path / "lab")
    model = _galetto_model(tmp_path)
    base = ["--benchmark", "cuhk", "--data", str(lab), "--model", str(model), "--method", "galetto:stride=16"]
    assert calibrate.main([*base, "--include", "b", "--out", str(tmp_path / "f")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert err == [f"error: {lab / 'gt' / 'b.png'}: {BAD_MASK} (no readable labelled sample: all 1 skipped; nothing "
                   "was written)"]
    sio.write_image(lab / "gt" / "b.png", np.zeros((30, 40), np.uint8))
    assert calibrate.main([*base, "--out", str(tmp_path / "g")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(f"error: {lab / 'image' / 'b.png'}: image is 40x36 but its GT"), err
    assert not list(tmp_path.glob("[fg].*"))
