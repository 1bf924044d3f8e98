"""docs/reliability.md §42 (6 Dec 2026): a Distill mask saved as ``.npy`` is named as such (masks are image files
for every reader of the toolkit, so it is refused, not read, and not called missing); every public function of
dmenet/ and syndof/ has a docstring (``syndof.io.read_raw`` had none)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from test_distill_own_data import SIDE, _one_line_exit_2, _sets, _syndof_folder

from dmenet.distill.config import load_distill_config
from dmenet.distill.data import TrainStream

ROOT = Path(__file__).resolve().parents[1]


def _split(tmp_path: Path) -> str:
    (tmp_path / "split_train.txt").write_text("000000_src0\n000001_src1\n000002_src2\n")
    (tmp_path / "split_val.txt").write_text("000003_src3\n000004_src4\n")
    return str(tmp_path / "split")


def test_a_npy_mask_is_refused_naming_the_file_and_a_npy_beside_a_png_changes_nothing(tmp_path, capsys):
    """``STEM_binary.npy`` (a bool mask) in place of ``STEM_binary.png``: exit 2, one line naming the .npy file and
    the PNG to save, nothing written; it said ``PHOTO: no mask STEM_binary.* in MASKS`` with the file right there.
    Only a photo without an image mask is refused: ``.npy`` files beside the PNGs (the inverse masks, which would
    flip the targets if they were read) leave the training batch exactly as without them."""
    root = tmp_path / "syn"
    _syndof_folder(root)
    masks = root / "blur_map_binary"
    sets = _sets(root, _split(tmp_path))
    cfg = load_distill_config(None, sets)
    before = TrainStream(cfg.data, cfg.train.seed).batch(0)
    png = masks / "000001_src1_binary.png"
    kept = png.read_bytes()
    png.unlink()
    np.save(masks / "000001_src1_binary.npy", np.zeros((SIDE, SIDE), bool))
    err = _one_line_exit_2(capsys, ["--out", str(tmp_path / "run"), "--set", *sets])
    assert f"{masks / '000001_src1_binary.npy'}: not read as the mask of 000001_src1.png" in err
    assert "save it as 000001_src1_binary.png" in err
    assert not (tmp_path / "run").exists()
    png.write_bytes(kept)
    for other in masks.glob("*.png"):
        np.save(other.with_suffix(".npy"), ~np.zeros((SIDE, SIDE), bool))
    after = TrainStream(cfg.data, cfg.train.seed).batch(0)
    assert before.keys() == after.keys()
    assert all(bool((before[k] == after[k]).all()) for k in before)
    assert 0 < float(after["mask"].mean()) < 1


def _public_without_docstring(tree: ast.Module) -> list[str]:
    missing = []

    def visit(body, prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None:
                    missing.append(f"{prefix}{node.name}:{node.lineno}")

    visit(tree.body, "")
    return missing


def test_every_public_function_and_method_has_a_docstring():
    """The house rule (docstrings give shape, range and units) needs a docstring to begin with: every public
    module-level function, public class's public method, of dmenet/ and syndof/."""
    missing = []
    for path in sorted([*(ROOT / "dmenet").rglob("*.py"), *(ROOT / "syndof").rglob("*.py")]):
        tree = ast.parse(path.read_text())
        missing += [f"{path.relative_to(ROOT)}:{name}" for name in _public_without_docstring(tree)]
    assert not missing, missing
