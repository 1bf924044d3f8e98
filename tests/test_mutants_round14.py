"""Mutation round 14 (docs/audit.md): tests that kill the mutants no earlier test noticed, in the code added or
changed on 6 Dec 2026 after round 13 (docs/reliability.md §41–§43): ``units.inverse_depth_to_mm`` and its callers
(``random_depth``, ``procedural_scene``), ``resize.applied_scale`` and its callers (``scaled_syndof.py``), the
``max_coc`` check of a SYNDOF folder's ``dataset.json`` (``read_max_coc``), and ``benchmarks.non_image_mask`` with
its callers (``pair_by_stem`` / ``list_folder_samples`` for ``dmenet.evaluate``, ``LabelledDataset``, Distill's
``labelled_items``). Each expectation is worked out by hand from the rule the docstrings state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from syndof import resize, units


# ------------------------------------------------------------------------------------ units.inverse_depth_to_mm
@pytest.mark.parametrize("convert", [units.inverse_depth_to_mm, units.inverse_depth8_to_mm], ids=["t", "v8"])
def test_inverse_depth_refuses_a_range_whose_near_equals_far(convert):
    """0 < near < far is strict: near == far is no range (every nearness would give one depth, unsaid), so it is a
    ValueError like near > far. Pins the ``<`` of ``near_mm < far_mm``."""
    with pytest.raises(ValueError, match="near < far"):
        convert(np.zeros((2, 2)), 1000.0, 1000.0)


# ------------------------------------------------------------------------ random_depth / procedural_scene ranges
def test_random_depth_spans_exactly_its_range_even_where_the_law_rounds_past_it():
    """``random_depth`` spans *exactly* [near_mm, far_mm] (its docstring): with near 570 mm, far 7777 mm the law
    ``1/(1/far + 1·(1/near − 1/far))`` gives 569.9999999999999 mm at nearness 1 in float64; the clip to the range
    makes the nearest pixel 570 mm, not a hair nearer than the range asked."""
    from syndof.random_depth import random_depth

    assert units.inverse_depth_to_mm(np.array([1.0]), 570.0, 7777.0)[0] < 570.0  # what the clip is there for
    image = np.random.default_rng(0).random((24, 32, 3)).astype(np.float32)
    depth = random_depth(image, np.random.default_rng(1), near_mm=570.0, far_mm=7777.0)
    assert depth.min() == 570.0 and depth.max() == 7777.0


@pytest.mark.parametrize("seed", [1, 15])
def test_procedural_scene_depth_stays_inside_the_range_it_drew(seed):
    """``procedural_scene`` draws near (log-uniform in 0.5–3 m) and far (≥ 4·near, ≤ 30 m) first, then maps its
    nearness (0 … 1 exactly, after normalising) through the inverse-depth law. For seed 1 the law gives far + 4e-12
    mm at nearness 0, for seed 15 near − 2e-13 mm at 1: the scene's depth is clipped to [near, far] of its draw."""
    from syndof.scenes import FAR_LIMIT_MM, NEAR_RANGE_MM, procedural_scene

    rng = np.random.default_rng(seed)  # the first two draws of procedural_scene, replayed
    near = float(np.exp(rng.uniform(np.log(NEAR_RANGE_MM[0]), np.log(NEAR_RANGE_MM[1]))))
    far = float(np.exp(rng.uniform(np.log(min(4.0 * near, FAR_LIMIT_MM)), np.log(FAR_LIMIT_MM))))
    law = units.inverse_depth_to_mm(np.array([0.0, 1.0]), near, far)
    assert law[0] > far or law[1] < near  # the seeds where the law rounds past the range
    _, depth = procedural_scene(np.random.default_rng(seed), 16, 24)
    assert near <= depth.min() and depth.max() <= far
    assert depth.min() == near or depth.max() == far


# ------------------------------------------------------------------------------------------ resize.applied_scale
@pytest.mark.parametrize("size", [(0, 5), (5, 0)])
def test_applied_scale_refuses_a_new_size_of_zero(size):
    """A target side of 0 px is no resize (σ would be scaled by 0, every label a sharp pixel): ValueError, as for
    an old side of 0. Pins the new size in the ``min(…) <= 0`` check."""
    with pytest.raises(ValueError, match="> 0 px"):
        resize.applied_scale((10, 10), size)


# ------------------------------------------------------------------------------ syndof_test.read_max_coc
def _read_max_coc(tmp_path, content: bytes | None):
    from dmenet.eval.syndof_test import read_max_coc

    if content is not None:
        (tmp_path / "dataset.json").write_bytes(content)
    return read_max_coc(tmp_path)


