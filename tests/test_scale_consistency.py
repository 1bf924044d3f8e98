"""The scale-consistency loss (loss.scale_consistency): sizes, values on (non-)equivariant maps, config checks, the
fourth B pass in the joint step and exact resume with it on."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from train_data_helpers import write_all

from dmenet import losses
from dmenet.config import consistency_sizes, load_config
from dmenet.configlib import ConfigError
from dmenet.models.dmenet import build_dmenet
from dmenet.train import build_data, main
from dmenet.training.engine import StepBatches, Trainer

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "experiments" / "tiny.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("scale_data"))


def _overrides(data, *extra) -> list[str]:
    return [f"data.synthetic={data['synthetic']}", f"data.real={data['real']}", f"data.labelled={data['labelled']}",
            *extra]


def test_consistency_sizes_are_the_multiples_of_16_in_range():
    assert consistency_sizes(128, 0.5, 0.75) == [64, 80, 96]
    assert consistency_sizes(64, 0.5, 0.75) == [32, 48]
    assert consistency_sizes(64, 0.3, 0.4) == []


def test_downscale_images_returns_the_true_scale_and_rejects_non_square():
    x = torch.rand(2, 3, 64, 64)
    small, scale = losses.downscale_images(x, 32)
    assert small.shape == (2, 3, 32, 32) and scale == 0.5
    assert torch.allclose(small, F.avg_pool2d(x, 2), atol=1e-6)  # area at factor 2 = 2×2 mean
    with pytest.raises(ValueError, match="square"):
        losses.downscale_images(torch.rand(1, 3, 64, 48), 32)


def test_loss_is_zero_for_a_blur_measuring_map_and_not_for_a_content_guessing_one():
    full = torch.rand(3, 1, 64, 64)
    measuring = 0.5 * F.avg_pool2d(full, 2)  # σ halves when the image halves
    assert losses.scale_consistency_loss(measuring, full, 0.5).item() == pytest.approx(0.0, abs=1e-12)
    # a map that ignores the scale (σ unchanged after halving the image) pays (σ − σ/2)² on average
    constant = torch.full((1, 1, 64, 64), 0.4)
    guessing = torch.full((1, 1, 32, 32), 0.4)
    assert losses.scale_consistency_loss(guessing, constant, 0.5).item() == pytest.approx(0.2**2)
    # non-integer factor: 64 → 48 is scale 0.75 and the target is 0.75 × the area-downscaled map
    small = torch.full((1, 1, 48, 48), 0.3)
    assert losses.scale_consistency_loss(small, constant, 0.75).item() == pytest.approx(0.0, abs=1e-12)


def test_config_rejects_blur_stage_and_bad_ranges(data):
    with pytest.raises(ConfigError, match="joint"):
        load_config(TINY, _overrides(data, "loss.scale_consistency=1.0", "train.stage=blur"))
    with pytest.raises(ConfigError, match="min <= max"):
        load_config(TINY, _overrides(data, "loss.scale_consistency_min=0.8", "loss.scale_consistency_max=0.6"))
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_config(TINY, _overrides(data, "loss.scale_consistency=1.0", "loss.scale_consistency_min=0.3",
                                     "loss.scale_consistency_max=0.4"))
    with pytest.raises(ConfigError, match=">= 0"):
        load_config(TINY, _overrides(data, "loss.scale_consistency=-1"))
    # off (the default) with any stage is fine
    assert load_config(TINY, _overrides(data, "train.stage=blur")).loss.scale_consistency == 0.0


def test_joint_step_adds_the_term_and_its_target_takes_no_gradient(data):
    cfg = load_config(TINY, _overrides(data, "loss.scale_consistency=1.0"))
    streams, _, steps_per_epoch, _ = build_data(cfg, rank=0)
    torch.manual_seed(0)
    model = build_dmenet(cfg.model)
    trainer = Trainer(model, cfg, torch.device("cpu"), steps_per_epoch)
    sizes = {trainer.consistency_size(64) for trainer.step in range(40)}
    assert sizes == {32, 48}  # both allowed sizes are drawn …
    trainer.step = 7
    assert trainer.consistency_size(64) == trainer.consistency_size(64)  # … and each step's draw is reproducible
    trainer.step = 0
    metrics = trainer.train_step(StepBatches(**{n: s.next_batch() for n, s in streams.items()}))
    assert math.isfinite(metrics["loss_scale"]) and metrics["loss_scale"] > 0

    trainer.train_mode()
    x_u = streams["unlabelled"].next_batch()["image"]
    out_u = model.blur(x_u)
    out_u.defocus.retain_grad()
    model.zero_grad(set_to_none=True)
    trainer.scale_term(x_u, out_u).backward()
    assert out_u.defocus.grad is None  # the full-size map is the target
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.blur.parameters())


def test_off_by_default_adds_no_term(data):
    cfg = load_config(TINY, _overrides(data))
    streams, _, steps_per_epoch, _ = build_data(cfg, rank=0)
    torch.manual_seed(0)
    trainer = Trainer(build_dmenet(cfg.model), cfg, torch.device("cpu"), steps_per_epoch)
    assert cfg.loss.scale_consistency == 0.0
    metrics = trainer.train_step(StepBatches(**{n: s.next_batch() for n, s in streams.items()}))
    terms = ["loss_adv", "loss_aux", "loss_defocus", "loss_perceptual", "loss_sharp"]  # the joint stage's, no scale
    assert sorted(k for k in metrics if k.startswith("loss_")) == sorted(terms + ["loss_d", "loss_main"])
    assert metrics["loss_main"] == pytest.approx(sum(metrics[k] for k in terms), rel=1e-5)


def test_resume_with_the_scale_term_equals_uninterrupted_training(data, tmp_path):
    def cli(out, *extra):
        return ["--config", str(TINY), "--synthetic", str(data["synthetic"]), "--real", str(data["real"]),
                "--labelled", str(data["labelled"]), "--gt-polarity", "white-blurred", "--out", str(out),
                "--wandb", "disabled", "--device", "cpu", "--set", "loss.scale_consistency=1.0", *extra]

    full, part = tmp_path / "full", tmp_path / "part"
    assert main(cli(full, "--steps", "3")) == 0
    assert main(cli(part, "--steps", "2")) == 0
    assert main(cli(part, "--steps", "3", "--resume")) == 0
    a, b = load_file(str(full / "model_last.safetensors")), load_file(str(part / "model_last.safetensors"))
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
