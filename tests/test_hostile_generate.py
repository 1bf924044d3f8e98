"""Hostile / careless use of ``syndof.generate`` (docs/reliability.md §3): D7, D16–D20."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hostile_helpers import assert_usage_error, digests, run_main
from syndof import generate as gen
from syndof import io as sio
from syndof import layout
from syndof.sample import generate_sample
from syndof.scenes import procedural_scene

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def rgbd(tmp_path) -> tuple[Path, Path]:
    """2 tiny RGB-D pairs: images/{a,b}.png + depths/{a,b}.npy (mm)."""
    images, depths = tmp_path / "images", tmp_path / "depths"
    depths.mkdir()
    for i, stem in enumerate("ab"):
        img, depth = procedural_scene(np.random.default_rng(i), 40, 48)
        sio.write_image(images / f"{stem}.png", img)
        np.save(depths / f"{stem}.npy", depth)
    return images, depths


def _generate(rgbd, out: Path, capsys, *extra):
    images, depths = rgbd
    return run_main(gen.main, ["--out", out, "--images", images, "--depths", depths, "--count", "2", "--no-progress",
                               *extra], capsys)


# ------------------------------------------------------------------------------------------------------------ medium
def test_d16_invalid_max_coc_is_refused_before_anything_is_written(rgbd, tmp_path, capsys):
    out = tmp_path / "g"
    assert_usage_error(*_generate(rgbd, out, capsys, "--max-coc", "0")[::2], "--max-coc")
    assert not out.exists()
    rc, text, _ = _generate(rgbd, out, capsys)  # the folder is not poisoned for a correct run
    assert rc == 0 and "2 written" in text


@pytest.mark.parametrize("max_coc", [9.7, 2.5, True, float("nan")])
def test_s6_a_max_coc_that_is_no_whole_number_is_refused_not_truncated(tmp_path, max_coc):
    """§19 S6: generate(max_coc=9.7) passed the check ("must be an integer in 2..255"), rendered with a 9 px grid
    and recorded max_coc 9 in dataset.json, exit 0; generate_sample(max_coc=9.7) failed deep in the renderer."""
    out = tmp_path / "g"
    with pytest.raises(ValueError, match="--max-coc must be an integer in 2..255"):
        gen.generate(out, count=1, max_coc=max_coc, max_size=32, progress=False)
    assert not out.exists()
    image, depth = procedural_scene(np.random.default_rng(0), 24, 32)
    with pytest.raises(ValueError, match="^max_coc must be an integer in 2..255"):
        generate_sample(image, depth, np.random.default_rng(0), max_coc=max_coc)
    assert generate_sample(image, depth, np.random.default_rng(0), max_coc=9.0).sigma.max() <= 2.0 + 1e-6


@pytest.mark.parametrize("flags, name", [(["--seed", "99"], "seed"), (["--kernel", "disc"], "kernel"),
                                         (["--noise"], "noise"), (["--jpeg-quality", "30"], "jpeg_quality"),
                                         (["--max-size", "32"], "max_size")])
def test_d20_rerun_with_other_settings_is_refused_and_relabels_nothing(rgbd, tmp_path, capsys, flags, name):
    out = tmp_path / "g"
    assert _generate(rgbd, out, capsys, "--seed", "7")[0] == 0
    before = digests(out)
    rc, _, err = _generate(rgbd, out, capsys, "--seed", "7", *flags)
    assert_usage_error(rc, err, str(out), name, "--out")
    assert digests(out) == before
    rc, text, _ = _generate(rgbd, out, capsys, "--seed", "7")  # the same options complete it, as before
    assert rc == 0 and "0 written, 2 skipped" in text and digests(out) == before


@pytest.mark.parametrize("key, old, flags", [("max_coc", 29, ["--max-coc", "9"]), ("seed", 7, ["--seed", "8"]),
                                              ("kernel", "gaussian", ["--kernel", "disc"])])
def test_s7_a_dataset_json_edited_to_other_settings_does_not_let_other_samples_in(rgbd, tmp_path, capsys, key, old,
                                                                                 flags):
    """§19 S7: dataset.json edited by hand (29 → 9) and the edited settings given: "1 written, 2 skipped", a max_coc
    9 sample beside max_coc 29 ones, the folder labelled 9 (σ_max 2 px for all). The samples' meta is checked too."""
    out = tmp_path / "g"
    assert _generate(rgbd, out, capsys, "--seed", "7")[0] == 0
    ds = json.loads((out / "dataset.json").read_text())
    assert ds[key] == old
    value = {"max_coc": 9, "seed": 8, "kernel": "disc"}[key]
    sio.write_json_atomic(out / "dataset.json", {**ds, key: value})
    before = digests(out)
    rc, _, err = _generate(rgbd, out, capsys, "--seed", "7", *flags, "--count", "3")
    assert_usage_error(rc, err, str(out), f"{key} {old!r} in 000000_a.json", "--out")
    assert digests(out) == before


def test_d20_legacy_dataset_json_is_checked_against_the_samples(rgbd, tmp_path, capsys):
    out = tmp_path / "g"
    assert _generate(rgbd, out, capsys, "--seed", "7")[0] == 0
    sio.write_json_atomic(out / "dataset.json", {"format": "syndof", "max_coc": 29, "kernel": "gaussian"})
    rc, _, err = _generate(rgbd, out, capsys, "--seed", "99")
    assert_usage_error(rc, err, "seed 7")
    assert json.loads((out / "dataset.json").read_text()) == {"format": "syndof", "max_coc": 29, "kernel": "gaussian"}


# --------------------------------------------------------------------------------------------------------------- low
@pytest.mark.parametrize("flags", [["--max-size", "-5"], ["--max-size", "1"], ["--threads", "-1"],
                                   ["--workers", "-1"], ["--jpeg-quality", "0"], ["--device", "tpu"]])
def test_d17_d7_bad_options_refused_up_front(rgbd, tmp_path, capsys, flags):
    out = tmp_path / "g"
    assert_usage_error(*_generate(rgbd, out, capsys, *flags)[::2], flags[0])
    assert not out.exists()


def test_d18_each_warning_is_printed_once(tmp_path):
    """Needs a real process: the duplicate came from basicConfig's root handler, which pytest replaces."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "bad.png").write_bytes(b"not an image")
    sio.write_image(images / "good.png", np.random.default_rng(0).random((40, 48, 3)).astype(np.float32))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "syndof.generate", "--out", str(tmp_path / "g"), "--images",
                           str(images), "--count", "1", "--no-progress"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.stderr.count("bad.png") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_d19_a_concurrent_runs_temp_cleanup_does_not_stop_this_run(rgbd, tmp_path, monkeypatch):
    images, depths = rgbd
    out = tmp_path / "g"
    real, raced = gen.write_sample, []

    def racing(out_dir, stem, result, meta):
        if not raced:  # the other process's remove_stray_temps runs while this one is inside atomic_path
            raced.append(stem)
            paths = layout.sample_paths(out_dir, stem)
            with sio.atomic_path(paths["image"]) as tmp:
                tmp.write_bytes(b"partial")
                layout.remove_stray_temps(paths)
        return real(out_dir, stem, result, meta)

    monkeypatch.setattr(gen, "write_sample", racing)  # where run_job looks it up
    summary = gen.generate(out, images=images, depths=depths, count=1, progress=False)
    assert raced and (summary.written, summary.failed) == (1, 0)
    assert layout.is_complete(out, raced[0]) and not list(out.rglob("*.tmp"))
