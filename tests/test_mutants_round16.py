"""Mutation round 16 (docs/audit.md): tests that kill the mutants no earlier test noticed, in the code added or
changed on 7 Dec 2026 (docs/reliability.md §48–§52): ``syndof.units.max_sigma`` at its bound of 1 px,
``syndof.recipe.read_max_coc`` on a UTF-8 BOM, ``dmenet.cli.fit_skipped_line`` with no skip and past three,
``galetto.calibrate.fit_samples``' refusals (no σ map of a negative without a labelled photo; the first negative
named) and its ``skipped`` / ``negatives_fitted`` records, ``calibrate bn``'s record of an image name no file can be
read at, ``galetto.select.readable_renders``' reason for a render and ``galetto.compare.synthetic_scores`` passing a
method's own InputError on. Each expectation is worked out by hand from the rule the docstrings state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from syndof import io as sio
from syndof import units


# ------------------------------------------------------------------------------------------- units.max_sigma
def test_max_sigma_takes_its_lower_bound_of_one_px():
    """``max_sigma`` refuses a max_coc below 1 px and takes 1 itself: (1 − 1)/4 = 0 px (a CoC of one pixel, no
    blur); 1.5 gives 0.125 px."""
    assert units.max_sigma(1) == 0.0
    assert units.max_sigma(1.5) == 0.125
    with pytest.raises(ValueError, match="finite CoC >= 1 px"):
        units.max_sigma(0.999)


# ------------------------------------------------------------------------------------------- recipe.read_max_coc
def test_read_max_coc_refuses_a_dataset_json_with_a_utf8_bom_naming_it(tmp_path):
    """``dataset.json`` is JSON, UTF-8 without a byte-order mark (``json`` refuses one): a file saved with a BOM is
    ``bad dataset.json (Unexpected UTF-8 BOM …)`` naming it (reliability.md §50 case 25), not read past the mark."""
    from syndof.recipe import read_max_coc

    meta = tmp_path / "dataset.json"
    meta.write_bytes(b"\xef\xbb\xbf" + json.dumps({"max_coc": 21}).encode())
    with pytest.raises(sio.InputError) as err:
        read_max_coc(tmp_path)
    assert err.value.path == str(meta) and err.value.problem.startswith("bad dataset.json (Unexpected UTF-8 BOM")
    meta.write_bytes(json.dumps({"max_coc": 21}).encode())
    assert read_max_coc(tmp_path) == 21.0


# ---------------------------------------------------------------------------------------- dmenet.cli.fit_skipped_line
def test_fit_skipped_line_is_none_without_skips_and_names_the_first_three():
    """No skip: no line (None, for an empty list too: "fitted without 0 input(s)" would be printed after every
    calibration). Three skips are all named, with no "more"; four name the first three and "… (1 more)"; the count
    is of every skip."""
    from dmenet.cli import fit_skipped_line

    assert fit_skipped_line("f.safetensors", "f.json", []) is None
    lines = [f"d/{c}.png: file not found" for c in "abcd"]
    head = "f.safetensors: fitted without {} input(s) it could not use, listed under \"skipped\" in f.json: "
    assert fit_skipped_line("f.safetensors", "f.json", lines[:3]) == head.format(3) + "; ".join(lines[:3])
    assert fit_skipped_line("f.safetensors", "f.json", lines) == head.format(4) + "; ".join(lines[:3]) + "; … (1 more)"


# ---------------------------------------------------------------------------------------- galetto.calibrate.fit_samples
class _CountingSigma:
    """A stand-in estimator: σ = red channel × 4 px; refuses (ValueError, as the galetto method) a photo under 8 px
    a side; counts its σ maps."""

    def __init__(self):
        self.calls = 0

    def blur_sigma(self, image):
        if min(image.shape[:2]) < 8:
            raise ValueError(f"image is too small: {image.shape[1]}x{image.shape[0]} px (at least 8 px a side)")
        self.calls += 1
        return image[..., 0] * 4.0


def _fit_set(root: Path, labelled: dict[str, str], negatives: dict[str, str]):
    """``Sample`` objects of labelled photos (``image/STEM.png`` + a half-blurred ``gt/STEM.png``) and negatives
    (``sharp/STEM.png``), each "ok", "bad" (not an image) or "small" (6×6 px)."""
    from dmenet.eval import benchmarks as B

    rng = np.random.default_rng(0)
    mask = np.zeros((12, 16), np.uint8)
    mask[:, 8:] = 255

    def photo(path: Path, kind: str) -> Path:
        if kind == "bad":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not a png")
        else:
            shape = (6, 6, 3) if kind == "small" else (12, 16, 3)
            sio.write_image(path, rng.random(shape).astype(np.float32))
        return path

    samples = []
    for stem, kind in labelled.items():
        sio.write_image(root / "gt" / f"{stem}.png", mask[:6, :6] if kind == "small" else mask)
        samples.append(B.Sample(stem, photo(root / "image" / f"{stem}.png", kind), root / "gt" / f"{stem}.png"))
    sharp = [B.Sample(stem, photo(root / "sharp" / f"{stem}.png", kind), None) for stem, kind in negatives.items()]
    return samples, sharp


def _error_of(path: Path) -> str:
    with pytest.raises(sio.InputError) as err:
        sio.read_image(path)
    return str(err.value)


def test_fit_samples_makes_no_sigma_map_of_a_negative_when_no_labelled_photo_was_read(tmp_path):
    """Every labelled photo unreadable: refused naming the first (the set has nothing to fit), before any σ map of a
    negative is paid for (the loop stops at the first negative)."""
    from dmenet.galetto.calibrate import fit_samples

    samples, sharp = _fit_set(tmp_path, {"a": "bad", "b": "bad"}, {"n0": "ok", "n1": "ok"})
    est, skipped = _CountingSigma(), []
    with pytest.raises(sio.InputError) as err:
        fit_samples(est, samples, True, negatives=sharp, skipped=skipped)
    assert err.value.path == str(samples[0].image)
    assert err.value.problem.endswith("(no readable labelled sample: all 2 skipped; nothing was written)")
    assert est.calls == 0 and skipped == [_error_of(s.image) for s in samples]


def test_fit_samples_names_the_first_negative_when_none_is_read_and_records_every_skip(tmp_path):
    """A labelled photo skipped and every negative unreadable: the refusal names the first *negative* (the fit would
    be without the negatives asked for), not the labelled photo skipped before it; ``skipped`` holds every skip, the
    first included, in order."""
    from dmenet.galetto.calibrate import fit_samples

    samples, sharp = _fit_set(tmp_path, {"a": "ok", "b": "bad"}, {"n0": "bad", "n1": "bad"})
    skipped: list[str] = []
    with pytest.raises(sio.InputError) as err:
        fit_samples(_CountingSigma(), samples, True, negatives=sharp, skipped=skipped)
    assert err.value.path == str(sharp[0].image)
    assert err.value.problem.endswith("(no readable --negatives photo: all 2 skipped; nothing was written)")
    assert skipped == [_error_of(p) for p in (samples[1].image, sharp[0].image, sharp[1].image)]


def test_fit_samples_hands_back_the_negatives_it_read_and_names_a_refused_photo_by_its_path(tmp_path):
    """Of three negatives, one unreadable and one the estimator refuses (under its window): ``negatives_fitted`` is
    the one read, the names fitted on are the labelled photo and that negative, and the refused photo's skip line
    names its whole path with the estimator's words."""
    from dmenet.galetto.calibrate import fit_samples

    samples, sharp = _fit_set(tmp_path, {"a": "ok"}, {"n0": "ok", "n1": "bad", "n2": "small"})
    skipped, fitted = [], []
    _, _, names = fit_samples(_CountingSigma(), samples, True, negatives=sharp, skipped=skipped,
                              negatives_fitted=fitted)
    assert fitted == [sharp[0]] and names == ["a.png", "n0.png"]
    assert skipped == [_error_of(sharp[1].image),
                       f"{sharp[2].image}: image is too small: 6x6 px (at least 8 px a side)"]


