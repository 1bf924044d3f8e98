"""Round-7 mutation audit (docs/audit.md): values computed by hand or invariants from the docstrings, for code added
or changed on 6 Dec 2026 that no earlier round covered (syndof.cli's shared flag helpers and ``one_line``, syndof.io's
format sniffing, EXIF orientation and hidden files, syndof.units, the run identity of checkpoints and ``calibrate
average``, the memory guard's ``max_side_applies``, eval.paired's magnitude bound, the registry's ``shared_options``,
galetto select's ``readable_renders``). Tiny inputs; the file runs in seconds."""

from __future__ import annotations

import argparse

import numpy as np
import pytest


def _help(p: argparse.ArgumentParser) -> str:
    return " ".join(p.format_help().split())


# ---------------------------------------------------------------------------------------------------------- one_line
@pytest.mark.parametrize("code", [c for c in (*range(32), *range(127, 160)) if c != 9])
def test_one_line_escapes_every_c0_and_c1_control_but_tab(code):
    """Kills ``range(31)`` (\\x1f kept), ``range(128, 160)`` (DEL kept) and ``range(127, 159)`` (\\x9f kept) in
    ``_ESCAPED``: every C0 and C1 control but tab comes out as a printable escape, never as itself."""
    from syndof.cli import one_line

    shown = one_line(f"a{chr(code)}b")
    assert chr(code) not in shown and shown.isprintable() and shown.startswith("a\\") and shown.endswith("b")


def test_one_line_writes_cr_and_lf_as_their_usual_escapes():
    """Kills dropping ``13: "\\\\r"`` (a carriage return written ``\\x0d``): the docstring promises ``\\n`` and ``\\r``;
    other controls are ``\\xNN`` with two lower-case hex digits."""
    from syndof.cli import one_line

    assert one_line("a\rb\nc") == "a\\rb\\nc"
    assert one_line("\x1b[31m\x85") == "\\x1b[31m\\x85"


# ------------------------------------------------------------------------------------------------ shared flag helpers
def test_add_seed_help_names_the_default_text_and_the_use():
    """Kills ``shown = default`` (a tool's own default, e.g. build_patches' photo-mode seed, shown as ``None``) and the
    dropped ``; {use}`` part of the help."""
    from syndof import cli

    p = argparse.ArgumentParser()
    cli.add_seed(p, default=None, default_text="0", use="draws the split")
    text = _help(p)
    assert "random seed, an integer >= 0 (default 0); draws the split" in text
    assert p.parse_args([]).seed is None


def test_add_max_coc_keeps_a_tools_own_default():
    """Kills ``default = DEFAULT_MAX_COC`` whatever ``default`` (bench_generate_memory passes 43)."""
    from syndof import cli

    p = argparse.ArgumentParser()
    cli.add_max_coc(p, default=43)
    assert p.parse_args([]).max_coc == 43
    assert "(default 43)" in _help(p)


def test_sample_count_takes_its_largest_value_and_the_default_text():
    """Kills ``1 <= v < MAX_COUNT`` (999,999 samples, the last 6-digit name, refused) and a help that ignores
    ``default_text`` (generate's "one per source" shown as ``None``)."""
    from syndof import cli
    from syndof.layout import MAX_COUNT

    assert MAX_COUNT == 999_999
    assert cli.sample_count_value("999999") == 999_999 and cli.sample_count_value("1") == 1
    with pytest.raises(argparse.ArgumentTypeError):
        cli.sample_count_value("1000000")
    p = argparse.ArgumentParser()
    cli.add_sample_count(p, None, "one per source")
    assert "(default one per source)" in _help(p) and p.parse_args([]).count is None


