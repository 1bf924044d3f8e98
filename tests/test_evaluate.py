"""``python -m dmenet.evaluate`` end to end: predictions mode on CUHK files, several methods side by side, RTF."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dmenet import evaluate
from dmenet.eval import rtf
from syndof import io


def _read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.shared
def test_predictions_mode_writes_every_report(shared, tmp_path):
    cuhk = shared("data", "cuhk")
    out = tmp_path / "out"
    rc = evaluate.main(["--benchmark", "cuhk", "--data", str(cuhk), "--predictions", str(cuhk / "hifst_maps"),
                        "--pattern", "{stem}_HiFSTBlurMap.png", "--invert", "--include", "out_of_focus00*",
                        "--limit", "6", "--out", str(out), "--wandb", "disabled"])
    assert rc == 0
    for name in ("metrics.json", "pr_curve.csv", "per_image.csv", "pr_curve.png", "panel.png", "f_curve.csv"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["benchmark"] == "cuhk" and meta["metrics"]["n_images"] == 6
    assert meta["protocol"]["beta2"] == 0.3 and meta["protocol"]["resolution"] == "native"
    protocol = meta["protocol"]
    assert "inverted" in protocol["prediction_polarity"] and "white = blurred" in protocol["gt_polarity"]
    assert "pooled" in meta["protocol"]["aggregation"]
    for key in ("mae", "fmax", "fmax_of_mean_curve", "f_at_0.5", "iou_pooled", "adaptive_f_1.5", "adaptive_f_2",
                "pr_auc"):
        assert 0.0 <= meta["metrics"][key] <= 1.0, key
    pr = _read_csv(out / "pr_curve.csv")
    assert len(pr) == 256 and list(pr[0]) == ["threshold", "precision", "recall"]
    assert float(pr[0]["recall"]) == pytest.approx(1.0)
    rows = _read_csv(out / "per_image.csv")
    assert [r["stem"] for r in rows] == [f"out_of_focus000{i}" for i in range(1, 7)]
    panel = cv2.imread(str(out / "panel.png"), cv2.IMREAD_UNCHANGED)
    assert panel.dtype == np.uint8 and panel.ndim == 3 and panel.shape[0] >= 6 * 160


@pytest.mark.shared
def test_saved_predictions_with_allow_missing_images_score_the_photos_present(shared, tmp_path):
    """``--allow-missing-images`` with ``--predictions`` scores the GT files that have a photo (the 5 of
    cuhk/image among 1000 masks), as with a method; it used to be accepted and ignored (a map was asked for all
    1000)."""
    cuhk = shared("data", "cuhk")
    out = tmp_path / "out"
    assert evaluate.main(["--benchmark", "cuhk", "--data", str(cuhk), "--predictions", str(cuhk / "hifst_maps"),
                          "--pattern", "{stem}_HiFSTBlurMap.png", "--invert", "--allow-missing-images",
                          "--out", str(out), "--wandb", "disabled"]) == 0
    stems = [r["stem"] for r in _read_csv(out / "per_image.csv")]
    assert stems == sorted(p.stem for p in (cuhk / "image").iterdir())


@pytest.mark.shared
def test_missing_prediction_is_an_error(shared, tmp_path, capsys):
    """A missing prediction stops the run (exit 2) with the file named, and no partial report is written."""
    cuhk = shared("data", "cuhk")
    assert evaluate.main(["--benchmark", "cuhk", "--data", str(cuhk), "--predictions", str(cuhk / "hifst_maps"),
                          "--pattern", "{stem}_Missing.png", "--limit", "2", "--out", str(tmp_path / "out"),
                          "--wandb", "disabled"]) == 2
    err = capsys.readouterr().err
    assert "no prediction for motion0001.png" in err and "motion0001_Missing.png" in err
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.shared
def _register(monkeypatch, name, estimator_factory, learned=False):
    """Register a method for one test (the registry's table entry only needs ``load()`` and ``learned``)."""
    from types import SimpleNamespace

    from dmenet.methods import registry

    monkeypatch.setitem(registry.METHODS, name, SimpleNamespace(load=lambda: estimator_factory, learned=learned,
                                                                summary=name))


def test_several_methods_side_by_side(shared, tmp_path, monkeypatch):
    from dmenet.methods.peers import PeerEstimator

    _register(monkeypatch, "const", lambda o: PeerEstimator("const", lambda im: np.full(im.shape[:2], 0.5,
                                                                                        np.float32), "0.5"))
    _register(monkeypatch, "dark", lambda o: PeerEstimator("dark", lambda im: (1.0 - im.mean(axis=2)).astype(
        np.float32), "1 - gray"))
    out = tmp_path / "cmp"
    evaluate.main(["--benchmark", "xu100", "--data", str(shared("data", "xu100")), "--method", "const", "dark",
                   "--out", str(out), "--wandb", "disabled"])
    table = _read_csv(out / "summary.csv")
    assert [r["method"] for r in table] == ["const", "dark"]
    assert (out / "summary.md").read_text().startswith("| method |")
    assert (out / "const" / "metrics.json").is_file() and (out / "pr_curve.png").is_file()
    meta = json.loads((out / "dark" / "metrics.json").read_text())
    assert meta["protocol"]["resolution"] == "320" and "inverted on load" in meta["protocol"]["gt_polarity"]
    # a constant 0.5 map: MAE is exactly 0.5 whatever the GT
    assert float(table[0]["mae"]) == pytest.approx(0.5)


@pytest.mark.shared
def test_rtf_predictions_constant_output(shared, tmp_path):
    rtf_dir = shared("data", "rtf")
    preds = tmp_path / "pred"
    io.write_image(preds / "image_01.png", np.full((352, 352), 51, np.uint8))  # o = 0.2 → σ = 1.0 px (released)
    out = tmp_path / "rtf"
    evaluate.main(["--benchmark", "rtf", "--data", str(rtf_dir), "--predictions", str(preds),
                   "--sigma-mapping", "released", "--out", str(out), "--wandb", "disabled"])
    meta = json.loads((out / "metrics.json").read_text())
    from scipy.io import loadmat

    table = loadmat(str(rtf_dir / "convertion.mat"))["convertion"]
    radius = loadmat(str(rtf_dir / "map_01.mat"))["blurMap"][:352, :352]
    gt = table[np.abs(radius[..., None] - table[:, 1]).argmin(-1), 0]
    assert meta["metrics"]["mae"] == pytest.approx(np.mean(np.abs(1.0 - np.minimum(gt, 3.275))) / 3.275, abs=1e-6)
    assert "released" in meta["protocol"]["prediction_mapping"]
    assert (out / "panel.png").is_file() and (out / "per_image.csv").is_file()


@pytest.mark.shared
def test_methods_come_from_the_registry_with_the_shared_options(shared, tmp_path, monkeypatch):
    """evaluate builds ``--method`` through dmenet.methods.make_method with the shared flags; DBD scores the blur
    probability, RTF the σ map (px) of a method that gives σ."""
    from dmenet.methods.base import Estimate, Estimator

    seen = []

    class Fake(Estimator):
        name, gives_sigma, gives_probability = "dmenet", True, True

        def estimate(self, image, sigma=True, probability=True):
            return Estimate(sigma=np.full(image.shape[:2], 1.0, np.float32) if sigma else None,
                            blur_probability=np.full(image.shape[:2], 0.25, np.float32) if probability else None,
                            sigma_max=7.0)

        def describe(self):
            return "fake dmenet"

    _register(monkeypatch, "dmenet", lambda options: seen.append(options) or Fake(), learned=True)
    out = tmp_path / "d"
    assert evaluate.main(["--benchmark", "dut", "--data", str(shared("data", "dut")), "--checkpoint",
                          "fake.safetensors", "--flips", "2", "--out", str(out), "--wandb", "disabled"]) == 0
    assert seen[0].model == "fake.safetensors" and seen[0].flips == 2 and seen[0].device == "cpu"
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["method"] == "dmenet" and "probability" in meta["source"] and "fake dmenet" in meta["source"]
    # RTF with σ px from the σ map: constant 1 px against the GT
    assert evaluate.main(["--benchmark", "rtf", "--data", str(shared("data", "rtf")), "--method", "dmenet",
                          "--out", str(tmp_path / "r"), "--wandb", "disabled"]) == 0
    meta = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert meta["protocol"]["prediction_mapping"].startswith("sigma")
    gt = rtf.load_rtf_sigma(shared("data", "rtf", "map_01.mat"))
    assert meta["metrics"]["mae"] == pytest.approx(rtf.rtf_errors(np.ones_like(gt), gt)[1], abs=1e-9)
    # --dmenet-output label scores σ/σ_max = 1/7 as the DBD map
    assert evaluate.main(["--benchmark", "dut", "--data", str(shared("data", "dut")), "--method", "dmenet",
                          "--dmenet-output", "label", "--out", str(tmp_path / "l"), "--wandb", "disabled"]) == 0
    assert "sigma/sigma_max" in json.loads((tmp_path / "l" / "metrics.json").read_text())["source"]


def test_panel_rows_do_not_repeat_on_small_sets():
    from dmenet.eval.report import worst_best

    rows = [{"stem": str(i), "fmax": i / 10} for i in range(5)]
    worst, best = worst_best(rows, "fmax", 3, higher_is_better=True)
    assert [r["stem"] for r in best] == ["4", "3"] and [r["stem"] for r in worst] == ["0", "1", "2"]
    worst, best = worst_best(rows * 2, "fmax", 3, higher_is_better=True)
    assert len(worst) == len(best) == 3


def test_the_pr_plot_leaves_the_matplotlib_backend_alone(tmp_path):
    """plot_pr_curves draws on a bare Figure: it used to call ``matplotlib.use("Agg")``, switching the backend of the
    whole process (a notebook's inline backend included) as a side effect of writing one PNG."""
    import matplotlib
    import matplotlib.pyplot as plt

    from dmenet.eval.report import plot_pr_curves

    before = matplotlib.get_backend()
    matplotlib.use("pdf")
    try:
        r = np.linspace(0.0, 1.0, 11)
        plot_pr_curves(tmp_path / "pr.png", {"a": (1.0 - r * r, r)}, "t")
        assert matplotlib.get_backend() == "pdf" and not plt.get_fignums()
    finally:
        matplotlib.use(before)
    img = cv2.imread(str(tmp_path / "pr.png"))
    assert img.shape == (450, 500, 3) and img.std() > 0


def test_map_to_uint8_rounds_scales_and_clips():
    """round(x / vmax · 255), clipped to 0…255, repeated to 3 channels (module docstring of report)."""
    from dmenet.eval.report import map_to_uint8

    g = map_to_uint8(np.array([[0.003, 0.5, 1.0, 2.0, -1.0]]))
    assert g.shape == (1, 5, 3) and g.dtype == np.uint8 and (g == g[..., :1]).all()
    assert g[0, :, 0].tolist() == [1, 128, 255, 255, 0]  # 0.765 → 1, 127.5 → 128 (half to even: 128)
    assert map_to_uint8(np.array([[3.5]]), vmax=7.0)[0, 0, 0] == 128


def test_syndof_predictions_end_to_end(tmp_path):
    data = tmp_path / "syn"
    sigma = np.array([[0.0, 3.5], [7.0, 1.4]], np.float32)
    io.write_sigma_map(data / "blur_map" / "a.png", sigma)
    io.write_image(data / "image" / "a.png", np.zeros((2, 2, 3), np.float32))
    np.save(tmp_path / "a.npy", np.full((2, 2), 3.5, np.float32))  # σ px
    out = tmp_path / "o"
    evaluate.main(["--benchmark", "syndof", "--data", str(data), "--predictions", str(tmp_path), "--pattern",
                   "{stem}.npy", "--sigma-mapping", "sigma", "--out", str(out), "--wandb", "disabled"])
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["metrics"]["mae"] == pytest.approx(np.abs(0.5 - sigma / 7).mean(), abs=1e-6)
    assert meta["protocol"]["units"].startswith("label")


def test_saved_sigma_png_is_read_as_sigma(tmp_path, capsys):
    """predict's _sigma.png (uint16, 3 channels, round(10·σ)) is σ px: scored with --sigma-mapping sigma like the
    .npy, refused without it (it was read as value/65535, σ/6,553.5 px, and scored silently)."""
    data, preds = tmp_path / "syn", tmp_path / "p"
    sigma = np.array([[0.0, 3.5], [7.0, 1.4]], np.float32)
    io.write_sigma_map(data / "blur_map" / "a.png", sigma)
    io.write_image(data / "image" / "a.png", np.zeros((2, 2, 3), np.float32))
    io.write_sigma_map(preds / "a_sigma.png", np.full((2, 2), 3.5, np.float32))
    np.testing.assert_allclose(evaluate.read_prediction(preds / "a_sigma.png"), 3.5)
    common = ["--benchmark", "syndof", "--data", str(data), "--predictions", str(preds),
              "--pattern", "{stem}_sigma.png", "--wandb", "disabled"]
    assert evaluate.main(common + ["--sigma-mapping", "sigma", "--out", str(tmp_path / "o")]) == 0
    meta = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert meta["metrics"]["mae"] == pytest.approx(np.abs(0.5 - sigma / 7).mean(), abs=1e-6)
    assert evaluate.main(common + ["--out", str(tmp_path / "o2")]) != 0
    err = capsys.readouterr().err
    assert "sigma-mapping" in err
    assert str(preds / "a_sigma.png") in err  # the refused map's own file, beside the sample's GT file


def test_ctcug_layout_and_polarity(tmp_path):
    """CTCUG (no copy here): image/*.jpg + gt/*.png with white = blurred, scored natively; a map equal to the GT
    scores perfectly, its inverse is the worst."""
    rng = np.random.default_rng(0)
    data, right, wrong = tmp_path / "ctcug", tmp_path / "right", tmp_path / "wrong"
    for i in range(3):
        mask = np.zeros((36, 48), np.uint8)
        mask[:, : 12 * (i + 1)] = 255  # white = blurred
        io.write_image(data / "image" / f"{i:03d}.jpg", rng.random((36, 48, 3)).astype(np.float32))
        io.write_image(data / "gt" / f"{i:03d}.png", mask)
        io.write_image(right / f"{i:03d}.png", mask)
        io.write_image(wrong / f"{i:03d}.png", 255 - mask)
    results = {}
    for name, preds in (("right", right), ("wrong", wrong)):
        out = tmp_path / f"out_{name}"
        assert evaluate.main(["--benchmark", "ctcug", "--data", str(data), "--predictions", str(preds),
                              "--out", str(out), "--wandb", "disabled"]) == 0
        results[name] = json.loads((out / "metrics.json").read_text())
    assert results["right"]["metrics"]["mae"] == pytest.approx(0.0)
    assert results["right"]["metrics"]["fmax"] == pytest.approx(1.0)
    assert results["wrong"]["metrics"]["mae"] == pytest.approx(1.0)
    assert results["right"]["metrics"]["n_images"] == 3
    assert results["right"]["protocol"]["resolution"] == "native"


def test_rtf_noise_layout_npy_and_mat_gt(tmp_path):
    """DMENet's test zip layout image/<s>/ + gt/<s>/: .npy GT holds σ px, .mat GT a disk radius (with the table);
    ids pair by trailing number; the noise level picks the folder and is recorded."""
    from scipy.io import savemat

    root = tmp_path / "RTF"
    table = np.array([[0.3, 0.5], [0.65, 1.0], [1.125, 2.0], [2.2, 4.0]])
    sigma_gt = {"0": 0.65, "1": 2.2}
    for noise, value in sigma_gt.items():
        (root / "gt" / noise).mkdir(parents=True)
        for i in (1, 2, 10):
            io.write_image(root / "image" / noise / f"image_{i:02d}.png", np.zeros((20, 24, 3), np.float32))
            if noise == "0":
                np.save(root / "gt" / noise / f"{i:02d}.npy", np.full((20, 24), value, np.float32))
            else:
                savemat(str(root / "gt" / noise / f"map_{i:02d}.mat"), {"blurMap": np.full((20, 24), 4.0)})
    savemat(str(root / "gt" / "convertion.mat"), {"convertion": table})
    preds = tmp_path / "pred"
    preds.mkdir()
    for i in (1, 2, 10):
        np.save(preds / f"image_{i:02d}.npy", np.full((20, 24), 1.0, np.float32))  # σ = 1 px everywhere
    for noise, value in sigma_gt.items():
        out = tmp_path / f"out{noise}"
        assert evaluate.main(["--benchmark", "rtf", "--data", str(root), "--rtf-noise", noise, "--predictions",
                              str(preds), "--pattern", "{stem}.npy", "--sigma-mapping", "sigma", "--out", str(out),
                              "--wandb", "disabled"]) == 0
        meta = json.loads((out / "metrics.json").read_text())
        assert meta["metrics"]["n_images"] == 3 and meta["protocol"]["noise_level"] == noise
        assert meta["metrics"]["mae"] == pytest.approx(abs(1.0 - value) / 3.275, abs=1e-6)
    # the GT loader outside the runner finds the table beside the GT, at any noise level
    from dmenet.eval import benchmarks as B
    from dmenet.eval.protocols import ProtocolOptions, make_protocol

    noisy_protocol = make_protocol(B.get_spec("rtf"), root, ProtocolOptions(rtf_noise="1"))
    (noisy, *_) = noisy_protocol.list_samples()
    assert noisy_protocol.load_gt(noisy) == pytest.approx(np.full((20, 24), 2.2, np.float32))
    # an id without its GT is named; the release layout has no noisy images
    (root / "gt" / "0" / "10.npy").unlink()
    assert evaluate.main(["--benchmark", "rtf", "--data", str(root), "--predictions", str(preds), "--pattern",
                          "{stem}.npy", "--out", str(tmp_path / "bad"), "--wandb", "disabled"]) == 2
    with pytest.raises(io.InputError, match=r"unmatched RTF files for ids \['10'\]"):
        rtf.list_rtf(root, "0")
    flat = tmp_path / "release"
    flat.mkdir()
    savemat(str(flat / "convertion.mat"), {"convertion": table})
    with pytest.raises(io.InputError, match="noise-free images only"):
        rtf.list_rtf(flat, "1")


def _eval_imports() -> dict[str, set[str]]:
    """``{module: dmenet.eval modules it imports}`` for every dmenet/eval module, lazy (in-function) imports
    included, parsed from the source (nothing is executed)."""
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "dmenet" / "eval"
    names = {f"dmenet.eval.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        if path.stem == "__init__":
            continue
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in names}
        graph[f"dmenet.eval.{path.stem}"] = found - {f"dmenet.eval.{path.stem}"}
    return graph


def test_no_import_cycle_in_eval():
    """No dmenet/eval module imports (directly or through others, lazily or not) one that imports it back."""
    graph = _eval_imports()
    assert graph["dmenet.eval.protocols"] >= {"dmenet.eval.benchmarks", "dmenet.eval.rtf"}  # the parser sees edges
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join(path + [node, nxt])}"
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_every_eval_module_imports_alone():
    """Each dmenet/eval module imports first in a fresh interpreter (an import loop would fail for some order)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]:\n"
            "    for k in [k for k in sys.modules if k.startswith('dmenet')]:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module(m)\n"
            "    print(m)\n")
    modules = sorted(_eval_imports())
    on_disk = sorted(f"dmenet.eval.{p.stem}" for p in (repo / "dmenet" / "eval").glob("*.py") if p.stem != "__init__")
    assert modules == on_disk  # every module, not an empty (or partial) list that would import nothing
    proc = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True,
                          cwd=repo, env={"PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "PATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == modules  # each imported, first, in a cleared interpreter


@pytest.mark.shared
def test_split_subset_and_input_size(shared, tmp_path, monkeypatch, capsys):
    """``--split/--subset`` scores exactly the listed stems of the CUHK training images; ``--input-size`` hands the
    method an N×N image, and its map is scored against the GT at the chosen resolution."""
    from dmenet.data import splits
    from dmenet.methods.peers import PeerEstimator

    seen = []

    def dark(image):
        seen.append(image.shape)
        return (1.0 - image.mean(axis=2)).astype(np.float32)

    _register(monkeypatch, "dark", lambda o: PeerEstimator("dark", dark, "test"))
    split = splits.make_split(["out_of_focus0001", "out_of_focus0002", "out_of_focus0003", "out_of_focus0004"],
                              [], n_val=2, seed=0)
    split_file = tmp_path / "split.json"
    io.write_json_atomic(split_file, split)
    common = ["--benchmark", "cuhk_train", "--data", str(shared("data", "cuhk")), "--allow-missing-images",
              "--split", str(split_file), "--method", "dark", "--wandb", "disabled"]
    assert evaluate.main(common + ["--input-size", "64", "--resolution", "320", "--out", str(tmp_path / "a")]) == 0
    meta = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert [r["stem"] for r in _read_csv(tmp_path / "a" / "per_image.csv")] == split["val"]
    assert seen == [(64, 64, 3)] * 2 and meta["protocol"]["input"].startswith("image resized to 64x64")
    assert meta["protocol"]["resolution"] == "320" and "subset 'val'" in meta["split"]
    seen.clear()
    assert evaluate.main(common + ["--subset", "train", "--out", str(tmp_path / "b")]) == 0
    rows = _read_csv(tmp_path / "b" / "per_image.csv")
    assert [r["stem"] for r in rows] == split["train"] and all(s[0] > 64 for s in seen)
    # a split that lists a stem the folder lacks is an error naming the split file, and nothing is written
    split["val"] = sorted(split["val"] + ["out_of_focus9999"])
    split["n_val"] = 3
    io.write_json_atomic(split_file, split)
    assert evaluate.main(common + ["--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "split.json" in err and "out_of_focus9999" in err
    assert not (tmp_path / "c" / "metrics.json").exists()


@pytest.mark.shared
def test_method_options_from_the_command_line(shared, tmp_path, monkeypatch):
    """``--method NAME:key=value`` reaches the method's factory; each choice gets its own folder and summary row.
    A constant map c scores MAE |c − g| on binary GT g, so levels 0.25 and 0.75 sum to exactly 1."""
    from dmenet.methods.peers import PeerEstimator

    seen = []

    def const(options):
        seen.append(options.extra)
        level = float(dict(options.extra)["level"])
        return PeerEstimator("const", lambda im: np.full(im.shape[:2], level, np.float32), f"{level}")

    _register(monkeypatch, "const", const)
    out = tmp_path / "levels"
    assert evaluate.main(["--benchmark", "xu100", "--data", str(shared("data", "xu100")), "--method",
                          "const:level=0.25", "const:level=0.75", "--out", str(out), "--wandb", "disabled"]) == 0
    assert seen == [(("level", 0.25),), (("level", 0.75),)]
    table = _read_csv(out / "summary.csv")
    assert [r["method"] for r in table] == ["const_level-0.25", "const_level-0.75"]
    assert (out / "const_level-0.25" / "metrics.json").is_file()
    assert float(table[0]["mae"]) + float(table[1]["mae"]) == pytest.approx(1.0, abs=1e-6)
    assert float(table[0]["mae"]) != pytest.approx(0.5, abs=1e-3)  # the GT is not half blurred: levels matter


def test_sharp_photos_score_false_blur(tmp_path, capsys):
    """``--benchmark sharp``: photos without GT files, every pixel in focus; the score is the map's mean (its MAE
    against an all-sharp mask) and the share called blurred at 0.5, per image and over the set. A ``--stems`` list may
    carry ``#`` comments (as screen_sharp.py writes them)."""
    data, preds = tmp_path / "photos", tmp_path / "maps"
    maps = {"a": np.zeros((8, 10), np.float32), "b": np.full((8, 10), 0.25, np.float32),
            "c": np.zeros((8, 10), np.float32)}
    maps["c"][:, 7:] = 1.0  # 30 % called blurred
    preds.mkdir()
    for stem, m in maps.items():
        io.write_image(data / f"{stem}.jpg", np.full((8, 10, 3), 0.5, np.float32))
        np.save(preds / f"{stem}.npy", m)
    stems = tmp_path / "stems.txt"
    stems.write_text("# sharp-everywhere screen of somewhere\nb\nc\n")
    out = tmp_path / "out"
    assert evaluate.main(["--benchmark", "sharp", "--data", str(data), "--predictions", str(preds), "--pattern",
                          "{stem}.npy", "--stems", str(stems), "--out", str(out), "--wandb", "disabled"]) == 0
    meta = json.loads((out / "metrics.json").read_text())
    m = meta["metrics"]
    assert m["n_images"] == 2 and m["mean_blur"] == pytest.approx((0.25 + 0.3) / 2)
    assert m["blurred_share"] == pytest.approx(0.15) and m["worst_mean_blur"] == pytest.approx(0.3)
    assert "every pixel" in meta["protocol"]["gt"] and "stems listed in" in meta["split"]
    assert [r["stem"] for r in _read_csv(out / "per_image.csv")] == ["b", "c"]
    assert (out / "panel.png").is_file()
    np.save(preds / "b.npy", np.full((8, 10), 1.5, np.float32))  # not a blur map: refused, naming the photo
    assert evaluate.main(["--benchmark", "sharp", "--data", str(data), "--predictions", str(preds), "--pattern",
                          "{stem}.npy", "--out", str(tmp_path / "bad"), "--wandb", "disabled"]) == 2
    assert "b.jpg" in capsys.readouterr().err


