"""The images a registered method takes (galetto, dmenet_refined, distill_student, the classical peers): (H, W, 3) RGB
float in [0, 1] or uint8 (gray, RGBA, tensors and lists too) give one result; float images in 0…255, NaN, other shapes
and images too small for the method are one ValueError naming ``image`` (syndof.images.as_rgb_float). Also: galetto's
σ bound under ``max_side`` and hifst's ``max_side``."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch

from dmenet.methods import MethodOptions, make_method, parse_method
from model_helpers import ConstantClassifier

METHODS = ("galetto", "galetto:refine=paper", "dmenet_refined:refine=paper", "distill_student", "lbp", "laplacian",
           "hifst", "zhuo_sim")
_MADE: dict = {}


def _method(spec: str):
    if spec not in _MADE:
        _MADE[spec] = parse_method(spec).make()
    return _MADE[spec]


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    """uint8 RGB: a blocky texture, its right half blurred by σ 3 px."""
    tex = np.random.default_rng(0).random((h // 4, w // 4, 3)).astype(np.float32)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_NEAREST)
    tex[:, w // 2:] = cv2.GaussianBlur(tex, (0, 0), 3.0)[:, w // 2:]
    return np.round(tex * 255).astype(np.uint8)


def _maps(est, image):
    r = est.estimate(image)
    return [m for m in (r.sigma, r.blur_probability) if m is not None]


@pytest.mark.parametrize("spec", METHODS)
def test_uint8_gives_the_float_result(spec):
    est = _method(spec)
    u8 = _photo()
    for got, want in zip(_maps(est, u8), _maps(est, u8.astype(np.float32) / 255)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("spec", METHODS)
def test_float_0_255_nan_and_bad_shapes_are_refused_naming_the_image(spec):
    est = _method(spec)
    u8 = _photo()
    nan = u8.astype(np.float32) / 255
    nan[5, 5, 1] = np.nan
    for bad, words in ((u8.astype(np.float32), "float values up to"), (nan, "non-finite"),
                       (np.ascontiguousarray(u8.transpose(2, 0, 1)), r"must be \(H, W, 3\) RGB"),
                       (np.zeros((0, 0, 3), np.float32), "too small"), (u8 > 128, "unsupported dtype bool")):
        with pytest.raises(ValueError, match=f"^image.*{words}"):
            est.estimate(bad)


@pytest.mark.parametrize("spec", ("galetto", "dmenet_refined:refine=paper", "distill_student", "lbp"))
def test_gray_rgba_tensor_and_list_are_taken(spec):
    est = _method(spec)
    u8 = _photo()
    gray = u8[..., 1]
    gray3 = np.repeat(gray[..., None], 3, 2)
    rgba = np.concatenate([u8, np.full(u8.shape[:2] + (1,), 255, np.uint8)], 2)
    wants = {"gray": _maps(est, gray3), "rgb": _maps(est, u8)}  # each reference computed once (the slow methods)
    for given, same in ((gray, "gray"), (gray[..., None], "gray"), (rgba, "rgb"), (torch.from_numpy(u8), "rgb"),
                        ((u8.astype(np.float32) / 255).tolist(), "rgb")):
        got = _maps(est, given)
        assert len(got) == len(wants[same]) >= 1
        for g, want in zip(got, wants[same]):
            np.testing.assert_array_equal(g, want)


def test_a_read_only_image_gives_no_warning():
    """A read-only array (np.asarray of a PIL image, a memory map) gives no warning and the same maps as a copy."""
    image = _photo().astype(np.float32) / 255
    want = _maps(_method("galetto"), image.copy())
    image.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _maps(_method("galetto"), image)
    assert len(got) == len(want) >= 1
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert not image.flags.writeable


def test_too_small_images_name_the_minimum():
    with pytest.raises(ValueError, match=r"^image is too small: 64x31 px \(at least 32 px a side\)"):
        _method("galetto").estimate(_photo(31, 64))
    _method("galetto").estimate(_photo(32, 32))
    with pytest.raises(ValueError, match=r"^image is too small: 5x1 px \(at least 2 px a side\)"):
        _method("lbp").estimate(_photo(4, 8)[:1, :5])
    est = make_method("galetto", MethodOptions(max_side=64))
    with pytest.raises(ValueError, match=r"^max_side 64: the 256x48 px image would be classified at 64x12 px"):
        est.estimate(_photo(48, 256))


def test_galetto_max_side_bounds_sigma_at_the_working_size():
    """Shrinking by 1/2 doubles σ in input px: 19 px at the working size is 38 px, not clipped to 19."""
    est = make_method("galetto", MethodOptions(max_side=64, extra=(("refine", "code"),)))
    est.model = ConstantClassifier(19)
    out = est.estimate(_photo(64, 128))
    np.testing.assert_allclose(out.sigma, 38.0, rtol=1e-5)
    assert out.sigma_max == 38.0 and est.sigma_top((64, 128)) == 38.0 and est.sigma_top((64, 64)) == 19.0


def test_hifst_runs_at_max_side():
    from dmenet.peers.hifst import hifst_blur_map

    image = _photo(96, 128).astype(np.float32) / 255
    small = make_method("hifst", MethodOptions(max_side=48))
    got = small.estimate(image).blur_probability
    np.testing.assert_array_equal(got, hifst_blur_map(image, max_side=48))
    assert not np.array_equal(got, make_method("hifst").estimate(image).blur_probability)
    assert "long side ≤ 48 px" in small.describe() and "≤" not in make_method("hifst").describe()
    assert "runs at full size" in make_method("lbp", MethodOptions(max_side=48)).describe()
    assert "full size" not in make_method("lbp").describe()


@pytest.mark.parametrize("bad", [0, -5, True, 2.5, "64"])
def test_distill_max_side_is_checked_as_every_method_checks_it(bad):
    """``MethodOptions(max_side=0)`` was silently "no cap" for the Distill student (a ValueError for dmenet, galetto
    and hifst) and ``max_side="64"`` a TypeError from ``min``: the same one ValueError as the others give."""
    for name in ("distill_student", "dmenet"):
        with pytest.raises(ValueError, match="max_side must be a whole number of px"):
            make_method(name, MethodOptions(max_side=bad)).estimate(_photo())


@pytest.mark.parametrize("stride", [1, 3, 8, 32])
def test_galetto_counts_its_windows_for_the_memory_guard(stride):
    """galetto unfolds every 32×32 window of the working image at once (and ``spread`` a coverage count as large):
    about 8 KiB a working pixel at stride 1, where ``extra_bytes_per_pixel()`` said 0 and ``predict``'s guard budgets
    200 B, so ``galetto:stride=1`` at the default long side of 1024 px needed gigabytes unannounced."""
    from dmenet.galetto.blurmap import windows

    est = make_method("galetto", MethodOptions(extra=(("stride", stride),)))
    h, w = 96, 128
    held = 2 * windows(torch.zeros(h, w), stride)[0].nbytes / (h * w)
    assert held <= est.extra_bytes_per_pixel() <= 2 * held + 64


@pytest.mark.parametrize("name", ["dmenet", "galetto", "distill_student", "lbp"])
def test_a_device_this_machine_lacks_is_one_value_error_naming_it(name):
    """``make_method`` promises a ValueError for a bad option; a device it lacks gave torch's own errors
    (``AssertionError: Torch not compiled with CUDA enabled``, a RuntimeError listing every device type)."""
    with pytest.raises(ValueError, match=r"^device 'tpu': expected cpu, cuda or cuda:N$"):
        make_method(name, MethodOptions(device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="^device cuda: CUDA is not available on this machine$"):
            make_method(name, MethodOptions(device="cuda"))


def test_torchs_cpu_0_is_the_cpu():
    """torch accepts ``cpu:0``; the device check of make_method refused it ("expected cpu, cuda or cuda:N")."""
    assert make_method("lbp", MethodOptions(device="cpu:0")).name == "lbp"
    with pytest.raises(ValueError, match="device 'cpu:x'"):
        make_method("lbp", MethodOptions(device="cpu:x"))


def test_h52_distill_keeps_a_long_strips_short_side_under_its_working_size():
    """The student ran a 40×3848 strip at its recipe's long side 320: 3 px high, padded to 32, the map all 1.0 on
    both the sharp and the blurred half. The short side is now kept ≥ 32 px (as DMENet's, P1)."""
    from dmenet.distill.infer import MIN_SHORT_SIDE

    calls = []
    est = make_method("distill_student", MethodOptions())
    inner = est.model.forward
    est.model.forward = lambda x: calls.append(tuple(x.shape[-2:])) or inner(x)
    strip = np.concatenate([_photo(40, 64)] * 60, axis=1)  # 40 × 3840
    assert est.blur_map(strip).shape == (40, 3840)
    assert min(calls[-1]) >= MIN_SHORT_SIDE
    assert f"short side kept ≥ {MIN_SHORT_SIDE} px" in est.describe()
    est.blur_map(_photo(240, 320))
    assert calls[-1] == (256, 320)  # a photo under 10:1 at 320 runs as before (240 padded to 256)


def test_distill_refuses_images_below_the_side_it_measures():
    """The student's map of a 1×1 or 2×2 image was all 1.0, "blurred", whatever the image, sharp noise too (documented
    "any size ≥ 1 px"): below :data:`~dmenet.distill.infer.MIN_IMAGE_SIDE` (8 px) a side the map is constant, so it
    is now one ValueError naming ``image`` and the smallest side, as galetto and the peers refuse what they cannot
    measure; from 8 px sharp noise is not called blurred."""
    from dmenet.distill import infer

    est = _method("distill_student")
    noise = (np.random.default_rng(0).random((400, 400, 3)) * 255).astype(np.uint8)
    for h, w in ((1, 1), (2, 2), (7, 7), (2, 400), (400, 7)):
        with pytest.raises(ValueError, match=rf"^image is too small: {w}x{h} px \(at least 8 px a side\)$"):
            est.estimate(noise[:h, :w])
    with pytest.raises(ValueError, match=r"^image is too small: 2x2 px"):  # the function the method calls, too
        infer.blur_probability(est.model, noise[:2, :2])
    for h, w in ((8, 8), (8, 400)):
        prob = est.blur_map(noise[:h, :w])
        assert prob.shape == (h, w) and prob.mean() < 0.5, (h, w, prob.mean())
    assert infer.MIN_IMAGE_SIDE == 8
