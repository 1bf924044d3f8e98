"""What ``syndof.generate`` and ``syndof.demo`` write over: reruns with other inputs, --out among the inputs, foreign
folders, options checked before the work, an existing contact sheet (tiny 64×48 inputs, 2 samples)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from hostile_helpers import assert_usage_error, count_walks, digests, run_main
from syndof import demo
from syndof import generate as gen
from syndof import io as sio
from syndof.layout import sample_paths
from syndof.recipe import GENERATOR, RECIPE_KEYS
from syndof.scenes import procedural_scene

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photos(folder: Path, seeds, depths: Path | None = None) -> Path:
    for i, seed in enumerate(seeds):
        img, depth = procedural_scene(np.random.default_rng(seed), 48, 64)
        sio.write_image(folder / f"{'abc'[i]}.png", img)
        if depths is not None:
            depths.mkdir(parents=True, exist_ok=True)
            np.save(depths / f"{'abc'[i]}.npy", depth)
    return folder


@pytest.fixture
def rgbd(tmp_path) -> tuple[Path, Path]:
    return _photos(tmp_path / "imgs", (0, 1), tmp_path / "deps"), tmp_path / "deps"


def _gen(capsys, out, *argv):
    return run_main(gen.main, ["--out", out, "--no-progress", "--workers", "1", *argv], capsys)


def _first(rgbd, tmp_path, capsys) -> Path:
    images, depths = rgbd
    out = tmp_path / "g1"
    rc, text, err = _gen(capsys, out, "--images", images, "--depths", depths)
    assert rc == 0 and "2 written" in text, err
    return out


# ---------------------------------------------------------------------------------------- 1. reruns with other inputs
@pytest.mark.parametrize("case", ["other_images", "random_depth", "depth_scale", "more_photos"])
def test_rerun_with_other_inputs_is_refused(rgbd, tmp_path, capsys, case):
    images, depths = rgbd
    out = _first(rgbd, tmp_path, capsys)
    before = digests(out)
    if case == "other_images":
        argv, name = ["--images", _photos(tmp_path / "imgs2", (2, 3, 4))], "images"
    elif case == "random_depth":
        argv, name = ["--images", images], "depths"
    elif case == "depth_scale":
        argv, name = ["--images", images, "--depths", depths, "--depth-scale", "0.001"], "depth_scale"
    else:
        _photos(tmp_path / "imgs", (0, 1, 5))  # a third photo added: sample i would use another source
        argv, name = ["--images", images], "n_sources"
    rc, _, err = _gen(capsys, out, *argv)
    assert_usage_error(rc, err, str(out), name, "--out")
    assert digests(out) == before


@pytest.mark.parametrize("with_depths", [False, True])
def test_s3_a_rerun_after_a_photo_was_renamed_is_refused_not_mixed(rgbd, tmp_path, capsys, with_depths):
    """§19 S3: a.png renamed c.png (the count kept): the rerun wrote 000000_b and 000001_c beside 000000_a and
    000001_b, exit 0: two samples per index, two runs in one manifest."""
    images, depths = rgbd
    argv = ["--images", images, *(["--depths", depths] if with_depths else [])]
    out = tmp_path / "g1"
    rc, text, err = _gen(capsys, out, *argv)
    assert rc == 0 and "2 written" in text, err
    before = digests(out)
    (images / "a.png").rename(images / "c.png")
    if with_depths:
        (depths / "a.npy").rename(depths / "c.npy")
    rc, _, err = _gen(capsys, out, *argv)
    assert_usage_error(rc, err, str(out), "renamed", "--out")
    assert digests(out) == before
    (images / "c.png").rename(images / "a.png")  # the same names again: it resumes
    if with_depths:
        (depths / "c.npy").rename(depths / "a.npy")
    rc, text, err = _gen(capsys, out, *argv)
    assert rc == 0 and "0 written, 2 skipped" in text, err


@pytest.mark.parametrize("changed", ["image", "depth"])
def test_l6_a_rerun_after_a_source_file_changed_under_its_name_is_refused_not_counted_done(rgbd, tmp_path, capsys,
                                                                                           changed):
    """§19 Left (L6): a.png (or a.npy) rewritten with other content under the same name, the same command rerun
    with --count 4: "2 written, 2 skipped", samples 0 and 2 of the old photo beside 1 and 3, both under the name a
    (only names were digested, S3). Each sample's meta records its source files' SHA-256 (``source_sha256``); the
    rerun is refused before anything is written, naming the file and the sample; restored, it resumes."""
    import hashlib

    images, depths = rgbd
    out = _first(rgbd, tmp_path, capsys)
    meta = json.loads((out / "meta" / "000000_a.json").read_text())
    assert meta["source_sha256"] == {"image": hashlib.sha256((images / "a.png").read_bytes()).hexdigest(),
                                     "depth": hashlib.sha256((depths / "a.npy").read_bytes()).hexdigest()}
    before = digests(out)
    target = images / "a.png" if changed == "image" else depths / "a.npy"
    kept = target.read_bytes()
    img, depth = procedural_scene(np.random.default_rng(9), 48, 64)
    if changed == "image":
        sio.write_image(target, img)
    else:
        np.save(target, depth)
    rc, _, err = _gen(capsys, out, "--images", images, "--depths", depths, "--count", "4")
    assert_usage_error(rc, err, str(out), f"{target} changed since sample 000000_a was made from it", "--out")
    assert digests(out) == before
    target.write_bytes(kept)  # the same content again: it resumes
    rc, text, err = _gen(capsys, out, "--images", images, "--depths", depths, "--count", "4")
    assert rc == 0 and "2 written, 2 skipped" in text, err


def test_rerun_with_the_same_inputs_resumes_and_records_them(rgbd, tmp_path, capsys, monkeypatch):
    images, depths = rgbd
    out = _first(rgbd, tmp_path, capsys)
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["images"] == str(images.resolve()) and ds["depths"] == str(depths.resolve())
    assert ds["depth_scale"] is None and ds["n_sources"] == 2 and ds["generator"] == "syndof.generate"
    before = digests(out)
    monkeypatch.chdir(tmp_path)  # the same folders, spelt relatively
    rc, text, _ = _gen(capsys, "g1", "--images", "imgs", "--depths", "deps", "--count", "2")
    assert rc == 0 and "0 written, 2 skipped" in text and digests(out) == before


def test_legacy_dataset_json_without_inputs_still_completes(rgbd, tmp_path, capsys):
    images, depths = rgbd
    out = _first(rgbd, tmp_path, capsys)
    legacy = {"format": "syndof", "max_coc": 29, "kernel": "gaussian", "seed": 0, "noise": False,
              "jpeg_quality": None, "max_size": None, "generator": "syndof.generate",
              "sigma_encoding": "uint16 round(10*sigma)"}
    sio.write_json_atomic(out / "dataset.json", legacy)
    rc, text, err = _gen(capsys, out, "--images", images, "--depths", depths, "--count", "3")
    assert rc == 0 and "1 written, 2 skipped" in text, err
    # the inputs of the earlier samples are unknown: not claimed afterwards
    assert json.loads((out / "dataset.json").read_text()) == legacy


# ------------------------------------------------------------------------------------------- 2. --out among the inputs
@pytest.mark.parametrize("case", ["same", "inside", "contains", "depths"])
def test_out_overlapping_an_input_folder_is_refused(rgbd, tmp_path, capsys, case):
    images, depths = rgbd
    if case == "same":
        out, argv, name = images, ["--images", images], "--images"
    elif case == "inside":
        out, argv, name = images / "sub", ["--images", images], "--images"
    elif case == "contains":
        out = _first(rgbd, tmp_path, capsys)
        argv, name = ["--images", out / "image"], "--images"
    else:
        out, argv, name = depths, ["--images", images, "--depths", depths], "--depths"
    before = {f: digests(f) for f in (images, depths, tmp_path / "g1") if f.is_dir()}
    rc, _, err = _gen(capsys, out, *argv)
    assert_usage_error(rc, err, "--out", name)
    assert {f: digests(f) for f in before} == before
    assert not (images / "sub").exists() and not (images / "dataset.json").exists()


# ------------------------------------------------------------------------------------------------- 3. foreign folders
@pytest.mark.parametrize("dataset", [{"format": "other"}, None, "not json"])
def test_foreign_non_empty_out_is_refused_and_kept(rgbd, tmp_path, capsys, dataset):
    images, _ = rgbd
    out = tmp_path / "theirs"
    (out / "image").mkdir(parents=True)
    (out / "notes.txt").write_text("mine\n")
    (out / "image" / "000000_q0.png").write_bytes(b"their photo")
    if isinstance(dataset, dict):
        (out / "dataset.json").write_text(json.dumps(dataset))
    elif dataset is not None:
        (out / "dataset.json").write_text(dataset)
    before = digests(out)
    rc, _, err = _gen(capsys, out, "--images", images)
    assert_usage_error(rc, err, "--out", str(out))
    assert digests(out) == before


def test_empty_existing_out_is_used_and_a_file_is_refused(rgbd, tmp_path, capsys):
    images, _ = rgbd
    (tmp_path / "empty").mkdir()
    rc, text, _ = _gen(capsys, tmp_path / "empty", "--images", images, "--count", "1")
    assert rc == 0 and "1 written" in text
    (tmp_path / "file").write_text("x")
    assert_usage_error(*_gen(capsys, tmp_path / "file", "--images", images)[::2], "--out")
    assert (tmp_path / "file").read_text() == "x"


# -------------------------------------------------------------------------------------------- 4., 5. options up front
@pytest.mark.parametrize("flags", [["--depth-scale", "-5"], ["--depth-scale", "0"], ["--depth-scale", "nan"],
                                   ["--depth-scale", "inf"], ["--max-coc", "100000"], ["--max-coc", "256"],
                                   ["--seed", "-1"], ["--max-side", "4"], ["--max-size", "4"]])
def test_bad_options_are_refused_before_anything_is_written(rgbd, tmp_path, capsys, flags):
    images, depths = rgbd
    out = tmp_path / "g"
    rc, _, err = _gen(capsys, out, "--images", images, "--depths", depths, *flags)
    line = assert_usage_error(rc, err, flags[0])
    assert flags[0] != "--max-side" or "--max-size" not in line
    assert not out.exists()


@pytest.mark.parametrize("kw, name", [({"depth_scale": float("nan")}, "--depth-scale"), ({"seed": -1}, "--seed"),
                                      ({"max_coc": 100000}, "--max-coc")])
def test_generate_api_checks_options_before_writing(rgbd, tmp_path, kw, name):
    images, depths = rgbd
    with pytest.raises(ValueError, match=name):
        gen.generate(tmp_path / "g", images=images, depths=depths, progress=False, **kw)
    assert not (tmp_path / "g").exists()


def test_generate_max_side_0_is_no_limit_as_in_the_demo_and_the_api(rgbd, tmp_path, capsys):
    """``--max-side`` is one flag (syndof.cli.add_source_max_side) in generate and the demo: 0 = no limit, as the
    demo's help and generate()'s API had it (generate's own parser refused 0): the same files as no --max-side."""
    images, depths = rgbd
    rc, text, err = _gen(capsys, tmp_path / "a", "--images", images, "--depths", depths, "--max-side", "0")
    assert rc == 0 and "2 written" in text, err
    rc, text, err = _gen(capsys, tmp_path / "b", "--images", images, "--depths", depths)
    assert rc == 0 and "2 written" in text, err
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


# ------------------------------------------------------------------------------------------ 6. the demo's contact sheet
def test_demo_refuses_a_contact_sheet_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "contact_sheet.png").write_bytes(b"somebody's sheet")
    rc, _, err = run_main(demo.main, ["--out", out, "--count", "1", "--max-side", "64"], capsys)
    assert_usage_error(rc, err, str(out / "contact_sheet.png"))
    assert (out / "contact_sheet.png").read_bytes() == b"somebody's sheet"
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png"]  # refused before the work


