"""Hostile use of ``dmenet.train``, ``dmenet.export`` and ``syndof.generate``: a run into a folder another run is
writing, negative config values, a ``--set`` that a flag overrides, export sizes that cannot be traced, the words of
the generator's summary and ``--count 0``."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest
from train_data_helpers import blur_cli

from dmenet import export
from dmenet import train as dtrain
from dmenet.config import load_config
from dmenet.configlib import ConfigError
from dmenet.train import main, parse_args, resolve_config
from hostile_helpers import assert_logged_usage_error, assert_usage_error, digests, run_main
from syndof import generate as gen
from syndof import io as sio

TINY = Path(__file__).resolve().parents[1] / "experiments" / "tiny.yaml"


# ---------------------------------------------------------------------------------------------- dmenet.train --out
def test_new_run_into_a_folder_another_run_holds_is_refused_and_writes_nothing(tiny_syndof, tmp_path, caplog):
    run = tmp_path / "run"
    with sio.folder_lock(run, "--out"):  # another process writing its run into the folder now
        assert_logged_usage_error(main, blur_cli(tiny_syndof, run, "--steps", "2"), caplog, "--out", str(run))
        assert list(run.iterdir()) == []
    assert main(blur_cli(tiny_syndof, run, "--steps", "2")) == 0  # released: the run goes through
    assert (run / "model_last.safetensors").is_file()


def test_resume_of_a_run_another_process_holds_is_refused_and_changes_nothing(tiny_syndof, blur_run_copy, caplog):
    before = digests(blur_run_copy)
    with sio.folder_lock(blur_run_copy, "--out"):
        assert_logged_usage_error(main, blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3"), caplog,
                                  "--out", str(blur_run_copy))
    assert digests(blur_run_copy) == before


def test_folder_checks_are_repeated_once_the_lock_is_held(tiny_syndof, tmp_path, caplog, monkeypatch):
    """A run that wrote the folder between this run's first check and its lock (it held the lock then) is seen."""
    real_lock = sio.folder_lock

    @contextlib.contextmanager
    def lock_after_another_run(folder, what="--out"):
        with real_lock(folder, what) as path:
            (path / "checkpoints" / "step_00000002").mkdir(parents=True)
            (path / "metrics.jsonl").write_text('{"step": 1}\n')
            yield path

    monkeypatch.setattr(dtrain.io, "folder_lock", lock_after_another_run)
    run = tmp_path / "run"
    assert_logged_usage_error(main, blur_cli(tiny_syndof, run, "--steps", "2"), caplog, str(run), "--resume")
    assert not (run / "config.yaml").exists()


def test_a_run_that_fails_after_taking_the_lock_leaves_no_folder(tiny_syndof, tmp_path, caplog):
    run = tmp_path / "new" / "run"  # holding out all 4 samples fails while building the data, inside the lock
    assert_logged_usage_error(main, blur_cli(tiny_syndof, run, "--steps", "2", "--set", "data.val_count=4"), caplog,
                              "hold out")
    assert not run.exists()


# --------------------------------------------------------------------------------------- dmenet.train config values
@pytest.mark.parametrize("key", ["train.seed", "data.loader_threads", "data.val_count", "train.image_every"])
def test_negative_counts_and_seed_are_refused(tiny_syndof, tmp_path, caplog, key):
    out = tmp_path / "run"
    assert_logged_usage_error(main, blur_cli(tiny_syndof, out, "--steps", "2", "--set", f"{key}=-1"), caplog, key)
    assert not out.exists()
    assert getattr(getattr(load_config(TINY, [f"{key}=0"]), key.split(".")[0]), key.split(".")[1]) == 0  # 0: meant


def test_seed_beyond_torch_range_is_refused():
    with pytest.raises(ConfigError, match="train.seed"):
        load_config(TINY, [f"train.seed={2**64}"])


@pytest.mark.parametrize("flag, item, key", [(["--stage", "blur"], "train.stage=foo", "train.stage"),
                                             (["--wandb", "disabled"], "train.wandb=foo", "train.wandb"),
                                             (["--device", "cpu"], "train.device=gpu", "train.device"),
                                             (["--steps", "2"], "train.steps=0", "train.steps")])
def test_invalid_set_of_a_key_a_flag_also_sets_is_refused(tiny_syndof, tmp_path, caplog, flag, item, key):
    out = tmp_path / "run"
    argv = blur_cli(tiny_syndof, out, "--steps", "2", *flag, "--set", item)
    assert_logged_usage_error(main, argv, caplog, key, flag[0], item)
    assert not out.exists()


def test_valid_set_overridden_by_a_flag_is_named_in_a_warning(tmp_path, caplog):
    args = parse_args(["--config", str(TINY), "--out", str(tmp_path / "run"), "--stage", "blur",
                       "--set", "train.stage=joint", "optim.lr=5e-5"])
    with caplog.at_level(logging.WARNING, logger="dmenet.train"):
        cfg = resolve_config(args)
    assert cfg.train.stage == "blur" and cfg.optim.lr == pytest.approx(5e-5)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "train.stage=joint" in warned[0] and "--stage blur" in warned[0]


