"""Hostile / careless use of ``dmenet.predict`` and the Python API (docs/reliability.md §1): D1–D11 and large inputs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import dmenet
from dmenet import (inference, memory, predict, predict_inputs, predict_outputs, predict_photo, predict_record,
                    predict_resume)
from dmenet.methods import registry
from dmenet.models import ModelConfig, build_dmenet
from dmenet.models.model_io import ModelFileError, save_model
from dmenet.models.recipe import BNMode
from hostile_helpers import assert_usage_error, digests, run_main, unreadable, write_rgb
from syndof import io as sio
from syndof.io import decode as sio_decode

REPO = Path(__file__).resolve().parents[1]
TINY = dict(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A tiny random model whose detection path uses per-image BatchNorm statistics (as the shipped one)."""
    torch.manual_seed(0)
    model = build_dmenet(ModelConfig(**TINY))
    model.recipe = model.recipe.with_bn(detection=BNMode.IMAGE)
    return save_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", model)


@pytest.fixture(autouse=True)
def _load_each_model_once(monkeypatch):
    """Building DMENet (its frozen VGG C included) takes seconds on a shared core: load each file once per module;
    corrupt files still go through the real loader (they fail before anything is cached)."""
    real = inference.load_model

    def cached(path=None, device="cpu"):
        key = (str(path), Path(path).stat().st_mtime_ns if path else 0)
        if key not in _MODELS:
            _MODELS[key] = real(path, device)
        return _MODELS[key]

    # dmenet's lazy exports cache what they find on first use (monkeypatch reads the old value first): patch the
    # package before the module, so the real loader is what gets cached and restored
    monkeypatch.setattr(dmenet, "load_model", cached)
    monkeypatch.setattr(inference, "load_model", cached)


_MODELS: dict = {}


@pytest.fixture
def images(tmp_path) -> list[Path]:
    return [write_rgb(tmp_path / "in" / f"img{i}.png", seed=i) for i in range(2)]


def _predict(argv, capsys, model_path):
    return run_main(predict.main, [*argv, "--checkpoint", model_path, "--flips", "1"], capsys)


