"""SYNDOF camera model: thin-lens CoC, N solution, seeding, layer merging, replay layer reconstruction."""

from __future__ import annotations


import numpy as np
import pytest

from syndof import units
from syndof.camera import (CameraParams, LayeredDepth, focus_weights, layers_from_sigma, sample_camera,
                           thin_lens_coc)


def rich_depth(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """Smooth ground plane 2–40 m with a few near boxes; every pixel a distinct depth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    depth = 40000.0 / (1.0 + 19.0 * yy / (h - 1)) + 0.37 * xx
    depth[30:70, 40:90] = 1500.0 + 2.0 * xx[30:70, 40:90] + yy[30:70, 40:90]
    depth[80:110, 100:150] = 800.0 + 1.5 * yy[80:110, 100:150]
    return depth + rng.random((h, w)) * 1e-3


def test_thin_lens_coc_hand_values():
    f, n, zf, px = 50.0, 2.0, 2000.0, 1024 / 36
    for z in (1000.0, 2000.0, 4000.0, 1e6):
        # closed form without ε: c = f²/(N (z_f − f)) · |z − z_f| / z · px_per_mm
        hand = f * f / (n * (zf - f)) * abs(z - zf) / z * px
        assert thin_lens_coc(z, zf, f, n, px) == pytest.approx(hand, rel=1e-6, abs=1e-9)
    # one fully by hand: z = 4000 → 2500/(2·1950) · 0.5 · 28.444… = 9.116809…
    assert float(thin_lens_coc(4000.0, zf, f, n, px)) == pytest.approx(9.116809, rel=1e-6)


def test_round_half_away_matches_matlab_int64():
    assert units.round_half_away(np.array([0.25, 0.35, -0.25, 2.45]) * 10) .tolist() == [3.0, 4.0, -3.0, 25.0]


def test_focus_weights_are_near_biased():
    w = focus_weights(50, np.random.default_rng(0))
    assert w.shape == (50,) and w.sum() == pytest.approx(1.0)
    assert w[-10:].sum() > 3 * w[:10].sum()  # index 0 = farthest, weights grow toward the near end


def test_sample_camera_seeded_and_extreme_reaches_max_coc():
    depth = rich_depth()
    cam1, lay1 = sample_camera(depth, depth.shape[1], np.random.default_rng(7))
    cam2, lay2 = sample_camera(depth, depth.shape[1], np.random.default_rng(7))
    assert cam1 == cam2 and np.array_equal(lay1.labels, lay2.labels) and np.array_equal(lay1.coc, lay2.coc)
    cam3, _ = sample_camera(depth, depth.shape[1], np.random.default_rng(8))
    assert cam3 != cam1
    assert isinstance(cam1, CameraParams) and cam1.focal_mm in (50.0, 70.0, 85.0)
    # N solved so the extreme depth has CoC max_coc exactly (after the 0.1 rounding)
    assert lay1.coc.max() == 29.0
    px = depth.shape[1] / 36.0
    z = depth + cam1.depth_shift_mm
    c_ext = max(thin_lens_coc(z.min(), cam1.focus_mm, cam1.focal_mm, cam1.f_number, px),
                thin_lens_coc(z.max(), cam1.focus_mm, cam1.focal_mm, cam1.f_number, px))
    assert c_ext == pytest.approx(29.0, rel=1e-6)
    # σ map bounded by (max_coc − 1)/4
    assert lay1.sigma_map.max() == pytest.approx(7.0)


def test_layers_merge_runs_and_count_in_range():
    depth = rich_depth()
    for seed in range(3):
        cam, lay = sample_camera(depth, depth.shape[1], np.random.default_rng(seed))
        assert 200 <= lay.n_layers <= 350, (seed, lay.n_layers, cam)
        assert cam.n_layers == lay.n_layers
        assert np.all(lay.coc[1:] != lay.coc[:-1])  # consecutive equal CoCs merged
        assert np.all(np.diff(lay.depth_mm) < 0)  # far → near
        i_f = int(np.flatnonzero(lay.coc == 0)[0])
        assert np.all(np.diff(lay.coc[: i_f + 1]) < 0)  # far side: CoC falls to 0 at the focus
        near = lay.coc[i_f:]
        assert np.all(np.diff(near[near > 0]) > 0)
        assert cam.focus_percentile == pytest.approx(1 - (i_f + 1) / lay.n_layers)
        # every pixel's layer is the run of its own depth: ordering by depth is monotone in the label
        order = np.argsort(-depth.ravel(), kind="stable")
        assert np.all(np.diff(lay.labels.ravel()[order]) >= 0)


def test_equal_coc_on_both_sides_stay_separate():
    depth = rich_depth()
    _, lay = sample_camera(depth, depth.shape[1], np.random.default_rng(1))
    i_f = int(np.flatnonzero(lay.coc == 0)[0])
    far, near = set(lay.coc[:i_f].tolist()), set(lay.coc[i_f + 1 :].tolist())
    shared = far & near
    assert shared  # some CoC values occur on both sides, in different layers
    c = sorted(shared)[-1]
    assert np.count_nonzero(lay.coc == c) == 2


def test_five_f_shift_applied_for_near_depths():
    depth = rich_depth() / 20.0  # 40 mm … 2 m: nearer than 5f
    cam, lay = sample_camera(depth, depth.shape[1], np.random.default_rng(3), min_layers=1, max_layers=10**6)
    assert cam.depth_shift_mm == pytest.approx(5 * cam.focal_mm - depth.min())
    assert cam.attempts == 1


def test_replayed_layers_report_the_shifted_depths():
    """layers_from_sigma's depth_mm is in the depths the CoCs were computed on (after the 5f shift), as
    sample_camera's: the shift was once subtracted a second time (negative depths)."""
    from syndof.camera import layers_from_sigma

    d = np.linspace(100, 400, 3000).reshape(50, 60)
    cam, lay = sample_camera(d, 60, np.random.default_rng(0), min_layers=0, max_layers=10**6)
    assert cam.depth_shift_mm > 0
    rep = layers_from_sigma(d, lay.sigma_map, focal_mm=cam.focal_mm)
    assert rep.exact and rep.camera.depth_shift_mm == pytest.approx(cam.depth_shift_mm)
    assert rep.depth_mm.min() == pytest.approx(lay.depth_mm.min()) and rep.depth_mm.min() > d.min()
    assert rep.depth_mm.max() == pytest.approx(d.max() + cam.depth_shift_mm) == lay.depth_mm.max()


def test_retries_use_last_attempt():
    depth = rich_depth()
    cam, lay = sample_camera(depth, depth.shape[1], np.random.default_rng(0), min_layers=10**6, max_layers=10**7,
                             max_retries=3)
    assert cam.attempts == 4 and lay.n_layers < 10**6


def test_constant_depth_rejected():
    with pytest.raises(ValueError, match="depth map is constant"):
        sample_camera(np.full((10, 10), 1000.0), 10, np.random.default_rng(0))


def test_layers_from_sigma_round_trip_via_uint16_map():
    depth = rich_depth()
    _, lay = sample_camera(depth, depth.shape[1], np.random.default_rng(5))
    stored = units.syndof_to_sigma(lay.sigma10)  # the original's uint16(10σ)
    assert np.array_equal(lay.sigma10, units.sigma_to_syndof(stored))
    rec = layers_from_sigma(depth, stored)
    assert rec.exact
    assert np.array_equal(rec.labels, lay.labels) and np.array_equal(rec.coc, lay.coc)
    # a map written from the float32 σ map (this project's generator) rounds some ties the other way: still exact
    stored32 = units.syndof_to_sigma(units.sigma_to_syndof(lay.sigma_map))
    rec32 = layers_from_sigma(depth, stored32)
    assert rec32.exact and np.array_equal(rec32.labels, lay.labels)


def test_layers_from_sigma_fallback_runs():
    depth = np.tile(np.arange(10, 0, -1, dtype=np.float64) * 1000.0, (4, 1))  # column j: depth 10 m … 1 m
    sigma = np.tile(np.array([2.0, 2.0, 1.0, 0.0, 0.0, 0.5, 0.5, 0.5, 3.0, 3.0]), (4, 1))
    rec = layers_from_sigma(depth, sigma)
    assert not rec.exact
    assert rec.labels[0].tolist() == [0, 0, 1, 2, 2, 3, 3, 3, 4, 4]
    assert rec.coc.tolist() == [9.0, 5.0, 0.0, 3.0, 13.0]
    assert np.allclose(rec.sigma_map, sigma)
    assert isinstance(rec, LayeredDepth)


@pytest.mark.shared
@pytest.mark.parametrize("stem,n_layers", [("MPI_market_2_frame_0001_f_50_fp_0_33_A_0_2", 301),
                                           ("MPI_market_2_frame_0001_f_70_fp_0_54_A_0_49", 246)])
def test_layers_from_sigma_matches_reference_names(shared, stem, n_layers):
    from syndof import io
    from syndof.depth_io import read_depth
    from syndof.render import focal_hint

    depth = read_depth(shared("data", "syndof_reference", "input", "sintel_market_2_frame_0001.dpt"))
    path = shared("data", "syndof_reference", "output", "blur_map", stem + ".png")
    rec = layers_from_sigma(depth, io.read_sigma_map(path), focal_mm=focal_hint(path))
    assert rec.exact and rec.n_layers == n_layers and 200 <= n_layers <= 350
    f, fp, a = stem.split("_f_")[1].split("_fp_")[0], stem.split("_fp_")[1].split("_A_")[0], stem.split("_A_")[1]
    assert rec.camera.focal_mm == float(f)
    # names print fp and N with 2 significant digits (MATLAB num2str(x, 2))
    assert f"{rec.camera.focus_percentile:.2g}".replace(".", "_") == fp
    assert f"{rec.camera.f_number:.2g}".replace(".", "_") == a


@pytest.mark.parametrize("kwargs, words", [
    ({"width_px": 0}, "width_px"), ({"width_px": -5}, "width_px"), ({"rng": None}, "rng"), ({"rng": 0}, "rng"),
    ({"max_coc": 0}, "max_coc"), ({"max_coc": -3}, "max_coc"), ({"max_coc": float("nan")}, "max_coc"),
    ({"max_retries": -1}, "max_retries"), ({"min_layers": 300, "max_layers": 200}, "min_layers"),
])
def test_sample_camera_names_a_bad_argument(kwargs, words):
    """Audit #29: ZeroDivisionError, IndexError, AttributeError or 21 silent retries."""
    depth = rich_depth(32, 40)
    args = {"width_px": depth.shape[1], "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ValueError, match=words):
        sample_camera(depth, **args)


def test_layers_from_sigma_refuses_bad_sigma_and_arguments():
    depth = rich_depth(32, 40)
    _, lay = sample_camera(depth, depth.shape[1], np.random.default_rng(0), min_layers=1, max_layers=10**6)
    sigma = lay.sigma_map
    for bad in (np.where(depth > 5000, np.nan, sigma), np.where(depth > 5000, np.inf, sigma), -sigma - 0.1):
        with pytest.raises(ValueError, match="sigma_px"):
            layers_from_sigma(depth, bad)
    for kwargs, words in (({"width_px": 0}, "width_px"), ({"max_coc": 0}, "max_coc"), ({"focal_mm": 0}, "focal_mm"),
                          ({"focal_mm": float("nan")}, "focal_mm")):
        with pytest.raises(ValueError, match=words):
            layers_from_sigma(depth, sigma, **kwargs)
    with pytest.raises(ValueError, match="empty"):
        sample_camera(np.zeros((0, 0)), 1, np.random.default_rng(0))


def test_s1_a_depth_range_of_parts_in_ten_thousand_focused_at_its_near_end_gets_a_finite_camera():
    """§19 S1: both extremes round to CoC 0 at N = 1 and the focus is the near one: N was 0 (ZeroDivisionError from
    the batch). The far extreme now reaches max_coc; depths equal once shifted to 5f are refused by name."""
    x = np.arange(64)[None, :].repeat(8, axis=0)
    depth = np.where(x > 30, 10000.0, 10000.001)  # 0.1 µm per mm: CoC 89·1e-7 px at N = 1, rounds to 0
    for seed in range(4):
        cam, lay = sample_camera(depth, 64, np.random.default_rng(seed), max_retries=0)
        assert np.isfinite(cam.f_number) and cam.f_number > 0
        assert np.all(np.isfinite(lay.coc)) and lay.coc.min() == 0.0
        assert abs(lay.coc.max() - units.DEFAULT_MAX_COC) <= 0.05  # the far extreme, by hand: c = 29 at the solved N
        assert lay.sigma_map[depth == cam.focus_mm].max() == 0.0  # the focus plane is sharp
        back = layers_from_sigma(depth, lay.sigma10.astype(np.float64) / 10.0)
        assert back.exact and np.array_equal(back.labels, lay.labels)
    tiny = 1e-300 * (1.0 + x)  # one value once shifted to 5f = 250…425 mm
    with pytest.raises(ValueError, match="one value in float64: no defocus"):
        sample_camera(tiny, 64, np.random.default_rng(0))