@pytest.mark.parametrize("item", ["train.stage=blur", "train.stage= blur"])
def test_set_equal_to_the_flag_it_is_overridden_by_gives_no_warning(tmp_path, caplog, item):
    args = parse_args(["--config", str(TINY), "--out", str(tmp_path / "run"), "--stage", "blur", "--steps", "7",
                       "--set", item, "train.steps=7", "optim.lr=5e-5"])
    with caplog.at_level(logging.WARNING, logger="dmenet.train"):
        cfg = resolve_config(args)
    assert cfg.train.stage == "blur" and cfg.train.steps == 7 and cfg.optim.lr == pytest.approx(5e-5)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == []


def test_every_flag_key_is_read_from_its_flag(tmp_path):
    """FLAG_KEYS is the one list of the flags that set a config key: each flag, given, lands on its key."""
    values = {"--synthetic": "s", "--real": "r", "--labelled": "l", "--gt-polarity": "white-blurred",
              "--stage": "joint", "--steps": "3", "--wandb": "disabled", "--device": "cpu", "--init-from": "m"}
    assert set(values) == set(dtrain.FLAG_KEYS.values())
    args = parse_args(["--out", str(tmp_path / "run"), *[x for flag_value in values.items() for x in flag_value]])
    got = dtrain.flag_values(args)
    assert {key: str(got[key]) for key in got} == {key: values[flag] for key, flag in dtrain.FLAG_KEYS.items()}
    assert dtrain.flag_values(parse_args(["--out", str(tmp_path / "run")])) == {}


# ------------------------------------------------------------------------------------------------------ dmenet.export
@pytest.mark.parametrize("args", [["--size", "100000", "100000"], ["--size", "8208", "64"],
                                  ["--network", "galetto", "--size", "1", "1"],
                                  ["--network", "galetto", "--size", "32", "32"]])
def test_export_size_too_large_or_unused_is_refused(tmp_path, capsys, args):
    rc, _, err = run_main(export.main, ["--format", "onnx", "--out", tmp_path / "x.onnx", *args], capsys)
    assert_usage_error(rc, err, "--size")
    assert not list(tmp_path.iterdir())


def _unbuilt(model_file, size):
    raise AssertionError("the export was started although it cannot fit")


@pytest.mark.parametrize("size", [["--size", "64", "64"], []])
def test_export_that_cannot_fit_in_memory_is_refused_before_the_work(tmp_path, capsys, monkeypatch, size):
    """The memory is estimated up front (torch on CPU reports a failed allocation as a plain RuntimeError); the line
    gives the size, and names --size as the user's choice only when it was given."""
    import dmenet.memory

    exporter = export.Exporter(_unbuilt, 16, 1000)
    monkeypatch.setitem(export.EXPORTERS, "dmenet", exporter)
    need = export.export_memory(exporter, (64, 64) if size else export.DEFAULT_SIZE)
    monkeypatch.setattr(dmenet.memory, "available_memory", lambda: need - 1)
    rc, _, err = run_main(export.main, ["--format", "onnx", "--out", tmp_path / "x.onnx", *size], capsys)
    line = assert_usage_error(rc, err, "64 64" if size else "480 640", "smaller --size", "GiB available")
    assert ("--size 64 64" in line) if size else ("--size 480 640" not in line and "default" in line)
    assert not list(tmp_path.iterdir())


def test_export_estimate_grows_with_the_size_and_the_network():
    small, large = (64, 64), (4096, 4096)
    for exporter in (export.EXPORTERS["dmenet"], export.EXPORTERS["distill_student"]):
        assert export.export_memory(exporter, large) > export.export_memory(exporter, small) + 2**30
    assert (export.export_memory(export.EXPORTERS["distill_teacher"], large)
            > export.export_memory(export.EXPORTERS["distill_student"], large))


def test_export_memory_error_is_a_usage_error_and_other_runtime_errors_keep_their_traceback(tmp_path, capsys,
                                                                                              monkeypatch):
    """Decided by the exception's type, not its text: a RuntimeError that mentions memory is not an allocation
    failure the export can name."""
    def raising(exc):
        def build(model_file, size):
            raise exc
        return export.Exporter(build, 16)

    out = tmp_path / "x.onnx"
    monkeypatch.setitem(export.EXPORTERS, "dmenet", raising(MemoryError()))
    rc, _, err = run_main(export.main, ["--format", "onnx", "--out", out, "--size", "64", "64"], capsys)
    assert_usage_error(rc, err, "--size 64 64", "not enough memory", str(out))
    monkeypatch.setitem(export.EXPORTERS, "dmenet", raising(RuntimeError("DefaultCPUAllocator: can't allocate "
                                                                         "memory")))
    with pytest.raises(RuntimeError, match="allocate"):
        export.main(["--format", "onnx", "--out", str(out), "--size", "64", "64"])
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------------- syndof.generate
def test_generate_calls_unreadable_images_failed_as_its_summary_does(tmp_path, capsys, caplog):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (bad / "y.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="syndof.generate"):
        rc, out, _ = run_main(gen.main, ["--images", bad, "--out", tmp_path / "out", "--no-progress"], capsys)
    assert rc == 1 and "0 written, 0 skipped, 2 failed" in out
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2 and all(line.startswith("failed ") and "skipped" not in line for line in lines), lines


def test_generate_count_zero_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = run_main(gen.main, ["--out", out, "--count", "0", "--no-progress"], capsys)
    assert_usage_error(rc, err, "--count")
    assert not out.exists()
    with pytest.raises(ValueError, match="--count"):
        gen.generate(out, count=0, progress=False)
    assert not out.exists()
