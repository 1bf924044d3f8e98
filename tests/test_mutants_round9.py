"""Round-9 mutation audit (docs/audit.md): code no earlier round mutated: the ONNX export and its check
(``dmenet.export``), the parameter and FLOP summary (``dmenet.summary``), the colour maps and contact sheets
(``syndof.viz``), Galetto's map refinement (``dmenet.galetto.refine``), predict's one-photo step and default worker
count, and the DBD scoring size (``dmenet.eval.dbd``). Each test names the mutant it kills; tiny inputs, no network
trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
TINY_YAML = REPO / "experiments" / "tiny.yaml"


# ------------------------------------------------------------------------------------------------------------- export
class _Offset(nn.Module):
    """x − ``offset``: traced to a graph that differs from the identity by −offset."""

    def __init__(self, offset: torch.Tensor):
        super().__init__()
        self.register_buffer("offset", offset)

    def forward(self, x):
        return x - self.offset


def _graph_and_net(offset: torch.Tensor):
    """(ONNX bytes of x − offset, an Exportable of the identity on the same example input)."""
    from dmenet import export

    example = torch.rand(1, 1, 2, 3, generator=torch.Generator().manual_seed(1))
    graph = export.onnx_bytes(export.Exportable(_Offset(offset).eval(), example, ["image"], ["out"]))
    return graph, export.Exportable(nn.Identity().eval(), example, ["image"], ["out"])


def test_check_is_the_largest_absolute_difference():
    """Mutants: the check's ``max`` a mean, its ``|·|`` dropped (a graph whose outputs are only too small would
    pass). The graph gives x − d with d 0.5 at one element and 0 elsewhere: ONNX Runtime's output lies
    0.5 below PyTorch's there, so the largest |Δ| is 0.5 (the signed maximum 0, the mean 0.5/6)."""
    from dmenet import export

    pytest.importorskip("onnxruntime")
    offset = torch.zeros(1, 1, 2, 3)
    offset[0, 0, 1, 2] = 0.5
    graph, net = _graph_and_net(offset)
    assert export.check_onnx(net, graph) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("delta, written", [(1e-4, True), (2e-4, False), (5e-3, False)])
def test_a_check_above_1e_4_fails_and_writes_nothing(tmp_path, capsys, monkeypatch, delta, written):
    """Mutants: the tolerance 1e-2 (module docstring: "above 1e-4 the command fails"), the command's own refusal at
    10× the tolerance (export_onnx's ``<=`` and main's ``>`` must agree). 1e-4 passes and is written; 2e-4 and 5e-3
    exit 1 with nothing written."""
    from dmenet import export

    pytest.importorskip("onnxruntime")
    graph, net = _graph_and_net(torch.zeros(1, 1, 2, 3))
    monkeypatch.setitem(export.EXPORTERS, "dmenet", export.Exporter(lambda model, size: net, 16, 1))
    monkeypatch.setattr(export, "check_onnx", lambda net, graph, threads=1: delta)
    out = tmp_path / "x.onnx"
    rc = export.main(["--format", "onnx", "--out", str(out), "--size", "16", "16"])
    captured = capsys.readouterr()
    assert (rc, out.exists()) == ((0, True) if written else (1, False)), captured.err
    assert ("not written" in captured.err) is not written


def test_the_example_input_is_random_in_0_1_and_reproducible():
    """Mutant: the example input a constant (a graph wrong only where pixels differ, e.g. a flipped or shifted one,
    would pass the check). The example spans [0, 1) (uniform: std ≈ 0.29) and is the same on every call."""
    from dmenet import export

    x = export._example(1, 3, 16, 16)
    assert x.shape == (1, 3, 16, 16) and float(x.min()) >= 0.0 and float(x.max()) < 1.0
    assert 0.2 < float(x.std()) < 0.4
    assert torch.equal(x, export._example(1, 3, 16, 16))


def test_export_memory_by_hand():
    """Mutants: the per-pixel part H·H (not H·W), the fixed part 512 KiB (not 512 MiB). 512 MiB + 1000 B·100·300."""
    from dmenet import export

    exporter = export.Exporter(lambda model, size: None, 16, 1000)
    assert export.export_memory(exporter, (100, 300)) == 512 * 2**20 + 1000 * 100 * 300


