"""Model-file pairs written as one by every writer (dmenet.models.model_io.write_model_pair), and the optimiser
state layout shared by the three trainers (dmenet.training.checkpoint.flatten_optimizer / unflatten_optimizer)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dmenet.distill.model_io import load_distill_model, save_distill_model
from dmenet.distill.models.unet import EffUNet, StudentConfig
from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
from dmenet.galetto.train import load_classifier, load_state, save_classifier, save_state
from dmenet.models.model_io import ModelFileError, load_model_file, save_model
from dmenet.training.checkpoint import flatten_optimizer, unflatten_optimizer
from model_helpers import tiny_dmenet

TINY_CLASSIFIER = ClassifierConfig(width=0.25, head_channels=16, blocks=2)
TINY_STUDENT = StudentConfig(encoder="lite0", decoder=(16, 16, 16, 16, 8))


def _classifier(version: int) -> BlurClassifier:
    torch.manual_seed(version)
    return BlurClassifier(TINY_CLASSIFIER).eval()


def _student(version: int) -> EffUNet:
    torch.manual_seed(version)
    return EffUNet(TINY_STUDENT).eval()


# Each writer: (save(path, version) -> the model saved, load(path) -> (step in the sidecar, model state read back)).
def _save_dmenet(path, version):
    model = tiny_dmenet(version)
    save_model(path, model, {"step": version})
    return model


def _load_dmenet(path):
    model, sidecar = load_model_file(path)
    return sidecar["step"], model.state_dict()


def _save_classifier(path, version):
    model = _classifier(version)
    save_classifier(path, model, {"step": version})
    return model


def _load_classifier(path):
    return json.loads(Path(f"{path}.json").read_text())["step"], load_classifier(path).state_dict()


def _save_student(path, version):
    model = _student(version)
    save_distill_model(path, "student", model, {"step": version})
    return model


def _load_student(path):
    model, info = load_distill_model(path)
    return info["step"], model.state_dict()


def _save_galetto_state(path, version):  # path = RUN/last
    model = _classifier(version)
    opt = torch.optim.Adam(model.parameters())
    save_state(path.parent, version, model, opt, torch.Generator().manual_seed(version), best=None)
    return model


def _load_galetto_state(path):
    model = _classifier(99)
    step, _ = load_state(path.parent, model, torch.optim.Adam(model.parameters()), torch.Generator())
    return step, model.state_dict()


WRITERS = {"dmenet": (_save_dmenet, _load_dmenet), "galetto_classifier": (_save_classifier, _load_classifier),
           "distill_model": (_save_student, _load_student), "galetto_state": (_save_galetto_state, _load_galetto_state)}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file below ``root`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))}


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_failed_sidecar_rename_leaves_the_earlier_pair_whole(writer, tmp_path, monkeypatch):
    """A crash between the weights' and the sidecar's rename (here: the sidecar's rename raises) keeps the
    earlier pair, byte for byte and readable; no temporaries are left."""
    save, load = WRITERS[writer]
    path = tmp_path / "last"
    old = save(path, 0)
    before = _snapshot(tmp_path)
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(".json") and str(src).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device (test)", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        save(path, 1)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    step, state = load(path)
    assert step == 0 and _same_state(state, old.state_dict())


@pytest.mark.parametrize("writer", ["dmenet", "galetto_classifier", "distill_model"])
def test_a_sidecar_that_cannot_be_serialised_writes_nothing(writer, tmp_path):
    save, load = WRITERS[writer]
    path = tmp_path / "best"
    old = save(path, 0)
    before = _snapshot(tmp_path)
    model = {"dmenet": tiny_dmenet, "galetto_classifier": _classifier, "distill_model": _student}[writer](1)
    bad = {"step": 1, "val": torch.tensor(0.5)}  # a tensor is not JSON
    with pytest.raises(TypeError, match="Tensor is not JSON serializable"):
        {"dmenet": lambda: save_model(path, model, bad),
         "galetto_classifier": lambda: save_classifier(path, model, bad),
         "distill_model": lambda: save_distill_model(path, "student", model, bad)}[writer]()
    assert _snapshot(tmp_path) == before
    step, state = load(path)
    assert step == 0 and _same_state(state, old.state_dict())


@pytest.mark.parametrize("writer", WRITERS)
def test_a_pair_is_replaced_whole(writer, tmp_path):
    save, load = WRITERS[writer]
    save(tmp_path / "last", 0)
    new = save(tmp_path / "last", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]
    assert all((tmp_path / n).stat().st_mode & 0o777 == 0o644 for n in ("last.json", "last.safetensors"))
    step, state = load(tmp_path / "last")
    assert step == 1 and _same_state(state, new.state_dict())


# ------------------------------------------------------------------------------------------------ optimiser state
def _stepped_adam(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Adam]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.9))
    for _ in range(2):
        net(torch.randn(5, 3)).square().sum().backward()
        opt.step()
        opt.zero_grad()
    return net, opt


def _same_optimizer_state(a: dict, b: dict) -> bool:
    """Equal state dicts; param groups compared as JSON stores them (betas come back as a list)."""
    groups = [json.dumps(x["param_groups"], sort_keys=True) for x in (a, b)]
    return (groups[0] == groups[1] and a["state"].keys() == b["state"].keys()
            and all(a["state"][i].keys() == b["state"][i].keys() and all(
                torch.equal(v, b["state"][i][k]) if isinstance(v, torch.Tensor) else v == b["state"][i][k]
                for k, v in a["state"][i].items()) for i in a["state"]))


def test_flatten_optimizer_layout_and_round_trip(tmp_path):
    net, opt = _stepped_adam()
    opt.state[net[0].weight]["note"] = 3  # a per-parameter entry that is not a tensor
    tensors = {"model.x": torch.zeros(1)}
    meta = flatten_optimizer("opt", opt, tensors)
    assert set(tensors) == {"model.x"} | {f"opt.state.{i}.{k}" for i in range(4)
                                          for k in ("step", "exp_avg", "exp_avg_sq")}
    assert meta["scalars"] == {"0.note": 3} and meta["param_groups"][0]["params"] == [0, 1, 2, 3]
    save_file(tensors, str(tmp_path / "t.safetensors"))  # through the files, as a checkpoint stores them
    meta = json.loads(json.dumps(meta))
    fresh = torch.optim.Adam(_stepped_adam(1)[0].parameters())
    fresh.load_state_dict(unflatten_optimizer("opt", meta, load_file(str(tmp_path / "t.safetensors"))))
    assert _same_optimizer_state(fresh.state_dict(), opt.state_dict())


def test_distill_checkpoint_uses_the_shared_layout_and_resumes_an_earlier_one(tmp_path):
    from dmenet.distill.checkpoints import load_checkpoint, save_checkpoint
    from dmenet.distill.config import load_distill_config
    from dmenet.distill.run import build_run

    cfg = load_distill_config(None, ["student.decoder=[16,16,16,16,8]", "train.init_imagenet=false",
                                     "train.wandb=disabled", "loss.consistency=0", "loss.adv_distill=0"])
    run = build_run(cfg)
    for opt, params in ((run.opt_g, run.nets.parameters()), (run.opt_d, run.discs.parameters())):
        for p in params:
            p.grad = torch.randn_like(p)
        opt.step()
    folder = save_checkpoint(tmp_path, run, 1, {}, keep_last=1)
    state = load_file(str(folder / "state.safetensors"))
    meta = json.loads((folder / "meta.json").read_text())
    assert "opt_g.state.0.exp_avg" in state and "opt_d.state.0.exp_avg" in state
    assert meta["opt_g"]["scalars"] == {} and "state_keys" not in meta["opt_g"]

    def resumed():
        other = build_run(cfg)
        assert load_checkpoint(folder, other) == 1
        return other

    other = resumed()
    for a, b in ((run.opt_g, other.opt_g), (run.opt_d, other.opt_d)):
        assert _same_optimizer_state(a.state_dict(), b.state_dict())
    # the layout distill checkpoints had before (tensors "{prefix}.{i}.{key}", meta "state_keys") still resumes
    for prefix in ("opt_g", "opt_d"):
        keys = {}
        for name in [n for n in state if n.startswith(f"{prefix}.state.")]:
            i, key = name[len(f"{prefix}.state."):].split(".", 1)
            state[f"{prefix}.{i}.{key}"] = state.pop(name)
            keys.setdefault(i, []).append(key)
        meta[prefix] = {"param_groups": meta[prefix]["param_groups"], "state_keys": keys}
    save_file(state, str(folder / "state.safetensors"))
    (folder / "meta.json").write_text(json.dumps(meta))
    other = resumed()
    for a, b in ((run.opt_g, other.opt_g), (run.opt_d, other.opt_d)):
        assert _same_optimizer_state(a.state_dict(), b.state_dict())


def test_model_digest_is_the_sha256_of_weights_nul_sidecar_nul(tmp_path):
    """The identity a prediction record keeps (dmenet.predict's model_sha256): the pair's bytes in order, each
    followed by a NUL, a missing sidecar counting as empty; pinned so that a change of the hashing is noticed."""
    from dmenet.models.model_io import model_digest

    weights = save_model(tmp_path / "m", tiny_dmenet())
    sidecar = weights.with_suffix(".json")
    want = hashlib.sha256(weights.read_bytes() + b"\0" + sidecar.read_bytes() + b"\0").hexdigest()
    assert model_digest(tmp_path / "m") == model_digest(sidecar) == want
    sidecar.unlink()
    assert model_digest(weights) == hashlib.sha256(weights.read_bytes() + b"\0\0").hexdigest()


@pytest.mark.parametrize("writer, words", [
    ("galetto_classifier", ["a galetto-classifier file (sidecar format 'galetto-classifier'), not a DMENet model",
                            "--method galetto"]),
    ("distill_model", ["a Distill student model file (sidecar format 'distill-dbdgan', kind 'student'), not a "
                       "DMENet model", "--method distill_student"]),
    ("galetto_state", ["a Galetto training checkpoint (sidecar format 'galetto-classifier-train')",
                       "not a DMENet model"])])
def test_another_trainers_file_given_as_a_dmenet_model_is_named_for_what_it_is(writer, words, tmp_path):
    """Review C4: a Galetto or Distill file given to a DMENet tool was refused as "format_version None, expected one
    of (1, 2)", which does not say what the file is."""
    path = tmp_path / ("last" if writer == "galetto_state" else "m")
    WRITERS[writer][0](path, 1)
    with pytest.raises(ModelFileError) as err:
        load_model_file(f"{path}.safetensors")
    line = str(err.value)
    assert line.startswith(f"{path}.safetensors: ") and "\n" not in line
    assert all(w in line for w in words), line


def test_a_checkpoints_train_state_or_a_missing_pair_given_as_a_model_is_named(finished_blur_run, tmp_path):
    """Review C4: a DMENet checkpoint's train.safetensors was refused as "'model_config' must be a JSON object", and
    a path where neither file exists was named only by its .json."""
    from dmenet.training import checkpoint

    state = checkpoint.resolve(finished_blur_run) / "train.safetensors"
    with pytest.raises(ModelFileError) as err:
        load_model_file(state)
    assert str(err.value).startswith(f"{state}: a DMENet training checkpoint's state (train.json")
    assert "model.safetensors in the same folder" in str(err.value)
    with pytest.raises(ModelFileError) as err:
        load_model_file(tmp_path / "nope.safetensors")
    assert str(err.value).startswith(f"{tmp_path / 'nope.safetensors'}: model file not found")


def test_calibrate_names_a_galetto_file_in_one_line(tmp_path, capsys):
    """The refusal as a DMENet tool prints it: exit 2, one line, nothing written (the shipped Galetto file)."""
    from dmenet import calibrate

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "galetto_mbv2.safetensors"
    out = tmp_path / "y.safetensors"
    assert calibrate.main(["bn", "--model", str(shipped), "--synthetic", str(tmp_path), "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "a galetto-classifier file" in err[0] and "--method galetto" in err[0], err
    assert not any(tmp_path.iterdir())
