"""The shared command-line vocabulary: every console script's ``--help`` example runs, bad options and bad files
give exit 2 and one ``error:`` line (never a traceback), the shared flags mean the same in every tool."""

from __future__ import annotations

import configparser
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from syndof import cli

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def console_scripts() -> dict[str, str]:
    """``{script name: module}`` from setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = [ln.strip() for ln in cfg["options.entry_points"]["console_scripts"].splitlines() if ln.strip()]
    return {name.strip(): target.strip().split(":")[0] for name, target in (ln.split("=") for ln in lines)}


SCRIPTS = console_scripts()
SLOW = {"syndof-render", "dmenet-demo", "syndof-generate", "dmenet-train"}
"""Examples that take more than a few seconds on 2 cores (a full-size render, training, fits on full-size photos)."""


def help_text(module: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def example_of(module: str, capsys) -> list[str]:
    """The one example of the module's ``--help`` epilog, as argv (script name dropped)."""
    text = help_text(module, capsys)
    lines = text.splitlines()
    assert "example:" in lines, f"{module} --help has no example"
    command = shlex.split(lines[lines.index("example:") + 1])
    assert command[0] in SCRIPTS and SCRIPTS[command[0]] == module, command
    return command[1:]


def test_every_entry_point_is_a_console_script():
    """Both ways: every ``python -m`` module of the packages is a console script, and every console script's module
    runs as ``python -m`` (an empty scan, e.g. a changed quoting of the guard, would have asserted nothing)."""
    modules = set(SCRIPTS.values())
    entry_points = set()
    for path in list((REPO / "dmenet").rglob("*.py")) + list((REPO / "syndof").rglob("*.py")):
        if re.search(r"""^if __name__ == ["']__main__["']:""", path.read_text(), re.M):
            entry_points.add(".".join(path.relative_to(REPO).with_suffix("").parts))
    assert entry_points - modules == set(), "python -m entry points that are not console scripts"
    assert modules - entry_points == set(), "console scripts whose module does not run as python -m"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A checkout-like folder: experiments/ and checkpoints/ of the repo, ../shared beside it (a skip when absent,
    a failure in CI: conftest's shared_file with DEFOCUS_REQUIRE_SHARED=1)."""
    from conftest import shared_file

    shared_file("data")
    base = tmp_path_factory.mktemp("cli")
    root = base / "repo"
    root.mkdir()
    for name in ("experiments", "checkpoints"):
        (root / name).symlink_to(REPO / name)
    (base / "shared").symlink_to(SHARED)
    return root


EXPECTED_OUTPUT = {
    "syndof-generate": "runs/generate_example/dataset.json",
    "syndof-render": "runs/render_example.png",
    "dmenet-train": "runs/train_example/model_last.safetensors",
    "dmenet-predict": "runs/predict_example/out_of_focus0011_sigma.png",
    "dmenet-evaluate": "runs/eval_example/metrics.json",
    "dmenet-summary": None,
    "dmenet-demo": "runs/demo_example/report.md",
    "dmenet-focal-stack": "runs/focal_stack_example/metrics.json",
    "dmenet-calibrate": "runs/calibrate_example.safetensors",
    "dmenet-export": "runs/export_example.onnx",
    "dmenet-splits": "runs/splits_example.json",
    "galetto-build-patches": "runs/galetto_patches_example/test.npz",
    "galetto-train": "runs/galetto_train_example/best.safetensors",
    "galetto-apps": "runs/galetto_apps_example/enhanced.png",
    "galetto-compare": "runs/galetto_compare_example/metrics.json",
    "galetto-select": "runs/galetto_select_example/selection.json",
    "galetto-calibrate": "runs/galetto_calibrate_example/galetto_fit.json",
    "syndof-demo": "runs/syndof_demo_example/contact_sheet.png",
    "distill-train": "runs/distill_train_example/ckpt/step_000003/model.safetensors",
    "distill-summary": None,
    "distill-calibrate": "runs/distill_calibrate_example/model.safetensors",
    "distill-select": None,
    "dmenet-paired": None,
}


NEEDS = {"dmenet-train": "syndof-generate", "galetto-train": "galetto-build-patches",
         "distill-select": "distill-train", "dmenet-paired": "dmenet-evaluate"}
"""Examples that read the output of another script's example."""


def test_every_script_has_an_expected_output():
    assert set(EXPECTED_OUTPUT) == set(SCRIPTS)


@pytest.mark.shared
@pytest.mark.parametrize("script", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in SCRIPTS])
def test_help_example_runs(script, workdir, monkeypatch, capsys):
    module = SCRIPTS[script]
    argv = example_of(module, capsys)
    monkeypatch.chdir(workdir)
    if script in NEEDS and not (workdir / EXPECTED_OUTPUT[NEEDS[script]]).is_file():
        first = example_of(SCRIPTS[NEEDS[script]], capsys)  # e.g. the train example trains on the generate example
        assert importlib.import_module(SCRIPTS[NEEDS[script]]).main(first) == 0
    rc = importlib.import_module(module).main(argv)
    err = capsys.readouterr().err
    assert rc == 0, err
    if EXPECTED_OUTPUT[script]:
        assert (workdir / EXPECTED_OUTPUT[script]).is_file()


