"""Layered renderer: identities, Gaussian parity with kornia, fast == plain reference, regionfill, replay PSNR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from syndof.blur import render_layers
from syndof.blur_reference import render_layers_reference
from syndof.camera import sample_camera
from syndof.regionfill import BandedCholesky, factorize_laplace, regionfill


def small_scene(seed: int = 0, h: int = 60, w: int = 80):
    """A ground ramp with a near box and a nearer post: exercises blur, occlusion fill and in-focus layers."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    depth = 3000.0 + 20.0 * yy + 5.0 * xx
    depth[18:40, 25:55] = 1500.0 + 3.0 * xx[18:40, 25:55]
    depth[42:, 8:22] = 900.0 + yy[42:, 8:22]
    img = rng.random((3, h, w))
    cam, lay = sample_camera(depth, w, rng, min_layers=5, max_layers=1000)
    return torch.from_numpy(img), torch.from_numpy(lay.labels), torch.from_numpy(lay.coc), lay


def test_in_focus_layers_leave_image_unchanged():
    img, labels, _, _ = small_scene()
    k = int(labels.max()) + 1
    for coc in (torch.zeros(k), torch.ones(k)):
        out = render_layers(img, labels, coc, dtype=torch.float64)
        assert torch.allclose(out, img, atol=1e-12)
        assert torch.allclose(render_layers_reference(img, labels, coc), img, atol=1e-12)


def test_constant_image_stays_constant():
    img, labels, coc, _ = small_scene(1)
    const = torch.full_like(img, 0.3)
    const[1] = 0.7
    out = render_layers(const, labels, coc, dtype=torch.float64)
    # not to 1e-9: like the original, blurred alpha < 1e-4 is zeroed but the blurred colour is not, which leaves
    # colour of the order of 1e-4 without matching alpha at layer fringes
    assert torch.allclose(out, const, atol=5e-4)
    assert (out - const).abs().mean() < 1e-5


def test_white_image_renders_white_and_never_above_one():
    """Output is C / A clipped to [0, 1] (module docstring, step 4): at occlusion fills C / A can exceed 1 by ~1e-3
    on a white image (the colour and the alpha are filled separately), which the clip removes."""
    for seed in (1, 3):
        img, labels, coc, _ = small_scene(seed)
        out = render_layers(torch.ones_like(img), labels, coc, dtype=torch.float64)
        assert out.max().item() <= 1.0
        assert (out - 1.0).abs().max().item() < 1e-3


def test_uniform_sigma_equals_gaussian_blur():
    import kornia
    from scipy import ndimage

    from syndof.psf import gaussian_kernel

    rng = np.random.default_rng(2)
    img = torch.from_numpy(rng.random((3, 50, 64)))
    labels = torch.zeros(50, 64, dtype=torch.long)
    coc = torch.tensor([29.0])  # σ = 7, the full 29×29 kernel
    out = render_layers(img, labels, coc, dtype=torch.float64)
    ref = kornia.filters.gaussian_blur2d(img[None], (29, 29), (7.0, 7.0), border_type="reflect")[0]
    assert torch.allclose(out[:, 14:-14, 14:-14], ref[:, 14:-14, 14:-14], atol=1e-12)
    # whole frame incl. borders: MATLAB 'symmetric' = scipy 'reflect' (not kornia/torch 'reflect')
    k = gaussian_kernel(7.0, 29)
    full = np.stack([ndimage.convolve(c, k, mode="reflect") for c in img.numpy()])
    assert np.abs(out.numpy() - full).max() < 1e-12
    # a CoC 9 layer: σ = 2, cropped kernel
    out9 = render_layers(img, labels, torch.tensor([9.0]), dtype=torch.float64)
    full9 = np.stack([ndimage.convolve(c, gaussian_kernel(2.0, 29), mode="reflect") for c in img.numpy()])
    assert np.abs(out9.numpy() - full9).max() < 1e-12


