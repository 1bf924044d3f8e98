"""python -m dmenet.calibrate never replaces or half-writes a model file: an --out that is an input (``average --run``
included), that exists (either file of the pair), that is a folder or whose folder cannot be written is refused
before any model is read (exit 2, one line naming it, every file as it was); and ``save_model`` writes the pair as
one (a failed sidecar write leaves no weights file behind)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dmenet import calibrate
from dmenet.models.model_io import load_model_file, save_model
from model_helpers import tiny_dmenet as _tiny


def _snapshot(root: Path) -> dict[str, str]:
    """Every path below ``root``: the SHA-256 of a file's bytes, ``"dir"`` for a folder."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def _refused(argv: list[str], capsys, names: str) -> str:
    """``calibrate argv`` exits 2 with one ``error:`` line that names ``names``; returns the line."""
    assert calibrate.main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    assert names in err[0], err
    return err[0]


@pytest.fixture
def no_work(monkeypatch):
    """Reading a model (the first piece of work of every step) fails the test."""
    monkeypatch.setattr(calibrate, "_load", lambda *a, **k: pytest.fail("a model was read before --out was checked"))


def _fake_run(root: Path, steps=(1, 2, 3)) -> None:
    from dmenet.config import dump_config, load_config
    from dmenet.training import checkpoint

    (root / "checkpoints").mkdir(parents=True)
    (root / "config.yaml").write_text(dump_config(load_config(None, ["train.keep_last=3"])))
    for step in steps:
        folder = root / "checkpoints" / f"step_{step:08d}"
        folder.mkdir()
        save_model(folder / "model", _tiny(step), {"step": step})
        checkpoint.update_pointers(root, folder, step, 1.0 / step, 3)


@pytest.mark.parametrize("suffix", [".safetensors", ".json", ""])
def test_average_run_refuses_an_out_that_is_one_of_its_checkpoints(tmp_path, capsys, no_work, suffix):
    run = tmp_path / "run"
    _fake_run(run)
    before = _snapshot(tmp_path)
    out = str(run / "checkpoints" / "step_00000002" / f"model{suffix}")
    _refused(["average", "--run", str(run), "--last", "2", "--out", out], capsys, out)
    assert _snapshot(tmp_path) == before


def test_average_run_refuses_its_checkpoint_through_a_symlinked_folder(tmp_path, capsys, no_work):
    run = tmp_path / "run"
    _fake_run(run)
    (tmp_path / "alias").symlink_to(run / "checkpoints" / "step_00000003")
    before = _snapshot(tmp_path)
    out = str(tmp_path / "alias" / "model.safetensors")
    _refused(["average", "--run", str(run), "--last", "2", "--out", out], capsys, "is an input")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("argv", [
    ["bn", "--model", "{m}", "--mode", "image"],
    ["sigma", "--model", "{m}", "--data", "{t}/syn"],
    ["dbd", "--model", "{m}", "--labelled", "{t}/lab"],
    ["head", "--model", "{m}", "--labelled", "{t}/lab"],
    ["feature-head", "--model", "{m}", "--labelled", "{t}/lab"],
    ["average", "--model", "{m}", "{t}/m2.safetensors"],
], ids=lambda a: a[0])
@pytest.mark.parametrize("existing", [".safetensors", ".json"])
def test_every_step_refuses_an_existing_out_before_any_work(tmp_path, capsys, monkeypatch, argv, existing):
    save_model(tmp_path / "m.safetensors", _tiny(), {})
    save_model(tmp_path / "m2.safetensors", _tiny(2), {})
    save_model(tmp_path / "cal" / "fh.safetensors", _tiny(1), {"earlier": "result"})
    if existing == ".json":  # only the sidecar is left of an earlier result: still refused
        (tmp_path / "cal" / "fh.safetensors").unlink()
    before = _snapshot(tmp_path)
    monkeypatch.setattr(calibrate, "_load", lambda *a, **k: pytest.fail("a model was read before --out was checked"))
    args = [a.format(m=tmp_path / "m.safetensors", t=tmp_path) for a in argv]
    out = tmp_path / "cal" / "fh.safetensors"
    _refused([*args, "--out", str(out)], capsys, str(out.with_suffix(existing)))
    assert _snapshot(tmp_path) == before