def test_description_shows_the_literal_block_its_first_paragraph_announces(capsys):
    """A module docstring whose first paragraph ends with '::' (a reST literal block follows, e.g. usage lines) shows
    that block in --help, not a dangling '::' (galetto-apps printed only '… (:mod:`dmenet.galetto.apps`)::')."""
    p = cli.parser("demo", "Usage::\n\n    python -m demo X\n\nMore text.", "demo x")
    assert p.description == "Usage:\n\n    python -m demo X"
    text = help_text("dmenet.galetto.apps_cli", capsys)
    assert "::" not in text and "apps_cli enhance IMAGE --out OUT.png" in text


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_bad_option_is_one_line_and_exit_2(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(SCRIPTS[script]).main(["--no-such-option", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and err[0].endswith("--help)"), err


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("script, argv", [
    ("dmenet-predict", ["img.png", "--out", "o", "--model", "{bad}"]),
    ("dmenet-evaluate", ["--benchmark", "rtf", "--data", "d", "--model", "{bad}", "--out", "o"]),
    ("dmenet-demo", ["--out", "o", "--model", "{bad}"]),
    ("dmenet-focal-stack", ["--stack", "st/s", "--model", "{bad}", "--out", "o"]),  # o is not in st/: see below
    ("dmenet-calibrate", ["average", "--model", "{bad}", str(REPO / "checkpoints" / "dmenet_lite.safetensors"),
                          "--out", "o.safetensors"]),
    ("dmenet-calibrate", ["sigma", "--model", "{bad}", "--data", "d", "--out", "o.safetensors"]),
    ("dmenet-calibrate", ["dbd", "--model", "{bad}", "--labelled", "d", "--out", "o.safetensors"]),
    ("dmenet-calibrate", ["bn", "--model", "{bad}", "--real", "d", "--out", "o.safetensors"]),
    ("dmenet-export", ["--format", "onnx", "--model", "{bad}", "--out", "o.onnx", "--size", "32", "32"]),
])
def test_corrupt_model_file_is_one_line_naming_it(script, argv, tmp_path, monkeypatch, capsys):
    """A truncated .safetensors beside a valid sidecar: exit 2 and one line naming that file, in every model tool.
    The line must name the model: with ``--stack s --out o`` focal-stack refused ``--out o`` as inside the stack
    folder (``s`` is not a folder, so its parent, the cwd, is) and never read the model, and the test still passed."""
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((REPO / "checkpoints" / "dmenet_lite.safetensors").read_bytes()[:1000])
    (tmp_path / "bad.json").write_bytes((REPO / "checkpoints" / "dmenet_lite.json").read_bytes())
    (tmp_path / "img.png").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    rc = importlib.import_module(SCRIPTS[script]).main([a.format(bad=bad) for a in argv])
    assert rc == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {bad}: not a readable safetensors file"), line


def test_missing_config_and_bad_set_value_name_the_problem(tmp_path, capsys):
    summary = importlib.import_module("dmenet.summary")
    assert summary.main(["--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in _one_error_line(capsys)
    assert summary.main(["--config", str(REPO / "experiments" / "tiny.yaml"), "--set", "model.nope=1"]) == 2
    assert "model.nope" in _one_error_line(capsys)


def test_set_accepts_one_flag_with_many_values_and_repeated_flags():
    p = cli.OneLineParser()
    cli.add_set(p)
    assert p.parse_args(["--set", "a=1", "b=2", "--set", "c=3"]).overrides == ["a=1", "b=2", "c=3"]
    assert p.parse_args([]).overrides == []


def test_shared_flags_parse_the_same_everywhere(capsys):
    """--workers, --threads take positive integers; --device is checked before any work."""
    p = cli.OneLineParser(prog="t")
    cli.add_workers(p)
    cli.add_threads(p)
    cli.add_device(p)
    args = p.parse_args(["--workers", "3", "--threads", "2"])
    assert (args.workers, args.threads, args.device) == (3, 2, "cpu")
    for bad in (["--workers", "0"], ["--threads", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            p.parse_args(bad)
        assert exit_info.value.code == 2
        assert _one_error_line(capsys).startswith(f"error: argument {bad[0]}")
    with pytest.raises(ValueError, match="--device 'tpu'"):
        cli.check_device("tpu")
    cli.check_device("cpu")


def test_error_line_names_the_file_of_an_os_error():
    assert cli.error_line(FileNotFoundError(2, "No such file or directory", "/x/y.png")) == \
        "/x/y.png: No such file or directory"
    assert cli.error_line(ValueError("first\nsecond")) == "first second"


def test_entry_point_turns_usage_errors_into_exit_2_and_keeps_bugs(capsys):
    @cli.entry_point
    def main(argv=None):
        raise PermissionError(13, "Permission denied", "out/a.png")

    assert main([]) == 2
    assert _one_error_line(capsys) == "error: out/a.png: Permission denied"

    @cli.entry_point
    def buggy(argv=None):
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        buggy([])


def test_entry_point_prints_a_warning_as_one_line_and_restores_the_format():
    """A library warning inside a command is ``warning: <message>`` on one line (Python's default adds the warning's
    file, line number and source line); after the command, the caller's format is back. A fresh interpreter: pytest
    records warnings instead of printing them."""
    code = """if True:
        import sys, warnings
        from syndof import cli
        @cli.entry_point
        def main(argv=None):
            warnings.warn("recipe override:\\n  fitted at 8 flips, used at 2", UserWarning)
        before = warnings.formatwarning
        status = main([])
        print(status, warnings.formatwarning is before)
        warnings.warn("outside", UserWarning)
    """
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.stdout == "0 True\n", run.stderr
    err = run.stderr.splitlines()
    assert err[0] == "warning: recipe override: fitted at 8 flips, used at 2", run.stderr
    assert "UserWarning: outside" in err[1] and len(err) == 2  # Python's own format again outside the command


def test_deprecated_checkpoint_flag_still_works(capsys):
    from dmenet import predict

    args = predict.build_parser().parse_args(["a.png", "--out", "o", "--checkpoint", "m.safetensors"])
    assert args.model == "m.safetensors"
    assert "--checkpoint is deprecated" in capsys.readouterr().err
    assert "--checkpoint" not in predict.build_parser().format_help()


def test_deprecated_checkpoint_flag_satisfies_a_required_model(capsys):
    """Where ``--model`` is required (calibrate's steps, galetto.select), ``--checkpoint`` still counts for it; until
    5 Dec 2026 the alias was accepted and then the command said ``--model`` was missing. Both at once are refused."""
    from dmenet import calibrate

    parser = calibrate.build_parser()
    args = parser.parse_args(["dbd", "--checkpoint", "m.safetensors", "--labelled", "l", "--out", "o"])
    assert args.model == "m.safetensors"
    for argv in (["dbd", "--labelled", "l", "--out", "o"],
                 ["dbd", "--model", "a", "--checkpoint", "b", "--labelled", "l", "--out", "o"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(argv)
        assert exc.value.code == 2
    assert "--model" in capsys.readouterr().err


def test_console_script_runs_in_a_fresh_process(tmp_path):
    """``python -m`` with a bad option: one line on stderr, exit 2 (no traceback), as a user sees it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dmenet.predict", str(tmp_path / "none.png"), "--out",
                           str(tmp_path / "o"), "--flips", "3"], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: argument --flips"), proc.stderr


def test_method_text_names_the_method_and_its_options(capsys):
    """``--method NAME:key=value,…`` (dmenet.cli.add_method) is read the same by every entry point: YAML scalars,
    a folder-safe slug, and each malformed text refused as one usage line naming --method."""
    from dmenet import cli as dcli
    from dmenet.methods import MethodOptions, parse_method

    c = parse_method("galetto:stride=16,refine=paper,denoise=0.5")
    assert c.name == "galetto" and c.extra == (("stride", 16), ("refine", "paper"), ("denoise", 0.5))
    assert str(c) == "galetto:stride=16,refine=paper,denoise=0.5"
    assert c.slug == "galetto_stride-16_refine-paper_denoise-0.5"
    assert parse_method("lbp").extra == () and parse_method("lbp").slug == "lbp"
    for bad, why in (("nope", "unknown method"), ("galetto:", "nothing after"), ("galetto:stride", "not key=value"),
                     ("galetto:=3", "not key=value"), ("galetto:a=1,a=2", "given twice"),
                     ("galetto:a=[1]", "not a single value"), ("galetto:a=[1, 2]", "not a single value"),
                     ("lbp", "unknown method")):
        with pytest.raises(ValueError, match=why):
            parse_method(bad, names=("galetto",) if bad == "lbp" else None)
    # the same key from two places (e.g. apps' --set and --method) is refused, not silently overwritten
    with pytest.raises(ValueError, match="stride.*given twice"):
        parse_method("galetto:stride=16").make(MethodOptions(extra=(("stride", 8),)))
    # a key the method does not know is the method's own check
    with pytest.raises(ValueError, match="takes no method options, got window"):
        parse_method("lbp:window=3").make()

    p = cli.OneLineParser(prog="t")
    dcli.add_method(p, many=True, default=["galetto", "dmenet"], exclude=("hifst",))
    assert [str(m) for m in p.parse_args([]).method] == ["galetto", "dmenet"]
    assert p.parse_args(["--method", "lbp", "galetto:stride=32"]).method[1].extra == (("stride", 32),)
    for bad in ("hifst", "galetto:stride"):
        with pytest.raises(SystemExit) as exit_info:
            p.parse_args(["--method", bad])
        assert exit_info.value.code == 2
        assert _one_error_line(capsys).startswith("error: argument --method")


def test_bad_method_option_stops_predict_before_it_writes(tmp_path, capsys):
    import numpy as np

    from syndof import io

    predict = importlib.import_module("dmenet.predict")
    img = tmp_path / "a.png"
    io.write_image(img, np.full((40, 48, 3), 128, np.uint8))
    assert predict.main([str(img), "--out", str(tmp_path / "o"), "--method", "galetto:bogus=1"]) == 2
    assert "bogus" in _one_error_line(capsys) and not (tmp_path / "o").exists()


def test_folder_to_write_problem_checks_without_creating(tmp_path, monkeypatch):
    label = "--out X"
    assert cli.folder_to_write_problem(tmp_path, label) is None  # existing, writable: the probe leaves nothing
    assert list(tmp_path.iterdir()) == []
    assert cli.folder_to_write_problem(tmp_path / "a" / "b", label) is None  # created later by the tool
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("x")
    assert cli.folder_to_write_problem(tmp_path / "file" / "sub", label) == (
        f"{label}: {tmp_path / 'file'} is not a folder")

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", f"{dir}/tmp123")

    monkeypatch.setattr("tempfile.TemporaryFile", denied)  # a read-only file system, also for root
    assert cli.folder_to_write_problem(tmp_path, label) == (
        f"{label}: folder {tmp_path} is not writable (Permission denied)")
    monkeypatch.setattr(os, "access", lambda *args: False)
    assert cli.folder_to_write_problem(tmp_path / "new", label) == (
        f"{label}: cannot create folder {tmp_path / 'new'} ({tmp_path} is not writable)")


def test_ctrl_c_is_one_line_and_exit_130(capsys, tmp_path):
    """Ctrl-C inside a command: the blocks it unwinds clean up (here a staged folder), then one line on stderr and
    130 (128 + SIGINT), not a KeyboardInterrupt traceback."""
    from syndof import cli, io

    @cli.entry_point
    def main(argv=None):
        with io.staged_folder(tmp_path / "out") as stage:
            (stage / "half.txt").write_text("x")
            raise KeyboardInterrupt

    assert main([]) == cli.EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "interrupted (Ctrl-C)\n"
    assert list(tmp_path.iterdir()) == []


def test_flips_help_says_which_methods_read_it(capsys):
    """``--flips`` is read by DMENet (and dmenet_refined) only; galetto, the classical peers and the distill methods
    do not average flips (ignored by design, docs/reliability.md; distill refuses other than 1): the help of predict
    and evaluate says so, so the option is not silently without effect, and the list follows the methods: it is
    derived from the registry's rows, the one place that says which shared options a method reads (the estimators do
    not repeat it)."""
    from dmenet import cli as dcli
    from dmenet import evaluate, predict
    from dmenet.methods import METHODS
    from dmenet.methods.base import MAP_OPTIONS, Estimator

    assert not hasattr(Estimator, "shared_options")
    assert {name: spec.shared_options for name, spec in METHODS.items()} == {
        "dmenet": MAP_OPTIONS, "dmenet_refined": MAP_OPTIONS, "distill_student": ("max_side",),
        "distill_teacher": ("max_side",), "hifst": ("max_side",), "galetto": ("max_side",), "zhuo_sim": (),
        "lbp": (), "laplacian": ()}
    assert dcli.FLIPS_READERS == ("dmenet", "dmenet_refined")
    for main in (predict.main, evaluate.main):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "read by dmenet and dmenet_refined only; other methods ignore it" in text, text


def test_shared_config_wandb_and_workers_flags_read_the_same_everywhere():
    """``--config`` (syndof.cli.add_config), ``--wandb`` (dmenet.cli.add_wandb) and ``--workers`` with a tool-decided
    default (syndof.cli.add_workers ``default_text``) come from one helper each."""
    import argparse

    from dmenet import cli as dcli
    from dmenet.config import WANDB_MODES
    from syndof import cli as scli

    p = argparse.ArgumentParser()
    scli.add_config(p, help="YAML")
    dcli.add_wandb(p)
    scli.add_workers(p, default=None, help="processes", default_text="default: the tool decides")
    args = p.parse_args([])
    assert (args.config, args.wandb, args.workers) == (None, "offline", None)
    assert p.parse_args(["--config", "a.yaml", "--wandb", "disabled"]).wandb == "disabled"
    assert "(default: the tool decides)" in " ".join(p.format_help().split())
    for mode in WANDB_MODES:
        assert p.parse_args(["--wandb", mode]).wandb == mode
    with pytest.raises(SystemExit):
        p.parse_args(["--wandb", "sometimes"])
    q = argparse.ArgumentParser()
    scli.add_config(q, required=True)
    dcli.add_wandb(q, default=None)
    with pytest.raises(SystemExit):
        q.parse_args([])
    assert q.parse_args(["--config", "c.yaml"]).wandb is None


def test_a_list_option_given_twice_is_refused_not_cut_to_its_last_list(capsys):
    """argparse keeps only the last list of a ``nargs="+"`` option given twice: ``focal_stack --stack A --stack B``
    scored B alone and said nothing. Every tool's parser (syndof.cli.parser) refuses it in one line naming the
    option; one option with several values, a scalar option given twice and values after ``--`` are untouched."""
    p = cli.parser("demo", "Demo.", "demo --stack a b")
    p.add_argument("--stack", nargs="+")
    p.add_argument("--n", type=int)
    p.add_argument("rest", nargs="*")
    assert p.parse_args(["--stack", "a", "b", "--n", "1", "--n", "2"]).stack == ["a", "b"]
    assert p.parse_args(["--stack=a", "--", "--stack", "x"]).rest == ["--stack", "x"]
    for argv in (["--stack", "a", "--stack", "b"], ["--stack=a", "--stack", "b"]):
        with pytest.raises(SystemExit) as exit_info:
            p.parse_args(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "--stack given 2 times" in err, err
    from dmenet.eval import focal_stack

    with pytest.raises(SystemExit) as exit_info:
        focal_stack.main(["--stack", "a/*.png", "--stack", "b/*.png", "--method", "lbp", "--out", "o"])
    assert exit_info.value.code == 2 and "--stack given 2 times" in capsys.readouterr().err


SHARED_FLAG_HELPERS = {"--seed": {("syndof.cli", "add_seed")},
                       "--max-coc": {("syndof.cli", "add_max_coc")},
                       "--kernel": {("syndof.cli", "add_kernel")},
                       "--depth-scale": {("syndof.cli", "add_depth_scale")},
                       "--merge-tolerance": {("syndof.cli", "add_merge_tolerance")},
                       "--max-side": {("syndof.cli", "add_source_max_side"), ("dmenet.cli", "add_max_side")},
                       "--max-size": {("syndof.cli", "hidden_alias")},
                       "--count": {("syndof.cli", "add_sample_count")}}
"""The flags defined once, and by which helper(s): ``--max-side`` is the sources' limit in syndof's tools
(syndof.cli.add_source_max_side) and a model's working resolution in dmenet's (dmenet.cli.add_max_side)."""


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_seed_and_rendering_flags_are_defined_by_their_shared_helper(script, monkeypatch, capsys):
    """Every entry point (subcommands too: their parsers are built before ``--help`` is read) gets ``--seed``,
    ``--max-coc``, ``--kernel``, ``--depth-scale``, ``--merge-tolerance`` and ``--max-side`` from the one helper that
    defines the flag's check and help (syndof's tools had one definition each: ``demo --seed -1`` went unchecked up
    to the API, ``render --max-coc`` had a literal 29 and no help)."""
    import argparse

    defined: list[tuple[str, str, str]] = []
    add_argument = argparse._ActionsContainer.add_argument

    def recording(self, *args, **kwargs):
        caller = sys._getframe(1)
        for flag in args:
            defined.append((flag, caller.f_globals.get("__name__"), caller.f_code.co_name))
        return add_argument(self, *args, **kwargs)

    monkeypatch.setattr(argparse._ActionsContainer, "add_argument", recording)
    with pytest.raises(SystemExit):
        importlib.import_module(SCRIPTS[script]).main(["--help"])
    capsys.readouterr()
    assert defined, script
    for flag, module, function in defined:
        if flag in SHARED_FLAG_HELPERS:
            assert (module, function) in SHARED_FLAG_HELPERS[flag], (script, flag, module, function)


BAD_VALUES = {
    "--seed": (["-1", "1.5", "x"], [("syndof.demo",), ("syndof.generate",), ("dmenet.data.splits",),
                                    ("dmenet.eval.paired",), ("dmenet.galetto.build_patches",),
                                    ("dmenet.calibrate", "bn"), ("dmenet.calibrate", "head"),
                                    ("dmenet.calibrate", "feature-head")]),
    "--max-coc": (["1", "256", "0", "2.5", "x"], [("syndof.generate",), ("syndof.render",)]),
    "--kernel": (["star"], [("syndof.generate",), ("syndof.render",)]),
    "--depth-scale": (["0", "-5", "nan", "inf", "x"], [("syndof.generate",), ("syndof.render",)]),
    "--merge-tolerance": (["-1", "nan", "inf", "x"], [("syndof.generate",), ("syndof.render",)]),
    "--max-side": (["4", "15", "-1", "x"], [("syndof.demo",), ("syndof.generate",)]),
    "--max-size": (["4", "-1"], [("syndof.demo",), ("syndof.generate",)]),
    "--count": (["0", "-1", "1000000", "1.5", "x"], [("syndof.demo",), ("syndof.generate",), ("dmenet.demo",)]),
}


@pytest.mark.parametrize("flag", sorted(BAD_VALUES))
def test_shared_rendering_flags_refuse_the_same_values_with_the_same_line_in_every_tool(flag, capsys):
    """One check per flag: the same bad value gives every tool that takes the flag the same one-line usage error
    naming the option (exit 2, nothing run), up to the tool's ``(see … --help)``. ``syndof.demo`` took any integer
    ``--seed`` / ``--max-side`` and ``syndof.render`` any float ``--depth-scale`` at parse time."""
    values, tools = BAD_VALUES[flag]
    for value in values:
        lines = {}
        for module, *sub in tools:
            with pytest.raises(SystemExit) as exit_info:
                importlib.import_module(module).main([*sub, flag, value])
            assert exit_info.value.code == 2, (module, flag, value)
            line = _one_error_line(capsys)
            assert line.startswith(f"error: argument {flag}: ") and line.endswith("--help)"), line
            lines[module, *sub] = line.split(" (see python -m ")[0]
        assert len(set(lines.values())) == 1, lines


def test_rendering_flags_defaults_and_valid_values_parse_as_before():
    """The shared helpers keep each tool's defaults and valid values: SYNDOF's max CoC (units.DEFAULT_MAX_COC, 29)
    in generate and render, the demo's 320 px sources, generate's unlimited sources; ``--max-side 0`` is no limit
    in both syndof tools (generate refused it, the demo and generate()'s API took it)."""
    import argparse

    from syndof import units
    from syndof.demo import DEMO_MAX_SIZE
    from syndof.generate import build_parser
    from syndof.recipe import MIN_MAX_SIZE

    assert units.DEFAULT_MAX_COC == 29
    p = cli.OneLineParser(prog="t")
    cli.add_seed(p)
    cli.add_max_coc(p)
    cli.add_kernel(p)
    cli.add_depth_scale(p)
    cli.add_merge_tolerance(p)
    cli.add_source_max_side(p, default=DEMO_MAX_SIZE)
    args = p.parse_args([])
    assert vars(args) == {"seed": 0, "max_coc": 29, "kernel": "gaussian", "depth_scale": None,
                          "merge_tolerance": 0.0, "max_side": DEMO_MAX_SIZE}
    args = p.parse_args(["--seed", "7", "--max-coc", "255", "--kernel", "disc", "--depth-scale", "1e-3",
                         "--merge-tolerance", "0.075", "--max-side", str(MIN_MAX_SIZE)])
    assert vars(args) == {"seed": 7, "max_coc": 255, "kernel": "disc", "depth_scale": 1e-3,
                          "merge_tolerance": 0.075, "max_side": MIN_MAX_SIZE}
    assert p.parse_args(["--max-coc", "2", "--max-side", "0"]).max_side == 0
    gen = build_parser().parse_args(["--out", "o"])
    assert (gen.seed, gen.max_coc, gen.kernel, gen.depth_scale, gen.merge_tolerance, gen.max_side) == \
        (0, units.DEFAULT_MAX_COC, "gaussian", None, 0.0, None)
    assert build_parser().parse_args(["--out", "o", "--max-side", "0"]).max_side == 0
    q = argparse.ArgumentParser()
    cli.add_source_max_side(q)
    text = " ".join(q.format_help().split())
    assert f"0 = no limit, else >= {MIN_MAX_SIZE} (default no limit)" in text
    assert "--max-size" not in text  # the deprecated spelling stays hidden


@pytest.mark.parametrize("name", ["next\x85line.png", "line\u2028sep.png", "para\u2029sep.png", "csi\x9b31m.png",
                                  "new\nline.png", "bell\x07.png"])
def test_one_line_escapes_every_line_break_and_control_character_but_tab(name):
    """predict's lines name photos through ``one_line``; NEL (``\\x85``), U+2028 and U+2029 break a line as ``\\n``
    does (``str.splitlines``, log readers) and C1's CSI (``\\x9b``) is a terminal escape: they were printed as they
    are. A tab and ordinary non-ASCII letters stay."""
    from syndof.cli import one_line

    shown = one_line(f"[1/1] {name} -> x")
    assert len(shown.splitlines()) == 1 and shown.isprintable(), shown
    assert one_line("tab\there é漢") == "tab\there é漢"
