"""Hostile inputs of the Galetto & Deng training commands: a second writer into a run folder, a resume on another
patch set, damaged checkpoints, unreadable photos in a batch, bad option and key values, patch files of the wrong
shape, a SYNDOF test set with no window. Each refusal is exit 2 with one ``error:`` line naming the file or option
and leaves every existing file as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from dmenet.galetto import build_patches
from dmenet.galetto.train import main as train_main
from syndof import io as sio
from galetto_helpers import build, one_error_line, write_bsds_like

TINY_TRAIN = ["--config", "experiments/galetto_tiny.yaml", "--threads", "1", "--set", "model.blocks=2",
              "model.head_channels=16"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys) -> str:
    """The one ``error:`` line of stderr (``skipped`` and ``warning`` lines aside); no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("warning:", "skipped "))]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def fake_patches(folder: Path, n: int = 12, seed: int = 0, shape: tuple[int, int] = (32, 32)) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for name in ("train", "val"):
        np.savez(folder / f"{name}.npz", patches=rng.integers(0, 255, (n, 20, *shape), dtype=np.uint8))
    return folder


def train(patches: Path, out: Path, *extra: str) -> int:
    sets = [e for e in extra if "=" in e]
    flags = [e for e in extra if "=" not in e]
    return train_main(TINY_TRAIN + sets + ["--patches", str(patches), "--out", str(out), *flags])


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory):
    """A finished 2-step run (train.steps=2) on its patch set: (patches, run); tests copy the run before changing it."""
    root = tmp_path_factory.mktemp("run")
    data = fake_patches(root / "p")
    assert train(data, root / "run", "train.steps=2") == 0
    return data, root / "run"


# ----------------------------------------------------------------------------------------------- 1: one writer
def test_train_refuses_an_out_folder_another_process_holds(tmp_path, capsys):
    data = fake_patches(tmp_path / "p")
    run = tmp_path / "run"
    with sio.folder_lock(run, "--out"):
        assert train(data, run, "train.steps=2") == 2
        line = error_line(capsys)
        assert "--out" in line and str(run) in line
        assert list(run.iterdir()) == []  # nothing written while the other writer holds it
    assert train(data, run, "train.steps=2") == 0  # released: the folder (still empty) takes the run
    assert (run / "last.json").is_file()
    capsys.readouterr()
    assert train(data, run, "train.steps=2") == 2  # and an existing run is still refused (naming --resume)
    assert "--resume" in error_line(capsys)


# ------------------------------------------------------------------------------------------ 2: the patch set
def test_resume_refuses_another_patch_set(two_step_run, tmp_path, capsys):
    data, finished = two_step_run
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    assert json.loads((run / "patches.json").read_text())["path"] == str(data.resolve())
    before = snapshot(run)
    other = fake_patches(tmp_path / "other", seed=1)
    capsys.readouterr()
    assert train(other, run, "train.steps=4", "--resume") == 2
    line = error_line(capsys)
    assert "--patches" in line and "train.npz" in line and "val.npz" in line and str(data.resolve()) in line
    assert snapshot(run) == before
    # only val.npz rebuilt: still another set
    mixed = tmp_path / "mixed"
    shutil.copytree(data, mixed)
    shutil.copy(other / "val.npz", mixed / "val.npz")
    assert train(mixed, run, "train.steps=4", "--resume") == 2
    line = error_line(capsys)
    assert "val.npz" in line and "train.npz" not in line.split("differ")[0]
    assert snapshot(run) == before
    # a moved copy of the same files is the same set
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    assert train(moved, run, "train.steps=4", "--resume") == 0
    assert json.loads((run / "last.json").read_text())["step"] == 4


def test_run_without_a_patch_record_still_resumes(two_step_run, tmp_path):
    """A run written before patches.json existed records no patch set: it resumes (unchecked)."""
    data, finished = two_step_run
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "patches.json").unlink()
    assert train(data, run, "train.steps=4", "--resume") == 0
    assert json.loads((run / "last.json").read_text())["step"] == 4


