"""Closed sets of options (``syndof.choices``): parsed once into enum members, bad values named in the error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmenet.galetto.blurmap import READOUTS, Readout, readout
from dmenet.galetto.patches import PatchBlur, labelled_patches
from dmenet.galetto.refine import REFINES, Refine, refine_map
from syndof.choices import choices, parse_choice


def test_parse_choice_takes_members_and_values_and_names_what_is_wrong():
    assert parse_choice(Refine, "code", "refine") is Refine.CODE
    assert parse_choice(Refine, Refine.PAPER, "refine") is Refine.PAPER
    assert choices(Refine) == REFINES == ("none", "paper", "code") and READOUTS == ("argmax", "expectation")
    with pytest.raises(ValueError, match=r"^refine must be one of \('none', 'paper', 'code'\), got 'Code'$"):
        parse_choice(Refine, "Code", "refine")  # values are exact, not case-folded
    with pytest.raises(ValueError, match="got 3"):
        parse_choice(Readout, 3, "readout")


def test_functions_take_values_or_members_alike_and_reject_unknown_ones():
    probs = torch.softmax(torch.randn(5, 20), 1)
    assert torch.equal(readout(probs, "argmax"), readout(probs, Readout.ARGMAX))
    assert torch.allclose(readout(probs, "expectation"), probs @ torch.arange(20.0))
    with pytest.raises(ValueError, match="readout must be one of"):
        readout(probs, "mean")
    rng = np.random.default_rng(0)
    image, m = rng.random((40, 50, 3)), rng.random((40, 50)).astype(np.float32) * 5
    np.testing.assert_array_equal(refine_map(image, m, "code"), refine_map(image, m, Refine.CODE))
    np.testing.assert_array_equal(refine_map(image, m, Refine.NONE), m)
    with pytest.raises(ValueError, match="refine must be one of"):
        refine_map(image, m, "guided")
    gray = torch.rand(64, 64) * 255
    pos = np.array([[4, 8]])
    np.testing.assert_array_equal(labelled_patches(gray, pos, "isolated"),
                                  labelled_patches(gray, pos, PatchBlur.ISOLATED))
    with pytest.raises(ValueError, match="blur must be one of"):
        labelled_patches(gray, pos, "uniform")


def test_refined_wrapper_refuses_none_and_unknown_modes():
    from dmenet.galetto.method import refined
    from dmenet.methods.base import Estimator

    class Base(Estimator):
        name, gives_sigma = "base", True
        estimate = describe = None

    assert refined(Base(), "code").mode is Refine.CODE
    for bad in ("none", Refine.NONE, "gf"):
        with pytest.raises(ValueError, match="refine mode must be"):
            refined(Base(), bad)


@pytest.mark.parametrize("option, words", [("batch=0", "batch must be an integer >= 1"),
                                           ("batch=2.5", "batch must be an integer >= 1"),
                                           ("stride=100000", "stride must be an integer 1…32"),
                                           ("stride=abc", "stride must be an integer 1…32"),
                                           ("denoise=x", "denoise must be a number >= 0"),
                                           ("denoise=nan", "denoise must be a number >= 0")])
def test_galetto_numeric_options_are_checked_when_the_method_is_made(option, words):
    """Before any image: a zero batch, a stride wider than the window (pixels no window covers; a 100000 px stride
    asked for 160 GB), text or NaN are one ValueError naming the method and the option."""
    from dmenet.methods.base import MethodOptions
    from dmenet.methods.registry import parse_method

    with pytest.raises(ValueError, match=f"^galetto: {words}"):
        parse_method(f"galetto:{option}").make(MethodOptions())
    est = parse_method("galetto:stride=16,batch=64,denoise=0.5").make(MethodOptions())
    assert (est.settings["stride"], est.settings["batch"], est.settings["denoise"]) == (16, 64, 0.5)


@pytest.mark.parametrize("value, kind, low_open, ok", [
    ("3", int, False, 3), (2.0, int, False, 2), ("0.5", float, False, 0.5), (0, float, False, 0.0),
    (0, float, True, None), (2.5, int, False, None), (True, int, False, None), ("inf", float, False, None),
    ("nan", float, False, None), (-1, float, False, None), (40, int, False, None), ("x", float, False, None)])
def test_setting_number_checks_kind_bounds_and_names_the_option(value, kind, low_open, ok):
    """One checker for every method's numeric options (Galetto's stride, zhuo_sim's max_blur): closed or open lower
    bound, optional upper bound (32 here), no NaN, infinity, boolean or fractional integer."""
    from dmenet.methods.base import setting_number

    if ok is None:
        with pytest.raises(ValueError, match=r"^m: k must be .* \(what\), got"):
            setting_number({"k": value}, "k", kind, "m", "what", 0, 32, low_open=low_open)
    else:
        got = setting_number({"k": value}, "k", kind, "m", "what", 0, 32, low_open=low_open)
        assert got == ok and type(got) is kind


def test_choices_print_as_their_values_and_json_writes_strings():
    import json

    from dmenet.models.recipe import BNMode
    from syndof.choices import Choice
    from syndof.psf import Kernel

    assert f"{Kernel.DISC}" == "disc" and str(BNMode.IMAGE) == "image" and f"{Kernel.DISC:>6}" == "  disc"
    assert json.dumps({"bn": BNMode.MOVING}) == '{"bn": "moving"}' and Kernel.DISC == "disc"
    assert repr(Kernel.DISC) == "<Kernel.DISC: 'disc'>"  # the class shows where it matters: in repr
    assert issubclass(Kernel, Choice) and issubclass(Refine, Choice) and issubclass(BNMode, Choice)
