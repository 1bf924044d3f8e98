"""Galetto & Deng commands never lose or mislabel earlier work: build_patches writes a whole set or nothing and never
replaces one, galetto.train refuses folders that hold something else and resumes only with the run's own config,
galetto.select never replaces a selection and checks its val folder first. Refusals are exit 2 with one line and
leave every existing file byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dmenet.galetto import build_patches, select
from dmenet.galetto.train import main as train_main
from galetto_helpers import build, one_error_line, snapshot, write_bsds_like, write_source_renders
from galetto_helpers import model_file_fixture, val_folder_fixture  # noqa: F401 - the model_file, val_folder fixtures

TINY_TRAIN = ["--config", "experiments/galetto_tiny.yaml", "--threads", "1", "--set", "model.blocks=2",
              "model.head_channels=16"]


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".part-" in p.name)


# ------------------------------------------------------------------------------------------------ build_patches
@pytest.fixture()
def photos(tmp_path):
    return write_bsds_like(tmp_path / "bsds")


def test_build_patches_writes_a_whole_set_and_never_replaces_one(photos, tmp_path, capsys):
    out = tmp_path / "set"
    assert build(photos, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["split.json", "test.npz", "train.npz", "val.npz"]
    split = json.loads((out / "split.json").read_text())
    assert len(split["train"]) == 3 and len(split["val"]) == 1
    assert len(np.load(out / "test.npz")["label"]) == 40
    assert leftovers(tmp_path) == []
    before = snapshot(out)
    capsys.readouterr()
    assert build(photos, out, "--seed", "1") == 2  # another seed into the same folder: refused, nothing changed
    assert f"--out {out}: exists" in one_error_line(capsys)
    assert snapshot(out) == before
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert build(photos, copy, "--val-fraction", "1.0") == 2
    one_error_line(capsys)
    assert snapshot(copy) == before
    (tmp_path / "file").write_text("x")
    assert build(photos, tmp_path / "file") == 2 and "not a folder" in one_error_line(capsys)
    (tmp_path / "empty").mkdir()  # an empty folder is filled
    assert build(photos, tmp_path / "empty") == 0 and len(list((tmp_path / "empty").iterdir())) == 4


@pytest.mark.parametrize("option, value", [("--val-fraction", "1.0"), ("--val-fraction", "0"),
                                           ("--val-fraction", "-0.5"), ("--val-fraction", "nan"),
                                           ("--val-fraction", "0.1"),  # 0.1 × 4 photos rounds to no val photo
                                           ("--val-fraction", "0.9"),  # … and to no train photo
                                           ("--test-count", "5"), ("--test-count", "30")])
def test_build_patches_refuses_bad_options_before_any_work(photos, tmp_path, capsys, option, value):
    out = tmp_path / "set"
    assert build(photos, out, option, value) == 2
    assert option in one_error_line(capsys)
    assert not out.exists() and leftovers(tmp_path) == []


def test_build_patches_without_sharp_positions_writes_nothing(photos, tmp_path, capsys):
    out = tmp_path / "set"
    assert build(photos, out, "--phi", "1e12") == 2
    assert "no sharp position" in one_error_line(capsys)
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("stop", [SystemExit(143), KeyboardInterrupt()])  # SIGTERM (syndof.cli) and Ctrl-C
def test_build_patches_interrupted_leaves_no_half_set(photos, tmp_path, monkeypatch, stop):
    """Stopped after split.json and train.npz were written: neither --out nor its staging folder is left."""
    real, calls = build_patches.patches_of, []

    def patches_of(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise stop
        return real(*args, **kwargs)

    monkeypatch.setattr(build_patches, "patches_of", patches_of)
    out = tmp_path / "set"
    if isinstance(stop, KeyboardInterrupt):  # entry_point: one line and 130, after the unwinding cleaned up
        assert build(photos, out) == 130
    else:
        with pytest.raises(type(stop)):
            build(photos, out)
    assert len(calls) == 2 and not out.exists() and leftovers(tmp_path) == []
    monkeypatch.setattr(build_patches, "patches_of", real)
    assert build(photos, out) == 0  # the rerun starts clean


def test_build_patches_syndof_test_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "set"
    out.mkdir()
    (out / "syndof_test.npz").write_bytes(b"earlier")
    (tmp_path / "r" / "image").mkdir(parents=True)
    assert build_patches.main(["--syndof", str(tmp_path / "r"), "--sources", str(tmp_path), "--out", str(out)]) == 2
    assert "syndof_test.npz" in one_error_line(capsys)
    assert (out / "syndof_test.npz").read_bytes() == b"earlier"


def syndof_build(renders: Path, sources: Path, out: Path, *extra: str) -> int:
    return build_patches.main(["--syndof", str(renders), "--sources", str(sources), "--out", str(out), *extra])


def test_build_patches_syndof_skips_bad_renders_and_records_them(tmp_path, capsys):
    """A corrupt render and one whose source photo has another size are skipped (one line each) and listed in
    syndof_test.json; the set is the good render's, as photo mode does (it used to refuse the whole set)."""
    from syndof import io as sio

    photos = tmp_path / "photos"
    renders = write_source_renders(tmp_path / "renders", photos, count=3, size=(64, 64))
    corrupt = renders / "image" / "000001_src1.png"
    corrupt.write_bytes(b"")
    sio.write_image(photos / "src2.png", np.random.default_rng(0).random((48, 64, 3)))
    out = tmp_path / "set"
    assert syndof_build(renders, photos, out) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" not in err
    odd = renders / "image" / "000002_src2.png"
    assert [ln.split(":")[0] for ln in err.splitlines()] == [f"skipped {corrupt}", f"skipped {odd}"]
    record = json.loads((out / "syndof_test.json").read_text())
    assert sorted(record["skipped"]) == [str(corrupt), str(odd)] and "differ in size" in record["skipped"][str(odd)]
    assert record["with_windows"] == ["000000_src0"] and record["max_range"] == 0.5
    assert set(np.load(out / "syndof_test.npz")["stem"].tolist()) == {"000000_src0"}
    assert sorted(p.name for p in out.iterdir()) == ["syndof_test.json", "syndof_test.npz"]
    before = snapshot(out)
    assert syndof_build(renders, photos, out) == 2  # never replaced
    assert "syndof_test.npz" in one_error_line(capsys) and snapshot(out) == before
    # --limit is honoured: the first render only, nothing skipped
    assert syndof_build(renders, photos, tmp_path / "one", "--limit", "1") == 0
    assert json.loads((tmp_path / "one" / "syndof_test.json").read_text())["skipped"] == {}


