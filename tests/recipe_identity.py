"""Pinned σ and blur-probability maps of the shipped model (the recipe refactor must not change a byte).

``cases()`` names the images (the 5 CUHK test images, RTF 01, the demo's scikit-image photos); :func:`map_hashes` runs
``dmenet.inference.estimate`` with the shipped checkpoint on each and returns SHA-256 of the float32 bytes of the σ
and probability maps with their shapes (one torch thread: other thread counts reorder float sums). ``python
tests/recipe_identity.py --write`` stored them in ``tests/data/recipe_identity.json`` once, at commit 36c3343, before
the recipe refactor: the detection path was then S with ``sigmoid(6·(z − 2.5))`` (:func:`s_predictor` rebuilds it
from today's file, whose weights are those of 36c3343). Rule 21h8 replaced S by a two-label detection head;
``--write-head`` stored the shipped head's probability maps in ``tests/data/recipe_identity_head.json`` when it
shipped, and again on 4 Dec 2026 when the head's products moved from numpy's einsum loop to one-thread BLAS (3× faster;
the probabilities moved by at most 1.4e-6 on the 100 validation images, every figure the same to six decimals).
``tests/test_recipe.py`` compares against both files.
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
HEAD_HASH_FILE = REPO / "tests" / "data" / "recipe_identity_head.json"
PINNED_S_TRANSFORM = (6.0, 2.5)
"""(scale, shift) of the detection transform on S's logit at commit 36c3343."""

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


def s_predictor(model):
    """The shipped file's recipe with the detection path of commit 36c3343: S and :data:`PINNED_S_TRANSFORM`."""
    from dmenet.inference import Predictor

    return Predictor(model, model.recipe.with_head(None).with_transform(*PINNED_S_TRANSFORM))


def map_hashes(model, names: list[str] | None = None, shared: Path = SHARED) -> dict[str, dict]:
    """{case: {"sigma": digest, "blur_probability": digest}} of ``estimate(image, model)`` (both maps; ``model`` a
    DMENet, run with its recipe, or a Predictor)."""
    from dmenet.inference import estimate

    out = {}
    for name, load in cases(shared):
        if names is not None and name not in names:
            continue
        est = estimate(load(), model)
        out[name] = {"sigma": array_digest(est.sigma), "blur_probability": array_digest(est.blur_probability)}
    return out


def _plain_blur(model):
    """B's label without the fused fast path (:mod:`dmenet.models.fuse`): BatchNorm as trained, as at 36c3343."""
    return lambda x: model.blur.decoder(model.blur.encoder(x), with_aux=False)[0]


def main() -> int:
    import torch

    from dmenet.inference import load_model

    torch.set_num_threads(1)
    model = load_model()
    if "--write-head" in sys.argv:
        from dmenet import inference
        from dmenet.models.fuse import cached_inference_blur

        assert model.recipe.detection.head is not None, "the shipped recipe has no detection head"
        inference.cached_inference_blur = _plain_blur  # pinned on the plain path, as test_recipe compares
        try:
            hashes = {k: v["blur_probability"] for k, v in map_hashes(model).items()}
        finally:
            inference.cached_inference_blur = cached_inference_blur
        HEAD_HASH_FILE.write_text(json.dumps({"model": "checkpoints/dmenet_lite.safetensors", "rule": "21h8",
                                              "maps": hashes}, indent=1) + "\n")
        print(f"wrote {HEAD_HASH_FILE}")
        return 0
    hashes = map_hashes(s_predictor(model))
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
