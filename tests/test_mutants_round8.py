"""Round-8 mutation audit (docs/audit.md): the code changed on 6 Dec 2026 (docs/reliability.md §15, §16): the frame
note of animated files, the PNG chunk walk, the readers' naming of special files, the atomic writers' ``replace``,
the trainers' checkpoint pointers and start record, the data record's model fingerprint, a config section written
as a value, the Distill checkpoint folder and start files, ``calibrate average``'s distinct files, predict's skip
lines. Each test names the mutant it kills; tiny inputs, no network trained except where a resume is the subject."""

from __future__ import annotations

import io
import itertools
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from dmenet.distill.checkpoints import full_states
from dmenet.distill.run import build_student, build_teacher
from syndof import io as sio
from syndof.io import InputError


# ------------------------------------------------------------------------------------------------------------- frames
def test_an_mpo_second_picture_is_no_frame():
    """Mutant: ``extra_images_note`` names every format's extra images, not only :data:`FRAMED_FORMATS`' (an MPO's
    second picture, a preview or the other eye, would be "only the first is read"). Pillow counts an MPO of two
    pictures as ``n_frames`` 2; the note is None."""
    from PIL import Image

    from syndof.frames import extra_images_note

    pictures = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 200)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="MPO", save_all=True, append_images=pictures[1:])
    with Image.open(io.BytesIO(buffer.getvalue())) as pil:
        assert pil.format == "MPO" and pil.n_frames == 2
        assert extra_images_note(pil) is None


# --------------------------------------------------------------------------------------------------------- png chunks
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _tiny_png(extra_before_iend: bytes = b"", after_iend: bytes = b"") -> bytes:
    """A 1×1 gray PNG written chunk by chunk: signature, IHDR (offset 8), IDAT, ``extra_before_iend``, IEND and
    ``after_iend`` (bytes past the end of the image)."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00\x7f"))
            + extra_before_iend + _chunk(b"IEND", b"") + after_iend)


def test_chunk_walk_by_hand():
    """Mutants: the data offset 4 bytes early (``position + 4``), the next header at ``8 + length`` (CRC not
    skipped), the walk starting at offset 0 (the signature as a header). IHDR's data starts at 8 + 8 = 16 and is 13
    bytes; IDAT's header follows at 16 + 13 + 4 = 33, its data at 41; ``chunk_data`` returns exactly a chunk's data."""
    from syndof.png_chunks import chunk_data, chunks

    data = _tiny_png(_chunk(b"tEXt", b"k\x00v"))
    idat = len(zlib.compress(b"\x00\x7f"))
    walked = list(chunks(io.BytesIO(data)))
    assert walked == [(b"IHDR", 13, 16), (b"IDAT", idat, 41), (b"tEXt", 3, 41 + idat + 4 + 8),
                      (b"IEND", 0, 41 + idat + 4 + 8 + 3 + 4 + 8)]
    assert chunk_data(io.BytesIO(data), b"tEXt") == b"k\x00v"
    assert chunk_data(io.BytesIO(data), b"IHDR") == struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    assert chunk_data(io.BytesIO(data), b"eXIf") is None


def test_chunk_data_reads_at_most_its_limit():
    """Mutant: ``chunk_data`` reads the whole chunk whatever ``limit`` (a hostile 4 GiB length would be read)."""
    from syndof.png_chunks import chunk_data

    data = _tiny_png(_chunk(b"tEXt", b"0123456789"))
    assert chunk_data(io.BytesIO(data), b"tEXt", limit=4) == b"0123"
    assert chunk_data(io.BytesIO(data), b"tEXt", limit=100) == b"0123456789"


def test_chunk_walk_stops_at_iend_and_at_a_partial_header():
    """Mutants: the walk goes on past IEND (bytes appended after the image, e.g. a trailer or another file, read as
    chunks: an eXIf there would turn the photo); a header cut after 4–7 bytes yields a chunk of a partial type. The
    walk ends at IEND, and a truncated file yields only the chunks whose 8-byte headers are whole."""
    from syndof.png_chunks import chunk_data, chunks

    data = _tiny_png(after_iend=_chunk(b"eXIf", b"MM\x00*"))
    assert [c[0] for c in chunks(io.BytesIO(data))] == [b"IHDR", b"IDAT", b"IEND"]
    assert chunk_data(io.BytesIO(data), b"eXIf") is None
    cut = _tiny_png()[:33 + 6]  # IHDR whole, then 6 bytes of IDAT's header
    assert list(chunks(io.BytesIO(cut))) == [(b"IHDR", 13, 16)]


def test_chunk_walk_of_a_file_equals_that_of_its_bytes(tmp_path):
    """Mutants: ``os.pread``'s size and offset swapped; the data read where the file position happens to be (the
    ``seek`` to the chunk dropped). A file (read with ``pread``) walks as its bytes (seek and read) do, and
    ``chunk_data`` returns the chunk's data wherever the file position was left."""
    from syndof.png_chunks import chunk_data, chunks

    data = _tiny_png(_chunk(b"tEXt", b"k\x00v"))
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        assert list(itertools.islice(chunks(fh), 10)) == list(chunks(io.BytesIO(data)))  # a bounded walk
        fh.seek(3)
        assert chunk_data(fh, b"tEXt") == b"k\x00v"