@pytest.mark.parametrize("kernel", ["gaussian", "disc", "polygon"])
def test_fast_equals_plain_reference(kernel):
    img, labels, coc, lay = small_scene(3)
    assert (lay.coc <= 1).any() and lay.coc.argmin() < lay.n_layers - 1  # occlusion fill is exercised
    ref = render_layers_reference(img, labels, coc, kernel=kernel)
    for tile in (8, 32):
        fast = render_layers(img, labels, coc, kernel=kernel, dtype=torch.float64, tile=tile)
        assert (fast - ref).abs().max().item() < 1e-10
    fast32 = render_layers(img.float(), labels, coc, kernel=kernel)
    assert fast32.dtype == torch.float32
    assert (fast32.double() - ref).abs().max().item() < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    img, labels, coc, _ = small_scene(4)
    cpu = render_layers(img, labels, coc, dtype=torch.float64)
    gpu = render_layers(img.cuda(), labels.cuda(), coc, dtype=torch.float64)
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max().item() < 1e-9


def test_bad_inputs():
    img, labels, coc, _ = small_scene()
    with pytest.raises(ValueError, match=r"image must be \(3, H, W\), got \(2, "):
        render_layers(img[:2], labels, coc)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 0\]"):  # one CoC: layer 0 only
        render_layers(img, labels, coc[:1])
    for render in (render_layers, render_layers_reference):
        with pytest.raises(ValueError, match=r"kernel must be one of \('gaussian', 'disc', 'polygon'\), got 'star'"):
            render(img, labels, coc, kernel="star")


def test_bad_values_are_named_once_each():
    """The value checks before any layer is rendered (one read of the image's and the labels' extremes): NaN, +inf
    and -inf anywhere, values above 1.5 (8-bit) or below -0.5 (a [-1, 1] tensor), a negative layer index."""
    img, labels, coc, _ = small_scene()
    for value, words in ((float("nan"), "NaN or inf"), (float("inf"), "NaN or inf"), (float("-inf"), "NaN or inf"),
                         (255.0, "values up to 255"), (-1.0, "values down to -1")):
        bad = img.clone()
        bad[1, 3, 5] = value
        with pytest.raises(ValueError, match=words):
            render_layers(bad, labels, coc)
    bad_labels = labels.clone()
    bad_labels[0, 0] = -1
    with pytest.raises(ValueError, match=r"labels must lie in \[0, "):
        render_layers(img, bad_labels, coc)
    edge = img.clone()
    edge[0, 0, 0], edge[2, -1, -1] = -0.5, 1.5  # the limits themselves are taken (resampling over- and undershoot)
    assert torch.isfinite(render_layers(edge, labels, coc)).all()


def test_kernel_member_and_its_string_render_the_same():
    from syndof.psf import Kernel

    img, labels, coc, _ = small_scene(2, 24, 32)
    for kernel in Kernel:
        want = render_layers(img, labels, coc, kernel=kernel.value)
        assert torch.equal(render_layers(img, labels, coc, kernel=kernel), want)


def test_regionfill_reproduces_linear_ramp():
    yy, xx = np.mgrid[0:30, 0:40].astype(np.float64)
    ramp = 0.5 * xx - 0.25 * yy + 2.0
    mask = np.zeros_like(ramp, dtype=bool)
    mask[5:20, 8:30] = True
    mask[24, 3] = True
    filled = regionfill(np.where(mask, -7.0, ramp), mask)
    assert np.abs(filled - ramp).max() < 1e-10
    # multi-channel, same region; untouched outside the mask
    img = np.stack([ramp, 2 * ramp], axis=2)
    out = regionfill(np.where(mask[..., None], 0.0, img), mask)
    assert np.abs(out - img).max() < 1e-10


