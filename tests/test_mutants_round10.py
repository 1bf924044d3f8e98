"""Round-10 mutation audit (docs/audit.md): the code of 6 Dec 2026 (docs/reliability.md §18–§25): the camera's
focus rule and ``exact_replays``, ``generate``'s source records, recipe check and summary, ``syndof.io``'s name and
map rules, the focal-stack frame order, the Galetto amounts, the model pair check, the constant-map warning, the
stopped-run line and ``units.inverse_depth8_to_mm``. Each test names the mutant it kills; tiny inputs, no network
trained."""

from __future__ import annotations

import numpy as np
import pytest

from syndof import units


# ------------------------------------------------------------------------------------------------------------- camera
def test_a_tie_of_rounded_extremes_takes_the_near_one():
    """Mutant: ``c_far > c_near`` written ``>=`` (a tie takes the far extreme). The range 10000 … 10000.004 mm
    focused at 10000.003 rounds both CoCs to 0 at N = 1; the original then takes z_min, whose |z − z_f|/z is 3× the
    far one's: N by hand from z_min (the mutant's is a third of it)."""
    from syndof.camera import _solve_f_number

    z_min, z_max, z_f, f, ppm, max_coc = 10000.0, 10000.004, 10000.003, 50.0, 64 / 36.0, 29.0
    n = _solve_f_number(z_min, z_max, z_f, f, ppm, max_coc)
    assert n == pytest.approx(f**2 / (z_f - f) * (ppm / max_coc) * (abs(z_min - z_f) / z_min), rel=1e-9)


def _ramp_replay():
    """(depth, σ) of a 48×64 ramp 1000 … 5000 mm drawn at f 85 mm, max CoC 9 (an exact replay exists)."""
    from syndof.camera import sample_camera

    h, w = 48, 64
    depth = np.tile(np.linspace(1000.0, 5000.0, w), (h, 1))
    lay = next(la for c, la in (sample_camera(depth, w, np.random.default_rng(s), max_coc=9, min_layers=0)
                                for s in range(50)) if c.focal_mm == 85.0)
    return depth, lay.sigma10.astype(np.float64) / 10.0


def test_exact_replays_is_empty_when_one_depth_carries_two_values():
    """Mutant: ``exact_replays`` without its consistency check (``v[inv] == v_pix``). Row 0 of one column is moved to
    the next column's depth but keeps its own σ: that depth carries two σ values, so no camera reproduces the map
    (``layers_from_sigma`` falls back, not exact), although the last pixel's values alone fit every camera."""
    from syndof.camera import exact_replays, layers_from_sigma

    depth, sigma = _ramp_replay()
    assert len(exact_replays(depth, sigma, max_coc=9)) == 3  # 50, 70 and 85 mm
    col = next(c for c in range(20, 60) if sigma[0, c] != sigma[0, c + 1])
    depth = depth.copy()
    depth[0, col] = depth[0, col + 1]
    assert layers_from_sigma(depth, sigma, max_coc=9).exact is False
    assert exact_replays(depth, sigma, max_coc=9) == []


# -------------------------------------------------------------------------------------------------------------- units
def test_inverse_depth8_refuses_nan():
    """Mutant: the finiteness check dropped (NaN passes ``< 0`` and ``> 255``: a NaN depth). Values by hand: 255 →
    near, 0 → far, 127.5 → the harmonic mean 2·near·far/(near + far)."""
    z = units.inverse_depth8_to_mm(np.array([[255.0, 0.0, 127.5]]), 500.0, 2000.0)
    assert z == pytest.approx(np.array([[500.0, 2000.0, 800.0]]))
    with pytest.raises(ValueError, match="0 … 255"):
        units.inverse_depth8_to_mm(np.array([[10.0, np.nan]]), 500.0, 2000.0)


# ----------------------------------------------------------------------------------------------------------- generate
def _file_source(name: str, image: str, depth: str | None = None):
    from syndof.scenes import Source

    return Source(name=name, kind="file", image_path=image, depth_path=depth)


