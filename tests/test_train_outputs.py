"""What ``dmenet.train`` writes, and what it refuses to write over: a new run's --out is a folder of its own (never an
input folder, the --config or --init-from file's folder, or a foreign non-empty folder), a --resume cannot relabel a
run with other settings, a checkpoint interrupted by SIGTERM leaves no half-written folder, and an impossible
data.crop is refused before the run folder exists. Every refusal: exit 2, one line, files byte-identical."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from train_data_helpers import TINY, blur_cli, write_labelled, write_real, write_syndof

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
    assert {"config.yaml", "metrics.jsonl", "model_last.safetensors", "model_last.json", "checkpoints"} <= \
        {p.name for p in out.iterdir()}  # the run is written in the folder itself, not in a sub-folder of it
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    assert json.loads((out / "checkpoints" / "last.json").read_text())["step"] == 1


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


@pytest.mark.parametrize("damage", ["best_truncated", "best_metric_text", "step_edited"])
def test_h59_a_damaged_best_pointer_or_checkpoint_step_is_refused_before_any_step(tiny_syndof, blur_run_copy, caplog,
                                                                                  damage):
    """A best.json cut short was read only at the resumed run's first checkpoint: every step before it was trained,
    the checkpoint written unpointed, exit 2, and each later resume did the same (a 'metric' of text: a TypeError
    traceback there). A train.json whose step is not its folder's resumed the weights of one step as another's."""
    best = blur_run_copy / "checkpoints" / "best.json"
    meta = blur_run_copy / "checkpoints" / "step_00000002" / "train.json"
    if damage == "best_truncated":
        best.write_text(best.read_text()[:12])
    elif damage == "best_metric_text":
        best.write_text(json.dumps({**json.loads(best.read_text()), "metric": "low"}))
    else:
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "step": 1}))
    damaged = meta if damage == "step_edited" else best
    before = digests(blur_run_copy)
    _refused(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "4"), caplog, str(damaged))
    assert digests(blur_run_copy) == before


def test_resume_by_another_number_of_processes_is_refused_and_changes_nothing(tiny_syndof, blur_run_copy, caplog,
                                                                              monkeypatch):
    """Review C6: a checkpoint of a 2-process torchrun run resumed by one process (or the reverse) trained on with
    another global batch and dropped rank 1's data stream, silently; replicas.json alone said world_size 1."""
    last = json.loads((blur_run_copy / "checkpoints" / "last.json").read_text())["dir"]
    record = blur_run_copy / "checkpoints" / last / "train.json"
    meta = json.loads(record.read_text())
    assert set(meta["streams"]) == {"synthetic@0"}
    # this run has 2 processes, the checkpoint 1 (refused before torch.distributed starts)
    monkeypatch.setenv("WORLD_SIZE", "2")
    before = digests(blur_run_copy)
    _refused(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "4"), caplog, "--resume", "1 data-parallel",
             "has 2", str(blur_run_copy / "checkpoints" / last))
    assert digests(blur_run_copy) == before
    monkeypatch.delenv("WORLD_SIZE")
    meta["streams"]["synthetic@1"] = meta["streams"]["synthetic@0"]  # as a 2-process run writes it
    record.write_text(json.dumps(meta))
    before = digests(blur_run_copy)
    _refused(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "4"), caplog, "2 data-parallel",
             "--nproc_per_node 2")
    assert digests(blur_run_copy) == before


def test_a_run_that_failed_before_its_first_checkpoint_names_every_file_to_delete(tiny_syndof, tmp_path, caplog,
                                                                                   monkeypatch):
    """Review C2: a run stopped at step 0 (here a non-finite loss) left config.yaml + metrics.jsonl; the rerun was
    refused as "not empty … holds no run" and --resume as "no checkpoint": the message now names every file to
    delete, and deleting exactly those frees the folder."""
    from dmenet import losses

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(losses, "defocus_loss", lambda pred, label: (pred * float("nan")).mean())
        assert_logged_usage_error(main, blur_cli(tiny_syndof, run, "--steps", "2"), caplog, "non-finite loss")
    left = sorted(p.name for p in run.iterdir())
    assert "checkpoints" not in left and {"config.yaml", "metrics.jsonl"} <= set(left)
    line = _refused(blur_cli(tiny_syndof, run, "--steps", "2"), caplog, "saved no checkpoint",
                    *(str(run / name) for name in left))
    assert "--resume" in line
    for name in left:
        (run / name).unlink()
    assert main(blur_cli(tiny_syndof, run, "--steps", "2")) == 0
    # a folder holding only someone's config.yaml is not called a run (nothing in it is named for deletion)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "config.yaml").write_text("x: 1\n")
    assert "saved no checkpoint" not in _refused(blur_cli(tiny_syndof, other, "--steps", "2"), caplog, "not empty")


def test_relative_data_paths_are_recorded_absolute_so_a_resume_elsewhere_reads_the_same_data(tiny_syndof, tmp_path,
                                                                                               monkeypatch):
    """Review C9: config.yaml recorded ``--synthetic data/syn`` as given, so a --resume from another working folder
    trained on whatever ``data/syn`` lay there (another data set of the same size: exit 0, silently mixed)."""
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(tiny_syndof, first / "data" / "syn")
    write_syndof(second / "data" / "syn", seed=42)  # same count, other images
    monkeypatch.chdir(first)
    argv = blur_cli(Path("data/syn"), Path("run"), "--steps", "2")
    assert main(argv) == 0
    saved = yaml.safe_load((first / "run" / "config.yaml").read_text())
    assert saved["data"]["synthetic"] == str(first / "data" / "syn")
    monkeypatch.chdir(second)
    assert main(["--out", str(first / "run"), "--resume", "--steps", "3", "--threads", "1"]) == 0
    saved = yaml.safe_load((first / "run" / "config.yaml").read_text())
    assert saved["data"]["synthetic"] == str(first / "data" / "syn")


