"""syndof.units: CoC ↔ σ, labels, SYNDOF encoding, resize rule, disk→Gaussian table, MATLAB rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from syndof import units


def test_max_sigma():
    assert units.max_sigma() == 7.0
    assert units.max_sigma(29) == 7.0
    assert units.max_sigma(15) == 3.5
    with pytest.raises(ValueError, match="max_coc must be a finite CoC >= 1 px, got 0.5"):
        units.max_sigma(0.5)


@pytest.mark.parametrize("coc, sigma", [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (1.4, 0.1), (5.0, 1.0), (29.0, 7.0)])
def test_coc_to_sigma_scalars(coc, sigma):
    assert units.coc_to_sigma(coc) == pytest.approx(sigma)


def test_coc_sigma_round_trip_all_kinds():
    coc = np.array([1.0, 2.0, 9.0, 17.0, 29.0])
    sig = units.coc_to_sigma(coc)
    np.testing.assert_allclose(sig, [0.0, 0.25, 2.0, 4.0, 7.0])
    np.testing.assert_allclose(units.sigma_to_coc(sig), coc)
    t = torch.tensor(coc)
    assert isinstance(units.coc_to_sigma(t), torch.Tensor)
    torch.testing.assert_close(units.sigma_to_coc(units.coc_to_sigma(t)), t)
    # CoC below 1 is clamped to 1 (in focus), so it cannot round-trip: it comes back as 1.
    assert units.sigma_to_coc(units.coc_to_sigma(0.3)) == 1.0
    # negative σ is clamped to 0
    assert units.sigma_to_coc(-2.0) == 1.0


def test_labels():
    sig = np.array([0.0, 3.5, 7.0, 9.0])
    np.testing.assert_allclose(units.sigma_to_label(sig), [0.0, 0.5, 1.0, 1.0])  # clipped at σ_max
    np.testing.assert_allclose(units.label_to_sigma(np.array([0.0, 0.5, 1.0, 1.5, -0.2])), [0, 3.5, 7, 7, 0])
    assert units.sigma_to_label(1.75, max_coc=15) == pytest.approx(0.5)
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(units.sigma_to_label(units.label_to_sigma(t)), t)


def test_syndof_encoding_round_trip():
    sigma = np.round(np.linspace(0, 7, 71), 1)
    enc = units.sigma_to_syndof(sigma)
    assert enc.dtype == np.uint16
    np.testing.assert_array_equal(enc, np.arange(71))
    np.testing.assert_allclose(units.syndof_to_sigma(enc), sigma, atol=1e-6)
    assert units.syndof_to_sigma(enc).dtype == np.float32
    # half away from zero, like MATLAB round: 0.05 → 1 (0.5 after ×10), 0.25 → 3 (banker's would give 2)
    np.testing.assert_array_equal(units.sigma_to_syndof(np.array([0.05, 0.25, 0.249])), [1, 3, 2])


def test_syndof_encoding_rejects_bad_values():
    with pytest.raises(ValueError, match="finite and non-negative"):
        units.sigma_to_syndof(np.array([-0.1]))
    with pytest.raises(ValueError, match="finite and non-negative"):
        units.sigma_to_syndof(np.array([np.nan]))
    with pytest.raises(ValueError, match="uint16"):
        units.syndof_to_sigma(np.zeros(3, np.uint8))


def test_rescale_sigma():
    assert units.rescale_sigma(4.0, 0.5) == 2.0
    np.testing.assert_allclose(units.rescale_sigma(np.array([1.0, 2.0]), 2.0), [2.0, 4.0])
    torch.testing.assert_close(units.rescale_sigma(torch.tensor([3.0]), 1 / 3), torch.tensor([1.0]))
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match=f"scale must be a finite number > 0, got {bad}"):
            units.rescale_sigma(1.0, bad)


def test_compose_sigma_adds_in_quadrature():
    assert units.compose_sigma(3.0, 4.0) == pytest.approx(5.0)
    assert units.compose_sigma(2.5, 0.0) == 2.5
    np.testing.assert_allclose(units.compose_sigma(np.array([0.0, 1.0]), 1.0), [1.0, math.sqrt(2.0)])
    np.testing.assert_allclose(units.compose_sigma(np.array([3.0, 1.0]), np.array([4.0, 0.0])), [5.0, 1.0])
    with pytest.raises(ValueError, match="extra blur"):
        units.compose_sigma(np.array([1.0, 1.0]), np.array([1.0, math.nan]))
    for bad in (-0.5, math.nan):
        with pytest.raises(ValueError, match="extra blur"):
            units.compose_sigma(1.0, bad)


def test_magnifying_sigma_is_the_inverse_of_compose_sigma():
    sigma = np.array([0.0, 0.25, 1.5, 7.0, 19.0])
    for k in (1.0, 1.5, 2.0, 3.0):
        extra = units.magnifying_sigma(sigma, k)
        np.testing.assert_allclose(extra, sigma * math.sqrt(k * k - 1.0))
        np.testing.assert_allclose(units.compose_sigma(sigma, extra), k * sigma, rtol=1e-12, atol=1e-12)
    assert units.magnifying_sigma(3.0, 2.0) == pytest.approx(3.0 * math.sqrt(3.0))
    assert units.compose_sigma(3.0, units.magnifying_sigma(3.0, 2.0)) == pytest.approx(6.0)
    assert units.magnifying_sigma(2.0, 1.0) == 0.0  # ×1: nothing to add
    t = units.magnifying_sigma(torch.tensor([1.0, 4.0], dtype=torch.float64), 2.0)
    assert isinstance(t, torch.Tensor)
    torch.testing.assert_close(units.compose_sigma(torch.tensor([1.0, 4.0], dtype=torch.float64), t),
                               torch.tensor([2.0, 8.0], dtype=torch.float64))
    for bad in (0.5, -2.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="magnification k"):
            units.magnifying_sigma(1.0, bad)


def test_disk_radius_to_sigma():
    table = np.array([[0.0, 0.0], [0.5, 1.0], [1.0, 2.0], [2.0, 4.0]])  # [σ, radius]
    np.testing.assert_allclose(units.disk_radius_to_sigma(np.array([0.0, 0.9, 2.2, 3.1, 9.0]), table),
                               [0.0, 0.5, 1.0, 2.0, 2.0])
    out = units.disk_radius_to_sigma(np.zeros((2, 3)), table)
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match=r"table must be \(N, 2\) \[sigma, radius\], got \(3, 3\)"):
        units.disk_radius_to_sigma(np.zeros(2), np.zeros((3, 3)))


@pytest.mark.parametrize("x, expected", [(0.5, 1.0), (1.5, 2.0), (2.5, 3.0), (-0.5, -1.0), (-2.5, -3.0),
                                         (0.49, 0.0), (-0.49, -0.0), (3.0, 3.0), (-1.2, -1.0), (0.0, 0.0)])
def test_round_half_away_scalars(x, expected):
    assert units.round_half_away(x) == expected


def test_round_half_away_arrays_and_decimals():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.25, -0.25])
    np.testing.assert_array_equal(units.round_half_away(x), [1, 2, 3, -1, -2, -3, 0, -0])
    assert not np.array_equal(units.round_half_away(x), np.round(x))  # NumPy rounds half to even
    t = torch.tensor(x)
    torch.testing.assert_close(units.round_half_away(t), torch.tensor([1.0, 2, 3, -1, -2, -3, 0, 0],
                                                                      dtype=torch.float64))
    # one decimal, as the CoC rounding: exact halves (in binary) go away from zero
    np.testing.assert_allclose(units.round_half_away(np.array([0.25, -0.25, 1.75, 2.04]), 1), [0.3, -0.3, 1.8, 2.0])
    assert units.round_half_away(-0.75, 1) == pytest.approx(-0.8)


def test_nan_and_inf_behave_alike_for_every_kind():
    """Audit #28: a Python NaN gave CoC→σ 0.0 (arrays NaN) and round_half_away raised (arrays NaN)."""
    for fn in (units.coc_to_sigma, units.sigma_to_coc, units.sigma_to_label, units.label_to_sigma):
        assert math.isnan(fn(math.nan))
        assert np.isnan(fn(np.array([math.nan]))).all()
        assert torch.isnan(fn(torch.tensor([math.nan]))).all()
    for x in (math.nan, math.inf, -math.inf):
        arr = units.round_half_away(np.array([x]))[0]
        got = units.round_half_away(x)
        assert (math.isnan(got) and np.isnan(arr)) or got == arr
    assert units.coc_to_sigma(5.0) == 1.0 and units.round_half_away(2.5) == 3.0  # finite values unchanged


