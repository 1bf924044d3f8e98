"""Review fixes of the Galetto & Deng tools: galetto.compare writes a new --out all or nothing and never replaces an
earlier run, passes model files the way every dmenet tool does (``--model`` for every learned method,
``NAME:model=PATH`` for one), checks every input before scoring (one line naming the file or option), refuses σ checks
no chosen method can score and notes the σ-less methods it leaves out, and prints the apps table; galetto.select keys
its candidates by enum members and still writes the same selection.json; the galetto method's σ top follows the units
resize rule."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dmenet.galetto import compare, select
from dmenet.galetto.blurmap import Readout
from dmenet.galetto.refine import Refine
from dmenet.methods import MethodOptions, parse_method
from galetto_helpers import model_file_fixture, val_folder_fixture  # noqa: F401 - the model_file, val_folder fixtures
from galetto_helpers import one_error_line, snapshot, write_source_renders
from hostile_helpers import unwritable_folder


# ------------------------------------------------------------------------------------------------------ compare
def run_compare(model: Path, out: Path, *extra: str) -> int:
    return compare.main(["--method", f"galetto:model={model},stride=32", "--threads", "1", "--out", str(out), *extra])


def test_compare_never_replaces_an_earlier_run(val_folder, model_file, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert run_compare(model_file, out, "--synthetic", str(val_folder)) == 0
    before = snapshot(out)
    assert sorted(before) == ["metrics.json", "summary.md"]
    assert "synthetic" in json.loads(before["metrics.json"])
    capsys.readouterr()
    assert run_compare(model_file, out, "--synthetic", str(val_folder)) == 2
    line = one_error_line(capsys)
    assert f"--out {out}" in line and "not empty" in line
    assert snapshot(out) == before  # the first run's metrics.json byte-identical
    assert not [p for p in tmp_path.iterdir() if ".part-" in p.name]


def test_compare_writes_nothing_when_a_later_check_fails(val_folder, model_file, tmp_path, capsys):
    out = tmp_path / "cmp"
    # --synthetic is scored first, then --cuhk fails: its only image is there but cannot be read: no half-written
    # --out (a missing folder is refused before any scoring: test_compare_checks_every_input_before_scoring)
    cuhk = tmp_path / "cuhk"
    (cuhk / "image").mkdir(parents=True)
    (cuhk / "image" / "a.png").write_bytes(b"not an image")
    (cuhk / "gt").mkdir()
    (cuhk / "gt" / "a.png").write_bytes(b"not an image")
    assert run_compare(model_file, out, "--synthetic", str(val_folder), "--cuhk", str(cuhk)) == 2
    captured = capsys.readouterr()
    assert "synthetic" in captured.out and "a.png" in captured.err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".part-" in p.name]


def test_compare_skips_a_corrupt_benchmark_image_and_counts_it(val_folder, model_file, tmp_path, capsys):
    """A truncated image in a --cuhk or --rtf folder is skipped with one line naming it, by every method alike, and
    the count is stated in the tables, metrics.json and the closing line (it stopped the whole run, exit 2)."""
    from syndof import io as sio

    sources = sorted((val_folder / "image").iterdir())
    cuhk, rtf = tmp_path / "cuhk", tmp_path / "rtf"
    for i, src in enumerate(sources):
        (cuhk / "image").mkdir(parents=True, exist_ok=True)
        (cuhk / "image" / f"a{i}.png").write_bytes(src.read_bytes())
        sio.write_image(cuhk / "gt" / f"a{i}.png", np.repeat((np.arange(64) < 32)[None, :, None], 48, 0)
                        .repeat(3, -1).astype(np.float32))
        (rtf / "image" / "0").mkdir(parents=True, exist_ok=True)
        (rtf / "image" / "0" / f"img{i + 1}.png").write_bytes(src.read_bytes())
        (rtf / "gt" / "0").mkdir(parents=True, exist_ok=True)
        np.save(rtf / "gt" / "0" / f"gt{i + 1}.npy", np.full((48, 64), 1.0, np.float32))
    data = sources[0].read_bytes()
    (cuhk / "image" / "a9.png").write_bytes(data[: len(data) // 3])  # truncated
    (cuhk / "gt" / "a9.png").write_bytes((cuhk / "gt" / "a0.png").read_bytes())
    (rtf / "image" / "0" / "img9.png").write_bytes(data[: len(data) // 3])
    np.save(rtf / "gt" / "0" / "gt9.npy", np.full((48, 64), 1.0, np.float32))
    out = tmp_path / "cmp"
    assert compare.main(["--method", f"galetto:model={model_file},stride=32", "lbp", "--threads", "1",
                         "--cuhk", str(cuhk), "--rtf", str(rtf), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    skipped = [ln for ln in captured.err.splitlines() if ln.startswith("skipped ")]
    assert len(skipped) == 2 and "Traceback" not in captured.err, captured.err  # once each, not once per method
    assert any(str(cuhk / "image" / "a9.png") in ln for ln in skipped)
    assert any(str(rtf / "image" / "0" / "img9.png") in ln for ln in skipped)
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(r["n"] == 2 for r in metrics["cuhk"].values()) and len(metrics["cuhk"]) == 2
    assert all(r["n"] == 2 for r in metrics["rtf"].values())
    assert metrics["skipped"] == {"cuhk": [str(cuhk / "image" / "a9.png")],
                                  "rtf": [str(rtf / "image" / "0" / "img9.png")]}
    summary = (out / "summary.md").read_text()
    assert summary.count("skipped 1 unreadable image") == 2
    assert "2 image(s) skipped" in captured.out.splitlines()[-1]


def test_compare_sigma_checks_need_a_method_with_sigma(val_folder, model_file, tmp_path, capsys):
    """A σ check with only σ-less methods is refused before any scoring; beside a method with σ, a σ-less method is
    left out of the σ tables with a note (it used to be an IndexError, or an empty table with no word)."""
    stack = tmp_path / "stack"
    for i, src in enumerate(sorted((val_folder / "image").iterdir())):
        stack.mkdir(exist_ok=True)
        (stack / f"f{i}.png").write_bytes(src.read_bytes())
    for extra in (["--synthetic", str(val_folder), "--limit", "1"], ["--fusion-real", str(stack)]):
        assert compare.main(["--method", "lbp", "--out", str(tmp_path / "a"), *extra]) == 2
        line = one_error_line(capsys)
        assert extra[0] in line and "lbp" in line and "σ" in line
        assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    assert compare.main(["--method", f"galetto:model={model_file},stride=32", "lbp", "--threads", "1",
                         "--synthetic", str(val_folder), "--out", str(out)]) == 0
    assert "not scored (no σ map in px): lbp" in capsys.readouterr().out
    summary = (out / "summary.md").read_text()
    assert "## synthetic" in summary and "not scored (no σ map in px): lbp" in summary
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["no_sigma"] == ["lbp"] and list(metrics["synthetic"]) == [f"galetto:model={model_file},stride=32"]


def test_compare_names_a_render_without_its_sigma_map(val_folder, model_file, tmp_path, capsys):
    (val_folder / "blur_map" / "r1.png").unlink()
    assert run_compare(model_file, tmp_path / "a", "--synthetic", str(val_folder)) == 2
    line = one_error_line(capsys)
    assert str(val_folder / "image" / "r1.png") in line and "σ map" in line
    assert not (tmp_path / "a").exists()
    # only the renders to score need one: the first (r0) has its map
    assert run_compare(model_file, tmp_path / "b", "--synthetic", str(val_folder), "--limit", "1") == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["synthetic"]


def _patch_sets(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad patch test sets: name → (file, what the error must say)."""
    folder.mkdir()
    good = folder / "test.npz"
    np.savez(good, patches=np.zeros((4, 32, 32), np.uint8), label=np.arange(4))
    cases = {"truncated": (folder / "truncated.npz", "truncated"), "train": (folder / "train.npz", "train/val"),
             "text": (folder / "text.npz", "not a .npz"), "no_label": (folder / "nolabel.npz", "label"),
             "npy": (folder / "single.npy", ".npy"), "missing": (folder / "missing.npz", "cannot read")}
    cases["truncated"][0].write_bytes(good.read_bytes()[:-40])
    np.savez(cases["train"][0], patches=np.zeros((4, 20, 32, 32), np.uint8))
    cases["text"][0].write_text("not a patch set")
    np.savez(cases["no_label"][0], patches=np.zeros((4, 32, 32), np.uint8))
    np.save(cases["npy"][0], np.zeros((4, 32, 32), np.uint8))
    return cases


