"""Mutation round 12 (docs/audit.md): tests that kill the mutants no earlier test noticed, in the code changed on
6 Dec 2026 after round 11 (docs/reliability.md §28–§31 and two mends): `distill.select`'s rows, `model_out_problem`,
the Distill architecture bounds, the non-finite refusals, `galetto.compare`'s option checks, `galetto.calibrate` /
`write_fitted`, the new-pair writer, predict's prefixes and resume look-ups, `image_names`' unlistable folders and
`read_image_stored`. Each expectation is worked out by hand from the rule the docstrings state."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY_DISTILL = ROOT / "experiments" / "distill" / "tiny.yaml"


# ------------------------------------------------------------------------------------------ distill.select rows
def test_row_problem_takes_step_0_and_scores_at_both_ends_of_0_1():
    """`select.row_problem`: a whole step >= 0 is a checkpoint's (step 0 is the run's first validation), and a
    score of exactly 0 or exactly 1 is inside [0, 1] (Fmax 1.0 is a perfect checkpoint, MAE 0.0 too). Pins `>= 0`
    and both `<=` of the module's rule."""
    from dmenet.distill.select import row_problem

    assert row_problem({"step": 0, "val_fmax": 1.0, "val_mae": 0.0, "sharp_val_mean": 1.0}) is None
    assert row_problem({"step": 0, "val_fmax": 1, "val_mae": 0, "sharp_val_mean": 0}) is None  # ints are numbers


@pytest.mark.parametrize("row, named", [
    ({"step": True, "val_fmax": 0.5, "val_mae": 0.1}, "step True"),
    ({"step": 2, "val_fmax": True, "val_mae": 0.1}, "val_fmax True is not a number"),
    ({"step": 2, "val_fmax": 0.5, "val_mae": False}, "val_mae False is not a number"),
])
def test_row_problem_refuses_a_bool_as_a_step_or_a_score(row, named):
    """JSON `true` / `false` are no step and no score (Python's bool is an int: `true` would be step 1 or Fmax 1.0,
    `false` MAE 0, the best possible score). Pins the bool exclusions of `_whole` and of the score check."""
    from dmenet.distill.select import row_problem

    problem = row_problem(row)
    assert problem is not None and named in problem, problem


# ---------------------------------------------------------------------------------------- dmenet.cli.model_out_problem
@pytest.mark.parametrize("out", ["   ", "/"])
def test_model_out_problem_a_blank_name_or_the_root_names_no_file(out):
    """`--out "   "` (spaces only) and `--out /` (a path without a last name) name no model file: refused as such
    before any work (each alone: blank text, then an empty last name)."""
    from dmenet.cli import model_out_problem

    problem = model_out_problem(out)
    assert problem is not None and problem.startswith(f"--out {out!r}: names no file"), problem


def test_model_out_problem_an_input_named_by_its_pair_or_through_a_link_is_an_input(tmp_path):
    """The input given as `m` (no suffix: the pair m.safetensors + m.json) and `--out m.json` is the input; so is an
    `--out` that is a link to the input's weights. Both: "is an input of this step", not the generic "exists"."""
    from dmenet.cli import model_out_problem

    (tmp_path / "m.safetensors").write_bytes(b"w")
    (tmp_path / "m.json").write_text("{}")
    (tmp_path / "l.safetensors").symlink_to(tmp_path / "m.safetensors")
    for out in (tmp_path / "m.json", tmp_path / "l.safetensors"):
        problem = model_out_problem(out, [tmp_path / "m"])
        assert problem == f"--out {out}: is an input of this step; write a new file (earlier work is never " \
                          "overwritten)", problem


