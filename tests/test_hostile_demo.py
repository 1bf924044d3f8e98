"""Hostile use of ``dmenet.demo`` (docs/reliability.md §10): its --out folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile_helpers import assert_usage_error, run_main


def test_demo_replaces_only_its_own_folder(tmp_path, capsys, monkeypatch):
    """dmenet.demo: an existing folder it did not write is refused (exit 2, untouched); its own folder is replaced
    whole, so `make demo` runs again; a failure mid-way leaves the earlier demo and no half-built folder."""
    from dmenet import demo

    def fake_run_demo(out_dir, count, checkpoint, options):  # the real one takes a minute; the folder logic is here
        (Path(out_dir) / "report.md").write_text(f"run {count}\n")
        if count == 3:
            raise RuntimeError("disk full")
        return Path(out_dir) / "report.md"

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "report.md").write_text("precious")
    rc, _, err = run_main(demo.main, ["--out", theirs], capsys)
    assert_usage_error(rc, err, "was not written by the demo")
    assert (theirs / "report.md").read_text() == "precious"
    ours = tmp_path / "ours"
    assert run_main(demo.main, ["--out", ours, "--count", "1"], capsys)[0] == 0
    assert run_main(demo.main, ["--out", ours, "--count", "2"], capsys)[0] == 0
    assert (ours / "report.md").read_text() == "run 2\n" and (ours / demo.MARKER).is_file()
    with pytest.raises(RuntimeError):
        demo.main(["--out", str(ours), "--count", "3"])
    assert (ours / "report.md").read_text() == "run 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours", "theirs"]  # no staged or old folder left
    legacy = tmp_path / "legacy"  # a demo folder from before the marker: still the demo's own
    for name in demo.LEGACY_FILES:
        (legacy / name).parent.mkdir(parents=True, exist_ok=True)
        (legacy / name).write_text("old")
    assert run_main(demo.main, ["--out", legacy, "--count", "1"], capsys)[0] == 0
    assert (legacy / "report.md").read_text() == "run 1\n" and not (legacy / "contact_sheet.png").exists()


def test_builtin_photos_are_written_as_shipped(tmp_path):
    """``write_builtin_photos`` (the scripts' sharp-photo folder): one 8-bit PNG per built-in photo, pixel for pixel
    scikit-image's array."""
    import imageio.v3 as iio
    import numpy as np
    import skimage.data

    from dmenet.demo import BUILTIN_PHOTOS, write_builtin_photos

    paths = write_builtin_photos(tmp_path)
    assert paths == [tmp_path / f"{n}.png" for n in BUILTIN_PHOTOS]
    assert sorted(tmp_path.iterdir()) == sorted(paths)
    for name, path in zip(BUILTIN_PHOTOS, paths):
        assert np.array_equal(iio.imread(path), getattr(skimage.data, name)())