@pytest.mark.parametrize("flags", [["--seed", "-1"], ["--seed", "x"], ["--max-side", "4"], ["--max-side", "-1"],
                                   ["--max-size", "-2"], ["--max-side", "1.5"]])
def test_demo_refuses_bad_seed_and_max_side_before_anything(tmp_path, capsys, flags):
    """The demo's --seed and --max-side are generate's (syndof.cli.add_seed / add_source_max_side): a negative seed
    or a side under generate's minimum is one line naming the option as typed, exit 2, before any folder is made (it
    parsed any integer and left the check to generate(), after the contact-sheet check)."""
    out = tmp_path / "demo"
    rc, _, err = run_main(demo.main, ["--out", out, "--count", "1", *flags], capsys)
    line = assert_usage_error(rc, err, f"argument {flags[0]}:")
    assert flags[0] != "--max-side" or "--max-size" not in line
    assert not out.exists()


def test_demo_replaces_its_own_sheet_and_a_legacy_one(tmp_path):
    out = tmp_path / "demo"
    sheet = demo.run_synthesis_demo(out, count=1, max_size=64, progress=False)
    assert sheet.is_file() and demo.sheet_made_by_demo(out)
    assert demo.run_synthesis_demo(out, count=1, max_size=64, progress=False) == sheet
    (out / demo.MARKER).unlink()  # a demo folder from before the marker: only the sheet and syndof/
    assert demo.sheet_made_by_demo(out)
    assert demo.run_synthesis_demo(out, count=1, max_size=64, progress=False) == sheet
    (out / demo.MARKER).unlink()
    (out / "notes.txt").write_text("mine")  # no longer only the demo's files, and the sheet is not recorded
    with pytest.raises(ValueError, match="contact_sheet.png"):
        demo.run_synthesis_demo(out, count=1, max_size=64, progress=False)


