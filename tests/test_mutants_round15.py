"""Mutation round 15 (docs/audit.md): tests that kill the mutants no earlier test noticed, in the code added or
changed on 6 Dec 2026 after round 14 (docs/reliability.md §44, §46, §47): ``resize.shrunk_scale`` and the σ
conversions that use it (``Predictor.estimate``, ``dmenet.inference.working_scale``, Galetto's ``sigma_top``,
``benchmarks/scale_consistency.py``), ``render_checks.check_max_coc`` and ``recipe.max_coc_problem`` on an integer
beyond float, ``scaled_syndof.py``'s σ_max check (W4), ``benchmarks.non_image_mask``'s ``STEM.png.npy`` (W5) and
``_refuse_non_image_gt``'s callers, and the checks §47 added (``tile_geometry``, ``symmetric_pad``,
``sigma_over_limit``, ``sample_rng``). Each expectation is worked out by hand from the rule the docstrings state."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
from model_helpers import tiny_dmenet
from test_reliability_s32 import _error_line, _script

from dmenet.inference import Predictor
from dmenet.methods import MethodOptions
from dmenet.methods.dmenet import DMENetEstimator
from syndof import io as sio
from syndof import resize

C = 5.0
"""σ (px at the working size) the stand-ins give everywhere."""


# ------------------------------------------------------------------------------------------- resize.shrunk_scale
@pytest.mark.parametrize(("shape", "max_side", "minimum", "min_short_side", "size"), [
    ((12, 1000), 300, 1, None, (300, 4)),  # 3.6 rounds up: the factor got (0.316) is above the one asked (0.3)
    ((3, 1000), 100, 1, None, (100, 1)),  # 0.3 rounds to 0: the minimum of 1 px raises it
    ((3, 1000), 100, 2, None, (100, 2)),  # the same with a minimum of 2 px
    ((40, 1000), 100, 1, 32, (800, 32)),  # the short-side floor: ×0.8, not ×0.1
])
def test_shrunk_scale_is_applied_scale_of_the_size_shrink_long_side_gives(shape, max_side, minimum, min_short_side,
                                                                          size):
    """``shrunk_scale(shape, max_side, minimum, min_short_side)`` is the factor ``shrink_long_side`` with the same
    arguments resizes by: √((h'/H)·(w'/W)) of the size it gives, worked out here by hand (``scaled_size`` rounds,
    ``minimum`` raises a side, ``min_short_side`` floors the factor). Pins that ``minimum`` and ``min_short_side``
    reach the size, and that the factor is not capped at the one asked."""
    want = math.sqrt((size[1] / shape[0]) * (size[0] / shape[1]))
    got = resize.shrunk_scale(shape, max_side, minimum, min_short_side)
    assert got == pytest.approx(want, rel=1e-12)
    work = resize.shrink_long_side(np.zeros(shape, np.float32), max_side, minimum, min_short_side)[0]
    assert work.shape[1::-1] == size


# ------------------------------------------------------------------------------ Predictor.estimate under max_side
class _ConstantSigma(Predictor):
    """A Predictor whose B gives the label of σ = :data:`C` px at whatever size it runs at."""

    def label(self, image, bn, **tile_options):
        return np.full(image.shape[:2], C / self.model.config.sigma_max, dtype=np.float32)


def test_estimate_brings_back_a_map_whose_working_size_kept_its_height():
    """A 50 × 101 photo at ``max_side`` 100 runs at 50 × 100 px (49.505 rounds to 50: only the width shrinks). The
    maps must still come back to 50 × 101 and σ be C / √(100/101) px; a "resized?" test on the height alone would
    return the 50 × 100 working maps."""
    model = tiny_dmenet()
    predictor = _ConstantSigma(model, model.recipe.without_sigma_curve())
    photo = np.random.default_rng(0).random((50, 101, 3)).astype(np.float32)
    got = predictor.estimate(photo, sigma=True, probability=False, max_side=100)
    assert got.sigma.shape == (50, 101) and got.label.shape == (50, 101)
    np.testing.assert_allclose(got.sigma, C / math.sqrt(100 / 101), rtol=1e-6)


def test_estimate_s_sigma_max_follows_the_working_size_of_a_thin_strip():
    """``DMENetEstimator``'s ``sigma_max`` is σ_max over the factor ``Predictor.estimate``'s working size got
    (``working_scale``: ``shrunk_scale`` with the 32-px short-side floor): a 40 × 1025 strip at ``max_side`` 512 runs
    at 32 × 820 px (×0.8, the floor), so σ C px there is C / 0.8 and ``sigma_max`` σ_max / 0.8, not / 0.4995."""
    model = tiny_dmenet()
    predictor = _ConstantSigma(model, model.recipe.without_sigma_curve())
    seen = []
    label = predictor.label
    predictor.label = lambda image, bn, **kw: seen.append(image.shape[:2]) or label(image, bn, **kw)
    photo = np.random.default_rng(0).random((40, 1025, 3)).astype(np.float32)
    est = DMENetEstimator(predictor, MethodOptions(max_side=512)).estimate(photo, probability=False)
    assert seen == [(32, 820)]
    np.testing.assert_allclose(est.sigma, C / 0.8, rtol=1e-6)
    assert est.sigma_max == pytest.approx(model.config.sigma_max / 0.8, rel=1e-12)


# ------------------------------------------------------------------------------------------ Galetto's sigma_top
def test_galetto_sigma_top_follows_the_working_copy_sigma_map_measures(tmp_path):
    """Galetto's ``sigma_map`` shrinks without a short-side floor: a 63 × 1024 photo at ``max_side`` 512 is measured
    at 32 × 512 (31.5 rounds to 32, its 32-px window fits), a factor √(32/63 · 1/2) = 0.50395. ``sigma_top`` (the
    clip and ``sigma_max``) must be 19 px over that factor, as σ is: a floor of 32 px there would give ×0.5079."""
    from test_reliability_s44 import _constant_classifier

    from dmenet.methods import make_method

    est = make_method("galetto", MethodOptions(model=_constant_classifier(tmp_path), max_side=512))
    factor = math.sqrt((32 / 63) * 0.5)
    photo = np.random.default_rng(0).random((63, 1024, 3)).astype(np.float32)
    got = est.estimate(photo, probability=False)
    np.testing.assert_allclose(got.sigma, C / factor, rtol=1e-6)
    assert got.sigma_max == pytest.approx(19.0 / factor, rel=1e-12)


# ------------------------------------------------------------------------------ benchmarks/scale_consistency.py
def test_scale_consistency_brings_sigma_back_by_the_factor_the_rounded_size_got(tmp_path, monkeypatch, capsys):
    """``scale_consistency.py --scales 0.5 2`` on a 33 × 21 image: ×0.5 resizes it to 16 × 10 px (16.5 and 10.5
    round to even), a factor √(10/21 · 16/33) = 0.4805; ×2 to 66 × 42, exactly 2. A method whose σ is C px at any
    size (a content guesser) gives C / 0.4805 = 10.41 px and C / 2 = 2.50 px at ×1: σ divided by the factor got,
    not by the 0.5 asked (10.00) nor multiplied by it. The RTF files and the method are stand-ins."""
    module = _script("benchmarks/scale_consistency.py", monkeypatch)
    h, w = 21, 33
    root = tmp_path / "rtf"
    root.mkdir()
    sio.write_image(root / "image_01.png", np.random.default_rng(0).random((h, w, 3)).astype(np.float32))

    class Constant:
        def describe(self):
            return "constant σ"

        def sigma_map(self, image):
            return np.full(image.shape[:2], C, np.float32)

    def add_method(p):
        p.add_argument("--method", type=lambda text: types.SimpleNamespace(make=lambda options: Constant()),
                       default="constant")

    dcli = types.SimpleNamespace(**{k: getattr(module.dcli, k) for k in dir(module.dcli) if not k.startswith("__")})
    dcli.add_method = add_method
    gt = np.tile(np.linspace(0.0, 1.99, w, dtype=np.float32), (h, 1))  # every band of the table holds pixels
    rtf = types.SimpleNamespace(TABLE_NAME="t.mat", load_rtf_sigma=lambda path, table: gt,
                                load_conversion_table=lambda path: None, rtf_errors=module.rtf.rtf_errors)
    monkeypatch.setattr(module, "dcli", dcli)
    monkeypatch.setattr(module, "rtf", rtf)
    assert module.main(["--rtf", str(root), "--scales", "0.5", "2", "--reblur"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.split(" | ")[0] in ("0.5", "2")]
    factor = math.sqrt((10 / 21) * (16 / 33))
    assert [row.split(" | ")[1] for row in rows] == [f"{C / factor:.2f}", f"{C / 2:.2f}"] == ["10.41", "2.50"]


# ------------------------------------------------------------------------------------- recipe.max_coc_problem
@pytest.mark.parametrize("value", [10**400, -(10**400), "29 px", None, [29]],
                         ids=["1e400", "-1e400", "text", "None", "list"])
def test_max_coc_problem_names_a_value_float_cannot_read(value):
    """A ``max_coc`` ``float()`` overflows on (an integer beyond float, §46 W1), cannot parse or cannot take is one
    line naming the option, as inf and NaN are, never an OverflowError / ValueError / TypeError from inside."""
    from syndof.recipe import max_coc_problem

    assert max_coc_problem(value, "max_coc").startswith("max_coc must be an integer in 2..255 px")


# --------------------------------------------------------------------------------- experiments/scaled_syndof.py
def _syndof(root, sigma: np.ndarray, max_coc):
    """A one-render SYNDOF folder: a random image and the σ map ``sigma`` (px), ``dataset.json``'s ``max_coc``."""
    (root / "image").mkdir(parents=True)
    (root / "blur_map").mkdir()
    sio.write_image(root / "image" / "s0.png", np.random.default_rng(0).random((*sigma.shape, 3)).astype(np.float32))
    sio.write_sigma_map(root / "blur_map" / "s0.png", sigma)
    (root / "dataset.json").write_text(json.dumps({"max_coc": max_coc}))
    return root