# ------------------------------------------------------------------------------------------- calibrate bn's skips
def test_calibrate_bn_records_a_name_no_file_can_be_read_at_with_the_photos_it_could_not_read(tmp_path, capsys):
    """``calibrate bn --mode moving`` leaves out an image name where no file can be read (a link to nothing, from the
    listing: ``image_folders``) and skips an undecodable photo (``random_crops``): both are recorded under
    ``skipped``, the listing's first, and counted on stdout with the record's name."""
    from dmenet import calibrate
    from dmenet.models.model_io import load_model_file, save_model
    from model_helpers import tiny_dmenet

    save_model(tmp_path / "m", tiny_dmenet(0), {})
    real = tmp_path / "real"
    sio.write_image(real / "big.png", np.random.default_rng(0).random((36, 40, 3)).astype(np.float32))
    (real / "bad.png").write_bytes(b"not a png")
    (real / "gone.png").symlink_to(tmp_path / "nothing.png")
    assert calibrate.main(["bn", "--model", str(tmp_path / "m.safetensors"), "--mode", "moving", "--real",
                           str(real), "--crops", "2", "--crop", "32", "--batch", "2", "--detection", "follow",
                           "--out", str(tmp_path / "b")]) == 0
    lines = [f"{real / 'gone.png'}: a symbolic link to nothing", _error_of(real / "bad.png")]
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'b.safetensors'}: fitted without 2 input(s) it could not use, listed under \"skipped\" in "
        f"{tmp_path / 'b.json'}: {'; '.join(lines)}"]
    assert load_model_file(tmp_path / "b")[1]["history"][-1]["result"]["skipped"] == lines


