"""syndof.generate end to end on tiny inputs: layout, determinism (workers, shards), resume, bad inputs."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from syndof import generate as gen
from syndof import io as sio
from syndof.psf import Kernel
from syndof.sample import generate_sample, sample_rng
from syndof.scenes import Source, SourceKind, builtin_sources, procedural_scene

H, W = 48, 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return procedural_scene(np.random.default_rng(seed), H, W)


@pytest.fixture
def rgbd(tmp_path) -> tuple[Path, Path]:
    """3 tiny RGB-D pairs: images/{a,b,c}.png + depths/{a,b,c}.npy (mm)."""
    images, depths = tmp_path / "images", tmp_path / "depths"
    images.mkdir()
    depths.mkdir()
    for i, stem in enumerate("abc"):
        img, depth = _scene(i)
        sio.write_image(images / f"{stem}.png", img)
        np.save(depths / f"{stem}.npy", depth)
    return images, depths


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(out, **kw) -> gen.Summary:
    kw.setdefault("progress", False)
    return gen.generate(out, **kw)


# ------------------------------------------------------------------------------------------------------- layout
def test_layout_dtypes_and_manifest(rgbd, tmp_path):
    images, depths = rgbd
    out = tmp_path / "out"
    s = _run(out, images=images, depths=depths, count=4, seed=1)
    assert (s.written, s.skipped, s.failed) == (4, 0, 0)
    stems = ["000000_a", "000001_b", "000002_c", "000003_a"]
    assert sorted(p.stem for p in (out / "image").iterdir()) == stems
    meta_lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["stem"] for line in meta_lines] == stems
    assert json.loads((out / "dataset.json").read_text())["max_coc"] == 29
    for line in meta_lines:
        meta = json.loads(line)
        stem = meta["stem"]
        img = cv2.imread(str(out / "image" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert img.dtype == np.uint8 and img.shape == (H, W, 3)
        raw = cv2.imread(str(out / "blur_map" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint16 and raw.shape == (H, W, 3)
        assert (raw[..., 0] == raw[..., 1]).all() and (raw[..., 1] == raw[..., 2]).all()
        assert raw.max() <= 70
        sigma = sio.read_sigma_map(out / "blur_map" / f"{stem}.png")
        assert sigma.max() == pytest.approx(meta["sigma"]["max"], abs=0.051)
        assert sigma.min() == pytest.approx(meta["sigma"]["min"], abs=0.051)
        binary = cv2.imread(str(out / "blur_map_binary" / f"{stem}_binary.png"), cv2.IMREAD_UNCHANGED)
        assert binary.dtype == np.uint8 and set(np.unique(binary)) <= {0, 255}
        # binary = CoC > 1 ⇔ σ > 0; σ < 0.05 px (CoC 1.1) is stored as 0 in the 16-bit map
        assert ((raw[..., 0] > 0) <= (binary > 0)).all()
        norm = cv2.imread(str(out / "blur_map_norm" / f"{stem}_norm.png"), cv2.IMREAD_UNCHANGED)
        assert norm.dtype == np.uint8 and norm.max() == 255 and norm.min() == 0
        depth = cv2.imread(str(out / "depth" / f"{stem}_depth.png"), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint8 and depth.shape == (H, W, 3)
        assert (out / "meta" / f"{stem}.json").is_file()
        cam = meta["camera"]
        assert cam["focal_mm"] in (50.0, 70.0, 85.0) and cam["f_number"] > 0 and cam["max_coc"] == 29
        assert meta["seed"] == 1 and meta["seed_spawn_key"] == [meta["index"]]
        assert meta["source"].endswith(f"{stem[-1]}.png + {depths / stem[-1]}.npy")
    assert not list(out.rglob("*.tmp"))


def test_generate_sample_function():
    img, depth = _scene(5)
    r1 = generate_sample(img, depth, np.random.default_rng(0))
    r2 = generate_sample(img, depth, np.random.default_rng(0))
    assert r1.image.shape == (H, W, 3) and r1.image.dtype == np.float32
    assert r1.sigma.shape == (H, W) and r1.sigma.dtype == np.float32
    assert 0.0 <= r1.sigma.min() and r1.sigma.max() <= 7.0
    assert not r1.over_limit(29)
    np.testing.assert_array_equal(r1.image, r2.image)
    np.testing.assert_array_equal(r1.sigma, r2.sigma)
    assert set(r1.timings) >= {"camera", "render"}
    # augmentations change the image only
    r3 = generate_sample(img, depth, np.random.default_rng(0), noise=True, jpeg_quality=70)
    np.testing.assert_array_equal(r3.sigma, r1.sigma)
    assert not np.array_equal(r3.image, r1.image)
    assert r3.augment["jpeg_quality"] == 70 and r3.augment["noise"]["gain"] > 0


# ------------------------------------------------------------------------------------------------- determinism
def test_same_seed_byte_identical_and_seed_matters(rgbd, tmp_path):
    images, depths = rgbd
    _run(tmp_path / "o1", images=images, depths=depths, count=3, seed=7)
    _run(tmp_path / "o2", images=images, depths=depths, count=3, seed=7)
    _run(tmp_path / "o3", images=images, depths=depths, count=3, seed=8)
    f1, f2, f3 = _files(tmp_path / "o1"), _files(tmp_path / "o2"), _files(tmp_path / "o3")
    assert f1 == f2
    assert f1["image/000000_a.png"] != f3["image/000000_a.png"]


@pytest.mark.slow
def test_workers_and_shards_give_identical_files(rgbd, tmp_path):
    images, depths = rgbd
    kw = dict(images=images, depths=depths, count=4, seed=3)
    _run(tmp_path / "serial", **kw)
    s = _run(tmp_path / "parallel", workers=2, **kw)
    assert s.written == 4
    _run(tmp_path / "sharded", shard=(1, 2), **kw)
    assert sorted(p.name for p in (tmp_path / "sharded" / "image").iterdir()) == ["000001_b.png", "000003_a.png"]
    _run(tmp_path / "sharded", shard=(0, 2), **kw)
    serial = _files(tmp_path / "serial")
    assert len(serial) == 4 * 6 + 2
    assert _files(tmp_path / "parallel") == serial
    assert _files(tmp_path / "sharded") == serial


# ------------------------------------------------------------------------------------------------------- resume
def test_resume_regenerates_only_missing_samples(rgbd, tmp_path):
    images, depths = rgbd
    out = tmp_path / "out"
    kw = dict(images=images, depths=depths, count=3, seed=2)
    _run(out, **kw)
    before = _files(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    # sample 1 lost one output file; sample 2 was "killed" before its metadata, leaving a stray temp file
    (out / "blur_map" / "000001_b.png").unlink()
    (out / "meta" / "000002_c.json").unlink()
    stray = out / "image" / ".000002_c.x1y2z3.png.tmp"
    stray.write_bytes(b"half-written")
    s = _run(out, **kw)
    assert (s.written, s.done, s.failed) == (2, 1, 0)
    assert s.line() == "2 written, 1 skipped, 0 failed"
    assert not stray.exists() and not list(out.rglob("*.tmp"))
    assert _files(out) == before  # regenerated byte-identically, manifest rebuilt the same
    for p, t in mtimes.items():
        if "000000_a" in p.name:
            assert p.stat().st_mtime_ns == t, f"{p} was rewritten"
    # a third run has nothing to do
    s = _run(out, **kw)
    assert (s.written, s.done) == (0, 3)



def test_merge_tolerance_is_recorded_refuses_mixing_and_keeps_gt_consistent(rgbd, tmp_path, capsys):
    from syndof.blur import render_layers
    from syndof.camera import sample_camera

    images, depths = rgbd
    exact, merged = tmp_path / "exact", tmp_path / "merged"
    kw = dict(images=images, depths=depths, count=2, seed=5)
    _run(exact, **kw)
    assert "merge_tolerance" not in json.loads((exact / "dataset.json").read_text())  # exact files as before
    _run(merged, merge_tolerance=0.25, **kw)
    assert json.loads((merged / "dataset.json").read_text())["merge_tolerance"] == 0.25
    meta_e = json.loads((exact / "meta" / "000000_a.json").read_text())
    meta_m = json.loads((merged / "meta" / "000000_a.json").read_text())
    assert meta_m["merge_tolerance"] == 0.25 and meta_m["n_layers"] < meta_e["n_layers"]
    # the written σ map is the σ the image was rendered with: re-rendering with it reproduces the image
    img, depth = _scene(0)
    rng = sample_rng(5, 0)
    _, layered = sample_camera(depth, W, rng, max_coc=29)
    lay = layered.merged(0.25)
    sigma = sio.read_sigma_map(merged / "blur_map" / "000000_a.png")
    np.testing.assert_allclose(sigma, lay.sigma_map, atol=0.05)
    import torch

    out = render_layers(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), torch.from_numpy(lay.labels),
                        torch.from_numpy(lay.coc))
    written = sio.read_image(merged / "image" / "000000_a.png")
    assert np.abs(np.moveaxis(out.numpy(), 0, -1) - written).max() <= 1 / 255 + 1e-6
    # mixing settings in one folder is refused, in both directions
    with pytest.raises(ValueError, match="merge_tolerance"):
        _run(exact, merge_tolerance=0.25, **kw)
    with pytest.raises(ValueError, match="merge_tolerance"):
        _run(merged, **kw)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser (syndof.cli.add_merge_tolerance)
        gen.main(["--images", str(images), "--out", str(tmp_path / "bad"), "--merge-tolerance", "-1",
                  "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--merge-tolerance" in err and not (tmp_path / "bad").exists()

# --------------------------------------------------------------------------------------------------- bad inputs
def test_bad_inputs_are_skipped_and_reported(rgbd, tmp_path, caplog):
    images, depths = rgbd
    # truncated JPEG
    ok, buf = cv2.imencode(".jpg", (_scene(9)[0] * 255).astype(np.uint8))
    (images / "trunc.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    np.save(depths / "trunc.npy", _scene(9)[1])
    # size mismatch
    sio.write_image(images / "mismatch.png", _scene(10)[0])
    np.save(depths / "mismatch.npy", np.ones((H // 2, W // 2)) * 1000 + np.arange(W // 2))
    # constant depth
    sio.write_image(images / "flat.png", _scene(11)[0])
    np.save(depths / "flat.npy", np.full((H, W), 2000.0))
    # fine inputs in unusual formats: 16-bit grayscale, RGBA
    img, depth = _scene(12)
    cv2.imwrite(str(images / "gray16.png"), (img.mean(axis=2) * 65535).astype(np.uint16))
    np.save(depths / "gray16.npy", depth)
    rgba = np.concatenate([(img * 255).astype(np.uint8), np.full((H, W, 1), 128, np.uint8)], axis=2)
    cv2.imwrite(str(images / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    np.save(depths / "rgba.npy", depth)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="syndof.generate"):
        s = _run(out, images=images, depths=depths, seed=0)
    assert (s.written, s.failed) == (5, 3)  # a, b, c, gray16, rgba | flat, mismatch, trunc
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 3
    for name in ("trunc.jpg", "mismatch", "flat"):
        assert sum(name in m for m in messages) == 1, (name, messages)
    written = sorted(p.stem for p in (out / "image").iterdir())
    assert [w.split("_", 1)[1] for w in written] == ["a", "b", "c", "gray16", "rgba"]
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 5


def test_cli_summary_and_exit_status(rgbd, tmp_path, capsys):
    images, depths = rgbd
    out = tmp_path / "out"
    rc = gen.main(["--images", str(images), "--depths", str(depths), "--out", str(out), "--count", "2",
                   "--no-progress"])
    assert rc == 0
    assert "2 written, 0 skipped, 0 failed" in capsys.readouterr().out
    # everything bad → non-zero exit
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (bad / "y.png").write_bytes(b"")
    rc = gen.main(["--images", str(bad), "--out", str(tmp_path / "out2"), "--no-progress"])
    assert rc == 1
    assert "0 written, 0 skipped, 2 failed" in capsys.readouterr().out
    # bad arguments
    with pytest.raises(SystemExit):
        gen.main(["--out", str(out), "--shard", "3/2"])


def test_every_job_status_is_counted(tmp_path, monkeypatch):
    statuses = list(gen.Status)
    assert [m.value for m in statuses] == ["written", "done", "over_limit", "failed"]
    monkeypatch.setattr(gen, "run_job", lambda job: gen.JobResult(job.index, f"s{job.index}", statuses[job.index],
                                                                   f"job {job.index}", {"render": 1.0}))
    sources = [Source("p", "procedural", size=(H, W))]
    s = _run(tmp_path / "out", sources=sources, count=len(statuses))
    assert (s.written, s.done, s.over_limit, s.failed) == (1, 1, 1, 1)
    assert s.line() == "1 written, 2 skipped, 1 failed" and s.failures == ["job 3"]
    assert s.timings["render"] == 4.0


def test_kernel_is_parsed_once_and_recorded_as_its_name(rgbd, tmp_path):
    images, depths = rgbd
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"^--kernel must be one of \('gaussian', 'disc', 'polygon'\), got 'star'$"):
        _run(out, images=images, depths=depths, count=1, kernel="star")
    assert not out.exists()
    assert _run(out, images=images, depths=depths, count=1, kernel=Kernel.DISC).written == 1
    assert json.loads((out / "dataset.json").read_text())["kernel"] == "disc"
    assert json.loads((out / "manifest.jsonl").read_text())["kernel"] == "disc"
    s = _run(out, images=images, depths=depths, count=1, kernel="disc")  # the string spelling completes it
    assert (s.written, s.done) == (0, 1)


def test_source_kinds_are_parsed_and_all_handled():
    assert [k.value for k in SourceKind] == ["file", "motorcycle", "skimage", "procedural"]
    for kind in SourceKind:
        src = Source("astronaut", kind.value, image_path="x.png", size=(H, W))
        assert src.kind is kind and src == Source("astronaut", kind, image_path="x.png", size=(H, W))
        assert pickle.loads(pickle.dumps(src)).kind is kind  # sent to spawned workers
        assert src.describe() and isinstance(src.has_depth, bool)
    assert Source("p", "procedural", size=(H, W)).load(np.random.default_rng(0))[0].shape == (H, W, 3)
    with pytest.raises(ValueError, match=r"source kind must be one of \('file', 'motorcycle', 'skimage', "
                                         r"'procedural'\), got 'photo'"):
        Source("x", "photo")


def test_random_depth_for_plain_photos(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    for i in range(2):
        sio.write_image(images / f"p{i}.jpg", _scene(20 + i)[0])
    out = tmp_path / "out"
    s = _run(out, images=images, count=2, seed=0)
    assert s.written == 2
    meta = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(m["n_layers"] > 0 and m["sigma"]["max"] <= 7.0 for m in meta)


def test_missing_depth_file_is_reported(rgbd, tmp_path, caplog):
    images, depths = rgbd
    (depths / "b.npy").unlink()
    with caplog.at_level(logging.WARNING, logger="syndof.generate"):
        s = _run(tmp_path / "out", images=images, depths=depths)
    assert (s.written, s.failed) == (2, 1)
    assert any("b.png" in r.getMessage() and "no depth" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------------ built-in data
def test_builtin_sources_load():
    sources = builtin_sources()
    kinds = [s.kind for s in sources]
    assert kinds[0] == "motorcycle" and "skimage" in kinds and "procedural" in kinds
    image, depth = sources[0].load(np.random.default_rng(0))
    assert image.shape == (500, 741, 3) and image.dtype == np.float32
    assert depth.shape == (500, 741) and np.isfinite(depth).all()
    # metric depth of the Motorcycle scene: roughly 1.5–5.5 m from the camera
    assert 1000 < np.percentile(depth, 1) and np.percentile(depth, 99) < 6000
    photo = next(s for s in sources if s.kind is SourceKind.SKIMAGE)
    img, d = photo.load(np.random.default_rng(0))
    assert img.shape[:2] == d.shape and img.dtype == np.float32


def test_builtin_generate_small(tmp_path):
    s = _run(tmp_path / "out", count=3, seed=0, max_size=64)
    assert s.written == 3 and s.failed == 0
    names = sorted(p.name for p in (tmp_path / "out" / "image").iterdir())
    assert names[0].startswith("000000_middlebury-motorcycle")


# -------------------------------------------------------------------------------------------------- augmentations
def test_augmentations_seeded_and_bounded():
    from syndof.augment import add_sensor_noise, jpeg_reencode

    img = _scene(30)[0]
    n1 = add_sensor_noise(img, np.random.default_rng(0))
    n2 = add_sensor_noise(img, np.random.default_rng(0))
    np.testing.assert_array_equal(n1, n2)
    assert n1.dtype == np.float32 and n1.shape == img.shape and 0 <= n1.min() and n1.max() <= 1
    assert not np.array_equal(n1, add_sensor_noise(img, np.random.default_rng(1)))
    # noise level follows the parameters: shot noise grows with the gain
    low = add_sensor_noise(img, np.random.default_rng(0), gain=1e-4, read_std=0.0)
    high = add_sensor_noise(img, np.random.default_rng(0), gain=1e-2, read_std=0.0)
    assert np.abs(low - img).mean() < np.abs(high - img).mean()
    j = jpeg_reencode(img, 95)
    assert j.shape == img.shape and j.dtype == np.float32 and np.abs(j - img).mean() < 0.05
    np.testing.assert_array_equal(j, jpeg_reencode(img, 95))
    assert np.abs(jpeg_reencode(img, 10) - img).mean() > np.abs(j - img).mean()
    with pytest.raises(ValueError, match=r"JPEG quality must be in 1\.\.100, got 0"):
        jpeg_reencode(img, 0)


def test_cli_noise_and_jpeg_keep_sigma_maps(rgbd, tmp_path):
    images, depths = rgbd
    base = dict(images=images, depths=depths, count=1, seed=4)
    _run(tmp_path / "plain", **base)
    _run(tmp_path / "aug", noise=True, jpeg_quality=60, **base)
    plain, aug = _files(tmp_path / "plain"), _files(tmp_path / "aug")
    assert plain["blur_map/000000_a.png"] == aug["blur_map/000000_a.png"]
    assert plain["image/000000_a.png"] != aug["image/000000_a.png"]
    meta = json.loads(aug["meta/000000_a.json"])
    assert meta["augment"]["jpeg_quality"] == 60 and meta["augment"]["noise"]["read_std"] > 0


def test_synthesis_demo_contact_sheet(tmp_path):
    from syndof.demo import run_synthesis_demo

    sheet = run_synthesis_demo(tmp_path / "demo", count=2, max_size=64, progress=False)
    assert sheet == tmp_path / "demo" / "contact_sheet.png"
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[0] > 2 * 192 and img.shape[1] > 3 * 192
    assert len((tmp_path / "demo" / "syndof" / "manifest.jsonl").read_text().splitlines()) == 2


def test_cached_builtin_photos_are_read_only_and_sources_hand_out_copies():
    from syndof.scenes import _skimage_photo

    cached = _skimage_photo("coffee")
    before = float(cached[0, 0, 0])
    with pytest.raises(ValueError, match="read-only"):
        cached[0, 0, 0] = before + 0.5
    image, _ = Source("coffee", SourceKind.SKIMAGE).load(np.random.default_rng(0))
    image[0, 0, 0] = before + 0.5  # the caller's own copy
    assert float(_skimage_photo("coffee")[0, 0, 0]) == before


def test_a_sample_over_sigma_max_is_skipped_without_rendering(monkeypatch):
    """A camera whose layers exceed max_coc gives an over-limit sample (skipped, as the original does) before the
    renderer, which refuses such CoCs, is called."""
    import dataclasses

    from syndof import camera as camera_module
    from syndof.sample import generate_sample

    rng = np.random.default_rng(3)
    image = rng.random((24, 32, 3)).astype(np.float32)
    depth = np.linspace(800.0, 5000.0, 24 * 32).reshape(24, 32)
    real = camera_module.sample_camera

    def too_wide(*args, **kwargs):
        cam, layered = real(*args, **kwargs)
        return cam, dataclasses.replace(layered, coc=np.asarray(layered.coc) * 3 + 30)

    monkeypatch.setattr(camera_module, "sample_camera", too_wide)
    result = generate_sample(image, depth, np.random.default_rng(0), max_coc=29)
    assert result.over_limit(29) and result.image is image and "render" not in result.timings
