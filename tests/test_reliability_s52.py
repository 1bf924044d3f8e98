"""reliability.md §52: two items §50 / §51 left, each failing with the old ``dmenet/`` and ``syndof/``:
``galetto.select`` scored a render under the classifier's 32-px window (its window grid padded it, exit 0) where
``galetto.compare --synthetic`` and the galetto method refuse it; ``units.max_sigma`` and ``units._check_depth_range``
compared numeric text (which ``is_finite_number`` reads as a number) and raised a TypeError."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from galetto_helpers import write_tiny_classifier
from syndof import io as sio
from syndof import units

WINDOW = ": under the classifier's 32-px window (the galetto method refuses it)"


def _renders(root: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    """SYNDOF renders ``image/STEM.png`` of the (H, W) ``sizes`` with σ maps of up to 5.9 px in ``blur_map/``."""
    rng = np.random.default_rng(5)
    for stem, (h, w) in sizes.items():
        sio.write_image(root / "image" / f"{stem}.png", rng.random((h, w, 3)).astype(np.float32))
        sio.write_sigma_map(root / "blur_map" / f"{stem}.png",
                            rng.integers(0, 60, (h, w)).astype(np.float32) / 10)
    return root


def _select(root: Path, model: Path, out: Path) -> int:
    from dmenet.galetto import select

    return select.main(["--val", str(root), "--model", str(model), "--threads", "1", "--stride", "32",
                        "--out", str(out)])


# ------------------------------------------------------------------------------ 1. select, a render under the window
def test_galetto_select_skips_a_render_under_the_classifier_window_with_the_methods_words(tmp_path, capsys):
    """A 24×32 render beside a 48×64 one: select scored both (the window grid padded the small one, exit 0, no
    line), ranking the candidates on a render the galetto method refuses. Now it is skipped as an unreadable one is:
    one ``skipped PATH: reason`` line whose reason is the method's own refusal of that render, recorded in
    ``selection.json`` (``renders`` 1, ``skipped``)."""
    from dmenet.methods import MethodOptions, parse_method

    model = write_tiny_classifier(tmp_path)
    root = _renders(tmp_path / "syn", {"a": (24, 32), "b": (48, 64)})
    small = root / "image" / "a.png"
    method = parse_method(f"galetto:model={model},stride=32").make(MethodOptions())
    with pytest.raises(ValueError) as refused:
        method.estimate(sio.read_image(small))
    assert str(refused.value) == "image is too small: 32x24 px (at least 32 px a side)"
    reason = f"{refused.value}{WINDOW}"

    assert _select(root, model, tmp_path / "sel") == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(("skipped", "error"))]
    assert err == [f"skipped {small}: {reason}"]
    record = json.loads((tmp_path / "sel" / "selection.json").read_text())
    assert record["renders"] == 1 and record["skipped"] == {str(small): reason}


def test_galetto_select_refuses_a_folder_whose_every_render_is_under_the_window(tmp_path, capsys):
    """Every render 24×32: exit 0 with a selection over padded renders; now exit 2, one line naming the first, and
    nothing written."""
    model = write_tiny_classifier(tmp_path)
    root = _renders(tmp_path / "syn", {"a": (24, 32), "b": (31, 64)})
    assert _select(root, model, tmp_path / "sel") == 2
    err = capsys.readouterr().err.splitlines()
    first = f"{root / 'image' / 'a.png'}: image is too small: 32x24 px (at least 32 px a side){WINDOW}"
    assert err == [f"skipped {first}",
                   f"skipped {root / 'image' / 'b.png'}: image is too small: 64x31 px (at least 32 px a side){WINDOW}",
                   f"error: {root / 'image'}: no readable render (2 skipped, the first {first}; nothing was written)"]
    assert not (tmp_path / "sel").exists()


def test_candidates_mae_refuses_a_render_under_the_window_naming_it(tmp_path):
    """Through the API (no ``pairs``: every render of the folder) the small render was scored padded; now an
    InputError naming it, as the command's skip says."""
    from dmenet.galetto import select
    from dmenet.galetto.train import load_classifier

    model = load_classifier(str(write_tiny_classifier(tmp_path)))
    root = _renders(tmp_path / "syn", {"a": (48, 64), "b": (64, 20)})
    with pytest.raises(sio.InputError) as err:
        select.candidates_mae(model, root, 32, 0.0)
    assert str(err.value) == f"{root / 'image' / 'b.png'}: image is too small: 20x64 px (at least 32 px a side){WINDOW}"
    assert len(select.candidates_mae(model, root, 32, 0.0, limit=1)) == 6  # the first render alone (48×64) scores


