"""Round-11 mutation audit (docs/audit.md): the code changed on 6 Dec 2026 after round 10 (docs/reliability.md
§26, §27, the skip records): the training streams' and ``dmenet.train``'s records of skipped files, ``export``'s
check at another size along the dynamic axes, ``syndof.io.read_input_bytes`` and the one-walk listing, the
focal-stack method errors, the resume rules shared by the trainers (``dmenet.training.resume``), the stretched cosine
decay (``schedule.cosine_angle``) and the Distill schedule record, ``data.mask_suffix`` and ``split.py --glob``. Each
test names the mutant it kills; tiny inputs, training runs of two steps at most."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from syndof import io as sio


# ----------------------------------------------------------------------------------------------- io.read_input_bytes
def test_read_input_bytes_refuses_an_empty_file_and_names_an_unreadable_one(tmp_path, monkeypatch):
    """Mutants: ``read_input_bytes`` without its ``check_nonempty_file`` (an empty file read as b"", and a FIFO would
    wait for a writer), without its ``read_errors_named`` (a PermissionError's own ``[Errno 13] …`` line instead of
    ``PATH: Permission denied``). ``read_depth`` checks the file itself first, so only a direct call shows them."""
    data = tmp_path / "d.npy"
    data.write_bytes(b"\x93NUMPY")
    assert sio.read_input_bytes(data) == b"\x93NUMPY"
    empty = tmp_path / "e.npy"
    empty.touch()
    with pytest.raises(sio.InputError) as err:
        sio.read_input_bytes(empty)
    assert str(err.value) == f"{empty}: file is empty"

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)  # as `chmod 000` for a user other than root
    with pytest.raises(sio.InputError) as err:
        sio.read_input_bytes(data)
    assert str(err.value) == f"{data}: Permission denied"


# ------------------------------------------------------------------------------------------------------------- export
def _windows(batch: int):
    """An Exportable of nn.Flatten on ``batch`` windows 1×2×3, dynamic along the first axis."""
    from dmenet import export

    example = torch.rand(batch, 1, 2, 3, generator=torch.Generator().manual_seed(3))
    return export.Exportable(torch.nn.Flatten().eval(), example, ["patch"], ["logits"],
                             {"patch": {0: "windows"}, "logits": {0: "windows"}})


def test_the_second_check_input_has_one_window_fewer_whenever_there_are_two_or_more():
    """Mutant: ``n > 1`` written ``n > 2`` (two windows checked again at four; the tests had 1 and 4). The docstring:
    one item fewer along the first axis, two only if it holds one; a graph with every size fixed is checked once."""
    from dmenet import export

    assert [[tuple(x.shape) for x in export.check_inputs(_windows(n))] for n in (1, 2, 3)] == [
        [(1, 1, 2, 3), (2, 1, 2, 3)], [(2, 1, 2, 3), (1, 1, 2, 3)], [(3, 1, 2, 3), (2, 1, 2, 3)]]
    net = _windows(2)
    fixed = export.Exportable(net.module, net.example, net.inputs, net.outputs)
    assert [tuple(x.shape) for x in export.check_inputs(fixed)] == [(2, 1, 2, 3)]


class _Session:
    """A stand-in ONNX Runtime session: PyTorch's flatten plus ``offsets[batch]``, or ``error`` raised."""

    def __init__(self, offsets: dict[int, float], error: BaseException | None = None):
        self.offsets, self.error = offsets, error

    def run(self, names, feeds):
        if self.error is not None:
            raise self.error
        (x,) = feeds.values()
        return [x.reshape(x.shape[0], -1) + self.offsets[x.shape[0]]]