def test_read_max_coc_refuses_an_infinite_max_coc_naming_dataset_json(tmp_path):
    """``"max_coc": Infinity`` (what Python's json writes for inf) is > 1 but gives σ_max = ∞ and every label 0:
    refused as not finite, naming dataset.json. Pins ``math.isfinite`` of the check."""
    from syndof.io import InputError

    with pytest.raises(InputError, match="max_coc must be a finite number > 1") as err:
        _read_max_coc(tmp_path, json.dumps({"max_coc": float("inf")}).encode())
    assert str(tmp_path / "dataset.json") in str(err.value)


def test_read_max_coc_is_29_when_dataset_json_has_no_max_coc_and_any_number_above_1_reads(tmp_path):
    """A dataset.json without the key is SYNDOF's default, 29 px (as no file at all); a present value is taken as
    it is, whatever its size (1.5 … 301 px; σ_max = (max_coc − 1)/4), as a float."""
    assert _read_max_coc(tmp_path, json.dumps({"renders": 3}).encode()) == 29.0
    for value in (1.5, 13, 301):
        got = _read_max_coc(tmp_path, json.dumps({"max_coc": value}).encode())
        assert got == value and type(got) is float


def test_read_max_coc_names_a_dataset_json_that_is_not_utf8(tmp_path):
    """A dataset.json of bytes that are no UTF-8 (a binary file saved under that name) was a UnicodeDecodeError
    traceback before the check: now the InputError naming the file, like a JSON syntax error."""
    from syndof.io import InputError

    with pytest.raises(InputError, match="bad dataset.json") as err:
        _read_max_coc(tmp_path, b'{"max_coc": \xff\xfe}')
    assert str(tmp_path / "dataset.json") in str(err.value)



def test_read_max_coc_and_the_training_reader_agree_that_a_dataset_json_that_is_no_file_is_named(tmp_path):
    """``dataset.json`` a folder: evaluation's reader (``read_max_coc``) and training's (``SyntheticDataset``) both
    refuse it naming the file (reliability.md §46 W2; before, both read it as absent, max_coc 29), so a folder is
    treated alike by both (not one a traceback, nor a default)."""
    from dmenet.data.synthetic import SyntheticDataset
    from syndof import io as sio

    (tmp_path / "image").mkdir()
    (tmp_path / "blur_map").mkdir()
    sio.write_image(tmp_path / "image" / "s0.png", np.zeros((8, 8, 3), np.float32))
    sio.write_sigma_map(tmp_path / "blur_map" / "s0.png", np.full((8, 8), 2.0, np.float32))
    (tmp_path / "dataset.json").mkdir()
    for read in (lambda: _read_max_coc(tmp_path, None), lambda: SyntheticDataset(tmp_path)):
        with pytest.raises(sio.InputError, match="max_coc is read from this file") as err:
            read()
        assert str(tmp_path / "dataset.json") in str(err.value)

# ------------------------------------------------------------------------------------- experiments/scaled_syndof.py
def test_scaled_syndof_averages_the_sigma_map_over_each_new_pixel(tmp_path, monkeypatch):
    """σ maps are resized by area averaging like their images (the module docstring), then scaled by the factor the
    image got: columns of σ 10 and 20 px alternating, ×0.5 (8×8 → 4×4, factor exactly 0.5) give σ (10 + 20)/2 · 0.5
    = 7.5 px everywhere (nearest-neighbour would give 5 or 10)."""
    from test_reliability_s32 import _script

    from syndof import io as sio

    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    src = tmp_path / "syn"
    (src / "image").mkdir(parents=True)
    (src / "blur_map").mkdir()
    sio.write_image(src / "image" / "s0.png", np.random.default_rng(0).random((8, 8, 3)).astype(np.float32))
    sigma = np.tile(np.array([10.0, 20.0], np.float32), (8, 4))
    sio.write_sigma_map(src / "blur_map" / "s0.png", sigma)
    (src / "dataset.json").write_text(json.dumps({"max_coc": 29}))
    assert scaled.main([str(src), "--scale", "0.5", "--out", str(tmp_path / "out")]) == 0
    out = sio.read_sigma_map(tmp_path / "out" / "blur_map" / "s0.png")
    assert out.shape == (4, 4) and np.allclose(out, 7.5)


# ---------------------------------------------------------------------------------- benchmarks.non_image_mask
SAVE = "masks are image files"


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x93NUMPY")
    return path


