"""Hostile / careless use of ``syndof.render`` (docs/reliability.md §2): D7, D12–D15."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hostile_helpers import assert_usage_error, run_main, write_rgb
from syndof import io as sio
from syndof import render

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H, W = 24, 32


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    depth = np.tile(np.linspace(1000.0, 3000.0, W), (H, 1))
    sigma = np.tile(np.linspace(0.0, 2.0, W, dtype=np.float32), (H, 1))
    np.save(tmp_path / "depth.npy", depth)
    np.save(tmp_path / "sigma.npy", sigma)
    return {"image": write_rgb(tmp_path / "img.png", H, W), "depth": tmp_path / "depth.npy",
            "sigma": tmp_path / "sigma.npy"}


def _render(inputs, out, capsys, *extra, sigma=None):
    return run_main(render.main, ["--image", inputs["image"], "--depth", inputs["depth"], "--sigma-map",
                                  sigma or inputs["sigma"], "--out", out, *extra], capsys)


def test_valid_render_for_reference(inputs, tmp_path, capsys):
    """The printed PSNR is the 8-bit PSNR (peak 255) of the written render against the reference, by hand."""
    rc, out_text, err = _render(inputs, tmp_path / "o.png", capsys, "--reference", inputs["image"])
    assert rc == 0, err
    info = json.loads(out_text.strip().splitlines()[-1])
    rendered = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED).astype(np.float64)
    reference = cv2.imread(str(inputs["image"]), cv2.IMREAD_UNCHANGED).astype(np.float64)
    mse = np.mean((rendered - reference) ** 2)
    assert mse > 0 and info["identical_to_reference"] is False  # σ up to 2 px blurs the random image
    assert info["psnr_db"] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=0.005)
    assert info["layers"] >= 2 and info["out"] == str(tmp_path / "o.png")


def test_d12_sigma_beyond_sigma_max_is_refused(inputs, tmp_path, capsys):
    huge = tmp_path / "huge.npy"
    np.save(huge, np.full((H, W), 1e6, np.float32))
    assert_usage_error(*_render(inputs, tmp_path / "o.png", capsys, sigma=huge)[::2], str(huge), "σ_max")
    png = tmp_path / "max.png"
    sio.write_bytes_atomic(png, sio.encode_png(np.full((H, W, 3), 65535, np.uint16)))
    assert_usage_error(*_render(inputs, tmp_path / "o.png", capsys, sigma=png)[::2], str(png), "6553.5")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("value", ["0", "-3", "1", "256", "100000"])
def test_d13_bad_max_coc(inputs, tmp_path, capsys, value):
    assert_usage_error(*_render(inputs, tmp_path / "o.png", capsys, "--max-coc", value)[::2], "--max-coc")


@pytest.mark.parametrize("flag, value", [("--depth-scale", "nan"), ("--depth-scale", "0"), ("--depth-scale", "-3"),
                                         ("--depth-scale", "inf"), ("--merge-tolerance", "-1"),
                                         ("--merge-tolerance", "nan"), ("--max-coc", "2.5")])
def test_bad_depth_scale_and_merge_tolerance_refused_as_generate_does(inputs, tmp_path, capsys, flag, value):
    """render's --depth-scale, --merge-tolerance and --max-coc are generate's (syndof.cli): a bad value is one line
    naming the option at parse time, exit 2, nothing written (--depth-scale nan was only refused once the depth file
    was read, after the image and output checks)."""
    line = assert_usage_error(*_render(inputs, tmp_path / "o.png", capsys, flag, value)[::2], f"argument {flag}:")
    assert value in line
    assert not (tmp_path / "o.png").exists()


def test_d14_out_is_a_folder_or_unwritable(inputs, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "dir"
    folder.mkdir()
    assert_usage_error(*_render(inputs, folder, capsys)[::2], "--out", str(folder))

    def read_only(self, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", read_only)
    out = tmp_path / "ro" / "x.png"
    line = assert_usage_error(*_render(inputs, out, capsys)[::2], str(out))
    assert "Permission denied" in line and ".tmp" not in line


def test_d15_reference_of_another_size_is_refused_before_writing(inputs, tmp_path, capsys):
    ref = write_rgb(tmp_path / "ref.png", H * 2, W * 2)
    out = tmp_path / "o.png"
    assert_usage_error(*_render(inputs, out, capsys, "--reference", ref)[::2], str(ref))
    assert not out.exists()


def test_d7_unknown_device(inputs, tmp_path, capsys):
    assert_usage_error(*_render(inputs, tmp_path / "o.png", capsys, "--device", "tpu")[::2], "--device", "tpu")


def _digests(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_outputs_never_replace_inputs_or_earlier_files(inputs, tmp_path, capsys):
    """--out / --sigma-out naming an input, an existing file or each other: exit 2, one line, nothing changed."""
    (tmp_path / "old.png").write_bytes(b"earlier result")
    before = _digests(tmp_path)
    cases = [((inputs["image"],), "--image input"), ((tmp_path / "old.png",), "exists"),
             ((tmp_path / "o.png", "--sigma-out", inputs["sigma"]), "--sigma-map input"),
             ((tmp_path / "o.png", "--sigma-out", tmp_path / "o.png"), "the same file as --out"),
             ((tmp_path / "o.png", "--reference", inputs["image"], "--sigma-out", inputs["image"]), "--image input")]
    for (out, *extra), words in cases:
        assert_usage_error(*_render(inputs, out, capsys, *extra)[::2], words)
    assert _digests(tmp_path) == before


def test_render_and_its_sigma_map_are_written_as_one_set(inputs, tmp_path, capsys):
    (tmp_path / "s.png").mkdir()  # --sigma-out cannot be written: the render must not appear alone
    rc, _, err = _render(inputs, tmp_path / "o.png", capsys, "--sigma-out", tmp_path / "s.png")
    assert rc == 2 and not (tmp_path / "o.png").exists()
    rc, _, _ = _render(inputs, tmp_path / "o.jpg", capsys, "--sigma-out", tmp_path / "s2.png")
    assert rc == 0 and (tmp_path / "o.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG by its name, as before
    assert sio.read_sigma_map(tmp_path / "s2.png").shape == (H, W)


def test_render_file_refuses_to_replace_an_input_or_drop_the_sigma_map(inputs, tmp_path):
    """Audit #11: the API (not only the CLI) refused nothing: out=image overwrote the input, out == sigma_out kept
    only one of the two files."""
    (tmp_path / "old.png").write_bytes(b"earlier result")
    before = _digests(tmp_path)
    args = (inputs["image"], inputs["depth"], inputs["sigma"])
    with pytest.raises(ValueError, match="--image input"):
        render.render_file(*args, out=inputs["image"])
    with pytest.raises(ValueError, match="the same file as --out"):
        render.render_file(*args, out=tmp_path / "x.png", sigma_out=tmp_path / "x.png")
    with pytest.raises(ValueError, match="exists"):
        render.render_file(*args, out=tmp_path / "old.png")
    for bad in ({"out": tmp_path / "x.bmp"}, {"sigma_out": tmp_path / "s.npy"}):
        with pytest.raises(ValueError, match=".png"):
            render.render_file(*args, **bad)
    assert _digests(tmp_path) == before


def test_a_failed_sigma_out_names_that_file(inputs, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    with pytest.raises(OSError) as err:
        render.render_file(inputs["image"], inputs["depth"], inputs["sigma"], out=tmp_path / "new.png",
                           sigma_out=blocked / "s.png")
    assert "s.png" in str(err.value) and "new.png" not in str(err.value) and ".tmp" not in str(err.value)
    assert not (tmp_path / "new.png").exists()


def test_bad_depth_scale_is_named_as_the_argument(inputs, tmp_path):
    for scale in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="depth scale"):
            render.render_file(inputs["image"], inputs["depth"], inputs["sigma"], depth_scale=scale)


def test_corrupt_png_gives_one_line_without_opencv_noise(inputs, tmp_path, capfd):
    """A PNG with a damaged header: OpenCV printed its own ``[ WARN] … buffer is incomplete`` and ``[ERROR] … IHDR
    chunk shall be first`` lines (naming no file) before the command's one line; the log level is restored after."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    level = cv2.utils.logging.getLogLevel()
    rc = render.main(["--image", str(bad), "--depth", str(inputs["depth"]), "--sigma-map", str(inputs["sigma"]),
                      "--out", str(tmp_path / "o.png")])
    err = capfd.readouterr().err
    assert rc == 2
    assert err.strip().splitlines() == [f"error: {bad}: cannot decode image (unreadable, truncated or unsupported "
                                        "format)"], err
    assert cv2.utils.logging.getLogLevel() == level