# ------------------------------------------------------------------------------------ 3: damaged checkpoints
def _damage_json(run: Path, change) -> None:
    meta = json.loads((run / "last.json").read_text())
    change(meta)
    (run / "last.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage, names", [
    (lambda m: m.pop("opt"), ("last.json", "'opt'")),
    (lambda m: m.pop("step"), ("last.json", "step")),
    (lambda m: m.update(step=-1), ("last.json", "step -1")),
    (lambda m: m.update(step=1.5), ("last.json", "step 1.5")),
    (lambda m: m.update(step=3), ("last.json", "step 3")),  # above the run's train.steps 2
    (lambda m: m.update(step=True), ("last.json", "step True")),
    (lambda m: m["opt"].pop("param_groups"), ("last.json", "opt")),
    ("gen", ("last.safetensors", "'gen'")),
    ("exp_avg", ("last.safetensors", "opt.state.0.exp_avg")),
])
def test_damaged_checkpoint_is_one_line_naming_file_and_key(two_step_run, tmp_path, capsys, damage, names):
    data, finished = two_step_run
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    if isinstance(damage, str):
        tensors = load_file(str(run / "last.safetensors"))
        tensors.pop("gen" if damage == "gen" else "opt.state.0.exp_avg")
        save_file(tensors, str(run / "last.safetensors"))
    else:
        _damage_json(run, damage)
    before = snapshot(run)
    capsys.readouterr()
    assert train(data, run, "train.steps=2", "--resume") == 2
    line = error_line(capsys)
    assert all(name in line for name in names), line
    assert snapshot(run) == before


# ------------------------------------------------------------------------------------- 4: unreadable photos
@pytest.fixture()
def photos(tmp_path):
    return write_bsds_like(tmp_path / "bsds")