def test_non_image_mask_compares_stems_lower_cased_unless_case_sensitive(tmp_path):
    """Case-insensitive (the default, dmenet's readers): a missing mask stem ``B`` finds ``b.npy`` and ``c`` finds
    ``C.npy`` (both sides lower-cased); ``case_sensitive`` (Distill, whose stems are case-sensitive): ``a_binary``
    does not find ``A_binary.npy``, which would not be read as its mask even as a PNG."""
    from dmenet.eval.benchmarks import non_image_mask

    for name in ("b.npy", "C.npy", "A_binary.npy"):
        _touch(tmp_path / "gt" / name)
    gt, photo = tmp_path / "gt", tmp_path / "image" / "x.png"
    assert str(non_image_mask(gt, {"B": photo})).startswith(f"{gt / 'b.npy'}: not read as the mask of x.png")
    assert str(non_image_mask(gt, {"c": photo})).startswith(f"{gt / 'C.npy'}: not read as the mask of x.png")
    assert non_image_mask(gt, {"a_binary": photo}, case_sensitive=True) is None
    assert non_image_mask(gt, {"A_binary": photo}, case_sensitive=True) is not None



def test_non_image_mask_leaves_the_callers_own_extensions_alone_and_lists_them(tmp_path):
    """``extensions`` are the suffixes the caller lists as masks: a file with one of them (``b.jpg`` for a caller
    of .png and .jpg) is not "another format" (None: the caller's own line stands); ``b.tif`` is, and the line lists
    the caller's suffixes."""
    from dmenet.eval.benchmarks import non_image_mask

    gt, photo = tmp_path / "gt", tmp_path / "image" / "b.png"
    _touch(gt / "b.jpg")
    assert non_image_mask(gt, {"b": photo}, (".png", ".jpg")) is None
    _touch(gt / "b.tif")
    err = str(non_image_mask(gt, {"b": photo}, (".png", ".jpg")))
    assert err.startswith(f"{gt / 'b.tif'}: not read as the mask of b.png: {SAVE} (.png .jpg: "), err

def _labelled(root, stems=("a", "b")):
    from syndof import io as sio

    for stem in stems:
        sio.write_image(root / "image" / f"{stem}.png", np.zeros((8, 8, 3), np.float32))
        sio.write_image(root / "gt" / f"{stem}.png", np.zeros((8, 8), np.uint8))
    return root


def test_labelled_dataset_names_the_first_file_by_name_of_a_stem_and_only_that_line(tmp_path):
    """Six files of stem ``b`` in other formats (``b.npy``, ``b.mat``, ``b.exr`` …) for ``image/b.png``: the one first
    by name (``b.exr``), whatever order the folder lists them in, is named; the line lists every suffix
    ``LabelledDataset`` reads as a mask (all of ``syndof.io.IMAGE_EXTENSIONS``), and with no other such photo it
    ends with the PNG to save (no "(and 0 other …)")."""
    from dmenet.data import LabelledDataset
    from syndof import io as sio
    from syndof.io import InputError

    root = _labelled(tmp_path / "lab")
    (root / "gt" / "b.png").unlink()
    for suffix in (".npy", ".mat", ".npz", ".txt", ".raw", ".exr"):
        _touch(root / "gt" / f"b{suffix}")
    with pytest.raises(InputError) as err:
        LabelledDataset(root)
    line = str(err.value)
    assert line.startswith(f"{root / 'gt' / 'b.exr'}: not read as the mask of b.png: {SAVE}"), line
    assert line.endswith("save it as b.png"), line
    assert f"{SAVE} ({' '.join(sio.IMAGE_EXTENSIONS)}: 8- or 16-bit" in line  # every suffix it reads as a mask


def test_labelled_dataset_names_a_mask_whose_name_differs_in_case_but_not_a_folder(tmp_path):
    """dmenet's labelled folders pair stems case-insensitively (``L1.JPG`` ↔ ``l1.png``), so ``gt/B.NPY`` is the
    mask of ``image/b.png`` saved in another format: named. A sub-folder ``gt/b.npy/`` is no mask file: the photo
    is "without a mask" as before."""
    from dmenet.data import LabelledDataset
    from syndof.io import InputError

    root = _labelled(tmp_path / "lab")
    (root / "gt" / "b.png").unlink()
    _touch(root / "gt" / "B.NPY")
    with pytest.raises(InputError, match=SAVE) as err:
        LabelledDataset(root)
    assert str(err.value).startswith(f"{root / 'gt' / 'B.NPY'}: not read as the mask of b.png"), err.value
    (root / "gt" / "B.NPY").unlink()
    (root / "gt" / "b.npy").mkdir()
    with pytest.raises(InputError, match=r"1 image\(s\) without a mask in gt/, e.g. b.png"):
        LabelledDataset(root)


def test_distill_labelled_items_does_not_name_a_mask_of_another_case(tmp_path):
    """Distill's stems are case-sensitive: for photo ``a`` (mask suffix ``_binary``) an ``A_binary.npy`` would not be
    its mask even as a PNG, so the line stays "no mask a_binary.*" rather than "save it as A_binary.png"."""
    from dmenet.distill.data import DataError, labelled_items

    root = _labelled(tmp_path / "d", stems=("a",))
    (root / "gt" / "a.png").unlink()
    _touch(root / "gt" / "A_binary.npy")
    (tmp_path / "list.txt").write_text("a\n")
    with pytest.raises(DataError, match=r"no mask a_binary\.\* in") as err:
        labelled_items(str(root / "image"), str(root / "gt"), str(tmp_path / "list.txt"), mask_suffix="_binary")
    assert SAVE not in str(err.value)