def test_an_existing_result_is_kept_byte_identical(tmp_path, capsys):
    """Not an input, but an earlier result: refused (it used to be replaced silently)."""
    save_model(tmp_path / "m.safetensors", _tiny(), {})
    out = str(tmp_path / "cal" / "fh.safetensors")
    assert calibrate.main(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image", "--out", out]) == 0
    capsys.readouterr()
    before = _snapshot(tmp_path)
    _refused(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image", "--out", out], capsys, out)
    assert _snapshot(tmp_path) == before
    assert load_model_file(out)[1]["history"][-1]["tool"] == "dmenet.calibrate bn"


def test_a_folder_out_is_refused(tmp_path, capsys, no_work):
    save_model(tmp_path / "m.safetensors", _tiny(), {})
    (tmp_path / "cal").mkdir()
    before = _snapshot(tmp_path)
    _refused(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image", "--out", str(tmp_path / "cal")],
             capsys, str(tmp_path / "cal"))
    assert _snapshot(tmp_path) == before and not (tmp_path / "cal.safetensors").exists()


@pytest.mark.parametrize("out", ["", "."])
def test_c2_an_out_that_names_no_file_is_refused_naming_out(tmp_path, capsys, no_work, out):
    """``--out ""`` was "PosixPath('.') has an empty name", naming no option (reliability.md §28, C2; the check
    every model-writing tool shares, :func:`dmenet.cli.model_out_problem`)."""
    save_model(tmp_path / "m.safetensors", _tiny(), {})
    _refused(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image", "--out", out], capsys,
             f"--out {out!r}: names no file")


def test_a_blocked_sidecar_name_is_refused_and_leaves_no_half_pair(tmp_path, capsys, no_work):
    save_model(tmp_path / "m.safetensors", _tiny(), {})
    (tmp_path / "cal" / "y.json").mkdir(parents=True)
    before = _snapshot(tmp_path)
    _refused(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image",
              "--out", str(tmp_path / "cal" / "y.safetensors")], capsys, str(tmp_path / "cal" / "y.json"))
    assert _snapshot(tmp_path) == before


def test_an_out_whose_folder_cannot_be_written_is_refused_before_the_work(tmp_path, capsys, no_work, monkeypatch):
    save_model(tmp_path / "m.safetensors", _tiny(), {})
    (tmp_path / "afile").write_text("not a folder")
    before = _snapshot(tmp_path)
    argv = ["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image", "--out"]
    _refused([*argv, str(tmp_path / "afile" / "sub" / "y.safetensors")], capsys, str(tmp_path / "afile"))
    assert _snapshot(tmp_path) == before
    # a read-only folder (simulated: the tests may run as root, for whom permission bits do not stop a write)
    ro = tmp_path / "ro"
    ro.mkdir()
    before = _snapshot(tmp_path)

    def denied(*args, dir=None, **kwargs):  # the probe of syndof.cli.folder_to_write_problem
        raise PermissionError(13, "Permission denied", f"{dir}/tmp123")

    monkeypatch.setattr("tempfile.TemporaryFile", denied)
    assert "not writable" in _refused([*argv, str(ro / "y.safetensors")], capsys, str(ro))
    assert _snapshot(tmp_path) == before


def test_the_written_pair_is_named_as_written(tmp_path, caplog):
    save_model(tmp_path / "m.safetensors", _tiny(), {})
    caplog.set_level("INFO", logger="dmenet.calibrate")
    assert calibrate.main(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image",
                           "--out", str(tmp_path / "new")]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"m.safetensors", "m.json", "new.safetensors", "new.json"}
    assert any(f"wrote {tmp_path / 'new.safetensors'}" in r.message for r in caplog.records)