def test_false_blur_threshold_is_at_or_above_one_half():
    """``blurred_share`` counts pixels ≥ 0.5 (0.5 itself is called blurred, 0.49 is not)."""
    from dmenet.eval.sharp import false_blur

    mean, share = false_blur(np.array([[0.5, 0.49, 0.4, 0.6]]))
    assert mean == pytest.approx(0.4975) and share == pytest.approx(0.5)


def test_sharp_photos_through_a_method(tmp_path):
    """A registered method's blur map on a photo folder (the inference path, no GT anywhere)."""
    rng = np.random.default_rng(1)
    for k in range(2):
        io.write_image(tmp_path / "photos" / "image" / f"p{k}.png", rng.random((40, 48, 3)).astype(np.float32))
    out = tmp_path / "out"
    assert evaluate.main(["--benchmark", "sharp", "--data", str(tmp_path / "photos"), "--method", "laplacian",
                          "--out", str(out), "--wandb", "disabled"]) == 0
    m = json.loads((out / "metrics.json").read_text())["metrics"]
    assert m["n_images"] == 2 and 0 <= m["mean_blur"] <= m["worst_mean_blur"] <= 1 and 0 <= m["blurred_share"] <= 1


# per-render label MAE of rule g16's stage 1 (runs/g16/stage1, 4 Dec 2026): the shipped g5i, g14a, g15
G16_BASE = [0.086048, 0.142353, 0.054157, 0.125534, 0.086306, 0.044597, 0.061548, 0.46157, 0.060472, 0.112931,
            0.050621, 0.079928, 0.14437, 0.108058, 0.092615, 0.09603, 0.097683, 0.073194, 0.114974, 0.086861,
            0.056539, 0.060972, 0.164694, 0.103271]