# ------------------------------------------------------------------------------------------------ special files (H80)
def test_a_name_under_a_file_is_not_found(tmp_path):
    """Mutant: ``ENOTDIR`` (a path through a regular file, ``x.png/y.png``) not counted as "not there": the reader
    said "Not a directory" where nothing is there. It is "file not found", as a missing name."""
    (tmp_path / "x.png").write_bytes(b"not a folder")
    assert sio.special_file_problem(tmp_path / "x.png" / "y.png") is None
    with pytest.raises(InputError, match=r"x\.png/y\.png: file not found$"):
        sio.check_nonempty_file(tmp_path / "x.png" / "y.png")


def test_another_stat_error_is_named_by_its_text(tmp_path):
    """Mutant: an error of ``stat`` other than "not there" (here a name longer than the file system allows,
    ``ENAMETOOLONG``; a folder above that cannot be searched gives ``Permission denied``) reported as "file not
    found". Its text is the reason."""
    import errno

    long_name = tmp_path / ("x" * 300 + ".png")
    assert sio.special_file_problem(long_name) == os.strerror(errno.ENAMETOOLONG)
    with pytest.raises(InputError, match=rf"{os.strerror(errno.ENAMETOOLONG)}$"):
        sio.check_nonempty_file(long_name)


def test_a_character_device_is_not_a_regular_file():
    """Mutant: only a FIFO named "not a regular file" (a device such as /dev/null fell through as None: "file not
    found", though it is there)."""
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    assert sio.special_file_problem(Path("/dev/null")) == "not a regular file (a FIFO, socket or device)"
    with pytest.raises(InputError, match="not a regular file"):
        sio.check_nonempty_file("/dev/null")


# ------------------------------------------------------------------------------------------- no-replace atomic writes
@pytest.mark.parametrize("write, value", [(sio.write_bytes_atomic, b"new"), (sio.write_text_atomic, "new"),
                                          (sio.write_json_atomic, {"new": 1})])
def test_atomic_writers_without_replace_keep_an_existing_file(tmp_path, write, value):
    """Mutants: ``replace`` dropped on the way down (``write_bytes_atomic`` → ``atomic_path``, ``write_text_atomic``
    → ``write_bytes_atomic``, ``write_json_atomic`` → ``write_text_atomic``): the file written meanwhile was
    replaced. Without ``replace`` an existing file is kept (FileExistsError) and no temporary is left; with it
    (the default) it is replaced."""
    path = tmp_path / "selection.json"
    path.write_text("theirs")
    with pytest.raises(FileExistsError):
        write(path, value, replace=False)
    assert path.read_text() == "theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["selection.json"]
    write(tmp_path / "fresh.json", value, replace=False)
    assert (tmp_path / "fresh.json").exists()
    write(path, value)
    assert path.read_text() != "theirs"


# ------------------------------------------------------------------------------------------ checkpoint pointers (H59)
def _pointer(tmp_path: Path, entry: dict, name: str = "best.json") -> Path:
    import json

    root = tmp_path / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps(entry))
    return root / name


