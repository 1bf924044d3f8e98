"""Hostile / careless use of ``dmenet.train`` (docs/reliability.md §4): D3, D5, D7, D21–D28."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from train_data_helpers import TINY, blur_cli, write_syndof

from dmenet.train import main
from dmenet.training.logging import truncate_metrics
from hostile_helpers import assert_logged_usage_error, digests


def _fails_cleanly(argv, caplog, *names: str) -> str:
    return assert_logged_usage_error(main, argv, caplog, *names)


def _last_checkpoint(run: Path) -> Path:
    return run / "checkpoints" / json.loads((run / "checkpoints" / "last.json").read_text())["dir"]


# ------------------------------------------------------------------------------------------------------------ medium
def test_d22_negative_or_exploding_lr_decay_is_refused(tiny_syndof, tmp_path, caplog):
    for value in ("-2", "1.5", "0"):
        out = tmp_path / f"decay{value}"
        _fails_cleanly(blur_cli(tiny_syndof, out, "--set", f"optim.decay={value}", "optim.steps_per_epoch=1",
                                "optim.decay_every_epochs=1"), caplog, "optim.decay")
        assert not out.exists()
    _fails_cleanly(blur_cli(tiny_syndof, tmp_path / "lr", "--set", "optim.lr_d=-1"), caplog, "optim.lr_d")


def test_d26_new_run_into_a_finished_run_is_refused_and_changes_nothing(tiny_syndof, blur_run_copy, caplog):
    before = digests(blur_run_copy)
    _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--steps", "4", "--set", "train.seed=5"), caplog,
                   str(blur_run_copy), "--resume")
    assert digests(blur_run_copy) == before
    # a run that stopped before its first checkpoint cannot be resumed: the message says what to delete instead
    (blur_run_copy / "checkpoints").rename(blur_run_copy.parent / "elsewhere")
    for name in ("model_last.safetensors", "model_last.json"):
        (blur_run_copy / name).unlink()
    _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--steps", "4"), caplog, str(blur_run_copy / "metrics.jsonl"))


def test_d27_d21_failed_resume_keeps_config_then_resume_works_without_duplicate_rows(tiny_syndof, blur_run_copy,
                                                                                     caplog):
    config = (blur_run_copy / "config.yaml").read_text()
    _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3", "--set", "optim.lr=-1"), caplog,
                   "optim.lr")
    # fails only once the checkpoint is loaded (another architecture): config.yaml must not have changed either
    _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3", "--set", "model.refine_blocks=2"),
                   caplog, "model.safetensors")
    assert (blur_run_copy / "config.yaml").read_text() == config
    # a kill after step 3 was logged but before its checkpoint: the resumed run must not log step 3 twice
    with open(blur_run_copy / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 3, "loss_main": 1.0}) + "\n" + '{"step": 4, "lo')
    assert main(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3")) == 0
    steps = [json.loads(line)["step"] for line in (blur_run_copy / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


# --------------------------------------------------------------------------------------------------------------- low
@pytest.mark.parametrize("name, content", [("model.safetensors", b""), ("model.safetensors", b"\x00" * 4096),
                                           ("train.safetensors", "truncated")])
def test_d3_corrupt_checkpoint_files_on_resume(tiny_syndof, blur_run_copy, caplog, name, content):
    path = _last_checkpoint(blur_run_copy) / name
    path.write_bytes(path.read_bytes()[:200] if content == "truncated" else content)
    before = digests(blur_run_copy)
    _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3"), caplog, str(path))
    assert digests(blur_run_copy) == before  # a refused resume changes nothing in the run


def test_d3_corrupt_init_from(tiny_syndof, finished_blur_run, tmp_path, caplog):
    bad = tmp_path / "m.safetensors"
    bad.write_bytes(b"\x01" * 100)
    shutil.copy(finished_blur_run / "model_last.json", tmp_path / "m.json")
    _fails_cleanly(blur_cli(tiny_syndof, tmp_path / "new", "--init-from", bad), caplog, str(bad))


@pytest.mark.parametrize("pointer", ["last.json", "train.json"])
def test_d5_invalid_json_names_the_file(tiny_syndof, blur_run_copy, caplog, pointer):
    checkpoints = blur_run_copy / "checkpoints"
    path = checkpoints / pointer if pointer == "last.json" else _last_checkpoint(blur_run_copy) / pointer
    path.write_text('{"dir": ')
    before = digests(blur_run_copy)
    _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3"), caplog, str(path))
    assert digests(blur_run_copy) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_d7_device_cuda_without_cuda(tiny_syndof, tmp_path, caplog):
    _fails_cleanly(blur_cli(tiny_syndof, tmp_path / "r")[:-2] + ["--device", "cuda"], caplog, "--device cuda")


def test_d23_no_readable_training_image(tmp_path, caplog):
    syn = write_syndof(tmp_path / "syn", count=3)
    for image in (syn / "image").iterdir():
        image.write_bytes(b"")
    _fails_cleanly(blur_cli(syn, tmp_path / "r", "--steps", "1"), caplog, "none of the")


@pytest.mark.parametrize("case", ["no opt_g", "no train.safetensors"])
def test_d24_checkpoint_contents_are_checked(tiny_syndof, blur_run_copy, caplog, case):
    folder = _last_checkpoint(blur_run_copy)
    if case == "no opt_g":
        meta = json.loads((folder / "train.json").read_text())
        del meta["opt_g"]
        (folder / "train.json").write_text(json.dumps(meta))
        _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3"), caplog, "train.json", "opt_g")
    else:
        (folder / "train.safetensors").unlink()
        _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3"), caplog, "train.safetensors")


def test_d25_pointer_outside_the_run_is_refused(tiny_syndof, blur_run_copy, finished_blur_run, caplog):
    other = _last_checkpoint(finished_blur_run)
    (blur_run_copy / "checkpoints" / "last.json").write_text(json.dumps({"dir": f"../../{other.parent.parent.name}/"
                                                                            f"checkpoints/{other.name}"}))
    before, theirs = digests(blur_run_copy), digests(finished_blur_run)
    _fails_cleanly(blur_cli(tiny_syndof, blur_run_copy, "--resume", "--steps", "3"), caplog, "last.json", "'dir'")
    assert digests(blur_run_copy) == before and digests(finished_blur_run) == theirs  # the pointed-at run too


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_d28_malicious_pickle_init_is_a_weights_error(tiny_syndof, tmp_path, caplog):
    marker, bad = tmp_path / "pwned", tmp_path / "x.pt"
    bad.write_bytes(pickle.dumps({"features.0.0.weight": _Payload(marker)}))
    _fails_cleanly(blur_cli(tiny_syndof, tmp_path / "r", "--set", f"model.init={bad}"), caplog, str(bad),
                   "weights_only")
    assert not marker.exists() and not (tmp_path / "r").exists()


def test_d21_truncate_metrics_keeps_rows_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3, 4, 5)) + '{"step": 6, "lo')
    truncate_metrics(path, 3)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    truncate_metrics(tmp_path / "absent.jsonl", 3)
    assert not (tmp_path / "absent.jsonl").exists()


def test_n1_joint_training_refuses_held_out_test_photos_in_labelled(tmp_path, caplog):
    """``--labelled ../shared/data/cuhk`` (image/ + gt/: the 5 CUHK test photos) trained S on them, exit 0, while
    ``calibrate dbd`` refuses the same folder (H49): a held-out stem of the committed split is refused before any
    file is written, naming the photo and ``--labelled`` (reliability.md §23, N1)."""
    from train_data_helpers import write_all

    data = write_all(tmp_path / "data")
    lab = data["labelled"]
    (lab / "image" / "L0.JPG").rename(lab / "image" / "out_of_focus0011.JPG")  # a cuhk/image test photo
    (lab / "gt" / "l0.png").rename(lab / "gt" / "out_of_focus0011.png")
    out = tmp_path / "run"
    argv = ["--config", str(TINY), "--stage", "joint", "--synthetic", str(data["synthetic"]), "--real",
            str(data["real"]), "--labelled", str(lab), "--out", str(out), "--steps", "1", "--wandb", "disabled",
            "--device", "cpu"]
    _fails_cleanly(argv, caplog, "--labelled", "out_of_focus0011.JPG", "held-out")
    assert not out.exists()
    (lab / "image" / "out_of_focus0011.JPG").unlink()
    real = sorted(p for p in data["real"].rglob("*") if p.is_file())[0]
    real.rename(real.with_name("out_of_focus0026" + real.suffix))  # a held-out id among the unlabelled photos
    _fails_cleanly(argv, caplog, "--real", "out_of_focus0026", "held-out")
    assert not out.exists()
    real.with_name("out_of_focus0026" + real.suffix).unlink()  # training photos only: the run goes on
    assert main(argv) == 0 and (out / "model_last.safetensors").is_file()


def test_k5_the_held_out_check_looks_at_the_photos_the_datasets_read_no_more_no_fewer(tmp_path):
    """§23 N1 / closing note: the held-out check listed ``--real`` with its own ``rglob("*")`` (and ``--labelled``'s
    ``image/`` with ``iterdir``) while the datasets read ``image_entries``: a deleted copy of a test photo in a
    hidden ``.Trash/``, a notes file or a folder named like one, none of which is ever read, refused the run. Now the
    check lists each folder as its dataset does; a test photo the stream does read is still refused."""
    from train_data_helpers import write_all

    from dmenet.config import load_config
    from dmenet.configlib import ConfigError
    from dmenet.train import build_data

    data = write_all(tmp_path / "data")
    real, lab = data["real"], data["labelled"]
    photo = sorted(p for p in real.rglob("*") if p.is_file())[0]
    (real / ".Trash").mkdir()
    shutil.copy(photo, real / ".Trash" / "out_of_focus0026.jpg")
    (real / "out_of_focus0026.txt").write_text("a note on the test photo, not a photo")
    (real / "out_of_focus0011.png").mkdir()  # a folder named like a photo: no listing takes it for one
    (lab / "image" / "out_of_focus0011.json").write_text("{}")
    cfg = load_config(TINY, [f"data.synthetic={data['synthetic']}", f"data.real={real}", f"data.labelled={lab}"])
    streams, _, _, _ = build_data(cfg, rank=0)
    read = [Path(p) for p in streams["unlabelled"].dataset.paths]
    assert read and not any(p.stem.startswith("out_of_focus") for p in read)
    shutil.copy(photo, real / "out_of_focus0026.jpg")  # read by the stream: refused
    with pytest.raises(ConfigError, match="--real .*out_of_focus0026.jpg is a held-out test photo"):
        build_data(cfg, rank=0)