def test_model_out_problem_a_folder_a_suffixless_file_and_a_dangling_link(tmp_path):
    """An existing folder is named as a folder; `--out x` where `x` is a file (not a model pair: the pair would be
    x.safetensors + x.json beside it) is refused as existing; so is a pair name held by a link to nothing (the
    writer's hard link would meet it after the work)."""
    from dmenet.cli import model_out_problem

    (tmp_path / "d").mkdir()
    assert model_out_problem(tmp_path / "d") == f"--out {tmp_path / 'd'}: is a folder; give a new model file name " \
                                                "(NAME.safetensors)"
    (tmp_path / "x").write_text("notes")
    assert model_out_problem(tmp_path / "x") == f"--out {tmp_path / 'x'}: exists; write the new model to a new name"
    (tmp_path / "y.json").symlink_to(tmp_path / "nothing")
    assert model_out_problem(tmp_path / "y.safetensors") == (f"--out {tmp_path / 'y.json'}: exists; write the new "
                                                             "model to a new name")
    assert model_out_problem(tmp_path / "z.safetensors") is None  # a free name in a writable folder


def test_model_out_problem_names_the_file_the_pair_would_go_under(tmp_path):
    """`--out FILE/y.safetensors` with FILE a file: the pair's own folder is no folder (one level up, tmp_path, is
    writable, so looking there would pass it)."""
    from dmenet.cli import model_out_problem

    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "y.safetensors"
    assert model_out_problem(out) == f"--out {out}: {tmp_path / 'afile'} is not a folder"


# ---------------------------------------------------------------------------------------- Distill architecture bounds
@pytest.mark.parametrize("kind, field, value", [("teacher", "aspp_mid", True),
                                              ("student", "decoder", (True, 16, 16, 16, 8)),
                                              ("teacher", "dropout", False), ("student", "drop_connect", False)])
def test_distill_bounds_refuse_a_bool_as_a_width_or_a_rate(kind, field, value):
    """`True` / `False` is no channel count and no rate (Python's bool is an int: `True` would be 1 channel, `False`
    a rate of 0): the config dataclasses themselves refuse it naming the key (a script that builds a network from
    them meets the bounds the loaders do)."""
    from dmenet.distill.models.teacher import TeacherConfig
    from dmenet.distill.models.unet import StudentConfig

    make = TeacherConfig if kind == "teacher" else StudentConfig
    with pytest.raises(ValueError, match=re.escape(f"{kind}.{field}")):
        make(**{field: value})


def test_distill_max_side_is_2048():
    """`data.val_side` / `data.crop` go up to 2048 px (the bound `distill.summary --size` has too): 2048 loads,
    2080 (the next multiple of 32) is refused naming the key."""
    from dmenet.configlib import ConfigError
    from dmenet.distill.config import load_distill_config

    for key in ("data.val_side", "data.crop"):
        assert getattr(load_distill_config(None, [f"{key}=2048"]).data, key.split(".")[1]) == 2048
        refusal = f"{key} must be a positive multiple of 32 up to 2048, got 2080"
        with pytest.raises(ConfigError, match=re.escape(refusal)):
            load_distill_config(None, [f"{key}=2080"])


@pytest.mark.parametrize("value, ok", [("0", True), ("0.99", True), ("1", False), ("-0.1", False), ("nan", False)])
def test_distill_student_drop_connect_is_a_rate_in_0_1(value, ok):
    """`student.drop_connect` (stochastic depth of the last block) is a rate in [0, 1): 0 and 0.99 load, 1 (every
    block dropped), −0.1 and NaN are refused naming the key."""
    from dmenet.configlib import ConfigError
    from dmenet.distill.config import load_distill_config

    if ok:
        assert load_distill_config(TINY_DISTILL, [f"student.drop_connect={value}"]).student.drop_connect == \
            float(value)
    else:
        with pytest.raises(ConfigError, match="student.drop_connect"):
            load_distill_config(TINY_DISTILL, [f"student.drop_connect={value}"])


# ------------------------------------------------------------------------------------------ non-finite outputs refused
def test_window_probabilities_refuse_one_window_of_nan_among_finite_ones(monkeypatch):
    """A classifier whose logits are NaN for one window only (a 32×64 gray image at stride 32: 2 windows, the first
    NaN): that window's class probabilities are NaN, and a σ map would read it as class 0 (σ 0 px). Refused as an
    all-NaN model is."""
    import torch

    from dmenet.galetto import blurmap

    def net(x):
        logits = torch.zeros(len(x), 20)
        logits[0] = float("nan")
        return logits

    monkeypatch.setattr(blurmap, "cached_folded_copy", lambda model: net)
    with pytest.raises(ValueError, match="not finite"):
        blurmap.window_probabilities(torch.nn.Linear(1, 1), torch.zeros(32, 64), stride=32)