def test_sources_digest_follows_names_order_and_depth_pairing():
    """Mutants: the depth file's name left out of a source's line (depth files paired otherwise kept the digest), the
    lines sorted (a reordered listing moves sample i to another photo but kept the digest). Equal for an equal
    listing wherever its folders lie (file names only)."""
    from syndof.recipe import sources_digest

    a, b = _file_source("a", "/x/a.png", "/d/a.npy"), _file_source("b", "/x/b.png", "/d/b.npy")
    digest = sources_digest([a, b])
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert sources_digest([_file_source("a", "/y/a.png", "/e/a.npy"), _file_source("b", "/y/b.png", "/e/b.npy")]) \
        == digest
    assert sources_digest([b, a]) != digest
    assert sources_digest([_file_source("a", "/x/a.png", "/d/b.npy"), _file_source("b", "/x/b.png", "/d/a.npy")]) \
        != digest
    assert sources_digest([a, _file_source("b", "/x/b.png")]) != digest


@pytest.mark.parametrize("value, ok", [(2, True), (255, True), (9.0, True), (29, True), (1, False), (256, False),
                                       (9.5, False), (True, False), (float("nan"), False)])
def test_max_coc_problem(value, ok):
    """Mutants: the whole-number test or the bool test dropped (9.5 or True accepted). 2 … 255 whole numbers pass
    (9.0 too); the message names the option."""
    from syndof.recipe import max_coc_problem

    problem = max_coc_problem(value, "--max-coc")
    assert (problem is None) is ok
    if not ok:
        assert problem.startswith("--max-coc must be an integer in 2..255")


def test_summary_report_by_hand():
    """Mutants: the why-part printed when nothing was skipped, the manifest count taken from ``written``. The
    module docstring's line: ``N written, M skipped, K failed`` then ``; J input(s) skipped before the run`` when J >
    0, ``; A already complete, B over σ_max`` when M > 0, and ``; manifest: S samples``."""
    from syndof.generate import Summary

    assert Summary(written=2, manifest=5).report() == "2 written, 0 skipped, 0 failed; manifest: 5 samples"
    assert Summary(written=1, done=2, over_limit=1, failed=1, inputs_skipped=3, manifest=3).report() == (
        "1 written, 3 skipped, 1 failed; 3 input(s) skipped before the run; 2 already complete, 1 over σ_max; "
        "manifest: 3 samples")


# ------------------------------------------------------------------------------------------------ training.stopped
def test_command_line_quotes_and_sets_resume_once():
    """Mutants: ``--resume`` kept in the argument list (twice with ``resume``, and a fresh start that resumes),
    the line joined with spaces instead of ``shlex.join`` (an argument with a space split in two)."""
    from dmenet.training.stopped import command_line

    argv = ["--config", "my run.yaml", "--resume", "--out", "runs/a"]
    assert command_line("dmenet.train", argv, True) == \
        "python -m dmenet.train --config 'my run.yaml' --out runs/a --resume"
    assert command_line("dmenet.train", argv, False) == "python -m dmenet.train --config 'my run.yaml' --out runs/a"


def test_the_continue_line_names_the_folder_relative_paths_were_meant_from(tmp_path, capsys, monkeypatch):
    """§35 L1: a run started as ``--out runs/a`` from one folder was told to continue with ``python -m … --out
    runs/a --resume``, which from any other folder starts a new run elsewhere. The line now starts ``cd FOLDER &&``
    (quoted: a folder with a space); a current folder deleted meanwhile names none."""
    from dmenet.training.stopped import command_line, say_how_to_resume

    assert command_line("m", ["--out", "runs/a"], True, tmp_path / "my runs") == \
        f"cd '{tmp_path}/my runs' && python -m m --out runs/a --resume"
    where = tmp_path / "my runs"
    where.mkdir()
    monkeypatch.chdir(where)
    with pytest.raises(KeyboardInterrupt), say_how_to_resume("m", ["--out", "r"], tmp_path, True, lambda d: None):
        raise KeyboardInterrupt
    assert capsys.readouterr().err.endswith(f"continue with: cd '{where}' && python -m m --out r --resume\n")
    where.rmdir()
    with pytest.raises(KeyboardInterrupt), say_how_to_resume("m", ["--out", "r"], tmp_path, True, lambda d: None):
        raise KeyboardInterrupt
    assert capsys.readouterr().err.endswith("continue with: python -m m --out r --resume\n")


