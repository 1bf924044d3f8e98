"""docs/reliability.md §32, the tenth review: the command-line scripts of benchmarks/ and experiments/ (Y1–Y14).

Each test runs a script's ``main`` in this process on a tiny input (the slow work is never reached, or is a
classical method on a few small images), and checks the house rule: bad input is exit 2 and one line naming the file
or option, and nothing written is half-written, lost or mislabelled."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from syndof import io as sio
from syndof.io import atomic as sio_atomic

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _script(relative: str, monkeypatch):
    """The module of the script ``relative`` (to the repository), its own folder importable (benchmarks/interleave,
    experiments/two_input_s), as running it as ``python relative`` has it."""
    path = REPO / relative
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem + "_s32", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(main, argv: list[str]) -> int:
    """``main(argv)``'s exit status, whether returned or raised (argparse's refusal raises SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    return err[0]


@contextlib.contextmanager
def _interrupted_at(name_part: str):
    """Ctrl-C where an atomic write of a file whose name holds ``name_part`` begins (every writer of syndof.io goes
    through :func:`syndof.io.atomic.atomic_path`, looked up in its own module: replacing ``syndof.io.atomic_path``,
    the package's re-export, reaches no writer since the module became a package)."""
    real = sio_atomic.atomic_path

    @contextlib.contextmanager
    def atomic_path(path, replace=True):
        if name_part in Path(path).name:
            raise KeyboardInterrupt
        with real(path, replace) as tmp:
            yield tmp

    sio_atomic.atomic_path = atomic_path
    try:
        yield
    finally:
        sio_atomic.atomic_path = real


def _syndof_folder(folder: Path, map_shapes: list[tuple[int, int]]) -> Path:
    """A SYNDOF folder of 32×48 images whose σ maps have ``map_shapes`` (H, W)."""
    rng = np.random.default_rng(0)
    for i, shape in enumerate(map_shapes):
        sio.write_image(folder / "image" / f"s{i}.png", (rng.random((32, 48, 3)) * 255).astype(np.uint8))
        sio.write_sigma_map(folder / "blur_map" / f"s{i}.png", (rng.random(shape) * 3).astype(np.float32))
    sio.write_json_atomic(folder / "dataset.json", {"name": "tiny"})
    return folder


# ------------------------------------------------------------------------------------------ experiments/scaled_syndof
def test_y1_scaled_syndof_refuses_a_sigma_map_of_another_size(tmp_path, monkeypatch, capsys):
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    src = _syndof_folder(tmp_path / "syn", [(32, 48), (10, 10)])
    assert scaled.main([str(src), "--scale", "0.5", "--out", str(tmp_path / "half")]) == 2
    line = _error_line(capsys)
    assert str(src / "blur_map" / "s1.png") in line and "10x10" in line and "48x32" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn"]  # nothing at --out, no stage left


def test_y2_scaled_syndof_leaves_the_stage_of_another_run_alone(tmp_path, monkeypatch, capsys):
    scaled = _script("experiments/scaled_syndof.py", monkeypatch)
    src = _syndof_folder(tmp_path / "syn", [(32, 48)])
    other = tmp_path / ".half.tmp"  # the folder the same command, started earlier, is building
    (other / "image").mkdir(parents=True)
    (other / "image" / "s0.png").write_bytes(b"being written")
    assert scaled.main([str(src), "--scale", "0.5", "--out", str(tmp_path / "half")]) == 0
    assert (other / "image" / "s0.png").read_bytes() == b"being written"
    assert sio.read_sigma_map(tmp_path / "half" / "blur_map" / "s0.png").shape == (16, 24)
    assert sio.read_json_object(tmp_path / "half" / "dataset.json")["scaled_from"]["scale"] == 0.5


# -------------------------------------------------------------------------------------- experiments/judge_*.py
def _report(folder: Path, metrics: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps({"metrics": metrics}))


