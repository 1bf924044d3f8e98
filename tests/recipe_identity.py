"""Pinned σ and blur-probability maps of the shipped model (the recipe refactor must not change a byte).

``cases()`` names the images (the 5 CUHK test images, RTF 01, the demo's scikit-image photos); :func:`map_hashes` runs
``dmenet.inference.estimate`` with the shipped checkpoint on each and returns SHA-256 of the float32 bytes of the σ
and probability maps with their shapes (one torch thread: other thread counts reorder float sums). ``python
tests/recipe_identity.py --write`` stores them in ``tests/data/recipe_identity.json`` (done once, at commit 36c3343,
before the recipe refactor); ``tests/test_recipe.py`` compares against that file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HASH_FILE = REPO / "tests" / "data" / "recipe_identity.json"

CUHK = ("out_of_focus0011.jpg", "out_of_focus0031.jpg", "out_of_focus0035.jpg", "out_of_focus0080.jpg",
        "out_of_focus0088.jpg")
DEMO_PHOTOS = ("astronaut", "coffee", "chelsea")  # dmenet.demo.BUILTIN_PHOTOS at 36c3343


def cases(shared: Path = SHARED) -> list[tuple[str, object]]:
    """(name, loader) pairs; a loader returns the (H, W, 3) image as the tools read it."""
    from syndof import io as sio

    def file_loader(path: Path):
        return lambda: sio.read_image(path)

    def photo_loader(name: str):
        def load():
            import skimage.data

            return getattr(skimage.data, name)().astype(np.float32) / 255.0
        return load

    out = [(f"cuhk/{n}", file_loader(shared / "data" / "cuhk" / "image" / n)) for n in CUHK]
    out.append(("rtf/image_01.png", file_loader(shared / "data" / "rtf" / "image_01.png")))
    out += [(f"skimage/{n}", photo_loader(n)) for n in DEMO_PHOTOS]
    return out


def array_digest(array: np.ndarray) -> dict:
    """{"shape": [...], "sha256": hex} of the float32 bytes of ``array`` (C order)."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def map_hashes(model, names: list[str] | None = None, shared: Path = SHARED) -> dict[str, dict]:
    """{case: {"sigma": digest, "blur_probability": digest}} of ``estimate(image, model)`` (both maps)."""
    from dmenet.inference import estimate

    out = {}
    for name, load in cases(shared):
        if names is not None and name not in names:
            continue
        est = estimate(load(), model)
        out[name] = {"sigma": array_digest(est.sigma), "blur_probability": array_digest(est.blur_probability)}
    return out


def main() -> int:
    import torch

    from dmenet.inference import load_model

    torch.set_num_threads(1)
    hashes = map_hashes(load_model())
    if "--write" in sys.argv:
        HASH_FILE.parent.mkdir(parents=True, exist_ok=True)
        HASH_FILE.write_text(json.dumps({"model": "checkpoints/dmenet_lite.safetensors", "commit": "36c3343",
                                         "maps": hashes}, indent=1) + "\n")
        print(f"wrote {HASH_FILE}")
    else:
        print(json.dumps(hashes, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
