"""Round-4 mutation audit (docs/audit.md): values computed by hand or invariants from the specifications, for
formulas no earlier test pinned down. Tiny inputs; each test runs in well under a second."""

from __future__ import annotations

import numpy as np
import torch

from dmenet.models.decoder import AuxHead, Decoder, ResBlock
from dmenet.models.mobilenet import MBV2_TAPS, InvertedResidual, MobileNetV2Encoder


# --------------------------------------------------------------------------------------------------- decoder
def test_decoder_concatenates_upsampled_before_skip():
    """docs/method.md §2: every stage reads [upsampled, skip]; with u3's weights on the skip part zeroed, u3's output
    no longer depends on d3 (equal channel counts, so the other order would run and read d3)."""
    torch.manual_seed(0)
    dec = Decoder((4, 4, 4, 4, 4), width=0.125, refine_blocks=0).eval()
    with torch.no_grad():
        dec.u3[0].conv.weight[:, 4:] = 0.0  # input channels 4..7: d3
    skips = [torch.rand(1, 4, 32 // 2 ** i, 32 // 2 ** i) for i in range(5)]
    other = list(skips)
    other[3] = torch.rand_like(skips[3])
    with torch.no_grad():
        u3_a = dec._decode(skips, with_aux=False)[3]
        u3_b = dec._decode(other, with_aux=False)[3]
    assert torch.equal(u3_a, u3_b)


def test_residual_block_adds_its_shortcut():
    torch.manual_seed(0)
    block = ResBlock(3).eval()
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(block(x), block.main(x) + block.shortcut(x), atol=1e-6)
        assert not torch.allclose(block(x), block.main(x) - block.shortcut(x), atol=1e-3)


def test_aux_head_normalises_its_logit_before_the_sigmoid():
    """AuxHead = sigmoid(BN(conv(CBL(x)))): in eval mode the BN is (z − mean)/√(var + eps) + beta."""
    torch.manual_seed(0)
    head = AuxHead(2, 3).eval()
    with torch.no_grad():
        head.bn.running_mean.fill_(0.5)
        head.bn.running_var.fill_(4.0)
        head.bn.bias.fill_(0.25)
        x = torch.rand(1, 2, 5, 5)
        z = head.conv(head.cbl(x))
        expected = torch.sigmoid((z - 0.5) / (4.0 + 1e-5) ** 0.5 + 0.25)
        assert torch.allclose(head(x), expected, atol=1e-6)


def test_half_resolution_tail_upsamples_the_logit_without_aligned_corners():
    """Module docstring: with tail_scale 2 the head's logit is upsampled ×2 bilinearly, align_corners=False."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    dec = Decoder((4, 4, 4, 4, 4), width=0.125, refine_blocks=1, tail_scale=2).eval()
    skips = [torch.rand(1, 4, 32 // 2 ** i, 32 // 2 ** i) for i in range(5)]
    with torch.no_grad():
        logit, _, _, _, refined = dec._decode(skips, with_aux=False)
        expected = F.interpolate(dec.head_out(dec.head(refined)), scale_factor=2.0, mode="bilinear",
                                 align_corners=False)
    assert logit.shape == (1, 1, 32, 32) and torch.allclose(logit, expected, atol=1e-6)


# ------------------------------------------------------------------------------------------------- mobilenet
def test_mobilenet_taps_are_the_last_block_of_each_resolution():
    """d1..d4 = features.1, .3, .6, .13 (module docstring); the perceptual tap = d3 (features.6)."""
    torch.manual_seed(0)
    enc = MobileNetV2Encoder().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        skips = enc(x)
        h, outs = enc.normalize(x), {}
        for i, block in enumerate(enc.features):
            h = block(h)
            outs[i] = h
        for level, index in enumerate((1, 3, 6, 13), start=1):
            assert torch.equal(skips[level], outs[index]), level
        assert torch.equal(enc.perceptual_features(x), outs[6])
    assert MBV2_TAPS == (1, 3, 6, 13)


def test_inverted_residual_adds_its_input_at_stride_one():
    torch.manual_seed(0)
    block = InvertedResidual(8, 8, stride=1, expand=6).eval()
    x = torch.rand(1, 8, 6, 6)
    with torch.no_grad():
        assert torch.allclose(block(x), x + block.conv(x), atol=1e-6)


# ----------------------------------------------------------------------------------------------- sigma curve
def test_weighted_median_is_the_first_bin_reaching_half():
    from dmenet.models.sigma_curve import TRUE_BIN_PX, _weighted_median

    assert _weighted_median(np.array([1.0, 1.0])) == 0.0  # cum [1, 2] reaches 1 = half at bin 0
    assert _weighted_median(np.array([1.0, 0.0, 3.0])) == 2 * TRUE_BIN_PX


def test_sigma_histograms_have_a_column_for_sigma_max():
    """Columns round(σ/0.05) for σ in [0, σ_max]: σ_max/0.05 + 1 of them; σ 7 and 6.95 land in different ones."""
    from dmenet.models.sigma_curve import sigma_histograms

    hists = sigma_histograms(np.array([[7.0, 0.0, 3.4]]), np.array([[7.0, 6.95, 9.0]]), 8, 7.0)
    assert hists.shape == (8, 141)
    assert hists[7, 140] == 1 and hists[0, 139] == 1  # predicted 7 → knot 7; predicted 0 → knot 0
    assert hists[3, 140] == 1  # predicted 3.4 → nearest knot 3; true 9 clipped to σ_max
    assert hists.sum() == 3


# ------------------------------------------------------------------------------------------------ data streams
class _Indices:
    """A dataset whose sample i is the number i (load never fails)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def load(self, index: int) -> dict:
        return {"index": index}

    def describe(self, index: int) -> str:
        return str(index)


def _record_seed(sample, gen):
    return {"index": torch.tensor(sample["index"]), "seed": torch.tensor(gen.initial_seed())}


def test_each_pass_of_a_stream_draws_every_sample_once():
    from dmenet.data.stream import DomainStream

    stream = DomainStream(_Indices(5), 5, seed=3, transform=_record_seed, name="t")
    for _ in range(3):
        assert sorted(stream.next_batch()["index"].tolist()) == [0, 1, 2, 3, 4]


def test_a_slot_is_augmented_with_the_seed_the_stream_draws_for_it():
    """Module docstring: a permutation per pass, then one seed per slot drawn from the stream's generator."""
    from dmenet.data.stream import DomainStream

    stream = DomainStream(_Indices(4), 2, seed=11, transform=_record_seed, name="t")
    gen = torch.Generator().manual_seed(11)
    order = torch.randperm(4, generator=gen)
    seeds = [int(torch.randint(0, 2**62, (1,), generator=gen).item()) for _ in range(2)]
    batch = stream.next_batch()
    assert batch["index"].tolist() == order[:2].tolist()
    assert batch["seed"].tolist() == seeds


def test_synthetic_split_with_no_holdout_keeps_every_sample(tmp_path):
    from train_data_helpers import write_syndof

    from dmenet.data import SyntheticDataset

    ds = SyntheticDataset(write_syndof(tmp_path / "syn", count=3))
    train, val = ds.split(0)
    assert train is ds and val is None and len(train) == 3


# ------------------------------------------------------------------------------------------------- allocator
def test_allocator_sets_glibc_parameters_by_their_malloc_h_numbers(monkeypatch):
    """glibc malloc.h: M_TRIM_THRESHOLD −1, M_TOP_PAD −2, M_MMAP_THRESHOLD −3."""
    import ctypes

    from syndof import allocator

    calls = []

    class FakeMallopt:
        def __call__(self, param, value):
            calls.append((param, value))
            return 1

    class FakeLibc:
        mallopt = FakeMallopt()

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    assert allocator.reuse_freed_memory()
    assert sorted(calls) == [(-3, 32 * 1024 * 1024), (-2, 64 * 1024 * 1024), (-1, 1 << 30)]


# ---------------------------------------------------------------------------------------------- random depth
def test_smooth_noise_is_zero_mean_unit_std():
    from syndof.random_depth import _smooth_noise

    field = _smooth_noise(np.random.default_rng(0), (20, 30), 8.0)
    assert field.shape == (20, 30)
    assert abs(field.mean()) < 1e-12 and abs(field.std() - 1.0) < 1e-12


def test_a_small_patch_behind_a_weak_edge_joins_its_surroundings():
    """superpixel_regions step 2: a boundary below ``merge_delta_e`` (here ΔE ≈ 3 after the smoothing, above the
    always-merge 2) joins a small piece to its neighbour, so a faint 8×8 patch is no region of its own."""
    from syndof.random_depth import superpixel_regions

    img = np.full((64, 64, 3), 0.5)
    img[20:28, 30:38] = 0.62
    regions = superpixel_regions(img, np.random.default_rng(0), n_regions=1000, merge_delta_e=10.0)
    assert regions.max() == 0


# -------------------------------------------------------------------------------------------------- depth io
def test_png_depth_reads_matlabs_first_channel(tmp_path):
    """MATLAB's first channel (R) is OpenCV's last (BGR)."""
    import cv2

    from syndof.depth_io import read_depth

    red = np.array([[300, 400], [500, 600]], np.uint16)
    bgr = np.stack([np.full_like(red, 7), np.full_like(red, 9), red], axis=-1)
    path = tmp_path / "d.png"
    assert cv2.imwrite(str(path), bgr)
    np.testing.assert_array_equal(read_depth(path, scale=1.0), red.astype(np.float64))


# ---------------------------------------------------------------------------------------------------- camera
def test_replay_applies_the_5f_shift_of_a_near_depth_map():
    """A depth map nearer than 5f was shifted by the sampler (z − z_min + 5f); the replay must shift it the same
    way (from the nearest depth) to find the exact camera again."""
    from syndof.camera import layers_from_sigma, sample_camera

    depth = np.linspace(100.0, 3000.0, 24 * 32).reshape(24, 32)
    cam, layered = sample_camera(depth, 32, np.random.default_rng(1), min_layers=0, max_layers=10**6,
                                 max_retries=0)
    assert cam.depth_shift_mm == 5 * cam.focal_mm - 100.0
    replay = layers_from_sigma(depth, layered.sigma_map, focal_mm=cam.focal_mm)
    assert replay.exact and replay.camera.depth_shift_mm == cam.depth_shift_mm
    np.testing.assert_array_equal(replay.labels, layered.labels)


# ---------------------------------------------------------------------------------------------------- images
def test_rgb2gray_weights_are_matlabs_per_channel():
    from syndof.images import rgb2gray

    assert rgb2gray(1.0, 0.0, 0.0) == 0.2989
    assert rgb2gray(0.0, 1.0, 0.0) == 0.5870
    assert rgb2gray(0.0, 0.0, 1.0) == 0.1140


# ---------------------------------------------------------------------------------------------------- resize
def test_min_short_side_floors_the_short_side():
    from syndof.resize import long_side_scale

    assert long_side_scale((100, 1000), 100, min_short_side=50) == 0.5  # short side 100 → 50, not 10
    assert long_side_scale((1000, 100), 100, min_short_side=50) == 0.5
    assert long_side_scale((40, 1000), 100, min_short_side=50) == 1.0  # already below the floor: kept
    assert long_side_scale((100, 1000), 100) == 0.1


def test_scaled_size_rounds_to_nearest():
    from syndof.resize import scaled_size

    assert scaled_size((3, 7), 0.6) == (4, 2)  # w 4.2 → 4, h 1.8 → 2 (not truncated to 1)
    assert scaled_size((3, 7), 0.1, minimum=2) == (2, 2)


# --------------------------------------------------------------------------------------------- distill models
def test_student_lite_normalisation_is_255x_minus_127_over_128():
    from dmenet.distill.models.unet import EffUNet, StudentConfig

    torch.manual_seed(0)
    net = EffUNet(StudentConfig(encoder="lite0", decoder=(8, 8, 8, 8, 8))).eval()
    seen = []
    net.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        net(x)
    assert torch.allclose(seen[0], (255 * x - 127) / 128, atol=1e-5)


def test_patch_discriminator_sees_both_inputs_in_minus_one_one():
    from dmenet.distill.models.discriminator import PatchDiscriminator

    disc = PatchDiscriminator((4, 4, 4)).eval()
    seen = []
    disc.net[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    image, blur = torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        disc(image, blur)
    assert torch.allclose(seen[0], torch.cat([2 * image - 1, 2 * blur - 1], 1))


def test_self_attention_normalises_over_the_keys():
    """out_i = γ·Σ_j softmax_j(q_i·k_j)·v_j + x_i, worked out for two positions."""
    import math

    from dmenet.distill.models.teacher import self_attention

    x = torch.zeros(1, 1, 1, 2)
    q, k, v = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]), torch.tensor([3.0, 5.0])
    out = self_attention(x, q.view(1, 1, 1, 2), k.view(1, 1, 1, 2), v.view(1, 1, 1, 2), torch.ones(1))
    e, e2 = math.e, math.e ** 2
    expected = [(3 * e + 5) / (e + 1), (3 * e2 + 5) / (e2 + 1)]
    assert torch.allclose(out.flatten(), torch.tensor(expected), atol=1e-6)


def test_efficientnet_same_padding_puts_the_extra_pixel_bottom_right():
    """TF SAME for a 3×3/2 conv on 4 px: total 1, before 0, after 1; a kernel that picks its top-left tap then
    reads x[2i, 2j]."""
    from dmenet.distill.models.efficientnet import Conv2dSame

    conv = Conv2dSame(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
        x = torch.arange(16.0).view(1, 1, 4, 4)
        assert torch.equal(conv(x), x[..., ::2, ::2])


# ---------------------------------------------------------------------------------------------------- scenes
class _NoTilt:
    """A generator whose ±0.08 tilt draws are 0 (everything else from ``rng``): shapes become flat planes."""

    def __init__(self, rng):
        self.rng = rng

    def __getattr__(self, name):
        return getattr(self.rng, name)

    def uniform(self, low=0.0, high=1.0, size=None):
        return np.zeros(size) if (low, high) == (-0.08, 0.08) else self.rng.uniform(low, high, size)


def test_procedural_shapes_are_painted_far_to_near(monkeypatch):
    """Nearer shapes occlude farther ones: where every shape overlaps, the depth is that of the nearest shape."""
    from syndof import scenes

    calls = []

    def strip_and_block(rng, height, width):
        mask = np.zeros((height, width), bool)
        mask[2 * len(calls), :20] = True  # a row of its own
        mask[40:44, 40:44] = True  # shared by every shape
        calls.append(mask)
        return mask

    monkeypatch.setattr(scenes, "_shape_mask", strip_and_block)
    _, depth = scenes.procedural_scene(_NoTilt(np.random.default_rng(5)), 64, 64)
    own = [depth[2 * k, 0] for k in range(len(calls))]
    assert len(calls) >= 4 and len(set(own)) == len(own)
    assert depth[41, 41] == min(own)


def test_procedural_background_recedes_toward_the_top(monkeypatch):
    from syndof import scenes

    monkeypatch.setattr(scenes, "_shape_mask", lambda rng, h, w: np.zeros((h, w), bool))
    _, depth = scenes.procedural_scene(np.random.default_rng(2), 32, 32)
    assert depth[-1].mean() < depth[0].mean()
    assert depth[-1].min() == depth.min()


def test_motorcycle_calibration_is_the_full_resolution_one_divided_by_four():
    """Depth is metric whatever the scale: Z = B·f/(d + doffs) with f, doffs and d all ÷ 4 (module docstring)."""
    from syndof import scenes

    assert abs(4 * scenes.MOTORCYCLE_FOCAL_PX - 3979.911) < 0.01
    assert abs(4 * scenes.MOTORCYCLE_DOFFS_PX - 124.343) < 0.01


# --------------------------------------------------------------------------------------------- detection head
def test_head_hidden_activation_is_leaky_relu_with_slope_0_2():
    """2 → 1 → 1 head reading only the first label: logit = ρ(l₁ − 0.5), ρ(u) = max(u, 0.2·u)."""
    from dmenet.models.detection_head import DetectionHead, head_logit

    head = DetectionHead(layers=((((1.0, 0.0),), (-0.5,)), (((1.0,),), (0.0,))))
    z = head_logit(head, np.array([0.0, 0.25, 1.0]), np.zeros(3))
    np.testing.assert_allclose(z, [-0.1, -0.05, 0.5], rtol=1e-6)


# ------------------------------------------------------------------------------------------------ regionfill
def test_regionfill_of_one_corner_pixel_is_the_mean_of_its_two_neighbours():
    from syndof.regionfill import regionfill

    img = np.array([[9.0, 2.0, 5.0], [4.0, 7.0, 1.0], [3.0, 8.0, 6.0]])
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = True
    out = regionfill(img, mask)
    assert out[0, 0] == 3.0  # (2 + 4) / 2: deg 2 in a corner
    np.testing.assert_array_equal(out[~mask], img[~mask])
