"""distill-train --resume with another train.steps (docs/distill.md, "Extending a run"): allowed as in dmenet.train
(never below the steps done); with a constant rate the extended run equals one started with the larger total; with
the cosine decay the decay is stretched from the resume point, recorded in the checkpoints, and a kill of the
extended run resumes exactly."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file
from test_distill import TINY, _dataset

from dmenet.configlib import ConfigError
from dmenet.distill import train as T
from dmenet.distill.config import load_distill_config
from dmenet.training.checkpoint import CheckpointError


def _state(run: Path, step: int) -> dict:
    return load_file(str(run / "ckpt" / f"step_{step:06d}" / "state.safetensors"))


def _meta(run: Path, step: int) -> dict:
    return json.loads((run / "ckpt" / f"step_{step:06d}" / "meta.json").read_text())


def _rows(run: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k != "sec"} for x in (run / name).read_text().splitlines()]


def _same_states(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_cosine_angle_is_the_plain_schedule_then_stretched_from_each_resume_point():
    """One segment: π·min(step, S)/S, bit for bit; (0, 4), (2, 8): steps 0–1 as the 4-step run, then from the angle
    of step 2 (π/2) linearly to π at step 8, constant after; a third segment continues from the second's angle."""
    from dmenet.training.schedule import cosine_angle

    assert [cosine_angle(k, [(0, 7)]) for k in range(9)] == [math.pi * min(k, 7) / 7 for k in range(9)]
    seg = [(0, 4), (2, 8)]
    assert cosine_angle(1, seg) == cosine_angle(1, [(0, 4)])
    assert [cosine_angle(k, seg) for k in (2, 5, 8, 12)] == pytest.approx(
        [math.pi / 2, math.pi * 3 / 4, math.pi, math.pi])
    three = seg + [(5, 11)]  # 3π/4 at step 5, π at 11
    assert cosine_angle(4, three) == cosine_angle(4, seg)
    assert cosine_angle(8, three) == pytest.approx(math.pi * 3 / 4 + math.pi / 4 * 3 / 6)
    with pytest.raises(ValueError):
        cosine_angle(0, [(1, 4)])


def test_a_resume_with_more_steps_at_a_constant_rate_equals_a_run_started_with_them(tmp_path):
    """optim.final_lr_fraction=1 (the rate does not depend on train.steps): 2 steps resumed with train.steps=4 give
    the weights, optimiser state, metrics and validation rows of a run started with 4, at every step."""
    sets = _dataset(tmp_path / "d") + TINY + ["optim.final_lr_fraction=1"]
    T.train(load_distill_config(None, sets), tmp_path / "a")
    T.train(load_distill_config(None, sets + ["train.steps=2"]), tmp_path / "b")
    T.train(load_distill_config(None, sets), tmp_path / "b", resume=True)
    for step in (1, 3):
        assert _same_states(_state(tmp_path / "a", step), _state(tmp_path / "b", step))
    assert _rows(tmp_path / "b") == _rows(tmp_path / "a")
    assert _rows(tmp_path / "b", "val.jsonl") == _rows(tmp_path / "a", "val.jsonl")
    assert _meta(tmp_path / "b", 3)["train_steps"] == [[0, 2], [2, 4]]  # the record says it was extended


