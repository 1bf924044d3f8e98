"""dmenet.config: YAML + overrides, type conversion, unknown keys, the shipped experiment files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmenet.config import ExperimentConfig, config_from_dict, dump_config, load_config
from dmenet.configlib import ConfigError, config_to_dict
from dmenet.train import parse_args, resolve_config

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_the_paper_values():
    cfg = ExperimentConfig()
    assert (cfg.loss.perceptual, cfg.loss.binary, cfg.loss.adv, cfg.loss.aux) == (1e-4, 2e-2, 1e-3, 1.0)
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.decay, cfg.optim.decay_every_epochs) == (1e-4, 0.9, 0.8, 20)
    assert (cfg.train.batch_synthetic, cfg.train.batch_labelled, cfg.train.batch_unlabelled) == (3, 3, 3)
    assert cfg.data.crop == 240 and cfg.model.encoder == "vgg19"


@pytest.mark.parametrize("name", ["dmenet_paper", "dmenet_lite", "dmenet_lite_finetune", "tiny"])
def test_experiment_files_load(name):
    cfg = load_config(REPO / "experiments" / f"{name}.yaml")
    assert isinstance(cfg, ExperimentConfig)
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_paper_and_lite_files():
    paper = load_config(REPO / "experiments" / "dmenet_paper.yaml")
    assert paper.model.encoder == "vgg19" and paper.data.crop == 240 and paper.train.batch_labelled == 3
    lite = load_config(REPO / "experiments" / "dmenet_lite.yaml")
    assert lite.model.encoder == "mobilenet_v2" and lite.data.crop == 256 and lite.train.batch_unlabelled == 4
    assert lite.model.init.endswith("mobilenet_v2_imagenet_keras.safetensors")


def test_overrides_convert_types(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("optim:\n  lr: 1e-4\ntrain:\n  steps: 7\n")  # YAML 1.1 reads 1e-4 as a string
    cfg = load_config(path, ["train.steps=12", "optim.lr=3e-5", "train.amp=false", "data.max_min_side=null",
                             "model.width=0.5", "data.synthetic=/some/dir"])
    assert cfg.train.steps == 12 and isinstance(cfg.train.steps, int)
    assert cfg.optim.lr == pytest.approx(3e-5) and cfg.train.amp is False
    assert cfg.data.max_min_side is None and cfg.model.width == 0.5 and cfg.data.synthetic == "/some/dir"
    assert load_config(path).optim.lr == pytest.approx(1e-4)


@pytest.mark.parametrize("override, words", [
    ("train.stepz=3", ["train.stepz", "valid keys"]),
    ("trian.steps=3", ["trian", "top level"]),
    ("model.depth=3", ["model.depth"]),
])
def test_unknown_key_is_rejected(override, words):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    for word in words:
        assert word in str(err.value)


def test_unknown_key_in_yaml_is_rejected(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("train:\n  step: 3\n")
    with pytest.raises(ConfigError, match="train.step"):
        load_config(path)


@pytest.mark.parametrize("override, key", [("train.steps=ten", "train.steps"), ("optim.lr=fast", "optim.lr"),
                                           ("train.amp=maybe", "train.amp"), ("train.steps=1.5", "train.steps"),
                                           ("train.stage=pretrain", "train.stage")])
def test_type_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.steps"])
    with pytest.raises(ConfigError, match="section"):
        load_config(None, ["train=3"])


def test_dump_roundtrip(tmp_path):
    cfg = load_config(REPO / "experiments" / "tiny.yaml", ["optim.lr=2e-4"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_cli_flags_override_set_and_yaml(tmp_path):
    args = parse_args(["--config", str(REPO / "experiments" / "tiny.yaml"), "--out", str(tmp_path / "run"),
                       "--steps", "9", "--stage", "blur", "--set", "train.steps=3", "optim.lr=5e-5",
                       "--set", "data.crop=32", "--gt-polarity", "white-sharp", "--wandb", "disabled"])
    cfg = resolve_config(args)
    assert cfg.train.steps == 9 and cfg.train.stage == "blur" and cfg.data.crop == 32
    assert cfg.optim.lr == pytest.approx(5e-5) and cfg.data.gt_polarity == "white-sharp"


def test_resume_without_run_folder_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config.yaml"):
        resolve_config(parse_args(["--out", str(tmp_path / "nothing"), "--resume"]))


@pytest.mark.shared
def test_lite_init_path_resolves_to_shared_weights(shared, tmp_path, monkeypatch):
    weights = shared("weights", "mobilenet_v2_imagenet_keras.safetensors")
    monkeypatch.chdir(tmp_path)  # the path in the YAML is relative to the repository root, not the cwd
    cfg = resolve_config(parse_args(["--config", str(REPO / "experiments" / "dmenet_lite.yaml"), "--out", "run"]))
    assert Path(cfg.model.init).resolve() == weights.resolve()


@pytest.mark.parametrize("root_path, override, key", [
    ("dmenet.config.ExperimentConfig", "optim.beta1=1.0", "optim.beta1"),
    ("dmenet.distill.config.DistillConfig", "optim.lr=-0.1", "optim.lr"),
    ("dmenet.distill.config.DistillConfig", "optim.beta2=1.5", "optim.beta2"),
    ("dmenet.distill.config.DistillConfig", "optim.final_lr_fraction=2", "optim.final_lr_fraction"),
    ("dmenet.distill.config.DistillConfig", "train.wandb=cloud", "train.wandb"),
    ("dmenet.galetto.train.GalettoConfig", "train.lr=-1e-3", "train.lr"),
    ("dmenet.galetto.train.GalettoConfig", "train.lr_min=1.0", "train.lr_min"),
    ("dmenet.galetto.train.GalettoConfig", "train.eps=0", "train.eps")])
def test_every_training_config_checks_its_adam_settings(root_path, override, key):
    """One set of Adam / choice checks serves the three training configs: a bad value is refused by name."""
    import importlib

    module, name = root_path.rsplit(".", 1)
    root = getattr(importlib.import_module(module), name)
    load_config(None, root=root)  # the defaults pass
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + " must"):
        load_config(None, [override], root=root)


def test_a_binary_file_as_config_is_named(tmp_path):
    """A model file (or any non-text file) given as --config: a ConfigError naming it, not a codec message."""
    from dmenet.config import load_config
    from dmenet.configlib import ConfigError

    binary = tmp_path / "model.safetensors"
    binary.write_bytes(b"\x00\xbb\xff" * 100)
    with pytest.raises(ConfigError, match=f"{binary}: not a YAML text file"):
        load_config(binary)


def test_an_option_member_set_in_code_dumps_as_its_string():
    import dataclasses

    import yaml

    from dmenet.config import ExperimentConfig, Stage, dump_config
    from dmenet.configlib import config_to_dict

    cfg = ExperimentConfig()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, stage=Stage.BLUR))
    assert type(config_to_dict(cfg)["train"]["stage"]) is str
    assert yaml.safe_load(dump_config(cfg))["train"]["stage"] == "blur"


@pytest.mark.parametrize("name", ["defocus", "aux", "perceptual", "binary", "adv", "discriminator",
                                  "scale_consistency"])
@pytest.mark.parametrize("value", ["-1", "-1e-4", "nan", "inf"])
def test_loss_weights_must_be_finite_and_non_negative(name, value):
    """Review C1: a negative DMENet loss weight trained that term by gradient ascent (exit 0), an infinite or NaN one
    failed only at step 0 after the run folder was written; each is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=rf"loss\.{name} must be a finite weight >= 0"):
        load_config(REPO / "experiments" / "tiny.yaml", [f"loss.{name}={value}"])
    assert load_config(REPO / "experiments" / "tiny.yaml", [f"loss.{name}=0"]).loss.__getattribute__(name) == 0