def test_max_sigma_and_rescale_sigma_refuse_what_they_would_get_wrong():
    for bad in (math.nan, math.inf, 0):
        with pytest.raises(ValueError, match="max_coc"):
            units.max_sigma(bad)
    out = units.rescale_sigma([1.0, 2.0], 2)  # a list was repeated: [1, 2, 1, 2]
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [2.0, 4.0])
    for bad in (math.inf, np.array([2.0, 3.0]), "x"):
        with pytest.raises(ValueError, match="resize scale"):
            units.rescale_sigma(1.0, bad)


def test_rescale_sigma_multiplies_by_the_checked_number():
    """The scale was checked as ``float(scale)`` but the map multiplied by ``scale`` itself: a string passed the check
    and then raised a TypeError, a torch scalar raised one against a NumPy map, and a NumPy float64 turned a float32
    map into float64."""
    sigma = np.array([1.0, 2.0], dtype=np.float32)
    for scale in ("0.5", torch.tensor(0.5), np.float64(0.5), 0.5):
        out = units.rescale_sigma(sigma, scale)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
        np.testing.assert_array_equal(out, [0.5, 1.0])
    assert units.rescale_sigma(3.0, "2") == 6.0


def test_sigma_to_label_refuses_max_coc_1_instead_of_dividing_by_zero():
    """max_coc 1 passed max_sigma's check (σ_max 0): a float σ raised ZeroDivisionError, arrays and tensors gave
    NaN labels (0/0) with a RuntimeWarning."""
    for sigma in (0.0, np.array([0.0, 1.0]), torch.tensor([0.0, 1.0])):
        with pytest.raises(ValueError, match="max_coc"):
            units.sigma_to_label(sigma, max_coc=1)
    assert units.sigma_to_label(3.5, max_coc=29) == 0.5


