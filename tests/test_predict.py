"""Inference (pad-and-crop, tiling, units) and the ``dmenet.predict`` CLI on a tiny random-init model."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hostile_helpers import sigint_as_at_a_terminal

import dmenet
from dmenet import inference, memory, predict, predict_inputs, predict_workers, tiling
from dmenet.models import ModelConfig, build_dmenet
from dmenet.models.model_io import save_model
from syndof import io as sio

TINY = dict(encoder="mobilenet_v2", width=0.25, refine_blocks=1, calib_width=0.25)


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_dmenet(ModelConfig(**TINY))
    return save_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", model, {"note": "random init"})


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    return inference.load_model(tiny_model_path)


def _image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.0)
    return np.clip(img, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------------- inference
def test_lazy_exports():
    assert dmenet.load_model is inference.load_model
    assert dmenet.estimate_defocus is inference.estimate_defocus


def test_missing_default_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setattr(inference, "DEFAULT_CHECKPOINT", tmp_path / "checkpoints" / "dmenet_lite.safetensors")
    with pytest.raises(FileNotFoundError, match="default checkpoint"):
        inference.load_model()
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        inference.load_model(tmp_path / "nope.safetensors")


def test_loaded_model_is_eval(tiny_model):
    assert not tiny_model.training and tiny_model.config.encoder == "mobilenet_v2"


@pytest.mark.parametrize("shape", [(45, 67), (16, 16), (17, 33)])
def test_pad_and_crop_shape_and_units(tiny_model, rng, shape):
    img = _image(rng, *shape)
    res = inference.estimate(img, tiny_model)
    assert res.sigma.shape == shape and res.sigma.dtype == np.float32
    assert res.blur_probability.shape == shape and res.blur_probability.dtype == np.float32
    sigma_max = tiny_model.config.sigma_max
    assert 0.0 <= res.sigma.min() and res.sigma.max() <= sigma_max
    np.testing.assert_allclose(res.sigma, res.label * sigma_max, rtol=1e-6, atol=1e-6)
    assert 0.0 <= res.blur_probability.min() and res.blur_probability.max() <= 1.0


def test_uint8_equals_float(tiny_model, rng):
    img8 = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    a = inference.estimate_defocus(img8, tiny_model)
    b = inference.estimate_defocus(img8.astype(np.float32) / 255.0, tiny_model)
    np.testing.assert_array_equal(a, b)


def test_swapped_arguments_and_bad_shapes_are_clear_errors(tiny_model, rng):
    img = rng.random((40, 50, 3)).astype(np.float32)
    with pytest.raises(TypeError, match="image comes first"):
        inference.estimate_defocus(tiny_model, img)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB, got shape \(40, 50, 5\)"):
        inference.estimate_defocus(rng.random((40, 50, 5)).astype(np.float32), tiny_model)


def test_padding_does_not_change_the_interior_much(tiny_model, rng):
    # cropping 3 px off an image changes only the padding: the map far from the border stays close
    img = _image(rng, 96, 128)
    full = inference.estimate_defocus(img, tiny_model)
    cropped = inference.estimate_defocus(img[:93, :125], tiny_model)
    assert np.abs(full[:60, :90] - cropped[:60, :90]).max() < 0.05 * tiny_model.config.sigma_max


def test_tiled_matches_untiled_away_from_seams(tiny_model, rng):
    h, w, tile, overlap = 150, 220, 96, 32
    img = _image(rng, h, w)
    untiled = inference.predict_label(img, tiny_model, tile_threshold=None)
    tiled = inference.predict_label(img, tiny_model, tile_threshold=1, tile_size=tile, tile_overlap=overlap)
    assert tiled.shape == untiled.shape == (h, w)
    # blend bands (where two tiles overlap) widened by 16 px; elsewhere one tile alone decides, ≥ 16 px inside it
    seam = np.zeros((h, w), dtype=bool)
    for axis, length in ((0, 160), (1, 224)):  # padded sizes
        starts = tiling._tile_starts(length, tile, tile - overlap)
        for prev, start in zip(starts, starts[1:], strict=False):
            band = slice(max(0, start - 16), prev + tile + 16)
            if axis == 0:
                seam[band, :] = True
            else:
                seam[:, band] = True
    diff = np.abs(tiled - untiled)
    assert (~seam).sum() > 2000
    assert diff[~seam].max() < 0.02, diff[~seam].max()
    assert diff.mean() < 0.01


def test_max_side_rescales_sigma(tiny_model, rng):
    img = _image(rng, 64, 96)
    sigma = inference.estimate_defocus(img, tiny_model, max_side=48)
    assert sigma.shape == (64, 96)
    # σ at the working size is ≤ σ_max there; brought back by ×2 (96 → 48)
    assert sigma.max() <= 2 * tiny_model.config.sigma_max + 1e-5
    prob = inference.estimate_blur_probability(img, tiny_model, max_side=48)
    assert prob.shape == (64, 96) and 0.0 <= prob.min() <= prob.max() <= 1.0



def test_max_side_sigma_is_the_working_sigma_times_the_inverse_scale(tiny_model, rng):
    """Resizing by s scales blur by s: σ in input px = σ on the half-size copy ÷ 0.5, not × 0.5."""
    from syndof import resize

    img = _image(rng, 64, 96)
    small, scale = resize.shrink_long_side(img, 48, minimum=2)
    assert scale == 0.5 and small.shape[:2] == (32, 48)
    working = inference.estimate_defocus(small, tiny_model)  # σ in px of the half-size copy
    assert working.max() > 0.1  # a map that would tell × 2 from × 0.5
    sigma = inference.estimate_defocus(img, tiny_model, max_side=48)
    np.testing.assert_allclose(sigma, 2.0 * resize.resize_back(working, (64, 96)), rtol=1e-5, atol=1e-5)
    assert sigma.mean() == pytest.approx(2.0 * working.mean(), rel=0.05)



def test_tile_ramps_by_hand_and_sum_to_one_across_an_overlap():
    w = tiling._ramp(8, 4, True, True).numpy()
    np.testing.assert_allclose(w, [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125])
    np.testing.assert_allclose(tiling._ramp(6, 2, False, True).numpy(), [1, 1, 1, 1, 0.75, 0.25])
    np.testing.assert_allclose(tiling._ramp(6, 2, True, False).numpy(), [0.25, 0.75, 1, 1, 1, 1])
    # two tiles of 64 overlapping by 16 on a length of 112: the blend weights add up to 1 everywhere
    total = np.zeros(112)
    for start in tiling._tile_starts(112, 64, 64 - 16):
        total[start:start + 64] += tiling._ramp(64, 16, start > 0, start + 64 < 112).numpy()
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
    assert tiling._tile_starts(112, 64, 48) == [0, 48]
    assert tiling._tile_starts(128, 64, 48) == [0, 48, 64]  # the last tile ends flush with the image



def test_tile_geometry_rounds_the_tile_down_and_the_overlap_up_to_16():
    assert tiling.tile_geometry(512, 64) == (512, 64)
    assert tiling.tile_geometry(520, 60) == (512, 64)  # overlap rounded up: never less blending than asked
    assert tiling.tile_geometry(500, 1) == (496, 16)
    assert tiling.tile_geometry(512, 0) == (512, 0)


def test_inference_re_exports_the_tiling_and_logit_names_as_the_same_objects():
    """``dmenet.inference`` keeps every public name it had before tiling and S's logit became modules of their own
    (reliability.md §40): each moved name is the very object of :mod:`dmenet.tiling` / :mod:`dmenet.logits`, so a
    caller of either path gets one function and one constant, and ``__all__`` names only what resolves."""
    from dmenet import logits

    moved = {tiling: ["MIN_TILE_SIZE", "MULTIPLE", "TILE_OVERLAP", "TILE_SIZE", "TILE_THRESHOLD", "tile_geometry"],
             logits: ["blur_probability_from_logit", "calibration_logit", "direct_calibration_logit"]}
    for module, names in moved.items():
        for name in names:
            assert getattr(inference, name) is getattr(module, name), name
            assert name in inference.__all__, name
    assert all(hasattr(inference, name) for name in inference.__all__)


# --------------------------------------------------------------------------------------------------------------- CLI
def _write_inputs(folder: Path, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """Write odd/gray/RGBA/16-bit/EXIF-rotated inputs; returns {stem: displayed (H, W)}."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rgb = (_image(rng, 45, 67) * 255).astype(np.uint8)
    sio.write_image(folder / "odd.png", rgb)
    sio.write_bytes_atomic(folder / "gray.png", sio.encode_png(rgb[..., 1]))
    rgba = np.concatenate([rgb, np.full((45, 67, 1), 128, np.uint8)], axis=2)
    sio.write_bytes_atomic(folder / "rgba.png", sio.encode_png(rgba))
    sio.write_bytes_atomic(folder / "deep.png", sio.encode_png(rgb.astype(np.uint16) * 257))
    # stored 40 wide × 24 high, EXIF orientation 6 (rotate 90° clockwise to display) → displayed 24 wide × 40 high
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb[:24, :40]).save(folder / "rotated.jpg", exif=exif.tobytes(), quality=95)
    return {"odd": (45, 67), "gray": (45, 67), "rgba": (45, 67), "deep": (45, 67), "rotated": (40, 24)}


