"""What ``dmenet.train`` writes, and what it refuses to write over: a new run's --out is a folder of its own (never an
input folder, the --config or --init-from file's folder, or a foreign non-empty folder), a --resume cannot relabel a
run with other settings, a checkpoint interrupted by SIGTERM leaves no half-written folder, and an impossible
data.crop is refused before the run folder exists. Every refusal: exit 2, one line, files byte-identical."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from train_data_helpers import TINY, blur_cli, write_labelled, write_real

from dmenet.train import main
from dmenet.training import checkpoint
from hostile_helpers import assert_logged_usage_error, digests
from syndof import cli


def _refused(argv, caplog, *names) -> str:
    return assert_logged_usage_error(main, argv, caplog, *names)


# ------------------------------------------------------------------------------------------- a new run's --out
def test_out_that_is_inside_or_holds_an_input_folder_is_refused(tiny_syndof, tmp_path, caplog):
    data = Path(shutil.copytree(tiny_syndof, tmp_path / "data" / "syn"))
    before = digests(tmp_path / "data")
    for out in (data, data / "run", tmp_path / "data"):
        _refused(blur_cli(data, out, "--steps", "1"), caplog, f"--out {out}", "--synthetic")
        assert digests(tmp_path / "data") == before
    assert not (data / "run").exists()


@pytest.mark.parametrize("option", ["--real", "--labelled"])
def test_out_equal_to_a_real_or_labelled_folder_is_refused(tiny_syndof, tmp_path, caplog, option):
    real, labelled = write_real(tmp_path / "real", count=1), write_labelled(tmp_path / "lab", count=1)
    out = real if option == "--real" else labelled
    before = digests(out)
    argv = ["--config", str(TINY), "--synthetic", str(tiny_syndof), "--real", str(real), "--labelled", str(labelled),
            "--gt-polarity", "white-blurred", "--out", str(out), "--wandb", "disabled", "--device", "cpu"]
    _refused(argv, caplog, f"--out {out}", option)
    assert digests(out) == before


def test_out_holding_the_config_file_is_refused(tiny_syndof, tmp_path, caplog):
    out = tmp_path / "r3"
    out.mkdir()
    shutil.copy(TINY, out / "config.yaml")
    (out / "replicas.json").write_text('{"mine": true}\n')
    before = digests(out)
    _refused(blur_cli(tiny_syndof, out, "--steps", "1", config=out / "config.yaml"), caplog, f"--out {out}",
             "--config")
    assert digests(out) == before


def test_out_holding_the_init_from_file_is_refused(tiny_syndof, finished_blur_run, tmp_path, caplog):
    out = tmp_path / "r2"
    out.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(finished_blur_run / f"model_last{suffix}", out / f"init{suffix}")
    before = digests(out)
    for init in (out / "init.safetensors", out / "init"):
        _refused(blur_cli(tiny_syndof, out, "--steps", "1", "--init-from", init), caplog, f"--out {out}",
                 "--init-from")
        assert digests(out) == before


def test_out_that_is_a_foreign_folder_or_a_file_is_refused(tiny_syndof, tmp_path, caplog):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine\n")
    _refused(blur_cli(tiny_syndof, out, "--steps", "1"), caplog, f"--out {out}", "not empty")
    assert digests(out) == {"todo.txt": digests(out)["todo.txt"]} and (out / "todo.txt").read_text() == "mine\n"
    afile = tmp_path / "file"
    afile.write_text("x")
    _refused(blur_cli(tiny_syndof, afile, "--steps", "1"), caplog, f"--out {afile}", "not a folder")
    assert afile.read_text() == "x"


def test_empty_out_folder_is_accepted(tiny_syndof, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(blur_cli(tiny_syndof, out, "--steps", "1", "--set", "train.ckpt_every=1")) == 0
    assert (out / "model_last.safetensors").is_file()


# --------------------------------------------------------------------------------------------------- --resume
@pytest.mark.parametrize("change, key", [(("--set", "optim.lr=0.5"), "optim.lr"),
                                         (("--set", "train.seed=7"), "train.seed"),
                                         (("--set", "train.log_every=2", "data.vflip=false"),
                                          "data.vflip, train.log_every"),
                                         (("--init-from", "{finished}/model_last"), "train.init_from")])
def test_resume_with_other_settings_is_refused_and_changes_nothing(tiny_syndof, finished_blur_run, blur_run_copy,
                                                                   caplog, change, key):
    change = [c.format(finished=finished_blur_run) for c in change]
    before = digests(blur_run_copy)
    _refused(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "4", *change), caplog, "--resume", key,
             str(blur_run_copy / "config.yaml"))
    assert digests(blur_run_copy) == before


def test_resume_below_the_checkpoint_step_is_refused(tiny_syndof, blur_run_copy, caplog):
    before = digests(blur_run_copy)
    _refused(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "1"), caplog, "train.steps", "step 2")
    assert digests(blur_run_copy) == before


def test_resume_against_a_hand_edited_config_yaml_is_refused(tiny_syndof, blur_run_copy, caplog):
    """config.yaml edited between the runs: the checkpoint's own record still names what trained it."""
    saved = yaml.safe_load((blur_run_copy / "config.yaml").read_text())
    saved["optim"]["lr"] = 0.5
    (blur_run_copy / "config.yaml").write_text(yaml.safe_dump(saved))
    before = digests(blur_run_copy)
    _refused(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "4"), caplog, "optim.lr", "train.json")
    assert digests(blur_run_copy) == before


