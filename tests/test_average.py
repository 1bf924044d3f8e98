"""Weight averaging of checkpoints (dmenet.training.average, run as dmenet.calibrate average)."""

from __future__ import annotations

import pytest
import torch

from dmenet.models.model_io import load_model_file, save_model
from dmenet import calibrate
from dmenet.training import average
from model_helpers import tiny_dmenet as _tiny


def test_average_is_the_mean_of_float_tensors_and_keeps_counters():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(7)}
    out = average.average_state_dicts([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and int(out["n"]) == 7
    with pytest.raises(ValueError, match="other keys"):
        average.average_state_dicts([{"x": torch.zeros(1)}, b])
    with pytest.raises(ValueError, match="shape mismatch"):
        average.average_state_dicts([{"w": torch.zeros(3), "n": torch.tensor(0)}, b])
    with pytest.raises(ValueError, match="nothing"):
        average.average_state_dicts([])


def test_cli_round_trip_and_architecture_check(tmp_path, capsys):
    models = [_tiny(s) for s in (0, 1, 2)]
    paths = []
    for i, m in enumerate(models):
        paths.append(str(save_model(tmp_path / f"m{i}.safetensors", m, {"step": 100 * (i + 1)})))
    out = tmp_path / "avg.safetensors"
    assert calibrate.main(["average", "--model", *paths, "--out", str(out)]) == 0
    avg, meta = load_model_file(out)
    entry = meta["history"][-1]
    assert entry["tool"] == "dmenet.calibrate average" and entry["data"] == paths
    assert entry["result"]["steps"] == [100, 200, 300]
    key = "blur.encoder.features.0.0.weight"
    states = [m.state_dict() for m in models]
    expected = (states[0][key] + states[1][key] + states[2][key]) / 3
    assert torch.allclose(avg.state_dict()[key], expected, atol=1e-6)
    other = save_model(tmp_path / "wide.safetensors", _tiny(0, refine_blocks=2), {})
    capsys.readouterr()
    assert calibrate.main(["average", "--model", paths[0], str(other), "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert f"{paths[0]}: architecture" in err and f"differs from {other}" in err and "'refine_blocks': 2" in err
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(SystemExit) as exc:  # --last belongs to --run; with --models it would be ignored
        calibrate.main(["average", "--model", *paths, "--last", "2", "--out", str(tmp_path / "y.safetensors")])
    assert exc.value.code == 2 and not (tmp_path / "y.safetensors").exists()
    assert "--last selects checkpoints of --run" in capsys.readouterr().err


def _fake_run(root, steps, metrics, keep_last):
    """A run folder whose checkpoints hold tiny models (what dmenet.train writes, minus the optimiser files)."""
    from dmenet.config import dump_config, load_config
    from dmenet.training import checkpoint

    (root / "checkpoints").mkdir(parents=True)
    (root / "config.yaml").write_text(dump_config(load_config(None, [f"train.keep_last={keep_last}"])))
    for step, metric in zip(steps, metrics):
        folder = root / "checkpoints" / f"step_{step:08d}"
        folder.mkdir(parents=True)
        save_model(folder / "model", _tiny(step), {"step": step})
        checkpoint.update_pointers(root, folder, step, metric, keep_last)
    return sorted(p.name for p in (root / "checkpoints").glob("step_*"))


def test_retention_keeps_the_last_n_and_the_best(tmp_path):
    # best is step 200 (metric 0.1); keep_last 3 keeps 400, 500, 600 besides it
    kept = _fake_run(tmp_path / "a", [100, 200, 300, 400, 500, 600], [0.5, 0.1, 0.4, 0.3, 0.3, 0.2], keep_last=3)
    assert kept == ["step_00000200", "step_00000400", "step_00000500", "step_00000600"]
    kept = _fake_run(tmp_path / "b", [100, 200, 300], [0.5, 0.6, 0.7], keep_last=1)  # the default: last + best
    assert kept == ["step_00000100", "step_00000300"]
    from dmenet.training import checkpoint

    with pytest.raises(ValueError, match="keep_last"):
        checkpoint.update_pointers(tmp_path / "b", tmp_path / "b" / "checkpoints" / "step_00000300", 300, 0.1, 0)


def test_a_diverged_best_metric_is_replaced_by_the_next_number(tmp_path):
    """A first validation of NaN (a diverged or all-skipped window, which ``best.json`` records as JSON's NaN) was
    the best for good: ``metric <= NaN`` is never true, so no later checkpoint became the best and the NaN one was kept
    beside the last ones to the end of the run. A number replaces a NaN best; NaN never replaces a number."""
    import json

    kept = _fake_run(tmp_path / "a", [100, 200, 300], [float("nan"), 0.5, 0.4], keep_last=1)
    assert kept == ["step_00000300"]
    assert json.loads((tmp_path / "a" / "checkpoints" / "best.json").read_text())["dir"] == "step_00000300"
    kept = _fake_run(tmp_path / "b", [100, 200, 300], [0.5, float("nan"), 0.6], keep_last=1)
    assert kept == ["step_00000100", "step_00000300"]


def test_cli_averages_the_last_n_checkpoints_of_a_run(tmp_path):
    run = tmp_path / "run"
    _fake_run(run, [100, 200, 300, 400], [0.4, 0.3, 0.2, 0.1], keep_last=3)
    out = tmp_path / "avg.safetensors"
    assert calibrate.main(["average", "--run", str(run), "--last", "2", "--out", str(out)]) == 0
    avg, meta = load_model_file(out)
    assert meta["history"][-1]["result"]["steps"] == [300, 400]
    key = "blur.encoder.features.0.0.weight"
    expected = (_tiny(300).state_dict()[key] + _tiny(400).state_dict()[key]) / 2
    assert torch.allclose(avg.state_dict()[key], expected, atol=1e-6)
    # more than the run kept: a clear error, nothing written
    assert calibrate.main(["average", "--run", str(run), "--last", "4", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()
    # a keep_last 1 run holds last + an older best: they are not "the last 2", so refused
    old = tmp_path / "old"
    assert len(_fake_run(old, [100, 200, 300], [0.1, 0.2, 0.3], keep_last=1)) == 2
    assert calibrate.main(["average", "--run", str(old), "--last", "2", "--out", str(tmp_path / "y.safetensors")]) == 2
    assert calibrate.main(["average", "--run", str(tmp_path / "nothing"), "--out",
                           str(tmp_path / "y.safetensors")]) == 2
    assert not (tmp_path / "y.safetensors").exists()
    # one model is no average: refused before any file is read (it wrote a copy labelled "averaged 1 models")
    for one in (["--model", paths[0]] if (paths := [str(p) for p in sorted(run.rglob("*.safetensors"))]) else [],
                ["--run", str(run), "--last", "1"]):
        with pytest.raises(SystemExit) as exc:
            calibrate.main(["average", *one, "--out", str(tmp_path / "z.safetensors")])
        assert exc.value.code == 2
    assert not (tmp_path / "z.safetensors").exists()


def test_averaged_moving_statistics_are_not_labelled_as_the_last_files(tmp_path):
    """The moving BatchNorm statistics are averaged too: the recipe then says so instead of keeping the last file's
    provenance (which described neither input); equal statistics keep it."""
    a, b = _tiny(0), _tiny(0)
    bn = next(m for m in b.blur.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean += 1.0
    for m in (a, b):
        m.recipe = m.recipe.with_bn(moving_stats="re-estimated on X (8 crops)")
    pa, pb = save_model(tmp_path / "a.safetensors", a, {}), save_model(tmp_path / "b.safetensors", b, {})
    assert calibrate.main(["average", "--model", str(pa), str(pb), "--out", str(tmp_path / "ab.safetensors")]) == 0
    assert load_model_file(tmp_path / "ab.safetensors")[0].recipe.moving_stats.startswith("weight average of 2")
    pc = save_model(tmp_path / "c.safetensors", a, {})  # another file of equal statistics (A A is refused: H63)
    assert calibrate.main(["average", "--model", str(pa), str(pc), "--out", str(tmp_path / "aa.safetensors")]) == 0
    assert load_model_file(tmp_path / "aa.safetensors")[0].recipe.moving_stats == "re-estimated on X (8 crops)"



def test_average_run_defaults_to_the_8_most_recent_checkpoints(tmp_path):
    """``average --run RUN`` without --last: the run's 8 newest checkpoints, oldest first (10 kept here)."""
    import argparse
    from pathlib import Path

    from dmenet.calibrate import Step, _inputs

    (tmp_path / "config.yaml").write_text("train:\n  keep_last: 10\n")
    for step in range(100, 1100, 100):
        d = tmp_path / "checkpoints" / f"step_{step:08d}"
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"")
    args = argparse.Namespace(models=None, run=str(tmp_path), last=None)
    got = [Path(p).parent.name for p in _inputs(args, Step.AVERAGE)]
    assert got == [f"step_{s:08d}" for s in range(300, 1100, 100)]


# ------------------------------------------------------------------------------------------------ run identity
def _run_files(tmp_path, name, run, steps, **extra):
    """Model files of ``steps`` whose sidecars record ``run`` as their run_id (what dmenet.train writes)."""
    meta = {} if run is None else {"run_id": run, "parent_run_id": None, "parent_sha256": None, **extra}
    return [str(save_model(tmp_path / name / f"step_{s}.safetensors", _tiny(s), {"step": s, **meta})) for s in steps]


def _snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_average_refuses_files_of_different_training_runs(tmp_path, capsys):
    """Weight averaging is for checkpoints of one trajectory: two runs' files (e.g. two models of one architecture)
    are refused, one line naming both files, nothing written."""
    a = _run_files(tmp_path, "a", "0123456789abcdef", [100, 200])
    b = _run_files(tmp_path, "b", "fedcba9876543210", [100])
    before = _snapshot(tmp_path)
    out = tmp_path / "avg.safetensors"
    capsys.readouterr()
    assert calibrate.main(["average", "--model", *a, *b, "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert a[0] in err[0] and b[0] in err[0] and "different training runs" in err[0], err
    assert _snapshot(tmp_path) == before and not out.exists()
    # --across-runs does not make unrelated runs one: neither started from a model file
    assert calibrate.main(["average", "--model", *a, *b, "--across-runs", "--out", str(out)]) == 2
    assert "did not start from one model file" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_average_within_one_run_keeps_its_run_id_and_names_the_steps(tmp_path, caplog):
    run = "0123456789abcdef"
    paths = _run_files(tmp_path, "r", run, [100, 200, 300])
    out = tmp_path / "avg.safetensors"
    caplog.set_level("INFO", logger="dmenet.calibrate")
    assert calibrate.main(["average", "--model", *paths, "--out", str(out)]) == 0
    _, sidecar = load_model_file(out)
    assert sidecar["run_id"] == run and sidecar["step"] == 300
    result = sidecar["history"][-1]["result"]
    assert result["run_id"] == run and result["steps"] == [100, 200, 300] and result["runs"] == [run] * 3
    assert not any("cannot tell" in r.message for r in caplog.records)
    assert any(f"steps 100, 200, 300 of run {run}" in r.message for r in caplog.records)
    # the output is a file of that run: it averages with the run's checkpoints without a warning
    assert calibrate.main(["average", "--model", str(out), paths[-1], "--out", str(tmp_path / "again")]) == 0
    assert load_model_file(tmp_path / "again")[1]["run_id"] == run
    # the later steps modify the same model: its run identity stays in the sidecar
    assert calibrate.main(["bn", "--model", str(out), "--mode", "image", "--out", str(tmp_path / "bn")]) == 0
    assert load_model_file(tmp_path / "bn")[1]["run_id"] == run


def test_average_of_files_without_run_id_warns_and_claims_no_run(tmp_path, caplog):
    """Files written before run ids (the shipped checkpoints): still averaged, with one warning line saying the runs
    cannot be compared; the output records no run_id (not the last file's)."""
    old = _run_files(tmp_path, "old", None, [100])
    new = _run_files(tmp_path, "new", "0123456789abcdef", [200])
    out = tmp_path / "avg.safetensors"
    caplog.set_level("INFO", logger="dmenet.calibrate")
    assert calibrate.main(["average", "--model", *old, *new, "--out", str(out)]) == 0
    warned = [r.message for r in caplog.records if "cannot tell" in r.message]
    assert len(warned) == 1 and "\n" not in warned[0], warned
    assert f"cannot tell whether {old[0]} and {new[0]} come from one run (no run_id: written before" in warned[0]
    _, sidecar = load_model_file(out)
    assert "run_id" not in sidecar and sidecar["history"][-1]["result"]["run_id"] is None
    # one file named twice is one model, no average: refused before any warning (H63)
    caplog.clear()
    with pytest.raises(SystemExit):
        calibrate.main(["average", "--model", old[0], old[0], "--out", str(tmp_path / "twice")])
    assert not any("cannot tell" in r.message for r in caplog.records)


def test_average_across_runs_started_from_one_model_file(tmp_path, capsys):
    """``--across-runs``: fine-tunes of one starting file (one parent_sha256) average into a model soup with a run id
    of its own; a run started elsewhere is still refused."""
    parent = {"parent_run_id": "1111111111111111", "parent_sha256": "ab" * 32}
    a = _run_files(tmp_path, "a", "0123456789abcdef", [100], **parent)
    b = _run_files(tmp_path, "b", "fedcba9876543210", [100], **parent)
    c = _run_files(tmp_path, "c", "0000000000000000", [100], parent_sha256="cd" * 32)
    out = tmp_path / "soup.safetensors"
    assert calibrate.main(["average", "--model", *a, *b, "--out", str(out)]) == 2  # not without the flag
    assert calibrate.main(["average", "--model", *a, *b, "--across-runs", "--out", str(out)]) == 0
    _, sidecar = load_model_file(out)
    assert sidecar["run_id"] not in ("0123456789abcdef", "fedcba9876543210") and len(sidecar["run_id"]) == 16
    assert sidecar["parent_sha256"] == "ab" * 32 and sidecar["parent_run_id"] == "1111111111111111"
    capsys.readouterr()
    assert calibrate.main(["average", "--model", *a, *c, "--across-runs", "--out", str(tmp_path / "x")]) == 2
    assert f"{a[0]} and {c[0]} did not start from one model file" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()



def test_a_file_without_run_id_does_not_let_two_recorded_runs_through(tmp_path, capsys):
    """A file with no run_id among files of two recorded runs (``--run DIR --last K`` over a resumed pre-run-id run
    plus another run's file, or three --model files) only warned: the two runs that do record theirs were averaged.
    They are refused as without that file; with ``--across-runs`` their parents are checked."""
    old = _run_files(tmp_path, "old", None, [100])
    a = _run_files(tmp_path, "a", "0123456789abcdef", [200])
    b = _run_files(tmp_path, "b", "fedcba9876543210", [300])
    out = tmp_path / "avg.safetensors"
    capsys.readouterr()
    assert calibrate.main(["average", "--model", *old, *a, *b, "--out", str(out)]) == 2
    assert f"{a[0]} (run 0123456789abcdef) and {b[0]} (run fedcba9876543210)" in capsys.readouterr().err
    assert calibrate.main(["average", "--model", *old, *a, *b, "--across-runs", "--out", str(out)]) == 2
    assert "did not start from one model file" in capsys.readouterr().err
    assert not out.exists()


def test_h63_one_file_named_twice_is_no_average(tmp_path, capsys):
    """``--model A A`` (or ``A ./A.safetensors``, or A and a link to it) wrote a copy of A labelled an average of two
    models ("averaged 2 models: steps 6, 6"; the --help example did just that): refused before any file is read, as one
    file named once is. A file named twice beside another is the documented weighted average (⅔ A + ⅓ B)."""
    a, b = _run_files(tmp_path, "run", "0123456789abcdef", [100, 200])
    (tmp_path / "link.safetensors").symlink_to(a)
    (tmp_path / "link.json").symlink_to(a.replace(".safetensors", ".json"))
    spellings = ([a, a], [a, a.removesuffix(".safetensors")], [a, str(tmp_path / "link.safetensors"), a])
    for models in spellings:
        with pytest.raises(SystemExit) as exc:
            calibrate.main(["average", "--model", *models, "--out", str(tmp_path / "z.safetensors")])
        assert exc.value.code == 2 and "one file averaged is itself" in capsys.readouterr().err
    assert not (tmp_path / "z.safetensors").exists()
    assert calibrate.main(["average", "--model", a, a, b, "--out", str(tmp_path / "w.safetensors")]) == 0
    avg, _ = load_model_file(tmp_path / "w.safetensors")
    key = "blur.encoder.features.0.0.weight"
    want = (2 * load_model_file(a)[0].state_dict()[key] + load_model_file(b)[0].state_dict()[key]) / 3
    assert torch.allclose(avg.state_dict()[key], want, atol=1e-6)


def test_a_model_named_through_a_link_loop_is_one_line_not_a_traceback(tmp_path, capsys):
    """``--model`` a link loop (``ln -s a.safetensors b.safetensors; ln -s b.safetensors a.safetensors``), or a file
    in a looping folder: the check that the names are two files resolved them, and ``Path.resolve``'s RuntimeError
    ("Symlink loop") ended the command in a traceback. Now the loader names the file: exit 2, one line."""
    a, b = _run_files(tmp_path, "run", "0123456789abcdef", [100, 200])
    (tmp_path / "x.safetensors").symlink_to("y.safetensors")
    (tmp_path / "y.safetensors").symlink_to("x.safetensors")
    (tmp_path / "d").symlink_to("e")
    (tmp_path / "e").symlink_to("d")
    for loop in (tmp_path / "x.safetensors", tmp_path / "d" / "m.safetensors"):
        assert calibrate.main(["average", "--model", str(loop), a, "--out", str(tmp_path / "z.safetensors")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "z.safetensors").exists()