def test_banded_and_superlu_fill_solves_agree_with_dense():
    # a 2-D Laplace system over a ring-shaped band (the renderer's case): the RCM-banded Cholesky factor, the
    # SuperLU fallback (bandwidth limit 0) and a dense solve give the same solution
    yy, xx = np.mgrid[0:40, 0:50]
    r = np.hypot(yy - 20, xx - 25)
    ys, xs = np.nonzero((r > 8) & (r < 14))
    n = ys.size
    idx = np.full((40, 50), -1)
    idx[ys, xs] = np.arange(n)
    rows, cols = [np.arange(n)], [np.arange(n)]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        nb = idx[ys + dy, xs + dx]
        rows.append(np.flatnonzero(nb >= 0))
        cols.append(nb[nb >= 0])
    data = np.concatenate([np.full(n, 4.0)] + [-np.ones(c.size) for c in cols[1:]])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    dense = np.zeros((n, n))
    dense[rows, cols] = data
    rhs = np.random.default_rng(0).random((n, 4))
    want = np.linalg.solve(dense, rhs)
    banded = factorize_laplace(rows, cols, data, n)
    assert isinstance(banded, BandedCholesky)
    assert np.abs(banded.solve(rhs) - want).max() < 1e-10
    lu = factorize_laplace(rows, cols, data, n, max_bandwidth=0)
    assert not isinstance(lu, BandedCholesky)
    assert np.abs(lu.solve(rhs) - want).max() < 1e-10


def test_regionfill_edge_is_neumann_like_matlab():
    # a region touching the image edge: MATLAB counts only in-image neighbours (zero normal derivative)
    img = np.zeros((5, 5))
    img[:, 4] = 1.0
    mask = np.zeros((5, 5), dtype=bool)
    mask[:, 1:4] = True  # touches the top and bottom edges
    out = regionfill(img, mask)
    assert np.allclose(out[:, 1:4], out[2:3, 1:4])  # rows identical: no flux through the edges
    assert np.allclose(out[2, 1:4], [0.25, 0.5, 0.75])


@pytest.mark.shared
def test_replay_matches_original_renders(shared, tmp_path):
    from syndof.render import main, render_file

    base = shared("data", "syndof_reference")
    stems = sorted(p.stem for p in (base / "output" / "image").glob("*.png"))
    assert len(stems) == 2
    for i, stem in enumerate(stems):
        args = dict(image=base / "input" / "sintel_market_2_frame_0001.png",
                    depth=base / "input" / "sintel_market_2_frame_0001.dpt",
                    sigma_map=base / "output" / "blur_map" / f"{stem}.png",
                    reference=base / "output" / "image" / f"{stem}.png")
        if i == 0:
            res = render_file(out=tmp_path / "r.png", **args)
            assert (tmp_path / "r.png").is_file()
        else:  # the CLI path
            rc = main(["--image", str(args["image"]), "--depth", str(args["depth"]), "--sigma-map",
                       str(args["sigma_map"]), "--out", str(tmp_path / "cli.png"), "--reference",
                       str(args["reference"])])
            assert rc == 0
            from syndof import io
            from syndof.render import psnr_uint8

            res = {"psnr": psnr_uint8((io.read_image(tmp_path / "cli.png") * 255 + 0.5).astype(np.uint8),
                                      (io.read_image(args["reference"]) * 255 + 0.5).astype(np.uint8))}
        # the replay reproduces the original renders to the 8-bit level (103.4 and 100.9 dB on CPU, Dec 2026);
        # 38 dB let a 10× wrong occlusion-band threshold (BAND_EPS 1e-2: 57 and 53 dB) pass
        assert res["psnr"] >= 80.0, (stem, res["psnr"])


def test_torch_conv_path_matches(monkeypatch):
    """The CUDA code path (torch conv2d, no worker thread), exercised on the CPU."""
    import syndof.blur as blur
    from syndof.convolve import Conv

    img, labels, coc, _ = small_scene(5)
    ref = render_layers_reference(img, labels, coc)
    orig = Conv.__init__

    def torch_only(self, device):
        orig(self, device)
        self.cpu = False

    monkeypatch.setattr(Conv, "__init__", torch_only)
    with blur._single_threaded(True):
        out = blur._render_tiled(img, labels, coc, 29, "gaussian", torch.float64, 16, pipeline=False)
    assert (out - ref).abs().max().item() < 1e-10