def _judge_folder(folder: Path) -> Path:
    for part, metrics in (("cuhk/native", {"fmax": 0.9, "mae": 0.1}), ("cuhk/ddffnet320", {"mae": 0.2}),
                          ("sharp", {"mean_blur": 0.2}), ("syn", {"mae": 0.05})):
        _report(folder / part, metrics)
    return folder


def test_y3_the_rule_judges_name_a_missing_damaged_or_foreign_metrics_file(tmp_path, monkeypatch, capsys):
    j21 = _script("experiments/judge_21r.py", monkeypatch)
    j19 = _script("experiments/judge_19s.py", monkeypatch)
    _judge_folder(tmp_path / "H8")
    assert j21.main([str(tmp_path), "H8", "R1"]) == 2  # R1 was never evaluated
    assert str(tmp_path / "R1" / "cuhk" / "native" / "metrics.json") in _error_line(capsys)
    sharp = _judge_folder(tmp_path / "R1") / "sharp" / "metrics.json"
    sharp.write_text('{"metrics": {')  # cut short
    assert j21.main([str(tmp_path), "H8", "R1"]) == 2
    assert str(sharp) in _error_line(capsys)
    _report(sharp.parent, {"mae": 0.1})  # another benchmark's report: no mean_blur
    assert j21.main([str(tmp_path), "H8", "R1"]) == 2
    assert str(sharp) in (line := _error_line(capsys)) and "mean_blur" in line
    assert j19.main(["--h8", str(tmp_path / "H8"), "--h8f", str(tmp_path / "R1")]) == 2
    assert str(sharp) in _error_line(capsys)
    assert not (tmp_path / "verdict.json").exists() and not (tmp_path / "R1" / "verdict.json").exists()
    assert _run(j19.main, ["--no-such-flag"]) == 2  # the shared parser: one line, not argparse's usage + error
    assert "--no-such-flag" in _error_line(capsys)


def test_y4_judge_19s_verdict_names_the_folders_it_compared(tmp_path, monkeypatch, capsys):
    j19 = _script("experiments/judge_19s.py", monkeypatch)
    ref, cand = _judge_folder(tmp_path / "R2"), _judge_folder(tmp_path / "r19t")  # rule 19t: --h8 is R2's folder
    assert j19.main(["--h8", str(ref), "--h8f", str(cand)]) == 0
    verdict = sio.read_json_object(cand / "verdict.json")
    assert verdict["folders"] == {"H8": str(ref), "H8F": str(cand)} and verdict["passes"] is True


# ---------------------------------------------------------------------------------- experiments/distill/cache_dmenet
def test_y5_cache_dmenet_refuses_an_empty_list_and_names_a_skipped_file_once(tmp_path, monkeypatch, capsys):
    cache = _script("experiments/distill/cache_dmenet.py", monkeypatch)
    photos = tmp_path / "photos"
    sio.write_image(photos / "a.png", np.full((24, 32, 3), 0.5, np.float32))
    (photos / "b.png").write_bytes(b"not a png")
    empty = tmp_path / "list.txt"
    empty.write_text("# nothing listed yet\n\n")
    out = tmp_path / "cache"
    assert cache.main(["--images", str(photos), "--list", str(empty), "--out", str(out), "--method", "laplacian"]) == 2
    assert f"--list {empty}" in _error_line(capsys)
    assert not out.exists()  # no settings record that a later run would take for a finished cache
    empty.write_text("a\nb\n")
    assert cache.main(["--images", str(photos), "--list", str(empty), "--out", str(out), "--method", "laplacian"]) == 0
    skipped = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and skipped[0].count(str(photos / "b.png")) == 1, skipped
    assert (out / "a.png").is_file() and not (out / "b.png").exists()