G16_G14A = [0.068963, 0.120043, 0.051884, 0.123651, 0.073231, 0.036033, 0.068671, 0.43817, 0.05249, 0.110122,
            0.047523, 0.072722, 0.135136, 0.094504, 0.07392, 0.086832, 0.096858, 0.062645, 0.103759, 0.074229,
            0.044384, 0.062973, 0.143062, 0.10388]
G16_G15 = [0.069717, 0.11814, 0.051334, 0.122603, 0.072246, 0.038119, 0.069746, 0.431638, 0.053696, 0.11188,
           0.048936, 0.073529, 0.129562, 0.0946, 0.074726, 0.086799, 0.097894, 0.061479, 0.100988, 0.075232,
           0.044994, 0.062084, 0.140664, 0.101135]


def _per_image(folder: Path, values: list[float], metric: str = "mae", stems=None) -> Path:
    folder.mkdir(parents=True)
    stems = stems or [f"{i:06d}" for i in range(len(values))]
    (folder / "per_image.csv").write_text("stem,mse," + metric + "\n"
                                          + "".join(f"{s},0,{v}\n" for s, v in zip(stems, values)))
    return folder


def test_paired_bootstrap_reproduces_rule_g16(tmp_path, capsys):
    """The figures rule g16 recorded (galetto_rule_g16.md): −0.0092 [−0.0123, −0.0060] and −0.0097 [−0.0133,
    −0.0063], each better on 21 of 24 renders."""
    from dmenet.eval import paired

    idx = paired.bootstrap_indices(24, 10_000, 0)
    for values, want in ((G16_G14A, (-0.0092, -0.0123, -0.0060)), (G16_G15, (-0.0097, -0.0133, -0.0063))):
        r = paired.paired_bootstrap(np.array(G16_BASE), np.array(values), idx)
        assert (round(r.delta, 4), round(r.low, 4), round(r.high, 4)) == want and (r.better, r.n) == (21, 24)
    base = _per_image(tmp_path / "base", G16_BASE)
    assert paired.main([str(base), str(_per_image(tmp_path / "g15", G16_G15)), "--metric", "mae"]) == 0
    assert "Δ -0.0097 [-0.0133, -0.0063], better on 21 of 24" in capsys.readouterr().out


