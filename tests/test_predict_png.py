"""predict's PNG writes (issue 19): the fast encoder settings are lossless and decode to the same arrays as the
compact ones, and the look-up-table colour mapping of the preview gives matplotlib's colours pixel for pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import colormaps

from dmenet import predict_outputs
from syndof import io as sio
from syndof import units, viz


def _decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("shape, dtype", [((48, 64), np.uint8), ((48, 64, 3), np.uint8), ((48, 64, 4), np.uint8),
                                          ((48, 64), np.uint16), ((48, 64, 3), np.uint16)])
def test_fast_png_decodes_to_the_same_pixels_as_the_compact_one(rng, shape, dtype):
    top = np.iinfo(dtype).max
    array = rng.integers(0, top + 1, shape).astype(dtype)
    array[:, : shape[1] // 2] = array[:1, : shape[1] // 2]  # a smooth half, where the row filters matter
    fast, small = sio.encode_png(array, fast=True), sio.encode_png(array)
    np.testing.assert_array_equal(_decode(fast), _decode(small))
    assert _decode(fast).dtype == dtype


def test_write_outputs_files_decode_to_the_maps(tmp_path, rng):
    h, w = 37, 53
    image = rng.random((h, w, 3)).astype(np.float32)
    sigma = (rng.random((h, w)) * 7.0).astype(np.float32)
    sigma[0, :3] = [0.0, 0.05, 6553.5 / 10]  # rounding edge and a large value: uint16 round(10·σ)
    blur = rng.random((h, w)).astype(np.float32)
    maps = predict_outputs.Maps(blur=blur, sigma=sigma, sigma_max=7.0)
    written = predict_outputs.write_outputs(tmp_path / "a", image, maps, "png")
    assert sorted(p.name for p in written) == ["a_blur.png", "a_preview.png", "a_sigma.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_blur.png", "a_preview.png", "a_sigma.png"]  # no temps
    raw = _decode((tmp_path / "a_sigma.png").read_bytes())
    assert raw.dtype == np.uint16 and raw.shape == (h, w, 3)
    np.testing.assert_array_equal(raw, np.repeat(units.sigma_to_syndof(sigma)[..., None], 3, axis=2))
    np.testing.assert_array_equal(sio.read_sigma_map(tmp_path / "a_sigma.png"),
                                  units.syndof_to_sigma(units.sigma_to_syndof(sigma)))
    np.testing.assert_array_equal(_decode((tmp_path / "a_blur.png").read_bytes()), sio.to_uint8(blur))
    preview = cv2.cvtColor(_decode((tmp_path / "a_preview.png").read_bytes()), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(preview, predict_outputs._preview(image, sigma, 7.0))
    # the same pixels as the compact encoder's files
    np.testing.assert_array_equal(raw, _decode(sio.encode_sigma_map(sigma)))


def _matplotlib_colorize(values, vmax, vmin=0.0, cmap="inferno"):
    """syndof.viz.colorize before the look-up table: matplotlib's float RGBA, rounded."""
    norm = np.clip((np.asarray(values, dtype=np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)
    return sio.to_uint8(colormaps[cmap](norm)[..., :3])


@pytest.mark.parametrize("cmap", ["inferno", "viridis", "gray"])
@pytest.mark.parametrize("vmin, vmax", [(0.0, 7.0), (-1.0, 3.3), (0.1, 0.2)])
def test_colorize_gives_matplotlibs_colours(rng, cmap, vmin, vmax):
    values = (rng.random((40, 300)) * (vmax - vmin) * 1.4 + vmin - 0.2 * (vmax - vmin)).astype(np.float32)
    edges = (vmin + np.arange(257) / 256 * (vmax - vmin)).astype(np.float32)  # bin edges and their neighbours
    values[0, :257], values[1, :257] = edges, np.nextafter(edges, np.float32(-np.inf))
    values[2, :257] = np.nextafter(edges, np.float32(np.inf))
    values[3, :4] = [np.nan, np.inf, -np.inf, vmax]
    got = viz.colorize(values, vmax=vmax, vmin=vmin, cmap=cmap)
    assert got.dtype == np.uint8 and got.shape == (40, 300, 3)
    np.testing.assert_array_equal(got, _matplotlib_colorize(values, vmax, vmin, cmap))


def test_syndof_values_encode_like_a_sigma_map_and_refuse_other_dtypes():
    sigma = np.array([[0.0, 0.05, 1.25], [7.0, 3.3, 0.04]], np.float32)
    value = units.sigma_to_syndof(sigma)
    assert sio.encode_syndof_values(value) == sio.encode_sigma_map(sigma)
    np.testing.assert_array_equal(_decode(sio.encode_syndof_values(value, channels=1)), value)
    with pytest.raises(ValueError, match="uint16"):
        sio.encode_syndof_values(value.astype(np.int32))