def test_summary_line_is_strict_json_when_the_render_equals_the_reference(inputs, tmp_path, capsys):
    """Replaying a render against itself printed ``"psnr_db": Infinity``: not JSON (jq and strict parsers refuse it)."""
    first = tmp_path / "first.png"
    rc, _, err = _render(inputs, first, capsys)
    assert rc == 0, err
    rc, out, err = _render(inputs, tmp_path / "second.png", capsys, "--reference", first)
    assert rc == 0, err
    line = out.strip().splitlines()[-1]
    info = json.loads(line, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name} in {line}"))
    assert info["psnr_db"] is None and info["identical_to_reference"] is True


def test_even_max_coc_map_at_sigma_max_replays(inputs, tmp_path, capsys):
    """``generate --max-coc 28`` stores σ_max 6.75 px as round(67.5) = 68; read back as float32 6.8, its CoC
    28.2000008 px fell just above max_coc + COC_TOLERANCE (28.2), so ``render --max-coc 28`` refused every such
    sample ("σ up to 6.8 px … exceeds σ_max 6.75 px"). One step more (69: σ 6.9) is still refused."""
    values = np.tile(np.linspace(0, 68, W).round().astype(np.uint16), (H, 1))
    ok = tmp_path / "s68.png"
    sio.write_bytes_atomic(ok, sio.encode_syndof_values(values))
    rc, _, err = _render(inputs, tmp_path / "o.png", capsys, "--max-coc", "28", sigma=ok)
    assert rc == 0, err
    bad = tmp_path / "s69.png"
    sio.write_bytes_atomic(bad, sio.encode_syndof_values(np.where(values == 68, 69, values).astype(np.uint16)))
    assert_usage_error(*_render(inputs, tmp_path / "o2.png", capsys, "--max-coc", "28", sigma=bad)[::2], "6.9")