@pytest.mark.parametrize("text, key", [
    ("model:\n  encoder: mobilenet_v2\n  width: 0.125\ntrain:\n  steps: 4\nmodel:\n  refine_blocks: 1\n", "model"),
    ("train:\n  steps: 4\n  steps: 8\n", "steps")])
def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path, text, key):
    """Review C7: PyYAML keeps the last of two equal keys silently, so a second ``model:`` section replaced the whole
    first one (encoder mobilenet_v2, width 0.125 became the paper's vgg19 at width 1.0, exit 0)."""
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"key '{key}' given twice"):
        load_config(path)
    path.write_text("base: &b\n  steps: 4\ntrain:\n  <<: *b\n  seed: 3\n")  # a YAML merge key is not a duplicate
    with pytest.raises(ConfigError, match="unknown config key"):  # (base is not a section: the merge itself loads)
        load_config(path)
    path.write_text("x: !!python/object/apply:os.system ['true']\n")  # still the safe loader
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)


@pytest.mark.parametrize("override, key", [("model.width=inf", "model.width"), ("model.calib_width=0", "calib_width"),
                                           ("model.calib_width=-1", "calib_width"),
                                           ("model.calib_width=nan", "calib_width"),
                                           ("model.disc_width=0", "disc_width"), ("model.disc_width=-2", "disc_width"),
                                           ("model.mobilenet_d0=0", "mobilenet_d0"),
                                           ("model.mobilenet_d0=-3", "mobilenet_d0")])