def test_compare_names_a_bad_patch_set(model_file, tmp_path, capsys):
    for name, (path, says) in _patch_sets(tmp_path / "sets").items():
        out = tmp_path / f"out_{name}"
        assert run_compare(model_file, out, "--patches", str(path)) == 2, name
        line = one_error_line(capsys)
        assert line.startswith(f"error: {path}: ") and says in line, (name, line)
        assert not out.exists()
    with pytest.raises(zipfile.BadZipFile):  # what compare used to let through as a traceback
        np.load(tmp_path / "sets" / "truncated.npz")


def test_compare_patches_need_a_galetto_method(model_file, tmp_path, capsys):
    np.savez(tmp_path / "test.npz", patches=np.zeros((4, 32, 32), np.uint8), label=np.arange(4))
    assert compare.main(["--method", "lbp", "--patches", str(tmp_path / "test.npz"), "--out",
                         str(tmp_path / "a")]) == 2
    line = one_error_line(capsys)
    assert "--patches" in line and "galetto" in line
    assert not (tmp_path / "a").exists()
    assert run_compare(model_file, tmp_path / "b", "--patches", str(tmp_path / "test.npz")) == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["classifier"]["n"] == 4


def test_compare_checks_every_input_before_scoring(val_folder, model_file, tmp_path, capsys):
    """A bad later input is named before the synthetic scoring runs (nothing printed on stdout)."""
    photos = tmp_path / "photos"
    renders = write_source_renders(tmp_path / "renders", photos)
    cases = [(["--synthetic", str(renders), "--apps", str(tmp_path / "no_photos")], f"--apps {tmp_path / 'no_photos'}"),
             (["--synthetic", str(val_folder), "--apps", str(photos)], "r0.png"),  # r0: not <index>_<id>
             (["--synthetic", str(renders), "--fusion-real", str(tmp_path / "nonexist")], "no such folder"),
             (["--synthetic", str(renders), "--fusion-real", str(photos / "x*.png")], "no image matches"),
             (["--synthetic", str(renders), "--rtf", str(tmp_path / "no_rtf")], "not a folder")]
    for extra, says in cases:
        assert run_compare(model_file, tmp_path / "out", *extra) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.splitlines()) == 1, captured
        assert captured.err.startswith("error: ") and says in captured.err, (says, captured.err)
        assert not (tmp_path / "out").exists()