def test_per_pixel_memory_is_at_least_what_was_measured():
    """Mutant: dmenet's 1000 B/px written 100. The comment above :data:`EXPORTERS` gives the measured growth (dmenet
    757 B/px, distill_student 912, distill_teacher 2720); each estimate is at least its measurement."""
    from dmenet import export

    measured = {"dmenet": 757, "distill_student": 912, "distill_teacher": 2720}
    assert {name: export.EXPORTERS[name].bytes_per_pixel >= b for name, b in measured.items()} == dict.fromkeys(
        measured, True)


def test_memory_guard_uses_height_times_width(tmp_path, capsys, monkeypatch):
    """Mutant: the guard's estimate made for (W, W). At --size 64 32 the need is for 64·32 px; with one byte less
    available the export is refused before its build (the mutant's 32·32 estimate fitted and started it)."""
    import dmenet.memory
    from dmenet import export

    def unbuilt(model_file, size):
        raise AssertionError("built although it cannot fit")

    exporter = export.Exporter(unbuilt, 16, 1000)
    monkeypatch.setitem(export.EXPORTERS, "dmenet", exporter)
    monkeypatch.setattr(dmenet.memory, "available_memory", lambda: export.export_memory(exporter, (64, 32)) - 1)
    rc = export.main(["--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--size", "64", "32"])
    assert rc == 2 and "--size 64 32" in capsys.readouterr().err


