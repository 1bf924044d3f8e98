"""dmenet training: losses, schedule, joint step (gradients, frozen C), checkpoints, exact resume, CLI, DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_data_helpers import write_all

from dmenet import losses
from dmenet.config import load_config
from dmenet.models.dmenet import build_dmenet
from dmenet.models.model_io import load_model_file, model_digest
from dmenet.train import build_data, main
from dmenet.training import checkpoint
from dmenet.training.engine import StepBatches, Trainer
from dmenet.training.schedule import lr_at

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "experiments" / "tiny.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("train_data"))


def _cli(data, out, *extra) -> list[str]:
    return ["--config", str(TINY), "--synthetic", str(data["synthetic"]), "--real", str(data["real"]),
            "--labelled", str(data["labelled"]), "--gt-polarity", "white-blurred", "--out", str(out),
            "--wandb", "disabled", "--device", "cpu", *extra]


# ---------------------------------------------------------------------------------------------------------- losses
def test_discriminator_and_adversarial_loss_weights():
    zero = torch.zeros(2, 1, 3, 3)
    ln2 = math.log(2.0)
    assert losses.discriminator_loss(zero, zero, zero).item() == pytest.approx(2 * ln2)  # ½[2ln2 + ln2 + ln2]
    assert losses.adversarial_loss(zero, zero).item() == pytest.approx(ln2)
    big = torch.full((1, 1, 2, 2), 30.0)
    # synthetic judged synthetic and real judged real → L_D ≈ 0
    assert losses.discriminator_loss(big, -big, -big).item() < 1e-6


def test_aux_targets_use_tf_align_corners_indices():
    target = torch.arange(240.0).view(1, 1, 1, 240).expand(1, 1, 240, 240)
    aux = [torch.zeros(1, 1, 15, 15), torch.zeros(1, 1, 240, 240)]
    # 240 → 15 samples columns 0, 17, 34, …, 239 (docs/method.md §11.2), not 0, 16, …
    cols = torch.tensor([min(int(math.floor(i * 239 / 14 + 0.5)), 239) for i in range(15)], dtype=torch.float32)
    expected = (cols**2).mean() + (torch.arange(240.0) ** 2).mean()
    assert losses.aux_loss(aux, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_lr_schedule_is_step_decay_per_20_epochs():
    assert lr_at(0, 1e-4, 10) == 1e-4 and lr_at(199, 1e-4, 10) == 1e-4
    assert lr_at(200, 1e-4, 10) == pytest.approx(8e-5) and lr_at(400, 1e-4, 10) == pytest.approx(6.4e-5)


def test_trainer_sets_both_optimisers_to_their_decayed_lr(data):
    """set_lr at epoch 20 (the first decay): networks lr · 0.8, discriminator lr_d · 0.8 (each its own base)."""
    cfg = load_config(TINY, [f"data.synthetic={data['synthetic']}", f"data.real={data['real']}",
                             f"data.labelled={data['labelled']}", "optim.lr=1e-4", "optim.lr_d=3e-4"])
    torch.manual_seed(0)
    trainer = Trainer(build_dmenet(cfg.model), cfg, torch.device("cpu"), 10)
    assert trainer.opt_d is not None
    trainer.step = 200  # epoch 20 at 10 steps per epoch
    assert trainer.set_lr() == {"lr": pytest.approx(8e-5), "lr_d": pytest.approx(2.4e-4)}
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(8e-5)
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(2.4e-4)


# ------------------------------------------------------------------------------------------------------ joint step
def test_joint_step_gradients_frozen_c_finite_losses(data):
    cfg = load_config(TINY, [f"data.synthetic={data['synthetic']}", f"data.real={data['real']}",
                             f"data.labelled={data['labelled']}"])
    streams, _, steps_per_epoch, _ = build_data(cfg, rank=0)
    torch.manual_seed(0)
    model = build_dmenet(cfg.model)
    c_before = {k: v.clone() for k, v in model.perceptual.state_dict().items()}
    trainer = Trainer(model, cfg, torch.device("cpu"), steps_per_epoch)
    metrics = trainer.train_step(StepBatches(**{n: s.next_batch() for n, s in streams.items()}))
    assert all(math.isfinite(v) for v in metrics.values())
    assert {"loss_defocus", "loss_aux", "loss_perceptual", "loss_sharp", "loss_adv", "loss_d"} <= set(metrics)
    for name in ("blur", "discriminator", "calibration"):
        params = [(n, p) for n, p in getattr(model, name).named_parameters() if p.requires_grad]
        assert params, name
        missing = [n for n, p in params if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not missing, f"{name}: no/invalid gradient for {missing}"
        assert sum(float(p.grad.abs().sum()) for _, p in params) > 0, name
    assert all(not p.requires_grad for p in model.perceptual.parameters())
    for k, v in model.perceptual.state_dict().items():
        assert torch.equal(v, c_before[k]), f"C changed: {k}"
    trainer.assert_perceptual_frozen()


def _one_step(data, *overrides):
    cfg = load_config(TINY, [f"data.synthetic={data['synthetic']}", f"data.real={data['real']}",
                             f"data.labelled={data['labelled']}", *overrides])
    streams, _, steps_per_epoch, _ = build_data(cfg, rank=0)
    torch.manual_seed(0)
    model = build_dmenet(cfg.model)
    trainer = Trainer(model, cfg, torch.device("cpu"), steps_per_epoch)
    metrics = trainer.train_step(StepBatches(**{n: s.next_batch() for n, s in streams.items()}))
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return trainer, metrics, grads


def test_channels_last_training_step_keeps_the_values(data):
    """train.channels_last: the networks really are in channels-last layout, the forward losses equal NCHW's to
    float rounding and the gradients point the same way (BatchNorm's CPU kernels accumulate in another order)."""
    _, ref, g_ref = _one_step(data)
    trainer, got, g = _one_step(data, "train.channels_last=true")
    conv = trainer.model.blur.encoder.stem0.conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert trainer.images(torch.rand(1, 3, 8, 8)).is_contiguous(memory_format=torch.channels_last)
    for k in ("loss_defocus", "loss_aux", "loss_perceptual", "loss_sharp", "loss_adv", "loss_d"):
        assert got[k] == pytest.approx(ref[k], rel=1e-4, abs=1e-7), k
    assert float(torch.nn.functional.cosine_similarity(g, g_ref, 0)) > 0.99


def test_cpu_bf16_runs_the_forward_passes_in_bfloat16(data):
    trainer, got, _ = _one_step(data, "train.cpu_bf16=true")
    plain, ref, _ = _one_step(data)
    x = torch.rand(1, 3, 64, 64)
    with trainer._autocast(), torch.no_grad():
        assert trainer.model.blur(x).defocus.dtype == torch.bfloat16
    with plain._autocast(), torch.no_grad():
        assert plain.model.blur(x).defocus.dtype == torch.float32
    assert all(math.isfinite(v) for v in got.values())
    assert got["loss_main"] == pytest.approx(ref["loss_main"], rel=0.05) and got["loss_main"] != ref["loss_main"]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # the weights stay fp32


def test_reblur_reaches_synthetic_batches_only(data):
    """data.reblur_p = 1: every synthetic label is > 0 (no sharp pixel left); labelled masks still load."""
    base = [f"data.synthetic={data['synthetic']}", f"data.real={data['real']}", f"data.labelled={data['labelled']}"]
    plain, _, _, _ = build_data(load_config(TINY, base), rank=0)
    streams, _, _, _ = build_data(load_config(TINY, base + ["data.reblur_p=1.0", "data.reblur_max=2.0"]), rank=0)
    assert float(plain["synthetic"].next_batch()["label"].min()) == 0.0  # the renders have in-focus pixels
    assert float(streams["synthetic"].next_batch()["label"].min()) > 0.0
    masks = streams["labelled"].next_batch()["mask"]
    assert set(torch.unique(masks).tolist()) <= {0.0, 1.0} and masks.shape[0] == load_config(TINY).train.batch_labelled
    assert streams["unlabelled"].next_batch()["image"].shape[1] == 3


# -------------------------------------------------------------------------------------- CLI, checkpoints, resume
def test_resume_equals_uninterrupted_training(data, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(_cli(data, full, "--steps", "3")) == 0
    assert main(_cli(data, part, "--steps", "2")) == 0
    assert main(_cli(data, part, "--steps", "3", "--resume")) == 0
    a, b = load_file(str(full / "model_last.safetensors")), load_file(str(part / "model_last.safetensors"))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    # the run folder: resolved config, metrics, retention (last + best), loadable model file
    assert (full / "config.yaml").is_file()
    steps = [json.loads(line)["step"] for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    ckpts = sorted(p.name for p in (full / "checkpoints").glob("step_*"))
    last = json.loads((full / "checkpoints" / "last.json").read_text())
    best = json.loads((full / "checkpoints" / "best.json").read_text())
    assert last["step"] == 3 and set(ckpts) == {last["dir"], best["dir"]}
    train_meta = json.loads((full / "checkpoints" / last["dir"] / "train.json").read_text())
    assert train_meta["step"] == 3 and "git" in train_meta and train_meta["config"]["train"]["stage"] == "joint"
    model, meta = load_model_file(full / "model_last.safetensors")
    assert meta["step"] == 3 and not model.training
    ckpt_model, _ = load_model_file(full / "checkpoints" / last["dir"] / "model.safetensors")
    for k, v in ckpt_model.state_dict().items():
        assert torch.equal(v, a[k])


def test_resume_equals_uninterrupted_training_in_channels_last_bf16(data, tmp_path):
    """The layout and CPU precision options resume exactly too (optimiser state is saved in NCHW, loaded into
    channels-last parameters)."""
    opts = ("--set", "train.channels_last=true", "train.cpu_bf16=true")
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(_cli(data, full, "--steps", "3", *opts)) == 0
    assert main(_cli(data, part, "--steps", "2", *opts)) == 0
    assert main(_cli(data, part, "--steps", "3", "--resume")) == 0
    a, b = load_file(str(full / "model_last.safetensors")), load_file(str(part / "model_last.safetensors"))
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    saved = json.loads((part / "checkpoints" / "last.json").read_text())
    config = json.loads((part / "checkpoints" / saved["dir"] / "train.json").read_text())["config"]["train"]
    assert config["channels_last"] is True and config["cpu_bf16"] is True


def test_resume_when_the_rebuilt_c_differs_from_the_checkpoint(data, tmp_path):
    """A resumed model is built without its init file, so C only becomes right when the checkpoint is loaded; the
    frozen-C check must compare against the loaded C (this once stopped a real run at its first checkpoint)."""
    cfg = load_config(TINY, [f"data.synthetic={data['synthetic']}", f"data.real={data['real']}",
                             f"data.labelled={data['labelled']}"])
    streams, _, steps_per_epoch, _ = build_data(cfg, rank=0)
    torch.manual_seed(0)
    trainer = Trainer(build_dmenet(cfg.model), cfg, torch.device("cpu"), steps_per_epoch)
    trainer.train_step(StepBatches(**{n: s.next_batch() for n, s in streams.items()}))
    folder = checkpoint.save_checkpoint(tmp_path, trainer, {n: s.state_dict() for n, s in streams.items()},
                                        {}, {"metric": 0.0})
    torch.manual_seed(1)  # another random C, as when the init file is not read
    other = Trainer(build_dmenet(cfg.model), cfg, torch.device("cpu"), steps_per_epoch)
    assert any(not torch.equal(a, b) for a, b in zip(other.model.perceptual.state_dict().values(),
                                                      trainer.model.perceptual.state_dict().values()))
    checkpoint.load_checkpoint(folder, other, streams)
    other.assert_perceptual_frozen()
    other.train_step(StepBatches(**{n: s.next_batch() for n, s in streams.items()}))
    other.assert_perceptual_frozen()
    for s in streams.values():
        s.close()


def test_init_from_starts_a_new_run_from_earlier_weights(tmp_path, data, capsys, caplog):
    blur = tmp_path / "blur"
    random_c = "C, the frozen content network, keeps random weights"  # model.init none: named in joint runs only
    assert main(["--config", str(TINY), "--stage", "blur", "--synthetic", str(data["synthetic"]), "--out", str(blur),
                 "--steps", "2", "--wandb", "disabled", "--device", "cpu"]) == 0
    assert random_c not in caplog.text
    source = load_file(str(blur / "model_last.safetensors"))
    # with zero learning rates the joint run's parameters stay exactly the blur stage's (BN statistics move)
    joint = tmp_path / "joint"
    assert main(_cli(data, joint, "--steps", "1", "--init-from", str(blur / "model_last"),
                     "--set", "optim.lr=0", "optim.lr_d=0")) == 0
    model, meta = load_model_file(joint / "model_last.safetensors")
    params = dict(model.named_parameters())
    assert params and all(torch.equal(p, source[k]) for k, p in params.items())
    assert meta["step"] == 1 and meta["init"]["started_from"] == str(blur / "model_last")
    assert meta["init"]["started_from_meta"]["stage"] == "blur"
    # a new run (its own run_id) that records the one it started from
    parent = json.loads((blur / "model_last.json").read_text())
    assert meta["run_id"] != parent["run_id"] and meta["parent_run_id"] == parent["run_id"]
    assert meta["parent_sha256"] == model_digest(blur / "model_last")
    assert random_c not in caplog.text
    # a fresh run with the same seed does not start from those weights
    fresh = tmp_path / "fresh"
    assert main(_cli(data, fresh, "--steps", "1", "--set", "optim.lr=0", "optim.lr_d=0")) == 0
    assert random_c in caplog.text
    other = load_file(str(fresh / "model_last.safetensors"))
    assert any(not torch.equal(other[k], source[k]) for k in params)
    # another architecture is refused with the file named
    assert main(_cli(data, tmp_path / "bad", "--steps", "1", "--init-from", str(blur / "model_last"),
                     "--set", "model.refine_blocks=2")) == 2
    err = capsys.readouterr().err
    assert "architecture differs" in err and "model_last.safetensors" in err
    assert not (tmp_path / "bad" / "model_last.safetensors").exists()


def test_h58_a_resumed_fine_tune_keeps_its_start_record(tmp_path, data):
    """A run started --init-from a file, then resumed: every checkpoint and model_last written after the resume still
    name the file it started from (``init.started_from`` and the file's sidecar fields), as those written before;
    the resume dropped them, and the finished fine-tune read as a run from scratch."""
    blur = ["--config", str(TINY), "--stage", "blur", "--synthetic", str(data["synthetic"]), "--wandb", "disabled",
            "--device", "cpu", "--set", "train.ckpt_every=1", "train.keep_last=2"]
    source, tuned = tmp_path / "source", tmp_path / "tuned"
    assert main([*blur, "--out", str(source), "--steps", "1"]) == 0
    assert main([*blur, "--out", str(tuned), "--steps", "1", "--init-from", str(source / "model_last")]) == 0
    assert main([*blur, "--out", str(tuned), "--steps", "2", "--resume"]) == 0
    before = json.loads((tuned / "checkpoints" / "step_00000001" / "train.json").read_text())["init"]
    assert before["started_from"] == str(source / "model_last") and before["started_from_meta"]["step"] == 1
    after = [tuned / "checkpoints" / "step_00000002" / "train.json", tuned / "checkpoints" / "step_00000002" /
             "model.json", tuned / "model_last.json"]
    for path in after:
        assert json.loads(path.read_text())["init"] == before, path


def _run_ids(run: Path) -> dict[str, str]:
    """Every run_id the run folder records: each checkpoint's train.json and model sidecar, and model_last's."""
    files = [*sorted((run / "checkpoints").glob("step_*/*.json")), run / "model_last.json"]
    return {str(f.relative_to(run)): json.loads(f.read_text()).get("run_id") for f in files}


def test_every_checkpoint_records_the_run_id_and_resume_keeps_it(tmp_path, data):
    """A fresh run draws one run_id (16 hex digits) that every checkpoint (train.json and model sidecar) and
    model_last record; --resume goes on with it; another fresh run gets another. The draw moves no random stream."""
    blur = ["--config", str(TINY), "--stage", "blur", "--synthetic", str(data["synthetic"]), "--wandb", "disabled",
            "--device", "cpu", "--set", "train.ckpt_every=1", "train.keep_last=3"]
    run, other = tmp_path / "run", tmp_path / "other"
    assert main([*blur, "--out", str(run), "--steps", "2"]) == 0
    first = _run_ids(run)
    assert len(first) == 5 and len(set(first.values())) == 1, first  # 2 checkpoints × 2 files + model_last
    run_id = next(iter(first.values()))
    assert isinstance(run_id, str) and len(run_id) == 16 and int(run_id, 16) >= 0
    assert main([*blur, "--out", str(run), "--steps", "3", "--resume"]) == 0
    resumed = _run_ids(run)
    assert len(resumed) == 7 and set(resumed.values()) == {run_id}, resumed
    assert main([*blur, "--out", str(other), "--steps", "1"]) == 0
    others = set(_run_ids(other).values())
    assert len(others) == 1 and run_id not in others and None not in others
    # a fresh run's parent fields are empty; the id comes from secrets, not from torch / NumPy / random
    assert json.loads((run / "model_last.json").read_text())["parent_run_id"] is None
    import random

    import numpy as np

    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    ids = {checkpoint.new_run_id() for _ in range(4)}
    assert len(ids) == 4 and torch.equal(before[0], torch.get_rng_state())
    assert (before[1] == np.random.get_state()[1]).all() and before[2] == random.getstate()


def test_resuming_a_checkpoint_without_run_id_gives_the_run_one(tmp_path, data, caplog):
    """A checkpoint written before run ids: the resumed run records a new id from then on (and says so)."""
    blur = ["--config", str(TINY), "--stage", "blur", "--synthetic", str(data["synthetic"]), "--wandb", "disabled",
            "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main([*blur, "--steps", "1"]) == 0
    folder = tmp_path / "run" / "checkpoints" / "step_00000001"
    meta = json.loads((folder / "train.json").read_text())
    for key in checkpoint.RUN_KEYS:
        del meta[key]
    (folder / "train.json").write_text(json.dumps(meta))
    caplog.set_level("INFO", logger="dmenet.train")
    assert main([*blur, "--steps", "2", "--resume"]) == 0
    run_id = json.loads((tmp_path / "run" / "model_last.json").read_text())["run_id"]
    assert len(run_id) == 16 and any("records no run_id" in r.message and run_id in r.message
                                     for r in caplog.records)


def test_blur_stage_needs_only_synthetic_data(tmp_path, data):
    args = ["--config", str(TINY), "--stage", "blur", "--synthetic", str(data["synthetic"]), "--out",
            str(tmp_path / "run"), "--steps", "2", "--wandb", "disabled", "--device", "cpu"]
    assert main(args) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for r in records:  # B's two terms only (no D, S, C or adversarial term), and L_main is their sum
        assert sorted(k for k in r if k.startswith("loss_")) == ["loss_aux", "loss_defocus", "loss_main"], r
        assert r["loss_main"] == pytest.approx(r["loss_defocus"] + r["loss_aux"], rel=1e-5) and r["loss_main"] > 0
    meta = json.loads((tmp_path / "run" / "checkpoints" / "last.json").read_text())
    streams = json.loads((tmp_path / "run" / "checkpoints" / meta["dir"] / "train.json").read_text())["streams"]
    assert meta["step"] == 2 and sorted(streams) == ["synthetic@0"]  # no real or labelled stream was opened


def test_non_finite_loss_stops_the_run(tmp_path, data, capsys, monkeypatch):
    from dmenet import losses  # a NaN loss weight is refused by the config now: make the loss itself NaN

    monkeypatch.setattr(losses, "defocus_loss", lambda pred, label: (pred * float("nan")).mean())
    args = ["--config", str(TINY), "--stage", "blur", "--synthetic", str(data["synthetic"]), "--out",
            str(tmp_path / "run"), "--steps", "3", "--wandb", "disabled"]
    assert main(args) == 2
    assert "non-finite loss" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model_last.safetensors").exists()


def test_joint_stage_without_real_data_is_a_clear_error(tmp_path, data, capsys):
    args = ["--config", str(TINY), "--synthetic", str(data["synthetic"]), "--out", str(tmp_path / "run"),
            "--wandb", "disabled"]
    assert main(args) == 2
    assert "--real" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_gloo_two_processes_stay_in_sync(tmp_path, data):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dmenet.train", *_cli(data, out, "--steps", "2", "--set", "train.ckpt_every=2")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    replicas = json.loads((out / "replicas.json").read_text())
    assert replicas["world_size"] == 2 and len(set(replicas["digests"])) == 1 and len(replicas["digests"]) == 2
    meta = json.loads((out / "checkpoints" / "last.json").read_text())
    streams = json.loads((out / "checkpoints" / meta["dir"] / "train.json").read_text())["streams"]
    assert {"synthetic@0", "synthetic@1", "labelled@1", "unlabelled@1"} <= set(streams)


def test_trains_on_data_generated_by_syndof(tmp_path, data):
    """End to end: `python -m syndof.generate` writes a SYNDOF folder, the joint stage trains on it."""
    syn = tmp_path / "syndof"
    proc = subprocess.run([sys.executable, "-m", "syndof.generate", "--out", str(syn), "--count", "3",
                           "--max-size", "96", "--seed", "0", "--no-progress"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((syn / "image").glob("*.png"))) >= 2
    out = tmp_path / "run"
    args = _cli(data, out, "--steps", "2")
    args[args.index("--synthetic") + 1] = str(syn)
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(math.isfinite(r["loss_main"]) for r in records)
    model, _ = load_model_file(out / "model_last.safetensors")
    assert model.config.encoder == "mobilenet_v2"