def _bad_photos(folder: Path) -> list[Path]:
    rng = np.random.default_rng(5)
    sio.write_image(folder / "a_one_pixel.png", rng.random((1, 1, 3)))
    sio.write_image(folder / "b_small.png", rng.random((20, 40, 3)))  # readable, smaller than one window
    ok, jpeg = cv2.imencode(".jpg", (rng.random((120, 160, 3)) * 255).astype(np.uint8))
    (folder / "c_truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 3])
    (folder / "d_empty.png").write_bytes(b"")
    (folder / "e_text.png").write_text("not an image\n")
    return sorted(p for p in folder.iterdir() if p.stem[0] in "abcde")


def test_build_patches_skips_unreadable_photos_and_builds_the_rest(photos, tmp_path, capsys):
    clean = tmp_path / "clean"
    assert build(photos, clean) == 0
    bad = _bad_photos(photos / "train") + _bad_photos(photos / "test")
    capsys.readouterr()
    out = tmp_path / "set"
    assert build(photos, out) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" not in err
    skipped = [ln for ln in err.splitlines() if ln.startswith("skipped ")]
    assert len(skipped) == len(bad) == 10
    for path in bad:
        assert sum(ln.startswith(f"skipped {path}: ") for ln in skipped) == 1
    # the set is that of the usable photos, byte for byte; split.json lists what was skipped
    for name in ("train.npz", "val.npz", "test.npz"):
        a, b = np.load(clean / name), np.load(out / name)
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    split, split_clean = (json.loads((d / "split.json").read_text()) for d in (out, clean))
    assert {k: split[k] for k in ("train", "val", "test")} == {k: split_clean[k] for k in ("train", "val", "test")}
    assert sorted(split["skipped"]) == sorted(str(p) for p in bad)


def test_build_patches_refuses_when_no_usable_photo_is_left(photos, tmp_path, capsys):
    for p in (photos / "test").iterdir():
        p.write_bytes(b"")
    out = tmp_path / "set"
    assert build(photos, out) == 2
    err = capsys.readouterr().err
    assert sum(ln.startswith("skipped ") for ln in err.splitlines()) == 2
    lines = [ln for ln in err.splitlines() if not ln.startswith("skipped ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "test" in lines[0]
    assert not out.exists() and not any(".part-" in p.name for p in tmp_path.iterdir())


def test_h90_build_patches_skips_each_photo_name_that_is_no_file_and_records_it(photos, tmp_path, capsys):
    """A symbolic link loop, a link to nothing or a FIFO named like a photo in ``--photos``' train/, val/ or test/ was
    left out unsaid (split.json's ``skipped`` empty): skipped with one line each before the split is drawn and
    listed under ``skipped``, as an unreadable photo is; the set is the clean folder's, byte for byte."""
    import os

    clean = tmp_path / "clean"
    assert build(photos, clean) == 0
    (photos / "train" / "a.png").symlink_to("nowhere.png")
    (photos / "val" / "x.png").symlink_to("y.png")
    (photos / "val" / "y.png").symlink_to("x.png")
    os.mkfifo(photos / "test" / "f.png")
    capsys.readouterr()
    out = tmp_path / "set"
    assert build(photos, out) == 0
    err = capsys.readouterr().err
    loop = "a symbolic link loop (too many levels of symbolic links)"
    reasons = {str(photos / "train" / "a.png"): "a symbolic link to nothing", str(photos / "val" / "x.png"): loop,
               str(photos / "val" / "y.png"): loop,
               str(photos / "test" / "f.png"): "not a regular file (a FIFO, socket or device)"}
    assert [ln for ln in err.splitlines() if ln.startswith("skipped ")] == [f"skipped {p}: {r}"
                                                                          for p, r in reasons.items()], err
    split, split_clean = (json.loads((d / "split.json").read_text()) for d in (out, clean))
    assert split["skipped"] == reasons
    assert {k: split[k] for k in ("train", "val", "test")} == {k: split_clean[k] for k in ("train", "val", "test")}
    for name in ("train.npz", "val.npz", "test.npz"):
        a, b = np.load(clean / name), np.load(out / name)
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_h94_build_patches_warns_once_per_animated_photo(photos, tmp_path, recwarn):
    """An animated photo warned twice in one run (``usable_photos`` reads each photo, ``patches_of`` again): once
    now, from the first read."""
    from PIL import Image

    from syndof.frames import FirstFrameWarning

    rng = np.random.default_rng(7)
    frames = [Image.fromarray((rng.random((120, 160, 3)) * 255).astype(np.uint8)) for _ in range(3)]
    frames[0].save(photos / "train" / "moving.gif", save_all=True, append_images=frames[1:])
    assert build(photos, tmp_path / "set") == 0
    assert [str(w.message) for w in recwarn if w.category is FirstFrameWarning] == [
        f"{photos / 'train' / 'moving.gif'}: an animated GIF of 3 frames: only the first is read"]
    split = json.loads((tmp_path / "set" / "split.json").read_text())
    assert "moving" in split["train"] + split["val"]  # its first frame is a photo of the set


# ------------------------------------------------------------------------------------------- 5: bad values
@pytest.mark.parametrize("key", ["train.seed=-1", "train.threads=0"])
def test_train_refuses_bad_keys(tmp_path, capsys, key):
    data = fake_patches(tmp_path / "p")
    assert train(data, tmp_path / "run", key) == 2  # train.threads=0 beside --threads 1: refused, not overridden
    assert key.split("=")[0] in error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value", [("--smooth-sigma", "nan"), ("--smooth-sigma", "-1"), ("--phi", "-1"),
                                           ("--phi", "nan"), ("--max-range", "nan"), ("--max-range", "-1"),
                                           ("--seed", "-1")])
def test_build_patches_refuses_bad_values(photos, tmp_path, capsys, option, value):
    out = tmp_path / "set"
    with pytest.raises(SystemExit) as stop:  # argparse's refusal: one line, then SystemExit(2)
        build(photos, out, option, value)
    assert stop.value.code == 2
    assert option in error_line(capsys)
    assert not out.exists()


# ------------------------------------------------------------------------------------------ 6: patch shape
def test_train_refuses_patches_of_another_size(tmp_path, capsys):
    data = fake_patches(tmp_path / "p", shape=(16, 16))
    assert train(data, tmp_path / "run") == 2
    line = error_line(capsys)
    assert "train.npz" in line and "(12, 20, 16, 16)" in line
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------ 7, 8: --syndof
def _renders(root: Path, source: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    sio.write_image(root / "image" / "000000_src.png", rng.random((64, 64, 3)))
    sio.write_sigma_map(root / "blur_map" / "000000_src.png", np.full((64, 64), 2.0, np.float32))
    (root / "meta").mkdir()
    (root / "meta" / "000000_src.json").write_text(json.dumps({"source_name": "src"}))
    sio.write_image(root.parent / "photos" / "src.png", source)


def test_syndof_test_set_without_a_window_writes_nothing(tmp_path, capsys):
    _renders(tmp_path / "renders", np.full((64, 64, 3), 0.5))  # a flat source: no sharp window
    out = tmp_path / "out"
    assert build_patches.main(["--syndof", str(tmp_path / "renders"), "--sources", str(tmp_path / "photos"),
                               "--stride", "16", "--out", str(out)]) == 2
    assert "--syndof" in error_line(capsys)
    assert not out.exists()


def test_syndof_empty_render_names_it_once(tmp_path, capsys):
    _renders(tmp_path / "renders", np.random.default_rng(3).random((64, 64, 3)))
    render = tmp_path / "renders" / "image" / "000000_src.png"
    render.write_bytes(b"")
    out = tmp_path / "out"
    assert build_patches.main(["--syndof", str(tmp_path / "renders"), "--sources", str(tmp_path / "photos"),
                               "--out", str(out)]) == 2
    line = error_line(capsys)
    assert line.count(str(render)) == 1 and "empty" in line
    assert not out.exists()


def test_h96_syndof_skips_each_render_map_or_source_name_that_is_no_file_and_records_it(tmp_path, capsys):
    """``--syndof --sources``: the listings by stem left a render name that is no file to read out unsaid, and
    called a σ map or source photo that is none "no σ map for it" / "source photo not found" (exit 2). Each such
    render is skipped with one line and listed under ``skipped`` in syndof_test.json, as a render that cannot be
    decoded; the windows are the clean render's, byte for byte."""
    import os

    renders, photos = tmp_path / "renders", tmp_path / "photos"
    _renders(renders, np.random.default_rng(3).random((64, 64, 3)))
    clean = tmp_path / "clean"
    args = ["--syndof", str(renders), "--sources", str(photos), "--stride", "16"]
    assert build_patches.main([*args, "--out", str(clean)]) == 0
    good = renders / "image" / "000000_src.png"
    for stem, source in (("000001_src", "src"), ("000002_src", "src"), ("000003_oth", "oth")):
        if stem != "000001_src":
            shutil.copy(good, renders / "image" / f"{stem}.png")
        if stem != "000002_src":
            shutil.copy(renders / "blur_map" / "000000_src.png", renders / "blur_map" / f"{stem}.png")
        (renders / "meta" / f"{stem}.json").write_text(json.dumps({"source_name": source}))
    (renders / "image" / "000001_src.png").symlink_to("nowhere.png")  # the render
    os.mkfifo(renders / "blur_map" / "000002_src.png")  # the σ map
    (photos / "oth.png").symlink_to("oth2.png")  # the source photo
    (photos / "oth2.png").symlink_to("oth.png")
    capsys.readouterr()
    out = tmp_path / "set"
    assert build_patches.main([*args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    reasons = {str(renders / "image" / "000001_src.png"): "a symbolic link to nothing",
               str(renders / "image" / "000002_src.png"):
                   f"{renders / 'blur_map' / '000002_src.png'}: not a regular file (a FIFO, socket or device)",
               str(renders / "image" / "000003_oth.png"):
                   f"{photos / 'oth.png'}: a symbolic link loop (too many levels of symbolic links)"}
    assert [ln for ln in err.splitlines() if ln.startswith("skipped ")] == [f"skipped {p}: {r}"
                                                                          for p, r in reasons.items()], err
    assert json.loads((out / "syndof_test.json").read_text())["skipped"] == reasons
    a, b = np.load(clean / "syndof_test.npz"), np.load(out / "syndof_test.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_patch_record_and_lock_leave_resume_exact(tmp_path):
    """The lock and the patch record change nothing trained: 2 + 2 resumed steps equal 4 uninterrupted ones."""
    data = fake_patches(tmp_path / "p")
    assert train(data, tmp_path / "a") == 0
    assert train(data, tmp_path / "b", "train.steps=2") == 0
    assert train(data, tmp_path / "b", "--resume") == 0
    a, b = load_file(str(tmp_path / "a" / "last.safetensors")), load_file(str(tmp_path / "b" / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_n2_build_patches_names_the_layout_a_flat_photo_folder_lacks(photos, tmp_path, capsys):
    """``--photos`` of a flat folder of one's own photos (no train/ val/ test/) was "error: DIR/train: not a folder",
    not saying that the BSDS500 layout is wanted (reliability.md §23, N2)."""
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in (photos / "train").iterdir():
        shutil.copy(p, flat / p.name)
    out = tmp_path / "set"
    assert build(flat, out) == 2
    line = one_error_line(capsys)
    assert "--photos" in line and str(flat) in line and all(f"{part}/" in line for part in ("train", "val", "test"))
    assert not out.exists()
    shutil.rmtree(photos / "val")  # one sub-folder missing: named
    assert build(photos, out) == 2
    line = one_error_line(capsys)
    assert "no val/ sub-folder" in line and not out.exists()


def test_n4_a_run_s_last_checkpoint_given_as_the_model_names_the_run_s_model_file(two_step_run, tmp_path, capsys):
    """``predict --method galetto --model RUN/last.safetensors`` (the resume checkpoint; nothing said which file of a
    run is its model) was "RUN/last.json: not a galetto-classifier file" (reliability.md §23, N4)."""
    from dmenet.galetto.train import load_classifier
    from dmenet.models.model_io import ModelFileError

    _, run = two_step_run
    with pytest.raises(ModelFileError) as info:
        load_classifier(run / "last.safetensors")
    text = str(info.value)
    assert "training checkpoint" in text and str(run / "best.safetensors") in text
    load_classifier(run / "best.safetensors")  # the file it names is the model


@pytest.mark.parametrize("written", [True, False])
def test_m1_a_stopped_galetto_run_names_its_last_checkpoint_and_the_resume_command(tmp_path, monkeypatch, capsys,
                                                                                  written):
    """SIGTERM (143, unchanged) during galetto.train: one stderr line naming RUN/last.safetensors and the same command
    with --resume, or, before the first checkpoint, nothing to resume and the command to start again."""
    import os
    import shlex

    import dmenet.galetto.train as G

    patches, run = tmp_path / "patches", tmp_path / "run"
    patches.mkdir()
    for name in ("train.npz", "val.npz"):
        (patches / name).write_bytes(b"")

    def stopped(cfg, patches_dir, out, resume):
        Path(out).mkdir()
        if written:
            (Path(out) / "last.json").write_text("{}")
            (Path(out) / "last.safetensors").write_bytes(b"")
        raise SystemExit(143)

    monkeypatch.setattr(G, "train", stopped)
    argv = ["--config", "experiments/galetto_tiny.yaml", "--patches", str(patches), "--out", str(run)]
    with pytest.raises(SystemExit) as exc:
        train_main(argv)
    assert exc.value.code == 143
    line = capsys.readouterr().err.strip()
    if written:
        assert line == (f"stopped (SIGTERM): last checkpoint {run / 'last.safetensors'}; continue with: "
                        f"cd {shlex.quote(os.getcwd())} && "
                        f"{shlex.join(['python', '-m', 'dmenet.galetto.train', *argv, '--resume'])}")
    else:
        assert line == ("stopped (SIGTERM): no checkpoint written yet (nothing to --resume); start again with: "
                        f"cd {shlex.quote(os.getcwd())} && "
                        f"{shlex.join(['python', '-m', 'dmenet.galetto.train', *argv])}")
