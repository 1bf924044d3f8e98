"""Depth readers: round trips for .dpt/.pfm/.npy/16-bit PNG, invalid-pixel filling, bad inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from syndof.depth_io import default_scale, disparity_to_depth, fill_invalid, read_depth, write_dpt, write_pfm
from syndof.io import InputError


@pytest.fixture
def depth():
    yy, xx = np.mgrid[0:12, 0:17].astype(np.float64)
    return 1.5 + 0.25 * yy + 0.125 * xx  # exactly representable in float32


def test_dpt_round_trip_with_scale(tmp_path, depth):
    p = tmp_path / "frame.dpt"
    write_dpt(p, depth)
    assert np.array_equal(read_depth(p, scale=1.0), depth)
    assert np.allclose(read_depth(p), depth * 1000.0)  # Sintel default: ×1000 → mm


@pytest.mark.parametrize("little", [True, False])
def test_pfm_round_trip_both_endiannesses(tmp_path, depth, little):
    p = tmp_path / "d.pfm"
    write_pfm(p, depth, little_endian=little)
    raw = p.read_bytes()
    assert (b"-1.0" in raw[:20]) == little
    assert np.array_equal(read_depth(p), depth)  # rows stored bottom-up, read back top-down


def test_pfm_bottom_up_rows(tmp_path):
    p = tmp_path / "rows.pfm"
    rows = np.array([[1.0, 1.0], [2.0, 2.0]], dtype="<f4")
    p.write_bytes(b"Pf\n2 2\n-1.0\n" + rows.tobytes())  # file row 0 is the image's BOTTOM row
    assert read_depth(p)[:, 0].tolist() == [2.0, 1.0]


def test_npy_and_png16_round_trip(tmp_path, depth):
    np.save(tmp_path / "d.npy", depth)
    assert np.array_equal(read_depth(tmp_path / "d.npy"), depth)
    cm = (depth * 100).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), np.repeat(cm[..., None], 3, axis=2))
    assert np.array_equal(read_depth(tmp_path / "d.png"), cm * 10.0)  # SYNDOF PNG: cm ×10 → mm
    assert np.array_equal(read_depth(tmp_path / "d.png", scale=1.0), cm.astype(np.float64))


def test_png8_rejected(tmp_path):
    cv2.imwrite(str(tmp_path / "d8.png"), (np.arange(64).reshape(8, 8)).astype(np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        read_depth(tmp_path / "d8.png")


def test_n3_an_8bit_depth_png_is_refused_saying_how_to_convert_it(tmp_path):
    """An 8-bit depth PNG (``../shared/data/rgbd/pynet_bokeh``: relative, white = near) was refused with "8-bit maps
    hold no metric depth" and no word of what to give instead (reliability.md §23, N3)."""
    cv2.imwrite(str(tmp_path / "d8.png"), (np.arange(64).reshape(8, 8)).astype(np.uint8))
    with pytest.raises(InputError) as info:
        read_depth(tmp_path / "d8.png")
    text = str(info.value)
    assert "d8.png" in text and "mm" in text and ".npy" in text and "white = near" in text


def test_invalid_pixels_filled_from_neighbours(tmp_path, depth):
    bad = depth.copy()
    bad[3, 4] = np.nan
    bad[0, 0] = np.inf
    bad[7, 9] = 0.0
    bad[8, 9] = -2.0
    np.save(tmp_path / "b.npy", bad)
    out = read_depth(tmp_path / "b.npy")
    assert np.all(np.isfinite(out)) and out.min() > 0
    for y, x in ((3, 4), (0, 0), (7, 9), (8, 9)):
        nb = [depth[yy, xx] for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1))
              if 0 <= yy < 12 and 0 <= xx < 17]
        assert min(nb) <= out[y, x] <= max(nb)


def test_disparity_to_depth():
    disp = np.array([[10.0, 20.0], [0.0, np.inf]])
    z = disparity_to_depth(disp, focal_px=1000.0, baseline_mm=100.0, doffs_px=10.0)
    assert z[0, 0] == pytest.approx(100.0 * 1000.0 / 20.0)
    assert z[0, 1] == pytest.approx(100.0 * 1000.0 / 30.0)
    assert np.all(np.isfinite(z)) and z[1, 0] in (z[0, 0], z[0, 1])
    with pytest.raises(InputError):
        disparity_to_depth(np.zeros((3, 3)), 1000.0, 100.0)


def test_truncated_and_wrong_header_dpt(tmp_path, depth):
    p = tmp_path / "t.dpt"
    write_dpt(p, depth)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(InputError, match="truncated") as err:
        read_depth(p)
    assert "t.dpt" in str(err.value)
    q = tmp_path / "h.dpt"
    q.write_bytes(np.array([1.0, 2.0, 2.0], dtype="<f4").tobytes() + b"\0" * 16)
    with pytest.raises(InputError, match="tag"):
        read_depth(q)
    (tmp_path / "s.dpt").write_bytes(b"abc")
    with pytest.raises(InputError, match="header"):
        read_depth(tmp_path / "s.dpt")