def test_sigma10_matches_original_rounding():
    from syndof.camera import LayeredDepth

    lay = LayeredDepth(labels=np.array([[0, 1, 2, 3]]), coc=np.array([1.2, 1.4, 3.0, 29.0]),
                       depth_mm=np.array([4.0, 3.0, 2.0, 1.0]))
    # MATLAB: uint16(((c − 1)/4)·10) in double → 1.2 gives 0.4999… → 0
    assert lay.sigma10.tolist() == [[0, 1, 5, 70]]


# ---------------------------------------------------------------------------------------------- layer merging
def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10.0 * np.log10(1.0 / float(((a - b) ** 2).mean()))


def test_merge_tolerance_zero_is_exactly_todays_render():
    from syndof.layer_merge import merge_layers, merge_plan

    img, labels, coc, lay = small_scene(3)
    base = render_layers(img.float(), labels, coc)
    assert torch.equal(render_layers(img.float(), labels, coc, merge_tolerance=0.0), base)
    assert torch.equal(render_layers(img.float(), labels, coc, merge_tolerance=0), base)
    group, merged = merge_plan(lay.coc, np.ones(lay.n_layers), 0.0)
    assert np.array_equal(group, np.arange(lay.n_layers)) and np.array_equal(merged, lay.coc)
    lab0, coc0 = merge_layers(labels, coc, 0.0)
    assert torch.equal(lab0, labels) and np.array_equal(coc0, lay.coc)
    assert lay.merged(0.0) is lay


def test_merge_plan_groups_within_tolerance_and_never_across_focus():
    from syndof import units
    from syndof.layer_merge import merge_plan

    # far → near: blurred behind focus, in-focus layers, blurred in front (the generator's 0.1-px CoC grid)
    coc = np.r_[np.round(np.arange(9.0, 1.05, -0.1), 1), [1.0, 0.6, 0.0], np.round(np.arange(1.1, 6.0, 0.1), 1)]
    counts = np.random.default_rng(0).integers(0, 500, coc.size).astype(float)
    for tol in (0.025, 0.075, 0.1, 0.5):
        group, merged = merge_plan(coc, counts, tol)
        assert group[0] == 0 and np.all(np.diff(group) >= 0) and np.all(np.diff(group) <= 1)
        assert merged.size == group[-1] + 1 < coc.size
        sigma = units.coc_to_sigma(coc)
        for g in range(merged.size):
            members = group == g
            assert len(set((coc[members] <= 1).tolist())) == 1  # one side of focus
            assert np.ptp(sigma[members]) <= tol + 1e-9
            lo, hi = coc[members].min(), coc[members].max()
            if hi <= 1:
                assert merged[g] == 1.0  # in focus stays in focus
            else:  # the pixel-weighted mean σ, on the 0.1-px CoC grid, inside the members' range
                assert lo <= merged[g] <= hi and abs(merged[g] * 10 - round(merged[g] * 10)) < 1e-9
                w = counts[members]
                mean = np.average(sigma[members], weights=w) if w.sum() else sigma[members].mean()
                assert abs(units.coc_to_sigma(merged[g]) - mean) <= 0.0125 + 1e-12
    # 0.025 px σ = one 0.1-px CoC step: pairs, whatever the float rounding of the steps
    group, _ = merge_plan(coc[:10], np.ones(10), 0.025)
    assert group.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_merged_render_drops_layers_stays_close_and_ground_truth_matches():
    from syndof import units
    from syndof.layer_merge import merge_layers

    img, labels, coc, lay = small_scene(3)
    exact = render_layers(img, labels, coc, dtype=torch.float64)
    merged = lay.merged(0.1)
    assert merged.n_layers < lay.n_layers / 2 and not merged.exact
    out = render_layers(img, labels, coc, dtype=torch.float64, merge_tolerance=0.1)
    assert _psnr(out, exact) > 45.0  # 55 dB when written
    # the render is exactly the render of the merged layers, whose σ map is the ground truth to write
    lab_m, coc_m = merge_layers(labels, coc, 0.1)
    assert np.array_equal(lab_m.numpy(), merged.labels) and np.array_equal(coc_m, merged.coc)
    again = render_layers(img, torch.from_numpy(merged.labels), torch.from_numpy(merged.coc), dtype=torch.float64)
    assert torch.equal(again, out)
    assert np.array_equal(merged.sigma_map, units.coc_to_sigma(coc_m)[lab_m.numpy()].astype(np.float32))
    assert np.abs(merged.sigma_map - lay.sigma_map).max() <= 0.1 + 0.0125 + 1e-6
    assert np.array_equal(merged.sigma_map == 0, lay.sigma_map == 0)  # the in-focus pixels stay in focus
    # the plain reference merges the same way
    ref = render_layers_reference(img, labels, coc, merge_tolerance=0.1)
    assert (out - ref).abs().max().item() < 1e-10


