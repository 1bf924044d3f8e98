"""distill-train / distill-calibrate refuse what would destroy or mislabel earlier work, and bad sizes, before any
work: --out holding another tool's run (or a distill run without --resume), --resume of a folder that holds no run,
data.val_side 0. Refusals exit 2 with one line and leave existing files byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_distill import TINY, _dataset

from dmenet.configlib import ConfigError, config_to_dict
from dmenet.distill import calibrate
from dmenet.distill import train as dtrain
from dmenet.distill.config import load_distill_config
from syndof.io import write_image


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error(capsys, fn, argv) -> str:
    assert fn(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture
def sets(tmp_path) -> list[str]:
    return _dataset(tmp_path / "d") + TINY


def _other_tool_run(folder: Path) -> dict[str, bytes]:
    """A run folder of another tool: metrics.jsonl, its own config.yaml, a model file; no distill checkpoint."""
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n')
    (folder / "config.yaml").write_text("model: {name: dmenet}\ntrain: {steps: 2}\n")
    (folder / "model_last.safetensors").write_bytes(b"\x00" * 64)
    return _snapshot(folder)


def test_new_run_into_another_tools_run_folder_is_refused(tmp_path, sets, capsys):
    out = tmp_path / "other"
    before = _other_tool_run(out)
    err = _error(capsys, dtrain.main, ["--out", str(out), "--set", *sets])
    assert f"--out {out}" in err and "not empty" in err
    assert _snapshot(out) == before  # metrics.jsonl not truncated, nothing mixed in


def test_new_run_into_a_distill_run_says_resume(tmp_path, sets, capsys):
    """A distill run killed before its first checkpoint (config.yaml + metrics.jsonl, no ckpt/) is a run too."""
    out = tmp_path / "run"
    out.mkdir()
    cfg = load_distill_config(None, sets)
    (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    (out / "metrics.jsonl").write_text('{"step": 0, "total": 1.0}\n')
    before = _snapshot(out)
    err = _error(capsys, dtrain.main, ["--out", str(out), "--set", *sets])
    assert f"--out {out}" in err and "--resume" in err
    assert _snapshot(out) == before
    with pytest.raises(ConfigError, match="--resume"):
        dtrain.train(cfg, out)
    assert _snapshot(out) == before


def test_new_run_into_a_file_is_refused(tmp_path, sets, capsys):
    out = tmp_path / "file"
    out.write_text("keep")
    assert f"--out {out}" in _error(capsys, dtrain.main, ["--out", str(out), "--set", *sets])
    assert out.read_text() == "keep"


def test_resume_of_a_folder_without_a_run_is_refused(tmp_path, sets, capsys):
    missing = tmp_path / "missing"
    err = _error(capsys, dtrain.main, ["--out", str(missing), "--resume", "--set", *sets])
    assert f"--resume: {missing} holds no run" in err
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"--resume: {empty} holds no run" in _error(capsys, dtrain.main,
                                                        ["--out", str(empty), "--resume", "--set", *sets])
    assert not any(empty.iterdir())
    other = tmp_path / "other"
    before = _other_tool_run(other)
    err = _error(capsys, dtrain.main, ["--out", str(other), "--resume", "--set", *sets])
    assert f"--resume: {other} holds no run" in err and "not a distill config" in err
    assert _snapshot(other) == before


def test_resume_before_the_first_checkpoint_restarts_the_run(tmp_path, sets):
    """A distill run killed before its first checkpoint resumes from step 0 (its rows re-logged once)."""
    cfg = load_distill_config(None, sets)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    (out / "metrics.jsonl").write_text('{"step": 0, "total": 99.0}\n{"step": 1, "tot')
    dtrain.train(cfg, out, resume=True)
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()
             if "total" in json.loads(x)]
    assert steps == [0, 1, 2, 3] and (out / "ckpt" / "step_000003" / "model.safetensors").is_file()
    with pytest.raises(ConfigError, match=r"differs from this one in optim\.lr$"):
        dtrain.train(load_distill_config(None, sets + ["optim.lr=1e-3"]), out, resume=True)


@pytest.mark.parametrize("setting, key", [("data.val_side=0", "data.val_side"), ("data.val_side=-32", "data.val_side"),
                                          ("data.preload_long_side=0", "data.preload_long_side"),
                                          ("data.batch=0", "data.batch"), ("train.log_every=0", "train.log_every"),
                                          ("train.threads=0", "train.threads"),
                                          ("train.keep_last=0", "train.keep_last")])
def test_bad_sizes_are_refused_before_training(tmp_path, sets, capsys, setting, key):
    out = tmp_path / "run"
    assert key in _error(capsys, dtrain.main, ["--out", str(out), "--set", *sets, setting])
    assert not out.exists()  # no config.yaml, no metrics.jsonl


def test_calibrate_refuses_val_side_0_naming_it(tmp_path, sets, capsys):
    import torch

    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.models.unet import EffUNet

    torch.manual_seed(0)
    save_distill_model(tmp_path / "student", "student", EffUNet(load_distill_config(None, sets).student))
    err = _error(capsys, calibrate.main, ["--model", str(tmp_path / "student"), "--set", *sets, "data.val_side=0",
                                          "--out", str(tmp_path / "cal")])
    assert "data.val_side" in err and "cv2" not in err
    assert not list(tmp_path.glob("cal*"))


def test_resume_on_other_data_under_the_same_list_paths_is_refused(tmp_path, sets, capsys):
    """Review C11: a resume after the train list's names were replaced (or a listed photo replaced under its name)
    exited 0 and trained on other photos, recorded nowhere; RUN/data.json now records each list (SHA-256, names)
    and the listed files' names and sizes, and a resume on other data is refused before anything is written. A run
    from before that record (none) resumes unchecked, as before."""
    root, out = tmp_path / "d", tmp_path / "run"
    dtrain.train(load_distill_config(None, sets), out, max_steps=2)  # stopped after its checkpoint at step 1
    argv = ["--out", str(out), "--resume", "--set", *sets]
    train_list, photo, mask = root / "train.txt", root / "img" / "im1.png", root / "gt" / "im1.png"
    kept = {p: p.read_bytes() for p in (train_list, photo, mask)}
    shutil.copy(root / "img" / "im0.png", root / "img" / "im5.png")  # another photo, listed instead of im2
    shutil.copy(root / "gt" / "im0.png", root / "gt" / "im5.png")
    train_list.write_text("im0\nim1\nim5\n")
    before = _snapshot(out)
    err = _error(capsys, dtrain.main, argv)
    assert f"data.train_list {train_list}" in err and "1 new (e.g. 'im5')" in err and str(out / "data.json") in err
    assert _snapshot(out) == before
    train_list.write_bytes(kept[train_list])  # the same names, but im1 is another photo (and mask) of another size
    write_image(photo, np.random.default_rng(5).random((72, 80, 3)).astype(np.float32))
    write_image(mask, np.zeros((72, 80), np.float32))
    err = _error(capsys, dtrain.main, argv)
    assert f"data.train_list {train_list}" in err and "the same 6 names, but some of other sizes" in err
    assert _snapshot(out) == before
    record = json.loads((out / "data.json").read_text())["sources"]
    assert set(record) == {"data.train_list", "data.val_list", "data.sharp_list", "data.sharp_val_list"}
    assert record["data.train_list"]["names"] == ["im0", "im1", "im2"]
    for path, data in kept.items():  # the run's own data again: it resumes
        path.write_bytes(data)
    dtrain.train(load_distill_config(None, sets), out, resume=True, max_steps=3)
    assert (out / "ckpt" / "step_000002").is_dir()
    (out / "data.json").unlink()  # a run from before the record: unchecked, and it gets none (its data is unknown)
    train_list.write_text("im0\nim1\n")
    assert dtrain.main(argv) == 0 and (out / "ckpt" / "step_000003").is_dir() and not (out / "data.json").exists()


def test_h61_a_kd_resume_refuses_another_teacher_model_under_the_same_name(tmp_path, sets, capsys):
    """The kd stage reads its frozen ``train.teacher_model`` again at every resume: a teacher retrained under the
    same file name since the run started taught the rest of the run, exit 0, recorded nowhere. RUN/data.json now
    records the file's SHA-256 and a resume with another one is refused before anything is written; the run's own
    teacher resumes, and a record from before (without it) resumes unchecked, as before."""
    import torch
    from test_distill import TINY_TEACHER

    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.models.teacher import Teacher

    teacher, out = tmp_path / "t", tmp_path / "run"
    torch.manual_seed(3)
    save_distill_model(teacher, "teacher", Teacher(TINY_TEACHER))
    kd = sets + ["loss.consistency=1", "train.stage=kd", f"train.teacher_model={teacher}"]
    dtrain.train(load_distill_config(None, kd), out, max_steps=2)  # stopped after its checkpoint at step 1
    kept = {p: p.read_bytes() for p in (teacher.with_suffix(".safetensors"), teacher.with_suffix(".json"))}
    torch.manual_seed(4)
    save_distill_model(teacher, "teacher", Teacher(TINY_TEACHER))  # another teacher under the run's file name
    argv = ["--out", str(out), "--resume", "--set", *kd]
    before = _snapshot(out)
    err = _error(capsys, dtrain.main, argv)
    assert f"train.teacher_model {teacher}.safetensors" in err and "another model file" in err
    assert _snapshot(out) == before
    record = json.loads((out / "data.json").read_text())
    del record["sources"]["train.teacher_model"]  # a run started before the teacher was recorded: unchecked
    (out / "data.json").write_text(json.dumps(record))
    dtrain.train(load_distill_config(None, kd), out, resume=True, max_steps=3)
    assert (out / "ckpt" / "step_000002").is_dir()
    for path, data in kept.items():  # the run's own teacher (a run that records it): it resumes
        path.write_bytes(data)
    other = tmp_path / "run2"
    dtrain.train(load_distill_config(None, kd), other, max_steps=2)
    assert dtrain.main(["--out", str(other), "--resume", "--set", *kd]) == 0
    assert (other / "ckpt" / "step_000003").is_dir()


def test_h64_a_resume_reads_no_start_file_and_matches_an_uninterrupted_run(tmp_path, sets):
    """A run started from ``train.init_from``, stopped, then resumed after that file was moved: the resume read the
    file again (only to overwrite its weights with the checkpoint's) and failed, "model file not found". It now reads
    neither the start file nor ImageNet weights, and ends where an uninterrupted run ends, tensor for tensor."""
    import torch
    from safetensors.torch import load_file

    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.models.unet import EffUNet

    start = tmp_path / "start"
    torch.manual_seed(5)
    save_distill_model(start, "student", EffUNet(load_distill_config(None, sets).student))
    fine_tune = sets + [f"train.init_from={start}"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    dtrain.train(load_distill_config(None, fine_tune), whole)
    dtrain.train(load_distill_config(None, fine_tune), parts, max_steps=2)  # stopped after its checkpoint at step 1
    start.with_suffix(".safetensors").rename(tmp_path / "moved.safetensors")
    assert dtrain.main(["--out", str(parts), "--resume", "--set", *fine_tune]) == 0
    a, b = (load_file(str(run / "ckpt" / "step_000003" / "state.safetensors")) for run in (whole, parts))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_check_data_record_reads_its_since_options_once(tmp_path):
    """``check_data_record(since=…)`` takes any iterable: a generator was read up at the first option the record
    lacks (``set(since)`` in the loop), so a second such option was refused as data the run never read."""
    from dmenet.training.data_record import check_data_record, write_data_record

    kept = {"data.list": {"path": "l.txt", "sha256": "0" * 64}}
    write_data_record(tmp_path, kept)
    new = {"train.a": {"path": "a", "model_sha256": "1" * 64}, "train.b": {"path": "b", "model_sha256": "2" * 64}}
    check_data_record(tmp_path, {**kept, **new}, since=(key for key in new))


def _student(tmp_path: Path, sets: list[str]) -> Path:
    """A random tiny student ``tmp_path/student`` of the ``sets`` config (its name without suffix)."""
    import torch

    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.models.unet import EffUNet

    torch.manual_seed(0)
    save_distill_model(tmp_path / "student", "student", EffUNet(load_distill_config(None, sets).student))
    return tmp_path / "student"


@pytest.mark.parametrize("kind", ["under_a_file", "a_folder", "read_only", "empty", "the_model"])
def test_c2_distill_calibrate_refuses_a_bad_out_before_any_work(tmp_path, sets, capsys, monkeypatch, kind):
    """distill.calibrate --out under a file was "FILE: File exists" and in a read-only folder a temporary's
    "Permission denied", both after every validation image ran; a folder got FOLDER.safetensors beside it, an empty
    name "PosixPath('.') has an empty name" (reliability.md §28, C2). Now one line naming --out, before any model
    is read, nothing written."""
    from hostile_helpers import unwritable_folder

    import dmenet.distill.model_io as mio

    model = _student(tmp_path, sets)
    (tmp_path / "file").write_text("keep")
    (tmp_path / "folder").mkdir()
    (tmp_path / "ro").mkdir()
    out = {"under_a_file": tmp_path / "file" / "cal", "a_folder": tmp_path / "folder", "read_only": tmp_path / "ro"
           / "cal", "empty": "", "the_model": model}[kind]
    before = _snapshot(tmp_path)
    monkeypatch.setattr(mio, "load_distill_model", lambda *a, **k: pytest.fail("a model was read before --out"))
    argv = ["--model", str(model), "--set", *sets, "--out", str(out)]
    if kind == "read_only":
        with unwritable_folder(tmp_path / "ro", monkeypatch):
            err = _error(capsys, calibrate.main, argv)
    else:
        err = _error(capsys, calibrate.main, argv)
    assert err.startswith(f"error: --out {out}" if kind != "empty" else "error: --out '': names no file"), err
    assert _snapshot(tmp_path) == before


def test_c5_distill_calibrate_refuses_a_model_whose_output_is_not_finite(tmp_path, sets, capsys):
    """A diverged student (NaN weights) was "calibrated": scale 1, shift 0, "validation MAE nan -> inf", a new model
    file with ``mae_fit: Infinity``, exit 0 (reliability.md §28, C5). Now exit 2 naming the model and the image."""
    import torch

    from dmenet.distill.model_io import load_distill_model, save_distill_model

    net, _ = load_distill_model(_student(tmp_path, sets))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    save_distill_model(tmp_path / "nan", "student", net)
    err = _error(capsys, calibrate.main, ["--model", str(tmp_path / "nan"), "--set", *sets,
                                          "--out", str(tmp_path / "cal")])
    assert f"--model {tmp_path / 'nan'}" in err and "not finite" in err and "im3" in err, err
    assert not list(tmp_path.glob("cal*"))


@pytest.mark.parametrize("setting", ["data.val_side=100000", "data.crop=100000"])
def test_c3_a_validation_side_or_crop_beyond_max_side_is_refused_naming_the_key(setting):
    """``data.val_side=100000`` (a multiple of 32) passed the config and was an OpenCV allocation traceback
    (120 GB) in distill.calibrate, and at a training run's first validation (reliability.md §28, C3)."""
    from dmenet.distill.config import MAX_SIDE

    with pytest.raises(ConfigError, match=rf"{setting.split('=')[0]} must be .* up to {MAX_SIDE}, got 100000"):
        load_distill_config(None, [setting])
    load_distill_config(None, [f"{setting.split('=')[0]}={MAX_SIDE}"])  # the bound itself is taken


@pytest.mark.parametrize("value", [-1.0, 0, "nan", "1.5", True])
def test_c8_a_distill_sidecar_with_a_bad_logit_scale_is_refused_naming_it(tmp_path, sets, value):
    """A sidecar's ``logit_scale`` was used as found: -1 turned every blur map upside down (sharp read as
    blurred), NaN made maps NaN, text failed at each image (reliability.md §28, C8). Now the loader refuses it."""
    from dmenet.distill.model_io import load_distill_model
    from dmenet.models.model_io import ModelFileError

    model = _student(tmp_path, sets)
    info = json.loads((tmp_path / "student.json").read_text())
    load_distill_model(model)  # as written: no calibration, taken
    info["logit_scale"] = float(value) if value == "nan" else value
    (tmp_path / "student.json").write_text(json.dumps(info))
    with pytest.raises(ModelFileError, match=r"student\.json: logit_scale .* is not a finite number > 0"):
        load_distill_model(model)
    info["logit_scale"], info["logit_shift"] = 2.0, float("inf")
    (tmp_path / "student.json").write_text(json.dumps(info))
    with pytest.raises(ModelFileError, match=r"logit_shift inf is not a finite number \("):
        load_distill_model(model)


def test_c2_distill_calibrate_never_replaces_a_model_written_while_it_ran(tmp_path, sets, capsys, monkeypatch):
    """Two distill.calibrate runs into one new --out both passed the "exists" check and the later replaced the
    earlier pair (reliability.md §28, C2; §15's leftover for calibrate). The second now exits 2 and the first's
    file is kept."""
    model, out = _student(tmp_path, sets), tmp_path / "cal"
    real_fit = calibrate.fit

    def fit_while_another_writes(z, m):  # another run's sidecar appears between the check and the write
        (tmp_path / "cal.json").write_text('{"another": "run"}')
        return real_fit(z, m)

    monkeypatch.setattr(calibrate, "fit", fit_while_another_writes)
    err = _error(capsys, calibrate.main, ["--model", str(model), "--set", *sets, "--out", str(out)])
    assert err.startswith(f"error: --out {out}: ") and "while this calibration ran" in err
    assert (tmp_path / "cal.json").read_text() == '{"another": "run"}'
    assert not (tmp_path / "cal.safetensors").exists()
