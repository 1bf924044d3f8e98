"""docs/reliability.md §34: a user's own data, end to end (generate → split → train → select → predict → evaluate).
One test per defect U1…; each fails on the code before the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_distill import _script

from dmenet.distill.split import read_split
from syndof import generate
from syndof.io import write_image

ROOT = Path(__file__).resolve().parents[1]


def _own_renders(tmp_path, photos: int = 3, count: int = 9):
    """A ``syndof.generate`` folder of ``count`` renders of ``photos`` own photos (random depth, 32 px): render i
    is of photo i mod ``photos``."""
    src = tmp_path / "photos"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(photos):
        write_image(src / f"p{i}.png", rng.random((24, 32, 3)).astype(np.float32))
    out = tmp_path / "syn"
    assert generate.main(["--out", str(out), "--images", str(src), "--count", str(count), "--max-side", "32",
                          "--no-progress"]) == 0
    return out


def test_u1_split_keeps_the_renders_of_one_photo_on_one_side(tmp_path, capsys):
    """U1: a syndof.generate folder has several renders of each photo (``--count`` > photos); the split drew renders,
    so validation held renders of photos trained on (here: p1 and p2 on both
    sides). Now every photo's renders are on one side, and a split that cannot leave a training photo is
    refused, one line."""
    syn = _own_renders(tmp_path)
    out = tmp_path / "lists" / "s"
    assert _script("split").main(["--images", str(syn / "image"), "--glob", "*.png", "--val-count", "2",
                                  "--out", str(out)]) == 0
    source = {s: s.split("_", 1)[1] for s in read_split(f"{out}_train.txt") + read_split(f"{out}_val.txt")}
    train, val = ({source[s] for s in read_split(f"{out}_{part}.txt")} for part in ("train", "val"))
    assert len(source) == 9 and train and val and not train & val
    assert "3 source photos" in capsys.readouterr().out
    assert _script("split").main(["--images", str(syn / "image"), "--glob", "*.png", "--val-count", "7",
                                  "--out", str(tmp_path / "lists" / "t")]) == 2
    assert "3 source photo(s)" in capsys.readouterr().err


def test_u2_evaluate_scores_a_generate_folder_as_blur_detection(tmp_path):
    """U2: docs/distill.md sends a model trained on a generate folder's binary masks to ``dmenet.evaluate``, whose
    only SYNDOF benchmark scored its blur probability as a σ label (σ = 7·p) against blur_map/; ``--benchmark cuhk``
    wants gt/STEM.png. Now ``--benchmark syndof_dbd`` pairs image/STEM.png with blur_map_binary/STEM_binary.png
    (255 = blurred) and scores detection; a render without its mask is named."""
    from dmenet import evaluate

    syn = _own_renders(tmp_path)
    out = tmp_path / "eval"
    assert evaluate.main(["--benchmark", "syndof_dbd", "--data", str(syn), "--method", "laplacian",
                          "--wandb", "disabled", "--out", str(out)]) == 0
    rows = (out / "per_image.csv").read_text().splitlines()
    assert rows[0].startswith("stem,mae,fmax") and len(rows) == 10
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted(p.stem for p in (syn / "image").iterdir())
    (syn / "blur_map_binary" / "000004_p1_binary.png").unlink()
    assert evaluate.main(["--benchmark", "syndof_dbd", "--data", str(syn), "--method", "laplacian",
                          "--wandb", "disabled", "--out", str(tmp_path / "eval2")]) == 2


def test_u3_joint_training_without_labelled_photos_names_the_renders_only_stage(tmp_path, capsys):
    """U3: ``dmenet.train --config experiments/tiny.yaml --synthetic SYN --out RUN`` (a user with renders of their own
    photos and no masks of real photos): "--stage joint needs --real DIR … and --labelled DIR", not a word that
    ``--stage blur`` trains B on the renders alone. Now the one line says so; nothing is written."""
    from dmenet import train

    syn = _own_renders(tmp_path, photos=2, count=2)
    assert train.main(["--config", str(ROOT / "experiments" / "tiny.yaml"), "--synthetic", str(syn),
                       "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--stage blur" in err[0], err
    assert not (tmp_path / "run").exists()


def _depth_recipe() -> str:
    """The Python block of docs/method.md §1 that converts an 8-bit relative depth map (white = near) to mm."""
    text = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    start = text.index("  ```python\n", text.index("Relative 8-bit depth → mm")) + len("  ```python\n")
    return "\n".join(line[2:] for line in text[start: text.index("  ```\n", start)].splitlines())


def test_u4_the_depth_recipe_refuses_a_map_of_another_shape_than_the_turned_photo(tmp_path, monkeypatch):
    """U4: docs/method.md's 8-bit depth → mm recipe resized each depth map to the photo's size as OpenCV reads it
    (EXIF rotation applied): a photo stored landscape with orientation 6 and its depth in the stored orientation
    gave a stretched depth map (exit 0), which generate then rendered without a word. Now that photo stops the
    recipe naming it; a plain photo with its half-size map converts as before (white → near_mm)."""
    import runpy

    import pytest
    from PIL import Image

    photos, depths, out = tmp_path / "photos", tmp_path / "depths", tmp_path / "mm"
    photos.mkdir(), depths.mkdir()
    write_image(photos / "plain.png", np.zeros((24, 32, 3), np.float32))
    write_image(depths / "plain.png", np.full((12, 16), 1.0, np.float32))
    script = tmp_path / "to_mm.py"
    script.write_text(_depth_recipe(), encoding="utf-8")
    monkeypatch.setattr("sys.argv", [str(script), str(photos), str(depths), str(out)])
    runpy.run_path(str(script), run_name="__main__")
    assert np.load(out / "plain.npy").shape == (24, 32) and np.allclose(np.load(out / "plain.npy"), 1000.0)
    turned = Image.new("RGB", (32, 24))  # stored 32×24, shown 24×32
    exif = turned.getexif()
    exif[274] = 6
    turned.save(photos / "turned.jpg", exif=exif.tobytes())
    write_image(depths / "turned.png", np.zeros((12, 16), np.float32))  # the stored orientation
    with pytest.raises(SystemExit, match="turned.jpg: 24x32 px, depth 16x12"):
        runpy.run_path(str(script), run_name="__main__")
    assert not (out / "turned.npy").exists()