def test_generate_sample_ground_truth_follows_merged_layers():
    from syndof.sample import generate_sample

    img, _, _, _ = small_scene(3)
    image = img.numpy().transpose(1, 2, 0)
    yy, xx = np.mgrid[0:60, 0:80].astype(np.float64)
    depth = 3000.0 + 20.0 * yy + 5.0 * xx
    depth[18:40, 25:55] = 1500.0
    exact = generate_sample(image, depth, np.random.default_rng(1))
    res = generate_sample(image, depth, np.random.default_rng(1), merge_tolerance=0.1)
    assert res.layered.n_layers < exact.layered.n_layers
    assert np.array_equal(res.sigma, res.layered.sigma_map)
    assert np.array_equal(res.layered.labels, exact.layered.merged(0.1).labels)
    lay = res.layered
    again = render_layers(torch.from_numpy(np.ascontiguousarray(img.numpy().astype(np.float32))),
                          torch.from_numpy(lay.labels), torch.from_numpy(lay.coc))
    assert np.abs(again.numpy().transpose(1, 2, 0) - res.image).max() < 1e-6


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "abc", None])
def test_invalid_merge_tolerance_raises(bad):
    from syndof.layer_merge import merge_plan

    img, labels, coc, lay = small_scene()
    with pytest.raises(ValueError, match="merge_tolerance"):
        render_layers(img, labels, coc, merge_tolerance=bad)
    with pytest.raises(ValueError, match="merge_tolerance"):
        render_layers_reference(img, labels, coc, merge_tolerance=bad)
    with pytest.raises(ValueError, match="merge_tolerance"):
        merge_plan(lay.coc, np.ones(lay.n_layers), bad)
    with pytest.raises(ValueError, match="merge_tolerance"):
        lay.merged(bad)


@pytest.mark.shared
def test_replay_with_merged_layers_keeps_40_db_and_writes_the_rendered_sigma(shared, tmp_path):
    from syndof import io
    from syndof.render import main, render_file

    base = shared("data", "syndof_reference")
    stem = "MPI_market_2_frame_0001_f_50_fp_0_33_A_0_2"  # the lower PSNR of the two at 0.075 px
    args = ["--image", str(base / "input" / "sintel_market_2_frame_0001.png"),
            "--depth", str(base / "input" / "sintel_market_2_frame_0001.dpt"),
            "--sigma-map", str(base / "output" / "blur_map" / f"{stem}.png"),
            "--reference", str(base / "output" / "image" / f"{stem}.png"), "--out", str(tmp_path / "m.png")]
    with pytest.raises(SystemExit) as exc:  # a one-line usage error naming the flag
        main(args + ["--merge-tolerance", "-1"])
    assert exc.value.code == 2
    res = render_file(image=args[1], depth=args[3], sigma_map=args[5], reference=args[7], merge_tolerance=0.075,
                      sigma_out=tmp_path / "sigma.png")
    assert res["layers"].n_layers < res["source_layers"].n_layers / 3
    assert res["psnr"] >= 40.0, res["psnr"]
    written = io.read_sigma_map(tmp_path / "sigma.png")
    assert np.array_equal(written, res["layers"].sigma10.astype(np.float32) / 10)


