"""``python -m dmenet.evaluate`` end to end: predictions mode on CUHK files, several methods side by side, RTF."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from dmenet import evaluate
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
    assert "inverted" in meta["protocol"]["prediction_polarity"] and "white = blurred" in meta["protocol"]["gt_polarity"]
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
def test_missing_prediction_is_an_error(shared, tmp_path, caplog):
    """A missing prediction stops the run (exit 2) with the file named, and no partial report is written."""
    cuhk = shared("data", "cuhk")
    assert evaluate.main(["--benchmark", "cuhk", "--data", str(cuhk), "--predictions", str(cuhk / "hifst_maps"),
                          "--pattern", "{stem}_Missing.png", "--limit", "2", "--out", str(tmp_path / "out"),
                          "--wandb", "disabled"]) == 2
    assert "no prediction for motion0001.png" in caplog.text and "motion0001_Missing.png" in caplog.text
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.shared
def test_several_methods_side_by_side(shared, tmp_path, monkeypatch):
    from dmenet import peers

    monkeypatch.setitem(peers.PEERS, "const", lambda image: np.full(image.shape[:2], 0.5, np.float32))
    monkeypatch.setitem(peers.PEERS, "dark", lambda image: (1.0 - image.mean(axis=2)).astype(np.float32))
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
def test_dmenet_method_goes_through_inference(shared, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from dmenet import inference
    from dmenet.models.config import ModelConfig
    from dmenet.models.recipe import Recipe

    calls = []
    fake = SimpleNamespace(config=ModelConfig(), recipe=Recipe())  # config and recipe are read; inference is replaced
    monkeypatch.setattr(inference, "load_model", lambda path=None, device="cpu": calls.append(path) or fake)
    monkeypatch.setattr(inference, "estimate_blur_probability",
                        lambda image, model: np.full(image.shape[:2], 0.25, np.float32))
    monkeypatch.setattr(inference, "estimate_defocus", lambda image, model: np.full(image.shape[:2], 1.0, np.float32))
    out = tmp_path / "d"
    evaluate.main(["--benchmark", "dut", "--data", str(shared("data", "dut")), "--checkpoint", "fake.safetensors",
                   "--out", str(out), "--wandb", "disabled"])
    assert calls == ["fake.safetensors"]
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["method"] == "dmenet" and "probability" in meta["source"]
    # RTF with σ px straight from estimate_defocus: constant 1 px against the GT
    evaluate.main(["--benchmark", "rtf", "--data", str(shared("data", "rtf")), "--method", "dmenet",
                   "--out", str(tmp_path / "r"), "--wandb", "disabled"])
    meta = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert meta["protocol"]["prediction_mapping"].startswith("sigma")


def test_panel_rows_do_not_repeat_on_small_sets():
    from dmenet.eval.report import worst_best

    rows = [{"stem": str(i), "fmax": i / 10} for i in range(5)]
    worst, best = worst_best(rows, "fmax", 3, higher_is_better=True)
    assert [r["stem"] for r in best] == ["4", "3"] and [r["stem"] for r in worst] == ["0", "1", "2"]
    worst, best = worst_best(rows * 2, "fmax", 3, higher_is_better=True)
    assert len(worst) == len(best) == 3


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

    (noisy, *_) = B.list_samples(B.get_spec("rtf"), root, rtf_noise="1")
    assert B.load_gt(B.get_spec("rtf"), noisy) == pytest.approx(np.full((20, 24), 2.2, np.float32))
    # an id without its GT is named; the release layout has no noisy images
    (root / "gt" / "0" / "10.npy").unlink()
    assert evaluate.main(["--benchmark", "rtf", "--data", str(root), "--predictions", str(preds), "--pattern",
                          "{stem}.npy", "--out", str(tmp_path / "bad"), "--wandb", "disabled"]) == 2
    from dmenet.eval import rtf

    with pytest.raises(io.InputError, match=r"unmatched RTF files for ids \['10'\]"):
        rtf.list_rtf(root, "0")
    flat = tmp_path / "release"
    flat.mkdir()
    savemat(str(flat / "convertion.mat"), {"convertion": table})
    with pytest.raises(io.InputError, match="noise-free images only"):
        rtf.list_rtf(flat, "1")
