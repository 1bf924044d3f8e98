"""syndof.io: robust readers (gray, RGBA, 16-bit, EXIF, bad files), atomic writers, σ-map encoding."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from syndof import io as sio
from syndof.io import decode as sio_decode
from syndof.io import InputError


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _no_temps(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------------------- reading
def test_read_rgb_png_exact(tmp_path):
    rgb = _rgb()
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    img = sio.read_image(path)
    assert img.dtype == np.float32 and img.shape == (20, 30, 3)
    np.testing.assert_allclose(img, rgb / 255.0, atol=1e-6)  # RGB order, not BGR


def test_read_gray_is_replicated(tmp_path):
    gray = _rgb()[..., 0]
    path = tmp_path / "g.png"
    cv2.imwrite(str(path), gray)
    img = sio.read_image(path)
    assert img.shape == (20, 30, 3)
    for c in range(3):
        np.testing.assert_allclose(img[..., c], gray / 255.0, atol=1e-6)


def test_read_rgba_drops_alpha(tmp_path):
    rgb = _rgb()
    rgba = np.concatenate([rgb, np.full((20, 30, 1), 7, np.uint8)], axis=2)
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    img = sio.read_image(path)
    assert img.shape == (20, 30, 3)
    np.testing.assert_allclose(img, rgb / 255.0, atol=1e-6)


def test_read_16bit_scaled_to_unit_range(tmp_path):
    rgb16 = (_rgb().astype(np.uint16) * 257)
    rgb16[0, 0] = 65535
    path = tmp_path / "s.png"
    cv2.imwrite(str(path), rgb16[..., ::-1])
    img = sio.read_image(path)
    assert img.dtype == np.float32 and img.max() == pytest.approx(1.0)
    np.testing.assert_allclose(img, rgb16 / 65535.0, atol=1e-6)
    gray16 = np.full((5, 6), 32768, np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    np.testing.assert_allclose(sio.read_image(tmp_path / "g16.png"), 32768 / 65535.0, atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_once(tmp_path, orientation):
    """TIFF tag 274: OpenCV's decoder applies it itself (even with IMREAD_IGNORE_ORIENTATION) and Pillow reports the
    size oriented; applied again on top, orientations 2-8 came out wrong and the header size of 5-8 disagreed with the
    pixels. Read once: Pillow's ``exif_transpose`` of the stored raster, and the header size its (width, height)."""
    from PIL import Image, ImageOps

    stored = (np.random.default_rng(orientation).random((20, 30, 3)) * 255).astype(np.uint8)
    path = tmp_path / f"o{orientation}.tif"
    Image.fromarray(stored).save(path, tiffinfo={274: orientation})
    with Image.open(path) as pil:
        shown = np.asarray(ImageOps.exif_transpose(pil))
    read = sio.read_image(path)
    assert read.shape[:2] == ((30, 20) if orientation >= 5 else (20, 30))
    assert np.array_equal(np.round(read * 255).astype(np.uint8), shown)
    assert sio.header_size(path) == (read.shape[1], read.shape[0])
    sizes = []
    image, _ = sio.read_image_sha256(path, check_size=lambda w, h: sizes.append((w, h)))
    assert np.array_equal(image, read) and sizes == [(read.shape[1], read.shape[0])]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_read_exif_rotated_jpeg(tmp_path, orientation):
    from PIL import Image, ImageOps

    arr = np.zeros((20, 40, 3), np.uint8)  # wide image, bright top-left corner
    arr[:6, :6] = 255
    pil = Image.fromarray(arr)
    exif = pil.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"r{orientation}.jpg"
    pil.save(path, quality=95, exif=exif.tobytes())
    img = sio.read_image(path)
    with Image.open(path) as ref_pil:
        ref = np.asarray(ImageOps.exif_transpose(ref_pil).convert("RGB"), dtype=np.float32) / 255.0
    assert img.shape == ref.shape
    if orientation in (6, 8):
        assert img.shape[:2] == (40, 20)
    np.testing.assert_allclose(img, ref, atol=2 / 255)


def test_missing_empty_truncated_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="not found") as err:
        sio.read_image(tmp_path / "nope.png")
    assert "nope.png" in str(err.value)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        sio.read_image(empty)
    ok, buf = cv2.imencode(".jpg", _rgb(64, 64)[..., ::-1])
    truncated = tmp_path / "trunc.jpg"
    for keep in (200, int(len(buf) * 0.6), len(buf) - 2):  # header only, mid-scan, missing end marker
        truncated.write_bytes(buf.tobytes()[:keep])
        with pytest.raises(InputError) as err:
            sio.read_image(truncated)
        assert "trunc.jpg" in str(err.value)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all" * 10)
    with pytest.raises(InputError):
        sio.read_image(garbage)
    assert isinstance(err.value, ValueError)  # callers may catch ValueError


@pytest.mark.parametrize("size", [0, 5, sio.HASH_BLOCK, 2 * sio.HASH_BLOCK + 17])
def test_file_sha256_is_the_digest_of_the_whole_file_read_in_blocks(tmp_path, size):
    import hashlib

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sio.file_sha256(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError):
        sio.file_sha256(tmp_path / "missing.bin")


