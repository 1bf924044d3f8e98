"""ONNX export (``python -m dmenet.export``) of a tiny DMENet: ONNX Runtime matches PyTorch; bad options exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmenet import export
from dmenet.models import ModelConfig, build_dmenet
from dmenet.models.model_io import save_model
from model_helpers import randomise_batchnorm

ort = pytest.importorskip("onnxruntime")  # installed by the `export` extra (make test installs it)


@pytest.fixture(scope="module", params=[1, 2], ids=["tail1", "tail2"])
def tiny_model_path(tmp_path_factory, request):
    """A tiny lite model with the full-resolution tail, then with the half-resolution one (``tail_scale`` 2)."""
    torch.manual_seed(0)
    model = build_dmenet(ModelConfig(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25,
                                     tail_scale=request.param))
    randomise_batchnorm(model.blur)  # non-trivial moving statistics, so the folded BatchNorm matters
    return save_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", model, {"note": "random init"})


def test_export_matches_pytorch(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    assert export.main(["--format", "onnx", "--model", str(tiny_model_path), "--out", str(out),
                        "--size", "32", "48"]) == 0
    assert "max |Δ|" in capsys.readouterr().out
    # independently: ONNX Runtime on a new input against the plain eval-mode PyTorch forward of B
    from dmenet.inference import load_model

    model = load_model(tiny_model_path)
    x = torch.rand(1, 3, 32, 48)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.inference_mode():
        want = model.blur(x.contiguous(memory_format=torch.channels_last)).defocus.numpy()
    assert got.shape == (1, 1, 32, 48)
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(want - want.mean()).max() > 1e-3  # a non-constant map


@pytest.mark.parametrize("size", [["30", "48"], ["0", "16"]])
def test_bad_size_is_a_usage_error(tmp_path, capsys, size):
    rc = export.main(["--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--size", *size])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--size" in err[0]
    assert not (tmp_path / "x.onnx").exists()


def test_missing_model_is_a_usage_error(tmp_path, capsys):
    rc = export.main(["--format", "onnx", "--model", str(tmp_path / "nope.safetensors"), "--out",
                      str(tmp_path / "x.onnx")])
    assert rc == 2 and "nope.safetensors" in capsys.readouterr().err


def test_distill_student_export_matches_pytorch(tmp_path, capsys):
    """The shipped student, traced at 64×96: ONNX Runtime's logits equal PyTorch's on a new input."""
    from dmenet.distill.method import DEFAULT_STUDENT
    from dmenet.distill.model_io import load_distill_model

    out = tmp_path / "student.onnx"
    assert export.main(["--format", "onnx", "--network", "distill_student", "--out", str(out),
                        "--size", "64", "96"]) == 0
    assert "distill_student, input 1x3x64x96" in capsys.readouterr().out
    model, _ = load_distill_model(DEFAULT_STUDENT)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    got = export.ort_session(out).run(None, {"image": x.numpy()})[0]
    with torch.inference_mode():
        want = model(x).numpy()
    assert got.shape == (1, 1, 64, 96) and np.abs(got - want).max() < 1e-4
    assert want.std() > 1e-2  # a non-constant map


def test_galetto_export_has_a_dynamic_batch(tmp_path, capsys):
    """The classifier's graph takes any number of 32×32 windows and matches PyTorch's logits."""
    from dmenet.galetto.method import DEFAULT_MODEL
    from dmenet.galetto.train import load_classifier

    out = tmp_path / "galetto.onnx"
    assert export.main(["--format", "onnx", "--network", "galetto", "--out", str(out)]) == 0
    assert "(dynamic axes)" in capsys.readouterr().out
    model = load_classifier(DEFAULT_MODEL)
    session = export.ort_session(out)
    for n in (1, 5):
        x = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(n))
        got = session.run(None, {"patch": x.numpy()})[0]
        with torch.inference_mode():
            want = model(x).numpy()
        assert got.shape == (n, 20) and np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("args, words", [
    (["--network", "distill_teacher"], "no teacher is shipped"),
    (["--network", "distill_teacher", "--model", "checkpoints/distill_student.safetensors"], "not a teacher"),
    (["--network", "distill_student", "--size", "48", "64"], "multiples of 32"),
])
def test_distill_export_usage_errors(tmp_path, capsys, args, words):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    args = [str(repo / a) if a.startswith("checkpoints/") else a for a in args]
    rc = export.main(["--format", "onnx", "--out", str(tmp_path / "x.onnx"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0]
    assert not list(tmp_path.iterdir())


def test_existing_out_is_refused_and_a_failed_check_writes_nothing(tiny_model_path, tmp_path, capsys, monkeypatch):
    """--out naming the input model, an earlier export or a folder: exit 2, one line, nothing changed; a graph that
    fails the ONNX Runtime check is not written (exit 1, one line)."""
    model_copy = tmp_path / "m.safetensors"
    model_copy.write_bytes(tiny_model_path.read_bytes())
    model_copy.with_suffix(".json").write_bytes(tiny_model_path.with_suffix(".json").read_bytes())
    earlier = tmp_path / "old.onnx"
    earlier.write_bytes(b"OLD")
    (tmp_path / "folder").mkdir()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for out in (model_copy, earlier, tmp_path / "folder"):
        rc = export.main(["--format", "onnx", "--model", str(model_copy), "--out", str(out), "--size", "32", "48"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and f"--out {out}: exists" in err[0]
    monkeypatch.setattr(export, "check_onnx", lambda net, graph, threads=1: 2.0)  # a graph that disagrees
    new = tmp_path / "new.onnx"
    rc = export.main(["--format", "onnx", "--model", str(model_copy), "--out", str(new), "--size", "32", "48"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "2.00e+00" in err[0] and "not written" in err[0]
    assert not new.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_a_model_whose_sigma_path_uses_per_image_statistics_is_refused(tmp_path, capsys):
    """Review C3: the graph folds the moving statistics; a model whose recipe normalises the σ path per image (a
    dmenet_lite_finetune run before ``calibrate bn``) was exported with exit 0 and a passing check (the check compares
    the graph with the same folded module), its σ maps up to 3.4 px off the model's. Now refused, nothing written."""
    from dmenet.models.recipe import BNMode

    torch.manual_seed(0)
    model = build_dmenet(ModelConfig(encoder="mobilenet_v2", width=0.125, refine_blocks=1, calib_width=0.25))
    randomise_batchnorm(model.blur)
    model.recipe = model.recipe.with_bn(sigma=BNMode.IMAGE)
    path = save_model(tmp_path / "per_image.safetensors", model, {"note": "random init"})
    out = tmp_path / "m.onnx"
    capsys.readouterr()
    assert export.main(["--format", "onnx", "--model", str(path), "--out", str(out), "--size", "32", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and str(path) in err and "calibrate bn" in err
    assert not out.exists()


def test_e1_an_unreadable_model_file_or_sidecar_is_named_as_such_not_as_corrupt(tmp_path, capsys, monkeypatch):
    """A model file without read permission was "not a readable safetensors file (empty, truncated or corrupt: No
    such file or directory …)" (safetensors' words), an unreadable sidecar "invalid JSON ([Errno 13] Permission
    denied: '…')": each is now its own reason, the file named once."""
    import shutil
    from pathlib import Path

    from hostile_helpers import unreadable

    repo = Path(__file__).resolve().parents[1] / "checkpoints"
    for network, shipped in (("galetto", "galetto_mbv2"), ("dmenet", "dmenet_lite"),
                             ("distill_student", "distill_student")):
        weights = tmp_path / f"{shipped}.safetensors"
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(repo / f"{shipped}{suffix}", tmp_path / f"{shipped}{suffix}")
        size = [] if network == "galetto" else ["--size", "64", "64"]
        with unreadable(weights, monkeypatch):
            rc = export.main(["--format", "onnx", "--network", network, "--model", str(weights), "--out",
                              str(tmp_path / "x.onnx"), *size])
        assert (rc, capsys.readouterr().err.strip()) == (2, f"error: {weights}: Permission denied")
    sidecar = tmp_path / "dmenet_lite.json"
    with unreadable(sidecar, monkeypatch):
        rc = export.main(["--format", "onnx", "--model", str(tmp_path / "dmenet_lite"), "--out",
                          str(tmp_path / "x.onnx"), "--size", "64", "64"])
    assert (rc, capsys.readouterr().err.strip()) == (2, f"error: {sidecar}: Permission denied")
    assert not (tmp_path / "x.onnx").exists()


def test_l1_a_model_folder_or_a_sidecar_that_is_a_folder_is_named_as_given(tmp_path, capsys):
    """§20 Left (L1): ``--model FOLDER`` was "FOLDER.safetensors / .json: model file not found" (galetto),
    "FOLDER.safetensors: model file not found" (distill), and a sidecar that is a folder "not found": files the user
    did not give. Every loader (DMENet, Galetto, Distill, a teacher's fingerprint) now names what was given and what
    it is."""
    import shutil
    from pathlib import Path

    from dmenet.training.data_record import model_fingerprint
    from syndof.io import InputError

    repo = Path(__file__).resolve().parents[1] / "checkpoints"
    folder = tmp_path / "runs"
    folder.mkdir()
    pair = "; a model is NAME.safetensors + NAME.json"
    for network, shipped in (("galetto", "galetto_mbv2"), ("dmenet", "dmenet_lite"),
                             ("distill_student", "distill_student")):
        size = [] if network == "galetto" else ["--size", "64", "64"]
        out = ["--out", str(tmp_path / "x.onnx"), *size]
        rc = export.main(["--format", "onnx", "--network", network, "--model", str(folder), *out])
        assert (rc, capsys.readouterr().err.strip()) == (2, f"error: {folder}: is a folder, not a model file{pair}")
        shutil.copyfile(repo / f"{shipped}.safetensors", tmp_path / f"{shipped}.safetensors")
        (tmp_path / f"{shipped}.json").mkdir()
        for given in (tmp_path / shipped, tmp_path / f"{shipped}.safetensors"):
            rc = export.main(["--format", "onnx", "--network", network, "--model", str(given), *out])
            assert (rc, capsys.readouterr().err.strip()) == (
                2, f"error: {tmp_path / shipped}.json: the sidecar of model {given} is a folder, not a file{pair}")
        rc = export.main(["--format", "onnx", "--network", network, "--model", str(tmp_path / f"{shipped}.json"),
                          *out])
        assert (rc, capsys.readouterr().err.strip()) == (
            2, f"error: {tmp_path / shipped}.json: is a folder, not a model file{pair}")
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(InputError) as err:  # a kd run's frozen teacher, fingerprinted before it is loaded
        model_fingerprint(folder)
    assert str(err.value) == f"{folder}: is a folder, not a model file{pair}"


def test_e2_an_out_not_named_onnx_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    """``--out x.png`` got an ONNX graph under a photo's name, exit 0."""
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: pytest.fail("traced before --out was checked"))
    for name in ("x.png", "x", "x.onnx.tmp"):
        rc = export.main(["--format", "onnx", "--network", "galetto", "--out", str(tmp_path / name)])
        assert rc == 2 and capsys.readouterr().err.strip() == (f"error: --out {tmp_path / name}: must end in .onnx "
                                                              "(the file is an ONNX graph)")
    assert not list(tmp_path.iterdir())


class _BakedBatch(torch.nn.Module):
    """Flattens each window, but with the batch size read as a Python int: the trace bakes it in as a constant."""

    def forward(self, x):
        return x.reshape(int(x.shape[0]), -1) * 2.0


@pytest.mark.parametrize("batch", [1, 4])
def test_a_dynamic_axis_the_trace_fixed_fails_the_check(batch):
    """The check ran the graph on the example alone, so a graph declared dynamic along its first axis but traced
    with that size as a constant passed (max |Δ| 0) and was written; it only broke on a user's other window count.
    The check now also runs the example with one item fewer (two for one): such a graph differs in shape or cannot
    run, max |Δ| inf; a truly dynamic graph still checks to 0."""
    from dmenet import export

    pytest.importorskip("onnxruntime")
    example = torch.rand(batch, 1, 2, 3, generator=torch.Generator().manual_seed(2))
    axes = {"patch": {0: "windows"}, "logits": {0: "windows"}}
    baked = export.Exportable(_BakedBatch().eval(), example, ["patch"], ["logits"], axes)
    assert [x.shape[0] for x in export.check_inputs(baked)] == [batch, batch - 1 if batch > 1 else 2]
    assert export.check_onnx(baked, export.onnx_bytes(baked)) == float("inf")
    dynamic = export.Exportable(torch.nn.Flatten().eval(), example, ["patch"], ["logits"], axes)
    assert export.check_onnx(dynamic, export.onnx_bytes(dynamic)) == 0.0