def test_paired_bootstrap_basics_and_bad_input(tmp_path, capsys):
    from dmenet.eval import paired

    base = np.linspace(0.1, 0.5, 9)
    r = paired.paired_bootstrap(base, base + 0.02, paired.bootstrap_indices(9, 500, 1))
    assert abs(r.delta - 0.02) < 1e-12 and abs(r.low - 0.02) < 1e-12 and abs(r.high - 0.02) < 1e-12
    assert r.better == 0  # higher MAE is worse
    assert paired.paired_bootstrap(base, base + 0.02, paired.bootstrap_indices(9), higher_is_better=True).better == 9
    a = _per_image(tmp_path / "a", [0.1, 0.2, 0.3])
    b = _per_image(tmp_path / "b", [0.1, 0.2, 0.3], stems=["000000", "000001", "x"])
    for argv, words in (([str(a), str(b), "--metric", "mae"], "not in both"),
                        ([str(a), str(a), "--metric", "fmax"], "no column 'fmax'"),
                        ([str(a), str(tmp_path / "none"), "--metric", "mae"], "no per_image.csv")):
        assert paired.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err


def test_wandb_sync_hint_names_the_finished_folder(tmp_path):
    """evaluate writes into a staged folder renamed at the end: the ``wandb sync`` line names the final path (W&B's
    own line named the staged one, gone by then)."""
    from dmenet.eval.report import wandb_sync_hint

    assert wandb_sync_hint(tmp_path) is None
    (tmp_path / "m" / "wandb" / "offline-run-1").mkdir(parents=True)
    assert wandb_sync_hint(tmp_path) == f"W&B offline run(s): wandb sync {tmp_path / 'm' / 'wandb' / 'offline-run-1'}"


