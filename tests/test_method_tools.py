"""The Galetto and Distill command-line tools under hostile use (docs/reliability.md H44): calibration never on test
images, apps options and outputs, selection with non-finite scores, the patch split, the Distill split's seed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from syndof import io as sio


def _labelled_folder(root, stems, layout=("image", "gt")):
    for k, stem in enumerate(stems):
        img = np.random.default_rng(k).random((36, 40, 3)).astype(np.float32)
        mask = np.zeros((36, 40), np.uint8)
        mask[:, 20:] = 255
        sio.write_image(root / layout[0] / f"{stem}.png", img)
        sio.write_image(root / layout[1] / f"{stem}.png", mask)
    return root


@pytest.mark.parametrize("benchmark", ["xu100", "dut", "ctcug"])
def test_galetto_calibrate_refuses_a_test_benchmark(tmp_path, capsys, benchmark):
    from dmenet.galetto import calibrate

    layout = ("image", "gt") if benchmark == "ctcug" else ("source", "gt")
    data = _labelled_folder(tmp_path / "d", ["1", "2"], layout)
    assert calibrate.main(["--benchmark", benchmark, "--data", str(data), "--out", str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err
    assert "--benchmark" in err and "test set" in err and not (tmp_path / "fit.json").exists()


def test_galetto_calibrate_refuses_sharp_test_photos_as_negatives(tmp_path, capsys):
    """``--negatives`` took the screened sharp BSDS500 *test* photos (whose false blur is reported as a test) and
    fitted on them; refused now, before the classifier loads. A training photo's stem passes."""
    from dmenet.data.splits import SHARP_TEST_LIST
    from dmenet.distill.split import read_split
    from dmenet.galetto import calibrate

    data = _labelled_folder(tmp_path / "d", ["out_of_focus0010"], ("train_image", "gt"))
    test_stem = read_split(SHARP_TEST_LIST)[0]
    negatives = tmp_path / "neg"
    for stem in (test_stem, "2092"):
        sio.write_image(negatives / f"{stem}.jpg", np.random.default_rng(1).random((40, 40, 3)).astype(np.float32))
    argv = ["--benchmark", "cuhk_train", "--data", str(data), "--negatives", str(negatives), "--method",
            "galetto:stride=16", "--out", str(tmp_path / "fit")]
    assert calibrate.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and test_stem in err and "--negatives" in err, err
    assert not (tmp_path / "fit.json").exists()
    assert "2092" not in read_split(SHARP_TEST_LIST)
    assert calibrate.main([*argv[:-1], str(tmp_path / "fit2"), "--negative-limit", "1"]) == 2  # sorted: the test one
    (negatives / f"{test_stem}.jpg").unlink()
    assert calibrate.main([*argv[:-1], str(tmp_path / "fit3")]) == 0


def test_galetto_calibrate_refuses_the_held_out_cuhk_test_photos(tmp_path, capsys):
    """cuhk/train_image holds the 5 photos of cuhk/image (the project's CUHK test): without --split they were fitted on
    silently; and the record said "N samples found" of the N kept."""
    from dmenet.galetto import calibrate

    data = _labelled_folder(tmp_path / "d", ["out_of_focus0010", "out_of_focus0011"], ("train_image", "gt"))
    argv = ["--benchmark", "cuhk_train", "--data", str(data), "--out", str(tmp_path / "fit")]
    assert calibrate.main(argv) == 2
    err = capsys.readouterr().err
    assert "out_of_focus0011" in err and "held-out" in err and not (tmp_path / "fit.json").exists()
    argv[-1] = str(tmp_path / "fit2")  # the training photo alone is fitted on
    assert calibrate.main([*argv[:4], "--include", "*0010", "--method", "galetto:stride=16", *argv[4:]]) == 0
    entry = json.loads((tmp_path / "fit2.json").read_text())
    record = json.dumps(entry)
    assert "out_of_focus0010.png" in record and "out_of_focus0011" not in record
    assert "2 samples found" in record and "1 kept" in record  # it said "1 samples found" of 2


def test_galetto_calibrate_records_the_window_grid_its_sigma_maps_used(tmp_path):
    """``galetto:grid=matlab`` changes σ along the borders (up to 6.75 px); the fit record's options left it out."""
    from dmenet.galetto import calibrate
    from dmenet.galetto.detection import read_transform

    data = _labelled_folder(tmp_path / "d", ["im0", "im1"])
    argv = ["--benchmark", "cuhk", "--data", str(data), "--method", "galetto:stride=16,grid=matlab",
            "--out", str(tmp_path / "fit")]
    assert calibrate.main(argv) == 0
    _, entry = read_transform(tmp_path / "fit")
    assert entry["options"]["grid"] == "matlab"