def test_one_folder_for_photos_and_depths_never_renders_a_depth_map_as_a_photo(tmp_path, capsys):
    """--images and --depths naming one folder (a.jpg + its 16-bit a.png depth; Sintel's x.png + x.dpt): each
    photo is rendered once with its depth; the depth PNG is neither a photo nor a photo's own depth."""
    from syndof.scenes import folder_sources

    both = tmp_path / "both"
    both.mkdir()
    img, depth = procedural_scene(np.random.default_rng(0), 48, 64)
    sio.write_image(both / "a.jpg", img)
    sio.write_bytes_atomic(both / "a.png", sio.encode_png(np.round(depth).astype(np.uint16)))
    sio.write_image(both / "x.png", img)
    np.save(both / "x.npy", depth)
    pairs = sorted((Path(s.image_path).name, Path(s.depth_path).name) for s in folder_sources(both, both))
    assert pairs == [("a.jpg", "a.png"), ("x.png", "x.npy")]
    rc, out, err = _gen(capsys, tmp_path / "out", "--images", both, "--depths", both)
    assert rc == 0 and "2 written, 0 skipped, 0 failed" in out, err


def test_a_photo_without_its_depth_file_is_refused_not_given_random_depth(tmp_path):
    """--depths given but no file with the photo's stem: the source says so with a flag (not a ``.*`` path suffix
    read back as a sentinel) and loading it is an InputError naming the stem, never random depth."""
    from syndof.scenes import folder_sources

    imgs, deps = tmp_path / "imgs", tmp_path / "deps"
    imgs.mkdir()
    deps.mkdir()
    img, depth = procedural_scene(np.random.default_rng(0), 48, 64)
    sio.write_image(imgs / "a.png", img)
    sio.write_image(imgs / "b.png", img)
    np.save(deps / "a.npy", depth)
    a, b = folder_sources(imgs, deps)
    assert not a.depth_missing and b.depth_missing and b.has_depth
    assert a.load(np.random.default_rng(0))[1].shape == (48, 64)
    with pytest.raises(sio.InputError, match="no depth file with stem 'b'"):
        b.load(np.random.default_rng(0))