def test_resume_may_extend_the_steps_and_change_where_it_runs(tiny_syndof, blur_run_copy):
    argv = blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3", "--threads", "1")
    argv[argv.index("--device") + 1] = "auto"  # train.device: where it runs, not what it trains
    assert main(argv) == 0
    saved = yaml.safe_load((blur_run_copy / "config.yaml").read_text())
    assert saved["train"]["steps"] == 3 and saved["train"]["device"] == "auto"


# ------------------------------------------------------------------------------------ interrupted checkpoint
def test_sigterm_during_a_checkpoint_leaves_no_temporary_folder_and_resume_cleans_stale_ones(tiny_syndof, tmp_path,
                                                                                           monkeypatch):
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # so that entry_point's handler is installed
    real_save_file = checkpoint.save_file
    calls = []

    def killed_while_writing(tensors, path, metadata=None):
        calls.append(path)
        real_save_file(tensors, path, metadata=metadata)
        if len(calls) == 2:  # the second checkpoint (step 2), its files half written
            if signal.getsignal(signal.SIGTERM) is not cli.exit_on_sigterm:
                raise SystemExit(143)  # never kill the test process itself
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises SystemExit(143) here

    monkeypatch.setattr(checkpoint, "save_file", killed_while_writing)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(blur_cli(tiny_syndof, run, "--steps", "3", "--set", "train.ckpt_every=1"))
    assert exc.value.code == 143
    monkeypatch.setattr(checkpoint, "save_file", real_save_file)
    root = run / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["best.json", "last.json", "step_00000001"]
    # a temporary folder left by a harder kill (SIGKILL) is removed by the resume, which completes the run
    stale = root / ".step_00000002.tmp"
    stale.mkdir()
    (stale / "train.json").write_text('{"step": ')
    assert main(blur_cli(tiny_syndof, run, "--resume", "--steps", "3", "--set", "train.ckpt_every=1")) == 0
    assert not stale.exists()
    assert json.loads((root / "last.json").read_text())["step"] == 3
    assert not list(root.glob(".*"))


# ------------------------------------------------------------------------------------------------ data.crop
def test_huge_crop_is_refused_before_the_run_folder_is_written(tiny_syndof, tmp_path, caplog):
    out = tmp_path / "run"
    _refused(blur_cli(tiny_syndof, out, "--steps", "1", "--set", "data.crop=100000"), caplog, "data.crop")
    assert not out.exists()