def test_saved_sigma_png_below_one_px_is_not_scored_as_a_label_or_blur_map(tmp_path, capsys):
    """A σ-encoded file (predict's _sigma.png) is σ px whatever its values: one whose σ all lie in [0, 1] px passed
    the [0, 1] range check and was scored as a label (σ = 7·σ_px) or as a blur map, silently (review A1, 6 Dec
    2026). It is scored only with --sigma-mapping sigma on a σ benchmark, and refused naming the file otherwise;
    --invert is refused for σ benchmarks (it scored 1 − σ px)."""
    data, preds = tmp_path / "syn", tmp_path / "p"
    gt_sigma = np.array([[0.0, 0.5], [1.0, 0.2]], np.float32)
    io.write_sigma_map(data / "blur_map" / "a.png", gt_sigma)
    io.write_image(data / "image" / "a.png", np.zeros((2, 2, 3), np.float32))
    io.write_sigma_map(preds / "a_sigma.png", np.full((2, 2), 0.8, np.float32))  # σ ≤ 1 px: inside [0, 1]
    common = ["--benchmark", "syndof", "--data", str(data), "--predictions", str(preds),
              "--pattern", "{stem}_sigma.png", "--wandb", "disabled"]
    assert evaluate.main(common + ["--sigma-mapping", "sigma", "--out", str(tmp_path / "ok")]) == 0
    meta = json.loads((tmp_path / "ok" / "metrics.json").read_text())
    assert meta["metrics"]["mae"] == pytest.approx(np.abs(0.8 / 7 - gt_sigma / 7).mean(), abs=1e-6)
    capsys.readouterr()
    assert evaluate.main(common + ["--out", str(tmp_path / "label")]) == 2  # was rc 0, scored as label 0.8
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(preds / "a_sigma.png") in err and "--sigma-mapping sigma" in err
    assert not (tmp_path / "label").exists()
    sharp = tmp_path / "sharp"
    io.write_image(sharp / "image" / "a.png", np.zeros((2, 2, 3), np.float32))
    assert evaluate.main(["--benchmark", "sharp", "--data", str(sharp), "--predictions", str(preds), "--pattern",
                          "{stem}_sigma.png", "--wandb", "disabled", "--out", str(tmp_path / "blur")]) == 2
    assert str(preds / "a_sigma.png") in capsys.readouterr().err and not (tmp_path / "blur").exists()
    assert evaluate.main(common + ["--sigma-mapping", "sigma", "--invert", "--out", str(tmp_path / "inv")]) == 2
    assert "--invert" in capsys.readouterr().err and not (tmp_path / "inv").exists()


def test_max_side_is_in_the_report_of_every_method_it_changes(shared, tmp_path):
    """evaluate --max-side runs dmenet, dmenet_refined and galetto on a shrunk image (RTF MAE 0.05 → 0.14 at 180 px),
    yet their metrics.json source said nothing of it (review A5, 6 Dec 2026; distill_student and hifst said it)."""
    from dmenet.methods import make_method
    from dmenet.methods.base import MethodOptions

    for name in ("dmenet", "dmenet_refined", "galetto", "distill_student", "hifst"):
        assert "180 px" in make_method(name, MethodOptions(max_side=180)).describe(), name
        assert "≤ 180" not in make_method(name, MethodOptions()).describe(), name
    out = tmp_path / "o"
    assert evaluate.main(["--benchmark", "rtf", "--data", str(shared("data", "rtf")), "--method", "galetto",
                          "--max-side", "180", "--out", str(out), "--wandb", "disabled"]) == 0
    assert "long side ≤ 180 px" in json.loads((out / "metrics.json").read_text())["source"]


def test_paired_bootstrap_hand_values_ties_and_sides():
    """Hand-computed: base (0.2, 0.4, 0.6), candidate (0.1, 0.4, 0.9) → means 0.4 and 0.4667, Δ = +0.0667; the
    second image is a tie (Δ = 0), better on neither side. Every resample drawing image 0 alone gives Δ −0.1, image
    2 alone +0.3: the interval's ends are those extremes."""
    from dmenet.eval import paired

    base, cand = np.array([0.2, 0.4, 0.6]), np.array([0.1, 0.4, 0.9])
    idx = np.array([[0, 0, 0]] * 50 + [[2, 2, 2]] * 50)
    r = paired.paired_bootstrap(base, cand, idx)
    assert (r.base, r.candidate) == (pytest.approx(0.4), pytest.approx(1.4 / 3))
    assert r.delta == pytest.approx(0.2 / 3) and (r.low, r.high) == (pytest.approx(-0.1), pytest.approx(0.3))
    assert r.better == 1 and r.n == 3  # lower is better: image 0 only; the tie counts for neither
    assert paired.paired_bootstrap(base, cand, idx, higher_is_better=True).better == 1  # image 2 only


