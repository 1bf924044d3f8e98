"""reliability.md §50: the fourteenth review (7 Dec 2026) of §48–§49's max_coc reader, skip reasons, SYNDOF σ-map
formats and calibration skips, run as a user meets them. Each test failed with the old ``dmenet/``: ``calibrate
sigma`` read only ``blur_map/STEM.png``; ``galetto.calibrate`` counted the skipped negatives among the fitting
images, fitted without any negative when none could be read, and stopped on a photo under the classifier's window
naming no file; ``calibrate bn`` recorded no skipped photo and fewer crops than its record says; ``build_patches
--syndof`` looked for a render's meta file under its lower-case stem."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from syndof import io as sio

BAD = "cannot decode image (unreadable, truncated or unsupported format)"


# ------------------------------------------------------------------------------------------- calibrate sigma
def _syndof(root: Path, suffixes: dict[str, str]) -> Path:
    """Renders (32×40) of the stems of ``suffixes``, each σ map saved as ``blur_map/STEM{suffix}`` (PNG or .npy:
    multiples of 0.1 px, so the PNG's round(10·σ) keeps them)."""
    rng = np.random.default_rng(4)
    for stem, suffix in suffixes.items():
        sio.write_image(root / "image" / f"{stem}.png", rng.random((32, 40, 3)).astype(np.float32))
        sigma = rng.integers(0, 60, (32, 40)).astype(np.float32) / 10
        path = root / "blur_map" / f"{stem}{suffix}"
        if suffix.lower() == ".npy":
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(root / "blur_map" / f"{stem}.npy", sigma)
            (root / "blur_map" / f"{stem}.npy").rename(path)
        else:
            sio.write_sigma_map(path, sigma)
    return root


def test_calibrate_sigma_pairs_sigma_maps_of_every_format_evaluate_reads(tmp_path, capsys, caplog):
    """``calibrate sigma`` looked for ``blur_map/STEM.png`` only: a SYNDOF folder of ``.npy`` σ maps (scored by
    ``evaluate --benchmark syndof``, trained on by ``dmenet.train``) was ``skipped …/blur_map/a.png: file not found``
    for every render, then refused (a folder mixing formats was fitted on its PNG renders alone, exit 0). Now every
    format ``read_sigma_map`` reads is paired (``a.NPY`` too), the fit equal to the PNG folder's; two maps of one stem
    are refused naming them, as evaluate refuses them."""
    from dmenet import calibrate
    from dmenet.models.model_io import load_model_file, save_model
    from model_helpers import tiny_dmenet

    save_model(tmp_path / "m", tiny_dmenet(0), {})
    model = str(tmp_path / "m.safetensors")
    results = {}
    for name, suffixes in (("png", {"a": ".png", "b": ".png"}), ("npy", {"a": ".NPY", "b": ".npy"})):
        data = _syndof(tmp_path / name, suffixes)
        caplog.clear()
        assert calibrate.main(["sigma", "--model", model, "--data", str(data), "--flips", "1", "--values", "4",
                               "--min-pixels", "10", "--out", str(tmp_path / f"fit_{name}")]) == 0, name
        assert not [r for r in caplog.records if r.getMessage().startswith("skipped")], name
        results[name] = load_model_file(tmp_path / f"fit_{name}")[1]["history"][-1]["result"]
        assert results[name]["n_images"] == 2 and results[name]["skipped"] == [], name
    assert {k: results["npy"][k] for k in ("fit_label_mae_before", "pixels_per_value")} == {
        k: results["png"][k] for k in ("fit_label_mae_before", "pixels_per_value")}
    np.save(tmp_path / "png" / "blur_map" / "a.npy", np.zeros((32, 40), np.float32))
    capsys.readouterr()
    assert calibrate.main(["sigma", "--model", model, "--data", str(tmp_path / "png"), "--flips", "1",
                           "--out", str(tmp_path / "dup")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "duplicate stem: a.npy and a.png" in err[0], err
    assert not list(tmp_path.glob("dup*"))


# ------------------------------------------------------------------------------------------- galetto.calibrate
def _galetto_model(tmp_path: Path) -> Path:
    from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
    from dmenet.galetto.train import save_classifier

    torch.manual_seed(0)
    save_classifier(tmp_path / "tiny", BlurClassifier(ClassifierConfig(width=0.25, head_channels=16, blocks=2)))
    return tmp_path / "tiny.safetensors"


def _labelled(root: Path, stems=("a", "b")) -> Path:
    rng = np.random.default_rng(5)
    mask = np.zeros((36, 40), np.uint8)
    mask[:, 20:] = 255
    for stem in stems:
        sio.write_image(root / "image" / f"{stem}.png", rng.random((36, 40, 3)).astype(np.float32))
        sio.write_image(root / "gt" / f"{stem}.png", mask)
    return root


def _sharp(root: Path, stems, unreadable=()) -> Path:
    rng = np.random.default_rng(6)
    root.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        sio.write_image(root / f"{stem}.png", rng.random((36, 40, 3)).astype(np.float32))
    for stem in unreadable:
        (root / f"{stem}.png").write_bytes(b"not a png")
    return root


def test_galetto_calibrate_counts_the_negatives_it_fitted_on_and_refuses_when_none_read(tmp_path, capsys):
    """A skipped negative was still counted as fitted: ``on the 4 fitting images (3 sharp everywhere)`` for 2 of 3
    read; with every negative unreadable the fit ran without any (exit 0) while ``OUT.json`` recorded ``3 samples
    found in …, all-sharp masks`` and stdout said ``(2 sharp everywhere)``. Now the count is of the negatives read,
    and none read is refused (exit 2, one line naming the first, nothing written)."""
    from dmenet.galetto import calibrate

    lab = _labelled(tmp_path / "lab")
    base = ["--benchmark", "cuhk", "--data", str(lab), "--model", str(_galetto_model(tmp_path)), "--method",
            "galetto:stride=16"]
    neg = _sharp(tmp_path / "neg", ["n0", "n2"], unreadable=["n1"])
    assert calibrate.main([*base, "--negatives", str(neg), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert " on the 4 fitting images (2 sharp everywhere) " in out[0], out[0]
    entry = json.loads((tmp_path / "f.json").read_text())["detection"]
    assert entry["images"] == ["a.png", "b.png", "n0.png", "n2.png"] and entry["n_images"] == 4
    assert entry["skipped"] == [f"{neg / 'n1.png'}: {BAD}"]
    bad = _sharp(tmp_path / "bad", [], unreadable=["m0", "m1"])
    assert calibrate.main([*base, "--negatives", str(bad), "--out", str(tmp_path / "g")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [ln for ln in captured.err.splitlines() if ln.startswith("error:")] == [
        f"error: {bad / 'm0.png'}: {BAD} (no readable --negatives photo: all 2 skipped; nothing was written)"]
    assert not list(tmp_path.glob("g.*"))


def test_galetto_calibrate_skips_a_photo_under_the_classifier_window_naming_it(tmp_path, capsys, caplog):
    """A 12×10 labelled photo (under the 32-px window) ended the fit after every σ map before it: ``error: image is
    too small: 12x10 px (at least 32 px a side)``, no file named, exit 2. Now it is skipped as an unreadable one is:
    its line names it, ``OUT.json`` lists it, stdout counts it."""
    from dmenet.galetto import calibrate

    lab = _labelled(tmp_path / "lab")
    sio.write_image(lab / "image" / "s.png", np.random.default_rng(0).random((10, 12, 3)).astype(np.float32))
    small = np.zeros((10, 12), np.uint8)
    small[:, 6:] = 255
    sio.write_image(lab / "gt" / "s.png", small)
    line = f"{lab / 'image' / 's.png'}: image is too small: 12x10 px (at least 32 px a side)"
    assert calibrate.main(["--benchmark", "cuhk", "--data", str(lab), "--model", str(_galetto_model(tmp_path)),
                           "--method", "galetto:stride=16", "--out", str(tmp_path / "f")]) == 0
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == [f"skipped {line}"]
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{tmp_path / 'f.safetensors'}: fitted without 1 input(s) it could not use, listed under \"skipped\" in "
        f"{tmp_path / 'f.json'}: {line}")
    entry = json.loads((tmp_path / "f.json").read_text())["detection"]
    assert entry["skipped"] == [line] and entry["images"] == ["a.png", "b.png"]


# ------------------------------------------------------------------------------------------- calibrate bn
def test_calibrate_bn_records_its_skips_and_uses_the_crops_its_record_says(tmp_path, capsys):
    """``calibrate bn`` said an unreadable photo on stderr only: no ``skipped`` in the history entry, no stdout line
    (the other steps have both since §49). And on a folder of mostly small photos its 10·``--crops`` draws gave
    fewer crops than asked: 2 of 4 here, one batch of 2, while the recipe's ``moving_stats`` said ``4 crops of 32 px
    per domain``. Now the skip is recorded and said, and the draws go on until the crops asked for."""
    from dmenet import calibrate
    from dmenet.models.model_io import load_model_file, save_model
    from model_helpers import tiny_dmenet

    save_model(tmp_path / "m", tiny_dmenet(0), {})
    real = tmp_path / "real"
    rng = np.random.default_rng(0)
    for i in range(15):
        sio.write_image(real / f"s{i:02d}.png", rng.random((16, 16, 3)).astype(np.float32))
    sio.write_image(real / "big.png", rng.random((36, 40, 3)).astype(np.float32))
    (real / "bad.png").write_bytes(b"not a png")
    assert calibrate.main(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "moving", "--real",
                           str(real), "--crops", "4", "--crop", "32", "--batch", "2", "--detection", "follow",
                           "--out", str(tmp_path / "b")]) == 0
    line = f"{real / 'bad.png'}: {BAD}"
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'b.safetensors'}: fitted without 1 input(s) it could not use, listed under \"skipped\" in "
        f"{tmp_path / 'b.json'}: {line}"]
    result = load_model_file(tmp_path / "b")[1]["history"][-1]["result"]
    assert result["skipped"] == [line] and result["batches"] == 2
    assert "(4 crops of 32 px per domain" in result["moving_stats"]


def test_random_crops_reads_an_unusable_photo_once_and_gives_the_crops_asked_for(tmp_path, monkeypatch):
    """A photo smaller than the crop was read again at each draw; with one usable photo among 16 the 40 draws of 4
    crops gave 2. Now 4, and each small photo is read once."""
    from dmenet.training import recalibrate

    rng = np.random.default_rng(1)
    paths = []
    for i in range(15):
        paths.append(tmp_path / f"s{i:02d}.png")
        sio.write_image(paths[-1], rng.random((16, 16, 3)).astype(np.float32))
    paths.append(tmp_path / "big.png")
    sio.write_image(paths[-1], rng.random((36, 40, 3)).astype(np.float32))
    reads = []
    real_read = recalibrate.sio.read_image
    monkeypatch.setattr(recalibrate.sio, "read_image", lambda p, **k: reads.append(p) or real_read(p, **k))
    crops = recalibrate.random_crops(paths, 4, 32, np.random.default_rng(0))
    assert len(crops) == 4 and all(c.shape == (32, 32, 3) for c in crops)
    assert sorted(set(reads)) == sorted(paths) and reads.count(paths[-1]) == 4 and len(reads) == 15 + 4
    with pytest.raises(ValueError, match="no usable image of at least 32² px among 15 files"):
        recalibrate.random_crops(paths[:15], 4, 32, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------- build_patches --syndof
def test_build_patches_syndof_reads_the_meta_file_of_a_render_stem_in_upper_case(tmp_path):
    """``syndof_inputs`` built ``meta/{stem}.json`` from the pairing's lower-case key: a render of a source named
    ``Alley`` (``000000_Alley.png``, meta ``000000_Alley.json``) was ``render without its meta/ file``. Now the
    render's own stem is read and recorded."""
    from dmenet.galetto.build_patches import syndof_inputs

    renders, sources = tmp_path / "r", tmp_path / "src"
    for stem, source in (("000000_Alley", "Alley"), ("000001_b", "b")):
        sio.write_image(sources / f"{source}.png", np.zeros((32, 32, 3), np.float32))
        sio.write_image(renders / "image" / f"{stem}.png", np.zeros((32, 32, 3), np.float32))
        sio.write_sigma_map(renders / "blur_map" / f"{stem}.npy", np.zeros((32, 32), np.float32))
        sio.write_json_atomic(renders / "meta" / f"{stem}.json", {"source_name": source})
    rows = syndof_inputs(renders, sources)
    assert [(s, r.name, m.name, p.name) for s, r, m, p in rows] == [
        ("000000_Alley", "000000_Alley.png", "000000_Alley.npy", "Alley.png"), ("000001_b", "000001_b.png",
                                                                                "000001_b.npy", "b.png")]


@pytest.mark.timeout(60)
def test_random_crops_stops_when_the_photo_that_gave_a_crop_becomes_unreadable(tmp_path, monkeypatch):
    """Draws go on after a first crop (X6) only while some photo is still usable: one that gave a crop and then cannot
    be read (removed mid-run) ends the draws with the crops got, where the loop never ended."""
    from dmenet.training import recalibrate

    path = tmp_path / "a.png"
    sio.write_image(path, np.full((40, 40, 3), 128, np.uint8))
    real_read, reads = recalibrate.sio.read_image, []

    def read_once(p, **k):
        reads.append(p)
        if len(reads) > 1:
            raise sio.InputError(p, "file not found")
        return real_read(p, **k)

    monkeypatch.setattr(recalibrate.sio, "read_image", read_once)
    skipped: list[str] = []
    crops = recalibrate.random_crops([path], 4, 32, np.random.default_rng(0), skipped)
    assert len(crops) == 1 and len(reads) == 2 and skipped == [f"{path}: file not found"]