def test_scaled_syndof_checks_sigma_against_the_max_coc_of_the_folder_it_copies(tmp_path, monkeypatch, capsys):
    """W4's bound is σ_max of the source's own ``dataset.json``: at max_coc 61 (σ_max 15 px) σ 7 px ×2 = 14 px is
    within it and written; at max_coc 13 (σ_max 3 px) σ 2 px ×2 = 4 px exceeds it and is refused, naming the σ map
    and 3 px. A bound of the default 29 (σ_max 7) would do the opposite in both."""
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    wide = _syndof(tmp_path / "wide", np.full((20, 20), 7.0, np.float32), 61)
    assert scaled.main([str(wide), "--scale", "2", "--out", str(tmp_path / "wide2")]) == 0
    np.testing.assert_allclose(sio.read_sigma_map(tmp_path / "wide2" / "blur_map" / "s0.png"), 14.0)
    narrow = _syndof(tmp_path / "narrow", np.full((20, 20), 2.0, np.float32), 13)
    capsys.readouterr()
    assert scaled.main([str(narrow), "--scale", "2", "--out", str(tmp_path / "narrow2")]) == 2
    line = _error_line(capsys)
    assert str(narrow / "blur_map" / "s0.png") in line and "exceeds σ_max 3 px of dataset.json's max_coc 13" in line
    assert not (tmp_path / "narrow2").exists()


