"""dmenet.eval.focal_stack and dmenet.eval.paired never mislabel or mix results: duplicate stack names, an existing
--out or one inside a stack folder, evaluations of different benchmarks, duplicate stems and non-finite values are
refused (exit 2, one line, files untouched); a focal-stack report is written all or nothing and lists the stacks it
skipped; paired checks every input before printing anything."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hostile_helpers import unwritable_folder
from test_focal_stack import K, _stack

from dmenet.eval import focal_stack as fs
from dmenet.eval import paired
from syndof import io


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error(capsys, fn, argv) -> str:
    assert fn(argv) == 2
    captured = capsys.readouterr()
    err = [ln for ln in captured.err.splitlines() if ln.startswith("error:") or "Traceback" in ln]
    assert len(err) == 1 and "Traceback" not in err[0], captured.err
    return err[0]


@pytest.fixture
def stacks(tmp_path) -> Path:
    frames, _ = _stack(48, 64)
    for k, frame in enumerate(frames):
        io.write_image(tmp_path / "fs" / "s1" / f"f{k}.png", frame)
        io.write_image(tmp_path / "fs2" / "s1" / f"f{k}.png", frame)
        io.write_image(tmp_path / "fs" / "s2" / f"f{k}.png", frame)
    io.write_image(tmp_path / "fs" / "one" / "a.png", frames[0])
    io.write_image(tmp_path / "fs" / "mixed" / "a.png", frames[0])
    io.write_image(tmp_path / "fs" / "mixed" / "b.png", frames[1][:30])
    return tmp_path


def _run(*argv) -> list[str]:
    return [*argv, "--method", "lbp", "--max-side", "64"]


# ------------------------------------------------------------------------------------------------ focal_stack
def test_two_stacks_with_one_name_are_refused(stacks, capsys):
    out = stacks / "out"
    err = _error(capsys, fs.main, _run("--stack", str(stacks / "fs" / "s1"), str(stacks / "fs2" / "s1"),
                                       "--out", str(out)))
    assert "'s1'" in err and str(stacks / "fs" / "s1") in err and str(stacks / "fs2" / "s1") in err
    assert not out.exists()


def test_existing_out_is_refused_and_left_as_it_was(stacks, capsys):
    out = stacks / "out"
    out.mkdir()
    (out / "old_panel.png").write_bytes(b"old panel")
    (out / "metrics.json").write_text('{"old": true}')
    before = _snapshot(out)
    err = _error(capsys, fs.main, _run("--stack", str(stacks / "fs" / "s1"), "--out", str(out)))
    assert f"--out {out}" in err and "not empty" in err
    assert _snapshot(out) == before


@pytest.mark.parametrize("where", ["s1", "s1/report", "s1/a/b"])
def test_out_inside_a_stack_folder_is_refused(stacks, capsys, where):
    stack = stacks / "fs" / "s1"
    before = _snapshot(stack)
    err = _error(capsys, fs.main, _run("--stack", str(stack), "--out", str(stacks / "fs" / where)))
    assert "--out" in err and "stack folder" in err
    assert _snapshot(stack) == before
    # a glob pattern's folder counts too
    err = _error(capsys, fs.main, _run("--stack", str(stack / "f*.png"), "--out", str(stacks / "fs" / where)))
    assert "stack folder" in err
    assert _snapshot(stack) == before


def test_skipped_stacks_are_listed_with_their_reason(stacks, caplog):
    """Each skipped stack is one line naming it (or its frame) once, in the order of the stacks (it said
    ``skipping X: X: …``), and listed in metrics.json and summary.md."""
    caplog.set_level(logging.INFO)
    out = stacks / "out"
    one, mixed = stacks / "fs" / "one", stacks / "fs" / "mixed"
    assert fs.main(_run("--stack", str(one), str(stacks / "fs" / "s1"), str(mixed), "--out", str(out))) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "dmenet.eval.focal_stack"]
    assert lines[0] == f"skipping {one}: a focal stack needs at least 2 frames, found 1"
    assert lines[1].startswith("s1 lbp: agreement")
    assert lines[-1] == f"skipping {mixed / 'b.png'}: frame size 64×30 differs from the stack's 64×48"
    meta = json.loads((out / "metrics.json").read_text())
    assert set(meta["stacks"]) == {"s1"} and meta["stacks"]["s1"]["methods"]["lbp"]["frames"] == K
    skipped = meta["skipped"]
    assert set(skipped) == {"one", "mixed"}
    assert "at least 2 frames" in skipped["one"]["reason"] and skipped["one"]["folder"] == str(stacks / "fs" / "one")
    assert "b.png" in skipped["mixed"]["reason"] and "differs from the stack" in skipped["mixed"]["reason"]
    summary = (out / "summary.md").read_text()
    assert "| s1 | lbp |" in summary and "Skipped" in summary
    assert "| one |" in summary and "| mixed |" in summary and "at least 2 frames" in summary
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "s1_panel.png", "summary.md"]
    assert not list(stacks.glob(".out.part-*"))


def test_report_is_all_or_nothing(stacks, monkeypatch):
    """A failure at the second stack leaves no --out (not the first stack's panel) and no staging folder."""
    calls = []
    real = fs.score_stack

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("method crashed")
        return real(*args, **kwargs)

    monkeypatch.setattr(fs, "score_stack", failing)
    out = stacks / "out"
    with pytest.raises(RuntimeError, match="method crashed"):
        fs.main(_run("--stack", str(stacks / "fs" / "s1"), str(stacks / "fs" / "s2"), "--out", str(out)))
    assert not out.exists() and not list(stacks.glob(".out.part-*"))


def test_no_readable_stack_writes_nothing(stacks, capsys, caplog):
    """One line, naming the stack once: not a ``skipping`` line too, nor the name twice (``X: X: …``)."""
    out = stacks / "out"
    one = stacks / "fs" / "one"
    err = _error(capsys, fs.main, _run("--stack", str(one), "--out", str(out)))
    assert err == f"error: no readable focal stack: {one}: a focal stack needs at least 2 frames, found 1"
    assert not [r for r in caplog.records if "skipping" in r.getMessage()]
    assert not out.exists() and not list(stacks.glob(".out.part-*"))


# ------------------------------------------------------------------------------------------------ paired
def _evaluation(folder: Path, values, stems=None, benchmark: str | None = None, header: str = "stem,mae") -> Path:
    folder.mkdir(parents=True)
    stems = stems or [f"im{i}" for i in range(len(values))]
    (folder / "per_image.csv").write_text(header + "\n" + "".join(f"{s},{v}\n" for s, v in zip(stems, values)))
    if benchmark is not None:
        (folder / "metrics.json").write_text(json.dumps({"benchmark": benchmark, "method": folder.name}))
    return folder


def _paired_error(capsys, argv) -> str:
    assert paired.main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), captured.err
    assert captured.out == ""  # nothing printed before the refusal
    return err[0]