def test_compare_apps_table_printed_and_in_the_summary(model_file, tmp_path, capsys):
    """--apps on renders with .png sources: a table of each method's means (and the σ_GT oracle) is printed and in
    summary.md (it was only in metrics.json, and printed as an empty dict)."""
    from dmenet.galetto.check_apps import APPS_COLUMNS, ORACLE

    photos = tmp_path / "photos"
    renders = write_source_renders(tmp_path / "renders", photos)
    out = tmp_path / "cmp"
    assert run_compare(model_file, out, "--synthetic", str(renders), "--apps", str(photos)) == 0
    printed = capsys.readouterr().out
    summary = (out / "summary.md").read_text()
    label = f"galetto:model={model_file},stride=32"
    metrics = json.loads((out / "metrics.json").read_text())["apps"]
    assert sorted(metrics[label]) == ["000000_src0", "000001_src1"]
    for text in (printed, summary):
        assert "## apps" in text
        table = text.split("## apps", 1)[1]
        rows = [ln for ln in table.splitlines() if ln.startswith(f"| {label} |") or ln.startswith(f"| {ORACLE} |")]
        assert len(rows) == 2
        cells = rows[0].strip("|").split("|")
        assert len(cells) == 2 + len(APPS_COLUMNS) and cells[1].strip() == "2"
        psnr = np.mean([metrics[label][s]["fusion"]["psnr_fused"] for s in metrics[label]])
        assert f"{psnr:.4f}" in rows[0]