@pytest.mark.parametrize("entry, problem", [
    ({"dir": "step_00000001", "metric": True}, "'metric' must be a number or null, got True"),
    ({"dir": "step_00000001", "metric": "0.1"}, "'metric' must be a number or null, got '0.1'"),
    ({"dir": "..", "metric": 0.1}, "'dir' must name a checkpoint folder beside it, got '..'"),
    ({"dir": "../other/step_00000001", "metric": 0.1}, "'dir' must name a checkpoint folder beside it"),
])
def test_read_pointer_refuses_a_damaged_entry(tmp_path, entry, problem):
    """Mutants: ``read_pointer`` taking a JSON ``true`` as a metric (``bool`` is an ``int``), no metric check at all,
    ``..`` as a folder name. Each is a CheckpointError naming the file; a number, NaN and null are metrics."""
    from dmenet.training.checkpoint import CheckpointError, read_pointer

    pointer = _pointer(tmp_path, entry)
    with pytest.raises(CheckpointError, match=rf"^{pointer}: " + problem.replace("(", r"\(").replace(")", r"\)")):
        read_pointer(pointer)
    for metric in (0.25, 3, None, float("nan")):
        assert read_pointer(_pointer(tmp_path, {"dir": "step_00000001", "metric": metric}))["dir"] == "step_00000001"