def test_scaled_syndof_refuses_an_upscale_whose_largest_sigma_exceeds_the_bound(tmp_path, monkeypatch, capsys):
    """The bound is on the largest σ of the copy: σ 1 px with a 6 × 6 block of 6 px, ×2 (max_coc 29, σ_max 7 px):
    the block reaches 12 px and is refused, though the map's mean (about 1.9 px) stays far below 7."""
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    sigma = np.ones((20, 20), np.float32)
    sigma[7:13, 7:13] = 6.0
    src = _syndof(tmp_path / "syn", sigma, 29)
    assert scaled.main([str(src), "--scale", "2", "--out", str(tmp_path / "x2")]) == 2
    assert "exceeds σ_max 7 px" in _error_line(capsys)


@pytest.mark.parametrize("scale", ["1", "1.01"])
def test_scaled_syndof_copies_a_map_the_scale_does_not_raise(tmp_path, monkeypatch, scale):
    """Only a σ the scale *raises* is checked (the copy must not say more than its ``max_coc`` holds because of the
    scale): a source already at σ 7.5 px under max_coc 29 (σ_max 7) is the source's own matter. At ×1, and at ×1.01
    (20 px × 1.01 rounds to 20: the size and σ do not change), the copy is written with σ 7.5 px."""
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    src = _syndof(tmp_path / "syn", np.full((20, 20), 7.5, np.float32), 29)
    assert scaled.main([str(src), "--scale", scale, "--out", str(tmp_path / "out")]) == 0
    np.testing.assert_allclose(sio.read_sigma_map(tmp_path / "out" / "blur_map" / "s0.png"), 7.5)