def test_apps_table_means_over_renders():
    from dmenet.galetto.check_apps import APPS_COLUMNS, ORACLE, apps_table

    def render(value, gt):
        enh = {k: value for k in ("clipped_sharp_adaptive", "clipped_sharp_global", "change_blurred_adaptive",
                                  "change_blurred_global", "lapvar_gain_mid")}
        mag = {"sdof": {"background_rise_px": value, "in_focus_move_px": None}, "scale": {"slope": value}}
        return {"enhancement": enh, "enhancement_gt_sigma": {k: gt for k in enh}, "magnification": mag,
                "magnification_gt_sigma": {"sdof": {"background_rise_px": gt, "in_focus_move_px": gt},
                                           "scale": {"slope": gt}},
                "fusion": {"psnr_fused": value, "psnr_best_source": 10.0, "psnr_oracle_fusion": gt}}

    rows = apps_table({"m": {"a": render(1.0, 5.0), "b": render(3.0, 7.0)}})
    assert [r["method"] for r in rows] == ["m", ORACLE] and all(r["renders"] == 2 for r in rows)
    assert list(rows[0])[2:] == list(APPS_COLUMNS)
    assert rows[0]["psnr_fused"] == rows[0]["scale_slope"] == 2.0 and rows[0]["sdof_in_focus_move_px"] is None
    assert rows[1]["psnr_fused"] == rows[1]["scale_slope"] == rows[1]["sdof_in_focus_move_px"] == 6.0
    assert rows[1]["psnr_best_source"] == 10.0
    assert apps_table({}) == []


def test_compare_model_file_per_method(model_file, val_folder, tmp_path, capsys):
    from dmenet.galetto.method import DEFAULT_MODEL

    methods = compare.build([parse_method(f"galetto:model={model_file}"), parse_method("galetto"),
                             parse_method("lbp")], MethodOptions())
    assert methods[f"galetto:model={model_file}"].model_file == model_file
    assert methods["galetto"].model_file == DEFAULT_MODEL
    # --model is for every learned method, as in every dmenet tool: a classical-only run refuses it ...
    assert compare.main(["--method", "lbp", "--model", str(model_file), "--out", str(tmp_path / "a")]) == 2
    assert "no chosen method loads a model file" in one_error_line(capsys)
    # ... and a method that cannot read it is named, with the per-method spelling as the way out
    assert compare.main(["--method", "galetto", "dmenet", "--model", str(model_file), "--synthetic", str(val_folder),
                         "--out", str(tmp_path / "b")]) == 2  # a check asked for: a run of none is refused (C7)
    line = one_error_line(capsys)
    assert line.startswith("error: --method dmenet: ") and "NAME:model=PATH" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ------------------------------------------------------------------------------------------------------- select
def test_select_candidates_are_enum_keyed_in_the_rule_order(val_folder, model_file):
    from dmenet.galetto.train import load_classifier

    scores = select.candidates_mae(load_classifier(model_file), val_folder, 32, 0.0)
    keys = list(scores)
    assert keys == [select.Candidate(m, r, 0.0) for m in Readout for r in Refine]
    assert all(k.readout is m and k.refine is r for k, (m, r) in zip(keys, [(m, r) for m in Readout for r in Refine]))
    assert str(keys[0]) == "readout=argmax,refine=none,denoise=0"
    assert str(select.Candidate(Readout.EXPECTATION, Refine.PAPER, 1.0)) == "readout=expectation,refine=paper,denoise=1"