def test_the_check_is_the_largest_difference_over_both_inputs(monkeypatch):
    """Mutant: ``delta = max(delta, …)`` written ``delta = …`` (only the last input's difference counts: a graph wrong
    at the example's own size would pass when right at the smaller one). Outputs 0.5 off at 4 windows and 0.125 off
    at 3: the check is 0.5 whichever order; 0.125 off at both: 0.125."""
    from dmenet import export

    net = _windows(4)
    for offsets, want in (({4: 0.5, 3: 0.125}, 0.5), ({4: 0.125, 3: 0.5}, 0.5), ({4: 0.125, 3: 0.125}, 0.125)):
        monkeypatch.setattr(export, "ort_session", lambda graph, threads=1, o=offsets: _Session(o))
        assert export.check_onnx(net, b"graph") == pytest.approx(want)


@pytest.mark.parametrize("kind", ["Fail", "InvalidArgument", "RuntimeException"])
def test_every_onnx_runtime_refusal_of_a_check_input_is_an_infinite_difference(monkeypatch, kind):
    """Mutants: each of ONNX Runtime's ``Fail``, ``InvalidArgument`` (e.g. an input dimension fixed in the graph:
    "Got invalid dimensions for input") and ``RuntimeException`` dropped from the caught errors (a traceback instead of
    the command's one line "differs … at input …; not written"). Each raised by the session gives inf."""
    from dmenet import export

    state = pytest.importorskip("onnxruntime.capi.onnxruntime_pybind11_state")
    error = getattr(state, kind)("[ONNXRuntimeError] : shape mismatch")
    monkeypatch.setattr(export, "ort_session", lambda graph, threads=1: _Session({}, error))
    assert export.check_onnx(_windows(4), b"graph") == math.inf


def test_a_failed_check_names_both_input_sizes(tmp_path, capsys, monkeypatch):
    """Mutant: the refusal's inputs listed from ``[net.example]`` instead of :func:`check_inputs` (a graph that fails
    only at the second size was reported at the size it passes). The line names 4x1x2x3 or 3x1x2x3."""
    from dmenet import export

    pytest.importorskip("onnxruntime")
    net = _windows(4)
    monkeypatch.setitem(export.EXPORTERS, "dmenet", export.Exporter(lambda model, size: net, 16, 1))
    monkeypatch.setattr(export, "check_onnx", lambda net, graph, threads=1: math.inf)
    out = tmp_path / "x.onnx"
    assert export.main(["--format", "onnx", "--out", str(out), "--size", "16", "16"]) == 1
    err = capsys.readouterr().err.strip()
    assert "differs from PyTorch's by inf" in err and "at input 4x1x2x3 or 3x1x2x3;" in err and not out.exists()


# ------------------------------------------------------------------------------------------------------ io listings
@pytest.mark.parametrize("recursive", [False, True])
def test_the_one_walk_listing_refuses_a_missing_folder(tmp_path, recursive):
    """Mutant: ``list_images_and_unlisted`` without its folder check: a missing folder raised FileNotFoundError's own
    line (``iterdir``), and with ``recursive`` listed nothing at all (``rglob`` of nothing), as if it were an empty
    folder; ``image_entries`` (the datasets' listing) and predict's folder inputs read it. A file is no folder
    either."""
    missing, a_file = tmp_path / "nowhere", tmp_path / "a.png"
    a_file.write_bytes(b"x")
    for folder in (missing, a_file):
        for listing in (sio.list_images_and_unlisted, sio.image_entries):
            with pytest.raises(sio.InputError) as err:
                listing(folder, recursive)
            assert str(err.value) == f"{folder}: not a folder"