def test_stopped_line_cases(tmp_path):
    """Mutants: a ``--resume`` run without a checkpoint told to start again (and to delete a folder that held a run
    before it), an empty run folder named for deletion. By hand: the three lines of ``stopped_line``."""
    from dmenet.training.stopped import stopped_line

    run = tmp_path / "run"
    argv = ["--out", str(run)]
    assert stopped_line("Ctrl-C", "m", argv, run, tmp_path / "ckpt_5", False) == \
        f"stopped (Ctrl-C): last checkpoint {tmp_path / 'ckpt_5'}; continue with: python -m m --out {run} --resume"
    run.mkdir()
    (run / "config.yaml").write_text("x")
    assert stopped_line("SIGTERM", "m", argv, run, None, True) == \
        f"stopped (SIGTERM): no checkpoint written yet in {run}; continue with: python -m m --out {run} --resume"
    fresh = ("stopped (SIGTERM): no checkpoint written yet (nothing to --resume); "
             + "{}start again with: python -m m --out " + str(run))
    assert stopped_line("SIGTERM", "m", argv, run, None, False) == \
        fresh.format(f"delete {run} (only this run's files) and ")
    (run / "config.yaml").unlink()
    assert stopped_line("SIGTERM", "m", argv, run, None, False) == fresh.format("")


def test_say_how_to_resume_speaks_on_sigterm_and_ctrl_c_only(tmp_path, capsys, monkeypatch):
    """Mutants: any SystemExit (a ConfigError's exit 2) taken for SIGTERM; a pointer the checkpoint reader cannot
    parse (ValueError) escaping the handler instead of "no checkpoint"; ``sys.argv`` with the program name."""
    import os
    import shlex

    from dmenet.training.stopped import say_how_to_resume

    def unreadable(run_dir):
        raise ValueError("bad pointer")

    for exc in (SystemExit(2), SystemExit(0)):
        with pytest.raises(SystemExit), say_how_to_resume("m", ["--out", "r"], tmp_path, True, lambda d: None):
            raise exc
        assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit) as info, say_how_to_resume("m", ["--out", "r"], tmp_path, True, unreadable):
        raise SystemExit(143)
    assert info.value.code == 143
    assert capsys.readouterr().err == (
        f"stopped (SIGTERM): no checkpoint written yet in {tmp_path}; continue with: cd {shlex.quote(os.getcwd())} && "
        "python -m m --out r --resume\n")
    monkeypatch.setattr("sys.argv", ["/x/train.py", "--out", "r"])
    with pytest.raises(KeyboardInterrupt), say_how_to_resume("m", None, tmp_path, False, lambda d: tmp_path / "c"):
        raise KeyboardInterrupt
    assert capsys.readouterr().err == (
        f"stopped (Ctrl-C): last checkpoint {tmp_path / 'c'}; continue with: cd {shlex.quote(os.getcwd())} && "
        "python -m m --out r --resume\n")


# ------------------------------------------------------------------------------------------------------ galetto.apps
@pytest.mark.parametrize("value, low, ok", [(0, 0.0, True), (2.5, 0.0, True), (1, 1.0, True), (-0.1, 0.0, False),
                                            (0.5, 1.0, False), (float("inf"), 0.0, False), (float("nan"), 0.0, False),
                                            (None, 0.0, False), ("x", 0.0, False), ([1.0], 0.0, False)])
