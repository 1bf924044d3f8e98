"""Property-based tests (hypothesis) of the image / σ / depth readers and the DBD metric functions: random shapes,
dtypes, values and bytes. A reader either returns a well-formed map or raises ``InputError`` naming the file;
round trips are exact (or within the file format's quantisation); metrics agree with brute force and stay in range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dmenet.eval import metrics
from syndof import depth_io
from syndof import io as sio

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sides = st.integers(min_value=2, max_value=12)
shapes2d = st.tuples(sides, sides)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder per module: each example overwrites the same file name (hypothesis runs examples in turn)."""
    return tmp_path_factory.mktemp("properties")


# --------------------------------------------------------------------------------------------------------- images
@PROPERTY
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.uint16]), channels=st.sampled_from([0, 3]))
def test_image_round_trip_any_shape_and_bit_depth(scratch, data, dtype, channels):
    shape = data.draw(shapes2d) + ((channels,) if channels else ())
    array = data.draw(hnp.arrays(dtype, shape))
    path = scratch / "x.png"
    sio.write_image(path, array)
    image = sio.read_image(path)
    assert image.shape == shape[:2] + (3,) and image.dtype == np.float32
    expected = array.astype(np.float32) / np.iinfo(dtype).max
    np.testing.assert_allclose(image, expected if channels else np.repeat(expected[..., None], 3, axis=2),
                               atol=1e-6)


def _reads_or_names_the_file(read, path: Path, blob: bytes) -> np.ndarray | None:
    """``read(path)`` of a file holding ``blob``: the array, or None after an InputError naming the file (any
    other exception fails the test)."""
    path.write_bytes(blob)
    try:
        return read(path)
    except sio.InputError as exc:
        assert str(path) in str(exc)
        return None


@PROPERTY
@given(blob=st.binary(max_size=300), suffix=st.sampled_from([".png", ".jpg", ".gif", ".tif"]))
def test_image_reader_on_arbitrary_bytes_never_raises_anything_but_input_error(scratch, blob, suffix):
    image = _reads_or_names_the_file(sio.read_image, scratch / f"x{suffix}", blob)
    assert image is None or (image.ndim == 3 and image.shape[2] == 3 and np.all((image >= 0) & (image <= 1)))


# ---------------------------------------------------------------------------------------------------------- σ maps
@PROPERTY
@given(sigma=hnp.arrays(np.float64, shapes2d, elements=st.floats(0.0, 6553.5)))
def test_sigma_png_round_trip_within_quantisation(scratch, sigma):
    path = scratch / "x.png"
    sio.write_sigma_map(path, sigma)
    back = sio.read_sigma_map(path)
    assert back.shape == sigma.shape and back.dtype == np.float32
    assert np.max(np.abs(back - sigma)) <= 0.05 + 1e-3


@PROPERTY
@given(sigma=hnp.arrays(np.float64, shapes2d, elements=st.floats(6553.6, 1e9)))
def test_sigma_beyond_the_png_range_is_refused_not_wrapped(scratch, sigma):
    with pytest.raises(ValueError, match="does not fit"):
        sio.write_sigma_map(scratch / "x.png", sigma)


@PROPERTY
@given(array=hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]),
                        st.one_of(shapes2d, st.tuples(sides), st.tuples(sides, sides, sides)),
                        elements=st.floats(-10, 1e4, width=16) | st.just(float("nan"))))
def test_sigma_npy_is_returned_exactly_or_refused(scratch, array):
    path = scratch / "x.npy"
    np.save(path, array)
    first = array[..., 0] if array.ndim == 3 else array
    channels_last = array.ndim == 2 or (array.ndim == 3 and array.shape[2] <= sio.MAX_MAP_CHANNELS)  # §19 S5
    valid = channels_last and bool(np.all(np.isfinite(first))) and first.min() >= 0
    if not valid:
        with pytest.raises(sio.InputError, match="x.npy"):
            sio.read_sigma_map(path)
        return
    sigma = sio.read_sigma_map(path)
    expected = array[..., 0] if array.ndim == 3 else array
    np.testing.assert_array_equal(sigma, expected.astype(np.float32))


# ---------------------------------------------------------------------------------------------------------- depth
def _writer(fmt: str):
    return {".dpt": depth_io.write_dpt, ".pfm": depth_io.write_pfm, ".npy": np.save}[fmt]


@PROPERTY
@given(depth=hnp.arrays(np.float32, shapes2d, elements=st.floats(1.0, 1e5, width=32)),
       fmt=st.sampled_from([".dpt", ".pfm", ".npy"]))
