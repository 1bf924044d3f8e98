"""python -m dmenet.calibrate: the four post-training steps chained on a tiny model, each appending to the history;
the BatchNorm step leaves the detection path's statistics alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dmenet import calibrate, inference
from dmenet.models.model_io import load_model_file, save_model
from dmenet.models.recipe import BNMode, Recipe
from syndof import io
from model_helpers import tiny_dmenet as _tiny


@pytest.fixture
def data(tmp_path):
    """A SYNDOF folder (image/ + blur_map/) and a labelled folder (image/ + gt/), 48×64 px."""
    rng = np.random.default_rng(0)
    for i in range(2):
        img = rng.random((48, 64, 3)).astype(np.float32)
        img[:, 32:] = 0.5
        sigma = np.zeros((48, 64), np.float32)
        sigma[:, 32:] = 2.0 + i
        io.write_image(tmp_path / "syn" / "image" / f"s{i}.png", img)
        io.write_sigma_map(tmp_path / "syn" / "blur_map" / f"s{i}.png", sigma)
        io.write_image(tmp_path / "lab" / "image" / f"a{i}.png", img)
        io.write_image(tmp_path / "lab" / "gt" / f"a{i}.png", (sigma > 0).astype(np.float32))
    return tmp_path


def test_the_four_steps_chain_and_each_appends_itself(data):
    t = data
    paths = [str(save_model(t / f"c{i}.safetensors", m, {"step": i})) for i, m in enumerate((_tiny(0), _tiny(1)))]
    start = load_model_file(paths[-1])[0]
    start.recipe = Recipe().with_bn(BNMode.IMAGE, BNMode.IMAGE)  # as a run trained with per-image statistics
    save_model(t / "c1.safetensors", start, {"step": 1})
    steps = [["average", "--model", *paths, "--out", str(t / "avg.safetensors")],
             ["bn", "--model", str(t / "avg.safetensors"), "--synthetic", str(t / "syn"), "--crops", "2",
              "--crop", "32", "--batch", "1", "--out", str(t / "bn.safetensors")],
             ["sigma", "--model", str(t / "bn.safetensors"), "--data", str(t / "syn"), "--values", "8",
              "--min-pixels", "10", "--flips", "2", "--out", str(t / "sigma.safetensors")],
             ["dbd", "--model", str(t / "sigma.safetensors"), "--labelled", str(t / "lab"), "--flips", "2",
              "--out", str(t / "final.safetensors")]]
    for argv in steps:
        assert calibrate.main(argv) == 0
    final, sidecar = load_model_file(t / "final.safetensors")
    history = sidecar["history"]
    assert [h["tool"] for h in history] == [f"dmenet.calibrate {s}" for s in ("average", "bn", "sigma", "dbd")]
    assert [h["arguments"] for h in history] == steps and all(h["date"] for h in history)
    assert history[1]["data"] == [str(t / "syn")] and history[3]["data"] == [str(t / "lab")]
    r = final.recipe
    assert r.flips == 2 and r.sigma.bn is BNMode.MOVING and r.detection.bn is BNMode.IMAGE
    assert r.sigma.curve is not None and r.sigma.curve_fit.bn_source == r.moving_stats
    assert r.detection.transform_fit.tool == "dmenet.calibrate dbd" and r.contradictions() == []
    assert all(h["stale"] == [] for h in history)
    # the moving statistics are the ones the bn step wrote; the weights are the average
    bn_model, _ = load_model_file(t / "bn.safetensors")
    for k, v in bn_model.state_dict().items():
        assert torch.equal(v, final.state_dict()[k])
    assert "re-estimated on synthetic=" in r.moving_stats


def test_bn_step_leaves_the_detection_path_alone(data, capsys):
    t = data
    model = _tiny()
    model.recipe = Recipe().with_bn(BNMode.IMAGE, BNMode.IMAGE).with_transform(3.0, 0.5)
    save_model(t / "m.safetensors", model, {})
    image = np.random.default_rng(2).random((32, 48, 3)).astype(np.float32)
    before = inference.estimate_blur_probability(image, model)
    with pytest.raises(SystemExit) as exc:  # a partial last batch would be dropped while the record says 3 crops
        calibrate.main(["bn", "--model", str(t / "m.safetensors"), "--synthetic", str(t / "syn"), "--crops", "3",
                        "--crop", "32", "--batch", "2", "--out", str(t / "bn.safetensors")])
    assert exc.value.code == 2 and not (t / "bn.safetensors").exists()
    assert "--crops 3 must be a multiple of --batch 2" in capsys.readouterr().err  # not any other usage error
    assert calibrate.main(["bn", "--model", str(t / "m.safetensors"), "--synthetic", str(t / "syn"), "--crops", "2",
                           "--crop", "32", "--batch", "1", "--out", str(t / "bn.safetensors")]) == 0
    out, _ = load_model_file(t / "bn.safetensors")
    assert out.recipe.detection == model.recipe.detection and out.recipe.sigma.bn is BNMode.MOVING
    np.testing.assert_array_equal(inference.estimate_blur_probability(image, out), before)
    assert not np.array_equal(inference.estimate_defocus(image, out), inference.estimate_defocus(image, model))
    # --mode image: the σ path goes per-image, the statistics and the detection path stay
    assert calibrate.main(["bn", "--model", str(t / "bn.safetensors"), "--mode", "image",
                           "--out", str(t / "img.safetensors")]) == 0
    img, sidecar = load_model_file(t / "img.safetensors")
    assert img.recipe.sigma.bn is BNMode.IMAGE and img.recipe.detection == model.recipe.detection
    assert img.recipe.moving_stats == out.recipe.moving_stats and len(sidecar["history"]) == 2


def test_bn_step_refuses_to_move_statistics_under_a_moving_detection_path(data, capsys):
    t = data
    model = _tiny()
    model.recipe = Recipe(flips=1).with_transform(
        3.0, 0.5, Recipe(flips=1).fit_conditions("dmenet.calibrate dbd", (BNMode.MOVING,), ["lab"], "d"))
    save_model(t / "m.safetensors", model, {})
    argv = ["bn", "--model", str(t / "m.safetensors"), "--synthetic", str(t / "syn"), "--crops", "2", "--crop", "32",
            "--batch", "1", "--out", str(t / "bn.safetensors")]
    assert calibrate.main(argv) == 2 and not (t / "bn.safetensors").exists()
    assert "--detection follow" in capsys.readouterr().err
    assert calibrate.main([*argv, "--detection", "follow"]) == 0
    out, sidecar = load_model_file(t / "bn.safetensors")
    assert out.recipe.detection.bn is BNMode.MOVING
    stale = sidecar["history"][-1]["stale"]
    assert len(stale) == 1 and stale[0].startswith("the detection transform was fitted on moving statistics from "
                                                   "'training'")


def test_help_shows_a_working_example(capsys):
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["--help"])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    example = lines[lines.index("example:") + 1].split()
    assert example[:2] == ["dmenet-calibrate", "sigma"]  # not average: `average --model A A` is a copy (H63)
    args = calibrate.build_parser().parse_args(example[1:])  # the example parses as printed (tests/test_cli.py runs it)
    assert (args.step, args.out) == ("sigma", "runs/calibrate_example.safetensors")


def test_a_bad_option_of_a_step_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["sigma", "--no-such-option"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and err[0].endswith("dmenet.calibrate sigma --help)"), err


def test_bad_input_writes_nothing(data, capsys):
    t = data
    save_model(t / "m.safetensors", _tiny(), {})
    sidecar_before = (t / "m.json").read_bytes()
    assert calibrate.main(["sigma", "--model", str(t / "m.safetensors"), "--data", str(t / "syn"),
                           "--out", str(t / "m.safetensors")]) == 2  # would overwrite its input
    assert "--out" in capsys.readouterr().err and (t / "m.json").read_bytes() == sidecar_before
    assert calibrate.main(["dbd", "--model", str(t / "missing.safetensors"), "--labelled", str(t / "lab"),
                           "--out", str(t / "x.safetensors")]) == 2
    assert f"{t / 'missing.safetensors'}: model file not found" in capsys.readouterr().err
    assert calibrate.main(["bn", "--model", str(t / "m.safetensors"), "--out", str(t / "x.safetensors")]) == 2
    assert "--synthetic" in capsys.readouterr().err and not (t / "x.safetensors").exists()
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["sigma", "--model", str(t / "m.safetensors"), "--data", str(t / "syn"), "--flips", "3",
                        "--out", str(t / "x.safetensors")])
    assert exc.value.code == 2 and "argument --flips: invalid choice: 3" in capsys.readouterr().err
    assert not (t / "x.safetensors").exists() and (t / "m.json").read_bytes() == sidecar_before
    assert json.loads(sidecar_before)["history"] == []


@pytest.mark.parametrize("step, option, value", [("sigma", "--min-pixels", "0"), ("sigma", "--min-pixels", "-1"),
                                                 ("head", "--seed", "-5"), ("feature-head", "--seed", "-1"),
                                                 ("bn", "--seed", "-1")])
def test_min_pixels_and_seeds_are_checked_by_the_parser(tmp_path, capsys, step, option, value):
    """Review C10: ``sigma --min-pixels 0`` failed after the whole pass with "histogram row 27 is empty" (no option
    named); ``head --seed -5`` with "expected non-negative integer" after the labelled pass. Now argparse refuses
    them, naming the option, before any model is read."""
    data = {"sigma": ["--data", str(tmp_path)], "bn": ["--synthetic", str(tmp_path)]}.get(step, ["--labelled",
                                                                                              str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        calibrate.main([step, "--model", str(tmp_path / "none.safetensors"), *data, option, value, "--out",
                        str(tmp_path / "out.safetensors")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err