def test_sigma_fraction_and_coc_radius_keep_the_kind_and_the_arithmetic():
    s = np.array([-1.0, 0.0, 1.5, 3.0, 4.0], dtype=np.float32)
    out = units.sigma_fraction(s, 3.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.clip(s / 3.0, 0.0, 1.0))
    assert units.sigma_fraction(torch.tensor([6.0]), 3.0).item() == 1.0
    assert units.sigma_fraction(1.5, 3.0) == 0.5
    rtf = np.linspace(-1.0, 5.0, 601)  # the arithmetic RTF's normalisation used before: clip to the top, then divide
    np.testing.assert_array_equal(units.sigma_fraction(rtf, 3.275), np.clip(rtf, 0.0, 3.275) / 3.275)
    assert units.coc_to_radius(29.0) == 14.5
    np.testing.assert_array_equal(units.coc_to_radius(np.array([1.0, 7.0])), [0.5, 3.5])


def test_m5_inverse_depth8_to_mm_maps_white_to_near_and_black_to_far_linearly_in_inverse_depth():
    """§23 Left: the shared EBB! depth (8-bit, white = near, relative) needed a hand-written conversion. By hand, for
    near 1000 mm and far 4000 mm: 255 → 1000, 0 → 4000, the middle 127.5 → 1 / (1/4000 + 0.5·(1/1000 − 1/4000))
    = 1600 mm (not the linear 2500: inverse depth is what is linear in the value)."""
    z = units.inverse_depth8_to_mm(np.array([[255, 127.5, 0]]), 1000.0, 4000.0)
    assert z.shape == (1, 3) and z.dtype == np.float64
    np.testing.assert_allclose(z, [[1000.0, 1600.0, 4000.0]], rtol=1e-12)
    v = np.arange(256, dtype=np.uint8)
    assert np.all(np.diff(units.inverse_depth8_to_mm(v, 500.0, 20000.0)) < 0)  # whiter = nearer
    for near, far in ((4000.0, 1000.0), (0.0, 1000.0), (1000.0, math.inf), (1000.0, 1000.0)):
        with pytest.raises(ValueError, match="0 < near < far"):
            units.inverse_depth8_to_mm(v, near, far)
    with pytest.raises(ValueError, match="0 … 255"):
        units.inverse_depth8_to_mm(np.array([256.0]), 1000.0, 4000.0)