def test_resume_may_extend_the_steps_and_change_where_it_runs(tiny_syndof, blur_run_copy):
    argv = blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3", "--threads", "1")
    argv[argv.index("--device") + 1] = "auto"  # train.device: where it runs, not what it trains
    assert main(argv) == 0
    saved = yaml.safe_load((blur_run_copy / "config.yaml").read_text())
    assert saved["train"]["steps"] == 3 and saved["train"]["device"] == "auto"


def test_resume_on_other_images_under_the_same_names_is_refused(tiny_syndof, tmp_path, caplog):
    """Review C11: the data streams' state checked only the sample count, so images replaced under the same names
    resumed (exit 0) on other data; RUN/data.json now records each input folder's file names and sizes, and a
    resume on other files is refused, naming the folder and what changed, before anything is written. A run from
    before that record (none) resumes unchecked, as before."""
    syn, run = Path(shutil.copytree(tiny_syndof, tmp_path / "syn")), tmp_path / "run"
    assert main(blur_cli(syn, run, "--steps", "2")) == 0
    argv = blur_cli(syn, run, "--resume", "--steps", "3")
    kept = {p: p.read_bytes() for p in (syn / "image" / "s000.png", syn / "blur_map" / "s000.png")}
    for folder in ("image", "blur_map"):  # another render (another size) under the same name: the count is the same
        shutil.copy(syn / folder / "s001.png", syn / folder / "s000.png")
    before = digests(run)
    line = _refused(argv, caplog, f"--synthetic {syn}", "the same 9 names", "other sizes", str(run / "data.json"))
    assert "--out" in line
    assert digests(run) == before
    for path, data in kept.items():
        path.write_bytes(data)
    (syn / "image" / "s004.png").write_bytes(kept[syn / "image" / "s000.png"])  # one more file
    _refused(argv, caplog, f"--synthetic {syn}", "10 now, 9 when the run started")
    assert digests(run) == before
    record = json.loads((run / "data.json").read_text())["sources"]
    assert list(record) == ["--synthetic"] and record["--synthetic"]["files"] == 9  # 4 images + 4 maps + dataset.json
    (syn / "image" / "s004.png").unlink()
    (syn / ".DS_Store").write_bytes(b"finder")  # not data: a name starting with '.' is not part of the record
    assert main(argv) == 0
    (run / "data.json").unlink()  # a run from before the record: unchecked, and it gets none (its data is unknown)
    for folder in ("image", "blur_map"):
        shutil.copy(syn / folder / "s001.png", syn / folder / "s000.png")
    assert main(blur_cli(syn, run, "--resume", "--steps", "4")) == 0 and not (run / "data.json").exists()


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


def test_m1_a_stopped_run_names_its_last_checkpoint_and_the_command_that_continues_it(tiny_syndof, tmp_path,
                                                                                    monkeypatch, capsys):
    """SIGTERM after the checkpoint of step 1: one line names it and the same command with --resume, which (run as
    printed) finishes the run; Ctrl-C before any checkpoint: 130 and a line saying there is nothing to resume."""
    from dmenet.training.engine import Trainer
    real_step = Trainer.train_step

    def stop_at(step: int, stop: BaseException):
        def train_step(self, batches):
            if self.step == step:
                raise stop
            return real_step(self, batches)
        return train_step

    run = tmp_path / "run"
    argv = blur_cli(tiny_syndof, run, "--steps", "3", "--set", "train.ckpt_every=1")
    monkeypatch.setattr(Trainer, "train_step", stop_at(1, SystemExit(143)))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 143
    line = capsys.readouterr().err.strip().splitlines()[-1]
    head, command = line.split("; continue with: ")
    assert head == f"stopped (SIGTERM): last checkpoint {run / 'checkpoints' / 'step_00000001'}"
    words = shlex.split(command)
    assert words[:6] == ["cd", str(Path.cwd()), "&&", "python", "-m", "dmenet.train"]
    assert words[6:] == [*argv, "--resume"]
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert main(words[6:]) == 0
    assert json.loads((run / "checkpoints" / "last.json").read_text())["step"] == 3

    fresh = tmp_path / "fresh"
    argv = blur_cli(tiny_syndof, fresh, "--steps", "3")
    monkeypatch.setattr(Trainer, "train_step", stop_at(0, KeyboardInterrupt()))
    assert main(argv) == cli.EXIT_INTERRUPTED
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == "interrupted (Ctrl-C)"
    head, command = lines[-2].split("start again with: ")
    assert head.startswith("stopped (Ctrl-C): no checkpoint written yet (nothing to --resume); ")
    assert (f"delete {fresh} " in head) == (fresh.is_dir() and any(fresh.iterdir()))
    assert shlex.split(command)[:3] == ["cd", str(Path.cwd()), "&&"] and shlex.split(command)[6:] == argv


# ------------------------------------------------------------------------------------------------ data.crop
def test_huge_crop_is_refused_before_the_run_folder_is_written(tiny_syndof, tmp_path, caplog):
    out = tmp_path / "run"
    _refused(blur_cli(tiny_syndof, out, "--steps", "1", "--set", "data.crop=100000"), caplog, "data.crop")
    assert not out.exists()