# -------------------------------------------------------------------------------------------------------- focal stack
def _two_stacks(tmp_path: Path, monkeypatch, error: BaseException) -> list[str]:
    """``--stack`` arguments of two stacks, ``bad`` (48×32 frames) and ``good`` (64×48), and a method that raises
    ``error`` on the 48-px-wide frames only (the round-10 focal-stack test's arrangement)."""
    import cv2
    from test_focal_stack import _stack

    from dmenet.eval import focal_stack as fs

    frames, _ = _stack(48, 64)
    for name in ("bad", "good"):
        for k, frame in enumerate(frames):
            sio.write_image(tmp_path / name / f"f{k}.png", cv2.resize(frame, (48, 32)) if name == "bad" else frame)

    def estimator_map(estimator):
        def blur(frame):
            if frame.shape[1] == 48:
                raise error
            return frame.mean(axis=2)
        return blur

    monkeypatch.setattr(fs, "estimator_map", estimator_map)
    return ["--stack", str(tmp_path / "bad"), str(tmp_path / "good"), "--method", "lbp", "--max-side", "0"]


@pytest.mark.parametrize("error, reason", [
    (RuntimeError("  "), "method lbp: RuntimeError"),
    (None, "method lbp: error: OpenCV")])
def test_a_method_failing_with_opencvs_error_or_a_blank_message_skips_its_stack(tmp_path, monkeypatch, error, reason):
    """Mutants: ``cv2.error`` dropped from ``METHOD_STACK_ERRORS`` (OpenCV refusing one stack's frames ended the run
    with a traceback; the tests raised RuntimeError and MemoryError only), ``str(exc).strip()`` written ``str(exc)``
    (a blank message gave ``RuntimeError: `` with nothing after it). The bad stack is skipped with its reason (the
    type alone for a blank message, OpenCV's own ``error`` and its one-line text otherwise), the good one scored."""
    import cv2

    from dmenet.eval import focal_stack as fs

    if error is None:
        try:
            cv2.resize(np.zeros((0, 0), np.float32), (4, 4))
        except cv2.error as exc:
            error = exc
    argv = _two_stacks(tmp_path, monkeypatch, error)
    assert fs.main([*argv, "--out", str(tmp_path / "out")]) == 0
    meta = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(meta["stacks"]) == {"good"} and set(meta["skipped"]) == {"bad"}
    got = meta["skipped"]["bad"]["reason"]
    assert (got == reason) if reason.endswith("RuntimeError") else (got.startswith(reason) and "\n" not in got)