def test_l3_render_lists_every_camera_that_gives_the_render_not_the_first_as_recovered(tmp_path, capsys):
    """§19 Left (L3): a 64×48 ramp drawn at f 85 mm (``--max-coc 9``) was replayed bit for bit and reported as
    "focal_mm 50, f_number 0.287", the first focal length tried, as if recovered. The σ map fixes the focus and the
    CoCs, not f and N (N solved for max_coc cancels f without the 5f shift): the line now lists every camera that
    gives this render (the generator's among them), one family N·(z_f − f)/f² = const, and names no single f."""
    from syndof.camera import sample_camera

    h, w = 48, 64
    depth = np.tile(np.linspace(1000.0, 5000.0, w), (h, 1))  # nearest 1000 mm > 5·85: no 5f shift for any f
    cam, lay = next((c, la) for c, la in (sample_camera(depth, w, np.random.default_rng(s), max_coc=9, min_layers=0)
                                         for s in range(50)) if c.focal_mm == 85.0)
    image = write_rgb(tmp_path / "img.png", h, w)
    np.save(tmp_path / "depth.npy", depth)
    (tmp_path / "sigma.png").write_bytes(sio.encode_syndof_values(lay.sigma10))
    rendered = render.render_image(sio.read_image(image), lay, max_coc=9)
    (tmp_path / "ref.png").write_bytes(sio.encode_image(tmp_path / "ref.png", rendered))
    rc, out_text, err = run_main(render.main, ["--image", image, "--depth", tmp_path / "depth.npy", "--sigma-map",
                                               tmp_path / "sigma.png", "--out", tmp_path / "o.png", "--max-coc", "9",
                                               "--reference", tmp_path / "ref.png"], capsys)
    assert rc == 0, err
    info = json.loads(out_text.strip().splitlines()[-1])
    assert info["identical_to_reference"] is True  # the render itself is unchanged: the generator's, bit for bit
    assert "focal_mm" not in info and "f_number" not in info
    cameras = info["cameras"]
    assert [c["focal_mm"] for c in cameras] == [50.0, 70.0, 85.0]
    assert "each of these 3 cameras gives this render" in info["cameras_note"]
    mine = cameras[2]
    assert mine["f_number"] == pytest.approx(cam.f_number, abs=1e-4)
    assert mine["focus_mm"] == pytest.approx(cam.focus_mm, abs=1e-3)
    assert info["focus_percentile"] == pytest.approx(cam.focus_percentile, abs=1e-4)
    res = render.render_file(image, tmp_path / "depth.npy", tmp_path / "sigma.png", max_coc=9)
    family = [c.f_number * (c.focus_mm - c.focal_mm) / c.focal_mm**2 for c in res["cameras"]]
    assert family == pytest.approx([family[0]] * 3, rel=1e-9) and res["other_cameras"] == []
    assert res["cameras"][2].f_number == pytest.approx(cam.f_number, rel=1e-9)