def test_paired_refuses_different_benchmarks(tmp_path, capsys):
    a = _evaluation(tmp_path / "a", [0.1, 0.2, 0.3], benchmark="cuhk_train")
    b = _evaluation(tmp_path / "b", [0.2, 0.2, 0.3], benchmark="dut")
    err = _paired_error(capsys, [str(a), str(b), "--metric", "mae"])
    assert str(a) in err and str(b) in err and "cuhk_train" in err and "dut" in err
    c = _evaluation(tmp_path / "c", [0.2, 0.1, 0.3], benchmark="cuhk_train")
    assert paired.main([str(a), str(c), "--metric", "mae"]) == 0  # the same benchmark is compared
    assert "better on 1 of 3" in capsys.readouterr().out
    # the CSV itself names its folder's metrics.json too
    assert "dut" in _paired_error(capsys, [str(a / "per_image.csv"), str(b / "per_image.csv"), "--metric", "mae"])


def test_paired_refuses_duplicate_stems(tmp_path, capsys):
    a = _evaluation(tmp_path / "a", [0.1, 0.2, 0.3])
    b = _evaluation(tmp_path / "b", [0.1, 0.2, 0.3, 0.9], stems=["im0", "im1", "im2", "im1"])
    err = _paired_error(capsys, [str(a), str(b), "--metric", "mae"])
    assert str(b / "per_image.csv") in err and "'im1'" in err and "twice" in err


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_paired_refuses_non_finite_values(tmp_path, capsys, bad):
    a = _evaluation(tmp_path / "a", [0.1, 0.2, 0.3])
    b = _evaluation(tmp_path / "b", [0.1, bad, 0.3])
    err = _paired_error(capsys, [str(a), str(b), "--metric", "mae"])
    assert str(b / "per_image.csv") in err and "'im1'" in err and "finite" in err
    err = _paired_error(capsys, [str(b), str(a), "--metric", "mae"])  # in the base as well
    assert str(b / "per_image.csv") in err and "'im1'" in err


