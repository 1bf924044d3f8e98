"""Pinned σ and blur-probability maps of the shipped model (a refactor of the inference code must not change them).

``cases()`` names the images (the 5 CUHK test images, RTF 01, the demo's scikit-image photos); :func:`map_fingerprints`
runs ``dmenet.inference.estimate`` with the shipped checkpoint on each (one torch thread) and returns each σ and
probability map's shape and its means over a 16 × 16 grid of blocks (:func:`fingerprint`); :func:`differences`
compares two sets within :data:`BLOCK_ATOL`.

History. Until 5 Dec 2026 the pins were SHA-256 digests of the maps' float32 bytes: ``--write`` stored them at commit
36c3343, before the recipe refactor, when the detection path was S with ``sigmoid(6·(z − 2.5))`` (:func:`s_predictor`
rebuilds it from today's file, whose weights are those of 36c3343), and ``--write-head`` stored the rule-21h8 head's
probability maps (again on 4 Dec, when its products moved to one-thread BLAS: at most 1.4e-6 apart). On 5 Dec the
work moved to a machine with another CPU (AMX): the code of c50b8fa, which matched every digest on the old machine,
matched none on the new one. Byte digests pin the machine as much as the code, so the pins became fingerprints,
written on the new machine by the code of c50b8fa (``python tests/recipe_identity.py --write`` and ``--write-head``
run from a checkout of c50b8fa), and compared within float rounding. ``tests/test_recipe.py`` compares against both
files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HASH_FILE = REPO / "tests" / "data" / "recipe_identity.json"
HEAD_HASH_FILE = REPO / "tests" / "data" / "recipe_identity_head.json"
ONEPASS = REPO / "checkpoints" / "dmenet_lite_onepass.safetensors"
ONEPASS_HASH_FILE = REPO / "tests" / "data" / "recipe_identity_onepass.json"
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


GRID = 16
BLOCK_ATOL = 1e-5
"""Largest difference allowed between pinned and computed block means (σ in px, probabilities in [0, 1]): float
rounding of another CPU or thread order moves a block mean by about 1e-7; any change of the computation by far more."""


def fingerprint(array: np.ndarray) -> dict:
    """{"shape": [H, W], "blocks": GRID × GRID float64 means of ``array`` over near-equal blocks (np.array_split)}."""
    a = np.asarray(array, dtype=np.float64)
    blocks = [[float(c.mean()) for c in np.array_split(r, GRID, axis=1)] for r in np.array_split(a, GRID, axis=0)]
    return {"shape": list(a.shape), "blocks": blocks}


def differences(got: dict, pinned: dict, atol: float = BLOCK_ATOL) -> list[str]:
    """One line per map of ``pinned`` ({case: {map: fingerprint}}) that ``got`` lacks, or whose shape differs, or
    whose block means differ by more than ``atol``."""
    out = []
    for case, maps in pinned.items():
        for name, fp in maps.items():
            g = got.get(case, {}).get(name)
            if g is None or g["shape"] != fp["shape"]:
                out.append(f"{case} {name}: shape {None if g is None else g['shape']} != pinned {fp['shape']}")
                continue
            worst = float(np.abs(np.array(g["blocks"]) - np.array(fp["blocks"])).max())
            if not worst <= atol:
                out.append(f"{case} {name}: a block mean differs by {worst:.3g} (> {atol:g})")
    return out


def s_predictor(model):
    """The shipped file's recipe with the detection path of commit 36c3343: S and :data:`PINNED_S_TRANSFORM`."""
    from dmenet.inference import Predictor

    return Predictor(model, model.recipe.with_head(None).with_transform(*PINNED_S_TRANSFORM))


def map_fingerprints(model, names: list[str] | None = None, shared: Path = SHARED) -> dict[str, dict]:
    """{case: {"sigma": fingerprint, "blur_probability": fingerprint}} of ``estimate(image, model)`` (both maps;
    ``model`` a DMENet, run with its recipe, or a Predictor)."""
    from dmenet.inference import estimate

    out = {}
    for name, load in cases(shared):
        if names is not None and name not in names:
            continue
        est = estimate(load(), model)
        out[name] = {"sigma": fingerprint(est.sigma), "blur_probability": fingerprint(est.blur_probability)}
    return out


def _plain_blur(model, image_statistics: bool = False):
    """B without the rewritten copies of :mod:`dmenet.models.fuse` (BatchNorm as trained, as at 36c3343): B's own
    modules, in eval mode (moving statistics) or, with ``image_statistics``, inside ``batch_statistics``."""
    import contextlib

    import torch

    from dmenet.models.layers import batch_statistics

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blur = model.blur

        def forward(self, x, features: bool = False):
            with batch_statistics(self.blur) if image_statistics else contextlib.nullcontext():
                skips = self.blur.encoder(x)
                if features:
                    return self.blur.decoder.detection_features(skips)
                return self.blur.decoder(skips, with_aux=False)[0]

    return Plain()


def _plain_image_statistics_blur(model):
    """:func:`_plain_blur` with per-image statistics."""
    return _plain_blur(model, image_statistics=True)


PLAIN_PATHS = {"cached_inference_blur": _plain_blur, "cached_image_statistics_blur": _plain_image_statistics_blur}
"""The functions of :mod:`dmenet.tiling` (where B's forward looks them up) that the plain path replaces for the pinned
maps, and their stand-ins."""


def main() -> int:
    """``--write``: the S-path maps (:func:`s_predictor`) into HASH_FILE; ``--write-head``: the shipped head's
    probability maps into HEAD_HASH_FILE; neither: print the S-path fingerprints. Always one torch thread, the plain
    path of B and S itself (no lookup table), as ``tests/test_recipe.py`` computes them. ``--write-onepass``: the
    one-pass file's (:data:`ONEPASS`) probability maps into ONEPASS_HASH_FILE, through the default path."""
    import torch

    from dmenet import inference, logits, tiling

    torch.set_num_threads(1)
    if "--write-onepass" in sys.argv:
        maps = {k: {"blur_probability": v["blur_probability"]}
                for k, v in map_fingerprints(inference.load_model(ONEPASS)).items()}
        ONEPASS_HASH_FILE.write_text(json.dumps({"model": "checkpoints/dmenet_lite_onepass.safetensors",
                                                 "record": "experiments/ONEPASS_FILE.md", "maps": maps}) + "\n")
        print(f"wrote {ONEPASS_HASH_FILE}")
        return 0
    model = inference.load_model()
    saved = [(tiling, k, getattr(tiling, k)) for k in PLAIN_PATHS]
    saved.append((inference, "calibration_logit", inference.calibration_logit))
    for k, plain in PLAIN_PATHS.items():
        setattr(tiling, k, plain)
    inference.calibration_logit = logits.direct_calibration_logit  # looked up there by Predictor.detection_logit
    try:
        if "--write-head" in sys.argv:
            assert model.recipe.detection.head is not None, "the shipped recipe has no detection head"
            maps = {k: {"blur_probability": v["blur_probability"]} for k, v in map_fingerprints(model).items()}
            path, record = HEAD_HASH_FILE, {"rule": "21h8"}
        else:
            maps = map_fingerprints(s_predictor(model))
            path, record = HASH_FILE, {"commit": "36c3343"}
    finally:
        for module, k, v in saved:
            setattr(module, k, v)
    if "--write" not in sys.argv and "--write-head" not in sys.argv:
        print(json.dumps(maps))
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": "checkpoints/dmenet_lite.safetensors", **record, "maps": maps}) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
