"""reliability.md §51: the items §50 left, each failing with the old ``dmenet/`` and ``syndof/``: ``read_sigma_map``
refused an 8-bit ``.tif`` or ``.gif`` as "SYNDOF σ maps are 16-bit PNGs"; ``evaluate --benchmark syndof`` (and
``galetto.select`` / ``compare --synthetic``) clipped a GT σ above the folder's σ_max to the label 1, exit 0;
``galetto.compare --synthetic`` stopped on a render under the classifier's window naming no file; a calibration's
stdout line called a photo skipped for being too small "unreadable"."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from galetto_helpers import one_error_line, write_tiny_classifier
from syndof import io as sio

ACCEPTED = "a σ map is a 16-bit PNG or TIFF holding round(10·σ) (SYNDOF) or a float .npy of σ px; this file is"


# ------------------------------------------------------------------------------------------- 1. the refusal text
def test_read_sigma_map_names_what_it_accepts_and_what_the_refused_file_is(tmp_path):
    """An 8-bit ``.tif`` was refused as "SYNDOF σ maps are 16-bit PNGs holding round(10·σ); this file is uint8": a
    PNG named for a TIFF, a GIF or a float TIFF, and the 16-bit TIFF and float ``.npy`` it reads left out. Now the
    line names the file, every format read, and the file's depth and format (from its bytes, as the decoder)."""
    import imageio.v3 as iio

    cases = {"a.tif": ("an 8-bit TIFF (uint8)", np.zeros((4, 5), np.uint8)),
             "b.png": ("an 8-bit PNG (uint8)", np.zeros((4, 5, 3), np.uint8)),
             "c.tiff": ("a 32-bit float TIFF (float32)", np.zeros((4, 5), np.float32)),
             "d.bmp": ("an 8-bit BMP (uint8)", np.zeros((4, 5, 3), np.uint8))}
    for name, (_, pixels) in cases.items():
        assert cv2.imwrite(str(tmp_path / name), pixels)
    iio.imwrite(tmp_path / "e.gif", np.zeros((4, 5, 3), np.uint8))
    cases["e.gif"] = ("an 8-bit GIF (uint8)", None)
    for name, (what, _) in cases.items():
        with pytest.raises(sio.InputError) as err:
            sio.read_sigma_map(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name}: {ACCEPTED} {what}"


def test_evaluate_syndof_names_an_8bit_gif_sigma_map_as_a_gif(tmp_path, capsys):
    """§50 case 11 through the command line: one line naming the GIF, nothing written."""
    import imageio.v3 as iio

    root = _syndof(tmp_path / "syn", max_coc=None)
    (root / "blur_map" / "b.png").unlink()
    iio.imwrite(root / "blur_map" / "b.gif", np.zeros((24, 32, 3), np.uint8))
    assert _evaluate(root, tmp_path / "out") == 2
    assert one_error_line(capsys) == f"error: {root / 'blur_map' / 'b.gif'}: {ACCEPTED} an 8-bit GIF (uint8)"
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- 2. σ above σ_max
def _syndof(root: Path, max_coc: float | None, top: float = 5.9, suffix: str = ".png") -> Path:
    """Renders a, b (24×32) with σ maps of multiples of 0.1 px up to ``top`` px (``blur_map/STEM{suffix}``) and, when
    ``max_coc`` is given, a ``dataset.json`` saying it."""
    rng = np.random.default_rng(3)
    for stem in ("a", "b"):
        sio.write_image(root / "image" / f"{stem}.png", rng.random((24, 32, 3)).astype(np.float32))
        sigma = rng.integers(0, round(top * 10), (24, 32)).astype(np.float32) / 10
        sigma[0, 0] = top
        sio.write_sigma_map(root / "blur_map" / f"{stem}{suffix}", sigma)
    if max_coc is not None:
        (root / "dataset.json").write_text(json.dumps({"max_coc": max_coc}))
    return root


def _evaluate(root: Path, out: Path) -> int:
    from dmenet import evaluate

    return evaluate.main(["--benchmark", "syndof", "--data", str(root), "--method", "laplacian", "--out", str(out),
                          "--wandb", "disabled"])


def test_evaluate_syndof_refuses_a_sigma_map_above_the_sigma_max_of_dataset_json(tmp_path, capsys):
    """``dataset.json`` ``{"max_coc": 1.5}`` (σ_max 0.125 px) over σ maps up to 5.9 px: exit 0, every GT label
    clipped to 1 (§50 case 27). No render of the generator exceeds its σ_max, so the file does not describe the
    folder: exit 2, one line naming the map, the max_coc and dataset.json and what to set; nothing written."""
    root = _syndof(tmp_path / "syn", max_coc=1.5)
    assert _evaluate(root, tmp_path / "out") == 2
    assert one_error_line(capsys) == (
        f"error: {root / 'blur_map' / 'a.png'}: σ up to 5.9 px, above the σ_max 0.125 px of max_coc 1.5 in "
        f"{root / 'dataset.json'}: it does not describe this folder's renders (none exceeds its σ_max; labels above "
        "it would be clipped to 1): set dataset.json's max_coc to the one they were rendered with (σ 5.9 px needs "
        "max_coc >= 24.6)")
    assert not (tmp_path / "out").exists()
    # no dataset.json: the default 29 (σ_max 7 px) is the one named
    deep = _syndof(tmp_path / "deep", max_coc=None, top=7.5, suffix=".npy")
    assert _evaluate(deep, tmp_path / "out2") == 2
    line = one_error_line(capsys)
    assert f"{deep / 'blur_map' / 'a.npy'}: σ up to 7.5 px, above the σ_max 7 px of the default max_coc 29 (no " \
           f"{deep / 'dataset.json'})" in line