def test_paired_refuses_values_whose_sums_overflow_and_keeps_large_finite_ones(tmp_path, capsys):
    """Values near 1e308 printed ``inf`` / ``nan`` means, Δ and interval after NumPy overflow warnings, exit 0: a
    value beyond ±1e300 (:data:`~dmenet.eval.paired.MAX_MAGNITUDE`) is one line naming its file and stem, in the base
    or a candidate; at the bound every number printed is finite and hand-checkable."""
    a = _evaluation(tmp_path / "a", [0.1, 0.2, 0.3])
    huge = _evaluation(tmp_path / "huge", [1e308, 1.5e308, -1e308])
    for argv in ([str(a), str(huge)], [str(huge), str(a)]):
        err = _paired_error(capsys, [*argv, "--metric", "mae"])
        assert str(huge / "per_image.csv") in err and "'im0'" in err and "1e+300" in err and "inf" not in err
    with pytest.raises(ValueError, match="at most 1e\\+300 in magnitude"):  # the function, too
        paired.paired_bootstrap(np.array([1e308, -1e308]), np.array([-1e308, 1e308]), paired.bootstrap_indices(2, 10))
    edge = _evaluation(tmp_path / "edge", [1e300, 1e300, 1e300])
    neg = _evaluation(tmp_path / "neg", [-1e300, -1e300, -1e300])
    with np.errstate(all="raise"):  # no overflow anywhere on the way
        assert paired.main([str(neg), str(edge), "--metric", "mae", "--resamples", "100"]) == 0
        r = paired.paired_bootstrap(np.full(3, -1e300), np.full(3, 1e300), paired.bootstrap_indices(3, 100))
    out = capsys.readouterr().out
    assert "inf" not in out and "nan" not in out and "better on 0 of 3" in out
    assert (r.delta, r.low, r.high, r.better) == (2e300, 2e300, 2e300, 0)


def test_paired_says_when_a_csv_has_no_rows(tmp_path, capsys):
    a = _evaluation(tmp_path / "a", [0.1, 0.2, 0.3])
    b = _evaluation(tmp_path / "b", [])
    err = _paired_error(capsys, [str(a), str(b), "--metric", "mae"])
    assert str(b / "per_image.csv") in err and "no rows" in err and "no column" not in err
    (b / "per_image.csv").write_text("")
    assert "empty" in _paired_error(capsys, [str(a), str(b), "--metric", "mae"])
    assert "no column 'fmax' (has: mae)" in _paired_error(capsys, [str(a), str(a), "--metric", "fmax"])


def test_paired_checks_every_candidate_before_printing(tmp_path, capsys):
    a = _evaluation(tmp_path / "a", [0.1, 0.2, 0.3])
    good = _evaluation(tmp_path / "good", [0.2, 0.2, 0.3])
    bad = _evaluation(tmp_path / "bad", [0.2, 0.2], stems=["im0", "x"])
    err = _paired_error(capsys, [str(a), str(good), str(bad), "--metric", "mae"])
    assert str(bad) in err and "not in both" in err
    err = _paired_error(capsys, [str(a), str(good), str(tmp_path / "none"), "--metric", "mae"])
    assert "no per_image.csv" in err


def test_report_names_what_ran_and_refuses_duplicate_methods_and_an_unused_model(stacks, capsys):
    """metrics.json named methods only ("dmenet" whatever --model / --flips ran), `--method lbp lbp` was silently
    merged into one row, and --model with classical peers only was ignored (review A12, 6 Dec 2026)."""
    out = stacks / "out"
    assert fs.main(["--stack", str(stacks / "fs" / "s1"), "--method", "lbp", "zhuo_sim:max_blur=2",
                    "--max-side", "64", "--out", str(out)]) == 0
    described = json.loads((out / "metrics.json").read_text())["methods"]
    assert set(described) == {"lbp", "zhuo_sim:max_blur=2"}
    assert "max_blur 2" in described["zhuo_sim:max_blur=2"] and "sigma px" in described["zhuo_sim:max_blur=2"]
    assert "blur map" in described["lbp"]
    err = _error(capsys, fs.main, ["--stack", str(stacks / "fs" / "s1"), "--method", "lbp", "lbp",
                                   "--out", str(stacks / "o2")])
    assert "given twice" in err and not (stacks / "o2").exists()
    err = _error(capsys, fs.main, ["--stack", str(stacks / "fs" / "s1"), "--method", "lbp", "--model",
                                   str(stacks / "no_model.safetensors"), "--out", str(stacks / "o3")])
    assert "--model" in err and not (stacks / "o3").exists()