# ---------------------------------------------------------------------------------------- benchmarks/train_numerics
def test_y6_train_numerics_names_a_photo_smaller_than_the_crop(tmp_path, monkeypatch):
    numerics = _script("benchmarks/train_numerics.py", monkeypatch)
    sio.write_image(tmp_path / "a.jpg", np.full((20, 20, 3), 0.5, np.float32))
    sio.write_image(tmp_path / "b.jpg", np.full((20, 12, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"b\.jpg: 12x20 px, smaller than the 16² crop"):
        numerics.crops(tmp_path, 2, 16)
    assert numerics.crops(tmp_path, 1, 16).shape == (1, 3, 16, 16)


def test_y7_train_numerics_checks_every_variant_before_the_reference_step(tmp_path, monkeypatch, capsys):
    numerics = _script("benchmarks/train_numerics.py", monkeypatch)
    # the photos folder is empty: a variant checked only when its turn comes would never be reached
    assert numerics.main(["--photos", str(tmp_path), "--variants", "base", "train.no_such_key=1"]) == 2
    assert "--variants train.no_such_key=1" in _error_line(capsys)
    assert numerics.main(["--photos", str(tmp_path), "--variants", "channels_last"]) == 2
    assert "--variants channels_last" in _error_line(capsys)


# ------------------------------------------------------------------------------ benchmarks: outputs (interleave.py)
def test_y8_a_benchmark_output_where_nothing_can_be_written_is_refused_before_the_work(tmp_path, monkeypatch):
    interleave = _script("benchmarks/interleave.py", monkeypatch)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for path, folder in ((blocker / "figures.json", False), (blocker / "x" / "figures.json", False),
                         (blocker / "compare", True)):
        problem = interleave.output_problem(path, "--json", folder=folder)
        assert problem is not None and problem.startswith(f"--json {path}") and "not a folder" in problem, path
    assert interleave.output_problem(tmp_path / "new" / "figures.json", "--json") is None  # made when written
    assert interleave.output_problem(tmp_path / "new", "--out", folder=True) is None


def test_y8_a_figures_file_in_a_folder_still_to_be_made_is_written(tmp_path, monkeypatch, capsys):
    bench = _script("benchmarks/bench_generate.py", monkeypatch)  # one 640×480 sample: the cheapest benchmark run
    figures = tmp_path / "new" / "figures.json"
    assert bench.main(["--count", "1", "--threads", "1", "--json", str(figures)]) == 0  # was lost at the end
    assert sio.read_json_object(figures)["count"] == 1
    assert [p.name for p in figures.parent.iterdir()] == ["figures.json"]  # no temporary left


# -------------------------------------------------------------------------------------- benchmarks/distill_compare
@pytest.mark.skipif(not (SHARED / "cuhk" / "image").is_dir(), reason="needs the shared CUHK test photos")
def test_y9_distill_compare_writes_both_summaries_or_neither(tmp_path, monkeypatch, capsys):
    compare = _script("benchmarks/distill_compare.py", monkeypatch)
    out = tmp_path / "compare"
    args = ["--out", str(out), "--methods", "laplacian", "--sharp-bsds", "0", "--repeats", "1", "--threads", "1"]
    with _interrupted_at("summary.md"):  # Ctrl-C as the second file is being written
        assert compare.main(args) == 130
    assert not out.exists() or not any(out.iterdir())  # no summary.json alone, which would refuse the rerun
    capsys.readouterr()
    assert compare.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "summary.md"]
    assert "laplacian@native" in sio.read_json_object(out / "summary.json")["dbd"]


# ---------------------------------------------------------------------------------- experiments/validation_renders
def test_y10_validation_renders_does_not_leave_its_links_behind(tmp_path, monkeypatch, capsys):
    renders = _script("experiments/validation_renders.py", monkeypatch)
    shared, out = tmp_path / "shared", tmp_path / "gsyn_val16"
    (shared / "photos" / "bsds500" / "val").mkdir(parents=True)
    (shared / "photos" / "bsds500" / "train").mkdir()
    assert renders.main(["--shared", str(shared), "--out", str(out)]) == 2  # no photos: named, nothing made
    assert f"--shared {shared}" in _error_line(capsys)
    for i in range(20):
        sio.write_image(shared / "photos" / "bsds500" / "train" / f"{i}.png", np.zeros((8, 8, 3), np.float32))

    def interrupted(argv):
        raise KeyboardInterrupt  # Ctrl-C before generate wrote anything

    monkeypatch.setattr("syndof.generate.main", interrupted)
    assert renders.main(["--shared", str(shared), "--out", str(out)]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]  # no gsyn_val16_src refusing the rerun


# ------------------------------------------------------------------------- experiments/two_input_s, feature_head
@pytest.mark.parametrize("script, argv", [
    ("two_input_s.py", ["--shard", "x"]), ("two_input_s.py", ["--shard", "0/0"]), ("feature_head.py", ["--shard", "1"]),
    ("feature_head.py", ["--shard", "2/2"]), ("two_input_s.py", ["--flips", "3"])])
def test_y11_shard_and_flips_are_checked_by_the_parser(tmp_path, monkeypatch, capsys, script, argv):
    module = _script(f"experiments/{script}", monkeypatch)
    monkeypatch.setattr(module, "cache", lambda *a, **k: pytest.fail("cache ran with a bad option"))
    assert _run(module.main, ["cache", "--out", str(tmp_path / "run"), *argv]) == 2
    assert argv[0] in _error_line(capsys)


# --------------------------------------------------------------------------------- experiments/build_training_set
def test_y12_build_training_set_names_a_damaged_screen_cache(tmp_path, monkeypatch, capsys):
    build = _script("experiments/build_training_set.py", monkeypatch)
    for split in ("train", "val", "test"):
        (tmp_path / "shared" / "data" / "photos" / "bsds500" / split).mkdir(parents=True)
    cache = tmp_path / "out" / "bsds_screen_t1.5.json"
    cache.parent.mkdir()
    cache.write_text('{"train/1.jpg": ')
    assert build.main(["--shared", str(tmp_path / "shared"), "--out", str(tmp_path / "out"), "--screen-only"]) == 2
    assert str(cache) in _error_line(capsys)


# ------------------------------------------------------------------------------------- benchmarks/distill_ablation
def test_y13_distill_ablation_refuses_a_model_name_given_twice(tmp_path, monkeypatch, capsys):
    ablation = _script("benchmarks/distill_ablation.py", monkeypatch)
    argv = ["--models", "d0=a.safetensors", "d1=b.safetensors", "d0=c.safetensors", "--base", "d0",
            "--synthetic", str(tmp_path / "none"), "--out", str(tmp_path / "ablation.json")]
    assert ablation.main(argv) == 2
    line = _error_line(capsys)
    assert "--models" in line and "d0" in line and "twice" in line
    assert not (tmp_path / "ablation.json").exists()


# ------------------------------------------------------------------------------------------ experiments/distill/split
def test_y14_split_writes_both_parts_or_neither(tmp_path, monkeypatch, capsys):
    split = _script("experiments/distill/split.py", monkeypatch)
    for i in range(6):
        (tmp_path / f"p{i}.png").write_bytes(b"")  # only the names are split
    prefix = tmp_path / "lists" / "split"
    argv = ["--images", str(tmp_path), "--glob", "*.png", "--val-count", "2", "--out", str(prefix)]
    with _interrupted_at("_val.txt"):  # Ctrl-C as the second part is being written
        assert split.main(argv) == 130
    assert not Path(f"{prefix}_train.txt").exists()  # a train part alone refused every rerun ("exists")
    capsys.readouterr()
    assert split.main(argv) == 0
    train, val = (Path(f"{prefix}_{part}.txt").read_text().splitlines()[1:] for part in ("train", "val"))
    assert len(train) == 4 and len(val) == 2 and not set(train) & set(val)
