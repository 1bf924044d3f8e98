"""Evaluation protocols against hand values: RTF crop limit (< 16 px per side), sample order by numeric id, where
convertion.mat is looked for; the SYNDOF test label σ / σ_max with σ_max from dataset.json."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from dmenet.eval import rtf


def test_rtf_crop_refuses_a_difference_of_16_px():
    a, b = rtf.common_crop(np.zeros((32, 40)), np.ones((47, 40)))  # 15 px: the network's crop, absorbed
    assert a.shape == b.shape == (32, 40)
    with pytest.raises(ValueError, match="16"):
        rtf.common_crop(np.zeros((32, 40)), np.ones((48, 40)))



def test_rtf_release_samples_sorted_by_numeric_id(tmp_path):
    import cv2

    savemat(tmp_path / rtf.TABLE_NAME, {"t": np.array([[0.0, 0.0], [1.0, 2.0]])})
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"image_{i}.png"), np.zeros((4, 4, 3), np.uint8))
        savemat(tmp_path / f"map_{i}.mat", {"blurMap": np.zeros((4, 4))})
    assert [s.stem for s in rtf.list_rtf(tmp_path)] == ["image_1", "image_2", "image_10"]


def test_rtf_table_of_the_noise_level_comes_first(tmp_path):
    for d in (tmp_path, tmp_path / "gt", tmp_path / "gt" / "1"):
        d.mkdir(parents=True, exist_ok=True)
        savemat(d / rtf.TABLE_NAME, {"t": np.zeros((2, 2))})
    assert rtf.find_table(tmp_path, "1") == tmp_path / "gt" / "1" / rtf.TABLE_NAME
    assert rtf.find_table(tmp_path, "1.6") == tmp_path / "gt" / rtf.TABLE_NAME


def test_syndof_test_label_uses_the_folders_max_coc(tmp_path):
    """dataset.json max_coc 13 → σ_max (13 − 1) / 4 = 3 px: a stored σ of 1.5 px is label 0.5 (not 1.5 / 7)."""
    import json

    from dmenet.eval import syndof_test
    from syndof import io as sio

    (tmp_path / "dataset.json").write_text(json.dumps({"format": "syndof", "max_coc": 13}))
    sio.write_sigma_map(tmp_path / "a.png", np.full((4, 5), 1.5))
    assert syndof_test.read_max_coc(tmp_path) == 13.0
    label = syndof_test.load_label(tmp_path / "a.png", tmp_path, syndof_test.GTKind.SIGMA_MAP)
    assert np.allclose(label, 0.5)


def test_dbd_protocol_reports_its_headline_adaptive_factor_first(tmp_path):
    """--adaptive-factor 3: F at T = min(1, 3·mean) is reported (first), besides 1.5 and 2.0. Map mean 0.4 →
    T = 1: only the pixel at 1.0 is blurred, exactly the GT's."""
    from dmenet.eval import benchmarks as B
    from dmenet.eval import protocols

    proto = protocols.make_protocol(B.get_spec("cuhk"), tmp_path, protocols.ProtocolOptions(adaptive_factor=3.0))
    row = proto.acc.add("a", np.array([[0.2, 0.2], [0.2, 1.0]], np.float32), np.array([[0, 0], [0, 1]], np.float32))
    assert row["adaptive_f_3"] == pytest.approx(1.0)
    assert proto.acc.adaptive_factors == (3.0, 1.5, 2.0)


def test_mask_levels_are_value_over_the_full_range(tmp_path):
    """A grey mask's level is value / 255 (8-bit) or value / 65535 (16-bit): white is exactly 1."""
    import cv2

    from dmenet.eval import benchmarks as B

    cv2.imwrite(str(tmp_path / "m16.png"), np.array([[0, 65535], [13107, 65535]], np.uint16))
    cv2.imwrite(str(tmp_path / "m8.png"), np.array([[0, 255], [51, 255]], np.uint8))
    for name in ("m16.png", "m8.png"):
        assert B.read_mask_level(tmp_path / name).tolist() == [[0.0, 1.0], [np.float32(0.2), 1.0]]


@pytest.mark.parametrize("name,resolution,white_is_blurred", [("cuhk", "native", True), ("xu100", "320", False),
                                                              ("dut", "320", False)])
def test_dbd_benchmarks_default_resolution_and_polarity(tmp_path, name, resolution, white_is_blurred):
    """CUHK is scored at native size (HiFST style), xu100 and DUT at 320×320 (BTBNet / SG style); xu100 and DUT
    masks are white = in focus: a white GT pixel reads as sharp (0)."""
    import cv2

    from dmenet.eval import benchmarks as B
    from dmenet.eval import protocols

    spec = B.get_spec(name)
    proto = protocols.make_protocol(spec, tmp_path)
    assert proto.acc.resolution.value == resolution
    assert spec.white_is_blurred is white_is_blurred
    cv2.imwrite(str(tmp_path / "m.png"), np.array([[0, 255]], np.uint8))
    assert proto.load_gt(B.Sample("m", tmp_path / "m.png", tmp_path / "m.png")).tolist() == \
        [[0.0, 1.0] if white_is_blurred else [1.0, 0.0]]
