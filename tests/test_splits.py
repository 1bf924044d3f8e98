"""dmenet.data.splits: the committed CUHK train / validation split and its loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_helpers import count_walks

from dmenet.data import splits
from syndof import io

ROOT = Path(__file__).resolve().parents[1]
SPLIT_FILE = ROOT / "experiments" / "cuhk_split.json"



def _cuhk_tree(tmp_path: Path) -> Path:
    """``tmp_path/data``: a stand-in shared data folder: ``cuhk/train_image`` of 8 photos (a … h), ``cuhk/image`` of
    one (b, a test photo), an xu100 pairing naming a."""
    data = tmp_path / "data"
    for folder, names in (("train_image", "abcdefgh"), ("image", "b")):
        (data / "cuhk" / folder).mkdir(parents=True)
        for n in names:
            (data / "cuhk" / folder / f"out_of_focus000{n}.jpg").write_bytes(b"x")
    (data / "xu100").mkdir()
    (data / "xu100" / "split_to_cuhk.txt").write_text("1.bmp--out_of_focus000a.jpg\n")
    return data

def test_make_split_is_seeded_disjoint_and_holds_out():
    stems = [f"Img{i:03d}" for i in range(50)]
    a = splits.make_split(stems, ["img003", "img007", "other"], n_val=10, seed=5)
    b = splits.make_split(list(reversed(stems)), ["IMG007", "img003", "other"], n_val=10, seed=5)
    assert a == b  # input order and case do not matter
    assert len(a["val"]) == 10 and len(a["train"]) == 38
    assert set(a["val"]).isdisjoint(a["train"])
    assert {"img003", "img007"}.isdisjoint(a["val"] + a["train"])
    assert sorted(a["val"] + a["train"] + ["img003", "img007"]) == sorted(s.lower() for s in stems)
    splits.check_split(a)
    assert splits.make_split(stems, [], n_val=10, seed=6)["val"] != splits.make_split(stems, [], 10, 5)["val"]
    with pytest.raises(ValueError, match=r"n_val must be in 1\.\.49, got 50"):  # 50 stems: one must be left to train on
        splits.make_split(stems, [], n_val=50)


def _split_of_the_tree_as_it_is(tmp_path: Path) -> tuple[Path, list[str]]:
    """(data, argv): :func:`_cuhk_tree` in ``tmp_path`` and the ``splits`` arguments (``--n-val 2``) that split it,
    checked once as it is: ``ok.json`` holds the two held-out test stems and the six others."""
    data = _cuhk_tree(tmp_path)
    argv = ["--shared", str(tmp_path), "--n-val", "2"]
    assert splits.main([*argv, "--out", str(tmp_path / "ok.json")]) == 0
    ok = json.loads((tmp_path / "ok.json").read_text())
    assert ok["held_out"] == ["out_of_focus000a", "out_of_focus000b"] and len(ok["train"] + ok["val"]) == 6
    return data, argv


def _refused_for_a_link_to_nothing(argv: list[str], out: Path, link: Path, capsys) -> None:
    """``splits ARGV --out OUT`` exits 2 with the one line naming ``link``'s folder and ``link`` (a symbolic link to
    nothing, the only such name there)."""
    capsys.readouterr()
    assert splits.main([*argv, "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == [f"error: {link.parent}: a split lists every image here (1 image name(s) there are no file to read, "
                   f"e.g. {link}: a symbolic link to nothing): restore each, or remove its name knowingly"], err


def test_check_split_rejects_overlap_and_unsorted():
    split = splits.make_split([f"s{i}" for i in range(20)], ["s1"], n_val=5, seed=0)
    bad = {**split, "train": sorted(split["train"] + [split["val"][0]])}
    with pytest.raises(ValueError, match="share"):
        splits.check_split(bad)
    with pytest.raises(ValueError, match="sorted"):
        splits.check_split({**split, "val": list(reversed(split["val"]))})


def test_load_split_reads_subsets_and_names_bad_files(tmp_path):
    assert len(splits.load_split(SPLIT_FILE, "val")) == 100
    with pytest.raises(io.InputError, match="unknown subset"):
        splits.load_split(SPLIT_FILE, "test")
    bad = tmp_path / "bad.json"
    split = json.loads(SPLIT_FILE.read_text())
    split["held_out"].append(split["val"][0])
    split["held_out"].sort()
    bad.write_text(json.dumps(split))
    with pytest.raises(io.InputError, match="bad.json"):
        splits.load_split(bad, "train")


def test_committed_split_is_the_rule_applied_to_the_shared_data(shared):
    shared("data", "cuhk", "train_image")
    committed = json.loads(SPLIT_FILE.read_text())
    assert splits.cuhk_split(shared("data").parent, committed["n_val"], committed["seed"]) == committed
    assert len(committed["val"]) == 100 and len(committed["train"]) == 499 and committed["source"]["n_images"] == 604
    small_test = {p.stem.lower() for p in io.list_images(shared("data", "cuhk", "image"))}
    xu100 = set(splits.xu100_cuhk_stems(shared("data", "xu100", "split_to_cuhk.txt")))
    assert len(small_test) == 5 and len(xu100) == 100
    for subset in ("train", "val"):
        assert (small_test | xu100).isdisjoint(committed[subset])


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "split.json"
    out.write_text("{}")
    assert splits.main(["--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "{}"
    link = tmp_path / "link.json"  # a dangling link: refused too, never replaced by the file
    link.symlink_to(tmp_path / "nowhere.json")
    assert splits.main(["--out", str(link)]) == 2
    assert link.is_symlink() and not (tmp_path / "nowhere.json").exists()


def test_h51_a_negative_seed_names_the_option(tmp_path, capsys):
    """``--seed -3`` failed inside NumPy with "error: expected non-negative integer", naming no option."""
    with pytest.raises(SystemExit) as exc:
        splits.main(["--shared", str(tmp_path), "--out", str(tmp_path / "s.json"), "--seed", "-3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed" in err and not (tmp_path / "s.json").exists()


def test_h92_an_image_name_that_is_no_file_is_refused_not_left_out_of_the_split(tmp_path, capsys):
    """A symbolic link to nothing (or in a loop, or a FIFO) named like a photo in ``cuhk/train_image`` was left out of
    the split unsaid, changing the seeded validation draw of a file written once; one in ``cuhk/image`` was no longer
    held out, so that test photo (``train_image`` holds it too) landed in train or val. Both are refused now: exit 2,
    one line naming the folder and the name, no split written."""
    import os

    data, argv = _split_of_the_tree_as_it_is(tmp_path)
    (data / "cuhk" / "image" / "out_of_focus000b.jpg").unlink()
    (data / "cuhk" / "image" / "out_of_focus000b.jpg").symlink_to("nowhere.jpg")
    image = data / "cuhk" / "image"
    _refused_for_a_link_to_nothing(argv, tmp_path / "s1.json", image / "out_of_focus000b.jpg", capsys)
    (image / "out_of_focus000b.jpg").unlink()
    (image / "out_of_focus000b.jpg").write_bytes(b"x")
    os.mkfifo(data / "cuhk" / "train_image" / "out_of_focus000i.jpg")
    assert splits.main([*argv, "--out", str(tmp_path / "s2.json")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and f"{data / 'cuhk' / 'train_image' / 'out_of_focus000i.jpg'}: not a regular file" in err[0]
    assert not (tmp_path / "s1.json").exists() and not (tmp_path / "s2.json").exists()


def test_w2_the_cuhk_split_walks_each_folder_once(tmp_path, monkeypatch, capsys):
    """§26 Left: ``splits`` listed ``train_image`` and ``image`` and then walked each again for its names where no
    file can be read: two walks can disagree on a name made or removed between them (a stem drawn that the refusal
    missed, or the reverse). Now each folder is walked once; the split and the refusal are as before."""
    walks = count_walks(monkeypatch)
    data, argv = _split_of_the_tree_as_it_is(tmp_path)
    assert walks == [data / "cuhk" / "train_image", data / "cuhk" / "image"]
    (data / "cuhk" / "image" / "out_of_focus000c.jpg").symlink_to("nowhere.jpg")
    walks.clear()
    _refused_for_a_link_to_nothing(argv, tmp_path / "s.json", data / "cuhk" / "image" / "out_of_focus000c.jpg",
                                   capsys)
    assert walks == [data / "cuhk" / "train_image", data / "cuhk" / "image"] and not (tmp_path / "s.json").exists()
