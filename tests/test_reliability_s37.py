"""docs/reliability.md §37: eleventh review, the paths added or changed on 6 Dec 2026 (§32–§36). One test per
defect R1…; each fails on the code before the fix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from test_distill import _script

from dmenet.distill.split import read_split
from dmenet.eval.benchmarks import get_spec, list_folder_samples
from dmenet.training.resume import named_keys, with_added_keys
from syndof.io import InputError

ROOT = Path(__file__).resolve().parents[1]


def _renders(root: Path, sources: dict[str, tuple[str, str | None]]) -> Path:
    """The layout of a ``syndof.generate`` folder as split.py reads it: ``image/STEM.png`` (empty: only names are
    listed), ``dataset.json`` and ``meta/STEM.json`` with ``source_name`` and, when given, ``source_sha256``.
    ``sources``: ``{stem: (source name, SHA-256 of the photo or None)}``."""
    (root / "image").mkdir(parents=True)
    (root / "meta").mkdir()
    (root / "dataset.json").write_text("{}")
    for stem, (name, sha) in sources.items():
        (root / "image" / f"{stem}.png").write_bytes(b"")
        meta = {"stem": stem, "source_name": name, **({"source_sha256": {"image": sha}} if sha else {})}
        (root / "meta" / f"{stem}.json").write_text(json.dumps(meta))
    return root


def _three_photos(old: bool = False) -> dict[str, tuple[str, str | None]]:
    """Nine renders of p0, p1, p2 (render i of photo i mod 3); with ``old`` the first five lack the SHA-256, as
    renders written before 6 Dec 2026 in a folder a later ``generate`` extended."""
    return {f"{i:06d}_p{i % 3}": (f"p{i % 3}", None if old and i < 5 else f"{i % 3}" * 64) for i in range(9)}


def _sides(out: Path) -> tuple[set[str], set[str]]:
    """The source photos of the renders listed in ``OUT_train.txt`` and ``OUT_val.txt``."""
    return tuple({s.split("_", 1)[1] for s in read_split(f"{out}_{part}.txt")} for part in ("train", "val"))


def test_r1_split_groups_renders_by_photo_when_given_the_image_folder_as_dot_or_a_link(tmp_path, monkeypatch,
                                                                                        capsys):
    """R1: ``split.py --images .`` run inside ``image/`` (or ``--images`` a link to it) split the renders one by one:
    ``Path('.').name`` is not ``image``, so the folder was not taken for a generate folder, and renders of one photo
    went to both sides (``7 train, 2 val``, no word of source photos)."""
    syn = _renders(tmp_path / "syn", _three_photos())
    (tmp_path / "renders").symlink_to(syn / "image")
    split = _script("split")
    monkeypatch.chdir(syn / "image")
    for images, out in ((".", tmp_path / "dot"), (str(tmp_path / "renders"), tmp_path / "link")):
        assert split.main(["--images", images, "--glob", "*.png", "--val-count", "2", "--out", str(out)]) == 0
        assert "3 source photos" in capsys.readouterr().out
        train, val = _sides(out)
        assert train and val and not train & val


def test_r2_older_and_newer_renders_of_one_photo_are_one_source(tmp_path, capsys):
    """R2: a generate folder begun before 6 Dec 2026 (meta without ``source_sha256``) and extended since (renders
    with it): the older renders of photo p1 were keyed by its name, the newer by its SHA-256, two "sources"; with
    seed 3 validation held 000006_p0 and 000007_p1 while training held other renders of p0 and p1 ("renders of
    6 source photos, each on one side")."""
    syn = _renders(tmp_path / "syn", _three_photos(old=True))
    split = _script("split")
    assert len(split.render_sources(syn / "image", sorted(_three_photos()))) == 3
    for seed in range(1, 6):
        out = tmp_path / f"s{seed}"
        assert split.main(["--images", str(syn / "image"), "--glob", "*.png", "--val-count", "2", "--seed",
                           str(seed), "--out", str(out)]) == 0
        assert "3 source photos" in capsys.readouterr().out
        train, val = _sides(out)
        assert not train & val


def test_an_older_render_of_a_name_two_photos_share_keeps_both_photos_on_one_side(tmp_path):
    """§38 (left by round 13): an older render (no SHA-256) of source name ``p``, in a folder whose newer renders of
    ``p`` record two photos (A, B), took whichever SHA-256 the name table held last: it could show the other photo,
    which then had renders on both sides. Now A's and B's renders and the older one are one source; C stays apart,
    and two photos of one name with no older render stay two sources."""
    A, B, C = "a" * 64, "b" * 64, "c" * 64
    split = _script("split")
    syn = _renders(tmp_path / "syn", {"000000_p": ("p", None), "000001_p": ("p", A), "000002_p": ("p", B),
                                      "000003_q": ("q", C), "000004_r": ("r", B), "000005_s": ("s", None)})
    groups = split.render_sources(syn / "image", [f"00000{i}_{n}" for i, n in enumerate("pppqrs")])
    assert sorted(map(sorted, groups.values())) == [["000000_p", "000001_p", "000002_p", "000004_r"],
                                                    ["000003_q"], ["000005_s"]]
    newer = _renders(tmp_path / "new", {"000001_p": ("p", A), "000002_p": ("p", B)})
    assert len(split.render_sources(newer / "image", ["000001_p", "000002_p"])) == 2


def test_r8_a_folder_with_dataset_json_but_no_meta_says_which_folder_to_split(tmp_path, capsys):
    """R8: ``split.py --images OUT/image`` on a ``scaled_syndof.py`` copy (dataset.json, image/, blur_map/, no meta/)
    said ``error: OUT/meta/000000_p1.json: file not found``, a file the user never made nor named. Now the line
    names the missing meta/ folder and says to split the folder it was made from; nothing is written."""
    syn = _renders(tmp_path / "scaled", _three_photos())
    for meta in (syn / "meta").iterdir():
        meta.unlink()
    (syn / "meta").rmdir()
    out = tmp_path / "lists" / "s"
    assert _script("split").main(["--images", str(syn / "image"), "--glob", "*.png", "--val-count", "2",
                                  "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {syn / 'meta'}: no such folder") and "made from" in err
    assert not out.parent.exists()


def _dbd_folder(root: Path, masks: list[str]) -> Path:
    """A syndof_dbd layout: ``image/a.png``, ``image/b.png`` and the named files in ``blur_map_binary/`` (empty
    files: pairing lists names only)."""
    for sub, names in (("image", ["a.png", "b.png"]), ("blur_map_binary", masks)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / sub / name).write_bytes(b"")
    return root


@pytest.mark.parametrize("masks", [["a.png", "b_binary.png"], ["a.png", "a_binary.png", "b_binary.png"]],
                         ids=["plain_name_alone", "plain_name_beside_the_mask"])
def test_r3_syndof_dbd_refuses_a_gt_file_without_the_binary_suffix(tmp_path, masks):
    """R3: ``--benchmark syndof_dbd`` keyed a ``blur_map_binary/`` file without ``_binary`` by its own stem, so it
    paired with the image of that stem: the render ``a.png`` copied among the masks was scored as a's mask (exit 0,
    Fmax 0.90), and beside ``a_binary.png`` one of the two was dropped unsaid (gt_index's docstring said such a
    file pairs with no image). Now it is refused, naming the file."""
    root = _dbd_folder(tmp_path / "syn", masks)
    for need_images in (True, False):  # a method, or --predictions (the GT folder listed alone)
        with pytest.raises(InputError) as exc:
            list_folder_samples(get_spec("syndof_dbd"), root, need_images=need_images)
        assert str(root / "blur_map_binary" / "a.png") in str(exc.value) and "_binary" in str(exc.value)
    ok = _dbd_folder(tmp_path / "ok", ["a_BINARY.png", "b_binary.png"])  # the suffix in any case, as before
    assert [s.stem for s in list_folder_samples(get_spec("syndof_dbd"), ok)] == ["a", "b"]


@pytest.mark.parametrize("text", ["", "# nothing recorded\n", "null\n"], ids=["empty", "comment_only", "null"])
def test_r4_distill_resume_of_a_run_whose_config_yaml_is_empty_is_one_line(tmp_path, capsys, text):
    """R4: ``distill.train --resume`` of a run whose config.yaml is empty, only comments or ``null`` (which passed
    the run-folder check: it reads as the defaults): an ``AttributeError: 'NoneType' object has no attribute
    'items'`` traceback from ``with_added_keys``. Now the resume is refused as any other differing config, one line
    naming the file."""
    from dmenet.distill import train

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(text)
    rc = train.main(["--config", str(ROOT / "experiments" / "distill" / "tiny.yaml"), "--out", str(run),
                     "--resume"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: {run / 'config.yaml'}: the resumed run's config differs from this one in")
    assert "loss.sharp_consistency (the run predates the key: true)" in err
    assert (run / "config.yaml").read_text() == text


def test_r5_an_empty_section_of_a_run_record_reads_the_added_keys_values(tmp_path):
    """R5: a run record with an empty section (``train:`` with nothing under it: YAML null) is read by the config
    load as a section without keys (the defaults), but ``with_added_keys`` left it null, so its added keys took
    today's defaults, not the values the run trained with (what Z3 removed for a missing key)."""
    added = {"train.channels_last": False, "train.init_from": None}
    assert with_added_keys({"train": None, "data": {"crop": 64}}, added) == {
        "train": {"channels_last": False, "init_from": None}, "data": {"crop": 64}}
    assert with_added_keys(None, added) == {"train": {"channels_last": False, "init_from": None}}
    assert named_keys(["train.channels_last"], None, added) == ["train.channels_last (the run predates the key: false)"]

    from dmenet.config import ExperimentConfig, config_from_dict

    default = ExperimentConfig().train.channels_last
    cfg = config_from_dict({"train": None}, added={"train.channels_last": not default})
    assert cfg.train.channels_last is (not default)


def _judge_folder(out: Path, fmax: object) -> Path:
    """A judge_21r.sh folder for H8 and R1; R1's native ``fmax`` is ``fmax``."""
    for name in ("H8", "R1"):
        for part in ("cuhk/native", "cuhk/ddffnet320", "sharp", "syn"):
            (out / name / part).mkdir(parents=True)
            metrics = {"fmax": fmax if (name, part) == ("R1", "cuhk/native") else 0.9, "mae": 0.1, "mean_blur": 0.1}
            (out / name / part / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    return out


@pytest.mark.parametrize("fmax", [None, "0.9", True], ids=["null", "string", "bool"])
def test_r6_the_rule_judges_name_a_figure_that_is_not_a_number(tmp_path, capsys, fmax):
    """R6: ``judge_21r.py OUT H8 R1`` with R1's ``metrics.fmax`` null or a string (a hand-edited or foreign
    metrics.json): ``TypeError: '>=' not supported…`` traceback (true read as 1 and passed). Now one line naming the
    file and the key (``report_metrics``, shared with judge_19s); no verdict.json."""
    spec = importlib.util.spec_from_file_location("judge_21r", ROOT / "experiments" / "judge_21r.py")
    judge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(judge)
    out = _judge_folder(tmp_path / "judge", fmax)
    assert judge.main([str(out), "H8", "R1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {out / 'R1' / 'cuhk' / 'native' / 'metrics.json'}: metrics.fmax is {json.dumps(fmax)}, " \
                  "not a number"
    assert not (out / "verdict.json").exists()


@pytest.mark.parametrize("entry", [5, None, {"fraction": 0.1}, {"edge_cells": "7", "fraction": 0.1}],
                         ids=["number", "null", "no_edge_cells", "edge_cells_a_string"])
def test_r7_a_damaged_screen_cache_entry_is_named_and_the_cache_kept(tmp_path, entry):
    """R7: ``build_training_set.py`` read its BSDS500 screen cache with ``read_json_object`` (a damaged file: one
    line), but an entry that was not a score (a number, null, a score without ``edge_cells``) was a TypeError /
    KeyError traceback, and the ``finally`` wrote the cache back. Now an InputError naming the cache and the entry,
    before any scoring, and the file is left as it was."""
    from test_build_training_set import _module, one_photo_screen

    bsds, out, cache = one_photo_screen(tmp_path, entry)
    before = cache.read_bytes()
    with pytest.raises(InputError) as exc:
        _module().screen_bsds(bsds, out, 1.5)
    assert str(cache) in str(exc.value) and "'train/a.png' is not a screen score" in str(exc.value)
    assert cache.read_bytes() == before