@pytest.mark.parametrize("option, value", [("--photos", "bsds"), ("--test-count", "40"), ("--val-fraction", "0.5"),
                                           ("--seed", "0"), ("--blur", "context")])
def test_build_patches_syndof_refuses_photo_options(tmp_path, capsys, option, value):
    photos = tmp_path / "photos"
    renders = write_source_renders(tmp_path / "renders", photos, count=1, size=(64, 64))
    assert syndof_build(renders, photos, tmp_path / "set", option, value) == 2
    line = one_error_line(capsys)
    assert option in line and "--syndof" in line
    assert not (tmp_path / "set").exists()


def test_build_patches_refuses_syndof_options_without_it(photos, tmp_path, capsys):
    for extra in (["--sources", str(tmp_path)], ["--max-range", "1"]):
        assert build(photos, tmp_path / "set", *extra) == 2
        assert extra[0] in one_error_line(capsys)
        assert not (tmp_path / "set").exists()


def test_build_patches_syndof_checks_out_before_any_render(tmp_path, capsys):
    photos = tmp_path / "photos"
    renders = write_source_renders(tmp_path / "renders", photos, count=2, size=(64, 64))
    (renders / "image" / "000001_src1.png").write_bytes(b"")  # would be skipped, were any render read
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "set"
    assert syndof_build(renders, photos, out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out}: ") and len(err.splitlines()) == 1, err


