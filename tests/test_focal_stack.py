"""Focal-stack consistency: a synthetic stack whose sharp band moves frame by frame, oracle / reversed / constant
maps, the CLI end to end, bad stacks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dmenet.eval import focal_stack as fs
from dmenet.peers import PEERS
from syndof import io

K = 4


def _stack(h: int = 96, w: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """K frames of one textured scene; in frame k the k-th vertical band is sharp and the others are blurred the
    more the farther they are (as when the focus plane sweeps across bands at increasing depth).
    Returns (frames (K, H, W, 3) float32, true σ px (K, H, W))."""
    rng = np.random.default_rng(seed)
    sharp = cv2.resize(rng.random((h // 4, w // 4, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    band = np.minimum(np.arange(w) * K // w, K - 1)
    frames, sigmas = [], []
    for k in range(K):
        sigma_band = 1.5 * np.abs(np.arange(K) - k).astype(np.float32)
        frame = np.empty_like(sharp)
        for b in range(K):
            img = sharp if sigma_band[b] == 0 else cv2.GaussianBlur(sharp, (0, 0), float(sigma_band[b]))
            frame[:, band == b] = img[:, band == b]
        frames.append(frame)
        sigmas.append(np.broadcast_to(sigma_band[band][None, :], (h, w)).astype(np.float32))
    return np.stack(frames), np.stack(sigmas)


def test_oracle_maps_agree_reversed_maps_do_not():
    frames, sigma = _stack()
    focus = fs.reference_focus(frames)
    mask = fs.confident_mask(focus)
    assert 0.05 < mask.mean() < 0.9  # the reference finds the sharp bands, not every pixel
    oracle = fs.score_stack(sigma, focus, mask)
    assert oracle.agreement > 0.9 and oracle.agreement_pm1 > 0.97 and oracle.rank_corr > 0.8
    reversed_ = fs.score_stack(-sigma, focus, mask)
    assert reversed_.agreement < 0.1 and reversed_.rank_corr < -0.8
    # a map that ignores the frame (the same in every frame) picks frame 0 everywhere: near chance
    flat = fs.score_stack(np.repeat(sigma[:1] * 0 + np.random.default_rng(1).random(sigma.shape[1:]), K, 0)
                          .astype(np.float32), focus, mask)
    assert abs(flat.agreement - 1 / K) < 0.2
    d = oracle.as_dict()
    assert d["chance"] == pytest.approx(1 / K) and d["chance_pm1"] == pytest.approx((3 * K - 2) / K**2)


def test_bad_inputs(tmp_path):
    frames, _ = _stack()
    with pytest.raises(ValueError, match="must both be"):
        fs.score_stack(np.zeros((K, 4, 4)), np.zeros((K, 4, 5)))
    with pytest.raises(ValueError, match="no confident pixels"):
        fs.score_stack(np.zeros((K, 8, 8)), np.ones((K, 8, 8)), np.zeros((8, 8), bool))
    io.write_image(tmp_path / "one" / "a.png", frames[0])
    with pytest.raises(io.InputError, match="at least 2 frames"):
        fs.load_stack(tmp_path / "one")
    io.write_image(tmp_path / "mixed" / "a.png", frames[0])
    io.write_image(tmp_path / "mixed" / "b.png", frames[1][:50])
    with pytest.raises(io.InputError, match="differs from the stack") as err:
        fs.load_stack(tmp_path / "mixed")
    assert "b.png" in str(err.value)


def test_cli_scores_dmenet_and_a_peer_and_skips_bad_stacks(tmp_path):
    frames, _ = _stack()
    for k, frame in enumerate(frames):
        io.write_image(tmp_path / "stack" / f"f{k}.png", frame)
        io.write_image(tmp_path / "two" / f"x{k}.png", frame)  # second stack named by a glob pattern
    io.write_image(tmp_path / "broken" / "a.png", frames[0])
    out = tmp_path / "out"
    rc = fs.main(["--stack", str(tmp_path / "stack"), str(tmp_path / "two" / "x*.png"), str(tmp_path / "broken"),
                  "--method", "dmenet", "lbp", "--max-side", "128", "--out", str(out)])
    assert rc == 0
    meta = json.loads((out / "metrics.json").read_text())
    assert set(meta["stacks"]) == {"stack", "two_x"}  # the one-frame stack is skipped
    for name in ("stack", "two_x"):
        scores = meta["stacks"][name]["methods"]
        assert set(scores) == {"dmenet", "lbp"} and scores["lbp"]["frames"] == K
        assert 0.0 <= scores["dmenet"]["agreement"] <= 1.0 and -1.0 <= scores["dmenet"]["rank_corr"] <= 1.0
        assert (out / f"{name}_panel.png").is_file()
    # the CLI's numbers are score_stack's on the method's maps of the (resized) frames
    names, loaded, scale = fs.load_stack(tmp_path / "stack", 128)
    focus = fs.reference_focus(loaded)
    direct = fs.score_stack(fs.blur_maps(loaded, PEERS["lbp"]), focus, fs.confident_mask(focus)).as_dict()
    assert scale == 1.0 and names == [f"f{k}.png" for k in range(K)]
    assert meta["stacks"]["stack"]["methods"]["lbp"] == pytest.approx(direct)
    assert "| stack | dmenet |" in (out / "summary.md").read_text()
    assert fs.main(["--stack", str(tmp_path / "stack"), "--method", "laplacian", "--out", str(out)]) == 2


def test_tied_minima_do_not_favour_the_first_frames():
    """Quantised maps (Galetto's integer σ classes, σ clipped at 0) tie across frames; argmin and the order-broken
    ranks gave every tie to the earliest file name, so a map blind to the focus scored agreement 1 when the reference
    picked frame 0 and 0 when the frames were listed the other way round (review A4, 6 Dec 2026)."""
    k = 3
    focus = np.zeros((k, 4, 4), np.float32)
    focus[0] = 2.0  # the reference: frame 0 is the sharpest everywhere
    mask = np.ones((4, 4), bool)
    blind = np.zeros((k, 4, 4), np.float32)  # the same σ (0) in every frame
    for blur, foc in ((blind, focus), (blind[::-1], focus[::-1])):
        s = fs.score_stack(blur, foc, mask)
        assert s.agreement == pytest.approx(1 / k) and s.agreement_pm1 == pytest.approx(2 / k)
        assert s.rank_corr == 0.0
    half = blind.copy()
    half[2] = 1.0  # frames 0 and 1 tie at the minimum: half the credit
    forward, backward = fs.score_stack(half, focus, mask), fs.score_stack(half[::-1], focus[::-1], mask)
    assert forward.agreement == pytest.approx(0.5) == backward.agreement
    assert forward.rank_corr == pytest.approx(backward.rank_corr) and forward.rank_corr > 0


def test_confident_mask_by_hand():
    # frames × pixels: peak distinct when ≥ 1.25 × the median over frames, strong when ≥ the median peak, and > 0
    focus = np.array([[1.0, 4.0, 2.0, 0.0, 5.0],
                      [1.0, 1.0, 1.7, 0.0, 4.0],
                      [1.0, 1.0, 1.0, 0.0, 1.0]])[:, None, :]
    # peaks 1, 4, 2, 0, 5 (median 2); frame medians 1, 1, 1.7, 0, 4: 2 < 1.25·1.7 = 2.125, 5 ≥ 1.25·4 = 5
    assert fs.confident_mask(focus)[0].tolist() == [False, True, False, False, True]
    assert fs.confident_mask(focus, peak_ratio=1.0)[0].tolist() == [False, True, True, False, True]


@pytest.mark.parametrize("spec", ["folder", "pattern"])
def test_e6_frames_numbered_without_zero_padding_keep_their_focus_order(tmp_path, spec):
    """Frames f8 … f11 are the stack in that order: a plain name sort read f10, f11, f8, f9, so ``agreement_pm1``
    (and the panel, and ``frames`` in metrics.json) took frames that are not neighbours for neighbours."""
    frames, sigma = _stack()
    for k, frame in enumerate(frames):
        io.write_image(tmp_path / "s" / f"f{k + 8}.png", frame)
    names, loaded, _ = fs.load_stack(tmp_path / "s" if spec == "folder" else tmp_path / "s" / "f*.png", None)
    assert names == ["f8.png", "f9.png", "f10.png", "f11.png"]
    assert np.abs(loaded - frames).max() <= 0.5 / 255 + 1e-6  # each frame in its place (8-bit rounding)
    oracle = fs.score_stack(sigma, fs.reference_focus(loaded))  # the true σ of frame k belongs to loaded frame k
    assert oracle.agreement > 0.9 and oracle.agreement_pm1 > 0.97
    assert [p.name for p in sorted([tmp_path / "f01.png", tmp_path / "f1.png", tmp_path / "e2.png"],
                                   key=fs.focus_order)] == ["e2.png", "f01.png", "f1.png"]


@pytest.mark.parametrize("spec", ["folder", "pattern"])
def test_r3_frames_named_by_decimal_focus_distances_keep_their_focus_order(tmp_path, spec):
    """Review R3 (6 Dec 2026): frames named by focus distance, d1 d1.25 d1.5 d2 (m), were ordered d1.5, d1.25, d1,
    d2 once digit runs were compared as numbers (25 > 5, and "d1." before "d1.png"): ``agreement_pm1`` took frames
    that are not neighbours for neighbours. A number with a decimal point is now compared as a decimal."""
    frames, sigma = _stack()
    names = ["d1.png", "d1.25.png", "d1.5.png", "d2.png"]
    for name, frame in zip(names, frames):
        io.write_image(tmp_path / "s" / name, frame)
    got, loaded, _ = fs.load_stack(tmp_path / "s" if spec == "folder" else tmp_path / "s" / "d*.png", None)
    assert got == names
    assert np.abs(loaded - frames).max() <= 0.5 / 255 + 1e-6
    oracle = fs.score_stack(sigma, fs.reference_focus(loaded))
    assert oracle.agreement > 0.9 and oracle.agreement_pm1 > 0.97
    mixed = ["f10.png", "d0.75.png", "f9.png", "d0.5.png", "f8.png"]  # digit runs still compare as numbers
    assert sorted(mixed, key=lambda n: fs.focus_order(tmp_path / n)) == \
        ["d0.5.png", "d0.75.png", "f8.png", "f9.png", "f10.png"]


def test_h87_a_frame_name_that_is_no_file_skips_its_stack_and_names_it(tmp_path):
    """A symbolic link loop, a link to nothing or a FIFO named like a frame in a stack folder was left out of the
    stack unsaid (exit 0, no line): the other frames were scored as the stack, with neighbours two focus steps apart
    counted as ±1 and the chance levels of fewer frames. A stack is its frames in focus order, so it is skipped
    whole, naming its first such frame, as a damaged frame skips it; a glob pattern matching such a name likewise."""
    import os

    frames, _ = _stack()
    for name in ("good", "gap", "loop", "fifo"):
        for k, frame in enumerate(frames):
            io.write_image(tmp_path / name / f"f{k}.png", frame)
    (tmp_path / "gap" / "f1.png").unlink()
    (tmp_path / "gap" / "f1.png").symlink_to("nowhere.png")
    (tmp_path / "loop" / "f4.png").symlink_to("f5.png")
    (tmp_path / "loop" / "f5.png").symlink_to("f4.png")
    os.mkfifo(tmp_path / "fifo" / "f0b.png")
    loop = "a symbolic link loop (too many levels of symbolic links)"
    reasons = {"gap": f"{tmp_path / 'gap' / 'f1.png'}: a symbolic link to nothing",
               "loop": f"{tmp_path / 'loop' / 'f4.png'}: {loop}",
               "fifo": f"{tmp_path / 'fifo' / 'f0b.png'}: not a regular file (a FIFO, socket or device)",
               "gap_f": f"{tmp_path / 'gap' / 'f1.png'}: a symbolic link to nothing"}
    assert fs.stack_paths(tmp_path / "gap") == [tmp_path / "gap" / f"f{k}.png" for k in range(K)]
    for name in ("gap", "loop", "fifo"):
        with pytest.raises(io.InputError) as err:
            fs.load_stack(tmp_path / name)
        assert str(err.value) == reasons[name]
    out = tmp_path / "out"
    specs = [str(tmp_path / n) for n in ("good", "gap", "loop", "fifo")] + [str(tmp_path / "gap" / "f*.png")]
    assert fs.main(["--stack", *specs, "--method", "lbp", "--max-side", "64", "--out", str(out)]) == 0
    meta = json.loads((out / "metrics.json").read_text())
    assert set(meta["stacks"]) == {"good"} and meta["stacks"]["good"]["methods"]["lbp"]["frames"] == K
    assert {n: s["reason"] for n, s in meta["skipped"].items()} == reasons
    assert all(name in (out / "summary.md").read_text() for name in reasons)


def test_l5_no_confident_pixel_after_a_small_max_side_names_max_side(tmp_path, capsys):
    """§20 Left (L5): a textured stack shrunk by ``--max-side 4`` to 4×3 px was refused as "no confident pixels (no
    texture …)", as if the photos had none, without naming ``--max-side``. The reason now names it, the working size
    and the scale; at full size the same stack is scored, and a stack without texture at its own size says nothing of
    ``--max-side``."""
    frames, _ = _stack()
    for k, frame in enumerate(frames):
        io.write_image(tmp_path / "tex" / f"f{k}.png", frame)
        io.write_image(tmp_path / "flat" / f"f{k}.png", frames[0])  # one frame K times: no pixel is ranked
    plain = "no confident pixels (no texture whose sharpest frame the reference can tell)"
    rc = fs.main(["--stack", str(tmp_path / "tex"), "--method", "lbp", "--max-side", "4", "--out", str(tmp_path / "a")])
    assert rc == 2 and not (tmp_path / "a").exists()
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: no readable focal stack: {tmp_path / 'tex'}: {plain} at --max-side 4 (4x3 px, 0.0312 of the frames' "
        "size): try a larger --max-side, or 0 for full size")
    rc = fs.main(["--stack", str(tmp_path / "tex"), str(tmp_path / "flat"), "--method", "lbp", "--max-side", "0",
                  "--out", str(tmp_path / "b")])
    meta = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert rc == 0 and set(meta["stacks"]) == {"tex"} and meta["skipped"]["flat"]["reason"] == plain


def test_m3_a_stack_too_small_after_max_side_is_skipped_naming_max_side(tmp_path, capsys, caplog, monkeypatch):
    """§22 Left: ``--max-side 2`` shrank a stack to 2×1 px and the reference failed with "image is too small: 2x1 px
    (at least 2 px a side)", naming neither the stack nor ``--max-side``, and ended the run. Now such a stack is
    skipped like any per-stack problem (its reason names ``--max-side``, the size and the scale), the other stacks
    are scored; so is a stack whose frames a method refuses."""
    frames, _ = _stack()
    for k, frame in enumerate(frames):
        io.write_image(tmp_path / "tex" / f"f{k}.png", frame)
        io.write_image(tmp_path / "thin" / f"f{k}.png", cv2.resize(frame, (256, 4)))  # 64 x 1 px at --max-side 64
    argv = ["--stack", str(tmp_path / "tex"), str(tmp_path / "thin"), "--method", "lbp", "--max-side", "64"]
    rc = fs.main([*argv, "--out", str(tmp_path / "a")])
    reason = ("frames too small for the reference focus measure (at least 2 px a side) at --max-side 64 (64x1 px, "
              "0.25 of the frames' size): try a larger --max-side, or 0 for full size")
    err = capsys.readouterr().err
    meta = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert rc == 0 and set(meta["stacks"]) == {"tex"}, err
    assert meta["skipped"] == {"thin": {"folder": str(tmp_path / "thin"), "reason": reason}}
    assert f"skipping {tmp_path / 'thin'}: {reason}" in [r.getMessage() for r in caplog.records]

    def estimator_map(estimator):  # a method with a floor of 50 px a side (the tex stack is 64x48 px here)
        def blur(frame):
            if min(frame.shape[:2]) < 50:
                raise ValueError(f"image too small for this method ({frame.shape[1]}x{frame.shape[0]} px)")
            return frame.mean(axis=2)
        return blur

    monkeypatch.setattr(fs, "estimator_map", estimator_map)
    rc = fs.main(["--stack", str(tmp_path / "tex"), "--method", "lbp", "--max-side", "64", "--out",
                  str(tmp_path / "b")])
    assert rc == 2 and not (tmp_path / "b").exists()
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: no readable focal stack: {tmp_path / 'tex'}: method lbp: image too small for this method (64x48 px)"
        " at --max-side 64 (64x48 px, 0.5 of the frames' size): try a larger --max-side, or 0 for full size")


def test_m4_a_glob_pattern_leaves_out_hidden_names_as_a_folder_does(tmp_path):
    """§24 Left: a pattern ``DIR/f*.png`` … ``DIR/*.png`` kept ``._f1.png`` (a macOS resource fork beside ``f1.png``)
    that the folder ``DIR`` leaves out, as a frame between the stack's own. Now both give the same frames; a pattern
    that itself starts with ``.`` still names hidden files, as a shell's does."""
    folder = tmp_path / "s"
    folder.mkdir()
    for name in ("f0.png", "f1.png", "f2.png", "._f1.png", ".f3.png"):
        (folder / name).write_bytes(b"x")
    frames = ["f0.png", "f1.png", "f2.png"]
    assert [p.name for p in fs.stack_paths(folder)] == frames
    assert [p.name for p in fs.stack_paths(folder / "*.png")] == frames
    assert [p.name for p in fs.stack_paths(folder / "*f?.png")] == frames
    assert [p.name for p in fs.stack_paths(folder / ".*.png")] == ["._f1.png", ".f3.png"]


def test_k1_a_method_failing_on_one_stack_or_a_stack_folder_not_listable_skips_that_stack_only(tmp_path, caplog,
                                                                                               monkeypatch):
    """§25 Left: only a method's ValueError skipped its stack; torch's RuntimeError on one stack's frames (a kernel
    larger than the padded input), OpenCV's error or MemoryError ended the whole run with a traceback, and a stack
    folder that could not be listed (PermissionError) ended it with "error: DIR: Permission denied". Now each skips
    its stack, named once with the reason; a method's programming error (TypeError, NotImplementedError) still ends
    the run."""
    from pathlib import Path

    frames, _ = _stack(48, 64)
    for name in ("tex", "torch", "locked"):
        for k, frame in enumerate(frames):
            io.write_image(tmp_path / name / f"f{k}.png", cv2.resize(frame, (48, 32)) if name == "torch" else frame)
    listing = Path.iterdir

    def iterdir(self):  # as `chmod 000 locked` for a user other than root
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    failure = {"error": RuntimeError("Calculated padded input size per channel: (2 x 2).\nKernel size: (3 x 3).")}

    def estimator_map(estimator):  # a method that fails on the 48x32 frames only
        def blur(frame):
            if frame.shape[1] == 48:
                raise failure["error"]
            return frame.mean(axis=2)
        return blur

    monkeypatch.setattr(fs, "estimator_map", estimator_map)
    argv = ["--stack", *(str(tmp_path / n) for n in ("torch", "locked", "tex")), "--method", "lbp", "--max-side", "0"]
    assert fs.main([*argv, "--out", str(tmp_path / "a")]) == 0
    meta = json.loads((tmp_path / "a" / "metrics.json").read_text())
    reasons = {"torch": "method lbp: RuntimeError: Calculated padded input size per channel: (2 x 2). Kernel size: "
                        "(3 x 3).", "locked": f"{tmp_path / 'locked'}: Permission denied"}
    assert set(meta["stacks"]) == {"tex"}
    assert {n: s["reason"] for n, s in meta["skipped"].items()} == reasons
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert said == [f"skipping {tmp_path / 'torch'}: {reasons['torch']}", f"skipping {reasons['locked']}"]
    failure["error"] = MemoryError()
    assert fs.main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["skipped"]["torch"]["reason"] == (
        "method lbp: MemoryError")
    for bug in (TypeError("unsupported operand"), NotImplementedError("not written yet")):
        failure["error"] = bug
        with pytest.raises(type(bug)):
            fs.main([*argv, "--out", str(tmp_path / "c")])
        assert not (tmp_path / "c").exists()