# ----------------------------------------------------------------------------------------------------------- writing
def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    sio.write_json_atomic(target, {"a": 1})
    sio.write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert _no_temps(tmp_path) == []


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "keep.txt"
    sio.write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with sio.atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert _no_temps(tmp_path) == []
    # a writer that fails before producing bytes (bad dtype) does not touch the old file either: write_image itself
    # (encode_png(int32) raised before write_bytes_atomic was even called, which tested no writer)
    img_path = tmp_path / "img.png"
    sio.write_image(img_path, _rgb())
    before = img_path.read_bytes()
    with pytest.raises(ValueError, match=f"{img_path}: unsupported image dtype int32"):
        sio.write_image(img_path, np.zeros((4, 4), np.int32))
    assert img_path.read_bytes() == before
    assert _no_temps(tmp_path) == []


def test_write_image_round_trip_and_creates_folders(tmp_path):
    rgb = _rgb()
    path = tmp_path / "deep" / "er" / "x.png"
    sio.write_image(path, rgb / 255.0)
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], rgb)
    # deterministic bytes
    sio.write_image(tmp_path / "y.png", rgb / 255.0)
    assert path.read_bytes() == (tmp_path / "y.png").read_bytes()


@pytest.mark.parametrize("channels", [1, 3])
def test_sigma_map_16bit_round_trip(tmp_path, channels):
    sigma = np.round(np.random.default_rng(1).uniform(0, 7, (17, 23)), 1).astype(np.float32)
    path = tmp_path / "s.png"
    sio.write_sigma_map(path, sigma, channels=channels)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    assert raw.shape == ((17, 23, 3) if channels == 3 else (17, 23))
    if channels == 3:
        assert (raw[..., 0] == raw[..., 1]).all() and (raw[..., 1] == raw[..., 2]).all()
    np.testing.assert_array_equal(raw[..., 1] if channels == 3 else raw, np.round(sigma * 10).astype(np.uint16))
    back = sio.read_sigma_map(path)
    assert back.dtype == np.float32 and back.shape == (17, 23)
    np.testing.assert_allclose(back, sigma, atol=1e-5)


def test_sigma_map_npy(tmp_path):
    sigma = np.random.default_rng(2).uniform(0, 7, (5, 6)).astype(np.float32)
    sio.write_npy(tmp_path / "s.npy", sigma)
    np.testing.assert_array_equal(sio.read_sigma_map(tmp_path / "s.npy"), sigma)
    np.save(tmp_path / "neg.npy", -sigma)
    with pytest.raises(InputError):
        sio.read_sigma_map(tmp_path / "neg.npy")


def test_sigma_map_8bit_png_rejected(tmp_path):
    path = tmp_path / "eight.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 30, np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        sio.read_sigma_map(path)


def test_list_images(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.txt", "d.tif"):
        (tmp_path / name).write_bytes(b"x")
    os.mkdir(tmp_path / "sub.png")
    assert [p.name for p in sio.list_images(tmp_path)] == ["a.jpg", "b.PNG", "d.tif"]
    with pytest.raises(InputError):
        sio.list_images(tmp_path / "missing")


# ------------------------------------------------------------------------------------ bad input: one clear error
def test_float_tiff_in_0_255_or_with_nan_is_refused(tmp_path):
    """Audit #13: a float32 TIFF in 0…255 was read as all white, NaN pixels were returned as NaN."""
    rgb = _rgb() / 255.0
    cv2.imwrite(str(tmp_path / "ok.tiff"), rgb.astype(np.float32))
    np.testing.assert_allclose(sio.read_image(tmp_path / "ok.tiff"), rgb[..., ::-1], atol=1e-6)
    cv2.imwrite(str(tmp_path / "f255.tiff"), (rgb * 255).astype(np.float32))
    with pytest.raises(InputError, match="f255.tiff.*0, 1"):
        sio.read_image(tmp_path / "f255.tiff")
    nan = rgb.astype(np.float32)
    nan[2, 2, 0] = np.nan
    cv2.imwrite(str(tmp_path / "nan.tiff"), nan)
    with pytest.raises(InputError, match="nan.tiff.*NaN"):
        sio.read_image(tmp_path / "nan.tiff")


@pytest.mark.parametrize("dtype", [np.int32, np.int16])
@pytest.mark.parametrize("channels", [3, 4, 1])
def test_integer_tiff_other_than_uint8_uint16_is_an_input_error_naming_file_and_dtype(tmp_path, dtype, channels):
    """A colour int32 / int16 TIFF raised cv2.cvtColor's multi-line cv2.error (the dtype was checked after the
    channel reordering); every channel count now gets one InputError naming the file and the pixel type."""
    path = tmp_path / f"ints_{channels}.tif"
    assert cv2.imwrite(str(path), np.ones((6, 7, channels), dtype))
    with pytest.raises(InputError) as err:
        sio.read_image(path)
    assert err.value.path == str(path)
    assert str(err.value).startswith(f"{path}: ") and np.dtype(dtype).name in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, image, words", [
    ("a.png", _rgb() * 1.0, "0, 1"),                      # float 0…255
    ("a.png", _rgb().astype(np.int64), "int64"),          # integers other than uint8 / uint16
    ("a.jpg", _rgb().astype(np.uint16) * 257, "JPEG"),    # 16 bits into an 8-bit format
    ("a.png", np.where(_rgb() > 100, np.nan, 0.5), "NaN"),
    ("a.png", np.zeros((3, 20, 30), np.float32), "channels last"),
    ("a.png", np.zeros((4, 4, 5), np.uint8), "channels last"),
    ("a.png", np.zeros((0, 0, 3), np.float32), "empty"),
    ("a.bmp", _rgb(), ".png, .jpg, .jpeg"),
    ("a.tif", _rgb(), ".png, .jpg, .jpeg"),
    ("noname", _rgb(), "no suffix"),
])
def test_write_image_refuses_what_it_would_write_wrong(tmp_path, name, image, words):
    """Audit #12 / #26 / #27: all-white files, NaN written as 0, PNG bytes under other suffixes, cv2.error."""
    with pytest.raises(ValueError, match=words) as err:
        sio.write_image(tmp_path / name, image)
    assert name in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_write_image_still_takes_uint8_uint16_gray_rgba_and_bool(tmp_path):
    rgb = _rgb()
    for name, image in (("u8.png", rgb), ("u16.png", rgb.astype(np.uint16) * 257), ("g.png", rgb[..., 0] / 255.0),
                        ("rgba.png", np.dstack([rgb, rgb[..., :1]])), ("b.png", rgb > 100), ("j.JPG", rgb / 255.0)):
        sio.write_image(tmp_path / name, image)
    np.testing.assert_array_equal(sio.read_image(tmp_path / "u16.png"), sio.read_image(tmp_path / "u8.png"))
    assert (tmp_path / "j.JPG").read_bytes()[:2] == b"\xff\xd8"


