"""``python -m dmenet.galetto.apps_cli`` (enhance / magnify / fuse) keeps earlier work: an ``--out`` whose result or
report would replace an input or an existing file is refused before any σ map; the result and its report are written
as one set; every numeric option is checked when parsed; a folder given as an image is named as such."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hostile_helpers import count_walks, unwritable_folder

from dmenet.galetto import apps_cli
from dmenet.methods import MethodChoice
from syndof import io

H, W = 48, 64


class ConstantSigma:
    """A stand-in σ estimator (fast): 2 px everywhere."""

    gives_sigma = True
    min_short_side = None  # as Estimator's: no floor under max_side

    def extra_bytes_per_pixel(self):
        return 0

    def input_bytes_per_pixel(self):
        return 0

    def sigma_map(self, image):
        return np.full(image.shape[:2], 2.0, np.float32)


@pytest.fixture
def no_sigma(monkeypatch):
    """The estimator factory fails the test if a σ map is ever asked for."""

    def boom(self, options=None):
        raise AssertionError("a σ map was computed before the command line was checked")

    monkeypatch.setattr(MethodChoice, "make", boom)


@pytest.fixture
def fake_sigma(monkeypatch):
    monkeypatch.setattr(MethodChoice, "make", lambda self, options=None: ConstantSigma())


@pytest.fixture
def work(tmp_path, monkeypatch):
    """tmp_path holding in.png, r_report.png, exist.png, x_report.png and f1/{a,b}.png (64×48)."""
    rng = np.random.default_rng(0)
    for name in ("in.png", "r_report.png", "exist.png", "x_report.png", "f1/a.png", "f1/b.png"):
        io.write_image(tmp_path / name, rng.random((H, W, 3)).astype(np.float32))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file bytes, link targets, folders."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        out[key] = ("link:" + os.readlink(p)) if p.is_symlink() else ("dir" if p.is_dir() else p.read_bytes())
    return out


def run_cli(argv: list[str]) -> int:
    try:
        return apps_cli.main(argv + ["--threads", "1"])
    except SystemExit as exc:  # argparse refusals
        return int(exc.code)


def one_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def refused(argv: list[str], root: Path, capsys, *names: str) -> str:
    before = snapshot(root)
    assert run_cli(argv) == 2
    line = one_line(capsys)
    for name in names:
        assert name in line, line
    assert snapshot(root) == before  # inputs and existing files byte-identical, nothing created
    return line


@pytest.mark.parametrize("argv, names", [
    (["enhance", "in.png", "--out", "in.png"], ("--out", "input")),
    (["magnify", "in.png", "--out", "./in.png"], ("--out", "input")),
    (["fuse", "f1/a.png", "f1/b.png", "--out", "f1/a.png"], ("--out", "f1/a.png", "input")),
    (["fuse", "f1", "--out", "f1/b.png"], ("--out", "f1/b.png", "input")),
    (["enhance", "r_report.png", "--out", "r.png"], ("--out r.png", "r_report.png", "input")),
    (["enhance", "in.png", "--out", "link.png"], ("--out link.png", "input")),  # link.png → in.png
    (["enhance", "link.png", "--out", "in.png"], ("--out in.png", "input")),
    (["fuse", "f1/a.png", "f1/b.png", "--out", "flink/b.png"], ("--out flink/b.png", "input")),  # flink → f1
])
def test_out_over_an_input_is_refused(argv, names, work, no_sigma, capsys):
    (work / "link.png").symlink_to("in.png")
    (work / "flink").symlink_to("f1")
    refused(argv, work, capsys, *names)


@pytest.mark.parametrize("argv, names", [
    (["enhance", "in.png", "--out", "exist.png"], ("--out exist.png", "exists")),
    (["magnify", "in.png", "--out", "x.png"], ("--out x.png", "x_report.png", "exists")),  # unrelated report file
    (["fuse", "f1", "--out", "d.png"], ("--out d.png", "folder")),
    (["enhance", "in.png", "--out", "blk.png"], ("--out blk.png", "blk_report.png", "folder")),
    (["enhance", "in.png", "--out", "dangling.png"], ("--out dangling.png", "exists")),
    (["enhance", "in.png", "--out", "exist.png/o.png"], ("--out exist.png/o.png", "not a folder")),
])
def test_existing_out_or_report_is_refused(argv, names, work, no_sigma, capsys):
    (work / "d.png").mkdir()
    (work / "blk_report.png").mkdir()
    (work / "dangling.png").symlink_to("nowhere.png")
    refused(argv, work, capsys, *names)


def test_unwritable_out_folder_is_named_before_any_work(work, no_sigma, monkeypatch, capsys):
    (work / "ro").mkdir()
    with unwritable_folder(work / "ro", monkeypatch):
        line = refused(["enhance", "in.png", "--out", "ro/o.png"], work, capsys, "--out ro/o.png", "not writable")
    assert ".tmp" not in line


@pytest.mark.parametrize("block", ["report", "result"])
def test_a_blocked_write_leaves_neither_file(block, work, fake_sigma, monkeypatch, capsys):
    """The report's (or the result's) path is taken while the σ map is computed: neither file is left behind."""
    out = work / "o" / "res.png"
    (work / "o").mkdir()
    make_report = apps_cli.report

    def report_then_block(tiles):
        (out if block == "result" else apps_cli.report_path(out)).mkdir(parents=True)
        return make_report(tiles)

    monkeypatch.setattr(apps_cli, "report", report_then_block)
    assert run_cli(["enhance", "in.png", "--out", str(out)]) == 2
    assert "--out" in one_line(capsys)
    blocked = out if block == "result" else apps_cli.report_path(out)
    assert sorted(p.name for p in (work / "o").iterdir()) == [blocked.name]  # no result, report, or temp file
    assert blocked.is_dir() and not any(blocked.iterdir())


def test_a_failed_write_removes_the_folders_it_created(work, fake_sigma, monkeypatch, capsys):
    def full_disk(files, **_):
        for path in files:
            path.parent.mkdir(parents=True, exist_ok=True)
        raise OSError(28, "No space left on device", str(work / "new" / "deep" / ".res.png.tmp"))

    monkeypatch.setattr(apps_cli.io, "write_set_atomic", full_disk)
    before = snapshot(work)
    assert run_cli(["enhance", "in.png", "--out", "new/deep/res.png"]) == 2
    assert "--out new/deep/res.png" in one_line(capsys)
    assert snapshot(work) == before


@pytest.mark.parametrize("argv, option", [
    (["fuse", "f1", "--soft", "nan"], "--soft"),
    (["fuse", "f1", "--soft", "0"], "--soft"),
    (["fuse", "f1", "--soft", "-1"], "--soft"),
    (["fuse", "f1", "--soft", "inf"], "--soft"),
    (["enhance", "in.png", "--lam-max", "nan"], "--lam-max"),
    (["enhance", "in.png", "--lam-max", "-1"], "--lam-max"),
    (["enhance", "in.png", "--lam-max", "inf"], "--lam-max"),
    (["magnify", "in.png", "--mode", "scale", "--k", "inf"], "--k"),
    (["magnify", "in.png", "--mode", "scale", "--k", "1e400"], "--k"),
    (["magnify", "in.png", "--mode", "scale", "--k", "1e200"], "--k"),
    (["magnify", "in.png", "--mode", "scale", "--k", "nan"], "--k"),
    (["magnify", "in.png", "--mode", "scale", "--k", "0.5"], "--k"),
    (["magnify", "in.png", "--mode", "scale", "--k", "two"], "--k"),
])
def test_bad_number_is_one_line_naming_the_option(argv, option, work, no_sigma, capsys):
    refused(argv + ["--out", "o.png"], work, capsys, f"argument {option}")


@pytest.mark.parametrize("argv, names", [
    (["enhance", "empty"], ("empty", "is a folder", "image file")),
    (["magnify", "f1"], ("f1", "is a folder", "image file")),
    (["fuse", "f1/a.png", "f1"], ("f1", "is a folder")),
    (["fuse", "empty"], ("empty", "holds no images")),
])
def test_a_folder_where_an_image_is_expected_is_named(argv, names, work, no_sigma, capsys):
    (work / "empty").mkdir()
    line = refused(argv + ["--out", "o.png"], work, capsys, *names)
    assert "not found" not in line


@pytest.mark.parametrize("argv", [
    ["enhance", "in.png", "--lam-max", "0.5", "--out", "o.jpg"],
    ["magnify", "in.png", "--mode", "scale", "--k", "1", "--out", "new/o.png"],
    ["fuse", "f1", "--soft", "0.5", "--out", "o.png"],
])
def test_good_values_write_the_result_and_its_report(argv, work, fake_sigma, capsys):
    before = snapshot(work)
    assert run_cli(argv) == 0, capsys.readouterr().err
    out = Path(argv[-1])
    assert io.read_image(out).shape == (H, W, 3)
    assert io.read_image(apps_cli.report_path(out)).shape[0] == H
    added = set(snapshot(work)) - set(before)
    assert added <= {str(out), str(apps_cli.report_path(out)), str(out.parent)}
    assert all(snapshot(work)[k] == v for k, v in before.items())


def test_an_out_that_is_not_a_png_or_jpeg_name_is_refused_before_the_work(work, fake_sigma, capsys):
    refused(["enhance", "in.png", "--out", "o.bmp"], work, capsys, "o.bmp: --out must end in .png, .jpg or .jpeg")


class NoSigmaCalls(ConstantSigma):
    """A σ estimator that fails the test if a σ map is asked for (its memory figures may be read)."""

    def sigma_map(self, image):
        raise AssertionError("a σ map was computed for an image the memory guard should have refused")


@pytest.mark.parametrize("argv, named", [
    (["enhance", "in.png", "--out", "o.png"], "in.png"),
    (["magnify", "in.png", "--mode", "scale", "--out", "new/o.png"], "in.png"),
    (["fuse", "f1", "--out", "o.png"], "a.png"),
])
@pytest.mark.parametrize("spare", ["none", "sigma only"])
def test_an_image_that_does_not_fit_in_memory_is_refused_before_the_work(argv, named, spare, work, monkeypatch,
                                                                         capsys):
    """The memory guard of ``predict`` (:func:`dmenet.memory.check_memory`, its estimate of the σ method's memory)
    with the application's own buffers added: an image that does not fit is one line naming it, with the GiB it needs
    and the GiB available, exit 2, nothing written (a camera photo ran for minutes, or was killed, with no word)."""
    from dmenet import memory

    monkeypatch.setattr(MethodChoice, "make", lambda self, options=None: NoSigmaCalls())
    sigma_alone = memory.estimate_memory(H, W)  # what a σ map alone needs: not enough with the application's buffers
    monkeypatch.setattr(memory, "available_memory",
                        lambda: memory.MEMORY_FIXED_BYTES if spare == "none" else sigma_alone)
    line = refused(argv, work, capsys, named, "needs about", "GiB available")
    assert line.count(":") >= 2 and f"{W}x{H} px" in line


def test_a_large_image_gets_progress_lines_on_stderr(work, fake_sigma, monkeypatch, capsys):
    """Above :data:`dmenet.memory.LARGE_IMAGE_PIXELS` each σ map and the application get a line on stderr before
    they start (a full-size camera photo ran for minutes with no word), as ``predict`` does."""
    from dmenet import memory

    assert run_cli(["fuse", "f1", "--out", "small.png"]) == 0
    assert capsys.readouterr().err == ""  # small images: quiet
    monkeypatch.setattr(memory, "LARGE_IMAGE_PIXELS", H * W - 1)
    assert run_cli(["fuse", "f1", "--out", "o.png"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"[1/2] {Path('f1') / 'a.png'}: {W}x{H} px") and "--max-side" in err[0], err
    assert err[1].startswith(f"[2/2] {Path('f1') / 'b.png'}: {W}x{H} px"), err
    assert len(err) == 3 and err[2].startswith("fuse:") and f"{W}x{H} px" in err[2], err


# ------------------------------------------------------------------------ left items of the seventh review (§17)
def test_h84_fuse_folder_reports_each_image_name_that_is_no_file(work, fake_sigma, capsys):
    """A link loop, a link to nothing or a FIFO named like a frame in ``fuse FOLDER`` was left out of the frames
    unsaid (``predict FOLDER`` reports it): one ``skipped PATH: reason`` line each on stderr, the rest fused; too few
    frames left is one error line that says why; a refused ``--out`` stays one line."""
    f1 = Path("f1")
    (work / "f1" / "x.png").symlink_to("y.png")
    (work / "f1" / "y.png").symlink_to("x.png")
    (work / "f1" / "c.png").symlink_to("nowhere.png")
    os.mkfifo(work / "f1" / "d.png")
    assert run_cli(["fuse", "f1", "--out", "o.png"]) == 0
    loop = "a symbolic link loop (too many levels of symbolic links)"
    assert capsys.readouterr().err.splitlines() == [
        f"skipped {f1 / 'c.png'}: a symbolic link to nothing",
        f"skipped {f1 / 'd.png'}: not a regular file (a FIFO, socket or device)",
        f"skipped {f1 / 'x.png'}: {loop}", f"skipped {f1 / 'y.png'}: {loop}"]
    assert (work / "o.png").is_file() and (work / "o_report.png").is_file()
    (work / "f1" / "d.png").unlink()  # refused() reads every file: a FIFO would block it
    refused(["fuse", "f1", "--out", "o.png"], work, capsys, "--out o.png", "exists")
    (work / "f1" / "b.png").unlink()
    line = refused(["fuse", "f1", "--out", "p.png"], work, capsys, "fusion needs at least 2 frames, got 1",
                   "3 image name(s) there are no file to read")
    assert f"e.g. {f1 / 'c.png'}: a symbolic link to nothing" in line


def test_e5_a_magnification_too_large_for_the_photo_names_the_photo_and_k(work, fake_sigma, capsys):
    """``magnify --mode scale --k 100`` of a 64×48 photo (σ 2 px → 200 px added) was refused in a line naming
    neither the photo nor ``--k`` ("×100 magnification … choose a smaller k")."""
    line = refused(["magnify", "in.png", "--mode", "scale", "--k", "100", "--out", "o.png"], work, capsys,
                   "in.png: --k 100: ", "more than the 64x48 image")
    assert line.startswith("error: in.png: --k 100: ")


def test_e4_fuse_with_a_tiny_or_huge_temperature_writes_the_right_image(work, fake_sigma, capsys):
    """``--soft 1e-300`` on float32 σ maps divided by τ rounded to float32 0: NaN weights and "o.png has non-finite
    values". Equal σ maps share every pixel equally whatever τ: the result is the frames' mean."""
    a, b = io.read_image(work / "f1" / "a.png"), io.read_image(work / "f1" / "b.png")
    for tau, out in (("1e-300", "tiny.png"), ("1e300", "huge.png")):
        assert run_cli(["fuse", "f1", "--soft", tau, "--out", out]) == 0, capsys.readouterr().err
        assert "warning" not in capsys.readouterr().err
        np.testing.assert_allclose(io.read_image(work / out), (a + b) / 2, atol=0.5 / 255 + 1e-6)


def test_l2_enhance_lam_max_zero_is_the_identity_as_in_the_api(work, fake_sigma, capsys):
    """§20 Left (L2): ``--lam-max 0`` was refused by the parser ("must be a finite number > 0") although
    ``adaptive_enhance(lam_max=0)`` is the identity since E3. The command line now takes it: the photo comes back
    pixel for pixel (8-bit in, 8-bit out), its report written; below 0 is still refused; ``--help`` says so."""
    assert run_cli(["enhance", "in.png", "--lam-max", "0", "--out", "same.png"]) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(io.read_image(work / "same.png"), io.read_image(work / "in.png"))
    assert io.read_image(apps_cli.report_path(work / "same.png")).shape[0] == H
    refused(["enhance", "in.png", "--lam-max=-1e-9", "--out", "o.png"], work, capsys, "--lam-max", ">= 0")
    with pytest.raises(SystemExit):
        apps_cli.main(["--help"])
    assert "finite >= 0, 0 = the photo unchanged" in " ".join(capsys.readouterr().out.split())


def test_l4_a_gray_or_rgba_photo_is_said_to_come_out_rgb(work, fake_sigma, capsys):
    """§20 Left (L4): a gray photo came out RGB and an RGBA photo lost its alpha without a word. Both are made RGB
    as :mod:`dmenet.galetto.apps` documents, now with one ``note:`` line per such input; an RGB photo gets none."""
    import cv2

    rng = np.random.default_rng(1)
    gray = (rng.random((H, W)) * 255).astype(np.uint8)
    bgra = (rng.random((H, W, 4)) * 255).astype(np.uint8)
    cv2.imwrite(str(work / "gray.png"), gray)
    cv2.imwrite(str(work / "rgba.png"), bgra)
    assert run_cli(["enhance", "gray.png", "--lam-max", "0", "--out", "g.png"]) == 0
    assert capsys.readouterr().err.splitlines() == ["note: gray.png: a gray image; the result is RGB (three equal "
                                                    "channels)"]
    np.testing.assert_array_equal(cv2.imread(str(work / "g.png"), cv2.IMREAD_UNCHANGED), np.dstack([gray] * 3))
    assert run_cli(["enhance", "rgba.png", "--lam-max", "0", "--out", "a.png"]) == 0
    assert capsys.readouterr().err.splitlines() == ["note: rgba.png: its alpha channel is dropped; the result is RGB, "
                                                    "without transparency"]
    np.testing.assert_array_equal(cv2.imread(str(work / "a.png"), cv2.IMREAD_UNCHANGED), bgra[..., :3])
    assert run_cli(["fuse", "gray.png", "in.png", "rgba.png", "--out", "f.png"]) == 0
    assert [line.split(":")[1].strip() for line in capsys.readouterr().err.splitlines()] == ["gray.png", "rgba.png"]
    assert run_cli(["enhance", "in.png", "--out", "rgb.png"]) == 0
    assert capsys.readouterr().err == ""


def test_k3_fuse_folder_lists_the_folder_once(work, fake_sigma, capsys, monkeypatch):
    """§25 Left: ``fuse FOLDER`` walked the folder three times (the frames, the count of names that are no file for
    the error, the skip lines) and a refused one twice: two listings can disagree on a name made or removed between
    them, the skip lines then naming other names than the frames left out. Now one walk gives all three; the lines
    are as before."""
    walks = count_walks(monkeypatch)
    (work / "f1" / "c.png").symlink_to("nowhere.png")
    assert run_cli(["fuse", "f1", "--out", "o.png"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"skipped {Path('f1') / 'c.png'}: a symbolic link to nothing"]
    assert walks == [Path("f1")]
    (work / "f1" / "b.png").unlink()
    walks.clear()
    refused(["fuse", "f1", "--out", "p.png"], work, capsys, "fusion needs at least 2 frames, got 1",
            "1 image name(s) there are no file to read")
    assert walks == [Path("f1")]