def test_select_winner_and_json_format(val_folder, model_file, tmp_path, monkeypatch):
    """Stage 1 picks expectation/paper (lowest by more than the tolerance); its denoise=1 twin is lower still and
    wins. selection.json keeps the string keys of every candidate."""
    def fake_mae(model, root, stride, denoise, limit=None, pairs=None):
        out = {}
        for m in Readout:
            for r in Refine:
                good = m is Readout.EXPECTATION and r is Refine.PAPER
                out[select.Candidate(m, r, denoise)] = (0.10 if good else 0.20) - (0.05 if denoise == 1.0 else 0.0)
        return out

    monkeypatch.setattr(select, "candidates_mae", fake_mae)
    out = tmp_path / "sel"
    assert select.main(["--val", str(val_folder), "--model", str(model_file), "--threads", "1", "--out",
                        str(out)]) == 0
    result = json.loads((out / "selection.json").read_text())
    assert result["stage1_winner"] == "readout=expectation,refine=paper,denoise=0"
    assert result["winner"] == "readout=expectation,refine=paper,denoise=1"
    assert result["readout_of_winner"] == "expectation"
    assert set(result["scores"]) == {f"readout={m},refine={r},denoise={d}" for m in ("argmax", "expectation")
                                     for r in ("none", "paper", "code") for d in (0, 1)}
    assert result["scores"]["readout=expectation,refine=paper,denoise=1"] == pytest.approx(0.05)


def test_pick_tolerance_keeps_the_earlier_candidate():
    """experiments/galetto_selection.md: the lowest MAE wins; within 0.002 of it the earlier candidate wins."""
    a, b = (select.Candidate(Readout.ARGMAX, Refine.NONE, 0.0), select.Candidate(Readout.EXPECTATION, Refine.NONE, 0.0))
    assert select.pick({a: 0.1015, b: 0.100}) == a  # within the tolerance: the earlier
    assert select.pick({a: 0.1030, b: 0.100}) == b  # 0.003 worse: the lower wins


def test_select_denoise_twin_within_tolerance_loses_to_denoise_0(val_folder, model_file, tmp_path, monkeypatch):
    """Stage 2: denoise 0 before 1, so a denoise=1 twin only 0.001 lower does not win."""
    def fake_mae(model, root, stride, denoise, limit=None, pairs=None):
        return {select.Candidate(m, r, denoise): (0.10 if m is Readout.ARGMAX and r is Refine.NONE else 0.20)
                - (0.001 if denoise == 1.0 else 0.0) for m in Readout for r in Refine}

    monkeypatch.setattr(select, "candidates_mae", fake_mae)
    out = tmp_path / "sel"
    assert select.main(["--val", str(val_folder), "--model", str(model_file), "--threads", "1", "--out",
                        str(out)]) == 0
    assert json.loads((out / "selection.json").read_text())["winner"] == "readout=argmax,refine=none,denoise=0"


# ------------------------------------------------------------------------------------------------------- method
def test_sigma_top_is_19_px_rescaled_by_the_units_resize_rule():
    from dmenet.galetto.method import SIGMA_MAX, BlurSource, GalettoEstimator
    from syndof import units

    from syndof import resize

    est = GalettoEstimator(None, MethodOptions(max_side=64), {"blur": BlurSource.LABEL})
    # 91×50 works at 64×35 (50·64/91 = 35.2 rounds down): σ scales back by the factor that size got, √(64/91 · 35/50),
    # not the 64/91 asked (27.0156 px; reliability.md §44)
    got = resize.applied_scale((91, 50, 3), (64, 35))
    assert est.sigma_top((91, 50, 3)) == units.rescale_sigma(SIGMA_MAX, 1 / got) == pytest.approx(27.0791663, abs=1e-6)
    assert est.sigma_top((40, 64, 3)) == SIGMA_MAX  # fits: no rescale


def test_e8_compare_refuses_an_unwritable_out_folder_before_any_work(val_folder, model_file, tmp_path, monkeypatch,
                                                                      capsys):
    """The report is staged beside ``--out`` after every check has been scored: an unwritable folder was found only
    then (the scoring lost), the line naming the staged ``.OUT.part-…`` folder."""
    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(compare, "build", lambda *a, **k: pytest.fail("a model was loaded before --out was checked"))
    out = tmp_path / "ro" / "cmp"
    with unwritable_folder(tmp_path / "ro", monkeypatch):
        assert run_compare(model_file, out, "--synthetic", str(val_folder)) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: --out {out}: ") and "Permission denied" in line and ".part" not in line
    assert not out.exists()