def test_check_amount(value, low, ok):
    """Mutants: ``isfinite`` dropped (inf accepted), ``>= low`` written ``>`` (0 refused, the documented identity),
    the TypeError not caught (None or a list raised TypeError, not a ValueError naming the option)."""
    from dmenet.galetto.apps import check_amount

    if ok:
        assert check_amount(value, "gain", low) == float(value)
    else:
        with pytest.raises(ValueError, match="^gain must be"):
            check_amount(value, "gain", low)


def test_soft_fusion_weights_of_float32_maps_at_a_tiny_temperature_are_one_hot():
    """Mutant: the float64 cast before dividing by τ dropped. τ = 1e-300 is 0 in float32 (NaN weights); in float64
    the sharpest frame takes weight 1 (exp(−1e300) = 0 elsewhere), as the τ → 0 limit says."""
    from dmenet.galetto.apps import fusion_weights

    sigmas = np.array([[[0.5, 2.0]], [[1.5, 1.0]]], dtype=np.float32)  # (K 2, H 1, W 2)
    frames = np.zeros((2, 1, 2, 3), dtype=np.float32)
    w = fusion_weights(sigmas, frames, soft=1e-300)
    assert np.array_equal(w, np.array([[[1.0, 0.0]], [[0.0, 1.0]]]))


# -------------------------------------------------------------------------------------------------- models.model_io
def test_model_pair_problem_cases(tmp_path):
    """Mutants: the folder check dropped (a folder ``m`` named as "model file not found"), the missing pair named
    as given even without a suffix (``m``, not ``m.safetensors``), ``need_weights`` ignored (a sidecar reader refused
    without weights), any one missing file reported as both missing."""
    from dmenet.models.model_io import model_pair_problem

    (tmp_path / "dir").mkdir()
    assert str(model_pair_problem(tmp_path / "dir")).startswith(f"{tmp_path / 'dir'}: is a folder, not a model file")
    gone = model_pair_problem(tmp_path / "m")
    assert gone.path == str(tmp_path / "m.safetensors") and "neither m.safetensors nor its sidecar m.json" in str(gone)
    assert model_pair_problem(tmp_path / "m.json").path == str(tmp_path / "m.json")
    (tmp_path / "m.json").write_text("{}")
    assert model_pair_problem(tmp_path / "m", need_weights=False) is None
    weights = model_pair_problem(tmp_path / "m")
    assert weights.path == str(tmp_path / "m.safetensors") and "model weights not found" in str(weights)
    (tmp_path / "m.safetensors").write_bytes(b"x")
    assert model_pair_problem(tmp_path / "m") is None and model_pair_problem(tmp_path / "m.json") is None
    (tmp_path / "m.json").unlink()
    for need in (True, False):
        sidecar = model_pair_problem(tmp_path / "m.safetensors", need_weights=need)
        assert sidecar.path == str(tmp_path / "m.json") and "model sidecar JSON not found" in str(sidecar)


def test_read_sidecar_needs_no_weights(tmp_path):
    """Mutant: ``read_sidecar`` asking for the weights too (``need_weights`` True): a sidecar alone is read, and its
    own contents judged (here a ``{}`` without its format_version), not refused as "model weights not found"."""
    from dmenet.models.model_io import ModelFileError, read_sidecar

    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(ModelFileError, match="format_version None"):
        read_sidecar(tmp_path / "m")


# -------------------------------------------------------------------------------------------------------- eval.runner
def test_constant_maps_warning_cases():
    """Mutants: sharp photos warned of (a constant 0 is their right answer), the warning given when only some maps
    are constant, one value shown for several. By hand: n maps all constant → one line naming n and the values."""
    from dmenet.eval import benchmarks as B
    from dmenet.eval.runner import constant_maps_warning

    dbd, sharp = B.BENCHMARKS["cuhk"], B.BENCHMARKS["sharp"]
    assert constant_maps_warning("m", sharp, [0.0, 0.0], 2) == []
    assert constant_maps_warning("m", dbd, [0.5], 2) == []
    assert constant_maps_warning("m", dbd, [], 0) == []
    (line,) = constant_maps_warning("m", dbd, [0.5, 0.5], 2)
    assert line.startswith("m: every one of the 2 maps is constant (0.5 everywhere)")
    (line,) = constant_maps_warning("m", dbd, [0.25, 1.5, 0.5], 3)
    assert "(0.25 to 1.5 everywhere)" in line


