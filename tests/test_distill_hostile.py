"""distill-train against hostile use: two runs into one --out, a kill between a checkpoint and its rows, damaged
checkpoints, bad config values. Tiny config (experiments/distill/tiny.yaml, a few seconds a run)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import dmenet.distill.train as T
from dmenet.distill import checkpoints as distill_checkpoints
from dmenet.configlib import ConfigError
from dmenet.distill.config import DistillLossConfig, load_distill_config
from syndof.io import folder_lock

TINY = "experiments/distill/tiny.yaml"


@pytest.fixture(scope="module")
def tiny_data() -> None:
    """The folders tiny.yaml trains from (under ../shared): a skip when absent, a failure in CI (conftest's
    shared_file with DEFOCUS_REQUIRE_SHARED=1)."""
    from conftest import shared_file

    data = load_distill_config(TINY).data
    for folder in (data.images, data.masks, data.sharp_images, data.sharp_val_images):  # "../shared/data/…"
        shared_file(*Path(folder).relative_to("../shared").parts)


def _error(capsys, argv) -> str:
    """main(argv) must exit 2 with one error line (no traceback); that line."""
    capsys.readouterr()
    assert T.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(run: Path, name: str) -> list[dict]:
    """The rows of a run's log without the wall-clock column."""
    return [{k: v for k, v in json.loads(x).items() if k != "sec"} for x in (run / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_data) -> Path:
    """An uninterrupted tiny run (4 steps, checkpoints at steps 1 and 3)."""
    out = tmp_path_factory.mktemp("distill") / "run"
    T.train(load_distill_config(TINY), out)
    return out


def test_second_run_into_a_locked_out_is_refused_and_writes_nothing(tmp_path, capsys, finished):
    out = tmp_path / "run"
    with folder_lock(out, "--out"):  # another run holds --out
        err = _error(capsys, ["--config", TINY, "--out", str(out), "--set", "train.seed=5"])
        assert "--out" in err and str(out) in err and "another process" in err
        assert list(out.iterdir()) == []
    resumed = tmp_path / "resumed"
    shutil.copytree(finished, resumed)
    before = _files(resumed)
    with folder_lock(resumed, "--out"):
        assert "--out" in _error(capsys, ["--config", TINY, "--out", str(resumed), "--resume"])
    assert _files(resumed) == before
    # the refusals of an unsuitable --out still come first, and a failure inside the lock leaves no folder behind
    assert "--resume" in _error(capsys, ["--config", TINY, "--out", str(resumed)])
    assert _files(resumed) == before
    assert "nope.txt" in _error(capsys, ["--config", TINY, "--out", str(tmp_path / "new"),
                                         "--set", "data.val_list=nope.txt"])
    assert not (tmp_path / "new").exists()


def _kill_after(monkeypatch, name: str, when) -> None:
    """Make T.<name> raise KeyboardInterrupt (a kill) when ``when(*args)`` holds; after it ran for save_checkpoint
    (the checkpoint is on disk), before it runs otherwise."""
    real = getattr(T, name) if name != "log_scalars" else T.RunLogger.log_scalars

    def wrapped(*args, **kwargs):
        if name == "save_checkpoint":
            result = real(*args, **kwargs)
            if when(*args):
                raise KeyboardInterrupt
            return result
        if when(*args):
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    if name == "log_scalars":
        monkeypatch.setattr(T.RunLogger, "log_scalars", wrapped)
    else:
        monkeypatch.setattr(T, name, wrapped)


@pytest.mark.parametrize("kill", ["after_checkpoint", "after_val_row"])
def test_kill_between_checkpoint_and_its_rows_then_resume_equals_uninterrupted(tmp_path, monkeypatch, kill,
                                                                                finished):
    cfg = load_distill_config(TINY)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        if kill == "after_checkpoint":  # SIGTERM right after ckpt/step_000001 is written: no val row, no metrics row
            _kill_after(m, "save_checkpoint", lambda run_dir, run, step, *rest: step == 1)
        else:  # after the val.jsonl row, before the metrics.jsonl one
            _kill_after(m, "log_scalars", lambda logger, step, scalars: "val_fmax" in scalars)
        with pytest.raises(KeyboardInterrupt):
            T.train(cfg, out)
    assert (T.checkpoint_folder(out, 1) / "state.safetensors").is_file()
    assert not any("val_fmax" in r for r in _rows(out, "metrics.jsonl"))
    T.train(cfg, out, resume=True)
    assert (out / "val.jsonl").read_text() == (finished / "val.jsonl").read_text()
    assert [r["step"] for r in _rows(out, "val.jsonl")] == [1, 3]
    assert _rows(out, "metrics.jsonl") == _rows(finished, "metrics.jsonl")
    sa = load_file(str(T.checkpoint_folder(finished, 3) / "state.safetensors"))
    sb = load_file(str(T.checkpoint_folder(out, 3) / "state.safetensors"))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    T.train(cfg, out, resume=True)  # a resume of the finished run adds no row twice
    assert (out / "val.jsonl").read_text() == (finished / "val.jsonl").read_text()
    assert _rows(out, "metrics.jsonl") == _rows(finished, "metrics.jsonl")


def test_a_kill_inside_a_checkpoint_write_leaves_no_partial_folder_and_the_resume_equals_uninterrupted(
        tmp_path, monkeypatch, finished):
    """Ctrl-C (or a full disk) while the exported model of step 1 is written: the checkpoint's folder was staged as
    ``ckpt/step_000001.tmp`` and left there (reported left in docs/reliability.md §15). Now nothing of step 1 stays
    in ``ckpt/`` (no staging folder, no half checkpoint), and the resume ends where an uninterrupted run ends."""
    cfg = load_distill_config(TINY)
    out = tmp_path / "run"
    real = distill_checkpoints.save_distill_model

    def interrupted(path, *args, **kwargs):
        real(path, *args, **kwargs)  # the model pair is on disk in the staging folder, then the kill
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(distill_checkpoints, "save_distill_model", interrupted)  # the checkpoint writes it
        with pytest.raises(KeyboardInterrupt):
            T.train(cfg, out)
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == []
    assert T.latest_checkpoint(out) is None
    T.train(cfg, out, resume=True)
    sa = load_file(str(T.checkpoint_folder(finished, 3) / "state.safetensors"))
    sb = load_file(str(T.checkpoint_folder(out, 3) / "state.safetensors"))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _set_meta(**changes):
    def damage(ckpt: Path) -> None:
        meta = json.loads((ckpt / "meta.json").read_text())
        meta.update(changes)
        (ckpt / "meta.json").write_text(json.dumps(meta))
    return damage


def _drop_tensor(prefix: str):
    def damage(ckpt: Path) -> None:
        tensors = load_file(str(ckpt / "state.safetensors"))
        del tensors[min(k for k in tensors if k.startswith(prefix))]
        save_file(tensors, str(ckpt / "state.safetensors"))
    return damage


DAMAGE = {
    "meta_only_step": (lambda ckpt: (ckpt / "meta.json").write_text('{"step": 3}'), "meta.json", "opt_g"),
    "disc_tensor_dropped": (_drop_tensor("discs."), "state.safetensors", "missing tensor(s) discs."),
    "opt_g_tensor_dropped": (_drop_tensor("opt_g.state."), "state.safetensors", "missing tensor(s) opt_g.state."),
    "opt_d_tensor_dropped": (_drop_tensor("opt_d.state."), "state.safetensors", "missing tensor(s) opt_d.state."),
    "step_past_the_end": (_set_meta(step=100), "meta.json", "step 100"),
    "negative_step": (_set_meta(step=-7), "meta.json", "step -7"),
    "fractional_step": (_set_meta(step=2.5), "meta.json", "step"),
    "step_of_another_folder": (_set_meta(step=1), "meta.json", "step 1"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_checkpoint_is_refused_naming_the_file(tmp_path, capsys, finished, name):
    damage, file, what = DAMAGE[name]
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    damage(T.checkpoint_folder(out, 3))
    before = _files(out)
    err = _error(capsys, ["--config", TINY, "--out", str(out), "--resume"])
    assert str(T.checkpoint_folder(out, 3) / file) in err and what in err, err
    assert _files(out) == before  # nothing written


BAD = [("student.drop_connect", v) for v in ("nan", "5", "-1", "1")] \
    + [(f"loss.{f.name}", v) for f in fields(DistillLossConfig) if f.type != "bool" for v in ("nan", "inf", "-1")] \
    + [("train.seed", "-1"), ("train.seed", str(2**64))]


def test_bad_config_values_are_refused_naming_the_key(tmp_path, capsys):
    for key, value in BAD:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_distill_config(TINY, [f"{key}={value}"])
    for key, value in (("student.drop_connect", "nan"), ("loss.edge", "inf"), ("train.seed", "-1")):
        out = tmp_path / key
        assert key in _error(capsys, ["--config", TINY, "--out", str(out), "--set", f"{key}={value}"])
        assert not out.exists()
    cfg = load_distill_config(TINY, ["student.drop_connect=0", "loss.content=0", "train.seed=0"])
    assert cfg.student.drop_connect == 0 and cfg.loss.content == 0 and not math.isnan(cfg.loss.edge)


@pytest.mark.parametrize("line", ['5', '{"step": null, "val_fmax": 0.5, "val_mae": 0.1}',
                                  '{"step": 1.5, "val_fmax": 0.5, "val_mae": 0.1}',
                                  '{"step": true, "val_fmax": 0.5, "val_mae": 0.1}',
                                  '{"step": "x", "val_fmax": 0.5, "val_mae": 0.1}',
                                  '{"step": 1e400, "val_fmax": 0.5, "val_mae": 0.1}', None])
def test_h47_select_names_a_damaged_validation_log_and_never_picks_another_step(tmp_path, capsys, line):
    """distill.select: a non-object row, step null or inf gave tracebacks; step 1.5 or true chose step_000001's
    folder (int() of it), exit 0; a binary val.jsonl gave a line naming no file."""
    from dmenet.distill import select

    run = tmp_path / "run"
    (run / "ckpt" / "step_000001").mkdir(parents=True)
    (run / "ckpt" / "step_000001" / "model.safetensors").write_bytes(b"")
    log = run / "val.jsonl"
    if line is None:
        log.write_bytes(b"\x93\xf7\x00binary")
    else:
        log.write_text('{"step": 1, "val_fmax": 0.4, "val_mae": 0.2}\n' + line + "\n")
    capsys.readouterr()
    assert select.main([str(run)]) == 2
    err = capsys.readouterr()
    assert "step_000001" not in err.out
    lines = [ln for ln in err.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {log}") and "Traceback" not in err.err, err.err


def test_n5_select_says_when_no_checkpoint_meets_the_sharp_bar(tmp_path, capsys):
    """A tiny run whose every checkpoint calls sharp photos blurred (sharp_val_mean 0.46) got "chosen by
    experiments/distill/SELECTION.md: {...}" as if it met the rule's bar; it is the rule's fallback and now says so
    (reliability.md §23, N5)."""
    from dmenet.distill import select

    run = tmp_path / "run"
    rows = [{"step": 1, "val_fmax": 0.76, "val_mae": 0.52, "sharp_val_mean": 0.46},
            {"step": 3, "val_fmax": 0.75, "val_mae": 0.51, "sharp_val_mean": 0.45}]
    run.mkdir()
    (run / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows:
        (run / "ckpt" / f"step_{r['step']:06d}").mkdir(parents=True)
        (run / "ckpt" / f"step_{r['step']:06d}" / "model.safetensors").write_bytes(b"")
    assert select.main([str(run)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(run / "ckpt" / "step_000003")
    assert "no checkpoint has sharp_val_mean <= 0.2" in err and "fallback" in err
    rows[1]["sharp_val_mean"] = 0.1  # a checkpoint that meets the bar: no note
    (run / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert select.main([str(run)]) == 0
    assert "fallback" not in capsys.readouterr().err


def test_m1_a_stopped_distill_run_names_its_last_checkpoint_and_the_resume_command(tmp_path, monkeypatch, capsys):
    """Ctrl-C (130, unchanged) during distill.train: one stderr line naming the newest complete ckpt/step_N and the
    same command with --resume, before entry_point's own "interrupted (Ctrl-C)"."""
    import os
    import shlex

    run = tmp_path / "run"

    def stopped(cfg, out, resume):
        for step in (1, 3):
            T.checkpoint_folder(out, step).mkdir(parents=True)
            (T.checkpoint_folder(out, step) / "state.safetensors").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "train", stopped)
    argv = ["--config", TINY, "--out", str(run)]
    assert T.main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        f"stopped (Ctrl-C): last checkpoint {T.checkpoint_folder(run, 3)}; continue with: "
        f"cd {shlex.quote(os.getcwd())} && {shlex.join(['python', '-m', 'dmenet.distill.train', *argv, '--resume'])}",
        "interrupted (Ctrl-C)"]


@pytest.mark.parametrize("bad, named", [
    ('{"step": 1, "val_fmax": "0.99", "val_mae": 0.05, "sharp_val_mean": 0.1}', "val_fmax '0.99' is not a number"),
    ('{"step": 1, "val_fmax": 0.99, "val_mae": 0.05, "sharp_val_mean": null}', "sharp_val_mean None is not a number"),
    ('{"step": 1, "val_fmax": 0.99, "val_mae": 0.05, "sharp_val_mean": "0.1"}', "sharp_val_mean '0.1' is not a number"),
    ('{"step": 1, "val_fmax": 5.0, "val_mae": 0.05, "sharp_val_mean": 0.1}', "val_fmax 5.0 is not a score in [0, 1]"),
    ('{"step": 1, "val_fmax": 0.6, "val_mae": -3, "sharp_val_mean": 0.1}', "val_mae -3 is not a score in [0, 1]"),
    ('{"val_fmax": 0.99, "val_mae": 0.05, "sharp_val_mean": 0.1}', "step None"),
    ('{"step": 3, "val_fmax": 0.99, "val_mae": 0.05, "sharp_val_mean": 0.1}', "step 3 again (first on line 1)"),
    ('{"step": 1, "val_fmax": 0.99, "val_mae": 0.05}', "no sharp_val_mean")])
def test_c1_select_refuses_a_damaged_score_row_never_choosing_around_it(tmp_path, capsys, bad, named):
    """distill.select on a val.jsonl with a damaged row (reliability.md §28, C1): a score of text or null, or a row
    without step, was left out unsaid and another checkpoint chosen (exit 0); a null beside a text score was a
    TypeError traceback; a score outside [0, 1] won (Fmax 5.0), a step logged twice was scored by its better row, a
    row without the sharp_val_mean the others report was dropped. Now exit 2, one line naming the file and line."""
    from dmenet.distill import select

    run = tmp_path / "run"
    for step in (1, 3):
        (run / "ckpt" / f"step_{step:06d}").mkdir(parents=True)
        (run / "ckpt" / f"step_{step:06d}" / "model.safetensors").write_bytes(b"")
    log = run / "val.jsonl"
    log.write_text('{"step": 3, "val_fmax": 0.5, "val_mae": 0.3, "sharp_val_mean": 0.5}\n' + bad + "\n")
    capsys.readouterr()
    assert select.main([str(run)]) == 2
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert not out and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {log}: line 2: ") and named in lines[0], lines[0]


@pytest.mark.parametrize("order", [1, -1])
def test_v3_select_says_when_no_checkpoint_has_a_finite_sharp_val_mean(tmp_path, capsys, order):
    """Every sharp_val_mean NaN (the sharp validation photos scored NaN at every checkpoint): select fell back to a
    step with no word, where the other fallback prints a note (reliability.md §30, V3). Now the later step, in either
    row order, and a note on stderr; a run where one checkpoint has a finite one says nothing of it."""
    from dmenet.distill import select

    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": 1, "val_fmax": 0.8, "val_mae": 0.1, "sharp_val_mean": float("nan")},
            {"step": 3, "val_fmax": 0.7, "val_mae": 0.2, "sharp_val_mean": float("nan")}][::order]
    for r in rows:
        (run / "ckpt" / f"step_{r['step']:06d}").mkdir(parents=True)
        (run / "ckpt" / f"step_{r['step']:06d}" / "model.safetensors").write_bytes(b"")
    (run / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # NaN as Python's json writes it
    capsys.readouterr()
    assert select.main([str(run)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(run / "ckpt" / "step_000003")
    notes = [ln for ln in err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "no checkpoint has a finite sharp_val_mean" in notes[0] and "fallback" in notes[0]
    rows[0]["sharp_val_mean"] = 0.05
    (run / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert select.main([str(run)]) == 0
    assert "note:" not in capsys.readouterr().err