def test_distill_calibrate_refuses_a_network_output_with_one_nan_pixel(tmp_path, capsys, monkeypatch):
    """A student whose output is NaN at a single pixel of each validation image (the rest finite) would be fitted on
    the finite pixels unsaid, or NaN through the fit: refused as a wholly NaN output is, naming --model; nothing
    written."""
    import torch
    from test_distill import TINY, _dataset

    from dmenet.distill import calibrate
    from dmenet.distill import model_io as dmio
    from dmenet.distill.config import load_distill_config
    from dmenet.distill.models.unet import EffUNet

    sets = _dataset(tmp_path / "d") + TINY
    torch.manual_seed(0)
    dmio.save_distill_model(tmp_path / "student", "student", EffUNet(load_distill_config(None, sets).student))
    real = dmio.load_distill_model

    class OnePixelNaN(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            y = self.net(x).clone()
            y[..., 0, 0] = float("nan")
            return y

    def load(path, device="cpu"):
        net, info = real(path, device)
        return OnePixelNaN(net).eval(), info

    monkeypatch.setattr(dmio, "load_distill_model", load)
    assert calibrate.main(["--model", str(tmp_path / "student"), "--set", *sets, "--out", str(tmp_path / "cal")]) == 2
    err = capsys.readouterr().err
    assert f"--model {tmp_path / 'student'}" in err and "not finite" in err, err
    assert not list(tmp_path.glob("cal*"))


# -------------------------------------------------------------------------------------- galetto.compare option checks
def _compare_error(tmp_path, capsys, *argv) -> str:
    from dmenet.galetto import compare

    assert compare.main([*argv, "--out", str(tmp_path / "rep")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and not (tmp_path / "rep").exists(), err
    return err[0]


@pytest.mark.parametrize("check", ["--rtf", "--stack", "--fusion-real"])
def test_compare_a_run_with_one_check_is_not_refused_as_checking_nothing(tmp_path, capsys, check):
    """`--rtf R`, `--stack S` or `--fusion-real S` alone is a check asked for: the run goes on to its inputs (here
    missing: refused naming them), never "no check asked for"."""
    line = _compare_error(tmp_path, capsys, "--method", "lbp", check, str(tmp_path / "missing"))
    assert "no check asked for" not in line and "missing" in line, line


# ------------------------------------------------------------------------------------ galetto.calibrate, write_fitted
def _galetto_calibrate(tmp_path, monkeypatch, *extra):
    """galetto.calibrate on two tiny labelled photos with a tiny classifier, its σ maps replaced by a marker: returns
    (exit code, error lines, whether the σ maps would have been made)."""
    from test_galetto import TINY as GTINY
    from test_galetto import _labelled

    from dmenet.galetto import calibrate
    from dmenet.galetto.classifier import BlurClassifier
    from dmenet.galetto.train import save_classifier

    torch.manual_seed(0)
    save_classifier(tmp_path / "tiny", BlurClassifier(GTINY))
    reached = []

    def marker(*a, **k):
        reached.append(True)
        raise SystemExit(99)

    monkeypatch.setattr(calibrate, "fit_samples", marker)
    argv = ["--benchmark", "cuhk", "--data", str(_labelled(tmp_path / "lab")), "--model",
            str(tmp_path / "tiny.safetensors"), "--method", "galetto:stride=16", *extra]
    try:
        rc = calibrate.main(argv)
    except SystemExit as e:
        rc = e.code
    return rc, reached


def test_galetto_calibrate_refuses_its_own_model_as_out_as_an_input(tmp_path, monkeypatch, capsys):
    """`--out` naming the classifier being fitted (its sidecar `tiny.json`) is refused as an input of this step,
    not only as an existing file; and `--max-scale 0.5` (the grid's smallest scale itself) is a valid bound: the
    run reaches its σ maps."""
    rc, reached = _galetto_calibrate(tmp_path, monkeypatch, "--out", str(tmp_path / "tiny.json"))
    err = capsys.readouterr().err
    assert rc == 2 and not reached and f"--out {tmp_path / 'tiny.json'}: is an input of this step" in err, err
    rc, reached = _galetto_calibrate(tmp_path, monkeypatch, "--out", str(tmp_path / "fit"), "--max-scale", "0.5")
    assert reached and rc == 99, capsys.readouterr().err


def test_write_fitted_records_the_fit_info_and_refuses_an_existing_out_naming_it(tmp_path):
    """`write_fitted` puts the transform and the fit's own info (the images it was fitted on) in the sidecar's
    `detection`; a second write to the same name is refused naming the existing weights file, which is kept."""
    from dmenet.galetto.classifier import BlurClassifier
    from dmenet.galetto.detection import DetectionTransform, write_fitted
    from dmenet.galetto.train import save_classifier
    from test_galetto import TINY as GTINY

    torch.manual_seed(0)
    save_classifier(tmp_path / "tiny", BlurClassifier(GTINY))
    fitted = write_fitted(tmp_path / "tiny.safetensors", tmp_path / "fit", DetectionTransform(2.0, 1.5),
                          {"images": ["a.jpg"]})
    detection = json.loads((tmp_path / "fit.json").read_text())["detection"]
    assert detection["images"] == ["a.jpg"], detection
    before = fitted.read_bytes()
    with pytest.raises(FileExistsError, match=f"^{re.escape(str(fitted))}: exists; write the fitted classifier"):
        write_fitted(tmp_path / "tiny.safetensors", tmp_path / "fit", DetectionTransform(1.0, 0.0), {})
    assert fitted.read_bytes() == before


def test_distill_calibrate_refuses_its_own_model_as_out_as_an_input(tmp_path, capsys):
    """`distill.calibrate --out m.json` where `--model m` (the pair m.safetensors + m.json) names the model being
    calibrated: refused as an input of this step (not the generic "exists"), before the model is read."""
    from dmenet.distill import calibrate

    (tmp_path / "m.safetensors").write_bytes(b"not read")
    (tmp_path / "m.json").write_text("{}")
    assert calibrate.main(["--model", str(tmp_path / "m"), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: --out {tmp_path / 'm.json'}: is an input of this step; write a new file " \
                          "(earlier work is never overwritten)", err


# ------------------------------------------------------------------------------------------ predict: prefixes, resume
WANTED = ("_blur.png", "_preview.png", "_source.json")  # a blur-map method's set in PNG (output_suffixes)


def _a_set(prefix: Path, photo: Path) -> None:
    """The files of a whole set under ``prefix`` made from ``photo`` (its provenance record last)."""
    from dmenet.predict_outputs import provenance_bytes

    prefix.parent.mkdir(parents=True, exist_ok=True)
    for suffix in WANTED[:-1]:
        prefix.with_name(prefix.name + suffix).write_bytes(b"x")
    prefix.with_name(prefix.name + "_source.json").write_bytes(provenance_bytes(photo))


def _photo(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_prefix_key_folds_case_fully_and_composes_accents():
    """Two prefixes are one name on APFS / NTFS when they differ only in letter case or in Unicode composition:
    `Straße` and `STRASSE` (full case folding: ß folds to ss, which lower() does not do), `café` composed (U+00E9)
    and decomposed (e + U+0301). `a` and `b` stay apart."""
    from dmenet.predict_inputs import prefix_key

    assert prefix_key(Path("Stra\u00dfe")) == prefix_key(Path("STRASSE"))
    assert prefix_key(Path("sub/caf\u00e9")) == prefix_key(Path("SUB/cafe\u0301"))
    assert prefix_key(Path("a")) != prefix_key(Path("b"))


def test_unclaimed_sets_never_take_a_prefix_of_the_batch_in_another_letter_case(tmp_path):
    """A set under `out/A` is under the batch's own prefix `out/a` on a case-insensitive file system: it is claimed
    (compared case-folded), never taken as a set of no photo of the batch, even when it is whole and of the photo."""
    from dmenet.predict_inputs import Job
    from dmenet.predict_resume import unclaimed_sets

    out, photo = tmp_path / "o", _photo(tmp_path / "r" / "a.png", "bytes of a")
    _a_set(out / "A", photo)
    assert unclaimed_sets([Job(photo, out / "a")], WANTED, out) == {}


def test_unclaimed_sets_take_a_photos_first_set_by_name_and_pass_over_a_folder_they_cannot_list(tmp_path,
                                                                                                monkeypatch):
    """Two whole sets of one photo under free prefixes `out/k` and `out/m`: the first by name (`k`) is its set. A
    folder of the batch that cannot be listed (Permission denied) holds nothing to take: passed over, not raised."""
    from dmenet.predict_inputs import Job
    from dmenet.predict_resume import unclaimed_sets
    from syndof.io import file_sha256

    out, photo = tmp_path / "o", _photo(tmp_path / "r" / "x.png", "x")
    _a_set(out / "m", photo)
    _a_set(out / "k", photo)
    locked = out / "locked"
    locked.mkdir()
    jobs = [Job(photo, out / "x_png"), Job(_photo(tmp_path / "r" / "locked" / "y.png", "y"), locked / "y")]
    real = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert unclaimed_sets(jobs, WANTED, out) == {file_sha256(photo): out / "k"}


def test_finished_sets_name_the_first_prefix_of_the_batch_for_one_photos_bytes(tmp_path):
    """Two photos of the same bytes, each with its whole set under its own prefix: `finished_sets` gives the first
    job's prefix for that SHA-256 (batch order, as a first run would name it)."""
    from dmenet.predict_inputs import Job
    from dmenet.predict_resume import finished_sets
    from syndof.io import file_sha256

    out = tmp_path / "o"
    a, b = _photo(tmp_path / "r" / "a.png", "same"), _photo(tmp_path / "r" / "b.png", "same")
    _a_set(out / "a", a)
    _a_set(out / "b", b)
    assert finished_sets([Job(a, out / "a"), Job(b, out / "b")], WANTED) == {file_sha256(a): out / "a"}


def test_resume_place_prefers_the_batchs_own_set_to_an_unclaimed_one(tmp_path):
    """A photo whose own prefix holds another photo's set, with a whole set of it both under a prefix of the batch
    (`finished`) and under one of no photo (`unclaimed`): the batch's own set is named (the one a rerun of the same
    names made)."""
    from dmenet.predict_inputs import Job
    from dmenet.predict_resume import resume_place
    from syndof.io import file_sha256

    out = tmp_path / "o"
    photo, other = _photo(tmp_path / "r" / "p.png", "p"), _photo(tmp_path / "r" / "q.png", "q")
    _a_set(out / "p", other)
    digest = file_sha256(photo)
    assert resume_place(Job(photo, out / "p"), WANTED, {digest: out / "q"}, {digest: out / "old"}) == \
        (out / "q", None)
    assert resume_place(Job(photo, out / "p"), WANTED, {}, {digest: out / "old"}) == (out / "old", None)


def test_collect_jobs_keeps_a_later_upper_case_prefix_apart_from_an_earlier_lower_case_one(tmp_path):
    """Inputs named in the order `a.png`, `A.png` (two files, one stem up to letter case): the first gets `a_png`,
    the second `A_png` would be the same name on APFS / NTFS, so it gets `A_png_2` (the prefix compared case-folded
    against those already given, whichever came first)."""
    from dmenet.predict_inputs import collect_jobs, prefix_key

    a, big = _photo(tmp_path / "r" / "a.png", "a"), _photo(tmp_path / "r" / "A.png", "A")
    jobs, problems = collect_jobs([a, big], tmp_path / "o")
    assert problems == [] and [job.prefix.name for job in jobs] == ["a_png", "A_png_2"]
    assert len({prefix_key(job.prefix) for job in jobs}) == 2


# ------------------------------------------------------------------------------------ image_names' unlistable folders
def _deny_scandir(monkeypatch, denied: set, filename: bool = True) -> None:
    """os.scandir raising PermissionError for the folders in ``denied`` (the tests may run as root, for whom
    ``chmod 000`` does not stop a listing); without ``filename`` the error names no path."""
    real = os.scandir

    def scandir(path="."):
        if Path(path) in denied:
            raise PermissionError(13, "Permission denied", *((str(path),) if filename else ()))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_image_names_raises_for_the_folder_itself_even_with_an_unreadable_list(tmp_path, monkeypatch):
    """A recursive listing of a folder that cannot be listed raises (the caller says "cannot be listed" for the
    input), even when the caller passes a list for unlistable sub-folders: only folders below it go there. An error
    that names no folder is raised as well (never reported under a guessed name)."""
    from syndof import io as sio

    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    _deny_scandir(monkeypatch, {top})
    found: list = []
    with pytest.raises(PermissionError):
        sio.image_names(top, recursive=True, unreadable=found)
    assert found == []
    monkeypatch.undo()  # the real os.scandir again: only the sub-folder is denied below
    _deny_scandir(monkeypatch, {top / "sub"}, filename=False)
    with pytest.raises(PermissionError):
        sio.image_names(top, recursive=True, unreadable=[])


def test_image_names_lists_a_folder_named_like_an_image_and_unlisted_come_in_path_order(tmp_path, monkeypatch):
    """`image_names` gives every image name, whatever stands there: a folder `d.png` below the top is one (and
    `list_images` leaves it out). The unlisted of `list_images_and_unlisted` are sorted by path: a link to nothing
    `a.png` comes before the unlistable folder `b_locked`, though the walk meets the folder's error first."""
    from syndof import io as sio

    top = tmp_path / "top"
    (top / "s" / "d.png").mkdir(parents=True)
    (top / "b_locked").mkdir()
    (top / "a.png").symlink_to(top / "nothing.png")
    assert sio.image_names(top, recursive=True) == [top / "a.png", top / "s" / "d.png"]
    assert sio.list_images(top, recursive=True) == []
    _deny_scandir(monkeypatch, {top / "b_locked"})
    files, unlisted = sio.list_images_and_unlisted(top, recursive=True)
    assert files == [] and [p for p, _ in unlisted] == [top / "a.png", top / "b_locked"], unlisted


# ------------------------------------------------------------------------------------------ syndof.io.read_image_stored
def test_read_image_stored_decodes_once_and_names_further_frames(tmp_path, monkeypatch):
    """`read_image_stored` of a 2-frame animated GIF (4×3 px, first frame gray 200): one decode gives the RGB photo
    (200/255 everywhere) and what the file stores (the GIF decodes to 3 uint8 channels), and it warns that only the
    first of the 2 frames is read (the apps' one read of each input: nothing else says so)."""
    from PIL import Image

    from syndof import frames
    from syndof import io as sio
    from syndof.io import decode

    gif = tmp_path / "anim.gif"
    first, second = Image.new("L", (4, 3), 200), Image.new("L", (4, 3), 50)
    first.save(gif, save_all=True, append_images=[second], duration=100, loop=0)
    decodes = []
    real = decode._decode_raw

    def counted(*args, **kwargs):
        decodes.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(decode, "_decode_raw", counted)
    with pytest.warns(frames.FirstFrameWarning, match="2 frames"):
        image, stored = sio.read_image_stored(gif)
    assert len(decodes) == 1
    assert image.shape == (3, 4, 3) and np.allclose(image, 200 / 255, atol=1e-6)
    assert stored == sio.Stored(3, np.dtype(np.uint8))


def test_read_frames_gives_each_files_stored_channels_in_file_order(tmp_path):
    """`apps_cli.read_frames` of [gray 16-bit, colour 8-bit, colour with alpha] (2×2 px each): what each stores, in
    the order of the files (1 channel uint16, 3 uint8, 4 uint8), so a note names the file it is about."""
    import cv2

    from dmenet.galetto.apps_cli import read_frames
    from syndof import io as sio

    cv2.imwrite(str(tmp_path / "g.png"), np.full((2, 2), 1000, np.uint16))
    cv2.imwrite(str(tmp_path / "c.png"), np.full((2, 2, 3), 7, np.uint8))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((2, 2, 4), 9, np.uint8))
    frames, stored = read_frames([tmp_path / "g.png", tmp_path / "c.png", tmp_path / "a.png"])
    assert frames.shape == (3, 2, 2, 3)
    assert stored == [sio.Stored(1, np.dtype(np.uint16)), sio.Stored(3, np.dtype(np.uint8)),
                      sio.Stored(4, np.dtype(np.uint8))]