def test_cli_writes_all_outputs_and_skips_a_corrupt_file(tiny_model_path, tmp_path, rng, capsys):
    expected = _write_inputs(tmp_path / "in", rng)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    out = tmp_path / "out"
    rc = predict.main([str(tmp_path / "in"), "--out", str(out), "--checkpoint", str(tiny_model_path),
                       "--format", "both"])
    captured = capsys.readouterr()
    assert rc == 0
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "broken.png" in skipped[0]
    assert not list(out.glob("broken*")) and not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    for stem, (h, w) in expected.items():
        sigma = np.load(out / f"{stem}_sigma.npy")
        assert sigma.dtype == np.float32 and sigma.shape == (h, w), stem
        raw = cv2.imread(str(out / f"{stem}_sigma.png"), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint16 and raw.shape == (h, w, 3)
        np.testing.assert_array_equal(raw[..., 0], np.floor(sigma.astype(np.float64) * 10 + 0.5).astype(np.uint16))
        np.testing.assert_allclose(sio.read_sigma_map(out / f"{stem}_sigma.png"), sigma, atol=0.05 + 1e-6)
        blur = cv2.imread(str(out / f"{stem}_blur.png"), cv2.IMREAD_UNCHANGED)
        assert blur.dtype == np.uint8 and blur.shape == (h, w)
        preview = sio.read_image(out / f"{stem}_preview.png")
        assert preview.shape == (h, 2 * w + 8, 3)


def test_cli_exif_orientation_follows_the_displayed_image(tiny_model_path, tmp_path, rng):
    _write_inputs(tmp_path / "in", rng)
    out = tmp_path / "out"
    assert predict.main([str(tmp_path / "in" / "rotated.jpg"), "--out", str(out),
                         "--checkpoint", str(tiny_model_path), "--format", "npy"]) == 0
    model = inference.load_model(tiny_model_path)
    direct = inference.estimate_defocus(sio.read_image(tmp_path / "in" / "rotated.jpg"), model)
    np.testing.assert_allclose(np.load(out / "rotated_sigma.npy"), direct, atol=1e-6)
    assert not (out / "rotated_sigma.png").exists()  # --format npy


def test_cli_all_failed_exits_nonzero(tiny_model_path, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    rc = predict.main([str(bad), str(tmp_path / "missing.png"), "--out", str(tmp_path / "out"),
                       "--checkpoint", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "skipped" in err and "bad.jpg" in err and "missing.png" in err


def test_cli_no_input_image_is_a_usage_error_naming_the_input(tiny_model_path, tmp_path, capsys):
    """Inputs that give no image at all (a missing path, an empty folder) exit 2 with one line naming them, and
    create no --out; until 5 Dec 2026 this was rc 1 with a line per input and then a line that named nothing."""
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    rc = predict.main([str(tmp_path / "nope.jpg"), "--out", str(out), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ") and "nope.jpg: no such file" in err
    rc = predict.main([str(tmp_path / "nope.jpg"), str(tmp_path / "empty"), "--out", str(out),
                       "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "nope.jpg" in err and "empty: no image files" in err
    assert not out.exists()
    assert predict.no_jobs_message([f"skipped f{i}: x" for i in range(5)]) == \
        "no input images: f0: x; f1: x; f2: x; and 2 more"


def test_cli_missing_checkpoint(tmp_path, rng, capsys):
    _write_inputs(tmp_path / "in", rng)
    rc = predict.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                       "--checkpoint", str(tmp_path / "none.safetensors")])
    assert rc == 2 and "none.safetensors" in capsys.readouterr().err


def test_cli_peer_writes_blur_and_preview_only(tmp_path, rng, capsys):
    _write_inputs(tmp_path / "in", rng)
    out = tmp_path / "out"
    assert predict.main([str(tmp_path / "in" / "odd.png"), "--out", str(out), "--method", "laplacian"]) == 0
    assert "not σ" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["odd_blur.png", "odd_preview.png", "odd_source.json",
                                                     "predict.json"]


def test_cli_recursive_keeps_layout_and_disambiguates(tmp_path, rng):
    img = (_image(rng, 20, 30) * 255).astype(np.uint8)
    sio.write_image(tmp_path / "in" / "sub" / "a.png", img)
    sio.write_image(tmp_path / "in" / "sub" / "a.jpg", img)
    sio.write_image(tmp_path / "in" / "b.png", img)
    jobs, problems = predict_inputs.collect_jobs([tmp_path / "in"], tmp_path / "out", recursive=True)
    assert not problems
    rel = sorted(str(j.prefix.relative_to(tmp_path / "out")) for j in jobs)
    assert rel == ["b", str(Path("sub") / "a_jpg"), str(Path("sub") / "a_png")]
    flat, _ = predict_inputs.collect_jobs([tmp_path / "in"], tmp_path / "out", recursive=False)
    assert [j.source.name for j in flat] == ["b.png"]


@pytest.mark.shared
def test_cli_on_cuhk_images(shared, tiny_model_path, tmp_path):
    folder = shared("data", "cuhk", "image")
    out = tmp_path / "out"
    rc = predict.main([str(folder), "--out", str(out), "--checkpoint", str(tiny_model_path),
                       "--format", "both", "--max-side", "256"])
    assert rc == 0
    stems = sorted(p.stem for p in folder.glob("*.jpg"))
    assert len(stems) == 5
    for stem in stems:
        h, w = sio.read_image(folder / f"{stem}.jpg").shape[:2]
        for suffix in ("_sigma.png", "_sigma.npy", "_blur.png", "_preview.png"):
            assert (out / f"{stem}{suffix}").is_file(), stem + suffix
        assert np.load(out / f"{stem}_sigma.npy").shape == (h, w)


def test_module_entry_point(tiny_model_path, tmp_path, rng):
    import subprocess

    _write_inputs(tmp_path / "in", rng)
    proc = subprocess.run([sys.executable, "-m", "dmenet.predict", str(tmp_path / "in" / "gray.png"),
                           "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_model_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # ``python -m`` runs the same command as predict.main: the same files, the same σ map
    assert predict.main([str(tmp_path / "in" / "gray.png"), "--out", str(tmp_path / "inproc"), "--checkpoint",
                         str(tiny_model_path)]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "gray_sigma.png" in names and names == sorted(p.name for p in (tmp_path / "inproc").iterdir())
    sigma = sio.read_sigma_map(tmp_path / "out" / "gray_sigma.png")
    assert sigma.shape == (45, 67)
    np.testing.assert_array_equal(sigma, sio.read_sigma_map(tmp_path / "inproc" / "gray_sigma.png"))


def test_cli_runs_one_flip_by_default_and_notes_the_recipe_departure(tmp_path, rng, capsys, monkeypatch):
    """predict's speed default (DEFAULT_FLIPS = 1) reaches the estimator, and the shipped recipe's "σ curve fitted
    at 8 flips" departure is one note line (no warning) for the default; with --flips given it stays a warning."""
    import warnings

    from dmenet.methods import registry

    seen = []
    real = registry.make_method

    def spy(name, options):
        seen.append(options.flips)
        return real(name, options)

    monkeypatch.setattr(registry, "make_method", spy)  # every --method is built through it
    rng_img = rng.random((40, 56, 3)).astype(np.float32)
    sio.write_image(tmp_path / "in" / "small.png", rng_img)
    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "dmenet_lite.safetensors"
    base = [str(tmp_path / "in"), "--checkpoint", str(shipped)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default must not warn
        assert predict.main(base + ["--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert seen == [predict.DEFAULT_FLIPS] == [1]
    notes = [line for line in err.splitlines() if line.startswith("note: 1 flip by default")]
    assert len(notes) == 1 and "fitted at 8 flips" in notes[0] and notes[0].endswith("used at 1"), err
    with pytest.warns(UserWarning, match=inference.RECIPE_OVERRIDE + ".*fitted at 8 flips.*used at 2"):
        assert predict.main(base + ["--out", str(tmp_path / "b"), "--flips", "2"]) == 0
    assert seen[-1] == 2 and "note:" not in capsys.readouterr().err


@pytest.mark.shared
def test_workers_do_not_repeat_the_recipe_override_warning(tmp_path, rng):
    """``--flips 2`` contradicts the shipped file's fits: the batch says so once, on one line, not once more per worker
    process (each worker builds its own copy of the method). A real command: pytest would record the warning."""
    import subprocess
    import sys

    for i in range(2):
        sio.write_image(tmp_path / "in" / f"p{i}.png", rng.random((40, 56, 3)).astype(np.float32))
    run = subprocess.run([sys.executable, "-m", "dmenet.predict", str(tmp_path / "in"), "--flips", "2", "--workers",
                          "2", "--threads", "1", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr
    err = run.stderr.splitlines()
    overrides = [line for line in err if "recipe override" in line]
    assert len(overrides) == 1 and overrides[0].startswith("warning: ") and "used at 2" in overrides[0], err
    assert not [line for line in err if "Warning" in line or line.startswith("  ")], err


def test_cli_workers_write_the_same_files_in_input_order_and_skip_a_corrupt_file(tiny_model_path, tmp_path, rng,
                                                                                 capsys):
    expected = _write_inputs(tmp_path / "in", rng)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    lines = {}
    for workers in (1, 2):
        rc = predict.main([str(tmp_path / "in"), "--out", str(tmp_path / f"out{workers}"), "--checkpoint",
                           str(tiny_model_path), "--format", "both", "--workers", str(workers), "--threads", "1"])
        captured = capsys.readouterr()
        assert rc == 0
        skipped = [line for line in captured.err.splitlines() if line.startswith("skipped")]
        assert len(skipped) == 1 and "broken.png" in skipped[0]
        lines[workers] = [line.split(" -> ")[0] for line in captured.out.splitlines() if " -> " in line]
    assert lines[2] == lines[1] and len(lines[1]) == len(expected)  # the same photos, in input order
    files = sorted(p.name for p in (tmp_path / "out1").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "out2").iterdir())
    assert len(files) == 5 * len(expected) + 1  # σ png + npy, blur, preview, source; predict.json
    for name in files:  # every file the same, byte for byte (each worker runs the same code on one thread)
        assert (tmp_path / "out1" / name).read_bytes() == (tmp_path / "out2" / name).read_bytes(), name


def test_default_workers_one_per_core_for_big_cpu_batches_within_memory(tmp_path, rng, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(predict_workers.AUTO_WORKERS_MIN_PHOTOS):
        sio.write_image(folder / f"p{i}.png", (_image(rng, 40, 60) * 255).astype(np.uint8))
    (folder / "p9.png").write_bytes(b"not an image")  # its header cannot be read: left to the worker
    jobs, _ = predict_inputs.collect_jobs([folder], tmp_path / "out")
    monkeypatch.setattr(predict_workers.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)

    def auto(*flags, available=None, count=len(jobs)):
        args = predict.build_parser().parse_args([str(folder), "--out", str(tmp_path / "out"), *flags])
        return predict_workers.auto_workers(jobs[:count], args, 1024, available)

    assert auto() == predict_workers.AUTO_WORKERS_MAX == 4  # six cores, at most four workers
    assert auto("--threads", "2") == 1 and auto("--device", "cuda") == 1  # the user chose threads / a GPU
    assert auto(count=predict_workers.AUTO_WORKERS_MIN_PHOTOS - 1) == 1  # a few photos do not pay for the loads
    need = memory.estimate_memory(40, 60, 1024)
    assert auto(available=3 * need) == 3 and auto(available=need // 2) == 1  # what memory holds, at least one


@pytest.mark.slow
def test_killed_batch_leaves_no_worker_behind(tmp_path, rng):
    import signal
    import subprocess
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):  # zhuo_sim takes seconds per photo: the batch is still running when its process is killed
        sio.write_image(folder / f"p{i}.png", (_image(rng, 240, 320) * 255).astype(np.uint8))
    proc = subprocess.Popen([sys.executable, "-m", "dmenet.predict", str(folder), "--out", str(tmp_path / "out"),
                             "--method", "zhuo_sim", "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def workers() -> set[int]:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        return {int(p) for p in children.read_text().split()} if children.exists() else set()

    deadline = time.monotonic() + 60
    while len(workers()) < 3 and time.monotonic() < deadline:  # the two workers and the resource tracker
        time.sleep(0.2)
    alive = workers()
    assert proc.poll() is None and len(alive) >= 2, "the batch ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60  # a worker first finishes the photo it is on
    while any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in alive) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in alive if Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)]
    assert not left, f"workers {left} outlived the killed batch"
    assert not list((tmp_path / "out").glob("*.tmp")) and not list((tmp_path / "out").glob(".*"))
    # the sets the workers finished after the batch was killed say whose they are: a rerun finishes the batch
    rerun = subprocess.run([sys.executable, "-m", "dmenet.predict", str(folder), "--out", str(tmp_path / "out"),
                            "--method", "zhuo_sim", "--workers", "2"], capture_output=True, text=True)
    assert rerun.returncode == 0 and "skipped" not in rerun.stderr, rerun.stderr
    written, already = rerun.stdout.split(" images written")[0].split("\n")[-1], rerun.stdout.count("done already")
    assert int(written.split("/")[0]) + already == 6, rerun.stdout


def test_ctrl_c_at_a_terminal_stops_a_batch_with_workers_in_one_line_and_a_rerun_finishes_it(tmp_path, rng):
    """A terminal's Ctrl-C reaches the batch and its workers (one process group): one line and exit 130, no
    worker traceback; every set written is whole and says whose it is, so the rerun does only the rest."""
    import os
    import signal
    import subprocess
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    count = 40  # about 0.3 s each on two workers: the batch outlasts this test's reaction under a heavy load
    for i in range(count):
        sio.write_image(folder / f"p{i:02d}.png", (_image(rng, 120, 160) * 255).astype(np.uint8))
    command = [sys.executable, "-m", "dmenet.predict", str(folder), "--out", str(tmp_path / "out"), "--method",
               "zhuo_sim", "--workers", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=sigint_as_at_a_terminal)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "out").glob("*_source.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the batch and its workers
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0 and "skipped" not in rerun.stderr, rerun.stderr
    assert f"{count} done already" not in rerun.stdout
    assert len(list((tmp_path / "out").glob("*_source.json"))) == count


def _state(pid: int) -> str:
    try:
        return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except (OSError, StopIteration):
        return "zombie"  # gone


def test_a_dead_worker_pool_reports_the_photos_left_and_ends_the_batch(tiny_model_path, tmp_path, rng, capsys,
                                                                       monkeypatch):
    """A worker killed mid-batch (e.g. by the out-of-memory killer) breaks the pool: the photos done stay written,
    the rest are reported one line each, and the batch ends with its summary (no traceback)."""
    from concurrent.futures.process import BrokenProcessPool

    expected = _write_inputs(tmp_path / "in", rng)
    assert len(expected) >= 3

    class DiesAfterOne:  # stands in for the pool: the first photo's result comes back, then the pool breaks
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, fn, items):
            yield 0.25  # seconds: done
            raise BrokenProcessPool("A process in the process pool was terminated abruptly")

    monkeypatch.setattr(predict_workers, "ProcessPoolExecutor", DiesAfterOne)
    rc = predict.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_model_path),
                       "--workers", "2", "--threads", "1"])
    captured = capsys.readouterr()
    left = [line for line in captured.err.splitlines() if line.startswith("skipped")]
    assert rc == 0 and f"1/{len(expected)} images written" in captured.out and "Traceback" not in captured.err
    assert len(left) == len(expected) - 1 and all(predict_workers.WORKER_DIED in line for line in left)


def test_cli_describe_prints_what_the_method_does_before_the_photos(tiny_model_path, tmp_path, rng, capsys):
    _write_inputs(tmp_path / "in", rng)
    rc = predict.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_model_path),
                       "--describe", "--flips", "2"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[0].startswith(f"dmenet {tiny_model_path}: σ: B with") and "mean of 2 flips" in out[0]
    assert out[1].startswith("blur probability: ") and "images written" in out[-1]
    assert not [line for line in out if line.startswith("not as fitted: ")]  # the tiny model has no fits
    rc = predict.main([str(tmp_path / "in"), "--out", str(tmp_path / "out2"), "--method", "lbp"])
    assert rc == 0 and "Yi & Eramian" not in capsys.readouterr().out  # only when asked


def test_describe_names_what_runs_otherwise_than_fitted():
    """The one-pass file runs 1 flip, and its σ curve (the default file's) was fitted at 8: its own recipe, so no
    override warns, and --describe says it; the default file at its recipe's 8 flips has nothing to say."""
    import warnings

    from dmenet.methods import MethodOptions, make_method

    checkpoints = Path(__file__).resolve().parents[1] / "checkpoints"
    lines = make_method("dmenet", MethodOptions(model=str(checkpoints / "dmenet_lite_onepass"))).describe().split("\n")
    assert lines[2:] == ["not as fitted: the σ curve was fitted at 8 flips, used at 1"], lines
    assert len(make_method("dmenet", MethodOptions()).describe().split("\n")) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        overridden = make_method("dmenet", MethodOptions(flips=2)).describe().split("\n")
    assert overridden[2].startswith("not as fitted: the σ curve was fitted at 8 flips, used at 2"), overridden


def test_a_model_name_with_another_suffix_never_names_another_file(tiny_model_path, tmp_path):
    """``run.v2`` is ``run.v2.safetensors``, not ``run.safetensors`` (before, ``dmenet_lite.v2`` silently loaded the
    shipped ``dmenet_lite.safetensors``); a folder or another kind of file is named as such."""
    from dmenet.galetto.train import classifier_files
    from dmenet.models.model_io import model_paths

    assert model_paths(tmp_path / "run.v2") == (tmp_path / "run.v2.safetensors", tmp_path / "run.v2.json")
    assert model_paths(tmp_path / "run.json") == (tmp_path / "run.safetensors", tmp_path / "run.json")
    assert classifier_files(tmp_path / "g.v2") == model_paths(tmp_path / "g.v2")
    sibling = tiny_model_path.with_name(tiny_model_path.stem + ".v2")  # tiny.v2 beside tiny.safetensors
    with pytest.raises(FileNotFoundError, match=r"tiny\.v2\.safetensors"):
        inference.load_model(sibling)
    with pytest.raises(FileNotFoundError, match="is a folder"):
        inference.load_model(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="notes.txt: not a model file"):
        inference.load_model(tmp_path / "notes.txt")


def test_odd_arguments_of_the_python_api_are_named(tiny_model, rng):
    """The audit's API cases (docs/reliability.md H5): a 1×1 image works at every flip, an empty one, a model that
    is not one, a tile below two cells, a flips count that is not an int and a max_side that is not a whole number
    are named."""
    from dmenet.models.recipe import BNMode

    one = rng.random((1, 1, 3)).astype(np.float32)
    for flips in (1, 8):
        assert inference.predict_label(one, tiny_model, flips=flips).shape == (1, 1)
    with pytest.raises(ValueError, match="too small"):
        inference.estimate_defocus(np.zeros((0, 40, 3), np.uint8), tiny_model)
    with pytest.raises(TypeError, match="model must be a DMENet"):
        inference.estimate_defocus(one, None)
    image = rng.random((64, 80, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="tile_size must be >= 32"):
        inference.predict_label(image, tiny_model, bn=BNMode.IMAGE, tile_threshold=0, tile_size=16, tile_overlap=0)
    with pytest.raises(ValueError, match="tile_size must be a whole number"):
        inference.predict_label(image, tiny_model, tile_size=None)
    predictor = inference.Predictor(tiny_model)
    for bad in (2.0, True):
        with pytest.raises(ValueError, match="flips"):
            predictor.override(flips=bad)
    for bad in ("32", float("nan"), 0, True):
        with pytest.raises(ValueError, match="max_side"):
            predictor.estimate(image, max_side=bad)


def test_method_sigma_max_is_in_input_px_with_max_side(tiny_model_path, rng):
    from dmenet.methods import MethodOptions, make_method

    image = rng.random((96, 128, 3)).astype(np.float32)
    full = make_method("dmenet", MethodOptions(model=str(tiny_model_path))).estimate(image)
    half = make_method("dmenet", MethodOptions(model=str(tiny_model_path), max_side=64)).estimate(image)
    assert half.sigma_max == pytest.approx(2 * full.sigma_max)  # σ is brought back ×2, so can its largest value