def test_constant_and_all_invalid_depth(tmp_path):
    np.save(tmp_path / "c.npy", np.full((5, 5), 3.0))
    with pytest.raises(InputError, match="constant") as err:
        read_depth(tmp_path / "c.npy")
    assert "c.npy" in str(err.value)
    np.save(tmp_path / "i.npy", np.full((5, 5), np.inf))
    with pytest.raises(InputError, match="no valid"):
        read_depth(tmp_path / "i.npy")
    with pytest.raises(InputError):
        fill_invalid(np.full((2, 2), np.nan))


def test_missing_and_unknown_format(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_depth(tmp_path / "nope.dpt")
    (tmp_path / "d.xyz").write_bytes(b"123")
    with pytest.raises(InputError, match="unsupported"):
        read_depth(tmp_path / "d.xyz")


@pytest.mark.shared
def test_reads_sintel_reference(shared):
    path = shared("data", "syndof_reference", "input", "sintel_market_2_frame_0001.dpt")
    d = read_depth(path)
    assert d.shape == (436, 1024) and d.dtype == np.float64 and d.min() > 6000  # mm
    # the Sintel .dpt layout parsed by hand: float32 tag 202021.25, int32 width and height, float32 rows (metres)
    assert np.fromfile(path, "<f4", count=1)[0] == 202021.25
    assert np.fromfile(path, "<i4", count=3)[1:].tolist() == [1024, 436]
    metres = np.fromfile(path, "<f4", offset=12).reshape(436, 1024)
    np.testing.assert_array_equal(d, metres.astype(np.float64) * 1000.0)


def test_a_folder_name_does_not_change_the_depth_unit(tmp_path, depth):
    """The original generator read a 16-bit PNG under any path containing "MPI" (say a user's ``MPII/`` folder)
    ×1000, 100× the ×10 of other PNGs; kept with a warning until 6 Dec 2026 (reliability.md §8 H1), dropped then
    (§29: no behaviour is switched by substrings of a name): the unit follows the format, and --depth-scale
    chooses another."""
    import warnings

    folder = tmp_path / "MPII_poses"
    folder.mkdir()
    p = folder / "d.png"
    cv2.imwrite(str(p), np.rint(depth * 8).astype(np.uint16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(read_depth(p), np.rint(depth * 8) * 10.0)
        assert np.allclose(read_depth(p, scale=1000.0), np.rint(depth * 8) * 1000.0)
    assert default_scale(tmp_path / "MPI_x" / "d.png") == 10.0 and default_scale(tmp_path / "d.DPT") == 1000.0


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf"), "x"])
def test_bad_scale_is_named_not_blamed_on_the_file(tmp_path, depth, scale):
    np.save(tmp_path / "d.npy", depth)
    with pytest.raises(ValueError, match="depth scale") as err:
        read_depth(tmp_path / "d.npy", scale=scale)
    assert not isinstance(err.value, InputError)


@pytest.mark.parametrize("suffix", [".npy", ".dpt", ".pfm", ".png"])
def test_k4_a_source_depth_file_is_read_once_and_its_digest_is_of_the_bytes_decoded(tmp_path, depth, suffix,
                                                                                    monkeypatch):
    """§22 L6 / closing note: ``Source.load_recorded`` hashed the depth file, read it, and hashed it again (three
    reads a sample) to refuse a file changed during the read. Now the file is opened once and the recorded SHA-256
    is of exactly the bytes decoded (``read_depth_sha256``), as the image's; depth and digest as before."""
    import builtins
    import io
    import os

    from syndof.io import file_sha256, write_image
    from syndof.scenes import Source, SourceKind

    write_image(tmp_path / "a.png", np.full((12, 17, 3), 0.5, np.float32))
    path = tmp_path / "depths" / f"a{suffix}"
    path.parent.mkdir()
    {".npy": lambda: np.save(path, depth), ".dpt": lambda: write_dpt(path, depth),
     ".pfm": lambda: write_pfm(path, depth),
     ".png": lambda: cv2.imwrite(str(path), np.rint(depth * 100).astype(np.uint16))}[suffix]()
    opened, real_open = [], builtins.open

    def counting(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    monkeypatch.setattr(io, "open", counting)
    source = Source("a", SourceKind.FILE, image_path=str(tmp_path / "a.png"), depth_path=str(path), depth_scale=1.0)
    _, got, digests = source.load_recorded(np.random.default_rng(0))
    monkeypatch.undo()
    assert len(opened) == 1
    assert digests["depth"] == file_sha256(path)
    assert np.array_equal(got, read_depth(path, scale=1.0))