# ------------------------------------------------------------------------------------ left items of §17 (§18)
def test_h88_compare_skips_a_benchmark_image_name_that_is_no_file_and_refuses_such_a_frame(tmp_path, capsys):
    """A symbolic link loop, a link to nothing or a FIFO named like an image in ``--cuhk``'s ``image/`` was left out
    of the scored images unsaid (metrics.json named no skip; in ``--rtf``, H91, the run was refused as "unmatched");
    one in a ``--stack`` folder was left out of the stack (scored on the other frames). The CUHK or RTF name is now
    skipped and counted as an undecodable image is (one line each, ``skipped`` in metrics.json, the closing count);
    the stack is refused before any model is loaded (exit 2, one line naming the frame, nothing written), as a stack
    is scored with all its frames."""
    import os

    from syndof import io as sio

    rng = np.random.default_rng(0)
    cuhk = tmp_path / "cuhk"
    mask = np.repeat((np.arange(64) < 32)[None, :, None], 48, 0).repeat(3, -1).astype(np.float32)
    for name in ("a", "b", "c", "d", "x", "y"):
        sio.write_image(cuhk / "gt" / f"{name}.png", mask)
    for name in ("a", "b"):
        sio.write_image(cuhk / "image" / f"{name}.png", rng.random((48, 64, 3)))
    (cuhk / "image" / "c.png").symlink_to("nowhere.png")
    os.mkfifo(cuhk / "image" / "d.png")
    (cuhk / "image" / "x.png").symlink_to("y.png")
    (cuhk / "image" / "y.png").symlink_to("x.png")
    rtf = tmp_path / "rtf"  # DMENet's layout, σ ground truth: H91's RTF name is skipped and recorded here too
    (rtf / "gt" / "0").mkdir(parents=True)
    for i in (1, 2):
        sio.write_image(rtf / "image" / "0" / f"img{i}.png", rng.random((48, 64, 3)))
        np.save(rtf / "gt" / "0" / f"gt{i}.npy", np.full((48, 64), 1.0, np.float32))
    (rtf / "image" / "0" / "img3.png").symlink_to("nowhere.png")
    np.save(rtf / "gt" / "0" / "gt3.npy", np.full((48, 64), 1.0, np.float32))
    out = tmp_path / "cmp"
    assert compare.main(["--method", "lbp", "dmenet", "--threads", "1", "--cuhk", str(cuhk), "--rtf", str(rtf),
                         "--out", str(out)]) == 0
    captured = capsys.readouterr()
    loop = "a symbolic link loop (too many levels of symbolic links)"
    names = [cuhk / "image" / f"{n}.png" for n in ("c", "d", "x", "y")]
    assert [ln for ln in captured.err.splitlines() if ln.startswith("skipped ")] == [
        f"skipped {rtf / 'image' / '0' / 'img3.png'}: a symbolic link to nothing",
        f"skipped {names[0]}: a symbolic link to nothing",
        f"skipped {names[1]}: not a regular file (a FIFO, socket or device)",
        f"skipped {names[2]}: {loop}", f"skipped {names[3]}: {loop}"], captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cuhk"]["lbp"]["n"] == metrics["cuhk"]["dmenet"]["n"] == metrics["rtf"]["dmenet"]["n"] == 2
    assert metrics["skipped"] == {"cuhk": [str(p) for p in names], "rtf": [str(rtf / "image" / "0" / "img3.png")]}
    assert captured.out.splitlines()[-1].endswith("; 5 image(s) skipped (unreadable)")
    stack = tmp_path / "stack"
    for k in range(3):
        sio.write_image(stack / f"f{k}.png", rng.random((48, 64, 3)))
    (stack / "f1b.png").symlink_to("nowhere.png")
    for option in ("--stack", "--fusion-real"):
        out = tmp_path / f"cmp{option}"
        assert compare.main(["--method", "lbp", "dmenet", "--threads", "1", option, str(stack), "--out",
                             str(out)]) == 2
        line = one_error_line(capsys)
        assert line == f"error: {option} {stack}: {stack / 'f1b.png'}: a symbolic link to nothing", line
        assert not out.exists()


