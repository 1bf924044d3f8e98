"""A run recorded before a config key existed, resumed today (docs/reliability.md §33): each trainer's
``ADDED_KEYS`` gives every key added since its first resumable runs the value that does what such a run did
(:func:`dmenet.training.resume.with_added_keys`), not today's default, and a refusal names that value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_distill import TINY, _dataset
from test_galetto import _fake_patches
from train_data_helpers import write_syndof

from dmenet.config import ExperimentConfig, load_config
from dmenet.configlib import ConfigError, config_to_dict, flat_keys
from dmenet.distill import train as distill_train
from dmenet.distill.config import DistillConfig, load_distill_config
from dmenet.galetto import train as galetto_train

REPO = Path(__file__).resolve().parents[1]

# The config keys of each trainer's first resumable version (10103ab, 65a2a62, dbe10b6), as that code wrote them.
FIRST_KEYS = {
    "dmenet.train": (ExperimentConfig, """
        data.crop data.gt_polarity data.labelled data.loader_threads data.max_min_side data.real data.rot90
        data.synthetic data.val_count data.vflip loss.adv loss.aux loss.binary loss.defocus loss.discriminator
        loss.perceptual model.calib_width model.disc_width model.encoder model.init model.input_convention
        model.max_coc model.mobilenet_d0 model.refine_blocks model.width optim.beta1 optim.beta2 optim.decay
        optim.decay_every_epochs optim.eps optim.lr optim.lr_d optim.steps_per_epoch train.amp train.batch_labelled
        train.batch_synthetic train.batch_unlabelled train.ckpt_every train.device train.image_every train.log_every
        train.seed train.stage train.steps train.wandb train.wandb_project"""),
    "dmenet.galetto.train": (galetto_train.GalettoConfig, """
        model.blocks model.head_channels model.num_classes model.width train.augment train.batch train.beta1
        train.beta2 train.ckpt_every train.eps train.log_every train.lr train.lr_min train.seed train.steps
        train.threads train.val_count train.wandb train.wandb_project"""),
    "dmenet.distill.train": (DistillConfig, """
        data.batch data.crop data.hflip data.images data.masks data.preload_long_side data.scale_min
        data.sharp_images data.sharp_list data.sharp_per_batch data.sharp_val_images data.sharp_val_list
        data.soft_targets data.train_list data.val_list data.val_side data.white_is_blurred loss.adv_distill
        loss.adv_student loss.adv_teacher loss.consistency loss.content loss.discriminator loss.edge loss.feature
        loss.sharp_weight optim.beta1 optim.beta2 optim.final_lr_fraction optim.lr optim.lr_d optim.warmup_steps
        optim.weight_decay student.concat_input student.decoder student.drop_connect student.encoder
        student.normalize student.skip_at teacher.aspp_dilations teacher.aspp_dropout teacher.aspp_growth
        teacher.aspp_mid teacher.backbone teacher.classifier teacher.dead_weights teacher.decoder teacher.dropout
        teacher.sa_reduction teacher.vgg_weights train.ckpt_every train.init_imagenet train.keep_last
        train.log_every train.seed train.stage train.steps train.teacher_model train.threads train.wandb"""),
}


def _added_keys(trainer: str) -> dict:
    from dmenet import train as dmenet_train

    return {"dmenet.train": dmenet_train.ADDED_KEYS, "dmenet.galetto.train": galetto_train.ADDED_KEYS,
            "dmenet.distill.train": distill_train.ADDED_KEYS}[trainer]


@pytest.mark.parametrize("trainer", sorted(FIRST_KEYS))
def test_z0_every_key_added_since_a_trainers_first_runs_has_the_value_those_runs_trained_with(trainer):
    """Old code: only distill had ADDED_KEYS (2 of its 5 added keys; dmenet.train and galetto.train none). A key
    added to a trainer's config without an entry here fails this test, naming it. A record holding only the first
    version's keys loads with the ADDED_KEYS values (each one a valid value)."""
    from dmenet.training.resume import with_added_keys

    root, first = FIRST_KEYS[trainer]
    added = _added_keys(trainer)
    now = set(flat_keys(config_to_dict(root())))
    assert sorted(now - set(first.split())) == sorted(added), f"{trainer}: add the new key to its ADDED_KEYS"
    old = {k: v for k, v in flat_keys(config_to_dict(root())).items() if k in first.split()}
    record: dict = {}
    for key, value in old.items():
        section, _, name = key.partition(".")
        record.setdefault(section, {})[name] = value
    assert flat_keys(with_added_keys(record, added)) == {**old, **added}


def test_z0_with_added_keys_fills_only_what_a_record_lacks_and_leaves_it_unchanged():
    from dmenet.training.resume import with_added_keys

    record = {"train": {"channels_last": True}, "data": {"crop": 32}, "loss": None, "optim": [1]}
    added = {"train.channels_last": False, "train.cpu_bf16": False, "data.scale_p": 1.0, "model.tail_scale": 1,
             "loss.x": 0, "optim.y": 2}
    out = with_added_keys(record, added)
    # an empty section (null) is one without keys, as the config load reads it (§37 R5); a list is left for the
    # load to name
    assert out == {"train": {"channels_last": True, "cpu_bf16": False}, "data": {"crop": 32, "scale_p": 1.0},
                   "model": {"tail_scale": 1}, "loss": {"x": 0}, "optim": [1]}
    assert record == {"train": {"channels_last": True}, "data": {"crop": 32}, "loss": None, "optim": [1]}