# ------------------------------------------------------------------------------------------------ save_model
def test_save_model_leaves_no_weights_when_the_sidecar_cannot_be_written(tmp_path):
    (tmp_path / "y.json").mkdir()
    with pytest.raises(OSError):
        save_model(tmp_path / "y.safetensors", _tiny(), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.json"]  # no weights, no temporary
    assert not any((tmp_path / "y.json").iterdir())


def test_save_model_puts_back_earlier_weights_when_the_sidecar_cannot_be_written(tmp_path):
    save_model(tmp_path / "y.safetensors", _tiny(0), {"step": 0})
    (tmp_path / "y.json").unlink()
    (tmp_path / "y.json").mkdir()
    before = _snapshot(tmp_path)
    with pytest.raises(OSError):
        save_model(tmp_path / "y.safetensors", _tiny(1), {"step": 1})
    assert _snapshot(tmp_path) == before


def test_save_model_replaces_a_pair_whole(tmp_path):
    """Overwriting (training's own files) still works: both files new, ordinary permissions, no temporaries."""
    save_model(tmp_path / "y", _tiny(0), {"step": 0})
    save_model(tmp_path / "y", _tiny(1), {"step": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.json", "y.safetensors"]
    assert all((tmp_path / n).stat().st_mode & 0o777 == 0o644 for n in ("y.json", "y.safetensors"))
    model, sidecar = load_model_file(tmp_path / "y")
    assert sidecar["step"] == 1
    want = _tiny(1).state_dict()  # built once (in the generator it was rebuilt for every tensor: minutes)
    assert all(v.equal(want[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("step", ["dbd", "head", "feature-head"])
def test_h49_detection_fits_refuse_held_out_test_photos(tmp_path, capsys, no_work, step):
    """``calibrate dbd --labelled ../shared/data/cuhk`` (image/ + gt/: the 5 CUHK test photos) fitted the shipped
    model's detection transform on them, exit 0 (galetto.calibrate and distill.calibrate refused since H44). Any
    labelled folder holding a stem of the committed split's held_out list is refused before a model is read."""
    lab = tmp_path / "lab"
    (lab / "image").mkdir(parents=True)
    (lab / "gt").mkdir()
    for stem in ("train_photo", "out_of_focus0011"):  # the second is a CUHK test photo (cuhk/image)
        (lab / "image" / f"{stem}.jpg").write_bytes(b"")
        (lab / "gt" / f"{stem}.png").write_bytes(b"")
    before = _snapshot(tmp_path)
    _refused([step, "--model", str(tmp_path / "m.safetensors"), "--labelled", str(lab), "--out",
              str(tmp_path / "out.safetensors")], capsys, "out_of_focus0011.jpg: a held-out test photo")
    assert _snapshot(tmp_path) == before


def test_h51_bn_image_refuses_crop_folders_it_would_not_read(tmp_path, capsys, no_work):
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image", "--synthetic",
                        str(tmp_path), "--out", str(tmp_path / "out.safetensors")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--mode moving only" in err and "Traceback" not in err and not (tmp_path / "out.safetensors").exists()


# ------------------------------------------------------------------------ left items of the seventh review (§17)
def test_h85_two_runs_into_one_new_out_keep_the_first_pair(tmp_path, capsys, monkeypatch):
    """Two ``calibrate`` runs into one new ``--out`` both passed its "must not exist" check, and the later one's
    ``save_model`` replaced the earlier's pair, exit 0. The pair is now written without replacing (hard links): the
    other run's pair, made between this run's check and its write, is kept byte for byte; this run exits 2 with one
    line naming ``--out``, and leaves no file of its own (no temporary either)."""
    save_model(tmp_path / "m", _tiny(0), {})
    out = tmp_path / "new.safetensors"
    work = calibrate.RUNNERS[calibrate.Step.BN]

    theirs = {}

    def racing(args, date):  # the other run writes its pair after this one's check, before this one's write
        save_model(out, _tiny(1), {"other_run": True})
        theirs.update(_snapshot(tmp_path))
        return work(args, date)

    monkeypatch.setitem(calibrate.RUNNERS, calibrate.Step.BN, racing)
    line = _refused(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "image", "--out", str(out)], capsys,
                    f"--out {out}: new.safetensors was written there while this step ran")
    assert "kept" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors", "new.json", "new.safetensors"]
    assert _snapshot(tmp_path) == theirs and load_model_file(out)[1]["other_run"] is True


def test_h85_a_no_replace_pair_write_keeps_a_sidecar_or_weights_that_appeared(tmp_path, monkeypatch):
    """``save_model(replace=False)`` (``write_model_pair``): an existing weights file or sidecar is never written
    over (FileExistsError naming it, every file as it was); when the sidecar appeared after the weights were linked,
    the weights this call made are removed again, but never a file another process put in their place."""
    from dmenet.models import model_io

    (tmp_path / "a.json").write_text('{"someone": "else"}\n')
    before = _snapshot(tmp_path)
    with pytest.raises(FileExistsError) as err:
        save_model(tmp_path / "a", _tiny(0), {}, replace=False)
    assert err.value.filename2 == str(tmp_path / "a.json") and _snapshot(tmp_path) == before
    save_model(tmp_path / "b", _tiny(1), {"step": 1})
    before = _snapshot(tmp_path)
    with pytest.raises(FileExistsError) as err:
        save_model(tmp_path / "b", _tiny(0), {}, replace=False)
    assert err.value.filename2 == str(tmp_path / "b.safetensors") and _snapshot(tmp_path) == before
    save_model(tmp_path / "c", _tiny(0), {"step": 0}, replace=False)  # a new name: written as usual
    assert load_model_file(tmp_path / "c")[1]["step"] == 0
    assert all((tmp_path / n).stat().st_mode & 0o777 == 0o644 for n in ("c.json", "c.safetensors"))
    real = model_io.move_to_new_name

    def replaced_meanwhile(tmp, path):  # another process replaces the weights just linked, then the sidecar fails
        if path.suffix == ".json":
            (tmp_path / "d.safetensors").unlink()
            (tmp_path / "d.safetensors").write_bytes(b"theirs")
            raise FileExistsError(17, "File exists", str(tmp), None, str(path))
        real(tmp, path)

    monkeypatch.setattr(model_io, "move_to_new_name", replaced_meanwhile)
    with pytest.raises(FileExistsError):
        save_model(tmp_path / "d", _tiny(0), {}, replace=False)
    assert (tmp_path / "d.safetensors").read_bytes() == b"theirs"

    def interrupted(tmp, path):  # Ctrl-C between the two links: no weights without their sidecar
        if path.suffix == ".json":
            raise KeyboardInterrupt
        real(tmp, path)

    monkeypatch.setattr(model_io, "move_to_new_name", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(tmp_path / "e", _tiny(0), {}, replace=False)
    assert not list(tmp_path.glob("e.*")) and not list(tmp_path.glob(".*"))


# ------------------------------------------------------------------------------------ left items of §17 (§18)
def test_h89_sigma_and_bn_report_each_image_name_that_is_no_file(tmp_path, caplog, capsys):
    """A symbolic link loop, a link to nothing or a FIFO named like an image in ``calibrate sigma --data``'s
    ``image/`` or ``bn``'s ``--synthetic`` / ``--real`` folders (``--real`` recursive) was left out unsaid: one
    ``skipped PATH: reason`` line each now, recorded with sigma's skipped samples in the model's history; a folder
    of nothing else is one error line saying how many names were skipped (``unlisted_note``)."""
    import os

    import numpy as np

    from syndof import io as sio

    save_model(tmp_path / "m", _tiny(0), {})
    rng = np.random.default_rng(1)
    syn, real = tmp_path / "syn", tmp_path / "real"
    for s in ("a", "b"):
        sio.write_image(syn / "image" / f"{s}.png", rng.random((32, 32, 3)).astype(np.float32))
        sio.write_sigma_map(syn / "blur_map" / f"{s}.png", rng.random((32, 32)).astype(np.float32) * 3)
    (syn / "image" / "c.png").symlink_to("nowhere.png")
    os.mkfifo(syn / "image" / "d.png")
    sio.write_image(real / "sub" / "r.png", rng.random((32, 32, 3)).astype(np.float32))
    (real / "sub" / "q.png").symlink_to("q.png")
    fifo = "not a regular file (a FIFO, socket or device)"
    lines = [f"skipped {syn / 'image' / 'c.png'}: a symbolic link to nothing",
             f"skipped {syn / 'image' / 'd.png'}: {fifo}"]
    caplog.set_level("INFO")
    model = str(tmp_path / "m.safetensors")
    assert calibrate.main(["sigma", "--model", model, "--data", str(syn), "--min-pixels", "1", "--out",
                           str(tmp_path / "s")]) == 0
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == lines
    result = load_model_file(tmp_path / "s")[1]["history"][-1]["result"]
    assert result["n_images"] == 2 and result["skipped"] == [ln.removeprefix("skipped ") for ln in lines]
    caplog.clear()
    assert calibrate.main(["bn", "--model", model, "--mode", "moving", "--synthetic", str(syn), "--real", str(real),
                           "--crops", "2", "--crop", "32", "--batch", "2", "--detection", "follow", "--out",
                           str(tmp_path / "b")]) == 0
    loop = "a symbolic link loop (too many levels of symbolic links)"
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == [
        *lines, f"skipped {real / 'sub' / 'q.png'}: {loop}"]
    for name in ("a.png", "b.png"):
        (syn / "image" / name).unlink()
    capsys.readouterr()
    caplog.clear()
    line = _refused(["sigma", "--model", model, "--data", str(syn), "--out", str(tmp_path / "s2")], capsys,
                    f"{syn}: no images in image/")
    assert f"(2 image name(s) there are no file to read, e.g. {syn / 'image' / 'c.png'}: a symbolic link" in line
    line = _refused(["bn", "--model", model, "--mode", "moving", "--synthetic", str(syn), "--real", str(real),
                     "--detection", "follow", "--out", str(tmp_path / "b2")], capsys, f"{syn / 'image'}: no images")
    assert "(2 image name(s) there are no file to read" in line
    assert not any(r.getMessage().startswith("skipped") for r in caplog.records)  # a refused run: its one line


def test_h94_bn_crops_warn_once_per_animated_photo_and_skip_a_bad_one_once(tmp_path, caplog, recwarn):
    """``random_crops`` draws photos with replacement: an animated photo drawn three times warned three times, a
    damaged one drawn often said its skip line as often. Once each now."""
    import numpy as np
    from PIL import Image

    from dmenet.training.recalibrate import random_crops
    from syndof.frames import FirstFrameWarning

    rng = np.random.default_rng(2)
    frames = [Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)) for _ in range(2)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "b.png").write_bytes(b"not an image")
    caplog.set_level("WARNING")
    crops = random_crops([tmp_path / "a.gif", tmp_path / "b.png"], 4, 16, np.random.default_rng(0))
    assert len(crops) == 4 and all(c.shape == (16, 16, 3) for c in crops)
    assert [str(w.message) for w in recwarn if w.category is FirstFrameWarning] == [
        f"{tmp_path / 'a.gif'}: an animated GIF of 2 frames: only the first is read"]
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == [
        f"skipped {tmp_path / 'b.png'}: cannot decode image (unreadable, truncated or unsupported format)"]
