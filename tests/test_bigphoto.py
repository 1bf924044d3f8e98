"""Large inputs in ``dmenet.predict``: the default working resolution (σ rescaled to input px), ``--max-side 0`` for
full resolution, progress lines, and a bad ``--max-side``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmenet import inference, predict
from hostile_helpers import run_main
from dmenet.models import ModelConfig, build_dmenet
from dmenet.models.model_io import save_model
from syndof import io as sio


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    torch.manual_seed(0)
    model = build_dmenet(ModelConfig(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25))
    return save_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", model, {"note": "random init"})


def test_default_working_resolution_and_progress(tiny_model_path, tmp_path, capsys):
    w = predict.DEFAULT_MAX_SIDE + 96
    img = np.random.default_rng(0).random((48, w, 3)).astype(np.float32)
    sio.write_image(tmp_path / "in" / "wide.png", img)
    sio.write_image(tmp_path / "in" / "wide2.png", img[:, ::-1])
    args = [str(tmp_path / "in"), "--checkpoint", str(tiny_model_path), "--format", "npy", "--flips", "1"]
    assert predict.main(args + ["--out", str(tmp_path / "default")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[1/2] ") and "left)" in lines[0] and lines[1].startswith("[2/2] ")
    assert predict.main(args + ["--out", str(tmp_path / "explicit"), "--max-side", str(predict.DEFAULT_MAX_SIDE)]) == 0
    assert predict.main(args + ["--out", str(tmp_path / "full"), "--max-side", "0"]) == 0
    default = np.load(tmp_path / "default" / "wide_sigma.npy")
    full = np.load(tmp_path / "full" / "wide_sigma.npy")
    assert default.shape == full.shape == (48, w)  # maps at the input size either way
    assert np.array_equal(default, np.load(tmp_path / "explicit" / "wide_sigma.npy"))
    assert not np.allclose(default, full, atol=1e-4)  # the default really ran at the working size
    # σ is in input px: the working-size estimate scaled by input / working size
    model = inference.load_model(tiny_model_path)
    work = inference.estimate(sio.read_image(tmp_path / "in" / "wide.png"), model, max_side=predict.DEFAULT_MAX_SIDE,
                              flips=1, with_probability=False)
    assert np.allclose(default, work.sigma, atol=1e-5)
    assert work.sigma.max() <= model.config.sigma_max * w / predict.DEFAULT_MAX_SIDE + 1e-4


def test_negative_max_side_is_a_usage_error(tiny_model_path, tmp_path, capsys):
    sio.write_image(tmp_path / "a.png", np.zeros((16, 16, 3), np.float32))
    rc, _, err = run_main(predict.main, [tmp_path / "a.png", "--out", tmp_path / "out", "--max-side", "-5"], capsys)
    err = err.strip().splitlines()  # the shared --max-side (dmenet.cli) refuses it in the parser: SystemExit(2)
    assert rc == 2 and len(err) == 1 and "--max-side" in err[0]
    assert not (tmp_path / "out").exists()
