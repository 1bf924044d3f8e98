"""Q^AB/F (Xydeas & Petrović 2000, :mod:`dmenet.galetto.fusion_quality`): limits, symmetry, a hand-computed value,
a straightforward per-pixel loop as an independent reference, the fusion ranking it must give, bad input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dmenet.galetto import fusion_quality as fq
from dmenet.galetto.fusion_quality import Q_MAX, qabf, qabf_sources


def _texture(h=48, w=64, seed=0):
    """A smooth-ish random texture in [0, 1] (random values blurred a little, then stretched)."""
    x = cv2.GaussianBlur(np.random.default_rng(seed).random((h, w)), (0, 0), 1.0)
    return (x - x.min()) / (x.max() - x.min())


# ---------------------------------------------------------------------------- an independent loop implementation
def _loop_qabf(a, b, f, border):
    """Q^AB/F written out pixel by pixel, in the reference MATLAB's order (filter2 correlation, its 1e-5 guards)."""
    kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    ky = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    h, w = f.shape

    def pixel(x, i, j):
        if 0 <= i < h and 0 <= j < w:
            return x[i][j]
        if border == "zero":
            return 0.0
        i = -i if i < 0 else (2 * (h - 1) - i if i >= h else i)  # reflect without repeating the edge pixel
        j = -j if j < 0 else (2 * (w - 1) - j if j >= w else j)
        return x[i][j]

    def edges(x):
        g, al = [[0.0] * w for _ in range(h)], [[0.0] * w for _ in range(h)]
        for i in range(h):
            for j in range(w):
                sx = sum(kx[u][v] * 255.0 * pixel(x, i + u - 1, j + v - 1) for u in range(3) for v in range(3))
                sy = sum(ky[u][v] * 255.0 * pixel(x, i + u - 1, j + v - 1) for u in range(3) for v in range(3))
                g[i][j] = math.sqrt(sx * sx + sy * sy) or 1e-5
                al[i][j] = math.atan(sy / (sx if sx != 0 else 1e-5))
        return g, al

    gf, af = edges(f)
    num = den = 0.0
    for src in (a, b):
        gs, as_ = edges(src)
        for i in range(h):
            for j in range(w):
                rel = gf[i][j] / gs[i][j] if gs[i][j] > gf[i][j] else gs[i][j] / gf[i][j]
                ori = 1 - abs(as_[i][j] - af[i][j]) / (math.pi / 2)
                q = 0.9994 / (1 + math.exp(-15 * (rel - 0.5))) * 0.9879 / (1 + math.exp(-22 * (ori - 0.8)))
                num += q * gs[i][j]
                den += gs[i][j]
    return num / den


@pytest.mark.parametrize("border", ["zero", "reflect"])
def test_matches_a_per_pixel_loop_on_tiny_arrays(border):
    rng = np.random.default_rng(3)
    a, b = rng.random((5, 5)), rng.random((5, 5))
    # mirrored borders make both Sobel responses vanish at the corners; there rounding decides between g = 0 (the
    # 1e-5 guard) and g ≈ 1e-14, a difference of ~1e-9 in Q. Zero padding has no such pixels.
    tol = 1e-12 if border == "zero" else 1e-8
    for f in ((a + b) / 2, np.maximum(a, b), a, rng.random((5, 5))):
        assert qabf(a, b, f, border) == pytest.approx(_loop_qabf(a, b, f, border), abs=tol)
    step = np.tile([0.0, 0.0, 1.0, 1.0, 1.0], (5, 1))  # flat pixels in every image: the 1e-5 guards matter
    assert qabf(step, np.zeros((5, 5)), 0.5 * step, border) == pytest.approx(
        _loop_qabf(step, np.zeros((5, 5)), 0.5 * step, border), abs=1e-12)