# ------------------------------------------------------------------------------------------- recipe.check_recipe
_RECIPE = {"max_coc": 9, "kernel": "gaussian", "seed": 0, "noise": False, "jpeg_quality": None, "max_size": None,
           "merge_tolerance": 0.0}


def _folder(tmp_path, dataset: dict | None, meta_max_coc: int):
    import json

    out = tmp_path / "out"
    (out / "meta").mkdir(parents=True)
    if dataset is not None:
        (out / "dataset.json").write_text(json.dumps(dataset))
    (out / "meta" / "000000_a.json").write_text(json.dumps({"max_coc": meta_max_coc, "kernel": "gaussian", "seed": 0,
                                                            "augment": {}}))
    return out


def test_check_recipe_names_dataset_json_first_and_reads_a_sample_where_it_is_silent(tmp_path):
    """Mutants: a sample disagreeing with the options called an edited dataset.json although dataset.json disagrees
    too (the message must then name dataset.json's setting: it was generated with max_coc 29), the sample's record
    not used where dataset.json is silent (no dataset.json: a max_coc 29 folder completed with --max-coc 9)."""
    from syndof.recipe import check_recipe

    check_recipe(_folder(tmp_path / "same", {**_RECIPE}, 9), dict(_RECIPE))  # all agree: no error
    with pytest.raises(ValueError, match=r"was generated with max_coc 29 \(now 9\)"):
        check_recipe(_folder(tmp_path / "both", {**_RECIPE, "max_coc": 29}, 29), dict(_RECIPE))
    with pytest.raises(ValueError, match=r"was generated with max_coc 29 \(now 9\)"):
        check_recipe(_folder(tmp_path / "none", None, 29), dict(_RECIPE))
    with pytest.raises(ValueError, match=r"max_coc 29 in 000000_a.json \(now 9\), although dataset.json says"):
        check_recipe(_folder(tmp_path / "edited", {**_RECIPE}, 29), dict(_RECIPE))


# ---------------------------------------------------------------------------------------------------------- syndof.io
def test_image_entries_keeps_unreadable_names_in_name_order(tmp_path):
    """Mutants: the unreadable names (a link to nothing) left out, the files and those names concatenated unsorted.
    a.png (file), b.png (link to nothing), c.png (file), .d.png (hidden), e.txt: [a, b, c]."""
    from syndof import io as sio

    for name in ("a.png", "c.png", ".d.png", "e.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "b.png").symlink_to(tmp_path / "gone.png")
    assert sio.image_entries(tmp_path) == [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]


def test_refuse_unreadable_names_refuses_a_fifo_not_only_a_link(tmp_path):
    """Mutant: only symbolic links checked (a FIFO, which a read waits on for ever, let through). None and regular
    files pass."""
    import os

    from syndof import io as sio

    (tmp_path / "a.png").write_bytes(b"x")
    os.mkfifo(tmp_path / "f.png")
    sio.refuse_unreadable_names([None, tmp_path / "a.png"])
    with pytest.raises(sio.InputError) as info:
        sio.refuse_unreadable_names([tmp_path / "a.png", None, tmp_path / "f.png"])
    assert info.value.path == str(tmp_path / "f.png")


@pytest.mark.parametrize("channels, ok", [(1, True), (4, True), (5, False)])
def test_npy_maps_take_at_most_four_channels_last(tmp_path, channels, ok):
    """Mutants: the channel bound off by one either way (MAX_MAP_CHANNELS = 4: (H, W, 4) keeps channel 0,
    (H, W, 5) is refused as channels first)."""
    from syndof import io as sio

    arr = np.arange(6 * 7 * channels, dtype=np.float32).reshape(6, 7, channels)
    np.save(tmp_path / "m.npy", arr)
    if ok:
        assert np.array_equal(sio.read_npy_map(tmp_path / "m.npy"), arr[..., 0])
    else:
        with pytest.raises(sio.InputError, match="channels first"):
            sio.read_npy_map(tmp_path / "m.npy")


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.bool_])
def test_sigma_npy_of_integers_or_bools_is_refused(tmp_path, dtype):
    """Mutants: only unsigned arrays refused (an int32 round(10·σ) read as σ px, 10× too large), bools let through.
    A float32 map of the same values is read as is."""
    from syndof import io as sio

    np.save(tmp_path / "s.npy", np.ones((3, 4), dtype=dtype))
    with pytest.raises(sio.InputError, match="hold float σ in px"):
        sio.read_sigma_map(tmp_path / "s.npy")
    np.save(tmp_path / "f.npy", np.full((3, 4), 1.5, dtype=np.float32))
    assert np.array_equal(sio.read_sigma_map(tmp_path / "f.npy"), np.full((3, 4), 1.5, dtype=np.float32))


