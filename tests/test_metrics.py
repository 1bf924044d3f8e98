"""DBD metrics against hand-computed tiny cases, the 8-bit fast path against the per-pixel one, and the
reproduction of HiFST's published CUHK PR curve from its published maps (the end-to-end proof of the PR code)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dmenet.eval import benchmarks as B
from dmenet.eval import dbd
from dmenet.eval import metrics as M
from dmenet.eval.protocols import make_protocol
from dmenet.evaluate import read_prediction

# Image A / B of the hand cases: levels 1.0, 0.6 (= 153/255), 0.2 (= 51/255).
PRED = np.array([[1.0, 0.6], [0.6, 0.2]], dtype=np.float32)
GT_A = np.array([[1, 1], [0, 0]], dtype=bool)
GT_B = np.array([[1, 1], [1, 0]], dtype=bool)


def F(p, r):  # β² = 0.3, written out independently of the library
    return 1.3 * p * r / (0.3 * p + r) if p + r > 0 else 0.0


def test_f_measure_hand_values():
    assert M.f_measure(0.0, 0.0) == 0.0
    assert M.f_measure(1.0, 1.0) == pytest.approx(1.0)
    assert M.f_measure(0.5, 1.0) == pytest.approx(0.65 / 1.15)
    np.testing.assert_allclose(M.f_measure(np.array([1.0, 0.0]), np.array([0.5, 0.0])), [0.8125, 0.0])


def test_mae_and_fixed_threshold_2x2():
    pred = np.array([[0.9, 0.2], [0.6, 0.4]], dtype=np.float32)
    gt = np.array([[1, 0], [1, 1]], dtype=bool)
    assert M.mae(pred, gt) == pytest.approx((0.1 + 0.2 + 0.4 + 0.6) / 4)
    p, r, f = M.fixed_threshold_prf(pred, gt, 0.5)  # positives 0.9, 0.6 → TP 2, detected 2, GT 3
    assert (p, r) == pytest.approx((1.0, 2 / 3))
    assert f == pytest.approx(F(1.0, 2 / 3))


def test_f_curve_and_fmax_by_hand():
    p, r, f = M.f_curve(PRED, GT_A)
    i = np.arange(1, 256)
    expected = np.where(i <= 51, F(0.5, 1.0), np.where(i <= 153, F(2 / 3, 1.0), F(1.0, 0.5)))
    np.testing.assert_allclose(f, expected, atol=1e-12)  # thresholds i/255 hit the levels exactly (>=)
    assert f.max() == pytest.approx(0.8125)
    assert M.FMAX_THRESHOLDS[np.argmax(f)] == pytest.approx(154 / 255)


def test_fmax_mean_of_maxima_differs_from_peak_of_mean_curve():
    acc = dbd.DBDAccumulator()
    acc.add("a", PRED, GT_A)
    acc.add("b", PRED, GT_B)
    s = acc.summary()
    fa = max(F(0.5, 1), F(2 / 3, 1), F(1, 0.5))  # 0.8125
    fb = max(F(0.75, 1), F(1, 1), F(1, 1 / 3))  # 1.0
    assert s["fmax"] == pytest.approx((fa + fb) / 2)  # 0.90625
    peak = max((F(0.5, 1) + F(0.75, 1)) / 2, (F(2 / 3, 1) + 1.0) / 2, (F(1, 0.5) + F(1, 1 / 3)) / 2)
    assert s["fmax_of_mean_curve"] == pytest.approx(peak)  # 0.8611
    assert s["fmax_of_mean_curve"] < s["fmax"]
    # pooled IoU (pred > 0.5): A 2/3, B 3/3 → pooled 5/6; per-image mean would be 5/6 too, so check C below
    assert s["iou_pooled"] == pytest.approx(5 / 6)


def test_iou_is_pooled_not_averaged():
    acc = dbd.DBDAccumulator()
    acc.add("a", PRED, GT_A)  # inter 2, union 3
    acc.add("c", PRED, np.ones((2, 2), bool))  # inter 3, union 4
    assert acc.summary()["iou_pooled"] == pytest.approx(5 / 7)
    assert np.mean([row["iou"] for row in acc.rows]) == pytest.approx((2 / 3 + 3 / 4) / 2)


def test_adaptive_threshold_factors_and_cap():
    pred = np.array([[0.8, 0.6], [0.2, 0.2]], dtype=np.float32)  # mean 0.45
    assert M.adaptive_threshold(pred, 1.5) == pytest.approx(0.675)
    assert M.adaptive_threshold(pred, 2.0) == pytest.approx(0.9)
    assert M.adaptive_prf(pred, GT_A, 1.5)[2] == pytest.approx(0.8125)  # only 0.8 positive: P 1, R 1/2
    assert M.adaptive_prf(pred, GT_A, 2.0)[2] == 0.0  # nothing >= 0.9
    assert M.adaptive_threshold(np.full((2, 2), 0.8), 1.5) == 1.0  # capped at 1
    acc = dbd.DBDAccumulator(adaptive_factors=(1.5, 2.0))
    row = acc.add("e", pred, GT_A)
    assert row["adaptive_f_1.5"] == pytest.approx(0.8125) and row["adaptive_f_2"] == 0.0


def test_sg_fm_scores_the_gt_white_class_on_8_bit_levels():
    """SG eval.py: the map in the GT-white polarity as an 8-bit PNG, T = min(1, 1.5·mean), map ≥ T, the GT-white
    class positive; an image without GT-white pixels scores 0."""
    gt = np.zeros((10, 10), bool)
    gt[:, :8] = True  # 80 % blurred
    pred = np.full((10, 10), 0.2, np.float32)
    pred[:, :8] = 0.9995  # 255 as an 8-bit level: T = 1 reaches it (float adaptive F does not)
    assert M.sg_fm(pred, gt, white_is_blurred=True) == pytest.approx(1.0)
    assert M.adaptive_prf(pred, gt, 1.5)[2] == 0.0
    # white = in focus (xu100, DUT): the sharp class is scored, on the map 1 − pred (levels 0 and 204, mean 40.8:
    # T·255 = 61.2, so the 20 sharp pixels are positive, all correct)
    assert M.sg_fm(pred, gt, white_is_blurred=False) == pytest.approx(1.0)
    half = pred.copy()
    half[:, 8:9] = 0.9995  # 10 of the 20 sharp pixels called blurred: sharp-class P 1, R 1/2
    assert M.sg_fm(half, gt, white_is_blurred=False) == pytest.approx(1.3 * 0.5 / (0.3 + 0.5))
    assert M.sg_fm(pred, np.zeros((10, 10), bool), white_is_blurred=True) == 0.0  # no GT-white pixel: 0
    acc = dbd.DBDAccumulator(white_is_blurred=False)
    acc.add("a", half, gt)
    acc.add("b", pred, gt)
    assert acc.summary()["sg_fm"] == pytest.approx((1.3 * 0.5 / 0.8 + 1.0) / 2)
    assert "sg_fm" not in dbd.DBDAccumulator().add("c", pred, gt)  # polarity unknown: not computed


def test_nearest_map_resize_is_d_dffnet_upsampling():
    """map_resize nearest (D-DFFNet): a 2×2 map upsampled to the 4×4 GT repeats each value over its 2×2 block;
    linear blends them. The tags say which."""
    pred = np.array([[1.0, 0.0], [0.0, 0.6]], np.float32)
    gt = np.kron(np.array([[1, 0], [0, 1]]), np.ones((2, 2))).astype(bool)
    near, lin = dbd.DBDAccumulator(map_resize="nearest"), dbd.DBDAccumulator()
    assert near.add("a", pred, gt)["mae"] == pytest.approx(0.1)  # |0.6 − 1| on 4 of 16 px
    assert lin.add("a", pred, gt)["mae"] > 0.1 + 0.05
    assert "nearest" in near.protocol()["resize"] and "bilinear" in lin.protocol()["resize"]
    with pytest.raises(ValueError, match="map resize"):
        dbd.DBDAccumulator(map_resize="cubic")


def test_hifst_pr_by_hand_and_tp0_images_add_zero():
    p, r = M.hifst_pr(PRED, GT_A)  # mat2gray·255: 1 → 255, 0.6 → 127.5, 0.2 → 0
    assert (p[0], r[0]) == pytest.approx((0.5, 1.0))
    assert (p[1], r[1]) == pytest.approx((2 / 3, 1.0)) and (p[127], r[127]) == pytest.approx((2 / 3, 1.0))
    assert (p[128], r[128]) == pytest.approx((1.0, 0.5)) and (p[255], r[255]) == pytest.approx((1.0, 0.5))
    acc = dbd.DBDAccumulator()
    acc.add("a", PRED, GT_A)
    acc.add("low", PRED, np.array([[0, 0], [0, 1]], bool))  # its blurred pixel scores 0: TP = 0 for T >= 1
    _, mp, mr = acc.pr_curve()
    assert (mp[0], mr[0]) == pytest.approx((0.375, 1.0))
    assert (mp[200], mr[200]) == pytest.approx((0.5, 0.25))  # TP = 0 adds 0 to P and R, still counts as an image
    acc.add("none", PRED, np.zeros((2, 2), bool))  # an all-sharp GT has no P / R: left out of the curve
    assert np.array_equal(acc.pr_curve()[1], mp) and acc.summary()["f_skipped_all_sharp"] == 1


def test_sharpness_maps_are_inverted():
    sharp = 1.0 - PRED
    np.testing.assert_allclose(M.to_blur_polarity(sharp, sharpness=True), PRED, atol=1e-7)
    np.testing.assert_array_equal(M.to_blur_polarity(PRED, sharpness=False), PRED)
    assert M.f_curve(M.to_blur_polarity(sharp, True), GT_A)[2].max() == pytest.approx(0.8125)


def test_auc_trapezoid_over_recall():
    assert M.pr_auc(np.array([1.0, 0.5]), np.array([0.0, 1.0])) == pytest.approx(0.75)
    assert M.pr_auc(np.array([0.5, 1.0]), np.array([1.0, 0.0])) == pytest.approx(0.75)  # order-free
    # lowest recall 0.5 at P = 1: flat to R = 0 (area 0.5) + trapezoid 0.5..1 between P 1 and 0.5 (0.375)
    assert M.pr_auc(np.array([1.0, 0.5]), np.array([0.5, 1.0])) == pytest.approx(0.875)
    # a perfect map: P = 1 at R = 1 except T = 0 (everything positive, P = blur fraction) → AUC 1
    assert M.pr_auc(np.array([0.3, 1.0, 1.0]), np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)


def test_imresize_matches_matlab_properties():
    x = np.random.default_rng(0).random((7, 9))
    np.testing.assert_array_equal(M.imresize_bicubic(x, (7, 9)), x)
    np.testing.assert_allclose(M.imresize_bicubic(np.full((10, 12), 3.0), (5, 17)), 3.0)
    ramp = np.tile(np.arange(1.0, 33.0), (4, 1))  # shrink ×2: MATLAB samples u = 2x − 0.5 → 1.5, 3.5, …
    out = M.imresize_bicubic(ramp, (4, 16))
    np.testing.assert_allclose(out[0, 3:13], 2 * np.arange(4, 14) - 0.5, atol=1e-9)  # linear is exact inside


def test_level_fast_path_equals_per_pixel(rng):
    for trial in range(5):
        pred = (rng.integers(0, 256, (37, 53)) / 255.0).astype(np.float32)
        if trial == 0:
            pred = (1.0 - pred).astype(np.float32)  # float32 inversion: levels must still be exact
        gt = rng.random((37, 53)) < 0.4
        lv = M.LevelCounts.from_map(pred, gt)
        assert lv is not None
        for a, b in zip(lv.f_curve(), M.f_curve(pred, gt)):
            np.testing.assert_allclose(a, b, atol=1e-12)
        for a, b in zip(lv.hifst_pr(), M.hifst_pr(pred, gt)):
            np.testing.assert_allclose(a, b, atol=1e-12)
        assert lv.mae() == pytest.approx(M.mae(pred, gt), abs=1e-6)
        for t in (0.0, 0.25, 0.5, 128 / 255, 1.0):
            assert lv.prf(t) == pytest.approx(M.fixed_threshold_prf(pred, gt, t))
        assert lv.iou_counts() == M.iou_counts(pred, gt)
        assert lv.dmenet_accuracy() == pytest.approx(M.dmenet_accuracy(pred, gt))
        assert lv.oracle_accuracy() == pytest.approx(M.oracle_accuracy(pred, gt), abs=1e-12)
    # a map that is the GT (up to a monotone map) is 100 % right at its best threshold; all sharp wins on no blur
    gt = rng.random((9, 11)) < 0.3
    assert M.LevelCounts.from_map(np.where(gt, 200, 3) / 255.0, gt).oracle_accuracy() == 1.0
    assert M.LevelCounts.from_map(np.full((9, 11), 1.0), np.zeros((9, 11), bool)).oracle_accuracy() == 1.0
    assert M.LevelCounts.from_map(np.full((3, 3), 0.3001, np.float32), np.ones((3, 3), bool)) is None


def test_thousand_images_score_in_seconds(rng):
    preds = [(rng.integers(0, 256, (320, 320)) / 255.0).astype(np.float32) for _ in range(20)]
    gts = [rng.random((320, 320)) < 0.5 for _ in range(20)]
    acc = dbd.DBDAccumulator()
    t0 = time.process_time()
    for i in range(1000):
        acc.add(str(i), preds[i % 20], gts[i % 20])
    assert time.process_time() - t0 < 30.0  # about 3 ms per image on the 2-core dev machine
    assert acc.summary()["n_images"] == 1000


@pytest.mark.shared
def test_reproduces_hifst_published_pr_curve(shared):
    """All 1000 CUHK masks vs HiFST's published sharpness maps must give the published curve (±0.005)."""
    gt_dir, maps = shared("data", "cuhk", "gt"), shared("data", "cuhk", "hifst_maps")
    ref = np.loadtxt(shared("data", "cuhk", "pr_reference", "BlurDetection_HiFSTBlurMap_PRCurve.txt"))
    spec = B.get_spec("cuhk")
    protocol = make_protocol(spec, gt_dir.parent)
    samples = protocol.list_samples(need_images=False)
    assert len(samples) == 1000

    def load(sample):
        sharp = read_prediction(maps / f"{sample.stem}_HiFSTBlurMap.png")
        return sample.stem, M.to_blur_polarity(sharp, sharpness=True), protocol.load_gt(sample)

    acc = dbd.DBDAccumulator()
    with ThreadPoolExecutor(4) as pool:
        for stem, pred, gt in pool.map(load, samples):
            acc.add(stem, pred, gt)
    _, p, r = acc.pr_curve()
    dp, dr = np.abs(p - ref[:, 0]).max(), np.abs(r - ref[:, 1]).max()
    print(f"HiFST PR reproduction: max |dP| = {dp:.2e}, max |dR| = {dr:.2e}")
    assert dp <= 0.005 and dr <= 0.005
    assert dp <= 1e-6 and dr <= 1e-6  # the file prints 6 decimals; the protocol is reproduced exactly