def test_two_depth_files_for_one_photo_are_refused_not_guessed(rgbd, tmp_path, capsys):
    """deps/a.npy and deps/a.png: the pairing is ambiguous; the photo is skipped with a line naming both files
    (it was rendered with a.npy, silently, whatever a.png held)."""
    imgs, deps = rgbd
    sio.write_bytes_atomic(deps / "a.png", sio.encode_png(np.full((48, 64), 5000, np.uint16)))
    rc, out, err = _gen(capsys, tmp_path / "out", "--images", imgs, "--depths", deps)
    assert "1 written, 0 skipped, 1 failed" in out, err
    line = [x for x in err.splitlines() if "failed" in x and "a.png" in x]
    assert len(line) == 1 and "a.npy" in line[0] and "several depth files" in line[0], err
    assert not list((tmp_path / "out" / "meta").glob("*_a.json"))


def test_demo_threads_option_reaches_the_renderer(tmp_path, capsys, monkeypatch):
    """``syndof.demo --threads 2`` rendered on 1 thread: generate's default (1) replaced the option silently."""
    import torch

    seen = []
    real = gen.run_job
    monkeypatch.setattr(gen, "run_job", lambda job: (seen.append(torch.get_num_threads()), real(job))[1])
    rc, out, err = run_main(demo.main, ["--out", tmp_path / "d", "--count", "1", "--max-side", "48", "--threads",
                                        "2"], capsys)
    assert rc == 0, err
    assert seen == [2]