def test_hand_computed_value_of_a_halved_step_edge():
    # A: a vertical step in a 5x5 image; B flat 0; F = A / 2. With mirrored borders the Sobel x response is
    # 4 * 255 on columns 1 and 2 and zero elsewhere (no y response), so on those 10 pixels G^AF = 1/2 and A^AF = 1;
    # every other weight is the 1e-5 guard. Q ≈ Qg(1/2) Qα(1) = (0.9994 / 2) * 0.9879 / (1 + e^-4.4) ≈ 0.48767.
    step = np.tile([0.0, 0.0, 1.0, 1.0, 1.0], (5, 1))
    g, alpha = fq.edge_maps(step, "reflect")
    assert np.allclose(g[:, 1:3], 1020.0) and np.all(g[:, [0, 3, 4]] == 0) and np.all(alpha == 0)
    expected = 0.9994 / 2 * 0.9879 / (1 + math.exp(-4.4))
    assert qabf(step, np.zeros((5, 5)), step / 2, "reflect") == pytest.approx(expected, abs=1e-7)
    assert expected == pytest.approx(0.48767, abs=1e-5)


# ------------------------------------------------------------------------------------------------------ limits
def test_fused_equal_to_one_source_with_the_other_flat_reaches_the_ceiling():
    a = _texture()
    assert Q_MAX == pytest.approx(0.9994 * 0.9879 / ((1 + math.exp(-7.5)) * (1 + math.exp(-4.4))), abs=1e-12)
    assert Q_MAX > 0.97
    assert qabf(a, np.full_like(a, 0.5), a, "reflect") == pytest.approx(Q_MAX, abs=1e-6)
    assert qabf(a, np.zeros_like(a), a, "zero") == pytest.approx(Q_MAX, abs=1e-6)  # zero padding: B = 0 has no frame
    # zero padding turns the frame of a flat non-zero B into an edge that F = A does not reproduce exactly
    assert qabf(a, np.full_like(a, 0.5), a, "zero") < Q_MAX - 0.02


@pytest.mark.parametrize("border", ["zero", "reflect"])
def test_flat_fused_image_scores_about_zero(border):
    a, b = _texture(seed=1), _texture(seed=2)
    assert qabf(a, b, np.zeros_like(a), border) < 0.01
    if border == "reflect":  # with zero padding a non-zero constant has the frame as an edge
        assert qabf(a, b, np.full_like(a, 0.5), border) < 0.01


@pytest.mark.parametrize("border", ["zero", "reflect"])
def test_symmetric_in_the_sources(border):
    rng = np.random.default_rng(4)
    a, b = _texture(seed=5), _texture(seed=6)
    for f in ((a + b) / 2, np.maximum(a, b), rng.random(a.shape)):
        assert qabf(a, b, f, border) == pytest.approx(qabf(b, a, f, border), abs=1e-12)
    c = _texture(seed=7)
    assert qabf_sources([a, b, c], a, border) == pytest.approx(qabf_sources([c, a, b], a, border), abs=1e-12)
    assert qabf_sources([a, b], c, border) == qabf(a, b, c, border)


def test_rgb_inputs_use_bt601_luma():
    rgb = np.random.default_rng(8).random((3, 20, 24, 3))
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    assert qabf(*rgb) == pytest.approx(qabf(*gray), abs=1e-12)
    assert qabf(rgb[0], gray[1], rgb[2]) == pytest.approx(qabf(*gray), abs=1e-12)


# ----------------------------------------------------------------------------------------- the ranking it must give
@pytest.mark.parametrize("border", ["zero", "reflect"])
def test_taking_the_sharp_half_of_each_source_beats_the_mean_and_each_source(border):
    sharp = _texture(64, 96, seed=9)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    left = np.zeros(sharp.shape, bool)
    left[:, :48] = True
    a = np.where(left, sharp, blurred)  # sharp on the left
    b = np.where(left, blurred, sharp)  # sharp on the right
    fused = np.where(left, a, b)
    q_fused, q_mean = qabf(a, b, fused, border), qabf(a, b, (a + b) / 2, border)
    q_a, q_b = qabf(a, b, a, border), qabf(a, b, b, border)
    assert q_fused > q_mean + 0.05, (q_fused, q_mean)
    assert q_fused > max(q_a, q_b) + 0.05, (q_fused, q_a, q_b)