# -------------------------------------------------------------------------------------------------------- train
def fake_patches(folder: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name in ("train", "val"):
        np.savez(folder / f"{name}.npz", patches=rng.integers(0, 255, (n, 20, 32, 32), dtype=np.uint8))
    return folder


def train(patches: Path, out: Path, *extra: str) -> int:
    sets = [e for e in extra if "=" in e]
    flags = [e for e in extra if "=" not in e]
    return train_main(TINY_TRAIN + sets + ["--patches", str(patches), "--out", str(out), *flags])


def test_resume_with_another_config_is_refused_before_anything_is_written(tmp_path, capsys):
    data = fake_patches(tmp_path / "p")
    run = tmp_path / "run"
    assert train(data, run, "train.steps=2") == 0
    before = snapshot(run)
    capsys.readouterr()
    assert train(data, run, "model.width=0.5", "train.steps=6", "--resume") == 2
    line = one_error_line(capsys)
    assert "model.width" in line and "train.steps" not in line and "config.json" in line
    assert snapshot(run) == before
    assert train(data, run, "train.lr=0.002", "--resume") == 2
    assert "train.lr" in one_error_line(capsys)
    assert snapshot(run) == before
    # a cosine schedule spans train.steps: extending it would change the schedule of the steps already done
    assert train(data, run, "train.lr_min=0.0", "train.steps=4", "--resume") == 2
    assert "train.lr_min" in one_error_line(capsys)
    assert train(data, run, "train.steps=1", "--resume") == 2  # below the checkpoint's step 2
    assert "train.steps 1" in one_error_line(capsys)
    assert snapshot(run) == before
    # where it runs and how long: allowed; rows a killed run logged past its checkpoint are dropped
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 3, "loss": 9.0}) + "\n{\"step\": 4, \"lo")
    assert train(data, run, "train.steps=4", "--threads", "2", "--resume") == 0
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["steps"] == 4 and config["threads"] == 2  # --threads is train.threads (it was overridden by it)
    assert json.loads((run / "last.json").read_text())["step"] == 4
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r.get("loss") != 9.0 for r in rows) and sorted(r["step"] for r in rows) == [r["step"] for r in rows]


def test_run_folder_must_be_its_own(tmp_path, capsys):
    data = fake_patches(tmp_path / "p")
    patch_files = snapshot(data)
    assert train(data, data) == 2  # beside train.npz
    assert "--patches" in one_error_line(capsys)
    assert train(data, data / "run") == 2  # inside the patch set
    one_error_line(capsys)
    assert snapshot(data) == patch_files and not (data / "run").exists()

    killed = tmp_path / "killed"  # a run killed before its first checkpoint: config + metrics rows, no last.json
    assert train(data, tmp_path / "full", "train.steps=2") == 0
    killed.mkdir()
    for name in ("config.json", "metrics.jsonl"):
        shutil.copy(tmp_path / "full" / name, killed / name)
    before = snapshot(killed)
    capsys.readouterr()
    assert train(data, killed, "train.seed=5") == 2
    assert "no checkpoint" in one_error_line(capsys)
    assert snapshot(killed) == before

    full = snapshot(tmp_path / "full")
    assert train(data, tmp_path / "full", "train.seed=5") == 2
    assert "--resume" in one_error_line(capsys)
    assert snapshot(tmp_path / "full") == full

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert train(data, other) == 2 and "not empty" in one_error_line(capsys)
    assert snapshot(other) == {"notes.txt": b"mine"}


def test_unreadable_patch_file_is_one_line_and_creates_no_run(tmp_path, capsys):
    data = fake_patches(tmp_path / "p")
    (data / "val.npz").write_bytes(b"not a zip")
    assert train(data, tmp_path / "run") == 2
    assert "val.npz" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------------- select
def run_select(val: Path, model: Path, out: Path) -> int:
    return select.main(["--val", str(val), "--model", str(model), "--stride", "32", "--threads", "1",
                        "--out", str(out)])