def test_best_pointer_to_nothing_is_refused_not_taken_as_none(tmp_path):
    """Mutant: ``best_pointer`` reading only a regular file: a ``best.json`` that is a link to nothing (or a folder)
    counted as no best yet, and the resumed run chose its best anew over the run's record silently. It is a
    CheckpointError naming it; no best.json at all is None."""
    from dmenet.training.checkpoint import CheckpointError, best_pointer

    assert best_pointer(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.json").symlink_to("gone.json")
    with pytest.raises(CheckpointError, match="best.json"):
        best_pointer(tmp_path)


def test_update_pointers_refuses_a_damaged_best_pointer(tmp_path):
    """Mutant: ``update_pointers`` reading ``best.json`` unchecked (as before ``read_pointer``): a metric written as
    a string failed with a TypeError of ``<=`` at the first checkpoint. A CheckpointError naming the file, and
    ``last.json`` not moved."""
    from dmenet.training.checkpoint import CheckpointError, update_pointers

    pointer = _pointer(tmp_path, {"dir": "step_00000001", "metric": "low"})
    folder = tmp_path / "checkpoints" / "step_00000002"
    folder.mkdir()
    with pytest.raises(CheckpointError, match=rf"^{pointer}: 'metric'"):
        update_pointers(tmp_path, folder, 2, 0.5)
    assert not (tmp_path / "checkpoints" / "last.json").exists()


def test_resumed_init_by_hand():
    """Mutants: ``resumed_init`` taking a non-mapping ``init`` (a hand-edited list) as the saved record (a
    TypeError), or dropping ``started_from_meta``. The built record with both start keys of a mapping, only those;
    anything else keeps the built record."""
    from dmenet.training.checkpoint import resumed_init

    built = {"encoder": "mobilenet_v2", "c": "random"}
    meta = {"init": {"started_from": "runs/a/model_last", "started_from_meta": {"step": 3}, "encoder": "vgg19"}}
    assert resumed_init(meta, built) == {**built, "started_from": "runs/a/model_last",
                                         "started_from_meta": {"step": 3}}
    for init in (["started_from"], "runs/a", None):
        assert resumed_init({"init": init}, built) == built
    assert resumed_init({}, built) == built


def test_a_stat_error_of_the_check_is_one_input_error(tmp_path, monkeypatch):
    """Mutant: ``check_nonempty_file`` without ``read_errors_named``: an OSError of its ``stat`` (``Permission denied``
    of a folder above that cannot be searched, which ``Path.is_file`` raises; an I/O error) escaped as itself, its text
    repeating the path. It is InputError ``"<path>: <strerror>"``. (Root searches any folder: the kernel's refusal is
    stood in for.)"""
    path = tmp_path / "x.png"
    path.write_bytes(b"x")
    real_stat = Path.stat

    def denied(self, *args, **kwargs):
        if str(self) == str(path):
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", denied)
    with pytest.raises(InputError) as err:
        sio.check_nonempty_file(path)
    assert str(err.value) == f"{path}: Permission denied"


# ------------------------------------------------------------------------------------------------ data record (H61)
def test_model_fingerprint_by_hand(tmp_path, monkeypatch):
    """Mutants: ``model_fingerprint`` recording the name as given (relative, without its suffix) instead of the
    weights' absolute path; no check that the weights are there (a missing file got the digest of nothing). The
    record is the weights' absolute path and the SHA-256 of weights + NUL + sidecar + NUL; a missing file is an
    InputError naming the weights."""
    import hashlib

    from dmenet.training.data_record import model_fingerprint

    monkeypatch.chdir(tmp_path)
    (tmp_path / "teacher.safetensors").write_bytes(b"weights")
    (tmp_path / "teacher.json").write_bytes(b"{}")
    assert model_fingerprint("teacher") == {"path": str(tmp_path / "teacher.safetensors"),
                                            "model_sha256": hashlib.sha256(b"weights\0{}\0").hexdigest()}
    with pytest.raises(InputError, match=r"gone\.safetensors: model file not found"):
        model_fingerprint("gone")


def test_what_changed_of_a_model_record_with_one_side_missing_its_digest():
    """Mutant: a model fingerprint compared only when both sides have a digest (``and``): a record with one and a
    fingerprint without fell through to the folder comparison, where every field is missing on both sides: "no
    change". A model on one side only is a change; equal digests are none."""
    from dmenet.training.data_record import what_changed

    model = {"path": "/m/t.safetensors", "model_sha256": "a" * 64}
    assert what_changed(model, {"path": "/m/t.safetensors"}) is not None
    assert what_changed({"path": "/m/t.safetensors"}, model) is not None
    assert what_changed(model, dict(model)) is None
    assert "another model file" in what_changed(model, {**model, "model_sha256": "b" * 64})


# --------------------------------------------------------------------------------------------------- config (H60)
@pytest.mark.parametrize("value", ["mobilenet_v2", False, 0, []])
def test_an_override_into_a_section_written_as_a_value_is_refused(value):
    """Mutants: ``_set_nested`` replacing a section that is no mapping by ``{}`` (as before H60), or replacing every
    falsy one (``false``, ``0``, ``[]``). ``apply_overrides`` into such a section is a ConfigError naming it (here
    without ``load_config``'s own check of the file); a missing or empty (None) section becomes one, and an existing
    mapping keeps its keys."""
    from dmenet.config import apply_overrides
    from dmenet.configlib import ConfigError

    with pytest.raises(ConfigError, match=r"^model: expected a mapping of its keys, got "):
        apply_overrides({"model": value}, ["model.width=0.5"])
    assert apply_overrides({"model": None}, ["model.width=0.5"]) == {"model": {"width": 0.5}}
    assert apply_overrides({}, ["model.width=0.5"]) == {"model": {"width": 0.5}}
    assert apply_overrides({"model": {"encoder": "vgg19"}}, ["model.width=0.5"]) == {
        "model": {"encoder": "vgg19", "width": 0.5}}


# ------------------------------------------------------------------------------------------ Distill checkpoints (H64)
def test_full_states_leave_out_an_old_staging_folder(tmp_path):
    """Mutant: ``full_states`` counting a ``step_N.tmp`` left by a failed write before 6 Dec 2026 (it sorts after
    ``step_N``, so a resume would have loaded the half-written state as the newest checkpoint)."""
    from dmenet.distill import train as dtrain

    for name in ("step_000001", "step_000002.tmp", "step_000003"):
        (tmp_path / "ckpt" / name).mkdir(parents=True)
        (tmp_path / "ckpt" / name / "state.safetensors").write_bytes(b"x")
    (tmp_path / "ckpt" / "step_000003" / "state.safetensors").unlink()  # pruned: the exported model only
    assert full_states(tmp_path) == [tmp_path / "ckpt" / "step_000001"]
    assert dtrain.latest_checkpoint(tmp_path) == tmp_path / "ckpt" / "step_000001"


def test_save_checkpoint_replaces_a_step_and_prunes_all_but_keep_last_states(tmp_path):
    """Mutants: the step's folder written without ``replace`` (a second write of one step, e.g. after a resume from
    an earlier checkpoint, failed on the folder already there); one state too many kept. Steps 1, 2, 3 saved with
    keep_last 2: the full state of steps 2 and 3 stays, step 1 keeps its exported model only; step 3 saved again
    replaces its folder (its meta.json says the new validation) and leaves no staging folder beside it."""
    import json

    from test_distill import TINY

    from dmenet.distill import train as dtrain
    from dmenet.distill.config import load_distill_config

    run = dtrain.build_run(load_distill_config(None, TINY))
    for step in (1, 2, 3):
        dtrain.save_checkpoint(tmp_path, run, step, {"loss": float(step)}, keep_last=2)
    ckpt = tmp_path / "ckpt"
    assert full_states(tmp_path) == [ckpt / "step_000002", ckpt / "step_000003"]
    assert (ckpt / "step_000001" / "model.safetensors").is_file()
    dtrain.save_checkpoint(tmp_path, run, 3, {"loss": 0.5}, keep_last=2)
    assert json.loads((ckpt / "step_000003" / "meta.json").read_text())["val"] == {"loss": 0.5}
    assert sorted(p.name for p in ckpt.iterdir()) == ["step_000001", "step_000002", "step_000003"]


def test_teacher_fingerprint_only_of_a_kd_run_with_a_teacher_model(tmp_path):
    """Mutant: the frozen teacher's fingerprint recorded for every run naming ``train.teacher_model`` (``and`` for
    ``or``): a joint run trains its teacher (the checkpoint holds it), so its start file is no input of a resume.
    Only a kd run with a teacher model records it, under ``train.teacher_model``."""
    from test_distill import TINY

    from dmenet.distill import train as dtrain
    from dmenet.distill.config import load_distill_config

    (tmp_path / "t.safetensors").write_bytes(b"weights")
    teacher = f"train.teacher_model={tmp_path / 't'}"
    assert dtrain.teacher_fingerprint(load_distill_config(None, TINY + ["train.stage=joint", teacher])) == {}
    assert dtrain.teacher_fingerprint(load_distill_config(None, TINY + ["train.stage=kd"])) == {}
    kd = dtrain.teacher_fingerprint(load_distill_config(None, TINY + ["train.stage=kd", teacher]))
    assert list(kd) == [dtrain.TEACHER_KEY] and kd[dtrain.TEACHER_KEY]["path"] == str(tmp_path / "t.safetensors")


def test_a_resume_before_the_first_checkpoint_still_takes_the_start_file(tmp_path):
    """Mutant: ``build_run(start=not resume)`` instead of ``start=last is None``: a run resumed before its first
    checkpoint starts at step 0 and has no checkpoint to load, so without the start file (``train.init_from``) it
    trained from random weights. It ends where an uninterrupted fine-tune ends, tensor for tensor."""
    import torch
    import yaml
    from safetensors.torch import load_file
    from test_distill import TINY, _dataset

    from dmenet.configlib import config_to_dict
    from dmenet.distill import train as dtrain
    from dmenet.distill.config import load_distill_config
    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.models.unet import EffUNet

    sets = _dataset(tmp_path / "d") + TINY
    start = tmp_path / "start"
    torch.manual_seed(5)
    save_distill_model(start, "student", EffUNet(load_distill_config(None, sets).student))
    cfg = load_distill_config(None, sets + [f"train.init_from={start}"])
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    dtrain.train(cfg, whole)
    killed.mkdir()  # killed before its first checkpoint: its config and no ckpt/
    (killed / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    dtrain.train(cfg, killed, resume=True)
    a, b = (load_file(str(run / "ckpt" / "step_000003" / "state.safetensors")) for run in (whole, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------- predict's skip lines (H81)
@pytest.mark.parametrize("error, reason", [
    (OSError(28, "No space left on device", "OUT/img0_blur.png"), "OUT/img0_blur.png: No space left on device"),
    (OSError(28, "No space left on device"), "OSError: [Errno 28] No space left on device"),
])
def test_an_output_write_error_names_the_output_once(tmp_path, capsys, monkeypatch, error, reason):
    """Mutants: an OSError of writing an output taken as ``<filename>: <strerror>`` also when it has no file name
    (``None: No space left on device``), or printed as Python's text (the class, the errno and the name quoted).
    The skip line names the output and the reason once; an OSError without a name keeps its class and text."""
    from hostile_helpers import run_main, write_rgb

    from dmenet import predict, predict_photo

    photo = write_rgb(tmp_path / "in" / "img0.png", seed=0)
    out = tmp_path / "o"
    if error.filename:
        error = OSError(error.errno, error.strerror, str(out / "img0_blur.png"))
        reason = reason.replace("OUT", str(out))

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(predict_photo, "write_outputs", fail)
    rc, _, err = run_main(predict.main, [photo, "--out", out, "--method", "laplacian"], capsys)
    assert [line for line in err.splitlines() if line.startswith("skipped")] == [f"skipped {photo}: {reason}"], err


# ----------------------------------------------------------------------------------- the docs' flag check (helpers)
def test_defined_flags_are_the_quoted_literals_of_every_tool_folder(tmp_path, monkeypatch):
    """Mutants of tests/test_doc_commands.py's ``defined_flags``: any ``--word`` of a source counted (a flag named
    only in a comment or docstring passed as defined), ``benchmarks`` / ``experiments`` not read, ``--help`` (which
    argparse defines, no source spells) left out. In a made-up repository: the quoted flags of the four folders'
    sources and --help, nothing else."""
    import test_doc_commands as tdc

    for top, source in [("dmenet", 'p.add_argument("--out")  # see --not-a-flag\n'),
                        ("syndof", "p.add_argument('--seed')\n"),
                        ("benchmarks", '"""Run with --stale-flag."""\np.add_argument("--sets")\n'),
                        ("experiments", 'p.add_argument("--rule", "--rules")\n'),
                        ("docs", 'p.add_argument("--not-a-tool")\n')]:
        (tmp_path / top / "sub").mkdir(parents=True)
        (tmp_path / top / "sub" / "m.py").write_text(source)
    monkeypatch.setattr(tdc, "ROOT", tmp_path)
    assert tdc.defined_flags() == {"--help", "--out", "--seed", "--sets", "--rule", "--rules"}


def test_undefined_flags_skip_dashes_inside_words():
    """Mutant: ``FLAG`` without its look-behind: ``--`` inside a word or after a dash (``run--v2``, ``---x``) read as
    a flag. Only a ``--flag`` standing alone counts, up to the end of its name."""
    from test_doc_commands import undefined_flags

    text = "`python -m x --known run--v2 ---x` and\n```\ncmd --known --unknown\n```\n"
    assert undefined_flags(text, {"--known"}) == ["--unknown"]


# ----------------------------------------------------------------------------------------- dmenet.train resume (H59)
def test_a_checkpoint_folder_renamed_to_another_width_is_refused(tiny_syndof, blur_run_copy, caplog):
    """Mutant: the step compared with the folder's digits however they are written (``step_2`` taken for
    ``step_00000002``). The folder of step N is exactly ``step_%08d`` (every name update_pointers and the pruning
    compare); a checkpoint moved to ``step_2`` and pointed at is refused, naming its train.json, and nothing changes."""
    import json

    from hostile_helpers import assert_logged_usage_error, digests
    from train_data_helpers import blur_cli

    from dmenet.train import main

    root = blur_run_copy / "checkpoints"
    (root / "step_00000002").rename(root / "step_2")
    for pointer in ("last.json", "best.json"):
        entry = json.loads((root / pointer).read_text())
        (root / pointer).write_text(json.dumps({**entry, "dir": "step_2"}))
    before = digests(blur_run_copy)
    line = assert_logged_usage_error(main, blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "4"), caplog,
                                     str(root / "step_2" / "train.json"))
    assert "not its folder's step (step_2)" in line
    assert digests(blur_run_copy) == before


@pytest.mark.parametrize("stage", ["teacher", "kd"])
def test_a_resumed_network_reads_no_start_file(tmp_path, stage):
    """Mutants: ``build_teacher`` / ``build_student`` reading ``train.init_from`` also when the run does not start
    (``start`` dropped, or not passed on by ``build_run``): a resume, whose checkpoint overwrites the weights, failed
    when the start file had moved. With ``start=False`` the network is built without reading it; a start reads it
    (here: missing, a ModelFileError naming it)."""
    from test_distill import TINY

    from dmenet.distill import train as dtrain
    from dmenet.distill.config import load_distill_config
    from dmenet.models.model_io import ModelFileError

    small_teacher = ["teacher.aspp_mid=16", "teacher.aspp_growth=8", "teacher.decoder=[16,16,8,8]"]
    cfg = load_distill_config(None, TINY + small_teacher + [f"train.stage={stage}",
                                                            f"train.init_from={tmp_path / 'moved'}"])
    build = build_teacher if stage == "teacher" else build_student
    build(cfg, start=False)
    run = dtrain.build_run(cfg, start=False)
    assert list(run.nets) == ["teacher" if stage == "teacher" else "student"]
    with pytest.raises(ModelFileError, match="moved.safetensors: model file not found"):
        build(cfg)
    with pytest.raises(ModelFileError, match="moved.safetensors: model file not found"):
        dtrain.build_run(cfg)