def test_scaled_syndof_allows_the_renderers_tolerance_and_not_more(tmp_path, monkeypatch, capsys):
    """The bound is the renderer's ``coc_problem``: σ_max + 0.05 px (CoC + 0.2 px). σ 5.9 px ×1.2 (20 → 24 px,
    exactly) is 7.08 px under max_coc 29 (σ_max 7): 0.08 px over, refused; σ 5.8 px ×1.2 = 6.96 px is written."""
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    over = _syndof(tmp_path / "over", np.full((20, 20), 5.9, np.float32), 29)
    assert scaled.main([str(over), "--scale", "1.2", "--out", str(tmp_path / "o")]) == 2
    assert "σ up to 7.08 px" in _error_line(capsys)
    under = _syndof(tmp_path / "under", np.full((20, 20), 5.8, np.float32), 29)
    assert scaled.main([str(under), "--scale", "1.2", "--out", str(tmp_path / "u")]) == 0


# ------------------------------------------------------------------------- benchmarks.non_image_mask (§46 W5)
SAVE = "masks are image files"


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x93NUMPY")
    return path


@pytest.mark.parametrize(("name", "stem"), [("b.tif.npy", "b"), ("b.PNG.npy", "b"), ("a.b.png.npy", "a.b")])
def test_non_image_mask_takes_stem_image_suffix_npy_as_a_mask_of_stem(tmp_path, name, stem):
    """``STEM.<image suffix>.npy`` is what ``np.save(f"gt/STEM{suffix}", mask)`` writes, for any suffix
    ``syndof.io`` reads as an image (``.tif`` too, though the DBD pairing lists only .jpg .jpeg .png .bmp), in any
    case (``.PNG``); only the last image suffix is taken off (``a.b.png.npy`` is of stem ``a.b``). The line names
    the file and the PNG to save."""
    from dmenet.eval.benchmarks import PAIR_EXTENSIONS, non_image_mask

    gt, photo = tmp_path / "gt", tmp_path / "image" / f"{stem}.jpg"
    npy = _touch(gt / name)
    err = str(non_image_mask(gt, {stem: photo}, PAIR_EXTENSIONS))
    assert err.startswith(f"{npy}: not read as the mask of {stem}.jpg: {SAVE} (.jpg .jpeg .png .bmp: "), err
    assert err.endswith(f"save it as {stem}.png"), err