def _animated_gif(path: Path, rng: np.random.Generator, frames: int = 3) -> str:
    """An animated GIF of ``frames`` 48×64 random frames at ``path``; the FirstFrameWarning text it gives."""
    from PIL import Image

    pictures = [Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)) for _ in range(frames)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(path, save_all=True, append_images=pictures[1:])
    return f"{path}: an animated GIF of {frames} frames: only the first is read"


def test_h94_compare_and_select_warn_once_per_animated_image(val_folder, model_file, tmp_path, recwarn):
    """An animated render or benchmark image warned on every read: ``galetto.select`` three times (its pre-check,
    then each stage), ``galetto.compare`` once per method. Each tool now warns once per file per run: the reads after
    the first pass ``note_frames=False`` (the caller knows it read the file; no state kept in the reader)."""
    from syndof import io as sio
    from syndof.frames import FirstFrameWarning

    rng = np.random.default_rng(3)
    (val_folder / "image" / "r0.png").unlink()
    want = _animated_gif(val_folder / "image" / "r0.gif", rng)
    assert select.main(["--val", str(val_folder), "--model", str(model_file), "--threads", "1", "--stride", "32",
                        "--out", str(tmp_path / "sel")]) == 0
    assert [str(w.message) for w in recwarn if w.category is FirstFrameWarning] == [want]
    recwarn.clear()
    cuhk = tmp_path / "cuhk"
    want = _animated_gif(cuhk / "image" / "a.gif", rng)
    sio.write_image(cuhk / "gt" / "a.png", np.repeat((np.arange(64) < 32)[None, :, None], 48, 0).repeat(3, -1)
                    .astype(np.float32))
    assert compare.main(["--method", "lbp", "zhuo_sim", "--threads", "1", "--cuhk", str(cuhk), "--out",
                         str(tmp_path / "cmp")]) == 0
    assert [str(w.message) for w in recwarn if w.category is FirstFrameWarning] == [want]


