"""Benchmark loaders (pairing, polarity as data, errors) and the RTF / SYNDOF regression protocols."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import loadmat

from dmenet.eval import benchmarks as B
from dmenet.eval import protocols as P
from dmenet.eval import rtf, syndof_test
from syndof import io, units


def _write(path, array):
    io.write_image(path, array) if path.suffix != ".bmp" else _write_bmp(path, array)


def _samples(name, root, **kwargs):
    return P.make_protocol(B.get_spec(name), root).list_samples(**kwargs)


def _gt(name, root, sample):
    return P.make_protocol(B.get_spec(name), root).load_gt(sample)


def _write_bmp(path, array):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array)


def test_registry_holds_polarity_as_data():
    assert B.BENCHMARKS["cuhk"].white_is_blurred is True
    assert B.BENCHMARKS["ctcug"].white_is_blurred is True
    assert B.BENCHMARKS["xu100"].white_is_blurred is False
    assert B.BENCHMARKS["dut"].white_is_blurred is False
    assert B.BENCHMARKS["xu100"].default_resolution == "320"
    with pytest.raises(ValueError, match="known"):
        B.get_spec("nope")


def test_pairing_is_case_insensitive_across_extensions(tmp_path):
    img = np.zeros((4, 5, 3), np.uint8)
    _write(tmp_path / "image" / "Out_Of_Focus0001.JPG", img)
    _write(tmp_path / "image" / "b.png", img)
    _write(tmp_path / "gt" / "out_of_focus0001.png", np.zeros((4, 5), np.uint8))
    _write(tmp_path / "gt" / "B.bmp", np.zeros((4, 5), np.uint8))
    samples = _samples("cuhk", tmp_path)
    assert [(s.image.name, s.gt.name) for s in samples] == [("b.png", "B.bmp"),
                                                             ("Out_Of_Focus0001.JPG", "out_of_focus0001.png")]


def test_unmatched_and_duplicate_files_raise_naming_them(tmp_path):
    img = np.zeros((4, 5, 3), np.uint8)
    _write(tmp_path / "image" / "a.jpg", img)
    _write(tmp_path / "image" / "lonely.jpg", img)
    _write(tmp_path / "gt" / "a.png", np.zeros((4, 5), np.uint8))
    _write(tmp_path / "gt" / "orphan.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(io.InputError, match=r"lonely\.jpg.*orphan\.png"):
        _samples("cuhk", tmp_path)
    _write(tmp_path / "gt" / "a.bmp", np.zeros((4, 5), np.uint8))
    with pytest.raises(io.InputError, match="duplicate stem"):
        B.index_by_stem(tmp_path / "gt")
    with pytest.raises(io.InputError, match="none of the folders"):
        _samples("xu100", tmp_path)
    with pytest.raises(io.InputError, match="no_such_root: no such folder"):  # not "none of ['gt'] exists"
        _samples("cuhk", tmp_path / "no_such_root")
    with pytest.raises(io.InputError, match="not a folder"):
        _samples("cuhk", tmp_path / "image" / "a.jpg")


def test_size_mismatch_raises_naming_both_files(tmp_path):
    _write(tmp_path / "image" / "a.jpg", np.zeros((4, 5, 3), np.uint8))
    _write(tmp_path / "gt" / "a.png", np.zeros((4, 6), np.uint8))
    (sample,) = _samples("cuhk", tmp_path)
    with pytest.raises(io.InputError, match=r"a\.jpg.*5x4.*a\.png.*6x4"):
        B.check_same_size(sample, io.read_image(sample.image), _gt("cuhk", tmp_path, sample))


def test_gt_polarity_converted_on_load(tmp_path):
    mask = np.array([[255, 0], [0, 0]], np.uint8)
    for name in ("cuhk", "xu100"):
        _write(tmp_path / name / "gt" / "1.bmp", mask)
    blur_cuhk = _gt("cuhk", tmp_path / "cuhk", B.Sample("1", None, tmp_path / "cuhk" / "gt" / "1.bmp"))
    blur_xu = _gt("xu100", tmp_path / "xu100", B.Sample("1", None, tmp_path / "xu100" / "gt" / "1.bmp"))
    np.testing.assert_array_equal(blur_cuhk, [[1, 0], [0, 0]])  # white = blurred
    np.testing.assert_array_equal(blur_xu, [[0, 1], [1, 1]])  # white = in focus → inverted


@pytest.mark.shared
def test_real_benchmarks_load(shared):
    with pytest.raises(io.InputError, match="995 GT file"):  # 5 photos beside 1000 masks: strict by default
        _samples("cuhk", shared("data", "cuhk"))
    for name, n in (("cuhk", 5), ("xu100", 3), ("dut", 3)):
        samples = _samples(name, shared("data", name), allow_missing_images=name == "cuhk")
        assert len(samples) == n
        for s in samples:
            gt = _gt(name, shared("data", name), s)
            B.check_same_size(s, io.read_image(s.image), gt)
            assert set(np.unique(gt)) <= {0.0, 1.0}
    # predictions mode lists all 1000 CUHK masks although only 5 images are present
    assert len(_samples("cuhk", shared("data", "cuhk"), need_images=False)) == 1000


# ------------------------------------------------------------------------------------------------------- RTF
def _table_lookup(radius: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Independent σ lookup: RTF radii are exactly table radii, so a dict does it (asserts that they are)."""
    by_radius = {float(r): float(s) for s, r in table}
    assert set(np.unique(radius).tolist()) <= set(by_radius)
    return np.vectorize(by_radius.__getitem__)(radius)