# -------------------------------------------------------------------- benchmarks.pair_by_stem / list_folder_samples
def _benchmark(root, gt_dir: str, suffix: str = ""):
    """Images a, b, c (8×8) and the GT PNGs of a and c in ``gt_dir`` (GT stem = image stem + ``suffix``)."""
    from syndof import io as sio

    for stem in "abc":
        sio.write_image(root / "image" / f"{stem}.png", np.zeros((8, 8, 3), np.float32))
    for stem in "ac":
        sio.write_image(root / gt_dir / f"{stem}{suffix}.png", np.zeros((8, 8), np.uint8))
    return root


@pytest.mark.parametrize("need_images", [True, False], ids=["method", "predictions"])
def test_a_dbd_gt_of_a_format_outside_the_pairing_extensions_is_named(tmp_path, need_images):
    """``--benchmark cuhk`` pairs GT files of .jpg .jpeg .png .bmp; ``gt/b.tif`` (an image format the toolkit reads
    elsewhere, but not a GT of this pairing) is named as a mask of another format, with a method and with saved
    predictions (where image b was otherwise left out unsaid)."""
    from dmenet.eval.benchmarks import get_spec, list_folder_samples
    from syndof.io import InputError

    root = _benchmark(tmp_path / "cuhk", "gt")
    _touch(root / "gt" / "b.tif")
    with pytest.raises(InputError, match=SAVE) as err:
        list_folder_samples(get_spec("cuhk"), root, need_images=need_images)
    assert str(err.value).startswith(f"{root / 'gt' / 'b.tif'}: not read as the mask of b.png"), err.value


def test_syndof_dbd_with_saved_predictions_names_a_npy_gt_by_its_suffixed_stem(tmp_path):
    """``--benchmark syndof_dbd --predictions``: the GT of image b is ``blur_map_binary/b_binary.*``; a
    ``b_binary.npy`` is named (the stem compared is the image's plus the benchmark's GT suffix)."""
    from dmenet.eval.benchmarks import get_spec, list_folder_samples
    from syndof.io import InputError

    root = _benchmark(tmp_path / "syn", "blur_map_binary", "_binary")
    _touch(root / "blur_map_binary" / "b_binary.npy")
    with pytest.raises(InputError, match=SAVE) as err:
        list_folder_samples(get_spec("syndof_dbd"), root, need_images=False)
    assert str(err.value).startswith(f"{root / 'blur_map_binary' / 'b_binary.npy'}: not read as the mask of b.png")


def test_a_sigma_benchmark_never_calls_a_npy_beside_its_sigma_maps_a_mask(tmp_path):
    """``--benchmark syndof`` scores σ maps, not masks: ``blur_map/b.npy`` for image b is not named as "a mask of
    another format" (whose advice, a 0/255 PNG, would be wrong for a σ map). Since 7 Dec 2026 (reliability.md §49)
    it is b's σ map, a format :func:`syndof.io.read_sigma_map` reads: paired, with a method and with saved
    predictions (was "unmatched files; 1 image(s) without GT" / b left out)."""
    from dmenet.eval.benchmarks import get_spec, list_folder_samples

    root = _benchmark(tmp_path / "syn", "blur_map")
    _touch(root / "blur_map" / "b.npy")
    for need_images in (True, False):
        samples = list_folder_samples(get_spec("syndof"), root, need_images=need_images)
        assert [(s.stem, s.gt.name) for s in samples] == [("a", "a.png"), ("b", "b.npy"), ("c", "c.png")]


def test_allow_missing_images_with_saved_predictions_still_names_a_npy_gt(tmp_path):
    """``--allow-missing-images`` scores the GT files that have an image; it does not let an image whose GT is
    ``gt/b.npy`` drop out unsaid: the .npy is named as with a full folder."""
    from dmenet.eval.benchmarks import get_spec, list_folder_samples
    from syndof.io import InputError

    root = _benchmark(tmp_path / "cuhk", "gt")
    _touch(root / "gt" / "b.npy")
    with pytest.raises(InputError, match=SAVE) as err:
        list_folder_samples(get_spec("cuhk"), root, need_images=False, allow_missing_images=True)
    assert str(err.value).startswith(f"{root / 'gt' / 'b.npy'}: not read as the mask of b.png"), err.value
    (root / "gt" / "b.npy").unlink()
    (root / "image" / "c.png").unlink()
    assert [s.stem for s in list_folder_samples(get_spec("cuhk"), root, need_images=False,
                                                allow_missing_images=True)] == ["a"]