def test_channel_multipliers_and_stem_channels_are_checked(override, key):
    """Review C8: calib_width / disc_width <= 0 and mobilenet_d0 <= 0 built 1-channel layers silently (exit 0), and
    width inf failed with an OverflowError traceback inside the model build."""
    with pytest.raises(ConfigError, match=key):
        load_config(REPO / "experiments" / "tiny.yaml", [override])
    assert load_config(REPO / "experiments" / "tiny.yaml", ["model.disc_width=null"]).model.disc_width is None


def test_duplicate_key_check_sees_one_line_duplicates_and_not_merged_overrides(tmp_path):
    """Review of 792a632: the check compared line numbers, so ``{width: 1, width: 2}`` on one line passed; and a
    mapping that overrides a key it merges was refused when PyYAML had flattened it (merging it into a later mapping)
    before constructing it, a legitimate file (``x: 5`` overriding ``<<: *c``'s x)."""
    path = tmp_path / "c.yaml"
    path.write_text("model: {width: 0.5, width: 1.0}\n")
    with pytest.raises(ConfigError, match="key 'width' given twice"):
        load_config(path)
    import yaml

    from dmenet.configlib import UniqueKeyLoader

    text = "c: &c\n  x: 1\nouter:\n  inner: &i\n    <<: *c\n    x: 5\nuser:\n  <<: *i\n  m: 2\n"
    assert yaml.load(text, Loader=UniqueKeyLoader) == yaml.safe_load(text)


@pytest.mark.parametrize("text", ["model: mobilenet_v2\n", "model: false\n", "train: 0\n", "train: []\n"])
def test_h60_a_section_that_is_not_a_mapping_is_refused_not_replaced_by_the_defaults(tmp_path, text):
    """``model: mobilenet_v2`` (a section written as a value) was refused alone, but any ``--set model.…`` (or a flag
    such as ``--stage`` for ``train:``) replaced it by an empty section: the paper's vgg19 at width 1 trained, exit 0;
    ``model: false`` / ``train: 0`` / ``train: []`` read as empty sections even alone. Each is one ConfigError naming
    the file and the section; an empty section (``train:``) still takes the defaults."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    section = text.split(":")[0]
    for overrides in ([], [f"{section}.{'width=0.5' if section == 'model' else 'steps=3'}"]):
        with pytest.raises(ConfigError, match=rf"{path}: section '{section}' must be a mapping"):
            load_config(path, overrides)
    with pytest.raises(ConfigError, match=rf"^{section}: expected a mapping"):  # a config record read from JSON
        config_from_dict({section: 0})
    path.write_text(f"{section}:\n")
    assert load_config(path, [f"{section}.{'width=0.5' if section == 'model' else 'steps=3'}"]) is not None


def test_config_re_exports_the_configlib_names_as_the_same_objects():
    """``dmenet.config`` keeps every public name it had before the generic machinery became :mod:`dmenet.configlib`
    (reliability.md §40): each moved name is the very object there (one ``ConfigError`` class: an ``except`` on
    either name catches what the other raises), and ``__all__`` names only what resolves."""
    from dmenet import config, configlib

    for name in ("ConfigError", "check_adam", "check_choice", "config_to_dict", "differing_keys", "flat_keys",
                 "require_non_negative", "require_positive", "split_override"):
        assert getattr(config, name) is getattr(configlib, name), name
        assert name in config.__all__, name
    assert all(hasattr(config, name) for name in config.__all__)