def _copy_model(model_path: Path, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    weights, sidecar = folder / "m.safetensors", folder / "m.json"
    shutil.copy(model_path, weights)
    shutil.copy(model_path.with_suffix(".json"), sidecar)
    return weights, sidecar


# ------------------------------------------------------------------------------------------------------------ medium
@pytest.mark.parametrize("content", [np.random.default_rng(0).bytes(4096), b"", "truncated"])
def test_d3_corrupt_safetensors_is_one_line_exit_2(model_path, images, tmp_path, capsys, content):
    weights, _ = _copy_model(model_path, tmp_path / "bad")
    weights.write_bytes(model_path.read_bytes()[:100] if content == "truncated" else content)
    rc, _, err = _predict([images[0], "--out", tmp_path / "o"], capsys, weights)
    assert_usage_error(rc, err, str(weights))
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    with pytest.raises(ModelFileError, match="m.safetensors"):  # the API raises what its docstring promises
        dmenet.load_model(weights)


@pytest.mark.parametrize("method, shipped", [("galetto", "galetto_mbv2"), ("distill_student", "distill_student")])
@pytest.mark.parametrize("broken", ["weights", "sidecar"])
def test_d3_corrupt_model_of_the_new_methods_names_the_file(images, tmp_path, capsys, method, shipped, broken):
    """The Galetto classifier and the Distill student read their files through the same checked readers
    (model_io.read_tensors, syndof.io.read_json_object): a corrupt file is one line naming it, exit 2."""
    folder = tmp_path / "bad"
    folder.mkdir()
    weights, sidecar = folder / "m.safetensors", folder / "m.json"
    shutil.copy(REPO / "checkpoints" / f"{shipped}.json", sidecar)
    weights.write_bytes(np.random.default_rng(0).bytes(4096))
    if broken == "sidecar":
        shutil.copy(REPO / "checkpoints" / f"{shipped}.safetensors", weights)
        sidecar.write_text("{x")
    rc, _, err = run_main(predict.main, [images[0], "--out", tmp_path / "o", "--method", method, "--model", weights],
                          capsys)
    assert_usage_error(rc, err, str(weights if broken == "weights" else sidecar))
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_d8_failed_write_leaves_no_half_set_and_keeps_earlier_outputs(model_path, images, tmp_path, capsys,
                                                                      monkeypatch):
    out = tmp_path / "o"
    assert _predict([images[0], "--out", out], capsys, model_path)[0] == 0
    before = digests(out)
    assert sorted(before) == ["img0_blur.png", "img0_preview.png", "img0_sigma.png", "img0_source.json",
                              "predict.json"]
    real = Path.write_bytes

    def disk_full(self, data):
        if "_preview" in self.name:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    rc, out_text, err = _predict([*images, "--out", out], capsys, model_path)
    assert rc == 0 and "0/2 images written" in out_text and "1 done already" in out_text
    assert err.count("No space left on device") == 1 and "Traceback" not in err  # img1's write
    assert f"{out / 'img1_preview.png'}: No space left on device" in err  # named by its output, once
    assert f"[1/2] {images[0]}: done already (same settings, predict.json)" in out_text
    assert digests(out) == before  # img1 left nothing behind; img0's earlier set is untouched
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_d10_colliding_names_get_distinct_output_sets(model_path, tmp_path, capsys):
    folder = tmp_path / "in"
    for i, name in enumerate(("a.jpg", "a.png", "a_jpg.png")):
        write_rgb(folder / name, seed=i)
    rc, out_text, _ = _predict([folder, "--out", tmp_path / "o"], capsys, model_path)
    assert rc == 0 and "3/3 images written" in out_text
    previews = sorted(p.name for p in (tmp_path / "o").glob("*_preview.png"))
    assert len(previews) == 3, previews
    jobs, _ = predict_inputs.collect_jobs([folder], tmp_path / "o")
    assert len({job.prefix for job in jobs}) == 3


# --------------------------------------------------------------------------------------------------------------- low
def test_d1_too_small_image_is_a_clear_skip(model_path, tmp_path, capsys):
    small = write_rgb(tmp_path / "s.png", 16, 16)
    rc, _, err = _predict([small, "--out", tmp_path / "o"], capsys, model_path)
    assert rc == 1 and "image too small for DMENet (16x16 px)" in err and "Expected more than 1" not in err
    model = inference.load_model(model_path)
    with pytest.raises(ValueError, match="too small"):
        dmenet.estimate_blur_probability(np.zeros((16, 16, 3), np.float32), model)
    assert dmenet.estimate_blur_probability(np.zeros((16, 17, 3), np.float32), model).shape == (16, 17)


def test_d2_out_is_a_file_or_unwritable_before_any_work(model_path, images, tmp_path, capsys, monkeypatch):
    target = tmp_path / "f"
    target.write_text("x")
    monkeypatch.setattr(registry, "make_method", lambda *a, **k: pytest.fail("model loaded before --out check"))
    assert_usage_error(*_predict([*images, "--out", target], capsys, model_path)[::2], "--out", str(target))
    assert target.read_text() == "x"

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.TemporaryFile", read_only)  # the probe of syndof.cli.writable_folder_problem
    rc, _, err = _predict([*images, "--out", tmp_path / "ro"], capsys, model_path)
    assert "Permission denied" in assert_usage_error(rc, err, "--out")


@pytest.mark.parametrize("sidecar", [{"format_version": 1}, [1, 2], {"format_version": 1, "model_config": None},
                                     "wide", "syntax"])
def test_d4_d5_bad_sidecar_names_the_json_file(model_path, images, tmp_path, capsys, sidecar):
    weights, json_path = _copy_model(model_path, tmp_path / "bad")
    if sidecar == "wide":
        good = json.loads(json_path.read_text())
        good["architecture"]["width"] = "wide"
        json_path.write_text(json.dumps(good))
    elif sidecar == "syntax":
        json_path.write_text('{"format_version": 1, ')
    else:
        json_path.write_text(json.dumps(sidecar))
    rc, _, err = _predict([images[0], "--out", tmp_path / "o"], capsys, weights)
    assert_usage_error(rc, err, str(json_path))


@pytest.mark.parametrize("flags", [["--tile-size", "64", "--tile-overlap", "600"], ["--tile-size", "0"],
                                   ["--tile-overlap", "-1"], ["--max-side", "-10"],
                                   ["--max-side", "8"]])
def test_d6_tile_and_size_options_checked_before_the_model_loads(model_path, images, tmp_path, capsys, monkeypatch,
                                                                 flags):
    monkeypatch.setattr(registry, "make_method", lambda *a, **k: pytest.fail("model loaded before option check"))
    rc, _, err = _predict([images[0], "--out", tmp_path / "o", *flags], capsys, model_path)
    assert_usage_error(rc, err, flags[-2])
    assert not (tmp_path / "o").exists()


def test_d7_unknown_device(model_path, images, tmp_path, capsys):
    rc, _, err = _predict([images[0], "--out", tmp_path / "o", "--device", "tpu"], capsys, model_path)
    assert_usage_error(rc, err, "--device", "tpu")


def test_d9_outputs_inside_the_input_folder_are_not_predicted_on(model_path, images, capsys):
    folder = images[0].parent
    assert _predict([folder, "--out", folder], capsys, model_path)[0] == 0
    rc, out_text, err = _predict([folder, "--out", folder], capsys, model_path)
    assert rc == 0 and "0/2 images written" in out_text and "2 done already" in out_text  # same settings: done
    assert "6 file(s) under --out" in err and "exists" not in err
    assert not list(folder.glob("*_sigma_sigma.png")) and not list(folder.glob("*_preview_*"))


def test_d11_float_image_in_0_255_is_refused(model_path, rng):
    model = inference.load_model(model_path)
    image = (rng.random((32, 32, 3)) * 255).astype(np.float32)
    with pytest.raises(ValueError, match="divide 8-bit values by 255"):
        dmenet.estimate_defocus(image, model)
    assert dmenet.estimate_defocus(np.clip(image / 255 * 1.01, 0, 1.01), model).shape == (32, 32)


# ------------------------------------------------------------------------------------------------------ large inputs
@pytest.mark.shared
def test_memory_guard_counts_the_one_pass_files_feature_planes(shared):
    """The one-pass file's detection path holds its 41 feature planes of the whole working image (twice at flips >
    1): the guard counts them (a 12 MP photo at full resolution measured 3.1 GB at 1 flip and 4.9 GB at 2 flips, a
    guard of 3.3 GB let the 2-flip photo through), its suggested --max-side fits, and the default file adds
    nothing."""
    from dmenet.methods import MethodOptions, make_method

    onepass = str(Path(__file__).resolve().parents[1] / "checkpoints" / "dmenet_lite_onepass.safetensors")
    one = make_method("dmenet", MethodOptions(model=onepass))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its fits were made at 1 flip
        two = make_method("dmenet", MethodOptions(model=onepass, flips=2))
    default = make_method("dmenet", MethodOptions())
    assert default.extra_bytes_per_pixel() == 0
    assert one.extra_bytes_per_pixel() == 41 * 4 and two.extra_bytes_per_pixel() == 2 * 41 * 4
    assert make_method("dmenet_refined", MethodOptions(model=onepass)).extra_bytes_per_pixel() == 41 * 4
    assert make_method("lbp", MethodOptions()).extra_bytes_per_pixel() == 0
    assert memory.estimate_memory(3000, 4000, None, two.extra_bytes_per_pixel()) > 4.9 * 2**30
    assert memory.estimate_memory(3000, 4000, None, one.extra_bytes_per_pixel()) > 3.1 * 2**30
    with pytest.raises(ValueError, match=r"--max-side \d+") as err:
        memory.check_memory(3000, 4000, None, 4 * 2**30, two.extra_bytes_per_pixel())
    side = int(str(err.value).split("--max-side ")[1].split()[0])
    memory.check_memory(3000, 4000, side, 4 * 2**30, two.extra_bytes_per_pixel())  # the way out fits
    memory.check_memory(3000, 4000, None, 4 * 2**30, default.extra_bytes_per_pixel())  # the default file fits


def test_memory_guard_counts_a_refinement_at_the_input_size():
    """galetto and dmenet_refined refine their maps guided by the full-size image, which ``--max-side`` does not
    shrink: ~375 B an input pixel (2.0 GiB for a 2048² image at max_side 512, against a guard of 0.79 GiB), now ~150 B
    with the guided filter in row strips, and counted per input pixel: a photo too large even for a small working
    size is told to be downsized, not given a --max-side that would not fit."""
    from dmenet.galetto.refine import REFINE_BYTES_PER_PIXEL, Refine
    from dmenet.methods import MethodOptions, make_method

    galetto = make_method("galetto", MethodOptions())  # σ unrefined, the blur map's σ refined by the code's recipe
    plain = make_method("galetto", MethodOptions(extra=(("refine", "none"), ("refine_blur", "none"))))
    assert galetto.input_bytes_per_pixel() == REFINE_BYTES_PER_PIXEL[Refine.CODE] > 0
    assert plain.input_bytes_per_pixel() == 0
    assert make_method("dmenet_refined", MethodOptions()).input_bytes_per_pixel() == \
        REFINE_BYTES_PER_PIXEL[Refine.CODE]
    assert make_method("dmenet_refined", MethodOptions(extra=(("refine", "paper"),))).input_bytes_per_pixel() == \
        REFINE_BYTES_PER_PIXEL[Refine.PAPER]
    assert make_method("dmenet", MethodOptions()).input_bytes_per_pixel() == 0
    extra = galetto.input_bytes_per_pixel()
    small, large = (memory.estimate_memory(4000, 6000, side, 0, extra) for side in (512, 1024))
    assert large - small == memory.estimate_memory(4000, 6000, 1024) - memory.estimate_memory(4000, 6000, 512)
    assert memory.estimate_memory(4000, 6000, 512, 0, extra) - memory.estimate_memory(4000, 6000, 512) == \
        4000 * 6000 * extra  # per input pixel, whatever the working size
    available = memory.estimate_memory(4000, 6000, 64)  # fits the image and its maps, not the refinement
    with pytest.raises(ValueError, match="downsize it first"):
        memory.check_memory(4000, 6000, 1024, available, 0, extra)
    with pytest.raises(ValueError, match=r"--max-side \d+") as err:  # room for the refinement and a smaller size
        memory.check_memory(4000, 6000, None, 4000 * 6000 * (extra + 50) + available, 0, extra)
    side = int(str(err.value).split("--max-side ")[1].split()[0])
    memory.check_memory(4000, 6000, side, 4000 * 6000 * (extra + 50) + available, 0, extra)  # the way out fits


def test_memory_guard_counts_the_short_side_a_method_keeps(model_path, tmp_path, capsys, monkeypatch):
    """dmenet and the Distill networks never shrink the short side below 32 px (P1, H52), so a 4000×8 strip at
    --max-side 1024 runs at full size, where the guard counted it at 1024×2 (scale 0.256: 1/15 of its working pixels)
    and suggested a --max-side that could not help. The methods expose their floor (``Estimator.min_short_side``);
    the guard counts the size they run at (hand values below) and says to downsize a strip no --max-side shrinks."""
    from dmenet.distill.infer import MIN_SHORT_SIDE
    from dmenet.methods import MethodOptions, make_method
    from syndof.resize import long_side_scale

    loose = memory.estimate_memory(8, 4000, 1024) + 2**20  # what the guard asked for before
    strip = write_rgb(tmp_path / "in" / "strip.png", 8, 4000)
    monkeypatch.setattr(memory, "available_memory", lambda: loose)
    rc, _, err = _predict([strip, "--max-side", "1024", "--out", tmp_path / "o"], capsys, model_path)
    assert rc == 1 and "GiB available: downsize it first" in err and str(strip) in err and "Traceback" not in err
    assert not list((tmp_path / "o").glob("strip*"))
    assert inference.MIN_WORK_SIDE == MIN_SHORT_SIDE == 32
    for name, floor in (("dmenet", 32), ("dmenet_refined", 32), ("distill_student", 32), ("lbp", None),
                        ("hifst", None)):
        assert make_method(name, MethodOptions(max_side=1024)).min_short_side == floor, name
    fixed, work, io_ = memory.MEMORY_FIXED_BYTES, memory.WORK_BYTES_PER_PIXEL, memory.IO_BYTES_PER_PIXEL
    assert long_side_scale((8, 4000), 1024, 32) == 1.0  # the strip runs whole
    assert memory.estimate_memory(8, 4000, 1024, 0, 0, 32) == fixed + 32000 * (io_ + work) == \
        memory.estimate_memory(8, 4000, None)
    assert memory.estimate_memory(8, 4000, 1024) == int(fixed + 32000 * (io_ + work * 0.256 ** 2))  # no floor
    assert memory.estimate_memory(40, 4000, 1024, 0, 0, 32) == fixed + 160000 * (io_ + work * 0.8 ** 2)  # 32 of 40
    with pytest.raises(ValueError, match="downsize it first"):
        memory.check_memory(8, 4000, 1024, loose, 0, 0, 32)
    memory.check_memory(8, 4000, 1024, loose)  # a method without a floor does shrink it: it fits


def test_memory_guard_counts_a_full_size_method_at_full_size(tmp_path, capsys, monkeypatch):
    """lbp, laplacian and zhuo_sim run at the photo's own size whatever --max-side (their registry rows do not list
    it), yet the guard counted them at --max-side (predict's default 1024: a 4000×3000 photo at 0.256² of its pixels)
    and offered a --max-side that would change nothing. Now the photo is counted whole and the way out is to
    downsize it; hifst, which reads max_side, is still counted at it."""
    from dmenet.methods import METHODS

    assert sorted(n for n, spec in METHODS.items() if not spec.reads_max_side) == ["laplacian", "lbp", "zhuo_sim"]
    photo = write_rgb(tmp_path / "in" / "big.png", 300, 400)
    shrunk = memory.estimate_memory(300, 400, 64)  # what the guard asked of lbp at --max-side 64
    whole = memory.estimate_memory(300, 400, None)
    fixed, work, io_ = memory.MEMORY_FIXED_BYTES, memory.WORK_BYTES_PER_PIXEL, memory.IO_BYTES_PER_PIXEL
    assert whole == fixed + 120000 * (io_ + work) and shrunk == int(fixed + 120000 * (io_ + work * 0.16 ** 2))
    monkeypatch.setattr(memory, "available_memory", lambda: shrunk + 2**20)
    for method, refused in (("lbp", True), ("hifst", False)):
        out = tmp_path / f"o_{method}"
        rc, _, err = run_main(predict.main, [photo, "--method", method, "--max-side", "64", "--out", out], capsys)
        if refused:
            assert rc == 1 and "downsize it first" in err and "--max-side" not in err.split("available:")[1], err
            assert not list(out.glob("big*"))
        else:
            assert rc == 0 and (out / "big_blur.png").exists(), err
    with pytest.raises(ValueError, match="downsize it first"):
        memory.check_memory(300, 400, 64, shrunk + 2**20, max_side_applies=False)
    memory.check_memory(300, 400, 64, shrunk + 2**20)  # a method that reads it: fits


def test_large_input_refused_with_the_way_out_and_progress_printed(model_path, images, tmp_path, capsys,
                                                                   monkeypatch):
    need = memory.estimate_memory(4000, 6000)
    assert need > 4 * 2**30  # the measured 5.5 GB of a 6000×4000 photo (docs/reliability.md #10) is in range
    assert memory.estimate_memory(4000, 6000, max_side=1500) < need / 3
    with pytest.raises(ValueError, match=r"--max-side \d+") as err:
        memory.check_memory(4000, 6000, None, available=2 * 2**30)
    side = int(str(err.value).split("--max-side ")[1].split()[0])
    memory.check_memory(4000, 6000, side, available=2 * 2**30)  # the suggested way out fits
    memory.check_memory(4000, 6000, None, available=None)  # unknown memory: no refusal
    assert memory.available_memory() is None or memory.available_memory() > 0

    monkeypatch.setattr(memory, "available_memory", lambda: memory.MEMORY_FIXED_BYTES)  # nothing to spare
    rc, _, err_text = _predict([*images, "--out", tmp_path / "o"], capsys, model_path)
    assert rc == 1 and err_text.count("GiB available") == 2 and "Traceback" not in err_text
    monkeypatch.undo()
    rc, _, err_text = _predict([*images, "--out", tmp_path / "o2"], capsys, model_path)
    assert rc == 0 and "[1/2]" in err_text and "[2/2]" in err_text



@pytest.mark.parametrize("method, named", [("dmenet:precision=fp16", "dmenet: precision"), ("dmenet:flip=2", "flip")])
def test_bad_dmenet_method_option_is_one_line_exit_2(images, tmp_path, capsys, method, named):
    rc, _, err = run_main(predict.main, [images[0], "--out", tmp_path / "o", "--method", method], capsys)
    assert_usage_error(rc, err, named)
    assert not (tmp_path / "o").exists()


def test_earlier_outputs_are_never_overwritten_or_mixed(model_path, images, tmp_path, capsys):
    """A photo whose output prefix already has a file (an earlier run, another method, a photo named like an
    output) is skipped and reported; the others are done, so a rerun completes a batch."""
    folder = tmp_path / "same"
    folder.mkdir()
    shutil.copy(images[0], folder / "x.png")
    shutil.copy(images[1], folder / "x_blur.png")  # the user's own photo, named like x's blur map
    before = digests(folder)
    rc, out_text, err = _predict([folder, "--out", folder], capsys, model_path)
    assert rc == 1 and "0/1 images written" in out_text and "x_blur.png exists" in err
    assert digests(folder) == before  # the photo x_blur.png is intact
    out = tmp_path / "o"
    assert run_main(predict.main, [images[0], "--out", out, "--method", "lbp", "--format", "both"], capsys)[0] == 0
    lbp = digests(out)
    rc, out_text, err = _predict([*images, "--out", out], capsys, model_path)  # dmenet into lbp's folder
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]  # _predict: --checkpoint
    assert rc == 2 and len(errors) == 1 and "predict.json: method 'lbp', now 'dmenet'" in errors[0]
    assert digests(out) == lbp  # refused before any photo: lbp's set is untouched, no dmenet file beside it


