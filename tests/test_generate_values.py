"""SYNDOF generator numbers against hand computation: focal-length draw, layer-count acceptance bounds, the replay
fallback for pixels of one depth with different σ, the files written per sample (normalised σ, binary CoC > 1,
merged depth), the σ_max limit, the --max-size resize, N solved with px/mm = width/36, the manifest's σ mean,
procedural depth linear in 1/z and source stems."""

from __future__ import annotations

import json

import cv2
import numpy as np

from syndof import generate as gen
from syndof import io as sio
from syndof import layout, units
from syndof.camera import LayeredDepth, layers_from_sigma, sample_camera
from syndof.psf import Kernel
from syndof.sample import SampleResult, generate_sample, shrink_to_max_size, sigma_over_limit
from syndof.scenes import Source


def test_focal_lengths_are_drawn_50_70_85_with_weights_1_4_4():
    """FOCAL_WEIGHTS (0.1, 0.4, 0.4) normalised: 50 mm 1/9, 70 mm 4/9, 85 mm 4/9 of the draws."""
    depth = np.array([[1000.0, 2000.0], [3000.0, 4000.0]])
    rng = np.random.default_rng(0)
    n = 900
    focal = [sample_camera(depth, 2, rng, min_layers=0, max_retries=0)[0].focal_mm for _ in range(n)]
    share = {f: focal.count(f) / n for f in (50.0, 70.0, 85.0)}
    assert sum(share.values()) == 1.0
    assert abs(share[50.0] - 1 / 9) < 0.04  # binomial sd 0.011
    assert abs(share[70.0] - 4 / 9) < 0.06
    assert abs(share[85.0] - 4 / 9) < 0.06


def test_layer_count_bounds_are_inclusive():
    """Two depths always give two layers (focus on one, max_coc on the other): accepted at once by [2, 2]."""
    depth = np.array([[1000.0, 1000.0], [4000.0, 4000.0]])
    cam, layered = sample_camera(depth, 2, np.random.default_rng(1), min_layers=2, max_layers=2, max_retries=5)
    assert layered.n_layers == 2
    assert cam.attempts == 1


def test_layers_from_sigma_fallback_splits_one_depth_by_sigma_and_joins_runs():
    """Depth 3 m holds σ 1 and 2 px; the nearer depths all σ 2 px: far → near the (depth, σ) groups are
    (3 m, 1), (3 m, 2), (2 m, 2), (1 m, 2), whose runs of equal σ are two layers, CoC 4σ + 1 = 5 and 9."""
    depth = np.array([[3000.0, 3000.0], [2000.0, 1000.0]])
    sigma = np.array([[1.0, 2.0], [2.0, 2.0]])
    rec = layers_from_sigma(depth, sigma)
    assert not rec.exact
    assert rec.labels.tolist() == [[0, 1], [1, 1]]
    assert rec.coc.tolist() == [5.0, 9.0]
    assert np.allclose(rec.sigma_map, sigma)


def _hand_result():
    """Three layers far → near: CoC 9 (σ 2), 1.0 (σ 0, exactly the binary threshold) and 0 (in focus)."""
    labels = np.array([[0, 0, 1], [1, 2, 2]])
    layered = LayeredDepth(labels=labels, coc=np.array([9.0, 1.0, 0.0]), depth_mm=np.array([9000.0, 5000.0, 1000.0]))
    image = np.full((2, 3, 3), 0.5, np.float32)
    return SampleResult(image=image, sigma=layered.sigma_map, coc=layered.coc_map,
                            merged_depth=layered.merged_depth, camera=None, layered=layered)


def test_sample_files_hold_hand_computed_values(tmp_path):
    result = _hand_result()
    assert result.merged_depth.tolist() == [[9000.0, 9000.0, 5000.0], [5000.0, 1000.0, 1000.0]]
    layout.write_sample(tmp_path, "s", result, {"stem": "s"})
    paths = layout.sample_paths(tmp_path, "s")
    # binary: 255 where CoC > 1 (CoC exactly 1 is σ 0: sharp)
    binary = cv2.imread(str(paths["blur_map_binary"]), cv2.IMREAD_UNCHANGED)
    assert binary.tolist() == [[255, 255, 0], [0, 0, 0]]
    # normalised σ: min–max of σ (2, 2, 0 / 0, 0, 0) to 0…255
    norm = cv2.imread(str(paths["blur_map_norm"]), cv2.IMREAD_UNCHANGED)
    assert norm.tolist() == [[255, 255, 0], [0, 0, 0]]
    # merged depth, min–max rounded: 9000 → 255, 5000 → round(255·4/8) = 128 (127.5 rounds up), 1000 → 0
    depth8 = cv2.imread(str(paths["depth"]), cv2.IMREAD_UNCHANGED)
    assert depth8[..., 0].tolist() == [[255, 255, 128], [128, 0, 0]]
    assert np.array_equal(sio.read_sigma_map(paths["blur_map"]), result.sigma)


def test_minmax_u8_rounds_to_nearest():
    assert layout._minmax_u8(np.array([0.0, 1.0, 3.0, 4.0])).tolist() == [0, 64, 191, 255]  # 63.75, 191.25


def test_sigma_exactly_at_sigma_max_is_not_over_limit():
    smax = units.max_sigma(29)
    assert smax == 7.0
    assert not sigma_over_limit(np.array([[0.0, 7.0]]), 29)
    assert sigma_over_limit(np.array([[0.0, 7.001]]), 29)