# ------------------------------------------------------------------------------------------------ galetto
def _galetto_args(patches: Path, out: Path, *sets: str) -> list[str]:
    return ["--config", str(REPO / "experiments" / "galetto_tiny.yaml"), "--patches", str(patches), "--out", str(out),
            "--set", "model.blocks=2", "model.head_channels=16", *sets]


def test_z1_a_galetto_run_from_before_train_channels_last_resumes_as_the_nchw_run_it_was(tmp_path, capsys):
    """Old code: a run recorded before 4 Dec (config.json without train.channels_last, init_from, imagenet,
    device: NCHW) was refused at every resume, ``--set train.channels_last=false`` too (``differs in
    train.channels_last``: absent ≠ false). Now it resumes with the value it trained with and continues exactly as
    an uninterrupted NCHW run; without it the refusal names the value to set."""
    patches = _fake_patches(tmp_path / "p")
    nchw = "train.channels_last=false"
    assert galetto_train.main(_galetto_args(patches, tmp_path / "a", nchw)) == 0
    old = tmp_path / "old"
    assert galetto_train.main(_galetto_args(patches, old, nchw, "train.steps=2")) == 0
    record = json.loads((old / "config.json").read_text())
    for key in ("channels_last", "init_from", "imagenet", "device"):
        del record["train"][key]
    (old / "config.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert galetto_train.main(_galetto_args(patches, old, "--resume")) == 2  # today's default: channels-last
    refused = capsys.readouterr().err
    assert json.loads((old / "last.json").read_text())["step"] == 2  # nothing was changed
    assert galetto_train.main(_galetto_args(patches, old, nchw, "--resume")) == 0
    assert "differs from this one in train.channels_last (the run predates the key: false)" in refused
    a, b = load_file(str(tmp_path / "a" / "last.safetensors")), load_file(str(old / "last.safetensors"))
    assert json.loads((old / "last.json").read_text())["step"] == 4
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------------ distill
def test_z2_a_distill_run_from_before_loss_sharp_consistency_resumes_with_it_on(tmp_path):
    """Old code: a run recorded before 5 Dec (config.yaml without loss.sharp_consistency: its sharp negatives took
    the teacher's soft target, i.e. ``true``) was refused at every resume, ``--set loss.sharp_consistency=true``
    too. Now ``true`` resumes it; today's default (off: another training) is refused, naming the value."""
    sets = _dataset(tmp_path / "d") + TINY + ["loss.sharp_consistency=true"]
    out = tmp_path / "run"
    distill_train.train(load_distill_config(None, sets), out, max_steps=2)
    record = yaml.safe_load((out / "config.yaml").read_text())
    for key in ("sharp_consistency",):
        del record["loss"][key]
    for key in ("init_from", "device", "channels_last"):
        del record["train"][key]
    del record["data"]["mask_suffix"]
    (out / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    with pytest.raises(ConfigError) as refused:  # today's default: off
        distill_train.train(load_distill_config(None, sets[:-1]), out, resume=True)
    run = distill_train.train(load_distill_config(None, sets), out, resume=True)
    assert str(refused.value).endswith("differs from this one in loss.sharp_consistency (the run predates the key: "
                                       "true)")
    assert run.cfg.loss.sharp_consistency is True
    assert sorted(p.name for p in (out / "ckpt").iterdir())[-1] == "step_000003"


# ------------------------------------------------------------------------------------------------ dmenet.train
def test_z3_a_dmenet_run_without_a_key_reads_the_value_it_trained_with_not_todays_default(tmp_path, monkeypatch):
    """Old code: a run's config.yaml / checkpoint record without a key added since took today's default, silently
    (equal to what those runs did only by chance; had a default changed, e.g. train.channels_last as galetto's
    did, a resume would have trained on with the new value). Now it reads the ADDED_KEYS value: with that value set
    apart from the default here, the resumed run's config.yaml and checkpoint say it. The former
    ``model.image_bn_stats`` still wins over ``inference.sigma_bn``'s entry."""
    from dmenet import config as C
    from dmenet.train import main

    args = ["--config", str(REPO / "experiments" / "tiny.yaml"), "--stage", "blur", "--synthetic",
            str(write_syndof(tmp_path / "syn", count=3)), "--out", str(tmp_path / "run"), "--wandb", "disabled",
            "--device", "cpu"]
    assert main(args + ["--steps", "1"]) == 0
    run = tmp_path / "run"
    record = yaml.safe_load((run / "config.yaml").read_text())
    del record["train"]["channels_last"], record["data"]["scale_p"]
    (run / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    meta_file = next((run / "checkpoints").glob("step_*/train.json"))
    meta = json.loads(meta_file.read_text())
    del meta["config"]["train"]["channels_last"], meta["config"]["data"]["scale_p"]
    meta_file.write_text(json.dumps(meta))
    monkeypatch.setitem(C.ADDED_KEYS, "train.channels_last", True)  # as if the default had changed since
    assert main(args + ["--steps", "2", "--resume"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["channels_last"] is True
    last = sorted((run / "checkpoints").glob("step_*/train.json"))[-1]
    assert json.loads(last.read_text())["config"]["train"]["channels_last"] is True

    legacy = tmp_path / "legacy.yaml"
    legacy.write_text(yaml.safe_dump({"model": {"image_bn_stats": True, "test_flips": 2}, "train": {"steps": 3}}))
    cfg = load_config(legacy, added=C.ADDED_KEYS)
    assert (cfg.inference.sigma_bn, cfg.inference.flips, cfg.train.channels_last) == ("image", 2, True)
    assert load_config(legacy).train.channels_last is False  # a config that is not a run's record: the defaults