def test_a_recursion_error_in_a_method_ends_the_run(tmp_path, monkeypatch):
    """Mutant: ``RecursionError`` dropped from ``METHOD_BUGS`` (a RuntimeError subclass: the programming error was
    reported as each stack's bad input and the run went on). It propagates and nothing is written."""
    from dmenet.eval import focal_stack as fs

    argv = _two_stacks(tmp_path, monkeypatch, RecursionError("maximum recursion depth exceeded"))
    with pytest.raises(RecursionError):
        fs.main([*argv, "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------- dmenet.train
def test_a_resume_may_change_only_the_runtime_keys_and_never_go_below_the_steps_done(tiny_syndof, blur_run_copy,
                                                                                     caplog):
    """Mutants: ``check_resume``'s steps check given ``done − 1`` (a resume of the 2-step run with ``--steps 1``
    was let through: the run's record would say 1 step and its checkpoint 2), its line without the flag that set
    ``train.steps``, and ``resume_free_keys(())`` (a resume on another device or with another W&B mode, the
    RUNTIME keys, refused as a changed recipe). No test resumed ``dmenet.train`` below its steps or with a runtime
    key changed: the Distill trainer's tests cover its own copy of the rule."""
    from hostile_helpers import assert_logged_usage_error
    from train_data_helpers import blur_cli

    from dmenet.config import load_config
    from dmenet.train import check_resume, main

    folder = blur_run_copy / "checkpoints" / json.loads((blur_run_copy / "checkpoints" / "last.json").read_text())[
        "dir"]
    cfg = load_config(blur_run_copy / "config.yaml", ["train.device=cuda", "train.wandb=offline"])
    assert check_resume(cfg, blur_run_copy) == folder
    line = assert_logged_usage_error(main, blur_cli(tiny_syndof, blur_run_copy, "--steps", "1", "--resume"), caplog)
    assert f"train.steps 1 (--steps) is below the step 2 of the checkpoint {folder} (2 step(s) done)" in line


def test_a_run_counts_every_file_it_skipped_and_a_clean_resume_warns_of_none(tmp_path, blur_run_copy, tiny_syndof,
                                                                             caplog):
    """Mutants: the closing warning's count taken as the number of domains with skips (the test had one file in
    each of two: 2 either way), and the warning given when nothing was skipped ("0 training image(s) were
    skipped"). Here two of the three training images and the validation image are corrupt: 3 (the four samples
    the two steps draw visit every position of the stream's permutation); a clean run (the finished session run,
    resumed with its own total: no step) says nothing."""
    import logging

    from train_data_helpers import blur_cli, write_syndof

    from dmenet.train import main

    root = write_syndof(tmp_path / "syn", count=4)
    for stem in ("s001", "s002", "s003"):  # s003: the last stem, held out for validation by data.val_count=1
        (root / "image" / f"{stem}.png").write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    with caplog.at_level(logging.WARNING):
        assert main(blur_cli(root, tmp_path / "skips", "--steps", "2", "--set", "data.val_count=1",
                             "train.ckpt_every=2")) == 0
    said = [r.getMessage() for r in caplog.records if "were skipped as unreadable" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("3 training image(s) were skipped as unreadable (synthetic, "
                                                 "validation)"), said
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(blur_cli(tiny_syndof, blur_run_copy, "--steps", "2", "--resume")) == 0  # finished: no step
    assert not [r for r in caplog.records if "were skipped" in r.getMessage()]


# ---------------------------------------------------------------------------------------- resume rules and schedules
def test_steps_problem_lets_an_equal_total_through_and_names_the_flag():
    """Mutant: ``steps >= done`` written ``steps > done`` (a resume of a finished run with its own total, which
    has nothing left to do, refused as going below the steps done; the tests resumed with more steps or fewer).
    The line names the flag that set ``train.steps`` when there is one."""
    from dmenet.training.resume import resume_free_keys, steps_problem

    assert steps_problem(4, 4, "ck") is None and steps_problem(9, 4, "ck") is None
    assert steps_problem(3, 4, "run/ck", "--steps") == ("--resume: train.steps 3 (--steps) is below the step 4 of the "
                                                        "checkpoint run/ck (4 step(s) done); a resume can only "
                                                        "extend a run (nothing was changed)")
    assert steps_problem(3, 4, "ck").startswith("--resume: train.steps 3 is below")
    assert resume_free_keys(("device", "wandb")) == {"train.device", "train.wandb", "train.steps"}


def test_cosine_angle_refuses_no_segments_and_a_repeated_resume_point():
    """Mutants: the check without ``not segments`` (an empty schedule an IndexError, not the ValueError that names
    it), and the resume points compared with ``<`` (two segments from the same step let through: which total holds
    there is undefined). Strictly increasing points pass."""
    from dmenet.training.schedule import cosine_angle

    for bad in ([], [(0, 4), (2, 8), (2, 9)]):
        with pytest.raises(ValueError, match="strictly increase"):
            cosine_angle(3, bad)
    assert cosine_angle(3, [(0, 4), (2, 8), (3, 9)]) == pytest.approx(math.pi / 2 + math.pi / 2 / 6)


def _schedule(value, step: int = 5):
    """:func:`checkpoint_schedule` of a meta.json with ``train_steps`` ``value`` at ``step`` (run started with 4)."""
    from dmenet.distill.checkpoints import checkpoint_schedule

    return checkpoint_schedule(Path("ck"), {"step": step, "train_steps": value}, 4)


@pytest.mark.parametrize("value", [
    [[0, 4], [2, 2]],  # a total not above its start
    [[0, 4], [True, 8]],  # a bool is no step number
    [[0, 4, 6]],  # three numbers
    [[1, 4]],  # not from step 0
    [[0, 4], [2, 8], [2, 9]],  # one start twice
    [[0, 4], [6, 8]],  # a resume point after the checkpoint's own step 5
    [[0, 4], [5, 8]]])
def test_a_damaged_schedule_record_is_named(value):
    """Mutants: each of ``checkpoint_schedule``'s conditions dropped or loosened: ``p[1] > p[0]``, the bool test,
    ``len(p) == 2``, ``segments[0][0] != 0``, ``<=`` between starts written ``<``, the last start compared with the
    checkpoint's step by ``>=`` or not at all (the test had one record breaking several at once). The last case is
    a good record: a run resumed at step 5 and checkpointed there (train.ckpt_every 1)."""
    from dmenet.training.checkpoint import CheckpointError

    if value == [[0, 4], [5, 8]]:
        assert _schedule(value) == ((0, 4), (5, 8))
        return
    with pytest.raises(CheckpointError, match=r"ck/meta\.json: 'train_steps' must be"):
        _schedule(value)


def test_run_schedule_adds_a_segment_only_for_a_new_total_with_steps_left():
    """Mutants: ``steps <= start`` written ``steps < start`` (a resume that shortens the run to exactly the steps done
    added a segment of no steps, and a note of a stretched decay), the new total compared with the first segment's
    instead of the last (a twice-extended run resumed with its current total got one more segment)."""
    from dmenet.distill.checkpoints import run_schedule

    assert run_schedule(((0, 4),), 2, 4) == ((0, 4),)
    assert run_schedule(((0, 4),), 2, 8) == ((0, 4), (2, 8))
    assert run_schedule(((0, 8),), 6, 6) == ((0, 8),)
    assert run_schedule(((0, 4), (2, 8)), 6, 8) == ((0, 4), (2, 8))


def test_a_run_config_reads_an_added_key_it_lacks_at_the_old_value_and_keeps_one_it_has():
    """Mutants: :data:`ADDED_KEYS` laid over the config instead of under it (a run trained with
    ``data.mask_suffix=_binary`` read back as "" and its resume refused as changed), or not at all (a run from before
    the key refused). A config that sets a key keeps its value; one without it reads as the old behaviour."""
    import yaml

    from dmenet.distill.train import ADDED_KEYS, _recipe

    text = yaml.safe_dump({"data": {"mask_suffix": "_binary", "batch": 3}, "train": {"channels_last": True}})
    rest = {k: v for k, v in ADDED_KEYS.items() if k not in ("data.mask_suffix", "train.channels_last")}
    assert _recipe(text) == {"data.mask_suffix": "_binary", "data.batch": 3, "train.channels_last": True, **rest}
    old = _recipe(yaml.safe_dump({"data": {"batch": 3}, "train": {"steps": 4}}))
    assert old == {"data.batch": 3, "train.steps": 4, "data.mask_suffix": "", "train.channels_last": False, **rest}
    assert ADDED_KEYS == {"train.channels_last": False, "data.mask_suffix": "", "train.init_from": None,
                          "train.device": "cpu", "loss.sharp_consistency": True}  # §33 Z2


# ------------------------------------------------------------------------------------------------ distill schedules
def test_a_run_never_extended_keeps_its_model_file_and_old_checkpoints_as_they_were(tmp_path):
    """Mutants: the model file's schedule written for every run (``len(run.segments) >= 1``: only an extended
    run's model file says so), and a checkpoint from before the record rewritten by a resume that changes no
    total (``len(schedule) > 1`` dropped: nothing is stretched, there is nothing to record). A 4-step run stopped
    after step 1: its model.json has no ``train_steps``; its meta.json, made one from before 6 Dec 2026, is left
    byte for byte by a resume with the same total. Mutant: ``resume_point``'s steps check run on a step its folder's
    name does not repeat (a damaged meta.json saying step 7 in ``step_000001`` refused as "train.steps 5 is below
    the step 8" instead of named as damaged)."""
    from test_distill import TINY, _dataset

    from dmenet.distill import train as T
    from dmenet.training.checkpoint import CheckpointError
    from dmenet.distill.config import load_distill_config

    sets = _dataset(tmp_path / "d") + TINY
    cfg = load_distill_config(None, sets)
    T.train(cfg, tmp_path / "run", max_steps=2)
    folder = tmp_path / "run" / "ckpt" / "step_000001"
    info = json.loads((folder / "model.json").read_text())
    assert info["step"] == 1 and "train_steps" not in info
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["train_steps"] == [[0, 4]]
    legacy = json.dumps({k: v for k, v in meta.items() if k != "train_steps"})
    (folder / "meta.json").write_text(legacy)
    T.train(cfg, tmp_path / "run", resume=True, max_steps=2)  # nothing left before max_steps: no step runs
    assert (folder / "meta.json").read_text() == legacy
    (folder / "meta.json").write_text(json.dumps({**meta, "step": 7}))  # not its folder's step: damaged
    with pytest.raises(CheckpointError, match="step_000001"):
        T.train(load_distill_config(None, sets + ["train.steps=5"]), tmp_path / "run", resume=True)


# ------------------------------------------------------------------------------------ own data: mask_suffix, split.py
def test_split_takes_cuhks_photos_by_default_files_only_and_says_what_it_split(tmp_path, capsys):
    """Mutants: ``DEFAULT_GLOB`` widened to ``*.jpg`` (a CUHK folder's other JPEGs split as defocus photos), the
    ``is_file`` test dropped (a folder named like a photo listed as one: it has no mask), the header without the
    pattern, and a backslash let through as a folder in ``--glob`` (the tests gave ``sub/*.png`` only)."""
    from test_distill import _script

    from dmenet.distill.split import read_split
    from syndof.io import write_image

    split = _script("split")
    images = tmp_path / "img"
    for name in ("out_of_focus0001.jpg", "out_of_focus0002.jpg", "out_of_focus0004.jpg", "motion0003.jpg",
                 "out_of_focus0005.png"):
        write_image(images / name, np.zeros((8, 8, 3), np.float32))
    (images / "out_of_focus0009.jpg").mkdir()  # a folder named like a photo
    out = tmp_path / "lists" / "x"
    assert split.main(["--images", str(images), "--val-count", "1", "--out", str(out)]) == 0
    train, val = read_split(f"{out}_train.txt"), read_split(f"{out}_val.txt")
    assert sorted(train + val) == ["out_of_focus0001", "out_of_focus0002", "out_of_focus0004"] and len(val) == 1
    head = Path(f"{out}_train.txt").read_text().splitlines()[0]
    assert head == f"# out_of_focus*.jpg of {images}, seed 20, cuhk/image test five excluded"
    capsys.readouterr()
    assert split.main(["--images", str(images), "--glob", "sub\\*.jpg", "--out", str(tmp_path / "y")]) == 2
    assert "--glob sub\\*.jpg: a pattern of file names in --images, without a folder" in capsys.readouterr().err
    assert not (tmp_path / "y_train.txt").exists()


def test_a_mask_suffix_with_a_backslash_is_refused():
    """Mutant: ``data.mask_suffix``'s check without the backslash (a Windows folder separator taken as part of a
    stem; the tests gave ``/``). A plain suffix passes."""
    from dmenet.configlib import ConfigError
    from dmenet.distill.config import load_distill_config

    assert load_distill_config(None, ["data.mask_suffix=_binary"]).data.mask_suffix == "_binary"
    with pytest.raises(ConfigError, match="data.mask_suffix must be a file-name suffix"):
        load_distill_config(None, ["data.mask_suffix=masks\\x"])


def test_distill_calibrate_pairs_the_masks_by_the_configured_suffix(tmp_path, capsys):
    """Mutant: ``distill-calibrate`` listing the validation items without ``data.mask_suffix`` (a syndof.generate
    folder, whose masks are ``STEM_binary.png``, refused with "no mask"; the own-data tests trained but never
    calibrated). A random tiny student calibrates on the two validation photos."""
    from test_distill import TINY_STUDENT
    from test_distill_own_data import _syndof_folder

    from dmenet.distill import calibrate
    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.models.unet import EffUNet

    root = tmp_path / "syn"
    _syndof_folder(root)
    (tmp_path / "val.txt").write_text("000003_src3\n000004_src4\n")
    torch.manual_seed(0)
    save_distill_model(tmp_path / "student", "student", EffUNet(TINY_STUDENT))
    assert calibrate.main(["--model", str(tmp_path / "student"), "--out", str(tmp_path / "cal"), "--set",
                           f"data.images={root / 'image'}", f"data.masks={root / 'blur_map_binary'}",
                           "data.mask_suffix=_binary", f"data.val_list={tmp_path / 'val.txt'}",
                           "data.val_side=64"]) == 0, capsys.readouterr().err
    info = json.loads((tmp_path / "cal.json").read_text())
    assert info["calibration"]["n_images"] == 2


def test_the_note_of_a_stretched_decay_is_said_once_per_change_with_the_totals_it_joins(tmp_path, capsys):
    """Mutants: the note printed on every resume of an extended run (``len(schedule) > 1`` for "this resume added
    a segment": the extended run killed and resumed with its own total said "4 -> 8" again), and its old total
    taken from the first segment (a second extension 8 → 10 said "4 -> 10"). The tests extended once."""
    from test_distill import TINY, _dataset

    from dmenet.distill import train as T
    from dmenet.distill.config import load_distill_config

    sets = _dataset(tmp_path / "d") + TINY
    out = tmp_path / "run"
    T.train(load_distill_config(None, sets), out, max_steps=2)  # steps 0-1 of 4
    eight, ten = (load_distill_config(None, sets + [f"train.steps={n}"]) for n in (8, 10))
    T.train(eight, out, resume=True, max_steps=3)  # step 2, then stopped
    assert "note: train.steps 4 -> 8 from step 2:" in capsys.readouterr().out
    T.train(eight, out, resume=True, max_steps=3)  # the same total: nothing stretched anew, no step left here
    assert "note: train.steps" not in capsys.readouterr().out
    T.train(ten, out, resume=True, max_steps=4)
    assert "note: train.steps 8 -> 10 from step 3:" in capsys.readouterr().out
    meta = json.loads((out / "ckpt" / "step_000003" / "meta.json").read_text())
    assert meta["train_steps"] == [[0, 4], [2, 8], [3, 10]]


# ----------------------------------------------------------------------------------------------------- stream record
def test_a_streams_skipped_list_is_sorted_whatever_order_it_met_them(tmp_path):
    """Mutant: :attr:`DomainStream.skipped` as ``list(set)`` instead of ``sorted`` (the record's order followed the
    process's string hashing; the test had two files, which a random order puts right half the time). Six of seven
    samples corrupt, all met within two passes: the six ``PATH: reason`` lines in path order (a random order of six
    is sorted once in 720)."""
    from test_skip_records import _synthetic, _transform

    from dmenet.data.stream import DomainStream
    from dmenet.data.synthetic import SyntheticDataset

    stems = [f"s{i}" for i in range(7)]
    root = _synthetic(tmp_path / "syn", stems)
    for stem in stems[1:]:
        (root / "image" / f"{stem}.png").write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    stream = DomainStream(SyntheticDataset(root), 7, seed=3, transform=_transform, name="synthetic")
    stream.next_batch()
    stream.next_batch()
    want = sorted(f"{root / 'image' / f'{s}.png'}" for s in stems[1:])
    assert [line.split(": ", 1)[0] for line in stream.skipped] == want
    assert stream.state_dict()[1]["skipped"] == stream.skipped