def test_build_patches_refuses_a_test_photo_that_is_also_a_training_photo(tmp_path, capsys):
    """A photo under test/ with the name of a train/ or val/ photo was both trained on and tested on, silently."""
    from dmenet.galetto import build_patches

    rng = np.random.default_rng(0)
    for part, stems in (("train", ["a", "b"]), ("val", ["c"]), ("test", ["a", "d"])):
        for stem in stems:
            sio.write_image(tmp_path / "photos" / part / f"{stem}.png", rng.random((64, 64, 3)).astype(np.float32))
    out = tmp_path / "set"
    argv = ["--photos", str(tmp_path / "photos"), "--out", str(out), "--test-count", "20", "--val-fraction", "0.34",
            "--phi", "0"]
    assert build_patches.main(argv) == 2
    err = capsys.readouterr().err
    assert "a" in err and "test" in err and "also in train" in err and not out.exists()


def _run_with_rows(root, rows):
    for r in rows:
        folder = root / "ckpt" / f"step_{r['step']:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"")
    (root / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # json writes NaN as NaN
    return root


@pytest.mark.parametrize("order", [0, 1])
def test_distill_select_never_chooses_a_non_finite_score_whatever_the_row_order(tmp_path, capsys, order):
    from dmenet.distill import select

    nan = float("nan")
    rows = [{"step": 100, "val_fmax": nan, "val_mae": 0.2, "sharp_val_mean": 0.1},
            {"step": 200, "val_fmax": 0.90, "val_mae": nan, "sharp_val_mean": 0.1},
            {"step": 300, "val_fmax": 0.899, "val_mae": 0.2, "sharp_val_mean": 0.1},
            {"step": 400, "val_fmax": 0.95, "val_mae": 0.1, "sharp_val_mean": nan}]
    rows = rows if order == 0 else rows[::-1]
    assert select.choose(rows)["step"] == 300
    run = _run_with_rows(tmp_path / "run", rows)
    assert select.main([str(run)]) == 0 and capsys.readouterr().out.strip().endswith("step_000300")
    fallback = [{"step": 100, "val_fmax": 0.9, "val_mae": 0.2, "sharp_val_mean": nan},
                {"step": 200, "val_fmax": 0.8, "val_mae": 0.2, "sharp_val_mean": 0.5}]
    assert select.choose(fallback)["step"] == 200 and select.choose(fallback[::-1])["step"] == 200
    broken = _run_with_rows(tmp_path / "broken", [{"step": 100, "val_fmax": nan, "val_mae": 0.2}])
    assert select.main([str(broken)]) == 2
    err = capsys.readouterr().err
    assert "val.jsonl" in err and "finite" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, flag", [(["magnify", "--k", "3"], "--k"),
                                        (["magnify", "--mode", "sdof", "--k", "3"], "--k"),
                                        (["enhance", "--k", "3"], "--k"),
                                        (["enhance", "--soft", "2"], "--soft"),
                                        (["magnify", "--lam-max", "3"], "--lam-max"),
                                        (["fuse", "--mode", "scale"], "--mode")])