# ---------------------------------------------------------------------------------------- recipe.changed_source
def _generated(tmp_path, capsys):
    """A folder of samples 000000_a and 000001_b made from two 64×48 photos with depth (files: imgs/, deps/)."""
    from hostile_helpers import run_main
    from syndof import generate as gen
    from syndof import io as sio
    from syndof.scenes import procedural_scene

    images, depths = tmp_path / "imgs", tmp_path / "deps"
    depths.mkdir(parents=True)
    for name, seed in (("a", 0), ("b", 1)):
        img, depth = procedural_scene(np.random.default_rng(seed), 48, 64)
        sio.write_image(images / f"{name}.png", img)
        np.save(depths / f"{name}.npy", depth)
    out = tmp_path / "out"
    rc, text, err = run_main(gen.main, ["--out", out, "--no-progress", "--workers", "1", "--images", images,
                                        "--depths", depths], capsys)
    assert rc == 0 and "2 written" in text, err
    return images, depths, out


def test_changed_source_skips_unreadable_files_and_incomplete_samples_and_hashes_once(tmp_path, capsys,
                                                                                       monkeypatch):
    """Mutants: a source file that cannot be read now taken as changed (its ``None`` digest compared), a sample
    that is not complete (to be rendered again) checked, each file hashed once per sample instead of once."""
    from syndof import io as sio
    from syndof.layout import sample_paths
    from syndof.recipe import changed_source
    from syndof.scenes import Source

    images, depths, out = _generated(tmp_path, capsys)
    a = Source(name="a", kind="file", image_path=str(images / "a.png"), depth_path=str(depths / "a.npy"))
    for path in sample_paths(out, "000000_a").values():  # a second complete sample of the same photo
        stem = path.name.replace("000000_a", "000002_a")
        path.with_name(stem).write_bytes(path.read_bytes())
    calls = []
    real = sio.readable_file_sha256
    monkeypatch.setattr(sio, "readable_file_sha256", lambda p: calls.append(p) or real(p))
    assert changed_source(out, [(0, a), (2, a)]) is None
    assert sorted(calls) == sorted([a.image_path, a.depth_path])
    gone = Source(name="a", kind="file", image_path=str(tmp_path / "gone.png"), depth_path=str(depths / "a.npy"))
    assert changed_source(out, [(0, gone)]) is None
    np.save(depths / "a.npy", np.full((48, 64), 1234.0))
    assert f"{depths / 'a.npy'} changed since sample 000000_a" in changed_source(out, [(0, a)])
    for stem in ("000000_a", "000002_a"):
        sample_paths(out, stem)["image"].unlink()  # incomplete: rendered again, not resumed as done
    assert changed_source(out, [(0, a), (2, a)]) is None