def test_the_settings_record_resumes_the_same_batch_and_refuses_another_model(model_path, images, tmp_path,
                                                                             capsys):
    """``--out/predict.json`` records what made the maps: a rerun with the same settings completes the batch (a
    missing set is redone, whole sets count as done, exit 0); the same model name with other weights (a retrained
    file) is refused before any photo; a folder with maps but no record (an older version's) keeps the per-photo
    check and gets no record that would claim its maps; a second predict into a busy folder is refused."""
    from syndof.io import folder_lock

    weights, sidecar = _copy_model(model_path, tmp_path / "m")
    out = tmp_path / "o"

    def run(*extra):
        return run_main(predict.main, [*images, "--out", out, "--model", weights, "--flips", "1", *extra], capsys)

    assert run()[0] == 0
    record = json.loads((out / "predict.json").read_text())
    assert record["method"] == "dmenet" and record["model"] == str(weights.resolve()) and record["flips"] == 1
    (out / "img1_preview.png").unlink()  # an incomplete set of these settings
    first = digests(out)
    rc, out_text, _ = run()
    assert rc == 0 and "1/2 images written" in out_text and "1 done already" in out_text
    after = digests(out)
    assert {k: after[k] for k in first} == first and "img1_preview.png" in after  # img0 untouched, img1 whole
    moved, _ = _copy_model(model_path, tmp_path / "elsewhere")  # the same model under another path: same maps
    rc, out_text, _ = run_main(predict.main, [*images, "--out", out, "--model", moved, "--flips", "1"], capsys)
    assert rc == 0 and "2 done already" in out_text
    torch.manual_seed(1)  # retrained: other weights under the same name
    save_model(weights, build_dmenet(ModelConfig(**TINY)))
    rc, _, err = run()
    assert_usage_error(rc, err, "model_sha256")
    assert digests(out) == after
    with folder_lock(out):
        rc, _, err = run()
    assert_usage_error(rc, err, "another process is writing into this folder now")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    shutil.copy(out / "img0_sigma.png", legacy / "img0_sigma.png")  # a map with no record
    rc, out_text, err = run_main(predict.main, [*images, "--out", legacy, "--model", model_path], capsys)
    assert rc == 0 and "1/2 images written" in out_text and "no predict.json" in err and "img0_sigma.png exists" in err
    assert not (legacy / "predict.json").exists()