def test_select_never_replaces_a_selection(val_folder, model_file, tmp_path, capsys):
    out = tmp_path / "sel"
    assert run_select(val_folder, model_file, out) == 0
    before = snapshot(out)
    assert list(before) == ["selection.json"]
    capsys.readouterr()
    assert run_select(val_folder, model_file, out) == 2
    assert "selection.json" in one_error_line(capsys)
    assert snapshot(out) == before


def test_select_checks_the_val_folder_first(val_folder, model_file, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "image").mkdir(parents=True)
    (empty / "blur_map").mkdir()
    assert run_select(empty, model_file, tmp_path / "a") == 2
    assert "image" in one_error_line(capsys)
    (val_folder / "blur_map" / "r1.png").unlink()
    assert run_select(val_folder, model_file, tmp_path / "b") == 2
    assert "r1.png" in one_error_line(capsys)
    shutil.rmtree(val_folder / "blur_map")
    assert run_select(val_folder, model_file, tmp_path / "c") == 2
    assert "blur_map" in one_error_line(capsys)
    assert not any((tmp_path / n).exists() for n in "abc")


def test_adam_takes_eps_and_the_cosine_lr_of_the_last_step(tmp_path):
    """The saved optimiser of a 3-step run: train.eps, and the lr that lr_at gave its last step (step 2 of 3):
    1e-4 + ½ · 9e-4 · (1 + cos(2π/3)) = 3.25e-4."""
    data = fake_patches(tmp_path / "p")
    assert train(data, tmp_path / "run", "train.steps=3", "train.lr_min=1e-4", "train.eps=1e-6") == 0
    meta = json.loads((tmp_path / "run" / "last.json").read_text())
    group = meta["opt"]["param_groups"][0]
    assert meta["step"] == 3 and group["eps"] == 1e-6 and group["lr"] == pytest.approx(3.25e-4)


def test_h48_select_checks_out_and_map_sizes_before_the_model_loads(val_folder, model_file, tmp_path, capsys,
                                                                    monkeypatch):
    """An --out that cannot be written failed after the whole scoring (36 s for one render at stride 8); a σ map of
    another size than its render failed there too, in a line naming no file."""
    monkeypatch.setattr("dmenet.galetto.train.load_classifier",
                        lambda *a, **k: pytest.fail("the model was loaded before the inputs were checked"))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert run_select(val_folder, model_file, blocker / "sel") == 2
    assert str(blocker) in one_error_line(capsys)
    from syndof import io as sio

    small = tmp_path / "val_small"
    shutil.copytree(val_folder, small)
    sio.write_sigma_map(small / "blur_map" / "r1.png", np.zeros((24, 32), np.float32))
    assert run_select(small, model_file, tmp_path / "sel2") == 2
    assert str(small / "blur_map" / "r1.png") in one_error_line(capsys)
    assert not (tmp_path / "sel2").exists()


def test_select_skips_a_corrupt_render_records_it_and_refuses_when_none_is_readable(val_folder, model_file, tmp_path,
                                                                                     capsys):
    """One unreadable render stopped the whole selection (exit 2, nothing written). It is skipped with one line naming
    it, both stages score the renders left (the same scores as a folder of those alone), and selection.json says how
    many renders were scored and which were skipped; with none readable: exit 2, one line, nothing written."""
    alone = tmp_path / "alone"
    shutil.copytree(val_folder, alone)
    for folder in ("image", "blur_map"):
        (alone / folder / "r0.png").unlink()
    assert run_select(alone, model_file, tmp_path / "want") == 0
    want = json.loads((tmp_path / "want" / "selection.json").read_text())
    capsys.readouterr()
    (val_folder / "image" / "r0.png").write_bytes(b"not an image")
    assert run_select(val_folder, model_file, tmp_path / "sel") == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(err) == 1 and err[0].startswith(f"skipped {val_folder / 'image' / 'r0.png'}: "), err
    got = json.loads((tmp_path / "sel" / "selection.json").read_text())
    assert got["renders"] == 1 and want["renders"] == 1 and want["skipped"] == {}
    assert list(got["skipped"]) == [str(val_folder / "image" / "r0.png")]
    assert got["scores"] == want["scores"] and got["winner"] == want["winner"]
    sigma_map = val_folder / "blur_map" / "r1.png"
    sigma_map.write_bytes(sigma_map.read_bytes()[:40])  # truncated: the last render's σ map cannot be read either
    assert run_select(val_folder, model_file, tmp_path / "none") == 2
    captured = capsys.readouterr()
    assert f"skipped {val_folder / 'image' / 'r1.png'}: {sigma_map}" in captured.err
    line = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "no readable render (2 skipped" in line[0] and "Traceback" not in captured.err
    assert not (tmp_path / "none").exists()