def test_depth_round_trip_in_every_format(scratch, depth, fmt):
    assume(depth.min() != depth.max())
    path = scratch / f"x{fmt}"
    _writer(fmt)(path, depth)
    back = depth_io.read_depth(path, scale=1.0)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, depth.astype(np.float64))


@PROPERTY
@given(depth=hnp.arrays(np.float64, shapes2d, elements=st.floats(allow_nan=True, allow_infinity=True, width=32)),
       fmt=st.sampled_from([".dpt", ".pfm", ".npy"]))
def test_depth_with_invalid_pixels_is_filled_or_refused(scratch, depth, fmt):
    path = scratch / f"x{fmt}"
    _writer(fmt)(path, depth)
    raw = depth.astype(np.float32).astype(np.float64)
    valid = np.isfinite(raw) & (raw > 0)
    try:
        back = depth_io.read_depth(path, scale=1.0)
    except sio.InputError as exc:
        assert str(path) in str(exc)
        assert not valid.any() or np.unique(raw[valid]).size == 1  # none valid, or constant once filled
        return
    assert back.shape == depth.shape and np.all(np.isfinite(back)) and back.min() > 0
    np.testing.assert_array_equal(back[valid], raw[valid])  # valid pixels untouched, the others filled


@PROPERTY
@given(blob=st.binary(max_size=200), fmt=st.sampled_from([".dpt", ".pfm", ".npy", ".png"]))
def test_depth_reader_on_arbitrary_bytes_never_raises_anything_but_input_error(scratch, blob, fmt):
    depth = _reads_or_names_the_file(depth_io.read_depth, scratch / f"x{fmt}", blob)
    assert depth is None or (depth.ndim == 2 and np.all(np.isfinite(depth)) and depth.min() > 0)


# --------------------------------------------------------------------------------------------------------- metrics
pred_dtypes = st.sampled_from([np.float16, np.float32, np.float64])
gt_dtypes = st.sampled_from([np.bool_, np.uint8, np.float32])


@st.composite
def pred_gt(draw):
    shape = draw(shapes2d)
    pred = draw(hnp.arrays(draw(pred_dtypes), shape, elements=st.floats(0.0, 1.0, width=16)))
    gt = draw(hnp.arrays(np.bool_, shape)).astype(draw(gt_dtypes))
    return pred, gt


@PROPERTY
@given(pair=pred_gt(), thresholds=hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(0, 1), unique=True))
def test_threshold_counts_equal_brute_force(pair, thresholds):
    pred, gt = pair
    thresholds = np.sort(thresholds)
    tp, det, n_gt = metrics.threshold_counts(pred, gt, thresholds)
    p64, g = pred.astype(np.float64), gt.astype(bool)
    assert n_gt == int(g.sum())
    np.testing.assert_array_equal(det, [(p64 >= t).sum() for t in thresholds])
    np.testing.assert_array_equal(tp, [((p64 >= t) & g).sum() for t in thresholds])
    assert np.all(np.diff(det) <= 0) and np.all(tp <= det)


@PROPERTY
@given(pair=pred_gt(), factor=st.floats(0.5, 3.0))
def test_metrics_stay_in_range(pair, factor):
    pred, gt = pair
    p, r, f = metrics.f_curve(pred, gt)
    for arr in (p, r, f):
        assert arr.shape == (255,) and np.all((arr >= 0) & (arr <= 1))
    assert 0.0 <= metrics.mae(pred, gt) <= 1.0
    pa, ra, fa, t = metrics.adaptive_prf(pred, gt, factor)
    assert 0 <= t <= 1 and all(0.0 <= v <= 1.0 for v in (pa, ra, fa))
    inter, union = metrics.iou_counts(pred, gt)
    assert 0 <= inter <= union <= pred.size
    assert 0.0 <= metrics.dmenet_accuracy(pred, gt) <= 1.0


@PROPERTY
@given(gt=hnp.arrays(np.bool_, shapes2d))
def test_a_perfect_map_scores_perfectly(gt):
    pred = gt.astype(np.float32)
    assert metrics.mae(pred, gt) == 0.0
    assert metrics.mae(1.0 - pred, ~gt) == 0.0
    p, r, f = metrics.fixed_threshold_prf(pred, gt, 0.5)
    if gt.any():
        assert (p, r) == (1.0, 1.0) and f == pytest.approx(1.0)
    else:  # nothing to find and nothing found: P and R have a 0 denominator, reported as 0 (precision_recall)
        assert (p, r, f) == (0.0, 0.0, 0.0)


@PROPERTY
@given(a=shapes2d, b=shapes2d)
def test_mismatched_shapes_are_a_value_error(a, b):
    assume(a != b)
    with pytest.raises(ValueError, match="same size"):
        metrics.mae(np.zeros(a, np.float32), np.zeros(b, bool))