# ------------------------------------------------------------------------------------ bad input: one clear error
def test_render_image_takes_uint8_and_refuses_0_255_floats():
    """Audit #10: 8-bit values were rendered as an all-white image."""
    from syndof.render import render_image

    _, _, _, lay = small_scene(4)
    h, w = lay.labels.shape
    u8 = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    want = render_image(u8 / 255.0, lay)
    assert np.abs(render_image(u8, lay).astype(int) - want).max() <= 1 and want.min() < 255
    with pytest.raises(ValueError, match="image"):
        render_image(u8.astype(np.float32), lay)
    img = torch.from_numpy(u8.transpose(2, 0, 1).copy())
    labels, coc = torch.from_numpy(lay.labels), lay.coc
    for bad in (img.float(), img):  # float 0…255, uint8 tensor
        with pytest.raises(ValueError, match="image"):
            render_layers(bad, labels, coc)
    nan = img.double() / 255
    nan[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        render_layers(nan, labels, coc)


def test_coc_must_be_finite_non_negative_and_within_max_coc():
    """Audit #24: a CoC above max_coc was rendered with the kernel grid's truncated σ; NaN / inf / negative
    silently."""
    from syndof.render import render_image

    img, labels, coc, lay = small_scene(4)
    assert float(lay.coc.max()) > 5
    with pytest.raises(ValueError, match="max_coc 5"):
        render_image(img.numpy().transpose(1, 2, 0), lay, max_coc=5)
    bad_cocs = [("exceeds", coc * 3), ("finite", torch.where(coc == coc.max(), float("nan"), coc)),
                ("finite", torch.where(coc == coc.max(), float("inf"), coc)), (">= 0", -coc - 1)]
    for words, bad in bad_cocs:
        for fn in (render_layers, render_layers_reference):
            with pytest.raises(ValueError, match=f"coc: .*{words}"):
                fn(img, labels, bad)
    with pytest.raises(ValueError, match="max_coc"):
        render_layers(img, labels, coc, max_coc=float("nan"))
    render_layers(img, labels, torch.clamp(coc, max=29.2))  # the σ-map rounding allowance still renders


@pytest.mark.parametrize("kwargs, words", [({"tile": 0}, "tile"), ({"tile": -4}, "tile"), ({"tile": 2.5}, "tile"),
                                           ({"dtype": torch.float16}, "dtype"), ({"dtype": torch.int32}, "dtype")])
def test_bad_tile_or_dtype_is_named(kwargs, words):
    """Audit #25: ZeroDivisionError, a NumPy error or cv2.error from deep inside."""
    img, labels, coc, _ = small_scene(4)
    with pytest.raises(ValueError, match=words):
        render_layers(img, labels, coc, **kwargs)


def test_empty_image_and_array_labels_are_named():
    img, labels, coc, _ = small_scene(4)
    with pytest.raises(ValueError, match="empty"):
        render_layers(torch.zeros(3, 0, 0), torch.zeros(0, 0, dtype=torch.long), np.array([1.0]))
    with pytest.raises(ValueError, match="labels"):
        render_layers(img, labels.numpy(), coc)
    with pytest.raises(ValueError, match="image"):
        render_layers(img.numpy(), labels, coc)


def test_s2_float_labels_are_refused_not_truncated_to_another_render():
    """§19 S2: labels 0.6 (a float tensor) rendered silently as layer 0: every pixel blurred by layer 0's CoC."""
    img = torch.rand(3, 16, 16, dtype=torch.float64)
    labels = torch.zeros(16, 16, dtype=torch.long)
    labels[:, 8:] = 1  # right half in focus (CoC 0)
    coc = np.array([5.0, 0.0])
    for render in (render_layers, render_layers_reference):
        for bad in (labels.double() * 0.6, labels.float()):
            with pytest.raises(ValueError, match="labels must be an integer tensor"):
                render(img, bad, coc, max_coc=9)
        out = render(img, labels.to(torch.uint8), coc, max_coc=9, dtype=torch.float64)  # integer kinds are taken
        assert torch.equal(out[:, :, 12:], img[:, :, 12:])  # in focus, > 2σ = 2 px from the blurred half: unchanged