def test_a_shard_checks_its_own_samples_sources_only(tmp_path, capsys):
    """Mutant: the changed-source check run over every sample index, not this shard's (--shard 1/2 is samples 1, 3,
    …: a.png, whose sample 0 is shard 0's, changed does not stop shard 1, which resumes its complete sample 1)."""
    from hostile_helpers import run_main
    from syndof import generate as gen
    from syndof import io as sio
    from syndof.scenes import procedural_scene

    images, depths, out = _generated(tmp_path, capsys)
    sio.write_image(images / "a.png", procedural_scene(np.random.default_rng(9), 48, 64)[0])
    argv = ["--out", out, "--no-progress", "--workers", "1", "--images", images, "--depths", depths]
    rc, text, err = run_main(gen.main, [*argv, "--shard", "1/2"], capsys)
    assert rc == 0 and text.startswith("0 written, 1 skipped, 0 failed"), err
    rc, text, err = run_main(gen.main, [*argv, "--shard", "0/2"], capsys)
    assert rc == 2 and f"{images / 'a.png'} changed since sample 000000_a" in err


# ------------------------------------------------------------------------------------------------------------- export
class _Traced(Exception):
    pass


def test_out_suffix_is_dot_onnx_in_any_case(tmp_path, capsys, monkeypatch):
    """Mutants: the suffix compared case-sensitively (``X.ONNX`` refused), the name only required to end in "onnx"
    (``xonnx``, no suffix, accepted). The check comes before the work: a name that passes reaches the export."""
    from dmenet import export

    def traced(*args, **kwargs):
        raise _Traced

    monkeypatch.setattr(export, "export_onnx", traced)
    with pytest.raises(_Traced):
        export.main(["--format", "onnx", "--network", "galetto", "--out", str(tmp_path / "X.ONNX")])
    for name in ("xonnx", "x.onnx.png"):
        rc = export.main(["--format", "onnx", "--network", "galetto", "--out", str(tmp_path / name)])
        assert rc == 2 and "must end in .onnx" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------- dmenet.train
def test_joint_training_refuses_a_held_out_photo_in_a_subfolder_of_real(tmp_path, caplog):
    """Mutant: ``--real`` listed one level deep (``glob``, not ``rglob``): the unlabelled domain is read recursively
    (``syndof.io.image_entries(recursive=True)``), so a CUHK test photo in a subfolder of it was adapted to."""
    from hostile_helpers import assert_logged_usage_error
    from train_data_helpers import TINY, write_all

    from dmenet.train import main

    data = write_all(tmp_path / "data")
    real = sorted(p for p in data["real"].rglob("*") if p.is_file())[0]
    (data["real"] / "deeper" / "still").mkdir(parents=True)
    real.rename(data["real"] / "deeper" / "still" / ("out_of_focus0026" + real.suffix))
    out = tmp_path / "run"
    argv = ["--config", str(TINY), "--stage", "joint", "--synthetic", str(data["synthetic"]), "--real",
            str(data["real"]), "--labelled", str(data["labelled"]), "--out", str(out), "--steps", "1", "--wandb",
            "disabled", "--device", "cpu"]
    assert_logged_usage_error(main, argv, caplog, "--real", "out_of_focus0026", "held-out")
    assert not out.exists()