def test_h62_select_never_replaces_a_selection_written_while_it_scored(val_folder, model_file, tmp_path, capsys,
                                                                       monkeypatch):
    """Two selections into one --out (say at strides 16 and 32) both passed the 'no selection.json yet' check, both
    exited 0, and the one that finished last replaced the other's file. The one finishing second now exits 2 with one
    line naming --out and keeps the other's selection.json."""
    out = tmp_path / "sel"
    other = {"written by": "another galetto.select"}
    scored = select.candidates_mae

    def score_while_another_writes(*args, **kwargs):
        if not (out / "selection.json").exists():
            out.mkdir(exist_ok=True)
            (out / "selection.json").write_text(json.dumps(other))
        return scored(*args, **kwargs)

    monkeypatch.setattr(select, "candidates_mae", score_while_another_writes)
    assert run_select(val_folder, model_file, out) == 2
    assert f"--out {out}" in one_error_line(capsys)
    assert json.loads((out / "selection.json").read_text()) == other
    assert sorted(p.name for p in out.iterdir()) == ["selection.json"]  # no temporary file left


# ------------------------------------------------------------------------ left items of the seventh review (§17)
def test_h86_a_resume_refuses_a_missing_or_damaged_best_model(tmp_path, capsys):
    """A run whose ``best.safetensors`` was deleted resumed, exit 0, and got a new one only when a later validation
    beat the best ``last.json`` records: it could end with ``best.json`` naming a model that is not there. A resume
    now refuses a missing or damaged file of the pair (one line naming it, and how to go on), nothing written; with
    neither file there it chooses the best anew from the next validation, and says so."""
    data = fake_patches(tmp_path / "p")
    run = tmp_path / "run"
    assert train(data, run, "train.steps=2", "train.ckpt_every=1") == 0
    assert json.loads((run / "last.json").read_text())["best"] is not None
    good = {name: (run / name).read_bytes() for name in ("best.safetensors", "best.json")}
    capsys.readouterr()
    damages = [("best.safetensors", None, "best.safetensors: missing"),
               ("best.json", None, "best.json: missing"),
               ("best.safetensors", good["best.safetensors"][:100], "best.safetensors: not a readable safetensors"),
               ("best.json", b'{"format": "galetto-classifier", "mo', "best.json")]
    for name, damaged, named in damages:
        (run / name).unlink()
        if damaged is not None:
            (run / name).write_bytes(damaged)
        before = snapshot(run)
        assert train(data, run, "train.steps=4", "train.ckpt_every=1", "--resume") == 2
        line = one_error_line(capsys)
        assert named in line and "delete best.safetensors and best.json to choose the best anew" in line, line
        assert snapshot(run) == before
        (run / name).write_bytes(good[name])
    for name in good:
        (run / name).unlink()
    assert train(data, run, "train.steps=4", "train.ckpt_every=1", "--resume") == 0
    err = capsys.readouterr().err
    assert "note:" in err and "the best is chosen anew from the next validation" in err, err
    assert json.loads((run / "best.json").read_text())["step"] == 3  # the first validation after the resume
    assert (run / "best.safetensors").is_file()