def test_sigma_map_npy_round_trip_and_other_suffixes_refused(tmp_path):
    """Audit #26: write_sigma_map("s.npy") wrote PNG bytes that read_sigma_map could not read."""
    sigma = np.random.default_rng(3).uniform(0, 7, (5, 6)).astype(np.float32)
    sio.write_sigma_map(tmp_path / "s.npy", sigma)
    np.testing.assert_array_equal(sio.read_sigma_map(tmp_path / "s.npy"), sigma)
    with pytest.raises(ValueError, match=r"\.png or \.npy"):
        sio.write_sigma_map(tmp_path / "s.jpg", sigma)
    for bad, words in ((-sigma, "finite and non-negative"), (np.dstack([sigma] * 3), r"\(H, W\) array, got shape")):
        with pytest.raises(ValueError, match=words):
            sio.write_sigma_map(tmp_path / "bad.npy", bad)
        with pytest.raises(ValueError, match=words):
            sio.write_sigma_map(tmp_path / "bad.png", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy"]


@pytest.mark.parametrize("array, words", [(np.zeros((0, 0), np.float32), "empty"),
                                          (np.array([["a", "b"], ["c", "d"]]), "not numbers"),
                                          (np.ones((3, 4), np.complex64), "not numbers")])
def test_bad_npy_sigma_map_is_an_input_error_naming_the_file(tmp_path, array, words):
    """Audit #27: NumPy's own errors without the file name."""
    np.save(tmp_path / "s.npy", array)
    with pytest.raises(InputError, match=f"s.npy: .*{words}"):
        sio.read_sigma_map(tmp_path / "s.npy")


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.uint8, bool])
def test_s4_an_integer_npy_sigma_map_is_refused_not_read_as_px(tmp_path, dtype):
    """§19 S4: a SYNDOF map saved as .npy (uint16 round(10·σ), 20 for σ 2 px) was read as σ 20 px, a bool mask
    as σ 1 px: the renderer refused only those above σ_max, training read them as labels."""
    np.save(tmp_path / "s.npy", np.full((4, 5), 20 if dtype is not bool else True, dtype))
    with pytest.raises(InputError, match=f"s.npy: σ maps in .npy hold float σ in px; this file holds "
                                         f"{np.dtype(dtype).name}"):
        sio.read_sigma_map(tmp_path / "s.npy")
    np.save(tmp_path / "f.npy", np.full((4, 5), 2.0, np.float16))  # any float kind is σ in px
    assert sio.read_sigma_map(tmp_path / "f.npy").tolist() == [[2.0] * 5] * 4


def test_s5_a_channels_first_npy_map_is_named_with_its_own_shape(tmp_path):
    """§19 S5: a (1, H, W) array (a tensor's ``[None]``) was read as the (1, H) map of its first column, and
    reported so: "depth map must be 2-D and at least 2x2, got shape (1, 8)"; (2, H, W) read as a (2, H) map."""
    from syndof.depth_io import read_depth

    depth = 1000.0 + np.arange(80.0).reshape(8, 10)
    for stack in (depth[None], np.stack([depth, depth])):
        np.save(tmp_path / "d.npy", stack)
        shape = str(stack.shape).replace("(", r"\(").replace(")", r"\)")
        with pytest.raises(InputError, match=f"d.npy: a 3-D map must be \\(H, W, C\\).*got shape {shape}"):
            read_depth(tmp_path / "d.npy")
        with pytest.raises(InputError, match="channels first"):
            sio.read_sigma_map(tmp_path / "d.npy")
    np.save(tmp_path / "hwc.npy", np.dstack([depth, depth * 0 + 1]))  # (H, W, C): the first channel, as documented
    assert np.array_equal(read_depth(tmp_path / "hwc.npy"), depth)