@pytest.mark.parametrize("reader", ["header_size", "readable_file_sha256"])
def test_header_size_and_source_digest_do_not_open_a_fifo(tmp_path, reader):
    """Mutants: ``header_size`` opening any name that is there (``lexists``), ``readable_file_sha256`` (the source
    check of a ``generate`` rerun) without its regular-file test: on a FIFO the open waits for a writer for ever.
    Here the wait is cut after 5 s by opening the FIFO for writing. A folder or a link to nothing: None too."""
    import os
    import threading

    from syndof import io as sio

    read = getattr(sio, reader)
    fifo = tmp_path / "f.png"
    os.mkfifo(fifo)
    (tmp_path / "d.png").mkdir()
    (tmp_path / "l.png").symlink_to(tmp_path / "gone.png")
    result = []
    thread = threading.Thread(target=lambda: result.append(read(fifo)), daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the reader's open returns and reads EOF
        thread.join(5)
        pytest.fail(f"{reader} opened a FIFO")
    assert result == [None]
    assert read(tmp_path / "d.png") is None and read(tmp_path / "l.png") is None


# ------------------------------------------------------------------------------------------------- eval.focal_stack
def test_focus_order_breaks_a_numeric_tie_by_the_name():
    """Mutant: the name dropped from the key (``f01`` and ``f1`` compare equal: their order was the input's)."""
    from pathlib import Path

    from dmenet.eval import focal_stack as fs

    for names in (["f1.png", "f01.png"], ["f01.png", "f1.png"]):
        assert sorted(names, key=lambda n: fs.focus_order(Path(n))) == ["f01.png", "f1.png"]
    assert fs.focus_order(Path("f01.png")) != fs.focus_order(Path("f1.png"))


def test_stack_paths_names_a_missing_folder_but_not_an_empty_pattern(tmp_path):
    """Mutant: the "no such folder or file" check dropped (a mistyped folder was "needs at least 2 frames, found 0").
    A pattern that matches nothing is no error here (its stack then has 0 frames)."""
    from dmenet.eval import focal_stack as fs
    from syndof import io as sio

    with pytest.raises(sio.InputError) as info:
        fs.stack_paths(tmp_path / "stakc")
    assert str(info.value) == f"{tmp_path / 'stakc'}: no such folder or file"
    assert fs.stack_paths(tmp_path / "f*.png") == []


def test_a_pattern_takes_upper_case_image_suffixes_as_a_folder_does(tmp_path):
    """Mutant: the pattern's suffix test case-sensitive (camera frames ``F1.JPG`` … matched by ``'*'`` were left
    out, while the same folder given as a folder lists them). Non-image names are left out either way."""
    from dmenet.eval import focal_stack as fs

    for name in ("F10.JPG", "F2.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    frames = [tmp_path / "F2.JPG", tmp_path / "F10.JPG"]
    assert fs.stack_paths(tmp_path) == frames
    assert fs.stack_paths(tmp_path / "*") == frames


def test_stacks_problem_ignores_a_missing_stacks_parent(tmp_path):
    """Mutant: a spec where nothing is there taken as its parent folder (an --out beside a mistyped stack folder
    refused as inside it). An --out inside a real stack folder, given as a folder or a pattern, is refused."""
    from dmenet.eval import focal_stack as fs

    (tmp_path / "s").mkdir()
    assert fs.stacks_problem([str(tmp_path / "stakc")], tmp_path / "out") is None
    for spec in (tmp_path / "s", tmp_path / "s" / "*.png"):
        assert fs.stacks_problem([str(spec)], tmp_path / "s" / "out").startswith(f"--out {tmp_path / 's' / 'out'}: "
                                                                                 "is inside the stack folder")


def test_the_first_method_that_refuses_a_stack_skips_it_without_running_the_others(tmp_path, capsys, monkeypatch):
    """Mutant: the loop over methods not left at the first refusal (every later method run on a stack already
    skipped, and the reason naming the last one that refused)."""
    import cv2

    from dmenet.eval import focal_stack as fs
    from syndof import io as sio

    rng = np.random.default_rng(0)
    sharp = cv2.resize(rng.random((24, 32, 3)).astype(np.float32), (128, 96), interpolation=cv2.INTER_NEAREST)
    for k, s in enumerate((0.0, 2.0, 4.0)):
        frame = sharp.copy()
        frame[:, 64:] = cv2.GaussianBlur(sharp, (0, 0), 4.0 - s + 0.5)[:, 64:]
        if s:
            frame[:, :64] = cv2.GaussianBlur(sharp, (0, 0), s)[:, :64]
        sio.write_image(tmp_path / "st" / f"f{k}.png", frame)
    calls = []

    def refuse(frames, fn):
        calls.append(fn)
        raise ValueError(f"refusal {len(calls)}")

    monkeypatch.setattr(fs, "blur_maps", refuse)
    rc = fs.main(["--stack", str(tmp_path / "st"), "--method", "lbp", "zhuo_sim", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and len(calls) == 1 and "method lbp: refusal 1" in err, err