def test_window_problem_is_the_method_rule():
    """One rule: the window check is ``syndof.images.check_min_side`` at the classifier's window, the check of
    ``as_rgb_float(…, min_side=32)`` the method's ``estimate`` makes: 32 px a side passes, 31 does not."""
    from dmenet.galetto import PATCH, select
    from syndof.images import as_rgb_float, check_min_side

    assert select.window_problem((32, 32, 3)) is None and select.window_problem((PATCH, 500)) is None
    for shape in ((31, 64, 3), (64, 31), (0, 0, 3)):
        with pytest.raises(ValueError) as err:
            as_rgb_float(np.zeros(shape[:2] + (3,), np.float32), "image", min_side=PATCH)
        assert select.window_problem(shape) == f"{err.value}{WINDOW}"
        with pytest.raises(ValueError, match=f"^{err.value}$".replace("(", r"\(").replace(")", r"\)")):
            check_min_side(shape, PATCH)


# ------------------------------------------------------------------------------------- 2. numbers as text in units
@pytest.mark.parametrize("near, far, named", [("1", "2", "near is a str"), (1.0, "2", "far is a str"),
                                              (True, 2.0, "near is a bool"), (1.0, np.bool_(True), "far is a bool"),
                                              (None, 2.0, "near is a NoneType"), (b"1", 2.0, "near is a bytes")],
                         ids=["text", "far_text", "bool", "np_bool", "none", "bytes"])
def test_check_depth_range_refuses_what_is_no_number_with_its_valueerror(near, far, named):
    """``("1", "2")``: a TypeError from ``0 < "1"`` (``is_finite_number`` takes numeric text); ``(True, 2.0)``
    passed as 1 mm. Now the range's ValueError, saying which bound is no number."""
    with pytest.raises(ValueError, match=r"^the depth range must be 0 < near < far mm \(finite\), got near ") as err:
        units._check_depth_range(near, far)
    assert str(err.value).endswith(f": {named}, not a number (int or float)")
    with pytest.raises(ValueError, match="not a number"):
        units.inverse_depth_to_mm(np.array([0.5]), near, far)


@pytest.mark.parametrize("value, shown", [("29", "'29'"), (" 1e3 ", "' 1e3 '"), (True, "True"),
                                          (np.bool_(True), "np.True_"), (None, "None")])
def test_max_sigma_refuses_what_is_no_number_with_its_valueerror(value, shown):
    """``max_sigma("29")`` raised a TypeError from ``"29" >= 1``; ``max_sigma(True)`` returned 0.0 px. Now the
    max_coc ValueError, the value shown as given."""
    with pytest.raises(ValueError) as err:
        units.max_sigma(value)
    assert str(err.value) == (f"max_coc must be a finite CoC >= 1 px, got {shown}: a {type(value).__name__}, not a "
                              "number (int or float)")


@pytest.mark.parametrize("number", [29, 29.0, np.int64(29), np.float32(29.0), np.float64(29.0), np.uint8(29)])
def test_the_unit_checks_still_take_python_and_numpy_numbers(number):
    assert units.max_sigma(number) == 7.0 and units.sigma_to_label(7.0, number) == 1.0
    units._check_depth_range(number, number * 2)
    assert np.allclose(units.inverse_depth_to_mm(np.array([1.0, 0.0]), number, number * 2), [29.0, 58.0])


def test_is_finite_number_and_its_other_callers_keep_their_behaviour(tmp_path):
    """``is_finite_number`` still reads numeric text as a number (a caller that must refuse text checks the type
    first): ``read_max_coc`` refuses ``"29"`` with its own line and reads a JSON number as before."""
    from syndof.recipe import read_max_coc

    assert units.is_finite_number("29") and units.is_finite_number(True) and not units.is_finite_number(math.inf)
    (tmp_path / "dataset.json").write_text(json.dumps({"max_coc": "29"}))
    with pytest.raises(sio.InputError, match='max_coc must be a finite number > 1 .*got "29"$'):
        read_max_coc(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"max_coc": 15}))
    assert read_max_coc(tmp_path) == 15.0