def test_apps_refuse_an_option_the_command_does_not_read(tmp_path, capsys, argv, flag):
    """``magnify IMG --k 3`` ran the NLT blend (which has no k) and exited 0: the user believed σ had been tripled."""
    from dmenet.galetto import apps_cli

    img = tmp_path / "a.png"
    sio.write_image(img, np.random.default_rng(0).random((40, 40, 3)).astype(np.float32))
    inputs = [str(img), str(img)] if argv[0] == "fuse" else [str(img)]
    out = tmp_path / "out.png"
    assert apps_cli.main([argv[0], *inputs, *argv[1:], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {flag}") and len(err.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("command", ["enhance", "fuse"])
def test_apps_name_the_image_too_small_to_measure(tmp_path, capsys, command):
    """``enhance tiny.png`` said "error: image is too small: 8x8 px (at least 32 px a side)", naming no file."""
    from dmenet.galetto import apps_cli

    tiny = tmp_path / "tiny.png"
    sio.write_image(tiny, np.random.default_rng(0).random((8, 8, 3)).astype(np.float32))
    inputs = [str(tiny), str(tiny)] if command == "fuse" else [str(tiny)]
    assert apps_cli.main([command, *inputs, "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(tiny) in err and "too small" in err and len(err.splitlines()) == 1


def test_galetto_select_refuses_a_stride_past_the_window_by_name(tmp_path, capsys):
    """``--stride 64`` failed after loading the model with "label map holds NaN / inf", naming no option."""
    from dmenet.galetto import select

    with pytest.raises(SystemExit) as info:
        select.main(["--val", str(tmp_path), "--model", "m.safetensors", "--stride", "64",
                     "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--stride" in err and "1 to 32" in err


def test_distill_split_refuses_a_negative_seed(tmp_path, capsys):
    """random.Random(-3) is random.Random(3): ``--seed -3`` wrote seed 3's split under a header saying "seed -3"."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "distill" / "split.py"
    spec = importlib.util.spec_from_file_location("distill_split_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    images = tmp_path / "images"
    images.mkdir()
    for k in range(4):
        (images / f"out_of_focus{k:04d}.jpg").write_bytes(b"")
    with pytest.raises(SystemExit) as info:
        script.main(["--images", str(images), "--out", str(tmp_path / "s"), "--val-count", "1", "--seed", "-3"])
    assert info.value.code == 2 and "--seed" in capsys.readouterr().err
    assert not (tmp_path / "s_train.txt").exists()
    assert script.main(["--images", str(images), "--out", str(tmp_path / "s"), "--val-count", "1", "--seed", "3"]) == 0


@pytest.mark.parametrize("made", ["result", "report"])
def test_apps_never_replace_an_out_written_meanwhile(tmp_path, capsys, monkeypatch, made):
    """``--out`` was checked before the σ maps and replaced at the end: two runs with one --out both exited 0, the
    second silently replacing the first's result (measured: enhance's result gone under magnify's)."""
    from dmenet.galetto import apps_cli

    img = tmp_path / "a.png"
    sio.write_image(img, np.random.default_rng(0).random((40, 40, 3)).astype(np.float32))
    out = tmp_path / "o.png"
    other = apps_cli.report_path(out) if made == "report" else out
    make_report = apps_cli.report

    def another_run_finishes_first(tiles):
        other.write_bytes(b"the other run's file")
        return make_report(tiles)

    monkeypatch.setattr(apps_cli, "report", another_run_finishes_first)
    assert apps_cli.main(["enhance", str(img), "--out", str(out), "--set", "stride=16"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(out) in err and "exists" in err.lower() and len(err.splitlines()) == 1
    assert other.read_bytes() == b"the other run's file"
    written = {p.name for p in tmp_path.iterdir()}
    assert written == {"a.png", other.name}  # neither our result nor our report, no temporary file


@pytest.mark.parametrize("argv, label", [(["magnify", "--mode", "scale", "--k", "3"], "magnify scale x3"),
                                         (["magnify"], "magnify sdof"),
                                         (["enhance", "--lam-max", "1.5"], "enhance lam-max 1.5"),
                                         (["fuse", "--soft", "2"], "fused soft tau 2")])
def test_apps_report_says_what_ran(tmp_path, monkeypatch, argv, label):
    """The report panel is the run's only record; it said "magnify" for the NLT blend and for x k alike, and named
    neither λmax, τ nor the σ method."""
    from dmenet.galetto import apps_cli

    img = tmp_path / "a.png"
    sio.write_image(img, np.random.default_rng(0).random((40, 40, 3)).astype(np.float32))
    seen = []
    make_report = apps_cli.report
    monkeypatch.setattr(apps_cli, "report", lambda tiles: seen.extend(t for _, t in tiles) or make_report(tiles))
    inputs = [str(img), str(img)] if argv[0] == "fuse" else [str(img)]
    assert apps_cli.main([argv[0], *inputs, *argv[1:], "--set", "stride=16", "--out", str(tmp_path / "o.png")]) == 0
    assert any(t.startswith(label) for t in seen), seen
    assert any("galetto" in t and "stride=16" in t for t in seen), seen


def test_apps_max_side_measures_sigma_on_a_smaller_copy_and_says_so(tmp_path, monkeypatch):
    """``--max-side N``: the σ map is measured at long side N (σ in input px) and the application runs on the full
    image; the report panel names it. Without it the σ map of a camera photo took minutes."""
    from dmenet.galetto import apps_cli

    img = tmp_path / "a.png"
    sio.write_image(img, np.random.default_rng(0).random((96, 128, 3)).astype(np.float32))
    seen, sizes = [], []
    make_report = apps_cli.report
    monkeypatch.setattr(apps_cli, "report", lambda tiles: seen.extend(t for _, t in tiles) or make_report(tiles))
    sigma_of = apps_cli.sigma_of
    monkeypatch.setattr(apps_cli, "sigma_of", lambda m, o, *rest: sizes.append(o.max_side) or sigma_of(m, o, *rest))
    out = tmp_path / "o.png"
    assert apps_cli.main(["magnify", str(img), "--mode", "scale", "--max-side", "64", "--out", str(out)]) == 0
    assert sizes == [64] and any("max-side 64" in t for t in seen), (sizes, seen)
    assert io_shape(out) == (96, 128)
    assert apps_cli.main(["magnify", str(img), "--mode", "scale", "--max-side", "0", "--out",
                          str(tmp_path / "full.png")]) == 0
    assert sizes == [64, None]  # 0: full resolution


def io_shape(path) -> tuple[int, int]:
    return sio.read_image(path).shape[:2]


def test_distill_calibrate_records_the_data_it_fitted_on_and_the_transform_it_replaced(tmp_path):
    """The record named the val list only: not the config, the --set overrides (``data.images`` moves the fit to
    other photos), nor the input file's own calibration, which the new one replaced silently."""
    from pathlib import Path

    from dmenet.distill import calibrate

    repo = Path(__file__).resolve().parents[1]
    data = _labelled_folder(tmp_path / "d", ["p0", "p1"], ("images", "masks"))
    (tmp_path / "val.txt").write_text("p0\np1\n")
    sets = [f"data.images={data / 'images'}", f"data.masks={data / 'masks'}", f"data.val_list={tmp_path / 'val.txt'}",
            "data.val_side=64"]
    out = tmp_path / "cal"
    assert calibrate.main(["--model", str(repo / "checkpoints" / "distill_student.safetensors"), "--config",
                           str(repo / "experiments" / "distill" / "tiny.yaml"), "--set", *sets, "--out", str(out)]) == 0
    rec = json.loads((tmp_path / "cal.json").read_text())["calibration"]
    assert rec["config"].endswith("tiny.yaml") and rec["overrides"] == sets
    assert rec["images"] == str(data / "images") and rec["masks"] == str(data / "masks")
    assert rec["replaced"]["logit_scale"] == 8.0 and rec["replaced"]["logit_shift"] == -0.7


def test_distill_calibrate_refuses_a_cuhk_test_photo_in_its_list(tmp_path, capsys):
    from pathlib import Path

    from dmenet.distill import calibrate

    repo = Path(__file__).resolve().parents[1]
    data = _labelled_folder(tmp_path / "d", ["out_of_focus0010", "out_of_focus0031"], ("images", "masks"))
    (tmp_path / "val.txt").write_text("out_of_focus0010\nout_of_focus0031\n")
    sets = [f"data.images={data / 'images'}", f"data.masks={data / 'masks'}", f"data.val_list={tmp_path / 'val.txt'}",
            "data.val_side=64"]
    assert calibrate.main(["--model", str(repo / "checkpoints" / "distill_student.safetensors"), "--config",
                           str(repo / "experiments" / "distill" / "tiny.yaml"), "--set", *sets,
                           "--out", str(tmp_path / "cal")]) == 2
    err = capsys.readouterr().err
    assert "out_of_focus0031" in err and "test" in err and not (tmp_path / "cal.json").exists()


def test_fuse_refuses_an_out_among_its_frames(tmp_path, capsys):
    """``fuse FOLDER --out FOLDER/fused.png`` put the result and its report among the frames: a rerun read them as
    frames (or failed on the report's size)."""
    from dmenet.galetto import apps_cli

    frames = tmp_path / "stack"
    for k in range(2):
        sio.write_image(frames / f"f{k}.png", np.random.default_rng(k).random((40, 40, 3)).astype(np.float32))
    assert apps_cli.main(["fuse", str(frames), "--out", str(frames / "fused.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "frames' folder" in err
    assert sorted(p.name for p in frames.iterdir()) == ["f0.png", "f1.png"]


def test_apps_write_a_16_bit_png_for_16_bit_inputs(tmp_path):
    """A 16-bit photo's result was rounded to 8 bits; a PNG result now keeps the input's 16 bits (a JPEG holds 8)."""
    from dmenet.galetto import apps_cli

    img = tmp_path / "deep.png"
    sio.write_image(img, (np.random.default_rng(0).random((64, 64, 3)) * 65535).astype(np.uint16))
    for out, dtype in ((tmp_path / "o16.png", np.uint16), (tmp_path / "o8.jpg", np.uint8)):
        assert apps_cli.main(["enhance", str(img), "--set", "stride=16", "--out", str(out)]) == 0
        assert sio.stored_dtype(out) == dtype
    eight = tmp_path / "eight.png"
    sio.write_image(eight, sio.read_image(img))  # float in [0, 1]: written with 8 bits
    assert apps_cli.main(["enhance", str(eight), "--set", "stride=16", "--out", str(tmp_path / "o.png")]) == 0
    assert sio.stored_dtype(tmp_path / "o.png") == np.uint8