def test_paired_refuses_huge_resamples_and_negative_seeds_in_one_line(tmp_path, capsys):
    """--resamples 10^10 allocated the index array and died with a MemoryError traceback; --seed -1 printed
    "error: expected non-negative integer", naming no option (review A14, 6 Dec 2026)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "per_image.csv").write_text("stem,mae\nx,0.1\ny,0.2\nz,0.3\n")
    common = [str(tmp_path / "a"), str(tmp_path / "b"), "--metric", "mae"]
    assert "--resamples" in _error(capsys, paired.main, common + ["--resamples", "10000000000"])
    with pytest.raises(SystemExit) as stop:  # argparse's refusal
        paired.main(common + ["--seed", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "--seed" in err[0], err


def test_paired_leaves_out_images_undefined_in_every_evaluation(tmp_path, capsys):
    """evaluate writes NaN F-measures for an all-sharp GT (left out of its means); paired refused the whole
    comparison on them, so a set with an all-clear image could never be compared on Fmax (review A6, 6 Dec 2026).
    NaN in every evaluation: left out and said; NaN in only one: still refused."""
    a = _evaluation(tmp_path / "a", [0.9, "nan", 0.8, 0.7])
    b = _evaluation(tmp_path / "b", [0.95, "nan", 0.85, 0.6])
    assert paired.main([str(a), str(b), "--metric", "mae"]) == 0
    out = capsys.readouterr().out
    assert "left out: im1" in out and "over 3 images" in out and "better on 1 of 3" in out
    c = _evaluation(tmp_path / "c", [0.95, 0.5, 0.85, 0.6])
    err = _paired_error(capsys, [str(a), str(c), "--metric", "mae"])
    assert str(a / "per_image.csv") in err and "'im1'" in err and "finite" in err


def test_h50_paired_names_a_binary_csv_and_reads_a_spreadsheets_byte_order_mark(tmp_path, capsys):
    """A binary per_image.csv gave "'utf-8' codec can't decode …" naming no file; a CSV saved with a byte-order
    mark (a spreadsheet's UTF-8) was refused: "no column 'stem' (has: \\ufeffstem, mae)"."""
    for name, text in (("a", "stem,mae\nx,0.1\ny,0.2\nz,0.3\n"), ("bom", "\ufeffstem,mae\nx,0.2\ny,0.1\nz,0.3\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "per_image.csv").write_text(text, encoding="utf-8")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "per_image.csv").write_bytes(b"\x93\xf7\x00\x01binary")
    err = _error(capsys, paired.main, [str(tmp_path / "a"), str(tmp_path / "bin"), "--metric", "mae"])
    assert str(tmp_path / "bin" / "per_image.csv") in err
    assert paired.main([str(tmp_path / "a"), str(tmp_path / "bom"), "--metric", "mae"]) == 0
    assert "better on 1 of 3" in capsys.readouterr().out


def test_e7_a_missing_stack_is_named_as_missing_and_skipped(stacks, caplog):
    """A mistyped stack folder was "needs at least 2 frames, found 0" and, with ``--out`` beside it, refused the
    whole run as an ``--out`` "inside the stack folder" (its parent); now it is skipped as missing."""
    caplog.set_level(logging.INFO)
    out, missing = stacks / "fs" / "out", stacks / "fs" / "s3"
    assert fs.main(_run("--stack", str(stacks / "fs" / "s1"), str(missing), "--out", str(out))) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "dmenet.eval.focal_stack"]
    assert lines[-1] == f"skipping {missing}: no such folder or file"
    meta = json.loads((out / "metrics.json").read_text())
    assert set(meta["stacks"]) == {"s1"}
    assert meta["skipped"][fs.stack_name(missing)]["reason"] == f"{missing}: no such folder or file"
    with pytest.raises(io.InputError, match="no such folder or file"):
        fs.load_stack(missing)
    with pytest.raises(io.InputError, match="at least 2 frames, found 0"):  # a pattern matching nothing says so
        fs.load_stack(stacks / "fs" / "s1" / "z*.png")


def test_e8_an_unwritable_out_folder_is_refused_before_any_work_naming_out(stacks, monkeypatch, capsys):
    """The report is staged beside ``--out``: an unwritable folder was found only then, the line naming the staged
    ``.OUT.part-…`` folder and not ``--out``."""
    (stacks / "ro").mkdir()
    monkeypatch.setattr(fs, "load_stack", lambda *a, **k: pytest.fail("no stack is read before --out is checked"))
    out = stacks / "ro" / "rep"
    with unwritable_folder(stacks / "ro", monkeypatch):
        err = _error(capsys, fs.main, _run("--stack", str(stacks / "fs" / "s1"), "--out", str(out)))
    assert err.startswith(f"error: --out {out}: ") and "Permission denied" in err and ".part" not in err
    assert not out.exists()