def test_a_set_counts_as_done_only_for_the_photo_that_made_it(tmp_path, capsys):
    """Same settings, same output name, another photo (a second folder, or the photo edited): its earlier set is not
    taken for its result ("done already" with another photo's maps), nor overwritten; the photo that made it still
    counts as done, and a record left in a folder with no map (a run killed before its first) refuses nothing."""
    first = write_rgb(tmp_path / "a" / "img.png", seed=0)
    other = write_rgb(tmp_path / "b" / "img.png", seed=1)
    out = tmp_path / "o"
    assert run_main(predict.main, [first, "--out", out, "--method", "lbp"], capsys)[0] == 0
    made = digests(out)
    rc, out_text, err = run_main(predict.main, [other, "--out", out, "--method", "lbp"], capsys)
    assert rc == 1 and f"made from another photo ({first.resolve()}" in err and "0/1 images written" in out_text
    assert digests(out) == made
    rc, out_text, _ = run_main(predict.main, [first, "--out", out, "--method", "lbp"], capsys)
    assert rc == 0 and "1 done already" in out_text
    write_rgb(first, seed=2)  # edited in place
    rc, _, err = run_main(predict.main, [first, "--out", out, "--method", "lbp"], capsys)
    assert rc == 1 and "or this one before it changed" in err and digests(out) == made

    (out / "img_source.json").unlink()  # a set an older version wrote: whose it is, is unknown
    rc, _, err = run_main(predict.main, [first, "--out", out, "--method", "lbp"], capsys)
    assert rc == 1 and "without img_source.json (an older version of predict wrote it)" in err

    swapped = tmp_path / "swapped"  # the same two photos named in the other order: other output names, still done
    assert run_main(predict.main, [first, other, "--out", swapped, "--method", "lbp"], capsys)[0] == 0
    made = digests(swapped)
    rc, out_text, err = run_main(predict.main, [other, first, "--out", swapped, "--method", "lbp"], capsys)
    assert rc == 0 and "2 done already" in out_text and not err and digests(swapped) == made

    copy = tmp_path / "dup"  # a photo added later that is a copy of one done: its own set, under its own name
    shutil.copytree(tmp_path / "a", copy)
    assert run_main(predict.main, [copy, "--out", tmp_path / "d", "--method", "lbp"], capsys)[0] == 0
    shutil.copy(copy / "img.png", copy / "twin.png")
    rc, out_text, _ = run_main(predict.main, [copy, "--out", tmp_path / "d", "--method", "lbp"], capsys)
    assert rc == 0 and "1/2 images written" in out_text and "1 done already" in out_text
    assert (tmp_path / "d" / "twin_source.json").exists()

    real = predict_resume.sio.file_sha256  # a photo that cannot be read on the rerun: skipped, the others go on

    def unreadable(path):
        if Path(path).name == "twin.png":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    predict_resume.sio.file_sha256 = unreadable
    try:
        rc, out_text, err = run_main(predict.main, [copy, "--out", tmp_path / "d", "--method", "lbp"], capsys)
    finally:
        predict_resume.sio.file_sha256 = real
    assert rc == 0 and "skipped" in err and "twin.png" in err and "1 done already, 1 skipped" in out_text
    rc, out_text, _ = run_main(predict.main, [copy, tmp_path / "nope.png", "--out", tmp_path / "d", "--method",
                                              "lbp"], capsys)  # an input that is not there counts as skipped too
    assert rc == 0 and "2 done already, 1 skipped" in out_text

    empty = tmp_path / "killed"
    empty.mkdir()
    (empty / "predict.json").write_text(json.dumps({"tool": "dmenet.predict", "method": "dmenet"}))
    rc, out_text, _ = run_main(predict.main, [other, "--out", empty, "--method", "lbp"], capsys)
    assert rc == 0 and "1/1 images written" in out_text
    assert json.loads((empty / "predict.json").read_text())["method"] == "lbp"


def test_a_worker_whose_batch_is_gone_writes_nothing(tmp_path):
    """A worker finishing its photo after the batch process was killed (its lock released: another run may be
    writing the folder with other settings) leaves the set unwritten; the rerun does it."""
    photo = write_rgb(tmp_path / "p.png", seed=0)
    method = registry.parse_method("lbp")
    args = predict.build_parser().parse_args([str(photo), "--out", str(tmp_path / "o"), "--method", "lbp"])
    args.fmt = predict_outputs.MapFormat.PNG
    job = predict_inputs.Job(source=photo, prefix=tmp_path / "o" / "p", same_settings=True)
    reason = predict_photo.predict_one(job, 1, 1, method.make(registry.MethodOptions()), None, args, lambda: False)
    assert reason.startswith("not written: the batch process is gone") and not (tmp_path / "o").exists()
    assert isinstance(predict_photo.predict_one(job, 1, 1, method.make(registry.MethodOptions()), None, args,
                                          lambda: True), float)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["p_blur.png", "p_preview.png", "p_source.json"]


def test_the_record_keeps_what_decides_the_maps_however_it_was_spelled(model_path, images, tmp_path, capsys):
    """``predict.json`` records the shared options a method reads, not those it ignores (``--flips 8`` with lbp
    would refuse a plain rerun over byte-identical maps), and the method's own options however they were written:
    the model named by ``--model`` or by ``model=``, options in any order."""
    import argparse

    out = tmp_path / "lbp"
    rc, _, _ = run_main(predict.main, [*images, "--out", out, "--method", "lbp", "--flips", "8", "--raw-sigma"],
                        capsys)
    record = json.loads((out / "predict.json").read_text())
    assert rc == 0 and record["method"] == "lbp" and not {"flips", "raw_sigma", "max_side"} & set(record)
    rc, out_text, _ = run_main(predict.main, [*images, "--out", out, "--method", "lbp"], capsys)
    assert rc == 0 and "2 done already" in out_text

    out = tmp_path / "dm"
    weights, _ = _copy_model(model_path, tmp_path / "m")
    rc, _, _ = run_main(predict.main, [*images, "--out", out, "--model", weights, "--flips", "1"], capsys)
    record = json.loads((out / "predict.json").read_text())
    assert rc == 0 and record["flips"] == 1 and record["max_side"] == predict.DEFAULT_MAX_SIDE
    rc, out_text, _ = run_main(predict.main, [*images, "--out", out, "--flips", "1", "--method",
                                              f"dmenet:model={weights},precision=fp32"], capsys)
    assert rc == 0 and "2 done already" in out_text, out_text  # the default precision, given: the same settings
    assert json.loads((out / "predict.json").read_text()) == record and record["method_options"] == {
        "precision": "fp32"}

    def record_of(spec: str) -> dict:
        method, options = registry.parse_method(spec), registry.MethodOptions(max_side=64, flips=8)
        args = argparse.Namespace(method=method, fmt=predict_outputs.MapFormat.PNG)
        return predict_record.settings_record(args, options, method.make(options))

    plain = record_of("galetto")
    assert plain == record_of("galetto:refine=none,stride=8") == record_of("galetto:stride=8,refine=none")
    assert plain["method_options"]["stride"] == 8 and plain["max_side"] == 64 and "flips" not in plain
    assert "batch" not in plain["method_options"] and record_of("galetto:batch=64") == plain  # speed, not maps
    assert record_of("galetto:stride=16")["method_options"]["stride"] == 16
    assert record_of("zhuo_sim") == record_of("zhuo_sim:max_blur=3") != record_of("zhuo_sim:max_blur=3.275")


def test_a_foreign_or_broken_record_is_refused_with_what_to_do(images, tmp_path, capsys):
    """Another tool's JSON under the record's name is not read as other settings; an unreadable record says how to
    go on."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "predict.json").write_text(json.dumps({"tool": "syndof.generate", "seed": 0}))
    rc, _, err = run_main(predict.main, [*images, "--out", out, "--method", "lbp"], capsys)
    assert_usage_error(rc, err, "predict.json", "not a settings record of dmenet.predict", "syndof.generate")
    (out / "predict.json").write_text("{broken")
    rc, _, err = run_main(predict.main, [*images, "--out", out, "--method", "lbp"], capsys)
    assert_usage_error(rc, err, "predict.json: not a settings record of dmenet.predict")
    assert sorted(p.name for p in out.iterdir()) == ["predict.json"]


def test_a_run_refused_by_the_lock_never_removes_the_folder_of_the_run_holding_it(images, tmp_path, capsys,
                                                                                 monkeypatch):
    """Two runs into a new --out: the one that loses the lock leaves the folder (empty until the winner writes)."""
    import fcntl
    import os

    out = tmp_path / "new"
    real = predict.prepare_out
    held = []

    def rival_locks_after_prepare(folder):  # the winner takes the lock between this run's checks and its lock
        problem = real(folder)
        fd = os.open(folder, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(fd)
        return problem

    monkeypatch.setattr(predict, "prepare_out", rival_locks_after_prepare)
    try:
        rc, _, err = run_main(predict.main, [*images, "--out", out, "--method", "lbp"], capsys)
        assert_usage_error(rc, err, "another process is writing into this folder now")
        assert out.is_dir()
    finally:
        for fd in held:
            os.close(fd)
    assert predict.make_new_folder(tmp_path / "made") and not predict.make_new_folder(tmp_path / "made")


def test_a_model_file_no_chosen_method_reads_is_refused(images, tmp_path, capsys):
    """A classical peer loads no model: --model with it alone (even a corrupt file) would be silently unused."""
    from dmenet import evaluate

    corrupt = tmp_path / "m.safetensors"
    corrupt.write_bytes(b"junk")
    rc, _, err = run_main(predict.main, [images[0], "--out", tmp_path / "o", "--method", "lbp", "--model", corrupt],
                          capsys)
    assert_usage_error(rc, err, "no chosen method loads a model file (lbp;")
    assert not (tmp_path / "o").exists()
    rc, _, err = run_main(evaluate.main, ["--benchmark", "rtf", "--data", images[0].parent, "--method", "lbp",
                                          "laplacian", "--model", corrupt, "--out", tmp_path / "e"], capsys)
    assert_usage_error(rc, err, "no chosen method loads a model file (lbp, laplacian;")


def test_links_are_reported_and_a_failed_batch_leaves_no_folder(images, tmp_path, capsys):
    """A link to nothing and a second name of one photo are reported (not silently dropped); when every input
    fails, the --out folder the run created is removed again."""
    folder = tmp_path / "links"
    folder.mkdir()
    shutil.copy(images[0], folder / "a.png")
    (folder / "link.png").symlink_to("a.png")
    (folder / "dead.png").symlink_to("nothing.png")
    rc, out_text, err = run_main(predict.main, [folder, "--out", tmp_path / "o", "--method", "laplacian"], capsys)
    assert rc == 0 and "1/1 images written" in out_text
    assert f"skipped {folder / 'dead.png'}: a symbolic link to nothing" in err
    assert f"skipped {folder / 'link.png'}: the same file as {folder / 'a.png'}" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"not an image")
    rc, out_text, err = run_main(predict.main, [bad, "--out", tmp_path / "o2", "--method", "laplacian"], capsys)
    assert rc == 1 and "0/1 images written" in out_text and not (tmp_path / "o2").exists()



# ------------------------------------------------------------------------ fourth review (6 Dec): what came since
def _huge_png(path: Path, side: int = 30000) -> Path:
    """A PNG whose header says ``side`` × ``side`` px (8-bit gray) with only a few bytes of pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _lbp_job(photo: Path, out: Path):
    method = registry.parse_method("lbp")
    args = predict.build_parser().parse_args([str(photo), "--out", str(out), "--method", "lbp"])
    args.fmt = predict_outputs.MapFormat.PNG
    return predict_inputs.Job(source=photo, prefix=out / photo.stem, same_settings=True), \
        method.make(registry.MethodOptions()), args