# ------------------------------------------------------------------------------------------- galetto select / compare
def _syndof_renders(root: Path, stems, shape=(40, 48)) -> Path:
    rng = np.random.default_rng(2)
    for stem in stems:
        sio.write_image(root / "image" / f"{stem}.png", rng.random((*shape, 3)).astype(np.float32))
        sio.write_sigma_map(root / "blur_map" / f"{stem}.png", np.full(shape, 2.0, np.float32))
    return root


def test_readable_renders_gives_an_unreadable_renders_problem_alone(tmp_path, capsys):
    """An undecodable render is skipped with its reader's problem alone (the render is the item the line names:
    ``skipped PATH: problem``, not ``PATH: PATH: problem``); a σ map's problem keeps the map's name."""
    from dmenet.galetto.select import readable_renders

    root = _syndof_renders(tmp_path / "syn", ("a", "b", "c"))
    render, sigma = root / "image" / "a.png", root / "blur_map" / "c.png"
    render.write_bytes(b"not a png")
    sigma.write_bytes(b"not a png")
    pairs, skipped = readable_renders(root)
    problem = _error_of(render)[len(f"{render}: "):]
    assert [p[0] for p in pairs] == ["b"]
    assert skipped == {str(render): problem, str(root / "image" / "c.png"): f"{sigma}: {problem}"}
    assert f"skipped {render}: {problem}\n" in capsys.readouterr().err


def test_synthetic_scores_passes_a_methods_own_input_error_on_unchanged(tmp_path):
    """A method whose σ map fails with an InputError naming its own file (its model) is not re-worded as a refusal
    of the render ("RENDER: MODEL: … (method …)"): that error names the file at fault already."""
    from dmenet.galetto.compare import synthetic_scores

    root = _syndof_renders(tmp_path / "syn", ("a",))
    model = tmp_path / "model.safetensors"

    class _Broken:
        gives_sigma = True

        def sigma_map(self, image):
            raise sio.InputError(model, "cannot read the model")

    pairs = [("a", root / "image" / "a.png", root / "blur_map" / "a.png")]
    with pytest.raises(sio.InputError) as err:
        synthetic_scores({"broken": _Broken()}, pairs, 29.0, root)
    assert str(err.value) == f"{model}: cannot read the model"