# ------------------------------------------------------------------------------------------- image format, orientation
@pytest.mark.parametrize("head, kind", [(b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"),
                                        (b"MM\x00+", "TIFF"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
                                        (b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"),
                                        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
                                        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None), (b"BM\x00\x00", None)])
def test_image_format_by_the_first_bytes(head, kind):
    """Kills dropping BigTIFF (``II+`` / ``MM+``) or big-endian TIFF from the magic numbers, GIF87a, and taking any
    RIFF file (a WAV) as WebP: the formats as PIL names them, from the file's first bytes (padded to 16)."""
    from syndof.io import image_format

    assert image_format(head + bytes(16)) == kind


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_orientation_1_to_8_as_pillow(tmp_path, orientation):
    """Kills a wrong flip in ``_apply_exif_orientation``'s table (2 flipped vertically, 5 done as 7): the tests of
    JPEG / WebP / PNG orientation used 3, 6 and 8 only (TIFF's 1-8 are OpenCV's own). A lossless PNG with an
    ``eXIf`` chunk reads exactly as Pillow's ``exif_transpose`` shows it."""
    from PIL import Image, ImageOps

    from syndof import io as sio

    stored = (np.random.default_rng(orientation).random((5, 7, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(stored).save(path, exif=exif.tobytes())
    with Image.open(path) as pil:
        shown = np.asarray(ImageOps.exif_transpose(pil).convert("RGB"))
    read = sio.read_image(path)
    assert np.array_equal(np.round(read * 255).astype(np.uint8), shown)


def test_webp_header_reads_the_vp8x_canvas_size(tmp_path):
    """Kills dropping the ``+ 1`` of the VP8X canvas size (24-bit width − 1, height − 1): ``_WebPHeader``, the reader
    of a WebP too large for PIL's own opener, gives the size PIL gives for an extended (EXIF-carrying) WebP."""
    from PIL import Image

    from syndof.io.decode import _WebPHeader

    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "x.webp"
    Image.fromarray(np.zeros((13, 21, 3), np.uint8)).save(path, lossless=True, exif=exif.tobytes())
    with open(path, "rb") as fh:
        assert fh.read(16)[12:16] == b"VP8X"
        fh.seek(0)
        header = _WebPHeader(fh)
    assert header.size == (21, 13) and header.getexif().get(0x0112) == 6


# ------------------------------------------------------------------------------------------------------ hidden files
def test_index_by_stem_refuses_two_files_of_one_stem_and_a_missing_folder(tmp_path):
    """Kills a dropped duplicate check (``a.png`` and ``A.jpg`` are one lower-case key: the later one silently won)
    and a dropped folder check (a missing folder raised FileNotFoundError from ``iterdir``, not the InputError that
    names it)."""
    from syndof.io import InputError, index_by_stem

    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "A.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="duplicate stem: A.jpg and a.png"):
        index_by_stem(tmp_path)
    assert set(index_by_stem(tmp_path, case_sensitive=True)) == {"a", "A"}
    with pytest.raises(InputError, match="not a folder"):
        index_by_stem(tmp_path / "gone")


def test_recursive_listing_leaves_out_photos_inside_hidden_folders(tmp_path):
    """Kills ``not is_hidden(p)`` in place of checking every part of the path below the input folder: a photo in a
    hidden folder (``.thumbnails/x.png``, a staged ``.out.part-…/``) is not a photo of the folder; the input folder
    itself may be hidden."""
    from dmenet import predict_inputs
    from syndof import io as sio

    root = tmp_path / ".inputs"
    for rel in ("a.png", "sub/b.png", ".thumbnails/c.png", "sub/.cache/d.png", "sub/.e.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sio.write_image(root / rel, np.zeros((4, 4, 3), np.float32))
    jobs, problems = predict_inputs.collect_jobs([root], tmp_path / "out", recursive=True)
    assert not problems
    assert sorted(j.source.relative_to(root).as_posix() for j in jobs) == ["a.png", "sub/b.png"]


# ------------------------------------------------------------------------------------------------------ run identity
def test_new_run_records_a_parent_id_only_when_it_is_a_string(tmp_path):
    """Kills ``parent_run_id=parent_id`` unchecked: a parent sidecar whose ``run_id`` is not a string (another tool's
    number) is recorded as None, with the parent's digest all the same."""
    from dmenet.models.model_io import model_digest, save_model
    from dmenet.training.checkpoint import new_run
    from model_helpers import tiny_dmenet

    path = save_model(tmp_path / "p.safetensors", tiny_dmenet(0), {"run_id": 12345})
    run = new_run(path)
    assert run["parent_run_id"] is None and run["parent_sha256"] == model_digest(path)
    assert len(run["run_id"]) == 16
    path = save_model(tmp_path / "q.safetensors", tiny_dmenet(0), {"run_id": "0123456789abcdef"})
    assert new_run(path)["parent_run_id"] == "0123456789abcdef"


def test_resumed_run_keeps_every_run_key_and_renames_an_empty_id():
    """Kills a resume that keeps only ``run_id`` (the parent's id and digest lost after ``--resume``) and one that
    keeps an empty ``run_id`` (``""`` is no id: the run gets a new one, and is reported renamed)."""
    from dmenet.training.checkpoint import RUN_KEYS, resumed_run

    meta = {"run_id": "0123456789abcdef", "parent_run_id": "1111111111111111", "parent_sha256": "ab" * 32,
            "step": 7}
    run, renamed = resumed_run(meta)
    assert run == {k: meta[k] for k in RUN_KEYS} and not renamed
    assert set(RUN_KEYS) == {"run_id", "parent_run_id", "parent_sha256"}
    for empty in ("", None, 5):
        run, renamed = resumed_run({"run_id": empty})
        assert renamed and isinstance(run["run_id"], str) and len(run["run_id"]) == 16
        assert run["parent_run_id"] is None and run["parent_sha256"] is None


def _run_file(tmp_path, name, **meta):
    from dmenet.models.model_io import save_model
    from model_helpers import tiny_dmenet

    return str(save_model(tmp_path / f"{name}.safetensors", tiny_dmenet(0), {"step": 1, **meta}))


@pytest.mark.parametrize("bad", [5, "", ["0123456789abcdef"]])
def test_average_refuses_a_run_id_that_is_not_a_non_empty_string(tmp_path, capsys, bad):
    """Kills the dropped type check of ``_one_run``: a sidecar whose ``run_id`` is a number, an empty string or a
    list is damaged, refused with one line naming its sidecar (a number compared unequal to a string run as
    "different runs", an empty one passed as a run)."""
    from dmenet import calibrate

    good = _run_file(tmp_path, "good", run_id="0123456789abcdef")
    odd = _run_file(tmp_path, "odd", run_id=bad)
    capsys.readouterr()
    assert calibrate.main(["average", "--model", good, odd, "--out", str(tmp_path / "avg.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "odd.json: 'run_id' must be a non-empty string" in err, err
    assert not (tmp_path / "avg.safetensors").exists()


# ----------------------------------------------------------------------------------------------------------- paired
def test_paired_bound_is_on_the_magnitude_of_either_side():
    """Kills ``max(base.max(), candidate.max())`` (a large *negative* value passed) and a bound checked on the base
    only: −2e300 in the candidate alone, or in the base alone, is refused; ±1e300 exactly is taken."""
    from dmenet.eval import paired

    idx = paired.bootstrap_indices(2, 10)
    for base, cand in ((np.zeros(2), np.array([-2e300, 0.0])), (np.array([0.0, -2e300]), np.zeros(2)),
                       (np.zeros(2), np.array([0.0, 2e300]))):
        with pytest.raises(ValueError, match="at most 1e\\+300 in magnitude"):
            paired.paired_bootstrap(base, cand, idx)
    r = paired.paired_bootstrap(np.array([1e300, -1e300]), np.zeros(2), idx)
    assert r.base == 0.0 and r.n == 2


def test_read_per_image_refuses_a_large_negative_value(tmp_path):
    """Kills ``value > MAX_MAGNITUDE`` in place of ``abs(value)``: −2e300 in a per_image.csv is refused naming its
    stem; −1e300 is read."""
    from dmenet.eval import paired
    from syndof.io import InputError

    (tmp_path / "per_image.csv").write_text("stem,mae\na,0.5\nb,-2e300\n")
    with pytest.raises(InputError, match="stem 'b': mae is -2e300, beyond"):
        paired.read_per_image(tmp_path, "mae")
    (tmp_path / "per_image.csv").write_text("stem,mae\na,0.5\nb,-1e300\n")
    assert paired.read_per_image(tmp_path, "mae") == {"a": 0.5, "b": -1e300}


def test_paired_indices_must_stay_below_n():
    """Kills ``indices.max() > n``: an index equal to n (one past the last image) is refused, not an IndexError."""
    from dmenet.eval import paired

    with pytest.raises(ValueError, match=r"indices must be integers in \[0, 2\)"):
        paired.paired_bootstrap(np.zeros(2), np.ones(2), np.array([[0, 2]]))


def test_average_of_an_unchecked_mix_claims_no_parent_either(tmp_path):
    """Kills popping only ``run_id`` when the runs cannot be checked: the output of a file without run_id and one
    that records its run and parent claims none of the run keys (the last file's parent is not the average's)."""
    from dmenet import calibrate
    from dmenet.models.model_io import load_model_file
    from dmenet.training.checkpoint import RUN_KEYS

    old = _run_file(tmp_path, "old")
    new = _run_file(tmp_path, "new", run_id="0123456789abcdef", parent_run_id="1111111111111111",
                    parent_sha256="ab" * 32)
    out = tmp_path / "avg.safetensors"
    assert calibrate.main(["average", "--model", old, new, "--out", str(out)]) == 0
    _, sidecar = load_model_file(out)
    assert not set(RUN_KEYS) & set(sidecar), sidecar


def test_across_runs_names_the_file_that_records_no_parent(tmp_path, capsys):
    """Kills the message that always names two files: with ``--across-runs``, a run that records no parent_sha256 is
    named alone (it started from no model file), where two different parents name both files."""
    from dmenet import calibrate

    parent = {"parent_run_id": "1111111111111111", "parent_sha256": "ab" * 32}
    a = _run_file(tmp_path, "a", run_id="0123456789abcdef", **parent)
    b = _run_file(tmp_path, "b", run_id="fedcba9876543210", parent_sha256=None)
    capsys.readouterr()
    assert calibrate.main(["average", "--model", a, b, "--across-runs", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"error: --across-runs: {b} did not start from one model file (parent_sha256 {'ab' * 32} / None)" in err


# ------------------------------------------------------------------------------------------ galetto select's renders
def _val(tmp_path, n=2, size=(32, 40)):
    """``n`` gray renders of ``size`` (H, W; at least the classifier's 32-px window, which select skips a render
    under since reliability.md §52) with σ maps of 1 px."""
    from syndof import io as sio

    root = tmp_path / "val"
    for i in range(n):
        sio.write_image(root / "image" / f"r{i}.png", np.full((*size, 3), 0.5, np.float32))
        sio.write_sigma_map(root / "blur_map" / f"r{i}.png", np.ones(size, np.float32))
    return root


def test_readable_renders_honours_the_limit_and_compares_decoded_sizes(tmp_path, monkeypatch):
    """Kills ``sigma_map_pairs(root, None)`` in the decoding loop (``--limit 1`` decoded and returned every render)
    and a dropped decoded-size check: where no header gives a size (``header_size`` None: a header PIL cannot read),
    only the decoded sizes show that a σ map is not its render's."""
    from dmenet.galetto import select
    from syndof import io as sio

    root = _val(tmp_path, 3)
    readable, skipped = select.readable_renders(root, 1)
    assert [stem for stem, _, _ in readable] == ["r0"] and skipped == {}
    assert len(select.readable_renders(root)[0]) == 3
    sio.write_sigma_map(root / "blur_map" / "r1.png", np.ones((10, 12), np.float32))
    monkeypatch.setattr(select.io, "header_size", lambda path: None)
    with pytest.raises(sio.InputError, match=r"r1.png: σ map is 12x10 px, its render r1.png 40x32 px"):
        select.readable_renders(root)


def test_readable_renders_checks_header_sizes_before_decoding_any_render(tmp_path, capsys):
    """Kills the dropped ``check_val_folder`` call: a σ map whose header size is not its render's refuses the folder
    before any render is decoded (no ``skipped`` line for a corrupt render before it)."""
    from dmenet.galetto.select import readable_renders
    from syndof import io as sio

    root = _val(tmp_path, 2)
    (root / "image" / "r0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))  # corrupt: would be skipped
    sio.write_sigma_map(root / "blur_map" / "r1.png", np.ones((10, 12), np.float32))
    capsys.readouterr()
    with pytest.raises(sio.InputError, match="σ map is 12x10 px"):
        readable_renders(root)
    assert "skipped" not in capsys.readouterr().err


def test_readable_renders_skips_a_render_it_may_not_read(tmp_path, capsys, monkeypatch):
    """Kills catching ValueError in place of OSError: a render that raises PermissionError when read is skipped with
    one line naming it (``cli.error_line``), not a traceback."""
    from dmenet.galetto import select
    from syndof import io as sio

    root = _val(tmp_path, 2)
    real = sio.read_image
    denied = root / "image" / "r0.png"

    def read_image(path):
        if str(path) == str(denied):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(select.io, "read_image", read_image)
    readable, skipped = select.readable_renders(root)
    assert [stem for stem, _, _ in readable] == ["r1"]
    assert skipped == {str(denied): f"{denied}: Permission denied"}
    assert f"skipped {denied}: {denied}: Permission denied" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------------ units
def test_max_sigma_takes_a_coc_of_one_pixel():
    """Kills ``max_coc > 1`` in ``max_sigma``: a CoC of 1 px is the smallest the docstring takes (σ_max 0: no label
    range, which ``sigma_to_label`` refuses itself with its own message)."""
    from syndof import units

    assert units.max_sigma(1) == 0.0 and units.label_to_sigma(0.5, max_coc=1) == 0.0
    with pytest.raises(ValueError, match=r"max_coc must be > 1 px for labels \(σ_max = \(max_coc − 1\)/4 = 0\)"):
        units.sigma_to_label(1.0, max_coc=1)


def test_sigma_to_syndof_takes_the_largest_uint16_value():
    """Kills ``value.max() >= 65535``: σ = 6553.5 px is file value 65535, the largest a uint16 holds; 6553.55 rounds to
    65536 and is refused."""
    from syndof import units

    assert units.sigma_to_syndof(np.array([6553.5, 0.0])).tolist() == [65535, 0]
    with pytest.raises(ValueError, match="does not fit a SYNDOF map"):
        units.sigma_to_syndof(np.array([6553.55]))


def test_released_output_mapping_and_file_value_to_coc_by_hand():
    """Kills an unclipped ``released_output_to_sigma`` (o < 1/15 gave a negative σ) and ``0.4·v`` without the + 1 of
    ``syndof_value_to_coc`` (v = 0 is CoC 1, in focus): σ = max(0, (15·o − 1)/2); CoC = 0.4·v + 1."""
    from syndof import units

    np.testing.assert_allclose(units.released_output_to_sigma(np.array([0.0, 1 / 15, 1.0])), [0.0, 0.0, 7.0],
                               atol=1e-12)
    np.testing.assert_allclose(units.syndof_value_to_coc(np.array([0, 10, 70])), [1.0, 5.0, 29.0])
    assert units.px_per_mm(7200, 36.0) == 200.0


# ----------------------------------------------------------------------------------------------------------- memory
def test_large_image_threshold_is_the_documented_1024_squared():
    """Kills ``LARGE_IMAGE_PIXELS = 1024 * 1023``: docs/method.md ("Inputs above 1024² px run in 512² tiles") and the
    memory guard's measured 200 B a pixel (tiled above 1024² px) fix the number; the inference functions' default
    tile threshold is this constant, and the large-photo note starts above it too."""
    import inspect

    from dmenet import inference, memory

    assert memory.LARGE_IMAGE_PIXELS == 1024 ** 2
    for fn in (inference.predict_label, inference.predict_features):
        assert inspect.signature(fn).parameters["tile_threshold"].default == 1024 ** 2


# -------------------------------------------------------------------------------------------------- one error rule
def test_a_list_option_given_exactly_twice_is_refused(capsys):
    """Kills ``len(given) > 2``: the second ``--x`` list (``=`` spelling too) is already the one that would drop the
    first."""
    from syndof import cli

    p = cli.OneLineParser(prog="t")
    p.add_argument("--x", nargs="+")
    for argv in (["--x", "a", "--x", "b"], ["--x=a", "--x", "b"]):
        with pytest.raises(SystemExit) as info:
            p.parse_args(argv)
        assert info.value.code == 2 and "--x given 2 times" in capsys.readouterr().err
    assert p.parse_args(["--x", "a", "b"]).x == ["a", "b"]


def test_error_line_says_missing_key_for_a_key_error():
    """Kills the dropped ``missing key`` prefix: ``str(KeyError('x'))`` is only ``'x'``."""
    from syndof.cli import error_line

    assert error_line(KeyError("train.steps")) == "missing key 'train.steps'"
    assert error_line(ValueError("a\n  b")) == "a b"


# --------------------------------------------------------------------------------------------------------- registry
def test_model_key_is_refused_for_a_method_without_a_model_file():
    """Kills the dropped ``learned`` check of ``MethodChoice.make``: ``lbp:model=x`` names a model file for a method
    that loads none (it was passed on and ignored, or failed as an unknown option)."""
    from dmenet.methods import parse_method

    with pytest.raises(ValueError, match="lbp loads no model file"):
        parse_method("lbp:model=x.safetensors").make()