def test_a_photo_too_large_for_memory_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    """A 30000² px header was decoded whole (14 GB peak RSS) before the memory guard refused it: on a smaller
    machine the batch was killed. The guard reads the header's size first."""
    photo = _huge_png(tmp_path / "huge.png")
    job, estimator, args = _lbp_job(photo, tmp_path / "o")
    decoded = []
    monkeypatch.setattr(sio_decode, "_decode_raw", lambda path, data: decoded.append(path))
    monkeypatch.setattr(memory, "available_memory", lambda: 4 * 2**30)
    reason = predict_photo.predict_one(job, 1, 1, estimator, 1024, args)
    assert reason.startswith("30000x30000 px needs about") and "GiB available" in reason  # no "ValueError: "
    assert not decoded and not (tmp_path / "o").exists()


def test_exif_orientation_and_header_size_of_photos_above_pils_bomb_limit(tmp_path, monkeypatch):
    """Above PIL's decompression-bomb limit (179 MP by default; lowered here) the EXIF orientation was dropped
    silently (the σ map turned 90° against what a viewer shows) and the header gave no size; between 89 and
    179 MP PIL warned of a "decompression bomb". The header is read without PIL's check, and without changing PIL's
    limit (a module-wide setting, which the reader once lifted for a moment under a lock): nothing is written to
    ``PIL.Image`` while a photo is read."""
    import types

    from PIL import Image

    from syndof import io as sio

    pixels = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer turns it 90° clockwise
    Image.fromarray(pixels).save(tmp_path / "r.jpg", quality=100, exif=exif.tobytes())
    Image.fromarray(pixels).save(tmp_path / "r.png")
    expected = sio.read_image(tmp_path / "r.jpg")
    assert expected.shape == (32, 24, 3)
    written = []

    class Watched(types.ModuleType):
        def __setattr__(self, name, value):
            written.extend([name] if name != "__class__" else [])
            super().__setattr__(name, value)

    for limit in (24 * 32 - 1, 24 * 32 // 2 - 1):  # warned of by PIL (above the limit), refused (above 2× it)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        monkeypatch.setattr(Image, "__class__", Watched)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.array_equal(sio.read_image(tmp_path / "r.jpg"), expected)
            assert np.array_equal(sio.read_image_sha256(tmp_path / "r.jpg", lambda w, h: None)[0], expected)
            assert sio.header_size(tmp_path / "r.jpg") == (24, 32) and sio.header_size(tmp_path / "r.png") == (32, 24)
        monkeypatch.setattr(Image, "__class__", types.ModuleType)
        assert written == [] and Image.MAX_IMAGE_PIXELS == limit
    with pytest.raises(Image.DecompressionBombError):  # PIL's own check, for everything else, is as it was
        Image.open(tmp_path / "r.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 24 * 32 - 1)
    with pytest.warns(Image.DecompressionBombWarning), Image.open(tmp_path / "r.png"):
        pass


@pytest.mark.parametrize("options", [{"lossless": True}, {"quality": 90}], ids=["lossless", "lossy"])
def test_webp_above_twice_pils_bomb_limit_keeps_its_orientation_and_header_size(tmp_path, monkeypatch, options):
    """PIL's WebP opener runs the decompression-bomb check itself (above 2× PIL's limit: 179 MP by default, lowered
    here), so the header reader that calls the format openers directly got no header for such a WebP: its EXIF
    orientation was dropped silently (the map turned 90° against what a viewer shows), ``header_size`` gave None and
    ``read_image_sha256`` never called its size check, so ``predict``'s memory guard ran only after the whole photo
    was decoded (a 13400×13400 WebP: 4.9 GB peak before the refusal, 0.25 GB with the header check)."""
    from PIL import Image

    from syndof import io as sio

    pixels = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer turns it 90° clockwise
    Image.fromarray(pixels).save(tmp_path / "r.webp", exif=exif.tobytes(), icc_profile=b"icc" * 11, **options)
    Image.fromarray(pixels).save(tmp_path / "plain.webp", **options)  # a simple file: no VP8X chunk, no EXIF
    expected = sio.read_image(tmp_path / "r.webp")
    assert expected.shape == (32, 24, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 24 * 32 // 2 - 1)
    with pytest.raises(Image.DecompressionBombError), Image.open(tmp_path / "r.webp"):
        pass  # PIL refuses it
    assert np.array_equal(sio.read_image(tmp_path / "r.webp"), expected)
    assert sio.header_size(tmp_path / "r.webp") == (24, 32) and sio.header_size(tmp_path / "plain.webp") == (32, 24)

    def too_large(width, height):
        raise ValueError(f"{width}x{height} too large")

    with pytest.raises(ValueError, match="24x32 too large"):
        sio.read_image_sha256(tmp_path / "r.webp", check_size=too_large)


def test_a_file_made_in_out_while_the_photo_runs_is_never_replaced(tmp_path, monkeypatch):
    """A file of the photo's output names that appeared in ``--out`` during its estimate (minutes at full size)
    was replaced by the set; the photo is skipped and reported instead, and nothing of its set is written."""
    photo = write_rgb(tmp_path / "p.png", seed=0)
    out = tmp_path / "o"
    out.mkdir()
    job, estimator, args = _lbp_job(photo, out)
    real = predict_photo.method_maps

    def meanwhile(estimator, image):
        (out / "p_blur.png").write_bytes(b"precious")
        return real(estimator, image)

    monkeypatch.setattr(predict_photo, "method_maps", meanwhile)
    reason = predict_photo.predict_one(job, 1, 1, estimator, None, args)
    assert reason.startswith(f"not written: {out / 'p_blur.png'} appeared while the photo ran")
    assert [p.name for p in out.iterdir()] == ["p_blur.png"] and (out / "p_blur.png").read_bytes() == b"precious"


def test_an_earlier_runs_out_inside_the_inputs_is_not_predicted_on(model_path, images, tmp_path, capsys):
    """``predict IN --recursive --out IN/new`` took the maps and previews of an earlier run's ``IN/old`` for
    photos (maps of maps under IN/new/old); the files named like outputs in a folder with a ``predict.json``
    above them are skipped and reported, whatever this run's ``--out``."""
    folder = images[0].parent
    assert _predict([folder, "--out", folder / "old"], capsys, model_path)[0] == 0
    rc, out_text, err = _predict([folder, "--recursive", "--out", folder / "new"], capsys, model_path)
    assert rc == 0 and "2/2 images written" in out_text, err
    assert "skipped 6 file(s) named like predict outputs in a folder of an earlier predict" in err
    assert not (folder / "new" / "old").exists()


def test_a_long_thin_strip_keeps_enough_rows_under_max_side(model_path):
    """``--max-side 320`` ran a 40×5000 px strip at 3×320 px (and a 17×5000 one at 2×320, squeezed 8.5× across but
    15.6× along, σ scaled by 15.6): a sharp noise strip got a median σ of 17.4 px, 0.10 px at full size. The short
    side is never shrunk below ``MIN_WORK_SIDE`` (32 px), so the strip runs at 32×4000."""
    from syndof.resize import long_side_scale

    assert long_side_scale((40, 5000), 320, inference.MIN_WORK_SIDE) == 0.8
    assert long_side_scale((17, 5000), 320, inference.MIN_WORK_SIDE) == 1.0  # already thinner: its own size
    assert long_side_scale((4000, 5000), 320, inference.MIN_WORK_SIDE) == 320 / 5000  # photos: as before
    # run at a fifth of the length (the same rule: 40×1000 under --max-side 64 works at 32×800, not 3×64)
    assert long_side_scale((40, 1000), 64, inference.MIN_WORK_SIDE) == 0.8
    strip = np.random.default_rng(0).random((40, 1000, 3)).astype(np.float32)
    model = dmenet.load_model(model_path)
    squeezed = inference.estimate(strip, model, max_side=64, flips=1)
    at_32_rows = inference.estimate(strip, model, max_side=800, flips=1)  # the same working size, 32×800
    assert np.array_equal(squeezed.sigma, at_32_rows.sigma)
    method = registry.parse_method(f"dmenet:model={model_path}").make(registry.MethodOptions(max_side=64, flips=1))
    assert method.estimate(strip).sigma_max == pytest.approx(model.config.sigma_max / 0.8)


def test_the_provenance_names_the_photo_as_it_was_read_not_as_it_is_at_the_end(tmp_path, monkeypatch):
    """A photo replaced while its estimate ran (an export overwriting the folder) got a set whose _source.json gave
    the new file's SHA-256 over maps of the old pixels, and a rerun took it as done for the new photo. The digest is
    taken of the bytes read."""
    import hashlib

    photo = write_rgb(tmp_path / "p.png", seed=0)
    read_bytes = photo.read_bytes()
    job, estimator, args = _lbp_job(photo, tmp_path / "o")
    real_maps = predict_photo.method_maps

    def replaced_meanwhile(estimator, image):
        write_rgb(photo, seed=1)
        return real_maps(estimator, image)

    monkeypatch.setattr(predict_photo, "method_maps", replaced_meanwhile)
    assert isinstance(predict_photo.predict_one(job, 1, 1, estimator, None, args), float)
    record = json.loads((tmp_path / "o" / "p_source.json").read_text())
    assert record["sha256"] == hashlib.sha256(read_bytes).hexdigest() != hashlib.sha256(photo.read_bytes()).hexdigest()


def test_each_photo_is_read_once_and_its_digest_is_of_the_bytes_decoded(tmp_path, monkeypatch):
    """predict read a photo's bytes three times (a SHA-256, the decoding, a second SHA-256 to catch a change between
    the two). It opens the photo once now, its header (the memory guard) and its bytes through the same file, and
    decodes and hashes the same bytes: a photo replaced right after they were read gets the maps and the digest of
    the bytes read, never one of the other photo."""
    import builtins
    import hashlib
    import os

    from PIL import Image

    from syndof import io as sio

    photo = write_rgb(tmp_path / "p.png", seed=0)
    first = photo.read_bytes()
    later = write_rgb(tmp_path / "later.png", seed=2)
    job, estimator, args = _lbp_job(photo, tmp_path / "o")
    opened, real_open = [], builtins.open

    def counting_open(file, *a, **k):
        if isinstance(file, (str, os.PathLike)) and Path(file) == photo:
            opened.append(a[0] if a else k.get("mode", "r"))
        return real_open(file, *a, **k)

    real_decode = sio_decode._decode_raw

    def replaced_after_the_read(path, data):
        os.replace(later, photo)  # the file changes between the read and the decoding
        return real_decode(path, data)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(sio_decode, "_decode_raw", replaced_after_the_read)
    assert isinstance(predict_photo.predict_one(job, 1, 1, estimator, None, args), float)
    monkeypatch.undo()
    assert opened == ["rb"]
    record = json.loads((tmp_path / "o" / "p_source.json").read_text())
    assert record["sha256"] == hashlib.sha256(first).hexdigest() != sio.file_sha256(photo)
    (tmp_path / "first.png").write_bytes(first)
    expected = predict_photo.method_maps(estimator, sio.read_image(tmp_path / "first.png")).blur
    with Image.open(tmp_path / "o" / "p_blur.png") as written:
        assert np.array_equal(np.asarray(written), sio.to_uint8(expected))


def test_read_image_sha256_is_read_image_and_the_files_sha256(tmp_path):
    """The one-read reader gives :func:`read_image`'s pixels and :func:`file_sha256`'s digest; its size check gets the
    header's (width, height), EXIF rotation applied, before the pixels are decoded, and what it raises refuses the
    file."""
    from PIL import Image

    from syndof import io as sio

    pixels = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "r.jpg", quality=95, exif=exif.tobytes())
    sizes = []
    image, digest = sio.read_image_sha256(tmp_path / "r.jpg", check_size=lambda w, h: sizes.append((w, h)))
    assert np.array_equal(image, sio.read_image(tmp_path / "r.jpg")) and image.shape == (32, 24, 3)
    assert digest == sio.file_sha256(tmp_path / "r.jpg") and sizes == [(24, 32)]

    def too_large(width, height):
        raise ValueError("too large")

    with pytest.raises(ValueError, match="too large"):
        sio.read_image_sha256(tmp_path / "r.jpg", check_size=too_large)
    with pytest.raises(sio.InputError, match="file not found"):
        sio.read_image_sha256(tmp_path / "missing.jpg")


def _lbp(argv, capsys):
    return run_main(predict.main, [*argv, "--method", "lbp"], capsys)


def test_the_summary_counts_every_input_skipped_not_every_line(images, tmp_path, capsys):
    """A rerun with ``--out`` inside the inputs skipped 12 output files on one line and the summary said "1 skipped":
    the count is of the inputs skipped (each named on a line, a line of many with its count)."""
    folder = images[0].parent
    assert _lbp([folder, "--out", folder / "old"], capsys)[0] == 0  # 2 × (_blur.png, _preview.png) images
    assert _lbp([folder, "--out", folder / "o"], capsys)[0] == 0
    rc, out_text, err = _lbp([folder, tmp_path / "gone.png", "--recursive", "--out", folder / "o"], capsys)
    assert "skipped 4 file(s) under --out" in err and "skipped 4 file(s) named like predict outputs" in err
    assert "no such file or folder" in err
    assert rc == 0 and "0/2 images written" in out_text and "2 done already, 9 skipped" in out_text, out_text


def test_the_record_names_the_device_and_another_device_resumes_the_batch(images, tmp_path, capsys, monkeypatch):
    """``predict.json`` records the device the maps were made on (``devices``, in the order they ran); a rerun on
    another device is not refused (σ differs by float rounding only) but adds its device once it writes a set."""
    out = tmp_path / "o"
    assert _lbp([*images, "--out", out], capsys)[0] == 0
    record = json.loads((out / "predict.json").read_text())
    assert record["devices"] == ["cpu"]
    (out / "predict.json").write_text(json.dumps({**record, "devices": ["cuda:0"]}))  # as a GPU run leaves it
    rc, out_text, _ = _lbp([*images, "--out", out], capsys)
    assert rc == 0 and "2 done already" in out_text
    assert json.loads((out / "predict.json").read_text())["devices"] == ["cuda:0"]  # nothing written: as it was
    (out / "img1_preview.png").unlink()
    rc, out_text, _ = _lbp([*images, "--out", out], capsys)
    assert rc == 0 and "1/2 images written" in out_text and "1 done already" in out_text
    assert json.loads((out / "predict.json").read_text()) == {**record, "devices": ["cuda:0", "cpu"]}
    # the device that runs: a method without a model runs on the CPU whatever --device says; "cuda" is one card
    assert predict_record.device_used("cpu:0", learned=True) == "cpu"
    assert predict_record.device_used("cuda:1", learned=False) == "cpu"
    assert predict_record.device_used("cuda:1", learned=True) == "cuda:1"
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert predict_record.device_used("cuda", learned=True) == "cuda:0"


def test_a_refused_rerun_names_values_not_none(model_path, images, tmp_path, capsys):
    """lbp into a folder of dmenet maps said "flips 1, now None": settings a method does not read are left out of
    the refusal, and a value None is shown as what it means (full resolution, no model)."""
    out = tmp_path / "o"
    assert _predict([*images, "--out", out, "--max-side", "0"], capsys, model_path)[0] == 0
    rc, _, err = _lbp([*images, "--out", out], capsys)
    line = assert_usage_error(rc, err, "method 'dmenet', now 'lbp'")
    assert "None" not in line and "flips" not in line and "max_side" not in line, line
    rc, _, err = _predict([*images, "--out", out], capsys, model_path)
    line = assert_usage_error(rc, err, "max_side 0 (full resolution), now 1024")
    assert "None" not in line, line
    lbp_out = tmp_path / "lbp"
    assert _lbp([*images, "--out", lbp_out], capsys)[0] == 0
    rc, _, err = _predict([*images, "--out", lbp_out], capsys, model_path)
    line = assert_usage_error(rc, err, "method 'lbp', now 'dmenet'", "model_sha256 no model, now '")
    assert "None" not in line and "flips" not in line, line


def test_describe_states_the_short_side_kept_under_max_side(model_path):
    """``--describe`` said "run at long side ≤ N px" without the rule that DMENet never shrinks the short side below
    ``MIN_WORK_SIDE`` px; it says so for dmenet only (the other methods do not keep it)."""
    dm = registry.parse_method(f"dmenet:model={model_path}").make(registry.MethodOptions(max_side=320, flips=1))
    assert f"run at long side ≤ 320 px when larger, short side kept ≥ {inference.MIN_WORK_SIDE} px" in dm.describe()
    lbp = registry.parse_method("lbp").make(registry.MethodOptions(max_side=320))
    assert "short side" not in lbp.describe()
    full = registry.parse_method(f"dmenet:model={model_path}").make(registry.MethodOptions(max_side=None, flips=1))
    assert "long side" not in full.describe() and "short side" not in full.describe()


def test_h56_a_newline_in_a_file_name_keeps_every_report_line_one_line(tmp_path, capsys):
    """A photo named ``a\\nb.png`` split its progress, written and skip lines in two (the second line began with the
    rest of the name: a log read line by line mis-parsed it); a FIFO among the inputs was "no such file or folder".
    Control characters in names are shown escaped (``a\\\\nb.png``); the files keep their real names."""
    folder = tmp_path / "in"
    write_rgb(folder / "new\nline.png", seed=1)
    write_rgb(folder / "cr\rret.png", seed=2)
    (folder / "empty\nfile.png").write_bytes(b"")
    os.mkfifo(tmp_path / "pipe.png")
    out = tmp_path / "o"
    rc, stdout, err = run_main(predict.main, [folder, tmp_path / "pipe.png", "--out", out, "--method", "lbp",
                                              "--workers", "1"], capsys)
    assert rc == 0, err
    lines = (stdout + err).splitlines()
    assert all(line.startswith(("[", "skipped ", "lbp gives", "2/3 images")) for line in lines), lines
    assert any(line.startswith("[") and "new\\nline.png -> " in line for line in lines), lines
    assert any(line.startswith("[") and "cr\\rret.png -> " in line for line in lines), lines
    assert f"skipped {folder}/empty\\nfile.png: file is empty" in lines
    assert f"skipped {tmp_path}/pipe.png: not a regular file (a FIFO, socket or device)" in lines
    assert (out / "new\nline_blur.png").is_file() and (out / "cr\rret_blur.png").is_file()


def test_large_photo_note_offers_max_side_only_to_a_method_that_reads_it(tmp_path, capsys, monkeypatch):
    """predict's progress note for a large photo at --max-side 0 said "(large: tiled, …; --max-side is faster)" for
    lbp / laplacian / zhuo_sim too, which run at full size whatever --max-side (the memory guard stopped offering it
    to them the same day); a method that reads it still gets the note."""
    photo = write_rgb(tmp_path / "in" / "big.png", 64, 64)
    monkeypatch.setattr(memory, "LARGE_IMAGE_PIXELS", 1000)
    for method, noted in (("lbp", False), ("hifst", True)):
        rc, _, err = run_main(predict.main, [photo, "--method", method, "--max-side", "0", "--out",
                                             tmp_path / f"o_{method}"], capsys)
        assert rc == 0, err
        assert ("--max-side is faster" in err) == noted, err


# ----------------------------------------------------------------------------- left items of the sixth review (§16)
def test_h80_predict_names_a_symlink_loop_as_a_loop(images, tmp_path, capsys):
    """A symbolic link loop given as a photo or a folder was "no such file or folder", and one inside a folder "a
    symbolic link to nothing": it is a loop (``ln -s a b; ln -s b a``), named so, once, and the batch goes on."""
    folder = tmp_path / "links"
    folder.mkdir()
    shutil.copy(images[0], folder / "a.png")
    for a, b, where in (("x.png", "y.png", folder), ("p.png", "q.png", tmp_path), ("d", "e", tmp_path)):
        (where / a).symlink_to(b)
        (where / b).symlink_to(a)
    rc, out_text, err = run_main(predict.main, [folder, tmp_path / "p.png", tmp_path / "d", "--out", tmp_path / "o",
                                                "--method", "laplacian"], capsys)
    assert rc == 0 and "1/1 images written" in out_text and "4 skipped" in out_text, out_text
    loop = "a symbolic link loop (too many levels of symbolic links)"
    skipped = sorted(line for line in err.splitlines() if line.startswith("skipped"))
    assert skipped == sorted(f"skipped {p}: {loop}" for p in (folder / "x.png", folder / "y.png", tmp_path / "p.png",
                                                              tmp_path / "d")), err


def test_a_hidden_link_to_nothing_or_loop_in_a_folder_is_no_photo_and_no_skip(images, tmp_path, capsys):
    """A hidden name is no photo of its folder, in every listing (``syndof.io.is_hidden``): the listing of a folder's
    links to nothing and loops took them in, so an editor's lock link (Emacs's ``.#x.png`` → ``user@host.pid``), a
    dangling ``._x.png`` or a loop in a hidden folder each gave a skip line. Visible ones are still reported."""
    folder = tmp_path / "links"
    (folder / ".cache").mkdir(parents=True)
    shutil.copy(images[0], folder / "a.png")
    (folder / ".#a.png").symlink_to("user@host.1234")
    (folder / "._b.png").symlink_to("nowhere.png")
    (folder / ".cache" / "c.png").symlink_to("d.png")
    (folder / ".cache" / "d.png").symlink_to("c.png")
    (folder / "gone.png").symlink_to("nowhere.png")
    for recursive in ([], ["--recursive"]):
        rc, out_text, err = run_main(predict.main, [folder, "--out", tmp_path / f"o{len(recursive)}", "--method",
                                                    "laplacian", *recursive], capsys)
        assert rc == 0 and "1/1 images written" in out_text and "1 skipped" in out_text, out_text
        assert [line for line in err.splitlines() if line.startswith("skipped")] == \
            [f"skipped {folder / 'gone.png'}: a symbolic link to nothing"], err


def test_h81_an_unreadable_photo_is_named_once_in_its_skip_line(images, tmp_path, capsys, monkeypatch):
    """A photo without read permission (``chmod 000``) in a batch gave ``skipped x.png: PermissionError: [Errno 13]
    Permission denied: 'x.png'``: its path twice. Now ``skipped x.png: Permission denied``; the batch goes on."""
    secret = images[1]
    with unreadable(secret, monkeypatch):
        rc, out_text, err = run_main(predict.main, [secret.parent, "--out", tmp_path / "o", "--method", "laplacian"],
                                     capsys)
    assert rc == 0 and "1/2 images written" in out_text and "1 skipped" in out_text, out_text
    assert [line for line in err.splitlines() if line.startswith("skipped")] == \
        [f"skipped {secret}: Permission denied"], err


def test_h82_predict_warns_once_per_animated_photo_in_one_line(tmp_path, capfd, recwarn):
    """An animated GIF in a batch gave the map of its first frame, saying nothing. One warning naming it and its frame
    count, in the batch's process as in a spawned worker's, there as one ``warning:`` line (Python's two-line format
    before: a worker is spawned, and did not have the command's format)."""
    from PIL import Image

    from syndof.frames import FirstFrameWarning

    folder = tmp_path / "in"
    folder.mkdir()
    frames = [Image.fromarray(np.full((40, 48, 3), v, np.uint8)) for v in (10, 120, 250, 30)]
    for name in ("a.gif", "b.gif"):
        frames[0].save(folder / name, save_all=True, append_images=frames[1:])
    frames[0].save(folder / "still.gif")
    want = [f"{folder / n}: an animated GIF of 4 frames: only the first is read" for n in ("a.gif", "b.gif")]
    assert predict.main([str(folder), "--out", str(tmp_path / "o1"), "--method", "laplacian", "--workers", "1"]) == 0
    assert sorted(str(w.message) for w in recwarn if w.category is FirstFrameWarning) == want  # pytest records them
    assert "3/3 images written" in capfd.readouterr().out
    assert predict.main([str(folder), "--out", str(tmp_path / "o2"), "--method", "laplacian", "--workers", "2"]) == 0
    captured = capfd.readouterr()  # the workers' own stderr
    assert "3/3 images written" in captured.out
    warned = sorted(line for line in captured.err.splitlines() if "GIF of" in line)
    assert warned == [f"warning: {line}" for line in want], captured.err
    assert "FirstFrameWarning" not in captured.err and "_decode_raw" not in captured.err, captured.err


# ------------------------------------------------------------------- predict after the day's changes (§31)
@contextlib.contextmanager
def _unlistable(folder: Path, monkeypatch):
    """In the block, the folder ``folder`` cannot be listed: ``chmod 000``, or, for root (which lists through it),
    ``os.scandir`` (what ``os.walk`` and ``Path.rglob`` list with) raising the kernel's ``PermissionError`` for it."""
    real = os.scandir
    if os.geteuid() == 0:
        def denied(path="."):
            if os.fspath(path) == str(folder):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", denied)
    else:
        folder.chmod(0)
    try:
        yield
    finally:
        monkeypatch.setattr(os, "scandir", real)
        folder.chmod(0o755)


def test_w3_a_sub_folder_that_cannot_be_listed_is_reported_not_left_out_unsaid(images, tmp_path, capsys,
                                                                               monkeypatch):
    """``predict DIR --recursive`` with a sub-folder that cannot be listed (``chmod 000``; a drive's ``lost+found``)
    wrote the other photos, "1/1 images written", exit 0, and said nothing of the photos in it (``Path.rglob``
    passes such a folder over); the folder itself given with ``--recursive`` was "no image files". Now the batch
    reports it as one skipped input and goes on; the folder itself is refused naming why; a hidden one is never
    listed (nor reported); a dataset listing (``image_entries``: ``train --real``) refuses it, naming it."""
    folder = tmp_path / "photos"
    for sub in ("open", "locked", ".hidden"):
        (folder / sub).mkdir(parents=True)
    shutil.copy(images[0], folder / "open" / "a.png")
    shutil.copy(images[1], folder / "locked" / "b.png")
    locked = folder / "locked"
    with _unlistable(locked, monkeypatch), _unlistable(folder / ".hidden", monkeypatch):
        rc, out_text, err = _lbp([folder, "--recursive", "--out", tmp_path / "o"], capsys)
        assert rc == 0 and out_text.splitlines()[-1] == f"1/1 images written to {tmp_path / 'o'}, 1 skipped", out_text
        assert [line for line in err.splitlines() if line.startswith("skipped")] == \
            [f"skipped {locked}: a folder that cannot be listed (Permission denied)"], err
        rc, _, err = _lbp([locked, "--recursive", "--out", tmp_path / "o2"], capsys)
        assert_usage_error(rc, err, f"{locked}: a folder that cannot be listed (Permission denied)")
        # beside another input it is one skipped input, as a missing file (it ended the batch, exit 2, before)
        rc, out_text, err = _lbp([locked, folder / "open", "--recursive", "--out", tmp_path / "o3"], capsys)
        assert rc == 0 and out_text.splitlines()[-1] == f"1/1 images written to {tmp_path / 'o3'}, 1 skipped", out_text
        assert f"skipped {locked}: a folder that cannot be listed (Permission denied)" in err.splitlines(), err
        with pytest.raises(sio.InputError, match="locked: a folder that cannot be listed"):
            sio.image_entries(folder, recursive=True)
    assert sio.image_entries(folder, recursive=True) == [folder / "locked" / "b.png", folder / "open" / "a.png"]


def test_w4_names_that_differ_only_in_letter_case_get_prefixes_that_differ_beyond_it(images, tmp_path, capsys):
    """``A.PNG`` and ``a.png`` in one folder (or ``Sub/x.png`` and ``sub/x.png`` from two folders) got the output
    prefixes ``A`` and ``a``: one name on macOS (APFS, HFS+) and Windows (NTFS), where the second photo's set is
    written over the first's (the batch's own record made it "this photo's set, to complete") and both are reported
    written. Prefixes now differ beyond letter case (and Unicode normalization): as two extensions of one stem; a
    rerun finds both sets done."""
    folder = tmp_path / "cased"
    (folder / "Sub").mkdir(parents=True)
    (folder / "sub").mkdir()
    shutil.copy(images[0], folder / "A.PNG")
    shutil.copy(images[1], folder / "a.png")
    shutil.copy(images[0], folder / "Sub" / "x.png")
    shutil.copy(images[1], folder / "sub" / "x.png")
    shutil.copy(images[0], folder / "caf\u00e9.png")  # é composed, and decomposed: one name on APFS
    shutil.copy(images[1], folder / "cafe\u0301.png")
    jobs, _ = predict_inputs.collect_jobs([folder], tmp_path / "o", recursive=True)
    keys = [str(job.prefix.relative_to(tmp_path / "o")).casefold() for job in jobs]
    assert len(jobs) == 6 and len({unicodedata.normalize("NFC", key) for key in keys}) == 6, keys
    rc, out_text, _ = _lbp([folder, "--recursive", "--out", tmp_path / "o"], capsys)
    assert rc == 0 and "6/6 images written" in out_text
    made = {json.loads(p.read_text())["source"] for p in (tmp_path / "o").rglob("*_source.json")}
    assert made == {str(job.source.resolve()) for job in jobs}
    rc, out_text, _ = _lbp([folder, "--recursive", "--out", tmp_path / "o"], capsys)
    assert rc == 0 and "0/6 images written" in out_text and "6 done already" in out_text, out_text


def test_w5_a_photo_done_under_another_name_says_where_its_set_is(images, tmp_path, capsys):
    """Two photos of a finished batch renamed into each other's names (``a.png`` ⇄ ``c.png``): the rerun said "done
    already" for both, exit 0, while ``out/a_*`` now holds the maps of the photo named ``c.png`` (the set is found by
    content under the other name, for a batch named in another order). The sets are kept (nothing is redone or
    overwritten), and the line now names where the photo's set is and that its own name's set is another photo's."""
    folder = tmp_path / "r"
    folder.mkdir()
    shutil.copy(images[0], folder / "a.png")
    shutil.copy(images[1], folder / "c.png")
    out = tmp_path / "o"
    assert _lbp([folder, "--out", out], capsys)[0] == 0
    made = digests(out)
    (folder / "a.png").rename(folder / "t.png")
    (folder / "c.png").rename(folder / "a.png")
    (folder / "t.png").rename(folder / "c.png")
    rc, out_text, err = _lbp([folder, "--out", out], capsys)
    assert rc == 0 and "0/2 images written" in out_text and "2 done already" in out_text and digests(out) == made
    assert [line for line in out_text.splitlines() if "done already (" in line] == [
        f"[{i}/2] {folder / name}: done already (same settings, predict.json); its set is {out / other}_*, made when "
        f"the photos were named otherwise ({out / name[0]}_* is another photo's)"
        for i, name, other in ((1, "a.png", "c"), (2, "c.png", "a"))], out_text


def test_w7_a_photo_done_before_its_stem_took_a_second_extension_is_not_redone(tmp_path, capsys):
    """``a.png`` done as ``out/a_*``, then ``a.jpg`` added: the rerun gave ``a.png`` the prefix ``a_png`` and
    predicted it again (the old set kept beside, unused). Now a whole set of the photo (same SHA-256 in its
    ``_source.json``) under a prefix no photo of the batch has, in a folder the batch writes to, counts as done; a
    set with a file missing is not taken, nor a set of a nested folder with a settings record of its own (another
    run's, other settings), and one set is taken for one photo only (a copy of ``a.png`` added as ``d.png`` gets
    ``d_*``, as in a first run); ``a.jpg`` gets ``a_jpg``, and no earlier file changes."""
    folder, out = tmp_path / "r", tmp_path / "o"
    write_rgb(folder / "a.png", seed=0)
    write_rgb(folder / "b.png", seed=1)
    assert _lbp([folder, "--recursive", "--out", out], capsys)[0] == 0
    write_rgb(folder / "sub" / "c.png", seed=2)
    assert run_main(predict.main, [folder / "sub", "--out", out / "sub", "--method", "laplacian"], capsys)[0] == 0
    (out / "b_blur.png").unlink()  # b's set incomplete
    made = digests(out)
    for name, seed in (("a.jpg", 3), ("b.jpg", 4), ("sub/c.jpg", 5)):
        write_rgb(folder / name, seed=seed)
    shutil.copy(folder / "a.png", folder / "d.png")  # the same bytes under a new name: its own set, as a first run
    rc, out_text, _ = run_main(predict.main, [folder / "sub", "--out", out / "sub", "--method", "lbp"], capsys)
    assert rc == 2 and digests(out) == made  # the nested folder's own settings refuse lbp there
    rc, out_text, err = _lbp([folder, "--recursive", "--out", out], capsys)
    assert rc == 0 and "6/7 images written" in out_text and "1 done already" in out_text, (out_text, err)
    assert f"{folder / 'a.png'}: done already (same settings, predict.json); its set is {out / 'a'}_*, made when " \
        "the photos were named otherwise\n" in out_text, out_text
    assert not list(out.glob("a_png_*")) and (out / "a_jpg_source.json").exists()
    assert all((out / f"{name}_source.json").exists() for name in ("b_png", "sub/c_png", "d"))
    assert {k: v for k, v in digests(out).items() if k in made} == made  # nothing earlier overwritten
    rc, out_text, _ = _lbp([folder, "--recursive", "--out", out], capsys)
    assert rc == 0 and "0/7 images written" in out_text and "7 done already" in out_text, out_text