FINITE = [29, 1.5, -3, 0, 10**300, np.float32(2.5), np.int64(7), torch.tensor(5.0), True, "29", " 1e3 "]
NOT_FINITE = [10**400, -10**400, math.nan, math.inf, -math.inf, np.float64("nan"), "nan", "1e999", "abc", None, [1],
              np.array([1.0, 2.0])]


@pytest.mark.parametrize("value", FINITE, ids=lambda v: repr(v)[:20])
def test_is_finite_number_takes_what_float_reads_as_finite(value):
    """reliability.md §48: what ``float()`` reads as a finite float, text and bool included (callers that must
    refuse them check the type first)."""
    assert units.is_finite_number(value) is True


@pytest.mark.parametrize("value", NOT_FINITE, ids=lambda v: repr(v)[:20])
def test_is_finite_number_is_false_for_an_int_beyond_float_and_no_number_without_raising(value):
    """10**400 (401 JSON digits: ``math.isfinite`` and ``float()`` raise OverflowError), NaN, ±inf and what
    ``float()`` refuses are False, never an exception."""
    assert units.is_finite_number(value) is False


@pytest.mark.parametrize("convert", [units.inverse_depth_to_mm, units.inverse_depth8_to_mm], ids=["t", "v8"])
@pytest.mark.parametrize("near, far", [(10**400, 4000.0), (500.0, 10**400), (None, 4000.0), (500.0, "abc"),
                                       (500.0, [4000.0]), (math.nan, 4000.0), (500.0, -math.inf)],
                         ids=["near_huge", "far_huge", "near_none", "far_text", "far_list", "near_nan", "far_-inf"])
def test_a_depth_range_that_is_no_finite_number_is_the_range_valueerror(convert, near, far):
    """The range check uses :func:`units.is_finite_number`: 10**400 is refused as inf is, and None, text that is no
    number or a list is the same ValueError naming the range (was ``math.isfinite``'s TypeError, §48)."""
    with pytest.raises(ValueError, match=r"^the depth range must be 0 < near < far mm \(finite\)"):
        convert(np.array([1.0]), near, far)


def test_inverse_depth8_to_mm_checks_the_range_and_its_values_once(monkeypatch):
    """reliability.md §48: the 8-bit law checked the range twice (itself, then ``inverse_depth_to_mm``) and its
    values twice (0 … 255, then as a nearness 0 … 1); now once each, in the same order (range first), same result."""
    v = np.array([[255.0, 127.5, 0.0]])
    want = units.inverse_depth_to_mm(v / 255.0, 1000.0, 4000.0)
    calls = []
    check = units._check_depth_range
    monkeypatch.setattr(units, "_check_depth_range", lambda near, far: (calls.append((near, far)), check(near, far)))
    assert np.array_equal(units.inverse_depth8_to_mm(v, 1000.0, 4000.0), want)
    assert calls == [(1000.0, 4000.0)]
    with pytest.raises(ValueError, match="depth range"):  # a bad range and bad values: the range is named first
        units.inverse_depth8_to_mm(np.array([300.0]), 4000.0, 1000.0)
    with pytest.raises(ValueError, match="0 … 255"):
        units.inverse_depth8_to_mm(np.array([300.0]), 1000.0, 4000.0)


def test_number_checks_refuse_an_int_beyond_float_with_their_valueerror_not_overflowerror():
    """10**400 (what JSON reads from 401 digits) through the API: the checks' own ValueError / False, where
    ``math.isfinite`` and ``float`` raised OverflowError until 7 Dec 2026 (reliability.md §48)."""
    from syndof import camera, depth_io

    with pytest.raises(ValueError, match="max_coc must be a finite CoC"):
        units.max_sigma(10**400)
    assert depth_io.valid_scale(10**400) is False and depth_io.valid_scale(1000) is True
    with pytest.raises(ValueError, match="f must be a finite number"):
        camera._check_number(10**400, "f")