# --------------------------------------------------------------------------------------------------- bad input
def test_bad_input_raises_a_clear_value_error():
    a = np.zeros((10, 12))
    with pytest.raises(ValueError, match=r"b has size 12x11 .* but f 12x10"):
        qabf(a, np.zeros((11, 12)), a)
    with pytest.raises(ValueError, match=r"sources\[1\] has size 12x11 .* but fused 12x10"):
        qabf_sources([a, np.zeros((11, 12))], a)
    with pytest.raises(ValueError, match=r"f must be \(H, W, 3\) RGB, got shape \(10, 12, 5\)"):
        qabf(a, a, np.zeros((10, 12, 5)))
    with pytest.raises(ValueError, match="at least 2 source"):
        qabf_sources([a], a)
    with pytest.raises(ValueError, match="border must be one of"):
        qabf(a, a, a, border="wrap")
    nan = a.copy()
    nan[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"^Q\^AB/F: a has non-finite values"):
        qabf(nan, a, a)
    with pytest.raises(ValueError, match=r"^Q\^AB/F: sources\[0\] is too small: 0x0 px"):
        qabf_sources([np.zeros((0, 0)), np.zeros((0, 0))], np.zeros((0, 0)))
    with pytest.raises(ValueError, match=r"^Q\^AB/F: f: float values up to 255"):
        qabf(a, a, a + 255.0)


def test_uint8_and_gray_forms_give_the_float_value():
    rgb = [np.stack([_texture(20, 24, seed=s + c) for c in range(3)], -1) for s in (1, 5, 9)]
    u8 = [np.round(x * 255).astype(np.uint8) for x in rgb]
    want = qabf(*[x / 255.0 for x in u8])
    assert qabf(*u8) == pytest.approx(want, abs=1e-12) and 0 <= want <= Q_MAX
    gray = [x[..., 0] for x in rgb]
    assert qabf(*[g[..., None] for g in gray]) == qabf(*gray)
    assert qabf(*[np.concatenate([x, np.ones_like(x[..., :1])], -1) for x in rgb]) == qabf(*rgb)  # alpha dropped


# ---------------------------------------------------------------------------- the real-stack check (check_apps)
def _half_blurred_pair():
    sharp = np.stack([_texture(48, 64, seed=s) for s in (10, 11, 12)], -1)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    left = np.zeros(sharp.shape[:2], bool)
    left[:, :32] = True
    frames = np.stack([np.where(left[..., None], sharp, blurred), np.where(left[..., None], blurred, sharp)])
    sigmas = np.stack([np.where(left, 0.0, 3.0), np.where(left, 3.0, 0.0)])  # the true σ maps (px)
    return frames.astype(np.float32), sigmas


def test_fusion_quality_row_ranks_the_sigma_fusion_above_the_mean():
    from dmenet.galetto.check_apps import fusion_quality_row

    frames, sigmas = _half_blurred_pair()
    row = fusion_quality_row(frames, sigmas)
    for border in ("zero", "reflect"):
        r = row[border]
        assert r["fused_minus_mean"] == pytest.approx(r["fused"] - r["mean"])
        assert r["fused_minus_mean"] > 0.05 and r["fused"] > r["best_source"] == max(r["sources"])
        assert len(r["sources"]) == 2 and 0 <= r["laplacian_gf"] <= Q_MAX


def test_real_fusion_scores_takes_first_and_last_frame_and_the_whole_stack(tmp_path):
    from dmenet.galetto.check_apps import real_fusion_scores
    from syndof import io

    frames, sigmas = _half_blurred_pair()
    for name, img in zip(("f0.png", "f1.png", "f2.png"), (frames[0], frames.mean(0), frames[1])):
        io.write_image(tmp_path / "stack" / name, img)

    class Stub:  # σ from the frame's column sharpness: small where the left/right half is the sharp one
        def sigma_map(self, image):
            g = np.abs(cv2.Laplacian(image.mean(-1).astype(np.float64), cv2.CV_64F))
            return -cv2.blur(g, (9, 9)).astype(np.float32)

    res = real_fusion_scores(Stub(), [str(tmp_path / "stack")])["stack"]
    assert res["frames"] == ["f0.png", "f1.png", "f2.png"] and res["pair"]["frames"] == ["f0.png", "f2.png"]
    assert len(res["stack"]["zero"]["sources"]) == 3 and len(res["pair"]["zero"]["sources"]) == 2
    assert res["pair"]["zero"]["fused_minus_mean"] > 0.05
    with pytest.raises(ValueError, match="at least 2 frames"):
        real_fusion_scores(Stub(), [str(tmp_path / "stack" / "f0*.png")])