def test_paired_refuses_evaluations_scored_under_different_protocols(tmp_path, capsys):
    """paired only compared the benchmark names: the same maps scored at --resolution native and 320 were paired and
    printed "better on 2 of 2" (review A3, 6 Dec 2026). The scoring tags must agree; the map source's own tags
    (prediction polarity, σ mapping, input size) may differ."""
    from dmenet.eval import paired

    data, preds, sharp_preds = tmp_path / "cuhk", tmp_path / "p", tmp_path / "s"
    rng = np.random.default_rng(0)
    for stem in ("a", "b"):
        gt = np.zeros((40, 60), np.float32)
        gt[:, :30] = 1.0
        io.write_image(data / "gt" / f"{stem}.png", gt)
        io.write_image(data / "image" / f"{stem}.png", np.zeros((40, 60, 3), np.float32))
        pred = np.clip(gt * 0.7 + rng.random((40, 60)) * 0.3, 0, 1).astype(np.float32)
        io.write_image(preds / f"{stem}.png", pred)
        io.write_image(sharp_preds / f"{stem}.png", 1.0 - pred)
    runs = {"native": [], "r320": ["--resolution", "320"], "inverted": ["--invert"]}
    for name, extra in runs.items():
        source = sharp_preds if name == "inverted" else preds
        assert evaluate.main(["--benchmark", "cuhk", "--data", str(data), "--predictions", str(source), "--out",
                              str(tmp_path / name), "--wandb", "disabled", *extra]) == 0
    capsys.readouterr()
    assert paired.main([str(tmp_path / "native"), str(tmp_path / "r320"), "--metric", "mae"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another protocol" in err[0] and str(tmp_path / "r320") in err[0], err
    assert paired.main([str(tmp_path / "native"), str(tmp_path / "inverted"), "--metric", "mae"]) == 0


def test_bad_saved_npy_maps_are_refused_in_one_line_naming_the_map(shared, tmp_path, capsys):
    """Saved .npy maps that are object (pickle) / string / complex / empty arrays gave a line naming no file (numpy's
    message), a complex one was scored on its real part (rc 0), and a NaN or 1-D map named the GT file only
    (review A10, 6 Dec 2026)."""
    preds = tmp_path / "p"
    preds.mkdir()
    cases = {"obj": np.array([{"a": 1}], dtype=object), "str": np.array("abc"),
             "cplx": np.zeros((360, 360), np.complex64), "empty": np.zeros((0, 0)),
             "nan": np.full((360, 360), np.nan, np.float32), "flat": np.zeros(10, np.float32)}
    for name, arr in cases.items():
        np.save(preds / f"{name}.npy", arr, allow_pickle=True)
    for name in cases:
        out = tmp_path / f"o_{name}"
        rc = evaluate.main(["--benchmark", "rtf", "--data", str(shared("data", "rtf")), "--predictions", str(preds),
                            "--pattern", f"{name}.npy", "--out", str(out), "--wandb", "disabled"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and str(preds / f"{name}.npy") in err[0], (name, err)
        assert not out.exists()


def test_wandb_online_without_credentials_is_refused_before_any_work(shared, tmp_path, monkeypatch, capsys):
    """--wandb online without a W&B login scored every method, then wandb.init raised UsageError (a traceback,
    rc 1) and the staged report was dropped (review A2, 6 Dec 2026). Checked first now: one line, exit 2."""
    import wandb

    calls = []
    monkeypatch.setattr(wandb, "login", lambda **kw: calls.append(kw) or False)
    monkeypatch.setattr(evaluate, "evaluate_source", lambda *a, **k: pytest.fail("scored before the W&B check"))
    out = tmp_path / "o"
    assert evaluate.main(["--benchmark", "rtf", "--data", str(shared("data", "rtf")), "--method", "lbp",
                          "--out", str(out), "--wandb", "online"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--wandb online" in err[0] and "wandb login" in err[0], err
    assert not out.exists() and calls and calls[0].get("prompt") is False and calls[0].get("verify") is False
    from dmenet.eval.report import wandb_mode_problem

    assert wandb_mode_problem("offline") is None and wandb_mode_problem("disabled") is None and len(calls) == 1


def test_scoring_options_a_benchmark_does_not_read_are_refused(shared, tmp_path, capsys):
    """--input-size and --map-resize were refused for σ benchmarks, but --resolution / --adaptive-factor /
    --dmenet-output / --rtf-noise / --sigma-mapping were accepted and ignored where they do not apply (e.g. syndof
    --sigma-mapping released scored saved maps as labels, its report silent about it) (review A11, 6 Dec 2026)."""
    rtf_dir, xu = str(shared("data", "rtf")), str(shared("data", "xu100"))
    for bench, data, extra, option in (("rtf", rtf_dir, ["--resolution", "320"], "--resolution"),
                                       ("rtf", rtf_dir, ["--adaptive-factor", "2"], "--adaptive-factor"),
                                       ("rtf", rtf_dir, ["--dmenet-output", "label"], "--dmenet-output"),
                                       ("xu100", xu, ["--rtf-noise", "1"], "--rtf-noise"),
                                       ("xu100", xu, ["--sigma-mapping", "sigma"], "--sigma-mapping")):
        out = tmp_path / f"o_{option.strip('-')}"
        assert evaluate.main(["--benchmark", bench, "--data", data, "--method", "lbp", "--out", str(out),
                              "--wandb", "disabled", *extra]) == 2, option
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and option in err[0] and not out.exists(), err
    syn = tmp_path / "syn"
    io.write_sigma_map(syn / "blur_map" / "a.png", np.ones((2, 2), np.float32))
    io.write_image(syn / "image" / "a.png", np.zeros((2, 2, 3), np.float32))
    assert evaluate.main(["--benchmark", "syndof", "--data", str(syn), "--method", "lbp", "--sigma-mapping",
                          "released", "--out", str(tmp_path / "s"), "--wandb", "disabled"]) == 2
    assert "--sigma-mapping released" in capsys.readouterr().err


def test_dmenet_output_label_is_sigma_over_7_whatever_max_side_or_the_method_top(shared, tmp_path, monkeypatch):
    """--dmenet-output label is σ/7 (docs/evaluation.md §4, --help). It divided σ (input px) by the estimate's
    sigma_max, which is 7/scale under --max-side (σ/14 at --max-side 320 on a 640 px photo: the label halved) and 19
    for galetto (review A15, 6 Dec 2026)."""
    from dmenet.methods.base import Estimate, Estimator

    class Fake(Estimator):
        name, gives_sigma, gives_probability = "fake", True, True

        def __init__(self, top):
            self.top = top

        def estimate(self, image, sigma=True, probability=True):
            return Estimate(sigma=np.full(image.shape[:2], 2.1, np.float32) if sigma else None,
                            blur_probability=np.full(image.shape[:2], 0.5, np.float32) if probability else None,
                            sigma_max=self.top)

        def describe(self):
            return "fake"

    for top in (7.0, 14.0, 19.0):  # the shipped model, the same under --max-side at half size, galetto
        _register(monkeypatch, "fake", lambda options, top=top: Fake(top))
        out = tmp_path / f"l{top:g}"
        assert evaluate.main(["--benchmark", "dut", "--data", str(shared("data", "dut")), "--method", "fake",
                              "--dmenet-output", "label", "--out", str(out), "--wandb", "disabled"]) == 0
        gt = [1.0 - (cv2.imread(str(shared("data", "dut", "gt", f"{k}.bmp")), cv2.IMREAD_GRAYSCALE) >= 128)
              for k in (1, 2, 3)]
        want = np.mean([np.abs(0.3 - g).mean() for g in gt])  # label 2.1/7 = 0.3 against the blurred mask
        assert json.loads((out / "metrics.json").read_text())["metrics"]["mae"] == pytest.approx(want, abs=1e-6), top


def test_an_npz_archive_named_npy_is_refused_in_one_line_naming_it(shared, tmp_path, capsys):
    """Review of 87912c0: np.load reads an .npz archive whatever the file's name; read_prediction then took its
    ``.dtype`` (AttributeError: a traceback, naming no file)."""
    preds = tmp_path / "p"
    preds.mkdir()
    with open(preds / "m.npy", "wb") as f:
        np.savez(f, sigma=np.zeros((360, 360), np.float32))
    out = tmp_path / "o"
    rc = evaluate.main(["--benchmark", "rtf", "--data", str(shared("data", "rtf")), "--predictions", str(preds),
                        "--pattern", "m.npy", "--out", str(out), "--wandb", "disabled"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(preds / "m.npy") in err[0] and ".npz" in err[0], err
    assert not out.exists()


def test_sigma_mapping_sigma_refuses_maps_read_as_value_over_max(tmp_path, capsys):
    """Review of 87912c0: a σ-encoded file is now refused unless --sigma-mapping sigma, but the mirror case stayed
    silent: with --sigma-mapping sigma an 8-bit label map (0.5 = σ 3.5 px) was read as value/255 and scored as σ
    0.5 px (syndof MAE 0.428 where the label reading gives 0.002)."""
    data, preds = tmp_path / "syn", tmp_path / "p"
    io.write_sigma_map(data / "blur_map" / "a.png", np.full((4, 4), 3.5, np.float32))
    io.write_image(data / "image" / "a.png", np.zeros((4, 4, 3), np.float32))
    io.write_image(preds / "a.png", np.full((4, 4), 0.5, np.float32))
    common = ["--benchmark", "syndof", "--data", str(data), "--predictions", str(preds), "--wandb", "disabled"]
    assert evaluate.main(common + ["--out", str(tmp_path / "label")]) == 0
    capsys.readouterr()
    assert evaluate.main(common + ["--sigma-mapping", "sigma", "--out", str(tmp_path / "sigma")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(preds / "a.png") in err[0] and "value/max" in err[0], err
    assert not (tmp_path / "sigma").exists()
    np.save(preds / "a.npy", np.full((4, 4), 3.5, np.float32))  # σ px as stored: still scored
    assert evaluate.main(common + ["--sigma-mapping", "sigma", "--pattern", "{stem}.npy", "--out",
                                  str(tmp_path / "npy")]) == 0


def test_h91_an_rtf_image_name_that_is_no_file_is_named_not_called_unmatched(tmp_path, capsys):
    """An RTF image name that is a symbolic link to nothing, in a loop, or a FIFO was left out of the listing, so its
    ground truth was "unmatched RTF files for ids […]" (or, with that gone too, the sample left out unsaid). Such a
    name is a sample now: ``evaluate`` refuses it by name (exit 2, one line, nothing written) as it refuses an image
    it cannot decode; the images the benchmark scores are never fewer unsaid."""
    import os

    from scipy.io import savemat

    root = tmp_path / "RTF"
    root.mkdir()
    savemat(str(root / "convertion.mat"), {"convertion": np.array([[0.3, 0.5], [0.65, 1.0], [2.2, 4.0]])})
    preds = tmp_path / "pred"
    preds.mkdir()
    for i in (1, 2, 3, 4):
        savemat(str(root / f"map_{i:02d}.mat"), {"blurMap": np.full((20, 24), 1.0)})
        np.save(preds / f"image_{i:02d}.npy", np.full((20, 24), 0.65, np.float32))
    io.write_image(root / "image_01.png", np.zeros((20, 24, 3), np.float32))
    (root / "image_02.png").symlink_to("nowhere.png")
    (root / "image_03.png").symlink_to("image_04.png")
    (root / "image_04.png").symlink_to("image_03.png")
    samples = rtf.list_rtf(root)
    assert [(s.stem, Path(s.gt).name) for s in samples] == [(f"image_{i:02d}", f"map_{i:02d}.mat")
                                                              for i in (1, 2, 3, 4)]
    argv = ["--benchmark", "rtf", "--data", str(root), "--predictions", str(preds), "--pattern", "{stem}.npy",
            "--sigma-mapping", "sigma", "--wandb", "disabled"]
    assert evaluate.main([*argv, "--out", str(tmp_path / "o1")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    loop = "a symbolic link loop (too many levels of symbolic links)"
    assert err == [f"error: {root / 'image_02.png'}: a symbolic link to nothing (3 names where no file can be read, "
                   f"e.g. also {root / 'image_03.png'}: {loop}, {root / 'image_04.png'}: {loop})"]  # §26 K2
    assert not (tmp_path / "o1").exists()
    for name in ("image_02.png", "image_03.png", "image_04.png"):
        (root / name).unlink()
    os.mkfifo(root / "image_02.png")  # the noise-free folder of DMENet's layout: the same
    noisy = tmp_path / "noisy"
    (noisy / "image").mkdir(parents=True)
    (noisy / "gt").mkdir()
    root.rename(noisy / "image" / "0")
    (noisy / "gt" / "0").mkdir()
    for i in (1, 2, 3, 4):
        (noisy / "image" / "0" / f"map_{i:02d}.mat").rename(noisy / "gt" / "0" / f"{i:02d}.mat")
    (noisy / "image" / "0" / "convertion.mat").rename(noisy / "gt" / "convertion.mat")
    (noisy / "gt" / "0" / "03.mat").unlink()
    (noisy / "gt" / "0" / "04.mat").unlink()
    assert [s.stem for s in rtf.list_rtf(noisy)] == ["image_01", "image_02"]
    assert evaluate.main([*argv[:2], "--data", str(noisy), *argv[4:], "--out", str(tmp_path / "o2")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == [f"error: {noisy / 'image' / '0' / 'image_02.png'}: not a regular file (a FIFO, socket or device)"]


def test_h95_a_name_that_is_no_file_is_refused_by_name_not_left_out_or_called_unmatched(tmp_path, capsys):
    """The listings by stem left an image name where no file can be read (a symbolic link to nothing, in a loop, a
    FIFO) out: ``--allow-missing-images`` scored 2 of a folder's 4 image names, exit 0 (with a method and with saved
    predictions), the ``sharp`` benchmark likewise, and without the option the image was a "GT file without image"
    (and a GT name so, its image "without GT"). Each such name (an image's or a GT's) is refused now by name before
    any method runs: exit 2, one line, nothing written."""
    import os

    cuhk, preds, sharp = tmp_path / "cuhk", tmp_path / "pred", tmp_path / "sharp"
    for d in (cuhk / "image", cuhk / "gt", preds, sharp / "image"):
        d.mkdir(parents=True)
    mask = np.zeros((16, 16, 3), np.float32)
    mask[:, 8:] = 1.0
    for stem in "abcd":
        io.write_image(cuhk / "gt" / f"{stem}.png", mask)
        io.write_image(preds / f"{stem}.png", mask)
    for folder in (cuhk / "image", sharp / "image"):
        for stem in "ab":
            io.write_image(folder / f"{stem}.png", np.full((16, 16, 3), 0.5, np.float32))
    (cuhk / "image" / "c.png").symlink_to("nowhere.png")
    os.mkfifo(cuhk / "image" / "d.png")
    (sharp / "image" / "x.png").symlink_to("y.png")
    (sharp / "image" / "y.png").symlink_to("x.png")
    nothing, fifo = "a symbolic link to nothing", "not a regular file (a FIFO, socket or device)"
    loop = "a symbolic link loop (too many levels of symbolic links)"
    both = (f"{cuhk / 'image' / 'c.png'}: {nothing} (2 names where no file can be read, e.g. also "
            f"{cuhk / 'image' / 'd.png'}: {fifo})")  # every such name counted (§26 K2)
    cases = [(["--benchmark", "cuhk", "--data", str(cuhk), "--method", "laplacian", "--allow-missing-images"], both),
             (["--benchmark", "cuhk", "--data", str(cuhk), "--method", "laplacian"], both),
             (["--benchmark", "cuhk", "--data", str(cuhk), "--predictions", str(preds), "--allow-missing-images"],
              both),
             (["--benchmark", "cuhk", "--data", str(cuhk), "--method", "laplacian", "--stems", "LIST"],
              f"{cuhk / 'image' / 'd.png'}: {fifo}"),
             (["--benchmark", "sharp", "--data", str(sharp), "--method", "laplacian"],
              f"{sharp / 'image' / 'x.png'}: {loop} (2 names where no file can be read, e.g. also "
              f"{sharp / 'image' / 'y.png'}: {loop})")]
    (tmp_path / "LIST").write_text("b\nd\n")
    for i, (argv, line) in enumerate(cases):
        argv = [a if a != "LIST" else str(tmp_path / "LIST") for a in argv]
        capsys.readouterr()
        assert evaluate.main([*argv, "--wandb", "disabled", "--out", str(tmp_path / f"o{i}")]) == 2, argv
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert err == [f"error: {line}"], (argv, err)
        assert not (tmp_path / f"o{i}").exists()
    for name in ("c.png", "d.png"):  # a GT name that is no file: the same
        (cuhk / "image" / name).unlink()
        shutil.copy(cuhk / "image" / "a.png", cuhk / "image" / name)
    (cuhk / "gt" / "d.png").rename(tmp_path / "d.png")
    (cuhk / "gt" / "d.png").symlink_to("d.png")
    capsys.readouterr()
    assert evaluate.main([*cases[0][0], "--wandb", "disabled", "--out", str(tmp_path / "o9")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == [f"error: {cuhk / 'gt' / 'd.png'}: {loop}"]
    assert not (tmp_path / "o9").exists()
    (cuhk / "gt" / "d.png").unlink()
    (tmp_path / "d.png").rename(cuhk / "gt" / "d.png")
    assert evaluate.main([*cases[0][0], "--wandb", "disabled", "--out", str(tmp_path / "o10")]) == 0  # the 4 pairs
    assert json.loads((tmp_path / "o10" / "metrics.json").read_text())["split"] == f"4 samples found in {cuhk}"


def test_h94_evaluate_warns_once_per_animated_image(tmp_path, recwarn):
    """An animated benchmark image warned twice in one ``evaluate`` run: when the method read it, and again when the
    report's panel did. Once now (the panel's read of an image the run has read says nothing more)."""
    from PIL import Image
    from scipy.io import savemat

    from syndof.frames import FirstFrameWarning

    root = tmp_path / "RTF"
    root.mkdir()
    savemat(str(root / "convertion.mat"), {"convertion": np.array([[0.3, 0.5], [0.65, 1.0], [2.2, 4.0]])})
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)) for _ in range(3)]
    pictures[0].save(root / "image_01.gif", save_all=True, append_images=pictures[1:])
    savemat(str(root / "map_01.mat"), {"blurMap": np.full((20, 24), 1.0)})
    assert evaluate.main(["--benchmark", "rtf", "--data", str(root), "--method", "lbp", "--out",
                          str(tmp_path / "out"), "--wandb", "disabled"]) == 0
    assert [str(w.message) for w in recwarn if w.category is FirstFrameWarning] == [
        f"{root / 'image_01.gif'}: an animated GIF of 3 frames: only the first is read"]
    assert (tmp_path / "out" / "panel.png").is_file()


def test_n6_a_method_whose_every_map_is_constant_is_warned_of(tmp_path, caplog):
    """Two different tiny models (a Galetto classifier and a Distill student, both saturated at 1) scored exactly the
    same on CUHK-5 (MAE 0.2364, Fmax 0.8068, ...) with no word that each map was one value everywhere
    (reliability.md §23, N6): a warning in the log and in metrics.json; none when one map varies."""
    import logging

    data, preds = tmp_path / "ctcug", tmp_path / "maps"
    preds.mkdir()
    for i in range(3):
        mask = np.zeros((36, 48), np.uint8)
        mask[:, : 12 * (i + 1)] = 255
        io.write_image(data / "image" / f"{i:03d}.jpg", np.full((36, 48, 3), 0.5, np.float32))
        io.write_image(data / "gt" / f"{i:03d}.png", mask)
        np.save(preds / f"{i:03d}.npy", np.ones((36, 48), np.float32))  # "all blurred" everywhere
    argv = ["--benchmark", "ctcug", "--data", str(data), "--predictions", str(preds), "--pattern", "{stem}.npy",
            "--wandb", "disabled", "--out"]
    with caplog.at_level(logging.WARNING):
        assert evaluate.main([*argv, str(tmp_path / "const")]) == 0
    meta = json.loads((tmp_path / "const" / "metrics.json").read_text())
    assert any("every one of the 3 maps is constant (1 everywhere)" in w for w in meta["warnings"])
    assert "every one of the 3 maps is constant" in caplog.text
    varied = np.ones((36, 48), np.float32)
    varied[0, 0] = 0.0
    np.save(preds / "001.npy", varied)
    caplog.clear()
    assert evaluate.main([*argv, str(tmp_path / "varied")]) == 0
    meta = json.loads((tmp_path / "varied" / "metrics.json").read_text())
    assert not any("constant" in w for w in meta["warnings"]) and "constant" not in caplog.text


def test_r5_a_saved_npy_map_is_read_by_the_one_npy_reader(tmp_path, capsys):
    """Review R5 (6 Dec 2026): ``read_saved_map`` kept its own ``np.load`` beside ``syndof.io``'s ``.npy`` reader,
    and missed §19 S5 there: a channels-first (1, H, W) prediction was read as the (1, H) map of its first column and
    refused as "prediction 1x20 (HxW) does not have the aspect ratio of its GT 20x30 (transposed, or a crop of
    another image?)". It is now named as channels first; an (H, W, C) map still gives its first channel."""
    from hostile_helpers import write_cuhk_pairs

    data, preds = write_cuhk_pairs(tmp_path / "d", count=2), tmp_path / "p"
    preds.mkdir()
    maps = {f"s{i}": np.where(np.arange(30) < 8 + i, 0.0, 1.0)[None].repeat(20, 0).astype(np.float32)
            for i in range(2)}
    for stem, m in maps.items():
        np.save(preds / f"{stem}.npy", m[None])
    common = ["--benchmark", "cuhk", "--data", str(data), "--predictions", str(preds), "--pattern", "{stem}.npy",
              "--wandb", "disabled"]
    assert evaluate.main([*common, "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {preds / 's0.npy'}: a 3-D map must be (H, W, C)") \
        and "channels first" in err[0], err
    assert not (tmp_path / "o1").exists()
    for stem, m in maps.items():
        np.save(preds / f"{stem}.npy", np.dstack([m, 1.0 - m]))
    assert evaluate.main([*common, "--out", str(tmp_path / "o2")]) == 0
    assert json.loads((tmp_path / "o2" / "metrics.json").read_text())["metrics"]["mae"] == pytest.approx(0.0)