def test_an_extended_cosine_run_stretches_the_decay_records_it_and_resumes_exactly(tmp_path, capsys):
    """A 4-step run stopped after step 1, resumed with train.steps=8: steps 0–1 had the 4-step decay, steps 2–7 go
    from the factor of step 2 (angle π/2) to optim.final_lr_fraction at step 8; every later checkpoint and model
    file records [[0, 4], [2, 8]]; the extended run killed after step 4 and resumed equals it uninterrupted."""
    sets = _dataset(tmp_path / "d") + TINY + ["optim.warmup_steps=0", "optim.final_lr_fraction=0.1"]
    four, eight = load_distill_config(None, sets), load_distill_config(None, sets + ["train.steps=8"])
    T.train(four, tmp_path / "x", max_steps=2)
    shutil.copytree(tmp_path / "x", tmp_path / "y")
    T.train(eight, tmp_path / "x", resume=True)
    assert "note: train.steps 4 -> 8 from step 2" in capsys.readouterr().out
    lr = {r["step"]: r["lr"] for r in _rows(tmp_path / "x") if "lr" in r}
    base = four.optim.lr

    def factor(angle: float) -> float:
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(angle))
    assert [lr[k] for k in (0, 1)] == pytest.approx([base * factor(math.pi * k / 4) for k in (0, 1)])
    assert [lr[k] for k in range(2, 8)] == pytest.approx(
        [base * factor(math.pi / 2 + math.pi / 2 * (k - 2) / 6) for k in range(2, 8)])
    assert _meta(tmp_path / "x", 1)["train_steps"] == [[0, 4]]
    assert _meta(tmp_path / "x", 7)["train_steps"] == [[0, 4], [2, 8]]
    info = json.loads((tmp_path / "x" / "ckpt" / "step_000007" / "model.json").read_text())
    assert info["train_steps"] == [[0, 4], [2, 8]]
    T.train(eight, tmp_path / "y", resume=True, max_steps=5)  # the extended run killed after step 4
    T.train(eight, tmp_path / "y", resume=True)
    assert _same_states(_state(tmp_path / "x", 7), _state(tmp_path / "y", 7))
    trained = [r for r in _rows(tmp_path / "y") if "lr" in r]  # (y has one more checkpoint row, where it stopped)
    assert trained == [r for r in _rows(tmp_path / "x") if "lr" in r] and len(trained) == 8


def test_a_resume_below_the_steps_done_is_refused_and_a_damaged_record_named(tmp_path, capsys):
    """train.steps below the 4 steps the checkpoint step_000003 has done: exit 2, one line naming train.steps and
    the checkpoint, nothing changed (as dmenet.train). A meta.json whose train_steps record is damaged is named."""
    sets = _dataset(tmp_path / "d") + TINY
    out = tmp_path / "run"
    T.train(load_distill_config(None, sets), out)
    files = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert T.main(["--out", str(out), "--resume", "--set", *sets, "train.steps=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.steps 3 is below the step 4" in err[0] and "step_000003" in err[0]
    assert "only extend" in err[0]
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == files
    meta = _meta(out, 3)
    (out / "ckpt" / "step_000003" / "meta.json").write_text(json.dumps({**meta, "train_steps": [[0, 4], [9, 2]]}))
    with pytest.raises(CheckpointError, match=r"step_000003/meta\.json: 'train_steps'"):
        T.train(load_distill_config(None, sets + ["train.steps=6"]), out, resume=True)
    with pytest.raises(ConfigError, match=r"differs from this one in optim\.lr$"):  # other keys stay compared
        T.train(load_distill_config(None, sets + ["train.steps=6", "optim.lr=1e-3"]), out, resume=True)


def test_a_checkpoint_without_a_schedule_record_keeps_its_total_when_extended(tmp_path):
    """A run from before 6 Dec 2026 (config.yaml without data.mask_suffix, train.channels_last) still resumes. A
    checkpoint written before the record (meta.json without train_steps) was trained with config.yaml's
    train.steps; an extension writes that into its meta.json before config.yaml takes the new total, so a kill
    before the next checkpoint still resumes with the schedule [[0, 4], [2, 8]]."""
    sets = _dataset(tmp_path / "d") + TINY
    out = tmp_path / "run"
    T.train(load_distill_config(None, sets), out, max_steps=2)
    folder = out / "ckpt" / "step_000001"
    legacy = {k: v for k, v in _meta(out, 1).items() if k != "train_steps"}
    (folder / "meta.json").write_text(json.dumps(legacy))
    config = yaml.safe_load((out / "config.yaml").read_text())
    del config["data"]["mask_suffix"]  # nor keys added since: each reads as the value that did what the run did
    del config["train"]["channels_last"]
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    eight = load_distill_config(None, sets + ["train.steps=8"])
    T.train(eight, out, resume=True, max_steps=2)  # no step runs: a kill before the next checkpoint
    assert _meta(out, 1) == {**legacy, "train_steps": [[0, 4]]}
    T.train(eight, out, resume=True, max_steps=4)
    assert _meta(out, 3)["train_steps"] == [[0, 4], [2, 8]]