def test_partial_sample_beyond_a_smaller_rerun_count_is_reported(tmp_path, capsys, caplog):
    """A run killed while writing sample 2 (image/ written, the rest not), rerun with --count 2: it said "0 written,
    2 skipped" and exited 0, leaving image/ and blur_map/ unpaired (the training reader refuses the folder) without
    a word. Now one line names the sample and the --count that finishes it."""
    out = tmp_path / "out"
    rc, _, err = _gen(capsys, out, "--count", "3", "--max-side", "48")
    assert rc == 0, err
    stem = sorted(p.stem for p in (out / "meta").glob("*.json"))[2]
    for key, path in sample_paths(out, stem).items():
        if key != "image":
            path.unlink()
    caplog.clear()
    rc, out_text, err = _gen(capsys, out, "--count", "2", "--max-side", "48")
    assert rc == 0 and "0 written, 2 skipped, 0 failed" in out_text, err
    lines = [r.getMessage() for r in caplog.records if stem in r.getMessage()]
    assert len(lines) == 1 and "incomplete" in lines[0] and "--count 3" in lines[0], lines
    caplog.clear()
    rc, out_text, err = _gen(capsys, out, "--count", "3", "--max-side", "48")
    assert "1 written" in out_text and not any("incomplete" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("with_images", [False, True])
def test_depth_scale_without_depths_is_refused_not_ignored(rgbd, tmp_path, capsys, with_images):
    """``--depth-scale 1000`` without ``--depths`` ran with random depth, the factor silently dropped (dataset.json
    recorded depth_scale null)."""
    images, _ = rgbd
    out = tmp_path / "g"
    extra = ["--images", images] if with_images else []
    rc, _, err = _gen(capsys, out, *extra, "--count", "1", "--max-side", "48", "--depth-scale", "1000")
    assert_usage_error(rc, err, "--depth-scale", "--depths")
    assert not out.exists()


def test_two_runs_started_together_with_other_seeds_do_not_mix(tmp_path, capsys, monkeypatch):
    """Two generate runs into one new --out, started together with other --seed (shards of a script with a typo):
    both passed the recipe check before either wrote dataset.json, and the folder ended with samples of both seeds
    under one dataset.json. The check is now repeated under a lock with the dataset.json write: here the other run
    writes its dataset.json right after this run's first check, and this run is refused."""
    out = tmp_path / "g"
    real = gen.check_recipe
    calls = []

    def other_run_wrote_between(out_dir, recipe):
        calls.append(1)
        real(out_dir, recipe)
        if len(calls) == 1:
            out_dir.mkdir(parents=True, exist_ok=True)
            sio.write_json_atomic(out_dir / "dataset.json", {**{k: recipe[k] for k in RECIPE_KEYS if k in recipe},
                                                             "format": "syndof", "generator": GENERATOR,
                                                             "seed": 99})

    monkeypatch.setattr(gen, "check_recipe", other_run_wrote_between)  # where generate() looks it up
    rc, _, err = _gen(capsys, out, "--count", "1", "--max-side", "48", "--seed", "1")
    assert_usage_error(rc, err, "seed 99 (now 1)")
    assert json.loads((out / "dataset.json").read_text())["seed"] == 99
    assert not (out / "meta").exists()


@pytest.mark.parametrize("count", ["0", "1000000", "1000000000"])
def test_count_beyond_six_digit_names_is_refused_in_one_line(tmp_path, capsys, count):
    """Stems are {index:06d}_{source}: --count 1e9 wrote dataset.json and spent minutes listing jobs, and above a
    million the name order stops being the index order."""
    rc, _, err = run_main(gen.main, ["--out", str(tmp_path / "o"), "--count", count], capsys)
    assert_usage_error(rc, err, "--count")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="--count must be 1..999,999"):
        gen.generate(tmp_path / "p", count=int(count))