def test_non_image_mask_does_not_strip_a_suffix_that_is_no_image_format(tmp_path):
    """``b.old.npy`` is a file of stem ``b.old`` (``.old`` is no image suffix): not the mask of photo ``b``."""
    from dmenet.eval.benchmarks import non_image_mask

    _touch(tmp_path / "gt" / "b.old.npy")
    assert non_image_mask(tmp_path / "gt", {"b": tmp_path / "image" / "b.jpg"}) is None


def test_non_image_mask_reads_stem_npy_first_and_counts_a_file_once(tmp_path):
    """Photos ``b.png.jpg`` (stem ``b.png``) and ``b.jpg`` (stem ``b``) both without a mask, and one file
    ``b.png.npy``: it is ``STEM.npy`` of stem ``b.png`` before it is ``STEM.png.npy`` of ``b``, so it is named as the
    mask of ``b.png.jpg``, once (no "and 1 other mask(s)")."""
    from dmenet.eval.benchmarks import non_image_mask

    gt, image = tmp_path / "gt", tmp_path / "image"
    npy = _touch(gt / "b.png.npy")
    err = str(non_image_mask(gt, {"b.png": image / "b.png.jpg", "b": image / "b.jpg"}))
    assert err.startswith(f"{npy}: not read as the mask of b.png.jpg: {SAVE}"), err
    assert err.endswith("save it as b.png.png"), err


def test_allow_missing_images_with_a_method_still_names_a_npy_gt(tmp_path):
    """``--allow-missing-images`` with a method (``pair_by_stem``): GT files without an image are let through, an
    image whose GT is ``gt/b.npy`` is not: named as with saved predictions (round 14) and without the option."""
    from dmenet.eval.benchmarks import get_spec, list_folder_samples
    from syndof.io import InputError

    for stem in "abc":
        sio.write_image(tmp_path / "image" / f"{stem}.png", np.zeros((8, 8, 3), np.float32))
    for stem in "acd":  # d: a GT without an image, which the option allows
        sio.write_image(tmp_path / "gt" / f"{stem}.png", np.zeros((8, 8), np.uint8))
    npy = _touch(tmp_path / "gt" / "b.npy")
    with pytest.raises(InputError, match=SAVE) as err:
        list_folder_samples(get_spec("cuhk"), tmp_path, need_images=True, allow_missing_images=True)
    assert str(err.value).startswith(f"{npy}: not read as the mask of b.png"), err.value


@pytest.mark.parametrize("value", ["29", b"29"], ids=["str", "bytes"])
def test_max_coc_problem_names_a_max_coc_given_as_text(value):
    """Found by this round: ``max_coc_problem("29")`` was None (``float("29")`` reads it), so
    ``syndof.sample.generate_sample(…, max_coc="29")`` passed its check and failed deep in the camera with
    ``TypeError: unsupported operand type(s) for /: 'float' and 'str'``. Text is no number of px: one line naming
    the argument, as for 9.5; numpy numbers stay accepted."""
    from syndof.recipe import max_coc_problem
    from syndof.sample import generate_sample, sample_rng

    assert max_coc_problem(value, "max_coc").startswith("max_coc must be an integer in 2..255 px")
    assert max_coc_problem(np.int64(29)) is None and max_coc_problem(np.float64(29.0)) is None
    assert max_coc_problem(np.float32(29.0)) is None
    image = np.random.default_rng(0).random((24, 32, 3)).astype(np.float32)
    depth = np.tile(np.linspace(1000.0, 5000.0, 32), (24, 1))
    with pytest.raises(ValueError, match="max_coc must be an integer in 2..255 px"):
        generate_sample(image, depth, sample_rng(0, 0), max_coc=value)