def test_h100_compare_apps_refuses_a_render_or_source_name_that_is_no_file_before_any_model(model_file, tmp_path,
                                                                                         capsys):
    """``--apps``' renders are listed by stem: a render name that is a symbolic link to nothing was left out unsaid
    (the renders checked were other ones than the first ``--apps-count``), a source photo in a loop was "no source
    photo src1.* in PHOTOS". Each is refused now naming the file and why, before any model loads, as ``--apps``
    refuses a render it cannot decode; nothing written, nothing on stdout."""
    photos = tmp_path / "photos"
    renders = write_source_renders(tmp_path / "renders", photos, count=3)
    (photos / "src1.png").unlink()
    (photos / "src1.png").symlink_to("src1.png")
    loop = "a symbolic link loop (too many levels of symbolic links)"
    assert run_compare(model_file, tmp_path / "out", "--synthetic", str(renders), "--apps", str(photos)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.splitlines() == [f"error: {photos / 'src1.png'}: {loop}"], captured
    assert not (tmp_path / "out").exists()
    (photos / "src1.png").unlink()
    (photos / "src1.png").symlink_to("src0.png")
    render = renders / "image" / "000002_src2.png"
    render.unlink()
    render.symlink_to("nowhere.png")
    # --limit 1: the --synthetic renders leave it out (review R2 refuses it there too), the --apps ones do not
    assert run_compare(model_file, tmp_path / "out", "--synthetic", str(renders), "--limit", "1", "--apps",
                       str(photos), "--apps-count", "3") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.splitlines() == [f"error: {render}: a symbolic link to nothing"]
    assert not (tmp_path / "out").exists()


def test_r1_a_mistyped_stack_is_named_once_with_what_a_stack_is(tmp_path, capsys, monkeypatch):
    """Review R1 (6 Dec 2026): once ``focal_stack.stack_files`` named a missing stack itself, ``--stack`` /
    ``--fusion-real`` with a mistyped folder said "error: --stack X: X: no such folder or file", the path twice and
    without what a stack is; exit 2 before any model, as before."""
    monkeypatch.setattr(compare, "build", lambda *a, **k: pytest.fail("a model was loaded before the stacks"))
    missing = tmp_path / "stakc"
    for option in ("--stack", "--fusion-real"):
        assert compare.main(["--method", "lbp", "--threads", "1", option, str(missing), "--out",
                             str(tmp_path / "cmp")]) == 2
        assert one_error_line(capsys) == (f"error: {option} {missing}: no such folder or file (a stack is a folder of "
                                          "frames or a quoted glob pattern of them)")
    assert not (tmp_path / "cmp").exists()


def test_r2_compare_synthetic_refuses_a_render_name_that_is_no_file_before_any_scoring(tmp_path, capsys,
                                                                                        monkeypatch):
    """Review R2 (6 Dec 2026): ``--synthetic``'s renders are listed by stem, which keeps a render name where no file
    can be read (H95): the input check passed it and the run stopped on it in the scoring, after the model had
    loaded and the other renders were scored (before H95 it was left out unsaid: 3 of 4 renders scored, exit 0).
    It is refused with the other input checks now, naming the render, as ``--apps`` refuses it."""
    renders = write_source_renders(tmp_path / "renders", tmp_path / "photos", count=3)
    render = renders / "image" / "000001_src1.png"
    render.unlink()
    render.symlink_to("nowhere.png")
    monkeypatch.setattr(compare, "synthetic_scores", lambda *a, **k: pytest.fail("scored before the check"))
    assert compare.main(["--method", "zhuo_sim", "--threads", "1", "--synthetic", str(renders), "--out",
                         str(tmp_path / "cmp")]) == 2
    assert one_error_line(capsys) == f"error: {render}: a symbolic link to nothing"
    assert not (tmp_path / "cmp").exists()


# ------------------------------------------------------------------------------------ ninth review (§28)
def test_c6_a_classifier_with_nan_weights_is_refused_not_read_as_sharp_everywhere(val_folder, model_file, tmp_path,
                                                                                  capsys):
    """A diverged classifier (NaN weights) scored SYNDOF label MAE 0.1429 in galetto.compare, better than the
    working model's 0.8571, exit 0: torch's argmax of NaN probabilities is class 0, σ 0 px everywhere
    (reliability.md §28, C6). Now every σ map refuses non-finite class probabilities."""
    import torch

    from dmenet.galetto.train import load_classifier, save_classifier

    net = load_classifier(model_file)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    save_classifier(tmp_path / "nan", net)
    out = tmp_path / "cmp"
    assert run_compare(tmp_path / "nan.safetensors", out, "--synthetic", str(val_folder)) == 2
    assert "class probabilities are not finite" in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("extra, named", [((), "no check asked for"),
                                          (("--stack",), "no check asked for"),
                                          (("--synthetic", "VAL", "--method", "galetto:stride=32",
                                            "galetto:stride=32"), "--method: galetto:stride=32 given twice")])
def test_c7_compare_refuses_a_run_that_checks_nothing_or_names_a_method_twice(val_folder, model_file, tmp_path,
                                                                             capsys, extra, named):
    """galetto.compare with no check (or ``--stack`` with no stack) wrote an empty metrics.json and summary.md,
    exit 0; a method named twice was scored and reported once, unsaid (evaluate and focal_stack refuse it)
    (reliability.md §28, C7). Now exit 2 before any model loads, nothing written."""
    out = tmp_path / "cmp"
    argv = ["--model", str(model_file), "--threads", "1", "--out", str(out),
            *(str(val_folder) if x == "VAL" else x for x in extra)]
    if "--method" not in extra:
        argv = ["--method", "galetto:stride=32", *argv]
    assert compare.main(argv) == 2
    assert named in one_error_line(capsys)
    assert not out.exists()