@pytest.mark.parametrize("max_coc, top, suffix", [(30, 7.3, ".png"), (30, 7.25, ".npy"), (29, 7.0, ".png"),
                                                  (25, 6.0, ".npy")])
def test_evaluate_syndof_scores_maps_at_the_generators_sigma_max(tmp_path, max_coc, top, suffix):
    """The bound is the generator's own file value: max_coc 30 gives σ_max 7.25 px, stored by its round(10·σ) as 73
    (7.3 px, above 7.25 by the file's rounding); a float32 ``.npy`` holds σ_max itself. Both are scored."""
    root = _syndof(tmp_path / "syn", max_coc=max_coc, top=top, suffix=suffix)
    assert _evaluate(root, tmp_path / "out") == 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]["n_images"] == 2


def test_sigma_label_refuses_one_file_step_above_sigma_max(tmp_path):
    """At σ_max 7 px (max_coc 29) the file value 71 (7.1 px) is refused, 70 read."""
    from dmenet.eval.syndof_test import sigma_label

    for value, refused in ((70, False), (71, True)):
        path = tmp_path / "blur_map" / f"v{value}.png"
        sio.write_sigma_map(path, np.full((3, 4), value / 10, np.float32))
        if refused:
            with pytest.raises(sio.InputError, match="σ up to 7.1 px, above the σ_max 7 px"):
                sigma_label(path, 29, tmp_path)
        else:
            assert np.all(sigma_label(path, 29, tmp_path) == 1)


def test_the_original_syndof_renders_are_within_their_sigma_max(shared):
    """The original SYNDOF generator's renders of the shared Sintel frame (max_coc 29, no dataset.json) reach
    exactly the file value 70 (σ_max 7 px) and are read, their largest label 1."""
    from dmenet.eval.syndof_test import GTKind, load_label

    reference = shared("data", "syndof_reference", "output")
    maps = sorted((reference / "blur_map").glob("*.png"))
    assert len(maps) == 2
    for path in maps:
        assert float(load_label(path, reference, GTKind.SIGMA_MAP).max()) == 1.0


def test_galetto_compare_and_select_refuse_a_sigma_map_above_the_folders_sigma_max(tmp_path, capsys):
    """``galetto.compare --synthetic`` and ``galetto.select`` label the GT with the folder's max_coc too: they
    clipped the same way, exit 0. Now the same line as evaluate, nothing written."""
    from dmenet.galetto import compare, select

    model = write_tiny_classifier(tmp_path)
    root = _syndof(tmp_path / "syn", max_coc=1.5)
    for rng_seed, stem in enumerate("ab"):  # 48×64: above the classifier's 32-px window
        sio.write_image(root / "image" / f"{stem}.png",
                        np.random.default_rng(rng_seed).random((48, 64, 3)).astype(np.float32))
        sio.write_sigma_map(root / "blur_map" / f"{stem}.png", np.full((48, 64), 5.9, np.float32))
    want = f"error: {root / 'blur_map' / 'a.png'}: σ up to 5.9 px, above the σ_max 0.125 px of max_coc 1.5 in "
    assert compare.main(["--method", f"galetto:model={model},stride=32", "--threads", "1", "--synthetic",
                         str(root), "--out", str(tmp_path / "cmp")]) == 2
    assert one_error_line(capsys).startswith(want)
    assert not (tmp_path / "cmp").exists()
    assert select.main(["--val", str(root), "--model", str(model), "--threads", "1", "--stride", "32",
                        "--out", str(tmp_path / "sel")]) == 2
    assert one_error_line(capsys).startswith(want)
    assert not list(tmp_path.glob("sel*"))


# ------------------------------------------------------------------------------------------- 3. compare, too small
def test_galetto_compare_synthetic_names_a_render_under_the_classifier_window(tmp_path, capsys):
    """24×32 renders under the galetto classifier's 32-px window: ``error: image is too small: 32x24 px (at least
    32 px a side)``, no file named (§50 case 45). ``--synthetic`` scores every method on the same renders and stops
    on one it cannot read (as on an undecodable render), so it stops here too, naming the render and the method."""
    from dmenet.galetto import compare

    model = write_tiny_classifier(tmp_path)
    root = _syndof(tmp_path / "syn", max_coc=None)
    method = f"galetto:model={model},stride=32"
    assert compare.main(["--method", method, "--threads", "1", "--synthetic", str(root), "--out",
                         str(tmp_path / "cmp")]) == 2
    assert one_error_line(capsys) == (
        f"error: {root / 'image' / 'a.png'}: image is too small: 32x24 px (at least 32 px a side) (method {method}; "
        "every --synthetic render is scored by every method: remove it or leave the method out)")
    assert not (tmp_path / "cmp").exists()


# ------------------------------------------------------------------------------------------- 4. the fit's skip line
def test_fit_skipped_line_counts_inputs_it_could_not_use_not_unreadable_ones():
    """A photo skipped for being under the classifier's window (§50 X4) or ``calibrate bn``'s ``--crop`` was counted
    among "unreadable input(s)"; the line now says what every skip is: an input the fit could not use, with its
    reason."""
    from dmenet.cli import fit_skipped_line

    small = "d/image/s.png: image is too small: 12x10 px (at least 32 px a side)"
    line = fit_skipped_line("f.safetensors", "f.json", [small])
    assert line == f"f.safetensors: fitted without 1 input(s) it could not use, listed under \"skipped\" in f.json: " \
                   f"{small}"
    assert "unreadable" not in line
