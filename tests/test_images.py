"""syndof.images.as_rgb_float: the one check of an image handed to the library."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from syndof.images import as_rgb_float


def test_kinds_of_images_become_the_same_float_rgb():
    u8 = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    expected = u8.astype(np.float32) / 255
    for given in (u8, u8.astype(np.float32) / 255, u8.astype(np.uint16) * 257, torch.from_numpy(u8),
                  np.dstack([u8, np.full((4, 5), 7, np.uint8)]), u8[:, ::-1][:, ::-1]):
        got = as_rgb_float(given)
        assert got.dtype == np.float32 and got.shape == (4, 5, 3) and got.flags.c_contiguous
        np.testing.assert_allclose(got, expected, atol=1e-6)
    gray = as_rgb_float(u8[..., 0])
    assert gray.shape == (4, 5, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    assert as_rgb_float(u8, dtype=np.float64).dtype == np.float64
    readonly = u8.copy()
    readonly.flags.writeable = False
    assert as_rgb_float(readonly).flags.writeable  # a new array


@pytest.mark.parametrize("image, words", [
    (np.full((4, 5, 3), 200.0, np.float32), "float images must be RGB in [0, 1]"),  # 8-bit values in floats
    (np.full((4, 5, 3), np.nan, np.float32), "non-finite"),
    (np.zeros((3, 4, 5), np.float32), "got shape (3, 4, 5)"),  # channel-first
    (np.zeros((4, 5, 3), np.int64), "unsupported dtype int64"),
    (np.zeros((4, 5, 3), bool), "unsupported dtype bool"),
    (np.zeros((0, 5, 3), np.uint8), "too small"),
    ("photo.png", "got shape ()"),
])
def test_what_would_give_a_wrong_result_is_refused_by_name(image, words):
    with pytest.raises(ValueError, match="^photo") as info:
        as_rgb_float(image, name="photo")
    assert words in str(info.value)


def test_non_native_byte_order_is_read_as_its_values():
    """A big-endian uint16 image ('>u2', as raw or FITS data come) was refused as an "unsupported dtype >u2 (uint8,
    uint16 …)": it is uint16, and gives the same floats as the native array (float alike)."""
    native = (np.arange(2 * 6 * 3).reshape(2, 6, 3) * 1000).astype(np.uint16)
    expected = as_rgb_float(native)
    np.testing.assert_array_equal(as_rgb_float(native.astype(">u2")), expected)
    np.testing.assert_array_equal(as_rgb_float((native / 65535).astype(">f4")), as_rgb_float(native / 65535))


@pytest.mark.parametrize("low", [-1.0, -0.6])
def test_h46_a_normalised_float_image_is_refused_not_clipped_black(low):
    """A [-1, 1] tensor (x·2 − 1) passed the 0…255 check and was clipped to [0, 1]: every pixel below 0 black, a
    silently wrong map from every method. Slight undershoot (resizing) is still clipped."""
    image = np.linspace(low, 1.0, 48 * 64 * 3).reshape(48, 64, 3)
    with pytest.raises(ValueError, match=r"image: float values down to .*\[-1, 1\]"):
        as_rgb_float(image)
    assert as_rgb_float(np.full((4, 4, 3), -0.01)).min() == 0.0


def test_h46_every_method_refuses_a_minus_one_one_image():
    from dmenet.methods import MethodOptions, make_method

    image = np.random.default_rng(0).random((40, 48, 3)) * 2 - 1
    for name in ("lbp", "laplacian", "zhuo_sim", "hifst"):
        with pytest.raises(ValueError, match="float values down to"):
            make_method(name, MethodOptions()).estimate(image)