# ------------------------------------------------------------------------ left items of the seventh review (§17)
def test_h84_generate_reports_each_image_name_in_images_that_is_no_file(tmp_path, capsys, caplog):
    """A link loop, a link to nothing or a FIFO named like a photo in ``--images`` was left out of the sources
    unsaid: one ``skipped PATH: reason`` line each (after the checks: a refused run says one line), the rest
    rendered; a folder of nothing else is one error line that says why."""
    import os

    images = _photos(tmp_path / "imgs", (0, 1))
    (images / "x.png").symlink_to("y.png")
    (images / "y.png").symlink_to("x.png")
    (images / "c.png").symlink_to("nowhere.png")
    os.mkfifo(images / "d.png")
    rc, text, err = _gen(capsys, tmp_path / "g", "--images", images)
    assert rc == 0 and "2 written" in text, err
    loop = "a symbolic link loop (too many levels of symbolic links)"
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert skipped == [f"skipped {images / 'c.png'}: a symbolic link to nothing",
                       f"skipped {images / 'd.png'}: not a regular file (a FIFO, socket or device)",
                       f"skipped {images / 'x.png'}: {loop}", f"skipped {images / 'y.png'}: {loop}"], err
    caplog.clear()
    rc, _, err = _gen(capsys, tmp_path / "g", "--images", images, "--seed", "1")  # refused: one line, no skips
    assert_usage_error(rc, err, "seed")
    assert not any(r.getMessage().startswith("skipped") for r in caplog.records), caplog.records
    for name in ("a.png", "b.png"):
        (images / name).unlink()
    rc, _, err = _gen(capsys, tmp_path / "g2", "--images", images)
    assert_usage_error(rc, err, f"no input images found in {images}", "4 image name(s) there are no file to read",
                       f"e.g. {images / 'c.png'}: a symbolic link to nothing")
    assert not (tmp_path / "g2").exists()