def test_write_set_atomic_names_the_file_that_failed(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    files = {tmp_path / "a.png": b"a", tmp_path / "file" / "b.png": b"b"}
    with pytest.raises(OSError) as err:
        sio.write_set_atomic(files)
    assert err.value.filename == str(tmp_path / "file" / "b.png")
    assert not (tmp_path / "a.png").exists() and not _no_temps(tmp_path)


def test_folder_lock_refuses_a_second_writer_and_is_released_after(tmp_path):
    """Two holders of one folder: the second gets one InputError naming the option and the folder; after the first
    block the folder is free again, and no lock file is left in it (an ``flock`` on the folder itself)."""
    import subprocess
    import sys

    from syndof.io import folder_lock

    run = tmp_path / "run"
    with folder_lock(run, "--out") as held:
        assert held == run and run.is_dir()
        with pytest.raises(InputError, match=r"^--out .*run: another process is writing into this folder now"):
            with folder_lock(run, "--out"):
                pass
        # another process too (the case that matters: two training runs started at once)
        code = ("import sys; from syndof.io import folder_lock, InputError\n"
                "try:\n    with folder_lock(sys.argv[1]): pass\nexcept InputError: sys.exit(3)\n")
        assert subprocess.run([sys.executable, "-c", code, str(run)], cwd=Path(__file__).parents[1]).returncode == 3
    assert not run.exists()  # the lock made it and the block left it empty: removed
    with folder_lock(run):
        (run / "x").write_text("1")
    assert [p.name for p in run.iterdir()] == ["x"]  # no lock file beside what the block wrote
    with folder_lock(run):  # not made by this lock: never removed, even when left empty
        (run / "x").unlink()
    assert run.is_dir()


def test_sigma_map_png_is_read_from_its_second_channel(tmp_path):
    """SYNDOF maps have 3 equal channels and the original reader takes channel 1 (G): a file whose channels differ
    is read from G (cv2 writes B, G, R)."""
    bgr = np.zeros((3, 4, 3), np.uint16)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30
    assert cv2.imwrite(str(tmp_path / "s.png"), bgr)
    assert np.allclose(sio.read_sigma_map(tmp_path / "s.png"), 2.0)


def test_to_uint8_rounds_to_nearest_level():
    x = np.array([0.0, 0.999, 0.5, 0.2, 1.0])  # 254.745 → 255, 127.5 → 128, 51 → 51
    assert sio.to_uint8(x).tolist() == [0, 255, 128, 51, 255]


def test_an_image_above_opencvs_pixel_limit_is_an_input_error_naming_the_file(tmp_path):
    """A PNG whose header says 100000×100000 px (above OpenCV's 2^30-pixel decoder limit) raised OpenCV's own
    ``cv2.error`` (multi-line, no file name) from :func:`sio.read_image`, which the batch tools' per-photo
    ``except ValueError`` let through as a traceback; it is an InputError naming the file, like any other file the
    decoder refuses."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    assert sio.header_size(path) == (100000, 100000)
    for read in (sio.read_image, lambda p: sio.read_image_sha256(p, check_size=lambda w, h: None)):
        with pytest.raises(InputError, match=r"huge\.png: cannot decode image"):
            read(path)


def _oriented_bytes(fmt: str, orientation: int, stored: np.ndarray) -> bytes:
    """The bytes of ``stored`` saved by Pillow as ``fmt`` with EXIF orientation ``orientation``."""
    import io as io_module

    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io_module.BytesIO()
    options = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}.get(fmt, {})
    Image.fromarray(stored).save(buf, format=fmt, exif=exif.tobytes(), **options)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, name", [("JPEG", "a.png"), ("JPEG", "a.gif"), ("JPEG", "a.bmp"), ("JPEG", "a"),
                                       ("TIFF", "a.jpg"), ("TIFF", "a.png"), ("WEBP", "a.png"), ("PNG", "a.png"),
                                       ("PNG", "a.jpg")])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_h53_exif_orientation_goes_by_the_files_content_not_its_name(tmp_path, fmt, name, orientation):
    """The orientation was applied by the file's suffix: a JPEG saved as ``.png`` (common on the web) or without a
    suffix, and a WebP named ``.png``, came out unturned (the map 90° against what a viewer shows, its size the
    stored one); a TIFF named ``.jpg`` was turned twice (OpenCV turns TIFFs itself); a PNG's ``eXIf`` orientation,
    which Pillow's ``exif_transpose`` and OpenCV's own ``imread`` apply, was ignored. Read by content: as Pillow's
    ``exif_transpose``, and the header size that of the pixels."""
    from PIL import Image, ImageOps

    stored = (np.random.default_rng(orientation).random((20, 30, 3)) * 255).astype(np.uint8)
    path = tmp_path / name
    path.write_bytes(_oriented_bytes(fmt, orientation, stored))
    with Image.open(path) as pil:
        shown = np.asarray(ImageOps.exif_transpose(pil).convert("RGB"), dtype=np.float32) / 255
    read = sio.read_image(path)
    assert read.shape == shown.shape == ((30, 20, 3) if orientation >= 5 else (20, 30, 3))
    np.testing.assert_allclose(read, shown, atol=(6 if fmt == "JPEG" else 0.5) / 255)
    assert sio.header_size(path) == (read.shape[1], read.shape[0])
    sizes = []
    image, _ = sio.read_image_sha256(path, check_size=lambda w, h: sizes.append((w, h)))
    assert np.array_equal(image, read) and sizes == [(read.shape[1], read.shape[0])]


def test_h54_a_damaged_exif_warns_nothing_and_its_orientation_is_read_as_pillow_reads_it(tmp_path):
    """A JPEG whose orientation tag has two values, or an EXIF entry pointing past its end, made Pillow warn
    ("Metadata Warning, tag 274 had too many entries", "Truncated File Read"): each CLI printed it as a ``warning:``
    line naming no file, once per read. The reader says nothing; the orientation is Pillow's (its first value)."""
    import struct
    import warnings

    from PIL import Image

    stored = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95)
    plain = (tmp_path / "plain.jpg").read_bytes()
    entries = {"two_values": struct.pack("<HHI", 0x0112, 3, 2) + struct.pack("<HH", 6, 6),
               "past_the_end": struct.pack("<HHI", 0x0112, 5, 1) + struct.pack("<I", 9999)}
    for name, entry in entries.items():
        tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
        app1 = b"Exif\x00\x00" + tiff
        (tmp_path / f"{name}.jpg").write_bytes(plain[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
                                               + plain[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        turned = sio.read_image(tmp_path / "two_values.jpg")
        assert turned.shape == (30, 20, 3) and sio.header_size(tmp_path / "two_values.jpg") == (20, 30)
        kept = sio.read_image(tmp_path / "past_the_end.jpg")
        assert kept.shape == (20, 30, 3) and sio.header_size(tmp_path / "past_the_end.jpg") == (30, 20)
        assert sio.read_image_sha256(tmp_path / "two_values.jpg", check_size=lambda w, h: None)[0].shape == turned.shape


def test_h57_a_fifo_or_a_folder_is_named_as_what_it_is_not_as_missing(tmp_path):
    """A FIFO named ``x.png`` (or a folder so named) was reported "file not found" by every reader and "no such file
    or folder" by ``predict``: it is there. Named as what it is, without reading it (a FIFO would block)."""
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(InputError, match=r"fifo\.png: not a regular file \(a FIFO"):
        sio.read_image(tmp_path / "fifo.png")
    with pytest.raises(InputError, match=r"fifo\.png: not a regular file"):
        sio.read_image_sha256(tmp_path / "fifo.png")
    with pytest.raises(InputError, match=r"dir\.png: a folder, not a file"):
        sio.read_image(tmp_path / "dir.png")
    with pytest.raises(InputError, match=r"gone\.png: file not found"):
        sio.read_image(tmp_path / "gone.png")


def test_reading_headers_in_two_threads_leaves_the_process_warning_filters_as_they_were(tmp_path, monkeypatch):
    """The reader silences PIL's header warnings with ``warnings.catch_warnings``, which swaps the process's one
    filter list. Two reading threads inside at once (the training stream's and evaluation's readers), the first in
    leaving first, restored the list the second had saved: "ignore" for every warning of the process from then on."""
    import threading
    import warnings

    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.jpg")
    identify = sio_decode._pil_identify
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    calls = []

    def slow_identify(fh):  # the first reader waits (up to 1 s) inside until the second is inside too
        calls.append(None)
        if len(calls) == 1:
            first_in.set()
            second_in.wait(1)
        else:
            second_in.set()
            first_out.wait(1)
        return identify(fh)

    def first():
        sio.read_image(tmp_path / "a.jpg")
        first_out.set()

    monkeypatch.setattr(sio_decode, "_pil_identify", slow_identify)
    before = list(warnings.filters)
    one = threading.Thread(target=first)
    one.start()
    first_in.wait(1)
    two = threading.Thread(target=sio.read_image, args=(tmp_path / "a.jpg",))
    two.start()
    one.join()
    two.join()
    assert warnings.filters == before


def test_hidden_files_are_not_photos_of_a_folder(tmp_path, capsys):
    """macOS leaves ``._x.jpg`` resource forks (not images) beside ``x.jpg`` on a copied drive: a folder's listing
    (``list_images``, ``index_by_stem``) left them in, so ``predict FOLDER`` reported a skip per fork and
    ``apps_cli fuse FOLDER`` took them as frames, while ``predict --recursive`` left them out. One rule now (a name
    starting with a dot is hidden), in every listing; a hidden file named on its own is still read."""
    from dmenet import predict
    from hostile_helpers import run_main

    folder = tmp_path / "in"
    folder.mkdir()
    sio.write_image(folder / "x.png", np.full((24, 32, 3), 0.5, np.float32))
    (folder / "._x.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    sio.write_image(folder / ".y.png", np.full((24, 32, 3), 0.25, np.float32))
    assert sio.list_images(folder) == [folder / "x.png"]
    assert sio.index_by_stem(folder) == {"x": folder / "x.png"}
    assert sio.is_hidden(folder / "._x.png") and not sio.is_hidden(folder / "x.png")
    assert sio.read_image(folder / ".y.png").shape == (24, 32, 3)  # named on its own: read
    for recursive in ([], ["--recursive"]):
        out = tmp_path / f"out{len(recursive)}"
        rc, stdout, err = run_main(predict.main, [folder, "--method", "lbp", "--out", out, *recursive], capsys)
        assert rc == 0 and "skipped" not in err and "._x" not in err, err
        assert sorted(p.name for p in out.glob("*_blur.png")) == ["x_blur.png"]


# ----------------------------------------------------------------------------- left items of the sixth review (§16)
def _loop(folder: Path, a: str, b: str) -> Path:
    """``a`` → ``b`` → ``a`` in ``folder``; returns ``folder / a``."""
    (folder / a).symlink_to(b)
    (folder / b).symlink_to(a)
    return folder / a


def test_h80_a_symlink_loop_is_named_as_a_loop_not_as_missing(tmp_path):
    """A symbolic link loop given as an image or a folder was "file not found" (every reader), "not a folder" (a
    listing): it is there, and the user must break the loop, not look for a file. Named as a loop; a link to nothing
    as such; a missing file as before."""
    photo = _loop(tmp_path, "a.png", "b.png")
    folder = _loop(tmp_path, "d", "e")
    with pytest.raises(InputError, match=rf"^{photo}: a symbolic link loop \(too many levels of symbolic links\)$"):
        sio.read_image(photo)
    with pytest.raises(InputError, match=r"a\.png: a symbolic link loop"):
        sio.read_image_sha256(photo)
    with pytest.raises(InputError, match=r"a\.png: a symbolic link loop"):
        sio.read_sigma_map(photo)
    with pytest.raises(InputError, match=r"a\.png: a symbolic link loop"):
        sio.check_nonempty_file(photo)
    with pytest.raises(InputError, match=rf"^{folder}: a symbolic link loop"):
        sio.list_images(folder)
    with pytest.raises(InputError, match=rf"^{folder}: a symbolic link loop"):
        sio.index_by_stem(folder)
    with pytest.raises(InputError, match=r"d/x\.png: a symbolic link loop"):  # a loop in a folder above the file
        sio.read_image(folder / "x.png")
    (tmp_path / "dead.png").symlink_to("nowhere.png")
    with pytest.raises(InputError, match=r"dead\.png: a symbolic link to nothing$"):
        sio.read_image(tmp_path / "dead.png")
    with pytest.raises(InputError, match=r"gone\.png: file not found$"):
        sio.read_image(tmp_path / "gone.png")
    with pytest.raises(InputError, match=r"gone: not a folder$"):
        sio.list_images(tmp_path / "gone")


def test_h80_generate_names_a_symlink_loop_given_as_images_or_depths(tmp_path, capsys):
    """``syndof.generate --images LOOP`` failed with a traceback (``RuntimeError: Symlink loop``, from resolving it to
    compare with ``--out``); ``--depths LOOP`` was "not a folder". One line naming the loop, exit 2."""
    from syndof import generate

    loop = _loop(tmp_path, "a", "b")
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "p.png"), _rgb(64, 64))
    for argv in (["--images", loop], ["--images", photos, "--depths", loop]):
        assert generate.main([*map(str, argv), "--out", str(tmp_path / "out"), "--count", "1"]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {loop}: a symbolic link loop (too many levels of symbolic links)\n", err
    assert not (tmp_path / "out").exists()
    # --out a loop, or a new folder in one: "a broken symbolic link", and a RuntimeError traceback from resolve()
    for out, named in ((loop, loop), (loop / "new", loop / "new")):
        assert generate.main(["--images", str(photos), "--out", str(out), "--count", "1"]) == 2
        err = capsys.readouterr().err
        assert err == f"error: --out {named}: a symbolic link loop (too many levels of symbolic links)\n", err
    (tmp_path / "dead").symlink_to("nowhere")
    assert generate.main(["--images", str(photos), "--out", str(tmp_path / "dead"), "--count", "1"]) == 2
    assert capsys.readouterr().err == f"error: --out {tmp_path / 'dead'}: a symbolic link to nothing\n"


def test_h81_an_unreadable_photo_is_one_input_error_naming_it_once(tmp_path, monkeypatch):
    """A photo that cannot be opened (no read permission) raised the OSError itself, whose text repeats the path
    (``[Errno 13] Permission denied: '…'``): batches printed it after the path (``skipped x.png: PermissionError:
    [Errno 13] Permission denied: 'x.png'``). Every reader raises InputError ``"<path>: Permission denied"``."""
    from hostile_helpers import unreadable

    path = tmp_path / "x.png"
    cv2.imwrite(str(path), _rgb())
    with unreadable(path, monkeypatch):
        for read in (sio.read_image, sio.read_image_sha256, sio.read_sigma_map, sio.stored_dtype):
            with pytest.raises(InputError) as err:
                read(path)
            assert str(err.value) == f"{path}: Permission denied" and err.value.path == str(path)


def _frames(n: int) -> list:
    from PIL import Image

    return [Image.fromarray(np.full((20, 30, 3), 40 * i + 10, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("name, save, note", [
    ("anim.gif", {}, "an animated GIF of 3 frames: only the first is read"),
    ("anim.png", {}, "an animated PNG of 3 frames: only the first is read"),
    ("apart.png", {"default_image": True}, "an animated PNG of 2 frames beside its default image: only the first "
                                          "frame is read"),
    ("anim.webp", {"lossless": True}, "an animated WebP of 3 frames: only the first is read"),
    ("pages.tif", {}, "a TIFF of 3 pages: only the first is read"),
    ("big.tif", {"big_tiff": True}, "a TIFF of 3 pages: only the first is read"),
])
def test_h82_an_animated_or_multi_page_file_says_only_its_first_frame_is_read(tmp_path, name, save, note):
    """An animated GIF / PNG / WebP or a multi-page TIFF was read as its first frame (an APNG: its default image)
    silently. Still so, with one FirstFrameWarning per read naming the file and how many frames it holds; a file of
    one image, and the dtype peek of ``stored_dtype``, warn nothing."""
    import warnings

    from syndof.frames import FirstFrameWarning

    first, *rest = _frames(3)
    path = tmp_path / name
    first.save(path, save_all=True, append_images=rest, **save)
    with pytest.warns(FirstFrameWarning) as caught:
        image = sio.read_image(path)
    assert [str(w.message) for w in caught] == [f"{path}: {note}"]
    first_frame = 50 if "default_image" in save else 10  # the default image apart: the animation's first frame
    np.testing.assert_allclose(image, first_frame / 255, atol=1e-6)
    with pytest.warns(FirstFrameWarning, match="only the"):
        sio.read_image_sha256(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sio.stored_dtype(path)
        one = tmp_path / f"one{path.suffix}"
        first.save(one, **{k: v for k, v in save.items() if k != "default_image"})
        sio.read_image(one)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's own "Corrupt EXIF data" of the cut TIFFs
def test_h82_a_truncated_or_looping_frame_structure_is_counted_without_failing():
    """The frame count is Pillow's walk of the headers, and a damaged file gives no note instead of raising: the
    decoder reports what cannot be read. A TIFF directory pointing at itself is one page."""
    looping_tiff = b"II*\x00" + (8).to_bytes(4, "little") + (0).to_bytes(2, "little") + (8).to_bytes(4, "little")
    for data in (looping_tiff, b"II*\x00\xff\xff\xff\x7f", b"GIF89a\x01\x00\x01\x00\xff",
                 b"RIFF\x00\x00\x00\x00WEBPANMF\xff\xff\xff\xff"):
        assert sio_decode._extra_images_note(data) is None

    # those four are no image to Pillow at all; a file cut short whose header opens and whose frame walk then fails
    # (Pillow's n_frames raises) is the damaged structure the note must survive
    import io

    from PIL import Image

    first, *rest = _frames(3)
    for fmt in ("GIF", "TIFF"):
        buffer = io.BytesIO()
        first.save(buffer, format=fmt, save_all=True, append_images=rest)
        walked = 0
        for cut in range(30, 100, 5):
            data = buffer.getvalue()[:len(buffer.getvalue()) * cut // 100]
            try:
                Image.open(io.BytesIO(data)).n_frames
            except Exception:  # noqa: BLE001 - Pillow raises several types for a cut file
                try:
                    Image.open(io.BytesIO(data))
                except Exception:  # noqa: BLE001 - not even a header: the case above
                    continue
                walked += 1
                assert sio_decode._extra_images_note(data) is None
        assert walked, fmt  # at least one cut opens and then fails in the walk


def test_h82_a_tiff_whose_last_directory_points_back_is_counted_once_per_page():
    """Two pages whose second directory links back to the first: Pillow stops at the directory it has seen, so
    the note says two pages (a walk that followed the link would never end)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    first, *rest = _frames(2)
    first.save(buffer, format="TIFF", save_all=True, append_images=rest)
    data = bytearray(buffer.getvalue())
    first_ifd = int.from_bytes(data[4:8], "little")
    second_ifd = first_ifd
    for _ in range(2):  # follow the chain to the last directory's link
        entries = int.from_bytes(data[second_ifd:second_ifd + 2], "little")
        link = second_ifd + 2 + 12 * entries
        following = int.from_bytes(data[link:link + 4], "little")
        if following == 0:
            break
        second_ifd = following
    data[link:link + 4] = first_ifd.to_bytes(4, "little")
    assert Image.open(io.BytesIO(bytes(data))).n_frames == 2
    assert sio_decode._extra_images_note(bytes(data)) == "a TIFF of 2 pages: only the first is read"


def _png_with_exif(pixels: np.ndarray, orientation: int, where: str) -> bytes:
    """A PNG of ``pixels`` (RGB) whose ``eXIf`` chunk (orientation tag ``orientation``) lies before the first IDAT
    or after the last one (before IEND), made chunk by chunk."""
    import struct
    import zlib

    from PIL import Image

    ok, encoded = cv2.imencode(".png", pixels[..., ::-1])
    data, pos, chunks = encoded.tobytes(), 8, []
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    exif = Image.Exif()
    exif[0x0112] = orientation
    raw = exif.tobytes().removeprefix(b"Exif\x00\x00")
    out = data[:8]
    for i, (kind, body) in enumerate(chunks):
        if (where == "before" and kind == b"IDAT" and chunks[i - 1][0] != b"IDAT") or \
                (where == "after" and kind == b"IEND"):
            out += struct.pack(">I", len(raw)) + b"eXIf" + raw + struct.pack(">I", zlib.crc32(b"eXIf" + raw))
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_h83_a_png_exif_after_its_pixels_orients_it_as_pillow_and_opencv_do(tmp_path, orientation):
    """A PNG's ``eXIf`` chunk after its pixel data (allowed anywhere before IEND but between IDATs) was ignored:
    Pillow's ``exif_transpose`` (after ``load``) and OpenCV's ``imread`` turn the image, the reader did not. Now read
    wherever it lies (chunk headers only), the same image and header size as with the chunk before the pixels."""
    from PIL import Image, ImageOps

    stored = _rgb(20, 30, seed=orientation)
    for where in ("before", "after"):
        path = tmp_path / f"{where}.png"
        path.write_bytes(_png_with_exif(stored, orientation, where))
        with Image.open(path) as pil:
            shown = np.asarray(ImageOps.exif_transpose(pil).convert("RGB"), dtype=np.float32) / 255
        assert cv2.imread(str(path)).shape == shown.shape  # OpenCV's own reader agrees with Pillow
        read = sio.read_image(path)
        np.testing.assert_array_equal(read, shown)
        assert sio.header_size(path) == (read.shape[1], read.shape[0])
        sizes = []
        assert np.array_equal(sio.read_image_sha256(path, check_size=lambda w, h: sizes.append((w, h)))[0], read)
        assert sizes == [(read.shape[1], read.shape[0])]


# ------------------------------------------------------------------------ left items of the seventh review (§17)
def test_h84_unlisted_images_names_each_image_entry_a_listing_leaves_out(tmp_path):
    """``list_images`` keeps regular files: a link loop, a link to nothing or a FIFO named like an image was left out
    unsaid (only ``predict FOLDER`` looked for links itself). ``unlisted_images`` names them with their reason; a
    hidden name, a name of another kind and a folder named like an image are none of them; ``recursive`` looks
    below, as ``predict --recursive`` lists."""
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    sio.write_image(folder / "a.png", np.full((8, 8, 3), 0.5, np.float32))
    _loop(folder, "x.png", "y.JPG")
    (folder / "dead.png").symlink_to("nowhere.png")
    (folder / "dead.txt").symlink_to("nowhere.txt")  # no image name: not a photo left out
    (folder / "._dead.png").symlink_to("nowhere.png")  # hidden: not a photo of the folder
    (folder / "dir.png").mkdir()  # a folder named like an image: no photo
    (folder / "sub" / "deep.png").symlink_to("nowhere.png")
    os.mkfifo(folder / "pipe.png")
    loop, nothing = "a symbolic link loop (too many levels of symbolic links)", "a symbolic link to nothing"
    fifo = "not a regular file (a FIFO, socket or device)"
    top = [(folder / "dead.png", nothing), (folder / "pipe.png", fifo), (folder / "x.png", loop),
           (folder / "y.JPG", loop)]
    assert sio.list_images(folder) == [folder / "a.png"]  # the listing's contract is unchanged
    assert sio.unlisted_images(folder) == top
    assert sio.unlisted_images(folder, recursive=True) == sorted(top + [(folder / "sub" / "deep.png", nothing)])
    assert sio.unlisted_images(folder / "sub") == [(folder / "sub" / "deep.png", nothing)]
    note = f" (4 image name(s) there are no file to read, e.g. {folder / 'dead.png'}: {nothing})"
    assert sio.unlisted_note(top) == note
    assert sio.unlisted_note([]) == ""


def test_r5_an_npz_archive_named_npy_is_said_so_by_every_map_reader(tmp_path):
    """Review R5 (6 Dec 2026): ``np.load`` reads an ``.npz`` archive whatever the file's name; ``evaluate`` said so
    ("is an .npz archive") with its own reader, the σ and depth readers "holds NpzFile values" (and left the archive
    open). The one ``.npy`` reader says it for all of them."""
    from syndof.depth_io import read_depth

    path = tmp_path / "m.npy"
    with open(path, "wb") as fh:
        np.savez(fh, sigma=np.ones((4, 5), np.float32))
    for read in (sio.read_sigma_map, sio.read_npy_map, read_depth):
        with pytest.raises(InputError) as err:
            read(path)
        assert str(err.value) == f"{path}: is an .npz archive, not an .npy array (save each map with numpy.save)"


def test_k2_refuse_unreadable_names_says_how_many_and_names_the_first_few(tmp_path):
    """§25 Left: of a set with four names where no file can be read, the one line named the first only, so each run
    told of one more. Now it says how many (a name given twice counts once) and names the first three, each with its
    reason; one such name is the line as before."""
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").symlink_to("nowhere.png")
    (tmp_path / "x.png").symlink_to("y.png")
    (tmp_path / "y.png").symlink_to("x.png")
    os.mkfifo(tmp_path / "f.png")
    nothing, loop = "a symbolic link to nothing", "a symbolic link loop (too many levels of symbolic links)"
    with pytest.raises(sio.InputError) as info:
        sio.refuse_unreadable_names([tmp_path / "a.png", None, tmp_path / "b.png", tmp_path / "b.png",
                                     tmp_path / "f.png", tmp_path / "x.png", tmp_path / "y.png"])
    assert info.value.path == str(tmp_path / "b.png")
    assert str(info.value) == (f"{tmp_path / 'b.png'}: {nothing} (4 names where no file can be read, e.g. also "
                               f"{tmp_path / 'f.png'}: not a regular file (a FIFO, socket or device), "
                               f"{tmp_path / 'x.png'}: {loop})")
    with pytest.raises(sio.InputError) as info:
        sio.refuse_unreadable_names([tmp_path / "a.png", tmp_path / "b.png"])
    assert str(info.value) == f"{tmp_path / 'b.png'}: {nothing}"