def test_distill_size_is_checked_on_both_sides(tmp_path, capsys):
    """Mutant: the width checked against 16, not the network's 32 (the tests gave a bad height only). --size 64 48
    for distill_student: exit 2, one line, nothing written."""
    from dmenet import export

    rc = export.main(["--format", "onnx", "--network", "distill_student", "--out", str(tmp_path / "x.onnx"),
                      "--size", "64", "48"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "multiples of 32" in err[0]
    assert not list(tmp_path.iterdir())


def test_a_link_to_nothing_as_out_is_refused_and_kept(tmp_path, capsys):
    """Mutant: only ``exists()`` checked (False for a link to nothing: the export would be written through it, to
    wherever it points). Exit 2 naming --out; the link still points at nothing."""
    from dmenet import export

    out = tmp_path / "x.onnx"
    out.symlink_to(tmp_path / "elsewhere.onnx")
    rc = export.main(["--format", "onnx", "--network", "galetto", "--out", str(out)])
    assert rc == 2 and f"--out {out}: exists" in capsys.readouterr().err
    assert out.is_symlink() and not (tmp_path / "elsewhere.onnx").exists()


def test_session_threads_and_no_spinning():
    """Mutants: ``intra_op_num_threads`` 0 (every core, whatever ``--threads``), spinning allowed (idle threads
    slowed the PyTorch work around each call 2×). The session holds the threads asked for and spinning "0"."""
    from dmenet import export

    pytest.importorskip("onnxruntime")
    graph, _ = _graph_and_net(torch.zeros(1, 1, 2, 3))
    options = export.ort_session(graph, threads=3).get_session_options()
    assert options.intra_op_num_threads == 3
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_graph_is_opset_17_with_a_named_dynamic_batch():
    """Mutants: opset 13 (module docstring: opset 17); galetto's ``logits`` without its dynamic axis (the output's
    batch would be fixed or nameless). The galetto graph's input and output both have the batch axis "windows"."""
    onnx = pytest.importorskip("onnx")
    from dmenet import export

    model = onnx.load_from_string(export.onnx_bytes(export.EXPORTERS["galetto"].build(None, (0, 0))))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    for value in (model.graph.input[0], model.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == "windows", value.name


# ------------------------------------------------------------------------------------------------------------ summary
def _tiny_config():
    from dmenet.config import load_config

    return load_config(TINY_YAML).model


def _hand_flops(module: nn.Module, *inputs) -> int:
    """2 FLOPs per multiply-add of every convolution and linear layer of one forward of ``module``, from each layer's
    output size: 2·out.numel()·(C_in/groups)·k_h·k_w, or 2·out.numel()·in_features."""
    total = 0

    def hook(layer, args, out):
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            total += 2 * out.numel() * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            total += 2 * out.numel() * layer.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def test_summary_flops_of_every_subnetwork_by_its_layers(monkeypatch):
    """Mutants: D's FLOPs counted on S, C's on the image; and the parameters of D taken from S, of B total from the
    whole network. Each row's FLOPs equal 2·multiply-adds of its convolutions on the input the module docstring
    names (B on the image, D on B's features, S and C on B's σ map); the four networks' parameters add up to the
    whole DMENet's."""
    from dmenet import summary
    from dmenet.models import build_dmenet

    cfg = _tiny_config()
    built = []

    def build(c):
        built.append(build_dmenet(c).eval())
        return built[-1]

    monkeypatch.setattr(summary, "build_dmenet", build)
    torch.manual_seed(0)
    rows = {name: (n, flops) for name, n, flops in summary.summarize(cfg, size=32)}
    model = built[0]
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out = model.blur(x)
    assert rows["B total"][1] == _hand_flops(model.blur, x)
    assert rows["D"][1] == _hand_flops(model.discriminator, out.features)
    assert rows["S"][1] == _hand_flops(model.calibration, out.defocus)
    assert rows["C (frozen)"][1] == _hand_flops(model.perceptual, out.defocus)
    params = sum(p.numel() for p in model.parameters())
    assert rows["B total"][0] + rows["D"][0] + rows["S"][0] + rows["C (frozen)"][0] == params
    assert rows["D"][0] == sum(p.numel() for p in model.discriminator.parameters())


@pytest.mark.parametrize("size", [16, 48])
def test_summary_takes_every_multiple_of_16_from_16(size):
    """Mutants: ``size % 32`` (48 refused), ``16 < size`` (16 refused). Module docstring: a multiple of 16 in
    [16, 1024]. The FLOPs of S grow as size²: 852 multiply-adds a pixel at calib_width 0.25 (test_models)."""
    from dmenet import summary

    rows = {name: flops for name, _, flops in summary.summarize(_tiny_config(), size=size)}
    assert rows["S"] == 2 * 852 * size * size


@pytest.mark.parametrize("size, allowed", [(1024, True), (1040, False)])
def test_summary_largest_size_is_1024(monkeypatch, size, allowed):
    """Mutant: :data:`MAX_SIZE` 2048. 1024 is allowed (the model would be built: stopped here), 1040 refused before
    the build."""
    from dmenet import summary

    class Built(Exception):
        pass

    def build(cfg):
        raise Built

    monkeypatch.setattr(summary, "build_dmenet", build)
    with pytest.raises(Built if allowed else ValueError):
        summary.summarize(_tiny_config(), size=size)


def test_summary_does_not_read_model_init(tmp_path):
    """Mutant: ``model.init`` kept (module docstring: not read; counts do not depend on the weights). A config whose
    init names a missing file counts as without it."""
    import dataclasses

    from dmenet import summary

    cfg = _tiny_config()
    missing = dataclasses.replace(cfg, init=str(tmp_path / "missing.safetensors"))
    assert summary.summarize(missing, size=16) == summary.summarize(cfg, size=16)


# ---------------------------------------------------------------------------------------------------------------- viz
@pytest.mark.parametrize("vmax", [2.0, 1.0])
def test_colorize_refuses_an_empty_range(vmax):
    """Mutant: ``vmax < vmin`` refused but vmax = vmin let through (every value would divide by 0)."""
    from syndof.viz import colorize

    with pytest.raises(ValueError, match="must exceed vmin"):
        colorize(np.zeros((2, 2)), vmax=vmax, vmin=2.0)


def test_as_rgb_uint8_keeps_uint8_levels_and_repeats_gray():
    """Mutant: uint8 input passed through ``to_uint8`` as if in [0, 1] (level 200 would become 255). uint8 levels
    are kept; a gray (H, W) image becomes three equal channels; float [0, 1] rounds to round(255·x)."""
    from syndof.viz import as_rgb_uint8

    levels = np.array([[0, 1, 200, 255]], np.uint8)
    np.testing.assert_array_equal(as_rgb_uint8(levels), np.repeat(levels[..., None], 3, axis=2))
    np.testing.assert_array_equal(as_rgb_uint8(np.array([[0.0, 0.5, 1.0]])), [[[0] * 3, [128] * 3, [255] * 3]])


def test_contact_sheet_layout_by_hand():
    """Mutants: tile widths w·t/h swapped or floored, the last row's bottom pad dropped, rows stacked without their pad,
    x moved by the tile's own width (not its column's), the columns counted or measured on the first row only, a
    black background. Tile 8, pad 2; row 0: a 3×4 image (width round(32/3) = 11), then a 16×8 one (width 4); row 1:
    an 8×24 (width 24), then a 4×4, then another 4×4 (width 8 each). Columns 24, 8, 8 px wide: the sheet is
    2·(8 + 2) + 2 = 22 high, 24 + 8 + 8 + 4·2 = 48 wide, white where no tile lies."""
    from syndof.viz import contact_sheet

    rows = [[np.full((3, 4), 10, np.uint8), np.full((16, 8), 20, np.uint8)],
            [np.full((8, 24), 30, np.uint8), np.full((4, 4), 40, np.uint8), np.full((4, 4), 50, np.uint8)]]
    sheet = contact_sheet(rows, tile=8, pad=2)
    want = np.full((22, 48), 255, np.uint8)
    want[2:10, 2:13] = 10
    want[2:10, 28:32] = 20
    want[12:20, 2:26] = 30
    want[12:20, 28:36] = 40
    want[12:20, 38:46] = 50
    assert sheet.shape == (22, 48, 3)
    np.testing.assert_array_equal(sheet, np.repeat(want[..., None], 3, axis=2))


def test_contact_sheet_shrinks_by_area():
    """Mutant: tiles resized by nearest neighbour (a 1-px checkerboard would alias to black or white). A 16×16
    checkerboard of 0 and 255 shrunk to an 8-px tile by area averaging is 128 (127.5 rounded) everywhere."""
    from syndof.viz import contact_sheet

    board = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)
    sheet = contact_sheet([[board]], tile=8, pad=1)
    assert sheet.shape == (10, 10, 3)
    assert set(np.unique(sheet[1:9, 1:9])) <= {127, 128}


def test_contact_sheet_default_tile_and_pad():
    """Mutant: the default ``pad`` 2 (the signature's default 4). One 192×192 tile at the defaults: 4 px of white on
    every side, a 200×200 sheet."""
    from syndof.viz import contact_sheet

    sheet = contact_sheet([[np.zeros((10, 10), np.uint8)]])
    assert sheet.shape == (200, 200, 3)
    assert (sheet[4:196, 4:196] == 0).all() and (sheet[:4] == 255).all() and (sheet[:, 196:] == 255).all()


# ------------------------------------------------------------------------------------------------------------- refine
def _refine_inputs():
    """A 40×48 textured RGB image with a vertical edge, and a map that steps from 0 to 6 px at the edge with a
    spike."""
    rng = np.random.default_rng(9)
    image = rng.random((40, 48, 3)) * 0.2
    image[:, 24:] += 0.7
    m = np.zeros((40, 48))
    m[:, 24:] = 6.0
    m[20, 10] = 40.0
    return image, m


def test_code_recipe_is_box_45_then_two_colour_guided_filters_on_0_255():
    """Mutants: the guide left in [0, 1] (ε 1e-6 is on the 0–255 guide), the box filter dropped, one guided filter
    instead of two, the second filtering the raw map again, the clip at 0 dropped, window 44 or ε 1e-4 (seen only
    on a guide that varies by less than 0.01 level). Module
    docstring: box filter of the map (window 45), then two colour guided filters (window 45, ε 1e-6) guided by the
    0–255 RGB image; clipped at 0."""
    from dmenet.filters import box_mean, guided_filter
    from dmenet.galetto.refine import refine_map

    image, m = _refine_inputs()
    faint = 0.5 + 1e-5 * np.random.default_rng(3).random(image.shape)  # variance ~5e-7 on 0–255: ε 1e-6 matters
    for guide in (image, faint):
        raw = box_mean(m, 45)
        for _ in range(2):
            raw = guided_filter(guide * 255.0, raw, 45, 1e-6)
        np.testing.assert_allclose(refine_map(guide, m, "code"), np.maximum(raw, 0.0).astype(np.float32), atol=1e-5)
    for mode in ("code", "paper"):  # every filter keeps a constant: −1 stays −1, then clipped to 0
        np.testing.assert_array_equal(refine_map(image, np.full_like(m, -1.0), mode), np.zeros(m.shape, np.float32))


def test_paper_recipe_is_seven_wgif_passes_of_window_33_eps_0_005():
    """Mutants: the map filtered by a window r + 1 (not 2r + 1), every pass on the raw map, guide and map swapped,
    the guide smoothed with ε 0.005 (not 0.05), 6 passes, ε 0.05, r 15. docs/method.md §15: guide = the image
    smoothed by mode-6 WGIF (ε 0.05, window 2⌊r/2⌉+1 = 17), then 7 passes of mode-6 WGIF (window 33, ε 0.005)."""
    from dmenet.filters import weighted_gf
    from dmenet.galetto.refine import refine_map
    from syndof.images import rgb2gray

    image, m = _refine_inputs()
    guide = rgb2gray(*[weighted_gf(image[..., c], image[..., c], 17, 0.05, mode=6) for c in range(3)])
    want = m
    for _ in range(7):
        want = weighted_gf(guide, want, 33, 0.005, mode=6)
    np.testing.assert_allclose(refine_map(image, m, "paper"), np.maximum(want, 0.0).astype(np.float32), atol=1e-5)


def test_refine_refuses_a_map_of_another_width():
    """Mutant: only the heights compared (a 40×47 map would be filtered against a 40×48 image)."""
    from dmenet.galetto.refine import refine_map

    image, m = _refine_inputs()
    with pytest.raises(ValueError, match="differ in size"):
        refine_map(image, m[:, :47], "paper")


# ---------------------------------------------------------------------------------------------------- predict: workers
def _photo_jobs(tmp_path, count: int, *, readable: bool = True):
    """``count`` 40×60 PNG photos (or files whose headers cannot be read) as predict's jobs into ``tmp_path/out``."""
    from dmenet import predict_inputs
    from syndof import io as sio

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(count):
        if readable:
            sio.write_image(folder / f"p{i}.png", np.full((40, 60, 3), 100, np.uint8))
        else:
            (folder / f"p{i}.png").write_bytes(b"not an image")
    jobs, _ = predict_inputs.collect_jobs([folder], tmp_path / "out")
    return jobs


def _auto(tmp_path, jobs, available, monkeypatch, cores: int):
    from dmenet import predict, predict_workers

    monkeypatch.setattr(predict_workers.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    args = predict.build_parser().parse_args([str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    return predict_workers.auto_workers(jobs, args, 1024, available)


def test_auto_workers_from_exactly_8_photos(tmp_path, monkeypatch):
    """Mutant: several workers only above 8 photos (``<=``). :data:`AUTO_WORKERS_MIN_PHOTOS` is the smallest batch
    that gets them: 8 photos on 6 cores get 4 workers."""
    from dmenet import predict_workers

    jobs = _photo_jobs(tmp_path, predict_workers.AUTO_WORKERS_MIN_PHOTOS)
    assert _auto(tmp_path, jobs, None, monkeypatch, cores=6) == 4


def test_auto_workers_two_cores_bounded_by_memory(tmp_path, monkeypatch):
    """Mutant: the memory bound applied only above 2 workers. On 2 cores with memory for one photo's work: 1."""
    from dmenet import memory

    jobs = _photo_jobs(tmp_path, 8)
    need = memory.estimate_memory(40, 60, 1024)
    assert _auto(tmp_path, jobs, 2 * need, monkeypatch, cores=2) == 2
    assert _auto(tmp_path, jobs, 2 * need - 1, monkeypatch, cores=2) == 1


def test_auto_workers_with_no_readable_header_count_the_fixed_memory(tmp_path, monkeypatch):
    """Mutant: a batch with no readable header counted as needing 1 byte a worker. It needs at least
    :data:`dmenet.memory.MEMORY_FIXED_BYTES` a worker: with 1.5 times that available, 1 worker."""
    from dmenet import memory

    jobs = _photo_jobs(tmp_path, 8, readable=False)
    assert _auto(tmp_path, jobs, memory.MEMORY_FIXED_BYTES * 3 // 2, monkeypatch, cores=6) == 1
    assert _auto(tmp_path, jobs, memory.MEMORY_FIXED_BYTES * 2, monkeypatch, cores=6) == 2


def test_workers_share_the_cores(tmp_path, monkeypatch):
    """Mutant: each worker given every core as its threads (4 workers on 8 cores would run 32 threads). Without
    ``--threads`` each of ``workers`` workers gets cores // workers threads (at least 1)."""
    from dmenet import predict, predict_workers
    from dmenet.methods.base import MethodOptions

    started = []

    class Pool:  # records the workers' setup instead of starting processes
        def __init__(self, workers, mp_context, initializer, initargs):
            started.append((workers, initargs[2]))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, fn, items):
            return [0.0 for _ in items]

    monkeypatch.setattr(predict_workers, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(predict_workers.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    jobs = list(enumerate(_photo_jobs(tmp_path, 3), 1))
    args = predict.build_parser().parse_args([str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    for workers, threads in ((4, 2), (3, 2), (16, 1)):
        assert list(predict_workers.parallel(jobs, 3, args, MethodOptions(), workers)) == [0.0] * 3
        assert started[-1] == (workers, threads)


# ---------------------------------------------------------------------------------------------------------- dbd sizes
def test_dbd_resize_map_widening_one_side_is_bilinear():
    """Mutant: "shrinking both sides" decided on the height twice (a 20×10 map brought to 10×15 shrinks the height
    but widens the width: bilinear, not area averaging). A ramp along the width, by cv2's bilinear resize."""
    import cv2

    from dmenet.eval.dbd import resize_map

    pred = np.tile(np.linspace(0.0, 1.0, 10, dtype=np.float32), (20, 1))
    got = resize_map(pred, (10, 15))
    np.testing.assert_array_equal(got, cv2.resize(pred, (15, 10), interpolation=cv2.INTER_LINEAR))
    assert not np.array_equal(got, cv2.resize(pred, (15, 10), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0)])
def test_dbd_empty_gt_is_refused(shape):
    """Mutant: only an empty prediction refused (an empty GT divided by zero in the aspect check: a
    ZeroDivisionError, not the one-line ValueError)."""
    from dmenet.eval.dbd import DBDAccumulator

    with pytest.raises(ValueError, match="empty map"):
        DBDAccumulator().check_pair(np.zeros((4, 4), np.float32), np.zeros(shape, np.uint8))


def test_dbd_range_tolerance_is_clipped_to_0_1():
    """Mutant: a prediction within :data:`RANGE_TOLERANCE` outside [0, 1] kept unclipped (check_pair's docstring:
    clipped). −5e-7 becomes 0 and 1 + 5e-7 becomes 1."""
    from dmenet.eval.dbd import DBDAccumulator

    pred = np.array([[-5e-7, 0.25], [1 + 5e-7, 1.0]])
    got, gt = DBDAccumulator().check_pair(pred, np.array([[0, 1], [1, 0]], np.uint8))
    np.testing.assert_array_equal(got, [[0.0, 0.25], [1.0, 1.0]])
    np.testing.assert_array_equal(gt, [[0.0, 1.0], [1.0, 0.0]])


def test_dbd_320_protocol_scores_at_320_by_320():
    """Mutant: the 320 protocol's size (320, 321). Both maps go to 320×320 (SG / MLDBD style), whatever the GT's
    size; a GT block of 2×2 px on a 640×640 mask becomes 1 px."""
    from dmenet.eval.dbd import prepare_pair

    gt = np.zeros((640, 640), np.uint8)
    gt[:320] = 1
    pred, mask = prepare_pair(np.full((480, 480), 0.25, np.float32), gt, "320")
    assert pred.shape == mask.shape == (320, 320)
    assert mask[:160].all() and not mask[160:].any() and np.all(pred == 0.25)