# ------------------------------------------------------------------------------------ left items of §17 (§18)
def test_h93_the_summary_counts_the_inputs_skipped_before_the_run(tmp_path, capsys):
    """``generate``'s summary counts samples, so a run whose ``--images`` held two image names that are no file (each
    said on its own ``skipped`` line) ended "2 written, 0 skipped, 0 failed": the summary now adds the inputs
    skipped before the run; a rerun (both samples complete) says so apart from its 2 skipped samples, and a run
    without such names keeps the plain line."""
    import os

    images = _photos(tmp_path / "imgs", (0, 1))
    (images / "c.png").symlink_to("nowhere.png")
    os.mkfifo(images / "d.png")
    rc, text, err = _gen(capsys, tmp_path / "g", "--images", images)
    assert rc == 0, err
    assert text.strip().splitlines()[-1] == ("2 written, 0 skipped, 0 failed; 2 input(s) skipped before the run; "
                                             "manifest: 2 samples")
    rc, text, err = _gen(capsys, tmp_path / "g", "--images", images)  # resume: both samples already complete
    assert rc == 0, err
    assert text.strip().splitlines()[-1] == ("0 written, 2 skipped, 0 failed; 2 input(s) skipped before the run; "
                                             "2 already complete, 0 over σ_max; manifest: 2 samples")
    for name in ("c.png", "d.png"):
        (images / name).unlink()
    rc, text, err = _gen(capsys, tmp_path / "g3", "--images", images)
    assert rc == 0 and text.strip().splitlines()[-1] == "2 written, 0 skipped, 0 failed; manifest: 2 samples", err
    assert gen.Summary(written=1, inputs_skipped=1).line() == "1 written, 0 skipped, 0 failed; 1 input(s) skipped " \
                                                              "before the run"


# --------------------------------------------------------------------------------- small leftovers (§25)
def test_m2_generate_prints_one_summary_on_stdout_and_none_on_stderr(tmp_path, capsys, caplog):
    """The summary was printed twice: the counts on stdout and a longer line (already complete, over σ_max, the
    manifest's count) logged on stderr. Now stdout is that one line, and no log line repeats it."""
    images = _photos(tmp_path / "imgs", (0, 1))
    out = tmp_path / "g"
    with caplog.at_level(logging.INFO):
        rc, text, err = _gen(capsys, out, "--images", images, "--count", "2")
        assert rc == 0, err
        assert text.splitlines() == ["2 written, 0 skipped, 0 failed; manifest: 2 samples"]
        (out / "image" / "000001_b.png").unlink()  # sample 1 incomplete: rendered again, sample 0 skipped
        rc, text, err = _gen(capsys, out, "--images", images, "--count", "2")
    assert rc == 0, err
    assert text.splitlines() == ["1 written, 1 skipped, 0 failed; 1 already complete, 0 over σ_max; "
                                 "manifest: 2 samples"]
    assert not [r for r in caplog.records if "written," in r.getMessage() or "manifest:" in r.getMessage()]
    assert "manifest:" not in err


# --------------------------------------------------------------------------------- leftovers of §26 (§31)
def test_w1_generate_images_lists_the_folder_once(tmp_path, capsys, caplog, monkeypatch):
    """§26 Left: ``--images`` was walked twice, once for the photos (``folder_sources``) and once for the names where
    no file can be read (``unlisted_images``): two walks can disagree on a name made or removed between them (a
    photo rendered and also reported skipped, or in neither). Now one walk gives both; lines and counts unchanged."""
    import os

    walks = count_walks(monkeypatch)
    images = _photos(tmp_path / "imgs", (0, 1))
    (images / "c.png").symlink_to("nowhere.png")
    os.mkfifo(images / "d.png")
    rc, text, err = _gen(capsys, tmp_path / "g", "--images", images)
    assert rc == 0 and text.strip().splitlines()[-1] == ("2 written, 0 skipped, 0 failed; 2 input(s) skipped before "
                                                         "the run; manifest: 2 samples"), err
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == [
        f"skipped {images / 'c.png'}: a symbolic link to nothing",
        f"skipped {images / 'd.png'}: not a regular file (a FIFO, socket or device)"]
    assert walks == [images]
    for name in ("a.png", "b.png"):
        (images / name).unlink()
    walks.clear()
    rc, _, err = _gen(capsys, tmp_path / "g2", "--images", images)  # refused: the same one walk says why
    assert_usage_error(rc, err, f"no input images found in {images}", "2 image name(s) there are no file to read",
                       f"e.g. {images / 'c.png'}: a symbolic link to nothing")
    assert walks == [images]
