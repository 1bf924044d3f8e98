"""Galetto & Deng pipeline: filters against reference formulas, patch data, sliding window vs a naive loop, exact
resume, registry, application physics on synthetic renders, bad input of the commands."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch


from dmenet import filters
from dmenet.galetto import apps, apps_cli, blurmap, patches
from dmenet.galetto.classifier import BlurClassifier, ClassifierConfig
from dmenet.galetto.train import dihedral, draw_batch, load_classifier, main as train_main, save_classifier
from model_helpers import ConstantClassifier, randomise_batchnorm
from syndof import psf as syndof_psf

TINY = ClassifierConfig(width=0.25, head_channels=16, blocks=2)


def _texture(h=48, w=56, seed=0):
    return np.random.default_rng(seed).random((h, w, 3))


def _box_naive(x, size):
    r = size // 2
    p = np.pad(x, r, mode="symmetric")
    return np.array([[p[i:i + size, j:j + size].mean() for j in range(x.shape[1])] for i in range(x.shape[0])])


# ------------------------------------------------------------------------------------------------------- filters
def test_gaussian_filter_matches_symmetric_convolution():
    from scipy.ndimage import correlate1d

    x = np.random.default_rng(1).random((2, 20, 23))
    for sigma in (0.5, 2.0, 6.0):  # 6.0: radius 12 > ... still < 20; and the torch path for radius >= size:
        g = filters.psf.gaussian_kernel_1d(sigma, filters.gaussian_size(sigma))
        # scipy's "reflect" is the symmetric padding
        ref = correlate1d(correlate1d(x, g, axis=1, mode="reflect"), g, axis=2, mode="reflect")
        assert np.abs(filters.gaussian_filter(torch.from_numpy(x), sigma).numpy() - ref).max() < 1e-12
    big = filters.gaussian_filter(torch.from_numpy(x), 19.0)  # radius 38 > 20 px: the torch path
    g = filters.psf.gaussian_kernel_1d(19.0, 77)
    ref = correlate1d(correlate1d(np.pad(x, ((0, 0), (38, 38), (38, 38)), mode="symmetric"), g, axis=1), g, axis=2)
    assert np.abs(big.numpy() - ref[:, 38:-38, 38:-38]).max() < 1e-12


def test_box_mean_and_guided_filter_against_formulas():
    rng = np.random.default_rng(2)
    guide, src = rng.random((15, 17)), rng.random((15, 17))
    assert np.abs(filters.box_mean(src, 5) - _box_naive(src, 5)).max() < 1e-12
    # He et al. with a gray guide, written out with naive windows
    mi, mp = _box_naive(guide, 5), _box_naive(src, 5)
    a = (_box_naive(guide * src, 5) - mi * mp) / (_box_naive(guide * guide, 5) - mi * mi + 0.01)
    ref = _box_naive(a, 5) * guide + _box_naive(mp - a * mi, 5)
    assert np.abs(filters.guided_filter(guide, src, 5, 0.01) - ref).max() < 1e-10
    assert np.abs(filters.weighted_gf(guide, src, 5, 0.01, mode=0) - ref).max() < 1e-10
    # colour guide: cv2 backend equals kornia's guided_blur away from the border (kornia reflects without the edge)
    g3 = rng.random((30, 32, 3))
    d = filters.guided_filter(g3, src.repeat(2, 0).repeat(2, 1)[:30, :32], 7, 1e-3) - \
        filters.guided_filter(g3, src.repeat(2, 0).repeat(2, 1)[:30, :32], 7, 1e-3, backend="kornia")
    assert np.abs(d[7:-7, 7:-7]).max() < 1e-9  # border effects reach 2r = 6 px


def test_replicate_border_box_mean_and_guided_filter_against_formulas():
    """``Border.REPLICATE`` (the classical peers' recipes): the edge pixel repeated however wide the window."""
    rng = np.random.default_rng(3)
    guide, src = rng.random((11, 13)), rng.random((11, 13))

    def box(x, size):
        r = size // 2
        p = np.pad(x, r, mode="edge")
        return np.array([[p[i:i + size, j:j + size].mean() for j in range(x.shape[1])] for i in range(x.shape[0])])

    row = np.array([[0.0, 3.0, 6.0]])  # by hand: a 3-wide window at the left edge averages (0, 0, 3) -> 1
    assert np.allclose(filters.box_mean(row, 3, filters.Border.REPLICATE), [[1.0, 3.0, 5.0]])
    assert np.allclose(filters.box_mean(row, 3), [[1.0, 3.0, 5.0]])  # symmetric repeats the edge pixel too at r = 1
    assert np.allclose(filters.box_mean(row, 5, "replicate"), [[(0 + 0 + 0 + 3 + 6) / 5, 3.0, (0 + 3 + 6 * 3) / 5]])
    assert np.allclose(filters.box_mean(row, 5), [[(3 + 0 + 0 + 3 + 6) / 5, 3.0, (0 + 3 + 6 + 6 + 3) / 5]])
    assert np.abs(filters.box_mean(src, 7, "replicate") - box(src, 7)).max() < 1e-12
    mi, mp = box(guide, 7), box(src, 7)
    a = (box(guide * src, 7) - mi * mp) / (box(guide * guide, 7) - mi * mi + 0.01)
    ref = box(a, 7) * guide + box(mp - a * mi, 7)
    assert np.abs(filters.guided_filter(guide, src, 7, 0.01, border="replicate") - ref).max() < 1e-10
    g3 = rng.random((11, 13, 3))  # colour guide: kornia's replicate border agrees everywhere
    d = filters.guided_filter(g3, src, 5, 1e-3, border="replicate") - \
        filters.guided_filter(g3, src, 5, 1e-3, backend="kornia", border="replicate")
    assert np.abs(d).max() < 1e-9
    with pytest.raises(ValueError, match="border"):
        filters.box_mean(row, 3, "wrap")


def test_colour_guided_filter_in_row_strips_equals_the_whole_image(monkeypatch):
    """The colour guided filter runs in row strips with size // 2 rows of context (its 3×3 systems held ~400 B a
    pixel: galetto's refinement of a 24 MP photo needed ~9 GB): the same map as one strip, to float rounding, with
    strips of a few rows, strips not dividing the height, and an image shorter than the context."""
    rng = np.random.default_rng(4)
    for h, w, size in ((61, 23, 7), (40, 9, 45), (5, 30, 9)):
        guide, src = rng.random((h, w, 3)) * 255, rng.random((h, w)) * 5
        monkeypatch.setattr(filters, "STRIP_PIXELS", 10**9)
        whole = filters.guided_filter(guide, src, size, 1e-6)
        for strip_pixels in (w, 3 * w + 1, 10 * w):
            monkeypatch.setattr(filters, "STRIP_PIXELS", strip_pixels)
            assert np.abs(filters.guided_filter(guide, src, size, 1e-6) - whole).max() < 1e-9
    # a function that reads past its context would differ: the strips do cut the image
    monkeypatch.setattr(filters, "STRIP_PIXELS", 3 * 23)
    x = rng.random((61, 23))
    cut = filters.in_row_strips(lambda y: (filters.box_mean(y, 9),), (x,), 2)[0]
    assert np.abs(cut - filters.box_mean(x, 9)).max() > 1e-3
    assert np.abs(filters.in_row_strips(lambda y: (filters.box_mean(y, 9),), (x,), 4)[0]
                  - filters.box_mean(x, 9)).max() < 1e-12


def test_weighted_gf_mode6_formula_and_constant_map():
    rng = np.random.default_rng(3)
    guide, src = rng.random((12, 14)), rng.random((12, 14))
    mi, mp = _box_naive(guide, 3), _box_naive(src, 3)
    var = np.maximum(_box_naive(guide * guide, 3) - mi * mi, 0)
    w = (var + 1e-10) * _box_naive(1 / (var + 1e-10), 3)
    a = (_box_naive(guide * src, 3) - mi * mp) / (var + 0.05 / w)
    b = mp - a * mi
    v = 1 / (var ** 4 + 1e-10)
    ref = (_box_naive(v * a, 3) * guide + _box_naive(v * b, 3)) / _box_naive(v, 3)
    assert np.abs(filters.weighted_gf(guide, src, 3, 0.05, mode=6) - ref).max() < 1e-8
    for mode in filters.WGF_MODES:  # a constant map stays constant (σ in px is preserved)
        assert np.allclose(filters.weighted_gf(guide, np.full_like(src, 3.5), 5, 0.01, mode=mode), 3.5)


def test_smooth_guide_window_rounds_half_away_from_zero():
    """The Galetto specification (docs/method.md §15): the guide window is 2⌊r/2⌉+1 with MATLAB's round, so r = 9
    gives 11 (Python's round: 9)."""
    from dmenet.galetto.refine import smooth_guide

    image = np.random.default_rng(4).random((20, 24, 3))
    for radius, size in ((9, 11), (13, 15), (16, 17)):
        ref = [filters.weighted_gf(image[..., c], image[..., c], size, 0.05, mode=6) for c in range(3)]
        want = ref[0] * 0.2989 + ref[1] * 0.5870 + ref[2] * 0.1140
        assert np.array_equal(smooth_guide(image, radius, 0.05), want), radius


# -------------------------------------------------------------------------------------------------- patch data
def test_sharpness_and_labelled_patches():
    yy, xx = np.mgrid[:64, :96]
    checker = (((yy // 2) + (xx // 2)) % 2 * 200.0 + 20).astype(np.float32)
    gray = torch.from_numpy(checker)
    assert (patches.sharpness_map(gray) > 1000).all()
    assert (patches.sharpness_map(torch.full((64, 96), 128.0)) == 0).all()
    blurred = filters.gaussian_filter(gray, 3.0)
    assert (patches.sharpness_map(blurred) < 1000).all()
    pos = patches.sharp_positions(gray)
    assert pos.tolist() == [[y, x] for y in (0, 32) for x in (0, 32, 64)]
    lab = patches.labelled_patches(gray, pos[:2])
    assert lab.shape == (2, 20, 32, 32) and lab.dtype == np.uint8
    assert np.array_equal(lab[:, 0], checker[:32, :64].reshape(32, 2, 32).transpose(1, 0, 2).astype(np.uint8))
    std = lab.reshape(2, 20, -1).std(-1)
    # more blur, less contrast (uint8)
    assert (np.diff(std, axis=1) <= 0.5).all() and (std[:, 0] > 50 * std[:, 5]).all()
    iso = patches.labelled_patches(gray, pos[:1], blur="isolated")
    assert np.array_equal(iso[:, 0], lab[:1, 0])
    # isolated: the 32×32 patch alone, replicate-padded (docs/method.md §15), against a direct convolution
    crop = torch.from_numpy(np.random.default_rng(5).random((32, 32)) * 255)
    for sigma in (3.0, 19.0):  # 19: a 77-px kernel, wider than the patch
        g = torch.as_tensor(syndof_psf.gaussian_kernel_1d(sigma, filters.gaussian_size(sigma)))
        r = len(g) // 2
        idx = np.clip(np.arange(-r, 32 + r), 0, 31)  # replicate padding as indices
        padded = crop[idx][:, idx]
        want = torch.einsum("i,j,xiyj->xy", g, g, padded.unfold(0, 2 * r + 1, 1).unfold(1, 2 * r + 1, 1)
                            .permute(0, 2, 1, 3))
        assert torch.allclose(filters.gaussian_filter(crop[None], sigma, border="replicate")[0], want, atol=1e-9), sigma


def test_split_is_image_disjoint_and_seeded():
    from dmenet.galetto.build_patches import split_stems

    stems = [f"{i:04d}" for i in range(40)]
    tr, va = split_stems(stems, 0.25, seed=3)
    assert len(va) == 10 and not set(tr) & set(va) and sorted(tr + va) == stems
    assert split_stems(stems[::-1], 0.25, seed=3) == (tr, va)



def _layered_render(seed=0):
    """A 64×96 checker source, σ 0 px on the left 48 columns and 3 px on the right, rendered per half."""
    yy, xx = np.mgrid[:64, :96]
    gray = (((yy // 2) + (xx // 2)) % 2 * 0.7 + 0.1).astype(np.float32)
    source = np.repeat(gray[..., None], 3, -1)
    sigma = np.where(xx < 48, 0.0, 3.0).astype(np.float32)
    blurred = filters.gaussian_filter(torch.from_numpy(gray), 3.0).numpy()
    render = np.repeat(np.where(xx < 48, gray, blurred)[..., None], 3, -1).astype(np.float32)
    return render, source, sigma


def test_render_windows_keep_constant_sigma_at_sharp_source_positions():
    from dmenet.galetto.build_patches import render_windows

    render, source, sigma = _layered_render()
    w = render_windows(render, source, sigma, stride=16)
    # windows at x = 0, 16 lie in σ 0, x = 48, 64 in σ 3; x = 32 straddles the edge and is dropped
    assert sorted(set(w["x"].tolist())) == [0, 16, 48, 64] and sorted(set(w["y"].tolist())) == [0, 16, 32]
    assert w["label"].tolist() == [0 if x < 48 else 3 for x in w["x"]]
    np.testing.assert_allclose(w["sigma"], np.where(w["x"] < 48, 0.0, 3.0))
    i = int(np.flatnonzero(w["x"] == 64)[0])
    y = int(w["y"][i])
    expect = np.round(patches.to_gray255(render).numpy()[y:y + 32, 64:96]).astype(np.uint8)
    assert w["patches"].dtype == np.uint8 and np.array_equal(w["patches"][i], expect)
    assert len(render_windows(render, source, sigma, stride=16, max_range=3.0)["x"]) == 15  # edge windows kept
    flat = np.full_like(source, 0.5)
    assert len(render_windows(render, flat, sigma, stride=16)["x"]) == 0  # no sharp source window, no patch
    with pytest.raises(ValueError, match="differ in size"):
        render_windows(render, source, sigma[:, :90])


def test_syndof_test_set_command(tmp_path, capsys):
    from dmenet.galetto.build_patches import main as build_main
    from syndof import io as sio

    render, source, sigma = _layered_render()
    root = tmp_path / "renders"
    sio.write_image(root / "image" / "000000_src.png", render)
    sio.write_sigma_map(root / "blur_map" / "000000_src.png", sigma)
    (root / "meta").mkdir()
    (root / "meta" / "000000_src.json").write_text(json.dumps({"source_name": "src"}))
    sio.write_image(tmp_path / "photos" / "src.png", source)
    assert build_main(["--syndof", str(root), "--sources", str(tmp_path / "photos"), "--stride", "16",
                       "--out", str(tmp_path / "out")]) == 0
    data = np.load(tmp_path / "out" / "syndof_test.npz")
    assert sorted(data.files) == ["label", "patches", "sigma", "stem", "x", "y"]
    assert sorted(set(data["label"].tolist())) == [0, 3] and set(data["stem"].tolist()) == {"000000_src"}
    (tmp_path / "photos" / "src.png").unlink()
    capsys.readouterr()
    assert build_main(["--syndof", str(root), "--sources", str(tmp_path / "photos"), "--out",
                       str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "000000_src.json" in err and "'src'" in err
    assert not (tmp_path / "out2" / "syndof_test.npz").exists()
    assert build_main(["--syndof", str(root), "--out", str(tmp_path / "out3")]) == 2

# ------------------------------------------------------------------------------------------------- σ map
class _LinearWindows(torch.nn.Module):
    """A "classifier" whose logits are a fixed random linear map of the window's pixels, so every pixel of a window
    (padding included) moves its answer; a tiny random MobileNet answers nearly the same class everywhere, which
    would let a misplaced window pass."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(20, 32 * 32, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        return x.flatten(1) @ self.w.T / 4.0


def test_sliding_window_equals_naive_loop():
    torch.manual_seed(0)
    tiny = BlurClassifier(TINY).eval()
    image = _texture(45, 50)
    for model, stride in [(m, s) for m in (tiny, _LinearWindows()) for s in (8, 13)]:
        fast = blurmap.sigma_map(model, image, stride=stride, mode="expectation")
        gray = blurmap.gray01(image).numpy()
        h, w = gray.shape
        ph = max(32, 32 + int(np.ceil(max(h - 32, 0) / stride)) * stride)
        pw = max(32, 32 + int(np.ceil(max(w - 32, 0) / stride)) * stride)
        padded = np.pad(gray, ((0, ph - h), (0, pw - w)), mode="symmetric")
        total, cover = np.zeros((ph, pw)), np.zeros((ph, pw))
        with torch.no_grad():
            for y in range(0, ph - 31, stride):
                for x in range(0, pw - 31, stride):
                    p = torch.softmax(model(torch.from_numpy(padded[y:y + 32, x:x + 32]).float()[None, None]), 1)
                    total[y:y + 32, x:x + 32] += float((p[0] * torch.arange(20)).sum())
                    cover[y:y + 32, x:x + 32] += 1
        assert np.abs(fast - (total / cover)[:h, :w]).max() < 1e-4
        if model is tiny:
            split = blurmap.sigma_map(model, image, stride=stride, mode="expectation", batch=3)  # several calls
            assert np.abs(split - fast).max() < 1e-6
    am = blurmap.sigma_map(tiny, image, stride=16, mode="argmax")
    assert np.allclose(am, np.round(am * 1e6) / 1e6) and am.min() >= 0 and am.max() <= 19


def test_matlab_grid_equals_get_blurmap_loop():
    """grid=matlab is get_blurmap.m's loop: a window at every multiple of the stride inside the image, each short crop
    padded 'symmetric','post' on its own (np.pad 'symmetric' reflects repeatedly as MATLAB's padarray), each window's
    value spread over the image pixels it covers. The interior is the cover grid's."""
    model = _LinearWindows()
    image = _texture(45, 50)
    gray = blurmap.gray01(image).numpy()
    h, w = gray.shape
    for stride in (8, 13, 32):  # 32: crops of 13 and 18 px, shorter than their pad at 45
        fast = blurmap.sigma_map(model, image, stride=stride, mode="expectation", grid="matlab")
        total, cover = np.zeros((h, w)), np.zeros((h, w))
        with torch.no_grad():
            for y in range(0, h, stride):
                for x in range(0, w, stride):
                    crop = gray[y:y + 32, x:x + 32]
                    win = np.pad(crop, ((0, 32 - crop.shape[0]), (0, 32 - crop.shape[1])), mode="symmetric")
                    p = torch.softmax(model(torch.from_numpy(win).float()[None, None]), 1)
                    total[y:y + 32, x:x + 32] += float((p[0] * torch.arange(20)).sum())
                    cover[y:y + 32, x:x + 32] += 1
        assert np.abs(fast - total / cover).max() < 1e-4, stride
        cover_grid = blurmap.sigma_map(model, image, stride=stride, mode="expectation")
        # the first stride² block is covered by the window at (0, 0) alone in both grids
        assert np.abs(fast[:stride, :stride] - cover_grid[:stride, :stride]).max() < 1e-4
    with pytest.raises(ValueError, match="grid"):
        blurmap.windows(torch.zeros(40, 40), 8, "tiles")


def test_sigma_map_resize_scales_sigma(tmp_path):
    m = blurmap.sigma_map(ConstantClassifier(6), _texture(80, 120), stride=16, max_side=60)
    assert m.shape == (80, 120) and np.allclose(m, 12.0, atol=1e-4)  # 6 px at half size = 12 px at input size


# ------------------------------------------------------------------------------------------------- training
def _fake_patches(folder, n=12):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name in ("train", "val"):
        np.savez(folder / f"{name}.npz", patches=rng.integers(0, 255, (n, 20, 32, 32), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("channels_last", [False, True])
def test_resume_is_exact(tmp_path, channels_last):
    data = _fake_patches(tmp_path / "p")
    args = ["--config", "experiments/galetto_tiny.yaml", "--patches", str(data), "--set", "model.blocks=2",
            "model.head_channels=16", f"train.channels_last={str(channels_last).lower()}"]
    assert train_main(args + ["--out", str(tmp_path / "a")]) == 0
    assert train_main(args + ["--out", str(tmp_path / "b"), "--set", "train.steps=2"]) == 0
    assert train_main(args + ["--out", str(tmp_path / "b"), "--resume"]) == 0
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "last.safetensors")), load_file(str(tmp_path / "b" / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "a" / "last.json").read_text())["step"] == 4
    model = load_classifier(tmp_path / "b" / "best")
    assert model.config.head_channels == 16
    # an existing run is not overwritten; unknown keys are rejected
    assert train_main(args + ["--out", str(tmp_path / "a")]) == 2
    assert train_main(args + ["--out", str(tmp_path / "c"), "--set", "train.stepz=3"]) == 2


def test_channels_last_is_the_same_function(one_torch_thread):
    """train.channels_last changes the memory layout only: on the tiny classifier, loss and gradients of one batch
    agree with NCHW's to float rounding (5e-7 measured) on one thread. At width 1.0 they do not (6 % from float64,
    rule g11), nor on two threads of an AVX2-only AMD EPYC (6 Dec 2026: 5e-4, the block-2 depthwise weight gradient
    0.4 % from float64's against NCHW's 7e-7; a lone depthwise convolution of that shape agrees to 4e-7 there, so the
    difference enters upstream of it, in the threaded channels-last backward), which is why this pins one thread."""
    torch.manual_seed(0)
    nchw = BlurClassifier(TINY).train()
    cl = BlurClassifier(TINY).train()
    cl.load_state_dict(nchw.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    x = torch.rand(16, 1, 32, 32)
    y = torch.arange(16) % 20
    losses = []
    for model, batch in ((nchw, x), (cl, x.contiguous(memory_format=torch.channels_last))):
        loss = torch.nn.functional.cross_entropy(model(batch), y)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    g_a = torch.cat([p.grad.flatten() for p in nchw.parameters()])
    g_b = torch.cat([p.grad.flatten() for p in cl.parameters()])
    assert float((g_a - g_b).norm() / g_a.norm()) < 1e-5


def test_init_from_starts_a_new_run_from_earlier_weights(tmp_path):
    """train.init_from loads an earlier classifier's weights (with lr 0 they come out unchanged); a file of another
    architecture is refused with exit 2 naming the option."""
    data = _fake_patches(tmp_path / "p")
    args = ["--config", "experiments/galetto_tiny.yaml", "--patches", str(data), "--set", "model.blocks=2",
            "model.head_channels=16"]
    assert train_main(args + ["--out", str(tmp_path / "a")]) == 0
    start = load_classifier(tmp_path / "a" / "best")
    assert train_main(args + ["train.lr=0.0", "train.lr_min=0.0", f"train.init_from={tmp_path / 'a' / 'best'}",
                              "--out", str(tmp_path / "b")]) == 0
    after = load_classifier(tmp_path / "b" / "best")
    params = dict(after.named_parameters())
    assert all(torch.equal(v, params[k]) for k, v in start.named_parameters())
    fresh = BlurClassifier(after.config)  # a fresh init differs: init_from really loaded something
    assert not all(torch.equal(v, dict(fresh.named_parameters())[k]) for k, v in start.named_parameters())
    assert train_main(args + ["model.head_channels=8", f"train.init_from={tmp_path / 'a' / 'best'}",
                              "--out", str(tmp_path / "c")]) == 2


def _rgb_mobilenet_file(path, seed=3):
    """A torchvision-layout MobileNetV2 width-1.0 file with random weights, an RGB stem and a classifier key:
    (file, the RGB stem kernel, the features state it holds)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    donor = BlurClassifier(ClassifierConfig())
    state = {f"features.{k}": v.clone() for k, v in donor.features.state_dict().items()}
    stem = torch.randn(32, 3, 3, 3)
    state["features.0.0.weight"] = stem
    state["classifier.1.weight"] = torch.zeros(1000, 1280)  # dropped by name, as torchvision files carry it
    save_file(state, str(path))
    return path, stem, state


def test_imagenet_start_sums_the_stem_and_refuses_other_files(tmp_path):
    """The gray stem is the RGB kernel summed over channels, so a gray image gives what the RGB stem gives on the
    image repeated as RGB; every other tensor is the file's; the 20-way layer keeps its initialisation. A file for
    another width is refused, naming the file."""
    from dmenet.galetto.classifier import imagenet_features_state
    from dmenet.models.weights import WeightsError

    path, stem, state = _rgb_mobilenet_file(tmp_path / "mbv2.safetensors")
    model = BlurClassifier(ClassifierConfig())
    head = model.classifier.weight.clone()
    model.features.load_state_dict(imagenet_features_state(model, path), strict=True)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    gray = torch.nn.functional.conv2d(x, model.features[0][0].weight)
    rgb = torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), stem)
    assert (gray - rgb).abs().max() < 1e-5
    loaded = model.features.state_dict()
    assert all(torch.equal(loaded[k[9:]], v) for k, v in state.items()
               if k.startswith("features.") and k != "features.0.0.weight")
    assert torch.equal(model.classifier.weight, head)
    with pytest.raises(WeightsError, match="mbv2.safetensors"):
        imagenet_features_state(BlurClassifier(ClassifierConfig(width=0.5)), path)


def test_imagenet_option_refused_before_anything_is_written(tmp_path, capsys):
    """train.imagenet with a file that does not fit, or together with train.init_from, an unknown device, CUDA
    where there is none: exit 2, one line saying which, no run folder."""
    data = _fake_patches(tmp_path / "p")
    path, _, _ = _rgb_mobilenet_file(tmp_path / "mbv2.safetensors")
    args = ["--config", "experiments/galetto_tiny.yaml", "--patches", str(data), "--set", "model.blocks=2",
            "model.head_channels=16"]

    def refused(extra: list[str], *words: str) -> None:
        capsys.readouterr()
        assert train_main(args + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(w in err[0] for w in words), (words, err)

    refused([f"train.imagenet={path}", "--out", str(tmp_path / "a")], str(path), "not a MobileNetV2 file")
    refused([f"train.imagenet={path}", f"train.init_from={path}", "--out", str(tmp_path / "b")],
            "train.init_from and train.imagenet")
    refused(["train.device=gpu", "--out", str(tmp_path / "c")], "train.device", "'gpu'")  # not a device name
    if not torch.cuda.is_available():
        refused(["train.device=cuda", "--out", str(tmp_path / "d")], "CUDA is not available")
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_imagenet_start_from_the_shared_file(shared):
    """The shared Keras-trained MobileNetV2 file fits the width-1.0 classifier, stem summed over RGB."""
    from dmenet.galetto.classifier import imagenet_features_state
    from dmenet.models.weights import read_weights_file

    path = shared("weights", "mobilenet_v2_imagenet_keras.safetensors")
    state = imagenet_features_state(BlurClassifier(ClassifierConfig()), path)
    rgb = read_weights_file(path)[0]["features.0.0.weight"]
    assert torch.allclose(state["0.0.weight"], rgb.sum(1, keepdim=True))
    assert torch.equal(state["18.1.running_var"], read_weights_file(path)[0]["features.18.1.running_var"])


# ------------------------------------------------------------------------------------------------- registry
@pytest.fixture()
def tiny_model(tmp_path):
    torch.manual_seed(0)
    save_classifier(tmp_path / "tiny", BlurClassifier(TINY))
    return tmp_path / "tiny.safetensors"


def test_registered_method(tiny_model):
    from dmenet.methods.base import MethodOptions
    from dmenet.methods.registry import make_method

    est = make_method("galetto", MethodOptions(model=tiny_model, extra=(("stride", 16), ("refine", "code"))))
    out = est.estimate(_texture(40, 44).astype(np.float32))
    assert out.sigma.shape == (40, 44) and out.blur_probability.shape == (40, 44)
    assert 0 <= out.sigma.min() and out.sigma.max() <= 19
    assert "stride 16" in est.describe()
    with pytest.raises(ValueError, match="no option"):
        make_method("galetto", MethodOptions(model=tiny_model, extra=(("strid", 16),)))


def test_blur_map_refinement_and_detection_transform(tiny_model, tmp_path):
    """refine_blur refines only the σ the blur map is made from; a fitted transform in the sidecar turns σ into
    sigmoid(scale · (σ − shift)); blur=label keeps clip(σ/7, 0, 1)."""
    from dmenet.galetto.detection import DetectionTransform, read_transform, write_fitted
    from dmenet.galetto.refine import refine_map
    from dmenet.methods import MethodOptions, make_method
    from syndof import units

    image = _texture(40, 44).astype(np.float32)
    opts = (("stride", 16), ("refine", "none"), ("refine_blur", "paper"))
    est = make_method("galetto", MethodOptions(model=tiny_model, extra=opts))
    raw = np.random.default_rng(1).uniform(0, 6, (40, 44)).astype(np.float32)  # the tiny model's map is flat
    est.raw_sigma = lambda img: raw
    out = est.estimate(image)
    np.testing.assert_array_equal(out.sigma, np.clip(raw, 0, 19))
    blur_sigma = np.clip(refine_map(image, raw, "paper"), 0, 19)
    assert np.abs(blur_sigma - out.sigma).max() > 1e-3  # the two refinements differ on this texture
    np.testing.assert_allclose(out.blur_probability, units.sigma_to_label(blur_sigma), atol=1e-6)
    assert est.transform is None and "no fitted transform" in est.describe()

    assert read_transform(tiny_model) == (None, {})
    fitted = write_fitted(tiny_model, tmp_path / "fit", DetectionTransform(2.0, 1.5), {"images": ["a.jpg"]})
    with pytest.raises(FileExistsError):
        write_fitted(tiny_model, tmp_path / "fit", DetectionTransform(2.0, 1.5), {})
    t, entry = read_transform(fitted)
    assert t == DetectionTransform(2.0, 1.5) and entry["images"] == ["a.jpg"]
    est2 = make_method("galetto", MethodOptions(model=fitted, extra=opts))
    est2.raw_sigma = lambda img: raw
    p = est2.estimate(image).blur_probability
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-2.0 * (blur_sigma - 1.5))), atol=1e-6)
    assert "sigmoid(2 · (σ − 1.5 px))" in est2.describe()
    label = make_method("galetto", MethodOptions(model=fitted, extra=(*opts, ("blur", "label"))))
    label.raw_sigma = lambda img: raw
    np.testing.assert_allclose(label.estimate(image).blur_probability, out.blur_probability, atol=1e-6)
    with pytest.raises(ValueError, match=r"blur must be one of \(.fitted., .label.\), got .sigmoid."):
        make_method("galetto", MethodOptions(model=fitted, extra=(("blur", "sigmoid"),)))


def test_detection_fit_finds_the_decision_point():
    """Blurred pixels at σ ≈ 3 px, sharp ones at σ ≈ 0.5 px (noisy): the fitted p = 0.5 point lies between, and the
    map beats the label map's MAE by far (the label puts 3 px at 0.43)."""
    from dmenet.galetto.detection import SHIFTS, blur_map, fit

    rng = np.random.default_rng(3)
    sigmas, masks = [], []
    for k in range(4):
        gt = np.zeros((30, 40), bool)
        gt[:, 15 + k:] = True
        sigmas.append(np.where(gt, 3.0, 0.5) + rng.normal(0, 0.3, gt.shape))
        masks.append(gt)
    result = fit(sigmas, masks)
    assert 0.5 < result.shift < 3.0 and result.shift in SHIFTS
    label_mae = np.mean([np.abs(blur_map(s, None) - m).mean() for s, m in zip(sigmas, masks)])
    assert result.mae < 0.1 < label_mae
    assert result.scale == 8.0  # clean classes: the hard decision wins, at the grid's steepest
    gentle = fit(sigmas, masks, max_scale=1.5)
    assert gentle.scale == 1.5 and result.mae < gentle.mae < label_mae
    with pytest.raises(ValueError, match="no candidate"):
        fit(sigmas, masks, max_scale=0.1)


def test_calibrate_command_writes_a_new_file_and_refuses_to_overwrite(tiny_model, tmp_path, capsys):
    from dmenet.galetto import calibrate
    from dmenet.galetto.detection import SCALES, SHIFTS, read_transform

    data = _labelled(tmp_path / "lab")
    argv = ["--benchmark", "cuhk", "--data", str(data), "--model", str(tiny_model), "--method",
            "galetto:stride=16", "--out", str(tmp_path / "fitted")]
    assert calibrate.main(argv) == 0
    t, entry = read_transform(tmp_path / "fitted")
    assert t.scale in SCALES and t.shift in SHIFTS and entry["images"] == ["im0.png", "im1.png"]
    assert entry["options"]["stride"] == 16 and entry["n_images"] == 2
    before = (tmp_path / "fitted.json").read_bytes()
    assert calibrate.main(argv) == 2 and "exists" in capsys.readouterr().err
    assert (tmp_path / "fitted.json").read_bytes() == before
    split = tmp_path / "split.json"  # a split's validation images are never fitted on
    split.write_text(json.dumps({"train": ["im0"], "val": ["im1"], "held_out": []}))
    assert calibrate.main([*argv[:-1], str(tmp_path / "v"), "--split", str(split), "--subset", "val"]) == 2
    assert "train subset" in capsys.readouterr().err and not (tmp_path / "v.json").exists()
    with pytest.raises(SystemExit) as exit_info:  # only galetto's σ maps can be calibrated here
        calibrate.main([*argv[:-1], str(tmp_path / "other"), "--method", "lbp"])
    assert exit_info.value.code == 2 and not (tmp_path / "other.json").exists()


class _FixedSigma:
    """A stand-in estimator whose σ map (px) is a function of the image: the red channel × 4."""

    def blur_sigma(self, image):
        return image[..., 0] * 4.0


def test_calibrate_negatives_make_the_fit_pay_for_false_blur(tmp_path):
    """Sharp photos read with a small spurious σ (0.6 px): a fit on images whose blurred part reads low (1 px) puts
    its shift at the grid's lowest (nothing there costs), the same fit with the photos as all-sharp negatives moves it
    above 0.6 px, and the blurred-background images still rank perfectly."""
    from dmenet.eval import benchmarks as B
    from dmenet.galetto.calibrate import fit_samples
    from dmenet.galetto.detection import DetectionTransform
    from syndof import io as sio

    samples, negatives = [], []
    for k in range(3):
        img = np.zeros((20, 30, 3), np.float32)
        img[:, 8 + k:, 0] = 0.25  # σ 1 px on the blurred part (read low, as on CUHK), 0 on the sharp part
        mask = np.zeros((20, 30), np.uint8)
        mask[:, 8 + k:] = 255
        sio.write_image(tmp_path / "image" / f"b{k}.png", img)
        sio.write_image(tmp_path / "gt" / f"b{k}.png", mask)
        samples.append(B.Sample(f"b{k}", tmp_path / "image" / f"b{k}.png", tmp_path / "gt" / f"b{k}.png"))
        sio.write_image(tmp_path / "sharp" / f"s{k}.png", np.full((20, 30, 3), 0.15, np.float32))  # σ 0.6 px
        negatives.append(B.Sample(f"s{k}", tmp_path / "sharp" / f"s{k}.png", None))
    alone, _, names_alone = fit_samples(_FixedSigma(), samples, True, max_scale=1.5)
    both, (label_mae, _), names = fit_samples(_FixedSigma(), samples, True, max_scale=1.5, negatives=negatives)
    assert names_alone == ["b0.png", "b1.png", "b2.png"] and names == names_alone + ["s0.png", "s1.png", "s2.png"]
    assert alone.shift < 0.6 < both.shift and both.n_images == 6
    false_blur = [float(DetectionTransform(f.scale, f.shift).apply(np.full((2, 2), 0.6))[0, 0]) for f in (alone, both)]
    assert false_blur[1] < 0.5 < false_blur[0]
    assert both.fmax == pytest.approx(1.0)  # the blurred-background images still rank perfectly
    assert label_mae == pytest.approx(np.mean([np.mean(np.where(np.arange(30) >= 8 + k, 1 - 1 / 7, 0)) for k in
                                               range(3)] + [0.6 / 7] * 3), abs=2e-3)


def test_calibrate_command_records_negatives_and_refuses_bad_ones(tiny_model, tmp_path, capsys):
    from dmenet.galetto import calibrate
    from dmenet.galetto.detection import read_transform
    from syndof import io as sio

    data, sharp = tmp_path / "lab", tmp_path / "sharp"
    img = _texture(36, 40, seed=1)
    mask = np.zeros((36, 40), np.uint8)
    mask[:, 20:] = 255
    sio.write_image(data / "image" / "im0.png", img.astype(np.float32))
    sio.write_image(data / "gt" / "im0.png", mask)
    for k in range(3):
        sio.write_image(sharp / f"p{k}.png", _texture(36, 40, seed=10 + k).astype(np.float32))
    stems = tmp_path / "stems.txt"
    stems.write_text("# a screen's header line\np2\np0\n")
    base = ["--benchmark", "cuhk", "--data", str(data), "--model", str(tiny_model), "--method", "galetto:stride=16"]
    assert calibrate.main([*base, "--negatives", str(sharp), "--negative-stems", str(stems), "--out",
                           str(tmp_path / "f")]) == 0
    _, entry = read_transform(tmp_path / "f")
    assert entry["images"] == ["im0.png", "p0.png", "p2.png"] and entry["n_images"] == 3
    assert "stems listed in" in entry["negatives"] and "all-sharp masks" in entry["negatives"]
    assert calibrate.main([*base, "--negatives", str(sharp), "--negative-limit", "1", "--out",
                           str(tmp_path / "g")]) == 0
    assert read_transform(tmp_path / "g")[1]["images"] == ["im0.png", "p0.png"]
    capsys.readouterr()
    assert calibrate.main([*base, "--negative-limit", "1", "--out", str(tmp_path / "h")]) == 2
    assert "--negatives" in capsys.readouterr().err and not (tmp_path / "h.json").exists()
    (tmp_path / "empty").mkdir()
    assert calibrate.main([*base, "--negatives", str(tmp_path / "empty"), "--out", str(tmp_path / "i")]) == 2
    assert "empty" in capsys.readouterr().err and not (tmp_path / "i.json").exists()


def test_h101_calibrate_skips_and_reports_an_image_or_negative_name_that_is_no_file(tiny_model, tmp_path, capsys,
                                                                                     caplog):
    """The listings by stem left an image name where no file can be read out: ``--allow-missing-images`` fitted the
    transform on 1 of 2 images (exit 0, ``n_images`` 1) unsaid, a FIFO among ``--negatives`` was left out likewise.
    H101 refused them; since reliability.md §49 every unreadable input is skipped as ``dmenet.calibrate dbd`` skips
    one: its ``skipped PATH: reason`` line on stderr, listed under ``skipped`` in the sidecar, and a stdout line
    counting the skips beside the result."""
    import json
    import os

    from dmenet.galetto import calibrate
    from syndof import io as sio

    data, sharp = tmp_path / "lab", tmp_path / "sharp"
    mask = np.zeros((36, 40), np.uint8)
    mask[:, 20:] = 255
    sio.write_image(data / "image" / "im0.png", _texture(36, 40, seed=1).astype(np.float32))
    for k in range(2):
        sio.write_image(data / "gt" / f"im{k}.png", mask)
    (data / "image" / "im1.png").symlink_to("nowhere.png")
    sio.write_image(sharp / "p0.png", _texture(36, 40, seed=10).astype(np.float32))
    os.mkfifo(sharp / "p1.png")
    base = ["--benchmark", "cuhk", "--data", str(data), "--model", str(tiny_model), "--method", "galetto:stride=16"]
    for name, extra, line, images in (
            ("f", ["--allow-missing-images"], f"{data / 'image' / 'im1.png'}: a symbolic link to nothing", ["im0.png"]),
            ("g", ["--include", "im0", "--negatives", str(sharp)],
             f"{sharp / 'p1.png'}: not a regular file (a FIFO, socket or device)", ["im0.png", "p0.png"])):
        capsys.readouterr()
        caplog.clear()
        assert calibrate.main([*base, *extra, "--out", str(tmp_path / name)]) == 0
        out = capsys.readouterr().out
        assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")] == [f"skipped {line}"]
        assert out.splitlines()[-1] == (f"{tmp_path / name}.safetensors: fitted without 1 input(s) it could not use, "
                                        f"listed under \"skipped\" in {tmp_path / name}.json: {line}")
        entry = json.loads((tmp_path / f"{name}.json").read_text())["detection"]
        assert entry["skipped"] == [line] and entry["images"] == images and entry["n_images"] == len(images)


def test_model_key_gives_one_method_its_own_file(tiny_model, tmp_path, capsys):
    """``NAME:model=PATH`` sets that method's model file only (two files of one method side by side in one run); a
    method without a model file, and ``--model`` given as well, are refused. ``galetto.calibrate`` copies the file the
    σ maps came from, never the shipped one under the fitted name."""
    from dmenet.galetto import calibrate
    from dmenet.galetto.method import DEFAULT_MODEL
    from dmenet.galetto.train import classifier_files
    from dmenet.methods import MethodOptions, parse_method
    from syndof import io as sio

    est = parse_method(f"galetto:model={tiny_model},stride=16").make()
    assert est.model_file == tiny_model and est.settings["stride"] == 16
    assert parse_method("galetto").make().model_file == DEFAULT_MODEL
    with pytest.raises(ValueError, match="given twice"):
        parse_method(f"galetto:model={tiny_model}").make(MethodOptions(model=tiny_model))
    with pytest.raises(ValueError, match="loads no model file"):
        parse_method("lbp:model=x").make()

    data = tmp_path / "lab"
    img = _texture(36, 40, seed=2)
    mask = np.zeros((36, 40), np.uint8)
    mask[:, 20:] = 255
    sio.write_image(data / "image" / "im0.png", img.astype(np.float32))
    sio.write_image(data / "gt" / "im0.png", mask)
    assert calibrate.main(["--benchmark", "cuhk", "--data", str(data), "--method",
                           f"galetto:model={tiny_model},stride=16", "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f.safetensors").read_bytes() == tiny_model.read_bytes()
    assert calibrate.main(["--benchmark", "cuhk", "--data", str(data), "--model", str(tiny_model), "--method",
                           f"galetto:model={tiny_model}", "--out", str(tmp_path / "g")]) == 2
    assert "given twice" in capsys.readouterr().err and not classifier_files(tmp_path / "g")[1].exists()


def test_oracle_accuracy_against_brute_force():
    from dmenet.eval.metrics import oracle_accuracy

    rng = np.random.default_rng(5)
    pred = np.round(rng.random((9, 11)) * 6) / 6
    gt = rng.random((9, 11)) < 0.4
    brute = max(float(np.mean((pred >= t) == gt)) for t in [*np.unique(pred), np.inf])
    assert oracle_accuracy(pred, gt) == pytest.approx(brute)
    assert oracle_accuracy(gt * 3.0, gt) == 1.0


# --------------------------------------------------------------------------------------------- applications
def _blur(image, sigma):
    return apps.lowpass(image, sigma) if sigma > 0 else image


def test_enhancement_gain_and_effect():
    assert apps.enhancement_gain(np.array(3.5)) == pytest.approx(2.0, abs=0.05)
    assert apps.enhancement_gain(np.array(0.0)) < 0.05 and apps.enhancement_gain(np.array(10.0)) < 0.01
    src = _texture(40, 80, seed=4)
    sigma = np.zeros((40, 80))
    sigma[:, 40:] = 8.0  # right half very blurred: left untouched by adaptive UM, both by global UM
    img = np.concatenate([src[:, :40], _blur(src, 8.0)[:, 40:]], 1)
    j = apps.adaptive_enhance(img, sigma)
    g = apps.unsharp(img, 2.0)
    assert np.abs(j - img)[:, 45:].mean() <= 0.2 * np.abs(g - img)[:, 45:].mean()
    assert np.abs(j - img)[:, :35].mean() <= 0.2 * np.abs(g - img)[:, :35].mean()


def test_nlt_weight_endpoints():
    assert apps.nlt_weight(np.array(1.0)) == pytest.approx(0.999, abs=1e-9)
    assert apps.nlt_weight(np.array(7.0)) == pytest.approx(0.001, abs=1e-9)


def test_magnify_scale_doubles_uniform_blur():
    src = _texture(64, 64, seed=6)
    img = _blur(src, 1.5)
    out = apps.magnify_scale(img, np.full((64, 64), 1.5), k=2.0)
    ref = _blur(src, 3.0)
    err = np.abs(out - ref)[8:-8, 8:-8].mean()
    assert err < 0.1 * np.abs(img - ref)[8:-8, 8:-8].mean()



def test_reblur_sigma_measures_a_further_gaussian():
    from dmenet.galetto.check_apps import reblur_sigma

    src = _texture(96, 96, seed=7).astype(np.float32)
    zero = np.zeros((96, 96), np.float32)
    same = reblur_sigma(src, src, zero)
    assert len(same["x"]) == 25 and (same["extra"] == 0).all() and (same["sigma_out"] == 0).all()
    two = reblur_sigma(src, _blur(src, 2.0).astype(np.float32), zero)
    assert (two["extra"] == 2.0).all() and np.allclose(two["sigma_out"], 2.0)
    img = _blur(src, 1.5).astype(np.float32)  # σ_in 1.5, a further 2 px: σ_out = √(1.5² + 2²) = 2.5
    r = reblur_sigma(img, _blur(img, 2.0).astype(np.float32), np.full((96, 96), 1.5, np.float32))
    assert np.allclose(r["sigma_out"], 2.5)
    half = img.copy()
    half[:, :48] = 0.5  # no detail on the left: those windows cannot be measured and are dropped
    assert set(reblur_sigma(half, half, zero)["x"].tolist()) == {32, 48, 64}  # x 0 and 16 lie in the flat part
    ramp = np.tile(np.linspace(0, 2, 96, dtype=np.float32), (96, 1))  # σ varies > 0.5 px inside most windows
    assert len(reblur_sigma(src, src, ramp)["x"]) < len(same["x"])


def test_magnification_check_with_the_true_sigma_doubles_it():
    from dmenet.galetto.check_apps import magnification_check

    src = _texture(96, 128, seed=8)
    sigma = np.where(np.arange(128)[None, :] < 64, 0.0, 2.0) * np.ones((96, 1))
    img = np.where(sigma[..., None] > 0, _blur(src, 2.0), src).astype(np.float32)
    rows = magnification_check(img, sigma.astype(np.float32), sigma.astype(np.float32))
    assert 1.8 <= rows["scale"]["slope"] <= 2.2 and rows["scale"]["in_focus_move_px"] <= 0.3
    assert rows["scale"]["background_rise_px"] >= 1.5 and rows["scale"]["n_background"] > 0

def test_fusion_decision_removes_islands_as_bwareaopen():
    """The Galetto specification / GVWA: islands below ⌈1 % of the area⌉ go, with bwareaopen's 8-connectivity; the
    guide is the fused image of the cleaned decision."""
    sig = np.stack([np.ones((40, 40)), np.full((40, 40), 0.5)])  # frame 1 wins but where frame 0's σ is 0
    idx = np.arange(40)
    sig[0][idx, idx] = 0.0  # frame 0 wins on a diagonal line of 40 px: one 8-connected island (threshold 16 px)
    assert (apps.decision_map(sig)[idx, idx] == 0).all()
    # 1 % of 2,025 px = 20.25: an island of 20 px is below ⌈20.25⌉ = 21 and goes
    sig = np.stack([np.ones((45, 45)), np.full((45, 45), 0.5)])
    sig[0, 5:9, 5:10] = 0.0
    assert (apps.decision_map(sig) == 1).all()
    sig[0, 5:9, 5:11] = 0.0  # 24 px stay
    assert apps.decision_map(sig).sum() == 45 * 45 - 24
    # the island is gone from the guide too: with two constant frames, frame 1's weight is 1 wherever the decision
    # is 1 and the guide (frame 1 everywhere) has no edge for the island to leak through
    frames = np.stack([np.full((45, 45, 3), 0.2), np.full((45, 45, 3), 0.8)])
    sig[0, 5:9, 5:11], sig[0, 30:33, 30:33] = 1.0, 0.0  # only a 9-px island of frame 0
    w = apps.fusion_weights(sig, frames)
    assert np.allclose(w[1], 1.0, atol=1e-6)


def test_fusion_beats_both_sources():
    src = _texture(48, 64, seed=7)
    a = np.concatenate([src[:, :32], _blur(src, 3.0)[:, 32:]], 1)
    b = np.concatenate([_blur(src, 3.0)[:, :32], src[:, 32:]], 1)
    sa = np.where(np.arange(64) < 32, 0.0, 3.0)[None].repeat(48, 0)
    fused, w = apps.fuse(np.stack([a, b]), np.stack([sa, 3.0 - sa]))
    psnr = lambda x: -10 * np.log10(np.mean((x - src) ** 2))
    assert psnr(fused) >= max(psnr(a), psnr(b)) + 3
    assert np.allclose(w.sum(0), 1)


def test_app_commands_bad_input(tmp_path, capsys):
    good = tmp_path / "a.png"
    from syndof import io

    io.write_image(good, _texture(40, 40).astype(np.float32))
    io.write_image(tmp_path / "small.png", _texture(30, 40).astype(np.float32))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "o" / "r.png"
    cases = [(["enhance", str(tmp_path / "bad.png")], "bad.png"),
             (["fuse", str(good), str(tmp_path / "small.png")], "small.png"),
             (["fuse", str(good)], "a.png"),
             (["fuse", str(tmp_path / "empty")], "empty"),
             (["magnify", str(tmp_path / "missing.png")], "missing.png")]
    for argv, name in cases:
        assert apps_cli.main(argv + ["--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_app_command_writes_result_and_report(tmp_path, tiny_model):
    from syndof import io

    io.write_image(tmp_path / "a.png", _texture(40, 48).astype(np.float32))
    io.write_image(tmp_path / "b.png", _texture(40, 48, seed=9).astype(np.float32))
    out = tmp_path / "fused.png"
    assert apps_cli.main(["fuse", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out),
                          "--model", str(tiny_model)]) == 0
    assert io.read_image(out).shape == (40, 48, 3)
    assert io.read_image(tmp_path / "fused_report.png").shape[1] > 48 * 7


@pytest.mark.parametrize("name", ["galetto_mbv2", "galetto_tiny", "galetto_w1", "galetto_paper"])
def test_shipped_configs_load(name):
    """Every galetto config in experiments/ passes the strict loader (unknown keys and bad values would fail)."""
    from pathlib import Path

    from dmenet.config import load_config
    from dmenet.galetto.train import GalettoConfig

    import yaml

    path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.yaml"
    cfg = load_config(str(path), [], root=GalettoConfig)
    written = yaml.safe_load(path.read_text())
    # every value the file sets is the loaded one (a key read into the wrong field, or dropped, would show)
    assert written and all(getattr(getattr(cfg, section), key) == value
                           for section, values in written.items() for key, value in values.items()), written
    assert cfg.model.blocks == (3 if name == "galetto_tiny" else 7)


def test_window_probabilities_use_a_folded_copy_equal_to_eval_mode():
    """The σ map's classifier runs folded (BatchNorms into convs, 1×1 convs as matmuls): the same probabilities as the
    eval-mode network up to rounding, with non-trivial BatchNorm statistics; the copy is rebuilt when weights change."""
    from dmenet.galetto.blurmap import window_probabilities
    from dmenet.models.fuse import cached_folded_copy

    torch.manual_seed(4)
    model = BlurClassifier(ClassifierConfig(width=0.25, head_channels=16, blocks=3))
    randomise_batchnorm(model, seed=4).eval()
    gray = torch.rand(40, 56, dtype=torch.float32)
    probs, size = window_probabilities(model, gray, stride=8)
    with torch.no_grad():
        ref = torch.softmax(model(blurmap.windows(gray, 8)[0]), 1)
    assert probs.shape == ref.shape and (probs - ref).abs().max() < 1e-5
    first = cached_folded_copy(model)
    assert cached_folded_copy(model) is first  # cached while the weights stay
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    assert cached_folded_copy(model) is not first
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in first.modules())


def test_dihedral_is_each_samples_rotation_then_flip():
    """The gather equals torch's rot90 (then a horizontal flip for codes 4-7) sample by sample, on every code, for
    uint8 and float images with two channels; the eight transforms of one image are all different."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 2, 6, 6), generator=gen, dtype=torch.uint8)
    code = torch.arange(16) % 8
    for img in (x, x.float() / 255.0):
        out = dihedral(img, code)
        for i, c in enumerate(code.tolist()):
            want = torch.rot90(img[i], c % 4, dims=(1, 2))
            want = torch.flip(want, dims=(2,)) if c >= 4 else want
            assert torch.equal(out[i], want), c
    assert len({dihedral(x[:1].expand(8, -1, -1, -1), torch.arange(8))[i].numpy().tobytes() for i in range(8)}) == 8
    with pytest.raises(ValueError, match="square"):
        dihedral(torch.zeros(1, 1, 4, 6), torch.zeros(1, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_reach_the_gpu_unchanged_without_blocking():
    from dmenet.galetto.train import to_device

    store = torch.randint(0, 256, (50, 20, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    batches = [draw_batch(store, 256, torch.Generator().manual_seed(s), augment=True) for s in range(4)]
    on_gpu = [(to_device(x, torch.device("cuda")), to_device(y, torch.device("cuda"))) for x, y in batches]
    torch.cuda.synchronize()
    assert all(torch.equal(a.cpu(), x) and torch.equal(b.cpu(), y) for (a, b), (x, y) in zip(on_gpu, batches))


def test_draw_batch_labels_and_range():
    """Each drawn patch is a dihedral transform of the stored patch of its label (values in [0, 1], exact /255)."""
    gen = torch.Generator().manual_seed(1)
    store = torch.randint(0, 256, (5, 20, 8, 8), generator=gen, dtype=torch.uint8)
    x, y = draw_batch(store, 64, torch.Generator().manual_seed(2), augment=True)
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32 and y.shape == (64,)
    for i in range(64):
        cands = store[:, int(y[i]), None].float() / 255.0                 # (5, 1, 8, 8): the label's patches
        forms = torch.cat([dihedral(cands, torch.full((5,), c)) for c in range(8)])   # their 40 transforms
        assert (forms == x[i]).flatten(1).all(1).any()


def test_colour_guided_filter_refuses_a_map_of_another_size():
    """Review of 323ff47: the row strips slice the guide and the map by the guide's rows, so a map taller than its
    guide was cut to the guide's height silently (one strip broadcast-failed as the old code did)."""
    rng = np.random.default_rng(0)
    guide = rng.random((20, 10, 3))
    for src in (rng.random((30, 10)), rng.random((20, 12))):
        # the size check's own message: numpy's broadcast failure (the old code) is a ValueError too
        with pytest.raises(ValueError, match=re.escape(f"guide (20, 10, 3) and src {src.shape} differ in size")):
            filters.guided_filter(guide, src, 5, 1e-3)
    with pytest.raises(ValueError, match="same"):
        filters.in_row_strips(lambda a, b: (a, b), (guide, rng.random((21, 10))), 2)


def _labelled(root):
    """Two 36×40 CUHK-like images (image/, gt/), blurred by σ 3 px on their right half."""
    from syndof import io as sio

    for k in range(2):
        img = _texture(36, 40, seed=k)
        img[:, 20:] = _blur(img, 3.0)[:, 20:]
        mask = np.zeros((36, 40), np.uint8)
        mask[:, 20:] = 255
        sio.write_image(root / "image" / f"im{k}.png", img.astype(np.float32))
        sio.write_image(root / "gt" / f"im{k}.png", mask)
    return root


@pytest.mark.parametrize("kind", ["under_a_file", "a_folder", "read_only", "empty", "max_scale"])
def test_c2_c4_galetto_calibrate_refuses_a_bad_out_or_max_scale_before_any_sigma_map(tiny_model, tmp_path, capsys,
                                                                                     monkeypatch, kind):
    """galetto.calibrate --out under a file ("FILE: File exists"), in a read-only folder (a temporary's
    "Permission denied") and ``--max-scale 0.1`` ("max scale 0.1 leaves no candidate", naming no option) were found
    after every σ map; an existing folder got FOLDER.safetensors beside it; an empty name was "PosixPath('.') has
    an empty name" (reliability.md §28, C2 and C4). Now one line naming the option before the method is made."""
    from hostile_helpers import unwritable_folder

    from dmenet.galetto import calibrate

    data = _labelled(tmp_path / "lab")
    (tmp_path / "file").write_text("keep")
    (tmp_path / "folder").mkdir()
    (tmp_path / "ro").mkdir()
    out = {"under_a_file": tmp_path / "file" / "fit", "a_folder": tmp_path / "folder", "read_only": tmp_path / "ro"
           / "fit", "empty": "", "max_scale": tmp_path / "fit"}[kind]
    monkeypatch.setattr(calibrate, "fit_samples", lambda *a, **k: pytest.fail("σ maps made before the check"))
    argv = ["--benchmark", "cuhk", "--data", str(data), "--model", str(tiny_model), "--method", "galetto:stride=16",
            "--out", str(out), *(["--max-scale", "0.1"] if kind == "max_scale" else [])]
    if kind == "read_only":
        with unwritable_folder(tmp_path / "ro", monkeypatch):
            assert calibrate.main(argv) == 2
    else:
        assert calibrate.main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, err
    want = "--max-scale 0.1: below the smallest scale" if kind == "max_scale" else \
        f"--out {out}" if kind != "empty" else "--out '.': names no file"
    assert err[0].startswith(f"error: {want}"), err
    assert sorted(p.name for p in tmp_path.rglob("*.safetensors")) == ["tiny.safetensors"]  # nothing written


def test_v2_galetto_calibrate_writes_the_fitted_classifier_as_one_pair(tiny_model, tmp_path, monkeypatch):
    """write_fitted copied the classifier's file, then wrote its sidecar, two writes: a kill between them left a
    weights file alone, which blocked the same --out ("exists") (reliability.md §30, V2). An interrupt at the
    sidecar's placing now leaves neither file (and no temporary), the same --out then writes, and the copy holds
    the source's tensors and header."""
    import os

    from safetensors import safe_open
    from safetensors.torch import load_file

    from dmenet.galetto.detection import DetectionTransform, read_transform, write_fitted

    link = os.link

    def killed_at_the_sidecar(src, dst, *a, **k):
        if str(dst).endswith(".json"):
            raise KeyboardInterrupt  # as SIGINT arriving between the two files
        return link(src, dst, *a, **k)

    monkeypatch.setattr(os, "link", killed_at_the_sidecar)
    with pytest.raises(KeyboardInterrupt):
        write_fitted(tiny_model, tmp_path / "fit", DetectionTransform(2.0, 1.5), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.safetensors"]  # neither, no temporary
    monkeypatch.setattr(os, "link", link)
    fitted = write_fitted(tiny_model, tmp_path / "fit", DetectionTransform(2.0, 1.5), {"images": ["a.jpg"]})
    assert read_transform(fitted)[0] == DetectionTransform(2.0, 1.5)
    source, copy = load_file(str(tiny_model)), load_file(str(fitted))
    assert source.keys() == copy.keys() and all(torch.equal(source[k], copy[k]) for k in source)
    with safe_open(str(tiny_model), "pt") as a, safe_open(str(fitted), "pt") as b:
        assert a.metadata() == b.metadata() and a.metadata()
