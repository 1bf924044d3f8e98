"""Review C5: W&B that cannot start (``online`` without ``wandb login``) in each trainer. It was a 37-line traceback
(exit 1) after the run folder held config.yaml, an empty metrics.jsonl and wandb_id.txt, and that folder could then be
neither rerun (not empty) nor resumed (no checkpoint). Now: exit 2, one line saying what to do, nothing written; a
resume refused that way leaves the run byte-identical. ``wandb.init`` is replaced by one that fails as W&B does
without a key, so no test depends on the machine's W&B login or network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import wandb
from galetto_helpers import build, write_bsds_like
from train_data_helpers import blur_cli

from dmenet.distill import train as distill_train
from dmenet.distill.config import load_distill_config
from dmenet.galetto import train as galetto_train
from dmenet.train import main as dmenet_main
from hostile_helpers import assert_logged_usage_error, assert_usage_error, digests

WORDS = ("W&B could not start in mode online", "wandb login", "no file of a new run was written")


@pytest.fixture
def no_wandb_login(monkeypatch):
    """``wandb.init`` failing as it does in online mode without an API key (offline / disabled never reach it)."""
    def init(*args, mode=None, **kwargs):
        if mode == "online":
            raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")
        raise AssertionError(f"only online mode is expected to reach wandb.init here, got {mode!r}")

    monkeypatch.setattr(wandb, "init", init)


def test_dmenet_train_online_without_login_writes_nothing(tiny_syndof, finished_blur_run, tmp_path, caplog,
                                                         no_wandb_login):
    out = tmp_path / "run"
    assert_logged_usage_error(dmenet_main, blur_cli(tiny_syndof, out, "--steps", "1", "--wandb", "online"), caplog,
                              *WORDS)
    assert not out.exists()
    assert dmenet_main(blur_cli(tiny_syndof, out, "--steps", "1")) == 0  # the same --out is still free
    run = Path(shutil.copytree(finished_blur_run, tmp_path / "copy"))
    before = digests(run)
    assert_logged_usage_error(dmenet_main, blur_cli(tiny_syndof, run, "--resume", "--steps", "3", "--wandb",
                                                    "online"), caplog, *WORDS)
    assert digests(run) == before


def test_galetto_train_online_without_login_writes_nothing(tmp_path, capsys, no_wandb_login):
    patches = tmp_path / "patches"
    assert build(write_bsds_like(tmp_path / "photos"), patches) == 0
    out = tmp_path / "run"
    argv = ["--config", "experiments/galetto_tiny.yaml", "--patches", str(patches), "--out", str(out),
            "--threads", "1", "--set", "train.steps=1"]
    capsys.readouterr()
    rc = galetto_train.main([*argv, "train.wandb=online"])
    assert_usage_error(rc, capsys.readouterr().err, *WORDS)
    assert not out.exists()
    assert galetto_train.main(argv) == 0


def test_distill_train_online_without_login_writes_nothing(tmp_path, capsys, no_wandb_login):
    from conftest import shared_file

    data = load_distill_config("experiments/distill/tiny.yaml").data
    for folder in (data.images, data.masks, data.sharp_images, data.sharp_val_images):  # "../shared/data/…"
        shared_file(*Path(folder).relative_to("../shared").parts)
    out = tmp_path / "run"
    capsys.readouterr()
    rc = distill_train.main(["--config", "experiments/distill/tiny.yaml", "--out", str(out), "--set",
                             "train.wandb=online", "train.steps=1"])
    assert_usage_error(rc, capsys.readouterr().err, *WORDS)
    assert not out.exists()


def test_an_invalid_project_name_is_one_line_and_writes_nothing(tiny_syndof, tmp_path, caplog):
    """The real wandb.init, offline: it validates the project name before anything (a traceback, exit 1, and the
    run folder left holding config.yaml, metrics.jsonl and wandb_id.txt, before)."""
    out = tmp_path / "run"
    argv = blur_cli(tiny_syndof, out, "--steps", "1", "--set", "train.wandb_project=a/b")
    argv[argv.index("--wandb") + 1] = "offline"
    assert_logged_usage_error(dmenet_main, argv, caplog, "W&B could not start in mode offline", "a/b",
                              "train.wandb_project", "no file of a new run was written")
    assert not out.exists()