# ---------------------------------------------------------------------------------------- tiling.tile_geometry
@pytest.mark.parametrize(("tile_size", "tile_overlap"), [(64, 64), (64, 49), (70, 50)])
def test_tile_geometry_refuses_an_overlap_that_rounds_to_the_tile(tile_size, tile_overlap):
    """The overlap rounded up to a multiple of 16 must be *smaller* than the tile rounded down (a tile that is all
    overlap advances by 0 px): 64/64, 64/49 (→ 64) and 70/50 (→ 64/64) are refused, 64/48 is (64, 48)."""
    from dmenet import tiling

    with pytest.raises(ValueError, match=rf"tile_overlap \({tile_overlap}\) must be smaller than tile_size"):
        tiling.tile_geometry(tile_size, tile_overlap)
    assert tiling.tile_geometry(64, 48) == (64, 48)


# ------------------------------------------------------------------------------------ sample.sigma_over_limit
def test_sigma_over_limit_reads_the_whole_map_and_an_infinite_sigma_is_over():
    """The largest σ anywhere in the map counts (here in its last row, 7.001 px > σ_max 7 of max_coc 29); an
    infinite σ is over the limit, not "NaN": only NaN is refused (§47)."""
    from syndof import sample

    assert sample.sigma_over_limit(np.array([[0.0, 1.0], [2.0, 7.001]]), 29)
    assert not sample.sigma_over_limit(np.array([[0.0, 1.0], [2.0, 7.0]]), 29)
    assert sample.sigma_over_limit(np.array([[0.0, np.inf]]), 29)


def test_non_image_mask_leaves_hidden_files_out(tmp_path):
    """The folder is listed as every listing lists it, hidden names left out (the docstring): ``.b.npy`` is not
    named even for a mask stem ``.b`` (a Distill list may name one); ``b.npy`` is named for ``b``."""
    from dmenet.eval.benchmarks import non_image_mask

    gt, photo = tmp_path / "gt", tmp_path / "image" / "x.png"
    _touch(gt / ".b.npy")
    assert non_image_mask(gt, {".b": photo}, case_sensitive=True) is None
    _touch(gt / "b.npy")
    assert str(non_image_mask(gt, {"b": photo})).startswith(f"{gt / 'b.npy'}: not read as the mask of x.png")


# ------------------------------------------------------------------------------- DMENetEstimator without σ
def test_dmenet_sigma_max_under_max_side_without_the_sigma_path():
    """``estimate(sigma=False)`` (the blur probability only) still gives ``sigma_max`` in px of the input: σ_max
    over the factor of the working size of the *image* (a 67 × 1025 photo at ``max_side`` 512: 33 × 512 px), not
    of a σ map that was not computed."""
    model = tiny_dmenet()
    predictor = _ConstantSigma(model, model.recipe.without_sigma_curve())
    photo = np.random.default_rng(0).random((67, 1025, 3)).astype(np.float32)
    est = DMENetEstimator(predictor, MethodOptions(max_side=512)).estimate(photo, sigma=False)
    assert est.sigma is None and est.blur_probability.shape == (67, 1025)
    factor = math.sqrt((33 / 67) * (512 / 1025))
    assert est.sigma_max == pytest.approx(model.config.sigma_max / factor, rel=1e-12)


# ------------------------------------------------------------------------------------ dmenet.config.__all__
def test_dmenet_config_exports_every_public_name_of_configlib():
    """``dmenet.config``'s docstring: configlib's public names are importable from it too (``__all__``). §44 added
    the three that were left out (``UniqueKeyLoader``, ``dataclass_from_dict``, ``set_override``): every function
    and class configlib defines without a leading underscore is in ``__all__`` and is configlib's object."""
    import inspect

    import dmenet.config as config
    import dmenet.configlib as configlib

    public = [name for name, obj in vars(configlib).items() if not name.startswith("_")
              and (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == "dmenet.configlib"]
    assert {"UniqueKeyLoader", "dataclass_from_dict", "set_override"} <= set(public)
    for name in public:
        assert name in config.__all__ and getattr(config, name) is getattr(configlib, name), name