def test_max_size_resize_keeps_depth_values_and_two_px():
    """--max-size: the depth map is resized by nearest neighbour (no new, in-between depths that would make layers
    of their own), and a side never drops below 2 px."""
    rng = np.random.default_rng(0)
    image = rng.random((40, 60, 3)).astype(np.float32)
    depth = np.where(np.arange(60)[None, :] < 30, 1000.0, 5000.0) * np.ones((40, 1))
    img2, d2 = shrink_to_max_size(image, depth, 25)
    assert img2.shape == (17, 25, 3) and d2.shape == (17, 25)
    assert set(np.unique(d2).tolist()) == {1000.0, 5000.0}
    thin = np.zeros((3, 200, 3), np.float32)
    img3, d3 = shrink_to_max_size(thin, np.ones((3, 200)), 50)
    assert img3.shape == (2, 50, 3) and d3.shape == (2, 50)  # 3·0.25 = 0.75 px → 2


def test_f_number_uses_px_per_mm_of_the_image_width():
    """N = f² / (z_f − f) · (px/mm / max_coc) · |z_e − z_f| / z_e with px/mm = W / 36 (W = 96 here, H = 48)."""
    rng = np.random.default_rng(3)
    image = np.full((48, 96, 3), 0.5, np.float32)
    depth = np.tile(np.linspace(1000.0, 6000.0, 96), (48, 1))
    res = generate_sample(image, depth, rng, max_coc=29, kernel=Kernel.GAUSSIAN)
    cam = res.camera
    f, zf = cam.focal_mm, cam.focus_mm
    z = depth + cam.depth_shift_mm
    zmin, zmax = z.min(), z.max()
    ppm = 96 / 36.0
    n_of = {ze: f * f / (zf - f) * (ppm / 29) * abs(ze - zf) / ze for ze in (zmin, zmax)}
    assert min(abs(cam.f_number - n) for n in n_of.values()) < 1e-9 * cam.f_number
    assert float(res.coc.max()) == 29.0


def test_manifest_sigma_mean_is_the_mean_of_the_written_map(tmp_path):
    source = Source("scene", "procedural", size=(40, 48))
    for sub in layout.SUBDIRS + ("meta",):
        (tmp_path / sub).mkdir()
    job = gen.Job(index=0, source=source, out_dir=str(tmp_path), seed=5, max_coc=29, kernel=Kernel.GAUSSIAN,
                  device="cpu", noise=False, jpeg_quality=None, max_size=None)
    r = gen.run_job(job)
    assert r.status is gen.Status.WRITTEN, r.message
    meta = json.loads(layout.sample_paths(tmp_path, r.stem)["meta"].read_text())
    sigma = sio.read_sigma_map(layout.sample_paths(tmp_path, r.stem)["blur_map"]).astype(np.float64)
    assert abs(meta["sigma"]["mean"] - sigma.mean()) < 0.05  # the file rounds σ to 0.1 px
    assert abs(meta["sigma"]["max"] - sigma.max()) < 0.05
    assert abs(meta["sigma"]["min"] - sigma.min()) < 0.05
    assert meta["width"] == 48 and meta["height"] == 40


def test_long_side_fit_and_rounded_size():
    from syndof.resize import scaled_size, shrink_long_side

    img = np.zeros((30, 40, 3), np.float32)
    out, scale = shrink_long_side(img, 40)
    assert scale == 1.0 and out is img  # fits exactly: the image itself
    assert scaled_size((10, 100), 0.37) == (37, 4)  # 3.7 px rounds to 4, not down to 3


def test_procedural_depth_is_linear_in_inverse_depth(monkeypatch):
    """Procedural scenes interpolate 1/z (disparity) between near and far: in the sky rows, where the scene
    parameter grows linearly with the row (noise off, shapes confined to the bottom row), 1/z is linear in the row
    and z itself is not; the sky (top) is the far end."""
    from syndof import scenes

    monkeypatch.setattr(scenes, "_noise", lambda rng, shape, scale: np.zeros(shape))

    def bottom_row(rng, height, width):
        m = np.zeros((height, width), bool)
        m[-1, -3:] = True
        return m

    monkeypatch.setattr(scenes, "_shape_mask", bottom_row)
    image, depth = scenes.procedural_scene(np.random.default_rng(4), 60, 40)
    assert depth[0, 0] == depth.max()  # the top row is the sky: the far end
    assert depth[-1].mean() < depth[0].mean()  # the ground comes nearer towards the bottom
    sky = depth[: int(0.2 * 59), 0]  # the horizon lies at 0.2 … 0.6 of the height
    inv = 1.0 / sky
    assert np.abs(np.diff(inv, 2)).max() < 1e-9 * inv.max()
    assert np.abs(np.diff(sky, 2)).max() > 1e-6 * sky.max()


def test_source_stem_replaces_unsafe_runs_with_one_dash():
    """Sample stems ``{index:06d}_{source}``: the source part keeps letters, digits, '_' and '-', each other run
    becomes one '-' (trimmed at the ends), so existing datasets keep their file names."""
    assert Source("Motor cycle (2014)", "procedural").stem == "Motor-cycle-2014"
    assert Source("a_b-c.png", "procedural").stem == "a_b-c-png"
    assert Source("***", "procedural").stem == "source"