@pytest.mark.shared
def test_rtf_protocol_hand_checkable(shared):
    root = shared("data", "rtf")
    (sample,) = rtf.list_rtf(root)
    table = loadmat(str(root / "convertion.mat"))["convertion"]
    assert table.shape == (23, 2) and table[:, 0].max() == pytest.approx(3.275)
    gt = rtf.load_rtf_sigma(sample.gt)
    radius = loadmat(str(sample.gt))["blurMap"]
    np.testing.assert_allclose(gt, _table_lookup(radius, table), atol=1e-6)
    # GT against itself is 0, whatever the crop
    assert rtf.rtf_errors(gt, gt) == (0.0, 0.0)
    assert rtf.rtf_errors(gt[:352, :352], gt) == (0.0, 0.0)
    # a constant released-checkpoint output o = 0.2 → σ = (15·0.2 − 1)/2 = 1.0 px, on the 352² top-left crop
    o = np.full((352, 352), 0.2)
    sigma = rtf.prediction_to_sigma(o, "released")
    np.testing.assert_allclose(sigma, 1.0)
    g = np.minimum(gt[:352, :352].astype(np.float64), 3.275) / 3.275
    mse, mae = rtf.rtf_errors(sigma, gt)
    assert mae == pytest.approx(np.mean(np.abs(1.0 / 3.275 - g)), abs=1e-9)
    assert mse == pytest.approx(np.mean((1.0 / 3.275 - g) ** 2), abs=1e-9)
    # project mapping σ = 7·o: o = 1 → 7 px, clipped to 3.275 → normalised 1
    assert rtf.rtf_errors(rtf.prediction_to_sigma(np.ones((360, 360)), "project"), gt)[1] == pytest.approx(
        np.mean(1.0 - np.minimum(gt, 3.275) / 3.275), abs=1e-6)


def test_rtf_mapping_names_and_clip():
    with pytest.raises(ValueError, match=r"mapping must be one of \('project', 'released', 'sigma'\), got 'bogus'"):
        rtf.prediction_to_sigma(np.zeros((2, 2)), "bogus")
    assert rtf.normalise_sigma(np.array([0.0, 3.275, 10.0])).tolist() == [0.0, 1.0, 1.0]
    table = np.array([[0.3, 0.5], [0.5, 0.75], [3.275, 6.0]])
    assert units.disk_radius_to_sigma(np.array([0.6, 0.7, 9.0]), table).tolist() == [0.3, 0.5, 3.275]


# ---------------------------------------------------------------------------------------------------- SYNDOF
def test_syndof_label_protocol(tmp_path):
    sigma = np.array([[0.0, 3.5], [7.0, 1.4]], np.float32)
    io.write_sigma_map(tmp_path / "blur_map" / "s.png", sigma)
    io.write_image(tmp_path / "image" / "s.png", np.zeros((2, 2, 3), np.float32))
    io.write_json_atomic(tmp_path / "dataset.json", {"format": "syndof", "max_coc": 29})
    (sample,) = _samples("syndof", tmp_path)
    label = _gt("syndof", tmp_path, sample)
    np.testing.assert_allclose(label, sigma / 7.0, atol=1e-6)
    mse, mae = syndof_test.label_errors(np.full((2, 2), 0.5), label)
    diffs = np.abs(0.5 - sigma / 7.0)
    assert mae == pytest.approx(diffs.mean(), abs=1e-6) and mse == pytest.approx((diffs**2).mean(), abs=1e-6)
    io.write_json_atomic(tmp_path / "dataset.json", {"max_coc": 15})  # σ_max 3.5 px, below the map's 7 px
    with pytest.raises(io.InputError, match="σ up to 7 px, above the σ_max 3.5 px of max_coc 15"):  # was clipped
        _gt("syndof", tmp_path, sample)  # to the label 1 (reliability.md §51)


def test_released_output_mapping():
    np.testing.assert_allclose(units.released_output_to_sigma(np.array([0.0, 1 / 15, 1.0])), [0.0, 0.0, 7.0])
    assert units.released_output_to_sigma(np.float64(0.5)) == pytest.approx(3.25)
    # the two conventions differ by at most 0.5 px on [0, 1]
    o = np.linspace(0, 1, 1001)
    assert np.abs(units.released_output_to_sigma(o) - units.label_to_sigma(o)).max() <= 0.5 + 1e-12


def test_read_mask_polarity(tmp_path):
    import cv2

    m = np.zeros((6, 6), np.uint8)
    m[:, 3:] = 255
    path = tmp_path / "m.png"
    cv2.imwrite(str(path), m)
    np.testing.assert_array_equal(B.read_mask(path), (m > 0).astype(np.float32))
    np.testing.assert_array_equal(B.read_mask(path, white_is_blurred=False), (m == 0).astype(np.float32))
    rgb = tmp_path / "rgb.png"  # a colour mask goes through read_image (luminance), same polarity rule
    cv2.imwrite(str(rgb), np.repeat(m[..., None], 3, axis=2))
    np.testing.assert_array_equal(B.read_mask(rgb), (m > 0).astype(np.float32))
    with pytest.raises(io.InputError, match="none.png"):
        B.read_mask(tmp_path / "none.png")
